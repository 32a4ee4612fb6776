"""The run directory: where each result lives, the settings fingerprint that makes a directory one run's, resuming.

A run directory belongs to one configuration. `fingerprint` lists every option that can change a result: every
field of the three option dataclasses except those in `NOT_FINGERPRINTED` (so an option added later is covered by
default), plus the resolved preset, the seeds and the number of processes. ``run_args.json`` records it; a later
command in the same directory must have the same fingerprint (it then resumes) or `check_previous_run` stops it
before anything is written, listing each difference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

logger = logging.getLogger("kemd_emotion.experiment")

RUN_ARGS = "run_args.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.npz"
VALIDATION_PREDICTIONS = "validation_predictions.npz"
CHECKPOINT_PREFIX = "checkpoint"
TRAINER_STATE = "trainer_state.json"

NOT_FINGERPRINTED: dict[str, str] = {
    # what and where
    "output_dir": "where the run lives",
    "overwrite_output_dir": "starts the run over; not a setting of it",
    "rows": "selects rows of the table: each row trains in its own folder, independently of the others (its former "
            "name, fusion, was never fingerprinted either: older run directories compare equal)",
    "folds": "selects folds: a fold's result does not depend on which other folds run",
    "seed": "fingerprinted as the resolved 'seeds' list",
    "seeds": "fingerprinted as the resolved 'seeds' list",
    "preset": "fingerprinted as the resolved preset name, and every value it set is fingerprinted itself",
    "sample_dir": "a path; the corpus is fingerprinted by its rows and folds (split sha256)",
    "cache_dir": "a path; the corpus is fingerprinted by its rows and folds (split sha256)",
    "final_model": "what {row}/final holds, not the cross-validated results; final_info.json records it",
    # checkpoints: resuming reproduces the uninterrupted run
    "keep_checkpoints": "checkpointing", "save_strategy": "checkpointing", "save_steps": "checkpointing",
    "save_total_limit": "checkpointing", "save_on_each_node": "checkpointing", "save_only_model": "checkpointing",
    "enable_jit_checkpoint": "checkpointing", "resume_from_checkpoint": "checkpointing (the runner resumes itself)",
    # logging and reporting
    "logging_strategy": "logging", "logging_steps": "logging", "logging_first_step": "logging",
    "logging_nan_inf_filter": "logging (the loss is still computed the same)", "log_on_each_node": "logging",
    "log_level": "logging", "log_level_replica": "logging", "disable_tqdm": "logging", "report_to": "logging",
    "run_name": "logging", "project": "logging", "trackio_space_id": "logging", "trackio_bucket_id": "logging",
    "trackio_static_space_id": "logging", "skip_memory_metrics": "logging",
    "include_num_input_tokens_seen": "logging",
    # evaluation batching: the model's outputs do not depend on padding (tests/test_modeling.py)
    "per_device_eval_batch_size": "evaluation batching", "eval_accumulation_steps": "evaluation batching",
    "eval_do_concat_batches": "evaluation batching", "eval_use_gather_object": "evaluation batching",
    # speed and communication only
    "dataloader_pin_memory": "speed", "dataloader_persistent_workers": "speed", "dataloader_prefetch_factor": "speed",
    "ddp_find_unused_parameters": "communication", "ddp_bucket_cap_mb": "communication",
    "ddp_timeout": "communication", "ddp_backend": "communication",
    # sharing and bookkeeping
    "push_to_hub": "sharing", "hub_token": "sharing", "hub_private_repo": "sharing", "hub_model_id": "sharing",
    "hub_strategy": "sharing", "hub_always_push": "sharing", "hub_revision": "sharing",
    "local_rank": "which process", "debug": "diagnostics",
    "do_train": "not read by the runner", "do_eval": "not read by the runner", "do_predict": "not read by the runner",
}
"""Options that do not change a result, and why. Every other option is fingerprinted."""


# ---------------------------------------------------------------------------------------------------- fingerprint
def fingerprint(model_args, data_args, args, *, preset: str, seeds: list[int], world_size: int) -> dict:
    """Every option that can change a result -> its value (JSON types, sorted by name).

    Args:
        model_args, data_args, args: the parsed option dataclasses (`args` is a `TrainingArguments`).
        preset: the resolved preset name. seeds: the seeds every fold runs with. world_size: processes.
    """
    values = {}
    sections = (dataclasses.asdict(model_args), dataclasses.asdict(data_args), json.loads(args.to_json_string()))
    for section in sections:
        values.update({name: value for name, value in section.items() if name not in NOT_FINGERPRINTED})
    for path_option in ("data_dir", "manifest"):
        if values.get(path_option):
            values[path_option] = os.path.abspath(values[path_option])
    values.update(preset=preset, seeds=list(seeds), world_size=int(world_size))
    return json.loads(json.dumps(dict(sorted(values.items())), default=str))


def fingerprint_sha256(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def option_defaults(*dataclass_types) -> dict:
    """Option -> default, for options a newer version adds: absent from an old fingerprint, they count as their
    default (what the older code did)."""
    defaults = {}
    for cls in dataclass_types:
        for item in dataclasses.fields(cls):
            if item.default is not dataclasses.MISSING:
                defaults[item.name] = item.default
    return json.loads(json.dumps(defaults, default=str))


def fingerprint_differences(previous: dict, current: dict, defaults: dict | None = None) -> list[str]:
    """``["pooling: 'mean' -> 'last'", ...]`` for every option whose value differs (sorted by name)."""
    defaults = defaults or {}
    missing = object()
    lines = []
    for name in sorted(set(previous) | set(current)):
        old = previous.get(name, defaults.get(name, missing))
        new = current.get(name, defaults.get(name, missing))
        if old != new:
            shown = ["(not set)" if value is missing else repr(value) for value in (old, new)]
            lines.append(f"{name}: {shown[0]} -> {shown[1]}")
    return lines


def check_previous_run(output_dir: str | os.PathLike, current: dict, defaults: dict | None = None) -> bool:
    """Raise a ValueError if `output_dir` holds a run made with another fingerprint (or an unverifiable one).

    Returns True when a run with the same fingerprint is there (this command resumes it), False for a new run.
    """
    output_dir = Path(output_dir)
    recorded = read_json(output_dir / RUN_ARGS)
    how = ("Nothing was changed. To start over in that directory add --overwrite_output_dir (it deletes that run's "
           "results); to keep them, use another --output_dir.")
    if recorded is None:
        results = result_entries(output_dir)
        if results:
            raise ValueError(f"{output_dir} holds results of a run ({', '.join(path.name for path in results)}) but "
                             f"no {RUN_ARGS}: they cannot be checked against this command. {how}")
        return False
    previous = recorded.get("fingerprint")
    if previous is None:
        raise ValueError(f"{output_dir} holds a run whose {RUN_ARGS} records no settings fingerprint (an older "
                         f"kemd-emotion): its results cannot be checked against this command. {how}")
    differences = fingerprint_differences(previous, current, defaults)
    if differences:
        listing = "\n".join(f"  {line}" for line in differences)
        raise ValueError(f"{output_dir} holds a run made with other settings; its results cannot be mixed with this "
                         f"command's:\n{listing}\n{how}")
    return True


def check_split(output_dir: str | os.PathLike, split_sha256: str) -> None:
    """Raise a ValueError if the run in `output_dir` was cross-validated on other rows or other folds."""
    recorded = (read_json(Path(output_dir) / RUN_ARGS) or {}).get("split", {}).get("sha256")
    if recorded is not None and recorded != split_sha256:
        raise ValueError(
            f"{output_dir} holds a run whose folds tested other rows than this command's (split sha256 "
            f"{recorded[:12]} -> {split_sha256[:12]}): the corpus changed on disk, or rows were skipped differently. "
            "Nothing was changed. Start over with --overwrite_output_dir, or use another --output_dir."
        )


def split_sha256(segment_ids, folds) -> str:
    """A digest of the rows each fold tests (their segment IDs, in order): same corpus and split <-> same digest."""
    ids = np.asarray(segment_ids)
    tests = [[str(value) for value in ids[np.asarray(test, dtype=np.int64)]] for _, test in folds]
    return hashlib.sha256(json.dumps(tests, ensure_ascii=False).encode()).hexdigest()


def row_folders(output_dir: str | os.PathLike) -> list[str]:
    """The names of the row folders (``cat``, ``cat+rare``, ...) in `output_dir`, in the table's order."""
    from .rows import is_row_name, parse_rows

    output_dir = Path(output_dir)
    names = [path.name for path in output_dir.iterdir() if path.is_dir() and is_row_name(path.name)] \
        if output_dir.is_dir() else []
    return [row.name for row in parse_rows(",".join(names))] if names else []


