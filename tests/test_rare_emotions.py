"""Rare emotions: the per-emotion positive weight of the emotion loss, the per-emotion decision thresholds (config,
loss, Trainer, pipeline and CLI labels), their tuning on held-out rows, and the validation slice."""

import json
import math

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.audio import speech_like
from helpers.runs import sample_dir, tiny_run_arguments  # noqa: F401 (sample_dir: a fixture)
from transformers import pipeline

from kemd_emotion import EMOTIONS, KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion
from kemd_emotion.data import check_folds, hold_out, kfold
from kemd_emotion.metrics import predict_emotions, tune_decision_thresholds
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_config
from kemd_emotion.trainer import EmotionTrainer, EmotionTrainingArguments, automatic_positive_weights

WEIGHTS = [1.0, 9.5, 8.0, 2.0, 1.0, 3.0, 7.5]
THRESHOLDS = [0.45, 0.2, 0.25, 0.5, 0.6, 0.35, 0.3]
LABELS = torch.tensor([[1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0, 1]], dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("value", ["balanced", "AUTO", [1.0] * 6, [0.0] + [1.0] * 6, [-1.0] * 7, [float("nan")] * 7,
                                   [float("inf")] * 7, [True] * 7, 2.0, ["1"] * 7])
def test_bad_positive_weight_is_refused_when_the_config_is_built(value):
    with pytest.raises(ValueError, match=r"emotion_pos_weight=.* expected 'auto' \(from the training rows\), None "
                                         r"\(no weighting\) or 7 positive numbers"):
        KlueWav2Vec2EmotionConfig(emotion_pos_weight=value)


@pytest.mark.parametrize("value", [[0.5] * 6, [0.5] * 8, [0.0] + [0.5] * 6, [1.0] + [0.5] * 6, [1.5] * 7, 0.5, "0.5",
                                   [float("nan")] * 7])
def test_bad_thresholds_are_refused_when_the_config_is_built(value):
    with pytest.raises(ValueError, match=r"decision_thresholds=.* expected None \(0.5 for every emotion\) or 7 numbers "
                                         r"strictly between 0 and 1"):
        KlueWav2Vec2EmotionConfig(decision_thresholds=value)


def test_values_are_normalised_and_checked_again_by_the_model():
    config = KlueWav2Vec2EmotionConfig(emotion_pos_weight=np.arange(1, 8), decision_thresholds=tuple(THRESHOLDS))
    assert config.emotion_pos_weight == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert config.decision_thresholds == THRESHOLDS and isinstance(config.decision_thresholds, list)
    assert KlueWav2Vec2EmotionConfig(emotion_pos_weight="auto").emotion_pos_weight == "auto"
    config = tiny_config()
    config.decision_thresholds = [2.0] * 7  # set after building: the model refuses it
    with pytest.raises(ValueError, match="decision_thresholds"):
        KlueWav2Vec2ForEmotion(config)


def test_options_round_trip_through_save_and_load(tmp_path):
    model = KlueWav2Vec2ForEmotion(tiny_config(emotion_pos_weight=WEIGHTS, decision_thresholds=THRESHOLDS))
    model.save_pretrained(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["emotion_pos_weight"] == WEIGHTS and saved["decision_thresholds"] == THRESHOLDS
    loaded = KlueWav2Vec2ForEmotion.from_pretrained(tmp_path / "model")
    assert loaded.config.emotion_pos_weight == WEIGHTS and loaded.config.decision_thresholds == THRESHOLDS
    plain = KlueWav2Vec2ForEmotion(tiny_config())
    plain.save_pretrained(tmp_path / "plain")
    reloaded = KlueWav2Vec2ForEmotion.from_pretrained(tmp_path / "plain").config
    assert reloaded.emotion_pos_weight is None and reloaded.decision_thresholds is None


# ---------------------------------------------------------------------------------------------------- the loss
def emotion_loss(weights, logits):
    model = KlueWav2Vec2ForEmotion(tiny_config(emotion_pos_weight=weights))
    return model.emotion_loss(logits, LABELS)


def test_without_weights_the_loss_is_the_multilabel_soft_margin_loss_exactly():
    logits = torch.randn(3, 7, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.equal(emotion_loss(None, logits), F.multilabel_soft_margin_loss(logits, LABELS))
    # All weights 1: the BCE form is the same loss.
    torch.testing.assert_close(emotion_loss([1.0] * 7, logits), F.multilabel_soft_margin_loss(logits, LABELS),
                               atol=1e-6, rtol=0)


def test_weighted_loss_against_a_hand_computed_value():
    logits = torch.tensor([[2.0, -1.0, 0.0, 1.5, -0.5, 0.3, -2.0],
                           [-1.0, 0.5, -3.0, 0.2, 2.5, -0.7, 0.0],
                           [0.1, 1.2, -0.4, -1.0, 0.0, 0.9, 3.0]])

    def log_sigmoid(x):
        return -math.log1p(math.exp(-x))

    total = 0.0
    for row in range(3):
        for emotion in range(7):
            x, y, w = float(logits[row, emotion]), float(LABELS[row, emotion]), WEIGHTS[emotion]
            total -= w * y * log_sigmoid(x) + (1 - y) * log_sigmoid(-x)
    expected = total / 21  # mean over the 7 emotions and the 3 rows
    assert emotion_loss(WEIGHTS, logits).item() == pytest.approx(expected, abs=1e-6)


def test_forward_uses_the_weighted_loss_and_auto_must_be_resolved_first(tiny_processor):
    batch = tiny_processor(text=DEFAULT_TEXTS[:3], audio=[speech_like(np.random.default_rng(i), 0.5) for i in range(3)])
    torch.manual_seed(0)
    model = KlueWav2Vec2ForEmotion(tiny_config(vocab_size=len(tiny_processor.tokenizer), emotion_pos_weight=WEIGHTS)).eval()
    out = model(**batch, labels=LABELS)
    expected = F.binary_cross_entropy_with_logits(out.logits, LABELS, pos_weight=torch.tensor(WEIGHTS))
    torch.testing.assert_close(out.emotion_loss, expected)
    model.config.emotion_pos_weight = "auto"
    with pytest.raises(ValueError, match="emotion_pos_weight='auto' has not been computed yet"):
        model(**batch, labels=LABELS)
    model(**batch)  # no labels, no loss: nothing to compute


def test_a_model_with_weights_trains(tiny_processor):
    """The loss falls over a few steps on a tiny fixed batch with weights and thresholds set."""
    rng = np.random.default_rng(3)
    batch = tiny_processor(text=DEFAULT_TEXTS[:3], audio=[speech_like(rng, 0.4 + 0.2 * i) for i in range(3)])
    torch.manual_seed(0)
    model = KlueWav2Vec2ForEmotion(tiny_config(vocab_size=len(tiny_processor.tokenizer), emotion_pos_weight=WEIGHTS,
                                               decision_thresholds=THRESHOLDS, classifier_dropout=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    regression = torch.tensor([[3.0, 2.0], [2.5, 3.5], [4.0, 1.5]])
    losses = []
    for _ in range(8):
        loss = model(**batch, labels=LABELS, regression_labels=regression).emotion_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


# ---------------------------------------------------------------------------------------------------- "auto"
def test_automatic_weights_by_hand():
    labels = np.zeros((20, 7), dtype=bool)
    labels[:10, 4] = True  # neutral: 10 of 20 -> 1
    labels[:2, 1] = True  # disgust: 18 / 2 = 9
    labels[:1, 2] = True  # fear: 19 / 1 -> clipped to 10
    labels[:15, 3] = True  # happy: 5 / 15 -> clipped to 1
    labels[:4, 0] = True  # angry: 16 / 4 = 4
    # sad: never -> 10; surprise: 4 of 20 -> 4
    labels[10:14, 6] = True
    assert automatic_positive_weights(labels) == [4.0, 9.0, 10.0, 1.0, 1.0, 10.0, 4.0]
    with pytest.raises(ValueError, match="non-empty"):
        automatic_positive_weights(np.zeros((0, 7)))


def test_trainer_computes_auto_weights_from_its_training_rows(tmp_path):
    names = [["neutral"], ["neutral"], ["neutral", "happy"], ["fear"], ["happy"], ["neutral"], ["angry"], ["sad"]]
    rows = datasets.Dataset.from_dict({"emotion": names, "duration": [1.0] * len(names)})
    model = KlueWav2Vec2ForEmotion(tiny_config(emotion_pos_weight="auto"))
    args = EmotionTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    EmotionTrainer(model=model, args=args, train_dataset=rows)
    # per emotion: (8 - positives) / positives, clipped to [1, 10]
    assert model.config.emotion_pos_weight == [7.0, 10.0, 7.0, 3.0, 1.0, 7.0, 10.0]
    no_column = datasets.Dataset.from_dict({"duration": [1.0]})
    with pytest.raises(ValueError, match="emotion_pos_weight='auto' is computed from the training rows"):
        EmotionTrainer(model=KlueWav2Vec2ForEmotion(tiny_config(emotion_pos_weight="auto")), args=args,
                       train_dataset=no_column)


# ---------------------------------------------------------------------------------------------------- thresholds
def test_tuned_thresholds_by_hand():
    # emotion 0: scores of the positives 0.9, 0.6; of the negatives 0.55, 0.1 -> F1 1 for thresholds in [0.55, 0.6):
    #   the grid's 0.55 (0.55 itself is not above 0.55, so 0.55 separates them).
    # emotion 1: no positive -> F1 0 everywhere -> 0.5. emotion 2: every row positive -> F1 1 below the lowest score
    #   (0.3): 0.05 .. 0.25 tie -> the one nearest 0.5: 0.25.
    probabilities = np.array([[0.9, 0.7, 0.3], [0.6, 0.2, 0.8], [0.55, 0.1, 0.4], [0.1, 0.05, 0.9]])
    labels = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1]])
    logits = np.log(probabilities) - np.log1p(-probabilities)
    assert tune_decision_thresholds(logits, labels).tolist() == [0.55, 0.5, 0.25]
    with pytest.raises(ValueError, match="same non-empty"):
        tune_decision_thresholds(logits, labels[:2])


def test_predictions_at_tuned_thresholds_beat_0_5_on_a_shifted_rare_class():
    """A rare class whose scores sit below 0.5 is never predicted at 0.5; its tuned threshold finds it."""
    rng = np.random.default_rng(0)
    labels = np.zeros((400, 2), dtype=int)
    labels[:, 0] = 1
    labels[:40, 1] = 1
    logits = np.stack([rng.normal(2, 1, 400), np.where(labels[:, 1] == 1, -0.5, -2.5) + rng.normal(0, 0.5, 400)], 1)
    thresholds = tune_decision_thresholds(logits[:200], labels[:200])
    assert predict_emotions(logits[200:], 0.5)[:, 1].sum() == 0
    assert predict_emotions(logits[200:], thresholds)[:, 1].sum() > 0


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(5)
    return [speech_like(rng, seconds) for seconds in (0.5, 0.9, 1.3)]


def test_pipeline_labels_follow_the_config_thresholds(tiny_processor, clips, tmp_path):
    """`labels` = predict_emotions of the model's logits at the config's thresholds; `threshold=` overrides them;
    the saved checkpoint (and the CLI, which runs the same pipeline) gives the same labels."""
    torch.manual_seed(2)
    model = KlueWav2Vec2ForEmotion(tiny_config(vocab_size=len(tiny_processor.tokenizer))).eval()
    batch = tiny_processor(text=DEFAULT_TEXTS[:3], audio=clips)
    with torch.no_grad():
        logits = model(**batch).logits.numpy()
    probabilities = 1 / (1 + np.exp(-logits))
    # Thresholds just above every score of the first clip (it takes the fallback: the emotion nearest its threshold
    # in logit terms) and just below the median of the others (they have emotions above). No score within 1e-4 of a
    # threshold, so that float noise between the batch here and the pipeline's (~1e-7) decides nothing.
    thresholds = np.maximum(probabilities[0] + 1e-4, np.median(probabilities, axis=0) - 1e-4)
    assert np.abs(probabilities - thresholds).min() > 5e-5
    assert not (probabilities[0] > thresholds).any() and (probabilities[1:] > thresholds).any()
    model.config.decision_thresholds = [float(t) for t in thresholds]
    items = [{"text": text, "audio": clip} for text, clip in zip(DEFAULT_TEXTS[:3], clips)]
    classifier = pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")
    expected = predict_emotions(logits, thresholds)
    for row, output in enumerate(classifier(items)):
        assert sorted(output["labels"]) == sorted(np.asarray(EMOTIONS)[expected[row]].tolist())
    at_half = predict_emotions(logits, 0.5)
    for row, output in enumerate(classifier(items, threshold=0.5)):
        assert sorted(output["labels"]) == sorted(np.asarray(EMOTIONS)[at_half[row]].tolist())
    model.save_pretrained(tmp_path / "model")
    tiny_processor.save_pretrained(tmp_path / "model")
    reloaded = pipeline("emotion-multimodal", model=str(tmp_path / "model"), device="cpu")
    assert [output["labels"] for output in reloaded(items)] == [output["labels"] for output in classifier(items)]


def test_fallback_takes_the_emotion_nearest_its_threshold_not_the_best_score():
    # probabilities 0.4 (threshold 0.9) and 0.3 (threshold 0.35): none above; the second is nearer its threshold.
    logits = np.log(np.array([[0.4, 0.3]]) / (1 - np.array([[0.4, 0.3]])))
    assert predict_emotions(logits, [0.9, 0.35]).tolist() == [[False, True]]
    assert predict_emotions(logits, 0.5).tolist() == [[True, False]]  # one threshold: the arg-max


# ---------------------------------------------------------------------------------------------------- the slice
def corpus_columns():
    """12 sessions of 2 speakers, 2 clips each; clip c of session s has rows with segment_id f"s{s}c{c}" (twice for
    c=0: KEMDy19's speaker and listener rows)."""
    columns = {"segment_id": [], "session": [], "speaker": []}
    for session in range(12):
        for clip in range(2):
            for _ in range(2 if clip == 0 else 1):
                columns["segment_id"].append(f"s{session}c{clip}")
                columns["session"].append(f"Sess{session:02d}")
                columns["speaker"].append(f"Sess{session:02d}_{'MF'[clip]}")
    return columns


@pytest.mark.parametrize("by", ["session", "contiguous", "random"])
def test_validation_slice_holds_only_training_rows_grouped_like_the_folds(by):
    columns = corpus_columns()
    for train, test in kfold(columns, k=4, by=by):
        kept, held = hold_out(columns, train, fraction=0.15, by=by)
        assert set(kept) | set(held) == set(train) and not set(kept) & set(held)
        assert not set(held) & set(test)
        assert 0 < len(held) <= 0.3 * len(train)
        # grouped like the folds: no clip (and by session no session or speaker) on both sides
        local = {name: [values[i] for i in train] for name, values in columns.items()}
        position = {row: i for i, row in enumerate(train)}
        check_folds(local, [([position[r] for r in kept], [position[r] for r in held]),
                            ([position[r] for r in held], [position[r] for r in kept])], by)


def test_validation_slice_errors():
    with pytest.raises(ValueError, match=r"fraction=0.7: expected a share of the rows in \(0, 0.5\]"):
        hold_out(10, range(10), fraction=0.7, by="contiguous")
    one_session = {"session": ["S1"] * 4}
    with pytest.raises(ValueError, match="at least two groups are needed"):
        hold_out(one_session, range(4), by="session")


# ---------------------------------------------------------------------------------------------------- the experiment
def test_rows_tune_thresholds_on_training_rows_only_and_record_what_they_used(tmp_path, sample_dir):  # noqa: F811
    """`--rows cat+rare`: per fold, the thresholds are the best-F1 ones on the validation predictions, whose rows
    are training rows of that fold (never its test rows); the positive weights are those of the rows it trained on;
    the tuned F-scores are those of the test predictions at the thresholds; the final model's config carries both."""
    from kemd_emotion.data import multi_hot
    from kemd_emotion.experiment import Experiment, parse_arguments
    from kemd_emotion.metrics import tuned_emotion_scores

    output_dir = tmp_path / "run"
    experiment = Experiment(*parse_arguments(tiny_run_arguments(sample_dir, output_dir, "--rows", "cat,cat+rare",
                                                                "--fold_by", "random")))
    summary = experiment.run()
    segment_ids = np.asarray(experiment.dataset["segment_id"])
    for fold, (train, test) in enumerate(experiment.folds):
        directory = output_dir / "cat+rare" / f"fold{fold}"
        metrics = json.loads((directory / "metrics.json").read_text())
        held = np.load(directory / "validation_predictions.npz")
        tested = np.load(directory / "predictions.npz")
        assert set(held["segment_id"]) <= set(segment_ids[train]) and not set(held["segment_id"]) & set(segment_ids[test])
        assert metrics["num_validation"] == len(held["segment_id"]) > 0
        assert metrics["num_train"] == len(train) - len(held["segment_id"])
        thresholds = tune_decision_thresholds(held["logits"], held["labels"])
        assert metrics["decision_thresholds"] == thresholds.tolist() == held["decision_thresholds"].tolist()
        for name, value in tuned_emotion_scores(tested["logits"], tested["labels"], thresholds).items():
            assert metrics[name] == pytest.approx(value, abs=1e-12), name
        fit = [i for i in train if segment_ids[i] not in set(held["segment_id"])]
        fit_labels = np.stack([multi_hot(experiment.dataset[int(i)]["emotion"]) for i in fit])
        assert metrics["emotion_pos_weight"] == automatic_positive_weights(fit_labels)
        assert json.loads((output_dir / "cat" / f"fold{fold}" / "metrics.json").read_text())["decision_thresholds"] is None
    final = json.loads((output_dir / "cat+rare" / "final" / "config.json").read_text())
    assert final["decision_thresholds"] == metrics["decision_thresholds"]  # the last fold's model
    assert final["emotion_pos_weight"] == metrics["emotion_pos_weight"]
    assert json.loads((output_dir / "cat" / "final" / "config.json").read_text())["decision_thresholds"] is None
    assert summary["rows"]["cat+rare"]["tuned"] and not summary["rows"]["cat"]["tuned"]
    paired = summary["paired_differences"]
    assert paired["reference"] == "cat"
    by_fold = [json.loads((output_dir / row / f"fold{k}" / "metrics.json").read_text()) for k in (0, 1)
               for row in ("cat+rare", "cat")]
    expected = [by_fold[0]["f1_macro_tuned"] - by_fold[1]["f1_macro"], by_fold[2]["f1_macro_tuned"] - by_fold[3]["f1_macro"]]
    assert paired["rows"]["cat+rare"]["f1_macro"]["values"] == pytest.approx(expected)
    table = (output_dir / "summary.md").read_text()
    assert "F1 macro @tuned" in table and "| Cat (concatenation) + rare-emotion settings |" in table
    card = (output_dir / "cat+rare" / "final" / "README.md").read_text()
    assert "F1 macro, tuned thresholds" in card and "above its own threshold (`config.decision_thresholds`" in card


def test_experiment_options_fail_clearly(tmp_path, sample_dir):  # noqa: F811
    from kemd_emotion.experiment import Experiment, parse_arguments

    def build(*argv):
        return Experiment(*parse_arguments(tiny_run_arguments(sample_dir, tmp_path / "run", *argv)))

    with pytest.raises(ValueError, match=r"--rows 'cat\+late': row 'cat\+late': expected a fusion .* optionally "
                                         r"followed by modifiers joined with '\+' \(rare, posweight, thresholds, conv"):
        build("--rows", "cat+late")
    with pytest.raises(ValueError, match="a text-only row has no speech features"):
        build("--rows", "text+hidden")
    with pytest.raises(ValueError, match=r"--emotion_pos_weight 'balanced': expected 'auto' .* 7 positive numbers"):
        build("--emotion_pos_weight", "balanced")
    with pytest.raises(ValueError, match=r"--validation_fraction 0.9: expected a share .* in \(0, 0.5\]"):
        build("--validation_fraction", "0.9")
    # Session folds of the tiny corpus leave one session to train on: no slice can be held out. Refused before any
    # training.
    experiment = build("--rows", "cat+rare", "--fold_by", "session")
    with pytest.raises(ValueError, match=r"row 'cat\+rare' tunes decision thresholds .* at least two groups are "
                                         r"needed\. Use fewer --num_folds, another --fold_by"):
        experiment.run()
    assert not (tmp_path / "run" / "cat+rare").exists()
