"""Audio-only input: the emotion pipeline transcribes recordings given without text (asr_model=...), then fuses.

Two speech recognisers stand in for Whisper: a callable that counts its calls and writes a text chosen by the clip,
and a tiny random-init Wav2Vec2ForCTC with a Korean character vocabulary, saved to a folder and loaded by id.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers.audio import speech_like
from helpers.fresh_process import BLOCK_KEMD_EMOTION
from helpers.outputs import flat
from helpers.speech_recognizer import ASR_CHARACTERS, tiny_speech_recognizer
from transformers import BertModel, pipeline

from kemd_emotion.pipeline_emotion import TranscriptionError
from kemd_emotion.processing_klue_wav2vec2 import resample
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_text_config

ATOL = 1e-5
TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"


class CountingRecognizer:
    """`audio -> str`: one of DEFAULT_TEXTS chosen by the clip's length; "" for a silent clip; records every clip."""

    def __init__(self, fail_on_length=None):
        self.clips = []
        self.fail_on_length = fail_on_length

    def __call__(self, audio):
        assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1
        self.clips.append(audio.copy())
        if len(audio) == self.fail_on_length:
            raise RuntimeError("the recogniser crashed")
        return self.text_for(audio)

    @staticmethod
    def text_for(audio) -> str:
        """What it writes for `audio` (without counting a call)."""
        if not np.abs(audio).max() > 0:
            return "  "
        return DEFAULT_TEXTS[len(audio) // 800 % len(DEFAULT_TEXTS)]


@pytest.fixture(scope="module")
def model(tiny_model_factory):
    return tiny_model_factory("cat", seed=21)


@pytest.fixture(scope="module")
def plain(model, tiny_processor):
    """The pipeline without ASR: the reference for 'the fused model reads that transcript'."""
    return pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")


@pytest.fixture(scope="module")
def asr_folder(tmp_path_factory):
    return tiny_speech_recognizer(tmp_path_factory.mktemp("asr") / "tiny-ctc-ko")


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(14)
    return [speech_like(rng, seconds) for seconds in (1.0, 0.6, 1.45, 2.2, 0.8)]


def with_asr(model, tiny_processor, asr_model, **kwargs):
    return pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu", asr_model=asr_model,
                    **kwargs)


def assert_reads_its_transcript(plain, item, result):
    """The output equals scoring the same audio with the reported transcript given as text."""
    want = plain({"text": result["transcript"], "audio": item["audio"]})
    np.testing.assert_allclose(flat(result), flat(want), atol=ATOL)


def test_callable_transcribes_audio_only_input_once_from_the_whole_recording(model, tiny_processor, plain):
    recognizer = CountingRecognizer()
    pipe = with_asr(model, tiny_processor, recognizer)
    long_clip = speech_like(np.random.default_rng(1), 7.3)  # longer than the 5 s the speech side is cropped to
    result = pipe({"audio": long_clip})
    assert len(recognizer.clips) == 1
    np.testing.assert_array_equal(recognizer.clips[0], long_clip)  # the full recording, not the training crop
    assert result["transcript"] == CountingRecognizer.text_for(long_clip)
    assert result["transcript_source"] == "asr"
    assert_reads_its_transcript(plain, {"audio": long_clip}, result)
    other = next(text for text in DEFAULT_TEXTS if text != result["transcript"])
    assert not np.allclose(flat(result), flat(plain({"text": other, "audio": long_clip})), atol=ATOL)  # text matters

    given = pipe({"text": TEXT, "audio": long_clip})  # an input with text is never transcribed
    assert len(recognizer.clips) == 1
    assert (given["transcript"], given["transcript_source"]) == (TEXT, "given")
    np.testing.assert_allclose(flat(given), flat(plain({"text": TEXT, "audio": long_clip})), atol=ATOL)


