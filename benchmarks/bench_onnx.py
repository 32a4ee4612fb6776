"""Q8: onnxruntime (float32, int8) vs PyTorch eager on the CPU, full-size model, 5 s clips; and what int8 costs in
agreement and in the scores of a trained model.

    python benchmarks/bench_onnx.py [--representations conv,hidden --rounds 7 --run-dir RUN]

Speed: klue/bert-base + wav2vec2-base shapes (random init), fusion "cat", 24-token transcripts and 5 s clips, batch 1
and batch 8; the three arms take turns within each round (median time per clip). Sizes of the weights, and the
largest |int8 - float32| logit over the timed batches.

Scores (with --run-dir, a finished `examples/run_emotion.py --fusion cat` run with the default `--final_model
last_fold`): its `cat/final` model is the last fold's, so its test fold is scored with PyTorch, ONNX float32 and ONNX
int8 on the same inputs (the saved processor over the corpus rows of that fold), and CCC avg / macro F1 compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kemd_emotion import KlueWav2Vec2ForEmotion, KlueWav2Vec2Processor, OnnxKlueWav2Vec2ForEmotion
from kemd_emotion.hub import save_checkpoint
from kemd_emotion.metrics import compute_emotion_metrics
from kemd_emotion.onnx import export_onnx
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_processor

from _common import describe_machine, fake_batch, full_size_model

ARMS = ("pytorch", "onnx_fp32", "onnx_int8")


def megabytes(folder: Path, pattern: str) -> float:
    return sum(path.stat().st_size for path in folder.glob(pattern)) / 2**20


def export_both(model, processor, root: Path) -> dict[str, Path]:
    """Checkpoint, float32 and int8 ONNX folders of `model` under `root` (export times printed)."""
    checkpoint = save_checkpoint(model, processor, root / "checkpoint")
    folders = {"checkpoint": checkpoint}
    for arm, quantize in (("onnx_fp32", None), ("onnx_int8", "int8")):
        start = time.perf_counter()
        folders[arm] = export_onnx(checkpoint, root / arm, quantize=quantize)
        print(f"  export {arm}: {time.perf_counter() - start:.0f} s", flush=True)
    return folders


def time_arms(runners: dict, batches: dict[int, dict], rounds: int) -> dict[tuple[str, int], float]:
    """Median seconds per clip of each arm on each batch size; arms alternate within a round, one warm-up call."""
    times = {}
    for size, batch in batches.items():
        for run in runners.values():
            run(**batch)  # warm-up: first-call allocations, onnxruntime's kernel selection
        samples = {arm: [] for arm in runners}
        for _ in range(rounds):
            for arm, run in runners.items():
                start = time.perf_counter()
                run(**batch)
                samples[arm].append((time.perf_counter() - start) / size)
        for arm in runners:
            times[arm, size] = statistics.median(samples[arm])
    return times


def speed(representation: str, rounds: int, root: Path) -> dict:
    print(f"[{representation}] building and exporting the full-size model", flush=True)
    model = full_size_model(fusion="cat", audio_representation=representation).eval()
    folders = export_both(model, tiny_processor(DEFAULT_TEXTS, vocab_size=300), root / representation)
    sessions = {arm: OnnxKlueWav2Vec2ForEmotion.from_pretrained(folders[arm]) for arm in ("onnx_fp32", "onnx_int8")}

    def pytorch(**batch):
        with torch.inference_mode():
            return model(**batch)

    runners = {"pytorch": pytorch, **sessions}
    batches = {size: fake_batch(size, 5.0, tokens=24, seed=size) for size in (1, 8)}
    times = time_arms(runners, batches, rounds)
    outputs = {arm: run(**batches[8]).logits.numpy() for arm, run in runners.items()}
    threads = sessions["onnx_fp32"].session.get_session_options().intra_op_num_threads
    return {
        "times": {f"{arm}/batch{size}": seconds for (arm, size), seconds in times.items()},
        "sizes_mb": {"checkpoint": megabytes(folders["checkpoint"], "*.safetensors"),
                     "onnx_fp32": megabytes(folders["onnx_fp32"], "model.onnx*"),
                     "onnx_int8": megabytes(folders["onnx_int8"], "model.onnx*")},
        "max_abs_logit": {"fp32_vs_pytorch": float(np.abs(outputs["onnx_fp32"] - outputs["pytorch"]).max()),
                          "int8_vs_fp32": float(np.abs(outputs["onnx_int8"] - outputs["onnx_fp32"]).max()),
                          "logit_spread": float(outputs["pytorch"].std())},
        "threads": {"torch": torch.get_num_threads(), "onnxruntime_intra_op": threads},
    }


def trained_scores(run_dir: Path, root: Path) -> dict:
    """CCC avg and macro F1 of the run's cat/final model (the last fold's) on its test fold: PyTorch, fp32, int8."""
    from kemd_emotion.data import load_kemdy
    from kemd_emotion.data.collator import KemdyCollator

    final = run_dir / "cat" / "final"
    info = json.loads((final / "final_info.json").read_text())
    predictions = np.load(run_dir / "cat" / f"fold{info['fold']}" / "predictions.npz")
    run_args = json.loads((run_dir / "run_args.json").read_text())
    corpus = load_kemdy(run_args["data_dir_used"], name=run_args["split"]["dataset_name"],
                        annotations=run_args["split"]["annotations"])
    rows = {row["segment_id"]: row for row in corpus}
    test = [rows[str(segment)] for segment in predictions["segment_id"]]
    # The training's own batching: crop to max_audio_seconds, an empty transcript read as the unknown token.
    collate = KemdyCollator(KlueWav2Vec2Processor.from_pretrained(final), with_labels=False)
    folders = {"onnx_fp32": export_onnx(final, root / "trained_fp32"),
               "onnx_int8": export_onnx(final, root / "trained_int8", quantize="int8")}
    models = {"pytorch": KlueWav2Vec2ForEmotion.from_pretrained(final).eval(),
              **{arm: OnnxKlueWav2Vec2ForEmotion.from_pretrained(folder) for arm, folder in folders.items()}}
    outputs = {arm: {"logits": [], "regression": []} for arm in models}
    for start in range(0, len(test), 8):
        batch = collate(test[start : start + 8])
        for arm, model in models.items():
            with torch.inference_mode():
                out = model(**batch)
            outputs[arm]["logits"].append(out.logits.numpy())
            outputs[arm]["regression"].append(out.regression.numpy())
    scores = {}
    for arm, found in outputs.items():
        logits, regression = np.concatenate(found["logits"]), np.concatenate(found["regression"])
        metrics = compute_emotion_metrics(logits, predictions["labels"], regression, predictions["regression_labels"])
        scores[arm] = {"ccc_avg": metrics["ccc_avg"], "f1_macro": metrics["f1_macro"], "f1_micro": metrics["f1_micro"],
                       "max_abs_logit_vs_pytorch": float(np.abs(logits - np.concatenate(outputs["pytorch"]["logits"])).max())}
    scores["run_predictions"] = {key: compute_emotion_metrics(predictions["logits"], predictions["labels"],
                                                              predictions["regression"],
                                                              predictions["regression_labels"])[key]
                                 for key in ("ccc_avg", "f1_macro", "f1_micro")}
    scores["rows"], scores["fold"] = len(test), info["fold"]
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--representations", default="conv,hidden")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--run-dir", type=Path, default=None, help="a finished run_emotion.py --fusion cat run")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    print(describe_machine(), flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for representation in filter(None, args.representations.split(",")):
            results[representation] = speed(representation, args.rounds, Path(tmp))
            found = results[representation]
            for size in (1, 8):
                t = {arm: found["times"][f"{arm}/batch{size}"] for arm in ARMS}
                print(f"[{representation}] batch {size}: " + ", ".join(f"{arm} {1000 * s:.0f} ms/clip" for arm, s in t.items())
                      + f" | fp32/pytorch {t['pytorch'] / t['onnx_fp32']:.2f}x faster, int8/fp32 "
                      f"{t['onnx_fp32'] / t['onnx_int8']:.2f}x, int8/pytorch {t['pytorch'] / t['onnx_int8']:.2f}x",
                      flush=True)
            print(f"[{representation}] sizes MB {found['sizes_mb']}; max |logit| differences {found['max_abs_logit']}; "
                  f"threads {found['threads']}", flush=True)
        if args.run_dir is not None:
            results["trained"] = trained_scores(args.run_dir, Path(tmp))
            print(f"[trained] {json.dumps(results['trained'])}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
