"""The Inference Endpoints handler every checkpoint carries: the documented payload gives the pipeline's output,
in a fresh process where kemd_emotion cannot be imported (loaded as the toolkit loads it), and bad payloads get
errors that name the field while the next request is still answered."""

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import soundfile
from helpers.audio import speech_like
from helpers.endpoint import load_handler_module
from helpers.fresh_process import BLOCK_KEMD_EMOTION
from helpers.outputs import assert_same_output
from transformers import pipeline

from kemd_emotion.hub import save_checkpoint

TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"


def encode(audio: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> str:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_factory, tiny_processor):
    return save_checkpoint(tiny_model_factory("cat", seed=5), tiny_processor, tmp_path_factory.mktemp("endpoint"))


@pytest.fixture(scope="module")
def original(checkpoint):
    return pipeline("emotion-multimodal", model=str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def handler(checkpoint):
    return load_handler_module(checkpoint).EndpointHandler(str(checkpoint))


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(11)
    return {"8k": speech_like(rng, 1.5, 8000), "22k": speech_like(rng, 1.2, 22050), "16k": speech_like(rng, 3.0)}


def test_checkpoints_carry_the_handler(checkpoint):
    source = (checkpoint / "handler.py").read_text(encoding="utf-8")
    assert "class EndpointHandler" in source
    # Loaded without a package around it: no relative import, nothing of kemd_emotion.
    assert "from ." not in source and "kemd_emotion." not in source.replace("kemd_emotion.handler", "")


FRESH_PROCESS = BLOCK_KEMD_EMOTION + textwrap.dedent(
    """
    import importlib.util, os
    model_dir = sys.argv[1]
    # As huggingface_inference_toolkit.utils.check_and_register_custom_pipeline_from_directory does:
    spec = importlib.util.spec_from_file_location("handler", os.path.join(model_dir, "handler.py"))
    sys.path.insert(0, model_dir)
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(model_dir)
    answers = []
    for payload in json.loads(sys.stdin.read()):
        try:
            answers.append({"output": handler(payload)})
        except ValueError as error:
            answers.append({"error": str(error)})
    try:
        import kemd_emotion  # noqa: F401
        importable = True
    except ImportError:
        importable = False
    print(json.dumps({"answers": answers, "kemd_emotion_importable": importable}))
    """
)


def test_handler_in_a_fresh_process_answers_like_the_pipeline(checkpoint, original, clips, tmp_path):
    """Must show 3: the documented payload -> the pipeline's output, where kemd_emotion cannot be imported."""
    wav_8k = encode(clips["8k"], 8000)
    flac_16k = encode(clips["16k"], 16000, "FLAC")
    payloads = [
        {"inputs": {"text": TEXT, "audio": wav_8k}, "parameters": {"top_k": 3}},
        {"inputs": {"text": "화가 나요", "audio": clips["22k"].tolist(), "sampling_rate": 22050}},
        {"inputs": [{"text": TEXT, "audio": flac_16k}, {"text": "음 글쎄요", "audio": wav_8k}],
         "parameters": {"batch_size": 2, "threshold": 0.4}},
        {"inputs": {"text": TEXT, "audio": flac_16k}, "parameters": {"chunk_length_s": 1.0, "stride_length_s": 0.25}},
        {"inputs": {"text": TEXT, "audio": base64.b64encode(b"RIFF not really a wav file").decode()}},
    ]
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TOKENIZERS_PARALLELISM="false")
    completed = subprocess.run([sys.executable, str(script), str(checkpoint)], input=json.dumps(payloads),
                               capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["kemd_emotion_importable"] is False
    answers = result["answers"]

    wav_8k_decoded = soundfile.read(io.BytesIO(base64.b64decode(wav_8k)), dtype="float32")[0]  # PCM_16 rounding
    flac_decoded = soundfile.read(io.BytesIO(base64.b64decode(flac_16k)), dtype="float32")[0]
    want = [
        original({"text": TEXT, "audio": {"array": wav_8k_decoded, "sampling_rate": 8000}}, top_k=3),
        original({"text": "화가 나요", "audio": {"array": clips["22k"], "sampling_rate": 22050}}),
        original([{"text": TEXT, "audio": flac_decoded},
                  {"text": "음 글쎄요", "audio": {"array": wav_8k_decoded, "sampling_rate": 8000}}], threshold=0.4),
        original({"text": TEXT, "audio": flac_decoded}, chunk_length_s=1.0, stride_length_s=0.25),
    ]
    assert_same_output(answers[0]["output"], want[0])
    assert len(answers[0]["output"]["emotions"]) == 3
    assert_same_output(answers[1]["output"], want[1])
    for got, expected in zip(answers[2]["output"], want[2]):
        assert_same_output(got, expected)
    assert_same_output(answers[3]["output"], want[3])
    assert [(c["start"], c["end"]) for c in answers[3]["output"]["chunks"]] == [
        (0.0, 1.0), (0.75, 1.75), (1.5, 2.5), (2.0, 3.0)]
    assert answers[4] == {"error": "inputs.audio could not be read as audio (WAV, FLAC, OGG or MP3): Format not "
                                   "recognised."}


def bad_payloads(clips):
    wav = encode(clips["8k"], 8000)
    good = {"text": TEXT, "audio": wav}
    return [
        ("a string", r"request body must be a JSON object with 'inputs'; got str"),
        ({}, r"the request has no 'inputs'"),
        ({"inputs": good, "options": {"wait_for_model": True}}, r"unknown key\(s\) \['options'\]; expected \['inputs', 'parameters'\]"),
        ({"inputs": {**good, "speaker": "A"}}, r"inputs has unknown key\(s\) \['speaker'\]"),
        ({"inputs": good, "parameters": {"topk": 3}}, r"parameters has unknown key\(s\) \['topk'\]; accepted: \[.*'top_k'"),
        ({"inputs": good, "parameters": [3]}, r"parameters must be an object"),
        ({"inputs": good, "parameters": {"top_k": 0}}, r"top_k must be a whole number from 1 to 7; got 0"),
        ({"inputs": good, "parameters": {"chunk_length_s": 60}}, r"chunk_length_s=60 is longer than the processor's"),
        ({"inputs": {"audio": wav}}, r"inputs.text is missing: this model reads the transcript"),
        ({"inputs": {"text": "  ", "audio": wav}}, r"inputs.text is empty"),
        ({"inputs": {"text": 3, "audio": wav}}, r"inputs.text must be a string; got int"),
        ({"inputs": {"text": TEXT}}, r"inputs.audio is missing: this model listens to speech"),
        ({"inputs": {"text": TEXT, "audio": "%%% not base64 %%%"}}, r"inputs.audio is not base64 text"),
        ({"inputs": {"text": TEXT, "audio": base64.b64encode(b"\x00\x01" * 500).decode()}},
         r"inputs.audio could not be read as audio \(WAV, FLAC, OGG or MP3\): Format not recognised"),
        ({"inputs": {"text": TEXT, "audio": {"array": [0.1]}}}, r"inputs.audio must be base64 text of an audio file or a list"),
        ({"inputs": {"text": TEXT, "audio": [0.0] * 800}}, r"inputs.sampling_rate is missing"),
        ({"inputs": {"text": TEXT, "audio": [0.0] * 800, "sampling_rate": 0}}, r"sampling_rate must be a whole number of Hz from 1000 to 384000.*got 0"),
        ({"inputs": {"text": TEXT, "audio": [0.0] * 800, "sampling_rate": "16k"}}, r"got '16k'"),
        ({"inputs": {"text": TEXT, "audio": [0.0] * 800, "sampling_rate": 16000.5}}, r"got 16000.5"),
        ({"inputs": {"text": TEXT, "audio": [0.0] * 800, "sampling_rate": 16}}, r"from 1000 to 384000.*got 16"),
        ({"inputs": {**good, "sampling_rate": 16000}}, r"inputs.sampling_rate is only for a list of samples: an audio file's header carries its rate"),
        ({"inputs": {"text": TEXT, "audio": ["a", "b"], "sampling_rate": 16000}}, r"inputs.audio must be a list of numbers"),
        ({"inputs": {"text": TEXT, "audio": [[0.0, 0.1]] * 800, "sampling_rate": 16000}}, r"must be a flat list of samples"),
        ({"inputs": {"text": TEXT, "audio": [0.0, float("nan")] * 400, "sampling_rate": 16000}}, r"inputs.audio.*NaN"),
        ({"inputs": {"text": TEXT, "audio": [0.0] * 10, "sampling_rate": 16000}}, r"inputs.audio is 0.6 ms long"),
        ({"inputs": []}, r"inputs is an empty list"),
        (base64.b64decode(encode(clips["8k"], 8000)), r"^inputs.text is missing"),  # a bare audio body: no transcript
    ]


def test_bad_payloads_get_errors_naming_the_field_and_the_next_request_is_answered(handler, original, clips):
    good = {"inputs": {"text": TEXT, "audio": encode(clips["8k"], 8000)}}
    want = handler(dict(good))
    for payload, message in bad_payloads(clips):
        with pytest.raises(ValueError, match=message):
            handler(payload)
        assert_same_output(handler(dict(good)), want)  # still answering, the same answer


def test_a_batch_answers_each_bad_input_with_its_error_and_scores_the_others(handler, original, clips):
    wav = encode(clips["8k"], 8000)
    decoded = soundfile.read(io.BytesIO(base64.b64decode(wav)), dtype="float32")[0]
    batch = [{"text": TEXT, "audio": wav},
             {"audio": wav},  # no transcript (the pipeline's problem)
             {"text": "화가 나요", "audio": clips["16k"].tolist(), "sampling_rate": 16000},
             {"text": TEXT, "audio": "%%% not base64 %%%"},  # the request's own problem
             {"text": TEXT, "audio": [0.0] * 800, "sampling_rate": 16}]
    answers = handler({"inputs": batch})
    assert_same_output(answers[0], original({"text": TEXT, "audio": {"array": decoded, "sampling_rate": 8000}}))
    assert_same_output(answers[2], original({"text": "화가 나요", "audio": clips["16k"]}))
    errors = {index: answers[index]["error"] for index in (1, 3, 4)}
    assert {index: (error["field"], error["code"]) for index, error in errors.items()} == {
        1: ("text", "missing"), 3: ("audio", "not_base64"), 4: ("audio.sampling_rate", "bad_sampling_rate")}
    assert errors[1]["message"].startswith("inputs[1].text is missing: this model reads the transcript.")
    assert errors[3]["message"].startswith("inputs[3].audio is not base64 text of an audio file")
    assert errors[4]["message"] == ("inputs[4].sampling_rate must be a whole number of Hz from 1000 to 384000 (e.g. "
                                    "16000); got 16.")
    assert all(error["expected"] for error in errors.values())
    json.dumps(answers)  # what the endpoint sends back


def test_long_recording_and_silence_are_answered_in_bounded_time(handler, original, clips, monkeypatch):
    ten_minutes = np.tile(clips["16k"], 200)  # 600 s at 16 kHz
    payload = {"inputs": {"text": TEXT, "audio": encode(ten_minutes, 16000)}}
    start = time.perf_counter()
    cropped = handler(dict(payload))  # no chunk_length_s: the first max_audio_seconds, as in training
    windowed = handler({**payload, "parameters": {"chunk_length_s": 5.0}})
    elapsed = time.perf_counter() - start
    decoded = np.round(ten_minutes * 32767).astype(np.int16).astype(np.float32) / 32768
    assert_same_output(cropped, original({"text": TEXT, "audio": decoded[: 5 * 16000]}))
    assert len(windowed["chunks"]) == 120 and windowed["chunks"][-1]["end"] == 600.0
    assert elapsed < 120, f"a 10-minute recording took {elapsed:.0f} s"

    silence = {"inputs": {"text": TEXT, "audio": [0.0] * (30 * 16000), "sampling_rate": 16000},
               "parameters": {"chunk_length_s": 5.0}}
    answer = handler(silence)
    assert len(answer["chunks"]) == 6
    assert np.isfinite([e["score"] for e in answer["emotions"]] + [answer["arousal"], answer["valence"]]).all()
    assert answer["labels"]

    over = np.zeros(16 * 60 * 1000, dtype=np.float32)  # 16 minutes at 1 kHz: the header says so, nothing decoded
    with pytest.raises(ValueError, match=r"^inputs.audio is 16.0 minutes long; at most 15.0 minutes are scored"):
        handler({"inputs": {"text": TEXT, "audio": encode(over, 1000)}})
    with pytest.raises(ValueError, match=r"inputs.audio is 16.0 minutes long"):
        handler({"inputs": {"text": TEXT, "audio": over.tolist(), "sampling_rate": 1000}})


def test_without_text_a_checkpoint_with_a_speech_recogniser_transcribes(tiny_model_factory, tiny_processor, clips,
                                                                       tmp_path):
    from helpers.speech_recognizer import tiny_speech_recognizer

    model = tiny_model_factory("cat", seed=6)
    model.config.asr_model = str(tiny_speech_recognizer(tmp_path / "asr"))  # config.asr_model: the default recogniser
    try:
        checkpoint = save_checkpoint(model, tiny_processor, tmp_path / "with-asr")
    finally:
        model.config.asr_model = None
    handler = load_handler_module(checkpoint).EndpointHandler(str(checkpoint))
    assert "on_empty_transcript" in handler.parameter_names
    payload = {"inputs": {"audio": clips["16k"].tolist(), "sampling_rate": 16000},
               "parameters": {"on_empty_transcript": "speech_only"}}
    got = handler(payload)
    want = pipeline("emotion-multimodal", model=str(checkpoint), device="cpu")(
        {"audio": clips["16k"]}, on_empty_transcript="speech_only")
    assert got["transcript_source"] == "asr"
    assert_same_output(got, want)


def test_parameters_segment_gives_a_timeline(handler, original):
    """`parameters.segment` reaches the pipeline (the handler reads its options from `_sanitize_parameters`): JSON
    segments are lists, not tuples; a bad segment names itself; silence answers with a note."""
    from kemd_emotion.data.sample import synthesize_utterance

    rng = np.random.default_rng(31)
    talk = np.concatenate([0.001 * rng.standard_normal(12000), synthesize_utterance("happy", 1.5, seed=1)[1],
                           0.001 * rng.standard_normal(12000), synthesize_utterance("sad", 1.5, seed=2)[1],
                           0.001 * rng.standard_normal(8000)]).astype(np.float32)
    wav = encode(talk, 16000, subtype="FLOAT")
    answer = handler({"inputs": {"text": TEXT, "audio": wav}, "parameters": {"segment": "utterances"}})
    want = original({"text": TEXT, "audio": talk}, segment="utterances")
    assert len(answer["utterances"]) == 2
    assert_same_output({k: v for k, v in answer.items() if k != "utterances"},
                       {k: v for k, v in want.items() if k != "utterances"}, atol=1e-5)
    for got, expected in zip(answer["utterances"], want["utterances"]):
        assert (got["start"], got["end"]) == (expected["start"], expected["end"])
        assert_same_output(got, expected, atol=1e-5)
    given = handler({"inputs": {"text": TEXT, "audio": wav}, "parameters": {"segment": [[0.5, 2.0], [2.5, 4.0]]}})
    assert [(u["start"], u["end"]) for u in given["utterances"]] == [(0.5, 2.0), (2.5, 4.0)]
    with pytest.raises(ValueError, match=r"^segments\[1\]=\(1.5, 3.0\): overlaps segments\[0\]=\(0.5, 2.0\)"):
        handler({"inputs": {"text": TEXT, "audio": wav}, "parameters": {"segment": [[0.5, 2.0], [1.5, 3.0]]}})
    silent = encode(0.001 * rng.standard_normal(16000), 16000, subtype="FLOAT")
    quiet = handler({"inputs": {"text": TEXT, "audio": silent}, "parameters": {"segment": "utterances"}})
    assert quiet["utterances"] == [] and quiet["note"].startswith("no speech was found")
