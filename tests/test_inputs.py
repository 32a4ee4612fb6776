"""The one inference input path (`kemd_emotion/inputs_klue_wav2vec2.py`): a recording is decoded once whatever
the interface (also with speech recognition), problems are structured and survive a JSON round trip, the rules
(rates, shortest clip, long-file limit, thresholds, modalities) have one home, and no interface rewrites a message
with a regular expression."""

import ast
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from helpers.audio import speech_like
from transformers import pipeline

import kemd_emotion.inputs_klue_wav2vec2 as inputs
from kemd_emotion.configuration_klue_wav2vec2 import fusion_modalities, min_audio_samples
from kemd_emotion.inputs_klue_wav2vec2 import InputError, InputProblem, read_input
from kemd_emotion.processing_klue_wav2vec2 import SAMPLING_RATE_RANGE, sampling_rate_problem

PACKAGE = Path(__file__).resolve().parents[1] / "kemd_emotion"
TEXT = "오늘 정말 화가 나요"
INTERFACES_AND_INFERENCE = ("cli.py", "demo.py", "handler.py", "pipeline_emotion.py", "inputs_klue_wav2vec2.py",
                            "transcription_klue_wav2vec2.py", "processing_klue_wav2vec2.py",
                            "onnxruntime_klue_wav2vec2.py", "segmentation_klue_wav2vec2.py")


def read(value, **overrides):
    options = dict(reads_text=True, reads_audio=True, min_samples=400)
    return read_input(value, 3, **{**options, **overrides})


def test_no_interface_or_inference_module_uses_regular_expressions():
    for name in INTERFACES_AND_INFERENCE:
        tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "re" not in imported and "regex" not in imported, f"{name} imports a regular-expression module"


def test_a_problem_names_its_field_and_survives_json():
    with pytest.raises(InputError) as caught:
        read({"text": TEXT, "audio": {"array": np.zeros(800), "sampling_rate": 16000.5}})
    problem = caught.value.problem
    assert (problem.index, problem.field, problem.code) == (3, "audio.sampling_rate", "bad_sampling_rate")
    assert str(caught.value) == ("inputs[3]['audio']['sampling_rate'] must be a whole number of Hz from 1000 to "
                                 "384000 (e.g. 16000); got 16000.5.")
    assert problem.describe("the recording's rate") == ("the recording's rate must be a whole number of Hz from 1000 "
                                                       "to 384000 (e.g. 16000); got 16000.5.")
    data = json.loads(json.dumps(problem.to_dict()))
    assert InputProblem.from_dict(data) == problem
    assert data["message"] == str(problem) and data["expected"] == "a whole number of Hz"


@pytest.mark.parametrize(
    ("value", "overrides", "field", "code"),
    [
        ({"audio": np.zeros(800, np.float32)}, {}, "text", "missing"),
        ({"audio": np.zeros(800, np.float32)}, {"can_transcribe": True}, None, None),  # left for the recogniser
        ({"audio": np.zeros(800, np.float32)}, {"reads_audio": False}, "text", "not_listening"),
        ({"text": TEXT}, {"reads_audio": False}, None, None),
        ({"audio": np.zeros(800, np.float32), "text": 3}, {"reads_text": False}, None, None),  # text ignored
        ({"text": TEXT, "audio": np.zeros(399, np.float32)}, {}, "audio", "too_short"),
        ({"text": TEXT, "audio": np.zeros(1000, np.float32)}, {"min_samples": 1001}, "audio", "too_short"),
        ({"text": TEXT, "audio": np.zeros(16001, np.float32)}, {"max_seconds": 1.0}, "audio", "too_long"),
        ({"text": TEXT, "audio": {"array": np.zeros(8001), "sampling_rate": 8000}}, {"max_seconds": 1.0}, "audio",
         "too_long"),
    ],
)
def test_which_fields_a_model_needs(value, overrides, field, code):
    if code is None:
        utterance = read(value, **overrides)
        assert utterance.index == 3
        return
    with pytest.raises(InputError) as caught:
        read(value, **overrides)
    assert (caught.value.problem.field, caught.value.problem.code) == (field, code)


