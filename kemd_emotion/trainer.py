"""`EmotionTrainer`: the transformers Trainer taught the two-headed emotion model.

What it adds to `transformers.Trainer`:

- the loss is the model's own (`outputs.loss`: the multi-label soft-margin loss plus the arousal/valence loss, weighted
  as the model's config says); both parts are logged too (`emotion_loss`, `regression_loss`);
- evaluation gathers only `(logits, regression)` and `(labels, regression_labels)` across processes, never the pooled
  embeddings, and keeps the dataset's order (so predictions line up with segment IDs);
- `compute_metrics` defaults to the paper's scores (`f1_micro, f1_macro, f1_weighted, ccc_arousal, ccc_valence,
  ccc_avg`, Pearson's r and per-class F1) at the fixed 0.5, and, when the model's config has `decision_thresholds`,
  the F-scores at those thresholds too (keys suffixed `_tuned`);
- `emotion_pos_weight="auto"` in the model's config is replaced by weights computed from the training rows
  (`automatic_positive_weights`) when the Trainer is built, so the saved config records the weights used;
- `EmotionTrainingArguments.head_learning_rate` gives the fusion projection and the heads their own learning rate
  (`learning_rate` then applies to the two encoders);
- length-grouped batches read the dataset's `duration` column (`train_sampling_strategy="group_by_length"`), in an
  order fixed by the seed and the epoch, so that a resumed run replays the batches it had not trained on yet.

Gradient accumulation: the model has `accepts_loss_kwargs = False` and returns a per-batch mean, so the Trainer divides
each micro-batch loss by the accumulation steps; `GA=2 x batch 2` then makes the same update as `GA=1 x batch 4`
(with the MSE regression loss; `regression_loss="ccc"` is a whole-batch statistic and is not decomposable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import datasets
import numpy as np
import torch
from torch.utils.data import SequentialSampler
from transformers import EvalPrediction, Trainer, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from .metrics import compute_emotion_metrics, tuned_emotion_scores

LABEL_NAMES = ["labels", "regression_labels"]
"""The batch keys that hold targets: `(B, 7)` multi-hot emotions and `(B, 2)` arousal, valence."""

ENCODER_PARAMETER = re.compile(r"(^|\.)(text_model|audio_model)\.")
"""Names of the two encoders' parameters (any DDP/FSDP wrapper prefix allowed)."""


