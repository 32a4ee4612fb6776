"""The embedded default's small random-init encoders, and their tokenizers and feature extractors, built offline.

When `examples/run_emotion.py` (`make run`) is given no pretrained encoders, it trains the fused model over a tiny
BERT and a tiny wav2vec2 built here (`kemd_emotion.experiment.fold`), with a WordPiece vocabulary trained on the
corpus' own texts (`kemd_emotion.experiment.preparation`). Tests and benchmarks build their small models from the
same functions.

Nothing here touches the network: the encoders are random-initialised from configs and the WordPiece vocabulary
is trained on the texts you give it, deterministically (`kemd_emotion.wordpiece`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from transformers import AutoConfig, BertConfig, BertTokenizer, Wav2Vec2FeatureExtractor

from .configuration_klue_wav2vec2 import KlueWav2Vec2EmotionConfig
from .processing_klue_wav2vec2 import KlueWav2Vec2Processor

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DEFAULT_TEXTS = (
    "안녕하세요 오늘 날씨가 정말 좋네요",
    "그건 너무 화가 나요 정말 싫어요",
    "음 글쎄요 잘 모르겠어요",
    "와 진짜 신기하다 대박",
    "슬퍼서 눈물이 났어요",
)


def tiny_text_config(vocab_size: int = 1000, hidden_size: int = 32, num_layers: int = 2, **kwargs) -> BertConfig:
    """A BERT shaped like klue/bert-base but tiny (2 layers, 32 wide)."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=256,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        **kwargs,
    )


def tiny_audio_config(
    feat_extract_norm: str = "group", conv_channels: int = 16, hidden_size: int = 32, num_layers: int = 2,
    model_type: str = "wav2vec2", **kwargs,
):
    """A wav2vec2-family speech encoder with wav2vec2-base's conv kernels and strides (25 ms receptive field, 20 ms
    hop) but few channels.

    `feat_extract_norm="group"` is wav2vec2-base's group-norm feature encoder; `"layer"` that of wav2vec2-large-lv60
    and XLS-R (with the stable-layer-norm transformer). `model_type` may be any of `SUPPORTED_AUDIO_MODEL_TYPES`:
    `"hubert"` and `"wavlm"` take the same options; `"data2vec-audio"` always has layer-norm conv layers and a post-norm
    transformer, and gets two stacked positional convolutions (the real ones have five).
    """
    settings = dict(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(conv_channels,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=feat_extract_norm == "layer",
        num_conv_pos_embedding_groups=2,
        mask_time_prob=0.05,
        mask_time_length=2,
        layerdrop=0.0,
        vocab_size=32,
    )
    if model_type == "data2vec-audio":
        settings.update(num_conv_pos_embeddings=2, conv_pos_kernel_size=5, conv_bias=True)
    else:
        settings.update(num_conv_pos_embeddings=16, feat_extract_norm=feat_extract_norm,
                        do_stable_layer_norm=feat_extract_norm == "layer")
    if model_type == "wavlm":
        settings.update(num_buckets=32, max_bucket_distance=64)
    settings.update(kwargs)
    return AutoConfig.for_model(model_type, **settings)


def tiny_whisper_config(d_model: int = 32, num_layers: int = 2, num_mel_bins: int = 80, **kwargs):
    """A `WhisperConfig` laid out as openai/whisper-base's (80 mel bins, two convolutions, 1500 positions = 30 s,
    pre-norm layers), tiny: 2 encoder layers 32 wide, one decoder layer over a 64-token vocabulary (the fused model
    keeps only the encoder)."""
    from transformers import WhisperConfig

    settings = dict(
        d_model=d_model, encoder_layers=num_layers, encoder_attention_heads=2, encoder_ffn_dim=2 * d_model,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=2 * d_model, num_mel_bins=num_mel_bins,
        max_source_positions=1500, max_target_positions=64, vocab_size=64, pad_token_id=1, bos_token_id=2,
        eos_token_id=3, decoder_start_token_id=2, dropout=0.1, attention_dropout=0.1, suppress_tokens=None,
        begin_suppress_tokens=None,
    )
    settings.update(kwargs)
    return WhisperConfig(**settings)


def whisper_feature_extractor(config=None):
    """openai/whisper-base's `WhisperFeatureExtractor` settings (80 mel bins, 10 ms hop, 30 s chunks), with the
    number of mel bins of `config` when given."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=getattr(config, "num_mel_bins", 80), sampling_rate=16000,
                                   hop_length=160, chunk_length=30, n_fft=400, padding_value=0.0)


def tiny_roberta_config(vocab_size: int = 1000, hidden_size: int = 32, num_layers: int = 2, pad_token_id: int = 1,
                        **kwargs):
    """A RoBERTa as klue/roberta-base is laid out (one token type; position ids offset by the padding id), tiny."""
    return AutoConfig.for_model(
        "roberta", vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=2,
        intermediate_size=2 * hidden_size, max_position_embeddings=256 + pad_token_id + 1, type_vocab_size=1,
        pad_token_id=pad_token_id, bos_token_id=0, eos_token_id=2, **kwargs,
    )


def tiny_electra_config(vocab_size: int = 1000, hidden_size: int = 32, num_layers: int = 2, **kwargs):
    """An ELECTRA discriminator whose embeddings are narrower than its layers, as KcELECTRA-small's (tiny)."""
    return AutoConfig.for_model(
        "electra", vocab_size=vocab_size, embedding_size=hidden_size // 2, hidden_size=hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=2, intermediate_size=2 * hidden_size,
        max_position_embeddings=256, **kwargs,
    )


def tiny_config(
    fusion: str = "cat", feat_extract_norm: str = "group", vocab_size: int = 1000, **kwargs
) -> KlueWav2Vec2EmotionConfig:
    """A [`KlueWav2Vec2EmotionConfig`] over tiny encoders; `kwargs` go to the fused config."""
    return KlueWav2Vec2EmotionConfig(
        text_config=tiny_text_config(vocab_size=vocab_size),
        audio_config=tiny_audio_config(feat_extract_norm),
        fusion=fusion,
        **kwargs,
    )


def train_wordpiece_tokenizer(
    texts: Iterable[str], vocab_size: int = 1000, save_dir: str | Path | None = None
) -> BertTokenizer:
    """Train a cased WordPiece vocabulary on `texts` offline and return a BERT tokenizer over it.

    The tokenizer keeps Hangul intact (no lower-casing, no accent stripping), as KLUE's does. The vocabulary is
    deterministic (`kemd_emotion.wordpiece`): the same texts give the same ``vocab.txt`` and ``tokenizer.json``,
    byte for byte, in any process (the `tokenizers` trainer breaks ties in a per-process random order).
    """
    from .wordpiece import train_wordpiece_vocabulary

    vocabulary = train_wordpiece_vocabulary(texts, vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                            limit_alphabet=2000, min_frequency=1)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(save_dir) if save_dir is not None else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "vocab.txt").write_text("".join(piece + "\n" for piece in vocabulary), encoding="utf-8")
        tokenizer = BertTokenizer(
            vocab=str(directory / "vocab.txt"), do_lower_case=False, strip_accents=False, model_max_length=512
        )
    return tokenizer


