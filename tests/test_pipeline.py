"""pipeline("emotion-multimodal"): input forms, file rates, batching, top_k/threshold, long audio, bad input."""

import json
import re

import numpy as np
import pytest
import soundfile
import torch
from helpers.audio import speech_like
from helpers.outputs import flat
from transformers import pipeline

from kemd_emotion import EMOTIONS, EmotionMultimodalPipeline
from kemd_emotion.hub import save_checkpoint
from kemd_emotion.pipeline_emotion import InputError, window_bounds
from kemd_emotion.processing_klue_wav2vec2 import resample

TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"
ATOL = 1e-4


@pytest.fixture(scope="module")
def model(tiny_model_factory):
    return tiny_model_factory("cat", seed=1)


@pytest.fixture(scope="module")
def pipe(model, tiny_processor):
    return pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")


@pytest.fixture(scope="module")
def clip():
    return speech_like(np.random.default_rng(1), 1.2)


def expected(model, processor, text, audio) -> np.ndarray:
    """What the model says on the processor's output for one 16 kHz clip, as `flat` orders it."""
    with torch.no_grad():
        out = model(**processor(text=text, audio=audio, sampling_rate=16000))
    return np.concatenate([torch.sigmoid(out.logits[0]).numpy(), out.regression[0].numpy()])


def write(path, audio, rate):
    soundfile.write(path, audio, rate, subtype="FLOAT")
    return str(path)


def test_task_is_registered_and_output_has_the_documented_form(pipe, model, tiny_processor, clip):
    assert isinstance(pipe, EmotionMultimodalPipeline)
    result = pipe({"text": TEXT, "audio": clip})
    assert set(result) == {"emotions", "labels", "arousal", "valence", "transcript", "transcript_source"}
    assert (result["transcript"], result["transcript_source"]) == (TEXT, "given")  # what the text model read
    assert sorted(emotion["label"] for emotion in result["emotions"]) == sorted(EMOTIONS)
    scores = [emotion["score"] for emotion in result["emotions"]]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(value, float) for value in [*scores, result["arousal"], result["valence"]])
    json.dumps(result)  # plain Python values only
    np.testing.assert_allclose(flat(result), expected(model, tiny_processor, TEXT, clip), atol=1e-6)


def test_every_audio_form_gives_the_same_scores(pipe, clip, tmp_path):
    reference = flat(pipe({"text": TEXT, "audio": clip}))
    path = write(tmp_path / "clip.wav", clip, 16000)
    forms = [
        path,
        tmp_path / "clip.wav",  # pathlib.Path
        {"array": clip, "sampling_rate": 16000},
        torch.from_numpy(clip),
        (clip * 32767).astype(np.int16),  # integer PCM is scaled to [-1, 1]
    ]
    for form in forms:
        np.testing.assert_allclose(flat(pipe({"text": TEXT, "audio": form})), reference, atol=ATOL)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_files_at_other_rates_are_resampled(pipe, model, tiny_processor, tmp_path, rate):
    audio = speech_like(np.random.default_rng(2), 1.0, sampling_rate=rate)
    path = write(tmp_path / f"clip_{rate}.wav", audio, rate)
    from_file = flat(pipe({"text": TEXT, "audio": path}))
    from_dict = flat(pipe({"text": TEXT, "audio": {"array": audio, "sampling_rate": rate}}))
    np.testing.assert_allclose(from_file, from_dict, atol=ATOL)
    np.testing.assert_allclose(from_file, expected(model, tiny_processor, TEXT, resample(audio, rate)), atol=ATOL)


def test_stereo_file_is_mixed_down(pipe, tmp_path):
    left = speech_like(np.random.default_rng(3), 1.0, sampling_rate=22050)
    right = 0.5 * left[::-1].copy()
    path = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 22050)
    mono = {"array": (left + right) / 2, "sampling_rate": 22050}
    np.testing.assert_allclose(flat(pipe({"text": TEXT, "audio": path})), flat(pipe({"text": TEXT, "audio": mono})), atol=ATOL)


