"""[`KlueWav2Vec2ForEmotion`] exported to ONNX, run by onnxruntime: the same call, the same output type.

This file is copied into ONNX model folders (``trust_remote_code``): it may import only from numpy, torch,
transformers and the other ``*_klue_wav2vec2`` files, with single-dot imports; onnxruntime is imported when a
model is loaded, so that the package imports without it.

An ONNX model folder (written by `kemd_emotion.onnx.export_onnx` / `kemd-emotion export`) holds `model.onnx`
(with `model.onnx.data` beside it for graphs over 2 GB), the checkpoint's `config.json` and processor files, the
code files of a checkpoint, and `onnx_config.json`, which says that the folder is ONNX and describes the graph:

```json
{"format": "kemd-emotion-onnx", "format_version": 1, "model_file": "model.onnx", "opset": 18,
 "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "tokens"]}, ...],
 "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 7]}, ...],
 "quantization": null, "source": {"checkpoint": "...", "sha256": {"model.safetensors": "..."}}, ...}
```

`pipeline("emotion-multimodal", model=FOLDER)` loads such a folder as it loads a checkpoint: with kemd_emotion
imported, the task tries this class after `AutoModel` (which finds no PyTorch weights there); without it,
`trust_remote_code=True` finds this file through the folder's `config.json` `auto_map["AutoModel"]`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from .configuration_klue_wav2vec2 import KlueWav2Vec2EmotionConfig, check_loading_keywords, whisper_max_frames
from .modeling_klue_wav2vec2 import KlueWav2Vec2EmotionOutput

ONNX_CONFIG_NAME = "onnx_config.json"
"""The file that makes a folder an ONNX model folder (and describes its graph)."""
ONNX_FORMAT = "kemd-emotion-onnx"
ONNX_FORMAT_VERSION = 1
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
AUDIO_INPUTS = ("input_values", "audio_attention_mask")
WHISPER_AUDIO_INPUTS = ("input_features", "audio_attention_mask")
"""A Whisper speech encoder's inputs: log-mel `(batch, num_mel_bins, frames)` and the mask per mel frame."""
OUTPUTS = ("logits", "regression")
ONNX_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32, "tensor(bool)": np.bool_}
"""onnxruntime's input type names -> numpy dtypes (inputs are cast to what the graph takes)."""
INSTALL_HINT = "pip install 'kemd-emotion[onnx]' (or pip install onnxruntime)"
OWN_LOADING_OPTIONS = ("config", "provider", "intra_op_num_threads", "session_options", "dtype", "device_map")
"""`from_pretrained`'s own options; transformers' loading keywords (revision, token, `_from_auto`, ...) pass unused."""


def audio_inputs_for(config: KlueWav2Vec2EmotionConfig) -> tuple[str, ...]:
    """The audio inputs of this config's speech encoder: `input_features` (Whisper) or `input_values`, and the mask."""
    return WHISPER_AUDIO_INPUTS if config.is_whisper else AUDIO_INPUTS


def graph_inputs_for(config: KlueWav2Vec2EmotionConfig) -> tuple[str, ...]:
    """The inputs a graph of this config takes: the text ones unless speech-only, the audio ones unless text-only."""
    return (TEXT_INPUTS if config.uses_text else ()) + (audio_inputs_for(config) if config.uses_audio else ())


