"""The KEMDy builder on the sample corpora: rows, labels, text and skips against what the writer wrote; caching;
clear errors for folders that are not releases; robustness to broken rows."""

import csv
import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path

import datasets
import pytest
import soundfile as sf

from kemd_emotion import EMOTIONS
from kemd_emotion.data import SKIP_REASONS, KemdyBuilder, SampleManifest, load_kemdy, write_sample_corpus
from kemd_emotion.data import kemdy as kemdy_module

COLUMNS = {"segment_id", "session", "speaker", "gender", "text", "transcript", "audio", "emotion", "arousal",
           "valence", "duration"}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("kemdy")
    return {
        "kemdy20": write_sample_corpus(root / "KEMDy20_v1_1", "kemdy20", size="tiny", seed=3),
        "kemdy19": write_sample_corpus(root / "KEMDy19", "kemdy19", size="tiny", seed=4),
    }


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.mark.parametrize("name, annotations", [("kemdy20", "speaker"), ("kemdy19", "speaker"), ("kemdy19", "all")])
def test_rows_labels_text_and_skips_match_what_was_written(corpora, cache, name, annotations):
    manifest: SampleManifest = corpora[name]
    dataset, report = load_kemdy(manifest.root, name=name, annotations=annotations, cache_dir=cache,
                                 return_report=True)
    expected = manifest.expected_rows(annotations)

    assert COLUMNS <= set(dataset.column_names)
    assert len(dataset) == len(expected) == report.num_rows
    for row, want in zip(dataset, expected):
        assert row["segment_id"] == want["segment_id"]
        for column in ("session", "speaker", "gender", "role", "text", "transcript", "emotion"):
            assert row[column] == want[column], (want["segment_id"], column)
        assert row["audio"] == os.path.join(manifest.root, want["audio"])
        assert row["arousal"] == pytest.approx(want["arousal"], abs=1e-5)
        assert row["valence"] == pytest.approx(want["valence"], abs=1e-5)
        assert row["duration"] == pytest.approx(want["duration"], abs=1e-6)

    assert report.skipped == manifest.expected_skips(annotations)
    assert set(report.skipped) <= set(SKIP_REASONS)
    assert report.corrected_ids == manifest.corrected_ids
    assert report.text_fallback == manifest.text_fallback
    assert report.listener_rows_dropped == manifest.expected_listener_rows_dropped(annotations)
    assert not report.from_cache


def test_every_quirk_is_exercised(corpora, cache):
    """The expectations above would be weak if the writer had not written the quirks: check they are there."""
    for name, manifest in corpora.items():
        dataset = load_kemdy(manifest.root, cache_dir=cache, annotations="all")
        skips = manifest.expected_skips("all")
        assert {"missing_wav", "unreadable_wav", "bad_id", "unknown_emotion"} <= set(skips), name
        assert any(len(e) > 1 for e in dataset["emotion"]), f"{name}: no tie"
        assert "disgust" in {e for es in dataset["emotion"] for e in es}
        assert {e for es in dataset["emotion"] for e in es} <= set(EMOTIONS)
        assert any(t != x for t, x in zip(dataset["transcript"], dataset["text"])), "no transcript markers"
        assert manifest.text_fallback
        formats = {(sf.info(p).samplerate, sf.info(p).channels) for p in dataset["audio"]}
        assert {(44_100, 1), (8_000, 1), (16_000, 2), (44_100, 2), (16_000, 1)} <= formats
        annotation = Path(manifest.root, "annotation")
        header_cells = set()
        for csv_path in annotation.iterdir():
            with open(csv_path, newline="", encoding="utf-8") as handle:
                group, sub = list(csv.reader(handle))[:2]
            header_cells.add(sub[group.index("Segment ID")])
        assert header_cells == {"", " ", "Segment ID"}
        spelled = "".join(p.read_text(encoding="utf-8") for p in annotation.iterdir())
        assert ("disqust" in spelled) == (name == "kemdy20")
    assert corpora["kemdy20"].corrected_ids
    assert {"missing_txt", "empty_transcript"} <= set(corpora["kemdy19"].expected_skips())


