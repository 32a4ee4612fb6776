"""Synthetic audio for the tests."""

import numpy as np


def speech_like(rng, seconds, sampling_rate=16000):
    """A voiced-looking clip: harmonics of a wobbling f0 plus noise, float32 in [-1, 1]."""
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    f0 = 140 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.3 + 0.02 * rng.standard_normal(t.shape)
    return wave.astype(np.float32)
