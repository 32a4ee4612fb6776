"""Transcripts for recordings that come without one, from any speech-recognition model the user chooses.

`pipeline("emotion-multimodal", model=..., asr_model=...)` builds one `Transcriber`. It turns the 16 kHz clips of
the inputs given without `"text"` into transcripts, batched where the speech-recognition backend allows, so that a
fused (`cat` / `add`) checkpoint can score a bare recording.

This file is copied next to saved checkpoints (``trust_remote_code``): it may import only from numpy, transformers
and the other ``*_klue_wav2vec2`` files, with single-dot imports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np
from transformers import Pipeline

from .configuration_klue_wav2vec2 import fusion_modalities
from .processing_klue_wav2vec2 import SAMPLING_RATE, resample

ASR_TASK = "automatic-speech-recognition"
ON_EMPTY_TRANSCRIPT = ("error", "speech_only")
"""What to do when the speech-recognition model hears no words: raise naming the input, or score the clip as
training scored an utterance whose transcript held no words (see `check_on_empty_transcript`)."""

BUILD_ONLY_ASR_KWARGS = frozenset(
    {"device", "device_map", "dtype", "torch_dtype", "model_kwargs", "trust_remote_code", "revision", "token",
     "tokenizer", "feature_extractor", "processor", "config"}
)
"""`asr_kwargs` that only building a pipeline from a model id understands (not calling a ready one)."""

PADDING_SENSITIVE_ASR_TYPES = ("ctc", "ctc_with_lm")
"""transformers' ASR pipeline decodes a padded CTC batch frame by frame, padding included, so a clip can read
differently alone and in a batch with longer ones. Such backends are batched only over clips of equal length (all
windows of a chunked recording); Whisper pads every clip to 30 s itself, so batching cannot change what it hears."""

ASR_MODEL_HELP = "a model id or folder, an automatic-speech-recognition pipeline, or a callable audio -> str"

WHISPER_KOREAN = {"language": "korean", "task": "transcribe"}
"""The `generate_kwargs` a multilingual Whisper model id gets unless `asr_kwargs` name a language (None: detect it).
Left to detect it, whisper-base took espeak-ng's Korean for Thai, or repeated one syllable up to its 448-token limit
(minutes on a CPU); told "korean", it wrote Korean in seconds."""


def with_whisper_language(spec: str, build_kwargs: dict, hub_kwargs: Mapping) -> dict:
    """`build_kwargs` with `WHISPER_KOREAN` under `generate_kwargs` for the multilingual Whisper model `spec`, unless
    they already give a language (their own keys win: `{"task": "translate"}` translates Korean speech)."""
    from transformers import GenerationConfig

    generate = dict(build_kwargs.get("generate_kwargs") or {})
    if "language" in generate:
        return build_kwargs
    try:
        multilingual = getattr(GenerationConfig.from_pretrained(spec, **hub_kwargs), "is_multilingual", False)
    except (OSError, ValueError):  # no generation config: leave the model's own behaviour
        return build_kwargs
    if not multilingual:  # English-only Whisper (*.en) refuses a language
        return build_kwargs
    return {**build_kwargs, "generate_kwargs": {**WHISPER_KOREAN, **generate}}


class TranscriptionError(ValueError):
    """Some inputs of a call could not be transcribed (the model failed on them, or heard no words).

    The message names each such input (`input`, or `inputs[i]` in a list) and why. The other inputs of the call
    were transcribed and scored all the same; nothing is lost:

    Attributes:
        errors (`dict`): position of each failed input in the call's list (`None` for a single input) -> message.
        results (`list` or `None`): the call's outputs in input order, `None` where transcription failed (`None`
            for a single input, and for a generator, where the error is raised when the failed input is reached).
    """

    def __init__(self, errors: Mapping, results: list | None = None):
        self.errors = dict(errors)
        self.results = results
        lines = list(self.errors.values())
        if results is not None and len(results) > len(self.errors):
            lines.append(
                f"The other {len(results) - len(self.errors)} input(s) were scored: their outputs are in this error's "
                "`results` (None where transcription failed)."
            )
        super().__init__("\n".join(lines))


def check_on_empty_transcript(value, fusion: str) -> str:
    """Return `value` when it is a valid `on_empty_transcript` for a checkpoint with `fusion`; raise otherwise.

    `"speech_only"` needs a speech branch. On a fused checkpoint it scores a wordless clip the way training scored
    KEMDy utterances whose transcript held only markers (a laugh, a breath): the text branch reads the tokenizer's
    unknown token (`KemdyCollator`'s default `empty_text`), so the scores come from the voice, with the text side
    saying "no words" as the model learned it. On a text-only checkpoint there is no voice to fall back on.
    """
    if value not in ON_EMPTY_TRANSCRIPT:
        raise ValueError(
            f"on_empty_transcript={value!r} is not supported; expected one of "
            f"{', '.join(map(repr, ON_EMPTY_TRANSCRIPT))}."
        )
    if value == "speech_only" and not fusion_modalities(fusion)[1]:
        raise ValueError(
            "on_empty_transcript='speech_only' scores a wordless clip from its speech, but this checkpoint "
            "(fusion='text') has no speech branch."
        )
    return value


def is_speech_recognition_config(config) -> bool:
    """Whether transformers' automatic-speech-recognition pipeline can load a model of this config."""
    from transformers.pipelines import SUPPORTED_TASKS

    auto_classes = SUPPORTED_TASKS[ASR_TASK]["pt"]
    if any(type(config) in auto_class._model_mapping for auto_class in auto_classes):
        return True
    auto_map = getattr(config, "auto_map", None) or {}
    return any(auto_class.__name__ in auto_map for auto_class in auto_classes)


class Transcriber:
    r"""
    Turns 16 kHz mono clips into transcripts with a speech-recognition model chosen by the user.

    Args:
        asr_model:
            - a model id or folder (`str` / `os.PathLike`): an `automatic-speech-recognition` pipeline is built from
              it once, on the first clip to transcribe (nothing is downloaded before), on `device` with `dtype`
              unless `asr_kwargs` say otherwise;
            - a ready `automatic-speech-recognition` pipeline: called with `asr_kwargs` on every call;
            - a callable `asr_model(audio, **asr_kwargs) -> str`: `audio` is one clip, a float32 numpy array
              `(samples,)`, mono, at 16 kHz; it is called once per clip (it may also return `{"text": str}`).
            A multilingual Whisper model id transcribes Korean (`WHISPER_KOREAN`) unless `asr_kwargs` give
            `generate_kwargs={"language": ...}` (`None` lets Whisper detect the language).
        asr_kwargs (`dict`, *optional*): for a model id, keyword arguments of `transformers.pipeline` (`device`,
            `dtype`, `model_kwargs`, `revision`, ...) and of the pipeline's call (`generate_kwargs`,
            `chunk_length_s`, ...), e.g. `{"generate_kwargs": {"language": "korean"}}` for Whisper; for a ready
            pipeline or a callable, keyword arguments of each call. `batch_size` sets the ASR batch size.
        device, dtype: where and in which precision a model id is loaded (the emotion pipeline's, by default).
        owner (`str`): how error messages name the emotion checkpoint the transcripts are for.

    Raises:
        ValueError: `asr_model` is of another type, a pipeline of another task, or `asr_kwargs` hold build-time
            options for a ready pipeline; on first use, a model id that is not a speech-recognition model or cannot
            be loaded (naming it and `owner`).
    """

    def __init__(self, asr_model, asr_kwargs: Mapping | None = None, *, device=None, dtype=None,
                 owner: str = "the emotion checkpoint"):
        if asr_kwargs is not None and not isinstance(asr_kwargs, Mapping):
            raise ValueError(f"asr_kwargs must be a dict of keyword arguments; got {type(asr_kwargs).__name__}.")
        kwargs = dict(asr_kwargs or {})
        self.owner = owner
        self._spec: str | None = None
        self._backend: Pipeline | Callable | None = None
        self._build_kwargs: dict = {}
        self._call_kwargs = {key: kwargs.pop(key) for key in ("batch_size",) if key in kwargs}
        if isinstance(asr_model, (str, os.PathLike)):
            self._spec = os.fspath(asr_model)
            self._build_kwargs = {"device": device, "dtype": dtype, **kwargs}
            self.name = repr(self._spec)
            return
        if isinstance(asr_model, Pipeline):
            from transformers import AutomaticSpeechRecognitionPipeline

            if not isinstance(asr_model, AutomaticSpeechRecognitionPipeline) and asr_model.task != ASR_TASK:
                raise ValueError(
                    f"asr_model is a {asr_model.task or type(asr_model).__name__!r} pipeline of "
                    f"{asr_model.model.name_or_path!r}, not an {ASR_TASK!r} one, so it cannot transcribe recordings "
                    f"for {owner}."
                )
            self.name = f"the {ASR_TASK} pipeline of {asr_model.model.name_or_path!r}"
        elif callable(asr_model):
            self.name = f"the callable {getattr(asr_model, '__qualname__', type(asr_model).__name__)}"
        else:
            raise ValueError(f"asr_model must be {ASR_MODEL_HELP}; got {type(asr_model).__name__}.")
        misplaced = sorted(BUILD_ONLY_ASR_KWARGS & kwargs.keys())
        if misplaced:
            raise ValueError(
                f"asr_kwargs {misplaced} apply only when asr_model is a model id (they build its pipeline); "
                f"{self.name} is built already."
            )
        self._backend = asr_model
        self._call_kwargs.update(kwargs)

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def load(self) -> None:
        """Build the speech-recognition pipeline of a model id (once); a no-op for a pipeline or a callable."""
        if self._backend is not None:
            return
        from transformers import AutoConfig, pipeline

        hub_kwargs = {key: self._build_kwargs[key] for key in ("revision", "token", "trust_remote_code")
                      if key in self._build_kwargs}
        try:
            config = AutoConfig.from_pretrained(self._spec, **hub_kwargs)
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(
                f"asr_model={self._spec!r} could not be loaded to transcribe recordings for {self.owner}: {error}"
            ) from error
        if not is_speech_recognition_config(config):
            raise ValueError(
                f"asr_model={self._spec!r} is a {config.model_type!r} model, not a speech-recognition one (a CTC or "
                f"sequence-to-sequence speech model such as 'openai/whisper-small'), so it cannot transcribe "
                f"recordings for {self.owner}."
            )
        if config.model_type == "whisper":
            self._build_kwargs = with_whisper_language(self._spec, self._build_kwargs, hub_kwargs)
        try:
            self._backend = pipeline(ASR_TASK, model=self._spec, **self._build_kwargs)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"asr_model={self._spec!r} could not be loaded as an {ASR_TASK!r} pipeline to transcribe recordings "
                f"for {self.owner}: {type(error).__name__}: {error}"
            ) from error

    def __call__(self, clips: list[np.ndarray], batch_size: int = 1) -> list[str | Exception]:
        """Transcribe `clips` (float32 `(samples,)` at 16 kHz): per clip, its stripped transcript or the exception
        the backend raised on it (or a ValueError when it returned something other than text), in order."""
        self.load()
        if not clips:
            return []
        if isinstance(self._backend, Pipeline):
            return self._run_pipeline(clips, batch_size)
        return [self._run_one(clip, SAMPLING_RATE) for clip in clips]

    def gives_timestamps(self) -> bool:
        """Whether `timestamped` can cut recordings at the recogniser's segments: a Whisper `automatic-speech-
        recognition` pipeline (a model id of a Whisper model, or such a ready pipeline), loaded here. A callable or
        a CTC model gives none (their character offsets are no utterance boundaries)."""
        self.load()
        return isinstance(self._backend, Pipeline) and getattr(self._backend, "type", None) == "seq2seq_whisper"

    def timestamped(self, clips: list[np.ndarray]) -> list[list[tuple[float, float | None, str]] | Exception]:
        """Per clip (float32 `(samples,)` at 16 kHz), Whisper's segments `(start_s, end_s, text)` in time order
        (`return_timestamps=True`; `end_s` is None where Whisper left its last segment open, i.e. it runs to the end
        of the clip), or the exception the backend raised on it. Clips are transcribed one at a time, so that a
        recording longer than 30 s goes through Whisper's long-form (sequential) decoding whole.

        Raises:
            ValueError: when the backend gives no timestamps (see `gives_timestamps`).
        """
        if not self.gives_timestamps():
            raise ValueError(f"{self.name} gives no segment timestamps (only a Whisper pipeline does).")
        rate = getattr(getattr(self._backend, "feature_extractor", None), "sampling_rate", None) or SAMPLING_RATE
        results: list[list[tuple[float, float | None, str]] | Exception] = []
        for clip in clips:
            try:
                output = self._backend({"raw": resample(clip, SAMPLING_RATE, rate), "sampling_rate": rate},
                                       **{**self._call_kwargs, "return_timestamps": True})
            except Exception as error:  # reported against the input it came from; the other inputs go on
                results.append(error)
                continue
            results.append(self._as_segments(output))
        return results

    def _as_segments(self, output) -> list[tuple[float, float | None, str]] | Exception:
        chunks = output.get("chunks") if isinstance(output, Mapping) else None
        if not isinstance(chunks, list):
            return ValueError(f"{self.name} returned no 'chunks' with return_timestamps=True")
        segments = []
        for chunk in chunks:
            timestamp = chunk.get("timestamp") if isinstance(chunk, Mapping) else None
            text = chunk.get("text") if isinstance(chunk, Mapping) else None
            if not isinstance(timestamp, (tuple, list)) or len(timestamp) != 2 or not isinstance(text, str):
                return ValueError(f"{self.name} returned a chunk {chunk!r}; expected {{'timestamp': (start, end), "
                                  "'text': str}")
            start, end = timestamp
            segments.append((0.0 if start is None else float(start), None if end is None else float(end),
                             text.strip()))
        return segments

    def _run_pipeline(self, clips: list[np.ndarray], batch_size: int) -> list[str | Exception]:
        kwargs = {"batch_size": max(1, batch_size), **self._call_kwargs}
        if getattr(self._backend, "type", None) in PADDING_SENSITIVE_ASR_TYPES:
            groups: dict[int, list[int]] = {}
            for index, clip in enumerate(clips):
                groups.setdefault(len(clip), []).append(index)
            batches = list(groups.values())
        else:
            batches = [list(range(len(clips)))]
        # Resampled here (soxr) if the model hears another rate: transformers would need torchaudio for it.
        rate = getattr(getattr(self._backend, "feature_extractor", None), "sampling_rate", None) or SAMPLING_RATE
        clips = [resample(clip, SAMPLING_RATE, rate) for clip in clips]
        results: list[str | Exception | None] = [None] * len(clips)
        for batch in batches:
            try:
                outputs = self._backend(
                    [{"raw": clips[i], "sampling_rate": rate} for i in batch], **kwargs
                )
            except Exception:  # one clip may break the batch: find it, keep the others' transcripts
                for i in batch:
                    results[i] = self._run_one(clips[i], rate)
                continue
            for i, output in zip(batch, outputs):
                results[i] = self._as_text(output)
        return results

    def _run_one(self, clip: np.ndarray, rate: int) -> str | Exception:
        try:
            if isinstance(self._backend, Pipeline):
                output = self._backend({"raw": clip, "sampling_rate": rate}, **self._call_kwargs)
            else:
                output = self._backend(clip, **self._call_kwargs)
        except Exception as error:  # reported against the input it came from; the other inputs go on
            return error
        return self._as_text(output)

    def _as_text(self, output) -> str | Exception:
        if isinstance(output, Mapping) and isinstance(output.get("text"), str):
            output = output["text"]
        if not isinstance(output, str):
            return ValueError(f"{self.name} returned {type(output).__name__}; expected a str (or {{'text': str}})")
        return output.strip()


__all__ = [
    "ASR_TASK",
    "ON_EMPTY_TRANSCRIPT",
    "Transcriber",
    "TranscriptionError",
    "WHISPER_KOREAN",
    "check_on_empty_transcript",
]
