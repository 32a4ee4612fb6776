"""Presets: named, documented sets of option values (the seed paper's recipe, the embedded default, ours).

One row per option, one value per preset; `PRESETS` and the preset table of docs/experiment.md are read from these rows. A preset
fills every option of its column that the command line does not give; an option given explicitly always wins, and
the run records it (``run_args.json`` -> ``preset.overrides``). To add an option to the presets, add a row.

- ``paper``: the seed paper in every setting it states (values it does not state are marked and are our defaults).
- ``sample``: the embedded default: the synthetic sample corpus and small random-init encoders, on a CPU.
- ``best``: this package's recommended settings for real encoders.
- ``auto`` (not a column): ``paper`` when ``--text_model`` / ``--audio_model`` is given, ``sample`` otherwise.

One rule adapts a preset to the speech encoder, here and nowhere else (`speech_feature_rule`): ``conv`` (wav2vec2's
convolutional vector, the paper's speech feature) does not exist for a Whisper encoder, so when a preset fills
``conv`` and ``--audio_model`` is a Whisper checkpoint it fills ``hidden`` (the encoder's last hidden layer) instead;
the record says so (``preset.adapted``). An explicit ``--audio_representation conv`` is not changed (and raises).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PRESET_NAMES = ("paper", "sample", "best")
"""The presets, in the table's column order."""
AUTO = "auto"
ENCODER_OPTIONS = ("text_model", "audio_model")
"""Given or filled as a pair: when the command line names either encoder, the preset fills neither."""


@dataclass(frozen=True)
class PresetOption:
    """One option's value in each preset, whether the seed paper states it, and why the others differ."""

    option: str
    values: Mapping[str, object]
    paper_states: bool
    why: str = ""


