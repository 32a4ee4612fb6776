"""K-fold splits of a KEMDy dataset that never put one clip (or, by session, one speaker) on both sides.

Rows are grouped first, then the groups are cut into folds:

- every fold strategy keeps the rows of one ``segment_id`` together (KEMDy19 with ``annotations="all"`` has two rows
  per clip, the speaker's and the listener's labels of the same recording and transcript);
- ``by="session"`` also keeps each session and each speaker together.

>>> rows = {"session": ["Sess01"] * 4 + ["Sess02"] * 2 + ["Sess03"] * 4}
>>> [test.tolist() for _, test in kfold(rows, k=2, by="contiguous")]
[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
>>> [sorted({rows["session"][i] for i in test}) for _, test in kfold(rows, k=3, by="session")]
[['Sess03'], ['Sess01'], ['Sess02']]
>>> clips = {"segment_id": ["a", "b", "a", "c", "b", "d"]}  # a and b twice (speaker and listener rows)
>>> [test.tolist() for _, test in kfold(clips, k=2, by="contiguous")]
[[0, 1, 2, 4], [3, 5]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

FOLD_STRATEGIES = ("session", "contiguous", "random")
CLIP_COLUMN = "segment_id"
"""Rows that share this column's value are one clip: they always land in the same fold."""
SPEAKER_COLUMN = "speaker"
"""With ``by="session"``, rows that share this column's value (when the dataset has it) land in the same fold too."""