@pytest.mark.parametrize("recognizer_kind", ["callable", "ctc_folder"])
def test_mixed_batches_keep_order_and_equal_one_at_a_time(model, tiny_processor, plain, asr_folder, clips,
                                                          recognizer_kind, monkeypatch):
    recognizer = CountingRecognizer()
    pipe = with_asr(model, tiny_processor, recognizer if recognizer_kind == "callable" else str(asr_folder))
    inputs = [{"audio": clips[0]}, {"text": TEXT, "audio": clips[1]}, {"audio": clips[2]},
              {"text": None, "audio": {"array": clips[3], "sampling_rate": 16000}},
              {"text": "화가 나요", "audio": clips[4]}]
    sources = ["asr", "given", "asr", "asr", "given"]
    single = [pipe(item) for item in inputs]
    assert [result["transcript_source"] for result in single] == sources
    for item, result in zip(inputs, single):
        audio = item["audio"]["array"] if isinstance(item["audio"], dict) else item["audio"]
        assert_reads_its_transcript(plain, {"audio": audio}, result)
    if recognizer_kind == "ctc_folder":
        assert all(set(result["transcript"]) <= set(ASR_CHARACTERS) and result["transcript"]
                   for result, source in zip(single, sources) if source == "asr")
        assert len({result["transcript"] for result in single}) == 5  # the clips read differently

    asr_calls = []
    if recognizer_kind == "ctc_folder":
        backend = pipe.transcriber._backend
        original = type(backend).__call__
        monkeypatch.setattr(type(backend), "__call__",
                            lambda self, inputs, **kw: asr_calls.append(len(inputs)) or original(self, inputs, **kw))
    for batch_size in (2, 5):
        recognizer.clips.clear()
        batched = pipe(inputs, batch_size=batch_size)
        assert [result["transcript"] for result in batched] == [result["transcript"] for result in single]
        assert [result["transcript_source"] for result in batched] == sources
        np.testing.assert_allclose(np.stack([flat(r) for r in batched]), np.stack([flat(r) for r in single]), atol=ATOL)
        if recognizer_kind == "callable":
            assert len(recognizer.clips) == 3  # each audio-only input exactly once
    if recognizer_kind == "ctc_folder":
        # Clips of different lengths: a CTC backend is called per length (padding would change what it writes).
        assert asr_calls == [1, 1, 1, 1, 1, 1]


def test_ctc_model_is_loaded_once_when_needed_following_the_pipeline(model, tiny_processor, plain, asr_folder, clips,
                                                                     monkeypatch):
    pipe = with_asr(model, tiny_processor, str(asr_folder))
    pipe([{"text": TEXT, "audio": clips[0]}])
    assert not pipe.transcriber.loaded  # nothing loaded while every input has text
    pipe({"audio": clips[0]})
    backend = pipe.transcriber._backend
    assert backend.task == "automatic-speech-recognition"
    assert backend.device == pipe.device and backend.model.dtype == pipe.model.dtype == torch.float32
    pipe([{"audio": clips[1]}, {"audio": clips[2]}], batch_size=2)
    assert pipe.transcriber._backend is backend  # loaded once per pipeline

    # Equal-length clips (the windows of a chunked recording) share one batched call and read as they do alone.
    windows = with_asr(model, tiny_processor, str(asr_folder))
    windows.transcriber.load()
    asr_calls, original = [], type(windows.transcriber._backend).__call__
    monkeypatch.setattr(type(windows.transcriber._backend), "__call__",
                        lambda self, inputs, **kw: asr_calls.append(len(inputs)) or original(self, inputs, **kw))
    long_clip = speech_like(np.random.default_rng(3), 3.0)
    result = windows({"audio": long_clip}, chunk_length_s=1.0, batch_size=3)
    assert asr_calls == [3]
    monkeypatch.undo()
    alone = [windows({"audio": long_clip[i * 16000:(i + 1) * 16000]})["transcript"] for i in range(3)]
    assert [chunk["transcript"] for chunk in result["chunks"]] == alone

    # asr_kwargs reach the speech-recognition pipeline; dtype and device given there win over the pipeline's.
    whisper_like = with_asr(model, tiny_processor, str(asr_folder),
                            asr_kwargs={"generate_kwargs": {"language": "korean"}, "dtype": torch.float64})
    result = whisper_like({"audio": clips[0]})
    backend = whisper_like.transcriber._backend
    assert backend._forward_params["language"] == "korean" and backend.model.dtype == torch.float64
    assert result["transcript"] == pipe({"audio": clips[0]})["transcript"]


def test_recogniser_at_another_sampling_rate_hears_resampled_audio(model, tiny_processor, clips, tmp_path):
    folder = tiny_speech_recognizer(tmp_path / "asr-8k", sampling_rate=8000)
    result = with_asr(model, tiny_processor, str(folder))({"audio": clips[0]})
    direct = pipeline("automatic-speech-recognition", model=str(folder), device="cpu")
    assert result["transcript"] == direct({"raw": resample(clips[0], 16000, 8000), "sampling_rate": 8000})["text"]


