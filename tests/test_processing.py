"""KlueWav2Vec2Processor: separate masks, resampling, down-mixing, cropping, truncation, and bad input."""

import numpy as np
import pytest
import soundfile
import torch
from transformers import Wav2Vec2FeatureExtractor

from conftest import speech_like
from kemd_emotion import KlueWav2Vec2Processor, load_audio
from kemd_emotion.testing_utils import train_wordpiece_tokenizer


def test_outputs_keep_text_and_audio_masks_apart(tiny_processor, rng):
    out = tiny_processor(text=["안녕하세요", "그건 너무 화가 나요 정말 싫어요"], audio=[speech_like(rng, 1.0), speech_like(rng, 0.5)])
    assert set(out) == {"input_ids", "attention_mask", "token_type_ids", "input_values", "audio_attention_mask"}
    assert out["attention_mask"].shape == out["input_ids"].shape
    assert out["audio_attention_mask"].shape == out["input_values"].shape == (2, 16000)
    assert out["audio_attention_mask"].sum(-1).tolist() == [16000, 8000]
    assert out["attention_mask"].sum(-1).tolist() == [(ids != 0).sum().item() for ids in out["input_ids"]]
    assert torch.all(out["input_values"][1, 8000:] == 0)  # zero padding
    # per-utterance normalisation ignores padding: the short clip's real part is zero-mean, unit-variance
    assert out["input_values"][1, :8000].mean().abs() < 1e-3 and abs(out["input_values"][1, :8000].std() - 1) < 1e-2


def test_hangul_is_not_unknown(tiny_processor):
    tokens = tiny_processor.tokenizer.tokenize("오늘 날씨가 정말 좋네요")
    assert tokens and "[UNK]" not in tokens


def test_lower_casing_tokenizer_is_refused():
    tokenizer = train_wordpiece_tokenizer(["안녕하세요"], vocab_size=60)
    tokenizer.do_lower_case = True
    with pytest.raises(ValueError, match="do_lower_case=True"):
        KlueWav2Vec2Processor(Wav2Vec2FeatureExtractor(), tokenizer)


def test_text_is_truncated_to_max_length(tiny_processor):
    processor = KlueWav2Vec2Processor(tiny_processor.feature_extractor, tiny_processor.tokenizer, max_text_length=6)
    out = processor(text="안녕하세요 오늘 날씨가 정말 좋네요 그건 너무 화가 나요 정말 싫어요")
    assert out["input_ids"].shape == (1, 6) and out["input_ids"][0, -1].item() == tiny_processor.tokenizer.sep_token_id


def test_resamples_downmixes_and_crops(tiny_processor):
    t = np.arange(44100 * 7) / 44100
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    stereo = np.stack([tone, tone])  # (channels, samples)
    out = tiny_processor(audio=stereo, sampling_rate=44100, return_tensors="np")
    assert out["input_values"].shape == (1, 5 * 16000)  # cropped to max_audio_seconds
    spectrum = np.abs(np.fft.rfft(out["input_values"][0]))
    assert np.argmax(spectrum) * 16000 / out["input_values"].shape[1] == pytest.approx(440, abs=1)
    channels_last = tiny_processor(audio=stereo.T, sampling_rate=44100, return_tensors="np")
    np.testing.assert_allclose(channels_last["input_values"], out["input_values"], atol=1e-6)
    uncropped = KlueWav2Vec2Processor(tiny_processor.feature_extractor, tiny_processor.tokenizer, max_audio_seconds=None)
    assert uncropped(audio=tone, sampling_rate=44100)["input_values"].shape == (1, 7 * 16000)


def test_load_audio_reads_any_rate_and_channel_count(tmp_path, rng):
    clip = speech_like(rng, 0.5, sampling_rate=8000)
    soundfile.write(tmp_path / "stereo8k.wav", np.stack([clip, clip], axis=1), 8000)
    audio = load_audio(tmp_path / "stereo8k.wav")
    assert audio.dtype == np.float32 and audio.shape == (8000,)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    with pytest.raises(ValueError, match=r"audio file '.*broken.wav' could not be read"):
        load_audio(tmp_path / "broken.wav")
    with pytest.raises(ValueError, match=r"audio file '.*missing.wav' could not be read"):
        load_audio(tmp_path / "missing.wav")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"text": ""}, r"text\[0\] is empty; expected a non-empty transcript"),
        ({"text": ["좋아요", "  "]}, r"text\[1\] is empty"),
        ({"text": ["좋아요", 3]}, r"text\[1\] must be a string; got int"),
        ({"audio": np.zeros(300, np.float32)}, r"audio is 18.8 ms long; the speech encoder needs at least 25 ms"),
        ({"audio": np.array([0.1, np.nan] * 4000, np.float32)}, r"audio contains NaN or infinite samples"),
        ({"audio": [np.zeros(8000, np.float32), np.full(8000, np.inf, np.float32)]}, r"audio\[1\] contains NaN"),
        ({"audio": np.zeros((2, 2, 8000), np.float32)}, r"audio must be 1-D \(samples\) or 2-D .* got a 3-D array"),
        ({"audio": "clip.wav"}, r"audio must be a numpy array of samples; got str"),
        ({"audio": np.zeros(8000, np.float32), "sampling_rate": 0}, r"sampling_rate must be a positive whole number"),
        ({"audio": np.zeros(8000, np.float32), "sampling_rate": "16k"}, r"sampling_rate must be a positive number"),
        ({"audio": np.zeros(8000, np.float32), "sampling_rate": 16000.5}, r"positive whole number .* got 16000.5"),
        ({"text": ["좋아요"], "audio": [np.zeros(8000), np.zeros(8000)]}, r"same length; got 1 texts and 2 clips"),
        ({}, r"Give text=, audio= or both; got neither"),
    ],
)
def test_bad_input_is_named(tiny_processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_processor(**kwargs)


def test_integer_and_multichannel_arrays_are_scaled_then_down_mixed():
    from kemd_emotion.processing_klue_wav2vec2 import to_mono

    left = np.array([16384, -32767, 0, 32767] * 200, dtype=np.int16)
    right = np.zeros_like(left)
    mono = to_mono(np.stack([left, right], axis=1))  # (samples, channels) int16
    np.testing.assert_allclose(mono, left / 32767 / 2, atol=1e-6)
    np.testing.assert_allclose(to_mono(np.stack([left, right]).astype(np.float64)), (left / 2).astype(np.float32))
