"""Shared pieces of the benchmarks: full-size random encoders, fake batches and a timer.

Each benchmark answers one question by timing two ways of doing the same work in one run and printing their ratio.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from kemd_emotion import KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion


def full_size_model(**config_kwargs) -> KlueWav2Vec2ForEmotion:
    """klue/bert-base + wav2vec2-base shapes (the config's defaults), random weights, dropout and SpecAugment off."""
    torch.manual_seed(0)
    config = KlueWav2Vec2EmotionConfig(**config_kwargs)
    config.audio_config.mask_time_prob = 0.0
    config.audio_config.layerdrop = 0.0
    return KlueWav2Vec2ForEmotion(config)


def fake_batch(batch_size: int, seconds: float | list[float], tokens: int = 24, vocab_size: int = 32000, seed: int = 0):
    """Model inputs for `batch_size` clips (zero-padded to the longest) and transcripts of `tokens` tokens."""
    generator = torch.Generator().manual_seed(seed)
    lengths = [int(s * 16000) for s in (seconds if isinstance(seconds, list) else [seconds] * batch_size)]
    longest = max(lengths)
    input_values = torch.randn(batch_size, longest, generator=generator)
    audio_attention_mask = (torch.arange(longest)[None] < torch.tensor(lengths)[:, None]).long()
    input_values = input_values * audio_attention_mask
    input_ids = torch.randint(5, vocab_size, (batch_size, tokens), generator=generator)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "token_type_ids": torch.zeros_like(input_ids),
        "input_values": input_values,
        "audio_attention_mask": audio_attention_mask,
    }


def timeit(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of `fn()` in seconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def describe_machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU x{os.cpu_count()} (torch threads {torch.get_num_threads()})"
    return f"torch {torch.__version__}, {device}, numpy {np.__version__}"
