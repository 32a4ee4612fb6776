"""The demo's logic without a server: what a request returns, what the figures mark, and messages for bad input.
(The running app, its HTTP API and a real browser are tested in test_demo_server.py.)"""

from pathlib import Path

import numpy as np
import pytest
import soundfile
from helpers.audio import speech_like
from helpers.outputs import assert_same_output
from transformers import pipeline

from kemd_emotion.cli import main
from kemd_emotion.data.sample import PROTOTYPES, synthesize_utterance
from kemd_emotion.demo import (
    DemoError,
    load_classifier,
    circumplex_figure,
    decision_thresholds,
    emotion_figure,
    predict,
    score_table,
    summary_markdown,
    timeline_figure,
    utterance_table,
    window_edges,
    write_examples,
)

TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def classifier(tiny_model_factory, tiny_processor):
    return pipeline("emotion-multimodal", model=tiny_model_factory("add", seed=2), processor=tiny_processor,
                    device="cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_audio")
    rng = np.random.default_rng(3)
    paths = {"short": folder / "short.wav", "long": folder / "long.flac", "silence": folder / "silence.wav",
             "not_audio": folder / "notes.wav", "empty": folder / "empty.wav"}
    soundfile.write(paths["short"], speech_like(rng, 1.3, 22050), 22050)
    soundfile.write(paths["long"], speech_like(rng, 12.5), 16000)
    soundfile.write(paths["silence"], np.zeros(30 * 16000, dtype=np.float32), 16000)
    paths["not_audio"].write_text("this is a text file with a .wav name")
    soundfile.write(paths["empty"], np.zeros(0, dtype=np.float32), 16000)
    return paths


def test_short_recording_is_scored_whole_like_the_pipeline(classifier, files):
    output = predict(classifier, str(files["short"]), f"  {TEXT} ")
    assert_same_output({k: v for k, v in output.items() if k not in ("duration", "window_seconds")},
                       classifier({"text": TEXT, "audio": str(files["short"])}))
    assert output["window_seconds"] is None and output["duration"] == pytest.approx(1.3, abs=1e-4)
    assert "Scored the whole 1.3 s recording." in summary_markdown(output, dict.fromkeys(classifier.model.config.label2id, 0.5))


def test_long_recording_is_scored_window_by_window(classifier, files):
    """Longer than the processor's 5 s crop: windows of 5 s over the whole recording, their mean on top."""
    output = predict(classifier, str(files["long"]), TEXT)
    want = classifier({"text": TEXT, "audio": str(files["long"])}, chunk_length_s=5.0)
    assert_same_output({k: v for k, v in output.items() if k not in ("duration", "window_seconds")}, want)
    assert [(c["start"], c["end"]) for c in output["chunks"]] == [(0.0, 5.0), (5.0, 10.0), (7.5, 12.5)]
    assert output["window_seconds"] == 5.0
    summary = summary_markdown(output, dict.fromkeys(classifier.model.config.label2id, 0.5))
    assert "The 12.5 s recording was scored in 3 windows of 5 s" in summary


def test_silence_is_answered(classifier, files):
    output = predict(classifier, str(files["silence"]), TEXT)
    assert len(output["chunks"]) == 6 and output["labels"]
    assert np.isfinite([output["arousal"], output["valence"]]).all()


@pytest.mark.parametrize(
    ("audio", "text", "message"),
    [
        ("short", "", r"^The transcript is missing: this model reads the transcript. Type or paste what is said in the "
                      r"recording.$"),
        ("short", None, r"^The transcript is missing"),
        ("short", "   ", r"^The transcript is missing"),
        (None, TEXT, r"^The recording is missing: this model listens to speech. Upload an audio file or record one "
                     r"with the microphone.$"),
        ("not_audio", TEXT, r"^The recording \('notes.wav'\) could not be read as audio \(WAV, FLAC, OGG or MP3\): "
                            r"Format not recognised\.$"),
        ("empty", TEXT, r"^The recording \('empty.wav'\) holds no audio samples.$"),
    ],
)
def test_bad_input_gets_a_message_for_the_page(classifier, files, audio, text, message):
    with pytest.raises(DemoError, match=message):
        predict(classifier, None if audio is None else str(files[audio]), text)


def test_a_bad_request_among_good_ones_gets_its_structured_error_and_the_others_their_answers(classifier, files):
    answers = []
    for audio, text in (("short", TEXT), ("not_audio", TEXT), ("long", "화가 나요"), ("short", "")):
        try:
            answers.append(predict(classifier, str(files[audio]), text))
        except DemoError as error:
            answers.append(error)
    good, unreadable, long, untranscribed = answers
    assert_same_output({k: v for k, v in good.items() if k not in ("duration", "window_seconds")},
                       classifier({"text": TEXT, "audio": str(files["short"])}))
    assert_same_output({k: v for k, v in long.items() if k not in ("duration", "window_seconds")},
                       classifier({"text": "화가 나요", "audio": str(files["long"])}, chunk_length_s=5.0))
    assert (unreadable.problem.field, unreadable.problem.code) == ("audio", "unreadable")
    assert (untranscribed.problem.field, untranscribed.problem.code) == ("text", "missing")
    assert str(unreadable).startswith("The recording ('notes.wav') could not be read as audio")


