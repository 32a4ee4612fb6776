"""The prosody row: eGeMAPS functionals (openSMILE), cached with the corpus, and a linear head on the same folds."""

import json
import os

import numpy as np
import pytest

from kemd_emotion.experiment.prosody_model import LinearProsodyHead
from kemd_emotion.experiment.rows import parse_row, parse_rows

if not os.environ.get("CI"):  # CI installs the test extra, which holds opensmile: there the tests must run
    pytest.importorskip("opensmile", reason="the prosody row needs opensmile (pip install 'kemd-emotion[prosody]')")


def test_prosody_is_a_row_not_a_fusion():
    row = parse_row("prosody+posweight")
    assert row.fusion == "prosody" and row.options == {"fusion": "prosody", "emotion_pos_weight": "auto"}
    assert row.title == "eGeMAPS functionals + linear head + positive weights"
    assert [r.name for r in parse_rows("all,prosody")] == ["text", "speech", "cat", "add", "prosody"]
    with pytest.raises(ValueError, match="only the posweight modifier"):
        parse_row("prosody+weighted")


def test_linear_head_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 88))
    labels = (rng.random((40, 7)) < 0.3).astype(np.float32)
    head = LinearProsodyHead.fit(features, labels, rng.uniform(1, 5, size=(40, 2)), pos_weight=[2.0] * 7)
    loaded = LinearProsodyHead.load(head.save(tmp_path, origin="test"))
    for a, b in zip(head.predict(features), loaded.predict(features)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_prosody_row_runs_on_the_folds_and_caches_its_features(tmp_path, monkeypatch):
    from kemd_emotion.data import prosody, write_sample_corpus
    from kemd_emotion.experiment import Experiment, parse_arguments

    corpus = tmp_path / "corpus"
    write_sample_corpus(corpus, size="tiny")
    argv = ["--data_dir", str(corpus), "--fusion", "prosody", "--num_folds", "2", "--disable_tqdm", "true"]
    experiment = Experiment(*parse_arguments([*argv, "--output_dir", str(tmp_path / "run")]))
    summary = experiment.run()
    assert (corpus / prosody.CACHE_FILENAME).exists()
    segment_ids = np.asarray(experiment.dataset["segment_id"])
    for fold, (_, test) in enumerate(experiment.folds):
        directory = tmp_path / "run" / "prosody" / f"fold{fold}"
        predictions = np.load(directory / "predictions.npz")
        assert predictions["segment_id"].tolist() == segment_ids[test].tolist()
        assert predictions["logits"].shape == (len(test), 7) and predictions["regression"].shape == (len(test), 2)
        metrics = json.loads((directory / "metrics.json").read_text())
        assert metrics["fusion"] == "prosody" and np.isfinite(metrics["ccc_arousal"])
    assert (tmp_path / "run" / "prosody" / "final" / "prosody_head.json").exists()
    assert summary["rows"]["prosody"]["title"] == "eGeMAPS functionals + linear head"

    # A second run measures nothing: every clip is in the corpus' cache.
    monkeypatch.setattr(prosody, "_smile", lambda: pytest.fail("the features should come from the cache"))
    again = Experiment(*parse_arguments([*argv, "--output_dir", str(tmp_path / "again")])).run()
    assert again["rows"]["prosody"]["metrics"]["ccc_arousal"]["values"] == \
        summary["rows"]["prosody"]["metrics"]["ccc_arousal"]["values"]
