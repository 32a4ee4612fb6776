"""Our own bottleneck: wav2vec2-base's first conv layer normalised over real frames only (padding invariance).

`masked_group_norm` has two implementations, tested equal: in eager mode one fused `group_norm` per sample on its
real slice (`masked_group_norm_per_sample`), and, while a graph is captured (torch.export, jit.trace, compile), tensor
operations over the padded batch (`masked_group_norm_tensor_ops`), since a graph cannot hold the per-sample lengths
as Python numbers. The question: is the tensor-op version close enough to the loop to ship it alone? Forward +
backward on a batch of 8 clips of 1.7-5 s (512 channels x 16,000 frames at 5 s), as in a training step of the
full-size model; arms alternate, median of the rounds. `--compile` adds the tensor-op version under
`torch.compile` (what a compiled training step runs; the compile time is not counted).

    python benchmarks/bench_group_norm.py [--rounds 5] [--compile]
"""

import argparse
import statistics
import time

import torch

from _common import describe_machine
from kemd_emotion.modeling_klue_wav2vec2 import masked_group_norm_per_sample, masked_group_norm_tensor_ops


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(512, 512)
    x = torch.randn(8, 512, 16000, requires_grad=True)
    upstream = torch.randn(8, 512, 16000)
    lengths = torch.tensor([16000, 14000, 12500, 11000, 9000, 7600, 6400, 5400])
    torch.testing.assert_close(masked_group_norm_tensor_ops(x, norm, lengths),
                               masked_group_norm_per_sample(x, norm, lengths), atol=1e-4, rtol=1e-4)
    arms = {"eager path: per-sample group_norm": masked_group_norm_per_sample,
            "graph path: tensor ops": masked_group_norm_tensor_ops}
    if args.compile:
        arms["graph path under torch.compile"] = torch.compile(masked_group_norm_tensor_ops, dynamic=False)
    for fn in arms.values():  # warm-up (and compile)
        (fn(x, norm, lengths) * upstream).sum().backward()
    times = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, fn in arms.items():
            start = time.perf_counter()
            (fn(x, norm, lengths) * upstream).sum().backward()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:>34}: {value * 1000:.0f} ms forward + backward  (rounds: "
              f"{', '.join(f'{t * 1000:.0f}' for t in times[name])})")
    loop = medians["eager path: per-sample group_norm"]
    for name, value in medians.items():
        if value is not loop:
            print(f"{name} / per-sample loop = {value / loop:.2f}x the time")
    print(describe_machine())


if __name__ == "__main__":
    main()
