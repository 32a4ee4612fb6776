"""EmotionTrainer: gradient accumulation, evaluation outputs, metrics, param groups, length-grouped sampling."""

import copy

import datasets
import numpy as np
import pytest
import torch
from helpers.audio import speech_like
from transformers.trainer_pt_utils import LengthGroupedSampler

from kemd_emotion import KlueWav2Vec2ForEmotion
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_config
from kemd_emotion.trainer import EmotionTrainer, EmotionTrainingArguments


@pytest.fixture(scope="module")
def rows():
    """Eight utterances of different lengths with multi-hot emotions and arousal/valence."""
    rng = np.random.default_rng(1)
    items = []
    for i in range(8):
        labels = np.zeros(7, dtype=np.float32)
        labels[i % 7] = 1
        if i % 3 == 0:
            labels[4] = 1  # a tie with neutral
        items.append(
            {
                "segment_id": f"seg{i}",
                "text": DEFAULT_TEXTS[i % len(DEFAULT_TEXTS)],
                "audio": speech_like(rng, 0.4 + 0.1 * i).tolist(),
                "labels": labels.tolist(),
                "regression_labels": [1.0 + 0.5 * (i % 5), 5.0 - 0.4 * i],
                "duration": 0.4 + 0.1 * i,
            }
        )
    return datasets.Dataset.from_list(items)


@pytest.fixture(scope="module")
def collate(tiny_processor):
    def collate(batch):
        features = tiny_processor(text=[row["text"] for row in batch], audio=[np.asarray(row["audio"], np.float32) for row in batch])
        features["labels"] = torch.tensor([row["labels"] for row in batch])
        features["regression_labels"] = torch.tensor([row["regression_labels"] for row in batch])
        return dict(features)

    return collate


def deterministic_model(tiny_processor, fusion="cat", seed=0):
    """A tiny model without dropout or time masking, so two runs over the same data must agree."""
    config = tiny_config(fusion=fusion, vocab_size=len(tiny_processor.tokenizer), classifier_dropout=0.0,
                         audio_representation="hidden")
    config.text_config.hidden_dropout_prob = config.text_config.attention_probs_dropout_prob = 0.0
    for name in ("hidden_dropout", "activation_dropout", "attention_dropout", "feat_proj_dropout", "mask_time_prob"):
        setattr(config.audio_config, name, 0.0)
    torch.manual_seed(seed)
    return KlueWav2Vec2ForEmotion(config)


def arguments(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
        remove_unused_columns=False, disable_tqdm=True, seed=0, dataloader_num_workers=0,
    )
    settings.update(overrides)
    return EmotionTrainingArguments(**settings)


def test_gradient_accumulation_matches_a_larger_batch(tmp_path, tiny_processor, rows, collate):
    """GA=2 x batch 2 makes the same two SGD updates as GA=1 x batch 4 (SGD: an unscaled GA loss would double them)."""
    initial = deterministic_model(tiny_processor)
    results = {}
    for batch_size, steps in ((4, 1), (2, 2)):
        model = copy.deepcopy(initial)
        args = arguments(
            tmp_path / f"ga{steps}", per_device_train_batch_size=batch_size, gradient_accumulation_steps=steps,
            max_steps=2, optim="sgd", learning_rate=0.5, lr_scheduler_type="constant", max_grad_norm=0.0,
            train_sampling_strategy="sequential",
        )
        trainer = EmotionTrainer(model=model, args=args, train_dataset=rows, data_collator=collate)
        trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        results[steps] = (model.state_dict(), losses)

    (big, big_losses), (accumulated, accumulated_losses) = results[1], results[2]
    np.testing.assert_allclose(accumulated_losses, big_losses, rtol=1e-5)
    moved = max((big[name] - initial.state_dict()[name]).abs().max().item() for name in big)
    assert moved > 1e-3, "the parameters did not move: the comparison would be vacuous"
    # float32 sums over ~1e5 audio samples per conv weight differ in their last bits with the thread count; an
    # unscaled GA loss would move every parameter twice as far (> 1e-3 here).
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=1e-4, atol=1e-5,
                                   msg=lambda message, name=name: f"{name}: {message}")


