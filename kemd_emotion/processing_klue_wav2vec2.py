"""Joint text + audio processor for [`KlueWav2Vec2ForEmotion`], and the audio helpers it is built on.

This file is copied next to saved checkpoints (``trust_remote_code``): it may import only from numpy, soundfile,
transformers and the other ``*_klue_wav2vec2`` files, with single-dot imports. librosa is imported lazily, and only
when a clip is not already at 16 kHz (its first import costs seconds).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.utils import logging

from .configuration_klue_wav2vec2 import MIN_AUDIO_SAMPLES

logger = logging.get_logger(__name__)

SAMPLING_RATE = 16_000
"""The rate every speech encoder here reads; other rates are resampled to it."""
SAMPLING_RATE_RANGE = (1_000, 384_000)
"""Sampling rates (Hz) accepted with samples; anything else is a mistaken argument (see `sampling_rate_problem`)."""
WHISPER_MAX_SECONDS = 30.0
"""The longest clip a Whisper encoder takes (1500 positions of 20 ms)."""


def is_whisper_feature_extractor(feature_extractor) -> bool:
    """Whether `feature_extractor` makes Whisper's log-mel `input_features` (rather than wav2vec2's raw samples)."""
    from transformers import WhisperFeatureExtractor

    return isinstance(feature_extractor, WhisperFeatureExtractor)


def feature_extractor_input_name(feature_extractor) -> str:
    """The model input a feature extractor's output goes to: `"input_features"` (Whisper) or `"input_values"`."""
    return "input_features" if is_whisper_feature_extractor(feature_extractor) else "input_values"


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """Resample mono float32 `audio` from `orig_sr` to `target_sr` (soxr through librosa); no-op when equal."""
    if orig_sr == target_sr:
        return audio
    import librosa  # lazy: seconds of imports, needed only for non-16 kHz input

    return librosa.resample(audio, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def sampling_rate_problem(sampling_rate) -> str | None:
    """What is wrong with `sampling_rate` (a predicate of it: "must be ..."), or None when it is an accepted rate.

    The one rule for sampling rates given with samples (here, in the pipeline's inputs and the endpoint's requests):
    a whole number of Hz within `SAMPLING_RATE_RANGE`.
    """
    low, high = SAMPLING_RATE_RANGE
    if (isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer, float, np.floating))
            or not math.isfinite(sampling_rate) or int(sampling_rate) != sampling_rate
            or not low <= sampling_rate <= high):
        return f"must be a whole number of Hz from {low} to {high} (e.g. 16000); got {sampling_rate!r}"
    return None


def check_sampling_rate(sampling_rate, name: str = "sampling_rate") -> int:
    """Return `sampling_rate` as an int, or raise a ValueError naming `name` and saying what was expected."""
    problem = sampling_rate_problem(sampling_rate)
    if problem is not None:
        raise ValueError(f"{name} {problem}.")
    return int(sampling_rate)


def mono_or_problem(audio) -> tuple[np.ndarray | None, str | None]:
    """One clip -> `(finite mono float32 (samples,), None)`, or `(None, what is wrong with it)` as a predicate.

    A 2-D array is one multi-channel clip, channels first or last (the shorter axis is taken as channels) and is
    averaged down to mono; integer samples are scaled to [-1, 1]. 3-D arrays, NaN/inf and no samples are problems.
    """
    if hasattr(audio, "detach"):  # torch tensor
        audio = audio.detach().cpu().numpy()
    if not isinstance(audio, np.ndarray):
        return None, f"must be a numpy array of samples; got {type(audio).__name__}"
    if not (np.issubdtype(audio.dtype, np.floating) or np.issubdtype(audio.dtype, np.integer)):
        return None, f"must hold numbers; got dtype {audio.dtype}"
    if audio.ndim not in (1, 2):
        return None, (f"must be 1-D (samples) or 2-D (channels x samples) audio; got a {audio.ndim}-D array of shape "
                      f"{audio.shape}. Pass a batch as a list of clips")
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
        return None, "has no samples"
    if not np.isfinite(audio).all():
        return None, "contains NaN or infinite samples"
    return audio, None


