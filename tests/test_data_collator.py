"""KemdyCollator: reads any wav (rate, channels), crops, pads dynamically, builds the targets, and feeds the model."""

import numpy as np
import pytest
import soundfile as sf
import torch

from kemd_emotion import EMOTIONS
from kemd_emotion.data import KemdyCollator, load_kemdy, multi_hot, write_sample_corpus
from kemd_emotion.processing_klue_wav2vec2 import load_audio


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("collator")
    write_sample_corpus(root / "KEMDy20", "kemdy20", size="tiny", seed=2)
    return load_kemdy(root / "KEMDy20", cache_dir=root / "cache")


def _rows(dataset, predicate=lambda row: True, limit=4):
    return [row for row in dataset if predicate(row)][:limit]


def test_batch_keys_shapes_and_targets(dataset, tiny_processor):
    rows = _rows(dataset)
    batch = KemdyCollator(tiny_processor)(rows)
    b = len(rows)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "input_values", "audio_attention_mask",
                          "labels", "regression_labels"}
    assert batch["labels"].shape == (b, len(EMOTIONS)) and batch["labels"].dtype == torch.float32
    for row, labels in zip(rows, batch["labels"]):
        assert [EMOTIONS[i] for i in torch.nonzero(labels).flatten()] == sorted(row["emotion"], key=EMOTIONS.index)
    expected = torch.tensor([[row["arousal"], row["valence"]] for row in rows])
    assert torch.equal(batch["regression_labels"], expected)  # arousal first, then valence, 1-5 scale
    assert batch["input_ids"].shape[0] == batch["input_values"].shape[0] == b


def test_any_rate_and_channel_count_is_read_at_16k_and_padded_dynamically(dataset, tiny_processor):
    odd = _rows(dataset, lambda r: (sf.info(r["audio"]).samplerate, sf.info(r["audio"]).channels) != (16_000, 1))
    assert {(sf.info(r["audio"]).samplerate, sf.info(r["audio"]).channels) for r in odd} >= {(44_100, 1), (16_000, 2)}
    batch = KemdyCollator(tiny_processor)(odd)
    lengths = [len(load_audio(r["audio"])) for r in odd]
    for row, length in zip(odd, lengths):
        assert length == pytest.approx(row["duration"] * 16_000, abs=2)
    assert batch["input_values"].shape[1] == max(lengths)  # padded to the longest clip of the batch, no further
    assert batch["audio_attention_mask"].sum(dim=1).tolist() == lengths


def test_audio_is_cropped_to_the_limit(dataset, tiny_processor):
    rows = _rows(dataset, lambda r: r["duration"] > 0.5)
    batch = KemdyCollator(tiny_processor, max_audio_seconds=0.3)(rows)
    assert batch["input_values"].shape[1] == 4_800
    assert KemdyCollator(tiny_processor).crop_samples == round(tiny_processor.max_audio_seconds * 16_000)


def test_without_labels_arrays_and_empty_text(dataset, tiny_processor):
    rows = [dict(row) for row in _rows(dataset, limit=2)]
    rows[0]["text"] = ""  # a transcript of markers only, e.g. a laugh
    rows[1]["audio"] = load_audio(rows[1]["audio"])
    batch = KemdyCollator(tiny_processor, with_labels=False)(rows)
    assert "labels" not in batch and "regression_labels" not in batch
    assert tiny_processor.tokenizer.unk_token_id in batch["input_ids"][0].tolist()


def test_bad_rows_are_explained(dataset, tiny_processor):
    collator = KemdyCollator(tiny_processor)
    row = dict(dataset[0])
    with pytest.raises(ValueError, match="not one of"):
        collator([{**row, "emotion": ["bored"]}])
    with pytest.raises(ValueError, match="has no 'audio' column"):
        collator([{k: v for k, v in row.items() if k != "audio"}])
    with pytest.raises(ValueError, match="empty batch"):
        collator([])
    with pytest.raises(ValueError, match="could not be read"):
        collator([{**row, "audio": row["audio"] + ".missing"}])
    assert multi_hot("neutral;happy").tolist() == multi_hot(["happy", "neutral"]).tolist()


@pytest.mark.parametrize("fusion", ["cat", "add"])
def test_collator_output_feeds_the_model(dataset, tiny_processor, tiny_model_factory, fusion):
    model = tiny_model_factory(fusion=fusion)
    batch = KemdyCollator(tiny_processor)(_rows(dataset, limit=3))
    model.train()
    output = model(**batch)
    assert output.logits.shape == (3, len(EMOTIONS)) and output.regression.shape == (3, 2)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert any(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_unusable_audio_is_skipped_with_its_path_not_a_crash(tiny_processor, tmp_path, rng):
    import soundfile

    from kemd_emotion.data import KemdyCollator

    good = tmp_path / "good.wav"
    soundfile.write(good, (0.1 * rng.standard_normal(8000)).astype("float32"), 16000)
    truncated = tmp_path / "truncated.wav"  # a valid header promising more data than the file holds
    truncated.write_bytes(good.read_bytes()[:44] + b"\x00\x01" * 3)
    too_short = tmp_path / "short.wav"
    soundfile.write(too_short, np.zeros(100, "float32"), 16000)
    rows = [
        {"text": "좋아요", "audio": str(good), "emotion": ["happy"], "arousal": 4.0, "valence": 4.5},
        {"text": "싫어요", "audio": str(truncated), "emotion": ["angry"], "arousal": 4.0, "valence": 1.5},
        {"text": "음", "audio": str(too_short), "emotion": ["neutral"], "arousal": 3.0, "valence": 3.0},
        {"text": "슬퍼요", "audio": str(tmp_path / "missing.wav"), "emotion": ["sad"], "arousal": 2.0, "valence": 2.0},
    ]
    collator = KemdyCollator(tiny_processor)
    batch = collator(rows)
    assert batch["input_values"].shape[0] == 1 and batch["labels"].argmax(-1).tolist() == [3]
    assert batch["regression_labels"].tolist() == [[4.0, 4.5]]
    assert set(collator.skipped) >= {str(too_short), str(tmp_path / "missing.wav")}
    assert "at least 400 (25 ms)" in collator.skipped[str(too_short)]
    with pytest.raises(ValueError, match="every row of this batch has unusable audio"):
        collator(rows[2:])
    with pytest.raises(ValueError, match=r"could not be read"):
        KemdyCollator(tiny_processor, skip_bad_audio=False)(rows[3:])


def test_long_files_are_read_only_up_to_the_crop(tiny_processor, tmp_path):
    import soundfile

    from kemd_emotion import load_audio

    path = tmp_path / "long.wav"
    t = np.arange(44100 * 12) / 44100
    soundfile.write(path, np.sin(2 * np.pi * 220 * t).astype("float32"), 44100)
    cropped = load_audio(path, max_seconds=5.0)
    whole = load_audio(path)
    assert cropped.shape == (80000,) and whole.shape == (12 * 16000,)
    np.testing.assert_allclose(cropped[:70000], whole[:70000], atol=1e-3)
