"""One Whisper folder serves as both the speech encoder's source and the pipeline's speech-recognition model.

On real weights (`real_weights_dirs`: multilingual-e5-small, whisper-base): the model is built with
`from_text_audio_pretrained(e5, whisper)`, saved with its processor, and given the same whisper folder as
`asr_model=`. Its speech encoder holds exactly the encoder of `WhisperForConditionalGeneration.from_pretrained(whisper)`
(the decoder is not loaded), and Korean speech from espeak-ng (resampled to 16 kHz) is transcribed in Hangul.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from scipy.signal import resample_poly
from transformers import WhisperForConditionalGeneration, pipeline

from helpers.contract_matrix import processor_for_encoders
from helpers.korean_speech import HANGUL, SPOKEN, WHISPER_KOREAN, speak_korean
from kemd_emotion import KlueWav2Vec2ForEmotion

pytestmark = pytest.mark.realweights


@pytest.fixture(scope="module")
def korean_speech_16k(tmp_path_factory) -> dict:
    """espeak-ng's Korean voice saying `SPOKEN`, resampled from its 22.05 kHz to 16 kHz."""
    path = speak_korean(tmp_path_factory.mktemp("speech"))
    samples, rate = soundfile.read(str(path), dtype="float32")
    assert rate == 22050
    return {"array": resample_poly(samples, 320, 441).astype(np.float32), "sampling_rate": 16000}


@pytest.fixture(scope="module")
def checkpoint(real_weights_dirs, tmp_path_factory):
    torch.manual_seed(0)
    model = KlueWav2Vec2ForEmotion.from_text_audio_pretrained(
        str(real_weights_dirs.e5), str(real_weights_dirs.whisper), fusion="cat", audio_representation="hidden")
    directory = tmp_path_factory.mktemp("checkpoint") / "e5-whisper-cat"
    model.save_pretrained(directory)
    processor_for_encoders(real_weights_dirs.e5, real_weights_dirs.whisper).save_pretrained(directory)
    return directory


def test_the_speech_encoder_is_the_whisper_checkpoints_encoder(real_weights_dirs, checkpoint):
    ours = KlueWav2Vec2ForEmotion.from_pretrained(str(checkpoint)).audio_model.state_dict()
    theirs = WhisperForConditionalGeneration.from_pretrained(str(real_weights_dirs.whisper)).model.encoder.state_dict()
    assert set(ours) == set(theirs)
    differ = [name for name in theirs if not torch.equal(ours[name], theirs[name])]
    assert not differ, f"speech-encoder weights differ from whisper's encoder: {differ[:5]}"


def test_the_same_whisper_folder_transcribes_for_the_pipeline(real_weights_dirs, checkpoint, korean_speech_16k):
    classifier = pipeline("emotion-multimodal", model=str(checkpoint), device="cpu",
                          asr_model=str(real_weights_dirs.whisper), asr_kwargs=WHISPER_KOREAN)
    output = classifier({"audio": korean_speech_16k})
    assert output["transcript_source"] == "asr"
    text = output["transcript"]
    letters = [char for char in text if not char.isspace() and char not in ".,?!"]
    assert letters and sum(bool(HANGUL.match(char)) for char in letters) / len(letters) > 0.8, text
    assert len(set(HANGUL.findall(text)) & set(SPOKEN)) >= 5, f"{text!r} shares few syllables with {SPOKEN!r}"
    assert len(output["emotions"]) == 7 and np.isfinite([output["arousal"], output["valence"]]).all()
