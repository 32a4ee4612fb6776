"""Every supported text encoder (BERT, RoBERTa, ELECTRA) and speech encoder (wav2vec2 with group / layer / stable
layer norm, HuBERT, WavLM, Data2VecAudio, Whisper's encoder): forward and backward, padding invariance, their
tokenizers and feature extractors, and Whisper's own checks (variable length, checkpoints, bad input).

On the construction paths (saved encoder folders, from_pretrained, remote code), with activation checkpointing and
torch.export, each kind runs in tests/test_contracts.py (`ENCODER_CASES`).
"""

import numpy as np
import pytest
import torch
from transformers import AutoModel

from helpers.audio import speech_like
from helpers.contract_matrix import (
    AUDIO_ENCODERS,
    ENCODER_CASES,
    MATRIX_AUDIO_ENCODERS,
    MATRIX_TEXT_ENCODERS,
    TEXT_ENCODERS,
    WHISPER_CASES,
)
from kemd_emotion import KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion, KlueWav2Vec2Processor
from kemd_emotion.configuration_klue_wav2vec2 import SUPPORTED_AUDIO_MODEL_TYPES, SUPPORTED_TEXT_MODEL_TYPES
from kemd_emotion.small_encoders import (
    DEFAULT_TEXTS,
    tiny_audio_config,
    tiny_text_config,
    train_byte_level_bpe_tokenizer,
    train_wordpiece_tokenizer,
)

TEXTS = ["안녕하세요 오늘 날씨가 정말 좋네요", "음", "그건 너무 화가 나요"]
SECONDS = (1.1, 0.3, 0.6)
LABELS = torch.tensor([[1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 1]], dtype=torch.float)
TARGETS = torch.tensor([[4.0, 2.0], [3.0, 3.5], [1.5, 4.5]])


@pytest.fixture(scope="module")
def tokenizers():
    return {"wordpiece": train_wordpiece_tokenizer(DEFAULT_TEXTS, vocab_size=300),
            "byte-level-bpe": train_byte_level_bpe_tokenizer(DEFAULT_TEXTS, vocab_size=400)}


def processor_for(tokenizer):
    from transformers import Wav2Vec2FeatureExtractor

    return KlueWav2Vec2Processor(Wav2Vec2FeatureExtractor(return_attention_mask=True), tokenizer)


def text_kind_model(kind, tokenizer, seed=0, **config_kwargs):
    torch.manual_seed(seed)
    config = KlueWav2Vec2EmotionConfig(
        text_config=TEXT_ENCODERS[kind](vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id),
        audio_config=tiny_audio_config(), **config_kwargs)
    return KlueWav2Vec2ForEmotion(config)


def audio_kind_model(kind, seed=0, **config_kwargs):
    torch.manual_seed(seed)
    config = KlueWav2Vec2EmotionConfig(text_config=tiny_text_config(vocab_size=300), audio_config=AUDIO_ENCODERS[kind](),
                                       **config_kwargs)
    return KlueWav2Vec2ForEmotion(config)


def test_every_supported_model_type_has_a_tiny_encoder_and_a_contract_case():
    assert sorted({build(vocab_size=50).model_type for build in TEXT_ENCODERS.values()}) == sorted(SUPPORTED_TEXT_MODEL_TYPES)
    assert sorted({build().model_type for build in AUDIO_ENCODERS.values()}) == sorted(SUPPORTED_AUDIO_MODEL_TYPES)
    covered = {case.text_encoder for case in ENCODER_CASES} | set(MATRIX_TEXT_ENCODERS)
    assert covered == set(TEXT_ENCODERS)
    covered = {case.audio_encoder for case in ENCODER_CASES + WHISPER_CASES} | set(MATRIX_AUDIO_ENCODERS)
    assert covered == set(AUDIO_ENCODERS)


def grad_sum(module) -> float:
    return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)


