"""The `kemd-emotion` command: predict (files, folders, transcripts, bad files), card, push, make-sample."""

import json

import numpy as np
import pytest
import soundfile
from helpers.audio import speech_like
from helpers.hub import FakeHub
from helpers.runs import make_run_dir
from transformers import pipeline

from kemd_emotion.cli import main
from kemd_emotion.hub import save_checkpoint

TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_factory, tiny_processor):
    return save_checkpoint(tiny_model_factory("cat", seed=5), tiny_processor, tmp_path_factory.mktemp("ckpt") / "final")


@pytest.fixture(scope="module")
def reference(checkpoint):
    return pipeline("emotion-multimodal", model=str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """A KEMDy-like folder: recordings with same-stem transcripts (UTF-8 and cp949), one corrupt, one untranscribed."""
    folder = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(11)
    (folder / "Session01").mkdir()
    soundfile.write(folder / "Session01" / "a_16k.wav", speech_like(rng, 1.0), 16000, subtype="FLOAT")
    (folder / "Session01" / "a_16k.txt").write_text("b/ 안녕하세요 (오늘+어제) 날씨가* 좋네요\n", encoding="utf-8")
    stereo = np.stack([speech_like(rng, 1.2, 44100), speech_like(rng, 1.2, 44100)], axis=1)
    soundfile.write(folder / "Session01" / "b_44k_stereo.wav", stereo, 44100, subtype="FLOAT")
    (folder / "Session01" / "b_44k_stereo.txt").write_bytes("화가 나요 정말 싫어요\n".encode("cp949"))
    (folder / "c_corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt broken")
    (folder / "c_corrupt.txt").write_text("음 글쎄요", encoding="utf-8")
    soundfile.write(folder / "d_untranscribed.wav", speech_like(rng, 0.8, 8000), 8000, subtype="FLOAT")
    (folder / "notes.md").write_text("not audio")
    return folder


def run(capsys, *argv):
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("batch_size", [4, 2])  # 4: the bad files in one batch with the good ones
def test_predict_a_folder_scores_the_good_files_and_reports_the_bad(capsys, checkpoint, reference, recordings,
                                                                     batch_size):
    status, out, err = run(capsys, "predict", "--model", checkpoint, "--audio", recordings, "--batch-size", batch_size)
    assert status == 0
    entries = json.loads(out)
    names = [entry["audio"].replace(str(recordings) + "/", "") for entry in entries]
    assert names == ["Session01/a_16k.wav", "Session01/b_44k_stereo.wav", "c_corrupt.wav", "d_untranscribed.wav"]
    a, b, corrupt, untranscribed = entries
    assert a["text"] == "안녕하세요 오늘 날씨가 좋네요"  # markers removed
    assert b["text"] == "화가 나요 정말 싫어요"  # cp949 decoded
    for entry in (a, b):
        want = reference({"text": entry["text"], "audio": entry["audio"]})
        assert [e["label"] for e in entry["emotions"]] == [e["label"] for e in want["emotions"]]
        np.testing.assert_allclose([e["score"] for e in entry["emotions"]], [e["score"] for e in want["emotions"]],
                                   atol=1e-4)
        np.testing.assert_allclose([entry["arousal"], entry["valence"]], [want["arousal"], want["valence"]], atol=1e-4)
    assert "emotions" not in corrupt and "emotions" not in untranscribed
    assert {key: corrupt["error"][key] for key in ("field", "code")} == {"field": "audio", "code": "unreadable"}
    assert corrupt["error"]["message"].startswith("the recording ('c_corrupt.wav') could not be read as audio (WAV, "
                                                  "FLAC, OGG or MP3): ")
    assert untranscribed["error"] == {
        "field": "text", "code": "missing", "expected": "a non-empty str",
        "message": "the transcript is missing: this model reads the transcript. Pass --text, put d_untranscribed.txt "
                   "next to the recording, or pass --asr-model ID to transcribe it."}
    assert "c_corrupt.wav" in err and "d_untranscribed.wav" in err
    assert "2 of 4 file(s) could not be scored" in err
    assert "4/4" in err  # the progress bar


def test_predict_one_file_with_text_and_options(capsys, checkpoint, reference, recordings):
    audio = recordings / "d_untranscribed.wav"
    status, out, _ = run(capsys, "predict", "--model", checkpoint, "--audio", audio, "--text", TEXT, "--top-k", 2,
                         "--threshold", 0.3, "--no-progress")
    assert status == 0
    [entry] = json.loads(out)
    want = reference({"text": TEXT, "audio": str(audio)}, top_k=2, threshold=0.3)
    assert entry["text"] == TEXT and len(entry["emotions"]) == 2
    assert entry["labels"] == want["labels"]
    np.testing.assert_allclose(entry["arousal"], want["arousal"], atol=1e-4)


def test_predict_long_recording_in_windows(capsys, checkpoint, tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, speech_like(np.random.default_rng(12), 11.0), 16000)
    status, out, _ = run(capsys, "predict", "--model", checkpoint, "--audio", path, "--text", TEXT,
                         "--chunk-length-s", 5, "--no-progress")
    assert status == 0
    [entry] = json.loads(out)
    assert [(c["start"], c["end"]) for c in entry["chunks"]] == [(0.0, 5.0), (5.0, 10.0), (6.0, 11.0)]


def test_predict_transcribes_files_without_transcript_with_asr_model(capsys, checkpoint, reference, tmp_path):
    from helpers.speech_recognizer import tiny_speech_recognizer
    from kemd_emotion import load_audio

    asr = tiny_speech_recognizer(tmp_path / "asr")
    folder = tmp_path / "clips"
    folder.mkdir()
    rng = np.random.default_rng(13)
    soundfile.write(folder / "a_paired.wav", speech_like(rng, 1.0), 16000, subtype="FLOAT")
    (folder / "a_paired.txt").write_text("화가 나요 정말 싫어요\n", encoding="utf-8")
    soundfile.write(folder / "b_bare.wav", speech_like(rng, 1.3, 22050), 22050, subtype="FLOAT")
    soundfile.write(folder / "c_silent.wav", np.zeros(16000, np.float32), 16000, subtype="FLOAT")
    deaf = tiny_speech_recognizer(tmp_path / "deaf", speaks="")

    status, out, err = run(capsys, "predict", "--model", checkpoint, "--audio", folder / "a_paired.wav",
                           folder / "b_bare.wav", "--asr-model", asr, "--asr-language", "korean", "--no-progress")
    assert status == 0, err
    paired, bare = json.loads(out)
    assert (paired["text"], paired["transcript_source"]) == ("화가 나요 정말 싫어요", "given")
    assert bare["transcript_source"] == "asr" and bare["text"] and "transcript" not in bare
    want = pipeline("automatic-speech-recognition", model=str(asr), device="cpu")(
        {"raw": load_audio(folder / "b_bare.wav"), "sampling_rate": 16000})
    assert bare["text"] == want["text"]  # what the speech recogniser wrote for the whole recording
    for entry in (paired, bare):  # ... is what the text model read
        expected = reference({"text": entry["text"], "audio": entry["audio"]})
        np.testing.assert_allclose([e["score"] for e in entry["emotions"]], [e["score"] for e in expected["emotions"]],
                                   atol=1e-4)

    # A recogniser that hears no words: that file is reported, the others are still scored; or scored from speech.
    status, out, err = run(capsys, "predict", "--model", checkpoint, "--audio", folder, "--asr-model", deaf,
                           "--batch-size", 3, "--no-progress")
    paired, bare, silent = json.loads(out)
    assert status == 0 and paired["transcript_source"] == "given" and "emotions" in paired
    assert bare["error"]["code"] == "no_words" and "b_bare.wav" in err
    assert bare["error"]["message"].startswith(f"the transcript is missing and could not be made: '{deaf}' heard no "
                                               "words in the recording")
    assert bare["error"]["message"].endswith("Pass --text for it, or --on-empty-transcript speech_only to score it "
                                             "from its speech.")
    assert "2 of 3 file(s) could not be scored" in err
    status, out, _ = run(capsys, "predict", "--model", checkpoint, "--audio", folder / "c_silent.wav", "--asr-model",
                         deaf, "--on-empty-transcript", "speech_only", "--no-progress")
    [silent] = json.loads(out)
    assert status == 0 and (silent["text"], silent["transcript_source"]) == ("", "asr")
    expected = reference({"text": "[UNK]", "audio": silent["audio"]})
    np.testing.assert_allclose(silent["arousal"], expected["arousal"], atol=1e-4)

    status, _, err = run(capsys, "predict", "--model", checkpoint, "--audio", folder, "--asr-language", "korean")
    assert status == 2 and "--asr-language needs --asr-model" in err


def test_predict_exit_status_when_nothing_could_be_scored(capsys, checkpoint, recordings, tmp_path):
    status, out, err = run(capsys, "predict", "--model", checkpoint, "--audio", recordings / "c_corrupt.wav",
                           tmp_path / "missing.wav", "--text", TEXT, TEXT, "--no-progress")
    assert status == 1
    assert [("error" in entry) for entry in json.loads(out)] == [True, True]
    assert "missing.wav', which is not a file" in err

    status, _, err = run(capsys, "predict", "--model", checkpoint, "--audio", recordings, "--text", TEXT)
    assert status == 2 and "--text gives 1 transcript(s) for 4 audio file(s)" in err
    status, _, err = run(capsys, "predict", "--model", checkpoint, "--audio", tmp_path / "empty_dir_or_nothing")
    assert status == 1  # a path that does not exist is a bad file, reported like the others
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, "predict", "--model", checkpoint, "--audio", tmp_path / "empty")
    assert status == 2 and "no audio files" in err
    status, _, err = run(capsys, "predict", "--model", tmp_path / "no_model", "--audio", recordings)
    assert status == 2 and "could not load a model" in err


