"""Shared fixtures: tiny random encoders and an offline WordPiece tokenizer. No test may touch the network."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest
import torch

from helpers import real_weights
from kemd_emotion import KlueWav2Vec2ForEmotion
from kemd_emotion.small_encoders import DEFAULT_TEXTS, tiny_config, tiny_processor as build_tiny_processor

# Under pytest-xdist (`make test`: one worker per core, a whole module per worker) each worker gets its share of
# the cores, so that the workers do not fight over them; alone, two threads as on the CI machine.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, (os.cpu_count() or 2) // WORKERS) if WORKERS > 1 else 2)


@pytest.fixture(scope="session")
def tiny_processor():
    """A processor with a WordPiece vocabulary trained offline on a few Korean sentences (5 s audio limit)."""
    return build_tiny_processor(DEFAULT_TEXTS, vocab_size=300)


@pytest.fixture(scope="session")
def tiny_model_factory(tiny_processor):
    """`factory(fusion="cat", feat_extract_norm="group", seed=0, **config_kwargs)` -> a tiny model in eval mode."""

    def factory(fusion="cat", feat_extract_norm="group", seed=0, **config_kwargs):
        torch.manual_seed(seed)
        config = tiny_config(
            fusion=fusion,
            feat_extract_norm=feat_extract_norm,
            vocab_size=len(tiny_processor.tokenizer),
            **config_kwargs,
        )
        return KlueWav2Vec2ForEmotion(config).eval()

    return factory


@pytest.fixture(scope="session")
def real_weights_dirs() -> real_weights.RealWeights:
    """The real pretrained test weights: `.e5` (multilingual-e5-small) and `.whisper` (whisper-base) folders, built by
    `python tests/helpers/real_weights.py` (`.ci/run` builds them). Not built: the test is skipped saying how to
    build them, or fails where they are required (see `real_weights.real_weights_required`). Tests never build them: a worker
    of `make test` must not spend a minute and 1 GB on it unasked."""
    found = real_weights.find_test_weights()
    if found is None:
        where = real_weights.default_cache_dir()
        message = (f"the real test weights are not built in {where}: run `{real_weights.build_command()}` "
                   f"(${real_weights.CACHE_ENV} chooses the folder)")
        if real_weights.real_weights_required():
            pytest.fail(message + "; they are required here (CI or KEMD_REQUIRE_REAL_WEIGHTS=1)")
        pytest.skip(message)
    return found


@pytest.fixture
def rng():
    return np.random.default_rng(0)
