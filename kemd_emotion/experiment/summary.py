"""The table: every finished (seed, fold) of each row -> ``summary.json`` and ``summary.md``.

``summary.json``::

    rows[row] = {
        "title", "fusion", "tuned",                                        # tuned: decision thresholds were tuned
        "folds": [k, ...], "seeds": [s, ...], "runs": [[s, k], ...],       # values below follow "runs"
        "metrics": {name: {"mean", "std", "values",                       # over every seed x fold run (ddof=1)
                           "seed_means", "seed_std"}},                    # fold mean per seed; its std over seeds
        "support": {emotion: n},                                          # test utterances with it (first seed)
    }
    paired_differences = {"reference": row, "rows": {row: {metric: {"mean", "std", "values", "improved", "runs"}}}}

F-scores without a suffix are at the fixed 0.5; ``*_tuned`` ones at the row's tuned per-emotion thresholds (the
labels its model gives). With one seed ``seed_std`` is None. The table shows mean ± std over all runs and, with
several seeds, the std across seeds of the fold mean in brackets: a difference between two rows smaller than that is
seed noise. The paired differences compare each row with the paper's row of highest macro F1, run by run (same seed,
same fold), on the labels each model gives (tuned F-scores where a row has them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..configuration_klue_wav2vec2 import EMOTIONS
from ..metrics import TUNED_SUFFIX
from .rows import FUSION_TITLES, PAPER_ROWS, parse_rows
from .run_directory import RUN_ARGS, finished_runs, read_json, write_json

ROW_NAMES = {name: FUSION_TITLES[name] for name in PAPER_ROWS}
TABLE_METRICS = (("f1_micro", "F1 micro @0.5"), ("f1_macro", "F1 macro @0.5"), ("ccc_arousal", "CCC arousal"),
                 ("ccc_valence", "CCC valence"), ("ccc_avg", "CCC avg"))
TUNED_METRICS = ((f"f1_micro{TUNED_SUFFIX}", "F1 micro @tuned"), (f"f1_macro{TUNED_SUFFIX}", "F1 macro @tuned"))
"""Columns added after the 0.5 F-scores when a row tuned its thresholds."""
PAIRED_METRICS = ("f1_macro", "f1_micro", "ccc_avg")


def decision_value(metrics: dict, name: str):
    """`name` as the model's own labels score it: the tuned F-score when the run has one, else the 0.5 one."""
    return metrics.get(f"{name}{TUNED_SUFFIX}", metrics.get(name))


def write_summary(output_dir: str | os.PathLike, rows=PAPER_ROWS, folds: list[int] | None = None,
                  seeds: list[int] | None = None) -> dict:
    """Read every finished ``{row}/[seed{s}/]fold{k}/metrics.json`` under `output_dir` of the `rows` (names), write
    ``summary.json`` and ``summary.md``, and return the summary.

    Rows: those with at least one finished run, the paper's first in its order, then the majority-class baseline. Only
    the given `folds` and `seeds` count (default: all). A run whose metrics were made with other settings than
    ``run_args.json`` records (another fingerprint) is refused with a ValueError.
    """
    output_dir = Path(output_dir)
    run_args = read_json(output_dir / RUN_ARGS) or {}
    expected_fingerprint = run_args.get("fingerprint_sha256")
    table, baseline_folds = {}, {}
    for row in parse_rows(",".join(rows)):
        runs = [run for run in finished_runs(output_dir, row.name)
                if (folds is None or run["fold"] in folds) and (seeds is None or run["seed"] in seeds)]
        foreign = [str(run["directory"].relative_to(output_dir)) for run in runs
                   if expected_fingerprint and run["metrics"].get("fingerprint_sha256") not in (None, expected_fingerprint)]
        if foreign:
            raise ValueError(f"{output_dir}: {', '.join(foreign)} were trained with other settings than {RUN_ARGS} "
                             "records; they cannot be summarised together.")
        if not runs:
            continue
        for run in runs:
            baseline_folds.setdefault(run["fold"], run["metrics"])
        first = runs[0]["metrics"]
        names = [name for name in first if isinstance(first[name], float) and name.startswith(("f1_", "ccc_", "pearson_"))]
        run_seeds = list(dict.fromkeys(run["seed"] for run in runs))
        first_seed_runs = [run for run in runs if run["seed"] == run_seeds[0]]
        emotions = tuple(first.get("labels") or run_args.get("labels") or EMOTIONS)
        table[row.name] = {
            "title": row.title,
            "fusion": row.fusion,
            "tuned": any(f"f1_macro{TUNED_SUFFIX}" in run["metrics"] for run in runs),
            "folds": sorted({run["fold"] for run in runs}),
            "seeds": run_seeds,
            "runs": [[run["seed"], run["fold"]] for run in runs],
            "metrics": {name: _statistics(runs, name, run_seeds) for name in names},
            "labels": list(emotions),
            "support": {emotion: sum(int(run["metrics"].get(f"support_{emotion}", 0)) for run in first_seed_runs)
                        for emotion in emotions},
            "_runs": runs,
        }
    baseline = None
    if baseline_folds:
        chosen = [baseline_folds[fold] for fold in sorted(baseline_folds)]
        baseline = {
            "labels": [m["majority_label"] for m in chosen],
            "folds": sorted(baseline_folds),
            "metrics": {name: _mean_std([m[f"majority_{name}"] for m in chosen])
                        for name in ("f1_micro", "f1_macro", "f1_weighted")},
        }
    split = run_args.get("split", {})
    num_folds = split.get("num_folds")
    num_seeds = len(run_args.get("seeds") or [None])
    summary = {
        "dataset": split.get("manifest") or run_args.get("data_dir_used"),
        "labels": list(run_args.get("labels") or EMOTIONS),
        "num_rows": run_args.get("num_rows"),
        "num_folds": num_folds,
        "fold_by": split.get("fold_by"),
        "seeds": run_args.get("seeds"),
        "preset": run_args.get("preset", {}).get("preset"),
        "text_model": split.get("text_model"),
        "audio_model": split.get("audio_model"),
        "complete": bool(table) and all(len(row["runs"]) == (num_folds or 0) * num_seeds for row in table.values()),
        "rows": table,
        "majority_baseline": baseline,
        "paired_differences": paired_differences({name: row.pop("_runs") for name, row in table.items()}),
    }
    write_json(output_dir / "summary.json", summary)
    (output_dir / "summary.md").write_text(format_table(summary), encoding="utf-8")
    return summary


