"""fusion="cross" and audio_representation="weighted": against hand computations, padding, training, bad sizes.

Padding invariance, the same outputs on every construction path (save/load, remote code), checkpointing and export
of both are in tests/test_contracts.py (contract_cases() includes them).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.audio import speech_like
from kemd_emotion import KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion
from kemd_emotion.modeling_klue_wav2vec2 import CrossModalAttention, CrossModalFusion
from kemd_emotion.small_encoders import tiny_audio_config, tiny_config, tiny_text_config

TEXTS = ["안녕하세요 오늘 날씨가 정말 좋네요", "음", "그건 너무 화가 나요"]


# ----------------------------------------------------------------------------------------------- weighted
@pytest.mark.parametrize("layer_norm", [False, True], ids=["plain", "layer_norm"])
@pytest.mark.parametrize("feat_extract_norm", ["group", "layer"])
def test_weighted_is_the_softmax_weighted_sum_of_every_layer(feat_extract_norm, layer_norm, tiny_processor, rng):
    """Against transformers' own forward: projected conv features, every layer's output, the last hidden state."""
    torch.manual_seed(0)
    config = tiny_config("speech", feat_extract_norm, audio_representation="weighted", weighted_layer_norm=layer_norm,
                         pooling="mean")
    model = KlueWav2Vec2ForEmotion(config).eval()
    logits = torch.tensor([0.3, -1.0, 2.0])  # 2 layers: projected features, layer 1, last hidden state
    with torch.no_grad():
        model.audio_layer_weights.weights.copy_(logits)
        inputs = tiny_processor(audio=speech_like(rng, 0.7))
        ours = model(**inputs).audio_embeds
        reference = model.audio_model(inputs["input_values"], output_hidden_states=True)
    projected = model.audio_model.feature_projection.projection(reference.extract_features)
    states = [projected, reference.hidden_states[1], reference.last_hidden_state]
    if layer_norm:
        states = [F.layer_norm(state, state.shape[-1:]) for state in states]
    weights = torch.softmax(logits, 0)
    expected = sum(weight * state for weight, state in zip(weights, states)).mean(1)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    if feat_extract_norm == "layer":  # stable layer norm: the last state is after the encoder's final norm
        assert not torch.allclose(reference.hidden_states[-1], reference.last_hidden_state, atol=1e-3)


def test_weighted_with_all_weight_on_the_last_layer_is_hidden(tiny_processor, rng):
    torch.manual_seed(0)
    hidden = KlueWav2Vec2ForEmotion(tiny_config("cat", "layer", audio_representation="hidden")).eval()
    weighted = KlueWav2Vec2ForEmotion(tiny_config("cat", "layer", audio_representation="weighted")).eval()
    missing, unexpected = weighted.load_state_dict(hidden.state_dict(), strict=False)
    assert missing == ["audio_layer_weights.weights"] and not unexpected
    with torch.no_grad():
        weighted.audio_layer_weights.weights.copy_(torch.tensor([-1e4, -1e4, 0.0]))
        inputs = tiny_processor(text=TEXTS, audio=[speech_like(rng, s) for s in (0.3, 1.1, 0.6)])
        torch.testing.assert_close(weighted(**inputs).logits, hidden(**inputs).logits, atol=1e-6, rtol=0)


def test_weighted_starts_with_equal_weights_on_every_loading_path(tmp_path):
    model = KlueWav2Vec2ForEmotion(tiny_config("speech", audio_representation="weighted"))
    assert model.audio_layer_weights.weights.shape == (3,)
    assert torch.equal(model.audio_layer_weights.weights.detach(), torch.zeros(3))
    with torch.no_grad():
        model.audio_layer_weights.weights.copy_(torch.tensor([1.0, 2.0, 3.0]))
    model.save_pretrained(tmp_path)
    loaded = KlueWav2Vec2ForEmotion.from_pretrained(tmp_path)
    assert torch.equal(loaded.audio_layer_weights.weights.detach(), torch.tensor([1.0, 2.0, 3.0]))
    assert loaded.config.audio_representation == "weighted" and loaded.config.weighted_layer_norm is False


# ----------------------------------------------------------------------------------------------- cross attention
def attention_by_hand(module: CrossModalAttention, queries, keys, key_mask):
    """Per head: softmax over the real keys of q k^T / sqrt(d), times v; zero for a sample without real keys."""
    batch, _, width = queries.shape
    heads, size = module.heads, width // module.heads
    q = module.query(queries).reshape(batch, -1, heads, size).transpose(1, 2)
    k = module.key(keys).reshape(batch, -1, heads, size).transpose(1, 2)
    v = module.value(keys).reshape(batch, -1, heads, size).transpose(1, 2)
    rows = []
    for b in range(batch):
        real = key_mask[b]
        if not real.any():
            rows.append(torch.zeros(queries.shape[1], width))
            continue
        scores = q[b] @ k[b][:, real].transpose(-1, -2) / math.sqrt(size)
        mixed = torch.softmax(scores, -1) @ v[b][:, real]
        rows.append(module.output(mixed.transpose(0, 1).reshape(-1, width)))
    return torch.stack(rows)


def test_cross_attention_matches_hand_computation_and_never_gives_nan():
    torch.manual_seed(0)
    module = CrossModalAttention(width=8, heads=2, dropout=0.0).eval()
    queries, keys = torch.randn(3, 4, 8), torch.randn(3, 5, 8)
    key_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        ours = module(queries, keys, key_mask)
        expected = attention_by_hand(module, queries, keys, key_mask)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    assert torch.equal(ours[2], torch.zeros(4, 8))  # no real key: nothing attended, not NaN


def test_cross_fusion_never_reads_padding():
    """Whatever sits on padded tokens and frames (here: huge values) changes nothing, and a sample whose speech is
    entirely padding still gives finite outputs."""
    torch.manual_seed(0)
    config = tiny_config("cross", cross_attention_layers=2, cross_attention_heads=4, pooling="mean")
    fusion = CrossModalFusion(config).eval()
    text, speech = torch.randn(3, 6, 32), torch.randn(3, 9, 32)
    text_mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [1] * 4 + [0] * 2])
    speech_mask = torch.tensor([[1] * 9, [1] * 3 + [0] * 6, [0] * 9])
    noisy_text = torch.where(text_mask.bool()[..., None], text, 1e4 * torch.randn_like(text))
    noisy_speech = torch.where(speech_mask.bool()[..., None], speech, 1e4 * torch.randn_like(speech))
    with torch.no_grad():
        clean = fusion(text, text_mask, speech, speech_mask)
        noisy = fusion(noisy_text, text_mask, noisy_speech, speech_mask)
        alone = fusion(text[1:2, :2], text_mask[1:2, :2], speech[1:2, :3], speech_mask[1:2, :3])
    assert clean.shape == (3, 2 * 32) and torch.isfinite(clean).all()
    torch.testing.assert_close(noisy, clean, atol=1e-5, rtol=0)
    torch.testing.assert_close(clean[1:2], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["first", "last"])
def test_cross_fusion_pools_each_side_over_its_real_positions(pooling):
    torch.manual_seed(0)
    fusion = CrossModalFusion(tiny_config("cross", pooling=pooling)).eval()
    text, speech = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    text_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2])
    speech_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        both = fusion(text, text_mask, speech, speech_mask)
        alone = fusion(text[1:, :3], text_mask[1:, :3], speech[1:, :4], speech_mask[1:, :4])
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=0)


def test_cross_sizes_default_to_the_text_encoder_and_set_the_fused_width():
    config = tiny_config("cross")
    assert (config.cross_attention_width, config.cross_attention_num_heads, config.cross_attention_ffn_size) == (32, 2, 128)
    assert config.fused_dim == 64
    sized = tiny_config("cross", cross_attention_dim=24, cross_attention_heads=3, cross_attention_layers=2,
                        cross_attention_intermediate_size=40)
    model = KlueWav2Vec2ForEmotion(sized)
    assert model.emotion_head.in_features == 48 and len(model.cross_fusion.layers) == 2
    assert model.cross_fusion.layers[0].text.feed_forward[0].out_features == 40
    assert KlueWav2Vec2EmotionConfig.from_dict(sized.to_dict()).cross_attention_heads == 3


# ----------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("fusion,representation", [("cross", "hidden"), ("cat", "weighted"), ("cross", "weighted")])
def test_new_options_train(fusion, representation, tiny_processor):
    """A few steps on a tiny fixed corpus: the loss falls, and the cross layers / layer weights move."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = KlueWav2Vec2ForEmotion(tiny_config(fusion, audio_representation=representation, classifier_dropout=0.0,
                                               vocab_size=len(tiny_processor.tokenizer)))
    texts = ["좋아요 정말", "싫어요", "몰라요 음", "와 대박", "슬퍼요", "화가 나요"]
    batch = tiny_processor(text=texts, audio=[speech_like(rng, 0.3 + 0.1 * i) for i in range(len(texts))])
    labels = torch.eye(7)[[3, 0, 4, 6, 5, 0]]
    targets = torch.tensor([[4.0, 4.5], [4.0, 1.5], [2.5, 3.0], [4.5, 4.0], [1.5, 1.5], [4.5, 1.5]])
    before = {name: p.detach().clone() for name, p in model.named_parameters()
              if name.startswith(("cross_fusion.", "audio_layer_weights."))}

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return model(**batch, labels=labels, regression_labels=targets).loss.item()

    start = loss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(25):
        optimizer.zero_grad()
        model(**batch, labels=labels, regression_labels=targets).loss.backward()
        optimizer.step()
    end = loss()
    assert end < 0.5 * start, (start, end)
    assert before and all(not torch.equal(before[name], p) for name, p in model.named_parameters() if name in before)


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("options,message", [
    ({"cross_attention_dim": 30, "cross_attention_heads": 4},
     r"cross_attention_dim=30 is not divisible by cross_attention_heads=4; expected .*\[1, 2, 3, 5, 6, 10, 15, 30\]"),
    ({"cross_attention_heads": 5}, r"cross_attention_dim=32 is not divisible by cross_attention_heads=5"),
    ({"cross_attention_layers": 0}, r"cross_attention_layers=0 must be a positive whole number\."),
    ({"cross_attention_dim": 2.5}, r"cross_attention_dim=2.5 must be a positive whole number or None"),
    ({"cross_attention_intermediate_size": -1}, r"cross_attention_intermediate_size=-1 must be a positive"),
    ({"cross_attention_dropout": 1.0}, r"cross_attention_dropout=1.0 must be in \[0, 1\)"),
])
def test_bad_cross_sizes_fail_when_the_config_is_built(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_config("cross", **options)


def test_bad_weighted_and_representation_options_fail_when_the_config_is_built():
    with pytest.raises(ValueError, match=r"weighted_layer_norm='yes' must be True or False"):
        tiny_config("cat", audio_representation="weighted", weighted_layer_norm="yes")
    with pytest.raises(ValueError, match=r"audio_representation='layers' is not supported; expected one of 'conv', "
                                         r"'hidden', 'weighted'"):
        tiny_config("cat", audio_representation="layers")
    with pytest.raises(ValueError, match=r"fusion='attention' is not supported; expected one of .*'cross'"):
        tiny_config("attention")
    assert tiny_config("cat", cross_attention_heads=5).fusion == "cat"  # sizes of an unused fusion are not judged


def test_text_and_audio_configs_must_be_supported_encoder_types():
    with pytest.raises(ValueError, match=r"text_config.model_type='gpt2' is not supported; expected one of 'bert', "
                                         r"'roberta', 'electra'"):
        KlueWav2Vec2EmotionConfig(text_config={"model_type": "gpt2"}, audio_config=tiny_audio_config())
    with pytest.raises(ValueError, match=r"audio_config.model_type='sew' is not supported; expected one of "
                                         r"'wav2vec2', 'hubert', 'wavlm', 'data2vec-audio', 'whisper'"):
        KlueWav2Vec2EmotionConfig(text_config=tiny_text_config(), audio_config={"model_type": "sew"})


def test_the_experiment_accepts_the_cross_row():
    from kemd_emotion.experiment.rows import parse_row
    from kemd_emotion.experiment.arguments import parse_row_names

    assert parse_row_names("cross,text,cat") == ["text", "cat", "cross"]
    assert parse_row_names("all") == ["text", "speech", "cat", "add"]  # the paper's four rows
    assert parse_row("cross").title == "Cross (cross-modal attention)"
    assert parse_row("cat+weighted").options == {"fusion": "cat", "audio_representation": "weighted"}
    with pytest.raises(ValueError, match=r"--rows 'crossed': row 'crossed': expected a fusion "
                                         r"\(cat, add, text, speech, cross, prosody\)"):
        parse_row_names("crossed")
