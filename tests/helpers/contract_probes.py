"""What the contract tests measure on a model, whichever way it was built.

tests/test_contracts.py calls these functions on models built in-process (from a config, from pretrained encoder
folders, after save_pretrained -> from_pretrained) and runs this file as a script in a fresh interpreter where
kemd_emotion cannot be imported (after helpers.fresh_process.BLOCK_KEMD_EMOTION), to measure the same things on
checkpoints loaded through `trust_remote_code`. So it imports only numpy, torch and transformers. Every probe returns
`{name: np.ndarray}`, what `np.savez` stores. As a script: `contract_probes.py PLAN.json OUT.npz`, where PLAN is
`{"inputs": npz of clips, "texts": [...], "jobs": [{"name", "checkpoint", "probes", ...}]}`.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np

OUTPUT_FIELDS = ("logits", "regression", "text_embeds", "audio_embeds")
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
AUDIO_INPUTS = ("input_values", "input_features", "audio_attention_mask")


def used_inputs(model, inputs) -> dict:
    """The model inputs its fusion reads (a text-only model is exported without audio inputs, and so on)."""
    fusion = model.config.fusion
    names = (TEXT_INPUTS if fusion != "speech" else ()) + (AUDIO_INPUTS if fusion != "text" else ())
    return {name: inputs[name] for name in names if name in inputs}


def forward_outputs(model, inputs, prefix: str = "") -> dict[str, np.ndarray]:
    """The model's outputs (float32 numpy) on `inputs`, without gradients."""
    import torch

    with torch.no_grad():
        out = model(**inputs)
    return {prefix + name: to_numpy(out[name]) for name in OUTPUT_FIELDS if out.get(name) is not None}


