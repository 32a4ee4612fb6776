"""Our own bottleneck: did the training step differentiate the raw audio?

`conv_feature_encoder` used to mark the audio as requiring grad on every training step (as transformers'
`Wav2Vec2FeatureEncoder` does), which only reentrant activation checkpointing needs: without checkpointing it makes
the first conv layer's backward also compute d loss / d audio, which nobody reads. Now it is marked only under
checkpointing. Both arms run the same model, batch and optimizer-free forward + backward; the old arm puts the flag
back by hand. Arms alternate, median of the rounds.

Measured (benchmarks/README.md): 1.01x on the sample model, 1.04x at full size: the audio's gradient is one
transposed convolution with a single output channel, cheap next to the rest of the backward pass. A first timing
outside this script (0.28 -> 0.175 s per step) was noise from a busy machine; the change stays because it is what
the flag is for, not for speed.

    python benchmarks/bench_training_step.py [--rounds 7] [--size sample|full]

`sample`: the embedded default's model (width 64, 16 conv channels), batch 16 of 1-2 s clips (one step of
`make run`). `full`: klue/bert-base + wav2vec2-base shapes, batch 4 of 5 s clips.
"""

import argparse
import statistics
import time

import torch

from _common import describe_machine, fake_batch, full_size_model
from kemd_emotion import KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion
from kemd_emotion.testing_utils import tiny_audio_config, tiny_text_config


def sample_model() -> KlueWav2Vec2ForEmotion:
    torch.manual_seed(0)
    config = KlueWav2Vec2EmotionConfig(
        text_config=tiny_text_config(vocab_size=2000, hidden_size=64),
        audio_config=tiny_audio_config(conv_channels=16, hidden_size=64), fusion="cat", audio_representation="conv")
    return KlueWav2Vec2ForEmotion(config)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", choices=("sample", "full"), default="sample")
    args = parser.parse_args()

    if args.size == "sample":
        model = sample_model().train()
        batch = fake_batch(16, [1.0 + i / 15 for i in range(16)], tokens=20, vocab_size=2000)
    else:
        model = full_size_model(fusion="cat", audio_representation="conv").train()
        batch = fake_batch(4, [5.0, 4.0, 3.0, 2.0])
    generator = torch.Generator().manual_seed(1)
    labels = (torch.rand(len(batch["input_ids"]), 7, generator=generator) > 0.7).float()
    targets = 1 + 4 * torch.rand(len(batch["input_ids"]), 2, generator=generator)

    def step(audio_requires_grad: bool) -> float:
        inputs = dict(batch)
        if audio_requires_grad:  # what every step did before
            inputs["input_values"] = inputs["input_values"].clone().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        started = time.perf_counter()
        model(**inputs, labels=labels, regression_labels=targets).loss.backward()
        return time.perf_counter() - started

    arms = {"audio requires grad (before)": True, "only the parameters (now)": False}
    times = {name: [] for name in arms}
    for name, flag in arms.items():  # warm-up
        step(flag)
    for _ in range(args.rounds):
        for name, flag in arms.items():
            times[name].append(step(flag))
    print(describe_machine())
    print(f"{args.size} model, forward + backward of one training batch, median of {args.rounds} rounds:")
    medians = {name: 1000 * statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"  {name:30s} {value:8.1f} ms")
    before, now = medians.values()
    print(f"  now / before: {now / before:.2f} ({before / now:.2f}x faster)")


if __name__ == "__main__":
    main()