def train_byte_level_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 1000):
    """Train a byte-level BPE vocabulary on `texts` offline and return a RoBERTa tokenizer over it (`<s>`=0,
    `<pad>`=1, `</s>`=2: RoBERTa's ids). It makes no `token_type_ids`, as RoBERTa's does not; trained once and saved,
    it gives the same ids in any process (training twice may break frequency ties differently)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import RobertaTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(list(texts), trainer)
    merges = [tuple(merge) for merge in json.loads(bpe.to_str())["model"]["merges"]]
    return RobertaTokenizer(vocab=bpe.get_vocab(), merges=merges, model_max_length=512)


def tiny_processor(
    texts: Iterable[str] = DEFAULT_TEXTS, vocab_size: int = 1000, max_audio_seconds: float | None = 5.0, **kwargs
) -> KlueWav2Vec2Processor:
    """A processor whose tokenizer was trained on `texts`; `kwargs` go to the processor."""
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
    return KlueWav2Vec2Processor(feature_extractor, tokenizer, max_audio_seconds=max_audio_seconds, **kwargs)


def tiny_whisper_processor(
    texts: Iterable[str] = DEFAULT_TEXTS, vocab_size: int = 1000, max_audio_seconds: float | None = 5.0, **kwargs
) -> KlueWav2Vec2Processor:
    """[`tiny_processor`] with whisper-base's `WhisperFeatureExtractor` (80 mel bins): for Whisper-encoder models."""
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
    return KlueWav2Vec2Processor(whisper_feature_extractor(), tokenizer, max_audio_seconds=max_audio_seconds, **kwargs)


__all__ = [
    "SPECIAL_TOKENS",
    "DEFAULT_TEXTS",
    "tiny_text_config",
    "tiny_audio_config",
    "tiny_whisper_config",
    "whisper_feature_extractor",
    "tiny_roberta_config",
    "tiny_electra_config",
    "tiny_config",
    "train_wordpiece_tokenizer",
    "train_byte_level_bpe_tokenizer",
    "tiny_processor",
    "tiny_whisper_processor",
]