def result_entries(output_dir: str | os.PathLike) -> list[Path]:
    """The results a run wrote into `output_dir`: its row folders and the table."""
    output_dir = Path(output_dir)
    return [output_dir / name for name in (*row_folders(output_dir), "summary.json", "summary.md")
            if (output_dir / name).exists()]


def run_entries(output_dir: str | os.PathLike, *, sample_dir_is_ours: bool = True,
                cache_dir_is_ours: bool = True) -> list[Path]:
    """What a run wrote into `output_dir` (and `--overwrite_output_dir` deletes); other files are left alone."""
    output_dir = Path(output_dir)
    names = [RUN_ARGS, "skipped_audio.json", "processor"]
    names += ["sample_corpus"] * sample_dir_is_ours + ["cache"] * cache_dir_is_ours
    return [output_dir / name for name in names if (output_dir / name).exists()] + result_entries(output_dir)


def clear_run(output_dir: str | os.PathLike, **ours) -> list[Path]:
    """Delete the run held in `output_dir` (`run_entries`); return what was deleted."""
    removed = run_entries(output_dir, **ours)
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


# ---------------------------------------------------------------------------------------------------- layout
def fold_directory(output_dir: str | os.PathLike, row: str, fold: int, seed: int | None = None) -> Path:
    """``{row}/fold{k}`` for a single-seed run (`seed` None), ``{row}/seed{s}/fold{k}`` with several seeds."""
    base = Path(output_dir) / row
    return (base if seed is None else base / f"seed{seed}") / f"fold{fold}"


