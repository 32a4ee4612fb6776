"""Model cards for a run's final models: cross-validated results, protocol, use and limits, and figures.

A report on a run directory, like the summary next to it. `write_model_card(run_dir, row, checkpoint_dir=None)`
reads what `kemd_emotion.experiment` (``examples/run_emotion.py``) wrote::

    run_dir/run_args.json                       the run's arguments (and the settings fingerprint)
    run_dir/{row}/fold{k}/metrics.json          test metrics of fold k ({row}/seed{s}/fold{k}/ with several seeds)
    run_dir/{row}/fold{k}/predictions.npz       segment_id, logits (N, 7), regression (N, 2), labels (N, 7),
                                                regression_labels (N, 2)
    run_dir/{row}/final/                        the saved model and processor (final_info.json: what it is)

The card is written only from what the saved model was trained with: a final model whose settings fingerprint is
not the run's is refused. With several seeds, the scores are over every seed x fold run and the figures pool the
test folds of the final model's seed (each utterance once).

and writes into the checkpoint directory (default ``run_dir/{row}/final``) a ``README.md`` built from
``model_cards/template.md`` through `huggingface_hub.ModelCard` / `ModelCardData` (model-index eval results: F1
micro/macro, CCC arousal/valence/avg) and two figures it links: ``emotions.png`` (per-emotion confusion and F1) and
``arousal_valence.png`` (predicted vs rated). Figures are drawn with matplotlib's Agg canvas, without pyplot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..configuration_klue_wav2vec2 import DEFAULT_DECISION_THRESHOLD, EMOTIONS, fusion_modalities
from ..data import detect_release
from ..hub import add_pipeline_files
from ..metrics import TUNED_SUFFIX, compute_emotion_metrics, predict_emotions
from .rows import MODIFIER_TITLES, PROSODY_FUSION, parse_row
from .run_directory import PREDICTIONS, RUN_ARGS, finished_runs, read_json

PACKAGE_DIR = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = next(
    (path for path in (
        PACKAGE_DIR / "model_cards" / "template.md",  # an installed package (copied by setup.py)
        PACKAGE_DIR.parent / "model_cards" / "template.md",  # the repository / editable install
    ) if path.is_file()),
    PACKAGE_DIR.parent / "model_cards" / "template.md",
)
"""The card template (Jinja2, rendered by `ModelCard.from_template`)."""

FIGURES = {"emotions": "emotions.png", "arousal_valence": "arousal_valence.png"}
"""The figure files written next to the card, by role."""

CARD_METRICS = (
    ("f1_micro", "f1", "micro", "F1 micro"),
    ("f1_macro", "f1", "macro", "F1 macro"),
    (f"f1_micro{TUNED_SUFFIX}", "f1", "micro, tuned thresholds", "F1 micro, tuned thresholds"),
    (f"f1_macro{TUNED_SUFFIX}", "f1", "macro, tuned thresholds", "F1 macro, tuned thresholds"),
    ("ccc_arousal", "ccc", "arousal", "CCC arousal"),
    ("ccc_valence", "ccc", "valence", "CCC valence"),
    ("ccc_avg", "ccc", "average", "CCC avg (arousal, valence)"),
)
"""(metrics.json key, model-index metric type, metric config, display name) of the headline results."""

FUSION_DESCRIPTIONS = {
    "text": "text only: pooled KLUE-BERT transcript vector",
    "speech": "speech only: pooled wav2vec 2.0 vector",
    "cat": "cat: pooled text and speech vectors concatenated",
    "add": "add: pooled speech vector projected to the text width and added to the text vector",
    "cross": "cross: text tokens and speech frames attend to each other, then each side is pooled and concatenated",
}
NOT_RECORDED = "not recorded"


@dataclass
class RunResults:
    """What a run directory says about one row: arguments, per-fold metrics and pooled test predictions."""

    run_dir: Path
    row: str
    """The row's name (and folder): ``cat``, ``cat+rare``, ..."""
    fusion: str
    """The model's fusion (``cat`` for the row ``cat+rare``)."""
    run_args: dict
    fold_metrics: list[dict]
    """One entry per finished run (seed x fold), seeds in the run's order, then folds."""
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    """`logits (N, 7)`, `regression (N, 2)`, `labels (N, 7)`, `regression_labels (N, 2)`, pooled over the folds, and
    `predicted (N, 7)`: the labels each fold's model gave (at its tuned thresholds, else at 0.5)."""
    final_info: dict | None = None
    seeds: list = field(default_factory=list)
    """The seeds of the finished runs (one None for runs that do not record it)."""

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's emotion names in output order: what the run recorded (final_info.json, a fold's metrics.json,
        run_args.json: a manifest's own label set), else KEMDy's seven `EMOTIONS`."""
        recorded = ((self.final_info or {}).get("labels")
                    or next((m["labels"] for m in self.fold_metrics if m.get("labels")), None)
                    or self.run_args.get("labels"))
        return tuple(recorded) if recorded else tuple(EMOTIONS)

    def summary(self, key: str) -> tuple[float, float | None, list[float]] | None:
        """`(mean, std, per-run values)` of a metric over the runs (std with ddof=1; None for one run)."""
        values = [float(m[key]) for m in self.fold_metrics if isinstance(m.get(key), (int, float))]
        if not values:
            return None
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        return float(np.mean(values)), std, values


def load_run(run_dir: str | os.PathLike, row: str) -> RunResults:
    """Read `run_dir`'s arguments and the finished folds of `row`; raise a ValueError saying what is missing."""
    run_dir = Path(run_dir)
    row_dir = run_dir / row
    runs = finished_runs(run_dir, row)
    if not runs:
        found = sorted(p.name for p in run_dir.iterdir() if p.is_dir()) if run_dir.is_dir() else []
        raise ValueError(
            f"{str(row_dir)!r} has no finished fold (fold*/metrics.json); the run directory holds {found or 'nothing'}."
        )
    fusion = parse_row(row).fusion
    run_args = read_json(run_dir / RUN_ARGS) or {}
    final_info = read_json(row_dir / "final" / "final_info.json")
    trained_with = (final_info or {}).get("fingerprint_sha256")
    if trained_with and run_args.get("fingerprint_sha256") not in (None, trained_with):
        raise ValueError(f"{str(row_dir / 'final')!r} was trained with other settings than {RUN_ARGS} records; "
                         "its card would describe a model it is not.")
    seeds = list(dict.fromkeys(run["seed"] for run in runs))
    figure_seed = (final_info or {}).get("seed", seeds[0])
    pooled: dict[str, list[np.ndarray]] = {}
    for run in runs:
        npz = run["directory"] / PREDICTIONS
        if run["seed"] == (figure_seed if figure_seed in seeds else seeds[0]) and npz.is_file():
            with np.load(npz, allow_pickle=False) as arrays:
                for key in ("logits", "regression", "labels", "regression_labels"):
                    if key in arrays:
                        pooled.setdefault(key, []).append(np.asarray(arrays[key], dtype=np.float64))
                if "logits" in arrays:
                    thresholds = run["metrics"].get("decision_thresholds") or DEFAULT_DECISION_THRESHOLD
                    pooled.setdefault("predicted", []).append(predict_emotions(arrays["logits"], thresholds))
    predictions = {key: np.concatenate(parts) for key, parts in pooled.items()}
    return RunResults(
        run_dir=run_dir,
        row=row,
        fusion=fusion,
        run_args=run_args,
        fold_metrics=[run["metrics"] for run in runs],
        predictions=predictions,
        final_info=final_info,
        seeds=seeds,
    )


