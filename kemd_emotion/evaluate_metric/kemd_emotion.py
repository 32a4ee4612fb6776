"""The seed paper's scores for Korean multimodal emotion recognition (KEMDy): multi-label F-scores for the seven
emotions and Lin's concordance correlation coefficient (CCC) for arousal and valence.

An `evaluate` metric module, self-contained (numpy, datasets and evaluate only), so that it loads offline from its
file and can be pushed to the Hub as a metric Space:

    >>> import evaluate                                                        # doctest: +SKIP
    >>> metric = evaluate.load("path/to/kemd_emotion.py")                      # doctest: +SKIP
    >>> metric.compute(predictions=logits, references=multi_hot)               # doctest: +SKIP
    >>> evaluate.load("path/to/kemd_emotion.py", "arousal_valence").compute(   # doctest: +SKIP
    ...     predictions=predicted_ratings, references=rated)

The functions below are the one implementation: the kemd-emotion package's `kemd_emotion.metrics` re-exports them
and its Trainer and experiment score with them.

- Emotions are multi-label: references are `(N, C)` multi-hot rows (a tie between raters gives several ones),
  predictions `(N, C)` logits. An emotion is predicted when its sigmoid score exceeds its decision threshold (0.5 by
  default, or one threshold per emotion); a row with none above takes the emotion whose logit is furthest above (or
  least below) the logit of its threshold (with one common threshold: the arg-max), so every utterance gets at least
  one emotion.
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
>>> predict_emotions(np.array([[-1., 2., 0.5], [-3., -0.5, -2.]])).astype(int).tolist()  # row 2: the arg-max
[[0, 1, 1], [0, 1, 0]]
>>> predict_emotions(np.array([[-1., 2., 0.5], [-3., -0.5, -2.]]), [0.3, 0.9, 0.2]).astype(int).tolist()
[[0, 0, 1], [0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate
import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""The seven KEMDy emotions, in the order of the model's logits (the default class names)."""
REGRESSION_TARGETS: tuple[str, ...] = ("arousal", "valence")

THRESHOLD = 0.5
"""The default decision threshold (sigmoid score) of every emotion."""

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


def decision_thresholds(threshold, num_classes: int) -> np.ndarray:
    """`(C,)` thresholds from one number or a sequence of `num_classes`, each strictly between 0 and 1 (0 and 1
    themselves are allowed for a single common threshold, as the pipeline allows)."""
    values = np.asarray(threshold, dtype=np.float64)
    if values.ndim == 0:
        if not 0.0 <= float(values) <= 1.0:
            raise ValueError(f"threshold={threshold!r}: expected a score between 0 and 1.")
        return np.full(num_classes, float(values))
    if values.shape != (num_classes,) or not ((values > 0) & (values < 1)).all():
        raise ValueError(f"threshold={list(np.asarray(threshold).tolist())!r}: expected one number, or {num_classes} "
                         "numbers strictly between 0 and 1 (one per class).")
    return values


def predict_emotions(logits: np.ndarray, threshold=THRESHOLD) -> np.ndarray:
    """Multi-hot predictions `(N, C)` bool from logits `(N, C)`.

    An emotion is on when its sigmoid score is above its threshold (`threshold`: one number for all, or `(C,)`); a
    row with none above takes the emotion whose logit is furthest above (least below) the logit of its threshold,
    which is the arg-max when all thresholds are equal. So every utterance gets at least one emotion.
    """
    logits = _as_matrix(logits, "logits").astype(np.float64)
    thresholds = decision_thresholds(threshold, logits.shape[1])
    predicted = sigmoid(logits) > thresholds
    empty = ~predicted.any(axis=1)
    clipped = np.clip(thresholds, 1e-12, 1 - 1e-12)
    margins = logits - (np.log(clipped) - np.log1p(-clipped))
    predicted[empty, margins[empty].argmax(axis=1)] = True
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
    per_class = f1_from_counts(true_positives, false_positives, false_negatives)
    support = labels.sum(axis=0).astype(np.float64)
    return {
        "f1_micro": float(f1_from_counts(true_positives.sum(), false_positives.sum(), false_negatives.sum())),
        "f1_macro": float(per_class.mean()),
        "f1_weighted": float((per_class * support).sum() / support.sum()) if support.sum() > 0 else 0.0,
        "f1_per_class": per_class,
    }


def f1_from_counts(tp, fp, fn) -> np.ndarray:
    """`2 tp / (2 tp + fp + fn)` elementwise, 0 where the denominator is 0."""
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


def emotion_scores(logits: np.ndarray, labels: np.ndarray, threshold=THRESHOLD,
                   emotions: Sequence[str] = EMOTIONS) -> dict[str, float]:
    """`f1_micro, f1_macro, f1_weighted` and `f1_<emotion>` of `(N, C)` logits against `(N, C)` multi-hot labels."""
    scores = f1_scores(labels, predict_emotions(logits, threshold))
    per_class = scores.pop("f1_per_class")
    if len(emotions) != len(per_class):
        raise ValueError(f"{len(per_class)} classes in the logits but {len(emotions)} emotion names.")
    scores.update({f"f1_{name}": float(value) for name, value in zip(emotions, per_class)})
    return scores


