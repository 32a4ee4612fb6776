"""Scores of the seed paper, in numpy: multi-label F-scores for the emotions and Lin's CCC for arousal / valence.

Everything here takes plain arrays, so it serves the Trainer's `compute_metrics`, the experiment's summary and
anyone scoring saved predictions.

- Emotions are multi-label: `labels` is a `(N, 7)` multi-hot matrix (a tie between raters gives several ones).
  Predictions come from `(N, 7)` logits: an emotion is predicted when its sigmoid exceeds 0.5, and a row with none
  above the threshold takes its arg-max, so every utterance is given at least one emotion.
- F1 micro / macro / weighted follow scikit-learn's `f1_score` on multi-label indicator matrices with
  `zero_division=0` (a class never true and never predicted scores 0 in the macro mean).
- Arousal and valence are `(N, 2)` floats on the 1-5 scale, arousal first. CCC uses population (biased) moments.

>>> import numpy as np
>>> round(concordance_correlation_coefficient(np.array([1., 2., 3.]), np.array([1., 2., 3.])), 6)
1.0
>>> round(concordance_correlation_coefficient(np.array([1., 2., 3.]), np.array([2., 3., 4.])), 6)
0.571429
>>> predict_emotions(np.array([[-1., 2., 0.5], [-3., -2., -1.]])).astype(int).tolist()
[[0, 1, 1], [0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .configuration_klue_wav2vec2 import EMOTIONS, REGRESSION_TARGETS

THRESHOLD = 0.5
"""Sigmoid probability above which an emotion is predicted."""

METRIC_NAMES: tuple[str, ...] = (
    "f1_micro",
    "f1_macro",
    "f1_weighted",
    "ccc_arousal",
    "ccc_valence",
    "ccc_avg",
    "pearson_arousal",
    "pearson_valence",
)
"""The scalar metrics `compute_emotion_metrics` always returns (per-class F1s come on top)."""


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, elementwise."""
    logits = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logits))


