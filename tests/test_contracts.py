"""Same outputs on every construction path and every padding, and the transformers contracts, on the paths users take.

Every model here exists four ways (helpers.contract_matrix.CONSTRUCTION_PATHS): built from a config, built with
`from_text_audio_pretrained` from encoder folders saved with `save_pretrained` (tokenizer and feature extractor beside
them with the real checkpoints' settings: `do_lower_case=False`, `return_attention_mask=False`, `do_normalize=True`),
reloaded with `from_pretrained`, and loaded with `trust_remote_code` in a fresh interpreter where kemd_emotion cannot
be imported. The same weights must give the same outputs on each, and every property below is checked on each. The
fresh interpreter runs once for this module (tests/helpers/contract_probes.py over all checkpoints); its numbers are compared
here.
"""

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, pipeline

from helpers.audio import speech_like
from helpers.contract_matrix import (
    CONSTRUCTION_PATHS,
    ENCODER_CASES,
    TEXT_ENCODERS,
    WHISPER_CASES,
    ContractCase,
    audio_family,
    build_from_config,
    build_from_encoder_folders,
    contract_cases,
    is_feature_encoder_parameter,
    processor_for_encoders,
    save_encoder_folders,
)
from helpers.contract_probes import (
    attention_report,
    batch_and_alone,
    checkpointing_gradients,
    export_outputs,
    forward_outputs,
    parameter_report,
    pipeline_outputs,
    rare_emotion_report,
)
from helpers.fresh_process import BLOCK_KEMD_EMOTION
from kemd_emotion import KlueWav2Vec2ForEmotion

TEXTS = ["음", "안녕하세요 오늘 날씨가 정말 좋네요", "그건 너무 화가 나요"]
CLIP_SECONDS = (0.2, 1.2, 0.6)  # the first clip is padded by more than 80 % in the batch
LABELS = [[1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 1]]
REGRESSION_LABELS = [[4.0, 2.0], [3.0, 3.5], [1.5, 4.5]]
ATOL = 1e-5

CASES = contract_cases()
BOTH_ENCODERS = [case for case in CASES if case.fusion == "cat" and case.audio_representation == "hidden"
                 and case.pooling == "mean"]
"""Both encoders run their attention layers: one case per speech feature encoder (group norm, layer norm)."""
ENCODERS = [ENCODER_CASES[0], ENCODER_CASES[1].with_options(
    cross_attention_dim=24, cross_attention_heads=3, cross_attention_layers=2, cross_attention_intermediate_size=40,
    weighted_layer_norm=True), ENCODER_CASES[2]]
"""The other encoder kinds (RoBERTa, ELECTRA, HuBERT, WavLM, Data2VecAudio), one with every cross/weighted size
option set, so that those round-trip too."""
WHISPER = WHISPER_CASES
"""Whisper's encoder (log-mel input_features from its own feature extractor): every check of ENCODERS, and those of
BOTH_ENCODERS (attention implementations, bf16, checkpointing, pipeline) on its first case."""
FROZEN = [case.with_options(freeze_feature_encoder=True) for case in BOTH_ENCODERS + ENCODERS[:1] + WHISPER[:1]]
POSITIVE_WEIGHTS = (1.0, 9.5, 8.0, 2.0, 1.0, 3.0, 7.5)
THRESHOLDS = (0.45, 0.2, 0.25, 0.5, 0.6, 0.35, 0.3)
RARE = [BOTH_ENCODERS[0].with_options(emotion_pos_weight=POSITIVE_WEIGHTS, decision_thresholds=THRESHOLDS)]
"""The rare-emotion options (positive weights, decision thresholds) must survive every construction path."""
EXPORTED = [
    ContractCase("cat", "hidden", "last", "wav2vec2-group"),  # on every path: both encoders, the masked group norm
    ContractCase("add", "conv", "first", "wav2vec2-layer"),  # these on the config path: the other fusions and norm
    ContractCase("text", pooling="first"),
    ContractCase("speech", "hidden", "mean", "wav2vec2-layer"),
    *ENCODERS,  # cross and weighted, and each other encoder kind
    *WHISPER,
]
IN_PROCESS = [path for path in CONSTRUCTION_PATHS if path != "remote_code"]


