"""Our own bottleneck: wav2vec2-base's first conv layer normalised over real frames only (padding invariance).

"before" is the first implementation (masked sums over the padded batch); "after" is the shipped
`masked_group_norm` (one fused group_norm per sample on its real slice). Forward + backward on a batch of 8
clips of 1.7-5 s (512 channels x 16,000 frames at 5 s), as in a training step of the full-size model.

    python benchmarks/bench_group_norm.py
"""

import torch

from _common import describe_machine, timeit
from kemd_emotion.modeling_klue_wav2vec2 import lengths_to_mask, masked_group_norm


def masked_reductions(hidden_states, norm, lengths):
    """The "before": statistics from masked sums over the whole padded batch."""
    batch, channels, time = hidden_states.shape
    mask = lengths_to_mask(lengths, time)
    grouped = hidden_states.reshape(batch, norm.num_groups, channels // norm.num_groups, time)
    weights = mask.to(hidden_states.dtype)[:, None, None, :]
    count = weights.sum(dim=(2, 3), keepdim=True) * (channels // norm.num_groups)
    mean = (grouped * weights).sum(dim=(2, 3), keepdim=True) / count
    variance = (((grouped - mean) * weights) ** 2).sum(dim=(2, 3), keepdim=True) / count
    normalised = ((grouped - mean) * torch.rsqrt(variance + norm.eps)).reshape(batch, channels, time)
    normalised = normalised * norm.weight[None, :, None] + norm.bias[None, :, None]
    return normalised * mask[:, None, :].to(normalised.dtype)


def main():
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(512, 512)
    x = torch.randn(8, 512, 16000, requires_grad=True)
    lengths = torch.tensor([16000, 14000, 12500, 11000, 9000, 7600, 6400, 5400])
    torch.testing.assert_close(masked_reductions(x, norm, lengths), masked_group_norm(x, norm, lengths), atol=1e-4, rtol=1e-4)
    results = {}
    for name, fn in (("before: masked reductions", masked_reductions), ("after: per-sample group_norm", masked_group_norm)):
        results[name] = timeit(lambda: fn(x, norm, lengths).square().mean().backward(), repeats=5)
        print(f"{name:>30}: {results[name] * 1000:.0f} ms forward + backward")
    before, after = results.values()
    print(f"speed-up = {before / after:.2f}x  ({describe_machine()})")


if __name__ == "__main__":
    main()