def regression_scores(regression: np.ndarray, regression_labels: np.ndarray) -> dict[str, float]:
    """`ccc_arousal, ccc_valence, ccc_avg, pearson_arousal, pearson_valence` of `(N, 2)` predictions and ratings."""
    regression = _as_matrix(regression, "regression")
    regression_labels = _as_matrix(regression_labels, "regression_labels")
    if regression.shape != regression_labels.shape or regression.shape[1] != len(REGRESSION_TARGETS):
        raise ValueError(
            f"regression {regression.shape} and regression_labels {regression_labels.shape} must both be "
            f"(N, {len(REGRESSION_TARGETS)}): {', '.join(REGRESSION_TARGETS)}."
        )
    metrics = {}
    for column, name in enumerate(REGRESSION_TARGETS):
        metrics[f"ccc_{name}"] = concordance_correlation_coefficient(regression[:, column], regression_labels[:, column])
        metrics[f"pearson_{name}"] = pearson_correlation(regression[:, column], regression_labels[:, column])
    metrics["ccc_avg"] = float(np.mean([metrics[f"ccc_{name}"] for name in REGRESSION_TARGETS]))
    return metrics


def compute_emotion_metrics(
    logits: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    regression: np.ndarray | None = None,
    regression_labels: np.ndarray | None = None,
    threshold=THRESHOLD,
    emotions: Sequence[str] = EMOTIONS,
) -> dict[str, float]:
    """All the paper's scores for one set of predictions, as a flat dict of floats.

    Args:
        logits: `(N, C)` emotion logits. labels: `(N, C)` multi-hot emotions.
        regression: `(N, 2)` predicted arousal, valence. regression_labels: `(N, 2)` the raters' means.
        threshold: the decision threshold of `predict_emotions`: one number, or one per emotion.
        emotions: the C class names, for the per-class keys.

    Returns:
        `f1_micro, f1_macro, f1_weighted, f1_<emotion>` (when logits and labels are given) and
        `ccc_arousal, ccc_valence, ccc_avg, pearson_arousal, pearson_valence` (when both regression arrays are).
    """
    metrics: dict[str, float] = {}
    if logits is not None and labels is not None:
        metrics.update(emotion_scores(logits, labels, threshold, emotions))
    if regression is not None and regression_labels is not None:
        metrics.update(regression_scores(regression, regression_labels))
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


# ---------------------------------------------------------------------------------------------------- evaluate
CONFIGS = ("default", "emotions", "arousal_valence")
"""`evaluate.load(path)` / `evaluate.load(path, "emotions")`: the F-scores; `"arousal_valence"`: CCC and Pearson."""

_DESCRIPTION = """\
The scores of "Korean multimodal emotion recognition with KLUE-BERT and wav2vec 2.0" (KEMDy19/KEMDy20): multi-label
F1 (micro, macro, weighted and per emotion) of the seven emotions, and Lin's concordance correlation coefficient (and
Pearson's r) of arousal and valence.
"""

_KWARGS_DESCRIPTION = """\
Config "default" / "emotions":
    predictions: (N, C) emotion logits (a sigmoid gives each emotion's score).
    references: (N, C) multi-hot true emotions.
    threshold: decision threshold on the sigmoid score, one number (default 0.5) or one per emotion.
    label_names: the C class names for the per-class keys (default: the seven KEMDy emotions).
    regression, regression_labels: optional (N, 2) predicted and rated arousal, valence: adds the CCC keys.
Config "arousal_valence":
    predictions: (N, 2) predicted arousal, valence. references: (N, 2) rated arousal, valence.
Returns:
    f1_micro, f1_macro, f1_weighted, f1_<emotion>; ccc_arousal, ccc_valence, ccc_avg, pearson_arousal,
    pearson_valence.
Examples:
    >>> metric = evaluate.load("kemd_emotion.py")  # doctest: +SKIP
    >>> metric.compute(predictions=[[2.0, -1.0]], references=[[1, 0]], label_names=["happy", "sad"])  # doctest: +SKIP
    {'f1_micro': 1.0, 'f1_macro': 0.5, 'f1_weighted': 1.0, 'f1_happy': 1.0, 'f1_sad': 0.0}
"""

_CITATION = """\
@article{kemd_emotion,
  title = {Multimodal emotion recognition of Korean speech and text with KLUE-BERT and wav2vec 2.0},
  note = {Seed paper of the kemd-emotion package; KEMDy19/KEMDy20 corpora by ETRI},
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class KemdEmotion(evaluate.Metric):
    """The paper's scores as an `evaluate.Metric`; see the module docstring for the decision rule."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in CONFIGS:
            raise ValueError(f"config_name={self.config_name!r} is not supported; expected one of "
                             f"{', '.join(map(repr, CONFIGS))}.")
        reference_type = "float64" if self.config_name == "arousal_valence" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float64")),
                "references": datasets.Sequence(datasets.Value(reference_type)),
            }),
            reference_urls=["https://nanum.etri.re.kr/share/kjnoh/KEMDy20"],
        )

    def _compute(self, predictions, references, threshold=THRESHOLD, label_names=None, regression=None,
                 regression_labels=None):
        predictions, references = np.asarray(predictions, dtype=np.float64), np.asarray(references)
        if self.config_name == "arousal_valence":
            return regression_scores(predictions, references)
        names = tuple(label_names) if label_names is not None else EMOTIONS
        return compute_emotion_metrics(predictions, references, regression, regression_labels, threshold, names)
