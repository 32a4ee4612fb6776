"""Export a checkpoint to an ONNX model folder that onnxruntime serves on CPUs, optionally with int8 weights.

    kemd-emotion export CHECKPOINT OUT [--int8] [--opset N]

`export_onnx(checkpoint_dir, out_dir)` captures the model with `torch.onnx.export(..., dynamo=True)` (the
torch.export-based exporter; the TorchScript one is deprecated) with dynamic batch, token and sample axes, checks
the graph against the PyTorch model on two batches of other sizes, and writes a complete model folder (see
`kemd_emotion.onnxruntime_klue_wav2vec2` for its layout) that `pipeline("emotion-multimodal", model=OUT)`,
`kemd-emotion predict --model OUT` and `OnnxKlueWav2Vec2ForEmotion.from_pretrained(OUT)` load.

`quantize="int8"` quantizes the weights of the MatMul/Gemm nodes (every Linear layer of both encoders and the heads)
dynamically with `onnxruntime.quantization.quantize_dynamic`; the convolutional feature encoder stays float32 (see
benchmarks/README.md for speed and agreement).

Needs the `onnx` extra: `pip install 'kemd-emotion[onnx]'` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .onnxruntime_klue_wav2vec2 import (
    AUDIO_INPUTS,
    INSTALL_HINT,
    ONNX_CONFIG_NAME,
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    OUTPUTS,
    TEXT_INPUTS,
    graph_inputs_for,
    import_onnxruntime,
    is_onnx_folder,
)

DEFAULT_OPSET = 18
"""The opset torch's ONNX exporter translates to natively (torchlib); onnxruntime has run it since 1.14."""
MIN_OPSET = 18
"""Below 18 the exporter's version conversion of this model fails and it silently keeps 18: refused instead."""
QUANTIZATIONS = (None, "int8")
INT8_OP_TYPES = ("MatMul", "Gemm")
"""What int8 quantizes: the Linear layers. Conv (wav2vec2's feature encoder) stays float32."""
MODEL_FILE = "model.onnx"
ONNX_CODE_FILE = "onnxruntime_klue_wav2vec2.py"
ONNX_MODEL_CLASS = "onnxruntime_klue_wav2vec2.OnnxKlueWav2Vec2ForEmotion"
DYNAMIC_AXES = {**{name: {0: "batch", 1: "tokens"} for name in TEXT_INPUTS},
                **{name: {0: "batch", 1: "samples"} for name in AUDIO_INPUTS}}
WHISPER_DYNAMIC_AXES = {"input_features": {0: "batch", 2: "frames"}, "audio_attention_mask": {0: "batch", 1: "frames"}}
"""A Whisper encoder's inputs: log-mel `(batch, mel bins, frames)` and the mask per mel frame (up to 3000)."""


def dynamic_axes_for(config, names: tuple[str, ...]) -> dict:
    """The dynamic axes of each graph input in `names` for a model of `config`."""
    axes = {**DYNAMIC_AXES, **(WHISPER_DYNAMIC_AXES if config.is_whisper else {})}
    return {name: axes[name] for name in names}
CHECK_TOLERANCE = 1e-3
"""Largest |ONNX - PyTorch| (logits, regression) `export_onnx` accepts from a float32 graph on its check batches."""
EXAMPLES = (
    (("안녕하세요 오늘 날씨가 정말 좋네요", "그건 너무 화가 나요"), (1.0, 0.6)),
    (("음", "와 진짜 신기하다 대박", "슬퍼서 눈물이 났어요"), (0.3, 1.5, 0.8)),
)
"""(texts, clip seconds) of the batch the graph is captured on, and of the batch it is checked on: other batch
size, token and sample counts, so a graph that kept a captured size fails the check."""


