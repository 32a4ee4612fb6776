"""Before any training: the corpus (a release folder or the sample corpus), unusable clips left out, the processor,
and the folds (checked: no clip, and by session no speaker, on both sides)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..processing_klue_wav2vec2 import SAMPLING_RATE, KlueWav2Vec2Processor
from .run_directory import write_json

logger = logging.getLogger("kemd_emotion.experiment")


def load_corpus(data_args, output_dir: Path, is_main: bool):
    """The dataset the run uses and the folder it came from: `data_args.manifest` (the manifest's folder),
    `data_args.data_dir`, or the sample corpus (written by the main process when missing). Returns
    ``(dataset, data_dir, labels)``, `labels` the label set in the model's output order (the manifest's, as
    `load_manifest` returns them; KEMDy's seven `EMOTIONS` otherwise); `max_samples` is applied."""
    from ..configuration_klue_wav2vec2 import EMOTIONS
    from ..data import load_kemdy, write_sample_corpus
    from ..data.sample import MANIFEST_FILENAME

    if data_args.manifest is not None:
        dataset, labels = load_manifest_corpus(data_args, is_main)
        data_dir = str(Path(data_args.manifest).resolve().parent)
        if data_args.max_samples is not None:
            dataset = dataset.select(range(min(data_args.max_samples, len(dataset))))
        return dataset, data_dir, labels
    if data_args.data_dir is None:
        data_dir = Path(data_args.sample_dir) if data_args.sample_dir else output_dir / "sample_corpus"
        if is_main and not (data_dir / MANIFEST_FILENAME).exists():
            logger.info("Writing the %s sample corpus (%s) to %s ...", data_args.sample_name, data_args.sample_size,
                        data_dir)
            write_sample_corpus(data_dir, name=data_args.sample_name, size=data_args.sample_size, overwrite=True)
        cache_dir = data_args.cache_dir or output_dir / "cache"
    else:
        data_dir, cache_dir = Path(data_args.data_dir), data_args.cache_dir
    dataset, report = load_kemdy(data_dir, name=data_args.dataset_name, annotations=data_args.annotations,
                                 cache_dir=cache_dir, return_report=True)
    if is_main:
        logger.info("%s", report.summary())
    if data_args.max_samples is not None:
        dataset = dataset.select(range(min(data_args.max_samples, len(dataset))))
    return dataset, str(data_dir), tuple(EMOTIONS)


def load_manifest_corpus(data_args, is_main: bool):
    """`data_args.manifest` as the experiment's dataset (`kemd_emotion.data.load_manifest`), checked for what the
    experiment supports so far. Returns ``(dataset, labels)``: the manifest's own label set (any names, any
    number), in the order `load_manifest` returns it, which becomes the model's `id2label`.

    Raises:
        ValueError: --manifest with --data_dir; a bad --manifest_columns / --manifest_rating_scale; a manifest
            without arousal/valence (the regression heads train on them; not
            supported yet).
    """
    from ..data import load_manifest
    from .arguments import parse_manifest_columns, parse_rating_scale

    if data_args.data_dir is not None:
        raise ValueError(f"give --manifest or --data_dir, not both (--manifest {data_args.manifest!r}, --data_dir "
                         f"{data_args.data_dir!r}).")
    columns = parse_manifest_columns(data_args.manifest_columns)
    scale = parse_rating_scale(data_args.manifest_rating_scale)
    dataset, labels, report = load_manifest(data_args.manifest, columns=columns, rating_scale=scale,
                                            return_report=True)
    if is_main:
        logger.info("%s", report.summary())
        logger.info("--manifest labels (the model's outputs, in this order): %s.", ", ".join(labels))
    if "arousal" not in dataset.column_names:
        raise ValueError(f"--manifest {data_args.manifest!r} has no arousal and valence columns. Not supported yet: "
                         "the experiment trains and scores the arousal/valence heads on every row (an emotion-only "
                         "corpus is a later part of issue 23).")
    return dataset, tuple(labels)


def check_manifest_rows(dataset, rows, labels=None) -> None:
    """Refuse, before any training, table rows a manifest corpus cannot give yet: rows that read text on a
    speech-only manifest (no text column), and the eGeMAPS row on a manifest of segments (it measures whole files)
    or with a label set other than KEMDy's seven `EMOTIONS` (its linear head has those seven outputs).

    Raises:
        ValueError: naming the rows and what is missing.
    """
    if dataset is None:
        return
    if all(not text for text in dataset["text"]):
        texted = [row.name for row in rows if row.fusion not in ("speech", "prosody")]
        if texted:
            raise ValueError(f"the manifest has no text (a speech-only corpus), and rows {texted} read the "
                             "transcript: use --rows speech.")
    if "start" in dataset.column_names:
        prosody = [row.name for row in rows if row.fusion == "prosody"]
        if prosody:
            raise ValueError(f"rows {prosody} measure eGeMAPS over whole audio files, and the manifest gives segments "
                             "(start/end) of files: not supported yet; leave those rows out.")
    from ..configuration_klue_wav2vec2 import EMOTIONS

    if labels is not None and tuple(labels) != tuple(EMOTIONS):
        prosody = [row.name for row in rows if row.fusion == "prosody"]
        if prosody:
            raise ValueError(f"rows {prosody} (the eGeMAPS linear head) predict KEMDy's seven emotions "
                             f"({', '.join(EMOTIONS)}), and the manifest's labels are {list(labels)}: not supported "
                             "yet; leave those rows out.")


def audio_problem(path: str, max_seconds: float | None, start: float | None = None,
                  end: float | None = None) -> str | None:
    """Why the clip at `path` (from `start` to `end` seconds, a manifest's segment, when given) cannot be used
    (unreadable, not finite, under 25 ms once cropped), or None.

    The same reading and checks as the collator's, so a clip that passes here is never dropped from a batch.
    """
    from ..data.collator import read_clip

    try:
        read_clip(path, SAMPLING_RATE, max_seconds, name=f"audio file {path!r}", start=start, end=end)
    except ValueError as error:
        return str(error)
    return None


def drop_unusable_audio(dataset, record: Path, max_seconds: float | None, is_main: bool, disable_tqdm: bool = False):
    """Decode every clip once (up to the crop) and drop, with a report, those the model could not take.

    The builder reads wav headers only; a file corrupt past its header, or under 25 ms, would otherwise make the
    collator drop it from a batch mid-run, and test predictions would no longer line up with the test rows.
    The main process checks and writes `record` (segment_id -> reason); the others read it.
    """
    if record.exists():
        problems = json.loads(record.read_text(encoding="utf-8"))
    elif not is_main:
        raise RuntimeError(f"the main process should have written {record}; it is not there.")
    else:
        from tqdm.auto import tqdm

        problems = {}
        segmented = "start" in dataset.column_names
        starts = dataset["start"] if segmented else [None] * len(dataset)
        ends = dataset["end"] if segmented else [None] * len(dataset)
        rows = zip(dataset["segment_id"], dataset["audio"], starts, ends)
        for segment_id, path, start, end in tqdm(rows, total=len(dataset), desc="checking audio", unit="clip",
                                                 disable=disable_tqdm):
            problem = audio_problem(path, max_seconds, start, end)
            if problem is not None:
                problems[segment_id] = problem
        write_json(record, problems)
    if problems:
        if is_main:
            logger.warning("Skipping %d row(s) whose audio cannot be used (see %s): %s", len(problems), record,
                           "; ".join(f"{key}: {value}" for key, value in list(problems.items())[:5]))
        keep = [i for i, segment_id in enumerate(dataset["segment_id"]) if segment_id not in problems]
        dataset = dataset.select(keep)
    return dataset


def load_or_build_processor(directory: Path, model_args, data_args, texts, is_main: bool) -> KlueWav2Vec2Processor:
    """The run's processor: loaded from `directory`, or built (pretrained tokenizer / feature extractor, or a
    WordPiece vocabulary trained deterministically on `texts`) and saved there by the main process."""
    if (directory / "processor_config.json").exists():
        return KlueWav2Vec2Processor.from_pretrained(directory)
    if not is_main:
        raise RuntimeError(f"the main process should have saved the processor to {directory}; it is not there.")
    from transformers import Wav2Vec2FeatureExtractor

    if model_args.text_model is not None or model_args.audio_model is not None:
        from transformers import AutoFeatureExtractor, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_args.text_model or model_args.audio_model)
        if model_args.audio_model is not None:
            feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.audio_model)
        else:
            feature_extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    else:
        from ..small_encoders import train_wordpiece_tokenizer

        logger.info("Training a %d-word WordPiece vocabulary on the corpus' texts (offline, deterministic).",
                    model_args.sample_vocab_size)
        tokenizer = train_wordpiece_tokenizer(texts, vocab_size=model_args.sample_vocab_size)
        feature_extractor = Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0, do_normalize=True,
            return_attention_mask=True,
        )
    processor = KlueWav2Vec2Processor(feature_extractor, tokenizer, max_audio_seconds=data_args.max_audio_seconds,
                                      max_text_length=data_args.max_text_length)
    processor.save_pretrained(directory)
    return processor


