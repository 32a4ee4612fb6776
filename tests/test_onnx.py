"""ONNX export and onnxruntime inference: same outputs as PyTorch, padding-invariant, loadable as a checkpoint.

Exporting costs ~10 s a model, so each model of `ONNX_CASES` is exported once (module cache) and every property is
checked on that export. `ONNX_CASES` is a documented subset of `contract_cases()` that grows with it: every fusion x
audio representation x wav2vec2 feature encoder (group norm, layer norm), the poolings taken in turn (each pooling is
exported), one `cat` model for any other speech encoder kind, and the `NEWER` cases of cross fusion and weighted
layers.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile
import torch
from helpers.audio import speech_like
from helpers.contract_matrix import WHISPER_CASES, ContractCase, audio_family, build_from_config, contract_cases
from helpers.fresh_process import BLOCK_KEMD_EMOTION
from transformers import pipeline

import kemd_emotion.onnx as onnx_export
from kemd_emotion import KlueWav2Vec2ForEmotion, OnnxKlueWav2Vec2ForEmotion
from kemd_emotion.cli import main
from kemd_emotion.hub import REMOTE_CODE_FILES, save_checkpoint
from kemd_emotion.onnx import export_onnx
from kemd_emotion.onnxruntime_klue_wav2vec2 import default_intra_op_threads, graph_inputs_for
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_whisper_processor

ATOL = 1e-4
GRID_ENCODERS = ("wav2vec2-group", "wav2vec2-layer")
TEXTS = ["음", "안녕하세요 오늘 날씨가 정말 좋네요 그건 너무 화가 나요 정말 싫어요", "그건 너무 화가 나요"]
CLIP_SECONDS = (0.2, 2.5, 0.6)
"""Longer than the export's example batch (7 tokens, 1 s, 2 items) on every axis; the first clip padded by 92 %."""


NEWER = {("cross", "conv", "wav2vec2-group"), ("cross", "weighted", "wav2vec2-layer"),
         ("cat", "weighted", "wav2vec2-group"), ("speech", "weighted", "wav2vec2-layer")}
"""Of the options added after the paper (cross fusion, weighted layers), the exported ones: each with both
feature-encoder norms, cross with both kinds of speech sequence (conv frames, transformer layers)."""


def onnx_cases(cases: list[ContractCase]) -> list[ContractCase]:
    """The exported subset of `cases` (see the module docstring), in their order."""
    groups: dict[str, list[ContractCase]] = {}
    for case in cases:
        newer = case.fusion == "cross" or case.audio_representation == "weighted"
        if (case.fusion, case.audio_representation, case.audio_encoder) in NEWER or not newer and (
                case.audio_encoder in GRID_ENCODERS or case.fusion == "text"
                or (case.fusion == "cat" and case.audio_representation == "hidden")):
            groups.setdefault(dataclasses.replace(case, pooling="").id, []).append(case)
    return [variants[number % len(variants)] for number, variants in enumerate(groups.values())]


ONNX_CASES = onnx_cases(contract_cases())
WHISPER_ONNX_CASES = list(WHISPER_CASES)
"""Whisper's encoder (log-mel input_features, frames axis dynamic): hidden and weighted, three fusions."""
REFERENCE = next(case for case in ONNX_CASES if case.fusion == "cat" and case.audio_representation == "hidden"
                 and case.audio_encoder == "wav2vec2-group")
"""Both encoders with their attention layers and the masked group norm: the case the pipeline and CLI tests use."""


def ids(cases):
    return [case.id for case in cases]


def test_onnx_cases_cover_the_issue_grid():
    """Every fusion x conv/hidden x group/layer norm, and every pooling, is exported."""
    covered = {(case.fusion, case.audio_representation, case.audio_encoder) for case in ONNX_CASES}
    for fusion in ("cat", "add", "speech"):
        for representation in ("conv", "hidden"):
            for encoder in GRID_ENCODERS:
                assert (fusion, representation, encoder) in covered
    assert NEWER <= covered
    assert any(case.fusion == "text" for case in ONNX_CASES)
    assert {case.pooling for case in ONNX_CASES} == {"mean", "last", "first"}
    assert len(ONNX_CASES) == len({case.id for case in ONNX_CASES})


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(3)
    return [speech_like(rng, seconds) for seconds in CLIP_SECONDS]


