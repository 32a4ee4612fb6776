"""A second, independent sample-corpus kind: the espeak-ng text-to-speech engine speaks Korean sentences.

`write_sample_corpus(out_dir, voice="espeak")` (``kemd-emotion make-sample OUT --voice espeak``) writes it in the
same KEMDy layout, labels and quirks as the default corpus (the release writer is shared: this module only makes
the people, the words and the voice), so that the embedded default's sizes and settings can be chosen on a corpus
whose speech this package did not synthesise. It needs the ``espeak-ng`` program (Debian: ``apt-get install
espeak-ng``); the default corpus needs nothing.

How it differs from the default corpus (`kemd_emotion.data.sample`):

- Speakers: one espeak-ng voice per session (``ESPEAK_VOICES``: Korean with eight variants, four female, four
  male), each with its own base pitch, speaking rate, loudness and noise floor drawn from the seed. Session folds
  therefore test on voices never heard in training.
- Words: other sentences (``PHRASES``, ``PREDICATES``): a few neutral phrases (when, where, with whom, what) and a
  predicate whose valence (negative / positive, mild / strong) follows the latent valence; fear, disgust and
  surprise sometimes add a predicate of their own. Nothing in the words depends on arousal.
- Voice: espeak-ng's own controls follow arousal only: pitch (``-p``), speaking rate (``-s``, words per minute) and
  amplitude (``-a``), each around the speaker's base, with clip-to-clip noise on the arousal the voice expresses.
  Nothing in the audio depends on valence. The engine's 22.05 kHz output is resampled to the file's rate, its
  leading and trailing silence trimmed to 50 ms, and light white noise added.
- Durations follow the sentence: the writer picks the number of phrases from a target duration drawn in
  ``[min_seconds, max_seconds]``, and the clip is as long as the engine speaks it (1-4 s with the default size).

The generator (voices, controls, sentences, seed 0) was fixed before the embedded default was tuned on it and has
not been changed since (benchmarks/embedded_default_corpora.md).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .sample import CATEGORY_WORDS, _ReleaseWriter, _Segment, _Speaker

ESPEAK_SIZES: dict[str, dict] = {
    "tiny": dict(sessions=4, segments_per_session=10, min_seconds=1.0, max_seconds=2.5),
    "default": dict(sessions=8, segments_per_session=48, min_seconds=1.0, max_seconds=4.0),
}
"""Named sizes for `write_sample_corpus(size=..., voice="espeak")` (the default: 8 sessions, 384 segments)."""

ESPEAK_VOICES = (("ko+f1", "F"), ("ko+m1", "M"), ("ko+f2", "F"), ("ko+m2", "M"),
                 ("ko+f3", "F"), ("ko+m3", "M"), ("ko+f4", "F"), ("ko+m4", "M"))
"""(espeak-ng voice, gender) of session 1, 2, ...; with more sessions they repeat with other base settings."""
ENGINE_RATE = 22_050
PROGRAM = "espeak-ng"

PHRASES = ("지난주에", "아침마다", "주말 동안", "어젯밤에", "요즘", "방학 때", "퇴근하고", "비 오는 날",
           "도서관에서", "시장에서", "버스 안에서", "공원에서", "할머니 댁에서", "새 직장에서", "동네 카페에서",
           "동생이랑", "이웃들과", "선생님하고", "혼자서", "가족들과",
           "영화를 보고", "산책을 하면서", "김치찌개를 끓이고", "편지를 쓰고", "이사를 하고", "여행 준비를 하면서",
           "발표를 마치고", "운동을 하고")
"""Neutral phrases: when, where, with whom, what. None of them is a word of the default corpus."""
PREDICATES = {
    ("negative", "mild"): ("조금 서운했어요", "좀 지루했어요", "마음이 무거웠어요", "기운이 없었어요", "별로 안 좋았어요"),
    ("negative", "strong"): ("너무 슬펐어요", "정말 화가 났어요", "끔찍하게 힘들었어요", "완전히 망쳤어요",
                             "눈물이 났어요"),
    ("positive", "mild"): ("꽤 괜찮았어요", "마음이 놓였어요", "기분이 좋았어요", "뿌듯했어요", "즐거웠어요"),
    ("positive", "strong"): ("정말 행복했어요", "너무 신났어요", "기뻐서 웃었어요", "감동적이었어요",
                             "최고의 하루였어요"),
    ("neutral", ""): ("집에 왔어요", "이야기를 했어요", "그냥 있었어요", "밥을 먹었어요", "잠깐 쉬었어요"),
}
"""(polarity, strength) -> predicates; the sentence's valence is carried here."""
CATEGORY_PREDICATES = {"fear": ("무서워서 떨렸어요", "겁이 났어요"), "disgust": ("속이 메스꺼웠어요", "정말 역겨웠어요"),
                       "surprise": ("깜짝 놀랐어요", "믿을 수가 없었어요")}
SECONDS_OF_PREDICATE, SECONDS_PER_PHRASE = 1.2, 0.75
"""About how long espeak-ng speaks a bare predicate, and each phrase more, at its default rate (measured; they turn a
target duration into a number of phrases)."""