def fetch_encoders(model_args) -> None:
    """Download hub encoders once, on the main process, before every process loads them from the cache."""
    from transformers import AutoModel

    for name in (model_args.text_model, model_args.audio_model):
        if name is not None and not os.path.isdir(name):
            logger.info("Fetching %s ...", name)
            AutoModel.from_pretrained(name)  # fills the hub cache; the weights are loaded again per fold


def make_folds(dataset, data_args):
    """The folds of `dataset` as the options ask, each checked to keep clips (and by session speakers) on one side.

    Raises:
        ValueError: a split the data cannot give (more folds than sessions or clips), naming the options; or a
            split that leaks (never expected: the runner refuses to train on it).
    """
    from ..data import check_folds, kfold

    try:
        folds = kfold(dataset, k=data_args.num_folds, by=data_args.fold_by, seed=data_args.fold_seed)
    except ValueError as error:
        raise ValueError(f"--num_folds {data_args.num_folds} --fold_by {data_args.fold_by}: {error} Use fewer "
                         "folds" + (" or another --fold_by." if data_args.fold_by == "session" else ".")) from error
    try:
        check_folds(dataset, folds, data_args.fold_by)
    except ValueError as error:
        raise ValueError(f"refusing to train on a leaky split: {error}") from error
    return folds


