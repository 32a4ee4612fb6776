"""Inference Endpoints handler: `EndpointHandler(path)` / `handler(data)` over `pipeline("emotion-multimodal")`.

Every checkpoint saved by kemd_emotion carries this file as ``handler.py``. Hugging Face Inference Endpoints (and
its open-source huggingface-inference-toolkit) imports it as a top-level module from the checkpoint folder, so it
imports no package of its own: the pipeline is built from the checkpoint's own code with `trust_remote_code=True`,
and only numpy, soundfile, torch and transformers are needed.

Request (JSON):

```json
{"inputs": {"text": "정말 화가 나요", "audio": "<base64 of a WAV/FLAC/OGG file>"},
 "parameters": {"top_k": 3, "threshold": 0.5, "chunk_length_s": 2.0}}
```

`audio` may also be a list of samples (floats) with `"sampling_rate"` (Hz) next to it in `inputs`. `text` may be left
out when the checkpoint names a speech recogniser (`config.asr_model`): the recording is then transcribed. `inputs` may be
a list of such dicts (a batch); a bare audio file as the request body (``Content-Type: audio/wav``) is scored
without a transcript (speech-only models). `parameters` are the pipeline's call options (`top_k`, `threshold`,
`chunk_length_s`, `stride_length_s`, `batch_size`, `on_empty_transcript`). The answer is the pipeline's output: one
`{"emotions", "labels", "arousal", "valence"[, "chunks"]}` per input. A bad request raises a ValueError naming the
field (``inputs.audio``, ``parameters.top_k``, ...), which the toolkit returns as ``{"error": ...}`` with status 400.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import io
import math
import re
from typing import Any

import numpy as np

MAX_AUDIO_SECONDS = 15 * 60
"""Longer recordings are refused: they are decoded and scored whole, and memory and time grow with them."""
SAMPLING_RATE_RANGE = (1_000, 384_000)
"""Sampling rates (Hz) accepted with a list of samples; anything else is a mistaken argument."""
DEFAULT_BATCH_SIZE = 8
"""Utterances or windows per forward pass when the request does not set `parameters.batch_size`."""
INPUT_KEYS = ("text", "audio", "sampling_rate")
PAYLOAD_KEYS = ("inputs", "parameters")
CALL_OPTIONS = ("batch_size", "on_empty_transcript")
"""Options the pipeline's `__call__` takes besides those of `_sanitize_parameters` (when the pipeline has them)."""


class EndpointHandler:
    """Loads the checkpoint at `path` once; each call scores one request."""

    def __init__(self, path: str = "", device: str | int | None = None):
        import torch
        from transformers import pipeline

        if device is None:
            device = 0 if torch.cuda.is_available() else "cpu"
        self.pipeline = pipeline("emotion-multimodal", model=path or ".", trust_remote_code=True, device=device)
        # The options the pipeline accepts, read from its signature so that new ones need no change here.
        own = inspect.signature(self.pipeline._sanitize_parameters).parameters.values()
        call_options = {name for name in CALL_OPTIONS if name == "batch_size" or hasattr(self.pipeline, name)}
        self.parameter_names = sorted({p.name for p in own if p.kind is p.POSITIONAL_OR_KEYWORD or
                                       p.kind is p.KEYWORD_ONLY} | call_options)

    def __call__(self, data: dict[str, Any]) -> dict | list[dict]:
        """Score `data` (the request body, see the module docstring); returns the pipeline's output."""
        if isinstance(data, (bytes, bytearray)):
            data = {"inputs": data}
        if not isinstance(data, dict):
            raise ValueError(f"the request body must be a JSON object with 'inputs'; got {type(data).__name__}.")
        unknown = sorted(set(map(str, data)) - set(PAYLOAD_KEYS))
        if unknown:
            raise ValueError(f"the request has unknown key(s) {unknown}; expected {list(PAYLOAD_KEYS)}.")
        if "inputs" not in data:
            raise ValueError("the request has no 'inputs': expected {'inputs': {'text': ..., 'audio': ...}}.")
        parameters = self.parameters(data.get("parameters"))
        inputs = data["inputs"]
        if isinstance(inputs, list):
            if not inputs:
                raise ValueError("inputs is an empty list; give at least one {'text': ..., 'audio': ...}.")
            items = [self.pipeline_input(item, f"inputs[{index}]") for index, item in enumerate(inputs)]
        else:
            items = self.pipeline_input(inputs, "inputs")
        # Windows and batch items in batches unless the client says otherwise: the numbers do not change with it.
        parameters.setdefault("batch_size", DEFAULT_BATCH_SIZE)
        try:
            return self.pipeline(items, **parameters)
        except (TypeError, ValueError) as error:  # the pipeline's names (input['audio']) -> the request's
            raise ValueError(re.sub(r"\binputs?(\[\d+\])?\['(\w+)'\]", r"inputs\1.\2",
                                    re.sub(r"^input\b", "inputs", str(error)))) from error

    # ------------------------------------------------------------------ the request's parts
    def parameters(self, parameters) -> dict:
        if parameters is None:
            return {}
        if not isinstance(parameters, dict):
            raise ValueError(f"parameters must be an object like {{'top_k': 3}}; got {type(parameters).__name__}.")
        unknown = sorted(set(map(str, parameters)) - set(self.parameter_names))
        if unknown:
            raise ValueError(f"parameters has unknown key(s) {unknown}; accepted: {self.parameter_names}.")
        return dict(parameters)

    def pipeline_input(self, value, name: str) -> dict:
        """One request input -> the pipeline's `{"text", "audio": {"array", "sampling_rate"}}`."""
        if isinstance(value, (bytes, bytearray)):
            value = {"audio": bytes(value)}
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object like {{'text': str, 'audio': base64 str}}; "
                             f"got {type(value).__name__}.")
        unknown = sorted(set(map(str, value)) - set(INPUT_KEYS))
        if unknown:
            raise ValueError(f"{name} has unknown key(s) {unknown}; expected {list(INPUT_KEYS)}.")
        item = {}
        if value.get("text") is not None:
            if not isinstance(value["text"], str):
                raise ValueError(f"{name}.text must be a string; got {type(value['text']).__name__}.")
            item["text"] = value["text"]
        # Without text, a checkpoint that names a speech recogniser (config.asr_model) transcribes the recording.
        needs_text = getattr(self.pipeline, "needs_text", True) and not getattr(self.pipeline, "can_transcribe", False)
        if needs_text and not item.get("text", "").strip():
            raise ValueError(f"{name}.text is {'empty' if 'text' in item else 'missing'}: this model reads the "
                             "transcript of the recording as well as the recording.")
        if getattr(self.pipeline, "needs_audio", True) or value.get("audio") is not None:
            item["audio"] = decode_audio(value.get("audio"), value.get("sampling_rate"), name)
        return item


