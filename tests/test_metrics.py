"""The paper's scores (kemd_emotion.metrics) against scikit-learn / scipy and hand-computed values."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import f1_score

from kemd_emotion import EMOTIONS
from kemd_emotion.metrics import (
    compute_emotion_metrics,
    concordance_correlation_coefficient,
    f1_scores,
    majority_baseline,
    pearson_correlation,
    predict_emotions,
)


def random_multilabel(rng, n=200, classes=7, rare=(1, 2)):
    labels = np.zeros((n, classes), dtype=np.float32)
    labels[np.arange(n), rng.integers(0, classes, n)] = 1
    ties = rng.random(n) < 0.2
    labels[ties, rng.integers(0, classes, ties.sum())] = 1
    labels[:, list(rare)] = 0  # classes absent from the fold: sklearn's zero_division path
    return labels


def test_ccc_by_hand():
    # p = [1, 2, 3, 4], t = [2, 2, 4, 5]: means 2.5 / 3.25, var 1.25 / 1.6875, cov 1.375
    # CCC = 2 * 1.375 / (1.25 + 1.6875 + 0.75**2) = 2.75 / 3.5
    p, t = np.array([1.0, 2, 3, 4]), np.array([2.0, 2, 4, 5])
    assert concordance_correlation_coefficient(p, t) == pytest.approx(2.75 / 3.5)
    assert concordance_correlation_coefficient(p, p) == pytest.approx(1.0)
    centred = p - p.mean()
    assert concordance_correlation_coefficient(centred, -centred) == pytest.approx(-1.0)
    # A shifted copy correlates perfectly but does not agree: 2 var / (2 var + shift^2).
    assert concordance_correlation_coefficient(p + 1, p) == pytest.approx(2 * 1.25 / (2 * 1.25 + 1))
    # A constant prediction has CCC 0; two equal constants agree perfectly.
    assert concordance_correlation_coefficient(np.full(4, 3.0), t) == 0.0
    assert concordance_correlation_coefficient(np.full(4, 3.0), np.full(4, 3.0)) == 1.0


def test_ccc_matches_torch_loss_helper(rng):
    import torch

    from kemd_emotion.modeling_klue_wav2vec2 import concordance_correlation

    p, t = rng.normal(3, 1, 50), rng.normal(3.2, 0.7, 50)
    expected = concordance_correlation(torch.tensor(p), torch.tensor(t)).item()
    assert concordance_correlation_coefficient(p, t) == pytest.approx(expected, abs=1e-6)


def test_pearson_against_scipy(rng):
    p, t = rng.normal(size=100), rng.normal(size=100)
    t = t + 0.5 * p
    assert pearson_correlation(p, t) == pytest.approx(pearsonr(p, t).statistic, abs=1e-12)
    assert pearson_correlation(np.ones(5), np.arange(5.0)) == 0.0


def test_predict_emotions_threshold_and_argmax_fallback():
    logits = np.array([[3.0, -1.0, 0.1], [-2.0, -0.5, -4.0], [0.0, 0.0, -1.0]])
    predicted = predict_emotions(logits)
    # sigmoid(0.1) > 0.5; sigmoid(0) == 0.5 is not above the threshold, so row 3 falls back to its arg-max.
    assert predicted.tolist() == [[True, False, True], [False, True, False], [True, False, False]]
    assert predicted.any(axis=1).all()


def test_f1_against_sklearn(rng):
    labels = random_multilabel(rng)
    logits = rng.normal(-1, 2, labels.shape) + 3 * labels
    predicted = predict_emotions(logits)
    ours = f1_scores(labels, predicted)
    for average in ("micro", "macro", "weighted"):
        expected = f1_score(labels, predicted, average=average, zero_division=0)
        assert ours[f"f1_{average}"] == pytest.approx(expected, abs=1e-12), average
    expected_per_class = f1_score(labels, predicted, average=None, zero_division=0)
    np.testing.assert_allclose(ours["f1_per_class"], expected_per_class, atol=1e-12)


def test_compute_emotion_metrics_keys_and_values(rng):
    labels = random_multilabel(rng, n=60)
    logits = rng.normal(size=labels.shape)
    regression_labels = rng.uniform(1, 5, (60, 2))
    regression = regression_labels + rng.normal(0, 0.5, (60, 2))
    metrics = compute_emotion_metrics(logits, labels, regression, regression_labels)
    for key in ("f1_micro", "f1_macro", "f1_weighted", "ccc_arousal", "ccc_valence", "ccc_avg", "pearson_arousal"):
        assert isinstance(metrics[key], float), key
    assert {f"f1_{name}" for name in EMOTIONS} <= set(metrics)
    assert metrics["ccc_arousal"] == pytest.approx(
        concordance_correlation_coefficient(regression[:, 0], regression_labels[:, 0])
    )
    assert metrics["ccc_avg"] == pytest.approx((metrics["ccc_arousal"] + metrics["ccc_valence"]) / 2)
    assert set(compute_emotion_metrics(regression=regression, regression_labels=regression_labels)) == {
        "ccc_arousal", "ccc_valence", "ccc_avg", "pearson_arousal", "pearson_valence"
    }


def test_majority_baseline_against_sklearn(rng):
    train = random_multilabel(rng, n=100)
    train[:50, 4] = 1  # "neutral" dominates the training folds
    test = random_multilabel(rng, n=40)
    baseline = majority_baseline(test, train)
    assert baseline["majority_label"] == "neutral"
    predicted = np.zeros_like(test)
    predicted[:, 4] = 1
    assert baseline["majority_f1_micro"] == pytest.approx(f1_score(test, predicted, average="micro", zero_division=0))
    assert baseline["majority_f1_macro"] == pytest.approx(f1_score(test, predicted, average="macro", zero_division=0))


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="2-D"):
        predict_emotions(np.zeros(7))
    with pytest.raises(ValueError, match="same shape"):
        f1_scores(np.zeros((3, 7)), np.zeros((4, 7)))
    with pytest.raises(ValueError, match="same length"):
        concordance_correlation_coefficient(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        compute_emotion_metrics(regression=np.zeros((3, 3)), regression_labels=np.zeros((3, 3)))
