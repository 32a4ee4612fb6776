"""The runner's options: three dataclasses (`HfArgumentParser`), their parsing with a preset, and the list parsers.

The defaults of the options a preset sets are the paper's; from the command line a preset always fills them
(`kemd_emotion.experiment.presets`), so they matter only to code that builds the dataclasses itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser

from ..configuration_klue_wav2vec2 import EMOTIONS, positive_weights
from ..trainer import EmotionTrainingArguments
from .presets import AUTO, PRESET_NAMES, apply_preset
from .rows import MODIFIERS, PAPER_ROWS, ROW_SETS, parse_rows

FORMER_ROWS_OPTION = "fusion"
"""The former name of ``--rows``, still accepted (``--fusion cat`` is ``--rows cat``)."""
FINAL_MODELS = ("last_fold", "all_data", "none")
FROM_PRESET = " Set by --preset unless given (see the preset table in docs/experiment.md)."
AUTO_WEIGHT = "auto"


@dataclass
class ModelArguments:
    """Which encoders, and how they are pooled and fused."""

    rows: str = field(
        default="all",
        metadata={"help": "The table's rows, comma-separated: a fusion (text, speech, cat, add, ...) optionally with "
                          f"modifiers joined by '+' ({', '.join(MODIFIERS)}; e.g. 'cat+rare'), or a row set: "
                          f"{', '.join(f'{name} ({chr(44).join(rows)})' for name, rows in ROW_SETS.items())}. "
                          f"--{FORMER_ROWS_OPTION} is its former name (an alias)." + FROM_PRESET},
    )
    text_model: str | None = field(
        default=None, metadata={"help": "Hub id or folder of the text encoder (the paper: klue/bert-base). Without it "
                                        "and --audio_model, small random-init encoders are built offline."})
    audio_model: str | None = field(
        default=None, metadata={"help": "Hub id or folder of the wav2vec2 encoder (the paper: facebook/wav2vec2-base)."})
    pooling: str = field(default="last", metadata={"help": "mean, last or first (over real tokens / frames)."
                                                           + FROM_PRESET})
    audio_representation: str = field(
        default="conv",
        metadata={"help": "conv: wav2vec2's normalised convolutional features (the paper's 512-d vector; the "
                          "transformer layers are not run); hidden: the transformer's last hidden state; weighted: a "
                          "learned softmax-weighted sum of every layer (SUPERB). conv is wav2vec2's only: with a Whisper --audio_model, "
                          "a preset's conv becomes hidden." + FROM_PRESET})
    regression_loss: str = field(default="mse", metadata={"help": "mse or ccc (1 - CCC)."})
    emotion_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the multi-label soft-margin loss."})
    regression_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the arousal/valence loss."})
    classifier_dropout: float = field(default=0.1, metadata={"help": "Dropout on the fused vector."})
    emotion_pos_weight: str | None = field(
        default=None,
        metadata={"help": "Positive weight of each emotion in the emotion loss: 'auto' (negatives / positives among "
                          "each fold's training rows, clipped to [1, 10]), 7 comma-separated numbers, or none (the "
                          "paper's unweighted loss). The saved config records the numbers." + FROM_PRESET})
    tune_thresholds: bool = field(
        default=False,
        metadata={"help": "Hold out --validation_fraction of each fold's training rows (grouped like the folds), train "
                          "on the rest, and pick per emotion the decision threshold with the best F1 on the held-out "
                          "rows; saved in the model's config (decision_thresholds) and used for its labels. Scores "
                          "are reported at 0.5 and at the tuned thresholds." + FROM_PRESET})
    freeze_feature_encoder: bool = field(default=False, metadata={"help": "Keep wav2vec2's conv encoder fixed."})
    sample_hidden_size: int = field(default=64, metadata={"help": "Embedded default: width of the small encoders."})
    sample_num_layers: int = field(default=2, metadata={"help": "Embedded default: layers of the small BERT."})
    sample_conv_channels: int = field(
        default=32, metadata={"help": "Embedded default: channels of the small wav2vec2's 7 conv layers (16 did not "
                                  "hear arousal on the espeak-ng corpus; benchmarks/embedded_default_corpora.md)."})
    sample_vocab_size: int = field(
        default=2000, metadata={"help": "Embedded default: WordPiece vocabulary trained on the corpus' texts."})


@dataclass
class DataArguments:
    """Which corpus, and how it is split."""

    data_dir: str | None = field(
        default=None, metadata={"help": "A KEMDy19/KEMDy20 release folder. Without it the sample corpus is written "
                                        "to --sample_dir and used."})
    dataset_name: str | None = field(default=None, metadata={"help": "kemdy19 or kemdy20 (default: inferred)."})
    manifest: str | None = field(
        default=None,
        metadata={"help": "Instead of --data_dir: any labelled corpus as a manifest, a .csv, .tsv or .jsonl file with "
                          "one row per utterance (audio, emotion, and optionally text, arousal, valence, start, end, "
                          "id, speaker, session or group); see docs/experiment.md. Folds use its session (or group) "
                          "and speaker columns as KEMDy's."})
    manifest_columns: str | None = field(
        default=None,
        metadata={"help": "The manifest's own column names, comma-separated manifest_column=its_name pairs, e.g. "
                          "'text=발화문,emotion=감정'."})
    manifest_rating_scale: str = field(
        default="1,5", metadata={"help": "The manifest's arousal/valence scale, 'lowest,highest' (stored rescaled to "
                                         "KEMDy's 1-5)."})
    annotations: str = field(
        default="all", metadata={"help": "KEMDy19: speaker (own emotion rows) or all (also listener rows, as the "
                                         "seed paper did; a clip's two rows always share a fold)." + FROM_PRESET})
    cache_dir: str | None = field(
        default=None, metadata={"help": "datasets cache of the prepared corpus (default: OUTPUT_DIR/cache for the "
                                        "sample corpus, the datasets cache otherwise)."})
    num_folds: int = field(default=5, metadata={"help": "Number of cross-validation folds." + FROM_PRESET})
    fold_by: str = field(
        default="contiguous", metadata={"help": "contiguous (the seed paper: file order), session (no session or "
                                                "speaker in both train and test) or random. A clip is never on both "
                                                "sides." + FROM_PRESET})
    fold_seed: int = field(default=0, metadata={"help": "Seed of the session / random fold assignment."})
    folds: str | None = field(
        default=None, metadata={"help": "Run only these folds, e.g. '0,1' (default: all). The table then covers them."})
    validation_fraction: float = field(
        default=0.15, metadata={"help": "With --tune_thresholds: the share of each fold's training rows held out to "
                                        "tune the thresholds (whole clips; whole sessions and speakers with --fold_by "
                                        "session)."})
    max_audio_seconds: float = field(default=5.0, metadata={"help": "Audio is cropped to this many seconds."
                                                                    + FROM_PRESET})
    max_text_length: int = field(default=128, metadata={"help": "Transcripts are truncated to this many tokens."})
    max_samples: int | None = field(default=None, metadata={"help": "Use only the first N rows (quick trials)."})
    sample_dir: str | None = field(
        default=None, metadata={"help": "Where the sample corpus is written (default: OUTPUT_DIR/sample_corpus)."})
    sample_size: str = field(default="default", metadata={"help": "Sample corpus size: tiny or default."})
    sample_name: str = field(default="kemdy20", metadata={"help": "Sample corpus layout: kemdy19 or kemdy20."})


@dataclass
class RunArguments(EmotionTrainingArguments):
    """`TrainingArguments` with the paper's defaults (batch 32, learning rate 1e-5, 5 epochs, AdamW eps 1e-8) and the
    experiment's own options."""

    output_dir: str | None = field(default="runs/emotion", metadata={"help": "The run directory."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device (the paper: 32)."
                                                                           + FROM_PRESET})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Evaluation batch size per device."})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate (the paper: 1e-5)." + FROM_PRESET})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Epochs per fold (the paper: 5)." + FROM_PRESET})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW epsilon (the paper: 1e-8)." + FROM_PRESET})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint (for resuming): epoch or steps."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept per fold."})
    logging_steps: float = field(default=50, metadata={"help": "Log the training loss every N steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep False: the collator reads the raw text and audio columns."})
    train_sampling_strategy: str = field(
        default="group_by_length", metadata={"help": "group_by_length batches clips of similar duration."})
    length_column_name: str = field(default="duration", metadata={"help": "The column group_by_length reads."})
    seeds: str | None = field(
        default=None,
        metadata={"help": "Several seeds, comma-separated (e.g. '1,2,3'): every fold runs once per seed, and the table "
                          "adds the spread across seeds. Default: --seed alone."})
    final_model: str = field(
        default="last_fold",
        metadata={"help": "What {row}/final holds: last_fold (the model of the last fold, trained on the other "
                          "folds; with --seeds, of the first seed), all_data (one more training on every row) or none."})
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep the Trainer checkpoints of finished folds."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start over: delete the run held in --output_dir (its results, processor, summary) first. "
                          "Without it, a run directory made with other settings is refused."})
    preset: str = field(
        default=AUTO,
        metadata={"help": f"{AUTO}: 'paper' with --text_model/--audio_model, else 'sample'. paper: the seed paper's "
                          "recipe; sample: the embedded default (small encoders, CPU); best: our settings for real "
                          "encoders. Options given on the command line win over the preset."})


