"""Joint text + audio processor for [`KlueWav2Vec2ForEmotion`], and the audio helpers it is built on.

This file is copied next to saved checkpoints (``trust_remote_code``): it may import only from numpy, soundfile,
transformers and the other ``*_klue_wav2vec2`` files, with single-dot imports. librosa is imported lazily, and only
when a clip is not already at 16 kHz (its first import costs seconds).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.utils import logging

logger = logging.get_logger(__name__)

SAMPLING_RATE = 16_000
MIN_AUDIO_SAMPLES = 400
"""wav2vec2's receptive field: the shortest clip (25 ms at 16 kHz) that gives one frame."""


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """Resample mono float32 `audio` from `orig_sr` to `target_sr` (soxr through librosa); no-op when equal."""
    if orig_sr == target_sr:
        return audio
    import librosa  # lazy: seconds of imports, needed only for non-16 kHz input

    return librosa.resample(audio, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def check_sampling_rate(sampling_rate, name: str = "sampling_rate") -> int:
    """Return `sampling_rate` as an int, or raise a ValueError saying what was expected."""
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer, float)):
        raise ValueError(f"{name} must be a positive number of samples per second; got {sampling_rate!r}.")
    if not math.isfinite(sampling_rate) or sampling_rate <= 0 or int(sampling_rate) != sampling_rate:
        raise ValueError(f"{name} must be a positive whole number of samples per second; got {sampling_rate!r}.")
    return int(sampling_rate)