def test_batches_give_the_same_numbers_as_one_at_a_time(pipe, model, monkeypatch):
    rng = np.random.default_rng(4)
    texts = ["화가 나요", TEXT, "음 글쎄요 잘 모르겠어요", "와 진짜 신기하다 대박", "슬퍼서 눈물이 났어요"]
    inputs = [{"text": text, "audio": speech_like(rng, seconds)} for text, seconds in zip(texts, [0.4, 2.5, 1.1, 0.7, 1.6])]
    single = np.stack([flat(pipe(item)) for item in inputs])

    batch_sizes, seconds = [], []

    def spy(**kw):
        batch_sizes.append(len(kw["input_ids"]))
        seconds.append([round(n / 16000, 2) for n in kw["audio_attention_mask"].sum(-1).tolist()])
        return forward(**kw)

    forward = model.forward
    monkeypatch.setattr(model, "forward", spy)
    for batch_size in (2, 5):
        batched = np.stack([flat(result) for result in pipe(inputs, batch_size=batch_size)])
        np.testing.assert_allclose(batched, single, atol=ATOL)  # answers come back in the order given
    assert batch_sizes == [2, 2, 1, 5]  # really batched, the last batch short
    # batches are formed longest first, so clips of similar length share a batch and pad little
    assert seconds[:3] == [[2.5, 1.6], [1.1, 0.7], [0.4]]