def test_one_transcript_per_window_from_the_window_audio(model, tiny_processor, plain):
    recognizer = CountingRecognizer()
    pipe = with_asr(model, tiny_processor, recognizer)
    audio = speech_like(np.random.default_rng(5), 6.3)
    result = pipe({"audio": audio}, chunk_length_s=2.5, stride_length_s=0.5)
    bounds = [(0.0, 2.5), (2.0, 4.5), (3.8, 6.3)]
    assert [(chunk["start"], chunk["end"]) for chunk in result["chunks"]] == bounds
    assert len(recognizer.clips) == 3
    for clip, chunk, (start, end) in zip(recognizer.clips, result["chunks"], bounds):
        window = audio[round(start * 16000):round(end * 16000)]
        np.testing.assert_array_equal(clip, window)  # each window transcribed from its own audio
        assert chunk["transcript_source"] == "asr" and chunk["transcript"] == recognizer.text_for(window)
        np.testing.assert_allclose(flat(chunk), flat(plain({"text": chunk["transcript"], "audio": window})), atol=ATOL)
    assert result["transcript"] == " ".join(chunk["transcript"] for chunk in result["chunks"])
    np.testing.assert_allclose(flat(result), np.mean([flat(chunk) for chunk in result["chunks"]], axis=0), atol=1e-6)

    given = pipe({"text": TEXT, "audio": audio}, chunk_length_s=2.5, stride_length_s=0.5)
    assert len(recognizer.clips) == 3  # only the call above: given text is never transcribed
    assert {(chunk["transcript"], chunk["transcript_source"]) for chunk in given["chunks"]} == {(TEXT, "given")}


def test_empty_transcript_is_a_per_input_error_or_scored_from_speech(model, tiny_processor, plain, clips):
    recognizer = CountingRecognizer()
    pipe = with_asr(model, tiny_processor, recognizer)
    silence = np.zeros(12000, dtype=np.float32)
    inputs = [{"audio": clips[0]}, {"audio": silence}, {"text": TEXT, "audio": clips[1]}]
    with pytest.raises(TranscriptionError, match=r"^input\['text'\] is missing and could not be made: the callable CountingRecognizer heard no words in the "
                                                 r"recording .*on_empty_transcript='speech_only'"):
        pipe({"audio": silence})
    with pytest.raises(TranscriptionError) as caught:
        pipe(inputs, batch_size=2)
    error = caught.value
    assert isinstance(error, ValueError) and list(error.errors) == [1]
    assert str(error).startswith("inputs[1]['text'] is missing and could not be made: the callable CountingRecognizer heard no "
                                  "words")
    assert "The other 2 input(s) were scored" in str(error)
    assert error.results[1] is None  # ... and the others were not lost
    for got, item in zip([error.results[0], error.results[2]], [inputs[0], inputs[2]]):
        np.testing.assert_allclose(flat(got), flat(pipe(item)), atol=ATOL)

    # speech_only: the text side reads "no words" as training read a marker-only transcript (the unknown token).
    results = pipe(inputs, batch_size=2, on_empty_transcript="speech_only")
    assert (results[1]["transcript"], results[1]["transcript_source"]) == ("", "asr")
    np.testing.assert_allclose(flat(results[1]), flat(plain({"text": "[UNK]", "audio": silence})), atol=ATOL)
    np.testing.assert_allclose(flat(results[0]), flat(pipe(inputs[0])), atol=ATOL)
    fallback = with_asr(model, tiny_processor, recognizer, on_empty_transcript="speech_only")
    np.testing.assert_allclose(flat(fallback({"audio": silence})), flat(results[1]), atol=ATOL)

    # A silent window of a long recording: the window falls back, the others keep their words.
    audio = np.concatenate([clips[3][:16000], np.zeros(16000, np.float32)])
    chunked = fallback({"audio": audio}, chunk_length_s=1.0)
    assert [chunk["transcript"] for chunk in chunked["chunks"]] == [recognizer.text_for(audio[:16000]), ""]
    assert chunked["transcript"] == recognizer.text_for(audio[:16000])
    with pytest.raises(TranscriptionError, match=r"heard no words in window 1-2 s"):
        pipe({"audio": audio}, chunk_length_s=1.0)