PRESET_OPTIONS: tuple[PresetOption, ...] = (
    PresetOption("rows", {"paper": "all", "sample": "all,prosody", "best": "cross"}, True,
                 "The table's rows: all is the paper's four (--rows full adds every other row of the main table in "
                 "docs/results.md). sample: and the eGeMAPS baseline (prosody: 88 openSMILE functionals, a linear head), "
                 "against which every speech row is read. best: cross-modal attention between the token and frame sequences; on the sample corpus "
                 "cross+weighted+posweight is the best row (macro F1 +13.3 over the paper's best row in 5 of 5 "
                 "folds, CCC avg +1.4)."),
    PresetOption("text_model", {"paper": "klue/bert-base", "sample": None, "best": "klue/bert-base"}, True,
                 "sample: small random-init encoders built offline (no download), so the job runs anywhere."),
    PresetOption("audio_model", {"paper": "facebook/wav2vec2-base", "sample": None, "best": "facebook/wav2vec2-base"},
                 True, "As text_model."),
    PresetOption("pooling", {"paper": "last", "sample": "mean", "best": "mean"}, True,
                 "The paper pools the last time step: BERT's final [SEP] and one 20 ms wav2vec2 frame. The mean over "
                 "every real token and frame uses the whole clip."),
    PresetOption("audio_representation", {"paper": "conv", "sample": "conv", "best": "weighted"}, True,
                 "conv is the paper's 512-d normalised convolutional vector (the transformer layers are not run). "
                 "best: a learned weighting of every speech layer (SUPERB); on the sample corpus it raised CCC avg "
                 "by 2.8 over cat in 5 of 5 folds. It runs the wav2vec2 transformer, which conv skips. A Whisper --audio_model "
                 "has no conv vector: where a preset fills conv, it fills hidden (the encoder's last hidden layer, "
                 "the paper's choice of one layer's output) instead."),
    PresetOption("max_audio_seconds", {"paper": 5.0, "sample": 2.0, "best": 5.0}, True,
                 "sample: its clips are 1-2 s long; a 2 s crop keeps CPU batches small."),
    PresetOption("max_text_length", {"paper": 128, "sample": 128, "best": 128}, False),
    PresetOption("per_device_train_batch_size", {"paper": 32, "sample": 16, "best": 16}, True,
                 "sample: about 20 optimizer steps per epoch on ~320 training rows. best: the paper's 5 epochs of "
                 "batch 32 were ~3,200 steps on its 20k rows and are ~45 on a few hundred; batch 16 doubles the "
                 "steps."),
    PresetOption("learning_rate", {"paper": 1e-5, "sample": 4e-3, "best": 1e-4}, True,
                 "sample: random-init small encoders learn nothing at 1e-5; they need a much larger step. best: "
                 "1e-5 over ~45-100 steps barely moves pretrained encoders on a few hundred rows (e5, text only, "
                 "384 Korean utterances, session folds: CCC valence 8.3 and micro F1 below the majority baseline "
                 "at the paper's preset; 91.5 on one fold at 1e-4 / heads 1e-3 / 10 epochs / batch 16 / mean)."),
    PresetOption("head_learning_rate", {"paper": None, "sample": None, "best": 1e-3}, True,
                 "The paper trains everything at one rate. best: the fusion projection and the heads start from "
                 "random weights and get their own, larger step (1e-3; the encoders keep --learning_rate): on the "
                 "corpus above it alone raised CCC valence from 8.3 to 16.9 at the paper's 1e-5."),
    PresetOption("num_train_epochs", {"paper": 5.0, "sample": 10.0, "best": 10.0}, True,
                 "sample: training from scratch; with 6 epochs the speech row of the espeak-ng corpus reached CCC "
                 "arousal 19.9 on its first fold, with 10 30.3 (benchmarks/embedded_default_corpora.md). best: 10 "
                 "epochs, ~200 steps on ~320 training rows at batch 16 (on a corpus of 20k rows, fewer do: "
                 "--num_train_epochs)."),
    PresetOption("regression_loss", {"paper": "mse", "sample": "ccc", "best": "mse"}, False,
                 "sample: 1 - CCC, the score itself (standard for dimensional emotion): with the squared error the "
                 "small speech encoder learnt to predict the mean arousal on the espeak-ng corpus (CCC 0.7 on its "
                 "first fold with 32 conv channels; 19.9 with 1 - CCC)."),
    PresetOption("adam_epsilon", {"paper": 1e-8, "sample": 1e-8, "best": 1e-8}, True),
    PresetOption("warmup_steps", {"paper": 0.0, "sample": 0.1, "best": 0.0}, False,
                 "sample: 10 % warm-up (a float < 1 is a fraction of the steps) steadies the large step."),
    PresetOption("weight_decay", {"paper": 0.0, "sample": 0.01, "best": 0.0}, False,
                 "sample: light regularisation for training from scratch."),
    PresetOption("num_folds", {"paper": 5, "sample": 5, "best": 5}, True),
    PresetOption("fold_by", {"paper": "contiguous", "sample": "session", "best": "session"}, True,
                 "session folds keep every session and speaker on one side, so the scores say how the model does on "
                 "voices it never heard; contiguous file-order folds share speakers between train and test."),
    PresetOption("emotion_pos_weight", {"paper": None, "sample": None, "best": "auto"}, False,
                 "best: each emotion's positive term weighted by negatives / positives of the fold's training rows "
                 "(clipped to [1, 10]), so that rare emotions are predicted at all: on the sample corpus it raised "
                 "macro F1 by 10-13 points on every fusion, in 5 of 5 folds (README, main table). sample: the "
                 "paper's loss; its +posweight / +rare rows set it."),
    PresetOption("tune_thresholds", {"paper": False, "sample": False, "best": False}, False,
                 "Thresholds tuned on a slice of each fold's training rows did not help on the sample corpus (a "
                 "slice of one or two sessions, 2-4 examples of a rare emotion: they lowered macro F1 next to the "
                 "positive weights); try --tune_thresholds where a slice holds many examples of each emotion."),
    PresetOption("annotations", {"paper": "all", "sample": "speaker", "best": "speaker"}, True,
                 "KEMDy19: a listener row labels what the OTHER actor felt while hearing the clip: the same audio and "
                 "text with a second, different target. Speaker rows label the voice that is heard. (KEMDy20 has "
                 "speaker rows only.)"),
)
"""The preset table: one row per option."""

PRESETS: dict[str, dict[str, object]] = {
    name: {row.option: row.values[name] for row in PRESET_OPTIONS} for name in PRESET_NAMES
}
"""Preset name -> {option: value}."""

SAMPLE_PRESET = PRESETS["sample"]
"""The embedded default's values (kept under its former name)."""