class Exports:
    """Per case: a saved PyTorch checkpoint, its ONNX folder and what both give, computed once."""

    def __init__(self, processors: dict, root: Path, clips):
        self.processors, self.root, self.clips = processors, root, clips
        self.processor = processors["wav2vec2"]
        self._found: dict[ContractCase, dict] = {}

    def processor_for(self, case: ContractCase):
        return self.processors[audio_family(case.audio_encoder)]

    def checkpoint(self, case: ContractCase) -> Path:
        directory = self.root / case.id / "checkpoint"
        if not directory.exists():
            torch.manual_seed(zlib.crc32(case.id.encode()))
            processor = self.processor_for(case)
            model = build_from_config(case, len(processor.tokenizer))
            save_checkpoint(model, processor, directory)
        return directory

    def __call__(self, case: ContractCase) -> dict:
        if case not in self._found:
            self._found[case] = self.measure(case)
        return self._found[case]

    def measure(self, case: ContractCase) -> dict:
        checkpoint = self.checkpoint(case)
        processor = self.processor_for(case)
        folder = export_onnx(checkpoint, self.root / case.id / "onnx")
        eager = KlueWav2Vec2ForEmotion.from_pretrained(checkpoint).eval()
        model = OnnxKlueWav2Vec2ForEmotion.from_pretrained(folder)
        batch = processor(text=TEXTS, audio=self.clips, sampling_rate=16000)
        with torch.no_grad():
            expected = eager(**batch)
        found = model(**batch)
        alone = [model(**processor(text=text, audio=clip, sampling_rate=16000))
                 for text, clip in zip(TEXTS, self.clips)]
        shortest = processor(text=TEXTS[0], audio=self.clips[0][:400], sampling_rate=16000)  # 25 ms
        with torch.no_grad():
            expected_shortest = eager(**shortest)
        result = {"folder": folder, "checkpoint": checkpoint, "config": eager.config,
                  "shortest": model(**shortest), "expected_shortest": expected_shortest,
                  "numpy": model(**{name: value.numpy() for name, value in batch.items()})}
        for name in ("logits", "regression"):
            result[f"eager/{name}"] = expected[name].numpy()
            result[f"onnx/{name}"] = found[name]
            result[f"alone/{name}"] = torch.cat([output[name] for output in alone]).numpy()
        return result


@pytest.fixture(scope="module")
def exports(tiny_processor, tmp_path_factory, clips):
    processors = {"wav2vec2": tiny_processor, "whisper": tiny_whisper_processor(DEFAULT_TEXTS, vocab_size=300)}
    return Exports(processors, tmp_path_factory.mktemp("onnx"), clips)


def close(actual, expected, atol=ATOL, name=""):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=0, err_msg=name)


# ------------------------------------------------------------------------------------------------- every exported case
@pytest.mark.parametrize("case", ONNX_CASES + WHISPER_ONNX_CASES, ids=ids(ONNX_CASES + WHISPER_ONNX_CASES))
def test_onnx_equals_pytorch_on_a_ragged_batch(case, exports):
    """fp32 onnxruntime == PyTorch eager within 1e-4, on a batch larger than the export's on every dynamic axis, and
    on the shortest clip the processor accepts; torch tensors in, torch tensors out (numpy in, numpy out)."""
    found = exports(case)
    for name in ("logits", "regression"):
        assert isinstance(found[f"onnx/{name}"], torch.Tensor) and found[f"onnx/{name}"].shape[0] == len(TEXTS)
        close(found[f"onnx/{name}"], found[f"eager/{name}"], name=name)
        close(found["shortest"][name], found["expected_shortest"][name], name=f"25 ms clip {name}")
        assert isinstance(found["numpy"][name], np.ndarray)
        close(found["numpy"][name], found[f"eager/{name}"], name=f"numpy {name}")


@pytest.mark.parametrize("case", ONNX_CASES + WHISPER_ONNX_CASES, ids=ids(ONNX_CASES + WHISPER_ONNX_CASES))
def test_onnx_graph_is_batch_invariant(case, exports):
    """Each clip alone gives what it gives padded in the batch (the masked group norm and pooling exported as
    tensor ops)."""
    found = exports(case)
    for name in ("logits", "regression"):
        close(found[f"onnx/{name}"], found[f"alone/{name}"], name=f"{name}: batch vs alone")


