"""Any labelled corpus as a manifest: one row per utterance, loaded into the KEMDy builder's rows.

A manifest is a CSV, TSV or JSON-lines file (or a `pandas.DataFrame`, or a `datasets.Dataset`) with one row per
utterance. Its columns (each name can be mapped, e.g. ``columns={"text": "발화문", "emotion": "감정"}``):

- ``audio`` (needed): the audio file, a path relative to the manifest's folder (``base_dir`` for a frame) or
  absolute; any rate, any channel count.
- ``emotion`` (needed): one label, several joined by ``;`` (``neutral;happy``), or (JSON lines, frames) a list.
- ``text``: the transcript; without the column the corpus is speech-only (``text`` is ``""``). ``transcript``:
  the transcript as written, when ``text`` is a cleaned copy (default: ``text``).
- ``arousal``, ``valence``: ratings on the caller's ``rating_scale`` (default ``(1, 5)``), stored rescaled to 1-5,
  the scale of KEMDy's rater means; both or neither.
- ``start``, ``end``: seconds into a longer file (an empty cell: the file's start / end).
- ``id``: the utterance's ID (default: the audio cell, plus ``@start-end`` for a segment).
- ``speaker``, and ``session`` or ``group`` (one of the two): who speaks, and what folds keep together (``group``
  for a corpus without sessions). Without a session, the speaker is the session; without either, every clip is its
  own group.
- ``gender``, ``role``: as KEMDy's columns (default ``""`` and ``"speaker"``).

    >>> dataset, labels = load_manifest("my_corpus.csv", columns={"text": "발화문"})        # doctest: +SKIP
    >>> dataset, labels, report = load_manifest(frame, base_dir="audio/", return_report=True)  # doctest: +SKIP
    >>> report.skip_counts                                                                # doctest: +SKIP
    {'missing_file': 2, 'unknown_label': 1}

The dataset has the columns and features of `kemd_emotion.data.kemdy.FEATURES` (so `kfold`, `KemdyCollator` and
the experiment take it as they take KEMDy's rows), without ``arousal``/``valence`` when the manifest has no ratings,
and with ``start``/``end`` (float32 seconds) when it has segments; ``audio`` is an absolute path and ``duration``
the clip's length in seconds from the file's header (or ``end - start``).

Labels: with ``labels=None`` every label found is accepted and the list is SORTED (by code point: the order of the
model's outputs does not depend on the order of the rows, and KEMDy's seven come out in `EMOTIONS` order); with
``labels=[...]`` that list (in its order) is the label set and a row naming another label is skipped.

A row that cannot be used is skipped, never fatal: each reason of `SKIP_REASONS` is counted, and every skip is
logged (WARNING) with its row number (the 1-based line number in a CSV/TSV/JSON-lines file, whose header is line
1; the 1-based position in a frame or dataset). A manifest that lacks a needed column, names a mapped column it does
not have, or keeps no row at all raises a ValueError naming the file and the column.

`write_manifest(dataset, path)` writes any dataset of these rows (KEMDy's included) as a manifest, so that a
KEMDy release can be re-read, edited or merged as a plain table.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import soundfile as sf

from .kemdy import FEATURES

logger = logging.getLogger(__name__)

COLUMNS = ("id", "audio", "start", "end", "text", "transcript", "emotion", "arousal", "valence", "speaker",
           "session", "group", "gender", "role")
"""The manifest's column names (`load_manifest(columns=...)` maps each to the file's own name)."""
REQUIRED_COLUMNS = ("audio", "emotion")
LABEL_SEPARATOR = ";"
DEFAULT_RATING_SCALE = (1.0, 5.0)
KEMDY_RATING_SCALE = (1.0, 5.0)
"""Ratings are stored on KEMDy's 1-5 scale, whatever the manifest's scale."""
SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".json": None, ".ndjson": None}
"""File suffix -> delimiter (None: JSON lines, one object per line)."""
ENCODINGS = ("utf-8-sig", "cp949")
"""Tried in order to decode a manifest file (UTF-8 with or without BOM, then the Korean Windows code page)."""

SKIP_REASONS = {
    "malformed_row": "the row cannot be parsed (invalid JSON, or more cells than the header)",
    "unknown_label": "the emotion is empty or not one of the labels",
    "bad_rating": "arousal or valence is missing, not a number, or outside the rating scale",
    "empty_text": "the text (and the transcript) is empty",
    "missing_file": "no audio file at the path (or an empty audio cell)",
    "unreadable_audio": "the audio file's header cannot be read or holds no samples",
    "bad_start_end": "start/end is not a number, negative, not start < end, or past the file's end",
    "duplicate": "an earlier row has the same id (and role)",
}
"""Why a row can be skipped, in the order the checks run."""


@dataclass
class ManifestReport:
    """What loading a manifest kept and skipped.

    Attributes:
        source: the manifest file, or ``"DataFrame"`` / ``"Dataset"``.
        labels: the label set, in the order of the model's outputs.
        num_rows: rows in the dataset.
        skipped: reason (a key of `SKIP_REASONS`) -> row numbers (1-based line numbers of the file; 1-based
            positions of a frame), in order.
        messages: row number -> what was wrong with it, in words.
        columns: manifest column -> the source's column it was read from.
    """

    source: str
    labels: list[str] = field(default_factory=list)
    num_rows: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def skip_counts(self) -> dict[str, int]:
        """Reason -> number of rows skipped for it (reasons with none are left out)."""
        return {reason: len(rows) for reason, rows in self.skipped.items() if rows}

    @property
    def num_skipped(self) -> int:
        return sum(len(rows) for rows in self.skipped.values())

    def summary(self) -> str:
        skips = ", ".join(f"{n} {reason}" for reason, n in self.skip_counts.items()) or "none"
        return (f"manifest {self.source}: {self.num_rows} rows, labels {', '.join(self.labels)}; "
                f"skipped: {skips}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)


class _Skip(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def load_manifest(
    source,
    *,
    columns: Mapping[str, str] | None = None,
    labels: Sequence[str] | None = None,
    rating_scale: tuple[float, float] = DEFAULT_RATING_SCALE,
    base_dir: str | os.PathLike | None = None,
    encoding: str | None = None,
    return_report: bool = False,
):
    """Load a manifest corpus as a `datasets.Dataset` of the KEMDy builder's rows (see the module docstring).

    Args:
        source: a ``.csv``, ``.tsv`` or ``.jsonl`` file (``.json`` / ``.ndjson``: JSON lines too), a
            `pandas.DataFrame`, or a `datasets.Dataset`.
        columns: manifest column -> the source's column name, for those named otherwise
            (``{"text": "발화문", "emotion": "감정"}``); the names in `COLUMNS`.
        labels: the label set, in the order of the model's outputs; a row with another label is skipped
            (``unknown_label``). None: every label in the data, sorted.
        rating_scale: ``(lowest, highest)`` of the manifest's arousal and valence; the values are stored rescaled
            to KEMDy's 1-5, and a value outside the scale skips its row (``bad_rating``).
        base_dir: what relative audio paths are relative to: default the manifest file's folder (the current
            folder for a frame or dataset).
        encoding: the file's text encoding; None tries UTF-8 (with or without BOM), then cp949.
        return_report: also return the `ManifestReport`.

    Returns:
        ``(dataset, labels)``, or ``(dataset, labels, report)`` with `return_report`.

    Raises:
        ValueError: the source cannot be read or is of an unknown kind, a needed or mapped column is missing,
            `columns` names an unknown manifest column, `labels` or `rating_scale` is malformed, both ``session``
            and ``group`` are given, only one of ``arousal``/``valence`` is, or no row can be used.
    """
    lowest, highest = _check_scale(rating_scale)
    fixed_labels = _check_labels(labels)
    name, header, records, default_base, from_file = _read_source(source, encoding)
    mapping = _resolve_columns(columns, header, name)
    base = os.path.abspath(os.fspath(base_dir)) if base_dir is not None else default_base
    has = set(mapping)
    if {"arousal", "valence"} & has and not {"arousal", "valence"} <= has:
        raise ValueError(f"{name}: has a {'arousal' if 'arousal' in has else 'valence'!r} column but no "
                         f"{'valence' if 'arousal' in has else 'arousal'!r} column; give both ratings or neither.")
    if {"session", "group"} <= has:
        raise ValueError(f"{name}: has both a 'session' column ({mapping['session']!r}) and a 'group' column "
                         f"({mapping['group']!r}); both say what folds keep together: give one of them.")
    segmented = bool({"start", "end"} & has)

    report = ManifestReport(source=name, columns=dict(mapping))
    rows, numbers, seen = [], [], set()
    label_set = set(fixed_labels) if fixed_labels is not None else None
    found_labels: dict[str, None] = {}
    header_info: dict[str, tuple[float, int] | None] = {}
    for number, record in records:
        try:
            if isinstance(record, _Skip):
                raise record
            row = _parse_row(record, mapping, base, label_set, (lowest, highest), segmented, header_info)
            key = (row["segment_id"], row["role"])
            if key in seen:
                raise _Skip("duplicate", f"id {row['segment_id']!r} (role {row['role']!r}) is already an earlier "
                                         "row's")
            seen.add(key)
        except _Skip as skip:
            report.skipped.setdefault(skip.reason, []).append(number)
            report.messages[number] = str(skip)
            logger.warning("%s %s %d: skipped (%s): %s", name, "line" if from_file else "row", number,
                           skip.reason, skip)
            continue
        for label in row["emotion"]:
            found_labels.setdefault(label, None)
        rows.append(row)
        numbers.append(number)

    report.labels = list(fixed_labels) if fixed_labels is not None else sorted(found_labels)
    report.num_rows = len(rows)
    if not rows:
        raise ValueError(f"No usable row in {name}: {report.summary()}.")
    if report.num_skipped:
        logger.warning("%s", report.summary())
    else:
        logger.info("%s", report.summary())
    dataset = datasets.Dataset.from_list(rows, features=_features(ratings="arousal" in has, segmented=segmented))
    return (dataset, report.labels, report) if return_report else (dataset, report.labels)


def manifest_features(ratings: bool = True, segmented: bool = False) -> datasets.Features:
    """The features of `load_manifest`'s rows: KEMDy's (`kemdy.FEATURES`), less ``arousal``/``valence`` without
    ratings, plus ``start``/``end`` for a manifest of segments."""
    return _features(ratings, segmented)


def _features(ratings: bool, segmented: bool) -> datasets.Features:
    features = {name: value for name, value in FEATURES.items() if ratings or name not in ("arousal", "valence")}
    if segmented:
        features["start"] = datasets.Value("float32")
        features["end"] = datasets.Value("float32")
    return datasets.Features(features)


# ------------------------------------------------------------------------------------------------ reading the source
def _read_source(source, encoding):
    """``(name, the source's column names, iterable of (row number, record dict or _Skip), default base folder,
    whether row numbers are file lines)``."""
    if isinstance(source, datasets.Dataset):
        return "Dataset", list(source.column_names), _numbered(source.to_list()), os.getcwd(), False
    if _is_data_frame(source):
        names = [str(name) for name in source.columns]
        records = [dict(zip(names, values)) for values in source.itertuples(index=False, name=None)]
        return "DataFrame", names, _numbered(records), os.getcwd(), False
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"manifest {str(path)!r} does not exist or is not a file.")
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise ValueError(f"manifest {str(path)!r}: expected a file ending in {', '.join(SUFFIXES)}; got "
                             f"{suffix or 'no suffix'!r}.")
        text = _decode(path, encoding)
        base = str(path.resolve().parent)
        if SUFFIXES[suffix] is None:
            header, records = _json_lines(text)
        else:
            header, records = _delimited(text, SUFFIXES[suffix], path)
        return str(path), header, records, base, True
    raise ValueError(f"a manifest is a .csv/.tsv/.jsonl file path, a pandas.DataFrame or a datasets.Dataset; got "
                     f"{type(source).__name__}.")


def _numbered(records):
    return iter([(index + 1, record) for index, record in enumerate(records)])


def _is_data_frame(value) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict") and hasattr(value, "columns")


def _decode(path: Path, encoding: str | None) -> str:
    raw = path.read_bytes()
    for candidate in (encoding,) if encoding else ENCODINGS:
        try:
            return raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        except LookupError:
            raise ValueError(f"manifest {str(path)!r}: unknown encoding {candidate!r}.") from None
    raise ValueError(f"manifest {str(path)!r} is not text in {', '.join((encoding,) if encoding else ENCODINGS)}.")


def _delimited(text: str, delimiter: str, path: Path):
    reader = csv.reader(io.StringIO(text.replace("\x00", ""), newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise ValueError(f"manifest {str(path)!r} is empty: expected a header row naming the columns "
                         f"({', '.join(REQUIRED_COLUMNS)}, ...).")
    header = [cell.strip() for cell in header]

    def records():
        previous_end = reader.line_num
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                yield start, _Skip("malformed_row", f"{len(cells)} cells under a header of {len(header)}")
                continue
            yield start, dict(zip(header, cells))  # missing trailing cells: the columns are empty

    return header, records()


def _json_lines(text: str):
    """``(keys found, in first-seen order; [(line number, record or _Skip), ...])``: read at once, so that the column
    checks see every key before a row is parsed."""
    header: dict[str, None] = {}
    listed = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            listed.append((number, _Skip("malformed_row", f"invalid JSON: {error.msg}")))
            continue
        if not isinstance(record, dict):
            listed.append((number, _Skip("malformed_row", f"a JSON {type(record).__name__}, not an object")))
            continue
        header.update(dict.fromkeys(record))
        listed.append((number, record))
    return list(header), listed


def _resolve_columns(columns, header, name) -> dict[str, str]:
    """Manifest column -> source column, for those the source has. Raises for unknown manifest names, mapped
    columns the source lacks, and missing needed columns."""
    columns = {str(key): str(value) for key, value in dict(columns or {}).items()}
    unknown = sorted(set(columns) - set(COLUMNS))
    if unknown:
        raise ValueError(f"columns= names {unknown}, which are not manifest columns; expected some of {COLUMNS} "
                         "(manifest column -> the file's column name).")
    absent = {ours: theirs for ours, theirs in columns.items() if theirs not in header}
    if absent:
        raise ValueError(f"{name}: columns= maps " + ", ".join(f"{ours!r} to {theirs!r}" for ours, theirs in
                                                                absent.items())
                         + f", but it has no such column; its columns are {header}.")
    mapping = {ours: columns.get(ours, ours) for ours in COLUMNS if columns.get(ours, ours) in header}
    missing = [column for column in REQUIRED_COLUMNS if column not in mapping]
    if missing:
        optional = ", ".join(column for column in COLUMNS if column not in REQUIRED_COLUMNS)
        raise ValueError(f"{name}: no {' and no '.join(repr(m) for m in missing)} column; expected "
                         f"{', '.join(REQUIRED_COLUMNS)} (and optionally {optional}); "
                         f"its columns are {header}. Map other names with columns={{'emotion': '감정', ...}}.")
    return mapping


# ------------------------------------------------------------------------------------------------ one row
def _parse_row(record, mapping, base, label_set, scale, segmented, header_info) -> dict:
    def cell(column):
        return _cell(record.get(mapping[column])) if column in mapping else None

    emotions = _parse_labels(record.get(mapping["emotion"]), label_set)
    arousal = valence = None
    if "arousal" in mapping:
        arousal = _parse_rating(cell("arousal"), "arousal", scale)
        valence = _parse_rating(cell("valence"), "valence", scale)

    text = _text(cell("text")) if "text" in mapping else ""
    transcript = _text(cell("transcript")) if "transcript" in mapping else text
    if "text" in mapping and not text and not transcript:
        raise _Skip("empty_text", f"the {mapping['text']!r} cell is empty")

    written = _text(cell("audio"))
    if not written:
        raise _Skip("missing_file", f"the {mapping['audio']!r} cell is empty")
    audio = os.path.normpath(written if os.path.isabs(written) else os.path.join(base, written))
    if not os.path.isfile(audio):
        raise _Skip("missing_file", f"no file at {audio!r}")
    if audio not in header_info:
        header_info[audio] = _header(audio)
    info = header_info[audio]
    if info is None:
        raise _Skip("unreadable_audio", f"{audio!r}: the header cannot be read or the file holds no samples")
    file_seconds, file_rate = info

    duration, start, end = file_seconds, None, None
    if segmented:
        start, end = _parse_segment(cell("start"), cell("end"), file_seconds, file_rate)
        duration = end - start

    segment_id = _text(cell("id"))
    if not segment_id:
        segment_id = written + (f"@{start:g}-{end:g}" if segmented else "")
    session = _text(cell("session") if "session" in mapping else cell("group"))
    speaker = _text(cell("speaker"))
    session = session or speaker or segment_id  # no session: the speaker's rows go together; neither: the clip's
    speaker = speaker or session
    row = {
        "segment_id": segment_id,
        "session": session,
        "speaker": speaker,
        "gender": _text(cell("gender")),
        "role": _text(cell("role")) or "speaker",
        "text": text,
        "transcript": transcript,
        "audio": audio,
        "emotion": emotions,
        "duration": duration,
    }
    if arousal is not None:
        row["arousal"], row["valence"] = arousal, valence
    if segmented:
        row["start"], row["end"] = start, end
    return row


def _cell(value):
    """None for a missing cell (None, NaN, empty or blank string); the value otherwise."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _parse_labels(value, label_set) -> list[str]:
    """``"neutral;happy"`` / ``["neutral", "happy"]`` -> ``["neutral", "happy"]`` (stripped, no repeats)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        parts = [str(part) for part in value if _cell(part) is not None]
    elif _cell(value) is None:
        parts = []
    else:
        parts = str(value).split(LABEL_SEPARATOR)
    names = list(dict.fromkeys(part.strip() for part in parts if part.strip()))
    if not names:
        raise _Skip("unknown_label", "no emotion label")
    if label_set is not None:
        unknown = [name for name in names if name not in label_set]
        if unknown:
            raise _Skip("unknown_label", f"label(s) {unknown} not among the labels {sorted(label_set)}")
    return names


def _parse_rating(value, column, scale) -> float:
    lowest, highest = scale
    try:
        rating = float(value)
    except (TypeError, ValueError):
        raise _Skip("bad_rating", f"{column} {value!r} is not a number" if value is not None
                    else f"no {column}") from None
    if not math.isfinite(rating) or not lowest <= rating <= highest:
        raise _Skip("bad_rating", f"{column} {value!r} is outside the rating scale [{lowest:g}, {highest:g}]")
    if (lowest, highest) == KEMDY_RATING_SCALE:
        return rating
    low, high = KEMDY_RATING_SCALE
    return low + (high - low) * (rating - lowest) / (highest - lowest)


def _parse_segment(start_cell, end_cell, file_seconds, file_rate) -> tuple[float, float]:
    values = []
    for name, value, default in (("start", start_cell, 0.0), ("end", end_cell, file_seconds)):
        if value is None:
            values.append(default)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _Skip("bad_start_end", f"{name} {value!r} is not a number of seconds") from None
        if not math.isfinite(number) or number < 0:
            raise _Skip("bad_start_end", f"{name} {value!r} is not a finite number of seconds >= 0")
        values.append(number)
    start, end = values
    if not start < end:
        raise _Skip("bad_start_end", f"start {start:g} s is not before end {end:g} s")
    if end > file_seconds + 1.0 / file_rate:
        raise _Skip("bad_start_end", f"end {end:g} s is past the file's end ({file_seconds:g} s)")
    return start, min(end, file_seconds)


def _header(path: str) -> tuple[float, int] | None:
    """``(seconds, rate)`` from the file's header, or None when it cannot be read or holds no samples."""
    try:
        info = sf.info(path)
    except Exception:  # libsndfile raises RuntimeError subclasses; any failure means the same here
        return None
    if not info.frames > 0 or not info.samplerate > 0:
        return None
    return info.frames / info.samplerate, int(info.samplerate)


