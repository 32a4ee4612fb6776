"""kfold: no clip on both sides of any fold, session folds never share a session or speaker, contiguous folds are the
paper's slices when every clip has one row, every row is tested once; check_folds refuses a leaky split."""

import numpy as np
import pytest

from kemd_emotion.data import check_folds, kfold, load_kemdy, write_sample_corpus
from kemd_emotion.data.folds import cut_in_order, group_rows


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
    """Clips in order of their first row, cut into runs: each fold tests whole clips, about n / k rows."""
    folds = kfold(dataset, by="contiguous")
    ids = dataset["segment_id"]
    clip_order = list(dict.fromkeys(ids))
    start = 0
    for _, test in folds:
        clips = list(dict.fromkeys(ids[j] for j in test))
        assert clips == clip_order[start : start + len(clips)]  # a run of clips, in file order
        assert sorted(test.tolist()) == [j for j, segment in enumerate(ids) if segment in set(clips)]
        assert abs(len(test) - len(ids) / 5) <= 2  # a clip has at most two rows
        start += len(clips)
    assert start == len(clip_order)


@pytest.mark.parametrize("by", ["contiguous", "random", "session"])
def test_no_clip_on_both_sides_with_speaker_and_listener_rows(dataset, by):
    """KEMDy19 with annotations="all": every clip has a speaker row and a listener row, far apart in file order.
    No fold has a segment_id in both train and test; session folds keep every speaker on one side too."""
    ids, speakers = np.asarray(dataset["segment_id"]), np.asarray(dataset["speaker"])
    assert len(set(ids)) < len(ids)  # the data really has clips with two rows
    for k in (2, 5):
        folds = kfold(dataset, k=k, by=by, seed=1)
        _check_partition(folds, len(dataset))
        for train, test in folds:
            assert not set(ids[train]) & set(ids[test])
            if by == "session":
                assert not set(speakers[train]) & set(speakers[test])
        check_folds(dataset, folds, by)


def test_a_row_wise_split_of_the_same_rows_is_refused(dataset):
    """The paper's row-wise cut of all KEMDy19 rows puts clips on both sides; check_folds says which."""
    n = len(dataset)
    everything = np.arange(n)
    row_wise = [(np.setdiff1d(everything, test), test)
                for test in (np.arange(i * n // 5, (i + 1) * n // 5) for i in range(5))]
    with pytest.raises(ValueError, match=r"contiguous split leaks: fold \d: \d+ segment_id\(s\) in both train and test"):
        check_folds(dataset, row_wise, "contiguous")
    random_folds = [(train, test) for train, test in kfold(dataset, k=5, by="random")]
    speakers_on_both_sides = kfold(dataset, k=5, by="contiguous")
    with pytest.raises(ValueError, match=r"speaker\(s\) in both train and test"):
        check_folds(dataset, speakers_on_both_sides, "session")
    check_folds(dataset, random_folds, "random")
    with pytest.raises(ValueError, match="exactly once"):
        check_folds(dataset, random_folds[:4], "random")


def test_grouping_and_cutting_helpers():
    rows = {"segment_id": ["a", "b", "a", "c", "d", "c"], "speaker": ["x", "y", "x", "z", "y", "z"]}
    assert group_rows(rows, ["segment_id"]).tolist() == [0, 1, 0, 2, 3, 2]
    assert group_rows(rows, ["segment_id", "speaker"]).tolist() == [0, 1, 0, 2, 1, 2]  # b and d: speaker y
    assert [p.tolist() for p in cut_in_order([1] * 7, 3)] == [[0, 1], [2, 3], [4, 5, 6]]  # 7 // 3 slices
    assert [p.tolist() for p in cut_in_order([5, 1, 1, 1], 3)] == [[0], [1], [2, 3]]  # never an empty fold
    with pytest.raises(ValueError, match="cannot cut 2 groups into 3"):
        cut_in_order([4, 4], 3)


def test_a_speaker_in_two_sessions_joins_them():
    rows = {"session": ["s1", "s1", "s2", "s2", "s3", "s3", "s4"],
            "speaker": ["A", "B", "B", "C", "D", "E", "F"]}  # B spoke in s1 and s2
    folds = kfold(rows, k=3, by="session")
    for train, test in folds:
        assert not {rows["speaker"][i] for i in train} & {rows["speaker"][i] for i in test}
    assert any(sorted(test.tolist()) == [0, 1, 2, 3] for _, test in folds)
    with pytest.raises(ValueError, match=r"needs at least k=4 sessions; the data has 4 \(joined into 3 by shared "
                                         r"speakers\)"):
        kfold(rows, k=4, by="session")


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
        (({"segment_id": ["a", "a", "b", "b"]},), dict(k=3, by="random"), "cannot make 3 folds of 2 clips"),
        (({"session": ["a", "b", "a", "b", "a", "b"]},), dict(k=3), "at least k=3 sessions"),
        (({"text": ["x"] * 10},), dict(k=2), "needs a 'session' column"),
    ],
)
def test_bad_arguments_are_explained(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kfold(*args, **kwargs)

