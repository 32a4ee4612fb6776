"""The seed paper's experiment: k-fold cross-validation of the text-only, speech-only, cat and add models, and its table.

`examples/run_emotion.py` is a thin wrapper around `main`; everything here is importable so that tests and other
scripts can run folds, resume them and rebuild the table.

Run directory (``OUTPUT_DIR``)::

    run_args.json                        all arguments of the run (the latest invocation)
    processor/                           the processor every fold uses (tokenizer + feature extractor)
    skipped_audio.json                   rows left out because their audio cannot be used (segment_id -> reason)
    sample_corpus/, cache/               the embedded default's synthetic corpus and its datasets cache
    {fusion}/fold{k}/metrics.json        test metrics of fold k (k = 0..K-1); written last: it marks the fold done
    {fusion}/fold{k}/predictions.npz     segment_id (N,), logits (N, 7), regression (N, 2), labels (N, 7),
                                         regression_labels (N, 2), in the order of the fold's test rows
    {fusion}/fold{k}/checkpoint-*/       Trainer checkpoints, for resuming; removed when the fold is done
                                         (unless --keep_checkpoints)
    {fusion}/all_data/checkpoint-*/      with --final_model all_data: checkpoints of the training on all rows
    {fusion}/final/                      the saved model (safetensors + code, trust_remote_code) and processor;
                                         final_info.json says what it is; README.md + figures: its model card
    summary.json, summary.md             the table: mean ± std over folds

Resuming: start the same command with the same ``--output_dir``. A fold whose ``metrics.json`` exists is skipped; a
fold with checkpoints continues from the last one (model, optimizer, scheduler, RNG and data order).

Distributed: every process runs the fold loop (each Trainer is data-parallel over all of them); the main process
alone prepares the data first, and alone writes files. Multi-node runs need ``--output_dir`` on a shared filesystem.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import HfArgumentParser, TrainerCallback, set_seed
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .configuration_klue_wav2vec2 import FUSIONS, KlueWav2Vec2EmotionConfig
from .metrics import compute_emotion_metrics, majority_baseline
from .modeling_klue_wav2vec2 import KlueWav2Vec2ForEmotion
from .processing_klue_wav2vec2 import SAMPLING_RATE, KlueWav2Vec2Processor
from .trainer import EmotionTrainer, EmotionTrainingArguments

logger = logging.getLogger("kemd_emotion.experiment")

FUSION_ORDER = ("text", "speech", "cat", "add")
"""The paper's four rows, in the table's order."""
ROW_NAMES = {"text": "Text only", "speech": "Speech only", "cat": "Cat (concatenation)", "add": "Add (projection + sum)"}
TABLE_METRICS = (("f1_micro", "F-score (micro)"), ("f1_macro", "F1 macro"), ("ccc_arousal", "CCC arousal"),
                 ("ccc_valence", "CCC valence"), ("ccc_avg", "CCC avg"))
FINAL_MODELS = ("last_fold", "all_data", "none")
EXIT_AFTER_SAVE_ENV = "KEMD_EMOTION_EXIT_AFTER_SAVE"
"""Test hook: ``"{fusion}/fold{k}:{step}"`` makes the process exit hard (``os._exit(75)``) right after the Trainer
has saved the checkpoint of step >= ``step`` in that fold, as a killed job would. Used by the resume test."""

SAMPLE_PRESET: dict[str, object] = {
    # Random-init small encoders learn nothing at the paper's 1e-5: they need a much larger step.
    "learning_rate": 4e-3,
    "num_train_epochs": 6.0,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32,
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
    "max_audio_seconds": 2.0,
    "logging_strategy": "epoch",
}
"""What the embedded default (no ``--text_model`` / ``--audio_model``) uses instead of the paper's settings, for each
option not given on the command line."""


# ---------------------------------------------------------------------------------------------------- arguments
@dataclass
class ModelArguments:
    """Which encoders, and how they are pooled and fused."""

    fusion: str = field(
        default="all",
        metadata={"help": "One of text, speech, cat, add, or 'all' (the paper's four rows); a comma-separated list "
                          "also works (e.g. 'text,cat')."},
    )
    text_model: str | None = field(
        default=None, metadata={"help": "Hub id or folder of the text encoder (the paper: klue/bert-base). Without it "
                                        "and --audio_model, small random-init encoders are built offline."})
    audio_model: str | None = field(
        default=None, metadata={"help": "Hub id or folder of the wav2vec2 encoder (the paper: facebook/wav2vec2-base)."})
    pooling: str = field(default="mean", metadata={"help": "mean, last or first (over real tokens / frames)."})
    audio_representation: str = field(
        default="conv",
        metadata={"help": "conv: wav2vec2's normalised convolutional features (the paper's 512-d vector; the "
                          "transformer layers are not run); hidden: the transformer's last hidden state."})
    regression_loss: str = field(default="mse", metadata={"help": "mse or ccc (1 - CCC)."})
    emotion_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the multi-label soft-margin loss."})
    regression_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the arousal/valence loss."})
    classifier_dropout: float = field(default=0.1, metadata={"help": "Dropout on the fused vector."})
    freeze_feature_encoder: bool = field(default=False, metadata={"help": "Keep wav2vec2's conv encoder fixed."})
    sample_hidden_size: int = field(default=64, metadata={"help": "Embedded default: width of the small encoders."})
    sample_num_layers: int = field(default=2, metadata={"help": "Embedded default: layers of the small BERT."})
    sample_conv_channels: int = field(
        default=32, metadata={"help": "Embedded default: channels of the small wav2vec2's 7 conv layers."})
    sample_vocab_size: int = field(
        default=2000, metadata={"help": "Embedded default: WordPiece vocabulary trained on the corpus' texts."})


@dataclass
class DataArguments:
    """Which corpus, and how it is split."""

    data_dir: str | None = field(
        default=None, metadata={"help": "A KEMDy19/KEMDy20 release folder. Without it the sample corpus is written "
                                        "to --sample_dir and used."})
    dataset_name: str | None = field(default=None, metadata={"help": "kemdy19 or kemdy20 (default: inferred)."})
    annotations: str = field(
        default="speaker", metadata={"help": "KEMDy19: speaker (own emotion rows) or all (also listener rows, as the "
                                             "seed paper did)."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "datasets cache of the prepared corpus (default: OUTPUT_DIR/cache for the "
                                        "sample corpus, the datasets cache otherwise)."})
    num_folds: int = field(default=5, metadata={"help": "Number of cross-validation folds."})
    fold_by: str = field(
        default="contiguous", metadata={"help": "contiguous (the seed paper: file order), session (no speaker in both "
                                                "train and test) or random."})
    fold_seed: int = field(default=0, metadata={"help": "Seed of the session / random fold assignment."})
    folds: str | None = field(
        default=None, metadata={"help": "Run only these folds, e.g. '0,1' (default: all). The table then covers them."})
    max_audio_seconds: float = field(default=5.0, metadata={"help": "Audio is cropped to this many seconds."})
    max_text_length: int = field(default=128, metadata={"help": "Transcripts are truncated to this many tokens."})
    max_samples: int | None = field(default=None, metadata={"help": "Use only the first N rows (quick trials)."})
    sample_dir: str | None = field(
        default=None, metadata={"help": "Where the sample corpus is written (default: OUTPUT_DIR/sample_corpus)."})
    sample_size: str = field(default="default", metadata={"help": "Sample corpus size: tiny or default."})
    sample_name: str = field(default="kemdy20", metadata={"help": "Sample corpus layout: kemdy19 or kemdy20."})


@dataclass
class RunArguments(EmotionTrainingArguments):
    """`TrainingArguments` with the paper's defaults (batch 32, learning rate 1e-5, 5 epochs, AdamW eps 1e-8) and the
    experiment's own options."""

    output_dir: str | None = field(default="runs/emotion", metadata={"help": "The run directory."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device (the paper: 32)."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Evaluation batch size per device."})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate (the paper: 1e-5)."})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Epochs per fold (the paper: 5)."})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW epsilon (the paper: 1e-8)."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint (for resuming): epoch or steps."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept per fold."})
    logging_steps: float = field(default=50, metadata={"help": "Log the training loss every N steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep False: the collator reads the raw text and audio columns."})
    train_sampling_strategy: str = field(
        default="group_by_length", metadata={"help": "group_by_length batches clips of similar duration."})
    length_column_name: str = field(default="duration", metadata={"help": "The column group_by_length reads."})
    final_model: str = field(
        default="last_fold",
        metadata={"help": "What {fusion}/final holds: last_fold (the model of the last fold, trained on the other "
                          "folds), all_data (one more training on every row) or none."})
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep the Trainer checkpoints of finished folds."})
    preset: str = field(
        default="auto",
        metadata={"help": "auto: 'sample' without pretrained encoders, else 'paper'. sample: the embedded default's "
                          f"settings for options not given ({SAMPLE_PRESET}). paper: the defaults above."})


