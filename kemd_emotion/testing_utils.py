"""Small encoders and an offline tokenizer, for tests, benchmarks and the main job's embedded default.

Nothing here touches the network: the encoders are random-initialised from configs and the WordPiece vocabulary
is trained on the texts you give it, deterministically (`kemd_emotion.wordpiece`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from transformers import BertConfig, BertTokenizer, Wav2Vec2Config, Wav2Vec2FeatureExtractor

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
    feat_extract_norm: str = "group", conv_channels: int = 16, hidden_size: int = 32, num_layers: int = 2, **kwargs
) -> Wav2Vec2Config:
    """A wav2vec2 with wav2vec2-base's conv kernels and strides (25 ms receptive field, 20 ms hop) but few channels.

    `feat_extract_norm="group"` is wav2vec2-base's group-norm feature encoder; `"layer"` that of wav2vec2-large-lv60.
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
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=feat_extract_norm == "layer",
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        mask_time_prob=0.05,
        mask_time_length=2,
        layerdrop=0.0,
        vocab_size=32,
    )
    settings.update(kwargs)
    return Wav2Vec2Config(**settings)


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


def tiny_processor(
    texts: Iterable[str] = DEFAULT_TEXTS, vocab_size: int = 1000, max_audio_seconds: float | None = 5.0, **kwargs
) -> KlueWav2Vec2Processor:
    """A processor whose tokenizer was trained on `texts`; `kwargs` go to the processor."""
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
    return KlueWav2Vec2Processor(feature_extractor, tokenizer, max_audio_seconds=max_audio_seconds, **kwargs)


ASR_CHARACTERS = "화나요정말좋네"
"""The letters the tiny speech recogniser can write (all in `DEFAULT_TEXTS`, so the tiny tokenizer knows them)."""


def tiny_speech_recognizer(
    save_dir: str | Path, speaks: str = "화나", seed: int = 0, sampling_rate: int = 16000
) -> Path:
    """Save a random-init `Wav2Vec2ForCTC` with a Korean character vocabulary and its processor to `save_dir`.

    `pipeline("automatic-speech-recognition", model=save_dir)` then writes, from any clip, a string of the letters
    in `speaks` (its output head is biased towards them; which one wins a frame depends on the audio, so different
    clips read differently). `speaks=""` gives a recogniser that never hears a word (every frame is blank).
    Its feature encoder has layer norm and an attention mask, like wav2vec2-large-lv60 models; it hears
    `sampling_rate` audio.
    """
    import json

    import torch
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC, Wav2Vec2Processor

    directory = Path(save_dir)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{char: 3 + i for i, char in enumerate(ASR_CHARACTERS)}}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(directory / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=sampling_rate, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(tiny_audio_config("layer", vocab_size=len(vocab), pad_token_id=0)).eval()
    with torch.no_grad():
        model.lm_head.bias.fill_(-10.0)
        for char in speaks:
            model.lm_head.bias[vocab[char]] = 5.0
        if not speaks:
            model.lm_head.bias[vocab["<pad>"]] = 50.0  # the CTC blank
    model.save_pretrained(directory)
    Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


__all__ = [
    "tiny_speech_recognizer",
    "tiny_text_config",
    "tiny_audio_config",
    "tiny_config",
    "train_wordpiece_tokenizer",
    "tiny_processor",
]