# ---------------------------------------------------------------------------------------------------- figures
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


KOREAN_FONTS = ("NanumGothic", "NanumBarunGothic", "NanumSquareRound", "Noto Sans CJK KR", "Noto Sans KR",
                "Malgun Gothic", "AppleGothic", "UnDotum", "Baekmuk Gulim")
"""Installed fonts the figures fall back to for label names matplotlib's default font has no glyphs for (Korean)."""


def _font_rc(names) -> dict:
    """rcParams that draw `names`: {} for ASCII names; else DejaVu Sans with the first installed `KOREAN_FONTS`
    as fallback (none installed: {} and matplotlib draws boxes, with its warning)."""
    if all(str(name).isascii() for name in names):
        return {}
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    fallback = next((name for name in KOREAN_FONTS if name in installed), None)
    return {"font.family": ["DejaVu Sans", fallback]} if fallback else {}


def plot_emotions(run: RunResults, path: str | os.PathLike, threshold: float | None = None) -> Path | None:
    """Per-emotion confusion (true label x predicted label, row shares) and F1 per emotion, as one PNG.

    The predictions are the labels each fold's model gave (its tuned thresholds, else 0.5), or at `threshold` when
    given. Needs pooled `logits` and `labels`; returns None (and writes nothing) without them. Korean label names
    are drawn with an installed Korean font (`KOREAN_FONTS`) when there is one.
    """
    import matplotlib

    with matplotlib.rc_context(_font_rc(run.labels)):
        return _plot_emotions(run, path, threshold)