def to_numpy(tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def batch_and_alone(model, processor, texts, clips, **processor_kwargs) -> dict[str, np.ndarray]:
    """Outputs on the ragged batch (`batch/...`) and on each item alone, stacked (`alone/...`), plus the batch's
    model inputs (`inputs/...`)."""
    batch = processor(text=list(texts), audio=list(clips), sampling_rate=16000, **processor_kwargs)
    result = forward_outputs(model, batch, "batch/")
    alone = [forward_outputs(model, processor(text=t, audio=c, sampling_rate=16000, **processor_kwargs))
             for t, c in zip(texts, clips)]
    for name in alone[0]:
        result[f"alone/{name}"] = np.concatenate([outputs[name] for outputs in alone])
    result.update({f"inputs/{name}": value.numpy() for name, value in batch.items()})
    return result


def parameter_report(model) -> dict[str, np.ndarray]:
    """Which parameters train, their dtypes, and `num_parameters` (all / trainable)."""
    names = [name for name, _ in model.named_parameters()]
    return {
        "names": np.array(names),
        "requires_grad": np.array([p.requires_grad for p in model.parameters()]),
        "dtypes": np.array([str(p.dtype) for p in model.parameters()]),
        "num_parameters": np.array([model.num_parameters(), model.num_parameters(only_trainable=True)]),
    }


def attention_report(model) -> dict[str, np.ndarray]:
    """The attention implementation each encoder's config holds (what its layers dispatch on)."""
    found = {}
    for role in ("text_model", "audio_model"):
        encoder = getattr(model, role)
        if encoder is not None:
            found[f"attention/{role}"] = np.array(str(encoder.config._attn_implementation))
    return found


def checkpointing_gradients(model, inputs, labels, regression_labels,
                            modes=("none", "non_reentrant", "reentrant")) -> dict[str, np.ndarray]:
    """Gradients of one training step without activation checkpointing (`none/...`), with it non-reentrant
    (`non_reentrant/...`) and reentrant (`reentrant/...`), from the same random state."""
    import torch
    from transformers import set_seed

    result = {}
    model.train()
    for mode in modes:
        if mode == "none":
            model.activation_checkpointing_disable()
        else:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": mode == "reentrant"})
        model.zero_grad(set_to_none=True)
        set_seed(0)  # dropout and SpecAugment (numpy) draw the same masks in every mode
        out = model(**inputs, labels=torch.as_tensor(labels), regression_labels=torch.as_tensor(regression_labels))
        out.loss.backward()
        for name, parameter in model.named_parameters():
            if parameter.grad is not None:
                result[f"{mode}/{name}"] = to_numpy(parameter.grad)
    model.activation_checkpointing_disable()
    model.zero_grad(set_to_none=True)
    model.eval()
    return result


def export_outputs(model, inputs, other_inputs) -> dict[str, np.ndarray]:
    """Outputs of the model captured by `torch.export` with static shapes (`export_static/`), with dynamic batch
    and time (`export_dynamic/`, and on `other_inputs` of another batch size and length: `export_dynamic_other/`),
    and by `torch.jit.trace` (`trace/`); `eager/` and `eager_other/` are the model's own. `tracer_warnings` lists
    the TracerWarnings raised from this package's modeling file (a data-dependent branch would raise one)."""
    import torch

    inputs, other_inputs = used_inputs(model, inputs), used_inputs(model, other_inputs)
    result = {**forward_outputs(model, inputs, "eager/"), **forward_outputs(model, other_inputs, "eager_other/")}
    with torch.no_grad():
        static = torch.export.export(model, (), kwargs=inputs, strict=False).module()
        result.update(select(static(**inputs), "export_static/"))
        batch, tokens, samples = (torch.export.Dim.DYNAMIC,) * 3
        shapes = {
            "input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens},
            "token_type_ids": {0: batch, 1: tokens},
            "input_values": {0: batch, 1: samples}, "audio_attention_mask": {0: batch, 1: samples},
            "input_features": {0: batch, 2: samples},  # Whisper: (batch, mel bins, frames); its mask per frame
        }
        dynamic = torch.export.export(
            model, (), kwargs=inputs, dynamic_shapes={name: shapes[name] for name in inputs}, strict=False
        ).module()
        result.update(select(dynamic(**inputs), "export_dynamic/"))
        result.update(select(dynamic(**other_inputs), "export_dynamic_other/"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(model, example_kwarg_inputs=inputs, strict=False)
        result.update(select(traced(**inputs), "trace/"))
    ours = [f"{w.filename}:{w.lineno}" for w in caught
            if issubclass(w.category, torch.jit.TracerWarning) and "klue_wav2vec2" in w.filename]
    result["tracer_warnings"] = np.array(ours, dtype=str)
    return result


def select(outputs, prefix: str) -> dict[str, np.ndarray]:
    """`logits` and `regression` of a captured model's output (a dict, or a ModelOutput)."""
    return {prefix + name: to_numpy(outputs[name]) for name in ("logits", "regression")}


def pipeline_outputs(classifier, texts, clips) -> dict[str, np.ndarray]:
    """`pipeline/scores` `(n, num_labels)` in label-id order and `pipeline/regression` `(n, 2)`, for a list call with
    `batch_size=2` (`pipeline/...`) and one call per input (`pipeline_single/...`)."""
    label_ids = classifier.model.config.label2id
    result = {}
    items = [{"text": text, "audio": clip} for text, clip in zip(texts, clips)]
    answers = {"pipeline": classifier(items, batch_size=2), "pipeline_single": [classifier(item) for item in items]}
    for prefix, outputs in answers.items():
        scores = np.zeros((len(outputs), len(label_ids)), dtype=np.float32)
        for row, output in enumerate(outputs):
            for emotion in output["emotions"]:
                scores[row, label_ids[emotion["label"]]] = emotion["score"]
        result[f"{prefix}/scores"] = scores
        result[f"{prefix}/regression"] = np.array([[o["arousal"], o["valence"]] for o in outputs], dtype=np.float32)
    return result


def rare_emotion_report(model, classifier, texts, clips, labels) -> dict[str, np.ndarray]:
    """The config's `emotion_pos_weight` and `decision_thresholds`, the emotion loss on `labels` with the batch's
    logits, and the pipeline's `labels` as a multi-hot `(n, num_labels)` matrix in label-id order."""
    import torch

    batch = classifier.processor(text=list(texts), audio=list(clips), sampling_rate=16000)
    with torch.no_grad():
        out = model(**batch, labels=torch.as_tensor(labels, dtype=torch.float32))
    label_ids = model.config.label2id
    decided = np.zeros((len(texts), len(label_ids)), dtype=bool)
    for row, output in enumerate(classifier([{"text": t, "audio": c} for t, c in zip(texts, clips)])):
        for name in output["labels"]:
            decided[row, label_ids[name]] = True
    return {"rare/emotion_pos_weight": np.asarray(model.config.emotion_pos_weight, dtype=np.float64),
            "rare/decision_thresholds": np.asarray(model.config.decision_thresholds, dtype=np.float64),
            "rare/logits": to_numpy(out.logits), "rare/emotion_loss": to_numpy(out.emotion_loss),
            "rare/pipeline_labels": decided}


# --------------------------------------------------------------------------------------------- the fresh process
def run_plan(plan: dict) -> dict[str, np.ndarray]:
    """Load each job's checkpoint with `trust_remote_code=True` and run its probes; keys are `{job}/{probe key}`."""
    import torch
    from transformers import AutoModel, AutoProcessor, pipeline

    torch.set_num_threads(2)
    data = np.load(plan["inputs"])
    texts, clips = plan["texts"], [data[f"clip{i}"] for i in range(len(plan["texts"]))]
    results = {}
    for job in plan["jobs"]:
        directory, name = job["checkpoint"], job["name"]
        model = AutoModel.from_pretrained(directory, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained(directory, trust_remote_code=True)
        found = {"module": np.array(type(model).__module__), **attention_report(model), **parameter_report(model)}
        for probe in job["probes"]:
            if probe == "batch":
                found.update(batch_and_alone(model, processor, texts, clips))
            elif probe == "batch_max_length":
                found.update(prefixed(batch_and_alone(model, processor, texts, clips, padding="max_length"), "max_length/"))
            elif probe == "attention":
                batch = processor(text=texts, audio=clips, sampling_rate=16000)
                for implementation in ("eager", "sdpa"):
                    loaded = AutoModel.from_pretrained(directory, trust_remote_code=True, attn_implementation=implementation)
                    found.update(forward_outputs(loaded.eval(), batch, f"{implementation}/"))
                    found.update(prefixed(attention_report(loaded), f"{implementation}/"))
            elif probe == "bf16":
                loaded = AutoModel.from_pretrained(directory, trust_remote_code=True, dtype=torch.bfloat16).eval()
                found.update(forward_outputs(loaded, processor(text=texts, audio=clips, sampling_rate=16000), "bf16/"))
                found.update(prefixed(parameter_report(loaded), "bf16/"))
            elif probe == "checkpointing":
                batch = processor(text=texts, audio=clips, sampling_rate=16000)
                found.update(checkpointing_gradients(model, batch, job["labels"], job["regression_labels"]))
            elif probe == "export":
                batch = processor(text=texts, audio=clips, sampling_rate=16000)
                other = processor(text=texts[:2], audio=[clip[: len(clip) // 2] for clip in clips[:2]], sampling_rate=16000)
                found.update(export_outputs(model, batch, other))
            elif probe == "pipeline":
                classifier = pipeline("emotion-multimodal", model=directory, trust_remote_code=True, device="cpu")
                found.update(pipeline_outputs(classifier, texts, clips))
                found["pipeline/module"] = np.array(type(classifier).__module__)
            elif probe == "rare":
                classifier = pipeline("emotion-multimodal", model=directory, trust_remote_code=True, device="cpu")
                found.update(rare_emotion_report(classifier.model, classifier, texts, clips, job["labels"]))
            else:
                raise ValueError(f"unknown probe {probe!r}")
        results.update(prefixed(found, f"{name}/"))
    return results


def prefixed(values: dict, prefix: str) -> dict:
    return {prefix + key: value for key, value in values.items()}


def main(argv: list[str]) -> None:
    try:
        import kemd_emotion  # noqa: F401

        raise SystemExit("kemd_emotion should not be importable in this process: run with "
                         "helpers.fresh_process.BLOCK_KEMD_EMOTION")
    except ImportError:
        pass
    plan_path, out_path = argv
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    np.savez(out_path, **run_plan(plan))


if __name__ == "__main__":
    main(sys.argv[1:])