def _check_scale(rating_scale) -> tuple[float, float]:
    try:
        lowest, highest = (float(value) for value in rating_scale)
    except (TypeError, ValueError):
        raise ValueError(f"rating_scale={rating_scale!r}: expected (lowest, highest), e.g. (1, 5).") from None
    if not (math.isfinite(lowest) and math.isfinite(highest) and lowest < highest):
        raise ValueError(f"rating_scale={rating_scale!r}: expected finite (lowest, highest) with lowest < highest.")
    return lowest, highest


def _check_labels(labels) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = labels.split(LABEL_SEPARATOR) if LABEL_SEPARATOR in labels else labels.split(",")
    names = [str(label).strip() for label in labels]
    if not names or not all(names) or len(set(names)) != len(names):
        raise ValueError(f"labels={labels!r}: expected distinct, non-empty label names.")
    return names


# ------------------------------------------------------------------------------------------------ writing
WRITTEN_COLUMNS = ("id", "audio", "start", "end", "text", "transcript", "emotion", "arousal", "valence", "speaker",
                   "session", "gender", "role")


def write_manifest(dataset, path: str | os.PathLike, *, absolute_paths: bool = False) -> Path:
    """Write `dataset` (rows of `load_kemdy` or `load_manifest`) as a manifest `load_manifest` reads back to the
    same rows: a ``.csv``, ``.tsv`` or ``.jsonl`` file (by its suffix; UTF-8).

    Columns written: ``id`` (``segment_id``), ``audio`` (relative to the manifest's folder where the file lies
    below it, absolute otherwise; always absolute with `absolute_paths`), ``start``/``end`` (segments only),
    ``text``, ``transcript``, ``emotion`` (labels joined by ``;`` in CSV/TSV, a list in JSON lines),
    ``arousal``/``valence`` (when the dataset has them, on the 1-5 scale), ``speaker``, ``session``, ``gender``,
    ``role``. Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"write_manifest: {str(path)!r} must end in one of {', '.join(SUFFIXES)}.")
    names = set(dataset.column_names)
    missing = [column for column in ("segment_id", "audio", "emotion") if column not in names]
    if missing:
        raise ValueError(f"write_manifest: the dataset has no {missing} column(s); it has {sorted(names)}.")
    source = {"id": "segment_id"}
    columns = [column for column in WRITTEN_COLUMNS if source.get(column, column) in names]
    folder = path.resolve().parent
    path.parent.mkdir(parents=True, exist_ok=True)
    records = []
    for row in dataset:
        record = {}
        for column in columns:
            value = row[source.get(column, column)]
            if column == "audio":
                value = _written_path(value, folder, absolute_paths)
            elif column == "emotion" and SUFFIXES[suffix] is not None:
                value = LABEL_SEPARATOR.join(value)
            elif isinstance(value, float):
                value = repr(float(value)) if SUFFIXES[suffix] is not None else float(value)
            record[column] = value
        records.append(record)
    if SUFFIXES[suffix] is None:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        path.write_text(text, encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, delimiter=SUFFIXES[suffix])
            writer.writeheader()
            writer.writerows(records)
    return path


def _written_path(audio: str, folder: Path, absolute: bool) -> str:
    audio_path = Path(audio).resolve()
    if not absolute and audio_path.is_relative_to(folder):
        return audio_path.relative_to(folder).as_posix()
    return str(audio_path)


__all__ = ["load_manifest", "write_manifest", "manifest_features", "ManifestReport", "SKIP_REASONS", "COLUMNS",
           "REQUIRED_COLUMNS", "DEFAULT_RATING_SCALE"]