def test_every_accepted_audio_form_decodes_to_the_same_samples(tmp_path):
    clip = speech_like(np.random.default_rng(3), 1.0)
    path = tmp_path / "clip.wav"
    soundfile.write(path, clip, 16000, subtype="FLOAT")
    forms = [str(path), path, path.read_bytes(), clip, {"array": clip, "sampling_rate": 16000},
             np.stack([clip, clip]), {"array": clip.astype(np.float64), "sampling_rate": np.int64(16000)}]
    for form in forms:
        np.testing.assert_allclose(read({"text": TEXT, "audio": form}).audio, clip, atol=1e-6)


def test_a_recording_is_decoded_once_also_when_it_is_transcribed(tiny_model_factory, tiny_processor, tmp_path,
                                                                 monkeypatch):
    path = tmp_path / "clip.wav"
    soundfile.write(path, speech_like(np.random.default_rng(4), 1.2, 22050), 22050, subtype="FLOAT")
    heard = []

    def recognizer(audio, **kwargs):
        heard.append(audio.shape)
        return "화가 나요"

    classifier = pipeline("emotion-multimodal", model=tiny_model_factory("cat"), processor=tiny_processor,
                          device="cpu", asr_model=recognizer)
    decodes = []
    real_read = soundfile.read
    monkeypatch.setattr(soundfile, "read", lambda *args, **kwargs: decodes.append(args[0]) or real_read(*args, **kwargs))
    output = classifier([{"audio": str(path)}, {"audio": str(path), "text": TEXT}], errors="return")
    assert len(decodes) == 2 and len(heard) == 1  # one decode per input; the one without text transcribed
    assert output[0]["transcript_source"] == "asr" and output[1]["transcript_source"] == "given"


def test_the_rules_have_one_value_each():
    handler_spec = importlib.util.spec_from_file_location("handler_alone", PACKAGE / "handler.py")
    handler = importlib.util.module_from_spec(handler_spec)
    handler_spec.loader.exec_module(handler)
    assert handler.MAX_AUDIO_SECONDS == inputs.LONG_INPUT_SECONDS  # the handler imports nothing of the package
    from kemd_emotion.demo import MAX_AUDIO_SECONDS

    assert MAX_AUDIO_SECONDS == inputs.LONG_INPUT_SECONDS
    low, high = SAMPLING_RATE_RANGE
    assert sampling_rate_problem(low) is None and sampling_rate_problem(high) is None
    assert sampling_rate_problem(low - 1) and sampling_rate_problem(high + 1) and sampling_rate_problem(True)
    assert [fusion_modalities(f) for f in ("text", "speech", "cat", "add", "cross")] == [
        (True, False), (False, True), (True, True), (True, True), (True, True)]


def test_the_evaluate_metrics_own_copy_of_the_default_threshold_agrees():
    from kemd_emotion.configuration_klue_wav2vec2 import DEFAULT_DECISION_THRESHOLD
    from kemd_emotion.metrics import THRESHOLD  # the self-contained evaluate module's copy (it is pushed on its own)

    assert THRESHOLD == DEFAULT_DECISION_THRESHOLD


def test_shortest_clip_and_thresholds_come_from_the_config(tiny_model_factory):
    config = tiny_model_factory("cat").config
    assert config.min_audio_samples == min_audio_samples(config.audio_config) == 400  # wav2vec2-base's conv stack
    assert config.thresholds_for() == [0.5] * 7
    config.decision_thresholds = [0.3, 0.4, 0.5, 0.6, 0.7, 0.2, 0.1]
    assert config.thresholds_for() == [0.3, 0.4, 0.5, 0.6, 0.7, 0.2, 0.1]
    assert config.thresholds_for(0.45) == [0.45] * 7