def test_empty_transcript_from_a_ctc_model_that_hears_nothing(model, tiny_processor, plain, clips, tmp_path):
    deaf = tiny_speech_recognizer(tmp_path / "deaf", speaks="")
    pipe = with_asr(model, tiny_processor, str(deaf))
    with pytest.raises(TranscriptionError, match=rf"^inputs\[0\]\['text'\] is missing and could not be made: '{deaf}' heard no words in the recording"):
        pipe([{"audio": clips[0]}, {"text": TEXT, "audio": clips[1]}])
    result = pipe({"audio": clips[0]}, on_empty_transcript="speech_only")
    np.testing.assert_allclose(flat(result), flat(plain({"text": "[UNK]", "audio": clips[0]})), atol=ATOL)


def test_failing_recogniser_names_the_input_and_keeps_the_others(model, tiny_processor, clips, asr_folder,
                                                                 monkeypatch):
    recognizer = CountingRecognizer(fail_on_length=len(clips[2]))
    pipe = with_asr(model, tiny_processor, recognizer)
    inputs = [{"audio": clip} for clip in clips[:4]]
    with pytest.raises(TranscriptionError, match=r"^inputs\[2\]\['text'\] is missing and could not be made: the callable CountingRecognizer failed on the "
                                                 r"recording: RuntimeError: the recogniser crashed") as caught:
        pipe(inputs, batch_size=2)
    assert [result is None for result in caught.value.results] == [False, False, True, False]
    assert len(recognizer.clips) == 4  # each transcribed once, the failure included
    np.testing.assert_allclose(flat(caught.value.results[3]), flat(pipe(inputs[3])), atol=ATOL)

    # A speech-recognition pipeline whose batched call breaks on one clip: the clips are retried one by one.
    ctc = with_asr(model, tiny_processor, str(asr_folder))
    ctc.transcriber.load()
    backend = ctc.transcriber._backend
    preprocess = type(backend).preprocess

    def breaks_on_one(self, inputs, **kwargs):
        if np.array_equal(inputs["raw"], clips[1]):
            raise RuntimeError("cannot decode this one")
        return preprocess(self, inputs, **kwargs)

    monkeypatch.setattr(type(backend), "preprocess", breaks_on_one)
    same_length = [{"audio": clips[1]}, {"audio": clips[0][: len(clips[1])][::-1].copy()}]
    with pytest.raises(TranscriptionError, match=r"^inputs\[0\]\['text'\] .*failed on the recording: RuntimeError: cannot "
                                                 r"decode this one") as caught:
        ctc(same_length, batch_size=2)
    assert caught.value.results[0] is None and caught.value.results[1]["transcript_source"] == "asr"


def test_generators_are_transcribed_in_groups(model, tiny_processor, plain, clips):
    recognizer = CountingRecognizer()
    pipe = with_asr(model, tiny_processor, recognizer)
    rows = [{"audio": clips[0]}, {"text": TEXT, "audio": clips[1]}, {"audio": clips[2]}]
    results = list(pipe((row for row in rows), batch_size=2))
    assert len(recognizer.clips) == 2
    assert [result["transcript_source"] for result in results] == ["asr", "given", "asr"]
    np.testing.assert_allclose(flat(results[2]), flat(pipe(rows[2])), atol=ATOL)
    failing = with_asr(model, tiny_processor, CountingRecognizer(fail_on_length=len(clips[2])))
    stream = iter(failing(row for row in rows))
    assert next(stream)["transcript_source"] == "asr" and next(stream)["transcript_source"] == "given"
    with pytest.raises(TranscriptionError, match=r"^inputs\[2\]\['text'\] .*failed"):
        next(stream)


