"""transformers' model conventions on the fused model (found by running transformers' common model tests on it).

- `output_hidden_states` / `output_attentions` (argument or config) return each encoder's states and attention weights
  under named fields (`text_hidden_states`, `text_attentions`, `audio_hidden_states`, `audio_attentions`), the same
  tensors transformers' own encoders give; nothing extra runs when they are not asked for.
- `get_input_embeddings` / `set_input_embeddings` / `resize_token_embeddings` act on the text encoder.
- `set_attn_implementation` switches both encoders and records the choice on every config, without a warning.
"""

import contextlib
import logging
import warnings

import pytest
import torch
from transformers import AutoModel

from helpers.contract_matrix import ContractCase, build_from_config
from kemd_emotion import KlueWav2Vec2ForEmotion

VOCAB = 300
CASES = {
    "wav2vec2-group-hidden": ContractCase("cat", "hidden", "mean", "wav2vec2-group"),
    "wav2vec2-layer-hidden": ContractCase("add", "hidden", "mean", "wav2vec2-layer"),  # stable layer norm
    "wav2vec2-conv": ContractCase("cat", "conv", "mean", "wav2vec2-group"),
    "wav2vec2-weighted-cross": ContractCase("cross", "weighted", "mean", "wav2vec2-group"),
    "whisper-hidden": ContractCase("cat", "hidden", "mean", "whisper"),
    "text-only": ContractCase("text"),
    "speech-only-whisper": ContractCase("speech", "weighted", "mean", "whisper"),
}
FIELDS = ("text_hidden_states", "text_attentions", "audio_hidden_states", "audio_attentions")


def build(case: ContractCase, path: str, tmp_path, attn_implementation: str | None = "eager", **config_kwargs):
    """The model of `case` built from its config, or saved and reloaded (`path="from_pretrained"`)."""
    torch.manual_seed(0)
    model = build_from_config(case, VOCAB, **config_kwargs)
    if path == "from_pretrained":
        model.save_pretrained(tmp_path / "saved")
        model = KlueWav2Vec2ForEmotion.from_pretrained(tmp_path / "saved", attn_implementation=attn_implementation)
    elif attn_implementation is not None:
        model.set_attn_implementation(attn_implementation)
    return model.eval()


def inputs_for(model, lengths=(9, 5), seconds=(1.0, 0.6)) -> dict:
    """A ragged batch: tokens with their mask; 16 kHz samples (or Whisper's log-mel frames) with theirs."""
    generator = torch.Generator().manual_seed(0)
    batch = {}
    if model.config.uses_text:
        ids = torch.randint(5, VOCAB, (len(lengths), max(lengths)), generator=generator)
        mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
        batch.update(input_ids=ids * mask, attention_mask=mask.long())
    if model.config.uses_audio:
        if model.config.is_whisper:
            frames = [int(100 * s) for s in seconds]
            features = torch.randn(len(frames), 80, max(frames), generator=generator)
            mask = torch.arange(max(frames))[None, :] < torch.tensor(frames)[:, None]
            batch.update(input_features=features * mask[:, None], audio_attention_mask=mask.long())
        else:
            samples = [int(16000 * s) for s in seconds]
            values = 0.1 * torch.randn(len(samples), max(samples), generator=generator)
            mask = torch.arange(max(samples))[None, :] < torch.tensor(samples)[:, None]
            batch.update(input_values=values * mask, audio_attention_mask=mask.long())
    return batch


def one_row(batch: dict, row: int) -> dict:
    """Row `row` of `batch`, cut to its real tokens / samples / frames."""
    out = {}
    for name, mask_name in (("input_ids", "attention_mask"), ("input_values", "audio_attention_mask"),
                            ("input_features", "audio_attention_mask")):
        if name in batch:
            length = int(batch[mask_name][row].sum())
            out[name] = batch[name][row:row + 1, ..., :length]
            out[mask_name] = batch[mask_name][row:row + 1, :length]
    return out


