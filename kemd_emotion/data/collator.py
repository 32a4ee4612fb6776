"""Batches KEMDy rows for `KlueWav2Vec2ForEmotion`: reads the audio, pads dynamically, builds the targets."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers.utils import logging

from ..configuration_klue_wav2vec2 import EMOTIONS
from ..processing_klue_wav2vec2 import MIN_AUDIO_SAMPLES, load_audio, resample, to_mono

logger = logging.get_logger(__name__)


def multi_hot(emotions: Sequence[str], name: str = "emotion", labels: Sequence[str] = EMOTIONS) -> np.ndarray:
    """``["neutral", "happy"]`` -> float32 ``(len(labels),)`` with 1.0 at those emotions' positions in `labels`
    (KEMDy's seven `EMOTIONS` by default; a manifest's own label set, the model's `id2label` order).

    >>> multi_hot(["neutral", "happy"]).tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    >>> multi_hot("슬픔", labels=("기쁨", "분노", "슬픔", "중립")).tolist()
    [0.0, 0.0, 1.0, 0.0]
    """
    labels = tuple(labels)
    if isinstance(emotions, str):
        emotions = emotions.split(";")
    vector = np.zeros(len(labels), dtype=np.float32)
    for emotion in emotions:
        if emotion not in labels:
            raise ValueError(f"{name} holds {emotion!r}, which is not one of {labels}.")
        vector[labels.index(emotion)] = 1.0
    if not vector.any():
        raise ValueError(f"{name} is empty; expected at least one of {labels}.")
    return vector


def load_segment(path, start: float, end: float | None, sampling_rate: int = 16000,
                 max_seconds: float | None = None) -> np.ndarray:
    """Seconds `start` to `end` (None: the file's end) of an audio file, as `load_audio` reads a whole one: mono
    float32 at `sampling_rate`, at most `max_seconds` long. Raises a ValueError naming the path when it cannot be
    read (or the segment is empty)."""
    import soundfile

    path = os.fspath(path)
    try:
        with soundfile.SoundFile(path) as file:
            rate = file.samplerate
            first = int(round(start * rate))
            last = file.frames if end is None else min(file.frames, int(round(end * rate)))
            if max_seconds is not None:
                last = min(last, first + int(math.ceil(max_seconds * rate)))
            file.seek(min(first, file.frames))
            samples = file.read(frames=max(0, last - first), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or OSError depending on the fault
        raise ValueError(f"audio file {path!r} could not be read from {start:g} s: {error}") from error
    audio = to_mono(samples.T, name=f"audio file {path!r} from {start:g} s to {end if end is not None else 'end'} s")
    audio = resample(audio, rate, sampling_rate)
    return audio if max_seconds is None else audio[: int(round(max_seconds * sampling_rate))]


def read_clip(audio, sampling_rate: int = 16000, max_seconds: float | None = None, name: str = "audio",
              start: float | None = None, end: float | None = None) -> np.ndarray:
    """One row's audio as a usable clip: mono float32 `(samples,)` at `sampling_rate`, cropped to `max_seconds`.

    `audio` is a file path (read with `load_audio`: any rate, any channel count), a `{"path": ...}` dict, or an
    array already at `sampling_rate`. With `start` (and `end`), seconds into the file (a manifest's segment), only
    that part of a file is read. Raises a ValueError naming `name` (or the file) when the audio cannot be
    read, is not finite, or is shorter than wav2vec2's 25 ms receptive field once cropped.
    """
    if isinstance(audio, Mapping) and "path" in audio and audio.get("array") is None:
        audio = audio["path"]
    if start is not None and (isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__")):
        clip = load_segment(audio, float(start), None if end is None else float(end), sampling_rate, max_seconds)
    elif isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__"):
        clip = load_audio(audio, sampling_rate=sampling_rate, max_seconds=max_seconds)
    elif isinstance(audio, Mapping) and "path" in audio and audio.get("array") is None:
        clip = load_audio(audio["path"], sampling_rate=sampling_rate, max_seconds=max_seconds)
    elif isinstance(audio, (np.ndarray, torch.Tensor, list)):
        clip = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    else:
        raise ValueError(f"{name} must be a file path or an array of samples at {sampling_rate} Hz; "
                         f"got {type(audio).__name__}.")
    clip = to_mono(clip, name=name)
    if max_seconds is not None:
        clip = clip[: int(round(max_seconds * sampling_rate))]
    if clip.shape[0] < MIN_AUDIO_SAMPLES:
        raise ValueError(f"{name} has {clip.shape[0]} samples; at least {MIN_AUDIO_SAMPLES} (25 ms) are needed.")
    return clip


@dataclass
class KemdyCollator:
    """Turn a list of dataset rows (dicts) into one batch for `KlueWav2Vec2ForEmotion`.

    Each row needs ``text`` and ``audio`` (a file path, read with `load_audio`: any rate, any channel count; or
    a float array already at ``processor.sampling_rate``); a row with ``start`` (and ``end``), a manifest's
    segment, is read from that many seconds into its file. Rows that have ``emotion`` and ``arousal``/``valence``
    also give the targets. The audio is cropped to `max_audio_seconds` before the processor sees it, and padding
    is dynamic: to the longest clip and the longest transcript of the batch.

    Returns a dict of tensors (B = number of rows):

    - ``input_ids``, ``attention_mask``, ``token_type_ids``: int64 ``(B, text tokens)``;
    - ``input_values``: float32 ``(B, samples)``; ``audio_attention_mask``: int ``(B, samples)``;
    - ``labels``: float32 ``(B, C)``, multi-hot over `labels` (`EMOTIONS` by default; when `with_labels` and rows have ``emotion``);
    - ``regression_labels``: float32 ``(B, 2)``, arousal then valence on the corpus's 1-5 scale (likewise).

    Args:
        processor: a `KlueWav2Vec2Processor` (or anything with its ``__call__``, ``sampling_rate`` and
            ``max_audio_seconds``).
        max_audio_seconds: crop limit in seconds; None (default) takes ``processor.max_audio_seconds``.
        with_labels: add the targets; False gives model inputs only (e.g. for prediction).
        empty_text: what a row whose cleaned text is empty (a transcript of markers only, e.g. a laugh) is fed as;
            None uses the tokenizer's unknown token.
        skip_bad_audio: a row whose audio cannot be read (a file corrupt past a valid header, say), holds NaN/inf or
            is shorter than 25 ms is left out of its batch with a warning naming its path, and recorded in
            `skipped` (reason per path), so one bad file never stops a long training run. False raises instead.
    """

    processor: object
    max_audio_seconds: float | None = None
    with_labels: bool = True
    text_column: str = "text"
    audio_column: str = "audio"
    empty_text: str | None = None
    skip_bad_audio: bool = True
    labels: Sequence[str] | None = None
    """The label set of the multi-hot ``labels`` (the model's `id2label` order); None: KEMDy's seven `EMOTIONS`."""

    def __post_init__(self):
        self.skipped: dict[str, str] = {}

    @property
    def sampling_rate(self) -> int:
        return int(self.processor.sampling_rate)

    @property
    def crop_seconds(self) -> float | None:
        if self.max_audio_seconds is not None:
            return self.max_audio_seconds
        return getattr(self.processor, "max_audio_seconds", None)

    @property
    def crop_samples(self) -> int | None:
        seconds = self.crop_seconds
        return None if seconds is None else int(round(seconds * self.sampling_rate))

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("KemdyCollator got an empty batch; expected at least one row.")
        kept, texts, clips = [], [], []
        for index, row in enumerate(rows):
            for column in (self.text_column, self.audio_column):
                if column not in row:
                    raise ValueError(f"row {index} has no {column!r} column; it has {sorted(row)}.")
            try:
                clip = self._read(row[self.audio_column], index, row.get("start"), row.get("end"))
            except ValueError as error:
                if not self.skip_bad_audio:
                    raise
                self._skip(row, index, str(error))
                continue
            kept.append(row)
            texts.append(row[self.text_column].strip() or self._empty_text())
            clips.append(clip)
        if not kept:
            raise ValueError(f"every row of this batch has unusable audio: {self.skipped}")
        rows = kept
        batch = dict(self.processor(text=texts, audio=clips, sampling_rate=self.sampling_rate, return_tensors="pt"))
        if self.with_labels and all("emotion" in row for row in rows):
            batch["labels"] = torch.from_numpy(
                np.stack([multi_hot(row["emotion"], f"row {i} emotion", self.labels or EMOTIONS)
                          for i, row in enumerate(rows)]))
        if self.with_labels and all("arousal" in row and "valence" in row for row in rows):
            batch["regression_labels"] = torch.tensor(
                [[float(row["arousal"]), float(row["valence"])] for row in rows], dtype=torch.float32)
        return batch

    def _skip(self, row: Mapping, index: int, reason: str) -> None:
        audio = row[self.audio_column]
        key = str(audio) if isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__") else f"row {index}"
        if key not in self.skipped:
            self.skipped[key] = reason
            logger.warning(f"skipping {key}: {reason} ({len(self.skipped)} skipped so far)")

    def _read(self, audio, index: int, start=None, end=None) -> np.ndarray:
        return read_clip(audio, self.sampling_rate, self.crop_seconds, name=f"row {index} audio", start=start,
                         end=end)

    def _empty_text(self) -> str:
        if self.empty_text is not None:
            return self.empty_text
        return getattr(getattr(self.processor, "tokenizer", None), "unk_token", None) or "[UNK]"