def test_wrong_speech_recognisers_and_options(model, tiny_processor, tiny_model_factory, clips, tmp_path, asr_folder):
    bert = tmp_path / "bert"
    BertModel(tiny_text_config()).save_pretrained(bert)
    pipe = with_asr(model, tiny_processor, str(bert))
    assert flat(pipe({"text": TEXT, "audio": clips[0]})).shape == (9,)  # not loaded: no input needed it
    with pytest.raises(ValueError, match=rf"asr_model='{bert}' is a 'bert' model, not a speech-recognition one .* "
                                         r"for this emotion checkpoint \(fusion='cat'\)"):
        pipe({"audio": clips[0]})
    with pytest.raises(ValueError, match=r"asr_model='someone/no-such-asr' could not be loaded to transcribe "
                                         r"recordings for this emotion checkpoint"):
        with_asr(model, tiny_processor, "someone/no-such-asr")({"audio": clips[0]})  # offline: nothing to download
    classifier = pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")
    with pytest.raises(ValueError, match=r"asr_model is a 'emotion-multimodal' pipeline .*, not an "
                                         r"'automatic-speech-recognition' one, so it cannot transcribe recordings for "
                                         r"this emotion checkpoint \(fusion='cat'\)"):
        with_asr(model, tiny_processor, classifier)
    with pytest.raises(ValueError, match=r"asr_model must be a model id or folder, an automatic-speech-recognition "
                                         r"pipeline, or a callable audio -> str; got int"):
        with_asr(model, tiny_processor, 3)
    with pytest.raises(ValueError, match=r"asr_kwargs \['device'\] apply only when asr_model is a model id"):
        with_asr(model, tiny_processor, CountingRecognizer(), asr_kwargs={"device": "cpu"})
    with pytest.raises(ValueError, match="asr_kwargs were given without asr_model"):
        with_asr(model, tiny_processor, None, asr_kwargs={"generate_kwargs": {"language": "korean"}})
    with pytest.raises(ValueError, match=r"on_empty_transcript='skip' is not supported; expected one of 'error', "
                                         r"'speech_only'"):
        with_asr(model, tiny_processor, CountingRecognizer())({"audio": clips[0]}, on_empty_transcript="skip")
    recognizer = CountingRecognizer()
    with pytest.raises(TypeError, match="topk"):  # a typo fails before any transcription work
        with_asr(model, tiny_processor, recognizer)({"audio": clips[0]}, topk=2)
    with pytest.raises(ValueError, match="chunk_length_s"):
        with_asr(model, tiny_processor, recognizer)([{"audio": clips[0]}], chunk_length_s=9)
    assert recognizer.clips == []
    with pytest.raises(ValueError, match=r"\['text'\] is missing: this model reads the transcript. .*build the pipeline with asr_model="):
        pipeline("emotion-multimodal", model=model, processor=tiny_processor, device="cpu")({"audio": clips[0]})
    with pytest.raises(ValueError, match=r"\['text'\] is empty"):  # an empty given text is an error, not a request
        with_asr(model, tiny_processor, CountingRecognizer())({"text": " ", "audio": clips[0]})

    text_only = tiny_model_factory("text")
    recognizer = CountingRecognizer()
    with pytest.raises(ValueError, match=r"^inputs\[1\]\['text'\] is missing, and this emotion checkpoint "
                                         r"\(fusion='text'\) reads only the transcript .*\(asr_model the callable "
                                         r"CountingRecognizer serves checkpoints that listen\)"):
        with_asr(text_only, tiny_processor, recognizer)([{"text": TEXT}, {"audio": clips[0]}])
    assert recognizer.clips == []
    with pytest.raises(ValueError, match=r"speech_only.*\(fusion='text'\) has no speech branch"):
        with_asr(text_only, tiny_processor, recognizer, on_empty_transcript="speech_only")
    speech_only = with_asr(tiny_model_factory("speech"), tiny_processor, recognizer, on_empty_transcript="speech_only")
    assert "transcript" not in speech_only({"audio": clips[0]}) and recognizer.clips == []  # it reads no text


def test_checkpoint_default_asr_model(model, tiny_processor, plain, asr_folder, clips, tmp_path):
    from kemd_emotion.hub import save_checkpoint

    model.config.asr_model = "someone/not-downloaded"
    try:
        directory = save_checkpoint(model, tiny_processor, tmp_path / "with-default")
    finally:
        model.config.asr_model = None
    pipe = pipeline("emotion-multimodal", model=str(directory), device="cpu")
    assert pipe.model.config.asr_model == "someone/not-downloaded" and pipe.can_transcribe
    pipe({"text": TEXT, "audio": clips[0]})  # offline, yet fine: nothing is loaded while inputs have text
    with pytest.raises(ValueError, match="asr_model='someone/not-downloaded' could not be loaded"):
        pipe({"audio": clips[0]})
    override = pipeline("emotion-multimodal", model=str(directory), device="cpu", asr_model=str(asr_folder))
    result = override({"audio": clips[0]})  # the caller's choice wins over the checkpoint's
    assert result["transcript_source"] == "asr" and set(result["transcript"]) <= set(ASR_CHARACTERS)
    assert_reads_its_transcript(plain, {"audio": clips[0]}, result)


