"""`pipeline("emotion-multimodal")`: seven emotion scores and arousal/valence from a transcript and a recording.

This file is copied next to saved checkpoints (``trust_remote_code``): it may import only from numpy, torch,
transformers and the other ``*_klue_wav2vec2`` files, with single-dot imports.

Example:

```python
>>> import numpy as np
>>> from transformers import pipeline
>>> import kemd_emotion  # registers the task; without it, pass trust_remote_code=True
>>> classifier = pipeline("emotion-multimodal", model="path/to/checkpoint")  # doctest: +SKIP
>>> classifier({"text": "정말 화가 나요", "audio": "utterance.wav"}, top_k=2)  # doctest: +SKIP
{'emotions': [{'label': 'angry', 'score': 0.81}, {'label': 'neutral', 'score': 0.33}],
 'labels': ['angry'], 'arousal': 3.9, 'valence': 2.1}
```
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline
from transformers.utils import logging

from .configuration_klue_wav2vec2 import is_private_keyword
from .inputs_klue_wav2vec2 import (
    EXPECTED_INPUT,
    NO_WORDS,
    TOO_SHORT,
    TRANSCRIPTION_FAILED,
    InputError,
    InputProblem,
    Utterance,
    read_input,
)
from .processing_klue_wav2vec2 import SAMPLING_RATE, UnknownArgumentError
from .segmentation_klue_wav2vec2 import (
    check_segments, describe, segments_past_end, speech_segments, timestamp_segments
)
from .transcription_klue_wav2vec2 import Transcriber, TranscriptionError, check_on_empty_transcript

logger = logging.get_logger(__name__)

TASK = "emotion-multimodal"
CUSTOM_PIPELINE = {"impl": "pipeline_emotion.EmotionMultimodalPipeline", "pt": ["AutoModel"], "type": "multimodal"}
"""The `config.custom_pipelines` entry that lets `trust_remote_code=True` find this file in a checkpoint."""
PIPELINE_CODE_FILES = ("pipeline_emotion.py", "inputs_klue_wav2vec2.py", "transcription_klue_wav2vec2.py",
                       "segmentation_klue_wav2vec2.py")
"""The pipeline's code that `add_pipeline_files` copies into a checkpoint (beside the model's and processor's)."""

ENDPOINT_HANDLER = "handler.py"
"""The Inference Endpoints handler (`EndpointHandler`) that `add_pipeline_files` copies into checkpoints too."""

META_KEYS = ("start", "end", "is_last", "speech", "transcript", "transcript_source", "segmentation")
"""What `preprocess` passes beside the model inputs to `postprocess`, untouched by the model."""
ERRORS = ("raise", "return")
"""`errors=`: raise for the first bad input of a call, or return `{"error": ...}` in its place."""
GROUP_SIZE = 64
"""Inputs of a list read (decoded), transcribed and scored together (or `batch_size`, if larger): memory holds one
group's recordings."""
UTTERANCES = "utterances"
"""`segment="utterances"`: cut each recording at its pauses (`speech_segments`) and score every utterance."""
NO_SPEECH_NOTE = "no speech was found: the recording holds no utterance (silence or steady noise), so nothing was scored"


def transcript_of(model_outputs: list[dict]) -> dict:
    """`{"transcript", "transcript_source"}` of the windows of one input (empty for a model that reads no text).

    A given text is the same in every window. Machine transcripts of windows are joined with spaces (words in the
    overlap of overlapping windows then appear twice; each chunk holds its own).
    """
    if "transcript_source" not in model_outputs[0]:
        return {}
    source = model_outputs[0]["transcript_source"]
    if source == "given":
        return {"transcript": model_outputs[0]["transcript"], "transcript_source": source}
    transcript = " ".join(output["transcript"] for output in model_outputs if output["transcript"])
    return {"transcript": transcript, "transcript_source": source}


def window_bounds(num_samples: int, window: int, hop: int) -> list[tuple[int, int]]:
    """`(start, end)` sample indices of windows of `window` samples every `hop` samples covering `num_samples`.

    A recording no longer than one window is one window. Otherwise the last window is moved back to end with the
    recording, so that every window is `window` samples long (it then overlaps its neighbour more).

    >>> window_bounds(10, 4, 4)
    [(0, 4), (4, 8), (6, 10)]
    >>> window_bounds(3, 4, 4)
    [(0, 3)]
    """
    if hop < 1:
        raise ValueError(f"hop={hop} samples: windows must advance by at least one sample.")
    if num_samples <= window:
        return [(0, num_samples)]
    bounds, start = [], 0
    while start + window < num_samples:
        bounds.append((start, start + window))
        start += hop
    bounds.append((num_samples - window, num_samples))
    return bounds