def test_evaluation_gathers_only_predictions_and_targets(tmp_path, tiny_processor, rows, collate):
    model = deterministic_model(tiny_processor, fusion="add")
    args = arguments(tmp_path, per_device_eval_batch_size=3, train_sampling_strategy="group_by_length",
                     length_column_name="duration")
    trainer = EmotionTrainer(model=model, args=args, data_collator=collate)
    output = trainer.predict(rows)
    logits, regression = output.predictions
    labels, regression_labels = output.label_ids
    assert logits.shape == (8, 7) and regression.shape == (8, 2)
    # Order is kept even with group_by_length: row i's targets come back at index i.
    np.testing.assert_allclose(labels, np.array(rows["labels"]))
    np.testing.assert_allclose(regression_labels, np.array(rows["regression_labels"]))
    for key in ("f1_micro", "f1_macro", "f1_weighted", "ccc_arousal", "ccc_valence", "ccc_avg", "pearson_valence",
                "f1_neutral", "loss"):
        assert f"test_{key}" in output.metrics, key
    # The same rows scored alone give the same logits (padding in the batch changes nothing).
    model.eval()
    with torch.no_grad():
        alone = model(**{k: v for k, v in collate([rows[5]]).items() if "labels" not in k}).logits.numpy()
    np.testing.assert_allclose(logits[5:6], alone, atol=1e-5)


def test_training_logs_both_losses(tmp_path, tiny_processor, rows, collate):
    model = deterministic_model(tiny_processor, fusion="text")
    args = arguments(tmp_path, per_device_train_batch_size=4, max_steps=2, learning_rate=1e-3)
    trainer = EmotionTrainer(model=model, args=args, train_dataset=rows, data_collator=collate)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and all({"emotion_loss", "regression_loss"} <= set(entry) for entry in logged)


def test_head_learning_rate_makes_separate_param_groups(tmp_path, tiny_processor, rows, collate):
    model = deterministic_model(tiny_processor, fusion="add")
    args = arguments(tmp_path, learning_rate=1e-5, head_learning_rate=1e-3, weight_decay=0.01, max_steps=1)
    trainer = EmotionTrainer(model=model, args=args, train_dataset=rows, data_collator=collate)
    optimizer = trainer.create_optimizer()
    group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    assert len(group_of) == sum(1 for p in model.parameters() if p.requires_grad)
    for name, parameter in model.named_parameters():
        expected = 1e-5 if name.startswith(("text_model.", "audio_model.")) else 1e-3
        assert group_of[id(parameter)]["lr"] == expected, name
    assert group_of[id(model.emotion_head.bias)]["weight_decay"] == 0.0
    assert group_of[id(model.emotion_head.weight)]["weight_decay"] == 0.01
    assert optimizer.defaults["eps"] == args.adam_epsilon


def test_group_by_length_uses_the_duration_column(tmp_path, tiny_processor, rows, collate):
    model = deterministic_model(tiny_processor)
    args = arguments(tmp_path, per_device_train_batch_size=2, train_sampling_strategy="group_by_length",
                     length_column_name="duration")
    trainer = EmotionTrainer(model=model, args=args, train_dataset=rows, data_collator=collate)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    assert sampler.lengths == pytest.approx(list(rows["duration"]))
    assert sorted(sampler) == list(range(len(rows)))
    # The order is a function of (seed, epoch) only: a resumed run replays it, whatever the global RNG did.
    sampler.set_epoch(1)
    first = list(sampler)
    torch.manual_seed(1234)
    assert list(sampler) == first
    orders = set()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        orders.add(tuple(sampler))
    assert len(orders) > 1


def test_missing_targets_give_a_clear_error(tmp_path, tiny_processor, rows, collate):
    model = deterministic_model(tiny_processor)
    trainer = EmotionTrainer(model=model, args=arguments(tmp_path), data_collator=collate)
    batch = {k: v for k, v in collate([rows[0], rows[1]]).items() if "labels" not in k}
    with pytest.raises(ValueError, match="no loss"):
        trainer.compute_loss(model, batch)