def predict_emotions(logits: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Multi-hot predictions `(N, C)` bool from logits `(N, C)`.

    An emotion is on when its sigmoid probability is above `threshold`; a row with none above it takes its
    arg-max, so every utterance gets at least one emotion.
    """
    logits = _as_matrix(logits, "logits")
    predicted = sigmoid(logits) > threshold
    empty = ~predicted.any(axis=1)
    predicted[empty, logits[empty].argmax(axis=1)] = True
    return predicted


def f1_scores(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float | np.ndarray]:
    """F1 of multi-hot `predicted` against multi-hot `labels`, both `(N, C)`.

    Returns `f1_micro`, `f1_macro`, `f1_weighted` (weights: each class' number of true labels) and
    `f1_per_class` `(C,)`. A class with no true and no predicted label has F1 0 (scikit-learn's
    `zero_division=0`).
    """
    labels = _as_matrix(labels, "labels").astype(bool)
    predicted = _as_matrix(predicted, "predicted").astype(bool)
    if labels.shape != predicted.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} must have the same shape.")
    true_positives = (labels & predicted).sum(axis=0).astype(np.float64)
    false_positives = (~labels & predicted).sum(axis=0).astype(np.float64)
    false_negatives = (labels & ~predicted).sum(axis=0).astype(np.float64)
    per_class = _f1(true_positives, false_positives, false_negatives)
    support = labels.sum(axis=0).astype(np.float64)
    return {
        "f1_micro": float(_f1(true_positives.sum(), false_positives.sum(), false_negatives.sum())),
        "f1_macro": float(per_class.mean()),
        "f1_weighted": float((per_class * support).sum() / support.sum()) if support.sum() > 0 else 0.0,
        "f1_per_class": per_class,
    }


def _f1(tp, fp, fn):
    tp, fp, fn = np.asarray(tp, dtype=np.float64), np.asarray(fp, dtype=np.float64), np.asarray(fn, dtype=np.float64)
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def concordance_correlation_coefficient(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Lin's concordance correlation coefficient of two 1-D arrays (population moments).

    `2 cov(p, t) / (var(p) + var(t) + (mean(p) - mean(t))**2)`, in [-1, 1]: Pearson's r shrunk by any shift in
    location or scale. The denominator is zero only when both arrays are the same constant: that agreement is
    perfect and 1.0 is returned. A constant prediction against varying targets scores 0.
    """
    p, t = _as_pair(predictions, targets)
    p_mean, t_mean = p.mean(), t.mean()
    covariance = ((p - p_mean) * (t - t_mean)).mean()
    denominator = p.var() + t.var() + (p_mean - t_mean) ** 2
    if denominator == 0:
        return 1.0
    return float(2 * covariance / denominator)


def pearson_correlation(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Pearson's r of two 1-D arrays; 0.0 when either is constant (no linear association can be measured)."""
    p, t = _as_pair(predictions, targets)
    p, t = p - p.mean(), t - t.mean()
    denominator = np.sqrt((p * p).sum() * (t * t).sum())
    if denominator == 0:
        return 0.0
    return float(np.clip((p * t).sum() / denominator, -1.0, 1.0))


def compute_emotion_metrics(
    logits: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    regression: np.ndarray | None = None,
    regression_labels: np.ndarray | None = None,
    threshold: float = THRESHOLD,
    emotions: Sequence[str] = EMOTIONS,
) -> dict[str, float]:
    """All the paper's scores for one set of predictions, as a flat dict of floats.

    Args:
        logits: `(N, C)` emotion logits. labels: `(N, C)` multi-hot emotions.
        regression: `(N, 2)` predicted arousal, valence. regression_labels: `(N, 2)` the raters' means.
        threshold: sigmoid threshold of `predict_emotions`.
        emotions: the C class names, for the per-class keys.

    Returns:
        `f1_micro, f1_macro, f1_weighted, f1_<emotion>` (when logits and labels are given) and
        `ccc_arousal, ccc_valence, ccc_avg, pearson_arousal, pearson_valence` (when both regression arrays are).
    """
    metrics: dict[str, float] = {}
    if logits is not None and labels is not None:
        scores = f1_scores(labels, predict_emotions(logits, threshold))
        per_class = scores.pop("f1_per_class")
        if len(emotions) != len(per_class):
            raise ValueError(f"{len(per_class)} classes in the logits but {len(emotions)} emotion names.")
        metrics.update(scores)
        metrics.update({f"f1_{name}": float(value) for name, value in zip(emotions, per_class)})
    if regression is not None and regression_labels is not None:
        regression = _as_matrix(regression, "regression")
        regression_labels = _as_matrix(regression_labels, "regression_labels")
        if regression.shape != regression_labels.shape or regression.shape[1] != len(REGRESSION_TARGETS):
            raise ValueError(
                f"regression {regression.shape} and regression_labels {regression_labels.shape} must both be "
                f"(N, {len(REGRESSION_TARGETS)}): {', '.join(REGRESSION_TARGETS)}."
            )
        for column, name in enumerate(REGRESSION_TARGETS):
            metrics[f"ccc_{name}"] = concordance_correlation_coefficient(regression[:, column], regression_labels[:, column])
            metrics[f"pearson_{name}"] = pearson_correlation(regression[:, column], regression_labels[:, column])
        metrics["ccc_avg"] = float(np.mean([metrics[f"ccc_{name}"] for name in REGRESSION_TARGETS]))
    return metrics


def majority_baseline(
    labels: np.ndarray, train_labels: np.ndarray | None = None, emotions: Sequence[str] = EMOTIONS
) -> dict[str, float | str]:
    """F-scores of always predicting the single most frequent emotion.

    Args:
        labels: `(N, C)` multi-hot emotions to score against (a test fold).
        train_labels: `(M, C)` multi-hot emotions the majority is taken from (the training folds); `labels`
            themselves when None.

    Returns:
        `majority_label` (its name), `majority_f1_micro`, `majority_f1_macro`, `majority_f1_weighted`.
        CCC needs no baseline: a constant prediction has CCC 0.
    """
    labels = _as_matrix(labels, "labels").astype(bool)
    source = labels if train_labels is None else _as_matrix(train_labels, "train_labels").astype(bool)
    majority = int(source.sum(axis=0).argmax())
    predicted = np.zeros_like(labels)
    predicted[:, majority] = True
    scores = f1_scores(labels, predicted)
    return {
        "majority_label": emotions[majority],
        "majority_f1_micro": scores["f1_micro"],
        "majority_f1_macro": scores["f1_macro"],
        "majority_f1_weighted": scores["f1_weighted"],
    }


def _as_matrix(array, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, classes) array; got shape {array.shape}.")
    return array


def _as_pair(predictions, targets) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    t = np.asarray(targets, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"predictions ({p.size}) and targets ({t.size}) must have the same length.")
    if p.size == 0:
        raise ValueError("predictions and targets are empty.")
    return p, t


__all__ = [
    "THRESHOLD",
    "METRIC_NAMES",
    "sigmoid",
    "predict_emotions",
    "f1_scores",
    "concordance_correlation_coefficient",
    "pearson_correlation",
    "compute_emotion_metrics",
    "majority_baseline",
]