def to_mono(audio, name: str = "audio") -> np.ndarray:
    """Validate one clip and return it as finite, mono, float32 `(samples,)`.

    A 2-D array is one multi-channel clip, channels first or last (the shorter axis is taken as channels) and is
    averaged down to mono. Raises a ValueError naming `name` for anything else (3-D arrays, NaN/inf, no samples).
    """
    if hasattr(audio, "detach"):  # torch tensor
        audio = audio.detach().cpu().numpy()
    if not isinstance(audio, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of samples; got {type(audio).__name__}.")
    if not (np.issubdtype(audio.dtype, np.floating) or np.issubdtype(audio.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers; got dtype {audio.dtype}.")
    if audio.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (samples) or 2-D (channels x samples) audio; got a {audio.ndim}-D array of shape "
            f"{audio.shape}. Pass a batch as a list of clips."
        )
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max)
    if audio.ndim == 2:
        # Down-mix as a matrix-vector product: 100x faster than .mean() over a strided channel axis.
        channel_axis = 0 if audio.shape[0] <= audio.shape[1] else 1
        audio = audio.astype(np.float32, copy=False)
        weights = np.full(audio.shape[channel_axis], 1.0 / audio.shape[channel_axis], dtype=np.float32)
        audio = weights @ audio if channel_axis == 0 else audio @ weights
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise ValueError(f"{name} has no samples.")
    if not np.isfinite(audio).all():
        raise ValueError(f"{name} contains NaN or infinite samples.")
    return audio


def load_audio(path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Read an audio file with soundfile as mono float32 at `sampling_rate` (down-mixed and resampled as needed).

    With `max_seconds`, only the file's first `max_seconds` are read (and resampled). Raises a ValueError naming the
    path when the file is missing, unreadable, empty or not finite.
    """
    import soundfile

    path = os.fspath(path)
    try:
        with soundfile.SoundFile(path) as file:
            file_rate = file.samplerate
            frames = -1 if max_seconds is None else int(math.ceil(max_seconds * file_rate))
            samples = file.read(frames=frames, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or OSError depending on the fault
        raise ValueError(f"audio file {path!r} could not be read: {error}") from error
    audio = to_mono(samples.T, name=f"audio file {path!r}")
    audio = resample(audio, file_rate, sampling_rate)
    return audio if max_seconds is None else audio[: int(round(max_seconds * sampling_rate))]


class KlueWav2Vec2Processor(ProcessorMixin):
    r"""
    Tokenises transcripts with a BERT tokenizer (`do_lower_case=False`: lower-casing NFD-splits Hangul into [UNK])
    and turns speech into normalised, zero-padded 16 kHz `input_values` with a `Wav2Vec2FeatureExtractor`.

    The outputs keep the two masks apart: `attention_mask` (text) and `audio_attention_mask` (speech).

    Args:
        feature_extractor (`Wav2Vec2FeatureExtractor`): speech features; it is always asked for an attention mask so
            that per-utterance normalisation ignores padding.
        tokenizer (`BertTokenizer`): must not lower-case.
        max_audio_seconds (`float`, *optional*, defaults to 5.0): clips are cropped to their first
            `max_audio_seconds` (the paper's 5 s); None keeps whole clips.
        max_text_length (`int`, defaults to 128): transcripts are truncated to this many tokens.
    """

    def __init__(self, feature_extractor, tokenizer, max_audio_seconds: float | None = 5.0, max_text_length: int = 128):
        if getattr(tokenizer, "do_lower_case", False):
            raise ValueError(
                "tokenizer lower-cases (do_lower_case=True), which NFD-splits Hangul into [UNK]; load it with "
                "do_lower_case=False (as klue/bert-base does)."
            )
        if max_audio_seconds is not None and not max_audio_seconds > 0:
            raise ValueError(f"max_audio_seconds must be positive or None; got {max_audio_seconds!r}.")
        if int(max_text_length) < 3:
            raise ValueError(f"max_text_length must be at least 3 ([CLS] token [SEP]); got {max_text_length!r}.")
        super().__init__(feature_extractor, tokenizer)
        self.max_audio_seconds = max_audio_seconds
        self.max_text_length = int(max_text_length)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    @property
    def max_audio_samples(self) -> int | None:
        return None if self.max_audio_seconds is None else int(round(self.max_audio_seconds * self.sampling_rate))

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "token_type_ids", "input_values", "audio_attention_mask"]

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        audio=None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Prepare one example or a batch.

        Args:
            text: a transcript or a list of them.
            audio: one clip (`np.ndarray` of shape `(samples,)`, or `(channels, samples)` / `(samples, channels)`) or
                a list of clips, at `sampling_rate`.
            sampling_rate: rate of `audio` in Hz; resampled to 16 kHz when different. None means 16 kHz.
            return_tensors: `"pt"` (default), `"np"` or None.

        Returns:
            `BatchFeature` with `input_ids, attention_mask, token_type_ids` (when text is given) and
            `input_values, audio_attention_mask` (when audio is given).
        """
        if kwargs:
            raise TypeError(f"KlueWav2Vec2Processor got unexpected arguments: {', '.join(sorted(kwargs))}.")
        if text is None and audio is None:
            raise ValueError("Give text=, audio= or both; got neither.")
        texts = self._as_text_list(text) if text is not None else None
        clips = self._as_audio_list(audio) if audio is not None else None
        if texts is not None and clips is not None and len(texts) != len(clips):
            raise ValueError(f"text and audio must have the same length; got {len(texts)} texts and {len(clips)} clips.")

        data = {}
        if texts is not None:
            data.update(self.encode_text(texts))
        if clips is not None:
            rate = self.sampling_rate if sampling_rate is None else check_sampling_rate(sampling_rate)
            data.update(self.encode_audio(clips, rate))
        return BatchFeature(data=data, tensor_type=return_tensors)

    # ------------------------------------------------------------------ text
    @staticmethod
    def _as_text_list(text) -> list[str]:
        texts = [text] if isinstance(text, str) else text
        if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
            raise ValueError(f"text must be a string or a list of strings; got {type(text).__name__}.")
        for index, item in enumerate(texts):
            if not isinstance(item, str):
                raise ValueError(f"text[{index}] must be a string; got {type(item).__name__}.")
            if not item.strip():
                raise ValueError(f"text[{index}] is empty; expected a non-empty transcript.")
        if not texts:
            raise ValueError("text is an empty list; expected at least one transcript.")
        return list(texts)

    def encode_text(self, texts: list[str]) -> dict:
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_text_length,
            return_attention_mask=True,
            return_token_type_ids=True,
        )
        return {key: encoded[key] for key in ("input_ids", "attention_mask", "token_type_ids")}

    # ------------------------------------------------------------------ audio
    @staticmethod
    def _as_audio_list(audio) -> list:
        if isinstance(audio, (list, tuple)):
            if not audio:
                raise ValueError("audio is an empty list; expected at least one clip.")
            return list(audio)
        return [audio]

    def prepare_clip(self, clip, sampling_rate: int, name: str = "audio") -> np.ndarray:
        """One clip -> validated mono float32 at 16 kHz, cropped to `max_audio_seconds`."""
        mono = to_mono(clip, name=name)
        limit = self.max_audio_samples
        if limit is not None and sampling_rate != self.sampling_rate:
            # Crop before resampling so that a long recording is not resampled whole.
            mono = mono[: int(math.ceil(limit * sampling_rate / self.sampling_rate)) + 1]
        mono = resample(mono, sampling_rate, self.sampling_rate)
        if limit is not None:
            mono = mono[:limit]
        if mono.shape[0] < MIN_AUDIO_SAMPLES:
            raise ValueError(
                f"{name} is {mono.shape[0] / self.sampling_rate * 1000:.1f} ms long; the speech encoder needs at least "
                f"{MIN_AUDIO_SAMPLES / self.sampling_rate * 1000:.0f} ms ({MIN_AUDIO_SAMPLES} samples at 16 kHz)."
            )
        return mono

    def encode_audio(self, clips: list, sampling_rate: int) -> dict:
        name = "audio" if len(clips) == 1 else "audio[{}]"
        prepared = [self.prepare_clip(clip, sampling_rate, name.format(i)) for i, clip in enumerate(clips)]
        features = self.feature_extractor(
            prepared, sampling_rate=self.sampling_rate, padding=True, return_attention_mask=True
        )
        return {"input_values": features["input_values"], "audio_attention_mask": features["attention_mask"]}


__all__ = ["KlueWav2Vec2Processor", "load_audio", "to_mono", "resample", "SAMPLING_RATE", "MIN_AUDIO_SAMPLES"]
