"""Q1: forward cost of audio_representation="conv" (the paper's 512-d conv features) vs "hidden" (12 layers).

Full-size encoders (klue/bert-base + wav2vec2-base shapes), 5 s clips, batch 4, inference mode.

    python benchmarks/bench_audio_representation.py [--batch 4 --seconds 5 --repeats 3]
"""

import argparse

import torch

from _common import describe_machine, fake_batch, full_size_model, timeit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    batch = {k: v.to(args.device) for k, v in fake_batch(args.batch, args.seconds).items()}
    results = {}
    for representation in ("hidden", "conv"):
        model = full_size_model(fusion="cat", audio_representation=representation).to(args.device).eval()

        def forward():
            with torch.inference_mode():
                model(**batch)
            if args.device == "cuda":
                torch.cuda.synchronize()

        results[representation] = timeit(forward, repeats=args.repeats)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{representation:>6}: {results[representation]:.3f} s per batch  ({params:.1f} M parameters)")
        del model
    print(f"conv / hidden time = {results['conv'] / results['hidden']:.3f}  ({describe_machine()})")


if __name__ == "__main__":
    main()