class EmotionMultimodalPipeline(ChunkPipeline):
    r"""
    Scores an utterance, given as its transcript and its recording, on the seven KEMDy emotions and on arousal and
    valence.

    Inputs (one, or a list of them):
        `{"text": str, "audio": path | bytes | np.ndarray | {"array": np.ndarray, "sampling_rate": int}}`. A path
        (or the bytes of a file) may hold anything soundfile reads, at any sampling rate and channel count
        (down-mixed and resampled to 16 kHz); a bare array is taken to be 16 kHz. Every input is read (decoded and
        checked) once, by `kemd_emotion.inputs_klue_wav2vec2.read_input`. A text-only model (`fusion="text"`) needs only `"text"`, a speech-only one
        (`fusion="speech"`) only `"audio"`; the other key is then ignored. Other keys are ignored, so the rows of
        `kemd_emotion.data.load_kemdy(...)` can be passed as they are. With `asr_model`, a fused model's input may
        come without `"text"` (or with `"text": None`): see "Recordings without a transcript".

    Output per input:
        `{"emotions": [{"label", "score"}, ...], "labels": [...], "arousal": float, "valence": float}`: `emotions`
        holds the `top_k` best of the seven emotions, best first, with their sigmoid scores (the emotions are
        multi-label, so the scores are independent and do not sum to 1); `labels` names the emotions scoring above
        their decision threshold, best first, or, when none does, the one whose logit is furthest above (least below)
        the logit of its threshold (the best one when all thresholds are equal): the rule behind the reported
        F-scores;
        `arousal` and `valence` are on the corpus' 1-5 rating scale. A model that reads text adds `"transcript"`,
        the text it read, and `"transcript_source"`: `"given"` (the input's text) or `"asr"` (machine-made).

    Long recordings:
        Without `chunk_length_s`, a recording longer than the processor's `max_audio_seconds` (5 s by default) is
        cropped to its first `max_audio_seconds`, as in training. With `chunk_length_s`, the whole recording is cut
        into windows of `chunk_length_s` seconds, `stride_length_s` seconds overlapping (no overlap by default; the
        last window is moved back to end with the recording), and each window is scored with the *whole* transcript
        as its text (transcripts carry no word timings). The output then also has `"chunks"`: one
        `{"start", "end", "emotions", "labels", "arousal", "valence"}` per window (plus its `"transcript"` and
        `"transcript_source"`), times in seconds, and the top-level scores are the mean over the windows (all windows
        have the same length, so this is the length-weighted mean). `chunk_length_s` may not exceed the processor's
        `max_audio_seconds`: the model never saw longer clips.

    Conversations (`segment`):
        `segment="utterances"` cuts each recording at its pauses (an energy-based voice-activity split with no
        model, `speech_segments` in `segmentation_klue_wav2vec2.py`; an utterance longer than `max_audio_seconds`
        is split at its quietest frame) and scores every utterance with its own audio; `segment=[(start, end),
        ...]` (seconds, in time order, not overlapping, each at least the encoder's shortest clip and at most
        `max_audio_seconds`) scores the segments you give (from a diarisation model, say) instead. The text of
        a fused model: an input's `"text"`, when it has one, is the whole recording's and is read with *every*
        utterance (transcripts carry no word timings); an input without one is transcribed by `asr_model`. A
        Whisper `asr_model` (a model id or an `automatic-speech-recognition` pipeline of one) transcribes the whole
        recording once with `return_timestamps=True` and the recording is cut at Whisper's segments
        (`timestamp_segments`): each utterance is scored with its own audio and the words Whisper heard in it, no
        second transcription. Short segments join their nearer neighbour, an utterance longer than
        `max_audio_seconds` is split between its segments; a single Whisper segment longer than that is split at
        its quietest frame and both parts carry its whole text. Any other `asr_model` (a callable, a CTC model)
        gives no timestamps: the energy split cuts the recording and each utterance is transcribed on its own. The
        output has `"segmentation"`: `"asr_timestamps"`, `"energy"` or `"given"` (your `segment` list), and
        `"utterances"`: one `{"start", "end", "emotions", "labels", "arousal", "valence"}` per utterance (plus its
        `"transcript"` and `"transcript_source"`), times in seconds (4 decimals, like `"chunks"`), and the top-level
        scores are the duration-weighted mean over the utterances (labels by the same rule as one utterance's). A
        recording in which no speech is found is no error: its answer has `"utterances": []`, `"emotions": []`,
        `"labels": []`, `"arousal": None`, `"valence": None` and a `"note"` saying so. `segment` and
        `chunk_length_s` cannot be combined.

    Recordings without a transcript (`asr_model`):
        An input without text is transcribed by `asr_model` (else by the checkpoint's `config.asr_model`) from its
        whole recording, never the training crop; with `chunk_length_s`, each window is transcribed from its own
        audio and scored with its own transcript (the top-level `"transcript"` joins them). The inputs of one call
        that need it are transcribed in one call of the speech-recognition model (see `Transcriber` for which
        backends batch); an input with text is never transcribed. Nothing is loaded until an input needs it.
        When the model hears no words, the input fails (`TranscriptionError`) unless `on_empty_transcript=
        "speech_only"`: the clip is then scored as training scored an utterance whose transcript held only markers
        (a laugh, a breath): the text side reads the tokenizer's unknown token, the voice carries the scores, and
        the output has `"transcript": ""`. A text-only checkpoint does not transcribe: it cannot listen.

    Args (at construction or per call):
        top_k (`int`, *optional*): how many emotions to list; all seven by default.
        threshold (`float`, *optional*): the score above which an emotion is in `labels`, for every emotion.
            Default: the checkpoint's own per-emotion `config.decision_thresholds` (tuned on held-out rows), else 0.5.
        chunk_length_s (`float`, *optional*): window length in seconds for long recordings.
        stride_length_s (`float`, *optional*): overlap of consecutive windows in seconds (default 0).
        segment (`str` or `list`, *optional*): None (the whole recording, or windows), `"utterances"` or a list of
            `(start, end)` pairs of seconds (see "Conversations").
        batch_size (`int`, *optional*): utterances (or windows) per forward pass; the numbers do not change with it
            because the model pools real tokens and frames only. Also the speech-recognition batch size, unless
            `asr_kwargs` set one.
        on_empty_transcript (`str`, defaults to `"error"`): `"error"` or `"speech_only"` (see above).
        errors (`str`, defaults to `"raise"`): what a bad input does. `"raise"`: an `InputError` (a ValueError)
            naming it, before its group of up to 64 inputs is scored. `"return"`: its answer is
            `{"error": {"index", "field", "code", "message", "expected"}}` (`field`: `"audio"`, `"text"`,
            `"audio.sampling_rate"`, ...; `code`: `"missing"`, `"unreadable"`, `"too_short"`, `"no_words"`, ...) and
            the other inputs are scored; with a generator the answers then come lazily, 64 inputs at a time.
        max_input_seconds (`float`, *optional*): refuse longer recordings (a file's from its header, before
            decoding); no limit by default. The demo and the endpoint use `LONG_INPUT_SECONDS` (15 minutes).

    Args (at construction only):
        asr_model: a speech-recognition model id or folder (e.g. `"openai/whisper-small"`), an
            `automatic-speech-recognition` pipeline, or a callable `asr_model(audio, **asr_kwargs) -> str` taking one
            float32 `(samples,)` mono clip at 16 kHz. A model id is loaded once, on this pipeline's device and dtype.
        asr_kwargs (`dict`, *optional*): options of that model, e.g. `{"generate_kwargs": {"language": "korean"}}`
            for Whisper; for a model id also `transformers.pipeline` options (`device`, `dtype`, ...), which then win.
            A multilingual Whisper model id transcribes Korean unless they name a language (`None`: it detects one).

    Raises:
        InputError (a ValueError): naming the input and its field (`inputs[2]['audio']`) and what was expected, for
            a missing or unreadable audio file, an unsupported audio type, a dict without the needed keys, empty text
            for a model that reads text, a clip shorter than the speech encoder's shortest (25 ms), or a text-only
            checkpoint given audio without text, or a recording that ends before the last given `segment`; its
            `problem` is the structured `InputProblem`.
        ValueError: for bad parameters, e.g. `segments[3]=(4.0, 3.5): ends before it starts.`, or `segment`
            with `chunk_length_s`.
        ValueError: naming `asr_model` and the checkpoint when it is not a speech-recognition model or cannot be
            loaded.
        TranscriptionError (a ValueError): naming each input the speech-recognition model failed on or heard no words
            in; the call's other inputs were scored, and their outputs are in the error's `results`.
    """

    InputProblem = InputProblem
    """The structured problem of a bad input (in answers with errors="return": `InputProblem.from_dict`), here for
    code that has the pipeline but not its module (the endpoint handler)."""
    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_video_processor = False

    def __init__(self, *args, asr_model=None, asr_kwargs=None, on_empty_transcript: str = "error",
                 errors: str = "raise", max_input_seconds: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.errors, self.max_input_seconds = self._input_settings(errors, max_input_seconds)
        check_speech_encoder = getattr(self.processor, "check_speech_encoder", None)
        if self.needs_audio and check_speech_encoder is not None:  # a wav2vec2 feature extractor for Whisper, ...
            check_speech_encoder(self.model.config.audio_config)
        self._setup_transcription(asr_model, asr_kwargs, on_empty_transcript)

    # ------------------------------------------------------------------ parameters
    @property
    def needs_text(self) -> bool:
        return self.model.config.uses_text

    @property
    def needs_audio(self) -> bool:
        return self.model.config.uses_audio

    @staticmethod
    def _input_settings(errors, max_input_seconds) -> tuple[str, float | None]:
        if errors not in ERRORS:
            raise ValueError(f"errors={errors!r} is not supported; expected one of {', '.join(map(repr, ERRORS))}.")
        if max_input_seconds is not None and (isinstance(max_input_seconds, bool) or not isinstance(
                max_input_seconds, (int, float)) or not max_input_seconds > 0):
            raise ValueError(f"max_input_seconds must be a positive number of seconds or None; got "
                             f"{max_input_seconds!r}.")
        return errors, max_input_seconds

    def _sanitize_parameters(self, top_k=None, threshold=None, chunk_length_s=None, stride_length_s=None,
                             segment=None, **kwargs):
        unknown = sorted(name for name in kwargs if not is_private_keyword(name))  # transformers' own pass
        if unknown:
            raise UnknownArgumentError(
                f"{type(self).__name__} got unexpected argument(s) {', '.join(unknown)}; it accepts top_k, "
                "threshold, chunk_length_s, stride_length_s, segment and the pipeline's own (batch_size, ...)."
            )
        preprocess, postprocess = {}, {}
        num_labels = self.model.config.num_labels
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= num_labels:
                raise ValueError(f"top_k must be a whole number from 1 to {num_labels}; got {top_k!r}.")
            postprocess["top_k"] = top_k
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
                raise ValueError(f"threshold must be a score between 0 and 1; got {threshold!r}.")
            postprocess["threshold"] = float(threshold)
        if stride_length_s is not None and chunk_length_s is None:
            raise ValueError("stride_length_s needs chunk_length_s: it is the overlap of consecutive windows.")
        if segment is not None and chunk_length_s is not None:
            raise ValueError("segment and chunk_length_s cannot be used together: segment cuts a recording at its "
                             "utterances, chunk_length_s into fixed windows. Pass one of them.")
        if chunk_length_s is not None:
            preprocess.update(self._check_chunking(chunk_length_s, stride_length_s))
            postprocess["chunked"] = True
        if segment is not None:
            preprocess["segment"] = self._check_segment(segment)
            postprocess["segmented"] = True
        return preprocess, {}, postprocess

    def _check_segment(self, segment) -> str | tuple[tuple[int, int], ...]:
        """`segment=` -> `UTTERANCES`, or the user's segments as `(start, end)` sample bounds (checked here, before
        any work, except against each recording's length: `_read` does that)."""
        if not self.needs_audio:
            raise ValueError("segment cuts recordings at their utterances, but this model (fusion='text') reads no "
                             "audio.")
        if isinstance(segment, str):
            if segment != UTTERANCES:
                raise ValueError(f"segment={segment!r} is not supported; expected None, {UTTERANCES!r} or a list of "
                                 "(start, end) pairs of seconds.")
            return UTTERANCES
        limit = getattr(self.processor, "max_audio_samples", None)
        return tuple(check_segments(segment, min_samples=self.model.config.min_audio_samples, max_samples=limit))

    def _segments(self, audio: np.ndarray, segment) -> list[tuple[int, int]]:
        """`(start, end)` samples of the utterances `segment` names in `audio` (`[]`: no speech was found)."""
        if segment == UTTERANCES:
            limit = getattr(self.processor, "max_audio_seconds", None)
            return speech_segments(audio, SAMPLING_RATE, max_utterance_seconds=limit)
        return list(segment)

    def _cuts(self, audio: np.ndarray, window: int | None, hop: int | None, segment) -> list[tuple[int, int]] | None:
        """The `(start, end)` samples each scored clip of `audio` is cut at (windows or segments), or None for the
        whole recording."""
        if segment is not None:
            return self._segments(audio, segment)
        if window is not None:
            return window_bounds(audio.shape[0], window, hop)
        return None

    def _check_chunking(self, chunk_length_s, stride_length_s) -> dict:
        if not self.needs_audio:
            raise ValueError("chunk_length_s cuts recordings into windows, but this model (fusion='text') reads no audio.")
        if isinstance(chunk_length_s, bool) or not isinstance(chunk_length_s, (int, float)) or not chunk_length_s > 0:
            raise ValueError(f"chunk_length_s must be a positive number of seconds; got {chunk_length_s!r}.")
        limit = getattr(self.processor, "max_audio_seconds", None)
        if limit is not None and chunk_length_s > limit + 1e-9:
            raise ValueError(
                f"chunk_length_s={chunk_length_s} is longer than the processor's max_audio_seconds={limit}: every "
                f"window would be cropped to its first {limit} s. Use chunk_length_s <= {limit}."
            )
        stride = 0.0 if stride_length_s is None else stride_length_s
        if isinstance(stride, bool) or not isinstance(stride, (int, float)) or not 0 <= stride < chunk_length_s:
            raise ValueError(
                f"stride_length_s must be at least 0 and shorter than chunk_length_s={chunk_length_s}; got {stride!r}."
            )
        # Checked in samples, the unit the windows are cut in: seconds that differ can round to the same sample.
        window = int(round(chunk_length_s * SAMPLING_RATE))
        shortest = self.model.config.min_audio_samples
        if window < shortest:
            raise ValueError(f"chunk_length_s={chunk_length_s} is shorter than the speech encoder's shortest clip, "
                             f"{1000 * shortest / SAMPLING_RATE:g} ms.")
        hop = window - int(round(stride * SAMPLING_RATE))
        if hop < 1:
            raise ValueError(
                f"chunk_length_s={chunk_length_s} and stride_length_s={stride_length_s} leave consecutive windows "
                f"{hop} samples apart at {SAMPLING_RATE} Hz; the windows must advance by at least one sample "
                f"(stride_length_s <= {(window - 1) / SAMPLING_RATE:g})."
            )
        return {"window": window, "hop": hop}

    # ------------------------------------------------------------------ call
    def __call__(self, inputs, **kwargs):
        """Score one input or a list of inputs (see the class docstring); returns one dict or a list of dicts."""
        errors, max_seconds = self._input_settings(kwargs.pop("errors", self.errors),
                                                   kwargs.pop("max_input_seconds", self.max_input_seconds))
        asr = self._transcription_settings(kwargs)
        read_settings = {"max_seconds": max_seconds, "segment": asr["segment"]}
        if isinstance(inputs, (list, tuple)):
            outputs, failed = [], {}
            size = max(GROUP_SIZE, kwargs.get("batch_size", self._batch_size) or 1)
            for start in range(0, len(inputs), size):
                group = self._read_group(inputs[start:start + size], start, errors, read_settings)
                outputs.extend(self._score_group(group, kwargs, asr, errors, failed))
            if failed:  # errors="raise": the inputs that were transcribed are still scored; the error carries them
                raise TranscriptionError({problem.index: str(problem) for problem in failed.values()}, outputs)
            return outputs
        if isinstance(inputs, Iterable) and not isinstance(inputs, (Mapping, str, bytes, np.ndarray, torch.Tensor)):
            # A generator or a datasets.Dataset: read lazily, answered lazily (as transformers' pipelines do).
            if errors == "return":
                return self._answer_stream(inputs, kwargs, asr, read_settings)
            return super().__call__(self._read_stream(inputs, read_settings, **asr), **kwargs)
        [read] = self._read_group([inputs], None, errors, read_settings)  # one input (anything else is its error)
        if isinstance(read, InputProblem):
            return {"error": read.to_dict()}
        self._transcribe([read], **asr)
        if read.problem is not None:
            if errors == "return":
                return {"error": read.problem.to_dict()}
            raise TranscriptionError({None: str(read.problem)})
        return super().__call__(read, **kwargs)

    def _read(self, value, index: int | None, max_seconds: float | None, segment=None) -> Utterance:
        """`read_input` for this model (raises `InputError`); with given segments (sample bounds), a recording
        that ends before the last of them is refused too."""
        utterance = read_input(value, index, reads_text=self.needs_text, reads_audio=self.needs_audio,
                               can_transcribe=self.can_transcribe, min_samples=self.model.config.min_audio_samples,
                               max_seconds=max_seconds, owner=self._checkpoint_name(),
                               transcriber=None if self.transcriber is None else self.transcriber.name)
        if segment is not None and segment != UTTERANCES and utterance.audio is not None:
            past = segments_past_end(list(segment), utterance.audio.shape[0])
            if past is not None:
                start, end = segment[past]
                named = describe(past, (start / SAMPLING_RATE, end / SAMPLING_RATE))
                raise InputError(InputProblem(
                    index, "audio", TOO_SHORT, f"is {utterance.seconds:g} s long, and {named} ends after it",
                    f"a recording at least {segment[-1][1] / SAMPLING_RATE:g} s long (the end of the last segment)",
                    "Give segments within the recording."))
        return utterance

    def _read_group(self, values, start: int | None, errors: str, settings: dict) -> list[Utterance | InputProblem]:
        """Read each input (`start`: the first one's index, None for a single input); a bad one raises, or with
        errors="return" stays as its `InputProblem`."""
        read = []
        for offset, value in enumerate(values):
            try:
                read.append(self._read(value, None if start is None else start + offset, **settings))
            except InputError as error:
                if errors == "raise":
                    raise
                read.append(error.problem)
        return read

    def _score_group(self, group: list[Utterance | InputProblem], kwargs: dict, asr: dict, errors: str,
                     failed: dict) -> list[dict | None]:
        """Transcribe and score one group's readable inputs; answers in the order given. A failed transcription is
        collected in `failed` (errors="raise": its answer is None) or answered with its error."""
        utterances = [item for item in group if isinstance(item, Utterance)]
        self._transcribe(utterances, **asr)
        for utterance in utterances:
            if utterance.problem is not None and errors == "raise":
                failed[utterance.index] = utterance.problem
        ready = [u for u in utterances if u.problem is None]
        scores = iter(self._score_list(ready, kwargs))
        answers = []
        for item in group:
            problem = item if isinstance(item, InputProblem) else item.problem
            if problem is None:
                answers.append(next(scores))
            else:
                answers.append(None if errors == "raise" else {"error": problem.to_dict()})
        return answers

    def _score_list(self, utterances: list[Utterance], kwargs: dict) -> list[dict]:
        """Score read (and transcribed) inputs; answers in the order given."""
        batch_size = kwargs.get("batch_size", self._batch_size) or 1
        if batch_size == 1 or len(utterances) < 2 or not self.needs_audio:
            return super().__call__(utterances, **kwargs) if utterances else []
        # Batches of similar durations pad less: score longest first, answer in the order given.
        order = sorted(range(len(utterances)), key=lambda i: -utterances[i].seconds)
        scored = super().__call__([utterances[i] for i in order], **kwargs)
        answers = [None] * len(utterances)
        for position, index in enumerate(order):
            answers[index] = scored[position]
        return answers

    def _answer_stream(self, inputs: Iterable, kwargs: dict, asr: dict, settings: dict):
        """errors="return" over a generator or Dataset: answers lazily, `GROUP_SIZE` inputs at a time."""
        group, start = [], 0
        for index, value in enumerate(inputs):
            group.append(value)
            if len(group) == GROUP_SIZE:
                yield from self._score_group(self._read_group(group, start, "return", settings), kwargs, asr,
                                             "return", {})
                group, start = [], index + 1
        if group:
            yield from self._score_group(self._read_group(group, start, "return", settings), kwargs, asr,
                                         "return", {})

    def _read_stream(self, inputs: Iterable, read_settings: dict, **settings):
        """Read and transcribe a lazy stream of inputs group by group (`batch_size` inputs per ASR call); a bad
        input raises when it is reached."""
        group = []
        for index, value in enumerate(inputs):
            group.append(self._read(value, index, **read_settings))
            if len(group) >= settings["batch_size"]:
                self._transcribe(group, **settings)
                yield from group
                group = []
        self._transcribe(group, **settings)
        yield from group

    # ------------------------------------------------------------------ transcription
    @property
    def can_transcribe(self) -> bool:
        """Whether inputs without `"text"` are transcribed: a fused checkpoint with an `asr_model` (given, or the
        checkpoint's `config.asr_model`)."""
        return self.transcriber is not None

    def _checkpoint_name(self) -> str:
        name = getattr(self.model.config, "name_or_path", "") or ""
        fusion = f"(fusion={self.model.config.fusion!r})"
        return f"the emotion checkpoint {name!r} {fusion}" if name else f"this emotion checkpoint {fusion}"

    def _setup_transcription(self, asr_model, asr_kwargs, on_empty_transcript) -> None:
        """Keep what `asr_model` names (nothing is loaded until an input needs a transcript)."""
        self.on_empty_transcript = check_on_empty_transcript(on_empty_transcript, self.model.config.fusion)
        given = asr_model is not None
        if asr_model is None:
            asr_model = getattr(self.model.config, "asr_model", None)
        self.transcriber = None
        if asr_model is None:
            if asr_kwargs:
                raise ValueError("asr_kwargs were given without asr_model: they configure the speech recogniser.")
            return
        if not self.needs_text:
            if given:
                logger.warning(f"asr_model is not used: {self._checkpoint_name()} reads no text.")
            return
        self.transcriber = Transcriber(
            asr_model, asr_kwargs, device=self.device, dtype=self.model.dtype, owner=self._checkpoint_name()
        )

    def _transcription_settings(self, kwargs: dict) -> dict:
        """Check the call's parameters before any work; return how `_transcribe` cuts and batches clips."""
        on_empty_transcript = kwargs.pop("on_empty_transcript", None)
        if on_empty_transcript is None:
            on_empty_transcript = self.on_empty_transcript
        else:
            check_on_empty_transcript(on_empty_transcript, self.model.config.fusion)
        # All of the call's parameters (Pipeline.__call__ takes batch_size and num_workers itself): a typo fails here,
        # not after the speech-recognition work.
        preprocess_params, _, _ = self._sanitize_parameters(
            **{key: value for key, value in kwargs.items() if key not in ("batch_size", "num_workers")}
        )
        windows = {**self._preprocess_params, **preprocess_params}
        return {
            "window": windows.get("window"),
            "hop": windows.get("hop"),
            "segment": windows.get("segment"),
            "batch_size": kwargs.get("batch_size", self._batch_size) or 1,
            "on_empty_transcript": on_empty_transcript,
        }

    def _transcribe(self, utterances: list[Utterance], window: int | None, hop: int | None, batch_size: int,
                    on_empty_transcript: str, segment=None) -> None:
        """Give every read input without text its transcripts (or its `problem`), in one ASR call.

        The whole recording is transcribed (never the training crop); with `window` each window of it, with
        `segment` each utterance of it, is transcribed on its own, for the clip scored with it.
        """
        if not self.can_transcribe or not self.needs_text:
            return
        pending = [u for u in utterances if u.text is None and u.transcripts is None and u.problem is None]
        if not pending:
            return
        if segment == UTTERANCES and self.transcriber.gives_timestamps():
            spans = self._timestamped_spans(pending)
        else:
            clips, cut = [], []
            for utterance in pending:
                audio = utterance.audio
                bounds = self._cuts(audio, window, hop, segment)
                bounds = [(0, audio.shape[0])] if bounds is None else bounds
                cut.append((utterance, bounds))
                clips.extend(audio[start:end] for start, end in bounds)
            texts = iter(self.transcriber(clips, batch_size=batch_size) if clips else ())
            spans = [(utterance, bounds, [next(texts) for _ in bounds]) for utterance, bounds in cut]
        for utterance, bounds, transcripts in spans:
            if len(transcripts) == 1 and isinstance(transcripts[0], Exception) and bounds is None:
                # the recogniser failed on the whole recording it was to cut
                error = transcripts[0]
                utterance.problem = InputProblem(
                    utterance.index, "text", TRANSCRIPTION_FAILED,
                    f"is missing and could not be made: {self.transcriber.name} failed on the recording: "
                    f"{type(error).__name__}: {error}, and {self._checkpoint_name()} needs a transcript",
                    "a transcript: 'text', or speech the recogniser hears words in", "Pass 'text' for this input.")
                continue
            problems, wordless = [], True
            for (start, end), text in zip(bounds, transcripts):
                where = "the recording" if window is None and segment is None else (
                    f"{'window' if segment is None else 'utterance'} {start / SAMPLING_RATE:g}-"
                    f"{end / SAMPLING_RATE:g} s")
                if isinstance(text, Exception):
                    wordless = False
                    problems.append(f"{self.transcriber.name} failed on {where}: {type(text).__name__}: {text}")
                elif not text and on_empty_transcript == "error":
                    problems.append(f"{self.transcriber.name} heard no words in {where} (an empty transcript: silence "
                                    "or noise?)")
            if problems:
                hint = ", or on_empty_transcript='speech_only' to score wordless clips from their speech"
                utterance.problem = InputProblem(
                    utterance.index, "text", NO_WORDS if wordless else TRANSCRIPTION_FAILED,
                    f"is missing and could not be made: {'; '.join(problems)}, and {self._checkpoint_name()} needs a "
                    "transcript", "a transcript: 'text', or speech the recogniser hears words in",
                    f"Pass 'text' for this input{hint if wordless else ''}.")
            else:
                utterance.transcripts = transcripts
                if segment == UTTERANCES and self.transcriber.gives_timestamps():
                    utterance.segments = bounds

    def _timestamped_spans(self, pending: list[Utterance]) -> list[tuple[Utterance, list | None, list]]:
        """`(utterance, bounds, transcripts)` of each recording cut at the recogniser's segment timestamps
        (`timestamp_segments`, with `speech_segments`' length rules); `bounds` None where the recogniser failed on
        the recording (its one transcript is then the exception)."""
        limit = getattr(self.processor, "max_audio_seconds", None)
        spans = []
        for utterance, result in zip(pending, self.transcriber.timestamped([u.audio for u in pending])):
            if isinstance(result, Exception):
                spans.append((utterance, None, [result]))
                continue
            cut = timestamp_segments(utterance.audio, result, SAMPLING_RATE, max_utterance_seconds=limit,
                                     min_samples=self.model.config.min_audio_samples)
            spans.append((utterance, [(start, end) for start, end, _ in cut], [text for _, _, text in cut]))
        return spans

    def _window_texts(self, utterance: Utterance, num_windows: int) -> list[tuple[str | None, str | None, str | None]]:
        """Per window: (what the tokenizer reads, the transcript to report, its source); Nones for speech-only."""
        if not self.needs_text:
            return [(None, None, None)] * num_windows
        if utterance.transcripts is None:
            return [(utterance.text, utterance.text, "given")] * num_windows
        if len(utterance.transcripts) != num_windows:  # _transcribe cuts the windows preprocess cuts
            raise RuntimeError(f"{utterance.name}: {len(utterance.transcripts)} transcripts for {num_windows} windows.")
        # A wordless clip reads as training read an utterance whose transcript held only markers (see
        # check_on_empty_transcript): never an empty text.
        no_words = getattr(self.processor.tokenizer, "unk_token", None) or "[UNK]"
        return [(text or no_words, text, "asr") for text in utterance.transcripts]

    # ------------------------------------------------------------------ steps
    def preprocess(self, utterance: Utterance, window: int | None = None, hop: int | None = None, segment=None):
        """Yield the model inputs of one read input: one item, or one per window when chunking, one per utterance
        when segmenting (a recording with no utterance yields one placeholder, `"speech": False`, whose scores
        `postprocess` drops: a chunk pipeline needs an item per input)."""
        if not isinstance(utterance, Utterance):  # transformers' own callers (e.g. a subclass) pass raw inputs
            utterance = self._read(utterance, None, self.max_input_seconds, segment)
        if utterance.problem is not None:  # a generator's input: raised when reached
            raise TranscriptionError({utterance.index: str(utterance.problem)})
        audio = utterance.audio
        speech = True
        if audio is None:
            bounds = [(0, 0)]
        elif utterance.segments is not None:  # cut at the recogniser's timestamps when it was transcribed
            bounds = list(utterance.segments)
        elif window is not None or segment is not None:
            bounds = self._cuts(audio, window, hop, segment)
        else:
            limit = self.processor.max_audio_samples
            if limit is not None and audio.shape[0] > limit:
                logger.warning_once(
                    f"Recordings longer than max_audio_seconds={self.processor.max_audio_seconds} are cropped to their "
                    "start, as in training; pass chunk_length_s to score whole recordings window by window."
                )
            bounds = [(0, audio.shape[0] if limit is None else min(limit, audio.shape[0]))]
        texts = self._window_texts(utterance, len(bounds))
        if not bounds:  # no speech: a placeholder clip, scored and dropped
            speech, bounds = False, [(0, min(audio.shape[0], max(self.model.config.min_audio_samples, SAMPLING_RATE)))]
            no_words = getattr(self.processor.tokenizer, "unk_token", None) or "[UNK]"
            texts = [(utterance.text or no_words, utterance.text, "given" if utterance.text else "asr")
                     if self.needs_text else (None, None, None)]
        segmentation = {} if segment is None or audio is None else {"segmentation": (
            "asr_timestamps" if utterance.segments is not None else "energy" if segment == UTTERANCES else "given")}
        for number, ((start, end), (text, transcript, source)) in enumerate(zip(bounds, texts)):
            clip = None if audio is None else audio[start:end]
            features = self.processor(text=text, audio=clip, sampling_rate=SAMPLING_RATE, return_tensors="pt")
            if "input_features" in features:
                # Whisper's (1, mel bins, frames) goes frames first: the pipeline's batching pads axis 1 (`_forward`
                # turns it back).
                features["input_features"] = features["input_features"].transpose(1, 2)
            yield {
                **features,
                "start": start / SAMPLING_RATE,
                "end": end / SAMPLING_RATE,
                "is_last": number == len(bounds) - 1,
                "speech": speech,
                **({} if source is None else {"transcript": transcript, "transcript_source": source}),
                **segmentation,
            }

    def _forward(self, model_inputs: dict) -> dict:
        meta = {key: model_inputs.pop(key) for key in META_KEYS if key in model_inputs}
        if "input_values" in model_inputs:
            model_inputs["input_values"] = model_inputs["input_values"].to(self.model.dtype)
        if "input_features" in model_inputs:  # frames first from `preprocess`
            model_inputs["input_features"] = model_inputs["input_features"].transpose(1, 2).to(self.model.dtype)
        outputs = self.model(**model_inputs, return_dict=True)
        # logits first: the pipeline's un-batching reads the batch size from the first value.
        return {"logits": outputs.logits, "regression": outputs.regression, **meta}

    def postprocess(
        self, model_outputs: list[dict], top_k: int | None = None, threshold: float | None = None, chunked: bool = False,
        segmented: bool = False,
    ) -> dict:
        """Window outputs of one input -> its scores (and its `"chunks"` when it was cut into windows, its
        `"utterances"` when it was cut at its utterances)."""
        if segmented:
            return self._timeline(model_outputs, top_k, threshold)
        probabilities = torch.cat([torch.sigmoid(output["logits"].float()) for output in model_outputs]).numpy()
        regression = torch.cat([output["regression"].float() for output in model_outputs]).numpy()
        result = self._scores(probabilities.mean(0), regression.mean(0), top_k, threshold)
        result.update(transcript_of(model_outputs))
        if chunked:
            result["chunks"] = [
                {
                    "start": round(float(output["start"]), 4),
                    "end": round(float(output["end"]), 4),
                    **self._scores(probabilities[i], regression[i], top_k, threshold),
                    **transcript_of([output]),
                }
                for i, output in enumerate(model_outputs)
            ]
        return result

    def _timeline(self, model_outputs: list[dict], top_k, threshold) -> dict:
        """Utterance outputs of one input -> the duration-weighted mean scores and `"utterances"`, or, when no
        speech was found, `"utterances": []` with a `"note"` and no scores."""
        spoken = [output for output in model_outputs if bool(output["speech"])]
        how = {"segmentation": model_outputs[0]["segmentation"]} if "segmentation" in model_outputs[0] else {}
        if not spoken:
            return {"emotions": [], "labels": [], "arousal": None, "valence": None, **transcript_of(model_outputs),
                    "utterances": [], **how, "note": NO_SPEECH_NOTE}
        probabilities = torch.cat([torch.sigmoid(output["logits"].float()) for output in spoken]).double().numpy()
        regression = torch.cat([output["regression"].float() for output in spoken]).double().numpy()
        durations = np.array([float(output["end"]) - float(output["start"]) for output in spoken])
        weights = durations / durations.sum()
        result = self._scores(weights @ probabilities, weights @ regression, top_k, threshold)
        result.update(transcript_of(spoken))
        result["utterances"] = [
            {
                "start": round(float(output["start"]), 4),
                "end": round(float(output["end"]), 4),
                **self._scores(probabilities[i], regression[i], top_k, threshold),
                **transcript_of([output]),
            }
            for i, output in enumerate(spoken)
        ]
        result.update(how)
        return result

    def _scores(self, probabilities: np.ndarray, regression: np.ndarray, top_k, threshold) -> dict:
        """`(num_labels,)` probabilities and `(2,)` arousal/valence -> the output dict of one utterance or window."""
        id2label = self.model.config.id2label
        order = np.argsort(-probabilities, kind="stable")
        emotions = [{"label": id2label[int(i)], "score": float(probabilities[i])} for i in order]
        thresholds = self.decision_thresholds(threshold)
        chosen = [int(i) for i in order if probabilities[i] > thresholds[i]]
        if not chosen:
            # As in the reported F-scores (kemd_emotion.metrics.predict_emotions): at least one emotion, the one whose
            # logit is furthest above (least below) the logit of its threshold.
            chosen = [int(np.argmax(logit(probabilities) - logit(thresholds)))]
        return {
            "emotions": emotions[: top_k or len(emotions)],
            "labels": [id2label[i] for i in chosen],
            "arousal": float(regression[0]),
            "valence": float(regression[1]),
        }

    def decision_thresholds(self, threshold: float | None = None) -> np.ndarray:
        """`(num_labels,)` decision thresholds in label-id order, as `config.thresholds_for` resolves them."""
        return np.asarray(self.model.config.thresholds_for(threshold), dtype=np.float64)

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Save model, processor and this file, so that `pipeline(TASK, model=save_directory)` works anywhere.

        Unlike the base class, the processor is saved whole (the base saves tokenizer and feature extractor apart,
        and `AutoProcessor` would then not find the joint processor).
        """
        os.makedirs(save_directory, exist_ok=True)
        config = self.model.config
        # pipeline() may have turned the loaded entry's class names into classes (not JSON); the entry is rewritten
        # by add_pipeline_files.
        loaded_entry = config.__dict__.pop("custom_pipelines", None)
        try:
            self.model.save_pretrained(save_directory, **kwargs)
        finally:
            if loaded_entry is not None:
                config.custom_pipelines = loaded_entry
        self.processor.save_pretrained(save_directory, **kwargs)
        add_pipeline_files(save_directory)


def logit(probabilities) -> np.ndarray:
    """log(p / (1 - p)) elementwise, with p kept inside (0, 1) so that saturated scores stay finite."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def add_pipeline_files(checkpoint_dir: str | os.PathLike) -> None:
    """Copy the pipeline's code (`PIPELINE_CODE_FILES`) and the Inference Endpoints `handler.py` into a saved
    checkpoint and name the pipeline in `config.json`.

    Afterwards `pipeline("emotion-multimodal", model=checkpoint_dir, trust_remote_code=True)` works in a process
    where kemd_emotion cannot be imported (the model, config and processor code is copied by their own
    `save_pretrained`).
    """
    config_path = os.path.join(checkpoint_dir, "config.json")
    if not os.path.isfile(config_path):
        raise ValueError(f"{os.fspath(checkpoint_dir)!r} holds no config.json: save the model there first.")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["custom_pipelines"] = {TASK: dict(CUSTOM_PIPELINE)}
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
    here = os.path.dirname(os.path.abspath(__file__))
    # The Inference Endpoints handler sits next to this file in the package, not in a remote-code copy of it.
    handler = (ENDPOINT_HANDLER,) if os.path.isfile(os.path.join(here, ENDPOINT_HANDLER)) else ()
    for name in (*PIPELINE_CODE_FILES, *handler):
        source = os.path.join(here, name)
        target = os.path.join(checkpoint_dir, name)
        if os.path.abspath(target) != source:
            shutil.copyfile(source, target)


__all__ = ["EmotionMultimodalPipeline", "InputError", "InputProblem", "TASK", "TranscriptionError", "add_pipeline_files",
           "window_bounds", "UTTERANCES", "NO_SPEECH_NOTE"]