def kfold(
    dataset,
    k: int = 5,
    by: str = "session",
    seed: int = 0,
    group_column: str = "session",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split the rows of `dataset` into `k` folds; return ``[(train_indices, test_indices), ...]``, one per fold.

    Every row is in exactly one fold's test indices; each fold trains on all other rows. Indices are sorted int64
    arrays, ready for ``dataset.select(...)``. Rows sharing a ``segment_id`` (when the dataset has that column) are
    always in the same fold, whatever `by` is.

    Args:
        dataset: a `datasets.Dataset`, or any mapping of column name -> sequence (``by="session"`` needs
            `group_column`), or a row count (int: every row its own clip).
        k: number of folds, at least 2.
        by:
            - ``"session"`` (default): whole sessions go to one fold, and so does every speaker (a speaker recorded
              in two sessions joins them), so no session or speaker is in both train and test. Groups are assigned
              largest first to the fold with the fewest rows so far (ties broken by a `seed`-shuffled order), which
              keeps folds close in size. Needs at least `k` such groups.
            - ``"contiguous"``: the seed paper's split in file order: clips in order of their first row, cut into
              `k` runs of about ``n / k`` rows (with one row per clip: fold ``i`` tests rows
              ``[i*n//k, (i+1)*n//k)``, the paper's slices).
            - ``"random"``: the same cut after a `seed`-determined shuffle of the clips.
        seed: used by ``"session"`` (tie-breaking) and ``"random"``.
        group_column: the column that holds the session (or any other group) with ``by="session"``.

    Raises:
        ValueError: unknown `by`, `k` < 2, more folds than clips (or than sessions), or a missing `group_column`.
    """
    if by not in FOLD_STRATEGIES:
        raise ValueError(f"by must be one of {FOLD_STRATEGIES}; got {by!r}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2; got {k!r}.")
    n = int(dataset) if isinstance(dataset, (int, np.integer)) else _num_rows(dataset)
    if n < k:
        raise ValueError(f"cannot make {k} folds of {n} rows.")

    if by == "session":
        columns = [group_column, *(name for name in (SPEAKER_COLUMN, CLIP_COLUMN) if _has_column(dataset, name))]
        group_of_row = group_rows(dataset, columns)
        sizes = np.bincount(group_of_row)
        if len(sizes) < k:
            sessions = sorted({str(value) for value in _column(dataset, group_column)})
            joined = "" if len(sessions) == len(sizes) else f" (joined into {len(sizes)} by shared speakers)"
            raise ValueError(f"by='session' needs at least k={k} sessions; the data has {len(sessions)}{joined}: "
                             f"{sessions}.")
        fold_of_group = _balanced_assignment(sizes, k, seed)
    else:
        group_of_row = group_rows(dataset, [CLIP_COLUMN]) if _has_column(dataset, CLIP_COLUMN) else np.arange(n)
        sizes = np.bincount(group_of_row, minlength=1)
        if len(sizes) < k:
            raise ValueError(f"cannot make {k} folds of {len(sizes)} clips ({n} rows; rows that share a "
                             f"{CLIP_COLUMN!r} stay together).")
        order = np.arange(len(sizes)) if by == "contiguous" else np.random.default_rng(seed).permutation(len(sizes))
        fold_of_group = np.empty(len(sizes), dtype=np.int64)
        for fold, piece in enumerate(cut_in_order(sizes[order], k)):
            fold_of_group[order[piece]] = fold
    fold_of_row = fold_of_group[group_of_row]
    everything = np.arange(n, dtype=np.int64)
    return [(everything[fold_of_row != fold], everything[fold_of_row == fold]) for fold in range(k)]


def group_rows(dataset, columns: Sequence[str]) -> np.ndarray:
    """Row -> group number, where rows sharing a value in ANY of `columns` are in one group (transitively).

    Groups are numbered in order of their first row, so file order is kept. Use it to keep clips, sessions or
    speakers together before cutting (also for a validation slice of a fold's training rows).

    >>> group_rows({"segment_id": ["a", "b", "a"], "speaker": ["x", "y", "y"]}, ["segment_id"]).tolist()
    [0, 1, 0]
    >>> group_rows({"segment_id": ["a", "b", "a"], "speaker": ["x", "y", "y"]}, ["segment_id", "speaker"]).tolist()
    [0, 0, 0]
    """
    n = _num_rows(dataset)
    parent = np.arange(n)

    def root(row: int) -> int:
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    for name in columns:
        first_row: dict = {}
        for row, value in enumerate(_column(dataset, name)):
            other = first_row.setdefault(value, row)
            if other != row:
                a, b = root(row), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)  # the earlier row stays the root: numbering follows file order
    roots = np.array([root(row) for row in range(n)], dtype=np.int64)
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def cut_in_order(sizes: Sequence[int], k: int) -> list[np.ndarray]:
    """Cut a sequence of groups (their row counts, in order) into `k` non-empty runs of about equal row counts.

    Returns the positions of each run. Boundary ``i`` is the group boundary nearest to row ``i*n//k``, so groups
    of one row give exactly the slices ``[i*n//k, (i+1)*n//k)``.

    >>> [piece.tolist() for piece in cut_in_order([2, 1, 1, 2, 1, 1], 2)]
    [[0, 1, 2], [3, 4, 5]]
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if len(sizes) < k:
        raise ValueError(f"cannot cut {len(sizes)} groups into {k} non-empty folds.")
    cumulative = np.concatenate([[0], np.cumsum(sizes)])
    n = int(cumulative[-1])
    bounds = [0]
    for i in range(1, k):
        target = i * n // k
        above = int(np.searchsorted(cumulative, target, side="left"))
        nearest = above if above == 0 or cumulative[above] - target <= target - cumulative[above - 1] else above - 1
        bounds.append(min(max(nearest, bounds[-1] + 1), len(sizes) - (k - i)))
    bounds.append(len(sizes))
    return [np.arange(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


def hold_out(dataset, rows, fraction: float = 0.15, by: str = "session", seed: int = 0,
             group_column: str = "session") -> tuple[np.ndarray, np.ndarray]:
    """Split `rows` (indices of `dataset`, e.g. a fold's training rows) into ``(kept, held_out)``, about `fraction`
    of them held out, grouped as `kfold` groups: whole clips always, and with ``by="session"`` whole sessions and
    speakers (so a validation slice is speaker-independent like the test fold).

    The rows are cut into ``round(1 / fraction)`` parts by `kfold` (fewer when they hold fewer groups) and the
    first part is held out. Nothing outside `rows` is read, so a test fold can never leak into the slice.

    >>> sessions = {"session": ["S1"] * 3 + ["S2"] * 3 + ["S3"] * 3 + ["S4"] * 3}
    >>> [part.tolist() for part in hold_out(sessions, [0, 1, 2, 3, 4, 5, 9, 10, 11], fraction=0.3)]  # S3 is tested
    [[0, 1, 2, 3, 4, 5], [9, 10, 11]]

    Raises:
        ValueError: `fraction` not in (0, 0.5], or `rows` too few groups to hold one out and keep one.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction={fraction!r}: expected a share of the rows in (0, 0.5].")
    rows = np.unique(np.asarray(rows, dtype=np.int64))  # sorted: file order
    names = [name for name in (group_column, SPEAKER_COLUMN, CLIP_COLUMN) if _has_column(dataset, name)]
    subset = {name: [values[i] for i in rows] for name, values in ((n, _column(dataset, n)) for n in names)}
    if by == "session":
        columns = names
    else:
        columns = [CLIP_COLUMN] if CLIP_COLUMN in names else []
    groups = len(np.unique(group_rows(subset, columns))) if columns else len(rows)
    parts = min(max(2, round(1 / fraction)), groups)
    if parts < 2:
        raise ValueError(f"cannot hold out a slice of {len(rows)} row(s) in {groups} group(s) (by={by!r}): at least "
                         "two groups are needed.")
    kept, held_out = kfold(subset if names else len(rows), k=parts, by=by, seed=seed, group_column=group_column)[0]
    return rows[kept], rows[held_out]


def check_folds(dataset, folds: Sequence[tuple[np.ndarray, np.ndarray]], by: str,
                group_column: str = "session") -> None:
    """Raise a ValueError unless `folds` partition the rows and keep every clip (``segment_id``) on one side;
    with ``by="session"`` also every session and speaker. The experiment runs this on every split it makes.
    """
    n = _num_rows(dataset)
    tested = np.concatenate([np.asarray(test) for _, test in folds]) if folds else np.array([], dtype=np.int64)
    if sorted(tested.tolist()) != list(range(n)):
        raise ValueError(f"the folds do not test every one of the {n} rows exactly once.")
    columns = [CLIP_COLUMN] + ([group_column, SPEAKER_COLUMN] if by == "session" else [])
    problems = []
    for name in (column for column in columns if _has_column(dataset, column)):
        values = np.asarray([str(value) for value in _column(dataset, name)], dtype=object)
        for fold, (train, test) in enumerate(folds):
            if np.intersect1d(np.asarray(train), np.asarray(test)).size:
                problems.append(f"fold {fold}: a row is in both train and test")
            both = sorted(set(values[np.asarray(train, dtype=np.int64)]) & set(values[np.asarray(test, dtype=np.int64)]))
            if both:
                problems.append(f"fold {fold}: {len(both)} {name}(s) in both train and test ({', '.join(both[:3])}"
                                f"{', ...' if len(both) > 3 else ''})")
    if problems:
        raise ValueError(f"the {by} split leaks: " + "; ".join(problems) + ".")


def _balanced_assignment(sizes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Group -> fold: largest group first to the fold with the fewest rows so far (seeded order among equals)."""
    shuffled = np.random.default_rng(seed).permutation(len(sizes))
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    load = np.zeros(k, dtype=np.int64)
    fold_of_group = np.empty(len(sizes), dtype=np.int64)
    for group in order:
        fold = int(np.argmin(load))
        fold_of_group[group] = fold
        load[fold] += sizes[group]
    return fold_of_group


def _num_rows(dataset) -> int:
    if isinstance(dataset, (int, np.integer)):
        return int(dataset)
    if hasattr(dataset, "num_rows"):
        return int(dataset.num_rows)
    if isinstance(dataset, Mapping):
        lengths = {len(column) for column in dataset.values()}
        if len(lengths) > 1:
            raise ValueError(f"the columns of dataset have different lengths: {sorted(lengths)}.")
        return lengths.pop() if lengths else 0
    raise ValueError(f"dataset must be a datasets.Dataset, a mapping of columns, or a row count; got "
                     f"{type(dataset).__name__}.")


def _has_column(dataset, name: str) -> bool:
    if isinstance(dataset, (int, np.integer)):
        return False
    names = getattr(dataset, "column_names", None) or (list(dataset) if isinstance(dataset, Mapping) else [])
    return name in names


def _column(dataset, name: str) -> Sequence:
    if not _has_column(dataset, name):
        names = getattr(dataset, "column_names", None) or (list(dataset) if isinstance(dataset, Mapping) else [])
        raise ValueError(f"by='session' needs a {name!r} column; the dataset has {names}.")
    return list(dataset[name])
