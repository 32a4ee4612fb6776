"""KLUE-BERT + wav2vec 2.0 (or another BERT/RoBERTa/ELECTRA text encoder and a HuBERT/WavLM/Data2VecAudio speech
encoder, or Whisper's encoder) fused for multi-label emotion and arousal/valence regression.

This file is copied next to saved checkpoints (``trust_remote_code``): it may import only from torch,
transformers and the other ``*_klue_wav2vec2`` files, with single-dot imports.

Padding is the thing to get right here. Every pooled vector is computed from real tokens / frames only, and
wav2vec2's group-norm feature encoder (wav2vec2-base), whose first layer normalises each channel over *time*,
gets its statistics from the real frames only; Data2VecAudio's stacked positional convolutions see zeros on padded
frames, as the clip alone would; cross-modal attention never attends to a padded token or frame; Whisper's encoder runs at the batch's longest clip
(not 30 s) with its convolutions seeing zeros past each clip and its attention masked. So an utterance
gives the same outputs alone and padded inside a batch of longer ones, whichever encoders the checkpoint has.

The forward pass has no Python branch on tensor values, so `torch.export`, `torch.jit.trace` and
`torch.compile(fullgraph=True)` capture it whole. Checks on values (clip lengths, batch sizes) run in eager mode only;
a traced graph relies on the processor, which refuses clips shorter than the speech encoder's receptive field.

Each encoder's hidden states and attention weights (`output_hidden_states` / `output_attentions`, transformers'
conventions) come from the text encoder's own outputs and from speech-encoder forward hooks that exist only while a
pass that asked for them runs: the default pass, the one exported, computes nothing more than before.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.whisper.modeling_whisper import WhisperEncoder, sinusoids
from transformers.utils import ModelOutput, is_tracing, logging

from .configuration_klue_wav2vec2 import (
    SUPPORTED_AUDIO_MODEL_TYPES,
    SUPPORTED_TEXT_MODEL_TYPES,
    KlueWav2Vec2EmotionConfig,
    fusion_modalities,
    whisper_max_frames,
)

logger = logging.get_logger(__name__)


@dataclass
class KlueWav2Vec2EmotionOutput(ModelOutput):
    """
    Output of [`KlueWav2Vec2ForEmotion`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): weighted sum of `emotion_loss` and `regression_loss`
            (only the terms whose labels were given).
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`): emotion logits (apply a sigmoid for
            per-emotion probabilities; labels are multi-hot).
        regression (`torch.FloatTensor` of shape `(batch_size, 2)`): arousal then valence, on the corpus' 1-5 scale.
        emotion_loss (`torch.FloatTensor` of shape `()`, *optional*): multi-label soft-margin loss on `logits`
            (positive terms weighted by `config.emotion_pos_weight` when it is set).
        regression_loss (`torch.FloatTensor` of shape `()`, *optional*): MSE, or 1 - CCC averaged over both targets.
        text_embeds (`torch.FloatTensor` of shape `(batch_size, text_hidden_size)`, *optional*): pooled text vector.
        audio_embeds (`torch.FloatTensor` of shape `(batch_size, audio_embed_dim)`, *optional*): pooled speech vector
            (`conv_dim[-1]` wide for `audio_representation="conv"`, `hidden_size` for `"hidden"` and `"weighted"`).
        fused_embeds (`torch.FloatTensor` of shape `(batch_size, fused_dim)`): the vector both heads read (for
            `fusion="cross"`: the pooled outputs of the cross layers, text then speech; `text_embeds` and
            `audio_embeds` stay the pooled encoder outputs).
        text_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True` is passed
            or `config.output_hidden_states=True`): the text encoder's hidden states as transformers' `BertModel` (or
            RoBERTa, ELECTRA) returns them: the embedding output, then each layer's output, `num_hidden_layers + 1`
            tensors of shape `(batch_size, tokens, text_hidden_size)`. States of padded tokens are computed but mean
            nothing (every pooled vector ignores them).
        text_attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True` is passed or
            `config.output_attentions=True`): one tensor per text layer, `(batch_size, num_heads, tokens, tokens)`, the
            softmax weights. Only eager attention computes them: under `"sdpa"` (the default) the tuple is empty and a
            warning says so, as in transformers; call `model.set_attn_implementation("eager")` first.
        audio_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned as `text_hidden_states`): the speech
            encoder's hidden states as transformers' own model returns them, `(batch_size, frames, hidden_size)` each:
            for the wav2vec2 family the first transformer layer's input (after the positional convolution) and each
            layer's output (`num_hidden_layers + 1`; as `Wav2Vec2Model`, the last one is before the final layer norm
            of stable-layer-norm encoders); for Whisper the first layer's input (convolutions + positions) and each
            layer's output, the last one after the final layer norm (`encoder_layers + 1`; the batch runs at its
            longest clip's length, not 30 s). With `audio_representation="conv"` the transformer layers are not built:
            the one state is the normalised convolutional features that are pooled, `(batch_size, frames,
            conv_dim[-1])`. A layer skipped by LayerDrop (training only) repeats the state before it. Padded frames
            are computed but mean nothing.
        audio_attentions (`tuple(torch.FloatTensor)`, *optional*, returned as `text_attentions`): one tensor per speech
            encoder layer that ran, `(batch_size, num_heads, frames, frames)`; empty under `"sdpa"` (with a warning)
            and for `audio_representation="conv"` (no attention layer runs). The cross-modal layers of
            `fusion="cross"` always run torch's scaled-dot-product attention: their weights are not returned.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    regression: torch.FloatTensor | None = None
    emotion_loss: torch.FloatTensor | None = None
    regression_loss: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    fused_embeds: torch.FloatTensor | None = None
    # New fields go last: `to_tuple()` (return_dict=False) keeps the order above and leaves out the ones that are None.
    text_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    text_attentions: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None


class EncoderOutputs(NamedTuple):
    """One encoder's outputs inside [`KlueWav2Vec2ForEmotion.forward`]: the states that are pooled and fused
    `(batch, positions, width)`, their mask `(batch, positions)`, and the per-layer `hidden_states` / `attentions`
    tuples when they were asked for (else None)."""

    states: torch.Tensor
    mask: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def pool(hidden_states: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Pool `(batch, time, dim)` states over the positions where `mask` `(batch, time)` is true.

    `"mean"` averages the real positions, `"last"` / `"first"` take the last / first real one; padding never enters.
    """
    mask = mask.bool()
    if how == "mean":
        weights = mask.to(hidden_states.dtype).unsqueeze(-1)
        return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    if how == "last":
        index = mask.shape[1] - 1 - mask.flip(1).int().argmax(1)
    elif how == "first":
        index = mask.int().argmax(1)
    else:
        raise ValueError(f"pooling={how!r} is not supported; expected 'mean', 'last' or 'first'.")
    return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), index]


def masked_group_norm(hidden_states: torch.Tensor, norm: nn.GroupNorm, lengths: torch.Tensor) -> torch.Tensor:
    """`nn.GroupNorm` over `(batch, channels, time)` whose statistics come only from each sample's first `lengths`
    frames; the frames after them are set to zero. Equal to `norm(x[i:i+1, :, :length])` on each sample's real frames.

    Two implementations of one function, tested equal (values and gradients). In eager mode, one fused `group_norm`
    per sample on its real slice: the tensor-op version over the padded batch takes 2.4x its time there. While a graph
    is captured (`torch.export`, `torch.jit.trace`, `torch.compile`), the tensor-op version: the per-sample slices need
    the lengths as Python numbers, which a graph cannot hold, and compiled it takes 0.8x the loop's time
    (benchmarks/bench_group_norm.py).
    """
    if is_tracing(hidden_states):
        return masked_group_norm_tensor_ops(hidden_states, norm, lengths)
    return masked_group_norm_per_sample(hidden_states, norm, lengths)


def masked_group_norm_per_sample(hidden_states: torch.Tensor, norm: nn.GroupNorm, lengths: torch.Tensor) -> torch.Tensor:
    """[`masked_group_norm`] in eager mode: one fused `group_norm` per sample on its real frames."""
    time = hidden_states.shape[-1]
    lengths = lengths.tolist()
    if all(length == time for length in lengths):
        return norm(hidden_states)
    pieces = [
        F.pad(F.group_norm(sample[None, :, :length], norm.num_groups, norm.weight, norm.bias, norm.eps), (0, time - length))
        for sample, length in zip(hidden_states, lengths)
    ]
    return torch.cat(pieces)


def masked_group_norm_tensor_ops(hidden_states: torch.Tensor, norm: nn.GroupNorm, lengths: torch.Tensor) -> torch.Tensor:
    """[`masked_group_norm`] as tensor operations over the padded batch (no Python number taken from a tensor).

    Statistics in float32 whatever the input dtype, as `group_norm` keeps them; two passes (mean, then the variance
    of the centred values) so that channels with a large mean lose no precision.
    """
    batch, channels, time = hidden_states.shape
    groups, per_group = norm.num_groups, channels // norm.num_groups
    mask = lengths_to_mask(lengths, time)
    values = hidden_states.float()
    weights = mask[:, None, :].to(values.dtype)
    count = (lengths.to(values.dtype) * per_group).clamp(min=1.0)[:, None]

    def per_channel_group_mean(per_channel_sums: torch.Tensor) -> torch.Tensor:
        # (batch, channels) sums over time -> (batch, channels) means over each channel's group. Only these small
        # tensors are regrouped: reshaping the (batch, channels, time) one puts shape guards into exported graphs.
        group_sums = per_channel_sums.reshape(batch, groups, per_group).sum(-1)
        return (group_sums / count).repeat_interleave(per_group, dim=1)[..., None]

    mean = per_channel_group_mean((values * weights).sum(-1))
    centred = (values - mean) * weights
    variance = per_channel_group_mean(centred.square().sum(-1))
    normalised = centred * torch.rsqrt(variance + norm.eps)
    if norm.affine:
        normalised = normalised * norm.weight.float()[:, None] + norm.bias.float()[:, None]
    return torch.where(mask[:, None, :], normalised, 0.0).to(hidden_states.dtype)


def group_norm_conv_layer(layer: nn.Module, hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """wav2vec2's conv -> GroupNorm -> activation layer, with the norm's statistics from the first `lengths` frames."""
    hidden_states = layer.conv(hidden_states)
    hidden_states = masked_group_norm(hidden_states, layer.layer_norm, lengths)
    return layer.activation(hidden_states)


def conv_feature_encoder(
    feature_encoder: nn.Module, input_values: torch.Tensor, sample_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run wav2vec2's convolutional feature encoder on zero-padded audio, padding-invariantly.

    Args:
        feature_encoder: the encoder's `feature_extractor` (anything with `conv_layers` whose items have `conv`, and
            `layer_norm` + `activation` when the norm is a `GroupNorm`).
        input_values (`(batch, samples)`): zero-padded audio.
        sample_lengths (`(batch,)`): real samples per clip.

    Returns:
        `(batch, channels, frames)` features and `(batch,)` real frames per clip. A GroupNorm layer (wav2vec2-base's
        first) takes its statistics from real frames only; other layers run as they are, checkpointed when
        activation checkpointing is on.
    """
    hidden = input_values[:, None]
    # As in Wav2Vec2FeatureEncoder.forward: reentrant checkpointing differentiates a checkpointed layer only when its
    # input requires grad, and raw audio never does. Without this the whole conv stack gets no gradient. Only then:
    # otherwise nobody reads the audio's gradient (computing it costs little: benchmarks/bench_training_step.py).
    if (
        feature_encoder.training
        and torch.is_grad_enabled()
        and not hidden.requires_grad
        and any(getattr(layer, "gradient_checkpointing", False) for layer in feature_encoder.conv_layers)
        and any(parameter.requires_grad for parameter in feature_encoder.parameters())
    ):
        hidden = hidden.detach().requires_grad_(True)
    lengths = sample_lengths
    for layer in feature_encoder.conv_layers:
        kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        if isinstance(getattr(layer, "layer_norm", None), nn.GroupNorm):
            # GroupNorm normalises over time: its statistics come from real frames only. This layer holds the
            # largest activations of the model, so it is checkpointed like the others, with their settings
            # (reentrant or not).
            if getattr(layer, "gradient_checkpointing", False) and layer.training and torch.is_grad_enabled():
                hidden = layer._gradient_checkpointing_func(group_norm_conv_layer, layer, hidden, lengths)
            else:
                hidden = group_norm_conv_layer(layer, hidden, lengths)
        else:
            hidden = layer(hidden)
    return hidden, lengths


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """`(batch,)` lengths -> `(batch, max_length)` boolean mask, true on the first `length` positions."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


class SpeechLayerWeights(nn.Module):
    """SUPERB's learned layer weighting: `softmax(weights)`-weighted sum of the speech encoder's states.

    The weights start equal (zeros before the softmax), as in s3prl's `Featurizer`. With `layer_norm`, each frame of
    each state is normalised over its channels first (no parameters), as s3prl's `--upstream_feature_normalize`.
    """

    def __init__(self, num_states: int, layer_norm: bool = False):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_states))
        self.layer_norm = layer_norm

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        """`num_states` tensors `(batch, frames, hidden)` -> their weighted sum `(batch, frames, hidden)`."""
        weights = self.weights.softmax(-1).to(states[0].dtype)
        total = None
        for index, state in enumerate(states):  # over the list: iterating the weights tensor would warn a tracer
            if self.layer_norm:
                state = F.layer_norm(state, state.shape[-1:])
            total = weights[index] * state if total is None else total + weights[index] * state
        return total


class LayerRecord:
    """What [`recorded_layers`] keeps of one forward pass: the first layer's input, each layer's output (None for a
    layer that LayerDrop skipped) and each attention module's weights."""

    def __init__(self, num_layers: int):
        self.first_input: torch.Tensor | None = None
        self.outputs: list[torch.Tensor | None] = [None] * num_layers
        self.attentions: list[torch.Tensor] = []

    def layer_states(self, first: torch.Tensor) -> list[torch.Tensor]:
        """`first`, then each layer's output; a skipped layer repeats the state before it (`num_layers + 1` tensors)."""
        states = [first]
        for output in self.outputs:
            states.append(states[-1] if output is None else output)
        return states


@contextlib.contextmanager
def recorded_layers(layers: nn.ModuleList, attention: str | None = None):
    """While inside, forward hooks on `layers` fill the [`LayerRecord`] this yields; with `attention` (the attribute
    of each layer holding its attention module: `"attention"` in the wav2vec2 family, `"self_attn"` in Whisper) also
    the attention weights (the second item of the module's output; eager attention only, sdpa gives None).

    The hooks are what transformers' own `output_hidden_states` / `output_attentions` use (its hooks live on the
    encoders' model `forward`, which this package does not call). transformers checkpoints a layer's `forward` inside
    its `__call__`, so the hooks see the outputs that carry gradients with activation checkpointing too; they are
    removed on leaving, so a checkpointed layer recomputed in the backward pass records nothing.
    """
    record = LayerRecord(len(layers))

    def keep_first_input(module, args, kwargs):
        if record.first_input is None:
            record.first_input = args[0] if args else kwargs["hidden_states"]

    def keep_output(index: int):
        def hook(module, args, output):
            record.outputs[index] = output[0] if isinstance(output, tuple) else output  # WavLM adds its position bias

        return hook

    def keep_attention(module, args, output):
        if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
            record.attentions.append(output[1])

    handles = []
    try:
        for index, layer in enumerate(layers):
            handles.append(layer.register_forward_pre_hook(keep_first_input, with_kwargs=True))
            handles.append(layer.register_forward_hook(keep_output(index)))
            if attention is not None:
                handles.append(getattr(layer, attention).register_forward_hook(keep_attention))
        yield record
    finally:
        for handle in handles:
            handle.remove()


def transformer_layer_states(encoder: nn.Module, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> list[torch.Tensor]:
    """Run a wav2vec2-family transformer `encoder` on `(batch, frames, hidden)` inputs with the frame mask, and return
    its input and every layer's output: `num_hidden_layers + 1` tensors of that shape, the last one the encoder's
    `last_hidden_state` (after the final layer norm of stable-layer-norm encoders, as `"hidden"` uses it).

    The outputs are taken by forward hooks on the layers ([`recorded_layers`]). A layer skipped by LayerDrop
    (training only) passes its input on: its state repeats the one before.
    """
    with recorded_layers(encoder.layers) as record:
        last = encoder(hidden_states, attention_mask=frame_mask).last_hidden_state
    return record.layer_states(hidden_states)[:-1] + [last]


@contextlib.contextmanager
def masked_positional_convolutions(encoder: nn.Module, frame_mask: torch.Tensor):
    """While inside, zero the padded frames between stacked positional convolutions (Data2VecAudio has 5).

    The encoder zeroes padded frames before its positional embedding, so one convolution sees what it would see on
    the clip alone; a second one would see the first one's output on the padded frames instead of zeros, which
    changes the last real frames (transformers' own Data2VecAudioModel differs by > 1e-2 under padding). A no-op for
    encoders with one positional convolution (wav2vec2, HuBERT, WavLM).
    """
    layers = getattr(getattr(encoder, "pos_conv_embed", None), "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) < 2:
        yield
        return
    keep = frame_mask[:, None, :]

    def zero_padding(module, args, output):  # (batch, hidden, frames)
        return output * keep.to(output.dtype)

    handles = [layer.register_forward_hook(zero_padding) for layer in layers[:-1]]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class WhisperSpeechEncoder(WhisperEncoder):
    """transformers' `WhisperEncoder`, loadable from any Whisper checkpoint: `from_pretrained` of a
    `WhisperForConditionalGeneration` / `WhisperModel` folder keeps the encoder's weights (their `model.encoder.` /
    `encoder.` prefixes are mapped away) and drops the decoder's without a report of unexpected keys.

    Its own `forward` takes exactly 30 s of mel frames; [`KlueWav2Vec2ForEmotion`] runs its modules through
    [`whisper_encoder_states`] instead, on clips of any length up to 30 s.
    """

    _keys_to_ignore_on_load_unexpected = [r"^(model\.)?decoder\.", r"^proj_out\."]
    CHECKPOINT_KEY_MAPPING = {r"^model\.encoder\.": "", r"^encoder\.": ""}

    def __init__(self, config):
        super().__init__(config)
        # transformers skips `_init_weights` of a module without parameters of its own when the class is defined
        # outside transformers (as this one is), so WhisperEncoder's sinusoidal positions would stay random.
        weight = self.embed_positions.weight
        if weight.device.type != "meta":
            with torch.no_grad():
                weight.copy_(sinusoids(*weight.shape))

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        kwargs.setdefault("key_mapping", cls.CHECKPOINT_KEY_MAPPING)
        return super().from_pretrained(*args, **kwargs)

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        """True: its layers are `WhisperEncoder`'s, which dispatch on the config's implementation. transformers
        guesses from the source of the class's module, which is this file (and its `CrossModalAttention`)."""
        return True


def whisper_frame_lengths(encoder: nn.Module, mel_lengths: torch.Tensor) -> torch.Tensor:
    """Encoder frames (20 ms) per clip from its mel frames (10 ms): the length after `conv2` (stride 2)."""
    conv = encoder.conv2
    kernel, stride, padding = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    return torch.div(mel_lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


def whisper_encoder_states(
    encoder: nn.Module, input_features: torch.Tensor, mel_lengths: torch.Tensor, all_layers: bool = False
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run a Whisper encoder's own modules on a batch of clips of any length up to 30 s, padding-invariantly.

    transformers' `WhisperEncoder.forward` takes exactly 3000 mel frames (every clip padded to 30 s) and attends to
    all of them. Here the batch is as long as its longest clip, and each clip's outputs are what it gives alone:
    - the mel frames after each clip's `mel_lengths` are zeroed before `conv1`, and `conv1`'s outputs after them
      before `conv2`, so that both convolutions see at a clip's end the zeros their own padding gives a clip alone
      (`conv2`, kernel 3 and stride 2, reads one frame beyond its last output's centre);
    - positions are the first rows of `embed_positions` (one per 20 ms encoder frame), as for the clip alone;
    - every layer's attention ignores the padded frames (a bidirectional mask in the form the configured attention
      implementation takes: eager, sdpa, ...).

    Args:
        encoder: a `WhisperEncoder` (`conv1`, `conv2`, `embed_positions`, `layers`, `layer_norm`).
        input_features (`(batch, num_mel_bins, mel_frames)`): log-mel features, at most 3000 frames.
        mel_lengths (`(batch,)`): real mel frames per clip.
        all_layers: return every state (`"weighted"`), not only the last one.

    Returns:
        The states `(batch, frames, d_model)`: with `all_layers`, the layers' input (convolutions + positions) and
        every layer's output, the last one after the final layer norm (`encoder_layers + 1` tensors), else the last
        one alone; and the `(batch, frames)` frame mask, true on real frames.
    """
    mel_mask = lengths_to_mask(mel_lengths, input_features.shape[-1])[:, None, :].to(input_features.dtype)
    hidden = F.gelu(encoder.conv1(input_features * mel_mask))
    hidden = F.gelu(encoder.conv2(hidden * mel_mask.to(hidden.dtype)))
    hidden = hidden.transpose(1, 2)
    frames = hidden.shape[1]
    if isinstance(frames, torch.SymInt):  # torch.export: tells the exporter the slice below is never clamped
        torch._check(frames <= encoder.embed_positions.num_embeddings)
    hidden = hidden + encoder.embed_positions.weight[:frames].to(hidden.dtype)
    hidden = F.dropout(hidden, p=encoder.dropout, training=encoder.training)
    frame_mask = lengths_to_mask(whisper_frame_lengths(encoder, mel_lengths), frames)
    attention_mask = create_bidirectional_mask(
        config=encoder.layers[0].self_attn.config if len(encoder.layers) else encoder.config,
        inputs_embeds=hidden, attention_mask=frame_mask,
    )
    states = [hidden]
    for layer in encoder.layers:
        # LayerDrop as WhisperEncoder.forward does it (training only); a skipped layer passes its input on.
        if encoder.training and encoder.layerdrop > 0.0 and torch.rand([]) < encoder.layerdrop:
            states.append(states[-1])
            continue
        states.append(layer(states[-1], attention_mask))
    states[-1] = encoder.layer_norm(states[-1])
    return (states if all_layers else states[-1:]), frame_mask


class CrossModalAttention(nn.Module):
    """Multi-head attention of one sequence's positions over the other's real positions.

    A key position where `key_mask` is false is never attended. A sample with no real key at all (a fully padded
    side) attends to nothing: its output is zero, never NaN.
    """

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.output = nn.Linear(width, width)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """`queries` `(batch, q, width)`, `keys` `(batch, k, width)`, `key_mask` `(batch, k)` -> `(batch, q, width)`."""
        batch, _, width = queries.shape

        def split_heads(states: torch.Tensor) -> torch.Tensor:
            return states.reshape(batch, -1, self.heads, width // self.heads).transpose(1, 2)

        has_key = key_mask.any(-1)
        # A row of all-false mask makes the softmax 0/0: such a row attends everywhere and its result is dropped.
        attend = (key_mask | ~has_key[:, None])[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            split_heads(self.query(queries)), split_heads(self.key(keys)), split_heads(self.value(keys)),
            attn_mask=attend, dropout_p=self.dropout if self.training else 0.0,
        )
        attended = self.output(attended.transpose(1, 2).reshape(batch, -1, width))
        return attended * has_key[:, None, None].to(attended.dtype)


class CrossModalBlock(nn.Module):
    """One side of a cross layer: attend to the other side, then residual + layer norm, feed-forward, residual + layer
    norm (post-norm, as BERT's layers)."""

    def __init__(self, width: int, heads: int, intermediate_size: int, dropout: float):
        super().__init__()
        self.attention = CrossModalAttention(width, heads, dropout)
        self.attention_norm = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, intermediate_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(intermediate_size, width)
        )
        self.output_norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, states: torch.Tensor, other: torch.Tensor, other_mask: torch.Tensor) -> torch.Tensor:
        states = self.attention_norm(states + self.dropout(self.attention(states, other, other_mask)))
        return self.output_norm(states + self.dropout(self.feed_forward(states)))


class CrossModalLayer(nn.Module):
    """Text tokens attend to speech frames and speech frames to text tokens, both from the previous layer's states."""

    def __init__(self, width: int, heads: int, intermediate_size: int, dropout: float):
        super().__init__()
        self.text = CrossModalBlock(width, heads, intermediate_size, dropout)
        self.speech = CrossModalBlock(width, heads, intermediate_size, dropout)

    def forward(self, text, text_mask, speech, speech_mask) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text(text, speech, speech_mask), self.speech(speech, text, text_mask)


class CrossModalFusion(nn.Module):
    """`fusion="cross"`: both sequences projected to `cross_attention_width`, `cross_attention_layers` cross layers,
    each side pooled over its real positions (the config's pooling), concatenated: `(batch, 2 * width)`."""

    def __init__(self, config: KlueWav2Vec2EmotionConfig):
        super().__init__()
        width = config.cross_attention_width
        self.pooling = config.pooling
        self.text_projection = nn.Linear(config.text_embed_dim, width)
        self.speech_projection = nn.Linear(config.audio_embed_dim, width)
        self.layers = nn.ModuleList(
            CrossModalLayer(width, config.cross_attention_num_heads, config.cross_attention_ffn_size,
                            config.cross_attention_dropout)
            for _ in range(config.cross_attention_layers)
        )

    def forward(self, text_states, text_mask, speech_states, speech_mask) -> torch.Tensor:
        """Text `(batch, tokens, text_hidden)` with its mask `(batch, tokens)`, speech `(batch, frames, audio_embed_dim)`
        with its mask `(batch, frames)` -> `(batch, 2 * width)`."""
        text_mask, speech_mask = text_mask.bool(), speech_mask.bool()
        text, speech = self.text_projection(text_states), self.speech_projection(speech_states)
        for layer in self.layers:
            text, speech = layer(text, text_mask, speech, speech_mask)
        return torch.cat([pool(text, text_mask, self.pooling), pool(speech, speech_mask, self.pooling)], dim=-1)


def check_encoder_kind(role: str, name_or_path, model_type: str, supported) -> None:
    """Raise a ValueError naming `{role}_model_name_or_path` when its checkpoint is not a supported encoder kind."""
    if model_type in supported:
        return
    hint = ""
    if role == "text" and model_type in SUPPORTED_AUDIO_MODEL_TYPES:
        hint = f" A {model_type} checkpoint is a speech encoder: pass it as audio_model_name_or_path."
    elif role == "audio" and model_type in SUPPORTED_TEXT_MODEL_TYPES:
        hint = f" A {model_type} checkpoint is a text encoder: pass it as text_model_name_or_path."
    raise ValueError(
        f"{role}_model_name_or_path={str(name_or_path)!r} is a {model_type!r} checkpoint; expected a {role} encoder, "
        f"one of {', '.join(map(repr, supported))}.{hint}"
    )


def concordance_correlation(predictions: torch.Tensor, targets: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Lin's concordance correlation coefficient along dim 0 of `(batch, ...)` tensors (population moments)."""
    pred_mean, target_mean = predictions.mean(0), targets.mean(0)
    pred_var = predictions.var(0, unbiased=False)
    target_var = targets.var(0, unbiased=False)
    covariance = ((predictions - pred_mean) * (targets - target_mean)).mean(0)
    return 2 * covariance / (pred_var + target_var + (pred_mean - target_mean) ** 2 + eps)


class KlueWav2Vec2PreTrainedModel(PreTrainedModel):
    config: KlueWav2Vec2EmotionConfig
    config_class = KlueWav2Vec2EmotionConfig
    base_model_prefix = "kemd"
    main_input_name = "input_ids"
    input_modalities = ("text", "audio")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    # forward has no **kwargs: the Trainer divides the loss by the gradient-accumulation steps itself.
    accepts_loss_kwargs = False

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        """True: `set_attn_implementation` can switch both encoders, whose attention layers are transformers' own and
        dispatch on their configs' implementation. transformers guesses from this module's source, where it finds
        `CrossModalAttention(nn.Module)` without its attention interface, and would warn and leave the top config as it
        was; the cross-modal layers (`fusion="cross"`) always run torch's scaled-dot-product attention, whose result
        eager attention equals."""
        return True

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, SpeechLayerWeights):
            init.zeros_(module.weights)  # equal weights to begin with, as s3prl's Featurizer


class KlueWav2Vec2ForEmotion(KlueWav2Vec2PreTrainedModel):
    r"""
    A text encoder (KLUE-BERT; or RoBERTa, ELECTRA) and a wav2vec 2.0 speech encoder (or HuBERT, WavLM,
    Data2VecAudio, or the encoder of any Whisper checkpoint, which reads log-mel `input_features`), both trainable,
    pooled over real tokens/frames and fused by concatenation (`"cat"`) or by a speech-to-text linear projection and
    addition (`"add"`), or used alone (`"text"`, `"speech"`), or fused by
    cross-modal attention between the token and frame sequences (`"cross"`). A 7-way emotion head (multi-label
    soft-margin loss) and an arousal/valence head read the fused vector.

    Example:

    ```python
    >>> import torch
    >>> from kemd_emotion import KlueWav2Vec2ForEmotion
    >>> from kemd_emotion.small_encoders import tiny_config
    >>> model = KlueWav2Vec2ForEmotion(tiny_config(fusion="add")).eval()
    >>> out = model(input_ids=torch.tensor([[2, 5, 3]]), input_values=torch.randn(1, 8000))
    >>> out.logits.shape, out.regression.shape
    (torch.Size([1, 7]), torch.Size([1, 2]))

    ```
    """

    def __init__(
        self,
        config: KlueWav2Vec2EmotionConfig,
        text_model: PreTrainedModel | None = None,
        audio_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        config.check_values()
        self.main_input_name = "input_ids" if config.uses_text else config.audio_input_name

        self.text_model = None
        if config.uses_text:
            if text_model is None:
                text_model = AutoModel.from_config(config.text_config)
            # The pooler ([CLS] -> tanh) is not used; dropping it keeps DDP free of unused parameters.
            if getattr(text_model, "pooler", None) is not None:
                text_model.pooler = None
            self.config.text_config._attn_implementation = text_model.config._attn_implementation
            text_model.config = self.config.text_config
            self.text_model = text_model

        self.audio_model = None
        if config.uses_audio and config.is_whisper:
            if audio_model is None:
                audio_model = WhisperSpeechEncoder(config.audio_config)
            elif not isinstance(audio_model, WhisperEncoder):  # a WhisperModel / ...ForConditionalGeneration
                audio_model = audio_model.get_encoder()
            self.config.audio_config._attn_implementation = audio_model.config._attn_implementation
            audio_model.config = self.config.audio_config
            self.audio_model = audio_model
        elif config.uses_audio:
            if audio_model is None:
                audio_model = AutoModel.from_config(config.audio_config)
            if getattr(audio_model, "adapter", None) is not None:
                raise ValueError("audio_config.add_adapter=True is not supported: the adapter changes frame lengths.")
            if config.audio_representation == "conv":
                # The paper's speech vector is the normalised conv output: the transformer is never needed.
                audio_model.encoder = None
                audio_model.feature_projection.projection = None
                audio_model.feature_projection.dropout = None
                if hasattr(audio_model, "masked_spec_embed"):
                    del audio_model.masked_spec_embed
            self.config.audio_config._attn_implementation = audio_model.config._attn_implementation
            audio_model.config = self.config.audio_config
            self.audio_model = audio_model

        self.audio_layer_weights = None
        if config.uses_audio and config.audio_representation == "weighted":
            self.audio_layer_weights = SpeechLayerWeights(config.audio_config.num_hidden_layers + 1,
                                                          config.weighted_layer_norm)
        self.projection = (
            nn.Linear(config.audio_embed_dim, config.text_embed_dim) if config.fusion == "add" else None
        )
        self.cross_fusion = CrossModalFusion(config) if config.fusion == "cross" else None
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.emotion_head = nn.Linear(config.fused_dim, config.num_labels)
        self.regression_head = nn.Linear(config.fused_dim, len(config.regression_targets))

        self.post_init()
        # The sub-config of an encoder the fusion does not build records the model's implementation too.
        for key, encoder in (("text_config", self.text_model), ("audio_config", self.audio_model)):
            if encoder is None and getattr(config, key)._attn_implementation is None:
                getattr(config, key)._attn_implementation_internal = config._attn_implementation
        self.apply_config_freezing()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, then the freezing the config asks for.

        The loader builds the model on the meta device and puts a new `nn.Parameter` (`requires_grad=True`) in place
        of every loaded weight, undoing what `__init__` froze; the config is applied again once the weights are in.
        """
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) with output_loading_info
        model.apply_config_freezing()
        return loaded

    @classmethod
    def from_text_audio_pretrained(
        cls,
        text_model_name_or_path: str | None = None,
        audio_model_name_or_path: str | None = None,
        *,
        attn_implementation: str | None = None,
        dtype: str | torch.dtype | None = None,
        text_model_kwargs: dict | None = None,
        audio_model_kwargs: dict | None = None,
        **config_kwargs,
    ) -> "KlueWav2Vec2ForEmotion":
        """Build the fused model from two pretrained encoders, keeping their weights exactly.

        Args:
            text_model_name_or_path: hub id or folder of the text encoder, a BERT, RoBERTa or ELECTRA (e.g.
                `"klue/bert-base"`, `"klue/roberta-base"`); may be None only for `fusion="speech"`.
            audio_model_name_or_path: hub id or folder of the speech encoder, a wav2vec2, HuBERT, WavLM or
                Data2VecAudio (e.g. `"facebook/wav2vec2-base"`), or any Whisper checkpoint (e.g.
                `"openai/whisper-small"`: its encoder is loaded, its decoder is not); may be None only for
                `fusion="text"`. WavLM has
                no sdpa attention in transformers: leave `attn_implementation` unset (each encoder keeps its own).
            attn_implementation: `"sdpa"`, `"eager"`, `"flash_attention_2"`, ... for both encoders (default: each
                encoder's default, sdpa where it can run). An implementation that cannot run here raises
                transformers' own error; nothing falls back silently.
            dtype: the dtype of the whole model (`torch.bfloat16`, `"float32"`, `"auto"`, ...): both encoders are
                loaded in it and the heads are made in it. Default: the dtype the encoders load in, which must
                then agree.
            text_model_kwargs / audio_model_kwargs: passed to each `AutoModel.from_pretrained` (revision,
                cache_dir, ...). They may also hold `attn_implementation` / `dtype` for one encoder; the arguments
                above, when given, must not contradict them.
            config_kwargs: options of [`KlueWav2Vec2EmotionConfig`] (fusion, pooling, audio_representation, ...).

        Raises:
            ValueError: a needed encoder path is None, a checkpoint is not a supported encoder of its role (naming
                `text_model_name_or_path` / `audio_model_name_or_path`: e.g. a Whisper folder as the text model), an
                argument contradicts the same key in
                `text_model_kwargs` / `audio_model_kwargs`, or the encoders load in different dtypes without `dtype=`.
        """
        fusion = config_kwargs.get("fusion", "cat")
        roles = {"text": dict(text_model_kwargs or {}), "audio": dict(audio_model_kwargs or {})}
        for role, kwargs in roles.items():
            for name, value in (("attn_implementation", attn_implementation), ("dtype", dtype)):
                if value is None:
                    continue
                if name in kwargs and kwargs[name] != value:
                    raise ValueError(
                        f"{name}={value!r} contradicts {role}_model_kwargs[{name!r}]={kwargs[name]!r}; give one of them."
                    )
                kwargs[name] = value

        supported = {"text": SUPPORTED_TEXT_MODEL_TYPES, "audio": SUPPORTED_AUDIO_MODEL_TYPES}

        def load(name_or_path, needed: bool, role: str):
            if name_or_path is None:
                if needed:
                    raise ValueError(f"fusion={fusion!r} needs a pretrained {role} model; got {role}_model_name_or_path=None.")
                return None, None
            config_only = {key: value for key, value in roles[role].items() if key not in ("dtype", "attn_implementation")}
            config = AutoConfig.from_pretrained(name_or_path, **config_only)
            check_encoder_kind(role, name_or_path, config.model_type, supported[role])
            if not needed:
                return None, config
            if config.model_type == "whisper":  # the encoder of any Whisper checkpoint; the decoder is not loaded
                model = WhisperSpeechEncoder.from_pretrained(name_or_path, **roles[role])
            else:
                model = AutoModel.from_pretrained(name_or_path, **roles[role])
            return model, model.config

        reads_text, reads_audio = fusion_modalities(fusion)
        text_model, text_config = load(text_model_name_or_path, reads_text, "text")
        audio_model, audio_config = load(audio_model_name_or_path, reads_audio, "audio")
        loaded_dtypes = {role: model.dtype for role, model in (("text", text_model), ("audio", audio_model)) if model is not None}
        if len(set(loaded_dtypes.values())) > 1:
            found = " and ".join(f"the {role} encoder in {value}" for role, value in loaded_dtypes.items())
            raise ValueError(
                f"{found} were loaded; the fused model needs one dtype. Pass dtype= (e.g. dtype=torch.float32)."
            )
        model_dtype = next(iter(loaded_dtypes.values()))
        if attn_implementation is not None:
            config_kwargs["attn_implementation"] = attn_implementation
        config = KlueWav2Vec2EmotionConfig(text_config=text_config, audio_config=audio_config, **config_kwargs)
        model = cls(config, text_model=text_model, audio_model=audio_model)
        # The projection and heads are made in the default dtype: bring them to the encoders' one.
        model.to(model_dtype)
        for sub_config in (config, config.text_config, config.audio_config):
            sub_config.dtype = model_dtype
        return model

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus the pipeline's code and its `custom_pipelines` entry, so that
        `pipeline("emotion-multimodal", model=save_directory, trust_remote_code=True)` works where kemd_emotion is not
        installed (the config, model and processor code is copied by `register_for_auto_class`)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        from .pipeline_emotion import add_pipeline_files  # lazy: the pipeline module imports torch pipelines

        if os.path.isfile(os.path.join(save_directory, "config.json")):
            add_pipeline_files(save_directory)

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, *args, **kwargs):
        """`PreTrainedModel.activation_checkpointing_enable` (non-reentrant by default), refusing reentrant
        checkpointing of a WavLM speech encoder: transformers' WavLM layers pass their position bias to each other as
        a keyword argument, which reentrant checkpointing does not detach, and the backward pass never finishes
        (transformers 5.24, its own WavLMModel too)."""
        reentrant = (activation_checkpointing_kwargs or {}).get("use_reentrant", False)
        if reentrant and self.audio_model is not None and self.config.audio_config.model_type == "wavlm":
            raise ValueError(
                "activation_checkpointing_kwargs={'use_reentrant': True} is not supported with a WavLM speech encoder "
                "(its backward pass never finishes); use {'use_reentrant': False}, the default."
            )
        return super().activation_checkpointing_enable(activation_checkpointing_kwargs, *args, **kwargs)

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into wav2vec2's convolutional feature encoder (common when fine-tuning wav2vec2).

        Recorded in the config, so the model comes back frozen from `save_pretrained` -> `from_pretrained`.
        """
        if self.audio_model is not None:
            for module in self.feature_encoder_modules():
                module.requires_grad_(False)
            if not self.config.is_whisper:
                # What Wav2Vec2Model.freeze_feature_encoder does; HubertModel has no such method, every family this.
                self.audio_model.feature_extractor._freeze_parameters()
        self.config.freeze_feature_encoder = True

    def feature_encoder_modules(self) -> list[nn.Module]:
        """The speech encoder's convolutional front end: wav2vec2's `feature_extractor`, Whisper's `conv1` and
        `conv2` (what `freeze_feature_encoder` freezes); empty without a speech encoder."""
        if self.audio_model is None:
            return []
        if self.config.is_whisper:
            return [self.audio_model.conv1, self.audio_model.conv2]
        return [self.audio_model.feature_extractor]

    def apply_config_freezing(self) -> None:
        """Freeze what `config.freeze_feature_encoder` says, and Whisper's sinusoidal positions (fixed in
        WhisperEncoder too); called by `__init__` and after `from_pretrained`."""
        if self.audio_model is not None and self.config.is_whisper:
            self.audio_model.embed_positions.requires_grad_(False)
        if self.config.freeze_feature_encoder:
            self.freeze_feature_encoder()

    # ------------------------------------------------------------------ transformers conventions
    def get_input_embeddings(self) -> nn.Module:
        """The text encoder's token embeddings (`nn.Embedding`, `text_config.vocab_size` rows), as transformers'
        composite models give the text model's.

        Raises:
            NotImplementedError: with `fusion="speech"` there is no text encoder (what transformers raises for a model
                without token embeddings, e.g. `Wav2Vec2Model`).
        """
        return self.require_text_model("get_input_embeddings").get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Replace the text encoder's token embeddings (see [`get_input_embeddings`])."""
        self.require_text_model("set_input_embeddings").set_input_embeddings(value)

    def require_text_model(self, method: str) -> PreTrainedModel:
        if self.text_model is None:
            raise NotImplementedError(
                f"{type(self).__name__}.{method}: fusion={self.config.fusion!r} has no text encoder, so the model has no "
                "token embeddings (resize_token_embeddings needs one: use a fusion with text)."
            )
        return self.text_model

    def set_attn_implementation(self, attn_implementation, *args, **kwargs):
        """`PreTrainedModel.set_attn_implementation`: switches both encoders and records the choice on the top config
        and both sub-configs (a dict `{"text_config": ..., "audio_config": ...}` sets one encoder). When an encoder
        cannot run the implementation (WavLM has no `"sdpa"`), transformers' error is raised and nothing is changed."""
        configs = [self.config, self.config.text_config, self.config.audio_config]
        configs += [encoder.config for encoder in (self.text_model, self.audio_model) if encoder is not None]
        before = [(config, config._attn_implementation_internal) for config in configs]
        try:
            # The sub-config of an encoder the fusion does not build (text for "speech", audio for "text") takes the
            # choice here: transformers would set it too, warning that it found no model to check it against.
            for key, encoder in (("text_config", self.text_model), ("audio_config", self.audio_model)):
                requested = (attn_implementation.get(key) if isinstance(attn_implementation, dict)
                             else attn_implementation)
                if encoder is None and isinstance(requested, str):
                    getattr(self.config, key)._attn_implementation_internal = requested
            return super().set_attn_implementation(attn_implementation, *args, **kwargs)
        except Exception:
            for config, implementation in before:
                config._attn_implementation_internal = implementation
            raise

    # ------------------------------------------------------------------ encoders
    def text_states(self, input_ids, attention_mask=None, token_type_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The text encoder's last hidden state `(batch, tokens, text_hidden_size)` and the token mask `(batch, tokens)`."""
        return tuple(self.text_encoder_outputs(input_ids, attention_mask, token_type_ids)[:2])

    def text_encoder_outputs(
        self, input_ids, attention_mask=None, token_type_ids=None, *, output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutputs:
        """[`text_states`], with the text encoder's `hidden_states` / `attentions` tuples when asked for (transformers'
        own, from the encoder's `output_hidden_states` / `output_attentions`)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # The flags are always passed, False included: the top config decides, not a flag left on the text sub-config.
        out = self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )
        return EncoderOutputs(
            out.last_hidden_state, attention_mask,
            tuple(out.hidden_states) if output_hidden_states else None,
            tuple(out.attentions or ()) if output_attentions else None,
        )

    def encode_text(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """Pooled text vector `(batch, text_hidden_size)` from token ids `(batch, tokens)`."""
        return pool(*self.text_states(input_ids, attention_mask, token_type_ids), self.config.pooling)

    def audio_states(
        self, input_values: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Speech frames `(batch, frames, audio_embed_dim)` in the config's `audio_representation`, and the frame mask
        `(batch, frames)` (true on real frames), from zero-padded 16 kHz samples `(batch, samples)`; for a Whisper
        encoder from log-mel features `(batch, num_mel_bins, mel_frames)` with their `(batch, mel_frames)` mask."""
        return tuple(self.audio_encoder_outputs(input_values, audio_attention_mask)[:2])

    def audio_encoder_outputs(
        self, input_values: torch.Tensor, audio_attention_mask: torch.Tensor | None = None, *,
        output_hidden_states: bool = False, output_attentions: bool = False,
    ) -> EncoderOutputs:
        """[`audio_states`], with the speech encoder's `hidden_states` / `attentions` tuples when asked for (see
        [`KlueWav2Vec2EmotionOutput`]'s `audio_hidden_states` for what they hold). Without them, nothing more runs
        than for the pooled vector."""
        if self.config.is_whisper:
            return self.whisper_encoder_outputs(input_values, audio_attention_mask,
                                                output_hidden_states=output_hidden_states,
                                                output_attentions=output_attentions)
        speech_encoder = self.audio_model
        feature_encoder = speech_encoder.feature_extractor
        input_values = input_values.to(feature_encoder.conv_layers[0].conv.weight.dtype)
        batch, num_samples = input_values.shape
        if audio_attention_mask is None:
            sample_lengths = torch.full((batch,), num_samples, dtype=torch.long, device=input_values.device)
        else:
            sample_lengths = audio_attention_mask.long().sum(-1)
        if not is_tracing(input_values):
            self.check_audio_lengths(sample_lengths)
        # Zero padding whatever the caller sent, so the convolutions see what they would see on the clip alone.
        sample_mask = lengths_to_mask(sample_lengths, num_samples)
        hidden, frame_lengths = conv_feature_encoder(
            feature_encoder, input_values * sample_mask.to(input_values.dtype), sample_lengths
        )
        frame_mask = lengths_to_mask(frame_lengths, hidden.shape[-1])
        features = hidden.transpose(1, 2)
        projection = speech_encoder.feature_projection
        if getattr(projection, "layer_norm", None) is not None:  # wav2vec2 normalises; HuBERT may not
            features = projection.layer_norm(features)
        if self.config.audio_representation == "conv":
            # Only the convolutional front end is built: its features are the one state there is, and no attention runs.
            return EncoderOutputs(features, frame_mask, (features,) if output_hidden_states else None,
                                  () if output_attentions else None)

        hidden = projection.dropout(projection.projection(features))
        hidden = speech_encoder._mask_hidden_states(hidden, attention_mask=frame_mask)
        encoder = speech_encoder.encoder
        weighted = self.config.audio_representation == "weighted"
        with masked_positional_convolutions(encoder, frame_mask):
            if not (weighted or output_hidden_states or output_attentions):
                return EncoderOutputs(encoder(hidden, attention_mask=frame_mask).last_hidden_state, frame_mask)
            with recorded_layers(encoder.layers, "attention" if output_attentions else None) as record:
                last = encoder(hidden, attention_mask=frame_mask).last_hidden_state
        # `encoder` zeroed `hidden`'s padded frames in place: the weighted sum's first state is that tensor.
        states = self.audio_layer_weights(record.layer_states(hidden)[:-1] + [last]) if weighted else last
        hidden_states = None
        if output_hidden_states:  # as Wav2Vec2Model gives them: from the first layer's input, no final layer norm
            first = record.first_input if record.first_input is not None else hidden
            hidden_states = tuple(record.layer_states(first))
        return EncoderOutputs(states, frame_mask, hidden_states, tuple(record.attentions) if output_attentions else None)

    def whisper_audio_states(
        self, input_features: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[`audio_states`] of a Whisper encoder: log-mel `input_features` `(batch, num_mel_bins, mel_frames)` and
        `audio_attention_mask` `(batch, mel_frames)` (1 on real frames) -> `(batch, frames, d_model)` states (20 ms
        frames) and their mask. Each clip costs its own length, not 30 s (see [`whisper_encoder_states`])."""
        return tuple(self.whisper_encoder_outputs(input_features, audio_attention_mask)[:2])

    def whisper_encoder_outputs(
        self, input_features: torch.Tensor, audio_attention_mask: torch.Tensor | None = None, *,
        output_hidden_states: bool = False, output_attentions: bool = False,
    ) -> EncoderOutputs:
        """[`whisper_audio_states`], with the encoder's hidden states (its layers' input, then each layer's output, the
        last after the final layer norm: what `WhisperEncoder` returns) and attentions when asked for."""
        encoder = self.audio_model
        input_features = input_features.to(encoder.conv1.weight.dtype)
        batch, _, num_frames = input_features.shape
        if audio_attention_mask is None:
            mel_lengths = torch.full((batch,), num_frames, dtype=torch.long, device=input_features.device)
        else:
            mel_lengths = audio_attention_mask.long().sum(-1)
        if not is_tracing(input_features):
            self.check_whisper_lengths(mel_lengths, num_frames)
        weighted = self.config.audio_representation == "weighted"
        all_layers = weighted or output_hidden_states
        if output_attentions:
            with recorded_layers(encoder.layers, "self_attn") as record:
                states, frame_mask = whisper_encoder_states(encoder, input_features, mel_lengths, all_layers=all_layers)
        else:
            states, frame_mask = whisper_encoder_states(encoder, input_features, mel_lengths, all_layers=all_layers)
        return EncoderOutputs(
            self.audio_layer_weights(states) if weighted else states[-1], frame_mask,
            tuple(states) if output_hidden_states else None,
            tuple(record.attentions) if output_attentions else None,
        )

    def encode_audio(self, input_values: torch.Tensor, audio_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled speech vector `(batch, audio_embed_dim)` from zero-padded 16 kHz samples `(batch, samples)` (for a
        Whisper encoder: log-mel `input_features` and their frame mask)."""
        return pool(*self.audio_states(input_values, audio_attention_mask), self.config.pooling)

    def check_whisper_lengths(self, mel_lengths: torch.Tensor, num_frames: int) -> None:
        """Raise a ValueError when a batch holds more than Whisper's 30 s of mel frames, or a clip has none (eager
        mode only)."""
        most = whisper_max_frames(self.config.audio_config)
        if num_frames > most:
            longest = int(mel_lengths.max())
            raise ValueError(
                f"input_features: {num_frames} mel frames ({num_frames / 100:g} s, the longest clip {longest} frames) "
                f"are more than the Whisper encoder's {most} ({most / 100:g} s of 10 ms frames); the model takes clips "
                "of up to 30 s. Score longer recordings with pipeline('emotion-multimodal', ...)(..., chunk_length_s=...)"
                ", which cuts them into windows, or crop them (the processor's max_audio_seconds)."
            )
        if int(mel_lengths.min()) < 1:
            raise ValueError("input_features: a clip has no real mel frame (its audio_attention_mask is all 0).")

    def check_audio_lengths(self, sample_lengths: torch.Tensor) -> None:
        """Raise a ValueError when a clip is shorter than the speech encoder's receptive field (eager mode only)."""
        shortest = int(sample_lengths.min())
        if shortest < self.min_audio_samples:
            raise ValueError(
                f"input_values: a clip of {shortest} samples is shorter than the speech encoder's receptive field "
                f"({self.min_audio_samples} samples, {1000 * self.min_audio_samples / 16000:g} ms at 16 kHz)."
            )

    @property
    def min_audio_samples(self) -> int:
        """The shortest clip (in samples) the speech encoder gives an output for (`config.min_audio_samples`)."""
        return self.config.min_audio_samples

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        input_values: torch.FloatTensor | None = None,
        audio_attention_mask: torch.LongTensor | None = None,
        labels: torch.FloatTensor | None = None,
        regression_labels: torch.FloatTensor | None = None,
        return_dict: bool | None = None,
        input_features: torch.FloatTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> KlueWav2Vec2EmotionOutput | tuple:
        r"""
        Args:
            input_ids (`(batch, tokens)`), attention_mask, token_type_ids: the tokenised transcript (text mask).
            input_values (`(batch, samples)`): 16 kHz speech, normalised by the processor, zero padded (wav2vec2,
                HuBERT, WavLM, Data2VecAudio encoders).
            audio_attention_mask (`(batch, samples)`): 1 on real samples, 0 on padding; for a Whisper encoder
                `(batch, mel_frames)`, 1 on real mel frames. Kept apart from the text mask.
            labels (`(batch, num_labels)` floats): multi-hot emotions.
            regression_labels (`(batch, 2)` floats): arousal then valence on the 1-5 scale.
            input_features (`(batch, num_mel_bins, mel_frames)`): a Whisper encoder's log-mel features (10 ms frames,
                at most 3000 = 30 s), from the checkpoint's `WhisperFeatureExtractor` through the processor; padded
                frames are ignored.
            output_attentions, output_hidden_states (`bool`, *optional*): also return each encoder's attention weights
                / hidden states (`text_attentions`, `audio_attentions`, `text_hidden_states`, `audio_hidden_states`;
                default: `config.output_attentions` / `config.output_hidden_states`). Attention weights need eager
                attention (`model.set_attn_implementation("eager")`).
            return_dict (`bool`, *optional*): False gives `to_tuple()` of the output (the fields that are not None, in
                order; default: `config.return_dict`).
        """
        config = self.config
        output_attentions = bool(config.output_attentions if output_attentions is None else output_attentions)
        output_hidden_states = bool(config.output_hidden_states if output_hidden_states is None else output_hidden_states)
        extra = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        audio_input = input_features if config.is_whisper else input_values
        if not is_tracing():
            self.check_inputs(input_ids, input_values, input_features)
        text = (self.text_encoder_outputs(input_ids, attention_mask, token_type_ids, **extra)
                if config.uses_text else None)
        audio = self.audio_encoder_outputs(audio_input, audio_attention_mask, **extra) if config.uses_audio else None
        if output_attentions and not is_tracing():
            self.warn_about_missing_attentions(text, audio)
        text_embeds = pool(text.states, text.mask, config.pooling) if text is not None else None
        audio_embeds = pool(audio.states, audio.mask, config.pooling) if audio is not None else None

        if config.fusion == "cross":
            fused = self.cross_fusion(text.states, text.mask, audio.states, audio.mask)
        elif config.fusion == "cat":
            fused = torch.cat([text_embeds, audio_embeds], dim=-1)
        elif config.fusion == "add":
            fused = text_embeds + self.projection(audio_embeds)
        elif config.fusion == "text":
            fused = text_embeds
        else:
            fused = audio_embeds

        hidden = self.dropout(fused)
        logits = self.emotion_head(hidden)
        regression = self.regression_head(hidden) + config.regression_offset

        loss = emotion_loss = regression_loss = None
        if labels is not None:
            emotion_loss = self.emotion_loss(logits, labels.to(logits.dtype))
            loss = config.emotion_loss_weight * emotion_loss
        if regression_labels is not None:
            regression_loss = self.regression_loss(regression, regression_labels.to(regression.dtype))
            weighted = config.regression_loss_weight * regression_loss
            loss = weighted if loss is None else loss + weighted

        output = KlueWav2Vec2EmotionOutput(
            loss=loss,
            logits=logits,
            regression=regression,
            emotion_loss=emotion_loss,
            regression_loss=regression_loss,
            text_embeds=text_embeds,
            audio_embeds=audio_embeds,
            fused_embeds=fused,
            text_hidden_states=text.hidden_states if text is not None else None,
            text_attentions=text.attentions if text is not None else None,
            audio_hidden_states=audio.hidden_states if audio is not None else None,
            audio_attentions=audio.attentions if audio is not None else None,
        )
        return_dict = return_dict if return_dict is not None else config.return_dict
        return output if return_dict else output.to_tuple()

    def warn_about_missing_attentions(self, text: EncoderOutputs | None, audio: EncoderOutputs | None) -> None:
        """Warn, as transformers does, when attentions were asked for and an encoder with attention layers gave none:
        its attention implementation (sdpa, flash, ...) computes no weights."""
        missing = []
        for field, encoder, outputs in (("text_attentions", self.text_model, text), ("audio_attentions", self.audio_model, audio)):
            runs_attention = not (field == "audio_attentions" and self.config.audio_representation == "conv")
            if outputs is not None and runs_attention and not outputs.attentions:
                missing.append(f"{field} (the {field.split('_')[0]} encoder runs {encoder.config._attn_implementation!r})")
        if missing:
            logger.warning_once(
                f"output_attentions=True, but {' and '.join(missing)} is empty: only eager attention computes attention "
                "weights. Call model.set_attn_implementation('eager') or load with attn_implementation='eager'."
            )

    def check_inputs(
        self, input_ids: torch.Tensor | None, input_values: torch.Tensor | None, input_features: torch.Tensor | None = None
    ) -> None:
        """Raise a ValueError when a modality the fusion needs is missing, mis-shaped, given under the other speech
        encoder's key (`input_values` to a Whisper encoder, `input_features` to a wav2vec2-family one), or the batch
        sizes differ."""
        config = self.config
        fusion = config.fusion
        if config.uses_audio:
            wrong, wrong_tensor = ("input_values", input_values) if config.is_whisper else ("input_features", input_features)
            if wrong_tensor is not None:
                if config.is_whisper:
                    expected = ("log-mel input_features (batch, num_mel_bins, frames) from the checkpoint's "
                                "WhisperFeatureExtractor: build the processor with it")
                else:
                    expected = ("16 kHz samples as input_values (batch, samples) from a Wav2Vec2FeatureExtractor: "
                                "build the processor with it")
                raise ValueError(
                    f"{wrong} was given, but the speech encoder (audio_config.model_type="
                    f"{config.audio_config.model_type!r}) reads {expected}."
                )
        if config.is_whisper:
            bins = config.audio_config.num_mel_bins
            audio = ("input_features", input_features, 3, f"(batch, {bins} mel bins, frames) log-mel features")
        else:
            audio = ("input_values", input_values, 2, "(batch, samples) mono audio")
        needed = {"input_ids": (config.uses_text, input_ids, "text", 2, "(batch, tokens)"),
                  audio[0]: (config.uses_audio, audio[1], "speech", audio[2], audio[3])}
        batch_sizes = {}
        for name, (used, tensor, modality, rank, shape) in needed.items():
            if not used:
                continue
            if tensor is None:
                raise ValueError(f"fusion={fusion!r} needs {modality}: {name} is None.")
            if tensor.dim() != rank or (name == "input_features" and tensor.shape[1] != config.audio_config.num_mel_bins):
                raise ValueError(f"{name} must be {shape}; got shape {tuple(tensor.shape)}.")
            batch_sizes[name] = tensor.shape[0]
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"text and audio batch sizes differ: {batch_sizes}.")

    def emotion_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The multi-label soft-margin loss of `(batch, num_labels)` logits against multi-hot labels; with
        `config.emotion_pos_weight`, the same loss (binary cross-entropy with logits, averaged over emotions and the
        batch) with each emotion's positive term multiplied by its weight."""
        weights = self.config.emotion_pos_weight
        if weights is None:
            return F.multilabel_soft_margin_loss(logits, labels)
        if isinstance(weights, str):
            raise ValueError(
                f"emotion_pos_weight={weights!r} has not been computed yet: EmotionTrainer computes it from its training "
                "rows (kemd_emotion.trainer.automatic_positive_weights); set config.emotion_pos_weight to the numbers "
                "before computing a loss."
            )
        return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=logits.new_tensor(weights))

    def regression_loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """MSE, or 1 - CCC averaged over arousal and valence, as the config says."""
        if self.config.regression_loss == "mse":
            return F.mse_loss(predictions, targets)
        return 1.0 - concordance_correlation(predictions, targets).mean()


__all__ = ["KlueWav2Vec2ForEmotion", "KlueWav2Vec2PreTrainedModel", "KlueWav2Vec2EmotionOutput"]
