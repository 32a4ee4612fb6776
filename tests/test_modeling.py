"""KlueWav2Vec2ForEmotion: fusions, losses, padding invariance, the conv shortcut, pretrained encoders."""

import itertools

import numpy as np
import pytest
import torch
from transformers import AutoModel, BertModel, Wav2Vec2Model
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2EncoderLayer, Wav2Vec2EncoderLayerStableLayerNorm

from helpers.audio import speech_like
from kemd_emotion import EMOTIONS, KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion
from kemd_emotion.modeling_klue_wav2vec2 import (
    concordance_correlation,
    masked_group_norm,
    masked_group_norm_per_sample,
    masked_group_norm_tensor_ops,
    pool,
)
from kemd_emotion.small_encoders import tiny_audio_config, tiny_config, tiny_text_config

TEXTS = ["안녕하세요 오늘 날씨가 정말 좋네요", "음"]


def batch_inputs(processor, rng, seconds=(1.2, 0.4)):
    clips = [speech_like(rng, s) for s in seconds]
    return processor(text=TEXTS[: len(seconds)], audio=clips, sampling_rate=16000), clips


@pytest.mark.parametrize("fusion", ["cat", "add", "text", "speech"])
def test_forward_backward_reaches_both_encoders(fusion, tiny_model_factory, tiny_processor, rng):
    model = tiny_model_factory(fusion=fusion).train()
    inputs, _ = batch_inputs(tiny_processor, rng)
    labels = torch.tensor([[1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0]], dtype=torch.float)
    out = model(**inputs, labels=labels, regression_labels=torch.tensor([[4.0, 2.0], [3.0, 3.0]]))
    assert out.logits.shape == (2, len(EMOTIONS)) and out.regression.shape == (2, 2)
    assert out.fused_embeds.shape == (2, model.config.fused_dim)
    out.loss.backward()

    def grad_norm(module):
        return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)

    if fusion in ("cat", "add", "text"):
        assert grad_norm(model.text_model.embeddings) > 0
        assert out.text_embeds.shape == (2, model.config.text_config.hidden_size)
    else:
        assert model.text_model is None and out.text_embeds is None
    if fusion in ("cat", "add", "speech"):
        assert grad_norm(model.audio_model.feature_extractor) > 0
        assert grad_norm(model.audio_model.encoder) > 0
    else:
        assert model.audio_model is None and out.audio_embeds is None
    assert grad_norm(model.emotion_head) > 0 and grad_norm(model.regression_head) > 0


def test_unimodal_models_do_not_need_the_other_input(tiny_model_factory, tiny_processor, rng):
    text_only = tiny_processor(text=TEXTS)
    speech_only = tiny_processor(audio=[speech_like(rng, 0.5)])
    assert tiny_model_factory("text")(**text_only).logits.shape == (2, 7)
    assert tiny_model_factory("speech")(**speech_only).logits.shape == (1, 7)
    with pytest.raises(ValueError, match=r"fusion='cat' needs speech: input_values is None"):
        tiny_model_factory("cat")(**text_only)
    with pytest.raises(ValueError, match=r"fusion='add' needs text: input_ids is None"):
        tiny_model_factory("add")(**speech_only)


def test_model_rejects_bad_shapes(tiny_model_factory, tiny_processor, rng):
    model = tiny_model_factory("cat")
    inputs, _ = batch_inputs(tiny_processor, rng)
    with pytest.raises(ValueError, match=r"input_values must be \(batch, samples\) mono audio; got shape \(2, 2, "):
        model(**{**inputs, "input_values": torch.stack([inputs["input_values"]] * 2, 1)})
    with pytest.raises(ValueError, match="text and audio batch sizes differ"):
        model(**{**inputs, "input_values": inputs["input_values"][:1], "audio_attention_mask": None})
    with pytest.raises(ValueError, match=r"a clip of 300 samples is shorter than .* \(400 samples, 25 ms at 16 kHz\)"):
        model(input_ids=inputs["input_ids"][:1], input_values=torch.zeros(1, 300))


# ----------------------------------------------------------------------------- losses
def soft_margin_by_hand(logits, labels):
    x, y = logits.double().numpy(), labels.double().numpy()
    log_sigmoid = lambda v: -np.log1p(np.exp(-v))  # noqa: E731
    return float(np.mean(-np.mean(y * log_sigmoid(x) + (1 - y) * log_sigmoid(-x), axis=1)))


def ccc_by_hand(p, t):
    p, t = np.asarray(p, float), np.asarray(t, float)
    cov = np.mean((p - p.mean()) * (t - t.mean()))
    return 2 * cov / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)


