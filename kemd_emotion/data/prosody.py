"""eGeMAPS functionals of each clip (the field's standard interpretable prosody baseline), computed once, cached.

The extended Geneva Minimalistic Acoustic Parameter Set (eGeMAPS v02; Eyben et al., 2016) summarises a clip in 88
numbers: pitch (F0 level, spread, contour), loudness, voice quality (jitter, shimmer, HNR), spectral balance,
formants, and the rate of voiced segments. `egemaps_functionals` computes them with openSMILE (the ``opensmile``
package: ``pip install "kemd-emotion[prosody]"``) on every clip, decoded as the model's collator decodes it (mono,
16 kHz, the whole clip), and keeps them in a cache file beside the corpus, keyed by each file's path, size and
modification time: a corpus is measured once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FEATURE_SET = "eGeMAPSv02"
NUM_FEATURES = 88
CACHE_FILENAME = "egemaps_v02_functionals.npz"
"""Written at the corpus root (next to the sample corpus' manifest; the builder ignores it)."""
SAMPLING_RATE = 16_000


def _smile():
    try:
        import opensmile
    except ImportError as error:
        raise ImportError("the prosody row needs openSMILE's Python package: pip install \"kemd-emotion[prosody]\" "
                          "(or pip install opensmile).") from error
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


def _key(path: str) -> str:
    stat = os.stat(path)
    return f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


def cache_path(data_dir: str | os.PathLike, fallback_dir: str | os.PathLike | None = None) -> Path:
    """Where a corpus' eGeMAPS cache lives: at its root, or in `fallback_dir` when the root is not writable."""
    root = Path(data_dir)
    if os.access(root, os.W_OK) or fallback_dir is None:
        return root / CACHE_FILENAME
    return Path(fallback_dir) / CACHE_FILENAME


def egemaps_functionals(paths, cache_file: str | os.PathLike | None = None, *, progress: bool = False) -> np.ndarray:
    """The `(len(paths), 88)` float32 eGeMAPS v02 functionals of the clips at `paths`, in order.

    Clips already in `cache_file` (same path, size and modification time) are read from it; the others are measured
    and added to it (the file is rewritten atomically). Feature names: `feature_names()`.
    """
    paths = [str(path) for path in paths]
    keys = [_key(path) for path in paths]
    cached: dict[str, np.ndarray] = {}
    cache_file = Path(cache_file) if cache_file is not None else None
    if cache_file is not None and cache_file.exists():
        with np.load(cache_file, allow_pickle=False) as stored:
            cached = dict(zip(stored["keys"].tolist(), stored["features"]))
    missing = [i for i, key in enumerate(keys) if key not in cached]
    if missing:
        from tqdm.auto import tqdm

        from .collator import read_clip

        smile = _smile()
        logger.info("Measuring eGeMAPS functionals of %d clip(s)%s.", len(missing),
                    f" (cache: {cache_file})" if cache_file else "")
        for i in tqdm(missing, desc="eGeMAPS", unit="clip", disable=not progress):
            clip = read_clip(paths[i], SAMPLING_RATE, None, name=f"audio file {paths[i]!r}")
            cached[keys[i]] = smile.process_signal(clip, SAMPLING_RATE).to_numpy(dtype=np.float32)[0]
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = cache_file.with_name(cache_file.name + ".partial.npz")
            np.savez(partial, keys=np.array(list(cached)), features=np.stack(list(cached.values())),
                     names=np.array(feature_names(smile)))
            os.replace(partial, cache_file)
    features = np.stack([cached[key] for key in keys]).astype(np.float32)
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)


def feature_names(smile=None) -> list[str]:
    """The 88 eGeMAPS v02 functional names, in column order."""
    return list((smile or _smile()).feature_names)


__all__ = ["egemaps_functionals", "feature_names", "cache_path", "CACHE_FILENAME", "FEATURE_SET", "NUM_FEATURES"]