def _plot_emotions(run: RunResults, path: str | os.PathLike, threshold: float | None) -> Path | None:
    logits, labels = run.predictions.get("logits"), run.predictions.get("labels")
    if logits is None or labels is None:
        return None
    labels = labels.astype(bool)
    tuned = threshold is None and run.summary(f"f1_macro{TUNED_SUFFIX}") is not None
    predicted = run.predictions.get("predicted") if threshold is None else None
    if predicted is None:
        predicted = predict_emotions(logits, DEFAULT_DECISION_THRESHOLD if threshold is None else threshold)
    support = labels.sum(axis=0)
    # shares[i, j]: of the utterances labelled i, the fraction for which j was predicted.
    shares = (labels.T.astype(np.float64) @ predicted.astype(np.float64)) / np.maximum(support, 1)[:, None]

    emotions = run.labels
    figure = _figure(11.5, 4.6)
    left, right = figure.subplots(1, 2, width_ratios=[1.25, 1])
    image = left.imshow(100 * shares, cmap="Blues", vmin=0, vmax=100)
    left.set_xticks(range(len(emotions)), emotions, rotation=40, ha="right")
    left.set_yticks(range(len(emotions)), [f"{name} (n={int(n)})" for name, n in zip(emotions, support)])
    left.set_xlabel("predicted emotion")
    left.set_ylabel("true emotion")
    left.set_title("Predicted for each true emotion (% of row)")
    for i in range(len(emotions)):
        for j in range(len(emotions)):
            if support[i]:
                value = 100 * shares[i, j]
                left.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                          color="white" if value > 55 else "black")
    figure.colorbar(image, ax=left, shrink=0.8, label="%")

    per_class = [run.summary(f"f1_{name}{TUNED_SUFFIX if tuned else ''}") for name in emotions]
    if all(stats is None for stats in per_class):  # older runs: compute from the pooled predictions
        pooled = compute_emotion_metrics(
            logits, labels, threshold=DEFAULT_DECISION_THRESHOLD if threshold is None else threshold,
            emotions=emotions)
        per_class = [(pooled[f"f1_{name}"], None, []) for name in emotions]
    means = np.array([100 * (stats[0] if stats else 0.0) for stats in per_class])
    spreads = np.array([100 * (stats[1] or 0.0) if stats else 0.0 for stats in per_class])
    positions = np.arange(len(emotions))[::-1]
    # ± one std, kept inside the possible 0-100 (few folds and rare emotions give wide spreads).
    low, high = np.minimum(spreads, means), np.minimum(spreads, 100 - means)
    right.barh(positions, means, xerr=np.stack([low, high]), color="#4C72B0", ecolor="#333333", capsize=3)
    for position, mean, reach, count in zip(positions, means, means + high, support):
        right.text(reach + 1.5, position, f"{mean:.0f}  (n={int(count)})", va="center", fontsize=8)
    right.set_yticks(positions, emotions)
    right.set_xlim(0, 115)
    right.set_xlabel("F1 ×100 (mean ± std over folds)" + (", tuned thresholds" if tuned else ""))
    micro = run.summary(f"f1_micro{TUNED_SUFFIX if tuned else ''}")
    right.set_title("F1 per emotion" + (f" — micro {100 * micro[0]:.1f}" if micro else ""))
    right.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def plot_arousal_valence(run: RunResults, path: str | os.PathLike) -> Path | None:
    """Predicted vs rated arousal and valence (pooled test folds), one scatter each, as one PNG.

    Needs pooled `regression` and `regression_labels`; returns None (and writes nothing) without them.
    """
    predicted, rated = run.predictions.get("regression"), run.predictions.get("regression_labels")
    if predicted is None or rated is None:
        return None
    metrics = compute_emotion_metrics(regression=predicted, regression_labels=rated)
    figure = _figure(9.5, 4.6)
    axes = figure.subplots(1, 2)
    for column, (axis, name) in enumerate(zip(axes, ("arousal", "valence"))):
        low = min(1.0, predicted[:, column].min(), rated[:, column].min()) - 0.1
        high = max(5.0, predicted[:, column].max(), rated[:, column].max()) + 0.1
        axis.plot([low, high], [low, high], color="#999999", linewidth=1, label="perfect agreement")
        # Many utterances (KEMDy20: ~13k) would saturate: fade the points as their number grows.
        alpha = float(np.clip(150 / len(rated), 0.05, 0.5))
        axis.scatter(rated[:, column], predicted[:, column], s=10, alpha=alpha, color="#C44E52", edgecolors="none")
        axis.set_xlim(low, high)
        axis.set_ylim(low, high)
        axis.set_aspect("equal")
        axis.set_xlabel(f"rated {name} (raters' mean, 1-5)")
        axis.set_ylabel(f"predicted {name}")
        fold_ccc = run.summary(f"ccc_{name}")
        title = f"{name.capitalize()}: CCC {metrics[f'ccc_{name}']:.2f} pooled"
        if fold_ccc:
            title += f", {fold_ccc[0]:.2f} fold mean"
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left", fontsize=8)
    figure.suptitle(f"{len(rated)} utterances, each predicted by the fold model that did not train on it", fontsize=9)
    return _save(figure, path)


