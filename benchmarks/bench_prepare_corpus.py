"""Q: how long does preparing a KEMDy20-sized release take, and how much memory, when nothing is decoded?

Writes a KEMDy20-sized sample release (40 sessions, 13,462 segments, short clips, quirks included), then, each in
a fresh process so that peaks do not mix:

1. prepares it with `load_kemdy` into an empty cache (durations come from the wav headers; every soundfile
   decoding call is counted, and must stay at zero), then loads it again from the cache;
2. the two ways to get the clips' durations, on the same files: reading each header (`soundfile.info`, what the
   builder does) and decoding each file (`soundfile.read`, what a builder that decoded audio would do).

Memory is the peak of the process' resident memory while preparing (sampled every 10 ms by a thread) minus its
resident memory just before (after the imports and a warm-up preparation of a tiny release, so that lazily imported
code does not count).

    python benchmarks/bench_prepare_corpus.py [--segments 13462 --sessions 40 --out DIR --keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRss:
    """Samples the resident memory in a thread while the `with` block runs; `.peak_mb` is the highest sample."""

    def __enter__(self):
        self.peak_mb, self._done = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.wait(0.01):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


def child_prepare(root: str, cache: str) -> dict:
    import datasets
    import soundfile

    from kemd_emotion.data import load_kemdy

    datasets.disable_progress_bars()
    decodes = {"n": 0}

    def counting(original):
        def wrapper(*args, **kwargs):
            decodes["n"] += 1
            return original(*args, **kwargs)

        return wrapper

    soundfile.read = counting(soundfile.read)
    soundfile.SoundFile.read = counting(soundfile.SoundFile.read)
    soundfile.SoundFile.buffer_read = counting(soundfile.SoundFile.buffer_read)

    with tempfile.TemporaryDirectory() as warm:  # import what preparing imports lazily, outside the measurement
        from kemd_emotion.data import write_sample_corpus

        write_sample_corpus(os.path.join(warm, "r"), size="tiny")
        load_kemdy(os.path.join(warm, "r"), cache_dir=os.path.join(warm, "c"))
    decodes["n"] = 0
    baseline = _rss_mb()
    with _PeakRss() as memory:
        start = time.perf_counter()
        dataset, report = load_kemdy(root, cache_dir=cache, return_report=True)
        prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    again, cached = load_kemdy(root, cache_dir=cache, return_report=True)
    cached_s = time.perf_counter() - start
    assert cached.from_cache and len(again) == len(dataset)
    return {
        "rows": len(dataset), "skipped": report.skip_counts, "prepare_s": prepare_s, "cached_s": cached_s,
        "peak_mb": memory.peak_mb - baseline, "decodes": decodes["n"],
        "audio_hours": sum(dataset["duration"]) / 3600,
    }


def child_durations(root: str, cache: str) -> dict:
    import soundfile

    from kemd_emotion.data import load_kemdy

    paths = load_kemdy(root, cache_dir=cache)["audio"]
    start = time.perf_counter()
    from_headers = sum(info.frames / info.samplerate for info in map(soundfile.info, paths))
    header_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = 0.0
    for path in paths:
        samples, rate = soundfile.read(path, dtype="float32")
        decoded += len(samples) / rate
    decode_s = time.perf_counter() - start
    return {"header_s": header_s, "decode_s": decode_s, "agree": abs(from_headers - decoded) < 1e-6 * len(paths),
            "audio_hours": decoded / 3600}


def _run_child(which: str, root: str, cache: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", which, "--out", root, "--cache", cache],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=13_462, help="KEMDy20 has 13,462")
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--min-seconds", type=float, default=0.1)
    parser.add_argument("--max-seconds", type=float, default=0.3)
    parser.add_argument("--out", default=None, help="release folder (default: a temporary one)")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the written release")
    parser.add_argument("--child", choices=("prepare", "durations"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = (child_prepare if args.child == "prepare" else child_durations)(args.out, args.cache)
        print(json.dumps(result))
        return

    from kemd_emotion.data import write_sample_corpus

    work = tempfile.mkdtemp(prefix="kemdy-bench-")
    root = args.out or os.path.join(work, "KEMDy20_v1_1")
    try:
        start = time.perf_counter()
        manifest = write_sample_corpus(root, "kemdy20", sessions=args.sessions, num_segments=args.segments,
                                       min_seconds=args.min_seconds, max_seconds=args.max_seconds, overwrite=True)
        write_s = time.perf_counter() - start
        size_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs) / 2**20
        prepared = _run_child("prepare", root, os.path.join(work, "cache-prepare"))
        durations = _run_child("durations", root, os.path.join(work, "cache-durations"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    import platform

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"release: {len(manifest.rows)} annotation rows, {args.sessions} sessions, "
          f"{args.min_seconds}-{args.max_seconds} s clips, {size_mb:.0f} MB on disk, written in {write_s:.1f} s")
    print(f"rows kept: {prepared['rows']}, skipped: {prepared['skipped']}, audio: {prepared['audio_hours']:.2f} h")
    print()
    print("| step | wall time | peak memory above baseline | audio decoded |")
    print("|---|---|---|---|")
    print(f"| prepare (`load_kemdy`, empty cache) | {prepared['prepare_s']:.2f} s | {prepared['peak_mb']:.0f} MB "
          f"| {prepared['decodes']} calls |")
    print(f"| load again from the cache | {prepared['cached_s'] * 1000:.0f} ms | | 0 |")
    print()
    print("| durations of all clips | wall time |")
    print("|---|---|")
    print(f"| from the headers (`soundfile.info`, as the builder does) | {durations['header_s']:.2f} s |")
    print(f"| by decoding every file (`soundfile.read`) | {durations['decode_s']:.2f} s |")
    print(f"\ndecoding / headers: {durations['decode_s'] / durations['header_s']:.1f}x; durations agree: "
          f"{durations['agree']}")
    if prepared["decodes"]:
        raise SystemExit(f"preparing decoded audio {prepared['decodes']} times; it must read headers only")


if __name__ == "__main__":
    main()
