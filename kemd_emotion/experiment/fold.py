"""One fold's training: build the model, train on the other folds (resuming from a checkpoint), predict the test
fold, write ``predictions.npz`` and ``metrics.json``; and the final models saved for sharing (no pickles).

Every process of a distributed run calls these (each Trainer is data-parallel over all of them); only the main
process writes files. They are given what they need, a `FoldSetup` (the options, the processor, the corpus and its
folds, where results go) and a `TableRow`; `kemd_emotion.experiment.Experiment.fold_setup` makes the setup once the
data are prepared.
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import TrainerCallback, set_seed
from transformers.trainer import TRAINING_ARGS_NAME

from ..configuration_klue_wav2vec2 import EMOTIONS, KlueWav2Vec2EmotionConfig, fusion_modalities
from ..hub import PICKLE_SUFFIXES
from ..metrics import compute_emotion_metrics, majority_baseline, tune_decision_thresholds, tuned_emotion_scores
from ..modeling_klue_wav2vec2 import KlueWav2Vec2ForEmotion
from ..processing_klue_wav2vec2 import KlueWav2Vec2Processor
from ..trainer import EmotionTrainer
from .arguments import DataArguments, ModelArguments, RunArguments, parse_positive_weight
from .preparation import validation_split
from .processes import Processes
from .prosody_row import run_prosody_fold, train_prosody_final
from .rows import PROSODY_FUSION, TableRow
from .run_directory import (METRICS, PREDICTIONS, VALIDATION_PREDICTIONS, fold_directory, last_complete_checkpoint,
                            write_json, write_npz)

logger = logging.getLogger("kemd_emotion.experiment")

EXIT_AFTER_SAVE_ENV = "KEMD_EMOTION_EXIT_AFTER_SAVE"
"""Test hook: ``"{row}/fold{k}:{step}"`` (``"{row}/seed{s}/fold{k}:{step}"`` with several seeds) makes the
process exit hard (``os._exit(75)``) right after the Trainer has saved the checkpoint of step >= ``step`` in that
fold, as a killed job would. Used by the resume tests."""


@dataclass(frozen=True)
class FoldSetup:
    """What every fold of a run is trained and tested with."""

    model_args: ModelArguments
    """The run's model options; a row's modifiers are applied over them (`TableRow.model_arguments`)."""
    data_args: DataArguments
    args: RunArguments
    """The training arguments; each Trainer gets a copy with its own `output_dir` and `seed`."""
    processor: KlueWav2Vec2Processor
    dataset: object
    """The corpus (a `datasets.Dataset`), unusable clips left out."""
    folds: list
    """``[(train indices, test indices), ...]``, one pair per fold."""
    output_dir: Path
    seeds: list[int]
    processes: Processes
    preset: str
    """The resolved preset's name (final_info.json records it)."""
    fingerprint_sha256: str
    """The run's settings fingerprint: every metrics.json and final_info.json carries it."""
    data_dir: str | None = None
    """The corpus' root folder (the sample corpus' when the run wrote one): the prosody row caches its features there."""
    labels: tuple[str, ...] = EMOTIONS
    """The corpus' label set, in the model's output order (its config's `id2label`): KEMDy's seven `EMOTIONS`, or a
    manifest's own labels."""

    @property
    def several_seeds(self) -> bool:
        return len(self.seeds) > 1

    def validation_split(self, row: TableRow, train_indices) -> tuple[np.ndarray, np.ndarray | None]:
        """`kemd_emotion.experiment.preparation.validation_split` for `row`'s model options."""
        return validation_split(self.dataset, train_indices, self.data_args, row.name,
                                row.model_arguments(self.model_args).tune_thresholds)

    def describe_fold(self, row: TableRow, fold: int, seed: int) -> str:
        """``"cat fold 1/5"``, or ``"cat seed 2 fold 1/5"`` with several seeds (log lines)."""
        return f"{row.name}{f' seed {seed}' if self.several_seeds else ''} fold {fold}/{self.data_args.num_folds}"


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


