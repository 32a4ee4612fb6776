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
`chunk_length_s`, `stride_length_s`, `segment`, `batch_size`, `on_empty_transcript`): `"segment": "utterances"`
(or `[[start, end], ...]` seconds) scores a conversation utterance by utterance. The answer is the pipeline's
output: one `{"emotions", "labels", "arousal", "valence"[, "chunks" | "utterances"]}` per input.

Errors name the request's field (``inputs.audio``, ``inputs[2].sampling_rate``, ``parameters.top_k``). A bad request,
or a bad single input, raises a ValueError, which the toolkit returns as ``{"error": ...}`` with status 400. In a
batch, a bad input is answered in its place with ``{"error": {"index", "field", "code", "message", "expected", ...}}``
and the others are scored. This file only turns JSON into the pipeline's inputs (base64 -> file bytes, a list of
samples -> an array): the pipeline reads and checks every recording (`read_input` in the checkpoint's
``inputs_klue_wav2vec2.py``), recordings over 15 minutes (`MAX_AUDIO_SECONDS`) refused from their header.
"""

from __future__ import annotations

import base64
import binascii
import inspect
from typing import Any

import numpy as np

MAX_AUDIO_SECONDS = 15 * 60
"""Longer recordings are refused (the pipeline's `max_input_seconds`): they are decoded and scored whole, and memory
and time grow with them. The same limit as the demo's (`LONG_INPUT_SECONDS`; this file imports nothing of the
package, a test keeps the two equal)."""
DEFAULT_BATCH_SIZE = 8
"""Utterances or windows per forward pass when the request does not set `parameters.batch_size`."""
INPUT_KEYS = ("text", "audio", "sampling_rate")
REQUEST_FIELDS = {"audio.sampling_rate": "sampling_rate", "audio.array": "audio"}
"""Where the pipeline's input fields are in a request's input (the rate of a list of samples sits beside it)."""
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
        # Windows and batch items in batches unless the client says otherwise: the numbers do not change with it.
        parameters.setdefault("batch_size", DEFAULT_BATCH_SIZE)
        inputs = data["inputs"]
        if not isinstance(inputs, list):
            [answer] = self.answer([self.pipeline_input(inputs, None)], parameters, single=True)
            if "error" in answer:
                raise ValueError(answer["error"]["message"])
            return answer
        if not inputs:
            raise ValueError("inputs is an empty list; give at least one {'text': ..., 'audio': ...}.")
        return self.answer([self.pipeline_input(item, index) for index, item in enumerate(inputs)], parameters)

    def answer(self, items: list, parameters: dict, single: bool = False) -> list[dict]:
        """Score the pipeline inputs among `items` in one call; a problem (the request's, or the pipeline's) is
        answered in its place as ``{"error": ...}`` naming the request's field (`single`: ``inputs``, not
        ``inputs[0]``)."""
        position = [index for index, item in enumerate(items) if not isinstance(item, self.pipeline.InputProblem)]
        scored = self.pipeline([items[index] for index in position], errors="return",
                               max_input_seconds=MAX_AUDIO_SECONDS, **parameters) if position else []
        answers = list(items)
        for index, output in zip(position, scored):
            answers[index] = output
        for index, answer in enumerate(answers):
            if not isinstance(answer, self.pipeline.InputProblem) and "error" in answer:
                answer = self.pipeline.InputProblem.from_dict(answer["error"])
            if isinstance(answer, self.pipeline.InputProblem):
                answers[index] = {"error": self.named(answer, None if single else index)}
        return answers

    @staticmethod
    def named(problem, index: int | None) -> dict:
        """`problem`'s dict with the request's name of its field: ``inputs[2].sampling_rate``."""
        name = "inputs" if index is None else f"inputs[{index}]"
        field = REQUEST_FIELDS.get(problem.field, problem.field)
        return problem.to_dict(subject=name if field is None else f"{name}.{field}")

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

    def pipeline_input(self, value, index: int | None):
        """One request input -> the pipeline's `{"text", "audio"}` (file bytes, or `{"array", "sampling_rate"}`), or
        the `InputProblem` of a request that cannot say what it means."""
        Problem = self.pipeline.InputProblem  # noqa: N806 (the class, from the checkpoint's own code)
        if isinstance(value, (bytes, bytearray)):
            value = {"audio": bytes(value)}
        if not isinstance(value, dict):
            return Problem(index, None, "wrong_type", f"must be an object like {{'text': str, 'audio': base64 str}}; "
                           f"got {type(value).__name__}", "{'text': str, 'audio': base64 str}")
        unknown = sorted(set(map(str, value)) - set(INPUT_KEYS))
        if unknown:
            return Problem(index, None, "unknown_keys", f"has unknown key(s) {unknown}; expected {list(INPUT_KEYS)}",
                           str(list(INPUT_KEYS)))
        item = {key: value[key] for key in ("text",) if value.get(key) is not None}
        audio, rate = value.get("audio"), value.get("sampling_rate")
        if isinstance(audio, str):
            if audio.startswith("data:") and "," in audio:  # a data URL, as browsers write them
                audio = audio.split(",", 1)[1]
            try:
                audio = base64.b64decode(audio, validate=True)
            except (binascii.Error, ValueError) as error:
                return Problem(index, "audio", "not_base64", f"is not base64 text of an audio file ({error})",
                               "base64 text of a WAV/FLAC/OGG file")
        if isinstance(audio, (bytes, bytearray)):
            if rate is not None:
                return Problem(index, "audio.sampling_rate", "unexpected",
                               "is only for a list of samples: an audio file's header carries its rate",
                               "no sampling_rate with an audio file")
            item["audio"] = bytes(audio)
        elif isinstance(audio, list):
            if rate is None:
                return Problem(index, "audio.sampling_rate", "missing",
                               "is missing: a list of samples needs its rate in Hz (e.g. 16000)", "a whole number of Hz")
            try:
                array = np.asarray(audio, dtype=np.float32)
            except (TypeError, ValueError):
                return Problem(index, "audio", "wrong_type", "must be a list of numbers (samples); it holds something "
                               "else", "a flat list of numbers")
            if array.ndim != 1:
                return Problem(index, "audio", "wrong_type", f"must be a flat list of samples (mono); got shape "
                               f"{array.shape}", "a flat list of numbers")
            item["audio"] = {"array": array, "sampling_rate": rate}
        elif audio is not None:
            return Problem(index, "audio", "wrong_type", "must be base64 text of an audio file or a list of samples; "
                           f"got {type(audio).__name__}", "base64 text of a WAV/FLAC/OGG file, or a list of samples")
        return item
