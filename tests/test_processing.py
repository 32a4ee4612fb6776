"""KlueWav2Vec2Processor: separate masks, resampling, down-mixing, cropping, truncation, and bad input."""

import numpy as np
import pytest
import soundfile
import torch
from transformers import Wav2Vec2FeatureExtractor

from helpers.audio import speech_like
from kemd_emotion import KlueWav2Vec2Processor, load_audio
from kemd_emotion.small_encoders import train_wordpiece_tokenizer


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
        ({"audio": np.zeros(8000, np.float32), "sampling_rate": 0}, r"sampling_rate must be a whole number of Hz from 1000 to 384000 \(e.g. 16000\); got 0\.$"),
        ({"audio": np.zeros(8000, np.float32), "sampling_rate": "16k"}, r"sampling_rate must be a whole number of Hz .* got '16k'"),
        ({"audio": np.zeros(8000, np.float32), "sampling_rate": 16000.5}, r"whole number of Hz .* got 16000.5"),
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


# ----------------------------------------------------------------------------- the standard transformers keywords
TWO_TEXTS = ["안녕하세요", "그건 너무 화가 나요 정말 싫어요"]


def two_clips(rng):
    return [speech_like(rng, 1.0), speech_like(rng, 0.5)]


def test_the_standard_call_works(tiny_processor, rng):
    """The line every transformers user writes (it raised `TypeError: unexpected arguments: padding` before)."""
    out = tiny_processor(text=TWO_TEXTS, audio=two_clips(rng), sampling_rate=16000, return_tensors="pt", padding=True)
    reference = tiny_processor(text=TWO_TEXTS, audio=two_clips(np.random.default_rng(0)), sampling_rate=16000)
    assert set(out) == {"input_ids", "attention_mask", "token_type_ids", "input_values", "audio_attention_mask"}
    for key in out:
        assert torch.equal(out[key], reference[key]), key
    longest = tiny_processor(text=TWO_TEXTS, audio=two_clips(np.random.default_rng(0)), padding="longest")
    assert all(torch.equal(longest[key], reference[key]) for key in out)


def test_max_length_padding_gives_fixed_shapes(tiny_processor, rng):
    out = tiny_processor(text=TWO_TEXTS, audio=two_clips(rng), padding="max_length")
    assert out["input_ids"].shape == out["attention_mask"].shape == (2, tiny_processor.max_text_length)
    assert out["input_values"].shape == out["audio_attention_mask"].shape == (2, 5 * 16000)  # the paper's fixed 5 s
    assert out["audio_attention_mask"].sum(-1).tolist() == [16000, 8000]
    assert torch.all(out["input_values"][1, 8000:] == 0)
    # the real part is normalised on its own, as with dynamic padding
    dynamic = tiny_processor(text=TWO_TEXTS, audio=two_clips(np.random.default_rng(0)))
    torch.testing.assert_close(out["input_values"][:, :16000], dynamic["input_values"])
    sized = tiny_processor(text=TWO_TEXTS, audio=two_clips(np.random.default_rng(0)), padding="max_length",
                           text_kwargs={"max_length": 16}, audio_kwargs={"max_length": 24000, "pad_to_multiple_of": 1000})
    assert sized["input_ids"].shape == (2, 16) and sized["input_values"].shape == (2, 24000)
    from transformers.utils import PaddingStrategy

    as_enum = tiny_processor(text=TWO_TEXTS, padding=PaddingStrategy.MAX_LENGTH)
    assert as_enum["input_ids"].shape == (2, tiny_processor.max_text_length)


def test_max_length_alone_applies_to_the_one_modality_given(tiny_processor, rng):
    assert tiny_processor(text=TWO_TEXTS, padding="max_length", max_length=12)["input_ids"].shape == (2, 12)
    assert tiny_processor(audio=two_clips(rng), max_length=4000)["input_values"].shape == (2, 4000)
    with pytest.raises(ValueError, match=r"max_length=12 is ambiguous with both text and audio .* text_kwargs="):
        tiny_processor(text=TWO_TEXTS, audio=two_clips(rng), max_length=12)


def test_truncation_false_keeps_whole_inputs(tiny_processor):
    long_text = " ".join(["안녕하세요 오늘 날씨가 정말 좋네요"] * 40)
    tone = np.sin(np.arange(7 * 16000) / 16000 * 2 * np.pi * 200).astype(np.float32)
    kept = tiny_processor(text=long_text, audio=tone, truncation=False)
    assert kept["input_ids"].shape[1] > tiny_processor.max_text_length and kept["input_values"].shape == (1, 7 * 16000)
    cut = tiny_processor(text=long_text, audio=tone)
    assert cut["input_ids"].shape[1] == tiny_processor.max_text_length and cut["input_values"].shape == (1, 5 * 16000)
    with pytest.raises(ValueError, match=r"audio has 112000 samples, more than max_length=80000 with truncation=False"):
        tiny_processor(audio=tone, truncation=False, padding="max_length")