def test_concordance_correlation_hand_values():
    same = torch.tensor([1.0, 2.0, 3.0])
    assert concordance_correlation(same, same).item() == pytest.approx(1.0, abs=1e-6)
    # shifted by one: 2 * (2/3) / (2/3 + 2/3 + 1) = 4/7
    assert concordance_correlation(same, same + 1).item() == pytest.approx(4 / 7, abs=1e-6)
    assert concordance_correlation(same, -same).item() == pytest.approx(ccc_by_hand([1, 2, 3], [-1, -2, -3]), abs=1e-6)


@pytest.mark.parametrize("regression_loss", ["mse", "ccc"])
def test_loss_matches_hand_computation(regression_loss, tiny_model_factory, tiny_processor, rng):
    model = tiny_model_factory(
        "cat", regression_loss=regression_loss, emotion_loss_weight=0.7, regression_loss_weight=0.3
    )
    clips = [speech_like(rng, s) for s in (0.5, 0.7, 0.9)]
    inputs = tiny_processor(text=["좋아요", "싫어요", "몰라요"], audio=clips)
    labels = torch.tensor([[1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 1]], dtype=torch.float)
    targets = torch.tensor([[4.0, 2.0], [3.0, 3.5], [1.5, 4.5]])
    with torch.no_grad():
        out = model(**inputs, labels=labels, regression_labels=targets)
    emotion = soft_margin_by_hand(out.logits, labels)
    pred, true = out.regression.double().numpy(), targets.double().numpy()
    if regression_loss == "mse":
        regression = float(np.mean((pred - true) ** 2))
    else:
        regression = 1 - np.mean([ccc_by_hand(pred[:, d], true[:, d]) for d in range(2)])
    assert out.emotion_loss.item() == pytest.approx(emotion, abs=1e-5)
    assert out.regression_loss.item() == pytest.approx(regression, abs=1e-5)
    assert out.loss.item() == pytest.approx(0.7 * emotion + 0.3 * regression, abs=1e-5)


def test_fresh_regression_head_predicts_middle_of_scale(tiny_model_factory, tiny_processor):
    model = tiny_model_factory("text")
    torch.nn.init.zeros_(model.regression_head.weight)
    torch.nn.init.zeros_(model.regression_head.bias)
    out = model(**tiny_processor(text=TEXTS))
    assert torch.equal(out.regression, torch.full((2, 2), 3.0))


# ----------------------------------------------------------------------------- padding
@pytest.mark.parametrize(
    "representation,pooling,norm",
    list(itertools.product(["conv", "hidden"], ["mean", "last", "first"], ["group", "layer"])),
)
def test_same_outputs_alone_and_padded_in_a_batch(representation, pooling, norm, tiny_model_factory, tiny_processor, rng):
    model = tiny_model_factory("cat", feat_extract_norm=norm, audio_representation=representation, pooling=pooling)
    texts = ["음", "안녕하세요 오늘 날씨가 정말 좋네요", "그건 너무 화가 나요"]
    clips = [speech_like(rng, s) for s in (0.37, 2.0, 1.1)]  # the short clip is padded by > 80 %
    with torch.no_grad():
        batch = model(**tiny_processor(text=texts, audio=clips))
        for i in range(3):
            alone = model(**tiny_processor(text=texts[i], audio=clips[i]))
            torch.testing.assert_close(batch.logits[i], alone.logits[0], atol=1e-4, rtol=0)
            torch.testing.assert_close(batch.regression[i], alone.regression[0], atol=1e-4, rtol=0)
            torch.testing.assert_close(batch.audio_embeds[i], alone.audio_embeds[0], atol=1e-4, rtol=0)