def to_mono(audio, name: str = "audio") -> np.ndarray:
    """Validate one clip and return it as finite, mono, float32 `(samples,)` (see `mono_or_problem`); raise a
    ValueError naming `name` otherwise."""
    mono, problem = mono_or_problem(audio)
    if problem is not None:
        raise ValueError(f"{name} {problem}.")
    return mono


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


PADDING_VALUES = (True, False, "longest", "max_length", "do_not_pad")
RETURN_TENSORS = ("pt", "np", None)
MODALITY_OPTIONS = ("padding", "truncation", "max_length", "pad_to_multiple_of", "return_attention_mask")
"""Keywords that apply to a modality: given flat they apply to text and audio, as in `ProcessorMixin`; in
`text_kwargs=` / `audio_kwargs=` to that one only."""
CALL_ARGUMENTS = ("text", "audio", "sampling_rate", *MODALITY_OPTIONS, "return_tensors", "text_kwargs", "audio_kwargs")


class UnknownArgumentError(TypeError, ValueError):
    """An unknown keyword argument: a TypeError as Python raises for one, and a ValueError as every bad input here."""


@dataclass
class ModalityOptions:
    """The resolved keywords of one modality (see `KlueWav2Vec2Processor.__call__`)."""

    padding: bool | str = True
    truncation: bool = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    return_attention_mask: bool = True

    @classmethod
    def from_keywords(cls, modality: str, keywords: dict) -> "ModalityOptions":
        """Validate `keywords` (a subset of MODALITY_OPTIONS) for `modality`; raise a ValueError naming a bad one."""
        options = cls(**keywords)
        padding = getattr(options.padding, "value", options.padding)  # transformers' PaddingStrategy enum
        if padding not in PADDING_VALUES or (padding in (0, 1) and not isinstance(padding, bool)):
            raise ValueError(
                f"padding={options.padding!r} ({modality}) is not supported; expected one of "
                f"{', '.join(map(repr, PADDING_VALUES))}."
            )
        options.padding = {"longest": True, "do_not_pad": False}.get(padding, padding)
        if not isinstance(options.truncation, bool):
            raise ValueError(f"truncation={options.truncation!r} ({modality}) must be True or False.")
        if not isinstance(options.return_attention_mask, bool):
            raise ValueError(
                f"return_attention_mask={options.return_attention_mask!r} ({modality}) must be True or False."
            )
        for name in ("max_length", "pad_to_multiple_of"):
            value = getattr(options, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name}={value!r} ({modality}) must be a positive whole number or None.")
        return options


