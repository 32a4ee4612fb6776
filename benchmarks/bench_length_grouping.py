"""Q2: training throughput (utterances/s) with length-grouped batches and dynamic padding vs the paper's recipe
(random batches, every clip padded to 5 s), on a KEMDy20-like duration distribution (mostly 1-6 s, cropped at 5 s).

Both arms train the same full-size model (klue/bert-base + wav2vec2-base shapes) on the same utterances; batches
come from transformers' LengthGroupedSampler (what `train_sampling_strategy="group_by_length"` uses) or a random
permutation.

    python benchmarks/bench_length_grouping.py [--corpus 13462 --steps 6 --batch 8 --representation conv]
"""

import argparse
import time

import numpy as np
import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from _common import describe_machine, fake_batch, full_size_model


def kemdy20_like_durations(count: int, seed: int = 0) -> np.ndarray:
    """Log-normal durations with median ~2.9 s, clipped to [0.5, 15] s: most of KEMDy20's clips are 1-6 s long."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(mean=np.log(2.9), sigma=0.55, size=count), 0.5, 15.0)


def batches(durations: np.ndarray, batch_size: int, grouped: bool, seed: int = 0) -> list[list[int]]:
    if grouped:
        order = list(LengthGroupedSampler(batch_size, lengths=durations.tolist(), generator=torch.Generator().manual_seed(seed)))
    else:
        order = np.random.default_rng(seed).permutation(len(durations)).tolist()
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def make_batch(durations, indices, dynamic: bool, max_seconds: float, seed: int):
    """Inputs for one batch: padded to its longest clip (dynamic) or to `max_seconds` (the paper)."""
    seconds = [min(float(durations[i]), max_seconds) for i in indices]
    batch = fake_batch(len(indices), seconds if dynamic else [max_seconds] * len(indices), seed=seed)
    if not dynamic:  # same real audio, padded to the 5 s crop
        lengths = torch.tensor([int(s * 16000) for s in seconds])
        batch["audio_attention_mask"] = (torch.arange(batch["input_values"].shape[1])[None] < lengths[:, None]).long()
        batch["input_values"] = batch["input_values"] * batch["audio_attention_mask"]
    return batch


def train_step(model, optimizer, batch) -> float:
    size = batch["input_ids"].shape[0]
    labels = torch.zeros(size, 7)
    labels[:, 4] = 1
    start = time.perf_counter()
    model(**batch, labels=labels, regression_labels=torch.full((size, 2), 3.0)).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=13462, help="utterances in the simulated epoch (KEMDy20: 13,462)")
    parser.add_argument("--steps", type=int, default=6, help="batches timed per arm, drawn at random from its epoch")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max_seconds", type=float, default=5.0)
    parser.add_argument("--representation", default="conv", choices=["conv", "hidden"])
    args = parser.parse_args()

    durations = kemdy20_like_durations(args.corpus)
    cropped = np.minimum(durations, args.max_seconds)
    print(f"durations: median {np.median(durations):.2f} s, {np.mean((durations >= 1) & (durations <= 6)):.0%} in 1-6 s, "
          f"{np.mean(durations > args.max_seconds):.0%} cropped at {args.max_seconds:g} s")
    arms = {
        "paper: random, padded to 5 s": (batches(durations, args.batch, grouped=False), False),
        "grouped + dynamic padding": (batches(durations, args.batch, grouped=True), True),
    }
    for name, (plan, dynamic) in arms.items():
        padded = sum(len(b) * (max(cropped[i] for i in b) if dynamic else args.max_seconds) for b in plan)
        print(f"{name:>30}: whole epoch pads {cropped.sum():.0f} s of audio to {padded:.0f} s ({padded / cropped.sum():.2f}x)")

    model = full_size_model(fusion="cat", audio_representation=args.representation).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, eps=1e-8)
    rng = np.random.default_rng(1)
    picks = {name: rng.choice(len(plan), size=args.steps, replace=False) for name, (plan, _) in arms.items()}
    train_step(model, optimizer, make_batch(durations, arms["grouped + dynamic padding"][0][0], True, args.max_seconds, 0))  # warm-up
    elapsed = {name: 0.0 for name in arms}
    utterances = {name: 0 for name in arms}
    for step in range(args.steps):  # alternate the arms so that machine noise falls on both alike
        for name, (plan, dynamic) in arms.items():
            indices = plan[picks[name][step]]
            elapsed[name] += train_step(model, optimizer, make_batch(durations, indices, dynamic, args.max_seconds, step))
            utterances[name] += len(indices)
    throughput = {name: utterances[name] / elapsed[name] for name in arms}
    for name in arms:
        print(f"{name:>30}: {throughput[name]:.2f} utterances/s over {args.steps} random batches of its epoch")
    ratio = throughput["grouped + dynamic padding"] / throughput["paper: random, padded to 5 s"]
    print(f"throughput ratio = {ratio:.2f}x  ({args.representation}, batch {args.batch}, {describe_machine()})")


if __name__ == "__main__":
    main()
