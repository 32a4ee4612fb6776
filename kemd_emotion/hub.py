"""Self-contained checkpoints and sharing them on the Hugging Face Hub.

A checkpoint directory written here holds the weights, the config, the processor, the model card and this
package's model, processor and pipeline code, so that

```python
pipeline("emotion-multimodal", model=DIR_OR_REPO, trust_remote_code=True)
```

works where kemd_emotion is not installed (and without `trust_remote_code` where it is imported), and the
Inference Endpoints handler (`handler.py`, see `kemd_emotion.handler`) that serves it as an HTTP endpoint.

- `save_checkpoint(model, processor, save_directory, card=None)`: write such a directory.
- `add_pipeline_files(checkpoint_dir)`: complete a directory written by `save_pretrained` / the Trainer.
- `push_checkpoint(checkpoint_dir, repo_id, ...)`: upload a directory in one commit through `huggingface_hub`.
- `push_to_hub(model, processor, repo_id, card=None, ...)`: save to a temporary directory and push it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard

from .pipeline_emotion import ENDPOINT_HANDLER, add_pipeline_files

REMOTE_CODE_FILES = (
    "configuration_klue_wav2vec2.py",
    "modeling_klue_wav2vec2.py",
    "processing_klue_wav2vec2.py",
    "pipeline_emotion.py",
    "inputs_klue_wav2vec2.py",
    "transcription_klue_wav2vec2.py",
    "segmentation_klue_wav2vec2.py",
)
"""The code files a checkpoint must carry for `trust_remote_code=True`."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
"""Formats that may hold pickles (arbitrary code when loaded): never uploaded. Weights travel as safetensors, the
training arguments as training_args.json."""


def save_checkpoint(model, processor, save_directory: str | os.PathLike, card: ModelCard | str | None = None) -> Path:
    """Save `model`, `processor`, the remote code and, when given, `card` (as README.md) to `save_directory`.

    Args:
        model: a `KlueWav2Vec2ForEmotion`.
        processor: its `KlueWav2Vec2Processor`.
        save_directory: created if needed.
        card: a `huggingface_hub.ModelCard` or markdown text (see `kemd_emotion.experiment.model_card`).

    Returns:
        The directory, as a `Path`.
    """
    directory = Path(save_directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)  # also copies the pipeline code and names it in config.json
    processor.save_pretrained(directory)
    if card is not None:
        (directory / "README.md").write_text(str(card), encoding="utf-8")
    check_checkpoint(directory)
    return directory


def check_checkpoint(checkpoint_dir: str | os.PathLike) -> None:
    """Raise a ValueError listing what `checkpoint_dir` lacks to load with `trust_remote_code` elsewhere."""
    directory = Path(checkpoint_dir)
    needed = ["config.json", "processor_config.json", *REMOTE_CODE_FILES, ENDPOINT_HANDLER]
    missing = [name for name in needed if not (directory / name).is_file()]
    if not any(directory.glob("*.safetensors")):
        pickled = " (pytorch_model.bin is a pickle and is not shared: save with safetensors)" if (
            directory / "pytorch_model.bin").is_file() else ""
        missing.append(f"model weights (*.safetensors){pickled}")
    if missing:
        raise ValueError(
            f"checkpoint {str(directory)!r} lacks {', '.join(missing)}; save it with "
            "kemd_emotion.hub.save_checkpoint(model, processor, dir) (or model.save_pretrained(dir), "
            "processor.save_pretrained(dir) and kemd_emotion.hub.add_pipeline_files(dir))."
        )


def checkpoint_files(checkpoint_dir: str | os.PathLike) -> list[Path]:
    """Files of `checkpoint_dir` to upload, relative paths sorted; hidden files, caches and pickle-format files
    (`PICKLE_SUFFIXES`, e.g. the Trainer's training_args.bin) are left out."""
    directory = Path(checkpoint_dir)
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if (path.is_file() and path.suffix not in PICKLE_SUFFIXES
                and not any(part.startswith(".") or part == "__pycache__" for part in relative.parts)):
            files.append(relative)
    return files


def push_checkpoint(
    checkpoint_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = "Upload kemd-emotion checkpoint",
    api: HfApi | None = None,
):
    """Upload a saved checkpoint directory (model, processor, code, card, figures) to `repo_id` in one commit.

    The directory is completed with the pipeline code first (`add_pipeline_files`) and checked. Everything goes
    through `huggingface_hub.HfApi` (`create_repo`, then `create_commit`).

    Returns:
        The `huggingface_hub.CommitInfo` of the commit.
    """
    directory = Path(checkpoint_dir)
    add_pipeline_files(directory)
    check_checkpoint(directory)
    api = api or HfApi(token=token)
    api.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
    operations = [
        CommitOperationAdd(path_in_repo=relative.as_posix(), path_or_fileobj=str(directory / relative))
        for relative in checkpoint_files(directory)
    ]
    return api.create_commit(
        repo_id,
        operations=operations,
        commit_message=commit_message,
        token=token,
        repo_type="model",
        revision=revision,
        create_pr=create_pr,
    )


def push_to_hub(model, processor, repo_id: str, card: ModelCard | str | None = None, **push_kwargs):
    """Save `model`, `processor` and `card` into a temporary checkpoint and `push_checkpoint` it to `repo_id`."""
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(model, processor, tmp, card=card)
        return push_checkpoint(tmp, repo_id, **push_kwargs)


__all__ = [
    "save_checkpoint",
    "add_pipeline_files",
    "check_checkpoint",
    "checkpoint_files",
    "push_checkpoint",
    "push_to_hub",
    "REMOTE_CODE_FILES",
    "PICKLE_SUFFIXES",
]