@contextlib.contextmanager
def captured_warnings():
    """Every warning logged by transformers, this package (installed or as remote code) or `warnings.warn`."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("transformers", "kemd_emotion", "transformers_modules")]
    for logger in loggers:
        logger.addHandler(handler)
    logging.Logger.warning_once.cache_clear()  # a message given once in another test would be given again here
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield records
        records.extend(str(warning.message) for warning in caught)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def close(left, right, atol=1e-5):
    assert left.shape == right.shape, (left.shape, right.shape)
    torch.testing.assert_close(left, right, atol=atol, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- hidden states, attentions
@pytest.mark.parametrize("path", ["config", "from_pretrained"])
@pytest.mark.parametrize("name", list(CASES))
def test_hidden_states_and_attentions_are_returned_per_encoder(name, path, tmp_path):
    case = CASES[name]
    model = build(case, path, tmp_path)
    batch = inputs_for(model)
    with torch.no_grad(), captured_warnings() as logged:
        plain = model(**batch)
        out = model(**batch, output_hidden_states=True, output_attentions=True)
    assert logged == []
    for field in ("logits", "regression", "fused_embeds"):
        assert torch.equal(out[field], plain[field]), field  # asking for more changes nothing else
    assert all(getattr(plain, field) is None for field in FIELDS)
    config = model.config
    if config.uses_text:
        text = config.text_config
        assert len(out.text_hidden_states) == text.num_hidden_layers + 1
        assert {h.shape for h in out.text_hidden_states} == {(2, batch["input_ids"].shape[1], text.hidden_size)}
        assert len(out.text_attentions) == text.num_hidden_layers
        tokens = batch["input_ids"].shape[1]
        assert {a.shape for a in out.text_attentions} == {(2, text.num_attention_heads, tokens, tokens)}
        padded_tokens = ~batch["attention_mask"].bool()[:, None, None, :]
        assert all(a.masked_select(padded_tokens).abs().max() == 0 for a in out.text_attentions)
    else:
        assert out.text_hidden_states is None and out.text_attentions is None
    if not config.uses_audio:
        assert out.audio_hidden_states is None and out.audio_attentions is None
        return
    frames = out.audio_hidden_states[0].shape[1]
    if case.audio_representation == "conv":
        assert len(out.audio_hidden_states) == 1 and out.audio_attentions == ()
        assert out.audio_hidden_states[0].shape == (2, frames, config.audio_config.conv_dim[-1])
        return
    layers = config.audio_config.num_hidden_layers
    heads = config.audio_config.num_attention_heads
    assert len(out.audio_hidden_states) == layers + 1 and len(out.audio_attentions) == layers
    assert {h.shape for h in out.audio_hidden_states} == {(2, frames, config.audio_config.hidden_size)}
    assert {a.shape for a in out.audio_attentions} == {(2, heads, frames, frames)}
    with torch.no_grad():
        _, frame_mask = model.audio_states(batch[config.audio_input_name], batch["audio_attention_mask"])
    assert not frame_mask.all()
    for attention in out.audio_attentions:  # padded frames are never attended to
        assert attention.masked_select(~frame_mask[:, None, None, :]).abs().max() == 0


@pytest.mark.parametrize("name", ["wav2vec2-group-hidden", "wav2vec2-layer-hidden", "wav2vec2-conv", "text-only"])
def test_states_equal_transformers_own_encoders(name, tmp_path):
    """On one unpadded clip, the fields hold exactly what `BertModel` / `Wav2Vec2Model(output_hidden_states=True,
    output_attentions=True)` give with the same weights (the conv features: its `extract_features`)."""
    case = CASES[name]
    model = build(case, "config", tmp_path)
    single = one_row(inputs_for(model), 0)
    with torch.no_grad():
        out = model(**single, output_hidden_states=True, output_attentions=True)
        if model.config.uses_text:
            bert = AutoModel.from_config(model.config.text_config)
            bert.load_state_dict(model.text_model.state_dict(), strict=False)
            bert.eval().set_attn_implementation("eager")
            own = bert(input_ids=single["input_ids"], output_hidden_states=True, output_attentions=True)
            for ours, theirs in zip(out.text_hidden_states + out.text_attentions, own.hidden_states + own.attentions,
                                    strict=True):
                close(ours, theirs)
        if not model.config.uses_audio:
            return
        wav2vec2 = AutoModel.from_config(model.config.audio_config)
        wav2vec2.load_state_dict(model.audio_model.state_dict(), strict=False)
        wav2vec2.eval().set_attn_implementation("eager")
        own = wav2vec2(single["input_values"], output_hidden_states=True, output_attentions=True)
    if case.audio_representation == "conv":
        close(out.audio_hidden_states[0], own.extract_features)
        return
    for ours, theirs in zip(out.audio_hidden_states + out.audio_attentions, own.hidden_states + own.attentions,
                            strict=True):
        close(ours, theirs)
    if model.config.audio_config.do_stable_layer_norm:  # as Wav2Vec2Model: the last state is before the final norm
        assert not torch.allclose(out.audio_hidden_states[-1], own.last_hidden_state)


def test_whisper_states_equal_whisper_encoder_on_30_seconds(tmp_path):
    """On 30 s of mel frames (what `WhisperEncoder.forward` takes), the fields are its own hidden states (the last
    after the final layer norm) and attentions."""
    model = build(CASES["whisper-hidden"], "config", tmp_path)
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[2, 7, 3]]), input_features=features, output_hidden_states=True,
                    output_attentions=True)
        own = model.audio_model(features, output_hidden_states=True, output_attentions=True)
    for ours, theirs in zip(out.audio_hidden_states + out.audio_attentions, own.hidden_states + own.attentions,
                            strict=True):
        close(ours, theirs, atol=1e-4)
    close(out.audio_hidden_states[-1], own.last_hidden_state, atol=1e-4)


@pytest.mark.parametrize("name", ["wav2vec2-group-hidden", "whisper-hidden"])
def test_real_positions_of_the_states_do_not_depend_on_padding(name, tmp_path):
    """Padded tokens / frames have states that mean nothing; the real ones are those of the row alone."""
    model = build(CASES[name], "config", tmp_path)
    batch = inputs_for(model)
    with torch.no_grad():
        together = model(**batch, output_hidden_states=True)
        alone = model(**one_row(batch, 1), output_hidden_states=True)
    for field in ("text_hidden_states", "audio_hidden_states"):
        for padded, single in zip(getattr(together, field), getattr(alone, field), strict=True):
            close(padded[1:2, : single.shape[1]], single, atol=1e-4)


def test_config_flags_are_the_defaults_and_arguments_win(tmp_path):
    model = build(CASES["wav2vec2-group-hidden"], "config", tmp_path)
    batch = inputs_for(model)
    model.config.output_hidden_states = True
    model.config.output_attentions = True  # allowed: the model runs eager attention
    with torch.no_grad():
        from_config = model(**batch)
        overridden = model(**batch, output_hidden_states=False, output_attentions=False)
    assert all(getattr(from_config, field) for field in FIELDS)
    assert all(getattr(overridden, field) is None for field in FIELDS)


def test_output_attentions_config_refuses_sdpa_as_transformers_does(tmp_path):
    model = build(CASES["wav2vec2-group-hidden"], "config", tmp_path, attn_implementation="sdpa")
    with pytest.raises(ValueError, match="Please set it to 'eager'"):
        model.config.output_attentions = True


@pytest.mark.parametrize("name", ["wav2vec2-group-hidden", "whisper-hidden"])
def test_attentions_under_sdpa_are_empty_with_a_warning(name, tmp_path):
    """As transformers' encoders: sdpa computes no weights; the tuples are empty and a warning says what to do."""
    model = build(CASES[name], "config", tmp_path, attn_implementation="sdpa")
    batch = inputs_for(model)
    with torch.no_grad(), captured_warnings() as logged:
        out = model(**batch, output_attentions=True, output_hidden_states=True)
    assert out.text_attentions == () and out.audio_attentions == ()
    assert len(out.text_hidden_states) == 3 and len(out.audio_hidden_states) == 3
    ours = [message for message in logged if "set_attn_implementation('eager')" in message]
    assert len(ours) == 1 and "text_attentions" in ours[0] and "audio_attentions" in ours[0] and "'sdpa'" in ours[0]


