"""Model cards: eval results in the metadata, protocol and limits in the text, and the figures they link."""

import json

import numpy as np
import pytest
from huggingface_hub import ModelCard
from PIL import Image

from kemd_emotion import EMOTIONS
from kemd_emotion.metrics import compute_emotion_metrics, majority_baseline
from kemd_emotion.experiment.model_card import load_run, write_model_card

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


@pytest.fixture(scope="module")
def card_dir(tmp_path_factory, tiny_model_factory, tiny_processor):
    run = make_run_dir(tmp_path_factory.mktemp("run"), final_model=tiny_model_factory("cat"), processor=tiny_processor)
    readme = write_model_card(run, "cat")
    return run, readme


def test_card_carries_the_cross_validated_results(card_dir):
    run_dir, readme = card_dir
    assert readme == run_dir / "cat" / "final" / "README.md"
    card = ModelCard.load(readme)
    fold_metrics = [json.loads((run_dir / "cat" / f"fold{k}" / "metrics.json").read_text()) for k in range(3)]
    results = {(r.metric_type, r.metric_config): r for r in card.data.eval_results}
    expected = {("f1", "micro"): "f1_micro", ("f1", "macro"): "f1_macro", ("ccc", "arousal"): "ccc_arousal",
                ("ccc", "valence"): "ccc_valence", ("ccc", "average"): "ccc_avg"}
    assert set(results) == set(expected)
    for key, name in expected.items():
        assert results[key].metric_value == pytest.approx(np.mean([m[name] for m in fold_metrics]), abs=1e-4)
        assert results[key].dataset_type == "kemdy20"
        assert results[key].dataset_name == "KEMDy20 (synthetic sample corpus)"
        assert results[key].dataset_args == {"num_folds": 3, "fold_by": "session"}
    assert card.data.language == "ko"
    assert card.data.library_name == "transformers"
    assert "custom_code" in card.data.tags


def test_card_text_states_protocol_use_limits_and_loading(card_dir):
    run_dir, readme = card_dir
    text = readme.read_text(encoding="utf-8")
    micro = np.mean([json.loads((run_dir / "cat" / f"fold{k}" / "metrics.json").read_text())["f1_micro"] for k in range(3)])
    assert f"| F1 micro | {100 * micro:.2f} ± " in text
    for phrase in [
        "synthetic sample corpus",  # the warning that these are not KEMDy numbers
        "3-fold cross-validation",
        "folds by session (no speaker in both train and test)",
        "| Epochs per fold | 6 |",
        "cropped to the first 2 s",
        "the model of the last fold (fold 2)",
        "Korean only",
        "does not contain or redistribute",
        'pipeline("emotion-multimodal", model="',
        "trust_remote_code=True",
        "kemd-emotion predict --model",
        "Majority-class baseline",
    ]:
        assert phrase in text, phrase
    assert "{{" not in text and "{%" not in text


def test_card_links_the_figures_it_writes(card_dir):
    run_dir, readme = card_dir
    text = readme.read_text(encoding="utf-8")
    for name in ("emotions.png", "arousal_valence.png"):
        assert f"]({name})" in text
        with Image.open(readme.parent / name) as image:
            assert image.format == "PNG"
            assert image.width > 800 and image.height > 400


def test_card_makes_the_checkpoint_loadable_by_its_own_example(card_dir):
    run_dir, readme = card_dir
    final = readme.parent
    assert (final / "pipeline_emotion.py").is_file()
    assert "emotion-multimodal" in json.loads((final / "config.json").read_text())["custom_pipelines"]


def test_real_corpus_run_without_predictions_or_final_model(tmp_path):
    run_dir = make_run_dir(tmp_path / "run", fusion="text", num_folds=2, sample=False)
    for npz in run_dir.glob("text/fold*/predictions.npz"):
        npz.unlink()
    readme = write_model_card(run_dir, "text", tmp_path / "card", model_id="someone/kemd-text")
    text = readme.read_text(encoding="utf-8")
    assert "synthetic" not in text
    assert 'model="someone/kemd-text"' in text
    assert "![" not in text  # no predictions, no figures: nothing broken is linked
    card = ModelCard.load(readme)
    assert card.data.eval_results[0].dataset_name == "KEMDy20"
    assert card.data.pipeline_tag == "text-classification"
    assert not (tmp_path / "card" / "config.json").exists()


def test_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"has no finished fold .*fold\*/metrics.json"):
        write_model_card(tmp_path, "cat")


def test_load_run_pools_the_folds(tmp_path):
    run = load_run(make_run_dir(tmp_path / "run", num_folds=2, per_fold=10), "cat")
    assert run.predictions["logits"].shape == (20, 7)
    assert run.predictions["regression_labels"].shape == (20, 2)
    mean, std, values = run.summary("f1_micro")
    assert len(values) == 2 and std is not None
