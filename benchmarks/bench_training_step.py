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
    python benchmarks/bench_training_step.py --size real [--passes 2 --steps 2] [--text_model E5 --audio_model WHISPER]

`sample`: the embedded default's model (width 64, 16 conv channels), batch 16 of 1-2 s clips (one step of
`make run`). `full`: klue/bert-base + wav2vec2-base shapes, batch 4 of 5 s clips.

`real`: a second question, what one training step of the real encoders costs: multilingual-e5-small (full size) +
whisper-base's encoder (`audio_representation="hidden"`, fusion cat), batch 8 of 2-5 s clips with Korean
transcripts, forward + backward + an AdamW step, in four arms: plain, `freeze_feature_encoder` (Whisper's two
convolutions fixed), gradient checkpointing (`gradient_checkpointing_enable()`: every e5 and Whisper layer
recomputed in the backward pass), and both. Each arm runs in its own fresh process (one warm-up step, then
`--steps` timed ones), so that its peak memory is its own: `resource.getrusage(RUSAGE_SELF).ru_maxrss`, the
process's peak resident set (weights, AdamW's states after the first step, activations, allocator slack), and that
peak minus the resident set after the model is built (what training adds). Arms run in turn, the order reversed on
every other pass; the step time is the median over passes and steps.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from _common import describe_machine, fake_batch, full_size_model
from kemd_emotion import KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion
from kemd_emotion.small_encoders import tiny_audio_config, tiny_text_config


def sample_model() -> KlueWav2Vec2ForEmotion:
    torch.manual_seed(0)
    config = KlueWav2Vec2EmotionConfig(
        text_config=tiny_text_config(vocab_size=2000, hidden_size=64),
        audio_config=tiny_audio_config(conv_channels=16, hidden_size=64), fusion="cat", audio_representation="conv")
    return KlueWav2Vec2ForEmotion(config)


REAL_WEIGHTS = Path(os.environ.get("KEMD_TEST_WEIGHTS", Path.home() / ".cache/kemd-emotion/test-weights"))
REAL_ARMS = {"plain": (False, False), "freeze_feature_encoder": (True, False), "gradient checkpointing": (False, True),
             "freeze + checkpointing": (True, True)}
"""Arm -> (freeze_feature_encoder, gradient checkpointing)."""
TEXTS = ["음", "약속을 어겨서 너무 화나요", "오늘 정말 행복해요", "그게 무슨 말이야 난 몰랐어",
         "괜찮아 천천히 얘기해 봐", "진짜 놀랐어 어떻게 그럴 수가 있어", "네", "이번 주말에 같이 영화 보러 갈래요"]


def real_worker(arm: str, steps: int, text_model: str, audio_model: str) -> dict:
    """One arm in this process: build, one warm-up step, `steps` timed steps; times and peak resident memory."""
    import numpy as np
    from transformers import AutoFeatureExtractor, AutoTokenizer

    from kemd_emotion import KlueWav2Vec2Processor

    freeze, checkpointing = REAL_ARMS[arm]
    torch.manual_seed(0)
    model = KlueWav2Vec2ForEmotion.from_text_audio_pretrained(
        text_model, audio_model, fusion="cat", audio_representation="hidden", pooling="mean",
        freeze_feature_encoder=freeze).train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # The processor a user builds around two pretrained encoders: their own tokenizer and feature extractor.
    processor = KlueWav2Vec2Processor(AutoFeatureExtractor.from_pretrained(audio_model),
                                      AutoTokenizer.from_pretrained(text_model))
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(int(16000 * seconds)).astype(np.float32)
             for seconds in np.linspace(2.0, 5.0, len(TEXTS))]
    batch = processor(text=TEXTS, audio=clips, sampling_rate=16000, padding=True, return_tensors="pt")
    generator = torch.Generator().manual_seed(1)
    labels = (torch.rand(len(TEXTS), 7, generator=generator) > 0.7).float()
    targets = 1 + 4 * torch.rand(len(TEXTS), 2, generator=generator)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    built_kb = rss_now_kb()
    times = []
    for index in range(steps + 1):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(**batch, labels=labels, regression_labels=targets).loss.backward()
        optimizer.step()
        if index:  # the first is the warm-up (and allocates AdamW's states)
            times.append(time.perf_counter() - started)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"arm": arm, "times": times, "built_mib": built_kb / 1024, "peak_mib": peak_kb / 1024,
            "trainable": trainable, "threads": torch.get_num_threads()}


def rss_now_kb() -> int:
    """The current resident set (Linux /proc), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def real_main(args) -> None:
    text_model = args.text_model or str(REAL_WEIGHTS / "multilingual-e5-small")
    audio_model = args.audio_model or str(REAL_WEIGHTS / "whisper-base")
    results = {arm: [] for arm in REAL_ARMS}
    for index in range(args.passes):
        order = list(REAL_ARMS) if index % 2 == 0 else list(reversed(REAL_ARMS))
        for arm in order:
            command = [sys.executable, __file__, "--worker", arm, "--steps", str(args.steps),
                       "--text_model", text_model, "--audio_model", audio_model]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  pass {index + 1} {arm}: {results[arm][-1]}", file=sys.stderr)
    print(describe_machine())
    first = results["plain"][0]
    print(f"e5 ({Path(text_model).name}) + whisper-base encoder (hidden, cat, mean), batch 8 of 2-5 s clips, forward + "
          f"backward + AdamW step; {args.passes} pass(es) x {args.steps} step(s) per arm, {first['threads']} thread(s):")
    print("| arm | s / step (median) | trainable parameters | peak RSS MiB | RSS after build MiB | training adds MiB |")
    print("|---|---|---|---|---|---|")
    for arm, runs in results.items():
        step = statistics.median(t for run in runs for t in run["times"])
        peak = max(run["peak_mib"] for run in runs)
        built = statistics.median(run["built_mib"] for run in runs)
        print(f"| {arm} | {step:.2f} | {runs[0]['trainable'] / 1e6:.1f} M | {peak:.0f} | {built:.0f} | "
              f"{peak - built:.0f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", choices=("sample", "full", "real"), default="sample")
    parser.add_argument("--passes", type=int, default=2, help="real: passes over the four arms")
    parser.add_argument("--steps", type=int, default=2, help="real: timed steps per arm and pass")
    parser.add_argument("--text_model", default=None)
    parser.add_argument("--audio_model", default=None)
    parser.add_argument("--worker", choices=tuple(REAL_ARMS), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(real_worker(args.worker, args.steps, args.text_model, args.audio_model)))
        return
    if args.size == "real":
        real_main(args)
        return

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