def test_kemdy19_speaker_rows_versus_all_rows(corpora, cache):
    manifest = corpora["kemdy19"]
    speaker = load_kemdy(manifest.root, annotations="speaker", cache_dir=cache)
    everything = load_kemdy(manifest.root, annotations="all", cache_dir=cache)
    assert set(speaker["role"]) == {"speaker"}
    assert set(everything["role"]) == {"speaker", "listener"}
    assert len(everything) > len(speaker)
    # A listener row describes the other actor: same segment and audio, the speaker's own row elsewhere.
    listener = next(r for r in everything if r["role"] == "listener")
    assert listener["segment_id"] in set(everything["segment_id"])


def test_transcripts_decode_by_release_rule(corpora, cache):
    """KEMDy20 transcripts are cp949 on disk, KEMDy19 UTF-8; both come out as the same Korean text."""
    for name, encoding in (("kemdy20", "cp949"), ("kemdy19", "utf-8")):
        manifest = corpora[name]
        row = manifest.expected_rows()[0]
        txt = Path(manifest.root, row["audio"]).with_suffix(".txt").read_bytes()
        assert txt.decode(encoding).strip() == row["transcript"]
        if name == "kemdy20":
            with pytest.raises(UnicodeDecodeError):
                txt.decode("utf-8")
        dataset = load_kemdy(manifest.root, cache_dir=cache)
        assert dataset[0]["transcript"] == row["transcript"]


def test_second_load_is_served_from_cache_quickly(corpora, cache):
    root = corpora["kemdy20"].root
    first, report = load_kemdy(root, cache_dir=cache, return_report=True)
    assert not report.from_cache
    start = time.perf_counter()
    second, report = load_kemdy(root, cache_dir=cache, return_report=True)
    elapsed = time.perf_counter() - start
    assert report.from_cache and elapsed < 0.5, elapsed
    assert second.to_list() == first.to_list()
    assert report.skipped == corpora["kemdy20"].expected_skips()  # the report survives the cache


def test_changing_the_version_or_the_code_re_prepares(corpora, cache, monkeypatch):
    root = corpora["kemdy20"].root
    load_kemdy(root, cache_dir=cache)
    builder = KemdyBuilder(data_dir=root, cache_dir=str(cache))
    assert f"/{kemdy_module.VERSION}/" in builder.cache_dir.replace(os.sep, "/")

    class NextVersion(KemdyBuilder):
        VERSION = datasets.Version("99.0.0")
        BUILDER_CONFIGS = [dataclasses.replace(c, version="99.0.0") for c in KemdyBuilder.BUILDER_CONFIGS]

    bumped = NextVersion(data_dir=root, cache_dir=str(cache))
    assert bumped.cache_dir != builder.cache_dir and "/99.0.0/" in bumped.cache_dir
    bumped.download_and_prepare()
    assert not bumped.report.from_cache

    monkeypatch.setattr(kemdy_module, "_code_hash", lambda: "edited-code")
    _, report = load_kemdy(root, cache_dir=cache, return_report=True)
    assert not report.from_cache


def test_rewriting_the_release_re_prepares(tmp_path, cache):
    root = tmp_path / "KEMDy20"
    write_sample_corpus(root, size="tiny", seed=0)
    first = load_kemdy(root, cache_dir=cache)
    manifest = write_sample_corpus(root, size="tiny", seed=1, overwrite=True)
    second, report = load_kemdy(root, cache_dir=cache, return_report=True)
    assert not report.from_cache
    assert second["text"] == [r["text"] for r in manifest.expected_rows()] != first["text"]


def test_skips_are_logged_once_per_reason(corpora, cache, caplog):
    with caplog.at_level(logging.WARNING, logger="kemd_emotion.data.kemdy"):
        load_kemdy(corpora["kemdy19"].root, annotations="all", cache_dir=cache)
    skip_lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skip_lines) == len(corpora["kemdy19"].expected_skips("all"))
    assert any("no wav file" in line and "Sess01" in line for line in skip_lines)