@dataclass
class EmotionTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus what the emotion experiment needs.

    Args:
        head_learning_rate (`float`, *optional*): learning rate of everything that is not an encoder (the "add"
            projection, the emotion head, the regression head). None: `learning_rate` for all parameters.
    """

    head_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the fusion projection and the two heads (default: learning_rate). "
            "learning_rate then applies to the text and speech encoders."
        },
    )


POSITIVE_WEIGHT_RANGE = (1.0, 10.0)
"""`emotion_pos_weight="auto"`: negatives / positives per emotion, clipped to this range. Never below 1 (a frequent
emotion is not down-weighted); at most 10, so an emotion with a handful of examples does not swamp the loss."""


def automatic_positive_weights(labels, low: float = POSITIVE_WEIGHT_RANGE[0],
                               high: float = POSITIVE_WEIGHT_RANGE[1]) -> list[float]:
    """Per emotion, (rows without it) / (rows with it) among the `(N, C)` multi-hot training `labels`, clipped to
    [`low`, `high`]; an emotion with no positive row gets `high`.

    >>> automatic_positive_weights([[1, 0, 0], [1, 0, 1], [0, 1, 0], [1, 0, 0]])
    [1.0, 3.0, 3.0]
    """
    labels = np.asarray(labels, dtype=bool)
    if labels.ndim != 2 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty (N, num_labels) multi-hot matrix; got shape {labels.shape}.")
    positives = labels.sum(axis=0).astype(np.float64)
    negatives = len(labels) - positives
    ratios = np.divide(negatives, positives, out=np.full_like(positives, high), where=positives > 0)
    return [float(value) for value in np.clip(ratios, low, high)]


def emotion_compute_metrics(eval_prediction: EvalPrediction, decision_thresholds=None,
                            emotions=None) -> dict[str, float]:
    """`compute_metrics` for the Trainer: the paper's scores from `((logits, regression), (labels, regression_labels))`
    at the fixed 0.5, plus the F-scores at `decision_thresholds` (one per emotion; keys suffixed `_tuned`) when given.
    `emotions`: the class names of the per-class keys (the model's `id2label` order); None: KEMDy's seven."""
    logits, regression = _split(eval_prediction.predictions, "predictions")
    labels, regression_labels = _split(eval_prediction.label_ids, "label_ids")
    names = {} if emotions is None else {"emotions": tuple(emotions)}
    metrics = compute_emotion_metrics(logits, labels, regression, regression_labels, **names)
    if decision_thresholds is not None and logits is not None and labels is not None:
        metrics.update(tuned_emotion_scores(logits, labels, decision_thresholds, names.get("emotions")))
    return metrics


def label_names(config) -> tuple[str, ...]:
    """The model's emotion names in output order: ``config.id2label[0], ..., config.id2label[num_labels - 1]``."""
    id2label = {int(key): value for key, value in config.id2label.items()}
    return tuple(id2label[index] for index in range(config.num_labels))


def _split(pair, name: str):
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        return tuple(None if item is None else np.asarray(item) for item in pair)
    raise ValueError(f"{name} must be a pair (emotions, arousal/valence); got {type(pair).__name__}.")


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """`LengthGroupedSampler` whose order depends only on `seed` and the epoch (`set_epoch`, called by the Trainer).

    The stock sampler draws from the global RNG, so a run resumed in the middle of an epoch would skip the first
    batches of a different permutation than the one it had trained on; this one replays the same order, and every
    process of a distributed run agrees on it.
    """

    def __init__(self, batch_size: int, lengths: list[float], seed: int = 0):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


class EmotionTrainer(Trainer):
    """A `transformers.Trainer` for [`KlueWav2Vec2ForEmotion`]; takes the same arguments.

    `compute_metrics` defaults to [`emotion_compute_metrics`] and `args.label_names` to `["labels",
    "regression_labels"]`. Use [`EmotionTrainingArguments`] for a separate head learning rate.
    """

    def __init__(self, *args, compute_metrics=None, **kwargs):
        super().__init__(*args, compute_metrics=compute_metrics or self.paper_metrics, **kwargs)
        if self.args.label_names is None:
            self.label_names = list(LABEL_NAMES)
        self.resolve_automatic_positive_weights()
        self._loss_parts = {"emotion_loss": 0.0, "regression_loss": 0.0}
        self._loss_parts_steps = 0

    def paper_metrics(self, eval_prediction: EvalPrediction) -> dict[str, float]:
        """[`emotion_compute_metrics`] at 0.5 and at the model's `decision_thresholds` (when its config has them)."""
        config = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        return emotion_compute_metrics(eval_prediction, getattr(config, "decision_thresholds", None),
                                       label_names(config) if config is not None else None)

    def resolve_automatic_positive_weights(self) -> None:
        """`emotion_pos_weight="auto"` -> [`automatic_positive_weights`] of the training rows' `emotion` column."""
        config = getattr(self.model, "config", None)
        if getattr(config, "emotion_pos_weight", None) != "auto":
            return
        column = "emotion"
        if not isinstance(self.train_dataset, datasets.Dataset) or column not in self.train_dataset.column_names:
            raise ValueError(
                "emotion_pos_weight='auto' is computed from the training rows' emotions: the train_dataset must be a "
                f"datasets.Dataset with an {column!r} column of emotion names; or set config.emotion_pos_weight to "
                f"{config.num_labels} numbers (kemd_emotion.trainer.automatic_positive_weights)."
            )
        labels = np.zeros((len(self.train_dataset), config.num_labels), dtype=bool)
        for row, names in enumerate(self.train_dataset[column]):
            for name in names:
                labels[row, config.label2id[name]] = True
        config.emotion_pos_weight = automatic_positive_weights(labels)

    # ------------------------------------------------------------------ loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's loss (as its config weights it); `num_items_in_batch` is not needed: the loss is a batch mean."""
        outputs = model(**inputs)
        if outputs.loss is None:
            raise ValueError(
                "The model returned no loss: the batch has neither 'labels' (B, 7) nor 'regression_labels' (B, 2). "
                f"Its keys are: {', '.join(sorted(inputs))}."
            )
        if model.training:
            for name in self._loss_parts:
                part = getattr(outputs, name)
                if part is not None:  # kept as a tensor: no device sync per step
                    self._loss_parts[name] = self._loss_parts[name] + part.detach().float()
            self._loss_parts_steps += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean emotion / regression losses since the last training log (averaged over processes)."""
        if "loss" in logs and self._loss_parts_steps > 0:
            means = torch.stack(
                [torch.as_tensor(value, dtype=torch.float32, device=self.args.device) for value in self._loss_parts.values()]
            ) / self._loss_parts_steps
            means = self.accelerator.reduce(means, reduction="mean") if self.accelerator.num_processes > 1 else means
            for name, value in zip(self._loss_parts, means.tolist()):
                logs[name] = round(value, 6)
            self._loss_parts = dict.fromkeys(self._loss_parts, 0.0)
            self._loss_parts_steps = 0
        super().log(logs, start_time)

    # ------------------------------------------------------------------ evaluation
    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Return `(loss, (logits, regression), (labels, regression_labels))` for one batch.

        Only these four arrays are gathered across processes: the pooled embeddings the model also returns stay here.
        A batch without targets gives `(None, (logits, regression), None)`.
        """
        inputs = self._prepare_inputs(inputs)
        has_labels = all(inputs.get(name) is not None for name in self.label_names)
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = model(**inputs)
        loss = outputs.loss.detach().mean() if has_labels and outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        predictions = (outputs.logits.detach(), outputs.regression.detach())
        labels = tuple(inputs[name].detach() for name in self.label_names) if has_labels else None
        return loss, predictions, labels

    def _get_eval_sampler(self, eval_dataset):
        # Always in order, even with group_by_length: predictions must line up with the dataset's segment IDs.
        if eval_dataset is None or self.args.world_size > 1:
            return None
        return SequentialSampler(eval_dataset)

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        column = self.args.length_column_name
        if (
            self.args.train_sampling_strategy == "group_by_length"
            and isinstance(train_dataset, datasets.Dataset)
            and column in train_dataset.column_names
        ):
            # A plain list: datasets 5 returns a lazy Column, which the sampler would index one row at a time.
            lengths = [float(length) for length in train_dataset[column]]
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=lengths, seed=seed
            )
        return super()._get_train_sampler(train_dataset)

    # ------------------------------------------------------------------ optimizer
    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with `head_learning_rate` set, encoders and heads get separate param groups."""
        head_learning_rate = getattr(self.args, "head_learning_rate", None)
        if self.optimizer is not None or head_learning_rate is None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups = []
        for is_encoder, learning_rate in ((True, self.args.learning_rate), (False, head_learning_rate)):
            for decays in (True, False):
                params = [
                    parameter
                    for name, parameter in opt_model.named_parameters()
                    if parameter.requires_grad
                    and bool(ENCODER_PARAMETER.search(name)) == is_encoder
                    and (name in decay) == decays
                ]
                if params:
                    groups.append(
                        {"params": params, "lr": learning_rate, "weight_decay": self.args.weight_decay if decays else 0.0}
                    )
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs = {key: value for key, value in optimizer_kwargs.items() if key != "lr"}
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer


__all__ = [
    "EmotionTrainer",
    "EmotionTrainingArguments",
    "EpochSeededLengthGroupedSampler",
    "emotion_compute_metrics",
    "automatic_positive_weights",
    "POSITIVE_WEIGHT_RANGE",
    "LABEL_NAMES",
]