def paired_differences(runs_by_row: dict[str, list[dict]]) -> dict | None:
    """Each row minus the reference row, run by run (same seed and fold): F1 macro and micro (as each model labels,
    see `decision_value`) and CCC avg. The reference is the paper's row (text, speech, cat, add) with the highest mean
    macro F1; None when the rows hold no paper row or nothing else."""
    paper = [name for name in PAPER_ROWS if name in runs_by_row]
    if not paper or len(runs_by_row) < 2:
        return None

    def mean_macro(name):
        return float(np.mean([decision_value(run["metrics"], "f1_macro") for run in runs_by_row[name]]))

    reference = max(paper, key=mean_macro)  # the first among equals: max keeps the earliest
    by_run = {(run["seed"], run["fold"]): run["metrics"] for run in runs_by_row[reference]}
    rows = {}
    for name, runs in runs_by_row.items():
        if name == reference:
            continue
        pairs = [(run["metrics"], by_run[(run["seed"], run["fold"])]) for run in runs
                 if (run["seed"], run["fold"]) in by_run]
        if not pairs:
            continue
        rows[name] = {}
        for metric in PAIRED_METRICS:
            values = [decision_value(ours, metric) - decision_value(theirs, metric) for ours, theirs in pairs
                      if decision_value(ours, metric) is not None and decision_value(theirs, metric) is not None]
            if values:
                rows[name][metric] = {**_mean_std(values), "improved": sum(value > 0 for value in values),
                                      "runs": len(values)}
    return {"reference": reference, "rows": rows}