def argument_parser() -> HfArgumentParser:
    """The runner's command line: the three dataclasses' options, and --fusion, the former name of --rows."""
    parser = HfArgumentParser((ModelArguments, DataArguments, RunArguments))
    # Its own destination, not a second name of --rows' action, so that giving both can be told and refused.
    parser.add_argument(f"--{FORMER_ROWS_OPTION}", dest=FORMER_ROWS_OPTION, default=argparse.SUPPRESS,
                        help="The former name of --rows: the same values. Give one of them.")
    return parser


def parse_arguments(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, RunArguments, dict]:
    """Parse the command line (or one ``.json`` file) into the three dataclasses, with the preset applied.

    Options given explicitly always win over the preset. Returns the dataclasses and the preset record
    (`kemd_emotion.experiment.presets.apply_preset`).

    Raises:
        ValueError: an unknown preset, both --rows and --fusion, both --seed and --seeds, or a bad --seeds list.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argument_parser()
    if len(argv) == 1 and argv[0].endswith(".json"):
        values = json.loads(Path(argv[0]).read_text())
        explicit = set(values)
    else:
        namespace, remaining = parser.parse_known_args(argv)
        if remaining:
            parser.error(f"unrecognized arguments: {' '.join(remaining)}")
        values, explicit = vars(namespace), explicit_options(parser, argv)
    if FORMER_ROWS_OPTION in values:
        if "rows" in explicit:
            raise ValueError(f"give --rows or --{FORMER_ROWS_OPTION} (its former name), not both.")
        values["rows"] = values.pop(FORMER_ROWS_OPTION)
        explicit = (set(explicit) - {FORMER_ROWS_OPTION}) | {"rows"}

    preset = apply_preset(values, explicit, values.get("preset", AUTO))
    if values.get("seeds") is not None:
        if "seed" in explicit:
            raise ValueError("give --seed or --seeds, not both (--seeds 7 runs seed 7 alone).")
        parse_seeds(values["seeds"])
    if "ddp_find_unused_parameters" not in explicit and values.get("audio_representation") == "conv":
        # Every parameter gets a gradient with conv features; "hidden" may skip wav2vec2's mask embedding.
        values["ddp_find_unused_parameters"] = False
    if not has_accelerator():
        if "use_cpu" not in explicit:
            # Without it, a CPU-only `torchrun --nproc_per_node 2` leaves the Trainer thinking it is alone in every
            # process (no DDP, each process its own "main"); with it, the processes join one gloo group.
            values["use_cpu"] = True
        if "dataloader_pin_memory" not in explicit:
            values["dataloader_pin_memory"] = False  # pinning needs an accelerator; torch warns on every loader
    model_args, data_args, run_args = parser.parse_dict(values)
    return model_args, data_args, run_args, preset


def has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


def explicit_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options present in `argv` (parsed again with every default suppressed)."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        namespace, _ = parser.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    return set(vars(namespace))


def parse_row_names(value: str) -> list[str]:
    """``--rows``: ``"all"`` -> the paper's four rows; ``"cat+rare,text"`` -> ``["text", "cat+rare"]`` (row names,
    see `kemd_emotion.experiment.rows`); raises on unknown names."""
    return [row.name for row in parse_rows(value)]


def parse_positive_weight(value, labels=EMOTIONS) -> str | list[float] | None:
    """``--emotion_pos_weight``: None / ``"none"`` -> None, ``"auto"`` -> ``"auto"``, ``"1,2,..."`` -> one float per
    label of `labels` (KEMDy's seven `EMOTIONS` by default; a manifest's own label set); `labels=None` accepts any
    count of positive numbers (the check before the labels are known).

    Raises:
        ValueError: naming the option and the accepted values.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, str) and value.strip() == AUTO_WEIGHT:
        return AUTO_WEIGHT
    try:
        weights = [float(part) for part in value.split(",")] if isinstance(value, str) else value
        return positive_weights(weights, len(weights) if labels is None else len(labels))
    except (ValueError, TypeError):
        pass
    count = "one or more" if labels is None else str(len(labels))
    names = "" if labels is None else f" ({', '.join(labels)})"
    raise ValueError(f"--emotion_pos_weight {value!r}: expected {AUTO_WEIGHT!r} (from each fold's training rows), "
                     f"'none', or {count} positive numbers, comma-separated, one per emotion{names}.")


