"""The sample-corpus writer: the release layout, determinism, sizes, the CLI entry, and a signal split across
modalities as in real speech (words carry valence, the voice carries arousal)."""

import argparse
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kemd_emotion.data import (
    SIZES,
    SampleManifest,
    add_make_sample_parser,
    make_sample_main,
    write_sample_corpus,
)
from kemd_emotion import EMOTIONS
from kemd_emotion.data.sample import CATEGORY_PRIOR, NEGATIVE, POSITIVE, PROTOTYPES


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "sample_manifest.json"):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", ["kemdy20", "kemdy19"])
def test_layout_matches_the_release(tmp_path, name):
    manifest = write_sample_corpus(tmp_path / "release", name, size="tiny")
    root = Path(manifest.root)
    bio = {"kemdy19": {"ECG", "EDA", "TEMP"}, "kemdy20": {"EDA", "IBI", "TEMP"}}[name]
    assert {p.name for p in root.iterdir() if p.is_dir()} == {"annotation", "wav"} | bio
    csvs = sorted(p.name for p in (root / "annotation").iterdir())
    if name == "kemdy20":
        assert csvs == ["Sess01_eval.csv", "Sess02_eval.csv", "Sess03_eval.csv"]
        id_pattern = re.compile(r"Sess\d{2}_script0[1-6]_User\d{3}[MF]_\d{3}")
    else:
        assert csvs == [f"Session{s:02d}_{g}_res.csv" for s in (1, 2, 3) for g in "FM"]
        id_pattern = re.compile(r"Sess\d{2}_(script|impro)\d{2}_[MF]\d{3}")
    for row in manifest.rows:
        if row["skip"] != "bad_id":
            assert id_pattern.fullmatch(row["written_id"]), row["written_id"]
        wav = Path(row["audio"])
        assert wav.parts[:2] == ("wav", f"Session{row['session'][4:]}")
        if name == "kemdy19":  # the sub-folder is the ID without its last five characters
            assert wav.parent.name == row["segment_id"][:-5]
    # Every wav has its one-line transcript beside it, in the release's encoding.
    encoding = {"kemdy20": "cp949", "kemdy19": "utf-8"}[name]
    for row in manifest.expected_rows("all"):
        raw = (root / row["audio"]).with_suffix(".txt").read_bytes()
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1
        if row["segment_id"] not in manifest.text_fallback:
            assert raw.decode(encoding) == row["transcript"] + "\n"
    # Each annotation file has the two header rows and (KEMDy19) lists every segment of its session.
    first = (root / "annotation" / csvs[0]).read_text(encoding="utf-8").splitlines()
    assert first[0].startswith("Numb,Wav,") and "Total Evaluation" in first[0] and "Emotion,Valence,Arousal" in first[1]
    segments = {r["segment_id"] for r in manifest.rows if r["session"] == "Sess01"}
    assert len(first) - 2 == len(segments)


def test_same_seed_same_bytes_other_seed_other_corpus(tmp_path):
    a = write_sample_corpus(tmp_path / "a", size="tiny", seed=5)
    b = write_sample_corpus(tmp_path / "b", size="tiny", seed=5)
    c = write_sample_corpus(tmp_path / "c", size="tiny", seed=6)
    assert _digest(Path(a.root)) == _digest(Path(b.root)) != _digest(Path(c.root))
    assert [r["text"] for r in a.rows] == [r["text"] for r in b.rows]
    assert SampleManifest.load(a.root).rows == a.rows


def test_quirks_and_faults_are_where_the_manifest_says(tmp_path):
    manifest = write_sample_corpus(tmp_path / "r", "kemdy20", size="tiny")
    root = Path(manifest.root)
    by_reason = {r["skip"]: r for r in manifest.rows if r["skip"]}
    assert not (root / by_reason["missing_wav"]["audio"]).exists()
    with pytest.raises(Exception):
        sf.info(str(root / by_reason["unreadable_wav"]["audio"]))
    formats = {(r["sampling_rate"], r["channels"]) for r in manifest.rows}
    assert {(44_100, 1), (8_000, 1), (16_000, 2), (44_100, 2)} <= formats
    for row in manifest.expected_rows():
        info = sf.info(str(root / row["audio"]))
        assert (info.samplerate, info.channels) == (row["sampling_rate"], row["channels"])
        assert info.frames / info.samplerate == pytest.approx(row["duration"])
        assert 0.4 <= row["duration"] <= 0.8 + 1e-9
        assert 1 <= row["arousal"] <= 5 and 1 <= row["valence"] <= 5
    written, corrected = next(iter(manifest.corrected_ids.items()))
    assert written[:6] != corrected[:6] and written[6:] == corrected[6:]