def _save(figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


# ---------------------------------------------------------------------------------------------------- the card
def build_model_card(
    run: RunResults,
    *,
    model_id: str = "path/to/checkpoint",
    figures: dict[str, str] | None = None,
    template_path: str | os.PathLike | None = None,
    license: str = "other",
    threshold: float | None = None,
) -> ModelCard:
    """The `huggingface_hub.ModelCard` of `run`: metadata with model-index eval results, and the filled template.

    Args:
        run: from `load_run`.
        model_id: how the card's examples load the model (a Hub repo id or a folder).
        figures: role (`"emotions"`, `"arousal_valence"`) -> path relative to the card, for the images.
        template_path: a Jinja2 markdown template (default `model_cards/template.md`).
        license: the card's licence id; "other" by default, since the weights derive from KEMDy data whose
            licence agreement governs them.
    """
    facts = _protocol(run)
    dataset_type, dataset_name = facts["dataset_type"], facts["dataset_name"]
    task_type = "audio-classification" if fusion_modalities(run.fusion)[1] else "text-classification"
    eval_results = []
    for key, metric_type, config, name in CARD_METRICS:
        stats = run.summary(key)
        if stats is None:
            continue
        eval_results.append(EvalResult(
            task_type=task_type,
            task_name="Emotion recognition (7 emotions, arousal, valence)",
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split=f"test folds ({facts['num_folds']}-fold cross-validation)",
            dataset_args={"num_folds": facts["num_folds"], "fold_by": facts["fold_by"]},
            metric_type=metric_type,
            metric_config=config,
            metric_name=name,
            metric_value=round(stats[0], 4),
        ))
    if not eval_results:
        raise ValueError(f"the folds of {run.row!r} in {str(run.run_dir)!r} report none of "
                         f"{', '.join(key for key, *_ in CARD_METRICS)}.")
    model_name = f"kemd-emotion {run.row} fusion, {dataset_name}"
    base_models = [name for name in (facts["text_model_id"], facts["audio_model_id"]) if name]
    card_data = ModelCardData(
        model_name=model_name,
        language="ko",
        license=license,
        library_name="transformers",
        pipeline_tag=task_type,
        tags=["emotion-recognition", "speech-emotion-recognition", "multimodal", "korean", "kemdy",
              "wav2vec2", "bert", "kemd-emotion", "custom_code"],
        metrics=["f1", "ccc"],
        base_model=base_models or None,
        eval_results=eval_results,
    )
    metric_rows = []
    for key, _, _, name in CARD_METRICS:
        stats = run.summary(key)
        if stats is not None:
            mean, std, values = stats
            metric_rows.append({
                "name": name,
                "mean_std": f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}"),
                "per_fold": ", ".join(f"{100 * value:.1f}" for value in values),
            })
    baseline = None
    if run.summary("majority_f1_micro") is not None:
        baseline = {
            "labels": ", ".join(sorted({str(m.get("majority_label")) for m in run.fold_metrics})),
            "f1_micro": f"{100 * run.summary('majority_f1_micro')[0]:.2f}",
            "f1_macro": f"{100 * run.summary('majority_f1_macro')[0]:.2f}",
        }
    modality_note = {
        "text": "this text-only model needs only `text`.",
        "speech": "this speech-only model needs only `audio`.",
    }.get(run.fusion, "this model needs both `text` and `audio`.")
    template_path = Path(template_path or TEMPLATE_PATH)
    if not template_path.is_file():
        raise ValueError(
            f"model-card template {str(template_path)!r} not found: it ships in the kemd-emotion repository "
            "(model_cards/template.md), which a non-editable install does not copy; pass template_path=."
        )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        model_id=model_id,
        description=_description(run, facts),
        metric_rows=metric_rows,
        baseline=baseline,
        figures=figures or {},
        threshold_text=_threshold_text(run, threshold),
        modality_note=modality_note,
        example_text="오늘 정말 기분이 좋아요",
        run_dir=str(run.run_dir),
        folds_done=len({m.get("fold") for m in run.fold_metrics}),
        num_seeds=len(run.run_args.get("seeds") or run.seeds),
        runs_done=len(run.fold_metrics),
        seed_list=", ".join(str(seed) for seed in run.seeds if seed is not None),
        **facts,
    )


