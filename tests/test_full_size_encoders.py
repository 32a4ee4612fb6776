"""The paper's path at full size: examples/run_emotion.py over two saved "pretrained" encoders in the real shapes.

klue/bert-base's BertConfig (32000 embeddings) and wav2vec2-base's (the default Wav2Vec2Config), random weights,
saved with `save_pretrained` beside a tokenizer and a feature extractor with the real checkpoints' settings, exactly
what `--text_model klue/bert-base --audio_model facebook/wav2vec2-base` finds on disk. One training step on a handful
of rows; then the saved `final/` model, loaded through `trust_remote_code` in a fresh process where kemd_emotion
cannot be imported, must give the predictions the run evaluated. (Before the encoders kept their attention masks,
the run trained and evaluated without them and the reloaded model disagreed.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.contract_matrix import FULL_SIZE_AUDIO_ENCODERS, FULL_SIZE_TEXT_ENCODERS, save_encoder_folders
from helpers.fresh_process import BLOCK_KEMD_EMOTION

from kemd_emotion.data import load_kemdy, write_sample_corpus
from kemd_emotion.experiment.arguments import has_accelerator

REPO = Path(__file__).resolve().parents[1]


def run(command, cwd, env_extra=None, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.update(env_extra or {})
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_run_emotion_with_full_size_encoders_reloads_with_identical_outputs(tmp_path):
    corpus = tmp_path / "corpus"
    write_sample_corpus(corpus, name="kemdy20", size="tiny")
    rows = load_kemdy(corpus, cache_dir=str(tmp_path / "cache"))
    folders = save_encoder_folders(
        tmp_path / "encoders", texts=rows["text"], vocab_size=500,
        text_encoders=FULL_SIZE_TEXT_ENCODERS, audio_encoders=FULL_SIZE_AUDIO_ENCODERS,
    )
    output_dir = tmp_path / "run"
    command = [
        sys.executable, str(REPO / "examples" / "run_emotion.py"),
        "--text_model", str(folders["klue-bert-base"]), "--audio_model", str(folders["wav2vec2-base"]),
        "--sample_dir", str(corpus), "--sample_size", "tiny", "--output_dir", str(output_dir),
        "--fusion", "cat", "--audio_representation", "hidden", "--num_folds", "2", "--folds", "1",
        "--max_samples", "8", "--max_steps", "1", "--per_device_train_batch_size", "2",
        "--per_device_eval_batch_size", "4", "--save_strategy", "no", "--disable_tqdm", "true",
        *([] if not has_accelerator() else ["--use_cpu", "true"]),
    ]
    result = run(command, REPO, {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    final = output_dir / "cat" / "final"
    config = json.loads((final / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == 768 and config["text_config"]["vocab_size"] == 32000
    assert config["audio_config"]["conv_dim"] == [512] * 7 and config["audio_config"]["feat_extract_norm"] == "group"
    assert json.loads((output_dir / "cat" / "fold1" / "metrics.json").read_text())["global_step"] == 1

    predictions = np.load(output_dir / "cat" / "fold1" / "predictions.npz")
    by_id = {row["segment_id"]: row for row in rows}
    test_rows = [by_id[segment_id] for segment_id in predictions["segment_id"]]
    items = [{"text": row["text"].strip() or "[UNK]", "audio": row["audio"]} for row in test_rows]  # as the collator
    (tmp_path / "items.json").write_text(json.dumps(items, ensure_ascii=False))
    script = BLOCK_KEMD_EMOTION + f"""
import numpy as np
from transformers import pipeline
classifier = pipeline("emotion-multimodal", model={str(final)!r}, trust_remote_code=True, device="cpu")
assert type(classifier.model).__module__.startswith("transformers_modules"), type(classifier.model).__module__
items = json.load(open({str(tmp_path / "items.json")!r}, encoding="utf-8"))
label_ids = classifier.model.config.label2id
scores, regression = [], []
for output in classifier(items, batch_size=1):
    row = [0.0] * len(label_ids)
    for emotion in output["emotions"]:
        row[label_ids[emotion["label"]]] = emotion["score"]
    scores.append(row)
    regression.append([output["arousal"], output["valence"]])
np.savez({str(tmp_path / "reloaded.npz")!r}, scores=np.array(scores), regression=np.array(regression))
"""
    reloaded = run([sys.executable, "-c", script], tmp_path, {"PYTHONPATH": "", "HF_MODULES_CACHE": str(tmp_path / "modules")})
    assert reloaded.returncode == 0, reloaded.stderr[-5000:]
    got = np.load(tmp_path / "reloaded.npz")
    expected_scores = 1 / (1 + np.exp(-predictions["logits"].astype(np.float64)))
    np.testing.assert_allclose(got["scores"], expected_scores, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["regression"], predictions["regression"], atol=1e-4, rtol=0)