def export_onnx(
    checkpoint_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Export the checkpoint in `checkpoint_dir` to an ONNX model folder `out_dir`.

    Args:
        checkpoint_dir: a folder saved with `save_pretrained` / `kemd_emotion.hub.save_checkpoint` (config.json,
            safetensors weights, the processor's files).
        out_dir: the folder to write; it is written under a temporary name beside it and renamed when complete, so
            it never exists half-written, also when the export fails.
        opset: the ONNX opset (18 and newer; the newest ones need a recent onnxruntime).
        quantize: None (float32) or `"int8"` (dynamic quantization of the MatMul/Gemm weights).
        overwrite: replace an existing, non-empty `out_dir`.

    Returns:
        `out_dir` as a Path.

    Raises:
        ValueError: naming the problem: a checkpoint without config.json, weights or processor files, an
            unsupported opset or quantization, an existing `out_dir` without `overwrite`, a graph that disagrees
            with the PyTorch model.
        ImportError: onnx, onnxscript or onnxruntime is missing (naming the extra to install).
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset={opset!r} is not supported; expected an integer from {MIN_OPSET} (default "
                         f"{DEFAULT_OPSET}).")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r} is not supported; expected None (float32) or 'int8'.")
    onnx = import_exporter()
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ValueError(f"opset={opset} is not supported; expected {MIN_OPSET} to {newest} (onnx "
                         f"{onnx.__version__}'s newest).")
    checkpoint = check_checkpoint_folder(checkpoint_dir)
    out = Path(out_dir).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ValueError(f"out_dir {str(out)!r} exists and is not empty; pass overwrite=True (--overwrite) to "
                         "replace it.")
    if out == checkpoint or checkpoint in out.parents:
        raise ValueError(f"out_dir {str(out)!r} is inside the checkpoint folder; choose a folder beside it.")

    import torch

    from .modeling_klue_wav2vec2 import KlueWav2Vec2ForEmotion
    from .processing_klue_wav2vec2 import KlueWav2Vec2Processor

    model = KlueWav2Vec2ForEmotion.from_pretrained(checkpoint, dtype=torch.float32).eval()
    try:
        processor = KlueWav2Vec2Processor.from_pretrained(checkpoint)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"checkpoint {str(checkpoint)!r} lacks its processor (tokenizer + feature extractor "
                         f"files): save it with processor.save_pretrained there ({error}).") from error
    names = graph_inputs_for(model.config)
    export_batch, check_batch = (example_batch(processor, names, texts, seconds) for texts, seconds in EXAMPLES)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        program = capture(model, export_batch, names, opset)
        produced = {entry.domain: entry.version for entry in program.model_proto.opset_import}.get("", None)
        if produced != opset:
            raise ValueError(f"opset={opset} is not supported for this model: the exporter produced opset {produced}.")
        program.save(staging / MODEL_FILE)
        del program
        quantization = None
        if quantize == "int8":
            quantization = quantize_int8(staging / MODEL_FILE)
        check = check_graph(staging / MODEL_FILE, model, [export_batch, check_batch], strict=quantize is None)
        write_folder_files(staging, model.config, processor)
        description = {
            "format": ONNX_FORMAT,
            "format_version": ONNX_FORMAT_VERSION,
            "model_file": MODEL_FILE,
            "external_data": sorted(path.name for path in staging.glob(MODEL_FILE + ".*")),
            "opset": opset,
            "fusion": model.config.fusion,
            **graph_signature(onnx, staging / MODEL_FILE),
            "quantization": quantization,
            "check": check,
            "source": {"checkpoint": str(checkpoint), "sha256": checkpoint_hashes(checkpoint)},
            "exporter": library_versions(),
        }
        (staging / ONNX_CONFIG_NAME).write_text(json.dumps(description, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
        move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def import_exporter():
    """onnx (and check onnxscript, which torch's exporter needs), or an ImportError naming the extra."""
    try:
        import onnx
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(f"exporting to ONNX needs onnx and onnxscript ({error}): {INSTALL_HINT}.") from error
    import_onnxruntime()  # the export is checked on onnxruntime
    return onnx


def check_checkpoint_folder(checkpoint_dir: str | os.PathLike) -> Path:
    """The checkpoint folder as an absolute Path; a ValueError naming what it lacks otherwise."""
    checkpoint = Path(checkpoint_dir).absolute()
    if not checkpoint.is_dir():
        raise ValueError(f"checkpoint {str(checkpoint)!r} is not a folder.")
    if is_onnx_folder(checkpoint):
        raise ValueError(f"checkpoint {str(checkpoint)!r} is already an ONNX model folder; export its PyTorch "
                         "checkpoint instead.")
    missing = []
    if not (checkpoint / "config.json").is_file():
        missing.append("config.json")
    if not any(checkpoint.glob("*.safetensors")) and not (checkpoint / "pytorch_model.bin").is_file():
        missing.append("model weights (*.safetensors)")
    if missing:
        raise ValueError(f"checkpoint {str(checkpoint)!r} lacks {' and '.join(missing)}: export a folder written by "
                         "model.save_pretrained (or kemd_emotion.hub.save_checkpoint).")
    return checkpoint


def example_batch(processor, names: tuple[str, ...], texts: tuple[str, ...], seconds: tuple[float, ...]) -> dict:
    """A ragged batch of model inputs `names` (torch tensors) from `texts` and clips of `seconds` (noise)."""
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(int(16000 * length)).astype(np.float32) for length in seconds]
    batch = processor(text=list(texts), audio=clips, sampling_rate=16000, return_tensors="pt")
    if "token_type_ids" in names and "token_type_ids" not in batch:
        # Tokenizers of one-token-type models (RoBERTa's, XLM-R's SentencePiece as in multilingual-e5) make none. The
        # graph takes them all the same (one signature for every text encoder), as zeros: what the model reads when
        # none are given, and what the onnxruntime model feeds when a caller gives none.
        import torch

        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    # Every integer input int64 (the feature extractor's mask is int32): one integer type for the graph's callers.
    return {name: batch[name] if batch[name].is_floating_point() else batch[name].long() for name in names}


def capture(model, inputs: dict, names: tuple[str, ...], opset: int):
    """`torch.onnx.export(dynamo=True)` of `model` returning (logits, regression), batch/tokens/samples dynamic."""
    import torch

    class LogitsAndRegression(torch.nn.Module):
        def __init__(self, emotion_model):
            super().__init__()
            self.model = emotion_model

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, input_values=None,
                    audio_attention_mask=None, input_features=None):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                             input_values=input_values, audio_attention_mask=audio_attention_mask,
                             input_features=input_features, return_dict=True)
            return out.logits, out.regression

    # The exporter's notes (torchvision ops it skips, deprecated internals) say nothing about this model.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                LogitsAndRegression(model).eval(), (), kwargs=inputs, dynamo=True, opset_version=opset,
                dynamic_shapes=dynamic_axes_for(model.config, names), input_names=list(names),
                output_names=list(OUTPUTS), verbose=False,
            )
    finally:
        registration.setLevel(level)