def test_card_rebuilds_every_fusion_of_a_run(capsys, tmp_path):
    run_dir = make_run_dir(tmp_path / "run", fusion="cat", num_folds=2, per_fold=12)
    make_run_dir(tmp_path / "other", fusion="speech", num_folds=2, per_fold=12)
    (tmp_path / "other" / "speech").rename(run_dir / "speech")
    status, out, _ = run(capsys, "card", run_dir)
    assert status == 0
    written = out.split()
    assert written == [str(run_dir / "speech" / "final" / "README.md"), str(run_dir / "cat" / "final" / "README.md")]
    assert (run_dir / "cat" / "final" / "emotions.png").is_file()

    status, out, _ = run(capsys, "card", run_dir, "--fusion", "cat", "--checkpoint-dir", tmp_path / "card",
                         "--model-id", "someone/repo")
    assert status == 0 and 'model="someone/repo"' in (tmp_path / "card" / "README.md").read_text()
    status, _, err = run(capsys, "card", tmp_path / "nothing")
    assert status == 2 and "no finished fold" in err


def test_push(capsys, checkpoint, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    hub = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(HfApi, "create_repo", lambda api, *a, **kw: hub.create_repo(api, *a, **kw))
    monkeypatch.setattr(HfApi, "create_commit", lambda api, *a, **kw: hub.create_commit(api, *a, **kw))
    status, out, _ = run(capsys, "push", checkpoint, "someone/kemd", "--private")
    assert status == 0 and out.strip().startswith("https://huggingface.co/someone/kemd/commit/")
    assert hub.repos[0]["private"] is True and (hub.folder("someone/kemd") / "pipeline_emotion.py").is_file()


def test_make_sample_is_wired(capsys, tmp_path):
    status, out, _ = run(capsys, "make-sample", tmp_path / "corpus", "--size", "tiny", "--no-quirks")
    assert status == 0 and "wrote" in out
    assert any((tmp_path / "corpus").rglob("*.wav"))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "make-sample" in capsys.readouterr().out


@pytest.fixture(scope="module")
def conversation_file(tmp_path_factory):
    """Three sample-corpus utterances with pauses of low noise between them, as a 16 kHz WAV file."""
    from kemd_emotion.data.sample import synthesize_utterance

    rng = np.random.default_rng(21)
    parts = []
    for seed, (category, seconds) in enumerate([("happy", 1.5), ("angry", 2.0), ("sad", 1.2)]):
        parts += [0.001 * rng.standard_normal(int(0.8 * 16000)), synthesize_utterance(category, seconds, seed=seed)[1]]
    parts.append(0.001 * rng.standard_normal(8000))
    path = tmp_path_factory.mktemp("conversation") / "talk.wav"
    soundfile.write(path, np.concatenate(parts).astype(np.float32), 16000, subtype="FLOAT")
    return path


def test_predict_segment_utterances_json_csv_and_vtt(capsys, checkpoint, reference, conversation_file, tmp_path):
    import csv
    import io

    want = reference({"text": TEXT, "audio": str(conversation_file)}, segment="utterances")
    assert len(want["utterances"]) == 3
    common = ("predict", "--model", checkpoint, "--audio", conversation_file, "--text", TEXT, "--segment",
              "utterances", "--no-progress")
    status, out, _ = run(capsys, *common)
    [entry] = json.loads(out)
    assert status == 0 and [(u["start"], u["end"]) for u in entry["utterances"]] == [
        (u["start"], u["end"]) for u in want["utterances"]]
    np.testing.assert_allclose([u["arousal"] for u in entry["utterances"]], [u["arousal"] for u in want["utterances"]],
                               atol=1e-5)

    status, out, _ = run(capsys, *common, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert status == 0 and rows[0] == ["file", "start", "end", "labels", "arousal", "valence", "transcript", "error"]
    assert rows[1:] == [[str(conversation_file), str(u["start"]), str(u["end"]), ";".join(u["labels"]),
                         f"{u['arousal']:.4f}", f"{u['valence']:.4f}", TEXT, ""] for u in want["utterances"]]

    status, out, _ = run(capsys, *common, "--format", "vtt")
    assert status == 0
    cues = out.split("\n\n")
    assert cues[:2] == ["WEBVTT", f"NOTE {conversation_file}"]
    first = want["utterances"][0]
    start, end = (f"00:00:{first[key]:06.3f}" for key in ("start", "end"))
    assert cues[2] == (f"1\n{start} --> {end}\n{', '.join(first['labels'])} (arousal {first['arousal']:.2f}, "
                       f"valence {first['valence']:.2f})\n{TEXT}")
    assert len([cue for cue in cues if " --> " in cue]) == 3

    # A silent recording: no cue, a note; a row with the note in CSV.
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, (0.001 * np.random.default_rng(22).standard_normal(32000)).astype(np.float32), 16000)
    status, out, _ = run(capsys, "predict", "--model", checkpoint, "--audio", silent, "--text", TEXT, "--segment",
                         "utterances", "--format", "vtt", "--no-progress")
    assert status == 0 and " --> " not in out and "NOTE no speech was found" in out
    status, out, _ = run(capsys, "predict", "--model", checkpoint, "--audio", silent, conversation_file, "--text", TEXT,
                         TEXT, "--segment", "utterances", "--format", "csv", "--no-progress")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[1][0] == str(silent) and rows[1][7].startswith("no speech was found") and len(rows) == 5


def test_predict_timeline_formats_refuse_what_they_cannot_write(capsys, checkpoint, conversation_file, recordings):
    status, _, err = run(capsys, "predict", "--model", checkpoint, "--audio", conversation_file, "--format", "vtt")
    assert status == 2 and "--format vtt writes a timeline: pass --segment utterances (or --chunk-length-s)." in err
    status, _, err = run(capsys, "predict", "--model", checkpoint, "--audio", recordings, "--segment", "utterances",
                         "--format", "vtt")
    assert status == 2 and "--format vtt writes the cues of one recording; 4 audio files were given" in err
    status, _, err = run(capsys, "predict", "--model", checkpoint, "--audio", conversation_file, "--segment",
                         "utterances", "--chunk-length-s", 5)
    assert status == 2 and "--segment and --chunk-length-s cannot be used together" in err
