"""Comparing pipeline outputs (``{"emotions", "labels", "arousal", "valence"[, "chunks"]}``)."""

import numpy as np

from kemd_emotion import EMOTIONS


def assert_same_output(got: dict, want: dict, atol: float = 1e-4) -> None:
    assert set(got) == set(want)
    assert [e["label"] for e in got["emotions"]] == [e["label"] for e in want["emotions"]]
    assert got["labels"] == want["labels"]
    np.testing.assert_allclose([e["score"] for e in got["emotions"]], [e["score"] for e in want["emotions"]], atol=atol)
    np.testing.assert_allclose([got["arousal"], got["valence"]], [want["arousal"], want["valence"]], atol=atol)
    for got_chunk, want_chunk in zip(got.get("chunks", []), want.get("chunks", [])):
        assert_same_output(got_chunk, want_chunk, atol)


def flat(result) -> np.ndarray:
    """Scores in EMOTIONS order, then arousal and valence: one vector to compare outputs with."""
    scores = {emotion["label"]: emotion["score"] for emotion in result["emotions"]}
    return np.array([scores[name] for name in EMOTIONS] + [result["arousal"], result["valence"]])
