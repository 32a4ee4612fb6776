"""Same command, same numbers: two fresh processes give byte-identical vocabularies, tables and predictions; several
seeds are a dimension of the table (mean ± std over seed x fold runs, and the spread across seeds), resumable."""

import hashlib
import sys
from collections import Counter

import numpy as np
import pytest
from helpers.runs import SCRIPT, read_json, run, sample_dir, tiny_run_arguments  # noqa: F401 (sample_dir: a fixture)

from kemd_emotion.experiment import EXIT_AFTER_SAVE_ENV, format_table, write_json, write_summary


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_command_in_two_fresh_processes_gives_the_same_bytes(tmp_path, sample_dir):  # noqa: F811
    """The embedded default (its own WordPiece vocabulary, small random-init encoders) on the tiny sample corpus,
    whose transcripts have many words of equal frequency: where the tokenizers trainer's vocabulary changes from
    process to process."""
    from kemd_emotion.data import load_kemdy
    from kemd_emotion.wordpiece import split_words

    counts = Counter(split_words(load_kemdy(sample_dir, cache_dir=tmp_path / "cache")["text"]).values())
    assert counts.most_common(1)[0][1] >= 15  # >= 15 words share one frequency
    outputs = []
    for name in ("first", "second"):
        output_dir = tmp_path / name
        # cat+rare: positive weights from the training rows, thresholds tuned on a slice of them (random folds: the
        # tiny corpus' session folds leave one session to train on, too few to hold a slice out).
        result = run([sys.executable, str(SCRIPT), *tiny_run_arguments(sample_dir, output_dir, "--rows",
                                                                       "text,cat+rare", "--fold_by", "random")])
        assert result.returncode == 0, result.stderr[-5000:]
        outputs.append(output_dir)
    first, second = outputs
    for name in ("processor/tokenizer.json", "summary.json", "summary.md", "cat+rare/final/config.json",
                 *(f"{fusion}/fold{k}/predictions.npz" for fusion in ("text", "cat+rare") for k in (0, 1)),
                 *(f"cat+rare/fold{k}/validation_predictions.npz" for k in (0, 1))):
        assert digest(first / name) == digest(second / name), name
    assert read_json(first / "cat+rare" / "fold0" / "metrics.json")["emotion_pos_weight"] != [1.0] * 7
    for fusion in ("text", "cat+rare"):
        for k in (0, 1):
            a, b = (np.load(out / fusion / f"fold{k}" / "predictions.npz") for out in outputs)
            for key in ("segment_id", "logits", "regression", "labels", "regression_labels"):
                np.testing.assert_array_equal(a[key], b[key])
    environment = read_json(first / "run_args.json")["environment"]
    assert read_json(first / "run_args.json")["seeds"] == [42]
    assert environment["torch_threads"] == 1 and environment["OMP_NUM_THREADS"] == "1"
    assert environment["device"] == "cpu" and environment["full_determinism"] is False
    assert {"torch", "transformers", "tokenizers", "datasets", "accelerate", "numpy"} <= set(environment["versions"])