def check_padding_then_backward(model, processor, rng, embeds: str):
    """Each item of a ragged batch gives its outputs alone (`logits` and `embeds`, to 1e-5); then one training
    step's backward pass. Returns the batch."""
    clips = [speech_like(rng, s) for s in SECONDS]
    batch = processor(text=TEXTS, audio=clips)
    model.eval()
    with torch.no_grad():
        together = model(**batch)
        alone = [model(**processor(text=t, audio=c)) for t, c in zip(TEXTS, clips)]
    for i, single in enumerate(alone):
        for name in ("logits", embeds):
            torch.testing.assert_close(together[name][i], single[name][0], atol=1e-5, rtol=0, msg=name)
    model.train()
    model(**batch, labels=LABELS, regression_labels=TARGETS).loss.backward()
    return batch


@pytest.mark.parametrize("kind", list(TEXT_ENCODERS))
def test_each_text_encoder_kind_runs_forward_and_backward_and_ignores_padding(kind, tokenizers, rng):
    tokenizer = tokenizers["byte-level-bpe" if kind == "roberta" else "wordpiece"]
    model = text_kind_model(kind, tokenizer)
    batch = check_padding_then_backward(model, processor_for(tokenizer), rng, "text_embeds")
    assert ("token_type_ids" in batch) == (kind != "roberta")
    assert grad_sum(model.text_model.embeddings.word_embeddings) > 0
    assert grad_sum(model.text_model.encoder) > 0
    if kind == "electra":  # its embeddings are narrower than its layers
        assert model.text_model.embeddings_project.in_features == 16


WAV2VEC2_FAMILY = [kind for kind in AUDIO_ENCODERS if kind != "whisper"]


@pytest.mark.parametrize("representation", ["conv", "hidden", "weighted"])
@pytest.mark.parametrize("kind", WAV2VEC2_FAMILY)
def test_each_speech_encoder_kind_runs_forward_and_backward_and_ignores_padding(kind, representation,
                                                                               tiny_processor, rng):
    model = audio_kind_model(kind, audio_representation=representation)
    check_padding_then_backward(model, tiny_processor, rng, "audio_embeds")
    assert grad_sum(model.audio_model.feature_extractor) > 0
    if representation != "conv":
        encoder_layers = model.audio_model.encoder.layers
        assert all(grad_sum(layer) > 0 for layer in encoder_layers)
    has_group_norm = any(isinstance(getattr(layer, "layer_norm", None), torch.nn.GroupNorm)
                         for layer in model.audio_model.feature_extractor.conv_layers)
    assert has_group_norm == (kind in ("wav2vec2-group", "hubert", "wavlm"))


@pytest.mark.parametrize("kind", ["hubert", "wavlm", "data2vec-audio"])
def test_transformers_own_speech_encoders_change_under_padding_and_ours_do_not(kind, rng):
    """Why the masked group norm (HuBERT, WavLM) and the masked positional convolutions (Data2VecAudio) are needed:
    the same clip, alone and zero-padded in a batch."""
    torch.manual_seed(0)
    encoder = AutoModel.from_config(AUDIO_ENCODERS[kind]()).eval()
    clip = torch.from_numpy(speech_like(rng, 0.4))
    padded = torch.cat([clip, torch.zeros(12000)])[None]
    mask = torch.zeros_like(padded, dtype=torch.long)
    mask[0, : clip.shape[0]] = 1
    with torch.no_grad():
        alone = encoder(clip[None]).last_hidden_state
        in_batch = encoder(padded, attention_mask=mask).last_hidden_state[:, : alone.shape[1]]
    assert (alone - in_batch).abs().max() > 1e-2
    model = audio_kind_model(kind, fusion="speech")
    model.audio_model.load_state_dict(encoder.state_dict())
    model.eval()
    with torch.no_grad():
        ours_alone = model(input_values=clip[None]).audio_embeds
        ours_padded = model(input_values=padded, audio_attention_mask=mask).audio_embeds
    torch.testing.assert_close(ours_padded, ours_alone, atol=1e-5, rtol=0)


def test_hubert_freezes_its_feature_encoder():
    """HubertModel has no freeze_feature_encoder method; the model freezes every family's conv layers the same way."""
    model = audio_kind_model("hubert", freeze_feature_encoder=True)
    assert not any(p.requires_grad for p in model.audio_model.feature_extractor.parameters())
    assert all(p.requires_grad for p in model.audio_model.encoder.parameters())


