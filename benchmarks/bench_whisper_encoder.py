"""Whisper's encoder at each clip's own length vs transformers' WhisperEncoder on the same clips padded to 30 s.

transformers' `WhisperEncoder.forward` takes exactly 3000 mel frames: every clip is padded to 30 s and all 1500
encoder positions are computed and attended to, whatever the clip's length. `whisper_encoder_states` (what
`KlueWav2Vec2ForEmotion` runs) runs the same modules on a batch as long as its longest clip, with the padded frames
masked. The question: how much faster is that on short emotion clips, and are its outputs of the real frames the
same as each clip's alone (batch-invariant)? whisper-base shapes (d_model 512, 6 layers, 8 heads, 80 mel bins;
`WhisperConfig()`'s defaults are smaller), random weights, float32, `torch.inference_mode()`, sdpa attention. A batch of
8 ragged clips of 2-5 s; arms alternate within each round, median of the rounds.

    python benchmarks/bench_whisper_encoder.py [--rounds 5] [--batch 8]
"""

import argparse
import statistics
import time

import numpy as np
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from _common import describe_machine
from kemd_emotion.modeling_klue_wav2vec2 import whisper_encoder_states

WHISPER_BASE = dict(d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048, num_mel_bins=80,
                    max_source_positions=1500, decoder_layers=1, dropout=0.0, attention_dropout=0.0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    torch.manual_seed(0)
    encoder = WhisperEncoder(WhisperConfig(**WHISPER_BASE)).eval()
    seconds = np.linspace(2.0, 5.0, args.batch)
    mel_lengths = torch.tensor([int(s * 100) for s in seconds])
    clips = [torch.randn(1, 80, int(length)) for length in mel_lengths]
    longest = int(mel_lengths.max())
    ragged = torch.zeros(args.batch, 80, longest)
    thirty = torch.zeros(args.batch, 80, 3000)  # what WhisperEncoder must be given
    for row, clip in enumerate(clips):
        ragged[row, :, : clip.shape[-1]] = clip
        thirty[row, :, : clip.shape[-1]] = clip

    def ours():
        return whisper_encoder_states(encoder, ragged, mel_lengths)[0][-1]

    def theirs():
        return encoder(thirty).last_hidden_state

    with torch.inference_mode():
        # Batch invariance of the real frames: ours in the batch vs each clip alone; theirs cannot change with the
        # batch (every clip is 30 s), which is what it pays for.
        batched = ours()
        worst = 0.0
        for row, clip in enumerate(clips):
            alone = whisper_encoder_states(encoder, clip, mel_lengths[row : row + 1])[0][-1]
            frames = alone.shape[1]
            worst = max(worst, float((batched[row, :frames] - alone[0]).abs().max()))
        full = theirs()
        for fn in (ours, theirs):  # warm-up
            fn()
        times = {"ours (own length, masked)": [], "transformers (padded to 30 s)": []}
        for _ in range(args.rounds):
            for name, fn in zip(times, (ours, theirs)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"batch of {args.batch} clips of {seconds.min():g}-{seconds.max():g} s (mean {seconds.mean():.2f} s); "
          f"ours runs {(longest - 1) // 2 + 1} encoder frames, transformers' {full.shape[1]}")
    for name, value in medians.items():
        print(f"{name:>32}: {value * 1000:.0f} ms  (rounds: {', '.join(f'{t * 1000:.0f}' for t in times[name])})")
    ours_time, theirs_time = medians["ours (own length, masked)"], medians["transformers (padded to 30 s)"]
    print(f"speed-up: {theirs_time / ours_time:.2f}x (transformers' time / ours)")
    print(f"batch invariance (ours, real frames, batch vs alone): max |diff| {worst:.1e}")
    print(describe_machine())


if __name__ == "__main__":
    main()
