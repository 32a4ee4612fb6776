"""The one inference input path: an input as users give it -> its checked transcript and decoded recording, or a
structured problem naming the input, the field and what was expected.

This file is copied next to saved checkpoints with the pipeline (``trust_remote_code``): it may import only from
numpy, soundfile, torch and the other ``*_klue_wav2vec2`` files, with single-dot imports.

Every interface goes through `read_input` (the pipeline calls it; `kemd-emotion predict`, the demo and the
endpoint handler pass their inputs to the pipeline with ``errors="return"``): a recording is decoded once, here,
and checked once, here. An interface names an input's fields its own way from `InputProblem.field` ("the
recording", ``inputs[2].audio``, ...), never by rewriting a message.

Accepted input: ``{"text": str, "audio": AUDIO}``, where AUDIO is a file path, the bytes of an audio file, a 16 kHz
`np.ndarray` / `torch.Tensor` (mono, or 2-D channels x samples), or ``{"array": ..., "sampling_rate": int}``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .processing_klue_wav2vec2 import SAMPLING_RATE, mono_or_problem, resample, sampling_rate_problem

EXPECTED_INPUT = ("{'text': str, 'audio': path | bytes | np.ndarray (16 kHz) | "
                  "{'array': np.ndarray, 'sampling_rate': int}}")
LONG_INPUT_SECONDS = 15 * 60
"""The long-recording limit of the demo and the endpoint (`max_input_seconds`): longer recordings are refused from
their header, before anything is decoded. The pipeline itself has no limit unless given one."""
AUDIO_FILE_FORMATS = "WAV, FLAC, OGG or MP3"

# What went wrong, for programs (`InputProblem.code`).
WRONG_TYPE = "wrong_type"
MISSING = "missing"
EMPTY = "empty"
NOT_FOUND = "not_found"
UNREADABLE = "unreadable"
BAD_SAMPLES = "bad_samples"
BAD_SAMPLING_RATE = "bad_sampling_rate"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
NOT_LISTENING = "not_listening"
TRANSCRIPTION_FAILED = "transcription_failed"
NO_WORDS = "no_words"


@dataclass(frozen=True)
class InputProblem:
    """Why one input cannot be scored.

    Attributes:
        index: its position in the call's list (None for a single input).
        field: the part at fault, as a dotted path inside the input (``"audio"``, ``"text"``,
            ``"audio.sampling_rate"``), or None for the input as a whole.
        code: what went wrong, for programs (`MISSING`, `TOO_SHORT`, ...).
        message: what is wrong, as a predicate of the field ("is 6.2 ms long; ..."), without the field's name.
        expected: what was expected there.
        hint: what to do about it (a sentence), or None.
    """

    index: int | None
    field: str | None
    code: str
    message: str
    expected: str
    hint: str | None = None

    @property
    def location(self) -> str:
        """The field as Python names it: ``inputs[2]['audio']['sampling_rate']``, ``input['text']``, ``inputs[2]``."""
        name = "input" if self.index is None else f"inputs[{self.index}]"
        return name + "".join(f"[{part!r}]" for part in (self.field.split(".") if self.field else ()))

    def describe(self, subject: str | None = None, hint: str | None = None) -> str:
        """The sentence an interface shows: `subject` (default: `location`) and the message, then the hint (`hint`
        replaces the input path's own, e.g. with a command-line option)."""
        hint = self.hint if hint is None else hint
        return f"{self.location if subject is None else subject} {self.message}." + (f" {hint}" if hint else "")

    def to_dict(self, subject: str | None = None, hint: str | None = None) -> dict:
        """JSON-ready: ``{"index", "field", "code", "message", "expected", "reason", "hint"}``: `message` is the
        sentence `describe` makes; `reason` and `hint` its parts, for an interface that names fields its own way."""
        hint = self.hint if hint is None else hint
        return {"index": self.index, "field": self.field, "code": self.code, "message": self.describe(subject, hint),
                "expected": self.expected, "reason": self.message, "hint": hint}

    @classmethod
    def from_dict(cls, data: Mapping) -> "InputProblem":
        """The problem back from `to_dict`'s output (e.g. a pipeline answer's ``"error"``)."""
        return cls(data["index"], data["field"], data["code"], data["reason"], data["expected"], data.get("hint"))

    def __str__(self) -> str:
        return self.describe()


class InputError(ValueError):
    """A ValueError for one bad input; `problem` is its `InputProblem`."""

    def __init__(self, problem: InputProblem):
        self.problem = problem
        super().__init__(str(problem))


@dataclass
class Utterance:
    """One input, read: its transcript (None when it has none to give) and its whole recording (mono float32 at
    16 kHz, None for a model that reads no audio); the pipeline adds machine transcripts or why there are none."""

    index: int | None
    text: str | None
    audio: np.ndarray | None
    transcripts: list[str] | None = None
    """Machine transcripts of an input given without text: one per window when chunking, else one."""
    segments: list[tuple[int, int]] | None = None
    """With `segment="utterances"` cut at the speech recogniser's timestamps: the `(start, end)` samples of each
    utterance (one transcript each in `transcripts`); None: cut when scored (energy, or the user's segments)."""
    problem: InputProblem | None = field(default=None, repr=False)
    """Why the input cannot be scored (a failed transcription); raised or returned when it is reached."""

    @property
    def name(self) -> str:
        return "input" if self.index is None else f"inputs[{self.index}]"

    @property
    def seconds(self) -> float:
        return 0.0 if self.audio is None else self.audio.shape[0] / SAMPLING_RATE


def read_input(value: Any, index: int | None, *, reads_text: bool, reads_audio: bool, can_transcribe: bool = False,
               min_samples: int, max_seconds: float | None = None, owner: str = "this model",
               transcriber: str | None = None) -> Utterance:
    """Check and decode one input; raise `InputError` naming the field at fault.

    The recording is checked first (a broken file matters more than its transcript). A model that reads text
    needs a non-empty ``"text"`` unless it `can_transcribe` (then a missing or None text is left for the speech
    recogniser); a model that reads no audio ignores ``"audio"``, and one that reads no text ignores ``"text"``.
    Other keys are ignored (a corpus row can be passed as it is). `max_seconds` refuses longer recordings, from
    a file's header before decoding; `owner` names the checkpoint in messages, `transcriber` its speech
    recogniser (if any).
    """

    def fail(field_name, code, message, expected, hint=None):
        raise InputError(InputProblem(index, field_name, code, message, expected, hint))

    if not isinstance(value, Mapping):
        fail(None, WRONG_TYPE, f"must be a dict like {EXPECTED_INPUT}; got {type(value).__name__}", EXPECTED_INPUT)
    text = value.get("text")
    if not reads_audio and text is None and value.get("audio") is not None:
        fail("text", NOT_LISTENING,
             f"is missing, and {owner} reads only the transcript and does not listen, so it cannot score a "
             "recording by itself" + (f" (asr_model {transcriber} serves checkpoints that listen)" if transcriber
                                      else ""), "a non-empty str",
             "Pass 'text', or score recordings with a fused checkpoint (fusion='cat' or 'add') and asr_model=... .")
    audio = None
    if reads_audio:
        audio = read_audio(value.get("audio"), index, min_samples=min_samples, max_seconds=max_seconds)
    if not reads_text:
        return Utterance(index, None, audio)
    if text is None:
        if can_transcribe and reads_audio:
            return Utterance(index, None, audio)
        fail("text", MISSING, "is missing: this model reads the transcript", "a non-empty str",
             "To score recordings without one, build the pipeline with asr_model=... (a speech-recognition model "
             "that transcribes them).")
    if not isinstance(text, str):
        fail("text", WRONG_TYPE, f"must be a string; got {type(text).__name__}", "a non-empty str")
    if not text.strip():
        fail("text", EMPTY, "is empty; this model needs a non-empty transcript", "a non-empty str")
    return Utterance(index, text, audio)


def read_audio(audio: Any, index: int | None, *, min_samples: int, max_seconds: float | None = None) -> np.ndarray:
    """One input's ``"audio"`` -> mono float32 `(samples,)` at 16 kHz, whole; raise `InputError` otherwise."""

    def fail(code, message, expected, field_name="audio", hint=None):
        raise InputError(InputProblem(index, field_name, code, message, expected, hint))

    samples_field = "audio"

    if audio is None:
        fail(MISSING, "is missing: this model listens to speech", "a file path, file bytes, a 16 kHz array or "
             "{'array', 'sampling_rate'}")
    if isinstance(audio, (str, os.PathLike)):
        path = os.fspath(audio)
        if not os.path.isfile(path):
            fail(NOT_FOUND, f"is {path!r}, which is not a file", "the path of an audio file")
        samples, rate = read_audio_file(path, os.path.basename(path), index, max_seconds)
    elif isinstance(audio, (bytes, bytearray, memoryview)):
        samples, rate = read_audio_file(io.BytesIO(bytes(audio)), None, index, max_seconds)
    elif isinstance(audio, Mapping):
        missing = [key for key in ("array", "sampling_rate") if key not in audio]
        if missing:
            fail(MISSING, f"is a dict without {missing}; got keys {sorted(map(str, audio))}",
                 "{'array': np.ndarray, 'sampling_rate': int}")
        problem = sampling_rate_problem(audio["sampling_rate"])
        if problem is not None:
            fail(BAD_SAMPLING_RATE, problem, "a whole number of Hz", "audio.sampling_rate")
        samples, rate, samples_field = audio["array"], int(audio["sampling_rate"]), "audio.array"
    elif isinstance(audio, np.ndarray) or hasattr(audio, "detach"):
        samples, rate = audio, SAMPLING_RATE
    else:
        fail(WRONG_TYPE, "must be a file path, an audio file's bytes, a 16 kHz np.ndarray or a dict with 'array' and "
             f"'sampling_rate'; got {type(audio).__name__}", "a file path, file bytes, a 16 kHz array or "
             "{'array', 'sampling_rate'}")
    mono, problem = mono_or_problem(samples)
    if problem is not None:
        fail(BAD_SAMPLES, problem, "finite mono (or channels x samples) audio", samples_field)
    if max_seconds is not None and mono.shape[0] / rate > max_seconds:
        fail(TOO_LONG, f"is {duration(mono.shape[0] / rate)} long; at most {duration(max_seconds)} are scored",
             f"at most {duration(max_seconds)} of audio", hint="Trim or split the recording.")
    mono = resample(mono, rate, SAMPLING_RATE)
    if mono.shape[0] < min_samples:
        fail(TOO_SHORT, f"is {1000 * mono.shape[0] / SAMPLING_RATE:.1f} ms long; the speech encoder needs at least "
             f"{1000 * min_samples / SAMPLING_RATE:.0f} ms", f"at least {min_samples} samples at 16 kHz")
    return mono


def read_audio_file(source, name: str | None, index: int | None, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Samples `(channels, frames)` and rate of an audio file (a path or a file object; `name`: the file's name for
    messages), its length checked from the header first; raise `InputError` for an unreadable, empty or too long
    file."""
    import soundfile

    named = "" if name is None else f"({name!r}) "

    def fail(code, message, expected, hint=None):
        raise InputError(InputProblem(index, "audio", code, message, expected, hint))

    try:
        info = soundfile.info(source)
        if isinstance(source, io.IOBase):
            source.seek(0)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or OSError depending on the fault
        reason = (getattr(error, "error_string", None) or str(error) or "format not recognised").rstrip(".")
        fail(UNREADABLE, f"{named}could not be read as audio ({AUDIO_FILE_FORMATS}): {reason}",
             f"an audio file ({AUDIO_FILE_FORMATS})")
    if info.frames <= 0 or info.samplerate <= 0:
        fail(EMPTY, f"{named}holds no audio samples", "an audio file with samples")
    if max_seconds is not None and info.frames / info.samplerate > max_seconds:
        fail(TOO_LONG, f"is {duration(info.frames / info.samplerate)} long; at most {duration(max_seconds)} are "
             "scored", f"at most {duration(max_seconds)} of audio", "Trim or split the recording.")
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as error:
        reason = (getattr(error, "error_string", None) or str(error)).rstrip(".")
        fail(UNREADABLE, f"{named}could not be decoded: {reason}", f"an audio file ({AUDIO_FILE_FORMATS})")
    return samples.T, int(rate)


def duration(seconds: float) -> str:
    """`seconds` in words: "6.2 s" below two minutes, else "16.0 minutes".

    >>> duration(6.25), duration(960)
    ('6.2 s', '16.0 minutes')
    """
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


__all__ = ["InputError", "InputProblem", "Utterance", "read_input", "read_audio", "EXPECTED_INPUT",
           "LONG_INPUT_SECONDS"]
