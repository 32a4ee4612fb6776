"""The paper's scores as an `evaluate` metric module: `evaluate.load` of the shipped script gives the package's
numbers (scikit-learn's F-scores, hand-computed CCC), offline, and the script is self-contained (loads where
kemd_emotion cannot be imported), as a metric pushed to the Hub must be."""

import ast
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score
from helpers.fresh_process import BLOCK_KEMD_EMOTION

from kemd_emotion import EMOTIONS, REGRESSION_TARGETS
from kemd_emotion import metrics as package_metrics
from kemd_emotion.evaluate_metric import kemd_emotion as metric_module
from kemd_emotion.metrics import METRIC_SCRIPT, compute_emotion_metrics, load_metric, predict_emotions

THRESHOLDS = [0.45, 0.2, 0.25, 0.5, 0.6, 0.35, 0.3]


@pytest.fixture(scope="module")
def data():
    """Random multi-label rows (ties, a class absent: scikit-learn's zero_division path) and ratings."""
    rng = np.random.default_rng(7)
    n = 150
    labels = np.zeros((n, 7), dtype=int)
    labels[np.arange(n), rng.choice(7, n, p=[0.15, 0.05, 0.0, 0.2, 0.4, 0.15, 0.05])] = 1
    ties = rng.random(n) < 0.2
    labels[ties, rng.integers(0, 7, ties.sum())] = 1
    logits = rng.normal(-1, 1.5, labels.shape) + 2 * labels
    ratings = rng.uniform(1, 5, (n, 2))
    predicted = ratings + rng.normal(0, 0.6, (n, 2))
    return logits, labels, predicted, ratings


def ccc_by_hand(p, t):
    return 2 * np.mean((p - p.mean()) * (t - t.mean())) / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)


@pytest.mark.parametrize("threshold", [0.5, THRESHOLDS], ids=["at-0.5", "per-emotion"])
def test_evaluate_load_gives_the_package_numbers_and_sklearns(data, threshold):
    logits, labels, predicted, ratings = data
    found = load_metric().compute(predictions=logits, references=labels, threshold=threshold, regression=predicted,
                                  regression_labels=ratings)
    ours = compute_emotion_metrics(logits, labels, predicted, ratings, threshold=threshold)
    assert found == pytest.approx(ours, abs=1e-12) and set(found) == set(ours)
    decided = predict_emotions(logits, threshold)
    for average in ("micro", "macro", "weighted"):
        assert found[f"f1_{average}"] == pytest.approx(f1_score(labels, decided, average=average, zero_division=0),
                                                       abs=1e-12)
    per_class = f1_score(labels, decided, average=None, zero_division=0)
    assert [found[f"f1_{name}"] for name in EMOTIONS] == pytest.approx(per_class.tolist(), abs=1e-12)
    for column, name in enumerate(REGRESSION_TARGETS):
        assert found[f"ccc_{name}"] == pytest.approx(ccc_by_hand(predicted[:, column], ratings[:, column]), abs=1e-12)
    assert found["ccc_avg"] == pytest.approx((found["ccc_arousal"] + found["ccc_valence"]) / 2, abs=1e-12)


def test_decisions_at_0_5_are_the_papers_rule(data):
    """sigmoid > 0.5, and a row with none above takes its arg-max: the rule of the package before this module."""
    logits = data[0]
    expected = 1 / (1 + np.exp(-logits)) > 0.5
    empty = ~expected.any(axis=1)
    expected[empty, logits[empty].argmax(axis=1)] = True
    assert empty.any() and np.array_equal(predict_emotions(logits), expected)


def test_batches_and_the_arousal_valence_config(data):
    logits, labels, predicted, ratings = data
    metric = load_metric("emotions")
    for start in range(0, len(logits), 40):
        metric.add_batch(predictions=logits[start:start + 40], references=labels[start:start + 40])
    assert metric.compute() == pytest.approx(compute_emotion_metrics(logits, labels), abs=1e-12)
    found = load_metric("arousal_valence").compute(predictions=predicted, references=ratings)
    assert found == pytest.approx(compute_emotion_metrics(regression=predicted, regression_labels=ratings), abs=1e-12)
    named = load_metric().compute(predictions=[[2.0, -1.0]], references=[[1, 0]], label_names=["happy", "sad"])
    assert named == {"f1_micro": 1.0, "f1_macro": 0.5, "f1_weighted": 1.0, "f1_happy": 1.0, "f1_sad": 0.0}
    with pytest.raises(ValueError, match="config_name='regression' is not supported"):
        load_metric("regression")


def test_one_implementation():
    """kemd_emotion.metrics re-exports the module's functions; the Trainer and experiment import them from there."""
    for name in ("compute_emotion_metrics", "predict_emotions", "f1_scores", "concordance_correlation_coefficient",
                 "pearson_correlation", "majority_baseline", "sigmoid"):
        assert getattr(package_metrics, name) is getattr(metric_module, name), name
    assert metric_module.EMOTIONS == EMOTIONS and metric_module.REGRESSION_TARGETS == REGRESSION_TARGETS


def test_the_script_imports_only_numpy_datasets_and_evaluate_one_per_line():
    """What the Hub copy can rely on; evaluate's dependency scanner misreads `import a, b` on one line."""
    tree = ast.parse(METRIC_SCRIPT.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert len(node.names) == 1, ast.unparse(node)
            imported.add(node.names[0].name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, ast.unparse(node)
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "collections", "datasets", "evaluate", "numpy"}, imported
    folder = METRIC_SCRIPT.parent
    assert {"README.md", "app.py", "requirements.txt", "kemd_emotion.py"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "- metric" in card and "app_file: app.py" in card


def test_loads_where_kemd_emotion_cannot_be_imported(tmp_path, data):
    """The folder as pushed to a Hub Space (a folder named like its script), loaded in a fresh process."""
    logits, labels, _, _ = data
    space = tmp_path / "kemd_emotion"
    shutil.copytree(METRIC_SCRIPT.parent, space, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    script = BLOCK_KEMD_EMOTION + (
        "import evaluate\n"
        "import numpy as np\n"
        "inputs = json.loads(sys.stdin.read())\n"
        "metric = evaluate.load(sys.argv[1])\n"
        "print(json.dumps(metric.compute(predictions=np.array(inputs['logits']), references=np.array(inputs['labels']), "
        "threshold=inputs['threshold'])))\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": "", "HF_MODULES_CACHE": str(tmp_path / "m"),
           "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script, str(space)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300,
                            input=json.dumps({"logits": logits.tolist(), "labels": labels.tolist(),
                                              "threshold": THRESHOLDS}))
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == pytest.approx(compute_emotion_metrics(logits, labels, threshold=THRESHOLDS), abs=1e-12)
