"""The contract tests' matrix: the encoder kinds the tests build, the model variants and the ways to build them.

tests/test_contracts.py (and test_encoder_kinds, test_onnx, test_real_weights, test_model_conventions,
test_full_size_encoders) build every `ContractCase` on each of `CONSTRUCTION_PATHS`: from a config
(`build_from_config`), from encoder folders saved as the real checkpoints are (`save_encoder_folders`,
`build_from_encoder_folders`, `processor_for_encoders`), after save_pretrained -> from_pretrained, and through
`trust_remote_code`. The encoders are the small random-init ones of `kemd_emotion.small_encoders`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, Wav2Vec2Config, Wav2Vec2FeatureExtractor

from kemd_emotion.configuration_klue_wav2vec2 import (
    AUDIO_REPRESENTATIONS,
    FUSIONS,
    KLUE_BERT_BASE,
    POOLINGS,
    KlueWav2Vec2EmotionConfig,
)
from kemd_emotion.processing_klue_wav2vec2 import KlueWav2Vec2Processor
from kemd_emotion.small_encoders import (
    DEFAULT_TEXTS,
    tiny_audio_config,
    tiny_electra_config,
    tiny_roberta_config,
    tiny_text_config,
    tiny_whisper_config,
    train_byte_level_bpe_tokenizer,
    train_wordpiece_tokenizer,
    whisper_feature_extractor,
)

WAV2VEC2_BASE_FEATURE_EXTRACTOR = dict(
    feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
)
"""facebook/wav2vec2-base's `preprocessor_config.json`: it does not return an attention mask."""

TEXT_ENCODERS: dict[str, Callable[..., object]] = {
    "bert": tiny_text_config,  # klue/bert-base
    "roberta": tiny_roberta_config,  # klue/roberta-base: one token type, position ids after the padding id
    "electra": tiny_electra_config,  # beomi/KcELECTRA-base: embeddings narrower than the layers (in -small)
}
"""Text encoder kinds the tests build, by name -> tiny config builder (taking `vocab_size` and `pad_token_id`): one
per `SUPPORTED_TEXT_MODEL_TYPES`."""

TEXT_TOKENIZERS: dict[str, str] = {"bert": "wordpiece", "roberta": "byte-level-bpe", "electra": "wordpiece"}
"""The tokenizer each text encoder's folder gets: a cased WordPiece one (KLUE's and KcELECTRA's kind), or a
byte-level BPE one (RoBERTa's own kind, without token_type_ids; klue/roberta-base itself ships a WordPiece one)."""

AUDIO_ENCODERS: dict[str, Callable[..., object]] = {
    "wav2vec2-group": lambda: tiny_audio_config("group"),  # wav2vec2-base: GroupNorm over time in the first layer
    "wav2vec2-layer": lambda: tiny_audio_config("layer"),  # wav2vec2-large-lv60 / XLS-R: LayerNorm in every layer
    "hubert": lambda: tiny_audio_config("group", model_type="hubert"),  # hubert-base (team-lucid/hubert-base-korean)
    "wavlm": lambda: tiny_audio_config("group", model_type="wavlm"),  # wavlm-base-plus: gated relative position bias
    "data2vec-audio": lambda: tiny_audio_config(model_type="data2vec-audio"),  # stacked positional convolutions
    "whisper": tiny_whisper_config,  # openai/whisper-*: log-mel input, two convolutions, 30 s of positions
}
"""Speech encoder kinds the tests build, by name -> tiny config builder: every `SUPPORTED_AUDIO_MODEL_TYPES`."""

MATRIX_TEXT_ENCODERS = ("bert",)
MATRIX_AUDIO_ENCODERS = ("wav2vec2-group", "wav2vec2-layer")
"""The encoders `contract_cases()` crosses with every option; the other kinds are covered by `ENCODER_CASES`."""

PAPER_FUSIONS = ("cat", "add", "text", "speech")
PAPER_AUDIO_REPRESENTATIONS = ("conv", "hidden")
"""The seed paper's options: `contract_cases()` crosses them with every pooling; later options get mean pooling."""

CONSTRUCTION_PATHS = ("config", "pretrained_encoders", "from_pretrained", "remote_code")
"""The ways a user gets the model: `KlueWav2Vec2ForEmotion(config)`; `from_text_audio_pretrained` over encoder
folders; `save_pretrained` -> `from_pretrained`; and `trust_remote_code` in a process where kemd_emotion cannot be
imported."""