def finished_runs(output_dir: str | os.PathLike, row: str) -> list[dict]:
    """The finished folds of `row`, both layouts: ``[{"seed", "fold", "metrics", "directory"}, ...]``.

    Sorted by seed (in the order ``run_args.json`` lists them) then fold. ``seed`` is None when neither the layout
    nor the metrics say it (runs of older versions).
    """
    output_dir = Path(output_dir)
    seed_order = (read_json(output_dir / RUN_ARGS) or {}).get("seeds") or []
    runs = []
    for path in [*(output_dir / row).glob(f"fold*/{METRICS}"), *(output_dir / row).glob(f"seed*/fold*/{METRICS}")]:
        fold_name, seed_name = path.parent.name, path.parent.parent.name
        if not fold_name[4:].isdigit():
            continue
        metrics = read_json(path)
        if metrics is None:
            continue
        seed = int(seed_name[4:]) if seed_name.startswith("seed") and seed_name[4:].isdigit() else metrics.get("seed")
        runs.append({"seed": seed, "fold": int(fold_name[4:]), "metrics": metrics, "directory": path.parent})

    def order(run):
        seed = run["seed"]
        rank = seed_order.index(seed) if seed in seed_order else len(seed_order) + (seed if seed is not None else -1)
        return rank, run["fold"]

    return sorted(runs, key=order)


def last_complete_checkpoint(directory: str | os.PathLike) -> str | None:
    """The newest Trainer checkpoint in `directory` that was written to the end, or None.

    The Trainer writes ``trainer_state.json`` last (and removes older checkpoints only after it), so a job killed
    while saving leaves a newer folder without a readable state: it is removed, and the previous one is used.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    candidates = sorted(
        (path for path in directory.glob(f"{CHECKPOINT_PREFIX}-*")
         if path.is_dir() and path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
        reverse=True,
    )
    for path in candidates:
        try:
            json.loads((path / TRAINER_STATE).read_text())
        except (OSError, ValueError):
            logger.warning("Removing %s: it was not written to the end (the job was killed while saving).", path)
            shutil.rmtree(path, ignore_errors=True)
            continue
        return str(path)
    return None


# ---------------------------------------------------------------------------------------------------- files
def write_json(path: str | os.PathLike, value) -> None:
    """Write JSON atomically (a temporary file, then a rename): a killed job never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """`np.savez`, but byte-for-byte reproducible (fixed zip timestamps) and atomic; no pickles inside."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.stem + ".tmp.npz")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, buffer.getvalue())
    os.replace(temporary, path)


def read_json(path: str | os.PathLike):
    """The JSON in `path`, or None when the file is missing or not (yet) valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


__all__ = ["RUN_ARGS", "METRICS", "PREDICTIONS", "VALIDATION_PREDICTIONS", "NOT_FINGERPRINTED", "fingerprint", "fingerprint_sha256",
           "fingerprint_differences", "option_defaults", "check_previous_run", "check_split", "split_sha256",
           "row_folders", "result_entries", "run_entries", "clear_run", "fold_directory", "finished_runs", "last_complete_checkpoint", "write_json",
           "write_npz", "read_json"]
