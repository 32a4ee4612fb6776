"""Checkpoints round-trip exactly, carry their code, and load where kemd_emotion cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoProcessor

from helpers.audio import speech_like
from kemd_emotion import KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion, KlueWav2Vec2Processor

TEXTS = ["안녕하세요 오늘 날씨가 정말 좋네요", "그건 너무 화가 나요"]
CODE_FILES = {"configuration_klue_wav2vec2.py", "modeling_klue_wav2vec2.py", "processing_klue_wav2vec2.py"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model_factory, tiny_processor):
    directory = tmp_path_factory.mktemp("checkpoint")
    model = tiny_model_factory("add", feat_extract_norm="group", audio_representation="hidden", pooling="last")
    with torch.no_grad():  # make the heads non-trivial so a load that drops them would show
        model.regression_head.bias.fill_(0.25)
    model.save_pretrained(directory)
    tiny_processor.save_pretrained(directory)
    return directory, model


def inputs_for(processor, seed=0):
    rng = np.random.default_rng(seed)
    return processor(text=TEXTS, audio=[speech_like(rng, 1.0), speech_like(rng, 0.6)], sampling_rate=16000)


def test_checkpoint_holds_safetensors_code_and_auto_map(saved):
    directory, model = saved
    files = set(os.listdir(directory))
    assert "model.safetensors" in files and not any(f.endswith(".bin") for f in files)
    assert CODE_FILES | {"pipeline_emotion.py"} <= files
    config = json.loads((directory / "config.json").read_text())
    assert config["custom_pipelines"]["emotion-multimodal"]["impl"] == "pipeline_emotion.EmotionMultimodalPipeline"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_klue_wav2vec2.KlueWav2Vec2EmotionConfig",
        "AutoModel": "modeling_klue_wav2vec2.KlueWav2Vec2ForEmotion",
    }
    processor_config = json.loads((directory / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_klue_wav2vec2.KlueWav2Vec2Processor"
    weights = load_file(directory / "model.safetensors")
    for name, tensor in model.state_dict().items():
        assert torch.equal(weights[name], tensor), name


def test_from_pretrained_gives_identical_outputs(saved, tiny_processor):
    directory, model = saved
    loaded = AutoModel.from_pretrained(directory).eval()
    processor = AutoProcessor.from_pretrained(directory)
    assert isinstance(loaded, KlueWav2Vec2ForEmotion) and isinstance(processor, KlueWav2Vec2Processor)
    assert isinstance(AutoConfig.from_pretrained(directory), KlueWav2Vec2EmotionConfig)
    assert processor.max_audio_seconds == tiny_processor.max_audio_seconds
    assert processor.tokenizer.tokenize(TEXTS[0]) == tiny_processor.tokenizer.tokenize(TEXTS[0])
    inputs = inputs_for(tiny_processor)
    assert all(torch.equal(inputs[k], v) for k, v in inputs_for(processor).items())
    with torch.no_grad():
        expected, got = model(**inputs), loaded(**inputs)
    assert torch.equal(expected.logits, got.logits) and torch.equal(expected.regression, got.regression)


def test_trust_remote_code_loads_without_the_package(saved, tiny_processor, tmp_path):
    """A fresh interpreter in which `import kemd_emotion` fails gets the same outputs from the saved folder."""
    directory, model = saved
    inputs = inputs_for(tiny_processor)
    with torch.no_grad():
        expected = model(**inputs)
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "kemd_emotion" or name.startswith("kemd_emotion."):
                    raise ImportError("kemd_emotion is blocked in this test")
        sys.meta_path.insert(0, Block())
        sys.path = [p for p in sys.path if p not in ("", {os.getcwd()!r})]
        try:
            import kemd_emotion
            raise SystemExit("kemd_emotion should not be importable here")
        except ImportError:
            pass
        import numpy as np, torch
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({str(directory)!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({str(directory)!r}, trust_remote_code=True)
        assert "kemd_emotion" not in type(model).__module__, type(model).__module__
        data = np.load({str(tmp_path / "audio.npz")!r})
        inputs = processor(text={TEXTS!r}, audio=[data["a"], data["b"]], sampling_rate=16000)
        with torch.no_grad():
            out = model(**inputs)
        from transformers import pipeline
        classifier = pipeline("emotion-multimodal", model={str(directory)!r}, trust_remote_code=True)
        scored = classifier({{"text": {TEXTS[0]!r}, "audio": data["a"]}})
        print(json.dumps({{"logits": out.logits.tolist(), "regression": out.regression.tolist(),
                          "module": type(model).__module__, "pipeline": type(classifier).__module__,
                          "arousal": scored["arousal"]}}))
        """
    )
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "audio.npz", a=speech_like(rng, 1.0), b=speech_like(rng, 0.6))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["module"].startswith("transformers_modules")
    np.testing.assert_allclose(got["logits"], expected.logits.numpy(), atol=1e-6)
    np.testing.assert_allclose(got["regression"], expected.regression.numpy(), atol=1e-6)
    # a plain save_pretrained carries the pipeline too
    assert got["pipeline"].startswith("transformers_modules")
    assert got["arousal"] == pytest.approx(expected.regression[0, 0].item(), abs=1e-4)
