"""Manifest corpora: the sample corpus read through its manifest gives the builder's rows; every kind of bad row is
skipped with a count and its line number; mapped columns, Korean and ';'-joined labels, segments, frames."""

import csv
import json
import logging
import os

import datasets
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from kemd_emotion.data import load_kemdy, write_sample_corpus
from kemd_emotion.data.collator import read_clip
from kemd_emotion.data.kemdy import FEATURES
from kemd_emotion.data.manifest import SKIP_REASONS, load_manifest, manifest_features, write_manifest


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    return root, {
        "kemdy20": write_sample_corpus(root / "KEMDy20_v1_1", "kemdy20", size="tiny", seed=3),
        "kemdy19": write_sample_corpus(root / "KEMDy19", "kemdy19", size="tiny", seed=4),
    }


@pytest.mark.parametrize("name, annotations, suffix", [("kemdy20", "speaker", ".csv"), ("kemdy19", "all", ".csv"),
                                                       ("kemdy19", "speaker", ".jsonl")])
def test_the_sample_corpus_through_its_manifest_gives_the_builders_rows(corpora, tmp_path, name, annotations, suffix):
    root, manifests = corpora
    release = manifests[name].root
    built = load_kemdy(release, name=name, annotations=annotations, cache_dir=tmp_path / "cache")
    path = write_manifest(built, os.path.join(release, f"manifest_{annotations}{suffix}"))
    if suffix == ".csv":  # audio paths are written relative to the manifest's folder
        with open(path, newline="", encoding="utf-8") as handle:
            assert all(not os.path.isabs(row["audio"]) for row in csv.DictReader(handle))

    loaded, labels, report = load_manifest(path, return_report=True)

    assert loaded.features == built.features == FEATURES
    assert labels == sorted({e for es in built["emotion"] for e in es})
    assert report.num_rows == len(built) and not report.skipped
    assert loaded.to_list() == built.to_list()  # ids, texts, paths, emotions, ratings, speakers, sessions, roles
    for a, b in zip(loaded["audio"], built["audio"]):
        np.testing.assert_array_equal(read_clip(a), read_clip(b))
    if annotations == "all":  # a clip's speaker and listener rows share an id and are both kept
        assert len(set(loaded["segment_id"])) < len(loaded)


def _wav(path, seconds=0.5, rate=16_000):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "audio").mkdir()
    for name in ("a", "b", "c", "d", "long"):
        _wav(tmp_path / "audio" / f"{name}.wav", seconds=2.0 if name == "long" else 0.5)
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF not really a wav")
    return tmp_path