@pytest.mark.parametrize("case", ONNX_CASES + WHISPER_ONNX_CASES, ids=ids(ONNX_CASES + WHISPER_ONNX_CASES))
def test_onnx_folder_describes_itself(case, exports):
    found = exports(case)
    folder, config = found["folder"], found["config"]
    description = json.loads((folder / "onnx_config.json").read_text())
    names = [item["name"] for item in description["inputs"]]
    assert names == list(graph_inputs_for(config))
    audio = "input_features" if case.audio_encoder == "whisper" else "input_values"
    assert ("input_ids" in names) == (case.fusion != "speech") and (audio in names) == (case.fusion != "text")
    shapes = {"input_values": ["batch", "samples"], "input_features": ["batch", 80, "frames"],
              "audio_attention_mask": ["batch", "frames" if case.audio_encoder == "whisper" else "samples"]}
    for item in description["inputs"]:
        assert item["shape"] == shapes.get(item["name"], ["batch", "tokens"])
        assert item["dtype"] == ("float32" if item["name"] in ("input_values", "input_features") else "int64")
    assert description["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["batch", 7]},
                                      {"name": "regression", "dtype": "float32", "shape": ["batch", 2]}]
    assert (description["opset"], description["quantization"], description["fusion"]) == (18, None, case.fusion)
    assert max(description["check"]["max_abs_difference"].values()) < 1e-4
    weights = (found["checkpoint"] / "model.safetensors").read_bytes()
    assert description["source"]["sha256"]["model.safetensors"] == hashlib.sha256(weights).hexdigest()
    graph = onnx.load(folder / "model.onnx")
    assert [value.name for value in graph.graph.input] == names
    assert {entry.domain: entry.version for entry in graph.opset_import}[""] == 18
    present = {path.name for path in folder.iterdir()}
    assert {"config.json", "processor_config.json", "tokenizer_config.json", "onnxruntime_klue_wav2vec2.py",
            "handler.py", *REMOTE_CODE_FILES} <= present
    assert not [path for path in folder.parent.iterdir() if ".partial-" in path.name]
    assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoModel"] == \
        "onnxruntime_klue_wav2vec2.OnnxKlueWav2Vec2ForEmotion"


def test_text_encoder_whose_tokenizer_makes_no_token_type_ids_exports(clips, tmp_path):
    """A RoBERTa with its byte-level BPE tokenizer (pad id 1, `<s> ... </s>`, no token_type_ids, as XLM-R's and
    multilingual-e5's SentencePiece tokenizers): the export feeds zeros for the token types, and the onnxruntime
    model gives the eager outputs on a batch without them."""
    from helpers.contract_matrix import (
        AUDIO_ENCODERS,
        build_from_encoder_folders,
        processor_for_encoders,
        save_encoder_folders,
    )
    from kemd_emotion.small_encoders import tiny_roberta_config

    folders = save_encoder_folders(tmp_path / "encoders", text_encoders={"roberta": tiny_roberta_config},
                                   audio_encoders={"wav2vec2-group": AUDIO_ENCODERS["wav2vec2-group"]})
    processor = processor_for_encoders(folders["roberta"], folders["wav2vec2-group"])
    batch = processor(text=TEXTS, audio=clips, sampling_rate=16000)
    assert "token_type_ids" not in batch and processor.tokenizer.pad_token_id == 1
    case = ContractCase("cat", "hidden", "last", "wav2vec2-group", "roberta")
    model = build_from_encoder_folders(case, folders, seed=1)
    checkpoint = save_checkpoint(model, processor, tmp_path / "checkpoint")
    folder = export_onnx(checkpoint, tmp_path / "onnx")
    found = OnnxKlueWav2Vec2ForEmotion.from_pretrained(folder)(**batch)
    with torch.no_grad():
        expected = model(**batch)
    for name in ("logits", "regression"):
        close(found[name], expected[name].numpy(), name=name)