def quantize_int8(model_path: Path) -> dict:
    """Replace the float32 graph at `model_path` by one with int8 MatMul/Gemm weights; describe what was done."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = model_path.with_name("quantized-" + model_path.name)
    external = any(model_path.parent.glob(model_path.name + ".*"))
    quantize_dynamic(model_path, quantized, op_types_to_quantize=list(INT8_OP_TYPES), weight_type=QuantType.QInt8,
                     per_channel=False, reduce_range=False, use_external_data_format=external,
                     extra_options={"MatMulConstBOnly": True})
    for path in model_path.parent.glob(model_path.name + "*"):
        path.unlink()
    for path in model_path.parent.glob(quantized.name + "*"):
        path.rename(path.with_name(path.name.replace(quantized.name, model_path.name, 1)))
    graph = onnx.load(model_path, load_external_data=False).graph
    counts = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "int8",
        "activations": "uint8, quantized per call (dynamic)",
        "op_types": list(INT8_OP_TYPES),
        "quantized_nodes": counts.get("MatMulInteger", 0) + counts.get("DynamicQuantizeMatMul", 0)
        + counts.get("ConvInteger", 0),
        "float_matmul_nodes": counts.get("MatMul", 0) + counts.get("Gemm", 0),
        "float_conv_nodes": counts.get("Conv", 0),
    }


def check_graph(model_path: Path, model, batches: list[dict], strict: bool) -> dict:
    """Run the graph on `batches` and compare with the PyTorch model; with `strict`, a ValueError beyond
    CHECK_TOLERANCE. Returns the largest differences (what `onnx_config.json` records as `check`)."""
    import torch

    onnxruntime = import_onnxruntime()
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    largest = {name: 0.0 for name in OUTPUTS}
    for batch in batches:
        with torch.no_grad():
            expected = model(**batch, return_dict=True)
        found = dict(zip([o.name for o in session.get_outputs()],
                         session.run(None, {name: value.numpy() for name, value in batch.items()})))
        for name in OUTPUTS:
            largest[name] = max(largest[name], float(np.abs(found[name] - expected[name].numpy()).max()))
    if strict and max(largest.values()) > CHECK_TOLERANCE:
        raise ValueError(f"the exported graph differs from the PyTorch model by {largest} (more than "
                         f"{CHECK_TOLERANCE}); please report this with the checkpoint's config.json.")
    shapes = [{name: list(value.shape) for name, value in batch.items()} for batch in batches]
    return {"against": "the PyTorch checkpoint, float32", "batches": shapes, "max_abs_difference": largest}


def graph_signature(onnx, model_path: Path) -> dict:
    """`{"inputs": [...], "outputs": [...]}`: name, element type and shape (axis names or sizes) of each."""
    graph = onnx.load(model_path, load_external_data=False).graph

    def describe(value) -> dict:
        tensor = value.type.tensor_type
        shape = [dim.dim_param or dim.dim_value for dim in tensor.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        return {"name": value.name, "dtype": dtype, "shape": shape}

    return {"inputs": [describe(value) for value in graph.input], "outputs": [describe(value) for value in graph.output]}


def write_folder_files(folder: Path, config, processor) -> None:
    """config.json (naming the ONNX model class for `AutoModel` under trust_remote_code), the processor, the code."""
    from .hub import REMOTE_CODE_FILES
    from .pipeline_emotion import add_pipeline_files

    config = copy.deepcopy(config)
    config.architectures = [ONNX_MODEL_CLASS.rsplit(".", 1)[1]]
    config.save_pretrained(folder)
    processor.save_pretrained(folder)
    config_path = folder / "config.json"
    values = json.loads(config_path.read_text(encoding="utf-8"))
    values["auto_map"] = {**values.get("auto_map", {}), "AutoModel": ONNX_MODEL_CLASS}
    config_path.write_text(json.dumps(values, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    here = Path(__file__).parent
    for name in (*REMOTE_CODE_FILES, ONNX_CODE_FILE):
        shutil.copyfile(here / name, folder / name)
    add_pipeline_files(folder)  # the pipeline's entry in config.json, its code and handler.py


def checkpoint_hashes(checkpoint: Path) -> dict[str, str]:
    """SHA-256 of the checkpoint's config.json and weight files (which checkpoint this folder was made from)."""
    hashes = {}
    for path in sorted([checkpoint / "config.json", *checkpoint.glob("*.safetensors"), *checkpoint.glob("*.bin")]):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        hashes[path.name] = digest.hexdigest()
    return hashes


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("kemd-emotion", "torch", "transformers", "onnx", "onnxscript", "onnxruntime"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished `staging` folder to `out`, replacing what was there only once the new folder is whole."""
    if not out.exists():
        staging.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["export_onnx", "DEFAULT_OPSET", "MIN_OPSET", "QUANTIZATIONS"]