def parse_arguments(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, RunArguments, dict]:
    """Parse the command line (or one ``.json`` file) into the three dataclasses, with the preset applied.

    Options given explicitly always win; the sample preset only replaces defaults. Returns the dataclasses and
    ``{"preset": name, "explicit": [options given], "applied": {option: preset value}}``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, RunArguments))
    if len(argv) == 1 and argv[0].endswith(".json"):
        values = json.loads(Path(argv[0]).read_text())
        explicit = set(values)
    else:
        namespace, remaining = parser.parse_known_args(argv)
        if remaining:
            parser.error(f"unrecognized arguments: {' '.join(remaining)}")
        values, explicit = vars(namespace), explicit_options(parser, argv)

    preset = values.get("preset", "auto")
    if preset not in ("auto", "sample", "paper"):
        raise ValueError(f"preset={preset!r} is not supported; expected 'auto', 'sample' or 'paper'.")
    if preset == "auto":
        preset = "paper" if values.get("text_model") or values.get("audio_model") else "sample"
    applied = {}
    if preset == "sample":
        applied = {key: value for key, value in SAMPLE_PRESET.items() if key not in explicit}
        values.update(applied)
    if "ddp_find_unused_parameters" not in explicit and values.get("audio_representation") == "conv":
        # Every parameter gets a gradient with conv features; "hidden" may skip wav2vec2's mask embedding.
        values["ddp_find_unused_parameters"] = False
    if not _has_accelerator():
        if "use_cpu" not in explicit:
            # Without it, a CPU-only `torchrun --nproc_per_node 2` leaves the Trainer thinking it is alone in every
            # process (no DDP, each process its own "main"); with it, the processes join one gloo group.
            values["use_cpu"] = True
        if "dataloader_pin_memory" not in explicit:
            values["dataloader_pin_memory"] = False  # pinning needs an accelerator; torch warns on every loader
    model_args, data_args, run_args = parser.parse_dict(values)
    return model_args, data_args, run_args, {"preset": preset, "explicit": sorted(explicit), "applied": applied}


def audio_problem(path: str, max_seconds: float | None) -> str | None:
    """Why the clip at `path` cannot be used (unreadable, not finite, under 25 ms once cropped), or None.

    The same reading and checks as the collator's, so a clip that passes here is never dropped from a batch.
    """
    from .data.collator import read_clip

    try:
        read_clip(path, SAMPLING_RATE, max_seconds, name=f"audio file {path!r}")
    except ValueError as error:
        return str(error)
    return None


def _has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


def explicit_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options present in `argv` (parsed again with every default suppressed)."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        namespace, _ = parser.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    return set(vars(namespace))


def parse_fusions(value: str) -> list[str]:
    """``"all"`` -> the paper's four rows; ``"text,cat"`` -> ``["text", "cat"]``; raises on unknown names."""
    names = list(FUSION_ORDER) if value.strip() == "all" else [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in FUSIONS]
    if unknown or not names:
        raise ValueError(f"--fusion {value!r}: expected 'all' or some of {', '.join(FUSION_ORDER)}, comma-separated.")
    return sorted(set(names), key=FUSION_ORDER.index)