# ------------------------------------------------------------------------------------------------- loading as a checkpoint
def pipeline_numbers(classifier, items) -> dict:
    outputs = {"batched": classifier(items, batch_size=2), "single": [classifier(item) for item in items]}
    numbers = {}
    for mode, answers in outputs.items():
        labels = classifier.model.config.label2id
        scores = np.zeros((len(items), len(labels)))
        for row, answer in enumerate(answers):
            for emotion in answer["emotions"]:
                scores[row, labels[emotion["label"]]] = emotion["score"]
        numbers[f"{mode}/scores"] = scores
        numbers[f"{mode}/regression"] = np.array([[a["arousal"], a["valence"]] for a in answers])
        numbers[f"{mode}/labels"] = [a["labels"] for a in answers]
    return numbers


def assert_onnx_pipeline_answers_like_the_checkpoint(found: dict, clips) -> None:
    """`pipeline(model=ONNX_FOLDER)` runs onnxruntime and gives the checkpoint's pipeline answers on `TEXTS` x `clips`."""
    items = [{"text": text, "audio": clip} for text, clip in zip(TEXTS, clips)]
    from_checkpoint = pipeline("emotion-multimodal", model=str(found["checkpoint"]), device="cpu")
    from_onnx = pipeline("emotion-multimodal", model=str(found["folder"]), device="cpu")
    assert isinstance(from_onnx.model, OnnxKlueWav2Vec2ForEmotion)
    expected, got = pipeline_numbers(from_checkpoint, items), pipeline_numbers(from_onnx, items)
    for key, value in expected.items():
        if key.endswith("labels"):
            assert got[key] == value
        else:
            close(got[key], value, name=key)


def test_pipeline_gives_the_same_answers_from_the_onnx_folder(exports, clips):
    """`pipeline("emotion-multimodal", model=ONNX_FOLDER)`, nothing else changed: the checkpoint's answers."""
    found = exports(REFERENCE)
    assert_onnx_pipeline_answers_like_the_checkpoint(found, clips)