def test_top_k_and_threshold(pipe, clip):
    item = {"text": TEXT, "audio": clip}
    full = pipe(item)
    top2 = pipe(item, top_k=2)
    assert top2["emotions"] == full["emotions"][:2]
    scores = {emotion["label"]: emotion["score"] for emotion in full["emotions"]}
    middle = float(np.median(list(scores.values())))
    labels = pipe(item, threshold=middle)["labels"]
    assert labels == [label for label, score in sorted(scores.items(), key=lambda kv: -kv[1]) if score > middle]
    assert pipe(item, threshold=0.0)["labels"] == [emotion["label"] for emotion in full["emotions"]]
    # No emotion above the threshold: the best one is still named, as the reported F-scores count it.
    assert pipe(item, threshold=1.0)["labels"] == [full["emotions"][0]["label"]]
    fixed = pipeline("emotion-multimodal", model=pipe.model, processor=pipe.processor, top_k=1, device="cpu")
    assert len(fixed(item)["emotions"]) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 8}, "top_k"),
        ({"top_k": "2"}, "top_k"),
        ({"threshold": 1.5}, "threshold"),
        ({"chunk_length_s": 8}, "max_audio_seconds=5"),
        ({"chunk_length_s": 2, "stride_length_s": 2}, "stride_length_s"),
        ({"stride_length_s": 1}, "needs chunk_length_s"),
        ({"chunk_length_s": -1}, "chunk_length_s"),
    ],
)
def test_bad_parameters(pipe, clip, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe({"text": TEXT, "audio": clip}, **kwargs)


def test_window_bounds():
    assert window_bounds(10, 4, 4) == [(0, 4), (4, 8), (6, 10)]
    assert window_bounds(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert window_bounds(4, 4, 2) == [(0, 4)]
    assert window_bounds(3, 4, 4) == [(0, 3)]


def test_long_audio_is_scored_window_by_window(pipe, tmp_path):
    audio = speech_like(np.random.default_rng(5), 12.3)
    item = {"text": TEXT, "audio": audio}
    result = pipe(item, chunk_length_s=5, stride_length_s=1)
    times = [(chunk["start"], chunk["end"]) for chunk in result["chunks"]]
    assert times == [(0.0, 5.0), (4.0, 9.0), (7.3, 12.3)]  # the last window ends with the recording
    for chunk in result["chunks"]:
        window = audio[round(chunk["start"] * 16000) : round(chunk["end"] * 16000)]
        np.testing.assert_allclose(flat(chunk), flat(pipe({"text": TEXT, "audio": window})), atol=ATOL)
    mean = np.mean([flat(chunk) for chunk in result["chunks"]], axis=0)
    np.testing.assert_allclose(flat(result), mean, atol=1e-6)

    # Batched windows (across inputs, too) give the same numbers; a file works like the array.
    path = write(tmp_path / "long.wav", audio, 16000)
    batched = pipe([item, {"text": TEXT, "audio": path}], chunk_length_s=5, stride_length_s=1, batch_size=4)
    for other in batched:
        assert [(c["start"], c["end"]) for c in other["chunks"]] == times
        np.testing.assert_allclose(flat(other), flat(result), atol=ATOL)

    # Shorter than a window: one chunk, the whole clip. Chunking set at construction applies to every call.
    chunker = pipeline("emotion-multimodal", model=pipe.model, processor=pipe.processor, chunk_length_s=5, device="cpu")
    short = chunker({"text": TEXT, "audio": audio[:32000]})
    assert [(c["start"], c["end"]) for c in short["chunks"]] == [(0.0, 2.0)]
    np.testing.assert_allclose(flat(short), flat(pipe({"text": TEXT, "audio": audio[:32000]})), atol=ATOL)


def test_long_audio_without_chunking_is_cropped_as_in_training(pipe):
    audio = speech_like(np.random.default_rng(6), 7.0)
    cropped = pipe({"text": TEXT, "audio": audio[: 5 * 16000]})
    assert "chunks" not in cropped
    np.testing.assert_allclose(flat(pipe({"text": TEXT, "audio": audio})), flat(cropped), atol=ATOL)


def test_unimodal_models_need_only_their_modality(tiny_model_factory, tiny_processor, clip):
    text_only = pipeline("emotion-multimodal", model=tiny_model_factory("text"), processor=tiny_processor, device="cpu")
    speech_only = pipeline("emotion-multimodal", model=tiny_model_factory("speech"), processor=tiny_processor, device="cpu")
    assert flat(text_only({"text": TEXT})).shape == (9,)
    np.testing.assert_allclose(flat(text_only({"text": TEXT, "audio": "ignored.wav"})), flat(text_only({"text": TEXT})))
    np.testing.assert_allclose(flat(speech_only({"audio": clip})), flat(speech_only({"audio": clip, "text": ""})))
    with pytest.raises(ValueError, match=r"^input\['audio'\] is missing: this model listens to speech"):
        speech_only({"text": TEXT})
    with pytest.raises(ValueError, match="fusion='text'"):
        text_only({"text": TEXT}, chunk_length_s=2)


def test_generators_and_dataset_rows(pipe, clip):
    rows = [{"segment_id": "Sess01_script01_F001", "text": TEXT, "audio": clip, "arousal": 3.0}] * 2
    results = list(pipe(row for row in rows))
    assert len(results) == 2
    np.testing.assert_allclose(flat(results[0]), flat(pipe(rows[0])), atol=ATOL)
    assert pipe([]) == []


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    return folder


BAD_INPUTS = [  # (input, message after its name, field, code)
    ({"text": TEXT, "audio": "{folder}/missing.wav"}, r"\['audio'\] is '.*missing.wav', which is not a file",
     "audio", "not_found"),
    ({"text": TEXT, "audio": "{folder}/corrupt.wav"}, r"\['audio'\] \('corrupt.wav'\) could not be read as audio",
     "audio", "unreadable"),
    ({"text": TEXT, "audio": [0.1, 0.2, 0.3]},
     r"\['audio'\] must be a file path, an audio file's bytes, a 16 kHz np.ndarray .* got list", "audio", "wrong_type"),
    ({"text": TEXT, "audio": b"RIFF"}, r"\['audio'\] could not be read as audio \(WAV, FLAC, OGG or MP3\)", "audio", "unreadable"),
    ({"text": TEXT, "audio": {"array": np.zeros(16000)}}, r"\['audio'\] is a dict without \['sampling_rate'\]", "audio", "missing"),
    ({"text": TEXT, "audio": {"path": "x.wav"}}, r"\['audio'\] is a dict without \['array', 'sampling_rate'\]", "audio", "missing"),
    ({"text": TEXT, "audio": {"array": np.zeros(16000), "sampling_rate": -8000}},
     r"\['audio'\]\['sampling_rate'\] must be a whole number of Hz from 1000 to 384000 .*got -8000",
     "audio.sampling_rate", "bad_sampling_rate"),
    ({"text": TEXT, "audio": {"array": [0.1, 0.2], "sampling_rate": 16000}},
     r"\['audio'\]\['array'\] must be a numpy array of samples; got list", "audio.array", "bad_samples"),
    ({"text": "   ", "audio": "CLIP"}, r"\['text'\] is empty; this model needs a non-empty transcript", "text", "empty"),
    ({"audio": "CLIP"}, r"\['text'\] is missing: this model reads the transcript. To score recordings without one, "
                        r"build the pipeline with asr_model=", "text", "missing"),
    ({"text": 3, "audio": "CLIP"}, r"\['text'\] must be a string; got int", "text", "wrong_type"),
    ({"text": TEXT}, r"\['audio'\] is missing", "audio", "missing"),
    ({"text": TEXT, "audio": np.zeros(100, dtype=np.float32)}, r"\['audio'\] is 6.2 ms long; the speech encoder needs "
     r"at least 25 ms", "audio", "too_short"),
    ({"text": TEXT, "audio": np.zeros((2, 2, 800), dtype=np.float32)}, r"\['audio'\] must be 1-D .* 3-D array", "audio", "bad_samples"),
    ({"text": TEXT, "audio": np.full(800, np.nan, dtype=np.float32)}, r"\['audio'\] contains NaN", "audio", "bad_samples"),
    ("just a string", r" must be a dict like \{'text': str, 'audio'", None, "wrong_type"),
]


def materialise(bad, clip, folder):
    """A BAD_INPUTS input with its placeholders filled: "CLIP" -> the clip, "{folder}" -> the bad-files folder."""
    if isinstance(bad, dict):
        bad = dict(bad)
        if isinstance(bad.get("audio"), str) and bad["audio"] == "CLIP":
            bad["audio"] = clip
        elif isinstance(bad.get("audio"), str):
            bad["audio"] = bad["audio"].format(folder=folder)
    return bad


@pytest.mark.parametrize(("bad", "message", "field", "code"), BAD_INPUTS)
def test_bad_input_names_the_item_and_what_was_expected(pipe, clip, bad_files, bad, message, field, code):
    bad = materialise(bad, clip, bad_files)
    good = {"text": TEXT, "audio": clip}
    with pytest.raises(ValueError, match=r"(?s)^input" + message) as single:
        pipe(bad)
    assert isinstance(single.value, InputError) and (single.value.problem.field, single.value.problem.code) == (field, code)
    with pytest.raises(ValueError, match=r"(?s)^inputs\[2\]" + message):
        pipe([good, good, bad, good], batch_size=2)


@pytest.mark.parametrize(("bad", "message", "field", "code"), BAD_INPUTS)
def test_errors_return_answers_a_bad_input_with_its_error_and_scores_the_others(pipe, clip, bad_files, bad, message,
                                                                                 field, code):
    bad = materialise(bad, clip, bad_files)
    good, other = {"text": TEXT, "audio": clip}, {"text": "다른 문장", "audio": clip[:8000]}
    answers = pipe([good, bad, other], batch_size=2, errors="return")
    error = answers[1]["error"]
    assert (error["index"], error["field"], error["code"]) == (1, field, code)
    assert re.match(r"(?s)^inputs\[1\]" + message, error["message"]) and error["expected"]
    np.testing.assert_allclose(flat(answers[0]), flat(pipe(good)), atol=ATOL)
    np.testing.assert_allclose(flat(answers[2]), flat(pipe(other)), atol=ATOL)
    single = pipe(bad, errors="return")["error"]
    assert (single["index"], single["field"], single["code"]) == (None, field, code)
    assert re.match(r"(?s)^input" + message, single["message"])


def test_lists_are_read_and_scored_group_by_group_with_the_same_answers(pipe, clip, monkeypatch):
    import kemd_emotion.pipeline_emotion as module

    items = [{"text": TEXT, "audio": clip[: 4000 * (1 + i)]} for i in range(5)]
    alone = [flat(pipe(item)) for item in items]
    monkeypatch.setattr(module, "GROUP_SIZE", 2)
    for got, want in zip(pipe(items, batch_size=1), alone):
        np.testing.assert_allclose(flat(got), want, atol=ATOL)
    bad = [*items[:3], {"text": TEXT}, items[4]]
    answers = pipe(bad, errors="return", batch_size=1)
    assert answers[3]["error"]["index"] == 3 and flat(answers[4]).tolist() == pytest.approx(alone[4].tolist(), abs=ATOL)
    with pytest.raises(InputError, match=r"^inputs\[3\]\['audio'\] is missing"):
        pipe(bad, batch_size=1)


def test_errors_return_over_a_generator_answers_lazily_in_order(pipe, clip):
    good = {"text": TEXT, "audio": clip}
    stream = pipe((item for item in [good, {"text": TEXT}, good]), errors="return")
    assert not isinstance(stream, list)
    answers = list(stream)
    assert answers[1]["error"]["index"] == 1 and answers[1]["error"]["field"] == "audio"
    np.testing.assert_allclose(flat(answers[2]), flat(pipe(good)), atol=ATOL)


def test_max_input_seconds_refuses_long_recordings_before_decoding(pipe, clip, tmp_path):
    long_file = tmp_path / "long.wav"
    soundfile.write(long_file, np.zeros(16000 * 7, dtype=np.float32), 16000)
    with pytest.raises(InputError, match=r"^input\['audio'\] is 7.0 s long; at most 6.0 s are scored. Trim or split"):
        pipe({"text": TEXT, "audio": str(long_file)}, max_input_seconds=6)
    with pytest.raises(InputError, match=r"^inputs\[0\]\['audio'\] is 7.0 s long"):
        pipe([{"text": TEXT, "audio": np.zeros(16000 * 7, dtype=np.float32)}], max_input_seconds=6)
    assert "chunks" in pipe({"text": TEXT, "audio": str(long_file)}, max_input_seconds=8, chunk_length_s=5)
    with pytest.raises(ValueError, match=r"errors='ignore' is not supported; expected one of 'raise', 'return'"):
        pipe({"text": TEXT, "audio": clip}, errors="ignore")
    with pytest.raises(ValueError, match=r"max_input_seconds must be a positive number of seconds or None; got 0"):
        pipe({"text": TEXT, "audio": clip}, max_input_seconds=0)


def test_saved_checkpoint_loads_by_task_name(pipe, clip, tmp_path):
    directory = save_checkpoint(pipe.model, pipe.processor, tmp_path / "checkpoint")
    config = json.loads((directory / "config.json").read_text())
    assert config["custom_pipelines"]["emotion-multimodal"]["impl"] == "pipeline_emotion.EmotionMultimodalPipeline"
    assert (directory / "pipeline_emotion.py").is_file()
    reloaded = pipeline("emotion-multimodal", model=str(directory), device="cpu")  # no trust_remote_code needed here
    assert type(reloaded) is EmotionMultimodalPipeline
    item = {"text": TEXT, "audio": clip}
    np.testing.assert_allclose(flat(reloaded(item)), flat(pipe(item)), atol=1e-6)

    # The pipeline's own save_pretrained writes the same complete checkpoint.
    reloaded.save_pretrained(tmp_path / "again")
    again = pipeline("emotion-multimodal", model=str(tmp_path / "again"), device="cpu")
    np.testing.assert_allclose(flat(again(item)), flat(pipe(item)), atol=1e-6)


@pytest.mark.parametrize("stride", [0.99999, 1.0 - 1 / 32000])
def test_windows_that_would_not_advance_are_refused(pipe, clip, stride):
    """The hop is checked in samples: 1.0 s windows overlapping by 0.99999 s are 0 samples apart (this used to hang
    in the window loop). The check runs when the arguments are read, before any window is cut."""
    message = rf"chunk_length_s=1.0 and stride_length_s={stride} leave consecutive windows 0 samples apart"
    with pytest.raises(ValueError, match=message):
        pipe._sanitize_parameters(chunk_length_s=1.0, stride_length_s=stride)
    with pytest.raises(ValueError, match=message):
        pipe({"text": TEXT, "audio": clip}, chunk_length_s=1.0, stride_length_s=stride)
    with pytest.raises(ValueError, match=r"hop=0 samples: windows must advance by at least one sample"):
        window_bounds(40000, 16000, 0)
    one_sample = pipe({"text": TEXT, "audio": clip[:16010]}, chunk_length_s=1.0, stride_length_s=1.0 - 1 / 16000)
    assert len(one_sample["chunks"]) == 11  # one sample apart: starts 0, 1, ..., 9, then the window ending the clip
