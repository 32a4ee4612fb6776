"""Q3: EmotionTrainer vs a bare PyTorch loop over the same model, the same batches and the same optimizer
(AdamW, constant learning rate, no logging, saving or evaluation): the Trainer's own cost per step.

The model is a small one (BERT and wav2vec2 of width 128), where a fixed per-step overhead shows most; with the
full-size model a step takes seconds and any overhead vanishes. Each arm runs twice, alternating; the best of the
two counts.

    python benchmarks/bench_trainer_overhead.py [--steps 40 --batch 8 --seconds 2]
"""

import argparse
import tempfile
import time

import torch
from transformers import TrainingArguments

from _common import describe_machine, fake_batch
from kemd_emotion import KlueWav2Vec2ForEmotion
from kemd_emotion.small_encoders import tiny_config
from kemd_emotion.trainer import EmotionTrainer


class Batches(torch.utils.data.Dataset):
    """Prepared batches served one per step (the Trainer's batch size is then 1 batch)."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def build_model():
    torch.manual_seed(0)
    config = tiny_config(fusion="cat", audio_representation="hidden", vocab_size=32000, classifier_dropout=0.0)
    for sub in (config.text_config, config.audio_config):
        sub.hidden_size, sub.intermediate_size = 128, 512
    config.audio_config.conv_dim = (64,) * 7
    return KlueWav2Vec2ForEmotion(config).train()


def bare_loop(batches, learning_rate) -> float:
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, eps=1e-8, weight_decay=0.0)
    start = time.perf_counter()
    for batch in batches:
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the Trainer clips too (max_grad_norm=1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def trainer_loop(batches, learning_rate) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=1, num_train_epochs=1, learning_rate=learning_rate,
            lr_scheduler_type="constant", weight_decay=0.0, adam_epsilon=1e-8, logging_strategy="no",
            save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True,
            dataloader_num_workers=0, remove_unused_columns=False,
        )
        trainer = EmotionTrainer(model=build_model(), args=args, train_dataset=Batches(batches), data_collator=lambda rows: rows[0])
        start = time.perf_counter()
        trainer.train()
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    batches = []
    for step in range(args.steps):
        batch = fake_batch(args.batch, args.seconds, tokens=32, seed=step)
        batch["labels"] = torch.eye(7)[torch.arange(args.batch) % 7]
        batch["regression_labels"] = torch.full((args.batch, 2), 3.0)
        batches.append(batch)
    bare_loop(batches[:2], 1e-4)  # warm-up
    times = {"bare loop": [], "EmotionTrainer": []}
    for _ in range(2):
        times["bare loop"].append(bare_loop(batches, 1e-4))
        times["EmotionTrainer"].append(trainer_loop(batches, 1e-4))
    best = {name: min(values) for name, values in times.items()}
    for name, seconds in best.items():
        print(f"{name:>15}: {seconds / args.steps * 1000:.1f} ms per step ({args.steps} steps, runs: "
              + ", ".join(f"{s:.2f} s" for s in times[name]) + ")")
    print(f"Trainer overhead = {best['EmotionTrainer'] / best['bare loop'] - 1:+.1%}  ({describe_machine()})")


if __name__ == "__main__":
    main()