def _write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_one_bad_row_per_reason_is_counted_and_logged_with_its_line(folder, caplog):
    header = ["audio", "start", "end", "text", "emotion", "arousal", "valence", "speaker", "id"]
    rows = [
        ["audio/a.wav", "", "", "좋아요", "happy", "4", "4.5", "s1", "u1"],          # line 2: good
        ["audio/gone.wav", "", "", "좋아요", "happy", "4", "4", "s1", "u2"],          # 3: missing_file
        ["audio/b.wav", "", "", "좋아요", "bored", "3", "3", "s1", "u3"],             # 4: unknown_label
        ["audio/b.wav", "", "", "  ", "sad", "3", "3", "s1", "u4"],                   # 5: empty_text
        ["audio/b.wav", "", "", "싫어요", "sad", "7", "3", "s1", "u5"],               # 6: bad_rating
        ["audio/long.wav", "1.5", "0.5", "음", "neutral", "3", "3", "s2", "u6"],      # 7: bad_start_end
        ["audio/broken.wav", "", "", "음", "neutral", "3", "3", "s2", "u7"],          # 8: unreadable_audio
        ["audio/c.wav", "", "", "음", "neutral", "3", "3", "s2", "u1"],               # 9: duplicate
        ["audio/c.wav", "", "", "음", "neutral", "3", "3", "s2", "u8", "extra"],      # 10: malformed_row
        ["audio/long.wav", "0.5", "1.25", "그래요", "neutral;sad", "2", "2.5", "s2", "u9"],  # 11: good
        ["audio/d.wav", "", "", "네", "angry", "nan", "3", "s3", "u10"],              # 12: bad_rating (NaN)
        ["audio/long.wav", "1.0", "9", "음", "sad", "3", "3", "s2", "u11"],           # 13: bad_start_end (past end)
    ]
    path = _write_csv(folder / "corpus.csv", header, rows)
    with caplog.at_level(logging.WARNING, logger="kemd_emotion.data.manifest"):
        dataset, labels, report = load_manifest(path, labels=["angry", "happy", "neutral", "sad"], return_report=True)

    assert report.skipped == {"missing_file": [3], "unknown_label": [4], "empty_text": [5], "bad_rating": [6, 12],
                              "bad_start_end": [7, 13], "unreadable_audio": [8], "duplicate": [9],
                              "malformed_row": [10]}
    assert set(report.skipped) <= set(SKIP_REASONS)
    assert dataset["segment_id"] == ["u1", "u9"] and labels == ["angry", "happy", "neutral", "sad"]
    logged = caplog.text
    for line, reason in [(3, "missing_file"), (4, "unknown_label"), (5, "empty_text"), (6, "bad_rating"),
                         (7, "bad_start_end"), (8, "unreadable_audio"), (9, "duplicate"), (10, "malformed_row"),
                         (12, "bad_rating"), (13, "bad_start_end")]:
        assert f"corpus.csv line {line}: skipped ({reason})" in logged
    assert "gone.wav" in report.messages[3] and "bored" in report.messages[4]

    # The segment: its duration, its columns, and the collator's reader takes that part of the file only.
    assert dataset.features == manifest_features(ratings=True, segmented=True)
    second = dataset[1]
    assert (second["start"], second["end"], second["duration"]) == (0.5, 1.25, 0.75)
    assert second["emotion"] == ["neutral", "sad"]
    assert read_clip(second["audio"], start=second["start"], end=second["end"]).shape == (12_000,)
    assert dataset[0]["start"] == 0.0 and dataset[0]["end"] == pytest.approx(0.5)
    assert dataset[0]["audio"] == str(folder / "audio" / "a.wav")


def test_the_collator_batches_a_segment_as_that_part_of_its_file(folder, tiny_processor):
    from kemd_emotion.data import KemdyCollator

    path = _write_csv(folder / "segments.csv", ["audio", "start", "end", "text", "emotion", "arousal", "valence"],
                      [["audio/long.wav", "0.25", "1", "네", "happy", "3", "3"],
                       ["audio/long.wav", "1", "", "아니요", "sad;angry", "2", "2"],
                       ["audio/a.wav", "", "", "음", "neutral", "3", "3"]])
    dataset, _ = load_manifest(path)
    assert dataset["segment_id"] == ["audio/long.wav@0.25-1", "audio/long.wav@1-2", "audio/a.wav@0-0.5"]
    batch = KemdyCollator(tiny_processor, max_audio_seconds=5)(dataset.to_list())
    assert batch["audio_attention_mask"].sum(dim=1).tolist() == [12_000, 16_000, 8_000]
    assert batch["labels"].tolist()[1] == [1.0, 0, 0, 0, 0, 1.0, 0]
    assert batch["regression_labels"].tolist()[1] == [2.0, 2.0]


