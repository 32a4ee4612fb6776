"""The ``prosody`` row: eGeMAPS functionals with a linear head, on the same folds and scores as the other rows.

Every speech row is read against it: a deep speech row that scores below this row on a corpus has not learned
what 88 hand-made prosody measures already give. It writes the same ``predictions.npz`` and ``metrics.json`` as a
trained row (`kemd_emotion.experiment.fold.run_fold`), so the table, the paired differences and resume treat it
alike; its final model is ``{row}/final/prosody_head.json``. The features are measured once per clip and cached
with the corpus (`kemd_emotion.data.prosody`).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..configuration_klue_wav2vec2 import EMOTIONS
from ..metrics import compute_emotion_metrics, majority_baseline
from .arguments import parse_positive_weight
from .prosody_model import LinearProsodyHead
from .rows import PROSODY_FUSION
from .run_directory import METRICS, PREDICTIONS, fold_directory, write_json, write_npz

logger = logging.getLogger("kemd_emotion.experiment")



def check_prosody_rows(rows) -> None:
    """Raise an ImportError now, before any row trains, when a prosody row is asked for without opensmile."""
    if any(row.fusion == PROSODY_FUSION for row in rows):
        import importlib.util

        if importlib.util.find_spec("opensmile") is None:
            raise ImportError("the prosody row (eGeMAPS functionals) needs openSMILE's Python package: pip install "
                              "\"kemd-emotion[prosody]\" (or pip install opensmile), or leave the row out, e.g. "
                              "--fusion all.")


def prosody_features(experiment) -> np.ndarray:
    """The `(rows, 88)` eGeMAPS functionals of the run's dataset (measured once per corpus; main process first)."""
    features = getattr(experiment, "_prosody_features", None)
    if features is None:
        from ..data.prosody import cache_path, egemaps_functionals

        cache = cache_path(experiment.data_dir, experiment.output_dir)
        with experiment.args.main_process_first(desc="eGeMAPS features", local=False):
            features = egemaps_functionals(experiment.dataset["audio"], cache,
                                           progress=experiment.is_main and not experiment.args.disable_tqdm)
        experiment._prosody_features = features
    return features


def _targets(dataset, indices):
    from ..data import multi_hot

    rows = dataset.select(indices)
    labels = np.stack([multi_hot(emotions) for emotions in rows["emotion"]]).astype(np.float32)
    regression = np.stack([np.asarray(rows["arousal"]), np.asarray(rows["valence"])], axis=1).astype(np.float32)
    return rows, labels, regression


def fit_head(experiment, row: str, indices) -> LinearProsodyHead:
    """The row's linear head fitted on the dataset rows at `indices` (with the row's positive weights, if any)."""
    from ..trainer import automatic_positive_weights

    _, labels, regression = _targets(experiment.dataset, indices)
    pos_weight = parse_positive_weight(experiment.model_args_for(row).emotion_pos_weight)
    if pos_weight == "auto":
        pos_weight = automatic_positive_weights(labels)
    return LinearProsodyHead.fit(prosody_features(experiment)[np.asarray(indices)], labels, regression, pos_weight)


def run_prosody_fold(experiment, row: str, fold: int, seed: int) -> dict | None:
    """Fit the linear head on every fold but `fold`, predict `fold`, write its predictions and metrics (main process).

    Returns the metrics on the main process, None on the others."""
    train_indices, test_indices = experiment.folds[fold]
    started = time.time()
    head = fit_head(experiment, row, train_indices)
    metrics = None
    if experiment.is_main:
        fold_dir = fold_directory(experiment.output_dir, row, fold, seed if experiment.several_seeds else None)
        fold_dir.mkdir(parents=True, exist_ok=True)
        test, labels, regression_labels = _targets(experiment.dataset, test_indices)
        logits, regression = head.predict(prosody_features(experiment)[np.asarray(test_indices)])
        write_npz(fold_dir / PREDICTIONS, segment_id=np.asarray(test["segment_id"]), logits=logits,
                  regression=regression, labels=labels, regression_labels=regression_labels)
        metrics = compute_emotion_metrics(logits, labels, regression, regression_labels)
        train_emotions = experiment.dataset.select(train_indices)["emotion"]
        from ..data import multi_hot

        metrics.update(majority_baseline(labels, np.stack([multi_hot(e) for e in train_emotions])))
        metrics.update({f"support_{emotion}": int(count) for emotion, count in zip(EMOTIONS, labels.sum(axis=0))})
        metrics.update({
            "fusion": PROSODY_FUSION, "row": row, "row_options": experiment.rows[row].options, "fold": fold,
            "seed": seed, "num_folds": len(experiment.folds), "num_train": len(train_indices), "num_validation": 0,
            "num_test": len(test_indices), "decision_thresholds": None, "features": "eGeMAPSv02 functionals (88)",
            "seconds_this_session": round(time.time() - started, 1), "world_size": experiment.args.world_size,
            "predictions_aligned": True, "fingerprint_sha256": experiment.fingerprint_sha256,
        })
        write_json(fold_dir / METRICS, metrics)
        logger.info("%s | F1 micro %.2f macro %.2f | CCC arousal %.2f valence %.2f avg %.2f | %.1f s",
                    experiment.describe_fold(row, fold, seed), 100 * metrics["f1_micro"], 100 * metrics["f1_macro"],
                    100 * metrics["ccc_arousal"], 100 * metrics["ccc_valence"], 100 * metrics["ccc_avg"],
                    time.time() - started)
        if fold == len(experiment.folds) - 1 and seed == experiment.seeds[0] \
                and experiment.args.final_model == "last_fold":
            head.save(experiment.output_dir / row / "final", origin="last_fold", fold=fold,
                      train_rows=len(train_indices), features="eGeMAPSv02 functionals")
    experiment.state.wait_for_everyone()
    return metrics


def train_prosody_final(experiment, row: str) -> None:
    """`--final_model all_data`: the head fitted on every row, saved as ``{row}/final/prosody_head.json``."""
    head = fit_head(experiment, row, np.arange(len(experiment.dataset)))
    if experiment.is_main:
        head.save(experiment.output_dir / row / "final", origin="all_data", train_rows=len(experiment.dataset),
                  features="eGeMAPSv02 functionals")


__all__ = ["PROSODY_FUSION", "check_prosody_rows", "run_prosody_fold", "train_prosody_final", "prosody_features", "fit_head"]