@dataclass(frozen=True)
class ContractCase:
    """One model variant of the contract tests: the config options that change its computation."""

    fusion: str = "cat"
    audio_representation: str = "hidden"
    pooling: str = "mean"
    audio_encoder: str = "wav2vec2-group"
    text_encoder: str = "bert"
    options: tuple[tuple[str, object], ...] = field(default=())
    """Further config options, as sorted (name, value) pairs (hashable)."""

    @property
    def id(self) -> str:
        parts = [self.fusion, self.text_encoder if self.fusion != "speech" else None]
        if self.fusion != "text":
            parts += [self.audio_encoder, self.audio_representation]
        parts += [self.pooling, *(f"{name}={value}" for name, value in self.options)]
        return "-".join(part for part in parts if part)

    @property
    def config_kwargs(self) -> dict:
        return {"fusion": self.fusion, "audio_representation": self.audio_representation, "pooling": self.pooling,
                **dict(self.options)}

    def with_options(self, **options) -> "ContractCase":
        return ContractCase(self.fusion, self.audio_representation, self.pooling, self.audio_encoder,
                            self.text_encoder, tuple(sorted({**dict(self.options), **options}.items())))


def contract_cases(
    fusions: Iterable[str] = FUSIONS,
    audio_representations: Iterable[str] = AUDIO_REPRESENTATIONS,
    poolings: Iterable[str] = POOLINGS,
    audio_encoders: Iterable[str] = MATRIX_AUDIO_ENCODERS,
    text_encoders: Iterable[str] = MATRIX_TEXT_ENCODERS,
) -> list[ContractCase]:
    """Every combination of the given options that is a different model (a text-only model has no speech options),
    except that the options added after the paper (`fusion="cross"`, `audio_representation="weighted"`) run with
    the first pooling only ("mean"): pooling is one function for all of them, and the whole product would double the
    contract tests' time.

    The defaults follow the config's accepted values, so a new fusion or audio representation is covered by every
    contract test once it is added there; the other encoder kinds of AUDIO_ENCODERS / TEXT_ENCODERS get
    `ENCODER_CASES`.
    """
    poolings = tuple(poolings)
    cases = {}
    for fusion, representation, pooling, audio, text in itertools.product(
        fusions, audio_representations, poolings, audio_encoders, text_encoders
    ):
        paper = fusion in PAPER_FUSIONS and (fusion == "text" or representation in PAPER_AUDIO_REPRESENTATIONS)
        if paper or pooling == poolings[0]:
            case = ContractCase(fusion, representation, pooling, audio, text)
            cases.setdefault(case.id, case)
    return list(cases.values())


ENCODER_CASES = [
    ContractCase("cat", "hidden", "mean", "hubert", "roberta"),
    ContractCase("cross", "weighted", "mean", "wavlm", "electra"),
    ContractCase("add", "weighted", "last", "data2vec-audio", "bert"),
]
"""One model per encoder kind outside the matrix (each pairs a text and a speech kind, so three models cover five
kinds): the contract tests check on them padding invariance, the same outputs on every construction path (saved
folders, from_pretrained, remote code), training with checkpointing and torch.export."""

WHISPER_CASES = [
    ContractCase("cat", "hidden", "mean", "whisper", "bert"),
    ContractCase("cross", "weighted", "mean", "whisper", "roberta"),
    ContractCase("speech", "weighted", "last", "whisper"),
]
"""Whisper's encoder (log-mel `input_features`, its own feature extractor) with both of its representations, three
fusions and two poolings: the contract tests run them on every construction path, with the checks of
`ENCODER_CASES`."""

FEATURE_ENCODER_PREFIXES = {"whisper": ("audio_model.conv1.", "audio_model.conv2.")}
"""Parameter-name prefixes of each speech encoder kind's convolutional front end (what `freeze_feature_encoder`
freezes), where they are not wav2vec2's `audio_model.feature_extractor.`."""


def is_feature_encoder_parameter(name: str, audio_encoder: str) -> bool:
    """Whether the fused model's parameter `name` belongs to the convolutional front end of `audio_encoder`."""
    return name.startswith(FEATURE_ENCODER_PREFIXES.get(audio_encoder, ("audio_model.feature_extractor.",)))


def audio_family(audio_encoder: str) -> str:
    """`"whisper"` or `"wav2vec2"`: which feature extractor (and so which processor) a speech encoder kind needs."""
    return "whisper" if audio_encoder == "whisper" else "wav2vec2"


FULL_SIZE_TEXT_ENCODERS: dict[str, Callable[..., object]] = {
    "klue-bert-base": lambda vocab_size, pad_token_id=0: AutoConfig.for_model(**KLUE_BERT_BASE),  # 32000 embeddings, whatever the vocab
}
FULL_SIZE_AUDIO_ENCODERS: dict[str, Callable[..., object]] = {"wav2vec2-base": Wav2Vec2Config}
"""The real checkpoints' shapes (klue/bert-base; the default Wav2Vec2Config is wav2vec2-base's), for the slow test."""


