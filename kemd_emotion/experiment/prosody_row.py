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


_FEATURES: dict[str, np.ndarray] = {}
"""Each corpus' features by cache file, measured once per process (the cache file keeps them between runs)."""


def prosody_features(setup) -> np.ndarray:
    """The `(rows, 88)` eGeMAPS functionals of the run's dataset (measured once per corpus; main process first)."""
    from ..data.prosody import cache_path, egemaps_functionals

    cache = cache_path(setup.data_dir, setup.output_dir)
    if str(cache) not in _FEATURES:
        with setup.args.main_process_first(desc="eGeMAPS features", local=False):
            _FEATURES[str(cache)] = egemaps_functionals(
                setup.dataset["audio"], cache, progress=setup.processes.is_main and not setup.args.disable_tqdm)
    return _FEATURES[str(cache)]


def _targets(dataset, indices):
    from ..data import multi_hot

    rows = dataset.select(indices)
    labels = np.stack([multi_hot(emotions) for emotions in rows["emotion"]]).astype(np.float32)
    regression = np.stack([np.asarray(rows["arousal"]), np.asarray(rows["valence"])], axis=1).astype(np.float32)
    return rows, labels, regression


def fit_head(setup, row, indices) -> LinearProsodyHead:
    """The row's linear head fitted on the dataset rows at `indices` (with the row's positive weights, if any)."""
    from ..trainer import automatic_positive_weights

    _, labels, regression = _targets(setup.dataset, indices)
    pos_weight = parse_positive_weight(row.model_arguments(setup.model_args).emotion_pos_weight)
    if pos_weight == "auto":
        pos_weight = automatic_positive_weights(labels)
    return LinearProsodyHead.fit(prosody_features(setup)[np.asarray(indices)], labels, regression, pos_weight)


def run_prosody_fold(setup, row, fold: int, seed: int) -> dict | None:
    """Fit the linear head on every fold but `fold`, predict `fold`, write its predictions and metrics (main process).

    Returns the metrics on the main process, None on the others."""
    train_indices, test_indices = setup.folds[fold]
    started = time.time()
    head = fit_head(setup, row, train_indices)
    metrics = None
    if setup.processes.is_main:
        fold_dir = fold_directory(setup.output_dir, row.name, fold, seed if setup.several_seeds else None)
        fold_dir.mkdir(parents=True, exist_ok=True)
        test, labels, regression_labels = _targets(setup.dataset, test_indices)
        logits, regression = head.predict(prosody_features(setup)[np.asarray(test_indices)])
        write_npz(fold_dir / PREDICTIONS, segment_id=np.asarray(test["segment_id"]), logits=logits,
                  regression=regression, labels=labels, regression_labels=regression_labels)
        metrics = compute_emotion_metrics(logits, labels, regression, regression_labels)
        train_emotions = setup.dataset.select(train_indices)["emotion"]
        from ..data import multi_hot

        metrics.update(majority_baseline(labels, np.stack([multi_hot(e) for e in train_emotions])))
        metrics.update({f"support_{emotion}": int(count) for emotion, count in zip(EMOTIONS, labels.sum(axis=0))})
        metrics.update({
            "fusion": PROSODY_FUSION, "row": row.name, "row_options": row.options, "fold": fold,
            "seed": seed, "num_folds": len(setup.folds), "num_train": len(train_indices), "num_validation": 0,
            "num_test": len(test_indices), "decision_thresholds": None, "features": "eGeMAPSv02 functionals (88)",
            "seconds_this_session": round(time.time() - started, 1), "world_size": setup.args.world_size,
            "predictions_aligned": True, "fingerprint_sha256": setup.fingerprint_sha256,
        })
        write_json(fold_dir / METRICS, metrics)
        logger.info("%s | F1 micro %.2f macro %.2f | CCC arousal %.2f valence %.2f avg %.2f | %.1f s",
                    setup.describe_fold(row, fold, seed), 100 * metrics["f1_micro"], 100 * metrics["f1_macro"],
                    100 * metrics["ccc_arousal"], 100 * metrics["ccc_valence"], 100 * metrics["ccc_avg"],
                    time.time() - started)
        if fold == len(setup.folds) - 1 and seed == setup.seeds[0] \
                and setup.args.final_model == "last_fold":
            head.save(setup.output_dir / row.name / "final", origin="last_fold", fold=fold,
                      train_rows=len(train_indices), features="eGeMAPSv02 functionals")
    setup.processes.wait_for_everyone()
    return metrics


def train_prosody_final(setup, row) -> None:
    """`--final_model all_data`: the head fitted on every row, saved as ``{row}/final/prosody_head.json``."""
    head = fit_head(setup, row, np.arange(len(setup.dataset)))
    if setup.processes.is_main:
        head.save(setup.output_dir / row.name / "final", origin="all_data", train_rows=len(setup.dataset),
                  features="eGeMAPSv02 functionals")


__all__ = ["PROSODY_FUSION", "check_prosody_rows", "run_prosody_fold", "train_prosody_final", "prosody_features", "fit_head"]