def test_mapped_columns_korean_labels_and_joined_labels(folder):
    header = ["파일", "발화문", "감정", "각성", "긍정", "화자", "세션"]
    rows = [
        ["audio/a.wav", "정말 기뻐요", "기쁨", "5", "7", "F01", "세션1"],
        ["audio/b.wav", "너무 슬퍼요", "슬픔;분노", "2", "1", "M01", "세션1"],
        ["audio/c.wav", "그냥 그래요", "중립", "4", "4", "F02", "세션2"],
        [str(folder / "audio" / "d.wav"), "화가 나요", " 분노 ; 분노 ", "7", "1", "M02", "세션2"],  # absolute path
    ]
    path = _write_csv(folder / "말뭉치.tsv", header, rows, delimiter="\t")
    columns = {"audio": "파일", "text": "발화문", "emotion": "감정", "arousal": "각성", "valence": "긍정",
               "speaker": "화자", "session": "세션"}
    dataset, labels = load_manifest(path, columns=columns, rating_scale=(1, 7))

    assert labels == sorted(["기쁨", "슬픔", "분노", "중립"])
    assert dataset["emotion"] == [["기쁨"], ["슬픔", "분노"], ["중립"], ["분노"]]
    assert dataset["text"] == dataset["transcript"] == ["정말 기뻐요", "너무 슬퍼요", "그냥 그래요", "화가 나요"]
    assert dataset["arousal"] == pytest.approx([1 + 4 * 4 / 6, 1 + 4 / 6, 3.0, 5.0])  # 1-7 -> KEMDy's 1-5
    assert dataset["valence"] == pytest.approx([5.0, 1.0, 3.0, 1.0])
    assert dataset["session"] == ["세션1", "세션1", "세션2", "세션2"] and dataset["speaker"][1] == "M01"
    assert dataset["segment_id"][0] == "audio/a.wav" and dataset.features == FEATURES

    windows = folder / "말뭉치_cp949.tsv"  # saved by a Korean Windows spreadsheet: cp949, not UTF-8
    windows.write_bytes(path.read_text(encoding="utf-8").encode("cp949"))
    assert load_manifest(windows, columns=columns, rating_scale=(1, 7))[0]["emotion"] == dataset["emotion"]

    fixed, fixed_labels = load_manifest(path, columns=columns, rating_scale=(1, 7), labels=["중립", "기쁨", "슬픔", "분노"])
    assert fixed_labels == ["중립", "기쁨", "슬픔", "분노"] and len(fixed) == 4

    with pytest.raises(ValueError, match=r"columns= maps 'text' to 'utterance'.*its columns are"):
        load_manifest(path, columns={**columns, "text": "utterance"})
    with pytest.raises(ValueError, match=r"no 'emotion' column"):
        load_manifest(path, columns={"audio": "파일"})
    with pytest.raises(ValueError, match=r"not manifest columns"):
        load_manifest(path, columns={"label": "감정"})


def test_frames_lists_speech_only_and_defaults(folder):
    frame = pd.DataFrame({
        "audio": ["audio/a.wav", "audio/b.wav", "audio/c.wav"],
        "emotion": [["happy"], ["sad", "angry"], "neutral"],
        "group": ["dialogue1", "dialogue1", "dialogue2"],
        "arousal": [3.0, np.nan, 2.0],
        "valence": [3.0, 2.0, 2.0],
    })
    dataset, labels, report = load_manifest(frame, base_dir=folder, return_report=True)
    assert report.skipped == {"bad_rating": [2]}  # the NaN arousal of the frame's second row
    assert labels == ["happy", "neutral"]
    assert dataset["text"] == ["", ""] and dataset["session"] == ["dialogue1", "dialogue2"]
    assert dataset["speaker"] == dataset["session"]  # no speaker column: each group is its own speaker

    as_dataset = datasets.Dataset.from_pandas(frame.drop(columns=["arousal", "valence"]).assign(
        emotion=[["happy"], ["sad", "angry"], ["neutral"]]))
    plain, _ = load_manifest(as_dataset, base_dir=folder)
    assert "arousal" not in plain.column_names and len(plain) == 3
    assert plain["session"] == ["dialogue1", "dialogue1", "dialogue2"]

    with pytest.raises(ValueError, match="both a 'session' column"):
        load_manifest(frame.assign(session="s"), base_dir=folder)
    with pytest.raises(ValueError, match="give both ratings or neither"):
        load_manifest(frame.drop(columns=["valence"]), base_dir=folder)
    with pytest.raises(ValueError, match="No usable row"):
        load_manifest(frame.assign(audio="audio/none.wav"), base_dir=folder)


def test_json_lines_with_a_bad_line(folder):
    lines = [json.dumps({"audio": "audio/a.wav", "text": "네", "emotion": ["happy", "neutral"]}, ensure_ascii=False),
             "{not json",
             "",
             json.dumps({"audio": "audio/b.wav", "text": "아니요", "emotion": "sad"}, ensure_ascii=False)]
    path = folder / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset, labels, report = load_manifest(path, return_report=True)
    assert report.skipped == {"malformed_row": [2]}
    assert dataset["emotion"] == [["happy", "neutral"], ["sad"]] and labels == ["happy", "neutral", "sad"]