def is_onnx_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder with an `onnx_config.json` (an ONNX model folder, not a PyTorch checkpoint)."""
    return os.path.isfile(os.path.join(path, ONNX_CONFIG_NAME))


def read_onnx_config(folder: str | os.PathLike) -> dict:
    """The parsed `onnx_config.json` of an ONNX model folder; a ValueError (OSError when absent) says what is wrong."""
    path = os.path.join(folder, ONNX_CONFIG_NAME)
    if not os.path.isfile(path):
        raise OSError(
            f"{os.fspath(folder)!r} is not an ONNX model folder: it has no {ONNX_CONFIG_NAME} (make one with "
            "`kemd-emotion export CHECKPOINT OUT`)."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            description = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}.") from error
    if not isinstance(description, dict) or description.get("format") != ONNX_FORMAT:
        raise ValueError(f"{path} does not describe a {ONNX_FORMAT} model (its 'format' is not {ONNX_FORMAT!r}).")
    if description.get("format_version", 0) > ONNX_FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {description['format_version']}; this code reads version "
            f"{ONNX_FORMAT_VERSION} and older: update kemd-emotion."
        )
    for key in ("model_file", "inputs", "outputs"):
        if key not in description:
            raise ValueError(f"{path} lacks {key!r}.")
    return description


def default_intra_op_threads() -> int:
    """Threads for one onnxruntime session: the physical cores this process may use.

    onnxruntime's own default counts the machine's physical cores, which in a container limited to a few CPUs
    oversubscribes them; hyper-threads add little to GEMM-bound work. So: the CPUs this process may run on
    (affinity, cgroup quota), at most the physical cores.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:  # cgroup v2 quota, e.g. "200000 100000" = 2 CPUs
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            usable = min(usable, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or usable
    except ImportError:
        physical = usable
    return max(1, min(usable, physical))


def import_onnxruntime():
    """onnxruntime, or an ImportError that says which extra to install."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"ONNX model folders run on onnxruntime, which is not installed: {INSTALL_HINT}.") from error
    return onnxruntime


class OnnxKlueWav2Vec2ForEmotion:
    r"""
    An exported [`KlueWav2Vec2ForEmotion`] on onnxruntime, called as the PyTorch model is: keyword tensors in
    (`input_ids, attention_mask, token_type_ids` `(batch, tokens)`, `input_values` float `(batch, samples)`,
    `audio_attention_mask` `(batch, samples)`; for a Whisper speech encoder `input_features` `(batch, num_mel_bins,
    frames)` and `audio_attention_mask` `(batch, frames)`; a text-only / speech-only model takes only its own), a
    [`KlueWav2Vec2EmotionOutput`] out with `logits` `(batch, num_labels)` and `regression` `(batch, 2)`.

    Torch tensors in give torch tensors out; numpy arrays in give numpy arrays out. Inference only: no labels, no
    loss, no embeddings (the graph returns logits and regression). Missing masks mean "every position is real", as
    in the PyTorch model; `token_type_ids` defaults to zeros.

    Example:

    ```python
    >>> from kemd_emotion.onnxruntime_klue_wav2vec2 import OnnxKlueWav2Vec2ForEmotion
    >>> model = OnnxKlueWav2Vec2ForEmotion.from_pretrained("model-onnx")  # doctest: +SKIP
    >>> model(**processor(text=["정말 화가 나요"], audio=[clip], sampling_rate=16000)).logits  # doctest: +SKIP
    tensor([[ 1.9, -2.3, ...]])
    ```
    """

    config_class = KlueWav2Vec2EmotionConfig
    input_modalities = ("text", "audio")
    _auto_class = None

    def __init__(self, session, config: KlueWav2Vec2EmotionConfig, onnx_config: dict, folder: str | None = None):
        self.session = session
        self.config = config
        self.onnx_config = onnx_config
        self.name_or_path = folder or ""
        self.main_input_name = "input_ids" if config.uses_text else config.audio_input_name
        self.input_names = tuple(graph_input.name for graph_input in session.get_inputs())
        self.input_dtypes = {graph_input.name: ONNX_TYPES.get(graph_input.type, np.float32)
                             for graph_input in session.get_inputs()}
        self.output_names = tuple(graph_output.name for graph_output in session.get_outputs())
        self.check_graph(folder or "this ONNX model")
        self._device = torch.device("cpu")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        config: KlueWav2Vec2EmotionConfig | None = None,
        provider: str | list | None = None,
        intra_op_num_threads: int | None = None,
        session_options=None,
        dtype=None,
        device_map=None,
        **kwargs,
    ) -> "OnnxKlueWav2Vec2ForEmotion":
        """Load an ONNX model folder into an onnxruntime session.

        Args:
            pretrained_model_name_or_path: the folder `export_onnx` wrote.
            config: its `KlueWav2Vec2EmotionConfig` (default: read from the folder's `config.json`).
            provider: an onnxruntime execution provider or a list of them (default `["CPUExecutionProvider"]`).
            intra_op_num_threads: threads per operator (default: `default_intra_op_threads()`, the physical cores
                this process may use).
            session_options: an `onnxruntime.SessionOptions` to start from (its thread count is kept when
                `intra_op_num_threads` is not given).
            dtype, device_map: accepted for transformers' loaders; the graph computes in float32 on the CPU, so
                only None / "auto" / float32 and None / "cpu" are.
            kwargs: transformers' loading keywords (revision, token, `_from_auto`, ...), which a local folder does not
                use; anything else is refused (`check_loading_keywords`).

        Raises:
            OSError: the folder does not exist or is not an ONNX model folder (no `onnx_config.json`).
            ImportError: onnxruntime is not installed (naming the extra to install).
            ValueError: the graph does not match `config.json` or `onnx_config.json` (naming the missing input or
                output), or a dtype / device_map other than the graph's.
        """
        check_loading_keywords(f"{cls.__name__}.from_pretrained", kwargs, own=OWN_LOADING_OPTIONS)
        if dtype not in (None, "auto", "float32", torch.float32):
            raise ValueError(f"dtype={dtype!r}: an ONNX model folder computes in float32 (export another model).")
        if device_map not in (None, "cpu"):
            raise ValueError(f"device_map={device_map!r}: an ONNX model runs where its provider runs; pass provider=.")
        folder = os.fspath(pretrained_model_name_or_path)
        if not os.path.isdir(folder):
            raise OSError(f"{folder!r} is not a folder: ONNX models load from a local folder written by export_onnx.")
        onnx_config = read_onnx_config(folder)
        model_path = os.path.join(folder, onnx_config["model_file"])
        if not os.path.isfile(model_path):
            raise OSError(f"ONNX model folder {folder!r} lacks its graph {onnx_config['model_file']!r}.")
        if config is None:
            config = KlueWav2Vec2EmotionConfig.from_pretrained(folder)
        onnxruntime = import_onnxruntime()
        options = session_options if session_options is not None else onnxruntime.SessionOptions()
        if intra_op_num_threads is not None or session_options is None:
            options.intra_op_num_threads = intra_op_num_threads or default_intra_op_threads()
        if session_options is None:
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [provider] if isinstance(provider, str) else list(provider or ["CPUExecutionProvider"])
        session = onnxruntime.InferenceSession(model_path, sess_options=options, providers=providers)
        return cls(session, config, onnx_config, folder)

    @classmethod
    def register_for_auto_class(cls, auto_class="AutoModel") -> None:
        """Called by transformers' `AutoModel` when it loads this class as remote code."""
        cls._auto_class = auto_class if isinstance(auto_class, str) else auto_class.__name__

    def check_graph(self, where: str) -> None:
        """Raise a ValueError when the graph's inputs/outputs differ from what config.json and onnx_config.json say."""
        needed = graph_inputs_for(self.config)
        fusion = f"config.json (fusion={self.config.fusion!r})"
        missing = [name for name in needed if name not in self.input_names]
        if missing:
            raise ValueError(f"{where}: the graph lacks input(s) {missing} that {fusion} needs; its inputs are "
                             f"{list(self.input_names)}. Export the checkpoint again.")
        extra = [name for name in self.input_names if name not in needed]
        if extra:
            raise ValueError(f"{where}: the graph takes input(s) {extra} that {fusion} does not give; expected "
                             f"{list(needed)}. Export the checkpoint again.")
        missing = [name for name in OUTPUTS if name not in self.output_names]
        if missing:
            raise ValueError(f"{where}: the graph lacks output(s) {missing}; its outputs are {list(self.output_names)}.")
        described = {"inputs": [item["name"] for item in self.onnx_config["inputs"]],
                     "outputs": [item["name"] for item in self.onnx_config["outputs"]]}
        actual = {"inputs": list(self.input_names), "outputs": list(self.output_names)}
        for kind in ("inputs", "outputs"):
            if sorted(described[kind]) != sorted(actual[kind]):
                raise ValueError(f"{where}: {ONNX_CONFIG_NAME} lists {kind} {described[kind]}, the graph has "
                                 f"{actual[kind]}.")
        width = self.session.get_outputs()[self.output_names.index("logits")].shape[-1]
        if isinstance(width, int) and width != self.config.num_labels:
            raise ValueError(f"{where}: the graph gives {width} logits; config.json has {self.config.num_labels} labels.")

    # ------------------------------------------------------------------ the PreTrainedModel surface pipelines use
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def to(self, *args, **kwargs) -> "OnnxKlueWav2Vec2ForEmotion":
        """A no-op: the session's provider decides where the graph runs; outputs come back on the CPU."""
        return self

    def eval(self) -> "OnnxKlueWav2Vec2ForEmotion":
        return self

    def can_generate(self) -> bool:
        return False

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Copy the model folder's files (graph, description, config, code) to `save_directory`."""
        if not self.name_or_path:
            raise ValueError("this model was not loaded from a folder, so there is nothing to copy.")
        if os.path.abspath(save_directory) != os.path.abspath(self.name_or_path):
            shutil.copytree(self.name_or_path, save_directory, dirs_exist_ok=True)

    def __repr__(self) -> str:
        quantization = self.onnx_config.get("quantization") or {}
        return (f"{type(self).__name__}({self.name_or_path!r}, fusion={self.config.fusion!r}, "
                f"opset={self.onnx_config.get('opset')}, weights={quantization.get('weight_type', 'float32')}, "
                f"providers={self.session.get_providers()})")

    # ------------------------------------------------------------------ forward
    def __call__(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        input_values=None,
        audio_attention_mask=None,
        return_dict: bool | None = None,
        input_features=None,
    ) -> KlueWav2Vec2EmotionOutput | tuple:
        """Run the graph; see the class docstring for shapes. Raises a ValueError as the PyTorch model does (a
        missing modality, a wrong rank, different batch sizes, a clip shorter than the speech encoder's receptive
        field), and for more tokens than the text encoder has positions."""
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "input_values": input_values, "audio_attention_mask": audio_attention_mask,
                 "input_features": input_features}
        as_torch = any(isinstance(value, torch.Tensor) for value in given.values())
        feeds = self.graph_feeds({name: to_numpy(value) for name, value in given.items()})
        outputs = dict(zip(self.output_names, self.session.run(None, feeds)))
        logits, regression = outputs["logits"], outputs["regression"]
        if as_torch:
            logits, regression = torch.from_numpy(logits), torch.from_numpy(regression)
        output = KlueWav2Vec2EmotionOutput(logits=logits, regression=regression)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    forward = __call__

    def graph_feeds(self, given: dict) -> dict[str, np.ndarray]:
        """Checked numpy inputs of the graph, missing masks filled in, in the graph's dtypes."""
        config = self.config
        fusion = config.fusion
        audio_name = config.audio_input_name
        if config.uses_audio:
            wrong = "input_features" if audio_name == "input_values" else "input_values"
            if given[wrong] is not None:
                raise ValueError(f"{wrong} was given, but the speech encoder (audio_config.model_type="
                                 f"{config.audio_config.model_type!r}) reads {audio_name}: build the processor with "
                                 "the speech encoder checkpoint's own feature extractor.")
        ranks = {"input_ids": (2, "(batch, tokens)"), "input_values": (2, "(batch, samples)"),
                 "input_features": (3, "(batch, mel bins, frames)")}
        for name, modality, used in (("input_ids", "text", config.uses_text), (audio_name, "speech", config.uses_audio)):
            if not used:
                continue
            if given[name] is None:
                raise ValueError(f"fusion={fusion!r} needs {modality}: {name} is None.")
            rank, shape = ranks[name]
            if given[name].ndim != rank:
                raise ValueError(f"{name} must be {rank}-D {shape}; got shape {given[name].shape}.")
        if config.uses_text and config.uses_audio and len(given["input_ids"]) != len(given[audio_name]):
            raise ValueError(f"text and audio batch sizes differ: {{'input_ids': {len(given['input_ids'])}, "
                             f"'{audio_name}': {len(given[audio_name])}}}.")
        feeds = {}
        if config.uses_text:
            ids = given["input_ids"]
            positions = config.text_config.max_position_embeddings
            if ids.shape[1] > positions:
                raise ValueError(f"input_ids has {ids.shape[1]} tokens; the text encoder has {positions} positions.")
            feeds["input_ids"] = ids
            feeds["attention_mask"] = given["attention_mask"] if given["attention_mask"] is not None else np.ones_like(ids)
            feeds["token_type_ids"] = given["token_type_ids"] if given["token_type_ids"] is not None else np.zeros_like(ids)
        if config.uses_audio and config.is_whisper:
            features = given["input_features"]
            mask = given["audio_attention_mask"]
            feeds["input_features"] = features
            feeds["audio_attention_mask"] = (mask if mask is not None
                                             else np.ones((features.shape[0], features.shape[2]), dtype=np.int64))
            most = whisper_max_frames(config.audio_config)
            if features.shape[1] != config.audio_config.num_mel_bins or features.shape[2] > most:
                raise ValueError(
                    f"input_features must be (batch, {config.audio_config.num_mel_bins} mel bins, at most {most} frames "
                    f"= 30 s); got shape {features.shape}. Score longer recordings with the pipeline's chunk_length_s."
                )
        elif config.uses_audio:
            values = given["input_values"]
            mask = given["audio_attention_mask"]
            feeds["input_values"] = values
            feeds["audio_attention_mask"] = mask if mask is not None else np.ones(values.shape, dtype=np.int64)
            shortest = int(np.asarray(feeds["audio_attention_mask"]).astype(np.int64).sum(-1).min())
            needed = config.min_audio_samples
            if shortest < needed:
                raise ValueError(
                    f"input_values: a clip of {shortest} samples is shorter than the speech encoder's receptive field "
                    f"({needed} samples, {1000 * needed / 16000:g} ms at 16 kHz)."
                )
        return {name: np.ascontiguousarray(value, dtype=self.input_dtypes[name]) for name, value in feeds.items()}


def to_numpy(value):
    """A torch tensor (any device) or array-like as a numpy array; None stays None."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


__all__ = ["OnnxKlueWav2Vec2ForEmotion", "ONNX_CONFIG_NAME", "is_onnx_folder", "read_onnx_config",
           "default_intra_op_threads", "graph_inputs_for", "audio_inputs_for"]
