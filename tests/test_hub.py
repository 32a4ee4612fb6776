"""Sharing: push_to_hub through huggingface_hub (offline: the commit lands in a folder) and loading the result,
here and in a fresh process where kemd_emotion cannot be imported (trust_remote_code)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile
import torch
from helpers.audio import speech_like
from helpers.fresh_process import BLOCK_KEMD_EMOTION
from helpers.hub import fake_hub  # noqa: F401 (a fixture)
from helpers.outputs import assert_same_output
from transformers import AutoModel, AutoProcessor, pipeline

from kemd_emotion import EmotionMultimodalPipeline, KlueWav2Vec2ForEmotion, KlueWav2Vec2Processor
from kemd_emotion.hub import REMOTE_CODE_FILES, check_checkpoint, push_checkpoint, push_to_hub, save_checkpoint

TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"
REPO_ID = "someone/kemd-emotion-cat"


@pytest.fixture(scope="module")
def model(tiny_model_factory):
    return tiny_model_factory("cat", seed=3)


@pytest.fixture(scope="module")
def wav_8k(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "utterance_8k.wav"
    soundfile.write(path, speech_like(np.random.default_rng(7), 1.5, sampling_rate=8000), 8000, subtype="FLOAT")
    return path


def sample_inputs(wav_path):
    rng = np.random.default_rng(8)
    return [
        {"text": TEXT, "audio": str(wav_path)},
        {"text": "화가 나요 정말 싫어요", "audio": speech_like(rng, 0.9)},
        {"text": "음 글쎄요", "audio": {"array": speech_like(rng, 2.0, 22050), "sampling_rate": 22050}},
    ]


def test_push_to_hub_round_trip(fake_hub, model, tiny_processor, wav_8k):
    commit = push_to_hub(model, tiny_processor, REPO_ID, card="---\nlanguage: ko\n---\n# A card\n", private=True)
    assert commit.oid == f"{1:040x}"
    assert fake_hub.repos == [{"repo_id": REPO_ID, "private": True, "repo_type": "model", "exist_ok": True}]
    assert len(fake_hub.commits) == 1  # model, processor, code and card in one commit
    pushed = set(fake_hub.commits[0]["paths"])
    assert {"config.json", "model.safetensors", "processor_config.json", "README.md", *REMOTE_CODE_FILES} <= pushed

    folder = fake_hub.folder(REPO_ID)
    check_checkpoint(folder)
    reloaded = AutoModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    assert type(reloaded) is KlueWav2Vec2ForEmotion and type(processor) is KlueWav2Vec2Processor
    clip = speech_like(np.random.default_rng(9), 1.0)
    features = tiny_processor(text=TEXT, audio=clip)
    reloaded_features = processor(text=TEXT, audio=clip)
    for key, value in features.items():
        torch.testing.assert_close(reloaded_features[key], value)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**features).logits, model(**features).logits)
        torch.testing.assert_close(reloaded(**features).regression, model(**features).regression)

    original = pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")
    from_hub = pipeline("emotion-multimodal", model=str(folder), device="cpu")
    assert isinstance(from_hub, EmotionMultimodalPipeline)
    inputs = sample_inputs(wav_8k)
    for got, want in zip(from_hub(inputs, batch_size=2), original(inputs)):
        assert [e["label"] for e in got["emotions"]] == [e["label"] for e in want["emotions"]]
        np.testing.assert_allclose([e["score"] for e in got["emotions"]], [e["score"] for e in want["emotions"]],
                                   atol=1e-5)
        np.testing.assert_allclose([got["arousal"], got["valence"]], [want["arousal"], want["valence"]], atol=1e-5)


def test_push_checkpoint_uploads_a_trainer_style_folder(fake_hub, model, tiny_processor, tmp_path):
    folder = tmp_path / "final"
    model.save_pretrained(folder)  # as Trainer.save_model does: no pipeline code yet
    tiny_processor.save_pretrained(folder)
    (folder / "figures").mkdir()
    (folder / "figures" / "plot.png").write_bytes(b"\x89PNG fake")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("local only")
    push_checkpoint(folder, REPO_ID, commit_message="First version")
    commit = fake_hub.commits[0]
    assert commit["message"] == "First version"
    assert "pipeline_emotion.py" in commit["paths"] and "figures/plot.png" in commit["paths"]
    assert not any(path.startswith(".cache") for path in commit["paths"])
    config = json.loads((fake_hub.folder(REPO_ID) / "config.json").read_text())
    assert config["custom_pipelines"]["emotion-multimodal"]["impl"] == "pipeline_emotion.EmotionMultimodalPipeline"


def test_incomplete_checkpoint_is_refused_before_any_upload(fake_hub, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"lacks processor_config.json, .*model weights"):
        push_checkpoint(tmp_path, REPO_ID)
    assert fake_hub.repos == [] and fake_hub.commits == []


FRESH_PROCESS = BLOCK_KEMD_EMOTION + textwrap.dedent(
    """
    import numpy as np
    from transformers import pipeline

    inputs = json.loads(sys.stdin.read())
    for item in inputs:
        if isinstance(item["audio"], dict):
            item["audio"]["array"] = np.asarray(item["audio"]["array"], dtype=np.float32)
        elif isinstance(item["audio"], list):
            item["audio"] = np.asarray(item["audio"], dtype=np.float32)
    results = {}
    for directory in sys.argv[1:]:
        classifier = pipeline("emotion-multimodal", model=directory, trust_remote_code=True, device="cpu")
        results[directory] = {
            "class": type(classifier).__module__ + "." + type(classifier).__name__,
            "batched": classifier(inputs, batch_size=3),
            "chunked": classifier(inputs[1], chunk_length_s=0.5, stride_length_s=0.1),
        }
    try:
        import kemd_emotion  # noqa: F401
        results["kemd_emotion_importable"] = True
    except ImportError:
        results["kemd_emotion_importable"] = False
    print(json.dumps(results))
    """
)


def test_trust_remote_code_pipeline_in_a_fresh_process(fake_hub, model, tiny_processor, wav_8k, tmp_path):
    """A saved checkpoint and a pushed repo both load where kemd_emotion cannot be imported, with the same numbers."""
    saved = save_checkpoint(model, tiny_processor, tmp_path / "saved")
    push_to_hub(model, tiny_processor, REPO_ID)
    pushed = fake_hub.folder(REPO_ID)

    inputs = sample_inputs(wav_8k)
    serialisable = [
        {**item, "audio": {**item["audio"], "array": item["audio"]["array"].tolist()}} if isinstance(item["audio"], dict)
        else {**item, "audio": item["audio"].tolist()} if isinstance(item["audio"], np.ndarray) else item
        for item in inputs
    ]
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TOKENIZERS_PARALLELISM="false")
    completed = subprocess.run(
        [sys.executable, str(script), str(saved), str(pushed)], input=json.dumps(serialisable), capture_output=True,
        text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results.pop("kemd_emotion_importable") is False

    original = pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")
    want_batched = original(inputs)
    want_chunked = original(inputs[1], chunk_length_s=0.5, stride_length_s=0.1)
    assert [(c["start"], c["end"]) for c in want_chunked["chunks"]] == [(0.0, 0.5), (0.4, 0.9)]
    for directory in (saved, pushed):
        result = results[str(directory)]
        assert result["class"].startswith("transformers_modules.") and result["class"].endswith(
            "pipeline_emotion.EmotionMultimodalPipeline")
        for got, want in zip([*result["batched"], result["chunked"]], [*want_batched, want_chunked]):
            assert_same_output(got, want)
        assert [(c["start"], c["end"]) for c in result["chunked"]["chunks"]] == [
            (c["start"], c["end"]) for c in want_chunked["chunks"]]