def build_model(model_args, fusion: str, vocab_size: int, seed: int,
                labels=EMOTIONS) -> KlueWav2Vec2ForEmotion:
    """The model of `fusion`, initialised from `seed`: pretrained encoders when given, else the small ones; one
    emotion output per label of `labels` (its config's `id2label` / `label2id`, in that order).

    `emotion_pos_weight="auto"` stays in the config here: the `EmotionTrainer` replaces it by the weights of the rows
    it trains on."""
    options = dict(fusion=fusion, pooling=model_args.pooling, audio_representation=model_args.audio_representation,
                   regression_loss=model_args.regression_loss, emotion_loss_weight=model_args.emotion_loss_weight,
                   regression_loss_weight=model_args.regression_loss_weight,
                   classifier_dropout=model_args.classifier_dropout,
                   freeze_feature_encoder=model_args.freeze_feature_encoder,
                   emotion_pos_weight=parse_positive_weight(model_args.emotion_pos_weight, labels),
                   id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    set_seed(seed)
    if model_args.text_model is not None or model_args.audio_model is not None:
        reads_text, reads_audio = fusion_modalities(fusion)
        return KlueWav2Vec2ForEmotion.from_text_audio_pretrained(
            model_args.text_model if reads_text else None,
            model_args.audio_model if reads_audio else None,
            **options,
        )
    from ..small_encoders import tiny_audio_config, tiny_text_config

    width, layers = model_args.sample_hidden_size, model_args.sample_num_layers
    config = KlueWav2Vec2EmotionConfig(
        text_config=tiny_text_config(vocab_size=vocab_size, hidden_size=width, num_layers=layers),
        audio_config=tiny_audio_config(conv_channels=model_args.sample_conv_channels, hidden_size=width,
                                       num_layers=layers),
        **options,
    )
    return KlueWav2Vec2ForEmotion(config)


def make_trainer(setup: FoldSetup, row: TableRow, directory: Path, train_dataset, seed: int,
                 callbacks=()) -> EmotionTrainer:
    """A Trainer of `row`'s model writing its checkpoints to `directory`, seeded with `seed` (model init, dropout,
    data order)."""
    from ..data import KemdyCollator

    args = copy.copy(setup.args)
    args.output_dir, args.seed = str(directory), seed
    trainer = EmotionTrainer(
        model=build_model(row.model_arguments(setup.model_args), row.fusion, len(setup.processor.tokenizer), seed,
                          setup.labels),
        args=args,
        train_dataset=train_dataset,
        data_collator=KemdyCollator(setup.processor, max_audio_seconds=setup.data_args.max_audio_seconds,
                                    labels=setup.labels),
        processing_class=setup.processor,
        callbacks=list(callbacks),
    )
    where, _, step = os.environ.get(EXIT_AFTER_SAVE_ENV, "").partition(":")
    if where and where == directory.relative_to(setup.output_dir).as_posix():
        trainer.add_callback(ExitAfterSaveCallback(int(step)))
    return trainer


def run_fold(setup: FoldSetup, row: TableRow, fold: int, seed: int) -> dict | None:
    """Train `row`'s model on every fold but `fold` with `seed`, predict `fold`, write its predictions and metrics
    (main process). With threshold tuning, a validation slice of the training rows is held out (grouped like the
    folds), the model trains on the rest, and the thresholds that maximise each emotion's F1 on the slice go into its
    config; the test fold is predicted only after that.

    Returns the metrics on the main process, None on the others.
    """
    if row.fusion == PROSODY_FUSION:  # no network to train: a linear head on eGeMAPS features
        return run_prosody_fold(setup, row, fold, seed)
    train_indices, test_indices = setup.folds[fold]
    fit_indices, validation_indices = setup.validation_split(row, train_indices)
    dataset, processes = setup.dataset, setup.processes
    train, test = dataset.select(fit_indices), dataset.select(test_indices)
    fold_dir = fold_directory(setup.output_dir, row.name, fold, seed if setup.several_seeds else None)
    name = setup.describe_fold(row, fold, seed)
    counter = CountTrainingSteps()
    trainer = make_trainer(setup, row, fold_dir, train, seed, callbacks=[counter])
    checkpoint = processes.agree(last_complete_checkpoint(fold_dir) if processes.is_main else None)
    args = setup.args
    if processes.is_main:
        what = f"resuming from {Path(checkpoint).name}" if checkpoint else "training"
        held = f" ({len(validation_indices)} held out to tune thresholds)" if validation_indices is not None else ""
        logger.info("%s: %s on %d rows%s, testing on %d.", name, what, len(train), held, len(test))
    started = time.time()
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    logger.info("[rank %d/%d] %s: ran %d training steps on %s.", args.process_index, args.world_size, name,
                counter.steps, socket.gethostname())
    ranks = processes.gather({"rank": args.process_index, "host": socket.gethostname(), "pid": os.getpid(),
                              "training_steps_this_session": counter.steps})
    thresholds = None
    if validation_indices is not None:
        thresholds = tune_thresholds(processes, trainer, dataset.select(validation_indices), fold_dir, name,
                                     setup.labels)
    prediction = trainer.predict(test, metric_key_prefix="test")
    if fold == len(setup.folds) - 1 and seed == setup.seeds[0] and args.final_model == "last_fold":
        save_final(setup, trainer, row, {"origin": "last_fold", "fold": fold, "seed": seed, "train_rows": len(train)})

    metrics = None
    if processes.is_main:
        logits, regression, labels, regression_labels, segment_ids, aligned = _aligned_predictions(prediction, test, name)
        write_npz(fold_dir / PREDICTIONS, segment_id=segment_ids, logits=logits, regression=regression, labels=labels,
                  regression_labels=regression_labels)
        names = setup.labels
        metrics = compute_emotion_metrics(logits, labels, regression, regression_labels, emotions=names)
        if thresholds is not None:
            metrics.update(tuned_emotion_scores(logits, labels, thresholds, names))
        metrics.update(majority_baseline(labels, _multi_hot(dataset.select(train_indices)["emotion"], names),
                                         emotions=names))
        config = trainer.accelerator.unwrap_model(trainer.model).config
        metrics.update({f"support_{emotion}": int(count) for emotion, count in zip(names, labels.sum(axis=0))})
        metrics.update({
            "labels": list(names),
            "fusion": config.fusion, "row": row.name, "row_options": row.options, "fold": fold,
            "seed": seed, "num_folds": len(setup.folds), "num_train": len(train),
            "num_validation": 0 if validation_indices is None else len(validation_indices), "num_test": len(test),
            "decision_thresholds": None if thresholds is None else [float(t) for t in thresholds],
            "emotion_pos_weight": config.emotion_pos_weight,
            "test_loss": prediction.metrics.get("test_loss"),
            "global_step": trainer.state.global_step, "epochs": trainer.state.epoch,
            "resumed_from": Path(checkpoint).name if checkpoint else None,
            "train_loss": train_output.training_loss, "seconds_this_session": round(time.time() - started, 1),
            "world_size": args.world_size, "processes": ranks, "predictions_aligned": aligned,
            "distributed_type": str(trainer.accelerator.distributed_type.value),
            "fingerprint_sha256": setup.fingerprint_sha256,
        })
        write_json(fold_dir / METRICS, metrics)  # last: marks the fold done
        tuned = f" (tuned: micro {100 * metrics['f1_micro_tuned']:.2f} macro {100 * metrics['f1_macro_tuned']:.2f})" \
            if thresholds is not None else ""
        logger.info(
            "%s | F1 micro %.2f macro %.2f%s | CCC arousal %.2f valence %.2f avg %.2f | majority F1 %.2f | %.0f s",
            name, 100 * metrics["f1_micro"], 100 * metrics["f1_macro"], tuned, 100 * metrics["ccc_arousal"],
            100 * metrics["ccc_valence"], 100 * metrics["ccc_avg"], 100 * metrics["majority_f1_micro"],
            time.time() - started,
        )
        if not args.keep_checkpoints:
            for path in fold_dir.glob("checkpoint-*"):
                shutil.rmtree(path, ignore_errors=True)
    processes.wait_for_everyone()
    del trainer
    gc.collect()
    return metrics


def tune_thresholds(processes: Processes, trainer: EmotionTrainer, validation, directory: Path,
                    name: str, labels=EMOTIONS) -> np.ndarray:
    """Predict the held-out `validation` rows, pick per emotion the threshold with the best F1 on them, put the
    thresholds into the trained model's config (every process: the main process' choice) and, on the main process,
    write what they were chosen from to ``validation_predictions.npz``. Returns the `(7,)` thresholds."""
    prediction = trainer.predict(validation, metric_key_prefix="validation")
    thresholds = None
    if processes.is_main:
        logits, _, labels, _, segment_ids, _ = _aligned_predictions(prediction, validation, f"{name} validation")
        thresholds = tune_decision_thresholds(logits, labels)
        write_npz(directory / VALIDATION_PREDICTIONS, segment_id=segment_ids, logits=logits, labels=labels,
                  decision_thresholds=thresholds)
        logger.info("%s: decision thresholds tuned on %d held-out rows: %s.", name, len(validation),
                    ", ".join(f"{emotion} {value:.2f}" for emotion, value in zip(labels, thresholds)))
    thresholds = np.asarray(processes.agree(None if thresholds is None else thresholds.tolist()), dtype=np.float64)
    trainer.accelerator.unwrap_model(trainer.model).config.decision_thresholds = [float(t) for t in thresholds]
    return thresholds


def _aligned_predictions(prediction, rows, name: str):
    """``(logits, regression, labels, regression_labels, segment_ids, aligned)`` of `Trainer.predict` on `rows`;
    the segment IDs are blank when the gathered predictions do not line up with the rows (logged as an error)."""
    logits, regression = (np.asarray(a) for a in prediction.predictions)
    labels, regression_labels = (np.asarray(a) for a in prediction.label_ids)
    expected = np.stack([np.asarray(rows["arousal"]), np.asarray(rows["valence"])], axis=1)
    aligned = regression_labels.shape == expected.shape and bool(np.allclose(regression_labels, expected, atol=1e-5))
    segment_ids = np.asarray(rows["segment_id"])
    if not aligned:
        logger.error("%s: the %d gathered predictions do not line up with the %d rows; their file gets empty segment "
                     "IDs.", name, len(logits), len(rows))
        segment_ids = np.full(len(logits), "", dtype=segment_ids.dtype)
    return logits, regression, labels, regression_labels, segment_ids, aligned


def train_final_on_all_data(setup: FoldSetup, row: TableRow) -> None:
    """`--final_model all_data`: one more training of `row`'s model, on every row (but the validation slice when it
    tunes thresholds), with the first seed, saved as {row}/final."""
    if row.fusion == PROSODY_FUSION:
        return train_prosody_final(setup, row)
    processes, dataset = setup.processes, setup.dataset
    final_info = setup.output_dir / row.name / "final" / "final_info.json"
    if processes.agree(final_info.exists()):
        if processes.is_main:
            logger.info("%s: final model on all data already trained (%s).", row.name, final_info.parent)
        return
    directory = setup.output_dir / row.name / "all_data"
    seed = setup.seeds[0]
    fit_indices, validation_indices = setup.validation_split(row, np.arange(len(dataset)))
    train = dataset.select(fit_indices)
    trainer = make_trainer(setup, row, directory, train, seed)
    checkpoint = processes.agree(last_complete_checkpoint(directory) if processes.is_main else None)
    if processes.is_main:
        logger.info("%s: training the final model on %d of all %d rows%s.", row.name, len(train), len(dataset),
                    f", resuming from {Path(checkpoint).name}" if checkpoint else "")
    trainer.train(resume_from_checkpoint=checkpoint)
    if validation_indices is not None:
        tune_thresholds(processes, trainer, dataset.select(validation_indices), directory, f"{row.name} final model",
                        setup.labels)
    save_final(setup, trainer, row, {"origin": "all_data", "fold": None, "seed": seed, "train_rows": len(train)})
    if processes.is_main and not setup.args.keep_checkpoints:
        shutil.rmtree(directory, ignore_errors=True)
    processes.wait_for_everyone()
    del trainer
    gc.collect()


def save_final(setup: FoldSetup, trainer: EmotionTrainer, row: TableRow, info: dict) -> None:
    """Save the trained model (with its decision thresholds and positive weights in its config) with its processor and
    code to {row}/final (all processes call this).

    The folder is for sharing: safetensors and JSON only. The Trainer's ``training_args.bin`` (a pickle that only
    ``torch.load(weights_only=False)`` reads) is replaced by ``training_args.json``.
    """
    final_dir = setup.output_dir / row.name / "final"
    trainer.save_model(str(final_dir))  # every process: FSDP gathers the weights; only the main one writes
    if not setup.processes.is_main:
        return
    (final_dir / TRAINING_ARGS_NAME).unlink(missing_ok=True)
    (final_dir / "training_args.json").write_text(trainer.args.to_json_string(), encoding="utf-8")
    pickles = [path.name for path in final_dir.rglob("*") if path.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise RuntimeError(f"{final_dir} holds pickle files ({', '.join(pickles)}); a shared folder must not.")
    config = trainer.accelerator.unwrap_model(trainer.model).config
    info = {**info, "fusion": config.fusion, "row": row.name, "decision_thresholds": config.decision_thresholds,
            "emotion_pos_weight": config.emotion_pos_weight, "labels": list(setup.labels),
            "run_dir": str(setup.output_dir), "num_folds": len(setup.folds),
            "preset": setup.preset, "text_model": setup.model_args.text_model,
            "audio_model": setup.model_args.audio_model, "fingerprint_sha256": setup.fingerprint_sha256}
    write_json(final_dir / "final_info.json", info)
    logger.info("%s: saved the final model (%s) to %s.", row.name, info["origin"], final_dir)


def _multi_hot(emotions, labels=EMOTIONS) -> np.ndarray:
    from ..data import multi_hot

    return np.stack([multi_hot(row, labels=labels) for row in emotions])


__all__ = ["FoldSetup", "run_fold", "tune_thresholds", "train_final_on_all_data", "save_final", "build_model", "make_trainer",
           "EXIT_AFTER_SAVE_ENV",
           "ExitAfterSaveCallback", "CountTrainingSteps"]
