"""Issue 23, "the label set is the data's": a manifest with its own (Korean) labels trains and evaluates end to end,
and everything downstream (config, metrics, summary, model card, pipeline, CLI) names the model's labels."""

import json

import numpy as np
import pandas as pd
import pytest
from transformers import pipeline

from kemd_emotion import EMOTIONS, KlueWav2Vec2EmotionConfig
from kemd_emotion.data import load_kemdy, multi_hot, write_sample_corpus
from kemd_emotion.data.manifest import write_manifest

KOREAN = {"happy": "기쁨", "sad": "슬픔", "angry": "분노", "disgust": "분노", "neutral": "중립", "fear": "중립",
          "surprise": "중립"}
LABELS = sorted(set(KOREAN.values()))  # load_manifest sorts the labels it finds: 기쁨, 분노, 슬픔, 중립


def _experiment(output_dir, *argv):
    from kemd_emotion.experiment import Experiment, parse_arguments

    return Experiment(*parse_arguments([
        "--output_dir", str(output_dir), "--use_cpu", "true", "--num_folds", "2", "--fold_by", "session",
        "--rows", "cat", "--num_train_epochs", "1", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "4", "--sample_vocab_size", "300", "--disable_tqdm", "true", *argv]))


@pytest.fixture(scope="module")
def korean_run(tmp_path_factory):
    """The sample corpus as a single-label manifest with 4 Korean labels (ratings kept), run through the experiment."""
    root = tmp_path_factory.mktemp("labels")
    release = write_sample_corpus(root / "KEMDy20_v1_1", "kemdy20", size="tiny", seed=3).root
    built = load_kemdy(release, cache_dir=root / "cache")
    frame = pd.read_csv(write_manifest(built, root / "corpus" / "plain.csv", absolute_paths=True), dtype=str,
                        keep_default_na=False)
    frame["emotion"] = [KOREAN[labels.split(";")[0]] for labels in frame["emotion"]]
    assert set(frame["emotion"]) == set(LABELS)  # the tiny sample has every one of the four
    path = root / "corpus" / "korean.csv"
    frame.to_csv(path, index=False)
    output_dir = root / "run"
    summary = _experiment(output_dir, "--manifest", str(path)).run()
    return output_dir, summary


def test_the_config_takes_a_label_set_of_any_size():
    config = KlueWav2Vec2EmotionConfig(id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
                                       decision_thresholds=[0.4] * 4, emotion_pos_weight=[1, 2, 3, 4])
    assert config.num_labels == 4 and config.id2label[0] == "기쁨"
    with pytest.raises(ValueError, match="decision_thresholds.*4"):
        KlueWav2Vec2EmotionConfig(id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
                                  decision_thresholds=[0.4] * 7)
    assert KlueWav2Vec2EmotionConfig().num_labels == len(EMOTIONS)
    assert multi_hot(["슬픔"], labels=LABELS).tolist() == [0, 0, 1, 0]
    with pytest.raises(ValueError, match="'happy', which is not one of"):
        multi_hot(["happy"], labels=LABELS)


def test_a_manifest_with_its_own_labels_trains_and_reports_them(korean_run):
    output_dir, summary = korean_run
    assert summary["complete"] and summary["labels"] == LABELS
    run_args = json.loads((output_dir / "run_args.json").read_text(encoding="utf-8"))
    assert run_args["labels"] == LABELS

    final = output_dir / "cat" / "final"
    config = json.loads((final / "config.json").read_text(encoding="utf-8"))
    assert [config["id2label"][str(i)] for i in range(4)] == LABELS
    assert json.loads((final / "final_info.json").read_text(encoding="utf-8"))["labels"] == LABELS

    for fold in ("fold0", "fold1"):
        metrics = json.loads((output_dir / "cat" / fold / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["labels"] == LABELS
        for label in LABELS:
            assert f"f1_{label}" in metrics and f"support_{label}" in metrics
        assert not any(f"f1_{emotion}" in metrics for emotion in EMOTIONS)
        assert metrics["majority_label"] in LABELS
        assert np.load(output_dir / "cat" / fold / "predictions.npz")["logits"].shape[1] == 4

    table = (output_dir / "summary.md").read_text(encoding="utf-8")
    per_emotion = table[table.index("F1 per emotion"):]
    assert all(label in per_emotion for label in LABELS)
    assert "angry" not in per_emotion
    assert summary["rows"]["cat"]["labels"] == LABELS


def test_the_model_card_names_the_runs_labels(korean_run):
    from kemd_emotion.experiment.model_card import build_model_card, load_run

    output_dir, _ = korean_run
    run = load_run(output_dir, "cat")
    assert run.labels == tuple(LABELS)
    card = str(build_model_card(run))
    assert "4 emotions (기쁨, 분노, 슬픔, 중립" in card and "seven KEMDy emotions" not in card


def test_the_saved_model_answers_with_its_labels(korean_run, tmp_path, capsys):
    from helpers.audio import speech_like
    import soundfile

    from kemd_emotion.cli import main

    output_dir, _ = korean_run
    final = output_dir / "cat" / "final"
    audio = tmp_path / "clip.wav"
    soundfile.write(audio, speech_like(np.random.default_rng(0), 1.0), 16000, subtype="FLOAT")

    pipe = pipeline("emotion-multimodal", model=str(final), device="cpu")
    answer = pipe({"text": "오늘 정말 기분이 좋아요", "audio": str(audio)})
    assert sorted(entry["label"] for entry in answer["emotions"]) == sorted(LABELS)
    assert answer["labels"] and set(answer["labels"]) <= set(LABELS)

    assert main(["predict", "--model", str(final), "--audio", str(audio), "--text", "오늘 정말 기분이 좋아요",
                 "--no-progress"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert sorted(item["label"] for item in entry["emotions"]) == sorted(LABELS)
    assert entry["labels"] == answer["labels"]


def test_what_a_manifest_with_its_own_labels_still_refuses(korean_run, tmp_path):
    """--emotion_pos_weight numbers count the manifest's labels; the eGeMAPS row predicts KEMDy's seven only."""
    from kemd_emotion.experiment.arguments import parse_positive_weight

    assert parse_positive_weight("1,2,3,4", LABELS) == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match=r"--emotion_pos_weight '1,2,3': expected 'auto'.*4 positive numbers.*"
                                         r"\(기쁨, 분노, 슬픔, 중립\)"):
        parse_positive_weight("1,2,3", LABELS)
    path = korean_run[0].parent / "corpus" / "korean.csv"
    with pytest.raises(ValueError, match=r"--emotion_pos_weight '1,2,3,4,5,6,7'.*4 positive numbers"):
        _experiment(tmp_path / "w", "--manifest", str(path), "--emotion_pos_weight", "1,2,3,4,5,6,7").prepare()
    with pytest.raises(ValueError, match=r"eGeMAPS linear head\) predict KEMDy's seven emotions.*\['기쁨', '분노'"):
        _experiment(tmp_path / "p", "--manifest", str(path), "--rows", "prosody").prepare()