def ids(values):
    return [value.id if isinstance(value, ContractCase) else str(value) for value in values]


class Zoo:
    """The same model on each construction path, built once per (case, path)."""

    def __init__(self, folders: dict, processors: dict, root: Path):
        self.folders, self.processors, self.root = folders, processors, root
        self.processor = processors["bert", "wav2vec2"]
        self._models, self._checkpoints = {}, {}

    def processor_for(self, case: ContractCase):
        """The processor around `case`'s text encoder's own tokenizer and its speech encoder's feature extractor."""
        return self.processors[case.text_encoder, audio_family(case.audio_encoder)]

    def seed(self, case: ContractCase) -> int:
        return zlib.crc32(case.id.encode())

    def build(self, case: ContractCase, path: str, fresh: bool = False, **kwargs):
        """The model of `case` on `path` (eval mode); `fresh` or `kwargs` (attn_implementation, dtype) build a new one."""
        key, cached = (case, path), not kwargs and not fresh
        if cached and key in self._models:
            return self._models[key]
        if path == "pretrained_encoders":
            model = build_from_encoder_folders(case, self.folders, seed=self.seed(case), **kwargs)
        elif path == "config":
            dtype = kwargs.pop("dtype", None)
            model = build_from_config(case, len(self.processor_for(case).tokenizer),
                                      self.build(case, "pretrained_encoders").state_dict(), **kwargs)
            if dtype is not None:
                model.to(dtype)
        elif path == "from_pretrained":
            model = AutoModel.from_pretrained(self.checkpoint(case), **kwargs).eval()
        else:
            raise ValueError(f"{path} models live in the fresh process; read its results instead")
        if cached:
            self._models[key] = model
        return model

    def checkpoint(self, case: ContractCase) -> Path:
        """The folder `save_pretrained` wrote for `case`'s model, with its processor."""
        if case not in self._checkpoints:
            directory = self.root / case.id
            self.build(case, "pretrained_encoders").save_pretrained(directory)
            self.processor_for(case).save_pretrained(directory)
            self._checkpoints[case] = directory
        return self._checkpoints[case]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folders = save_encoder_folders(tmp_path_factory.mktemp("encoders"))
    processors = {(name, family): processor_for_encoders(folders[name], folders[audio])
                  for name in TEXT_ENCODERS for family, audio in (("wav2vec2", "wav2vec2-group"), ("whisper", "whisper"))}
    return Zoo(folders, processors, tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [speech_like(rng, seconds) for seconds in CLIP_SECONDS]


@pytest.fixture(scope="module")
def remote(zoo, clips, tmp_path_factory):
    """Everything measured through `trust_remote_code` in one fresh interpreter: `remote(case)` -> that case's dict."""
    work = tmp_path_factory.mktemp("remote")
    np.savez(work / "clips.npz", **{f"clip{i}": clip for i, clip in enumerate(clips)})
    probes = {case: ["batch"] for case in CASES + FROZEN + ENCODERS + WHISPER}
    probes.update({case: ["batch", "rare"] for case in RARE})
    for case in BOTH_ENCODERS + WHISPER[:1]:
        probes[case] += ["batch_max_length", "attention", "checkpointing", "pipeline"]
    for case in (BOTH_ENCODERS[0], WHISPER[0]):
        probes[case].append("bf16")
    probes.setdefault(EXPORTED[0], []).append("export")
    plan = {
        "inputs": str(work / "clips.npz"),
        "texts": TEXTS,
        "jobs": [{"name": case.id, "checkpoint": str(zoo.checkpoint(case)), "probes": names, "labels": LABELS,
                  "regression_labels": REGRESSION_LABELS} for case, names in probes.items()],
    }
    (work / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(work / "modules"), "PYTHONPATH": "",
           "OMP_NUM_THREADS": "2"}
    script = Path(__file__).parent / "helpers" / "contract_probes.py"
    run_script = BLOCK_KEMD_EMOTION + f"import runpy\nsys.path.insert(0, {str(script.parent)!r})\nrunpy.run_path({str(script)!r}, run_name='__main__')\n"
    result = subprocess.run([sys.executable, "-c", run_script, str(work / "plan.json"), str(work / "out.npz")],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    found = dict(np.load(work / "out.npz"))

    def of(case: ContractCase) -> dict:
        prefix = case.id + "/"
        values = {key[len(prefix):]: value for key, value in found.items() if key.startswith(prefix)}
        assert values, f"the fresh process measured nothing for {case.id}"
        assert str(values["module"]).startswith("transformers_modules"), values["module"]
        return values

    return of


MEASURED = {}


def measure(request, case: ContractCase, path: str, probe: str) -> dict:
    """What `probe` measures on `case`'s model built on `path` (read from the fresh process for "remote_code")."""
    if path == "remote_code":
        return request.getfixturevalue("remote")(case)
    key = (case, path, probe)
    if key not in MEASURED:
        MEASURED[key] = measure_in_process(request.getfixturevalue("zoo"), request.getfixturevalue("clips"), case, path, probe)
    return MEASURED[key]


def measure_in_process(zoo, clips, case: ContractCase, path: str, probe: str) -> dict:
    model = zoo.build(case, path)
    processor = zoo.processor_for(case)
    batch = processor(text=TEXTS, audio=clips, sampling_rate=16000)
    if probe == "batch":
        return batch_and_alone(model, processor, TEXTS, clips)
    if probe == "batch_max_length":
        found = batch_and_alone(model, processor, TEXTS, clips, padding="max_length")
        return {f"max_length/{key}": value for key, value in found.items()}
    if probe == "attention":
        found = {}
        for implementation in ("eager", "sdpa"):
            loaded = zoo.build(case, path, attn_implementation=implementation)
            found.update(forward_outputs(loaded, batch, f"{implementation}/"))
            found.update({f"{implementation}/{k}": v for k, v in attention_report(loaded).items()})
        return {**found, **attention_report(model)}
    if probe == "bf16":
        loaded = zoo.build(case, path, dtype=torch.bfloat16)
        found = forward_outputs(loaded, batch, "bf16/")
        return {**found, **{f"bf16/{k}": v for k, v in parameter_report(loaded).items()}}
    if probe == "checkpointing":
        # a fresh copy: training-mode switches and gradients must not leak into the cached model
        # WavLM has no sdpa attention in transformers: the other encoder kinds keep their own
        fresh = zoo.build(case, path, fresh=True, **({"attn_implementation": "sdpa"} if case in BOTH_ENCODERS + WHISPER[:1] else {}))
        modes = ("none", "non_reentrant") + (() if case.audio_encoder == "wavlm" else ("reentrant",))
        return checkpointing_gradients(fresh, batch, LABELS, REGRESSION_LABELS, modes)
    if probe == "parameters":
        return parameter_report(model)
    if probe == "export":
        other = processor(text=TEXTS[:2], audio=[clip[: len(clip) // 2] for clip in clips[:2]], sampling_rate=16000)
        return export_outputs(model, batch, other)
    if probe == "pipeline":
        classifier = pipeline("emotion-multimodal", model=model, processor=processor, device="cpu")
        return pipeline_outputs(classifier, TEXTS, clips)
    if probe == "rare":
        classifier = pipeline("emotion-multimodal", model=model, processor=zoo.processor, device="cpu")
        return rare_emotion_report(model, classifier, TEXTS, clips, LABELS)
    raise ValueError(probe)


def close(actual, expected, atol=ATOL, name=""):
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=0, err_msg=name)


# ----------------------------------------------------------------------------------------------- outputs and padding
@pytest.mark.parametrize("case", CASES + FROZEN + ENCODERS + WHISPER + RARE, ids=ids(CASES + FROZEN + ENCODERS + WHISPER + RARE))
@pytest.mark.parametrize("path", CONSTRUCTION_PATHS)
def test_same_outputs_on_every_path_and_every_padding(path, case, request):
    """Each item of a ragged batch gives what it gives alone (to 1e-5: padding never enters), and the same weights
    give the same outputs whichever way the model was built."""
    found = measure(request, case, path, "batch")
    reference = measure(request, case, "pretrained_encoders", "batch")
    fields = [key.split("/", 1)[1] for key in found if key.startswith("batch/")]
    assert {"logits", "regression"} <= set(fields)
    assert ("text_embeds" in fields) == (case.fusion != "speech") and ("audio_embeds" in fields) == (case.fusion != "text")
    for field in fields:
        close(found[f"batch/{field}"], found[f"alone/{field}"], name=f"{field}: batch vs alone")
        close(found[f"batch/{field}"], reference[f"batch/{field}"], atol=1e-6, name=f"{field}: {path} vs pretrained")
    audio_input = "input_features" if case.audio_encoder == "whisper" else "input_values"
    for name in ("input_ids", "attention_mask", audio_input, "audio_attention_mask"):
        close(found[f"inputs/{name}"], reference[f"inputs/{name}"], atol=0, name=f"processor output {name}")


@pytest.mark.parametrize("case", BOTH_ENCODERS + WHISPER[:1], ids=ids(BOTH_ENCODERS + WHISPER[:1]))
@pytest.mark.parametrize("path", CONSTRUCTION_PATHS)
def test_fixed_shape_padding_gives_the_same_outputs(path, case, request):
    """`padding="max_length"`: fixed shapes (128 tokens, the paper's 5 s), and still the outputs of each item alone."""
    found = measure(request, case, path, "batch_max_length")
    dynamic = measure(request, case, path, "batch")
    assert found["max_length/inputs/input_ids"].shape == (3, 128)
    if case.audio_encoder == "whisper":  # 5 s of 10 ms mel frames
        assert found["max_length/inputs/input_features"].shape == (3, 80, 500)
        assert found["max_length/inputs/audio_attention_mask"].sum(-1).tolist() == [int(s * 100) for s in CLIP_SECONDS]
    else:
        assert found["max_length/inputs/input_values"].shape == (3, 5 * 16000)
    for field in ("logits", "regression", "text_embeds", "audio_embeds"):
        close(found[f"max_length/batch/{field}"], found[f"max_length/alone/{field}"], name=field)
        close(found[f"max_length/batch/{field}"], dynamic[f"batch/{field}"], name=f"{field}: max_length vs longest")


# ----------------------------------------------------------------------------------------------- attention and dtype
@pytest.mark.parametrize("case", BOTH_ENCODERS + WHISPER[:1], ids=ids(BOTH_ENCODERS + WHISPER[:1]))
@pytest.mark.parametrize("path", CONSTRUCTION_PATHS)
def test_encoders_keep_their_attention_and_eager_equals_sdpa(path, case, request):
    found = measure(request, case, path, "attention")
    assert str(found["attention/text_model"]) == str(found["attention/audio_model"]) == "sdpa"
    for implementation in ("eager", "sdpa"):
        for role in ("text_model", "audio_model"):
            assert str(found[f"{implementation}/attention/{role}"]) == implementation
    for field in ("logits", "regression", "text_embeds", "audio_embeds"):
        close(found[f"eager/{field}"], found[f"sdpa/{field}"], name=field)


@pytest.mark.parametrize("case", [BOTH_ENCODERS[0], WHISPER[0]], ids=ids([BOTH_ENCODERS[0], WHISPER[0]]))
@pytest.mark.parametrize("path", CONSTRUCTION_PATHS)
def test_bf16_load_and_forward(path, case, request):
    found = measure(request, case, path, "bf16")
    reference = measure(request, case, path, "batch")
    assert set(found["bf16/dtypes"].tolist()) == {"torch.bfloat16"}
    for field in ("logits", "regression"):
        assert np.isfinite(found[f"bf16/{field}"]).all()
        close(found[f"bf16/{field}"], reference[f"batch/{field}"], atol=0.1, name=f"{field}: bf16 vs fp32")


def test_from_text_audio_pretrained_in_one_dtype_per_encoder_kwargs(zoo, clips):
    """The issue's call: dtype through both encoders' kwargs; the heads follow, and forward runs."""
    case = BOTH_ENCODERS[0]
    model = build_from_encoder_folders(case, zoo.folders, text_model_kwargs={"dtype": torch.bfloat16},
                                       audio_model_kwargs={"dtype": torch.bfloat16})
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16} and model.config.dtype == torch.bfloat16
    out = model(**zoo.processor(text=TEXTS, audio=clips, sampling_rate=16000))
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()


def test_from_text_audio_pretrained_refuses_two_dtypes(zoo):
    case = BOTH_ENCODERS[0]
    with pytest.raises(ValueError, match=r"the text encoder in torch.bfloat16 and the audio encoder in torch.float32 .* "
                                         r"Pass dtype="):
        build_from_encoder_folders(case, zoo.folders, text_model_kwargs={"dtype": torch.bfloat16})
    with pytest.raises(ValueError, match=r"dtype=torch.float32 contradicts text_model_kwargs\['dtype'\]=torch.bfloat16"):
        build_from_encoder_folders(case, zoo.folders, dtype=torch.float32, text_model_kwargs={"dtype": torch.bfloat16})
    with pytest.raises(ValueError, match=r"attn_implementation='eager' contradicts audio_model_kwargs"):
        build_from_encoder_folders(case, zoo.folders, attn_implementation="eager",
                                   audio_model_kwargs={"attn_implementation": "sdpa"})


@pytest.mark.parametrize("path", IN_PROCESS)
def test_flash_attention_2_on_cpu_raises_transformers_error(path, zoo):
    """No silent fallback: transformers' own error for an implementation that cannot run here."""
    if torch.cuda.is_available():
        pytest.skip("flash attention may run on this machine")
    with pytest.raises(ImportError, match="FlashAttention2 has been toggled on, but it cannot be used"):
        zoo.build(BOTH_ENCODERS[0], path, attn_implementation="flash_attention_2")


# ----------------------------------------------------------------------------------------------- training contracts
@pytest.mark.parametrize("case", FROZEN, ids=ids(FROZEN))
@pytest.mark.parametrize("path", CONSTRUCTION_PATHS)
def test_frozen_feature_encoder_stays_frozen(path, case, request):
    found = measure(request, case, path, "parameters")
    conv = np.array([is_feature_encoder_parameter(name, case.audio_encoder) for name in found["names"]])
    assert conv.sum() > 0
    assert not found["requires_grad"][conv].any(), "conv feature encoder trainable although the config freezes it"
    positions = np.array(["embed_positions" in name for name in found["names"]])
    assert positions.any() == (case.audio_encoder == "whisper")
    assert not found["requires_grad"][positions].any(), "Whisper's sinusoidal positions must never train"
    assert found["requires_grad"][~conv & ~positions].all()
    total, trainable = found["num_parameters"]
    reference = request.getfixturevalue("zoo").build(case, "pretrained_encoders")
    conv_sizes = sum(p.numel() for n, p in reference.named_parameters()
                     if is_feature_encoder_parameter(n, case.audio_encoder))
    fixed = sum(p.numel() for n, p in reference.named_parameters()  # Whisper's sinusoidal positions never train
                if not p.requires_grad and not is_feature_encoder_parameter(n, case.audio_encoder))
    assert trainable == total - conv_sizes - fixed


CHECKPOINTED = [(path, case) for case in BOTH_ENCODERS + WHISPER[:1] for path in CONSTRUCTION_PATHS] + [
    ("config", case) for case in ENCODERS + WHISPER[1:]]


@pytest.mark.parametrize("path,case", CHECKPOINTED, ids=[f"{path}-{case.id}" for path, case in CHECKPOINTED])
def test_activation_checkpointing_gives_the_same_gradients(path, case, request):
    """Reentrant and non-reentrant checkpointing give the gradients of none, the conv feature encoder's included."""
    found = measure(request, case, path, "checkpointing")
    modes = ("none", "non_reentrant") + (() if case.audio_encoder == "wavlm" else ("reentrant",))  # see below
    names = {mode: sorted(key.split("/", 1)[1] for key in found if key.startswith(f"{mode}/")) for mode in modes}
    conv = [name for name in names["none"] if is_feature_encoder_parameter(name, case.audio_encoder)]
    assert conv and any(name.startswith("text_model.") for name in names["none"]) == (case.fusion != "speech")
    for mode in modes[1:]:
        assert names[mode] == names["none"], f"{mode}: parameters without gradient: {set(names['none']) - set(names[mode])}"
        for name in names["none"]:
            expected = found[f"none/{name}"]
            close(found[f"{mode}/{name}"], expected, atol=1e-5 * max(1.0, np.abs(expected).max()), name=f"{mode} {name}")
    for name in conv:
        assert np.abs(found[f"{modes[-1]}/{name}"]).sum() > 0, name


def test_reentrant_checkpointing_of_wavlm_is_refused(zoo):
    """transformers' WavLM never finishes a reentrant-checkpointed backward pass: refused with a clear error."""
    model = zoo.build(ENCODERS[1], "config", fresh=True)
    with pytest.raises(ValueError, match=r"'use_reentrant': True\} is not supported with a WavLM speech encoder"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
    model.activation_checkpointing_enable()
    assert model.audio_model.encoder.layers[0].gradient_checkpointing


@pytest.mark.parametrize("path", CONSTRUCTION_PATHS)
def test_rare_emotion_options_on_every_path(path, request):
    """Positive weights and decision thresholds survive save -> load and trust_remote_code: the config holds them,
    the emotion loss is the weighted one, and the pipeline's labels are the thresholded ones."""
    from kemd_emotion.metrics import predict_emotions

    found = measure(request, RARE[0], path, "rare")
    assert found["rare/emotion_pos_weight"].tolist() == list(POSITIVE_WEIGHTS)
    assert found["rare/decision_thresholds"].tolist() == list(THRESHOLDS)
    logits, labels = found["rare/logits"].astype(np.float64), np.asarray(LABELS, dtype=np.float64)
    log_sigmoid = -np.logaddexp(0, -logits)
    weighted = -(np.asarray(POSITIVE_WEIGHTS) * labels * log_sigmoid + (1 - labels) * (log_sigmoid - logits))
    close(found["rare/emotion_loss"], weighted.mean(), name="weighted emotion loss")
    assert np.array_equal(found["rare/pipeline_labels"], predict_emotions(logits, THRESHOLDS))
    reference = measure(request, RARE[0], "pretrained_encoders", "batch")
    close(found["rare/logits"], reference["batch/logits"], name="logits")


# ----------------------------------------------------------------------------------------------- export and pipeline
EXPORT_RUNS = [(path, EXPORTED[0]) for path in CONSTRUCTION_PATHS] + [("config", case) for case in EXPORTED[1:]]


@pytest.mark.parametrize("path,case", EXPORT_RUNS, ids=[f"{path}-{case.id}" for path, case in EXPORT_RUNS])
def test_export_and_trace_match_eager(path, case, request):
    """torch.export (static; dynamic batch and time, run on another batch size and length) and torch.jit.trace
    give the eager outputs on a ragged batch, and our code raises no TracerWarning (no data-dependent branch)."""
    found = measure(request, case, path, "export")
    for field in ("logits", "regression"):
        for captured in ("export_static", "export_dynamic", "trace"):
            close(found[f"{captured}/{field}"], found[f"eager/{field}"], atol=1e-4, name=f"{captured} {field}")
        close(found[f"export_dynamic_other/{field}"], found[f"eager_other/{field}"], atol=1e-4, name=f"other {field}")
    assert found["export_dynamic_other/logits"].shape[0] == 2
    assert found["tracer_warnings"].size == 0, found["tracer_warnings"]


@pytest.mark.parametrize("case", [BOTH_ENCODERS[0], WHISPER[0]], ids=ids([BOTH_ENCODERS[0], WHISPER[0]]))
@pytest.mark.parametrize("path", CONSTRUCTION_PATHS)
def test_pipeline_gives_the_model_outputs(path, case, request):
    found = measure(request, case, path, "pipeline")
    reference = measure(request, case, "pretrained_encoders", "batch")
    scores = 1 / (1 + np.exp(-reference["batch/logits"]))
    for prefix in ("pipeline", "pipeline_single"):
        close(found[f"{prefix}/scores"], scores, name=f"{prefix} scores")
        close(found[f"{prefix}/regression"], reference["batch/regression"], name=f"{prefix} regression")
    if path == "remote_code":
        assert str(found["pipeline/module"]).startswith("transformers_modules")


# ----------------------------------------------------------------------------------------------- generic contracts
def test_given_sub_config_is_copied_and_keeps_its_attention(zoo):
    """`KlueWav2Vec2EmotionConfig(text_config=model.config)` used to reset the encoder's own config to None."""
    from transformers import AutoConfig

    from kemd_emotion import KlueWav2Vec2EmotionConfig

    text_config = AutoConfig.from_pretrained(zoo.folders["bert"])
    text_config._attn_implementation = "eager"
    audio_config = AutoConfig.from_pretrained(zoo.folders["wav2vec2-group"])
    audio_config._attn_implementation = "sdpa"
    config = KlueWav2Vec2EmotionConfig(text_config=text_config, audio_config=audio_config)
    assert config.text_config is not text_config and config.audio_config is not audio_config
    assert (text_config._attn_implementation, audio_config._attn_implementation) == ("eager", "sdpa")
    assert (config.text_config._attn_implementation, config.audio_config._attn_implementation) == ("eager", "sdpa")
    asked = KlueWav2Vec2EmotionConfig(text_config=text_config, audio_config=audio_config, attn_implementation="eager")
    assert asked.audio_config._attn_implementation == "eager" and audio_config._attn_implementation == "sdpa"
    assert "_attn_implementation" not in json.dumps(config.to_dict()).replace("_attn_implementation_autoset", "")


@pytest.mark.parametrize("path", IN_PROCESS)
def test_set_attn_implementation_switches_both_encoders(path, zoo, clips):
    model = zoo.build(BOTH_ENCODERS[1], path, attn_implementation="sdpa")
    batch = zoo.processor(text=TEXTS, audio=clips, sampling_rate=16000)
    sdpa = forward_outputs(model, batch)
    model.set_attn_implementation("eager")
    assert {str(v) for v in attention_report(model).values()} == {"eager"}
    for field, value in forward_outputs(model, batch).items():
        close(value, sdpa[field], name=field)


def test_num_parameters(zoo):
    model = zoo.build(FROZEN[0], "config")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    embeddings = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    assert trainable < total
    assert model.num_parameters() == total and model.num_parameters(only_trainable=True) == trainable
    assert model.num_parameters(exclude_embeddings=True) == total - embeddings


def test_from_pretrained_device_map_cpu_and_loading_info(zoo, clips):
    case = BOTH_ENCODERS[0]
    model, info = KlueWav2Vec2ForEmotion.from_pretrained(zoo.checkpoint(case), device_map="cpu", output_loading_info=True)
    assert model.device == torch.device("cpu") and not model.training
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    batch = zoo.processor(text=TEXTS, audio=clips, sampling_rate=16000)
    expected = forward_outputs(zoo.build(case, "pretrained_encoders"), batch)
    for field, value in forward_outputs(model, batch).items():
        close(value, expected[field], atol=1e-6, name=field)


def test_saved_dtype_comes_back_with_dtype_auto(zoo, tmp_path):
    zoo.build(BOTH_ENCODERS[0], "pretrained_encoders", dtype=torch.bfloat16).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "bfloat16"
    assert AutoModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.bfloat16
    assert AutoModel.from_pretrained(tmp_path, dtype=torch.float32).dtype == torch.float32


def test_return_dict_false_gives_the_output_tuple(zoo, clips):
    model = zoo.build(BOTH_ENCODERS[0], "config")
    batch = zoo.processor(text=TEXTS, audio=clips, sampling_rate=16000)
    with torch.no_grad():
        as_dict, as_tuple = model(**batch), model(**batch, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict.to_tuple())
    for left, right in zip(as_tuple, as_dict.to_tuple()):
        assert torch.equal(left, right)


def test_torch_compile_fullgraph_captures_the_whole_forward(zoo, clips):
    """No graph break: `fullgraph=True` fails on any data-dependent Python branch (the eager backend keeps it quick)."""
    model = zoo.build(EXPORTED[0], "config")
    batch = dict(zoo.processor(text=TEXTS, audio=clips, sampling_rate=16000))
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend="eager")
    with torch.no_grad():
        expected, got = model(**batch), compiled(**batch)
    close(got.logits.numpy(), expected.logits.numpy(), atol=1e-5)
