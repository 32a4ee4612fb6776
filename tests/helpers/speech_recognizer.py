"""A fake speech recogniser for the transcription tests: a random-init CTC model that writes Korean letters.

The CLI, demo, handler and transcription tests give it to `pipeline("automatic-speech-recognition")` where a real
one (whisper-*, wav2vec2-*-korean) would be downloaded.
"""

from __future__ import annotations

from pathlib import Path

from transformers import Wav2Vec2FeatureExtractor

from kemd_emotion.small_encoders import tiny_audio_config

ASR_CHARACTERS = "화나요정말좋네"
"""The letters the tiny speech recogniser can write (all in `kemd_emotion.small_encoders.DEFAULT_TEXTS`, so the
tiny tokenizer knows them)."""


def tiny_speech_recognizer(
    save_dir: str | Path, speaks: str = "화나", seed: int = 0, sampling_rate: int = 16000
) -> Path:
    """Save a random-init `Wav2Vec2ForCTC` with a Korean character vocabulary and its processor to `save_dir`.

    `pipeline("automatic-speech-recognition", model=save_dir)` then writes, from any clip, a string of the letters
    in `speaks` (its output head is biased towards them; which one wins a frame depends on the audio, so different
    clips read differently). `speaks=""` gives a recogniser that never hears a word (every frame is blank).
    Its feature encoder has layer norm and an attention mask, like wav2vec2-large-lv60 models; it hears
    `sampling_rate` audio.
    """
    import json

    import torch
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC, Wav2Vec2Processor

    directory = Path(save_dir)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{char: 3 + i for i, char in enumerate(ASR_CHARACTERS)}}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(directory / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=sampling_rate, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(tiny_audio_config("layer", vocab_size=len(vocab), pad_token_id=0)).eval()
    with torch.no_grad():
        model.lm_head.bias.fill_(-10.0)
        for char in speaks:
            model.lm_head.bias[vocab[char]] = 5.0
        if not speaks:
            model.lm_head.bias[vocab["<pad>"]] = 50.0  # the CTC blank
    model.save_pretrained(directory)
    Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(directory)
    return directory