def test_padding_false_and_masks_off(tiny_processor, rng):
    same = tiny_processor(text=["좋아요", "싫어요"], audio=[speech_like(rng, 0.5)] * 2, padding=False)
    assert same["input_values"].shape == (2, 8000)
    lists = tiny_processor(text=TWO_TEXTS, audio=two_clips(rng), padding=False, return_tensors=None)
    assert [len(ids) for ids in lists["input_ids"]] != [len(lists["input_ids"][0])] * 2
    assert [len(values) for values in lists["input_values"]] == [16000, 8000]
    with pytest.raises(ValueError, match=r"padding=False leaves transcripts of \d+ to \d+ tokens"):
        tiny_processor(text=TWO_TEXTS, padding=False)
    with pytest.raises(ValueError, match=r"padding=False leaves clips of 8000 to 16000 samples"):
        tiny_processor(audio=two_clips(rng), padding=False)
    no_masks = tiny_processor(text=TWO_TEXTS, audio=two_clips(rng), return_attention_mask=False)
    assert set(no_masks) == {"input_ids", "token_type_ids", "input_values"}
    text_mask_only = tiny_processor(text=TWO_TEXTS, audio=two_clips(rng), audio_kwargs={"return_attention_mask": False})
    assert "attention_mask" in text_mask_only and "audio_attention_mask" not in text_mask_only
    as_numpy = tiny_processor(text=TWO_TEXTS, audio=two_clips(rng), return_tensors="np")
    assert isinstance(as_numpy["input_values"], np.ndarray)