def test_return_dict_false_keeps_the_order_and_appends_the_new_fields(tmp_path):
    model = build(CASES["wav2vec2-group-hidden"], "config", tmp_path)
    batch = inputs_for(model)
    with torch.no_grad():
        default = model(**batch, return_dict=False)
        full = model(**batch, return_dict=False, output_hidden_states=True, output_attentions=True)
        as_dict = model(**batch, output_hidden_states=True, output_attentions=True)
    assert len(default) == 5 and len(full) == 9  # logits, regression, three embeddings; then the four tuples
    for left, right in zip(full[:5], default):
        assert torch.equal(left, right)
    for position, field in enumerate(FIELDS, start=5):
        assert len(full[position]) == len(getattr(as_dict, field))


def test_default_forward_installs_no_hooks(tmp_path):
    """Nothing is recorded unless asked: no hook stays on any module (the default path is the one exported)."""
    model = build(CASES["wav2vec2-weighted-cross"], "config", tmp_path)
    batch = inputs_for(model)
    with torch.no_grad():
        model(**batch, output_hidden_states=True, output_attentions=True)
        model(**batch)
    for module in model.audio_model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


# ----------------------------------------------------------------------------------------------- token embeddings
@pytest.mark.parametrize("text_encoder", ["bert", "electra"])
def test_token_embeddings_are_the_text_encoders_and_resize_round_trips(text_encoder, tmp_path):
    case = ContractCase("cat", "conv", "mean", "wav2vec2-group", text_encoder)
    model = build(case, "config", tmp_path)
    embeddings = model.get_input_embeddings()
    assert embeddings is model.text_model.get_input_embeddings() and embeddings.num_embeddings == VOCAB
    resized = model.resize_token_embeddings(VOCAB + 13, mean_resizing=False)
    assert resized is model.get_input_embeddings() and resized.num_embeddings == VOCAB + 13
    assert model.config.text_config.vocab_size == VOCAB + 13
    replacement = torch.nn.Embedding(VOCAB + 13, resized.embedding_dim)
    model.set_input_embeddings(replacement)
    assert model.text_model.get_input_embeddings() is replacement
    batch = inputs_for(model)
    batch["input_ids"][0, 0] = VOCAB + 12  # a new token
    model.save_pretrained(tmp_path / "resized")
    loaded = KlueWav2Vec2ForEmotion.from_pretrained(tmp_path / "resized").eval()
    assert loaded.get_input_embeddings().num_embeddings == VOCAB + 13
    assert loaded.config.text_config.vocab_size == VOCAB + 13
    with torch.no_grad():
        close(loaded(**batch).logits, model.eval()(**batch).logits)


