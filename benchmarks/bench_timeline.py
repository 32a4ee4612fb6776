"""Real-time factor of a conversation's timeline: `segment="utterances"` with the real whisper-base as `asr_model`
on a recording without text, scored by a tiny emotion model; where the time goes (decoding, ASR, scoring).

    python tests/helpers/real_weights.py          # once: builds the whisper-base folder this uses
    python benchmarks/bench_timeline.py [--seconds 120]

The recording: espeak-ng's Korean voice saying a few sentences in turn, 0.8 s of quiet noise between them, until
`--seconds` (default 2 minutes), written as a 16 kHz WAV file and passed by path, so that decoding is part of the
call. One timed call of the pipeline (after an untimed warm-up on a short clip that loads Whisper):

- decoding: reading the WAV file and the input checks (the pipeline's `_read`),
- ASR: Whisper's one pass over the whole recording with timestamps (`Transcriber.timestamped`: long-form
  decoding past 30 s),
- scoring: everything else (cutting at Whisper's segments, the emotion model on every utterance, the timeline).

The real-time factor is the call's wall time over the recording's duration (below 1: faster than real time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import soundfile
import torch
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.real_weights import find_test_weights  # noqa: E402
from transformers import pipeline  # noqa: E402

from kemd_emotion import KlueWav2Vec2ForEmotion  # noqa: E402
from kemd_emotion.small_encoders import tiny_config, tiny_processor  # noqa: E402

RATE = 16000
WHISPER_KOREAN = {"generate_kwargs": {"language": "korean", "task": "transcribe", "max_new_tokens": 200}}
"""Korean, given (see tests/helpers/korean_speech.py); 200 new tokens per 30 s window: room for ~8 sentences."""
SENTENCES = [
    "저는 지금 너무 화가 나요.",
    "왜 약속을 지키지 않았어요?",
    "오늘은 정말 기분이 좋아요.",
    "그 이야기를 들으니까 너무 슬퍼요.",
    "괜찮아요, 다음에 다시 만나요.",
]


def korean_recording(seconds: float, folder: Path) -> tuple[np.ndarray, int]:
    """espeak-ng's Korean sentences in turn with 0.8 s pauses of quiet noise, `seconds` long; (audio, sentences)."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("this benchmark speaks Korean with espeak-ng: apt-get install espeak-ng")
    spoken = []
    for number, sentence in enumerate(SENTENCES):
        path = folder / f"s{number}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), sentence], check=True, capture_output=True)
        samples, rate = soundfile.read(str(path), dtype="float32")
        spoken.append(resample_poly(samples, RATE, rate).astype(np.float32))
    rng = np.random.default_rng(0)
    parts, length, count = [], 0, 0
    while length < seconds * RATE:
        pause = (0.001 * rng.standard_normal(int(0.8 * RATE))).astype(np.float32)
        parts += [pause, spoken[count % len(spoken)]]
        length += pause.shape[0] + spoken[count % len(spoken)].shape[0]
        count += 1
    return np.concatenate(parts)[: int(seconds * RATE)], count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    weights = find_test_weights()
    if weights is None:
        raise SystemExit("build the real test weights first: python tests/helpers/real_weights.py")
    folder = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    audio, sentences = korean_recording(args.seconds, folder)
    path = folder / "conversation.wav"
    soundfile.write(path, audio, RATE, subtype="PCM_16")

    processor = tiny_processor(vocab_size=300)
    torch.manual_seed(0)
    model = KlueWav2Vec2ForEmotion(tiny_config(fusion="cat", vocab_size=len(processor.tokenizer))).eval()
    classifier = pipeline("emotion-multimodal", model=model, processor=processor, device="cpu",
                          asr_model=str(weights.whisper), asr_kwargs=WHISPER_KOREAN)
    classifier({"audio": audio[: 3 * RATE]}, segment="utterances")  # warm-up: loads Whisper

    spent = {"decoding": 0.0, "asr": 0.0}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    classifier._read = timed("decoding", classifier._read)
    classifier.transcriber.timestamped = timed("asr", classifier.transcriber.timestamped)
    start = time.perf_counter()
    result = classifier({"audio": str(path)}, segment="utterances")
    total = time.perf_counter() - start
    scoring = total - spent["decoding"] - spent["asr"]
    duration = audio.shape[0] / RATE
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"recording: {duration:.1f} s, {sentences} sentences; segmentation={result['segmentation']!r}, "
          f"{len(result['utterances'])} utterances")
    print(f"total {total:.2f} s -> real-time factor {total / duration:.3f}")
    for name, seconds in (("decoding", spent["decoding"]), ("ASR (whisper-base)", spent["asr"]),
                          ("scoring (tiny model)", scoring)):
        print(f"  {name:22s} {seconds:8.2f} s  {100 * seconds / total:5.1f} %  RTF {seconds / duration:.4f}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
