"""Configuration of the fused KLUE-BERT + wav2vec 2.0 emotion model.

This file is copied next to saved checkpoints (``trust_remote_code``): it may import only from transformers,
huggingface_hub and the other ``*_klue_wav2vec2`` / ``pipeline_emotion`` files, with single-dot imports.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import math
import numbers
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""The seven KEMDy emotion categories, in the order of the model's logits."""

REGRESSION_TARGETS: tuple[str, ...] = ("arousal", "valence")
"""The two regression outputs, in the order of ``regression`` (the corpus' 1-5 rater-mean scale)."""

FUSIONS = ("cat", "add", "text", "speech", "cross")
POOLINGS = ("mean", "last", "first")
AUDIO_REPRESENTATIONS = ("conv", "hidden", "weighted")
REGRESSION_LOSSES = ("mse", "ccc")
SUPPORTED_TEXT_MODEL_TYPES = ("bert", "roberta", "electra")
"""Text encoders the model is built and tested with: AutoModel encoders with token embeddings and `hidden_size`."""
WAV2VEC2_FAMILY = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
"""Speech encoders with wav2vec2's convolutional front end, feature projection and transformer encoder: they read
raw 16 kHz samples (`input_values`)."""
WHISPER = "whisper"
"""Whisper's encoder (any Whisper checkpoint; the decoder is dropped): it reads log-mel `input_features`."""
SUPPORTED_AUDIO_MODEL_TYPES = (*WAV2VEC2_FAMILY, WHISPER)
"""Speech encoders the model is built and tested with."""
WHISPER_AUDIO_REPRESENTATIONS = ("hidden", "weighted")
"""`audio_representation`s of a Whisper encoder: `"conv"` is wav2vec2's normalised convolutional output."""
AUTO = "auto"
"""`emotion_pos_weight="auto"`: weights computed from the training rows before training."""
DEFAULT_DECISION_THRESHOLD = 0.5
"""The score above which an emotion is predicted when neither the caller nor `config.decision_thresholds` sets one."""
MIN_AUDIO_SAMPLES = 400
"""The shortest clip (25 ms at 16 kHz) any speech encoder here is given: wav2vec2-base's receptive field (one
frame), and two of Whisper's 10 ms mel frames. A speech encoder with a wider receptive field needs more
(`min_audio_samples`)."""


def fusion_modalities(fusion: str) -> tuple[bool, bool]:
    """`(reads_text, reads_audio)` of a fusion: the one statement of which inputs each fusion reads.

    >>> fusion_modalities("text"), fusion_modalities("speech"), fusion_modalities("cat")
    ((True, False), (False, True), (True, True))
    """
    return fusion != "speech", fusion != "text"


def min_audio_samples(audio_config) -> int:
    """The shortest clip (samples at 16 kHz) the speech encoder of `audio_config` gives an output for: the receptive
    field of a wav2vec2-family conv stack (400 for wav2vec2-base), `MIN_AUDIO_SAMPLES` for Whisper."""
    if getattr(audio_config, "model_type", None) == WHISPER:
        return MIN_AUDIO_SAMPLES
    length = 1
    for kernel, stride in reversed(list(zip(audio_config.conv_kernel, audio_config.conv_stride))):
        length = (length - 1) * stride + kernel
    return length

# klue/bert-base and facebook/wav2vec2-base, so that a bare config describes the paper's model.
KLUE_BERT_BASE = {
    "model_type": "bert",
    "vocab_size": 32000,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "pad_token_id": 0,
}
WAV2VEC2_BASE = {
    "model_type": "wav2vec2",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "feat_extract_norm": "group",
    "do_stable_layer_norm": False,
    "conv_bias": False,
    "mask_time_prob": 0.05,
    "vocab_size": 32,
}


