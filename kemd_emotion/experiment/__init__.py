"""The seed paper's experiment: k-fold cross-validation of the text-only, speech-only, cat and add models, and its table.

`examples/run_emotion.py` is a thin wrapper around `main`; everything here is importable so that tests and other
scripts can run folds, resume them and rebuild the table. Where things are:

    arguments.py       the options (three dataclasses), their parsing, --rows / --folds / --seeds lists
    presets.py         paper / sample / best: one row per option (the preset table in docs/experiment.md is made from it)
    rows.py            the table's rows: the model's fusion and modifiers (cat+rare, ...), row sets
    run_directory.py   the layout below, the settings fingerprint, resuming, atomic and reproducible files
    preparation.py     the corpus, unusable clips left out, the processor, the folds (checked for leaks)
    fold.py            one fold's training and testing, given a FoldSetup and a row; the final models (no pickles)
    processes.py       which process writes, and how all of them take the same branch
    summary.py         summary.json and the table (mean ± std over seeds x folds)
    model_card.py      each final model's README.md and figures, from the run directory (as the summary)
    runner.py          `Experiment` (the loop) and `main`

Run directory (``OUTPUT_DIR``)::

    run_args.json                        the settings: preset record, fingerprint, seeds, split, environment
    processor/                           the processor every fold uses (tokenizer + feature extractor)
    skipped_audio.json                   rows left out because their audio cannot be used (segment_id -> reason)
    sample_corpus/, cache/               the embedded default's synthetic corpus and its datasets cache
    {row}/fold{k}/metrics.json        test metrics of fold k (k = 0..K-1); written last: it marks the fold done
    {row}/fold{k}/predictions.npz     segment_id (N,), logits (N, 7), regression (N, 2), labels (N, 7),
                                         regression_labels (N, 2), in the order of the fold's test rows
    {row}/seed{s}/fold{k}/...         the same per seed, when --seeds gives several
    {row}/fold{k}/checkpoint-*/       Trainer checkpoints, for resuming; removed when the fold is done
                                         (unless --keep_checkpoints)
    {row}/all_data/checkpoint-*/      with --final_model all_data: checkpoints of the training on all rows
    {row}/final/                      the saved model (safetensors + code, trust_remote_code), processor and
                                         training_args.json; final_info.json says what it is; README.md + figures:
                                         its model card. No pickle files.
    summary.json, summary.md             the table: mean ± std over all seed x fold runs

A run directory belongs to one configuration: starting the same command again resumes it (a fold whose
``metrics.json`` exists is skipped; a fold with checkpoints continues from the last one: model, optimizer,
scheduler, RNG and data order). A command with other settings is refused before anything is written, with the
list of differences; ``--overwrite_output_dir`` starts over.

Distributed: every process runs the fold loop (each Trainer is data-parallel over all of them); the main process
alone prepares the data first, and alone writes files. Multi-node runs need ``--output_dir`` on a shared filesystem.
"""

from .arguments import (
    FINAL_MODELS,
    DataArguments,
    ModelArguments,
    RunArguments,
    has_accelerator,
    parse_arguments,
    parse_folds,
    parse_row_names,
    parse_seeds,
)
from .fold import EXIT_AFTER_SAVE_ENV
from .model_card import load_run, write_model_card
from .presets import PRESET_NAMES, PRESET_OPTIONS, PRESETS, SAMPLE_PRESET, preset_table_markdown
from .rows import PAPER_ROWS
from .run_directory import (
    NOT_FINGERPRINTED,
    fingerprint,
    finished_runs,
    fold_directory,
    last_complete_checkpoint,
    read_json,
    write_json,
    write_npz,
)
from .runner import Experiment, main
from .summary import ROW_NAMES, TABLE_METRICS, format_table, write_summary

__all__ = [
    "ModelArguments",
    "DataArguments",
    "RunArguments",
    "Experiment",
    "parse_arguments",
    "write_summary",
    "write_model_card",
    "load_run",
    "format_table",
    "last_complete_checkpoint",
    "main",
    "SAMPLE_PRESET",
    "EXIT_AFTER_SAVE_ENV",
    "PRESETS",
    "PRESET_NAMES",
    "PRESET_OPTIONS",
    "preset_table_markdown",
    "NOT_FINGERPRINTED",
    "fingerprint",
    "finished_runs",
    "fold_directory",
    "parse_row_names",
    "PAPER_ROWS",
    "parse_folds",
    "parse_seeds",
    "has_accelerator",
    "read_json",
    "write_json",
    "write_npz",
    "FINAL_MODELS",
    "ROW_NAMES",
    "TABLE_METRICS",
]