def test_roberta_tokenizer_gives_no_token_type_ids_and_lower_casing_electra_is_refused(tokenizers, tmp_path):
    from transformers import AutoTokenizer, BertTokenizer, Wav2Vec2FeatureExtractor

    roberta = processor_for(tokenizers["byte-level-bpe"])
    out = roberta(text=TEXTS, audio=[np.zeros(800, np.float32)] * 3)
    assert set(out) == {"input_ids", "attention_mask", "input_values", "audio_attention_mask"}
    assert out["input_ids"][1, 0] == 0 and out["input_ids"][1, -1] == 1  # <s> first; <pad> (id 1) after the text
    tokenizers["wordpiece"].save_pretrained(tmp_path)
    lower_casing = BertTokenizer.from_pretrained(tmp_path, do_lower_case=True)  # ELECTRA's tokenizer default
    with pytest.raises(ValueError, match=r"do_lower_case=True.*NFD-splits Hangul"):
        KlueWav2Vec2Processor(Wav2Vec2FeatureExtractor(), lower_casing)
    assert AutoTokenizer.from_pretrained(tmp_path).do_lower_case is False


# ----------------------------------------------------------------------------------------------- Whisper's encoder
@pytest.fixture(scope="module")
def whisper_processor():
    from kemd_emotion.small_encoders import tiny_whisper_processor

    return tiny_whisper_processor(DEFAULT_TEXTS, vocab_size=300)


@pytest.mark.parametrize("representation", ["hidden", "weighted"])
def test_whisper_encoder_runs_forward_and_backward_and_ignores_padding(representation, whisper_processor, rng):
    model = audio_kind_model("whisper", audio_representation=representation)
    batch = check_padding_then_backward(model, whisper_processor, rng, "audio_embeds")
    assert set(batch) >= {"input_features", "audio_attention_mask"} and "input_values" not in batch
    assert grad_sum(model.audio_model.conv1) > 0 and grad_sum(model.audio_model.conv2) > 0
    assert all(grad_sum(layer) > 0 for layer in model.audio_model.layers)
    assert not hasattr(model.audio_model, "decoder") and model.audio_model.embed_positions.weight.grad is None
    if representation == "weighted":
        assert model.audio_layer_weights.weights.shape == (3,) and model.audio_layer_weights.weights.grad is not None