class KlueWav2Vec2Processor(ProcessorMixin):
    r"""
    Tokenises transcripts with the text encoder's tokenizer (a BERT or ELECTRA WordPiece tokenizer with
    `do_lower_case=False`: lower-casing NFD-splits Hangul into [UNK]; or a RoBERTa BPE tokenizer) and turns speech into
    normalised, zero-padded 16 kHz `input_values` with a `Wav2Vec2FeatureExtractor` (the one of wav2vec2, HuBERT, WavLM
    and Data2VecAudio checkpoints), or into log-mel `input_features` `(batch, num_mel_bins, frames)` with a Whisper
    checkpoint's `WhisperFeatureExtractor`.

    The outputs keep the two masks apart: `attention_mask` (text) and `audio_attention_mask` (speech: per sample for
    `input_values`, per 10 ms mel frame for `input_features`).

    Whisper's features are computed clip by clip at the clip's own length (not padded to 30 s, as the feature
    extractor does by default), so that a clip's features are the same alone and in a batch; the batch is then
    padded to its longest clip with the feature extractor's `padding_value` (the model ignores those frames).

    Args:
        feature_extractor (`Wav2Vec2FeatureExtractor` or `WhisperFeatureExtractor`): speech features; the audio mask
            is always computed (per-utterance normalisation ignores padding). Use the speech encoder checkpoint's
            own (`AutoFeatureExtractor.from_pretrained(audio_model)`): a Whisper encoder reads `input_features`, the
            wav2vec2 family `input_values`, and the model refuses the other key.
        tokenizer (`BertTokenizer`, `RobertaTokenizer`, ...): must not lower-case. `token_type_ids` are returned only
            when the tokenizer makes them (not for RoBERTa's).
        max_audio_seconds (`float`, *optional*, defaults to 5.0): clips are cropped to their first
            `max_audio_seconds` (the paper's 5 s); None keeps whole clips (with a Whisper feature extractor: up to
            the encoder's 30 s, and more than 30 is refused).
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
        if is_whisper_feature_extractor(feature_extractor) and (max_audio_seconds or 0) > WHISPER_MAX_SECONDS:
            raise ValueError(
                f"max_audio_seconds={max_audio_seconds!r} is longer than a Whisper encoder's {WHISPER_MAX_SECONDS:g} s "
                "(feature_extractor is a WhisperFeatureExtractor); expected at most 30 or None (30 s). The pipeline "
                "scores longer recordings in windows (chunk_length_s)."
            )
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
        seconds = self.max_audio_seconds
        if seconds is None and self.is_whisper:
            seconds = WHISPER_MAX_SECONDS
        return None if seconds is None else int(round(seconds * self.sampling_rate))

    @property
    def is_whisper(self) -> bool:
        """Whether the feature extractor is Whisper's (log-mel `input_features`, 10 ms frames)."""
        return is_whisper_feature_extractor(self.feature_extractor)

    @property
    def audio_input_name(self) -> str:
        """The key the speech goes under: `"input_features"` (Whisper) or `"input_values"` (wav2vec2 family)."""
        return feature_extractor_input_name(self.feature_extractor)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "token_type_ids", self.audio_input_name, "audio_attention_mask"]

    def check_speech_encoder(self, audio_config, name: str = "processor") -> None:
        """Raise a ValueError naming `name` when this processor's feature extractor does not make what the speech
        encoder of `audio_config` reads (a `Wav2Vec2FeatureExtractor` for a Whisper encoder, or the reverse; a
        different number of mel bins)."""
        model_type = getattr(audio_config, "model_type", None)
        wants_whisper = model_type == "whisper"
        kind = type(self.feature_extractor).__name__
        if wants_whisper != self.is_whisper:
            expected = ("a WhisperFeatureExtractor (log-mel input_features), the Whisper checkpoint's own"
                        if wants_whisper else "a Wav2Vec2FeatureExtractor (16 kHz input_values), the checkpoint's own")
            raise ValueError(
                f"{name}: its feature_extractor is a {kind} ({self.audio_input_name}), but the speech encoder "
                f"(audio_config.model_type={model_type!r}) expects {expected}: build the processor with "
                "AutoFeatureExtractor.from_pretrained(<the speech encoder's checkpoint>)."
            )
        if wants_whisper and self.feature_extractor.feature_size != audio_config.num_mel_bins:
            raise ValueError(
                f"{name}: its WhisperFeatureExtractor makes {self.feature_extractor.feature_size} mel bins, but the "
                f"Whisper encoder expects num_mel_bins={audio_config.num_mel_bins}: use the checkpoint's own."
            )

    def __call__(self, text: str | Sequence[str] | None = None, audio=None, sampling_rate: int | None = None, **kwargs) -> BatchFeature:
        """Prepare one example or a batch.

        Args:
            text: a transcript or a list of them.
            audio: one clip (`np.ndarray` of shape `(samples,)`, or `(channels, samples)` / `(samples, channels)`) or
                a list of clips, at `sampling_rate`.
            sampling_rate: rate of `audio` in Hz; resampled to 16 kHz when different. None means 16 kHz.
            padding (`True`/`"longest"` (default), `"max_length"`, `False`/`"do_not_pad"`): pad to the batch's
                longest item, or to `max_length` (fixed shapes: text to `max_text_length` tokens, audio to
                `max_audio_seconds`, the paper's fixed 5 s), or not at all (a batch must then be of equal lengths).
            truncation (`bool`, defaults to True): cut text to `max_length` tokens and audio to `max_length` samples.
            max_length (`int`): tokens for text (default `max_text_length`), samples at 16 kHz for audio (default
                `max_audio_seconds` * 16000). Given flat with both text and audio it would mean both: pass it in
                `text_kwargs` / `audio_kwargs` instead.
            pad_to_multiple_of (`int`): round the padded length up to a multiple of this.
            return_attention_mask (`bool`, defaults to True): return `attention_mask` / `audio_attention_mask`. The
                audio mask is always computed (per-utterance normalisation ignores padding), whatever the feature
                extractor's own `return_attention_mask` says (False for wav2vec2-base).
            return_tensors: `"pt"` (default), `"np"` or None (lists).
            text_kwargs, audio_kwargs (`dict`): the keywords above for one modality only, as `ProcessorMixin` takes
                them (a key may not be given both there and flat).

        Returns:
            `BatchFeature` with `input_ids, attention_mask, token_type_ids` (when text is given; `token_type_ids` when
            the tokenizer makes them) and
            `input_values, audio_attention_mask` (when audio is given): the two masks stay apart.

        Raises:
            UnknownArgumentError (a TypeError and a ValueError): an unknown keyword; the message lists the accepted ones.
            ValueError: naming the input or keyword, for anything else that cannot be prepared.
        """
        text_options, audio_options, return_tensors = self.resolve_options(text is not None, audio is not None, kwargs)
        if text is None and audio is None:
            raise ValueError("Give text=, audio= or both; got neither.")
        texts = self._as_text_list(text) if text is not None else None
        clips = self._as_audio_list(audio) if audio is not None else None
        if texts is not None and clips is not None and len(texts) != len(clips):
            raise ValueError(f"text and audio must have the same length; got {len(texts)} texts and {len(clips)} clips.")

        data = {}
        if texts is not None:
            data.update(self.encode_text(texts, text_options, return_tensors))
        if clips is not None:
            rate = self.sampling_rate if sampling_rate is None else check_sampling_rate(sampling_rate)
            data.update(self.encode_audio(clips, rate, audio_options, return_tensors))
        return BatchFeature(data=data, tensor_type=return_tensors)

    @staticmethod
    def resolve_options(has_text: bool, has_audio: bool, kwargs: dict) -> tuple[ModalityOptions, ModalityOptions, str | None]:
        """Split the call's keywords into text options, audio options and `return_tensors`, as `ProcessorMixin`
        merges them: flat keywords apply to both modalities, `text_kwargs` / `audio_kwargs` to one."""
        unknown = sorted(set(kwargs) - set(CALL_ARGUMENTS))
        if unknown:
            raise UnknownArgumentError(
                f"KlueWav2Vec2Processor got unexpected argument(s) {', '.join(unknown)}; it accepts "
                f"{', '.join(CALL_ARGUMENTS)}."
            )
        return_tensors = kwargs.pop("return_tensors", "pt")
        if return_tensors not in RETURN_TENSORS:
            raise ValueError(f"return_tensors={return_tensors!r} is not supported; expected 'pt', 'np' or None.")
        if has_text and has_audio and "max_length" in kwargs:
            raise ValueError(
                f"max_length={kwargs['max_length']!r} is ambiguous with both text and audio (tokens or samples?); pass "
                "text_kwargs={'max_length': tokens} and/or audio_kwargs={'max_length': samples at 16 kHz}."
            )
        per_modality = {}
        for modality in ("text", "audio"):
            specific = kwargs.get(f"{modality}_kwargs") or {}
            if not isinstance(specific, dict):
                raise ValueError(f"{modality}_kwargs must be a dict; got {type(specific).__name__}.")
            unknown = sorted(set(specific) - set(MODALITY_OPTIONS))
            if unknown:
                raise UnknownArgumentError(
                    f"{modality}_kwargs got unexpected key(s) {', '.join(unknown)}; it accepts {', '.join(MODALITY_OPTIONS)}."
                )
            twice = sorted(set(specific) & set(kwargs))
            if twice:
                raise ValueError(f"{', '.join(twice)} given twice: in {modality}_kwargs and as a keyword argument.")
            flat = {key: kwargs[key] for key in MODALITY_OPTIONS if key in kwargs}
            per_modality[modality] = ModalityOptions.from_keywords(modality, {**flat, **specific})
        return per_modality["text"], per_modality["audio"], return_tensors

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

    def encode_text(self, texts: list[str], options: ModalityOptions | None = None, return_tensors="pt") -> dict:
        """Tokenise `texts`: `input_ids`, `token_type_ids` and (unless `return_attention_mask=False`) `attention_mask`."""
        options = options or ModalityOptions()
        max_length = options.max_length or self.max_text_length
        encoded = self.tokenizer(
            texts,
            padding="max_length" if options.padding == "max_length" else options.padding,
            truncation=options.truncation,
            max_length=max_length if options.truncation or options.padding == "max_length" else None,
            pad_to_multiple_of=options.pad_to_multiple_of,
            return_attention_mask=True,
            return_token_type_ids=self.uses_token_type_ids,
        )
        lengths = {len(ids) for ids in encoded["input_ids"]}
        if return_tensors is not None and len(lengths) > 1:
            raise ValueError(
                f"padding={options.padding!r} leaves transcripts of {min(lengths)} to {max(lengths)} tokens, which do not "
                "stack into one tensor; use padding=True or 'max_length', or return_tensors=None."
            )
        keys = ("input_ids", "attention_mask", "token_type_ids") if options.return_attention_mask else ("input_ids", "token_type_ids")
        return {key: encoded[key] for key in keys if key in encoded}

    @property
    def uses_token_type_ids(self) -> bool:
        """Whether the tokenizer gives `token_type_ids` (BERT and ELECTRA tokenizers do; RoBERTa's do not: its model
        has one token type)."""
        return "token_type_ids" in getattr(self.tokenizer, "model_input_names", ("token_type_ids",))

    # ------------------------------------------------------------------ audio
    @staticmethod
    def _as_audio_list(audio) -> list:
        if isinstance(audio, (list, tuple)):
            if not audio:
                raise ValueError("audio is an empty list; expected at least one clip.")
            return list(audio)
        return [audio]

    def prepare_clip(self, clip, sampling_rate: int, name: str = "audio", max_samples: int | None = -1) -> np.ndarray:
        """One clip -> validated mono float32 at 16 kHz, cropped to `max_samples` (default: `max_audio_seconds`;
        None: not cropped)."""
        mono = to_mono(clip, name=name)
        limit = self.max_audio_samples if max_samples == -1 else max_samples
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

    def encode_audio(self, clips: list, sampling_rate: int, options: ModalityOptions | None = None, return_tensors="pt") -> dict:
        """Crop, resample, normalise and pad `clips`: `input_values` and (unless `return_attention_mask=False`)
        `audio_attention_mask`, 1 on real samples; with a Whisper feature extractor, `input_features` and the mask
        per mel frame (see [`encode_whisper_audio`])."""
        options = options or ModalityOptions()
        if self.is_whisper:
            return self.encode_whisper_audio(clips, sampling_rate, options, return_tensors)
        max_length = options.max_length or self.max_audio_samples
        name = "audio" if len(clips) == 1 else "audio[{}]"
        crop = max_length if options.truncation else None
        prepared = [self.prepare_clip(clip, sampling_rate, name.format(i), max_samples=crop) for i, clip in enumerate(clips)]
        lengths = [clip.shape[0] for clip in prepared]
        if options.padding == "max_length":
            if max_length is None:
                raise ValueError(
                    "padding='max_length' pads audio to max_length samples, but neither audio max_length nor the "
                    "processor's max_audio_seconds is set."
                )
            if max(lengths) > max_length:
                raise ValueError(
                    f"{name.format(lengths.index(max(lengths)))} has {max(lengths)} samples, more than max_length="
                    f"{max_length} with truncation=False: padding='max_length' cannot give it a fixed shape."
                )
        elif options.padding is False and return_tensors is not None and len(set(lengths)) > 1:
            raise ValueError(
                f"padding=False leaves clips of {min(lengths)} to {max(lengths)} samples, which do not stack into one "
                "tensor; use padding=True or 'max_length', or return_tensors=None."
            )
        # The mask is always asked for: the per-utterance normalisation must ignore padding, even with a feature
        # extractor saved with return_attention_mask=False (wav2vec2-base's).
        features = self.feature_extractor(
            prepared,
            sampling_rate=self.sampling_rate,
            padding=options.padding,
            max_length=max_length if options.padding == "max_length" else None,
            pad_to_multiple_of=options.pad_to_multiple_of,
            return_attention_mask=True,
        )
        data = {"input_values": features["input_values"]}
        if options.return_attention_mask:
            data["audio_attention_mask"] = features["attention_mask"]
        return data


    def encode_whisper_audio(self, clips: list, sampling_rate: int, options: ModalityOptions, return_tensors="pt") -> dict:
        """Whisper's log-mel features of each clip at its own length, padded to the batch: `input_features`
        `(batch, num_mel_bins, frames)` (10 ms frames: `samples // hop_length` per clip) and `audio_attention_mask`
        `(batch, frames)`, 1 on real frames.

        The feature extractor pads every clip to 30 s by default, and in a batch computes the spectrogram of each
        clip padded with zeros, so that its last frames (and its normalisation, from the clip's largest value)
        depend on the batch. Each clip goes through it alone instead. `max_length` and `pad_to_multiple_of` are in
        samples and mel frames respectively: `padding="max_length"` pads to `max_length // hop_length` frames.
        """
        max_length = options.max_length or self.max_audio_samples
        limit = self.max_audio_samples
        if max_length is not None and limit is not None and max_length > limit:
            raise ValueError(
                f"max_length={max_length} (audio) is more than a Whisper encoder's {limit} samples "
                f"({limit / self.sampling_rate:g} s at 16 kHz)."
            )
        name = "audio" if len(clips) == 1 else "audio[{}]"
        crop = max_length if options.truncation else None
        prepared = [self.prepare_clip(clip, sampling_rate, name.format(i), max_samples=crop) for i, clip in enumerate(clips)]
        hop = self.feature_extractor.hop_length
        for i, clip in enumerate(prepared):
            if limit is not None and clip.shape[0] > limit:
                raise ValueError(
                    f"{name.format(i)} is {clip.shape[0] / self.sampling_rate:g} s long; a Whisper encoder takes at most "
                    f"{limit / self.sampling_rate:g} s: use truncation=True, or the pipeline's chunk_length_s."
                )
        features = [
            self.feature_extractor(clip, sampling_rate=self.sampling_rate, padding="longest", truncation=False,
                                   return_attention_mask=False, return_tensors="np")["input_features"][0]
            for clip in prepared
        ]
        lengths = [feature.shape[-1] for feature in features]
        if options.padding == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' pads audio to max_length samples, but no audio max_length is set.")
            width = max_length // hop
            if max(lengths) > width:
                raise ValueError(
                    f"{name.format(lengths.index(max(lengths)))} has {max(lengths)} mel frames, more than max_length="
                    f"{max_length} samples ({width} frames) with truncation=False: padding='max_length' cannot give it "
                    "a fixed shape."
                )
        elif options.padding is False:
            if len(set(lengths)) > 1:
                raise ValueError(
                    f"padding=False leaves clips of {min(lengths)} to {max(lengths)} mel frames, which do not stack into "
                    "one tensor; use padding=True or 'max_length'."
                )
            width = lengths[0]
        else:
            width = max(lengths)
        if options.pad_to_multiple_of:
            width = -(-width // options.pad_to_multiple_of) * options.pad_to_multiple_of
        padded = np.full((len(features), features[0].shape[0], width), self.feature_extractor.padding_value,
                         dtype=np.float32)
        mask = np.zeros((len(features), width), dtype=np.int32)
        for row, feature in enumerate(features):
            padded[row, :, : feature.shape[-1]] = feature
            mask[row, : feature.shape[-1]] = 1
        data = {"input_features": padded}
        if options.return_attention_mask:
            data["audio_attention_mask"] = mask
        return data if return_tensors is not None else {key: value.tolist() for key, value in data.items()}


__all__ = ["KlueWav2Vec2Processor", "UnknownArgumentError", "load_audio", "to_mono", "resample", "SAMPLING_RATE", "MIN_AUDIO_SAMPLES"]