def parse_folds(value: str | None, num_folds: int) -> list[int]:
    if value is None:
        return list(range(num_folds))
    folds = sorted({int(part) for part in value.split(",") if part.strip()})
    if not folds or folds[0] < 0 or folds[-1] >= num_folds:
        raise ValueError(f"--folds {value!r}: expected fold numbers between 0 and {num_folds - 1}, comma-separated.")
    return folds


# ---------------------------------------------------------------------------------------------------- the experiment
class ExitAfterSaveCallback(TrainerCallback):
    """Exit the process hard after the checkpoint of step >= `step` was saved (the resume test's stand-in for kill -9)."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            logger.warning("%s: exiting after the checkpoint of step %d, as asked.", EXIT_AFTER_SAVE_ENV, state.global_step)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(75)


class CountTrainingSteps(TrainerCallback):
    """Counts the optimizer steps this process ran in this session (evidence that every rank took part)."""

    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


class Experiment:
    """The k-fold cross-validation of one or more fusions, with resume, predictions, final models and the table.

    Every process of a distributed run builds one and calls `run`; only the main process writes files.
    """

    def __init__(self, model_args: ModelArguments, data_args: DataArguments, args: RunArguments, preset: dict):
        self.model_args, self.data_args, self.args, self.preset = model_args, data_args, args, preset
        self.output_dir = Path(args.output_dir)
        self.fusions = parse_fusions(model_args.fusion)
        self.fold_numbers = parse_folds(data_args.folds, data_args.num_folds)
        if args.final_model not in FINAL_MODELS:
            raise ValueError(f"final_model={args.final_model!r}: expected one of {', '.join(FINAL_MODELS)}.")
        self.pretrained = model_args.text_model is not None or model_args.audio_model is not None
        for fusion in self.fusions:
            self._check_encoders(fusion)
        self.is_main = args.process_index == 0  # (sets the distributed state up)
        from accelerate import PartialState

        self.state = PartialState()
        self.dataset = self.processor = self.folds = None

    def _check_encoders(self, fusion: str) -> None:
        if not self.pretrained:
            return
        needs = {"text": ["text_model"], "speech": ["audio_model"]}.get(fusion, ["text_model", "audio_model"])
        missing = [name for name in needs if getattr(self.model_args, name) is None]
        if missing:
            raise ValueError(
                f"fusion {fusion!r} needs --{' and --'.join(missing)} when pretrained encoders are used; give both "
                "--text_model and --audio_model, or neither for the embedded small encoders."
            )

    # ------------------------------------------------------------------ preparation (main process first)
    def prepare(self) -> None:
        """Write / load the corpus, build the folds and the processor. The main process goes first; the others then
        read what it prepared (datasets cache, saved processor)."""
        with self.args.main_process_first(desc="data preparation", local=False):
            if self.is_main:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                self._check_previous_run()
            self.dataset = self._load_dataset()
            self.processor = self._load_or_build_processor()
            if self.is_main:
                self._fetch_encoders()
        self.folds = _kfold(self.dataset, self.data_args)
        if self.is_main:
            sizes = [len(test) for _, test in self.folds]
            logger.info("%d folds (%s) of %s test rows; running folds %s of %s.", len(self.folds),
                        self.data_args.fold_by, sizes, self.fold_numbers, ", ".join(self.fusions))
            self._write_run_args()

    def _load_dataset(self):
        from .data import load_kemdy, write_sample_corpus
        from .data.sample import MANIFEST_FILENAME

        data = self.data_args
        if data.data_dir is None:
            data_dir = Path(data.sample_dir) if data.sample_dir else self.output_dir / "sample_corpus"
            if self.is_main and not (data_dir / MANIFEST_FILENAME).exists():
                logger.info("Writing the %s sample corpus (%s) to %s ...", data.sample_name, data.sample_size, data_dir)
                write_sample_corpus(data_dir, name=data.sample_name, size=data.sample_size, overwrite=True)
            cache_dir = data.cache_dir or self.output_dir / "cache"
        else:
            data_dir, cache_dir = Path(data.data_dir), data.cache_dir
        dataset, report = load_kemdy(data_dir, name=data.dataset_name, annotations=data.annotations,
                                     cache_dir=cache_dir, return_report=True)
        if self.is_main:
            logger.info("%s", report.summary())
        if data.max_samples is not None:
            dataset = dataset.select(range(min(data.max_samples, len(dataset))))
        self.data_dir = str(data_dir)
        return self._drop_unusable_audio(dataset)

    def _drop_unusable_audio(self, dataset):
        """Decode every clip once (up to the crop) and drop, with a report, those the model could not take.

        The builder reads wav headers only; a file corrupt past its header, or under 25 ms, would otherwise make the
        collator drop it from a batch mid-run, and test predictions would no longer line up with the test rows.
        The main process checks and writes ``skipped_audio.json`` (segment_id -> reason); the others read it.
        """
        record = self.output_dir / "skipped_audio.json"
        if record.exists():
            problems = json.loads(record.read_text(encoding="utf-8"))
        elif not self.is_main:
            raise RuntimeError(f"the main process should have written {record}; it is not there.")
        else:
            from tqdm.auto import tqdm

            problems = {}
            rows = zip(dataset["segment_id"], dataset["audio"])
            for segment_id, path in tqdm(rows, total=len(dataset), desc="checking audio", unit="clip",
                                         disable=self.args.disable_tqdm):
                problem = audio_problem(path, self.data_args.max_audio_seconds)
                if problem is not None:
                    problems[segment_id] = problem
            write_json(record, problems)
        if problems:
            if self.is_main:
                logger.warning("Skipping %d row(s) whose audio cannot be used (see %s): %s", len(problems), record,
                               "; ".join(f"{key}: {value}" for key, value in list(problems.items())[:5]))
            keep = [i for i, segment_id in enumerate(dataset["segment_id"]) if segment_id not in problems]
            dataset = dataset.select(keep)
        return dataset

    def _load_or_build_processor(self) -> KlueWav2Vec2Processor:
        directory = self.output_dir / "processor"
        if (directory / "processor_config.json").exists():
            return KlueWav2Vec2Processor.from_pretrained(directory)
        if not self.is_main:
            raise RuntimeError(f"the main process should have saved the processor to {directory}; it is not there.")
        model, data = self.model_args, self.data_args
        if self.pretrained:
            from transformers import AutoFeatureExtractor, AutoTokenizer, Wav2Vec2FeatureExtractor

            tokenizer = AutoTokenizer.from_pretrained(model.text_model or model.audio_model)
            if model.audio_model is not None:
                feature_extractor = AutoFeatureExtractor.from_pretrained(model.audio_model)
            else:
                feature_extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
        else:
            from transformers import Wav2Vec2FeatureExtractor

            from .testing_utils import train_wordpiece_tokenizer

            logger.info("Training a %d-word WordPiece vocabulary on the corpus' texts (offline).", model.sample_vocab_size)
            tokenizer = train_wordpiece_tokenizer(self.dataset["text"], vocab_size=model.sample_vocab_size)
            feature_extractor = Wav2Vec2FeatureExtractor(
                feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0, do_normalize=True,
                return_attention_mask=True,
            )
        processor = KlueWav2Vec2Processor(feature_extractor, tokenizer, max_audio_seconds=data.max_audio_seconds,
                                          max_text_length=data.max_text_length)
        processor.save_pretrained(directory)
        return processor

    def _fetch_encoders(self) -> None:
        """Download hub encoders once, on the main process, before every process loads them from the cache."""
        from transformers import AutoModel

        for name in (self.model_args.text_model, self.model_args.audio_model):
            if name is not None and not os.path.isdir(name):
                logger.info("Fetching %s ...", name)
                AutoModel.from_pretrained(name)  # fills the hub cache; the weights are loaded again per fold

    def _check_previous_run(self) -> None:
        """Refuse to mix folds of a different split or corpus into an existing run directory."""
        path = self.output_dir / "run_args.json"
        if not path.exists():
            return
        previous = json.loads(path.read_text()).get("split", {})
        current = self._split_fingerprint()
        changed = {key: (previous.get(key), value) for key, value in current.items() if previous.get(key) != value}
        if changed:
            details = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise ValueError(
                f"{self.output_dir} holds a run with another split or corpus ({details}); its folds cannot be mixed "
                "with this one. Use another --output_dir, or remove that one."
            )

    def _split_fingerprint(self) -> dict:
        data, model = self.data_args, self.model_args
        return {
            "data_dir": os.path.abspath(data.data_dir) if data.data_dir else None,
            "dataset_name": data.dataset_name, "annotations": data.annotations, "num_folds": data.num_folds,
            "fold_by": data.fold_by, "fold_seed": data.fold_seed, "max_samples": data.max_samples,
            "sample_size": None if data.data_dir else data.sample_size,
            "text_model": model.text_model, "audio_model": model.audio_model,
        }

    def _write_run_args(self) -> None:
        run_args = {
            "command": [sys.executable, *sys.argv],
            "preset": self.preset,
            "fusions": self.fusions,
            "folds": self.fold_numbers,
            "split": self._split_fingerprint(),
            "data_dir_used": self.data_dir,
            "num_rows": len(self.dataset),
            "world_size": self.args.world_size,
            "model": dataclasses.asdict(self.model_args),
            "data": dataclasses.asdict(self.data_args),
            "training": json.loads(self.args.to_json_string()),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }
        write_json(self.output_dir / "run_args.json", run_args)

    # ------------------------------------------------------------------ models
    def build_model(self, fusion: str) -> KlueWav2Vec2ForEmotion:
        model = self.model_args
        options = dict(fusion=fusion, pooling=model.pooling, audio_representation=model.audio_representation,
                       regression_loss=model.regression_loss, emotion_loss_weight=model.emotion_loss_weight,
                       regression_loss_weight=model.regression_loss_weight,
                       classifier_dropout=model.classifier_dropout, freeze_feature_encoder=model.freeze_feature_encoder)
        set_seed(self.args.seed)
        if self.pretrained:
            return KlueWav2Vec2ForEmotion.from_text_audio_pretrained(
                model.text_model if fusion != "speech" else None,
                model.audio_model if fusion != "text" else None,
                **options,
            )
        from .testing_utils import tiny_audio_config, tiny_text_config

        width, layers = model.sample_hidden_size, model.sample_num_layers
        config = KlueWav2Vec2EmotionConfig(
            text_config=tiny_text_config(vocab_size=len(self.processor.tokenizer), hidden_size=width, num_layers=layers),
            audio_config=tiny_audio_config(conv_channels=model.sample_conv_channels, hidden_size=width,
                                           num_layers=layers),
            **options,
        )
        return KlueWav2Vec2ForEmotion(config)

    def collator(self):
        from .data import KemdyCollator

        return KemdyCollator(self.processor, max_audio_seconds=self.data_args.max_audio_seconds)

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        """Run every (fusion, fold) not done yet, the final models, and write / print the table. Returns the summary."""
        if self.dataset is None:
            self.prepare()
        jobs = [(fusion, fold) for fusion in self.fusions for fold in self.fold_numbers]
        from tqdm.auto import tqdm

        progress = tqdm(total=len(jobs), desc="folds", unit="fold", disable=not self.is_main or self.args.disable_tqdm)
        started = time.time()
        for fusion in self.fusions:
            for fold in self.fold_numbers:
                fold_dir = self.output_dir / fusion / f"fold{fold}"
                if self._agree((fold_dir / "metrics.json").exists()):
                    if self.is_main:
                        logger.info("%s fold %d/%d: already done, skipped (%s).", fusion, fold, len(self.folds),
                                    fold_dir / "metrics.json")
                else:
                    self.run_fold(fusion, fold)
                progress.update(1)
            if self.args.final_model == "all_data":
                self.train_final_on_all_data(fusion)
        progress.close()
        summary = None
        if self.is_main:
            summary = write_summary(self.output_dir, self.fusions, self.fold_numbers)
            self.write_model_cards()
            logger.info("%d fold(s) of %s in %.0f s; the table is in %s.", len(jobs), ", ".join(self.fusions),
                        time.time() - started, self.output_dir / "summary.md")
            print("\n" + (self.output_dir / "summary.md").read_text(), flush=True)
        self.state.wait_for_everyone()
        return summary

    def _agree(self, value):
        """The main process' `value`, on every process (so that all of them take the same branch)."""
        if self.args.world_size <= 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def _fold_arguments(self, directory: Path) -> RunArguments:
        args = copy.copy(self.args)
        args.output_dir = str(directory)
        return args

    def _trainer(self, fusion: str, directory: Path, train_dataset, callbacks=()) -> EmotionTrainer:
        trainer = EmotionTrainer(
            model=self.build_model(fusion),
            args=self._fold_arguments(directory),
            train_dataset=train_dataset,
            data_collator=self.collator(),
            processing_class=self.processor,
            callbacks=list(callbacks),
        )
        exit_spec = os.environ.get(EXIT_AFTER_SAVE_ENV, "")
        where, _, step = exit_spec.partition(":")
        if where and where == f"{fusion}/{directory.name}":
            trainer.add_callback(ExitAfterSaveCallback(int(step)))
        return trainer

    def run_fold(self, fusion: str, fold: int) -> dict | None:
        """Train on every fold but `fold`, predict `fold`, write its predictions and metrics (main process)."""
        train_indices, test_indices = self.folds[fold]
        train, test = self.dataset.select(train_indices), self.dataset.select(test_indices)
        fold_dir = self.output_dir / fusion / f"fold{fold}"
        counter = CountTrainingSteps()
        trainer = self._trainer(fusion, fold_dir, train, callbacks=[counter])
        checkpoint = self._agree(last_complete_checkpoint(fold_dir) if self.is_main else None)
        if self.is_main:
            what = f"resuming from {Path(checkpoint).name}" if checkpoint else "training"
            logger.info("%s fold %d/%d: %s on %d rows, testing on %d.", fusion, fold, len(self.folds), what,
                        len(train), len(test))
        started = time.time()
        train_output = trainer.train(resume_from_checkpoint=checkpoint)
        logger.info("[rank %d/%d] %s fold %d: ran %d training steps on %s.", self.args.process_index,
                    self.args.world_size, fusion, fold, counter.steps, socket.gethostname())
        processes = _gather_objects(
            {"rank": self.args.process_index, "host": socket.gethostname(), "pid": os.getpid(),
             "training_steps_this_session": counter.steps},
            self.args.world_size,
        )
        prediction = trainer.predict(test, metric_key_prefix="test")
        is_last = fold == len(self.folds) - 1
        if is_last and self.args.final_model == "last_fold":
            self._save_final(trainer, fusion, {"origin": "last_fold", "fold": fold, "train_rows": len(train)})

        if self.is_main:
            logits, regression = (np.asarray(a) for a in prediction.predictions)
            labels, regression_labels = (np.asarray(a) for a in prediction.label_ids)
            expected = np.stack([np.asarray(test["arousal"]), np.asarray(test["valence"])], axis=1)
            aligned = regression_labels.shape == expected.shape and bool(
                np.allclose(regression_labels, expected, atol=1e-5))
            segment_ids = np.asarray(test["segment_id"])
            if not aligned:
                logger.error("%s fold %d: the %d gathered predictions do not line up with the %d test rows; "
                             "predictions.npz gets empty segment IDs.", fusion, fold, len(logits), len(test))
                segment_ids = np.full(len(logits), "", dtype=segment_ids.dtype)
            write_npz(fold_dir / "predictions.npz", segment_id=segment_ids, logits=logits,
                      regression=regression, labels=labels, regression_labels=regression_labels)
            metrics = compute_emotion_metrics(logits, labels, regression, regression_labels)
            train_labels = _multi_hot(train["emotion"])
            metrics.update(majority_baseline(labels, train_labels))
            metrics.update({
                "fusion": fusion, "fold": fold, "num_folds": len(self.folds), "num_train": len(train),
                "num_test": len(test), "test_loss": prediction.metrics.get("test_loss"),
                "global_step": trainer.state.global_step, "epochs": trainer.state.epoch,
                "resumed_from": Path(checkpoint).name if checkpoint else None,
                "train_loss": train_output.training_loss, "seconds_this_session": round(time.time() - started, 1),
                "world_size": self.args.world_size, "processes": processes, "predictions_aligned": aligned,
                "distributed_type": str(trainer.accelerator.distributed_type.value),
            })
            write_json(fold_dir / "metrics.json", metrics)  # last: marks the fold done
            logger.info(
                "%s fold %d/%d | F1 micro %.2f macro %.2f | CCC arousal %.2f valence %.2f avg %.2f | majority F1 %.2f "
                "| %.0f s", fusion, fold, len(self.folds), 100 * metrics["f1_micro"], 100 * metrics["f1_macro"],
                100 * metrics["ccc_arousal"], 100 * metrics["ccc_valence"], 100 * metrics["ccc_avg"],
                100 * metrics["majority_f1_micro"], time.time() - started,
            )
            if not self.args.keep_checkpoints:
                for path in fold_dir.glob("checkpoint-*"):
                    shutil.rmtree(path, ignore_errors=True)
        else:
            metrics = None
        self.state.wait_for_everyone()
        del trainer
        gc.collect()
        return metrics

    def train_final_on_all_data(self, fusion: str) -> None:
        """`--final_model all_data`: one more training, on every row, saved as {fusion}/final."""
        final_info = self.output_dir / fusion / "final" / "final_info.json"
        if self._agree(final_info.exists()):
            if self.is_main:
                logger.info("%s: final model on all data already trained (%s).", fusion, final_info.parent)
            return
        directory = self.output_dir / fusion / "all_data"
        trainer = self._trainer(fusion, directory, self.dataset)
        checkpoint = self._agree(last_complete_checkpoint(directory) if self.is_main else None)
        if self.is_main:
            logger.info("%s: training the final model on all %d rows%s.", fusion, len(self.dataset),
                        f", resuming from {Path(checkpoint).name}" if checkpoint else "")
        trainer.train(resume_from_checkpoint=checkpoint)
        self._save_final(trainer, fusion, {"origin": "all_data", "fold": None, "train_rows": len(self.dataset)})
        if self.is_main and not self.args.keep_checkpoints:
            shutil.rmtree(directory, ignore_errors=True)
        self.state.wait_for_everyone()
        del trainer
        gc.collect()

    def _save_final(self, trainer: EmotionTrainer, fusion: str, info: dict) -> None:
        """Save the trained model with its processor and code to {fusion}/final (all processes call this)."""
        final_dir = self.output_dir / fusion / "final"
        trainer.save_model(str(final_dir))  # every process: FSDP gathers the weights; only the main one writes
        if not self.is_main:
            return
        info = {**info, "fusion": fusion, "run_dir": str(self.output_dir), "num_folds": len(self.folds),
                "preset": self.preset["preset"], "text_model": self.model_args.text_model,
                "audio_model": self.model_args.audio_model}
        write_json(final_dir / "final_info.json", info)
        logger.info("%s: saved the final model (%s) to %s.", fusion, info["origin"], final_dir)

    def write_model_cards(self) -> None:
        """README.md and figures for every final model of this run (main process, after the folds' metrics)."""
        try:
            from .modelcard import write_model_card
        except ImportError:
            logger.info("No model-card writer in this installation: the final models get no README.md.")
            return
        for fusion in self.fusions:
            final_dir = self.output_dir / fusion / "final"
            if not (final_dir / "final_info.json").exists():
                continue
            try:
                path = write_model_card(self.output_dir, fusion, final_dir)
                logger.info("%s: model card written to %s.", fusion, path)
            except Exception as error:  # a card is a nicety: never lose a finished run to it
                logger.warning("Could not write the model card of %s: %s: %s", final_dir, type(error).__name__, error)


