"""Scores of the seed paper, in numpy: multi-label F-scores for the emotions and Lin's CCC for arousal / valence;
and the per-emotion decision thresholds tuned on held-out rows.

The scores have one implementation: the `evaluate` metric module shipped in `kemd_emotion/evaluate_metric/`
(`kemd_emotion.py`, self-contained so that it can be pushed to the Hub), whose functions are re-exported here and
used by the Trainer's `compute_metrics`, the experiment and the model cards. `load_metric()` loads that module with
`evaluate.load`, offline.

Emotions are multi-label `(N, 7)` multi-hot rows scored from `(N, 7)` logits; an emotion is predicted above its
decision threshold (0.5, or one per emotion: `config.decision_thresholds`) and every utterance gets at least one.
The module's docstring states the decision rule and the F1 / CCC conventions (scikit-learn's multi-label F1 with
`zero_division=0`; CCC with population moments).

>>> import numpy as np
>>> round(concordance_correlation_coefficient(np.array([1., 2., 3.]), np.array([2., 3., 4.])), 6)
0.571429
>>> predict_emotions(np.array([[-1., 2., 0.5], [-3., -2., -1.]])).astype(int).tolist()
[[0, 1, 1], [0, 0, 1]]
>>> tune_decision_thresholds(np.array([[0.1], [-0.2], [-0.8], [-1.5]]), np.array([[1], [1], [0], [0]])).tolist()
[0.45]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evaluate_metric.kemd_emotion import (
    METRIC_NAMES,
    THRESHOLD,
    compute_emotion_metrics,
    concordance_correlation_coefficient,
    decision_thresholds,
    emotion_scores,
    f1_from_counts,
    f1_scores,
    majority_baseline,
    pearson_correlation,
    predict_emotions,
    regression_scores,
    sigmoid,
)

METRIC_SCRIPT = Path(__file__).resolve().parent / "evaluate_metric" / "kemd_emotion.py"
"""The `evaluate` metric module (its folder also holds the Space card, app and requirements for the Hub)."""

THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * step, 2) for step in range(1, 20))
"""Candidate decision thresholds: 0.05, 0.10, ..., 0.95."""


TUNED_SUFFIX = "_tuned"
"""Suffix of the F-scores at tuned per-emotion thresholds (`f1_macro_tuned`, `f1_fear_tuned`, ...); the keys without
it are at the fixed 0.5."""


def tuned_emotion_scores(logits: np.ndarray, labels: np.ndarray, thresholds, emotions=None) -> dict[str, float]:
    """`emotion_scores` at per-emotion `thresholds`, every key suffixed with `TUNED_SUFFIX`."""
    scores = emotion_scores(logits, labels, thresholds, *(() if emotions is None else (emotions,)))
    return {f"{name}{TUNED_SUFFIX}": value for name, value in scores.items()}


def load_metric(config_name: str = "default", **kwargs):
    """`evaluate.load` of the shipped metric module (offline): `"default"` / `"emotions"` for the F-scores,
    `"arousal_valence"` for CCC. `kwargs` go to `evaluate.load`."""
    import evaluate

    return evaluate.load(str(METRIC_SCRIPT), config_name, **kwargs)


def tune_decision_thresholds(logits: np.ndarray, labels: np.ndarray,
                             grid: tuple[float, ...] = THRESHOLD_GRID) -> np.ndarray:
    """Per emotion, the threshold on the sigmoid score that maximises that emotion's F1 on these rows.

    Each emotion is tuned on its own (`score > threshold` against its labels; the at-least-one-emotion rule of
    `predict_emotions` is left out, as it couples the emotions). Among thresholds with the same F1 the one nearest
    0.5 wins, then the lower, so an emotion the rows cannot tell anything about (no positives: F1 0 everywhere)
    keeps 0.5. Use rows the reported scores never see (a validation slice of the training rows).

    Args:
        logits: `(N, C)` emotion logits. labels: `(N, C)` multi-hot emotions.
        grid: the candidate thresholds, each strictly between 0 and 1.

    Returns:
        `(C,)` float64 thresholds, one per emotion.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if logits.ndim != 2 or logits.shape != labels.shape or len(logits) == 0:
        raise ValueError(f"logits {logits.shape} and labels {labels.shape} must be the same non-empty (N, C) shape.")
    candidates = np.asarray(grid, dtype=np.float64)
    if candidates.ndim != 1 or not len(candidates) or not ((candidates > 0) & (candidates < 1)).all():
        raise ValueError(f"grid={grid!r}: expected thresholds strictly between 0 and 1.")
    # Preference order among ties: nearest 0.5 first, then the lower threshold.
    order = np.lexsort((candidates, np.abs(candidates - THRESHOLD)))
    candidates = candidates[order]
    predicted = sigmoid(logits)[None, :, :] > candidates[:, None, None]  # (thresholds, N, C)
    positives = labels[None]
    f1 = f1_from_counts((predicted & positives).sum(1), (predicted & ~positives).sum(1), (~predicted & positives).sum(1))
    return candidates[np.argmax(f1, axis=0)]  # argmax takes the first maximum: the preferred threshold


__all__ = [
    "THRESHOLD",
    "THRESHOLD_GRID",
    "METRIC_NAMES",
    "METRIC_SCRIPT",
    "sigmoid",
    "decision_thresholds",
    "predict_emotions",
    "f1_scores",
    "emotion_scores",
    "regression_scores",
    "concordance_correlation_coefficient",
    "pearson_correlation",
    "compute_emotion_metrics",
    "majority_baseline",
    "load_metric",
    "tune_decision_thresholds",
    "tuned_emotion_scores",
    "TUNED_SUFFIX",
]
