"""kfold: session folds never share a session, contiguous folds are the paper's slices, every row is tested once."""

import numpy as np
import pytest

from kemd_emotion.data import kfold, load_kemdy, write_sample_corpus


def _check_partition(folds, n):
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(n))  # each row tested exactly once
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(n))
        assert train.dtype == test.dtype == np.int64


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("folds")
    write_sample_corpus(root / "KEMDy19", "kemdy19", sessions=6, segments_per_session=4, min_seconds=0.1,
                        max_seconds=0.15, quirks=False)
    return load_kemdy(root / "KEMDy19", annotations="all", cache_dir=root / "cache")


def test_session_folds_never_share_a_session_or_speaker(dataset):
    for k in (2, 3, 5):
        folds = kfold(dataset, k=k, by="session", seed=1)
        assert len(folds) == k
        _check_partition(folds, len(dataset))
        for train, test in folds:
            train_rows, test_rows = dataset.select(train), dataset.select(test)
            assert not set(train_rows["session"]) & set(test_rows["session"])
            assert not set(train_rows["speaker"]) & set(test_rows["speaker"])
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(kfold(dataset), kfold(dataset)))  # deterministic


def test_session_folds_are_balanced_and_seeded():
    sessions = [f"Sess{s:02d}" for s in range(1, 11) for _ in range(10)]
    folds = kfold({"session": sessions}, k=5, by="session", seed=0)
    assert [len(test) for _, test in folds] == [20] * 5
    other = kfold({"session": sessions}, k=5, by="session", seed=1)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    again = kfold({"session": sessions}, k=5, by="session", seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(other, again))


@pytest.mark.parametrize("n, k", [(10, 5), (13, 5), (20554, 5), (7, 3)])
def test_contiguous_folds_are_the_papers_slices(n, k):
    folds = kfold(n, k=k, by="contiguous")
    _check_partition(folds, n)
    bounds = [i * n // k for i in range(k + 1)]
    for i, (_, test) in enumerate(folds):
        assert test.tolist() == list(range(bounds[i], bounds[i + 1]))  # a contiguous slice, in file order
        assert abs(len(test) - n / k) < 1
    if (n, k) == (10, 5):
        assert [t.tolist() for _, t in folds] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def test_contiguous_follows_file_order_on_a_dataset(dataset):
    folds = kfold(dataset, by="contiguous")
    ids = dataset["segment_id"]
    n = len(dataset)
    for i, (_, test) in enumerate(folds):
        assert [ids[j] for j in test] == ids[i * n // 5 : (i + 1) * n // 5]


def test_random_folds_are_seeded_permutations():
    a = kfold(50, k=5, by="random", seed=3)
    b = kfold(50, k=5, by="random", seed=3)
    c = kfold(50, k=5, by="random", seed=4)
    _check_partition(a, 50)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, c))
    assert any(np.any(np.diff(test) > 1) for _, test in a)  # not contiguous


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((10,), dict(k=1), "k must be an integer >= 2"),
        ((10,), dict(by="speaker"), "by must be one of"),
        ((3,), dict(k=5, by="contiguous"), "cannot make 5 folds of 3 rows"),
        (({"session": ["a", "b", "a", "b", "a", "b"]},), dict(k=3), "at least k=3 sessions"),
        (({"text": ["x"] * 10},), dict(k=2), "needs a 'session' column"),
    ],
)
def test_bad_arguments_are_explained(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kfold(*args, **kwargs)