def test_wav2vec2_base_feature_extractor_settings_still_give_the_audio_mask(tiny_processor, rng):
    """wav2vec2-base's preprocessor says return_attention_mask=False; the processor still returns the mask and
    normalises each clip over its real samples only, so padding cannot change what the model sees."""
    from helpers.contract_matrix import WAV2VEC2_BASE_FEATURE_EXTRACTOR

    processor = KlueWav2Vec2Processor(Wav2Vec2FeatureExtractor(**WAV2VEC2_BASE_FEATURE_EXTRACTOR), tiny_processor.tokenizer)
    clips = two_clips(rng)
    batch = processor(audio=clips)
    alone = processor(audio=clips[1])
    assert batch["audio_attention_mask"].sum(-1).tolist() == [16000, 8000]
    torch.testing.assert_close(batch["input_values"][1, :8000], alone["input_values"][0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"padding": "maximum"}, r"padding='maximum' \(text\) is not supported; expected one of True, False, 'longest', "
                                 r"'max_length', 'do_not_pad'"),
        ({"padding": 1}, r"padding=1 \(text\) is not supported"),
        ({"truncation": "yes"}, r"truncation='yes' \(text\) must be True or False"),
        ({"text_kwargs": {"max_length": 0}}, r"max_length=0 \(text\) must be a positive whole number or None"),
        ({"audio_kwargs": {"pad_to_multiple_of": 2.5}}, r"pad_to_multiple_of=2.5 \(audio\) must be a positive whole"),
        ({"return_tensors": "tf"}, r"return_tensors='tf' is not supported; expected 'pt', 'np' or None"),
        ({"padding": True, "text_kwargs": {"padding": "max_length"}}, r"padding given twice: in text_kwargs and as a "),
        ({"text_kwargs": ["padding"]}, r"text_kwargs must be a dict; got list"),
    ],
)
def test_bad_keyword_values_are_named(tiny_processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_processor(text=TWO_TEXTS, audio=[np.zeros(8000, np.float32)] * 2, **kwargs)


def test_unknown_keywords_list_the_accepted_ones(tiny_processor):
    from kemd_emotion.processing_klue_wav2vec2 import UnknownArgumentError

    accepted = ("text, audio, sampling_rate, padding, truncation, max_length, pad_to_multiple_of, "
                "return_attention_mask, return_tensors, text_kwargs, audio_kwargs")
    for error in (TypeError, ValueError, UnknownArgumentError):
        with pytest.raises(error, match=f"unexpected argument\\(s\\) paddding, stride; it accepts {accepted}"):
            tiny_processor(text=TWO_TEXTS, paddding=True, stride=2)
    with pytest.raises(ValueError, match=r"audio_kwargs got unexpected key\(s\) do_normalize; it accepts padding, "):
        tiny_processor(audio=[np.zeros(8000, np.float32)], audio_kwargs={"do_normalize": False})


# ----------------------------------------------------------------------------------------------- Whisper's features
@pytest.fixture(scope="module")
def whisper_processor():
    from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_whisper_processor

    return tiny_whisper_processor(DEFAULT_TEXTS, vocab_size=300)


def test_whisper_features_are_each_clip_at_its_own_length(whisper_processor, rng):
    """log-mel input_features (batch, 80, frames) and a mask per 10 ms frame; each clip's features are exactly what
    the WhisperFeatureExtractor gives that clip alone (not padded to 30 s, as it does by default)."""
    clips = [speech_like(rng, 1.0), speech_like(rng, 0.43), speech_like(rng, 2.5)]
    out = whisper_processor(text=["안녕하세요", "음", "그건 너무 화가 나요"], audio=clips)
    assert set(out) == {"input_ids", "attention_mask", "token_type_ids", "input_features", "audio_attention_mask"}
    assert out["input_features"].shape == (3, 80, 250) and out["input_features"].dtype == torch.float32
    assert out["audio_attention_mask"].sum(-1).tolist() == [100, 43, 250]
    extractor = whisper_processor.feature_extractor
    for row, clip in enumerate(clips):
        alone = extractor(clip, sampling_rate=16000, padding="longest", return_tensors="np")["input_features"][0]
        frames = alone.shape[-1]
        np.testing.assert_array_equal(out["input_features"][row, :, :frames].numpy(), alone)
        assert torch.all(out["input_features"][row, :, frames:] == extractor.padding_value)
    default = extractor(clips[0], sampling_rate=16000)["input_features"]  # transformers' own default: 30 s
    assert default.shape[-1] == 3000
    assert whisper_processor.audio_input_name == "input_features" and whisper_processor.is_whisper


def test_whisper_max_length_padding_and_limits(whisper_processor, rng):
    fixed = whisper_processor(audio=[speech_like(rng, 0.5), speech_like(rng, 1.0)], padding="max_length")
    assert fixed["input_features"].shape == (2, 80, 500)  # max_audio_seconds=5 -> 500 mel frames
    assert fixed["audio_attention_mask"].sum(-1).tolist() == [50, 100]
    cropped = whisper_processor(audio=speech_like(rng, 7.0))
    assert cropped["input_features"].shape == (1, 80, 500)
    uncapped = KlueWav2Vec2Processor(whisper_processor.feature_extractor, whisper_processor.tokenizer,
                                     max_audio_seconds=None)
    assert uncapped.max_audio_samples == 30 * 16000  # None means Whisper's 30 s
    assert uncapped(audio=np.zeros(31 * 16000, np.float32))["input_features"].shape == (1, 80, 3000)
    with pytest.raises(ValueError, match=r"audio is 31 s long; a Whisper encoder takes at most 30 s"):
        uncapped(audio=np.zeros(31 * 16000, np.float32), truncation=False)
    with pytest.raises(ValueError, match=r"max_audio_seconds=45 is longer than a Whisper encoder's 30 s"):
        KlueWav2Vec2Processor(whisper_processor.feature_extractor, whisper_processor.tokenizer, max_audio_seconds=45)


def test_processor_and_speech_encoder_must_agree(whisper_processor, tiny_processor):
    """A wav2vec2 feature extractor for a Whisper encoder, or the reverse: a ValueError naming the processor and
    what the encoder expects."""
    from kemd_emotion.small_encoders import tiny_audio_config, tiny_whisper_config

    whisper_processor.check_speech_encoder(tiny_whisper_config())
    tiny_processor.check_speech_encoder(tiny_audio_config())
    with pytest.raises(ValueError, match=r"processor: its feature_extractor is a Wav2Vec2FeatureExtractor \(input_values\), "
                                         r"but the speech encoder \(audio_config.model_type='whisper'\) expects a "
                                         r"WhisperFeatureExtractor"):
        tiny_processor.check_speech_encoder(tiny_whisper_config())
    with pytest.raises(ValueError, match=r"its feature_extractor is a WhisperFeatureExtractor \(input_features\), but "
                                         r"the speech encoder \(audio_config.model_type='wav2vec2'\) expects a "
                                         r"Wav2Vec2FeatureExtractor"):
        whisper_processor.check_speech_encoder(tiny_audio_config())
    with pytest.raises(ValueError, match=r"makes 80 mel bins, but the Whisper encoder expects num_mel_bins=128"):
        whisper_processor.check_speech_encoder(tiny_whisper_config(num_mel_bins=128))


def test_whisper_processor_round_trips_through_auto_processor(whisper_processor, tmp_path, rng):
    import kemd_emotion  # noqa: F401  (registers the processor)
    from transformers import AutoProcessor, WhisperFeatureExtractor

    whisper_processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, KlueWav2Vec2Processor)
    assert isinstance(loaded.feature_extractor, WhisperFeatureExtractor)
    clip = speech_like(rng, 0.8)
    np.testing.assert_array_equal(loaded(audio=clip)["input_features"].numpy(),
                                  whisper_processor(audio=clip)["input_features"].numpy())