def resolve_preset(requested: str, values: Mapping[str, object]) -> str:
    """``auto`` -> ``paper`` when `values` name an encoder, else ``sample``; a preset name -> itself.

    Raises:
        ValueError: an unknown preset name.
    """
    if requested == AUTO:
        return "paper" if any(values.get(option) for option in ENCODER_OPTIONS) else "sample"
    if requested not in PRESETS:
        raise ValueError(f"--preset {requested!r} is not a preset; expected one of {AUTO}, {', '.join(PRESET_NAMES)}.")
    return requested


def apply_preset(values: dict, explicit: set[str], requested: str) -> dict:
    """Fill `values` (option -> value, updated in place) from the preset for every option not in `explicit`.

    Returns the record ``run_args.json`` keeps: ``{"requested", "preset", "values" (the whole column), "applied"
    (what it filled), "overrides" ({option: {"preset", "given"}} for explicit options that differ from the
    preset), "explicit"}``.
    """
    name = resolve_preset(requested, values)
    explicit = set(explicit)
    if explicit & set(ENCODER_OPTIONS):
        explicit |= set(ENCODER_OPTIONS)  # one encoder given: the preset must not pair it with another
    applied, overrides = {}, {}
    for option, value in PRESETS[name].items():
        if option in explicit:
            if values.get(option) != value:
                overrides[option] = {"preset": value, "given": values.get(option)}
        else:
            values[option] = value
            applied[option] = value
    adapted = speech_feature_rule(values, applied)
    return {"requested": requested, "preset": name, "values": dict(PRESETS[name]), "applied": applied,
            "overrides": overrides, "explicit": sorted(explicit), "adapted": adapted}


WHISPER_SPEECH_FEATURE = "hidden"
"""What a preset's ``conv`` becomes for a Whisper speech encoder: its last hidden layer."""


def speech_feature_rule(values: dict, applied: dict) -> dict:
    """The one rule that fits a preset to the speech encoder: ``conv`` filled by the preset, Whisper
    ``--audio_model`` -> ``hidden``. Updates `values` and `applied` in place.

    ``conv`` is wav2vec2's normalised convolutional vector (the paper's 512-d feature, transformer layers not run);
    Whisper has no such vector (its two convolutions feed the transformer directly), so the nearest reading of the
    paper -- one layer's output, pooled -- is the encoder's last hidden layer. Only a value the preset filled is
    changed; one given on the command line stays (and a Whisper model refuses ``conv`` with its own error).

    Returns:
        ``{option: {"preset": value, "used": value, "why": ...}}`` for each value changed (empty when none).
    """
    if applied.get("audio_representation") != "conv" or not is_whisper_checkpoint(values.get("audio_model")):
        return {}
    values["audio_representation"] = applied["audio_representation"] = WHISPER_SPEECH_FEATURE
    return {"audio_representation": {"preset": "conv", "used": WHISPER_SPEECH_FEATURE,
                                     "why": "a Whisper speech encoder has no conv vector: its last hidden layer"}}


def is_whisper_checkpoint(name_or_path) -> bool:
    """Whether `name_or_path` (a folder or a Hub id) holds a Whisper model: its ``config.json``'s ``model_type``;
    without a local folder, transformers' `AutoConfig` (the cache or the Hub), then the name itself."""
    if not name_or_path:
        return False
    config_file = Path(str(name_or_path)) / "config.json"
    if config_file.is_file():
        return json.loads(config_file.read_text()).get("model_type") == "whisper"
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(name_or_path)).model_type == "whisper"
    except Exception:  # offline, or not a checkpoint (yet): judge by the name, as a user would
        return "whisper" in str(name_or_path).lower()


def preset_table_markdown() -> str:
    """The preset table of docs/experiment.md, from `PRESET_OPTIONS`."""
    lines = ["| option | paper | sample | best | why we differ |", "|---|---|---|---|---|"]
    for row in PRESET_OPTIONS:
        cells = [_format(row.values[name]) + (" †" if name == "paper" and not row.paper_states else "")
                 for name in PRESET_NAMES]
        lines.append(f"| `--{row.option}` | " + " | ".join(cells) + f" | {row.why} |")
    return "\n".join(lines) + "\n"


def _format(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return f"`{value}`" if isinstance(value, str) else str(value)


__all__ = ["PRESETS", "PRESET_NAMES", "PRESET_OPTIONS", "PresetOption", "SAMPLE_PRESET", "AUTO", "ENCODER_OPTIONS",
           "resolve_preset", "apply_preset", "preset_table_markdown",
           "speech_feature_rule", "is_whisper_checkpoint", "WHISPER_SPEECH_FEATURE"]
