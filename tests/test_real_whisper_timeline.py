"""`segment="utterances"` with the real whisper-base as `asr_model`: the recording is cut at Whisper's own segment
timestamps and each utterance is scored with Whisper's words for it (one transcription, no second pass).

Two espeak-ng Korean sentences with about 1 s of silence between them (6.4 s in all, so whisper-base on a CPU takes
seconds), scored by a tiny emotion model (`tiny_model_factory`, `tiny_processor`: its 5 s `max_audio_seconds`
leaves each sentence whole). whisper-base with `language="korean"` cut this recording at 0-3 s and 3-6 s (its
timestamps are coarse: the sentences are at 0.5-2.66 s and 3.66-5.88 s), so the test asserts that each sentence's
middle falls in its own utterance rather than a tolerance on every edge.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile
from helpers.korean_speech import HANGUL, WHISPER_KOREAN
from helpers.outputs import flat
from helpers.real_weights import real_weights_required
from scipy.signal import resample_poly
from transformers import pipeline

pytestmark = pytest.mark.realweights

RATE = 16000
SENTENCES = ["저는 지금 너무 화가 나요.", "왜 약속을 지키지 않았어요?"]
PAUSE_SECONDS = 1.0
ATOL = 1e-5


@pytest.fixture(scope="module")
def conversation(tmp_path_factory) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """`SENTENCES` spoken by espeak-ng's Korean voice (resampled to 16 kHz), 0.5 s of silence before the first, 1 s
    between them and 0.5 s after: `(audio, [(start, end) s of each sentence])`."""
    if shutil.which("espeak-ng") is None:
        message = "Korean speech for the ASR tests comes from espeak-ng: apt-get install espeak-ng"
        (pytest.fail if real_weights_required() else pytest.skip)(message)
    folder = tmp_path_factory.mktemp("speech")
    parts, placed, position = [], [], 0
    for number, sentence in enumerate(SENTENCES):
        path = folder / f"sentence{number}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), sentence], check=True, capture_output=True)
        samples, rate = soundfile.read(str(path), dtype="float32")
        assert rate == 22050
        speech = resample_poly(samples, 320, 441).astype(np.float32)
        pause = np.zeros(int((PAUSE_SECONDS if number else PAUSE_SECONDS / 2) * RATE), dtype=np.float32)
        parts += [pause, speech]
        placed.append(((position + len(pause)) / RATE, (position + len(pause) + len(speech)) / RATE))
        position += len(pause) + len(speech)
    parts.append(np.zeros(RATE // 2, dtype=np.float32))
    return np.concatenate(parts), placed


@pytest.fixture(scope="module")
def timeline(real_weights_dirs, tiny_model_factory, tiny_processor, conversation):
    classifier = pipeline("emotion-multimodal", model=tiny_model_factory("cat", seed=5), processor=tiny_processor,
                          device="cpu", asr_model=str(real_weights_dirs.whisper), asr_kwargs=WHISPER_KOREAN)
    return classifier, classifier({"audio": conversation[0]}, segment="utterances")


def hangul_share(text: str) -> float:
    letters = [char for char in text if not char.isspace() and char not in ".,?!"]
    return sum(bool(HANGUL.match(char)) for char in letters) / max(1, len(letters))


def test_the_recording_is_cut_at_whispers_timestamps(timeline, conversation):
    _, result = timeline
    audio, placed = conversation
    assert result["segmentation"] == "asr_timestamps"
    assert result["transcript_source"] == "asr"
    utterances = result["utterances"]
    assert len(utterances) == len(SENTENCES), utterances
    previous_end = 0.0
    for utterance in utterances:  # ordered, not overlapping, inside the recording
        assert previous_end <= utterance["start"] < utterance["end"] <= audio.shape[0] / RATE
        previous_end = utterance["end"]
    for utterance, (start, end) in zip(utterances, placed):
        middle = (start + end) / 2
        assert utterance["start"] <= middle <= utterance["end"], (utterance["start"], utterance["end"], start, end)
        assert utterance["start"] <= start + 0.75 and utterance["end"] >= end - 0.75  # most of its sentence


def test_each_utterance_carries_whispers_words_for_it(timeline):
    _, result = timeline
    for utterance in result["utterances"]:
        assert utterance["transcript_source"] == "asr"
        assert utterance["transcript"] and hangul_share(utterance["transcript"]) > 0.8, utterance["transcript"]
    assert result["transcript"] == " ".join(u["transcript"] for u in result["utterances"])
    first, second = (u["transcript"] for u in result["utterances"])
    assert "약속" in second or len(set(HANGUL.findall(second)) & set(SENTENCES[1])) >= 4, second
    assert len(set(HANGUL.findall(first)) & set(SENTENCES[0])) >= 2, first


def test_each_utterance_is_scored_as_its_slice_alone(timeline, conversation):
    classifier, result = timeline
    audio, _ = conversation
    for utterance in result["utterances"]:
        clip = audio[round(utterance["start"] * RATE): round(utterance["end"] * RATE)]
        alone = classifier({"text": utterance["transcript"], "audio": clip})
        np.testing.assert_allclose(flat(utterance), flat(alone), atol=ATOL)
    assert len(result["emotions"]) == 7 and np.isfinite([result["arousal"], result["valence"]]).all()
