"""Run directories: `examples/run_emotion.py` on the tiny sample corpus, and a made-up finished run (model cards,
CLI)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kemd_emotion import EMOTIONS
from kemd_emotion.experiment import EXIT_AFTER_SAVE_ENV, has_accelerator
from kemd_emotion.metrics import compute_emotion_metrics, majority_baseline

CPU_ONLY = not has_accelerator()
"""On a CPU-only machine the script must find its way to gloo DDP by itself: no --use_cpu is passed then."""
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "run_emotion.py"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    """The tiny sample corpus (20 usable rows, with the release's faults), written once for every run here."""
    from kemd_emotion.data import write_sample_corpus

    directory = tmp_path_factory.mktemp("corpus") / "kemdy20"
    write_sample_corpus(directory, name="kemdy20", size="tiny")
    return directory


def tiny_run_arguments(sample_dir, output_dir, *extra):
    return [
        "--output_dir", str(output_dir), "--sample_dir", str(sample_dir), "--sample_size", "tiny",
        "--num_folds", "2", "--rows", "cat", "--num_train_epochs", "1", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "4", "--sample_vocab_size", "300", "--disable_tqdm", "true",
        *([] if CPU_ONLY else ["--use_cpu", "true"]), *extra,
    ]


def run(command, env_extra=None, timeout=240):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop(EXIT_AFTER_SAVE_ENV, None)
    env.update(env_extra or {})
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def read_json(path):
    return json.loads(Path(path).read_text())


PRIOR = np.array([0.08, 0.04, 0.03, 0.15, 0.55, 0.1, 0.05])


def make_run_dir(root, fusion="cat", num_folds=3, per_fold=40, seed=0, sample=True, final_model=None, processor=None):
    """A run directory in kemd_emotion.experiment's layout, with predictions that carry some signal.

    `final_model` (with `processor`) is saved as {fusion}/final, as the experiment does.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    run_args = {
        "command": ["python", "examples/run_emotion.py", "--output_dir", str(root)],
        "preset": {"preset": "sample"},
        "fusions": [fusion],
        "folds": list(range(num_folds)),
        "split": {"data_dir": None, "dataset_name": None, "annotations": "speaker", "num_folds": num_folds,
                  "fold_by": "session", "fold_seed": 0, "max_samples": None,
                  "sample_size": "tiny" if sample else None, "text_model": None, "audio_model": None},
        "data_dir_used": str(root / "sample_corpus") if sample else "/data/KEMDy20_v1_2",
        "num_rows": num_folds * per_fold,
        "world_size": 1,
        "model": {"fusion": fusion, "regression_loss": "mse", "text_model": None, "audio_model": None},
        "data": {"data_dir": None if sample else "/data/KEMDy20_v1_2", "dataset_name": None if sample else "kemdy20",
                 "annotations": "speaker", "num_folds": num_folds, "fold_by": "session", "max_audio_seconds": 2.0,
                 "max_text_length": 128, "sample_size": "tiny", "sample_name": "kemdy20"},
        "training": {"num_train_epochs": 6.0, "learning_rate": 0.002, "per_device_train_batch_size": 16},
    }
    (root / "run_args.json").write_text(json.dumps(run_args))
    for fold in range(num_folds):
        fold_dir = root / fusion / f"fold{fold}"
        fold_dir.mkdir(parents=True)
        classes = rng.choice(len(EMOTIONS), size=per_fold, p=PRIOR)
        labels = np.eye(len(EMOTIONS))[classes]
        labels[0, (classes[0] + 1) % 7] = 1  # a rater tie: two labels
        logits = rng.normal(-1.5, 1.0, labels.shape) + 2.5 * labels
        rated = np.clip(rng.normal(3.0, 0.8, (per_fold, 2)), 1, 5)
        regression = 3.0 + 0.6 * (rated - 3.0) + rng.normal(0, 0.3, rated.shape)
        np.savez(fold_dir / "predictions.npz", segment_id=np.array([f"Sess0{fold}_{i:03d}" for i in range(per_fold)]),
                 logits=logits, regression=regression, labels=labels, regression_labels=rated)
        metrics = compute_emotion_metrics(logits, labels, regression, rated)
        metrics.update(majority_baseline(labels))
        metrics.update({"fusion": fusion, "fold": fold, "num_folds": num_folds, "num_test": per_fold, "epochs": 6.0})
        (fold_dir / "metrics.json").write_text(json.dumps(metrics))
    if final_model is not None:
        final = root / fusion / "final"
        final_model.save_pretrained(final)
        processor.save_pretrained(final)
        (final / "final_info.json").write_text(json.dumps({"origin": "last_fold", "fold": num_folds - 1}))
    return root