def save_encoder_folders(
    directory: str | os.PathLike,
    texts: Iterable[str] = DEFAULT_TEXTS,
    vocab_size: int = 300,
    seed: int = 0,
    text_encoders: dict[str, Callable[..., object]] | None = None,
    audio_encoders: dict[str, Callable[..., object]] | None = None,
) -> dict[str, Path]:
    """Save random-init encoders as `from_pretrained` folders, laid out as klue/bert-base and wav2vec2-base are.

    `directory/{name}` for every text encoder (default TEXT_ENCODERS: name -> config builder taking `vocab_size` and
    `pad_token_id`): the model with its pooler, and a tokenizer trained on `texts` (TEXT_TOKENIZERS: WordPiece saved
    with `do_lower_case=False`, as KLUE's; or byte-level BPE, as RoBERTa's); and for every audio encoder (default
    AUDIO_ENCODERS): the model and wav2vec2-base's feature extractor settings (`return_attention_mask=False`,
    `do_normalize=True`). Returns `{name: folder}`.
    """
    import torch
    from transformers import AutoModel

    directory = Path(directory)
    texts = list(texts)
    trainers = {"wordpiece": train_wordpiece_tokenizer, "byte-level-bpe": train_byte_level_bpe_tokenizer}
    tokenizers = {}
    folders = {}
    for name, build in (text_encoders or TEXT_ENCODERS).items():
        kind = TEXT_TOKENIZERS.get(name, "wordpiece")
        if kind not in tokenizers:
            tokenizers[kind] = trainers[kind](texts, vocab_size=vocab_size)
        tokenizer = tokenizers[kind]
        torch.manual_seed(seed)
        AutoModel.from_config(build(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)).save_pretrained(
            directory / name)
        tokenizer.save_pretrained(directory / name)
        folders[name] = directory / name
    for name, build in (audio_encoders or AUDIO_ENCODERS).items():
        torch.manual_seed(seed)
        config = build()
        if config.model_type == "whisper":
            # As openai/whisper-* are saved: the whole speech recogniser (the fused model keeps the encoder) and
            # its WhisperFeatureExtractor (preprocessor_config.json).
            from transformers import WhisperForConditionalGeneration

            WhisperForConditionalGeneration(config).save_pretrained(directory / name)
            whisper_feature_extractor(config).save_pretrained(directory / name)
        else:
            AutoModel.from_config(config).save_pretrained(directory / name)
            Wav2Vec2FeatureExtractor(**WAV2VEC2_BASE_FEATURE_EXTRACTOR).save_pretrained(directory / name)
        folders[name] = directory / name
    return folders


def processor_for_encoders(
    text_model_path: str | os.PathLike, audio_model_path: str | os.PathLike, **kwargs
) -> KlueWav2Vec2Processor:
    """The processor a user builds around two pretrained encoders: their own tokenizer and feature extractor, loaded
    with the Auto classes and their saved settings (`kwargs` go to the processor)."""
    from transformers import AutoFeatureExtractor, AutoTokenizer

    return KlueWav2Vec2Processor(
        AutoFeatureExtractor.from_pretrained(audio_model_path), AutoTokenizer.from_pretrained(text_model_path), **kwargs
    )


def build_from_encoder_folders(case: ContractCase, folders: dict[str, Path], seed: int = 0, **kwargs):
    """Path "pretrained_encoders": `from_text_audio_pretrained` over the folders of `save_encoder_folders`, heads
    initialised from `seed`; `kwargs` go to `from_text_audio_pretrained` (dtype, attn_implementation, ...)."""
    import torch

    from kemd_emotion.modeling_klue_wav2vec2 import KlueWav2Vec2ForEmotion

    torch.manual_seed(seed)
    return KlueWav2Vec2ForEmotion.from_text_audio_pretrained(
        str(folders[case.text_encoder]), str(folders[case.audio_encoder]), **case.config_kwargs, **kwargs
    ).eval()


def build_from_config(case: ContractCase, vocab_size: int, state_dict=None, **config_kwargs):
    """Path "config": `KlueWav2Vec2ForEmotion(config)` with the encoder configs of `save_encoder_folders` and, when
    given, the weights of `state_dict` (so that it is the same model as one built on another path)."""
    from kemd_emotion.modeling_klue_wav2vec2 import KlueWav2Vec2ForEmotion

    config = KlueWav2Vec2EmotionConfig(
        text_config=TEXT_ENCODERS[case.text_encoder](vocab_size=vocab_size),
        audio_config=AUDIO_ENCODERS[case.audio_encoder](),
        **case.config_kwargs,
        **config_kwargs,
    )
    model = KlueWav2Vec2ForEmotion(config)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model.eval()