def test_too_long_and_too_short_recordings(classifier, files, tmp_path):
    with pytest.raises(DemoError, match=r"^The recording is 12.5 s long; at most 6.0 s are scored. Trim or split"):
        predict(classifier, str(files["long"]), TEXT, max_seconds=6)
    tiny = tmp_path / "click.wav"
    soundfile.write(tiny, np.zeros(100, dtype=np.float32), 16000)
    with pytest.raises(DemoError, match=r"^The recording is 6.2 ms long; the speech encoder needs at least 25 ms"):
        predict(classifier, str(tiny), TEXT)


def test_thresholds_marked_are_the_ones_the_pipeline_applies(classifier, tiny_model_factory, tiny_processor, files):
    config = classifier.model.config
    assert decision_thresholds(config) == [0.5] * 7
    output = predict(classifier, str(files["short"]), TEXT, threshold=0.45)
    thresholds = dict(zip(config.label2id, decision_thresholds(config, 0.45)))
    assert output["labels"] == classifier({"text": TEXT, "audio": str(files["short"])}, threshold=0.45)["labels"]
    marks = {}
    figure = emotion_figure(output, thresholds)
    axes = figure.axes[0]
    names = [tick.get_text() for tick in axes.get_yticklabels()]
    for line in axes.lines:
        x, y = line.get_data()
        marks[names[int(round(np.mean(y)))]] = x[0]
    assert marks == thresholds
    assert names == [e["label"] for e in output["emotions"]][::-1]  # best on top
    bar_widths = [patch.get_width() for patch in axes.patches]
    np.testing.assert_allclose(bar_widths, [e["score"] for e in output["emotions"]][::-1])

    # A config with per-emotion thresholds (issue 12) is marked as it is, without any change to the demo.
    per_class = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    config.decision_thresholds = per_class
    try:
        assert decision_thresholds(config) == per_class
        assert decision_thresholds(config, threshold=0.5) == [0.5] * 7  # the caller's override wins
    finally:
        del config.decision_thresholds
    rows = score_table(output, thresholds)
    assert rows == [[e["label"], f"{e['score']:.3f}", "0.45", "yes" if e["label"] in output["labels"] else ""]
                    for e in output["emotions"]]


def test_circumplex_and_timeline_show_the_numbers(classifier, files):
    output = predict(classifier, str(files["long"]), TEXT)
    axes = circumplex_figure(output).axes[0]
    assert axes.get_xlim() == (1, 5) and axes.get_ylim() == (1, 5)
    assert "valence" in axes.get_xlabel() and "arousal" in axes.get_ylabel()
    assert {text.get_text() for text in axes.texts} == {"excited, happy", "tense, angry", "sad, tired", "calm, content"}
    mean_point = axes.lines[-1].get_data()
    assert (mean_point[0][0], mean_point[1][0]) == (output["valence"], output["arousal"])

    names = list(classifier.model.config.label2id)
    figure = timeline_figure(output, names)
    top, bottom = figure.axes[:2]
    heat = top.collections[0].get_array().reshape(len(names), len(output["chunks"]))
    want = [[{e["label"]: e["score"] for e in c["emotions"]}[name] for c in output["chunks"]] for name in names]
    np.testing.assert_allclose(heat, want)
    np.testing.assert_allclose(bottom.lines[0].get_data()[1], [c["arousal"] for c in output["chunks"]])
    np.testing.assert_allclose(bottom.lines[1].get_data()[1], [c["valence"] for c in output["chunks"]])
    np.testing.assert_allclose(window_edges(output["chunks"]), [0.0, 5.0, 8.75, 12.5])


def test_examples_are_synthesised_by_the_sample_corpus_code(tmp_path):
    examples = write_examples(tmp_path)
    assert [label.split(" ")[0] for _, _, label in examples] == ["happy", "angry", "sad", "neutral", "neutral"]
    for path, text, _ in examples:
        info = soundfile.info(path)
        assert info.samplerate == 16000 and text.strip()
    assert soundfile.info(examples[-1][0]).duration == pytest.approx(12.0)
    text, audio = synthesize_utterance("angry", 1.0, gender="M", seed=4)
    assert audio.shape == (16000,) and np.abs(audio).max() <= 0.95
    with pytest.raises(ValueError, match=r"category must be one of"):
        synthesize_utterance("bored")
    assert set(PROTOTYPES) >= {"happy", "angry", "sad", "neutral"}


def test_demo_command_refuses_bad_options_with_a_message(capsys, tmp_path):
    pytest.importorskip("gradio", reason="the demo needs Gradio: pip install 'kemd-emotion[demo]'")
    assert main(["demo", "--model", str(tmp_path / "missing"), "--port", "1"]) == 2
    assert f"could not start the demo on '{tmp_path / 'missing'}': there is no checkpoint folder" in capsys.readouterr().err
    assert main(["demo", "--model", str(tmp_path), "--threshold", "1.5"]) == 2
    assert "--threshold must be between 0 and 1; got 1.5." in capsys.readouterr().err