def write_model_card(
    run_dir: str | os.PathLike,
    row: str,
    checkpoint_dir: str | os.PathLike | None = None,
    *,
    model_id: str | None = None,
    template_path: str | os.PathLike | None = None,
    license: str = "other",
) -> Path:
    """Write README.md, emotions.png and arousal_valence.png for `row`'s model of the run in `run_dir`.

    Args:
        run_dir: the run directory (see the module docstring).
        row: a row of the run's table: "text", "speech", "cat", "add", "cross", "cat+rare", ...
        checkpoint_dir: where the card goes (default `run_dir/row/final`). When it holds a saved model, the
            pipeline code is added to it too (`kemd_emotion.hub.add_pipeline_files`), so that the card's
            `pipeline(..., trust_remote_code=True)` example works.
        model_id: how the examples load the model (default: the checkpoint folder's path); pass the Hub repo id
            before pushing.

    Returns:
        The path of README.md.

    Raises:
        ValueError: for the prosody row, a baseline (a linear head on openSMILE's eGeMAPS functionals, saved as
            ``prosody_head.json``) that is not a transformers model: a card's pipeline and protocol would be false.
    """
    if parse_row(row).fusion == PROSODY_FUSION:
        raise ValueError(f"row {row!r} is the eGeMAPS baseline (a linear head on openSMILE functionals, "
                         "prosody_head.json), not a transformers model: it gets no model card. Its scores are in the "
                         "run's summary.")
    run = load_run(run_dir, row)
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else Path(run_dir) / row / "final"
    directory.mkdir(parents=True, exist_ok=True)
    figures = {}
    if plot_emotions(run, directory / FIGURES["emotions"]) is not None:
        figures["emotions"] = FIGURES["emotions"]
    if plot_arousal_valence(run, directory / FIGURES["arousal_valence"]) is not None:
        figures["arousal_valence"] = FIGURES["arousal_valence"]
    card = build_model_card(
        run, model_id=model_id or str(directory), figures=figures, template_path=template_path, license=license
    )
    if (directory / "config.json").is_file():
        add_pipeline_files(directory)
    path = directory / "README.md"
    card.save(path)
    return path