def parse_manifest_columns(value: str | None) -> dict[str, str]:
    """``--manifest_columns``: ``"text=발화문,emotion=감정"`` -> ``{"text": "발화문", "emotion": "감정"}``; None -> {}.

    >>> parse_manifest_columns("text=발화문, emotion=감정")
    {'text': '발화문', 'emotion': '감정'}

    Raises:
        ValueError: a pair without ``=``, an empty name, or a manifest column given twice.
    """
    if value is None or not str(value).strip():
        return {}
    columns: dict[str, str] = {}
    for pair in str(value).split(","):
        ours, sign, theirs = pair.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sign or not ours or not theirs:
            raise ValueError(f"--manifest_columns {value!r}: {pair!r} is not manifest_column=its_name; expected "
                             "comma-separated pairs such as 'text=발화문,emotion=감정'.")
        if ours in columns:
            raise ValueError(f"--manifest_columns {value!r}: {ours!r} is given twice.")
        columns[ours] = theirs
    return columns


def parse_rating_scale(value: str) -> tuple[float, float]:
    """``--manifest_rating_scale``: ``"1,7"`` -> ``(1.0, 7.0)``; raises unless two numbers, lowest < highest."""
    try:
        lowest, highest = (float(part) for part in str(value).split(","))
    except ValueError:
        raise ValueError(f"--manifest_rating_scale {value!r}: expected 'lowest,highest', e.g. '1,5'.") from None
    if not lowest < highest:
        raise ValueError(f"--manifest_rating_scale {value!r}: the lowest value must be below the highest.")
    return lowest, highest