def forget_registered_custom_pipelines(config: PreTrainedConfig) -> None:
    """Drop the `custom_pipelines` entries of tasks this process has registered itself.

    A saved checkpoint names its copy of `pipeline_emotion.py` there, for processes where kemd_emotion is not
    installed (`trust_remote_code=True`). Where the package is imported the task is registered already, and
    transformers would otherwise refuse `pipeline("emotion-multimodal", model=DIR)` without `trust_remote_code=True`.
    """
    custom = getattr(config, "custom_pipelines", None)
    registry = getattr(sys.modules.get("transformers.pipelines"), "PIPELINE_REGISTRY", None)
    if not isinstance(custom, dict) or registry is None:
        return
    kept = {task: info for task, info in custom.items() if task not in registry.supported_tasks}
    if kept:
        config.custom_pipelines = kept
    else:
        del config.custom_pipelines


def audio_input_name(audio_config) -> str:
    """`"input_features"` for a Whisper speech encoder (log-mel frames), `"input_values"` for the wav2vec2 family."""
    return "input_features" if getattr(audio_config, "model_type", None) == WHISPER else "input_values"


def whisper_max_frames(audio_config) -> int:
    """The most mel frames a Whisper encoder takes: two per position (3000 = 30 s of 10 ms frames)."""
    return 2 * audio_config.max_source_positions


def divisors(number: int) -> list[int]:
    return [candidate for candidate in range(1, number + 1) if number % candidate == 0]


def check_choice(name: str, value, accepted) -> None:
    """Raise a ValueError naming ``name`` and listing the accepted values when ``value`` is not one of them."""
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not supported; expected one of {', '.join(map(repr, accepted))}.")


def positive_weights(value, num_labels: int) -> list[float] | str | None:
    """`emotion_pos_weight` checked and normalised: None, `"auto"`, or `num_labels` positive finite floats (a list).

    >>> positive_weights((1, 2.5), 2), positive_weights("auto", 7), positive_weights(None, 7)
    ([1.0, 2.5], 'auto', None)
    """
    if value is None or (isinstance(value, str) and value == AUTO):
        return value
    weights = _numbers(value, num_labels)
    if weights is None or not all(0 < weight < math.inf for weight in weights):
        raise ValueError(
            f"emotion_pos_weight={value!r} is not supported; expected {AUTO!r} (from the training rows), None (no "
            f"weighting) or {num_labels} positive numbers, one per emotion."
        )
    return weights


def thresholds_per_label(value, num_labels: int) -> list[float] | None:
    """`decision_thresholds` checked and normalised: None (0.5 for every emotion) or `num_labels` floats in (0, 1).

    >>> thresholds_per_label((0.25, 0.5), 2), thresholds_per_label(None, 7)
    ([0.25, 0.5], None)
    """
    if value is None:
        return None
    thresholds = _numbers(value, num_labels)
    if thresholds is None or not all(0 < threshold < 1 for threshold in thresholds):
        raise ValueError(
            f"decision_thresholds={value!r} is not supported; expected None (0.5 for every emotion) or {num_labels} "
            "numbers strictly between 0 and 1, one per emotion."
        )
    return thresholds


