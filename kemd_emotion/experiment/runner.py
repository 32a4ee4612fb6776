"""The orchestration: check the run directory, prepare the data, run every (row, seed, fold) not done yet, the
final models, the table and the model cards; `main` behind ``examples/run_emotion.py``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers.trainer_utils import enable_full_determinism

from ..configuration_klue_wav2vec2 import EMOTIONS
from .arguments import (FINAL_MODELS, DataArguments, ModelArguments, RunArguments, parse_arguments, parse_folds,
                        parse_positive_weight, parse_seeds)
from .fold import FoldSetup, run_fold, train_final_on_all_data
from .model_card import write_model_card
from .preparation import (check_manifest_rows, drop_unusable_audio, fetch_encoders, load_corpus,
                          load_or_build_processor, make_folds, validation_split)
from .processes import Processes
from .run_directory import (METRICS, RUN_ARGS, check_previous_run, check_split, clear_run, fingerprint,
                            fingerprint_sha256, fold_directory, option_defaults, split_sha256, write_json)
from .prosody_row import check_prosody_rows
from .rows import TableRow, parse_rows
from .summary import write_summary

logger = logging.getLogger("kemd_emotion.experiment")


class Experiment:
    """The k-fold cross-validation of one or more rows over one or more seeds, with resume, predictions, final
    models and the table.

    Every process of a distributed run builds one and calls `run`; only the main process writes files. Bad options
    (rows, folds, seeds, final model, encoders) raise a ValueError here, before anything is read or written.
    """

    def __init__(self, model_args: ModelArguments, data_args: DataArguments, args: RunArguments, preset: dict):
        self.model_args, self.data_args, self.args, self.preset = model_args, data_args, args, preset
        self.output_dir = Path(args.output_dir)
        self.rows = {row.name: row for row in parse_rows(model_args.rows)}  # name (also its folder) -> row
        # A KEMDy run has the seven EMOTIONS; a manifest's label count is checked in prepare(), once it is read.
        parse_positive_weight(model_args.emotion_pos_weight, labels=None if data_args.manifest else EMOTIONS)
        if not 0 < data_args.validation_fraction <= 0.5:
            raise ValueError(f"--validation_fraction {data_args.validation_fraction!r}: expected a share of each fold's "
                             "training rows in (0, 0.5].")
        self.fold_numbers = parse_folds(data_args.folds, data_args.num_folds)
        self.seeds = parse_seeds(args.seeds) if args.seeds is not None else [int(args.seed)]
        self.several_seeds = len(self.seeds) > 1
        if args.final_model not in FINAL_MODELS:
            raise ValueError(f"final_model={args.final_model!r}: expected one of {', '.join(FINAL_MODELS)}.")
        self.pretrained = model_args.text_model is not None or model_args.audio_model is not None
        for row in self.rows.values():
            self._check_encoders(row)
        check_prosody_rows(self.rows.values())  # before any training: the prosody row needs opensmile
        self.processes = Processes.of(args)  # (reading args.process_index sets the distributed state up)
        self.is_main = self.processes.is_main
        from accelerate import PartialState

        self.state = PartialState()
        self.fingerprint = fingerprint(model_args, data_args, args, preset=preset["preset"], seeds=self.seeds,
                                       world_size=args.world_size)
        self.fingerprint_sha256 = fingerprint_sha256(self.fingerprint)
        self.dataset = self.processor = self.folds = self.data_dir = None
        self.labels = tuple(EMOTIONS)  # the corpus' label set (the model's outputs), set by prepare()

    def _check_encoders(self, row: TableRow) -> None:
        if not self.pretrained:
            return
        needs = {"text": ["text_model"], "speech": ["audio_model"], "prosody": []}.get(row.fusion, ["text_model", "audio_model"])
        missing = [name for name in needs if getattr(self.model_args, name) is None]
        if missing:
            raise ValueError(
                f"fusion {row.fusion!r} needs --{' and --'.join(missing)} when pretrained encoders are used; give both "
                "--text_model and --audio_model, or neither for the embedded small encoders."
            )

    def fold_setup(self) -> FoldSetup:
        """What the fold code is given (after `prepare`): the options, the processor, the corpus and its folds."""
        if self.dataset is None:
            raise RuntimeError("prepare() the experiment before running its folds")
        return FoldSetup(model_args=self.model_args, data_args=self.data_args, args=self.args, processor=self.processor,
                         dataset=self.dataset, folds=self.folds, output_dir=self.output_dir, seeds=self.seeds,
                         processes=self.processes, preset=self.preset["preset"],
                         fingerprint_sha256=self.fingerprint_sha256, data_dir=self.data_dir,
                         labels=tuple(self.labels))

    # ------------------------------------------------------------------ preparation (main process first)
    def check_run_directory(self) -> None:
        """Main process: start over (--overwrite_output_dir), or refuse a directory that holds another run."""
        own_corpus = self.data_args.data_dir is not None or self.data_args.manifest is not None
        ours = dict(sample_dir_is_ours=self.data_args.sample_dir is None and not own_corpus,
                    cache_dir_is_ours=self.data_args.cache_dir is None and not own_corpus)
        if self.args.overwrite_output_dir:
            removed = clear_run(self.output_dir, **ours)
            if removed:
                logger.warning("--overwrite_output_dir: removed the previous run's %s from %s.",
                               ", ".join(path.name for path in removed), self.output_dir)
            return
        defaults = option_defaults(ModelArguments, DataArguments, RunArguments)
        if check_previous_run(self.output_dir, self.fingerprint, defaults):
            logger.info("%s holds a run with the same settings: finished folds are kept, the others resume.",
                        self.output_dir)

    def prepare(self) -> None:
        """Check the run directory, write / load the corpus, build the folds (checked) and the processor. The main
        process goes first; the others then read what it prepared (datasets cache, saved processor). A refusal is
        raised on every process, so that none waits for the others forever."""
        self._raise_everywhere(self.check_run_directory)
        with self.args.main_process_first(desc="data preparation", local=False):
            if self.is_main:
                self.output_dir.mkdir(parents=True, exist_ok=True)
            dataset, self.data_dir, self.labels = load_corpus(self.data_args, self.output_dir, self.is_main)
            if self.data_args.manifest is not None:
                check_manifest_rows(dataset, self.rows.values(), self.labels)
            self.dataset = drop_unusable_audio(dataset, self.output_dir / "skipped_audio.json",
                                               self.data_args.max_audio_seconds, self.is_main, self.args.disable_tqdm)
        self.folds = make_folds(self.dataset, self.data_args)  # every process: the same folds, or the same error
        for row in self.rows.values():  # a fold whose validation slice cannot be made fails now, before any training
            parse_positive_weight(row.model_arguments(self.model_args).emotion_pos_weight, self.labels)  # one per label
            tune = row.model_arguments(self.model_args).tune_thresholds
            for train_indices, _ in self.folds:
                validation_split(self.dataset, train_indices, self.data_args, row.name, tune)
        self.split_sha256 = split_sha256(self.dataset["segment_id"], self.folds)
        if not self.args.overwrite_output_dir:
            self._raise_everywhere(lambda: check_split(self.output_dir, self.split_sha256))
        with self.args.main_process_first(desc="processor", local=False):
            self.processor = load_or_build_processor(self.output_dir / "processor", self.model_args, self.data_args,
                                                     self.dataset["text"], self.is_main)
            if self.is_main:
                fetch_encoders(self.model_args)
        if self.is_main:
            sizes = [len(test) for _, test in self.folds]
            logger.info("%d folds (%s) of %s test rows; running folds %s of %s with seed%s %s.", len(self.folds),
                        self.data_args.fold_by, sizes, self.fold_numbers, ", ".join(self.rows),
                        "s" if self.several_seeds else "", ", ".join(map(str, self.seeds)))
            self._write_run_args()

    def _write_run_args(self) -> None:
        data, model = self.data_args, self.model_args
        run_args = {
            "command": [sys.executable, *sys.argv],
            "preset": self.preset,
            "fingerprint": self.fingerprint,
            "fingerprint_sha256": self.fingerprint_sha256,
            "rows": {name: row.options for name, row in self.rows.items()},
            "folds": self.fold_numbers,
            "seeds": self.seeds,
            "layout": "{row}/seed{s}/fold{k}" if self.several_seeds else "{row}/fold{k}",
            "split": {
                "data_dir": os.path.abspath(data.data_dir) if data.data_dir else None,
                "manifest": os.path.abspath(data.manifest) if data.manifest else None,
                "manifest_columns": data.manifest_columns, "manifest_rating_scale": data.manifest_rating_scale,
                "dataset_name": data.dataset_name, "annotations": data.annotations, "num_folds": data.num_folds,
                "fold_by": data.fold_by, "fold_seed": data.fold_seed, "max_samples": data.max_samples,
                "sample_size": None if data.data_dir or data.manifest else data.sample_size,
                "text_model": model.text_model, "audio_model": model.audio_model,
                "test_rows": [len(test) for _, test in self.folds], "sha256": self.split_sha256,
            },
            "data_dir_used": self.data_dir,
            "labels": list(self.labels),
            "num_rows": len(self.dataset),
            "world_size": self.args.world_size,
            "model": dataclasses.asdict(self.model_args),
            "data": dataclasses.asdict(self.data_args),
            "training": json.loads(self.args.to_json_string()),
            "environment": environment(self.args),
        }
        write_json(self.output_dir / RUN_ARGS, run_args)

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        """Run every (row, seed, fold) not done yet, the final models, and write / print the table. Returns the
        summary (main process)."""
        if self.dataset is None:
            self.prepare()
        jobs = [(row, seed, fold) for row in self.rows for seed in self.seeds for fold in self.fold_numbers]
        from tqdm.auto import tqdm

        progress = tqdm(total=len(jobs), desc="folds", unit="fold", disable=not self.is_main or self.args.disable_tqdm)
        started = time.time()
        setup = self.fold_setup()
        for row in self.rows.values():
            for seed in self.seeds:
                for fold in self.fold_numbers:
                    seed_folder = seed if self.several_seeds else None
                    done = fold_directory(self.output_dir, row.name, fold, seed_folder) / METRICS
                    if self.agree(done.exists()):
                        if self.is_main:
                            logger.info("%s: already done, skipped (%s).", setup.describe_fold(row, fold, seed), done)
                    else:
                        run_fold(setup, row, fold, seed)
                    progress.update(1)
            if self.args.final_model == "all_data":
                train_final_on_all_data(setup, row)
        progress.close()
        summary = None
        if self.is_main:
            summary = write_summary(self.output_dir, list(self.rows), self.fold_numbers, self.seeds)
            self.write_model_cards()
            logger.info("%d fold run(s) of %s in %.0f s; the table is in %s.", len(jobs), ", ".join(self.rows),
                        time.time() - started, self.output_dir / "summary.md")
            print("\n" + (self.output_dir / "summary.md").read_text(), flush=True)
        self.processes.wait_for_everyone()
        return summary

    def run_fold(self, row: str, fold: int, seed: int | None = None) -> dict | None:
        """Train and test one fold of `row` (see `kemd_emotion.experiment.fold.run_fold`); `seed` defaults to the
        first."""
        return run_fold(self.fold_setup(), self.rows[row], fold, self.seeds[0] if seed is None else seed)

    def _raise_everywhere(self, check) -> None:
        """Run `check` on the main process; the ValueError it raises is raised on every process."""
        problem = None
        if self.is_main:
            try:
                check()
            except ValueError as error:
                problem = str(error)
        problem = self.agree(problem)
        if problem is not None:
            raise ValueError(problem)

    def agree(self, value):
        """The main process' `value`, on every process (so that all of them take the same branch)."""
        return self.processes.agree(value)

    def write_model_cards(self) -> None:
        """README.md and figures for every final model of this run (main process, after the folds' metrics)."""
        for row in self.rows:
            final_dir = self.output_dir / row / "final"
            if not (final_dir / "final_info.json").exists():
                continue
            try:
                path = write_model_card(self.output_dir, row, final_dir)
                logger.info("%s: model card written to %s.", row, path)
            except Exception as error:  # a card is a nicety: never lose a finished run to it
                logger.warning("Could not write the model card of %s: %s: %s", final_dir, type(error).__name__, error)


