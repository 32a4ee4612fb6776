"""Q5: peak memory of one training step of the full-size model (batch 8, 5 s audio, "hidden" speech features):
plain vs gradient checkpointing vs a frozen wav2vec2 feature encoder (and both).

Each variant runs in its own process so that peaks do not mix: on CPU the figure is the process' peak resident
memory (ru_maxrss) minus its resident memory before the step; on GPU, torch.cuda.max_memory_allocated.

    python benchmarks/bench_memory.py [--batch 8 --seconds 5]
"""

import argparse
import json
import resource
import subprocess
import sys

VARIANTS = {
    "plain": {},
    "checkpointing": {"checkpointing": True},
    "frozen feature encoder": {"freeze_feature_encoder": True},
    "checkpointing + frozen": {"checkpointing": True, "freeze_feature_encoder": True},
}


def run_variant(batch_size: int, seconds: float, checkpointing: bool = False, freeze_feature_encoder: bool = False):
    import torch

    from _common import fake_batch, full_size_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = full_size_model(fusion="cat", audio_representation="hidden", freeze_feature_encoder=freeze_feature_encoder)
    model.to(device).train()
    if checkpointing:
        model.activation_checkpointing_enable()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, eps=1e-8)
    batch = {k: v.to(device) for k, v in fake_batch(batch_size, seconds).items()}
    labels = torch.zeros(batch_size, 7, device=device)
    labels[:, 4] = 1
    targets = torch.full((batch_size, 2), 3.0, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    loss = model(**batch, labels=labels, regression_labels=targets).loss
    loss.backward()
    optimizer.step()
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"before_gib": before / 2**30, "peak_gib": peak / 2**30, "step_gib": (peak - before) / 2**30}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant is not None:
        print(json.dumps(run_variant(args.batch, args.seconds, **VARIANTS[args.variant])))
        return

    results = {}
    for name in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--batch", str(args.batch), "--seconds", str(args.seconds), "--variant", name],
            capture_output=True, text=True, check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:>24}: peak {r['peak_gib']:.2f} GiB, of which the step {r['step_gib']:.2f} GiB")
    plain = results["plain"]["step_gib"]
    for name in list(VARIANTS)[1:]:
        print(f"{name} / plain (step memory) = {results[name]['step_gib'] / plain:.3f}")


if __name__ == "__main__":
    main()