@dataclass
class _EspeakSpeaker(_Speaker):
    voice: str = "ko"
    pitch: float = 50.0  # espeak-ng -p (0-99) at neutral arousal
    words_per_minute: float = 175.0  # -s at neutral arousal
    amplitude: float = 100.0  # -a (0-200) at neutral arousal


def espeak_version() -> str | None:
    """``espeak-ng --version``'s first line, or None when the program is not installed."""
    if shutil.which(PROGRAM) is None:
        return None
    result = subprocess.run([PROGRAM, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip().splitlines()[0] if result.stdout.strip() else None


def speak(text: str, voice: str, pitch: float, words_per_minute: float, amplitude: float) -> np.ndarray:
    """espeak-ng's float32 samples at `ENGINE_RATE` for `text` in `voice` with the three prosody controls."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "utterance.wav")
        command = [PROGRAM, "-v", voice, "-p", str(int(round(pitch))), "-s", str(int(round(words_per_minute))),
                   "-a", str(int(round(amplitude))), "-w", path, text]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not os.path.exists(path):
            raise RuntimeError(f"{' '.join(command[:-1])} failed ({result.returncode}): {result.stderr.strip()}")
        audio, rate = sf.read(path, dtype="float32")
    if rate != ENGINE_RATE:
        raise RuntimeError(f"espeak-ng wrote {rate} Hz; expected {ENGINE_RATE}.")
    return audio


class EspeakReleaseWriter(_ReleaseWriter):
    """The release writer with espeak-ng's voices, other sentences, and arousal in the engine's controls."""

    @staticmethod
    def check_available() -> None:
        if espeak_version() is None:
            raise RuntimeError(f"voice='espeak' needs the {PROGRAM} program, which is not installed "
                               "(Debian / Ubuntu: apt-get install espeak-ng).")

    @staticmethod
    def engine_info() -> dict:
        return {"engine": espeak_version()}

    def _speakers(self, session_index: int, rng: np.random.Generator) -> list[_Speaker]:
        voice, gender = ESPEAK_VOICES[session_index % len(ESPEAK_VOICES)]
        speaker_id = f"User{session_index + 1:03d}{gender}"
        if self.name == "kemdy19":
            speaker_id = f"Sess{session_index + 1:02d}_{gender}"
        return [_EspeakSpeaker(
            speaker_id=speaker_id, gender=gender, f0=0.0, rate=0.0, tilt=0.0, formants=(0.0, 0.0),
            gain=1.0, noise=float(rng.uniform(0.002, 0.008)), voice=voice,
            pitch=float(rng.uniform(35, 65)), words_per_minute=float(rng.uniform(150, 190)),
            amplitude=float(rng.uniform(70, 110)),
        )]

    def _words(self, segment: _Segment, rng: np.random.Generator) -> list[str]:
        score = (segment.valence - 3.0) / 1.2 + rng.normal(0.0, 0.25)
        phrases = int(np.clip((segment.duration - SECONDS_OF_PREDICATE) // SECONDS_PER_PHRASE, 0, 4))
        words = [str(rng.choice(PHRASES)) for _ in range(phrases)]
        if rng.random() < min(0.9, 0.15 + 0.7 * abs(score)):
            positive = (score > 0) == (rng.random() < 0.9)
            strong = rng.random() < min(0.9, max(0.05, abs(score) - 0.4))
            key = ("positive" if positive else "negative", "strong" if strong else "mild")
        else:
            key = ("neutral", "")
        words.append(str(rng.choice(PREDICATES[key])))
        if segment.category in CATEGORY_WORDS and rng.random() < 0.35:
            words.append(str(rng.choice(CATEGORY_PREDICATES[segment.category])))
        return words

    def _audio(self, segment: _Segment, rng: np.random.Generator) -> np.ndarray:
        speaker = segment.speaker
        level = (segment.arousal - 3.0) / 1.5 + rng.normal(0.0, 0.25)  # as the default corpus: about -1.3 .. 1.3
        audio = speak(
            segment.text, speaker.voice,
            pitch=np.clip(speaker.pitch + 16.0 * level, 0, 99),
            words_per_minute=np.clip(speaker.words_per_minute * (1.0 + 0.2 * level), 80, 450),
            amplitude=np.clip(speaker.amplitude * 10.0 ** (0.25 * level), 5, 200),
        )
        audio = _trim_silence(audio, ENGINE_RATE, keep=0.05)
        audio = _resample(audio, ENGINE_RATE, segment.file_rate)
        audio = audio + speaker.noise * rng.standard_normal(audio.shape[0]).astype(np.float32)
        peak = np.abs(audio).max()
        if peak > 0.95:
            audio *= 0.95 / peak
        segment.duration = audio.shape[0] / segment.file_rate
        return audio.astype(np.float32)


def _trim_silence(audio: np.ndarray, rate: int, keep: float, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio
    margin = int(keep * rate)
    return audio[max(loud[0] - margin, 0):loud[-1] + margin]


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return audio
    from scipy.signal import resample_poly

    common = math.gcd(rate, target)
    return resample_poly(audio, target // common, rate // common).astype(np.float32)


__all__ = ["ESPEAK_SIZES", "ESPEAK_VOICES", "EspeakReleaseWriter", "espeak_version", "speak", "PHRASES", "PREDICATES"]