def test_broken_rows_are_skipped_with_a_reason_never_fatal(corpora, tmp_path, cache):
    root = tmp_path / "KEMDy20"
    shutil.copytree(corpora["kemdy20"].root, root)
    csv_path = root / "annotation" / "Sess01_eval.csv"
    rows = list(csv.reader(csv_path.open(newline="", encoding="utf-8")))
    good = rows[2]
    bad_rating = list(good)
    bad_rating[5] = "n/a"
    with csv_path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(good)  # the same segment again
        writer.writerow(["99", "1.0", "2.0"])  # truncated
        writer.writerow([""] * len(good))  # blank: ignored, not a skip
        writer.writerow(bad_rating)
        handle.write("\x00\x00\r\n")  # stray NUL bytes: csv would raise on them
    # An undecodable transcript is decoded with replacement characters, not fatal.
    txt = root / "wav" / "Session01" / f"{good[3]}.txt"
    txt.write_bytes(b"\xff\xfe\xfa \xc1\n")

    dataset, report = load_kemdy(root, cache_dir=cache, return_report=True)
    expected = corpora["kemdy20"].expected_skips()
    assert report.skipped["duplicate"] == [good[3]]
    assert report.skipped["malformed_row"] == [f"Sess01_eval.csv:{len(rows) + 2}"]  # file line of the row
    assert report.skipped["bad_rating"] == [good[3]]
    assert len(dataset) == len(corpora["kemdy20"].expected_rows())
    assert good[3] in report.text_fallback
    assert "\ufffd" in dataset[0]["transcript"]
    for reason, ids in expected.items():
        assert report.skipped[reason] == ids


def test_bad_rating_is_reported(corpora, tmp_path, cache):
    root = tmp_path / "KEMDy20"
    shutil.copytree(corpora["kemdy20"].root, root)
    csv_path = root / "annotation" / "Sess02_eval.csv"
    rows = list(csv.reader(csv_path.open(newline="", encoding="utf-8")))
    rows[2][6] = "7.5"  # arousal outside 1-5
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    _, report = load_kemdy(root, cache_dir=cache, return_report=True)
    assert report.skipped["bad_rating"] == [rows[2][3]]


@pytest.mark.parametrize("layout", ["empty", "no_annotation", "other_csvs"])
def test_a_folder_that_is_not_kemdy_is_a_clear_error(tmp_path, cache, layout):
    root = tmp_path / "not_kemdy"
    root.mkdir()
    if layout != "empty":
        (root / "wav").mkdir()
        (root / "notes.txt").write_text("hello")
    if layout == "other_csvs":
        (root / "annotation").mkdir()
        (root / "annotation" / "labels.csv").write_text("id,label\n1,happy\n")
    with pytest.raises(ValueError, match="not a KEMDy release folder"):
        load_kemdy(root, cache_dir=cache)
    with pytest.raises(ValueError, match="does not exist"):
        load_kemdy(tmp_path / "missing", cache_dir=cache)


def test_wrong_name_and_nested_release_are_explained(corpora, tmp_path, cache):
    with pytest.raises(ValueError, match="name='kemdy20'"):
        load_kemdy(corpora["kemdy20"].root, name="kemdy19", cache_dir=cache)
    parent = Path(corpora["kemdy20"].root).parent
    with pytest.raises(ValueError, match="Did you mean"):
        load_kemdy(parent, cache_dir=cache)
    with pytest.raises(ValueError, match="annotations must be one of"):
        load_kemdy(corpora["kemdy19"].root, annotations="listener", cache_dir=cache)
    with pytest.raises(ValueError, match="name must be one of"):
        load_kemdy(corpora["kemdy19"].root, name="kemdy21", cache_dir=cache)


def test_a_release_with_no_usable_row_is_an_error(corpora, tmp_path, cache):
    root = tmp_path / "KEMDy20"
    shutil.copytree(corpora["kemdy20"].root, root)
    shutil.rmtree(root / "wav")
    (root / "wav").mkdir()
    with pytest.raises(ValueError, match="No usable segment.*missing_wav"):
        load_kemdy(root, cache_dir=cache)