def test_empty_transcript_is_transcribed_when_the_demo_has_a_speech_recogniser(tiny_model_factory, tiny_processor,
                                                                              files, tmp_path):
    from helpers.speech_recognizer import tiny_speech_recognizer
    from kemd_emotion.hub import save_checkpoint

    checkpoint = save_checkpoint(tiny_model_factory("cat", seed=4), tiny_processor, tmp_path / "emotion")
    asr = tiny_speech_recognizer(tmp_path / "asr")
    classifier = load_classifier(checkpoint, asr_model=str(asr))  # what `kemd-emotion demo --asr-model` does
    output = predict(classifier, str(files["short"]), "   ")
    want = classifier({"audio": str(files["short"])})
    assert output["transcript_source"] == "asr" and output["transcript"] == want["transcript"]
    assert_same_output({k: v for k, v in output.items() if k not in ("duration", "window_seconds")}, want)
    summary = summary_markdown(output, dict.fromkeys(classifier.model.config.label2id, 0.5))
    assert f"Transcribed by the speech recogniser: “{want['transcript']}”" in summary
    typed = predict(classifier, str(files["short"]), TEXT)  # a typed transcript is never replaced
    assert typed["transcript_source"] == "given" and typed["transcript"] == TEXT


def test_space_entry_point_needs_the_model_variable(monkeypatch):
    from kemd_emotion.demo import MODEL_ENV, main as space_main

    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(SystemExit, match=r"Set KEMD_EMOTION_MODEL to a checkpoint folder or Hub id"):
        space_main()
    app = (ROOT / "examples" / "space" / "app.py").read_text(encoding="utf-8")
    assert "from kemd_emotion.demo import main" in app  # the Space runs the same app as `kemd-emotion demo`


def test_the_timeline_shows_utterances_with_their_pauses_blank(classifier):
    rng = np.random.default_rng(9)
    pause = lambda: 0.001 * rng.standard_normal(12800)  # noqa: E731
    audio = np.concatenate([pause(), synthesize_utterance("happy", 1.5, seed=1)[1], pause(),
                            synthesize_utterance("angry", 2.0, seed=2)[1], pause()]).astype(np.float32)
    output = classifier({"text": TEXT, "audio": audio}, segment="utterances")
    utterances = output["utterances"]
    assert len(utterances) == 2
    names = list(classifier.model.config.label2id)
    top, bottom = timeline_figure(output, names).axes[:2]
    heat = np.ma.filled(top.collections[0].get_array(), np.nan).reshape(len(names), 3)
    want = [[{e["label"]: e["score"] for e in u["emotions"]}[name] for u in utterances] for name in names]
    np.testing.assert_allclose(heat[:, [0, 2]], want)
    assert np.isnan(heat[:, 1]).all()  # the pause between them
    np.testing.assert_allclose(bottom.lines[0].get_data()[0], [(u["start"] + u["end"]) / 2 for u in utterances])
    np.testing.assert_allclose(bottom.lines[0].get_data()[1], [u["arousal"] for u in utterances])
    assert "per utterance" in top.get_title(loc="left")


def test_predict_can_cut_at_utterances(classifier, tmp_path):
    rng = np.random.default_rng(10)
    pause = lambda: 0.001 * rng.standard_normal(12800)  # noqa: E731
    audio = np.concatenate([pause(), synthesize_utterance("sad", 1.5, seed=3)[1], pause(),
                            synthesize_utterance("happy", 1.5, seed=4)[1], pause()]).astype(np.float32)
    path = tmp_path / "talk.wav"
    soundfile.write(path, audio, 16000, subtype="FLOAT")
    output = predict(classifier, str(path), TEXT, segment=True)
    want = classifier({"text": TEXT, "audio": str(path)}, segment="utterances")
    assert_same_output({k: v for k, v in output.items() if k not in ("duration", "window_seconds", "utterances")},
                       {k: v for k, v in want.items() if k != "utterances"})
    assert output["duration"] == want["utterances"][-1]["end"] and len(output["utterances"]) == 2
    thresholds = dict.fromkeys(classifier.model.config.label2id, 0.5)
    assert "2 utterance(s) found and scored one by one" in summary_markdown(output, thresholds)
    rows = utterance_table(output)  # the table under the page's utterance timeline
    assert [row[:2] for row in rows] == [[f"{u['start']:.2f}", f"{u['end']:.2f}"] for u in want["utterances"]]
    assert [row[2] for row in rows] == [", ".join(u["labels"]) for u in want["utterances"]]
    assert [row[5] for row in rows] == [TEXT, TEXT]
    soundfile.write(tmp_path / "quiet.wav", 0.001 * rng.standard_normal(16000), 16000)
    quiet = predict(classifier, str(tmp_path / "quiet.wav"), TEXT, segment=True)
    assert summary_markdown(quiet, thresholds).startswith("### No speech found\n\nNo speech was found")