def test_every_auto_entry_point_loads_the_checkpoint_and_onnx_folder_without_kemd_emotion(exports, clips, tmp_path):
    """`trust_remote_code=True` where kemd_emotion cannot be imported, through each entry point transformers offers
    (AutoConfig, AutoProcessor, AutoModel, pipeline) and on both folders a user shares: the folder's own code loads,
    whatever keywords the installed transformers passes it (5.25's AutoModel added `_from_auto`)."""
    found = exports(REFERENCE)
    np.savez(tmp_path / "clips.npz", *clips)
    folders = {"checkpoint": str(found["checkpoint"]), "onnx": str(found["folder"])}
    script = BLOCK_KEMD_EMOTION + f"""
import numpy as np
from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline
clips = list(np.load({str(tmp_path / "clips.npz")!r}).values())
name = lambda thing: type(thing).__module__ + "." + type(thing).__name__
loaded = {{}}
for kind, folder in {folders!r}.items():
    classifier = pipeline("emotion-multimodal", model=folder, trust_remote_code=True, device="cpu")
    loaded[kind] = {{
        "config": name(AutoConfig.from_pretrained(folder, trust_remote_code=True)),
        "processor": name(AutoProcessor.from_pretrained(folder, trust_remote_code=True)),
        "model": name(AutoModel.from_pretrained(folder, trust_remote_code=True)),
        "pipeline_model": name(classifier.model),
        "answers": classifier([{{"text": t, "audio": c}} for t, c in zip({TEXTS!r}, clips)], batch_size=2),
    }}
print(json.dumps(loaded))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    expected_model = {"checkpoint": "KlueWav2Vec2ForEmotion", "onnx": "OnnxKlueWav2Vec2ForEmotion"}
    for kind, names in remote.items():
        for entry in ("config", "processor", "model", "pipeline_model"):
            assert names[entry].startswith("transformers_modules."), (kind, entry, names[entry])
        assert names["config"].endswith(".KlueWav2Vec2EmotionConfig")
        assert names["processor"].endswith(".KlueWav2Vec2Processor")
        assert names["model"].endswith("." + expected_model[kind]) and names["pipeline_model"] == names["model"]
    local = pipeline("emotion-multimodal", model=str(found["checkpoint"]), device="cpu")(
        [{"text": text, "audio": clip} for text, clip in zip(TEXTS, clips)], batch_size=2)
    for kind in folders:
        for theirs, ours in zip(remote[kind]["answers"], local):
            assert theirs["labels"] == ours["labels"]
            close([e["score"] for e in theirs["emotions"]], [e["score"] for e in ours["emotions"]])
            close([theirs["arousal"], theirs["valence"]], [ours["arousal"], ours["valence"]])


TRANSFORMERS_PLUMBING = {
    "_from_auto": True, "_from_pipeline": "emotion-multimodal", "_commit_hash": None, "_a_future_internal": 1,
    "trust_remote_code": True, "code_revision": None, "adapter_kwargs": {}, "revision": "main", "token": None,
    "cache_dir": None, "force_download": False, "local_files_only": True, "proxies": None, "subfolder": "",
}
"""Keywords transformers' Auto classes and pipeline() pass to a remote-code class (5.25's and a future private one)."""


def test_onnx_model_and_processor_accept_transformers_loading_keywords(exports):
    from kemd_emotion import KlueWav2Vec2Processor

    folder = exports(REFERENCE)["folder"]
    model = OnnxKlueWav2Vec2ForEmotion.from_pretrained(folder, **TRANSFORMERS_PLUMBING)
    assert isinstance(model, OnnxKlueWav2Vec2ForEmotion)
    processor = KlueWav2Vec2Processor.from_pretrained(folder, **TRANSFORMERS_PLUMBING)
    assert isinstance(processor, KlueWav2Vec2Processor)


def test_onnx_model_refuses_a_misspelt_option_naming_it_and_the_options(exports):
    folder = exports(REFERENCE)["folder"]
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) 'provder' \(did you mean 'provider'\?\); it takes "
                                        r"config, provider, intra_op_num_threads"):
        OnnxKlueWav2Vec2ForEmotion.from_pretrained(folder, provder="CPUExecutionProvider", _from_auto=True)


def test_endpoint_handler_serves_the_onnx_folder(exports, clips):
    """The folder's handler.py (Inference Endpoints) answers with the checkpoint's numbers, on onnxruntime."""
    from helpers.endpoint import load_handler_module

    found = exports(REFERENCE)
    handler = load_handler_module(found["folder"]).EndpointHandler(str(found["folder"]))
    assert isinstance(handler.pipeline.model, OnnxKlueWav2Vec2ForEmotion)
    inputs = {"text": TEXTS[1], "audio": clips[1].tolist(), "sampling_rate": 16000}
    answer = handler({"inputs": inputs, "parameters": {"top_k": 7}})
    expected = pipeline("emotion-multimodal", model=str(found["checkpoint"]), device="cpu")(
        {"text": TEXTS[1], "audio": clips[1]})
    close([e["score"] for e in answer["emotions"]], [e["score"] for e in expected["emotions"]])
    close([answer["arousal"], answer["valence"]], [expected["arousal"], expected["valence"]])


def test_demo_scores_a_long_recording_window_by_window_from_the_onnx_folder(exports, tmp_path):
    """The demo's request path (windows of the 5 s crop, batched) on the ONNX folder: the checkpoint's numbers."""
    from kemd_emotion.demo import load_classifier, predict as demo_predict

    found = exports(REFERENCE)
    recording = tmp_path / "long.wav"
    soundfile.write(recording, speech_like(np.random.default_rng(5), 12.5), 16000)
    answers = {kind: demo_predict(load_classifier(str(found[kind])), str(recording), TEXTS[2])
               for kind in ("checkpoint", "folder")}
    assert answers["folder"]["window_seconds"] == 5.0 and len(answers["folder"]["chunks"]) == 3
    for ours, theirs in zip(answers["folder"]["chunks"], answers["checkpoint"]["chunks"]):
        close([e["score"] for e in ours["emotions"]], [e["score"] for e in theirs["emotions"]])
        close([ours["arousal"], ours["valence"]], [theirs["arousal"], theirs["valence"]])


def test_graph_runs_with_onnxruntime_and_numpy_alone(exports, tiny_processor, clips, tmp_path):
    """The deployment promise: model.onnx and onnx_config.json need neither torch, transformers nor kemd_emotion."""
    found = exports(REFERENCE)
    batch = tiny_processor(text=TEXTS, audio=clips, sampling_rate=16000, return_tensors="np")
    np.savez(tmp_path / "inputs.npz", **batch)
    script = f"""