def test_several_seeds_resume_after_a_kill_and_report_both_spreads(tmp_path, sample_dir):  # noqa: F811
    output_dir = tmp_path / "run"
    arguments = tiny_run_arguments(sample_dir, output_dir, "--seeds", "1,2", "--save_strategy", "steps",
                                   "--save_steps", "1")
    killed = run([sys.executable, str(SCRIPT), *arguments], {EXIT_AFTER_SAVE_ENV: "cat/seed2/fold0:1"})
    assert killed.returncode == 75, killed.stderr[-5000:]
    assert [(output_dir / "cat" / f"seed1/fold{k}" / "metrics.json").exists() for k in (0, 1)] == [True, True]
    assert not (output_dir / "cat" / "seed2" / "fold0" / "metrics.json").exists()
    assert (output_dir / "cat" / "seed2" / "fold0" / "checkpoint-1").is_dir()

    refused = run([sys.executable, str(SCRIPT), *tiny_run_arguments(sample_dir, output_dir, "--seeds", "1,3")])
    assert refused.returncode != 0 and "seeds: [1, 2] -> [1, 3]" in refused.stderr

    resumed = run([sys.executable, str(SCRIPT), *arguments])
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    assert "cat seed 1 fold 0/2: already done, skipped" in resumed.stderr
    assert "cat seed 2 fold 0/2: resuming from checkpoint-1" in resumed.stderr
    summary = read_json(output_dir / "summary.json")
    row = summary["rows"]["cat"]
    assert summary["complete"] and summary["seeds"] == [1, 2]
    assert row["runs"] == [[1, 0], [1, 1], [2, 0], [2, 1]] and row["seeds"] == [1, 2]
    runs = [read_json(output_dir / "cat" / f"seed{s}" / f"fold{k}" / "metrics.json") for s, k in row["runs"]]
    ccc = row["metrics"]["ccc_avg"]
    assert ccc["values"] == [m["ccc_avg"] for m in runs] and [m["seed"] for m in runs] == [1, 1, 2, 2]
    assert ccc["mean"] == pytest.approx(np.mean(ccc["values"]))
    assert ccc["std"] == pytest.approx(np.std(ccc["values"], ddof=1))
    seed_means = [np.mean(ccc["values"][:2]), np.mean(ccc["values"][2:])]
    assert ccc["seed_means"] == pytest.approx(seed_means)
    assert ccc["seed_std"] == pytest.approx(np.std(seed_means, ddof=1))
    table = (output_dir / "summary.md").read_text()
    assert f"{100 * ccc['mean']:.2f} ± {100 * ccc['std']:.2f} [± {100 * ccc['seed_std']:.2f}]" in table
    assert "| Cat (concatenation) |" in table and " | 2 x 2 |" in table and "seeds (1, 2)" in table
    # Per-seed predictions are kept, and the seed matters.
    first, second = (np.load(output_dir / "cat" / f"seed{s}" / "fold0" / "predictions.npz") for s in (1, 2))
    np.testing.assert_array_equal(first["segment_id"], second["segment_id"])
    assert not np.array_equal(first["logits"], second["logits"])
    assert read_json(output_dir / "cat" / "final" / "final_info.json")["seed"] == 1
    card = (output_dir / "cat" / "final" / "README.md").read_text()
    assert "4 runs (2 seeds: 1, 2; 2 folds each)" in card


def test_table_with_seeds_by_hand(tmp_path):
    values = {(1, 0): 0.40, (1, 1): 0.50, (2, 0): 0.60, (2, 1): 0.70}
    for (seed, fold), value in values.items():
        write_json(tmp_path / "text" / f"seed{seed}" / f"fold{fold}" / "metrics.json", {
            "fold": fold, "seed": seed, "f1_micro": value, "f1_macro": value, "ccc_arousal": value,
            "ccc_valence": value, "ccc_avg": value, "majority_label": "neutral", "majority_f1_micro": 0.3,
            "majority_f1_macro": 0.05, "majority_f1_weighted": 0.1})
    write_json(tmp_path / "run_args.json", {"split": {"num_folds": 2, "fold_by": "session"}, "num_rows": 8,
                                            "seeds": [1, 2]})
    summary = write_summary(tmp_path, ["text"])
    stats = summary["rows"]["text"]["metrics"]["f1_micro"]
    assert stats["mean"] == pytest.approx(0.55) and stats["std"] == pytest.approx(np.std([.4, .5, .6, .7], ddof=1))
    assert stats["seed_means"] == pytest.approx([0.45, 0.65])
    assert stats["seed_std"] == pytest.approx(np.std([0.45, 0.65], ddof=1))  # 0.1414
    table = format_table(summary)
    assert "| Text only | 55.00 ± 12.91 [± 14.14] |" in table
    assert "mean ± std over all 2 seeds x 2 folds; [± s]: std across the seeds (1, 2) of the 2-fold mean" in table
    assert summary["complete"]
    write_summary(tmp_path, ["text"], seeds=[1])
    assert read_json(tmp_path / "summary.json")["rows"]["text"]["runs"] == [[1, 0], [1, 1]]