# ---------------------------------------------------------------------------------------------------- helpers
def _protocol(run: RunResults) -> dict:
    """The facts the card states, from run_args.json and the fold metrics, with NOT_RECORDED where unknown."""
    args = run.run_args
    split, data, model, training = (args.get(key) or {} for key in ("split", "data", "model", "training"))
    reads_text, reads_audio = fusion_modalities(run.fusion)
    manifest = split.get("manifest") or data.get("manifest")
    sample = not manifest and (bool(split.get("sample_size")) or (not data.get("data_dir") and "sample_size" in data))
    release = split.get("dataset_name") or data.get("dataset_name")
    if not release and sample:
        release = data.get("sample_name")
    if not release and args.get("data_dir_used"):
        try:
            release = detect_release(args["data_dir_used"])
        except (ValueError, OSError):
            release = None
    release = (release or "kemdy").lower()
    pretty = {"kemdy19": "KEMDy19", "kemdy20": "KEMDy20"}.get(release, release.upper())
    if manifest:  # a corpus of the user's own, read from a manifest file
        release, pretty = "manifest", f"the manifest corpus {os.path.basename(manifest)}"
    first = run.fold_metrics[0]
    num_folds = split.get("num_folds") or first.get("num_folds") or len(run.fold_metrics)
    fold_by = split.get("fold_by") or data.get("fold_by") or NOT_RECORDED
    fold_text = {
        "contiguous": "contiguous folds in file order, as in the seed paper (a speaker can be in train and test)",
        "session": "folds by session (no speaker in both train and test)",
        "random": "random folds",
    }.get(fold_by, f"folds: {fold_by}")
    epochs = training.get("num_train_epochs", first.get("epochs"))
    text_model = split.get("text_model") or model.get("text_model")
    audio_model = split.get("audio_model") or model.get("audio_model")
    small = "small random-init encoder (embedded default)"
    origin = (run.final_info or {}).get("origin")
    weights = {
        "last_fold": f"the model of the last fold (fold {(run.final_info or {}).get('fold')}), trained on the other "
                     "folds: the cross-validated scores estimate how such a model does",
        "all_data": "one more training on every utterance with the same settings; the cross-validated scores "
                    "estimate how such a model does",
    }.get(origin, NOT_RECORDED)
    command = args.get("command")
    return {
        "dataset_type": release,
        "dataset_name": pretty + (" (synthetic sample corpus)" if sample else ""),
        "synthetic": sample,
        "num_rows": args.get("num_rows") or sum(int(m.get("num_test", 0)) for m in run.fold_metrics) or NOT_RECORDED,
        "num_folds": num_folds,
        "fold_by": fold_by,
        "fold_description": fold_text,
        "annotations": f"{data.get('annotations', NOT_RECORDED)} annotation rows",
        "epochs": _number(epochs),
        "learning_rate": _number(training.get("learning_rate")),
        "batch_size": _number(training.get("per_device_train_batch_size")),
        "world_size": args.get("world_size") or first.get("world_size") or 1,
        "max_audio_seconds": _number(data.get("max_audio_seconds", 5.0)),
        "max_text_length": _number(data.get("max_text_length")),
        "regression_loss": {"mse": "mean squared error", "ccc": "1 - CCC"}.get(model.get("regression_loss"), "MSE"),
        "emotion_loss": _emotion_loss_text((run.final_info or {}).get("emotion_pos_weight")
                                           or first.get("emotion_pos_weight"), run.labels),
        "macro_text": ("the seven emotions\n  equally, so rare emotions (fear, disgust, surprise) weigh as much as "
                       "neutral." if run.labels == tuple(EMOTIONS) else
                       f"the {len(run.labels)} emotions ({', '.join(run.labels)}) equally, so rare ones weigh as "
                       "much as frequent ones."),
        "text_model": text_model or (small if reads_text else "not used"),
        "audio_model": audio_model or (small if reads_audio else "not used"),
        "text_model_id": text_model if reads_text else None,
        "audio_model_id": audio_model if reads_audio else None,
        "fusion": run.fusion,
        "fusion_description": _fusion_description(run.row),
        "weights_origin": weights,
        "command": " ".join(map(str, command)) if isinstance(command, list) else (command or NOT_RECORDED),
    }