def test_whisper_encoder_equals_transformers_on_30_s_and_costs_each_clip_its_length(rng):
    """On a full 30 s input our run of the encoder's modules is transformers' WhisperEncoder; on a 5 s clip its layers
    see 250 frames (a sixth of the 1500 of 30 s), and the clip padded to 30 s with a mask gives what it gives alone."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from kemd_emotion.modeling_klue_wav2vec2 import whisper_encoder_states
    from kemd_emotion.small_encoders import tiny_whisper_config

    torch.manual_seed(0)
    encoder = WhisperEncoder(tiny_whisper_config()).eval()
    full = torch.randn(2, 80, 3000)
    with torch.no_grad():
        theirs = encoder(full).last_hidden_state
        (ours,), mask = whisper_encoder_states(encoder, full, torch.tensor([3000, 3000]))
    assert mask.all() and ours.shape == theirs.shape == (2, 1500, 32)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)

    seen = []
    handle = encoder.layers[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    clip = full[:1, :, :500]
    padded = torch.cat([clip, torch.randn(1, 80, 2500)], dim=-1)  # junk after the clip: it must not count
    with torch.no_grad():
        (alone,), _ = whisper_encoder_states(encoder, clip, torch.tensor([500]))
        (in_30_s,), mask = whisper_encoder_states(encoder, padded, torch.tensor([500]))
    handle.remove()
    assert seen == [250, 1500] and mask.sum().item() == 250
    torch.testing.assert_close(in_30_s[:, :250], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("saved_as", ["WhisperForConditionalGeneration", "WhisperModel", "WhisperEncoder"])
def test_any_whisper_checkpoint_gives_its_encoder(saved_as, tmp_path, whisper_processor, rng):
    """`from_text_audio_pretrained(text, whisper)` keeps the encoder's weights exactly, whichever class saved them,
    and no decoder; the fused model then saves and loads like any other."""
    from transformers.models.whisper import modeling_whisper

    from kemd_emotion.small_encoders import tiny_whisper_config, whisper_feature_extractor

    torch.manual_seed(1)
    whisper = getattr(modeling_whisper, saved_as)(tiny_whisper_config())
    whisper.save_pretrained(tmp_path / "whisper")
    whisper_feature_extractor().save_pretrained(tmp_path / "whisper")
    encoder = whisper if saved_as == "WhisperEncoder" else whisper.get_encoder()
    text = AutoModel.from_config(tiny_text_config(vocab_size=300))
    text.save_pretrained(tmp_path / "text")
    model = KlueWav2Vec2ForEmotion.from_text_audio_pretrained(str(tmp_path / "text"), str(tmp_path / "whisper"))
    expected = {f"audio_model.{name}": value for name, value in encoder.state_dict().items()}
    found = {name: value for name, value in model.state_dict().items() if name.startswith("audio_model.")}
    assert found.keys() == expected.keys()
    assert all(torch.equal(found[name], expected[name]) for name in expected)
    assert model.config.audio_config.model_type == "whisper" and model.config.audio_representation == "hidden"
    model.save_pretrained(tmp_path / "fused")
    reloaded = AutoModel.from_pretrained(tmp_path / "fused").eval()
    batch = whisper_processor(text=TEXTS[:2], audio=[speech_like(rng, 0.5), speech_like(rng, 0.9)])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model.eval()(**batch).logits, atol=1e-6, rtol=0)


def test_whisper_bad_inputs_are_named(tmp_path, whisper_processor, tiny_processor):
    from transformers import WhisperForConditionalGeneration

    from kemd_emotion.small_encoders import tiny_whisper_config

    WhisperForConditionalGeneration(tiny_whisper_config()).save_pretrained(tmp_path / "whisper")
    with pytest.raises(ValueError, match=r"text_model_name_or_path='.*whisper' is a 'whisper' checkpoint; expected a "
                                         r"text encoder, one of 'bert', 'roberta', 'electra'\. A whisper checkpoint is "
                                         r"a speech encoder: pass it as audio_model_name_or_path"):
        KlueWav2Vec2ForEmotion.from_text_audio_pretrained(str(tmp_path / "whisper"), str(tmp_path / "whisper"))
    with pytest.raises(ValueError, match=r"audio_representation='conv' is not supported with a Whisper speech encoder"):
        audio_kind_model("whisper", audio_representation="conv")
    model = audio_kind_model("whisper").eval()
    ids = whisper_processor(text=["음"])["input_ids"]
    with pytest.raises(ValueError, match=r"input_features: 3001 mel frames \(30.01 s, the longest clip 3001 frames\) "
                                         r"are more than the Whisper encoder's 3000"):
        model(input_ids=ids, input_features=torch.zeros(1, 80, 3001))
    with pytest.raises(ValueError, match=r"input_values was given, but the speech encoder \(audio_config.model_type="
                                         r"'whisper'\) reads log-mel input_features"):
        model(**tiny_processor(text=["음"], audio=[np.zeros(800, np.float32)]))
    with pytest.raises(ValueError, match=r"input_features must be \(batch, 80 mel bins, frames\)"):
        model(input_ids=ids, input_features=torch.zeros(1, 128, 100))
    wav2vec2 = audio_kind_model("wav2vec2-group").eval()
    with pytest.raises(ValueError, match=r"input_features was given, but the speech encoder \(audio_config.model_type="
                                         r"'wav2vec2'\) reads 16 kHz samples as input_values"):
        wav2vec2(**whisper_processor(text=["음"], audio=[np.zeros(800, np.float32)]))


def test_whisper_freezes_its_two_convolutions_only():
    model = audio_kind_model("whisper", freeze_feature_encoder=True)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"audio_model.conv1.weight", "audio_model.conv1.bias", "audio_model.conv2.weight",
                      "audio_model.conv2.bias", "audio_model.embed_positions.weight"}