def parse_folds(value: str | None, num_folds: int) -> list[int]:
    """``None`` -> every fold; ``"0,2"`` -> ``[0, 2]``; raises on non-integers and folds outside 0..num_folds-1."""
    if value is None:
        return list(range(num_folds))
    expected = f"fold numbers between 0 and {num_folds - 1} (--num_folds {num_folds}), comma-separated"
    try:
        folds = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"--folds {value!r}: expected {expected}.") from None
    if not folds or folds[0] < 0 or folds[-1] >= num_folds:
        raise ValueError(f"--folds {value!r}: expected {expected}.")
    return folds


def parse_seeds(value: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (in the order given); raises on an empty list, non-integers, negative or
    too large seeds (numpy takes 0 .. 2**32 - 1) and duplicates."""
    parts = [part.strip() for part in str(value).split(",")]
    if not any(parts):
        raise ValueError(f"--seeds {value!r}: expected one or more integer seeds, comma-separated (e.g. '1,2,3').")
    seeds = []
    for part in parts:
        try:
            seed = int(part)
        except ValueError:
            raise ValueError(f"--seeds {value!r}: {part!r} is not an integer; expected integer seeds, comma-separated "
                             "(e.g. '1,2,3').") from None
        if not 0 <= seed < 2**32:
            raise ValueError(f"--seeds {value!r}: {seed} is outside 0 .. 2**32 - 1.")
        seeds.append(seed)
    duplicates = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if duplicates:
        raise ValueError(f"--seeds {value!r}: {', '.join(map(str, duplicates))} given twice; each seed runs once.")
    return seeds


__all__ = ["ModelArguments", "DataArguments", "RunArguments", "parse_arguments", "parse_row_names", "parse_folds",
           "parse_positive_weight", "parse_seeds", "parse_manifest_columns", "parse_rating_scale", "explicit_options", "has_accelerator", "PAPER_ROWS", "FINAL_MODELS", "PRESET_NAMES"]