def decode_audio(audio, sampling_rate, name: str = "inputs") -> dict:
    """`audio` (base64 text of an audio file, raw file bytes, or a list of samples) -> `{"array", "sampling_rate"}`.

    >>> decode_audio([0.0, 0.5, -0.5], 16000)["array"].tolist()
    [0.0, 0.5, -0.5]
    >>> decode_audio([0.0, 0.5], None)
    Traceback (most recent call last):
    ...
    ValueError: inputs.sampling_rate is missing: a list of samples needs its rate in Hz (e.g. 16000).
    """
    if audio is None:
        raise ValueError(f"{name}.audio is missing: give base64 text of a WAV/FLAC/OGG file, or a list of samples "
                         f"with {name}.sampling_rate.")
    if isinstance(audio, str):
        if audio.startswith("data:") and "," in audio:  # a data URL, as browsers write them
            audio = audio.split(",", 1)[1]
        try:
            audio = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"{name}.audio is not base64 text of an audio file ({error}).") from None
    if isinstance(audio, (bytes, bytearray)):
        return read_audio_file(bytes(audio), sampling_rate, name)
    if isinstance(audio, list):
        rate = check_rate(sampling_rate, name)
        if len(audio) / rate > MAX_AUDIO_SECONDS:
            raise too_long(len(audio) / rate, name)
        try:
            array = np.asarray(audio, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{name}.audio must be a list of numbers (samples); it holds something else.") from None
        if array.ndim != 1:
            raise ValueError(f"{name}.audio must be a flat list of samples (mono); got shape {array.shape}.")
        return {"array": array, "sampling_rate": rate}
    raise ValueError(f"{name}.audio must be base64 text of an audio file or a list of samples; "
                     f"got {type(audio).__name__}.")


def read_audio_file(data: bytes, sampling_rate, name: str) -> dict:
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception as error:  # soundfile's own error types
        reason = getattr(error, "error_string", None) or "format not recognised"
        raise ValueError(f"{name}.audio is not an audio file soundfile can read (WAV, FLAC, OGG, MP3): "
                         f"{reason.rstrip('.')}.") from None
    if info.frames <= 0:
        raise ValueError(f"{name}.audio holds no samples.")
    if info.frames / info.samplerate > MAX_AUDIO_SECONDS:
        raise too_long(info.frames / info.samplerate, name)
    if sampling_rate is not None and check_rate(sampling_rate, name) != info.samplerate:
        raise ValueError(f"{name}.sampling_rate={sampling_rate} disagrees with the audio file's own rate of "
                         f"{info.samplerate} Hz; leave sampling_rate out for files (their header carries it).")
    array, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return {"array": array, "sampling_rate": int(rate)}


def check_rate(sampling_rate, name: str) -> int:
    if sampling_rate is None:
        raise ValueError(f"{name}.sampling_rate is missing: a list of samples needs its rate in Hz (e.g. 16000).")
    low, high = SAMPLING_RATE_RANGE
    if (isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, float))
            or not math.isfinite(sampling_rate) or int(sampling_rate) != sampling_rate
            or not low <= sampling_rate <= high):
        raise ValueError(f"{name}.sampling_rate must be a whole number of Hz from {low} to {high} (e.g. 16000); "
                         f"got {sampling_rate!r}.")
    return int(sampling_rate)


def too_long(seconds: float, name: str) -> ValueError:
    return ValueError(f"{name}.audio is {seconds / 60:.1f} minutes long; this endpoint scores at most "
                      f"{MAX_AUDIO_SECONDS / 60:g} minutes per request. Split the recording.")