def test_a_speech_only_model_has_no_token_embeddings(tmp_path):
    model = build(CASES["speech-only-whisper"], "config", tmp_path)
    for call in (model.get_input_embeddings, lambda: model.resize_token_embeddings(10),
                 lambda: model.set_input_embeddings(torch.nn.Embedding(3, 4))):
        with pytest.raises(NotImplementedError, match="fusion='speech' has no text encoder"):
            call()


# ----------------------------------------------------------------------------------------------- attention implementation
def implementations(model) -> set[str]:
    config = model.config
    found = {config._attn_implementation, config.text_config._attn_implementation,
             config.audio_config._attn_implementation}
    found |= {encoder.config._attn_implementation for encoder in (model.text_model, model.audio_model) if encoder}
    return found


@pytest.mark.parametrize("name", ["wav2vec2-group-hidden", "whisper-hidden", "text-only", "speech-only-whisper"])
def test_set_attn_implementation_records_the_choice_everywhere_without_warning(name, tmp_path):
    model = build(CASES[name], "config", tmp_path, attn_implementation=None)
    assert implementations(model) == {"sdpa"}
    batch = inputs_for(model)
    with torch.no_grad():
        sdpa = model(**batch).logits
    with captured_warnings() as logged:
        model.set_attn_implementation("eager")
    assert logged == [] and implementations(model) == {"eager"}
    with torch.no_grad():
        close(model(**batch).logits, sdpa)
    with captured_warnings() as logged:
        model.set_attn_implementation("sdpa")
    assert logged == [] and implementations(model) == {"sdpa"}
    # Saved and loaded: transformers does not write the implementation into config.json (a checkpoint must load where
    # another one cannot run); asked for at loading, it is on every config again, without a warning.
    model.set_attn_implementation("eager")
    model.save_pretrained(tmp_path / "eager")
    with captured_warnings() as logged:
        loaded = KlueWav2Vec2ForEmotion.from_pretrained(tmp_path / "eager", attn_implementation="eager")
        default = KlueWav2Vec2ForEmotion.from_pretrained(tmp_path / "eager")
    assert [message for message in logged if "attention" in message] == []
    assert implementations(loaded) == {"eager"} and implementations(default) == {"sdpa"}


def test_set_attn_implementation_that_cannot_run_changes_nothing(tmp_path):
    """transformers' own error (flash attention on a machine without it), and every config keeps its implementation."""
    if torch.cuda.is_available():
        pytest.skip("flash attention may run on this machine")
    model = build(CASES["wav2vec2-group-hidden"], "config", tmp_path, attn_implementation="eager")
    with pytest.raises(ImportError, match="FlashAttention2"):
        model.set_attn_implementation("flash_attention_2")
    assert implementations(model) == {"eager"}