REPORTED_LIBRARIES = ("torch", "transformers", "tokenizers", "datasets", "accelerate", "evaluate", "huggingface_hub",
                      "safetensors", "numpy", "soundfile", "librosa", "onnxruntime", "gradio")
"""The libraries whose versions a run records (and CI prints): those a result or an interface relies on."""


def library_versions() -> dict[str, str | None]:
    """Installed version of each of `REPORTED_LIBRARIES` (None where an optional one is not installed)."""
    from importlib import metadata

    versions = {}
    for name in REPORTED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(args: RunArguments) -> dict:
    """What a run's numbers rely on besides its options: library versions, threads, device, determinism switches."""
    device = str(args.device)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": library_versions(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "device": device,
        "device_name": torch.cuda.get_device_name(args.device) if device.startswith("cuda") else _cpu_name(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "full_determinism": bool(args.full_determinism),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "world_size": args.world_size,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def setup_logging(args: RunArguments) -> None:
    """INFO lines from this package on every process (one per fold, rank-tagged where it matters); transformers and
    datasets at WARNING so that the Trainer's progress bars and our lines stay readable."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING,
                        stream=sys.stderr)
    logger.setLevel(logging.INFO)
    logging.getLogger("kemd_emotion").setLevel(logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    import datasets

    datasets.utils.logging.set_verbosity_warning()


def describe_settings(model_args: ModelArguments, data_args: DataArguments, args: RunArguments, preset: dict) -> str:
    """One paragraph that says which preset is used and its key values, and which options overrode it."""
    if model_args.text_model is None and model_args.audio_model is None:
        what = ("small random-init encoders (hidden "
                f"{model_args.sample_hidden_size}, {model_args.sample_num_layers} layers, "
                f"{model_args.sample_conv_channels} conv channels)"
                + (", NOT the paper's setting" if preset["preset"] == "sample" else ""))
    else:
        what = f"{model_args.text_model} + {model_args.audio_model}"
    data = (f"manifest {data_args.manifest}" if data_args.manifest else data_args.data_dir
            or f"sample corpus ({data_args.sample_name}, {data_args.sample_size})")
    overrides = ", ".join(f"{key}={value['given']} (preset: {value['preset']})"
                          for key, value in preset["overrides"].items()) or "none"
    seeds = args.seeds if args.seeds is not None else args.seed
    return (
        f"Settings: preset {preset['preset']!r}"
        f"{' (auto)' if preset['requested'] == 'auto' else ''}: {what}.\n"
        f"  data: {data}; annotations {data_args.annotations}; {data_args.num_folds} folds ({data_args.fold_by}); "
        f"audio cropped to {data_args.max_audio_seconds} s\n"
        f"  model: rows={model_args.rows}, pooling={model_args.pooling}, "
        f"audio_representation={model_args.audio_representation}, regression_loss={model_args.regression_loss}, "
        f"emotion_pos_weight={model_args.emotion_pos_weight}, tune_thresholds={model_args.tune_thresholds}"
        f"{f' (validation_fraction {data_args.validation_fraction})' if model_args.tune_thresholds else ''}\n"
        f"  training: batch {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation x "
        f"{args.world_size} process(es), learning rate {args.learning_rate}"
        f"{f' (heads {args.head_learning_rate})' if args.head_learning_rate else ''}, {args.num_train_epochs:g} epochs, "
        f"{getattr(args.optim, 'value', args.optim)} eps {args.adam_epsilon}, warmup {args.warmup_steps}, "
        f"weight decay {args.weight_decay}, seed(s) {seeds}, device {args.device}, {torch.get_num_threads()} "
        f"thread(s){', full determinism' if args.full_determinism else ''}\n"
        f"  options given instead of the preset's: {overrides}\n"
        + "".join(f"  adapted to the encoder: {key}={value['used']} (preset: {value['preset']}; {value['why']})\n"
                  for key, value in preset.get("adapted", {}).items())
        + f"  output: {args.output_dir}"
    )


def main(argv: list[str] | None = None) -> dict | None:
    """Parse the arguments, run the experiment, return the summary (on the main process)."""
    model_args, data_args, args, preset = parse_arguments(argv)
    if args.full_determinism:
        # Before anything touches a GPU: cuBLAS reads CUBLAS_WORKSPACE_CONFIG when its first handle is made.
        enable_full_determinism(args.seed)
    setup_logging(args)
    if args.process_index == 0:
        logger.info("%s", describe_settings(model_args, data_args, args, preset))
    experiment = Experiment(model_args, data_args, args, preset)
    return experiment.run()


__all__ = ["Experiment", "main", "describe_settings", "setup_logging", "environment"]
