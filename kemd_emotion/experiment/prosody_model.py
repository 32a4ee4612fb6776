"""A linear head on eGeMAPS functionals: the prosody row's model (the field's standard interpretable baseline).

The features are standardised with the training rows' means and spreads; arousal and valence come from a ridge
regression (closed form), the seven emotions from a multi-label logistic regression (the paper's multi-label
soft-margin loss, i.e. the mean binary cross-entropy, with the row's positive weights if any, plus the same L2
penalty), fitted by L-BFGS from zeros in float64: the same rows give the same model, whatever the seed.

>>> rng = np.random.default_rng(0)
>>> features = rng.normal(size=(64, 88)).astype(np.float32)
>>> labels = (features[:, :7] > 0).astype(np.float32)
>>> targets = np.stack([3 + features[:, 0], 3 - features[:, 1]], axis=1)
>>> head = LinearProsodyHead.fit(features, labels, targets)
>>> logits, regression = head.predict(features)
>>> logits.shape, regression.shape, bool(np.corrcoef(regression[:, 0], targets[:, 0])[0, 1] > 0.9)
((64, 7), (64, 2), True)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

L2_PENALTY = 0.05
"""Per-row L2 penalty of both fits (ridge: alpha = L2_PENALTY x rows). Chosen once, not tuned on any corpus."""
LBFGS_ITERATIONS = 200


@dataclass
class LinearProsodyHead:
    """Standardisation (`mean`, `scale`) and the two linear maps: emotions `(88, 7)` + bias, arousal/valence `(88, 2)`."""

    mean: np.ndarray
    scale: np.ndarray
    emotion_weight: np.ndarray
    emotion_bias: np.ndarray
    regression_weight: np.ndarray
    regression_bias: np.ndarray

    @classmethod
    def fit(cls, features, labels, regression_labels, pos_weight=None, l2: float = L2_PENALTY) -> LinearProsodyHead:
        """Fit on `(N, F)` features, `(N, 7)` multi-hot labels and `(N, 2)` arousal/valence; `pos_weight` (7,)."""
        import torch

        features = np.asarray(features, dtype=np.float64)
        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale = np.where(scale > 1e-8, scale, 1.0)
        x = np.clip((features - mean) / scale, -6.0, 6.0)
        n, f = x.shape

        targets = np.asarray(regression_labels, dtype=np.float64)
        target_mean = targets.mean(axis=0)
        centred = x - x.mean(axis=0)
        regression_weight = np.linalg.solve(centred.T @ centred + l2 * n * np.eye(f), centred.T @ (targets - target_mean))
        regression_bias = target_mean - x.mean(axis=0) @ regression_weight

        inputs = torch.from_numpy(x)
        y = torch.as_tensor(np.asarray(labels), dtype=torch.float64)
        weight = torch.zeros(f, y.shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
        positive = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float64)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=LBFGS_ITERATIONS, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(inputs @ weight + bias, y, pos_weight=positive)
            loss = loss + 0.5 * l2 * (weight ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(mean, scale, weight.detach().numpy(), bias.detach().numpy(), regression_weight, regression_bias)

    def predict(self, features) -> tuple[np.ndarray, np.ndarray]:
        """``(logits (N, 7), regression (N, 2): arousal, valence)`` as float32."""
        x = np.clip((np.asarray(features, dtype=np.float64) - self.mean) / self.scale, -6.0, 6.0)
        logits = x @ self.emotion_weight + self.emotion_bias
        regression = x @ self.regression_weight + self.regression_bias
        return logits.astype(np.float32), regression.astype(np.float32)

    def save(self, directory: str | os.PathLike, **info) -> Path:
        """Write ``prosody_head.json`` (the arrays as lists, and `info`) into `directory`; return its path."""
        path = Path(directory) / "prosody_head.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {name: np.asarray(value).tolist() for name, value in asdict(self).items()}
        path.write_text(json.dumps({**info, **values}), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearProsodyHead:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{name: np.asarray(values[name]) for name in cls.__dataclass_fields__})


__all__ = ["LinearProsodyHead", "L2_PENALTY"]