def test_clean_corpus_and_sizes(tmp_path):
    manifest = write_sample_corpus(tmp_path / "clean", sessions=2, segments_per_session=3, min_seconds=0.2,
                                   max_seconds=0.3, quirks=False)
    assert len(manifest.rows) == 6 and all(r["skip"] is None for r in manifest.rows)
    assert {(r["sampling_rate"], r["channels"]) for r in manifest.rows} == {(16_000, 1)}
    assert not manifest.corrected_ids and not manifest.text_fallback
    spread = write_sample_corpus(tmp_path / "spread", sessions=3, num_segments=10, min_seconds=0.1,
                                 max_seconds=0.1, quirks=False)
    assert spread.options["segments_per_session"] == [4, 3, 3]
    assert set(SIZES) == {"tiny", "default", "kemdy20-size"}
    assert set(PROTOTYPES) == set(CATEGORY_PRIOR) == set(EMOTIONS)
    assert sum(CATEGORY_PRIOR.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="kemdy21"), "name must be"),
        (dict(sessions=0), "sessions must be between 1 and 99"),
        (dict(min_seconds=2.0, max_seconds=1.0), "min_seconds <= max_seconds"),
        (dict(sessions=2, segments_per_session=3), "quirks=True needs at least 3 sessions"),
        (dict(size="huge"), "size must be one of"),
        (dict(sampling_rate=12_345), "sampling_rate must be one of"),
    ],
)
def test_bad_arguments_say_what_was_expected(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_sample_corpus(tmp_path / "x", **kwargs)


def test_refuses_to_write_into_a_non_empty_folder(tmp_path):
    write_sample_corpus(tmp_path / "r", size="tiny", seed=0)
    with pytest.raises(ValueError, match="not empty"):
        write_sample_corpus(tmp_path / "r", size="tiny")
    assert write_sample_corpus(tmp_path / "r", size="tiny", seed=1, overwrite=True).options["seed"] == 1


def test_make_sample_command(tmp_path, capsys):
    assert make_sample_main([str(tmp_path / "cli"), "--name", "kemdy19", "--size", "tiny", "--seed", "2"]) == 0
    assert "usable speaker rows" in capsys.readouterr().out
    assert SampleManifest.load(tmp_path / "cli").options["seed"] == 2
    parser = argparse.ArgumentParser(prog="kemd-emotion")
    add_make_sample_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["make-sample", str(tmp_path / "cli2"), "--no-quirks", "--sessions", "1",
                              "--segments-per-session", "2", "--min-seconds", "0.1", "--max-seconds", "0.2"])
    assert args.func(args) == 0 and len(SampleManifest.load(tmp_path / "cli2").rows) == 2


def _r2(features: np.ndarray, target: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(target)), features])
    beta, *_ = np.linalg.lstsq(design, target, rcond=None)
    return 1.0 - np.var(target - design @ beta) / np.var(target)


def test_words_carry_valence_and_the_voice_carries_arousal(tmp_path):
    """Simple features, linear fits: each modality explains its own dimension far better than the other one."""
    manifest = write_sample_corpus(tmp_path / "signal", sessions=4, segments_per_session=40, min_seconds=0.3,
                                   max_seconds=0.6, quirks=False, seed=7)
    rows = manifest.expected_rows()
    arousal = np.array([r["arousal"] for r in rows])
    valence = np.array([r["valence"] for r in rows])

    weight = {w: 1 + tier for tier, words in enumerate(POSITIVE) for w in words}
    weight |= {w: -1 - tier for tier, words in enumerate(NEGATIVE) for w in words}
    text = np.array([[sum(weight.get(w, 0) > 0 for w in r["text"].split()),
                      sum(weight.get(w, 0) < 0 for w in r["text"].split()),
                      sum(weight.get(w, 0) for w in r["text"].split())] for r in rows], dtype=float)

    def acoustics(path):
        samples, rate = sf.read(path)
        power = np.abs(np.fft.rfft(samples)) ** 2
        freqs = np.fft.rfftfreq(len(samples), 1 / rate)
        brightness = np.log(power[freqs > 1000].sum() / power[(freqs > 50) & (freqs <= 1000)].sum())
        crossings = np.mean(np.abs(np.diff(np.sign(samples))) > 0)
        return brightness, 0.5 * np.log(np.mean(samples**2)), crossings

    audio = np.array([acoustics(Path(manifest.root, r["audio"])) for r in rows])
    speakers = np.array([r["speaker"] for r in rows])
    for speaker in set(speakers):  # voices differ: compare each speaker with themself
        audio[speakers == speaker] -= audio[speakers == speaker].mean(axis=0)

    text_v, text_a = _r2(text, valence), _r2(text, arousal)
    audio_a, audio_v = _r2(audio, arousal), _r2(audio, valence)
    assert text_v > 0.4 and text_v > 3 * text_a, (text_v, text_a)
    assert audio_a > 0.35 and audio_a > 4 * audio_v, (audio_a, audio_v)