def _numbers(value, length: int) -> list[float] | None:
    """`value` as a list of `length` floats, or None when it is not a sequence of that many real numbers."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != length:
        return None
    if not all(isinstance(item, numbers.Real) and not isinstance(item, bool) for item in value):
        return None
    return [float(item) for item in value]


@strict
class KlueWav2Vec2EmotionConfig(PreTrainedConfig):
    r"""
    Configuration of [`KlueWav2Vec2ForEmotion`]: a text encoder (KLUE-BERT by default) and a wav2vec 2.0 speech
    encoder, each pooled over its real tokens/frames, fused, and topped by a 7-way multi-label emotion head and an
    arousal/valence regression head.

    Args:
        text_config (`PreTrainedConfig` or `dict`, *optional*):
            A BERT, RoBERTa or ELECTRA config (`SUPPORTED_TEXT_MODEL_TYPES`; default: a `BertConfig` shaped like
            `klue/bert-base`).
        audio_config (`PreTrainedConfig` or `dict`, *optional*):
            A Wav2Vec2 (group or layer norm, stable layer norm as XLS-R), HuBERT, WavLM or Data2VecAudio config, which
            read raw 16 kHz `input_values`; or a `WhisperConfig`, whose encoder alone is used and reads log-mel
            `input_features` (`SUPPORTED_AUDIO_MODEL_TYPES`; default: shaped like `facebook/wav2vec2-base`).
        fusion (`str`, defaults to `"cat"`):
            `"cat"` concatenates pooled text and speech vectors; `"add"` projects speech to the text width with one
            linear layer and adds; `"text"` / `"speech"` use one encoder only (the paper's unimodal rows); `"cross"`
            runs cross-modal attention between the token and frame sequences, pools each side and concatenates.
        pooling (`str`, defaults to `"mean"`):
            How a sequence becomes one vector: `"mean"` over real positions, `"last"` real position, or `"first"`
            ([CLS] for BERT). Padding never enters.
        audio_representation (`str`, defaults to `"hidden"`):
            `"hidden"`: the wav2vec2 transformer's last hidden state. `"conv"`: the paper's normalised convolutional
            features (`extract_features`, 512-d for wav2vec2-base); the transformer layers are then not built or run.
            `"weighted"`: a learned softmax-weighted sum (SUPERB) of the projected conv features (the transformer's
            input) and every transformer layer's output, the last one being the `"hidden"` state. A Whisper encoder
            takes `"hidden"` (after its final layer norm) and `"weighted"` (its convolutions' output with positions,
            then every layer's); `"conv"` is wav2vec2's and raises a ValueError.
        weighted_layer_norm (`bool`, defaults to `False`): with `"weighted"`, layer-normalise each frame of each
            layer (no parameters) before the sum, as s3prl's `--upstream_feature_normalize`; off, as s3prl's default.
        cross_attention_dim (`int`, *optional*): with `fusion="cross"`, the width both sequences are projected to
            (default: the text encoder's hidden size).
        cross_attention_heads (`int`, *optional*): attention heads of the cross layers; must divide
            `cross_attention_dim` (default: the text encoder's `num_attention_heads`).
        cross_attention_layers (`int`, defaults to 1): cross layers; in each, text tokens attend to speech frames and
            speech frames to text tokens (each side's padding masked), then residual + layer norm + feed-forward.
        cross_attention_intermediate_size (`int`, *optional*): feed-forward width (default: 4 x the width).
        cross_attention_dropout (`float`, defaults to 0.1): dropout on attention weights and residual branches.
        classifier_dropout (`float`, defaults to 0.1): dropout on the fused vector before both heads.
        emotion_loss_weight, regression_loss_weight (`float`): weights of the multi-label soft-margin loss and of
            the arousal/valence loss in the total loss.
        regression_loss (`str`, defaults to `"mse"`): `"mse"` or `"ccc"` (1 - concordance correlation, averaged over
            arousal and valence).
        regression_offset (`float`, defaults to 3.0): added to the regression head's output, so that a fresh head
            predicts the middle of the 1-5 rating scale.
        freeze_feature_encoder (`bool`, defaults to `False`): keep the convolutional feature encoder fixed (wav2vec2's
            seven conv layers; Whisper's two convolutions).
        asr_model (`str`, *optional*): id or folder of a speech-recognition model (e.g. `"openai/whisper-small"`)
            that `pipeline("emotion-multimodal")` uses to transcribe inputs given without text, when the caller
            passes no `asr_model`. Nothing is loaded until an input needs a transcript.
        emotion_pos_weight (`list[float]` or `"auto"`, *optional*): one weight per emotion on the positive term of
            the emotion loss, which is then the binary cross-entropy with logits averaged over emotions (None: the
            multi-label soft-margin loss, which is the same loss with every weight 1). `"auto"` stands for weights
            computed from the training rows (negatives / positives per emotion, clipped to [1, 10]): the
            `EmotionTrainer` and the experiment replace it by the numbers before training, so a saved model's
            config records the weights it trained with.
        decision_thresholds (`list[float]`, *optional*): per emotion, the score above which it is predicted
            (None: 0.5 for every emotion). Used wherever a label set is made (the pipeline's `labels`, the CLI, the
            demo, the reported F-scores); a row with no emotion above its threshold takes the emotion whose logit is
            furthest above (or least below) the logit of its threshold. Tuned on held-out rows by the experiment.
        output_hidden_states, output_attentions (`bool`, defaults to `False`; `PreTrainedConfig`'s): the defaults of
            the model's forward arguments of those names, which return each encoder's hidden states / attention weights
            (`text_hidden_states`, `audio_hidden_states`, `text_attentions`, `audio_attentions`). As in transformers,
            setting `output_attentions=True` on a config whose attention implementation is not eager raises.
        attn_implementation (`str`, *optional*): for both encoders (`model.set_attn_implementation` switches them
            later and records the choice here and on both sub-configs); not written to `config.json`, as in
            transformers: a loaded model takes `from_pretrained(..., attn_implementation=...)` or the default.

    Example:

    ```python
    >>> from kemd_emotion import KlueWav2Vec2EmotionConfig
    >>> config = KlueWav2Vec2EmotionConfig(fusion="add")
    >>> config.text_config.hidden_size, config.audio_config.conv_dim[-1], config.id2label[3]
    (768, 512, 'happy')

    ```
    """

    model_type = "klue-wav2vec2-emotion"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert", init_kwargs=KLUE_BERT_BASE),
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2", init_kwargs=WAV2VEC2_BASE),
    }

    text_config: PreTrainedConfig | dict | None = None
    audio_config: PreTrainedConfig | dict | None = None
    fusion: str = "cat"
    pooling: str = "mean"
    audio_representation: str = "hidden"
    # audio_representation="weighted" and fusion="cross" (see `check_weighted_and_cross`)
    weighted_layer_norm: bool = False
    cross_attention_dim: int | None = None
    cross_attention_heads: int | None = None
    cross_attention_layers: int = 1
    cross_attention_intermediate_size: int | None = None
    cross_attention_dropout: float = 0.1
    classifier_dropout: float = 0.1
    emotion_loss_weight: float = 1.0
    regression_loss_weight: float = 1.0
    regression_loss: str = "mse"
    regression_offset: float = 3.0
    freeze_feature_encoder: bool = False
    initializer_range: float = 0.02
    regression_targets: list[str] | tuple[str, ...] | None = None
    asr_model: str | None = None
    # Typed loosely on purpose: positive_weights / thresholds_per_label turn a wrong value into a ValueError that names
    # the option and what it accepts (the strict type check would raise a bare type error first).
    emotion_pos_weight: Any = None
    decision_thresholds: Any = None

    def __post_init__(self, **kwargs):
        # A sub-config given as an object is copied, never adopted: the base class sets `_attn_implementation` on
        # every sub-config (to None unless `attn_implementation=` is given), which used to reset the caller's config
        # (e.g. `model.config` of a loaded encoder) and drop the implementation it was loaded with.
        kept_attention = {}
        for key in self.sub_configs_defaults:
            sub_config = getattr(self, key)
            if isinstance(sub_config, PreTrainedConfig):
                kept_attention[key] = sub_config._attn_implementation
                setattr(self, key, copy.deepcopy(sub_config))
        requested_attention = kwargs.get("attn_implementation")
        if self.id2label is None:
            self.id2label = dict(enumerate(EMOTIONS))
            self.label2id = {label: i for i, label in enumerate(EMOTIONS)}
        if self.regression_targets is None:
            self.regression_targets = list(REGRESSION_TARGETS)
        if self.problem_type is None:
            self.problem_type = "multi_label_classification"
        super().__post_init__(**kwargs)
        if requested_attention is None:
            # Nothing asked for the whole model: each encoder keeps the attention it was configured or loaded with.
            for key, implementation in kept_attention.items():
                getattr(self, key)._attn_implementation_internal = implementation
        forget_registered_custom_pipelines(self)
        self.emotion_pos_weight = positive_weights(self.emotion_pos_weight, self.num_labels)
        self.decision_thresholds = thresholds_per_label(self.decision_thresholds, self.num_labels)
        self.check_values()

    def check_values(self) -> None:
        """Raise a ValueError listing the accepted values for any option set to something unsupported."""
        check_choice("fusion", self.fusion, FUSIONS)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("audio_representation", self.audio_representation, AUDIO_REPRESENTATIONS)
        check_choice("regression_loss", self.regression_loss, REGRESSION_LOSSES)
        check_choice("text_config.model_type", self.text_config.model_type, SUPPORTED_TEXT_MODEL_TYPES)
        check_choice("audio_config.model_type", self.audio_config.model_type, SUPPORTED_AUDIO_MODEL_TYPES)
        if self.is_whisper and self.audio_representation not in WHISPER_AUDIO_REPRESENTATIONS:
            raise ValueError(
                f"audio_representation={self.audio_representation!r} is not supported with a Whisper speech encoder "
                "(audio_config.model_type='whisper'): 'conv' is wav2vec2's normalised convolutional output; expected "
                f"one of {', '.join(map(repr, WHISPER_AUDIO_REPRESENTATIONS))}."
            )
        self.check_weighted_and_cross()
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(f"classifier_dropout={self.classifier_dropout!r} must be in [0, 1).")
        for name in ("emotion_loss_weight", "regression_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0.")
        if list(self.regression_targets) != list(REGRESSION_TARGETS):
            raise ValueError(
                f"regression_targets={self.regression_targets!r} is not supported; expected {list(REGRESSION_TARGETS)}."
            )
        positive_weights(self.emotion_pos_weight, self.num_labels)
        thresholds_per_label(self.decision_thresholds, self.num_labels)

    @property
    def uses_text(self) -> bool:
        """Whether the model reads the transcript (`fusion_modalities`)."""
        return fusion_modalities(self.fusion)[0]

    @property
    def uses_audio(self) -> bool:
        """Whether the model listens to the recording (`fusion_modalities`)."""
        return fusion_modalities(self.fusion)[1]

    @property
    def min_audio_samples(self) -> int:
        """The shortest clip (samples at 16 kHz) the speech encoder gives an output for (`min_audio_samples`)."""
        return min_audio_samples(self.audio_config)

    def thresholds_for(self, threshold: float | None = None) -> list[float]:
        """The decision threshold of each emotion, in label-id order: `threshold` for every emotion when given, else
        `decision_thresholds` (tuned on held-out rows), else `DEFAULT_DECISION_THRESHOLD`. The one statement of
        which threshold applies; the pipeline, the demo and the model card read it here."""
        if threshold is None:
            threshold = self.decision_thresholds
        if threshold is None:
            threshold = DEFAULT_DECISION_THRESHOLD
        if isinstance(threshold, numbers.Real):
            return [float(threshold)] * self.num_labels
        return [float(value) for value in threshold]

    def check_weighted_and_cross(self) -> None:
        """Raise a ValueError naming the option when a `"weighted"` / `"cross"` setting is unusable."""
        if not isinstance(self.weighted_layer_norm, bool):
            raise ValueError(f"weighted_layer_norm={self.weighted_layer_norm!r} must be True or False.")
        for name in ("cross_attention_dim", "cross_attention_heads", "cross_attention_layers",
                     "cross_attention_intermediate_size"):
            value = getattr(self, name)
            optional = name != "cross_attention_layers"
            if (value is None and not optional) or (
                value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1)
            ):
                raise ValueError(f"{name}={value!r} must be a positive whole number{' or None' if optional else ''}.")
        if not 0.0 <= self.cross_attention_dropout < 1.0:
            raise ValueError(f"cross_attention_dropout={self.cross_attention_dropout!r} must be in [0, 1).")
        if self.fusion == "cross" and self.cross_attention_width % self.cross_attention_num_heads:
            raise ValueError(
                f"cross_attention_dim={self.cross_attention_width} is not divisible by cross_attention_heads="
                f"{self.cross_attention_num_heads}; expected a width that is a multiple of the number of heads "
                f"(e.g. cross_attention_heads in {divisors(self.cross_attention_width)})."
            )

    @property
    def is_whisper(self) -> bool:
        """Whether the speech encoder is Whisper's (log-mel `input_features`) rather than a wav2vec2-family one."""
        return self.audio_config.model_type == WHISPER

    @property
    def audio_input_name(self) -> str:
        """The model input holding the speech: `"input_features"` (log-mel, Whisper) or `"input_values"` (samples)."""
        return audio_input_name(self.audio_config)

    @property
    def cross_attention_width(self) -> int:
        """The width both sequences are projected to for `fusion="cross"`."""
        return self.cross_attention_dim or self.text_config.hidden_size

    @property
    def cross_attention_num_heads(self) -> int:
        return self.cross_attention_heads or self.text_config.num_attention_heads

    @property
    def cross_attention_ffn_size(self) -> int:
        return self.cross_attention_intermediate_size or 4 * self.cross_attention_width

    @property
    def audio_embed_dim(self) -> int:
        """Width of the pooled speech vector: conv channels for "conv", hidden size for "hidden" and "weighted"."""
        if self.audio_representation == "conv":
            return self.audio_config.conv_dim[-1]
        return self.audio_config.hidden_size

    @property
    def text_embed_dim(self) -> int:
        return self.text_config.hidden_size

    @property
    def fused_dim(self) -> int:
        """Width of the fused vector that both heads read."""
        return {
            "cat": self.text_embed_dim + self.audio_embed_dim,
            "add": self.text_embed_dim,
            "text": self.text_embed_dim,
            "speech": self.audio_embed_dim,
            "cross": 2 * self.cross_attention_width,
        }[self.fusion]


# ---------------------------------------------------------------------------- loading keywords
AUTO_CLASS_KEYWORDS = frozenset({"trust_remote_code", "code_revision", "adapter_kwargs"})
"""Keywords that transformers' Auto classes add to a class's `from_pretrained` and that no loader signature names."""


def is_private_keyword(name: str) -> bool:
    """transformers' own plumbing (`_from_auto`, `_from_pipeline`, `_commit_hash`, ...): a leading underscore, never
    a user's option, and new ones come with new versions, so they are recognised by that convention."""
    return name.startswith("_")


@cache
def transformers_loading_keywords() -> frozenset[str]:
    """The public keywords transformers' loaders accept or pass along: the parameters of
    `PreTrainedModel.from_pretrained` and of its download (`transformers.utils.hub.cached_files`), read from the
    installed version's signatures so that a new version's additions come along, and `AUTO_CLASS_KEYWORDS`."""
    from transformers import PreTrainedModel
    from transformers.utils import hub

    loaders = (PreTrainedModel.from_pretrained, PreTrainedConfig.from_pretrained,
               getattr(hub, "cached_files", hub.cached_file))
    named = {
        parameter.name
        for loader in loaders
        for parameter in inspect.signature(loader).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and not is_private_keyword(parameter.name)
    }
    return frozenset(named - {"cls", "self", "pretrained_model_name_or_path", "path_or_repo_id", "filenames"}
                     | AUTO_CLASS_KEYWORDS)


def check_loading_keywords(owner: str, keywords: Mapping[str, Any], own: Iterable[str] = ()) -> None:
    """Refuse a keyword that is neither one of `owner`'s `own` options nor one transformers' loaders pass
    (`transformers_loading_keywords`, or private: `is_private_keyword`), naming it, a near spelling and the options.

    Raises:
        TypeError: e.g. `OnnxKlueWav2Vec2ForEmotion.from_pretrained got unexpected keyword(s) 'provder' (did you
            mean 'provider'?); it takes provider, ... and transformers' loading keywords (revision, token, ...).`
    """
    own = tuple(own)
    known = transformers_loading_keywords() | set(own)
    unknown = sorted(name for name in keywords if name not in known and not is_private_keyword(name))
    if not unknown:
        return
    described = []
    for name in unknown:
        near = difflib.get_close_matches(name, sorted(known), n=1)
        described.append(f"{name!r} (did you mean {near[0]!r}?)" if near else repr(name))
    raise TypeError(
        f"{owner} got unexpected keyword(s) {', '.join(described)}; it takes {', '.join(own) or 'no options'} and "
        "transformers' loading keywords (revision, token, cache_dir, local_files_only, ...)."
    )


__all__ = ["EMOTIONS", "REGRESSION_TARGETS", "KlueWav2Vec2EmotionConfig", "check_loading_keywords"]