def last_complete_checkpoint(directory: str | os.PathLike) -> str | None:
    """The newest Trainer checkpoint in `directory` that was written to the end, or None.

    The Trainer writes ``trainer_state.json`` last (and removes older checkpoints only after it), so a job killed
    while saving leaves a newer folder without a readable state: it is removed, and the previous one is used.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    candidates = sorted(
        (path for path in directory.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.is_dir() and path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
        reverse=True,
    )
    for path in candidates:
        try:
            json.loads((path / TRAINER_STATE_NAME).read_text())
        except (OSError, ValueError):
            logger.warning("Removing %s: it was not written to the end (the job was killed while saving).", path)
            shutil.rmtree(path, ignore_errors=True)
            continue
        return str(path)
    return None


# ---------------------------------------------------------------------------------------------------- the table
def write_summary(output_dir: str | os.PathLike, fusions=FUSION_ORDER, folds: list[int] | None = None) -> dict:
    """Read every ``{fusion}/fold*/metrics.json`` under `output_dir`, write ``summary.json`` and ``summary.md``.

    Rows: the fusions that have at least one finished fold, in the paper's order, then the majority-class baseline.
    Values are mean ± sample standard deviation (ddof=1) over the finished folds.
    """
    output_dir = Path(output_dir)
    run_args = _read_json(output_dir / "run_args.json") or {}
    rows, baseline_folds = {}, {}
    for fusion in sorted(set(fusions), key=FUSION_ORDER.index):
        fold_metrics = []
        for path in sorted((output_dir / fusion).glob("fold*/metrics.json"), key=lambda p: int(p.parent.name[4:])):
            metrics = _read_json(path)
            if metrics is not None and (folds is None or metrics["fold"] in folds):
                fold_metrics.append(metrics)
                baseline_folds.setdefault(metrics["fold"], metrics)
        if not fold_metrics:
            continue
        names = [name for name in fold_metrics[0] if isinstance(fold_metrics[0][name], float)
                 and (name.startswith(("f1_", "ccc_", "pearson_")))]
        rows[fusion] = {
            "folds": [m["fold"] for m in fold_metrics],
            "metrics": {name: _mean_std([m[name] for m in fold_metrics]) for name in names},
        }
    baseline = None
    if baseline_folds:
        chosen = [baseline_folds[fold] for fold in sorted(baseline_folds)]
        baseline = {
            "labels": [m["majority_label"] for m in chosen],
            "folds": sorted(baseline_folds),
            "metrics": {name: _mean_std([m[f"majority_{name}"] for m in chosen])
                        for name in ("f1_micro", "f1_macro", "f1_weighted")},
        }
    num_folds = run_args.get("split", {}).get("num_folds")
    summary = {
        "dataset": run_args.get("data_dir_used"),
        "num_rows": run_args.get("num_rows"),
        "num_folds": num_folds,
        "fold_by": run_args.get("split", {}).get("fold_by"),
        "preset": run_args.get("preset", {}).get("preset"),
        "text_model": run_args.get("split", {}).get("text_model"),
        "audio_model": run_args.get("split", {}).get("audio_model"),
        "complete": bool(rows) and all(len(row["folds"]) == num_folds for row in rows.values()),
        "rows": rows,
        "majority_baseline": baseline,
    }
    write_json(output_dir / "summary.json", summary)
    (output_dir / "summary.md").write_text(format_table(summary), encoding="utf-8")
    return summary


def format_table(summary: dict) -> str:
    """The paper's table in Markdown: F-score, CCC arousal / valence / avg (x100, mean ± std over folds)."""
    lines = []
    encoders = (f"{summary['text_model']} + {summary['audio_model']}" if summary.get("text_model")
                or summary.get("audio_model") else "small random-init encoders (embedded default)")
    lines.append(f"{summary.get('num_folds')}-fold cross-validation ({summary.get('fold_by')} folds) on "
                 f"{summary.get('num_rows')} utterances of `{summary.get('dataset')}`; {encoders}. "
                 "Scores x100, mean ± std over folds.")
    lines.append("")
    header = ["Model", *[title for _, title in TABLE_METRICS], "Folds"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for fusion, row in summary["rows"].items():
        cells = [_cell(row["metrics"].get(name)) for name, _ in TABLE_METRICS]
        lines.append(f"| {ROW_NAMES[fusion]} | " + " | ".join(cells) + f" | {len(row['folds'])} |")
    baseline = summary.get("majority_baseline")
    if baseline:
        labels = sorted(set(baseline["labels"]))
        cells = [_cell(baseline["metrics"].get(name)) if name.startswith("f1") else "0.00" for name, _ in TABLE_METRICS]
        lines.append(f"| Majority class ({', '.join(labels)}) | " + " | ".join(cells) + f" | {len(baseline['folds'])} |")
    lines.append("")
    lines.append("F-score: multi-label micro F1 (sigmoid > 0.5; a row with none takes its arg-max); the majority row "
                 "always predicts the training folds' most frequent emotion (a constant has CCC 0).")
    if not summary.get("complete"):
        lines.append("")
        lines.append("**Incomplete:** not every row has all folds yet.")
    return "\n".join(lines) + "\n"


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "-"
    if stats["std"] is None:
        return f"{100 * stats['mean']:.2f}"
    return f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f}"