def _fusion_description(row: str) -> str:
    parsed = parse_row(row)
    return FUSION_DESCRIPTIONS.get(parsed.fusion, parsed.fusion) + "".join(
        f"; {MODIFIER_TITLES.get(name, name)}" for name in parsed.modifiers)


def _threshold_text(run: RunResults, threshold: float | None) -> str:
    """How the card's model decides its labels: the saved model's own thresholds, or one number."""
    saved = (run.final_info or {}).get("decision_thresholds")
    if threshold is None and saved:
        listed = ", ".join(f"{name} {value:.2f}" for name, value in zip(run.labels, saved))
        return ("above its own threshold (`config.decision_thresholds`, tuned on a slice held out from the training "
                f"rows: the best F1 per emotion there): {listed}")
    return f"above {DEFAULT_DECISION_THRESHOLD if threshold is None else threshold:g}"


def _description(run: RunResults, facts: dict) -> str:
    reads, encoders = {
        "text": ("a transcript", "a KLUE-BERT text encoder"),
        "speech": ("speech", "a wav2vec 2.0 speech encoder"),
    }.get(run.fusion, ("a transcript and its recording", "a KLUE-BERT text encoder and a wav2vec 2.0 speech encoder"))
    return (
        f"Korean emotion recognition from {reads}: {encoders}, fine-tuned end to end "
        f"({facts['fusion_description']}). For each utterance it scores "
        + ("the seven KEMDy emotions" if run.labels == tuple(EMOTIONS) else f"the corpus' {len(run.labels)} emotions")
        + f" ({', '.join(run.labels)}; multi-label, one sigmoid each) and predicts arousal and valence on the corpus' 1-5 "
        f"scale. Trained and cross-validated on {facts['dataset_name']} with the kemd-emotion package "
        "(`examples/run_emotion.py`)."
    )


def _emotion_loss_text(weights, labels=EMOTIONS) -> str:
    if not weights or isinstance(weights, str):
        return "multi-label soft margin"
    listed = ", ".join(f"{name} {value:.2g}" for name, value in zip(labels, weights))
    return f"multi-label soft margin with per-emotion positive weights ({listed})"


def _number(value) -> str:
    if value is None:
        return NOT_RECORDED
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = ["write_model_card", "build_model_card", "load_run", "RunResults", "plot_emotions", "plot_arousal_valence"]
