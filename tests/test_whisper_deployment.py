"""A checkpoint with Whisper's encoder where users meet it: the pipeline (one input, batches, recordings longer than
Whisper's 30 s in windows), `kemd-emotion predict`, the demo's request path and the Inference Endpoints handler
give the model's own numbers on the processor's log-mel features; a processor that does not fit is refused.

(Every construction path, export and training contract: tests/test_contracts.py and tests/test_onnx.py, cases
`WHISPER_CASES`.)"""

import json

import numpy as np
import pytest
import soundfile
import torch
from helpers.audio import speech_like
from transformers import pipeline

from kemd_emotion import EMOTIONS, KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion
from kemd_emotion.cli import main
from kemd_emotion.hub import save_checkpoint
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_text_config, tiny_whisper_config, tiny_whisper_processor

TEXT = "그건 너무 화가 나요"
ATOL = 1e-5


@pytest.fixture(scope="module")
def processor():
    return tiny_whisper_processor(DEFAULT_TEXTS, vocab_size=300, max_audio_seconds=30.0)


@pytest.fixture(scope="module")
def model(processor):
    torch.manual_seed(4)
    config = KlueWav2Vec2EmotionConfig(text_config=tiny_text_config(vocab_size=len(processor.tokenizer)),
                                       audio_config=tiny_whisper_config(), fusion="cat",
                                       audio_representation="weighted")
    return KlueWav2Vec2ForEmotion(config).eval()


@pytest.fixture(scope="module")
def checkpoint(model, processor, tmp_path_factory):
    return save_checkpoint(model, processor, tmp_path_factory.mktemp("whisper") / "final")


@pytest.fixture(scope="module")
def classifier(checkpoint):
    return pipeline("emotion-multimodal", model=str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(21)
    return [speech_like(rng, seconds) for seconds in (1.4, 0.5, 3.2)]


def flat(result) -> np.ndarray:
    scores = {emotion["label"]: emotion["score"] for emotion in result["emotions"]}
    return np.array([scores[name] for name in EMOTIONS] + [result["arousal"], result["valence"]])


def expected(model, processor, text, audio) -> np.ndarray:
    with torch.no_grad():
        out = model(**processor(text=text, audio=audio, sampling_rate=16000))
    return np.concatenate([torch.sigmoid(out.logits[0]).numpy(), out.regression[0].numpy()])


def test_pipeline_gives_the_model_outputs_alone_and_batched(classifier, model, processor, clips):
    items = [{"text": TEXT, "audio": clip} for clip in clips]
    batched = classifier(items, batch_size=3)  # longest first: the pipeline pads the mel frames
    for item, answer in zip(items, batched):
        want = expected(model, processor, TEXT, item["audio"])
        np.testing.assert_allclose(flat(answer), want, atol=ATOL, rtol=0)
        np.testing.assert_allclose(flat(classifier(item)), want, atol=ATOL, rtol=0)


def test_recordings_longer_than_30_s_are_scored_in_windows(classifier, model, processor):
    recording = speech_like(np.random.default_rng(22), 65.0)
    answer = classifier({"text": TEXT, "audio": recording}, chunk_length_s=30)
    assert [(chunk["start"], chunk["end"]) for chunk in answer["chunks"]] == [(0.0, 30.0), (30.0, 60.0), (35.0, 65.0)]
    windows = [expected(model, processor, TEXT, recording[int(a * 16000):int(b * 16000)])
               for a, b in ((0, 30), (30, 60), (35, 65))]
    np.testing.assert_allclose(flat(answer), np.mean(windows, axis=0), atol=ATOL, rtol=0)
    cropped = classifier({"text": TEXT, "audio": recording})  # without windows: the first 30 s, as in training
    np.testing.assert_allclose(flat(cropped), windows[0], atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match=r"chunk_length_s=40 is longer than the processor's max_audio_seconds=30"):
        classifier({"text": TEXT, "audio": recording}, chunk_length_s=40)


def test_pipeline_refuses_a_processor_made_for_the_other_speech_encoder(model, tiny_processor):
    with pytest.raises(ValueError, match=r"processor: its feature_extractor is a Wav2Vec2FeatureExtractor "
                                         r"\(input_values\), but the speech encoder \(audio_config.model_type='whisper'\) "
                                         r"expects a WhisperFeatureExtractor"):
        pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")


def test_cli_predict_demo_and_handler_answer_like_the_pipeline(checkpoint, classifier, clips, capsys, tmp_path):
    from helpers.endpoint import load_handler_module

    from kemd_emotion.demo import load_classifier, predict as demo_predict

    path = tmp_path / "clip.wav"
    soundfile.write(path, clips[2], 16000, subtype="FLOAT")
    want = flat(classifier({"text": TEXT, "audio": str(path)}))
    assert main(["predict", "--model", str(checkpoint), "--audio", str(path), "--text", TEXT, "--no-progress"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(flat(entry), want, atol=1e-4, rtol=0)

    demo = demo_predict(load_classifier(str(checkpoint)), str(path), TEXT)
    np.testing.assert_allclose(flat(demo), want, atol=1e-4, rtol=0)

    handler = load_handler_module(checkpoint).EndpointHandler(str(checkpoint))
    answer = handler({"inputs": {"text": TEXT, "audio": clips[2].tolist(), "sampling_rate": 16000},
                      "parameters": {"top_k": 7}})
    np.testing.assert_allclose(flat(answer), want, atol=1e-4, rtol=0)
