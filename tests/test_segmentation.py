"""A conversation, not a clip: `segment="utterances"` cuts a long recording at its pauses (energy voice activity, no
model) and scores each utterance with its own audio and words, as a timeline; given segments are checked and
scored the same way; silence answers with a note, not an error."""

from types import SimpleNamespace

import numpy as np
import pytest
from helpers.outputs import flat
from transformers import AutomaticSpeechRecognitionPipeline, pipeline

from kemd_emotion.data.sample import synthesize_utterance
from kemd_emotion.pipeline_emotion import NO_SPEECH_NOTE, InputError
from kemd_emotion.segmentation_klue_wav2vec2 import check_segments, speech_segments, timestamp_segments

TEXT = "안녕하세요 오늘 날씨가 정말 좋네요"
RATE = 16000
ATOL = 1e-5
SPOKEN = [("happy", 1.6, "F"), ("angry", 2.2, "M"), ("sad", 1.3, "F"), ("neutral", 2.5, "M")]
WORDS = ["화가 나요", "정말 좋네요", "안녕하세요", "오늘 날씨가"]


@pytest.fixture(scope="module")
def conversation():
    """Sample-corpus utterances with 0.6-1.0 s pauses of low noise between them: `(audio, [(start, end) s of each
    utterance as placed])`."""
    rng = np.random.default_rng(7)
    parts, placed, position = [], [], 0
    for seed, (category, seconds, gender) in enumerate(SPOKEN):
        pause = (0.001 * rng.standard_normal(int(rng.uniform(0.6, 1.0) * RATE))).astype(np.float32)
        _, audio = synthesize_utterance(category, seconds, gender=gender, seed=seed)
        parts += [pause, audio]
        placed.append(((position + len(pause)) / RATE, (position + len(pause) + len(audio)) / RATE))
        position += len(pause) + len(audio)
    parts.append((0.001 * rng.standard_normal(RATE // 2)).astype(np.float32))
    return np.concatenate(parts), placed


@pytest.fixture(scope="module")
def pipe(tiny_model_factory, tiny_processor):
    return pipeline("emotion-multimodal", model=tiny_model_factory("cat", seed=3), processor=tiny_processor,
                    device="cpu")


def test_the_segmenter_finds_every_utterance(conversation):
    audio, placed = conversation
    found = [(start / RATE, end / RATE) for start, end in speech_segments(audio)]
    assert len(found) == len(placed)
    for (start, end), (true_start, true_end) in zip(found, placed):
        assert abs(start - true_start) <= 0.3 and abs(end - true_end) <= 0.3


def test_a_long_utterance_is_split_at_its_quietest_frame():
    rng = np.random.default_rng(1)
    loud = 0.3 * np.sin(np.arange(3 * RATE) / RATE * 2 * np.pi * 200)
    dip = 0.03 * rng.standard_normal(RATE // 10)  # 0.1 s: quieter, but too short a pause to end the utterance
    pause = 0.001 * rng.standard_normal(RATE // 2)
    audio = np.concatenate([pause, loud, dip, loud, pause])
    [whole] = speech_segments(audio)
    assert whole == (6400, 107200)  # one utterance (0.5 s to 6.6 s), padded by 0.1 s
    first, second = speech_segments(audio, max_utterance_seconds=4.0)
    assert first[0] == whole[0] and second[1] == whole[1] and first[1] == second[0]
    assert 3.5 * RATE <= first[1] <= 3.6 * RATE  # inside the dip
    with pytest.raises(ValueError, match="max_utterance_seconds=0.8 must be at least twice min_utterance_seconds=0.5"):
        speech_segments(audio, max_utterance_seconds=0.8)


def test_silence_and_steady_noise_hold_no_utterance():
    rng = np.random.default_rng(2)
    assert speech_segments(np.zeros(3 * RATE, np.float32)) == []
    assert speech_segments(0.001 * rng.standard_normal(3 * RATE)) == []
    assert speech_segments(0.2 * rng.standard_normal(3 * RATE)) == []  # loud, but steady: no pauses, no speech
    assert speech_segments(np.zeros(100, np.float32)) == []


def test_each_utterance_scores_as_its_audio_alone(pipe, conversation):
    audio, _ = conversation
    bounds = speech_segments(audio, max_utterance_seconds=pipe.processor.max_audio_seconds)
    result = pipe({"text": TEXT, "audio": audio}, segment="utterances")
    assert [(u["start"], u["end"]) for u in result["utterances"]] == [
        (round(start / RATE, 4), round(end / RATE, 4)) for start, end in bounds]
    for utterance, (start, end) in zip(result["utterances"], bounds):
        alone = pipe({"text": TEXT, "audio": audio[start:end]})
        np.testing.assert_allclose(flat(utterance), flat(alone), atol=ATOL)
        assert utterance["labels"] == alone["labels"]
        # A given text is the whole recording's: every utterance reads all of it.
        assert (utterance["transcript"], utterance["transcript_source"]) == (TEXT, "given")
    durations = np.array([end - start for start, end in bounds], dtype=np.float64)
    mean = (durations / durations.sum()) @ np.stack([flat(u) for u in result["utterances"]])
    np.testing.assert_allclose(flat(result), mean, atol=1e-6)

    # Batched, beside other inputs, utterances give the same numbers.
    other = {"text": "다른 문장", "audio": audio[: 3 * RATE]}
    for batch_size in (1, 3):
        batched = pipe([other, {"text": TEXT, "audio": audio}], segment="utterances", batch_size=batch_size)
        np.testing.assert_allclose([flat(u) for u in batched[1]["utterances"]],
                                   [flat(u) for u in result["utterances"]], atol=ATOL)


def test_top_level_labels_follow_the_single_utterance_rule(pipe, conversation):
    audio, _ = conversation
    result = pipe({"text": TEXT, "audio": audio}, segment="utterances", threshold=0.5)
    scores = {e["label"]: e["score"] for e in result["emotions"]}
    above = [label for label, score in sorted(scores.items(), key=lambda kv: -kv[1]) if score > 0.5]
    assert result["labels"] == (above or [result["emotions"][0]["label"]])


def test_without_text_each_utterance_is_transcribed_on_its_own(tiny_model_factory, tiny_processor, conversation):
    audio, _ = conversation
    heard = []

    def recogniser(clip):
        heard.append(clip.shape[0])
        return WORDS[clip.shape[0] // 160 % len(WORDS)]

    listener = pipeline("emotion-multimodal", model=tiny_model_factory("cat", seed=3), processor=tiny_processor,
                        device="cpu", asr_model=recogniser)
    result = listener({"audio": audio}, segment="utterances", batch_size=2)
    bounds = speech_segments(audio, max_utterance_seconds=tiny_processor.max_audio_seconds)
    assert sorted(heard) == sorted(end - start for start, end in bounds)  # one clip per utterance, not the whole
    for utterance, (start, end) in zip(result["utterances"], bounds):
        words = WORDS[(end - start) // 160 % len(WORDS)]
        assert (utterance["transcript"], utterance["transcript_source"]) == (words, "asr")
        np.testing.assert_allclose(flat(utterance), flat(listener({"text": words, "audio": audio[start:end]})),
                                   atol=ATOL)
    assert result["transcript"] == " ".join(u["transcript"] for u in result["utterances"])
    assert result["segmentation"] == "energy"  # a callable gives no timestamps


def test_given_segments_are_scored_as_given(pipe, conversation):
    audio, _ = conversation
    segments = [(0.5, 2.0), (2.0, 4.25), (6, 7.5)]
    result = pipe({"text": TEXT, "audio": audio}, segment=segments)
    assert [(u["start"], u["end"]) for u in result["utterances"]] == [(0.5, 2.0), (2.0, 4.25), (6.0, 7.5)]
    for utterance, (start, end) in zip(result["utterances"], segments):
        alone = pipe({"text": TEXT, "audio": audio[round(start * RATE): round(end * RATE)]})
        np.testing.assert_allclose(flat(utterance), flat(alone), atol=ATOL)


@pytest.mark.parametrize(("segments", "message"), [
    ([(0.0, 1.0), (2.0, 3.0), (4.0, 4.5), (4.0, 3.5)], "segments[3]=(4.0, 3.5): ends before it starts."),
    ([(1.0, 2.0), (0.0, 0.5)], "segments[1]=(0.0, 0.5): starts before segments[0]=(1.0, 2.0); segments must be in "
                               "time order."),
    ([(0.0, 2.0), (1.5, 3.0)], "segments[1]=(1.5, 3.0): overlaps segments[0]=(0.0, 2.0), which ends at 2.0 s."),
    ([(-0.5, 1.0)], "segments[0]=(-0.5, 1.0): starts before the recording (at a negative time)."),
    ([(1.0, 1.01)], "segments[0]=(1.0, 1.01): is 10 ms long; the speech encoder needs at least 25 ms."),
    ([(0.0, 6.0)], "segments[0]=(0.0, 6.0): is 6 s long, longer than the processor's max_audio_seconds=5: the model "
                   "never heard longer clips (it would be cropped). Split it."),
    ([(0.0, 1.0, 2.0)], "segments[0]=(0.0, 1.0, 2.0): must be a (start, end) pair of seconds."),
    ([(0.0, float("nan"))], "segments[0]=(0.0, nan): start and end must be finite numbers of seconds."),
    ([], "segments is empty: give at least one (start, end) pair of seconds."),
    ("speech", "segment='speech' is not supported; expected None, 'utterances' or a list of (start, end) pairs of "
               "seconds."),
    (3.0, "segments must be a list of (start, end) pairs of seconds; got float."),
])
def test_bad_segments_are_named(pipe, conversation, segments, message):
    audio, _ = conversation
    with pytest.raises(ValueError) as caught:
        pipe({"text": TEXT, "audio": audio}, segment=segments)
    assert str(caught.value) == message


def test_segments_beyond_the_recording_name_the_input(pipe, conversation):
    audio, _ = conversation
    short = {"text": TEXT, "audio": audio[: 3 * RATE]}
    with pytest.raises(InputError) as caught:
        pipe([{"text": TEXT, "audio": audio}, short], segment=[(0.0, 2.0), (2.5, 4.0)])
    assert str(caught.value) == ("inputs[1]['audio'] is 3 s long, and segments[1]=(2.5, 4.0) ends after it. Give "
                                 "segments within the recording.")
    answers = pipe([{"text": TEXT, "audio": audio}, short], segment=[(0.0, 2.0), (2.5, 4.0)], errors="return")
    assert len(answers[0]["utterances"]) == 2
    assert (answers[1]["error"]["field"], answers[1]["error"]["code"]) == ("audio", "too_short")
    with pytest.raises(ValueError, match=r"^segments\[0\]=\(0.0, 2.0\): ends after the recording, which is 1 s long.$"):
        check_segments([(0.0, 2.0)], min_samples=400, num_samples=RATE)


def test_silence_gives_an_empty_timeline_with_a_note(pipe):
    rng = np.random.default_rng(3)
    silence = (0.001 * rng.standard_normal(2 * RATE)).astype(np.float32)
    result = pipe({"text": TEXT, "audio": silence}, segment="utterances")
    assert result == {"emotions": [], "labels": [], "arousal": None, "valence": None, "transcript": TEXT,
                      "transcript_source": "given", "utterances": [], "segmentation": "energy",
                      "note": NO_SPEECH_NOTE}
    clip = synthesize_utterance("happy", 1.5, seed=4)[1]
    silent_first = pipe([{"text": TEXT, "audio": silence}, {"text": TEXT, "audio": clip}], segment="utterances",
                        batch_size=2)
    assert silent_first[0] == result and len(silent_first[1]["utterances"]) == 1


def test_segment_and_chunk_length_s_do_not_mix(pipe, conversation):
    audio, _ = conversation
    with pytest.raises(ValueError, match="^segment and chunk_length_s cannot be used together"):
        pipe({"text": TEXT, "audio": audio}, segment="utterances", chunk_length_s=5)


def test_a_text_only_model_cannot_segment(tiny_model_factory, tiny_processor):
    reader = pipeline("emotion-multimodal", model=tiny_model_factory("text"), processor=tiny_processor, device="cpu")
    with pytest.raises(ValueError, match=r"^segment cuts recordings at their utterances, but this model "
                                         r"\(fusion='text'\) reads no audio."):
        reader({"text": TEXT}, segment="utterances")


# ---------------------------------------------------------------- cut at a recogniser's timestamps


def test_short_timestamped_segments_join_the_nearer_neighbour():
    audio = np.zeros(6 * RATE, dtype=np.float32)
    chunks = [(0.0, 2.0, "하나"), (2.1, 2.3, "둘"), (3.0, 4.0, "셋"), (4.0, 4.0, "넷"), (5.0, None, "다섯")]
    assert timestamp_segments(audio, chunks) == [
        (0, 36800, "하나 둘"), (48000, 64000, "셋 넷"), (80000, 96000, "다섯")]


def test_a_short_segment_with_no_neighbour_that_fits_stays_alone_widened_to_the_shortest_clip():
    audio = np.zeros(10 * RATE, dtype=np.float32)
    chunks = [(0.0, 4.0, "하나"), (4.5, 4.51, "둘"), (5.0, 9.0, "셋")]
    assert timestamp_segments(audio, chunks, max_utterance_seconds=4.2, min_samples=400) == [
        (0, 64000, "하나"), (72000, 72400, "둘"), (80000, 144000, "셋")]


def test_an_over_long_utterance_is_split_between_its_segments_never_inside_one():
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(12 * RATE)).astype(np.float32)
    audio[int(6.0 * RATE): int(6.2 * RATE)] = 0.0  # a quiet point inside the first segment: not a cut
    audio[int(6.9 * RATE): int(7.1 * RATE)] *= 0.01  # the quiet boundary between the second and third segments
    chunks = [(0.0, 6.5, "가"), (6.5, 7.0, "나"), (7.0, 7.3, "다"), (7.3, 12.0, "라")]
    parts = timestamp_segments(audio, chunks, max_utterance_seconds=8.0)
    assert parts == [(0, 112000, "가 나"), (112000, 116800, "다"), (116800, 192000, "라")] or parts == [
        (0, 104000, "가"), (104000, 116800, "나 다"), (116800, 192000, "라")]
    bounds = {round(start / RATE, 2) for start, _, _ in parts} | {round(end / RATE, 2) for _, end, _ in parts}
    assert bounds <= {0.0, 6.5, 7.0, 7.3, 12.0}  # only at Whisper's own boundaries


def test_one_over_long_segment_is_split_at_its_quietest_frame_and_both_parts_keep_its_text():
    rng = np.random.default_rng(1)
    audio = (0.3 * rng.standard_normal(9 * RATE)).astype(np.float32)
    audio[int(3.0 * RATE): int(3.1 * RATE)] = 0.0
    parts = timestamp_segments(audio, [(0.0, 9.0, "아주 긴 문장")], max_utterance_seconds=5.0)
    assert [text for _, _, text in parts] == ["아주 긴 문장"] * len(parts) and len(parts) >= 2
    assert parts[0][0] == 0 and parts[-1][1] == 9 * RATE
    assert all(end - start <= 5 * RATE for start, end, _ in parts)
    assert parts[0][1] == 48000  # the silent 10 ms frames at 3.0 s


class FakeWhisper(AutomaticSpeechRecognitionPipeline):
    """A Whisper pipeline's answers with timestamps, without a model: counts its calls."""

    def __init__(self, chunks):  # noqa: D107 - no Pipeline.__init__: no model
        self.chunks, self.calls = chunks, []
        self.type, self.task = "seq2seq_whisper", "automatic-speech-recognition"
        self.model = SimpleNamespace(name_or_path="fake-whisper")
        self.feature_extractor = SimpleNamespace(sampling_rate=RATE)

    def __call__(self, inputs, **kwargs):
        self.calls.append((inputs["raw"].shape[0], kwargs))
        chunks = [{"timestamp": (start, end), "text": f" {text}"} for start, end, text in self.chunks]
        return {"text": "".join(chunk["text"] for chunk in chunks), "chunks": chunks}


def test_whisper_timestamps_cut_the_recording_and_give_each_utterance_its_text(tiny_model_factory, tiny_processor,
                                                                               conversation):
    audio, _ = conversation
    whisper = FakeWhisper([(0.4, 2.1, "첫 문장"), (2.1, 2.3, "네"), (3.9, 4.5, "둘째 문장이에요"),
                           (5.8, 10.5, "마지막")])
    listener = pipeline("emotion-multimodal", model=tiny_model_factory("cat", seed=3), processor=tiny_processor,
                        device="cpu", asr_model=whisper)
    result = listener({"audio": audio}, segment="utterances")
    assert len(whisper.calls) == 1 and whisper.calls[0][0] == audio.shape[0]  # once, on the whole recording
    assert whisper.calls[0][1]["return_timestamps"] is True
    assert result["segmentation"] == "asr_timestamps" and result["transcript_source"] == "asr"
    expected = [(0.4, 2.3, "첫 문장 네"), (3.9, 4.5, "둘째 문장이에요"), (5.8, 10.5, "마지막")]
    assert [(u["start"], u["end"], u["transcript"]) for u in result["utterances"]] == [
        (start, round(end, 4), text) for start, end, text in expected]
    for utterance, (start, end, text) in zip(result["utterances"], expected):
        assert utterance["transcript_source"] == "asr"
        alone = listener({"text": text, "audio": audio[round(start * RATE): round(end * RATE)]})
        np.testing.assert_allclose(flat(utterance), flat(alone), atol=ATOL)
    with_text = listener({"text": TEXT, "audio": audio}, segment="utterances")
    assert with_text["segmentation"] == "energy" and len(whisper.calls) == 1  # a given text is never transcribed


def test_whisper_hearing_nothing_gives_an_empty_timeline(tiny_model_factory, tiny_processor):
    rng = np.random.default_rng(3)
    silence = (0.001 * rng.standard_normal(2 * RATE)).astype(np.float32)
    listener = pipeline("emotion-multimodal", model=tiny_model_factory("cat", seed=3), processor=tiny_processor,
                        device="cpu", asr_model=FakeWhisper([]))
    result = listener({"audio": silence}, segment="utterances")
    assert result["utterances"] == [] and result["note"] == NO_SPEECH_NOTE
    assert result["segmentation"] == "asr_timestamps"
