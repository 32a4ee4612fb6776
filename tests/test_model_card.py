"""Model cards: eval results in the metadata, protocol and limits in the text, and the figures they link."""

import json

import numpy as np
import pytest
from helpers.runs import make_run_dir
from huggingface_hub import ModelCard
from PIL import Image

from kemd_emotion.experiment.model_card import load_run, write_model_card


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


def test_the_prosody_baseline_gets_no_card(tmp_path):
    with pytest.raises(ValueError, match=r"^row 'prosody\+posweight' is the eGeMAPS baseline .* not a transformers "
                                         r"model: it gets no model card"):
        write_model_card(tmp_path, "prosody+posweight")


def test_load_run_pools_the_folds(tmp_path):
    run = load_run(make_run_dir(tmp_path / "run", num_folds=2, per_fold=10), "cat")
    assert run.predictions["logits"].shape == (20, 7)
    assert run.predictions["regression_labels"].shape == (20, 2)
    mean, std, values = run.summary("f1_micro")
    assert len(values) == 2 and std is not None