# ------------------------------------------------------------------------------------------------ the experiment
def _experiment(output_dir, *argv):
    from kemd_emotion.experiment import Experiment, parse_arguments

    return Experiment(*parse_arguments([
        "--output_dir", str(output_dir), "--use_cpu", "true", "--num_folds", "2", "--fold_by", "session",
        "--rows", "cat", "--num_train_epochs", "1", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "4", "--sample_vocab_size", "300", "--disable_tqdm", "true", *argv]))


def test_the_experiment_runs_on_a_manifest_with_the_releases_folds(corpora, tmp_path):
    """--manifest (with its own Korean column names) gives the rows, session folds and split of --data_dir, and
    runs end to end."""
    root, manifests = corpora
    release = manifests["kemdy20"].root
    built = load_kemdy(release, cache_dir=tmp_path / "cache")
    frame = pd.read_csv(write_manifest(built, tmp_path / "corpus" / "plain.csv", absolute_paths=True), dtype=str,
                        keep_default_na=False)
    renamed = {"audio": "음성", "text": "발화문", "emotion": "감정", "session": "세션"}
    path = tmp_path / "corpus" / "my_corpus.csv"
    frame.rename(columns=renamed).to_csv(path, index=False)
    columns = ",".join(f"{ours}={theirs}" for ours, theirs in renamed.items())

    from_release = _experiment(tmp_path / "release_run", "--data_dir", release, "--cache_dir", str(tmp_path / "c2"))
    from_release.prepare()
    from_manifest = _experiment(tmp_path / "manifest_run", "--manifest", str(path), "--manifest_columns", columns)
    from_manifest.prepare()
    assert from_manifest.dataset.to_list() == from_release.dataset.to_list()
    assert from_manifest.split_sha256 == from_release.split_sha256
    assert [test.tolist() for _, test in from_manifest.folds] == [test.tolist() for _, test in from_release.folds]

    summary = from_manifest.run()
    assert summary["complete"] and list(summary["rows"]) == ["cat"] and summary["dataset"] == str(path)
    run_args = json.loads((tmp_path / "manifest_run" / "run_args.json").read_text())
    assert run_args["split"]["manifest"] == str(path) and run_args["fingerprint"]["manifest"] == str(path)
    assert (tmp_path / "manifest_run" / "cat" / "fold1" / "metrics.json").exists()
    assert (tmp_path / "manifest_run" / "summary.md").exists()


def test_the_experiment_refuses_what_a_manifest_cannot_give_yet(folder, tmp_path):
    header = ["audio", "text", "emotion", "arousal", "valence", "speaker"]
    rows = [[f"audio/{name}.wav", "네", label, "3", "3", f"s{i}"] for i, (name, label) in
            enumerate([("a", "기쁨"), ("b", "슬픔"), ("c", "happy"), ("d", "sad")])]
    korean = _write_csv(folder / "korean.csv", header, rows)  # its own label set: accepted (tests/test_manifest_labels.py)
    unrated = _write_csv(folder / "unrated.csv", ["audio", "text", "emotion", "speaker"],
                         [[r[0], r[1], "happy", r[5]] for r in rows])
    with pytest.raises(ValueError, match="no arousal and valence columns"):
        _experiment(tmp_path / "u", "--manifest", str(unrated)).prepare()
    speech_only = _write_csv(folder / "speech.csv", ["audio", "emotion", "arousal", "valence", "speaker"],
                             [[r[0], "happy", "3", "3", r[5]] for r in rows])
    with pytest.raises(ValueError, match=r"no text \(a speech-only corpus\), and rows \['cat'\]"):
        _experiment(tmp_path / "s", "--manifest", str(speech_only)).prepare()
    summary = _experiment(tmp_path / "speech", "--manifest", str(speech_only), "--rows", "speech").run()
    assert summary["complete"] and list(summary["rows"]) == ["speech"]  # a speech-only corpus trains the speech row
    with pytest.raises(ValueError, match="give --manifest or --data_dir, not both"):
        _experiment(tmp_path / "b", "--manifest", str(korean), "--data_dir", str(folder)).prepare()
    with pytest.raises(ValueError, match="is not manifest_column=its_name"):
        _experiment(tmp_path / "c", "--manifest", str(korean), "--manifest_columns", "text").prepare()
