"""Q4: pipeline("emotion-multimodal") batched vs one input at a time, and the pipeline vs calling the model
directly on tensors the processor prepared beforehand (the pipeline's own overhead: file decoding, checks,
batching, post-processing).

    python benchmarks/bench_pipeline.py [--size full|tiny --inputs 32 --batch 8]

`--size full` uses klue/bert-base + wav2vec2-base shapes with the paper's conv speech features; `tiny` the test
encoders, where the pipeline's Python overhead is most visible.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import pipeline

import kemd_emotion  # noqa: F401  (registers the task)
from kemd_emotion import KlueWav2Vec2ForEmotion
from kemd_emotion.hub import save_checkpoint
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_config, tiny_processor

from _common import describe_machine, full_size_model, timeit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=["full", "tiny"])
    parser.add_argument("--inputs", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    processor = tiny_processor(DEFAULT_TEXTS, vocab_size=300)
    if args.size == "full":
        model = full_size_model(fusion="cat", audio_representation="conv").eval()
    else:
        torch.manual_seed(0)
        model = KlueWav2Vec2ForEmotion(tiny_config(vocab_size=len(processor.tokenizer))).eval()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_checkpoint(model, processor, tmp / "checkpoint")
        inputs = []
        for i in range(args.inputs):  # 16 kHz mono files of 1-4 s, the common case
            path = tmp / f"clip{i}.wav"
            soundfile.write(path, (0.1 * rng.standard_normal(int(rng.uniform(1, 4) * 16000))).astype(np.float32), 16000)
            inputs.append({"text": DEFAULT_TEXTS[i % len(DEFAULT_TEXTS)], "audio": str(path)})
        classifier = pipeline("emotion-multimodal", model=str(tmp / "checkpoint"), device="cpu")

        def direct():  # the same work without the pipeline: tensors prepared once, outside the timer
            with torch.inference_mode():
                for batch in prepared:
                    classifier.model(**batch)

        # the same batches the pipeline forms: longest clips first
        order = sorted(range(args.inputs), key=lambda i: -len(kemd_emotion.load_audio(inputs[i]["audio"])))
        texts = [inputs[i]["text"] for i in order]
        clips = [kemd_emotion.load_audio(inputs[i]["audio"]) for i in order]
        prepared = [
            processor(text=texts[i : i + args.batch], audio=clips[i : i + args.batch])
            for i in range(0, args.inputs, args.batch)
        ]
        times = {
            "one at a time": timeit(lambda: [classifier(x) for x in inputs], repeats=args.repeats),
            f"batch_size={args.batch}": timeit(lambda: classifier(inputs, batch_size=args.batch), repeats=args.repeats),
            "model on prepared tensors": timeit(direct, repeats=args.repeats),
        }
    for name, seconds in times.items():
        print(f"{name:>26}: {args.inputs / seconds:7.1f} inputs/s")
    batched = times[f"batch_size={args.batch}"]
    print(f"batched / one-at-a-time throughput = {times['one at a time'] / batched:.2f}x")
    print(f"pipeline (batched) time / direct model time = {batched / times['model on prepared tensors']:.2f}x"
          f"  ({args.size}, {describe_machine()})")


if __name__ == "__main__":
    main()