def _mean_std(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if array.size > 1 else None,
            "values": [float(v) for v in array]}


# ---------------------------------------------------------------------------------------------------- helpers
def _kfold(dataset, data_args: DataArguments):
    from .data import kfold

    return kfold(dataset, k=data_args.num_folds, by=data_args.fold_by, seed=data_args.fold_seed)


def _multi_hot(emotions) -> np.ndarray:
    from .data import multi_hot

    return np.stack([multi_hot(row) for row in emotions])


def _gather_objects(value, world_size: int) -> list:
    if world_size <= 1:
        return [value]
    from accelerate.utils import gather_object

    return gather_object([value])


def write_json(path: Path, value) -> None:
    """Write JSON atomically (a temporary file, then a rename): a killed job never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def write_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def setup_logging(args: RunArguments) -> None:
    """INFO lines from this module on every process (one per fold, rank-tagged where it matters); transformers and
    datasets at WARNING so that the Trainer's progress bars and our lines stay readable."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING,
                        stream=sys.stderr)
    logger.setLevel(logging.INFO)
    logging.getLogger("kemd_emotion").setLevel(logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    import datasets

    datasets.utils.logging.set_verbosity_warning()


def describe_settings(model_args: ModelArguments, data_args: DataArguments, args: RunArguments, preset: dict) -> str:
    """One paragraph that says which setting is used (the paper's or the embedded default's) and its key values."""
    if preset["preset"] == "sample":
        what = ("embedded default: sample corpus and small random-init encoders (hidden "
                f"{model_args.sample_hidden_size}, {model_args.sample_num_layers} layers, "
                f"{model_args.sample_conv_channels} conv channels), NOT the paper's setting")
    else:
        what = f"paper setting: {model_args.text_model} + {model_args.audio_model}"
    data = data_args.data_dir or f"sample corpus ({data_args.sample_name}, {data_args.sample_size})"
    changed = ", ".join(f"{key}={value}" for key, value in preset["applied"].items()) or "none"
    return (
        f"Settings: {what}.\n"
        f"  data: {data}; {data_args.num_folds} folds ({data_args.fold_by}); audio cropped to "
        f"{data_args.max_audio_seconds} s\n"
        f"  model: fusion={model_args.fusion}, pooling={model_args.pooling}, "
        f"audio_representation={model_args.audio_representation}, regression_loss={model_args.regression_loss}\n"
        f"  training: batch {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation x "
        f"{args.world_size} process(es), learning rate {args.learning_rate}"
        f"{f' (heads {args.head_learning_rate})' if args.head_learning_rate else ''}, {args.num_train_epochs:g} epochs, "
        f"{getattr(args.optim, 'value', args.optim)} eps {args.adam_epsilon}, warmup {args.warmup_steps}, "
        f"device {args.device}\n"
        f"  preset values used instead of the paper's defaults: {changed}\n"
        f"  output: {args.output_dir}"
    )


def main(argv: list[str] | None = None) -> dict | None:
    """Parse the arguments, run the experiment, return the summary (on the main process)."""
    model_args, data_args, args, preset = parse_arguments(argv)
    setup_logging(args)
    if args.process_index == 0:
        logger.info("%s", describe_settings(model_args, data_args, args, preset))
    experiment = Experiment(model_args, data_args, args, preset)
    return experiment.run()


__all__ = [
    "ModelArguments",
    "DataArguments",
    "RunArguments",
    "Experiment",
    "parse_arguments",
    "write_summary",
    "format_table",
    "last_complete_checkpoint",
    "main",
    "SAMPLE_PRESET",
    "EXIT_AFTER_SAVE_ENV",
]
