"""Q6b: collator throughput (utterances/s read, resampled, down-mixed, cropped, normalised and padded).

Two ways of feeding the same utterances: 16 kHz mono files (the KEMDy norm: no resampling) vs the same audio as
44.1 kHz stereo files (read, down-mixed and resampled by soxr); and, for 12 s recordings cropped to the paper's 5 s,
reading only the first 5 s (what `load_audio(max_seconds=...)` does) vs decoding whole files and cropping after.

    python benchmarks/bench_collator.py [--utterances 256 --batch 32]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from _common import describe_machine, timeit
from kemd_emotion.data import KemdyCollator
from kemd_emotion.processing_klue_wav2vec2 import load_audio, to_mono
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_processor


class WholeFileCollator(KemdyCollator):
    """The "before": decode whole files; the processor still crops to 5 s."""

    crop_seconds = None


def write_files(folder: Path, count: int, seconds: tuple[float, float], rate: int, channels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        samples = (0.1 * rng.standard_normal((int(rng.uniform(*seconds) * rate), channels))).astype(np.float32)
        path = folder / f"{rate}_{channels}_{i}.wav"
        soundfile.write(path, samples if channels > 1 else samples[:, 0], rate)
        rows.append({"text": DEFAULT_TEXTS[i % 5], "audio": str(path), "emotion": ["neutral"], "arousal": 3.0, "valence": 3.0})
    return rows


def throughput(collator, rows, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        collator(rows[i : i + batch])
    return len(rows) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    processor = tiny_processor(DEFAULT_TEXTS, vocab_size=300, max_audio_seconds=5.0)
    collator = KemdyCollator(processor)
    load_audio(write_files(Path(tempfile.mkdtemp()), 1, (1, 1), 44100, 2)[0]["audio"])  # librosa/soxr import, untimed

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        native = write_files(tmp, args.utterances, (1.0, 6.0), 16000, 1)
        resampled = write_files(tmp, args.utterances, (1.0, 6.0), 44100, 2)
        a, b = throughput(collator, native, args.batch), throughput(collator, resampled, args.batch)
        print(f"  16 kHz mono files: {a:7.1f} utterances/s")
        print(f"44.1 kHz stereo files: {b:7.1f} utterances/s  (16 kHz / 44.1 kHz stereo = {a / b:.2f}x)")

        long_rows = write_files(tmp, args.utterances // 4, (12.0, 12.0), 16000, 1)
        whole = WholeFileCollator(processor)
        c, d = throughput(collator, long_rows, args.batch), throughput(whole, long_rows, args.batch)
        print(f"12 s files, read 5 s: {c:7.1f} utterances/s; read whole and crop: {d:7.1f} ({c / d:.2f}x)")

    # Our own bottleneck, found by profiling the stereo row: down-mixing with .mean() over the channel axis.
    # soundfile gives (frames, channels); load_audio passes its transpose, a strided (channels, frames) view.
    stereo = np.random.default_rng(0).standard_normal((44100 * 4, 2)).astype(np.float32).T
    before = timeit(lambda: stereo.mean(axis=0), repeats=20)
    after = timeit(lambda: to_mono(stereo), repeats=20)
    print(f"down-mix of a 4 s stereo clip: .mean() {before * 1e3:.2f} ms, to_mono (dot) {after * 1e3:.2f} ms "
          f"({before / after:.1f}x)")
    print(describe_machine())


if __name__ == "__main__":
    main()