def format_table(summary: dict) -> str:
    """The table in Markdown: F-scores at 0.5 (and at tuned thresholds when a row has them), CCC arousal / valence /
    avg (x100, mean ± std over the runs); then F1 per emotion and the paired differences with the paper's best row."""
    seeds = summary.get("seeds") or []
    several = len(seeds) > 1
    encoders = (f"{summary['text_model']} + {summary['audio_model']}" if summary.get("text_model")
                or summary.get("audio_model") else "small random-init encoders (embedded default)")
    folds = summary.get("num_folds")
    if several:
        spread = (f"Scores x100, mean ± std over all {len(seeds)} seeds x {folds} folds; [± s]: std across the seeds "
                  f"({', '.join(map(str, seeds))}) of the {folds}-fold mean.")
    else:
        spread = "Scores x100, mean ± std over folds" + (f" (seed {seeds[0]})." if seeds else ".")
    rows = summary["rows"]
    tuned = any(row.get("tuned") for row in rows.values())
    columns = list(TABLE_METRICS[:2]) + list(TUNED_METRICS if tuned else ()) + list(TABLE_METRICS[2:])
    lines = [f"{folds}-fold cross-validation ({summary.get('fold_by')} folds) on {summary.get('num_rows')} utterances "
             f"of `{summary.get('dataset')}`; {encoders}. {spread}", ""]
    header = ["Model", *[title for _, title in columns], "Seeds x folds" if several else "Folds"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for name, row in rows.items():
        cells = [_cell(row["metrics"].get(metric), several) for metric, _ in columns]
        count = f"{len(row['seeds'])} x {len(row['folds'])}" if several else str(len(row["folds"]))
        lines.append(f"| {_title(name, row)} | " + " | ".join(cells) + f" | {count} |")
    baseline = summary.get("majority_baseline")
    if baseline:
        labels = sorted(set(baseline["labels"]))
        cells = [_cell(baseline["metrics"].get(name)) if name.startswith("f1") and TUNED_SUFFIX not in name
                 else ("-" if name.startswith("f1") else "0.00") for name, _ in columns]
        lines.append(f"| Majority class ({', '.join(labels)}) | " + " | ".join(cells) + f" | {len(baseline['folds'])} |")
    lines.append("")
    lines.append("F1 @0.5: multi-label F1 with every emotion's threshold at 0.5 (the paper's rule; a row with none "
                 "above takes its arg-max)" + ("; F1 @tuned: at the per-emotion thresholds the row tuned on a slice "
                 "held out from each fold's training rows (the labels its model gives)" if tuned else "") + "; the "
                 "majority row always predicts the training folds' most frequent emotion (a constant has CCC 0).")
    lines += _per_emotion_table(rows, several)
    lines += _paired_table(summary.get("paired_differences"), rows)
    if not summary.get("complete"):
        lines.append("")
        lines.append("**Incomplete:** not every row has all folds" + (" of every seed" if several else "") + " yet.")
    return "\n".join(lines) + "\n"


def _title(name: str, row: dict) -> str:
    return row.get("title") or ROW_NAMES.get(name, name)


def _per_emotion_table(rows: dict, several: bool) -> list[str]:
    """F1 per emotion (as each model labels: tuned where the row tuned), mean over the runs."""
    emotions = list(dict.fromkeys(emotion for row in rows.values() for emotion in row.get("labels") or EMOTIONS))
    if not any(f"f1_{emotion}" in row["metrics"] for row in rows.values() for emotion in emotions):
        return []
    support = next((row.get("support") for row in rows.values() if any((row.get("support") or {}).values())), None)
    names = [f"{emotion} (n={support.get(emotion, 0)})" if support else emotion for emotion in emotions]
    lines = ["", "F1 per emotion x100 (mean over " + ("seeds x folds" if several else "folds") + "; @tuned where the "
             "row tuned its thresholds, else @0.5)" + ("; n: test utterances with that label over all folds" if support
                                                        else "") + ":", "",
             "| Model | " + " | ".join(names) + " |", "|---|" + "---:|" * len(emotions)]
    for name, row in rows.items():
        cells = []
        for emotion in emotions:
            stats = row["metrics"].get(f"f1_{emotion}{TUNED_SUFFIX}") or row["metrics"].get(f"f1_{emotion}")
            cells.append("-" if stats is None else f"{100 * stats['mean']:.1f}")
        lines.append(f"| {_title(name, row)} | " + " | ".join(cells) + " |")
    return lines


def _paired_table(paired: dict | None, rows: dict) -> list[str]:
    if not paired or not paired.get("rows"):
        return []
    reference = paired["reference"]
    lines = ["", f"Paired differences with {_title(reference, rows.get(reference, {}))} (the paper's row with the "
             "highest macro F1), run by run on the same seeds and folds, x100 (mean ± std; improved: runs where the "
             "row scores higher):", "",
             "| Model | Δ F1 macro | improved | Δ F1 micro | improved | Δ CCC avg | improved |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, metrics in paired["rows"].items():
        cells = []
        for metric in PAIRED_METRICS:
            stats = metrics.get(metric)
            cells += ["-", "-"] if stats is None else [
                f"{100 * stats['mean']:+.2f}" + ("" if stats["std"] is None else f" ± {100 * stats['std']:.2f}"),
                f"{stats['improved']} of {stats['runs']}"]
        lines.append(f"| {_title(name, rows.get(name, {}))} | " + " | ".join(cells) + " |")
    return lines


def _statistics(runs: list[dict], name: str, seeds: list) -> dict:
    stats = _mean_std([run["metrics"][name] for run in runs])
    seed_means = [float(np.mean([run["metrics"][name] for run in runs if run["seed"] == seed])) for seed in seeds]
    stats["seed_means"] = seed_means
    stats["seed_std"] = float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else None
    return stats


def _cell(stats: dict | None, with_seed_std: bool = False) -> str:
    if stats is None:
        return "-"
    text = f"{100 * stats['mean']:.2f}" if stats["std"] is None else f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f}"
    if with_seed_std and stats.get("seed_std") is not None:
        text += f" [± {100 * stats['seed_std']:.2f}]"
    return text


def _mean_std(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if array.size > 1 else None,
            "values": [float(v) for v in array]}


__all__ = ["write_summary", "format_table", "paired_differences", "decision_value", "ROW_NAMES", "TABLE_METRICS",
           "TUNED_METRICS"]