import json, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "kemd_emotion"):
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Block())
import numpy as np, onnxruntime
folder = {str(found["folder"])!r}
description = json.load(open(folder + "/onnx_config.json"))
inputs = np.load({str(tmp_path / "inputs.npz")!r})
feeds = {{item["name"]: inputs[item["name"]].astype(item["dtype"]) for item in description["inputs"]}}
session = onnxruntime.InferenceSession(folder + "/" + description["model_file"], providers=["CPUExecutionProvider"])
logits, regression = session.run(["logits", "regression"], feeds)
np.savez({str(tmp_path / "outputs.npz")!r}, logits=logits, regression=regression)
assert "torch" not in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    for name in ("logits", "regression"):
        close(outputs[name], found[f"eager/{name}"], name=name)


def test_sessions_use_the_physical_cores_by_default_and_take_a_thread_count(exports):
    folder = exports(REFERENCE)["folder"]
    default = OnnxKlueWav2Vec2ForEmotion.from_pretrained(folder)
    assert default.session.get_session_options().intra_op_num_threads == default_intra_op_threads()
    assert 1 <= default_intra_op_threads() <= len(os.sched_getaffinity(0))
    one = OnnxKlueWav2Vec2ForEmotion.from_pretrained(folder, intra_op_num_threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1
    assert one.session.get_providers() == ["CPUExecutionProvider"]


def test_onnx_model_refuses_what_the_pytorch_model_refuses(exports, tiny_processor, clips):
    model = OnnxKlueWav2Vec2ForEmotion.from_pretrained(exports(REFERENCE)["folder"])
    batch = tiny_processor(text=TEXTS, audio=clips, sampling_rate=16000)
    with pytest.raises(ValueError, match=r"fusion='cat' needs speech: input_values is None"):
        model(input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match=r"a clip of 399 samples is shorter than the speech encoder's receptive field"):
        model(input_ids=batch["input_ids"][:1], input_values=torch.zeros(1, 399))
    with pytest.raises(ValueError, match=r"text and audio batch sizes differ"):
        model(input_ids=batch["input_ids"][:2], input_values=batch["input_values"])
    with pytest.raises(TypeError, match="labels"):
        model(**batch, labels=torch.zeros(3, 7))


# ------------------------------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def recordings(tmp_path_factory, clips):
    folder = tmp_path_factory.mktemp("recordings")
    for number, (text, clip) in enumerate(zip(TEXTS, clips)):
        soundfile.write(folder / f"clip{number}.wav", clip, 16000, subtype="FLOAT")
        (folder / f"clip{number}.txt").write_text(text, encoding="utf-8")
    return folder


def predict(capsys, model: Path, recordings: Path) -> list[dict]:
    assert main(["predict", "--model", str(model), "--audio", str(recordings), "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


def scores_of(entries: list[dict]) -> np.ndarray:
    return np.array([[e["score"] for e in sorted(entry["emotions"], key=lambda e: e["label"])] for entry in entries])


def test_cli_exports_int8_and_predicts_from_onnx_folders(exports, recordings, capsys, tmp_path):
    """`kemd-emotion export CKPT OUT --int8`, then `predict --model OUT`: int8 Linear weights (every Linear layer,
    no Conv), answers close to the checkpoint's; `predict` on the float32 folder gives the checkpoint's answers."""
    found = exports(REFERENCE)
    out = tmp_path / "int8"
    assert main(["export", str(found["checkpoint"]), str(out), "--int8"]) == 0
    assert capsys.readouterr().out.strip() == str(out.absolute())
    description = json.loads((out / "onnx_config.json").read_text())
    eager = KlueWav2Vec2ForEmotion.from_pretrained(found["checkpoint"])
    linear_layers = sum(isinstance(module, torch.nn.Linear) for module in eager.modules())
    conv_layers = sum(isinstance(module, torch.nn.Conv1d) for module in eager.modules())
    quantization = description["quantization"]
    assert (quantization["weight_type"], quantization["op_types"]) == ("int8", ["MatMul", "Gemm"])
    assert quantization["quantized_nodes"] == linear_layers and quantization["float_conv_nodes"] == conv_layers
    graph = onnx.load(out / "model.onnx").graph
    ops = {node.op_type for node in graph.node}
    assert "MatMulInteger" in ops and "ConvInteger" not in ops and "Conv" in ops
    int8_weights = [tensor for tensor in graph.initializer if tensor.data_type == onnx.TensorProto.INT8 and len(tensor.dims) == 2]
    assert len(int8_weights) == linear_layers  # one int8 weight matrix per Linear layer
    assert (out / "model.onnx").stat().st_size < (found["folder"] / "model.onnx").stat().st_size

    checkpoint_answers = predict(capsys, found["checkpoint"], recordings)
    fp32_answers = predict(capsys, found["folder"], recordings)
    int8_answers = predict(capsys, out, recordings)
    assert [entry["text"] for entry in fp32_answers] == [entry["text"] for entry in checkpoint_answers]
    close(scores_of(fp32_answers), scores_of(checkpoint_answers), name="fp32 ONNX vs PyTorch")
    assert [entry["labels"] for entry in fp32_answers] == [entry["labels"] for entry in checkpoint_answers]
    close(scores_of(int8_answers), scores_of(checkpoint_answers), atol=0.02, name="int8 ONNX vs PyTorch")
    close([[e["arousal"], e["valence"]] for e in int8_answers],
          [[e["arousal"], e["valence"]] for e in checkpoint_answers], atol=0.05, name="int8 arousal/valence")
    assert np.abs(scores_of(int8_answers) - scores_of(checkpoint_answers)).max() > 0  # it is another model


# ------------------------------------------------------------------------------------------------- bad input
def leftovers(parent: Path) -> list[str]:
    return [path.name for path in parent.iterdir() if ".partial-" in path.name or ".old-" in path.name]


def test_export_refuses_a_checkpoint_without_config_or_weights(exports, tmp_path):
    source = exports.checkpoint(REFERENCE)
    no_config, no_weights = tmp_path / "no_config", tmp_path / "no_weights"
    shutil.copytree(source, no_config)
    (no_config / "config.json").unlink()
    shutil.copytree(source, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"lacks config\.json: export a folder written by model\.save_pretrained"):
        export_onnx(no_config, tmp_path / "out")
    with pytest.raises(ValueError, match=r"lacks model weights \(\*\.safetensors\)"):
        export_onnx(no_weights, tmp_path / "out")
    with pytest.raises(ValueError, match="is not a folder"):
        export_onnx(tmp_path / "missing", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_export_refuses_unsupported_opsets_and_quantizations(exports, tmp_path):
    checkpoint = exports.checkpoint(REFERENCE)
    with pytest.raises(ValueError, match=r"opset=16 is not supported; expected an integer from 18"):
        export_onnx(checkpoint, tmp_path / "out", opset=16)
    with pytest.raises(ValueError, match=r"opset=99 is not supported; expected 18 to \d+"):
        export_onnx(checkpoint, tmp_path / "out", opset=99)
    with pytest.raises(ValueError, match=r"quantize='int4' is not supported; expected None \(float32\) or 'int8'"):
        export_onnx(checkpoint, tmp_path / "out", quantize="int4")
    assert main(["export", str(checkpoint), str(tmp_path / "out"), "--opset", "12"]) == 2
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_failed_export_leaves_no_half_written_folder(exports, tmp_path, monkeypatch):
    """An error while exporting removes the staging folder; an existing out_dir is kept as it was."""
    checkpoint = exports.checkpoint(REFERENCE)

    def broken_capture(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "capture", broken_capture)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_onnx(checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not empty; pass overwrite=True"):
        export_onnx(checkpoint, existing)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_onnx(checkpoint, existing, overwrite=True)
    assert [path.name for path in existing.iterdir()] == ["keep.txt"] and not leftovers(tmp_path)


def test_missing_onnxruntime_names_the_extra(exports, tmp_path, monkeypatch, capsys, recordings):
    found = exports(REFERENCE)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    hint = r"pip install 'kemd-emotion\[onnx\]'"
    with pytest.raises(ImportError, match=hint):
        OnnxKlueWav2Vec2ForEmotion.from_pretrained(found["folder"])
    with pytest.raises(ImportError, match=hint):
        pipeline("emotion-multimodal", model=str(found["folder"]), device="cpu")
    with pytest.raises(ImportError, match=hint):
        export_onnx(found["checkpoint"], tmp_path / "out")
    assert main(["predict", "--model", str(found["folder"]), "--audio", str(recordings), "--no-progress"]) == 2
    assert "kemd-emotion[onnx]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_onnx_folder_whose_graph_does_not_match_its_config(exports, tmp_path):
    """config.json asking for an input the graph lacks, a graph without an output, a description that lies: each
    error names what is missing."""
    found = exports(REFERENCE)
    speech = next(case for case in ONNX_CASES if case.fusion == "speech")
    wrong_fusion = tmp_path / "wrong_fusion"
    shutil.copytree(exports(speech)["folder"], wrong_fusion)
    config = json.loads((wrong_fusion / "config.json").read_text())
    config["fusion"] = "cat"
    (wrong_fusion / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"the graph lacks input\(s\) \['input_ids', 'attention_mask', "
                                         r"'token_type_ids'\] that config.json \(fusion='cat'\) needs"):
        OnnxKlueWav2Vec2ForEmotion.from_pretrained(wrong_fusion)
    with pytest.raises(ValueError, match=r"lacks input\(s\) \['input_ids'"):
        pipeline("emotion-multimodal", model=str(wrong_fusion), device="cpu")

    no_regression = tmp_path / "no_regression"
    shutil.copytree(found["folder"], no_regression)
    graph = onnx.load(no_regression / "model.onnx")
    renamed = "arousal_valence"
    for node in graph.graph.node:
        node.output[:] = [renamed if name == "regression" else name for name in node.output]
    for value in graph.graph.output:
        if value.name == "regression":
            value.name = renamed
    onnx.save(graph, no_regression / "model.onnx")
    with pytest.raises(ValueError, match=r"the graph lacks output\(s\) \['regression'\]"):
        OnnxKlueWav2Vec2ForEmotion.from_pretrained(no_regression)

    lying = tmp_path / "lying"
    shutil.copytree(found["folder"], lying)
    description = json.loads((lying / "onnx_config.json").read_text())
    description["inputs"] = description["inputs"][:3]
    (lying / "onnx_config.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match=r"onnx_config.json lists inputs \['input_ids', 'attention_mask', "
                                         r"'token_type_ids'\], the graph has"):
        OnnxKlueWav2Vec2ForEmotion.from_pretrained(lying)

    with pytest.raises(OSError, match="is not an ONNX model folder: it has no onnx_config.json"):
        OnnxKlueWav2Vec2ForEmotion.from_pretrained(found["checkpoint"])


# ------------------------------------------------------------------------------------------------- Whisper's encoder
def test_whisper_encoder_exports_int8_and_the_pipeline_reads_its_folders(exports, clips, tmp_path):
    """A Whisper-encoder checkpoint: int8 quantizes every Linear layer (the two convolutions stay float32), scores
    stay close to PyTorch's, and `pipeline(model=ONNX_FOLDER)` gives the checkpoint's answers (fp32)."""
    case = WHISPER_ONNX_CASES[0]
    found = exports(case)
    out = export_onnx(found["checkpoint"], tmp_path / "int8", quantize="int8")
    description = json.loads((out / "onnx_config.json").read_text())
    eager = KlueWav2Vec2ForEmotion.from_pretrained(found["checkpoint"]).eval()
    linear_layers = sum(isinstance(module, torch.nn.Linear) for module in eager.modules())
    assert description["quantization"]["quantized_nodes"] == linear_layers
    assert description["quantization"]["float_conv_nodes"] == 2
    assert [item["name"] for item in description["inputs"]][-2:] == ["input_features", "audio_attention_mask"]
    processor = exports.processor_for(case)
    batch = processor(text=TEXTS, audio=clips, sampling_rate=16000)
    int8_model = OnnxKlueWav2Vec2ForEmotion.from_pretrained(out)
    int8 = int8_model(**batch)
    with torch.no_grad():
        expected = eager(**batch)
    close(torch.sigmoid(int8.logits), torch.sigmoid(expected.logits), atol=0.02, name="int8 scores")
    close(int8.regression, expected.regression, atol=0.05, name="int8 regression")
    assert (int8.logits - expected.logits).abs().max() > 0
    with pytest.raises(ValueError, match=r"input_values was given, but the speech encoder \(audio_config.model_type="
                                         r"'whisper'\) reads input_features"):
        int8_model(input_ids=batch["input_ids"], input_values=torch.zeros(3, 8000))
    with pytest.raises(ValueError, match=r"input_features must be \(batch, 80 mel bins, at most 3000 frames"):
        int8_model(input_ids=batch["input_ids"][:1], input_features=torch.zeros(1, 80, 3001))

    assert_onnx_pipeline_answers_like_the_checkpoint(found, clips)