FRESH_PROCESS = BLOCK_KEMD_EMOTION + textwrap.dedent(
    """
    import numpy as np
    from transformers import pipeline

    checkpoint = sys.argv[1]
    clips = [np.asarray(clip, dtype=np.float32) for clip in json.loads(sys.stdin.read())]
    inputs = [{"audio": clips[0]}, {"text": "화가 나요", "audio": clips[1]}]
    heard = []

    def recognizer(audio):
        heard.append(len(audio))
        return "정말 좋네요" if np.abs(audio).max() > 0 else ""

    by_config = pipeline("emotion-multimodal", model=checkpoint, trust_remote_code=True, device="cpu")
    by_callable = pipeline("emotion-multimodal", model=checkpoint, trust_remote_code=True, device="cpu",
                           asr_model=recognizer)
    try:
        by_callable({"audio": np.zeros(8000, np.float32)})
        empty = None
    except ValueError as error:
        empty = [type(error).__name__, str(error)]
    try:
        import kemd_emotion  # noqa: F401
        importable = True
    except ImportError:
        importable = False
    print(json.dumps({"class": type(by_config).__module__, "config": by_config(inputs, batch_size=2),
                      "callable": by_callable(inputs, batch_size=2), "heard": heard, "empty": empty,
                      "kemd_emotion_importable": importable}))
    """
)


def test_audio_only_input_through_trust_remote_code_in_a_fresh_process(model, tiny_processor, plain, asr_folder,
                                                                       clips, tmp_path):
    """A checkpoint whose config names a local speech recogniser transcribes where kemd_emotion cannot be imported."""
    from kemd_emotion.hub import save_checkpoint

    model.config.asr_model = str(asr_folder)
    try:
        directory = save_checkpoint(model, tiny_processor, tmp_path / "checkpoint")
    finally:
        model.config.asr_model = None
    assert (directory / "transcription_klue_wav2vec2.py").is_file()
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TOKENIZERS_PARALLELISM="false")
    completed = subprocess.run(
        [sys.executable, str(script), str(directory)], input=json.dumps([clips[0].tolist(), clips[1].tolist()]),
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results["kemd_emotion_importable"] is False and results["class"].startswith("transformers_modules.")

    local = with_asr(model, tiny_processor, str(asr_folder))
    want = local([{"audio": clips[0]}, {"text": "화가 나요", "audio": clips[1]}])
    for got, expected in zip(results["config"], want):
        assert (got["transcript"], got["transcript_source"]) == (expected["transcript"], expected["transcript_source"])
        np.testing.assert_allclose(flat(got), flat(expected), atol=1e-4)
    assert results["heard"] == [8000, len(clips[0])]  # the callable: once per bare input (the silent one first)
    got = results["callable"][0]
    assert (got["transcript"], got["transcript_source"]) == ("정말 좋네요", "asr")
    np.testing.assert_allclose(flat(got), flat(plain({"text": "정말 좋네요", "audio": clips[0]})), atol=1e-4)
    name, message = results["empty"]
    assert name == "TranscriptionError" and message.startswith("input['text'] is missing and could not be made: the callable "
                                                                  "recognizer heard no words")


def test_multilingual_whisper_ids_transcribe_korean_unless_told_otherwise(tmp_path):
    """A Korean package: a multilingual Whisper model id gets language="korean" (detection garbles Korean speech,
    see WHISPER_KOREAN); a language given (None included: detect) and English-only models are left alone."""
    from transformers import GenerationConfig

    from kemd_emotion.transcription_klue_wav2vec2 import WHISPER_KOREAN, with_whisper_language

    multilingual, english, bare = tmp_path / "multilingual", tmp_path / "english", tmp_path / "bare"
    GenerationConfig(is_multilingual=True).save_pretrained(multilingual)
    GenerationConfig(is_multilingual=False).save_pretrained(english)
    bare.mkdir()
    build = {"device": "cpu", "generate_kwargs": {"max_new_tokens": 64}}
    assert with_whisper_language(str(multilingual), build, {}) == {
        "device": "cpu", "generate_kwargs": {**WHISPER_KOREAN, "max_new_tokens": 64}}
    assert build == {"device": "cpu", "generate_kwargs": {"max_new_tokens": 64}}  # not changed in place
    assert with_whisper_language(str(multilingual), {"generate_kwargs": {"task": "translate"}}, {}) == {
        "generate_kwargs": {"language": "korean", "task": "translate"}}
    for given in ({"generate_kwargs": {"language": None}}, {"generate_kwargs": {"language": "english"}}):
        assert with_whisper_language(str(multilingual), given, {}) is given
    assert with_whisper_language(str(english), build, {}) is build
    assert with_whisper_language(str(bare), build, {}) is build
