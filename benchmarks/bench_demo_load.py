"""Load on the demo's HTTP API: latency and throughput of `kemd-emotion demo` under concurrent clients.

Question: how many requests per second does one demo server answer, how long does a request take with 8 clients at
once (p50 / p95) against one at a time, and does any request fail?

It starts `kemd-emotion demo --model MODEL` on 127.0.0.1 (a free port; nothing else is contacted), sends
`--sequential` requests one at a time, then `--requests` requests from `--concurrency` clients (gradio_client, the
/analyse endpoint the page uses: scores, figures and the pipeline's JSON), and stops the server. The requests cycle
through the demo's example clips (four of 1.5-1.8 s and one of 12 s, which is scored window by window). It stops by
itself: after the requests, or after `--deadline` seconds, whichever comes first.

    python benchmarks/bench_demo_load.py --model runs/emotion/add/final      # default: 40 one at a time, 200 x 8
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def tiny_checkpoint(directory: Path) -> Path:
    """A tiny random model (2 s crop, as the main job's) for a run without --model."""
    import torch

    from kemd_emotion import KlueWav2Vec2ForEmotion
    from kemd_emotion.hub import save_checkpoint
    from kemd_emotion.small_encoders import tiny_config, tiny_processor

    processor = tiny_processor(max_audio_seconds=2.0)
    torch.manual_seed(0)
    model = KlueWav2Vec2ForEmotion(tiny_config(fusion="add", vocab_size=len(processor.tokenizer))).eval()
    return save_checkpoint(model, processor, directory)


def start_server(model: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "kemd_emotion.cli", "demo", "--model", model, "--host", HOST,
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the demo exited:\n{log_path.read_text()[-2000:]}")
        try:
            if opener.open(url, timeout=5).status == 200:
                return process, url
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("the demo did not start within 300 s")


def run_phase(url: str, inputs: list[tuple[str, str]], count: int, concurrency: int, deadline: float) -> dict:
    """Send `count` requests from `concurrency` clients; returns latencies (s), failures and wall time."""
    from gradio_client import Client, handle_file

    local = threading.local()

    def one(index: int) -> float:
        if time.monotonic() > deadline:
            raise TimeoutError("deadline reached before this request was sent")
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        path, text = inputs[index % len(inputs)]
        start = time.perf_counter()
        result = local.client.predict(handle_file(path), text, api_name="/analyse")
        elapsed = time.perf_counter() - start
        if not result[-1]["emotions"]:
            raise RuntimeError("an answer without emotions")
        return elapsed

    latencies, failures = [], []
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in as_completed([pool.submit(one, i) for i in range(count)]):
            try:
                latencies.append(future.result())
            except Exception as error:  # counted and reported, never hidden
                failures.append(repr(error))
    return {"latencies": latencies, "failures": failures, "wall": time.perf_counter() - start}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(name: str, phase: dict) -> str:
    lat = phase["latencies"]
    return (f"{name}: {len(lat)} answered, {len(phase['failures'])} failed, p50 {percentile(lat, 50) * 1000:.0f} ms, "
            f"p95 {percentile(lat, 95) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms, "
            f"{len(lat) / phase['wall']:.2f} requests/s over {phase['wall']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint folder (default: a tiny random model)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sequential", type=int, default=40, help="requests one at a time first (the baseline)")
    parser.add_argument("--deadline", type=float, default=900, help="stop sending after this many seconds")
    args = parser.parse_args()

    from kemd_emotion.demo import write_examples

    work = Path(tempfile.mkdtemp(prefix="kemd_demo_load_"))
    model = args.model or str(tiny_checkpoint(work / "tiny"))
    inputs = [(path, text) for path, text, _ in write_examples(work / "clips")]
    process, url = start_server(model, work / "server.log")
    deadline = time.monotonic() + args.deadline
    try:
        print(f"demo on {url} with {model}; {len(inputs)} clips in rotation")
        run_phase(url, inputs, len(inputs), 1, deadline)  # warm-up: first calls pay for lazy imports
        sequential = run_phase(url, inputs, args.sequential, 1, deadline)
        print(report("one at a time", sequential))
        concurrent = run_phase(url, inputs, args.requests, args.concurrency, deadline)
        print(report(f"{args.concurrency} at a time", concurrent))
        ratio = (len(concurrent["latencies"]) / concurrent["wall"]) / (len(sequential["latencies"]) / sequential["wall"])
        print(f"throughput, {args.concurrency} clients vs one: {ratio:.2f}x")
        for failure in (sequential["failures"] + concurrent["failures"])[:5]:
            print("failure:", failure)
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = (work / "server.log").read_text()
    print("server log has a traceback" if "Traceback" in log else "server log: no traceback")
    if sequential["failures"] or concurrent["failures"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