def test_plain_wav2vec2_is_not_padding_invariant_with_group_norm(rng):
    """The property above is not free: transformers' own group-norm encoder changes under zero padding."""
    torch.manual_seed(0)
    wav2vec2 = Wav2Vec2Model(tiny_audio_config("group")).eval()
    clip = torch.from_numpy(speech_like(rng, 0.5))
    padded = torch.cat([clip, torch.zeros(16000)])
    with torch.no_grad():
        alone = wav2vec2.feature_extractor(clip[None])
        in_batch = wav2vec2.feature_extractor(padded[None])[..., : alone.shape[-1]]
    assert (alone - in_batch).abs().max() > 1e-2


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_unpadded_audio_path_matches_transformers_wav2vec2(norm, tiny_model_factory, rng):
    """On an unpadded clip, our masked re-implementation equals Wav2Vec2Model's own forward."""
    model = tiny_model_factory("speech", feat_extract_norm=norm, audio_representation="hidden", pooling="mean")
    clip = torch.from_numpy(speech_like(rng, 0.8))[None]
    with torch.no_grad():
        reference = Wav2Vec2Model.forward(model.audio_model, clip)
        ours = model.encode_audio(clip)
        conv = tiny_model_factory("speech", feat_extract_norm=norm, audio_representation="conv").encode_audio(clip)
    torch.testing.assert_close(ours[0], reference.last_hidden_state[0].mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv[0], reference.extract_features[0].mean(0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("implementation", [masked_group_norm, masked_group_norm_per_sample, masked_group_norm_tensor_ops])
def test_masked_group_norm_equals_group_norm_on_real_frames(implementation):
    masked_group_norm = implementation
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(4, 8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 8, 20) * 3 + 1
    out = masked_group_norm(x, norm, torch.tensor([20, 13]))
    torch.testing.assert_close(out[0], norm(x[:1])[0])
    torch.testing.assert_close(out[1, :, :13], norm(x[1:, :, :13])[0])
    assert torch.all(out[1, :, 13:] == 0)
    # by hand for one group of the short sample: channels 2-3 over its 13 real frames
    group = x[1, 2:4, :13].double()
    expected = (group - group.mean()) / torch.sqrt(group.var(unbiased=False) + norm.eps)
    expected = expected * norm.weight[2:4, None].double() + norm.bias[2:4, None].double()
    torch.testing.assert_close(out[1, 2:4, :13].double(), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(masked_group_norm(x, norm, torch.tensor([20, 20])), norm(x))


@pytest.mark.parametrize("groups,channels", [(8, 8), (4, 8), (1, 6)])
def test_masked_group_norm_eager_and_graph_paths_agree(groups, channels):
    """The per-sample loop (eager) and the tensor-op version (export, trace, compile) give the same values and the
    same gradients, including for a clip of five frames and for a batch without padding."""
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(groups, channels)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = (torch.randn(4, channels, 30) * 3 + 5).requires_grad_()
    upstream = torch.randn(4, channels, 30)
    for lengths in (torch.tensor([30, 17, 5, 29]), torch.tensor([30, 30, 30, 30])):
        results = []
        for implementation in (masked_group_norm_per_sample, masked_group_norm_tensor_ops):
            out = implementation(x, norm, lengths)
            gradients = torch.autograd.grad((out * upstream).sum(), [x, norm.weight, norm.bias])
            results.append((out, *gradients))
        for eager, graph in zip(*results):
            torch.testing.assert_close(graph, eager, atol=1e-5, rtol=1e-5)
    lengths = torch.tensor([30, 17, 5, 29])
    fp32 = masked_group_norm_per_sample(x.detach(), norm, lengths)
    bf16 = masked_group_norm_tensor_ops(x.detach().bfloat16(), norm.bfloat16(), lengths)
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), fp32, atol=0.05, rtol=0.02)


def test_pool_uses_real_positions_only():
    hidden = torch.arange(12, dtype=torch.float).reshape(1, 4, 3).repeat(2, 1, 1)
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 0]])
    torch.testing.assert_close(pool(hidden, mask, "mean")[0], hidden[0, :3].mean(0))
    torch.testing.assert_close(pool(hidden, mask, "mean")[1], hidden[1, 1:3].mean(0))
    torch.testing.assert_close(pool(hidden, mask, "last"), hidden[[0, 1], [2, 2]])
    torch.testing.assert_close(pool(hidden, mask, "first"), hidden[[0, 1], [0, 1]])


# ----------------------------------------------------------------------------- conv shortcut
def encoder_layer_calls(model, inputs):
    calls = []
    for module in model.modules():
        if isinstance(module, (Wav2Vec2EncoderLayer, Wav2Vec2EncoderLayerStableLayerNorm)):
            module.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        model(**inputs)
    return len(calls)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_conv_representation_runs_no_transformer_layer(norm, tiny_model_factory, tiny_processor, rng):
    inputs, _ = batch_inputs(tiny_processor, rng)
    hidden = tiny_model_factory("cat", feat_extract_norm=norm, audio_representation="hidden")
    conv = tiny_model_factory("cat", feat_extract_norm=norm, audio_representation="conv")
    assert encoder_layer_calls(hidden, inputs) == hidden.config.audio_config.num_hidden_layers
    assert encoder_layer_calls(conv, inputs) == 0
    assert conv.audio_model.encoder is None
    assert conv(**inputs).audio_embeds.shape == (2, conv.config.audio_config.conv_dim[-1])


