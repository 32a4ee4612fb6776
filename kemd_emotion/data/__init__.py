"""KEMDy19 / KEMDy20 data: the dataset builder, a synthetic sample corpus, folds and the batch collator.

- `load_kemdy(data_dir, name=None, annotations="speaker", ...)`: a release folder -> `datasets.Dataset`.
- `write_sample_corpus(out_dir, name="kemdy20", ..., voice="builtin" | "espeak")`: writes a synthetic release in the
  real layout (``"espeak"``: an independent corpus spoken by espeak-ng, `kemd_emotion.data.espeak_sample`).
- `kemd_emotion.data.prosody.egemaps_functionals(paths, cache_file)`: eGeMAPS v02 functionals, cached with the corpus.
- `kfold(dataset, k=5, by="session" | "contiguous" | "random", seed=0)`: ``[(train_indices, test_indices), ...]``;
  a clip (``segment_id``) is never on both sides, nor (by session) a speaker; `check_folds` verifies a split.
- `hold_out(dataset, rows, fraction=0.15, by="session")`: a validation slice of a fold's training rows, grouped alike.
- `load_manifest(path_or_frame, columns=None, labels=None, rating_scale=(1, 5))`: any labelled corpus (CSV / TSV /
  JSON lines / DataFrame / Dataset, one row per utterance) -> ``(dataset, labels)`` with the builder's columns;
  `write_manifest(dataset, path)` writes any such dataset as a manifest.
- `KemdyCollator(processor)`: rows -> model inputs plus ``labels`` and ``regression_labels``.
"""

from .collator import KemdyCollator, multi_hot
from .folds import FOLD_STRATEGIES, check_folds, hold_out, kfold
from .kemdy import SKIP_REASONS, VERSION, KemdyBuilder, KemdyConfig, KemdyReport, detect_release, load_kemdy
from .manifest import ManifestReport, load_manifest, write_manifest
from .sample import SIZES, SampleManifest, add_make_sample_parser, make_sample_main, write_sample_corpus
from .text import clean_transcript

__all__ = [
    "load_kemdy",
    "KemdyBuilder",
    "KemdyConfig",
    "KemdyReport",
    "detect_release",
    "SKIP_REASONS",
    "VERSION",
    "load_manifest",
    "write_manifest",
    "ManifestReport",
    "write_sample_corpus",
    "SampleManifest",
    "SIZES",
    "make_sample_main",
    "add_make_sample_parser",
    "kfold",
    "check_folds",
    "hold_out",
    "FOLD_STRATEGIES",
    "KemdyCollator",
    "multi_hot",
    "clean_transcript",
]