def validation_split(dataset, train_indices, data_args, row: str, tune_thresholds: bool
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(rows to train on, rows to tune thresholds on)`` out of `train_indices`: a slice of them held out, grouped
    like the folds (`kemd_emotion.data.hold_out`: `data_args.validation_fraction`, `fold_by`, `fold_seed`), when
    the row tunes thresholds; else all of them and None. Only `train_indices` are read, so the test fold never
    reaches the slice.

    Raises:
        ValueError: naming `row`, when the training rows cannot give a slice.
    """
    from ..data import hold_out

    train_indices = np.asarray(train_indices, dtype=np.int64)
    if not tune_thresholds:
        return train_indices, None
    try:
        fit, validation = hold_out(dataset, train_indices, data_args.validation_fraction, by=data_args.fold_by,
                                   seed=data_args.fold_seed)
    except ValueError as error:
        raise ValueError(f"row {row!r} tunes decision thresholds on a slice of each fold's training rows: {error} "
                         "Use fewer --num_folds, another --fold_by, or rows without threshold tuning.") from None
    if not set(validation.tolist()) <= set(train_indices.tolist()):  # hold_out's promise, checked cheaply
        raise RuntimeError("the validation slice holds rows outside the fold's training rows")
    return fit, validation


__all__ = ["load_corpus", "load_manifest_corpus", "check_manifest_rows", "audio_problem", "drop_unusable_audio",
           "load_or_build_processor", "fetch_encoders", "make_folds", "validation_split"]