# ----------------------------------------------------------------------------- pretrained encoders
@pytest.mark.parametrize("fusion", ["cat", "add", "text", "speech"])
def test_from_text_audio_pretrained_keeps_encoder_weights(fusion, tmp_path):
    torch.manual_seed(1)
    BertModel(tiny_text_config(vocab_size=300)).save_pretrained(tmp_path / "text")
    Wav2Vec2Model(tiny_audio_config("group")).save_pretrained(tmp_path / "audio")
    model = KlueWav2Vec2ForEmotion.from_text_audio_pretrained(
        str(tmp_path / "text"), str(tmp_path / "audio"), fusion=fusion, pooling="last"
    )
    assert model.config.fusion == fusion and model.config.pooling == "last"
    if fusion != "speech":
        reference = AutoModel.from_pretrained(tmp_path / "text").state_dict()
        ours = model.text_model.state_dict()
        assert set(ours) == {k for k in reference if not k.startswith("pooler.")}
        for name, tensor in ours.items():
            assert torch.equal(tensor, reference[name]), name
    if fusion != "text":
        reference = AutoModel.from_pretrained(tmp_path / "audio").state_dict()
        for name, tensor in model.audio_model.state_dict().items():
            assert torch.equal(tensor, reference[name]), name


def test_from_text_audio_pretrained_needs_the_encoders_its_fusion_uses(tmp_path):
    BertModel(tiny_text_config(vocab_size=300)).save_pretrained(tmp_path / "text")
    with pytest.raises(ValueError, match=r"fusion='cat' needs a pretrained audio model"):
        KlueWav2Vec2ForEmotion.from_text_audio_pretrained(str(tmp_path / "text"), None, fusion="cat")
    text_only = KlueWav2Vec2ForEmotion.from_text_audio_pretrained(str(tmp_path / "text"), None, fusion="text")
    assert text_only.audio_model is None


def test_freeze_feature_encoder_and_gradient_checkpointing(tiny_model_factory, tiny_processor, rng):
    model = tiny_model_factory("cat", freeze_feature_encoder=True).train()
    assert not any(p.requires_grad for p in model.audio_model.feature_extractor.parameters())
    model.activation_checkpointing_enable()
    inputs, _ = batch_inputs(tiny_processor, rng)
    model(**inputs, labels=torch.zeros(2, 7)).loss.backward()
    assert all(p.grad is None for p in model.audio_model.feature_extractor.parameters())
    assert model.text_model.embeddings.word_embeddings.weight.grad is not None


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "option,value,accepted",
    [
        ("fusion", "concat", "'cat', 'add', 'text', 'speech'"),
        ("pooling", "max", "'mean', 'last', 'first'"),
        ("audio_representation", "cnn", "'conv', 'hidden'"),
        ("regression_loss", "mae", "'mse', 'ccc'"),
    ],
)
def test_config_rejects_unknown_values_listing_accepted_ones(option, value, accepted):
    with pytest.raises(ValueError, match=f"{option}='{value}' is not supported; expected one of {accepted}"):
        KlueWav2Vec2EmotionConfig(**{option: value})


def test_config_defaults_describe_the_paper_model():
    config = KlueWav2Vec2EmotionConfig()
    assert config.text_config.model_type == "bert" and config.text_config.vocab_size == 32000
    assert config.audio_config.model_type == "wav2vec2" and config.audio_config.feat_extract_norm == "group"
    assert [config.id2label[i] for i in range(7)] == list(EMOTIONS)
    assert config.label2id["sad"] == 5
    assert KlueWav2Vec2EmotionConfig(fusion="add", audio_representation="conv").fused_dim == 768
    assert KlueWav2Vec2EmotionConfig(fusion="cat", audio_representation="conv").fused_dim == 768 + 512
    with pytest.raises(ValueError, match="classifier_dropout=1.5 must be in"):
        KlueWav2Vec2EmotionConfig(classifier_dropout=1.5)
    with pytest.raises(ValueError, match=r"audio_config.model_type='bert' is not supported"):
        KlueWav2Vec2EmotionConfig(audio_config=tiny_text_config())


def test_activation_checkpointing_gives_the_same_gradients(tiny_model_factory, tiny_processor, rng):
    inputs, _ = batch_inputs(tiny_processor, rng)
    grads = []
    for checkpointing in (False, True):
        model = tiny_model_factory("cat", audio_representation="hidden", classifier_dropout=0.0).train()
        model.config.audio_config.mask_time_prob = 0.0
        if checkpointing:
            model.activation_checkpointing_enable()
        torch.manual_seed(3)
        model(**inputs, labels=torch.eye(7)[:2]).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5, msg=name)
