"""The paper's table: every finished (seed, fold) of each fusion -> ``summary.json`` and ``summary.md``.

``summary.json``::

    rows[fusion] = {
        "folds": [k, ...], "seeds": [s, ...], "runs": [[s, k], ...],       # values below follow "runs"
        "metrics": {name: {"mean", "std", "values",                       # over every seed x fold run (ddof=1)
                           "seed_means", "seed_std"}},                    # fold mean per seed; its std over seeds
    }

With one seed ``seed_std`` is None. The table shows mean ± std over all runs and, with several seeds, the std
across seeds of the fold mean in brackets: a difference between two rows smaller than that is seed noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .arguments import FUSION_ORDER, TABLE_ORDER
from .run_directory import RUN_ARGS, finished_runs, read_json, write_json

ROW_NAMES = {"text": "Text only", "speech": "Speech only", "cat": "Cat (concatenation)", "add": "Add (projection + sum)",
             "cross": "Cross (cross-modal attention)"}
TABLE_METRICS = (("f1_micro", "F-score (micro)"), ("f1_macro", "F1 macro"), ("ccc_arousal", "CCC arousal"),
                 ("ccc_valence", "CCC valence"), ("ccc_avg", "CCC avg"))


def write_summary(output_dir: str | os.PathLike, fusions=FUSION_ORDER, folds: list[int] | None = None,
                  seeds: list[int] | None = None) -> dict:
    """Read every finished ``{fusion}/[seed{s}/]fold{k}/metrics.json`` under `output_dir`, write ``summary.json``
    and ``summary.md``, and return the summary.

    Rows: the fusions with at least one finished run, in the paper's order, then the majority-class baseline. Only
    the given `folds` and `seeds` count (default: all). A run whose metrics were made with other settings than
    ``run_args.json`` records (another fingerprint) is refused with a ValueError.
    """
    output_dir = Path(output_dir)
    run_args = read_json(output_dir / RUN_ARGS) or {}
    expected_fingerprint = run_args.get("fingerprint_sha256")
    rows, baseline_folds = {}, {}
    for fusion in sorted(set(fusions), key=TABLE_ORDER.index):
        runs = [run for run in finished_runs(output_dir, fusion)
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
        rows[fusion] = {
            "folds": sorted({run["fold"] for run in runs}),
            "seeds": run_seeds,
            "runs": [[run["seed"], run["fold"]] for run in runs],
            "metrics": {name: _statistics(runs, name, run_seeds) for name in names},
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
        "dataset": run_args.get("data_dir_used"),
        "num_rows": run_args.get("num_rows"),
        "num_folds": num_folds,
        "fold_by": split.get("fold_by"),
        "seeds": run_args.get("seeds"),
        "preset": run_args.get("preset", {}).get("preset"),
        "text_model": split.get("text_model"),
        "audio_model": split.get("audio_model"),
        "complete": bool(rows) and all(len(row["runs"]) == (num_folds or 0) * num_seeds for row in rows.values()),
        "rows": rows,
        "majority_baseline": baseline,
    }
    write_json(output_dir / "summary.json", summary)
    (output_dir / "summary.md").write_text(format_table(summary), encoding="utf-8")
    return summary


def format_table(summary: dict) -> str:
    """The paper's table in Markdown: F-score, CCC arousal / valence / avg (x100, mean ± std over the runs)."""
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
    lines = [f"{folds}-fold cross-validation ({summary.get('fold_by')} folds) on {summary.get('num_rows')} utterances "
             f"of `{summary.get('dataset')}`; {encoders}. {spread}", ""]
    header = ["Model", *[title for _, title in TABLE_METRICS], "Seeds x folds" if several else "Folds"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for fusion, row in summary["rows"].items():
        cells = [_cell(row["metrics"].get(name), several) for name, _ in TABLE_METRICS]
        count = f"{len(row['seeds'])} x {len(row['folds'])}" if several else str(len(row["folds"]))
        lines.append(f"| {ROW_NAMES.get(fusion, fusion)} | " + " | ".join(cells) + f" | {count} |")
    baseline = summary.get("majority_baseline")
    if baseline:
        labels = sorted(set(baseline["labels"]))
        cells = [_cell(baseline["metrics"].get(name)) if name.startswith("f1") else "0.00" for name, _ in TABLE_METRICS]
        lines.append(f"| Majority class ({', '.join(labels)}) | " + " | ".join(cells) + f" | {len(baseline['folds'])} |")
    lines.append("")
    lines.append("F-score: multi-label micro F1 (sigmoid > 0.5; a row with none takes its arg-max); the majority row "
                 "always predicts the training folds' most frequent emotion (a constant has CCC 0).")
    if not summary.get("complete"):
        lines.append("")
        lines.append("**Incomplete:** not every row has all folds" + (" of every seed" if several else "") + " yet.")
    return "\n".join(lines) + "\n"


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


__all__ = ["write_summary", "format_table", "ROW_NAMES", "TABLE_METRICS"]
