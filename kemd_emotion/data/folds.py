"""K-fold splits of a KEMDy dataset: by session (no speaker in both train and test), contiguous, or random.

>>> rows = {"session": ["Sess01"] * 4 + ["Sess02"] * 2 + ["Sess03"] * 4}
>>> [test.tolist() for _, test in kfold(rows, k=2, by="contiguous")]
[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
>>> [sorted({rows["session"][i] for i in test}) for _, test in kfold(rows, k=3, by="session")]
[['Sess03'], ['Sess01'], ['Sess02']]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

FOLD_STRATEGIES = ("session", "contiguous", "random")


def kfold(
    dataset,
    k: int = 5,
    by: str = "session",
    seed: int = 0,
    group_column: str = "session",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split the rows of `dataset` into `k` folds; return ``[(train_indices, test_indices), ...]``, one per fold.

    Every row is in exactly one fold's test indices; each fold trains on all other rows. Indices are sorted int64
    arrays, ready for ``dataset.select(...)``.

    Args:
        dataset: a `datasets.Dataset`, or any mapping of column name -> sequence (``by="session"`` needs
            `group_column`; the other strategies only need the number of rows, also accepted as an int).
        k: number of folds, at least 2.
        by:
            - ``"session"`` (default): whole sessions go to one fold, so no session, and hence no speaker, is in both
              train and test. Sessions are assigned largest first to the fold with the fewest rows so far (ties
              broken by a `seed`-shuffled order), which keeps folds close in size. Needs at least `k` sessions.
            - ``"contiguous"``: the seed paper's split: fold ``i`` tests rows ``[i*n//k, (i+1)*n//k)`` in file order.
            - ``"random"``: the same slicing after a `seed`-determined shuffle of the rows.
        seed: used by ``"session"`` (tie-breaking) and ``"random"``.
        group_column: the column that holds the session (or any other group) with ``by="session"``.

    Raises:
        ValueError: unknown `by`, `k` < 2, more folds than rows (or than sessions), or a missing `group_column`.
    """
    if by not in FOLD_STRATEGIES:
        raise ValueError(f"by must be one of {FOLD_STRATEGIES}; got {by!r}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2; got {k!r}.")
    n = dataset if isinstance(dataset, (int, np.integer)) else _num_rows(dataset)
    if n < k:
        raise ValueError(f"cannot make {k} folds of {n} rows.")

    if by == "session":
        fold_of_row = _session_folds(_column(dataset, group_column), k, seed)
        tests = [np.flatnonzero(fold_of_row == fold) for fold in range(k)]
    else:
        order = np.arange(n) if by == "contiguous" else np.random.default_rng(seed).permutation(n)
        tests = [np.sort(order[i * n // k : (i + 1) * n // k]) for i in range(k)]
    everything = np.arange(n)
    return [(np.setdiff1d(everything, test), test.astype(np.int64)) for test in tests]


def _session_folds(groups: Sequence, k: int, seed: int) -> np.ndarray:
    """Row -> fold, keeping each group in one fold and the folds' row counts balanced."""
    names, inverse, sizes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True,
                                      return_counts=True)
    if len(names) < k:
        raise ValueError(f"by='session' needs at least k={k} sessions; the data has {len(names)}: {list(names)}.")
    shuffled = np.random.default_rng(seed).permutation(len(names))
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]  # largest first, seeded among equals
    load = np.zeros(k, dtype=np.int64)
    fold_of_group = np.empty(len(names), dtype=np.int64)
    for group in order:
        fold = int(np.argmin(load))
        fold_of_group[group] = fold
        load[fold] += sizes[group]
    return fold_of_group[inverse]


def _num_rows(dataset) -> int:
    if hasattr(dataset, "num_rows"):
        return int(dataset.num_rows)
    if isinstance(dataset, Mapping):
        lengths = {len(column) for column in dataset.values()}
        if len(lengths) > 1:
            raise ValueError(f"the columns of dataset have different lengths: {sorted(lengths)}.")
        return lengths.pop() if lengths else 0
    raise ValueError(f"dataset must be a datasets.Dataset, a mapping of columns, or a row count; got "
                     f"{type(dataset).__name__}.")


def _column(dataset, name: str) -> Sequence:
    names = getattr(dataset, "column_names", None) or (list(dataset) if isinstance(dataset, Mapping) else [])
    if name not in names:
        raise ValueError(f"by='session' needs a {name!r} column; the dataset has {names}.")
    return list(dataset[name])
