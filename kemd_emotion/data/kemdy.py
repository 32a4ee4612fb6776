"""The KEMDy19 / KEMDy20 dataset builder and `load_kemdy`.

`load_kemdy` turns a release folder (the real ETRI release, or one written by `write_sample_corpus`) into a
`datasets.Dataset` with one row per usable annotation row::

    >>> ds = load_kemdy("path/to/KEMDy20_v1_1")                       # doctest: +SKIP
    >>> ds, report = load_kemdy("path/to/KEMDy19", annotations="all", return_report=True)  # doctest: +SKIP
    >>> report.skip_counts                                            # doctest: +SKIP
    {'missing_wav': 8, 'missing_txt': 4}

Columns (all per row):

- ``segment_id`` (str): the segment's ID, e.g. ``Sess01_script01_User002M_001``; for KEMDy20 rows whose ID carries
  another session's prefix, the prefix is replaced by the session of the annotation file (the truth for where the
  wav lives) and the change is listed in ``report.corrected_ids``.
- ``session`` (str): ``Sess01`` ... from the annotation file. ``speaker`` (str): ``User002M`` (KEMDy20) or
  ``Sess01_F`` (KEMDy19, one actor per gender and session); ``gender`` (str): ``M`` or ``F``. Both describe the voice
  heard in ``audio``.
- ``role`` (str): whose emotion the labels describe: ``"speaker"`` (the voice in ``audio``) or ``"listener"``
  (KEMDy19 only: the other actor, listening; kept with ``annotations="all"``).
- ``text`` (str): the transcript without markers; ``transcript`` (str): the transcript as written.
- ``audio`` (str): absolute path of the wav file (any rate, any channel count; decode with soundfile).
- ``emotion`` (list[str]): the raters' majority emotions, canonical names from `EMOTIONS` (several on a tie, in the
  release's order). ``arousal``, ``valence`` (float): raters' means on the 1-5 scale.
- ``duration`` (float): seconds, from the wav header (frames / rate); the audio is never decoded to prepare.

A row that cannot be used is skipped, never fatal; each reason in `SKIP_REASONS` gets one log line (WARNING) when
the dataset is prepared, and `KemdyReport` (``return_report=True``, or `KemdyBuilder.report`) lists the IDs per
reason, also when the dataset is later served from cache. A folder that is not a KEMDy release raises ValueError.

Caching: the prepared Arrow files live under ``cache_dir/kemdy/<config id>/<VERSION>/<code hash>``. The config id
covers the options, the release path and a fingerprint of the release (sizes and times of the annotation files,
times of the wav folders), and the code hash covers this module and `text`, so editing the builder, bumping
`VERSION`, or rewriting the release re-prepares, and nothing stale is served. Editing a wav or txt in place,
under the same name, is not noticed: pass ``force_rebuild=True``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import soundfile as sf
from datasets.builder import Key

from ..configuration_klue_wav2vec2 import EMOTIONS
from .text import TRANSCRIPT_ENCODINGS, clean_transcript, decode_transcript

logger = logging.getLogger(__name__)

# Instantiating a builder makes `datasets` rewrite its module's globals (open, os.path.*, os.walk, pathlib.Path) with
# fsspec-aware versions for streaming remote files, unless the module says it is already patched. A release is a
# local folder: keep the plain functions, which are also several times faster on 13k files.
_patched_for_streaming = True

VERSION = "1.0.0"
"""Version of the prepared data; part of the cache path. Bump it whenever a change alters the rows."""

RELEASES = ("kemdy19", "kemdy20")
ANNOTATIONS = ("speaker", "all")
REPORT_FILENAME = "kemdy_report.json"

EMOTION_ALIASES = {name: name for name in EMOTIONS} | {"disqust": "disgust"}
"""Spellings found in the releases -> canonical name (KEMDy20 writes ``disqust``)."""

SKIP_REASONS = {
    "malformed_row": "the row has too few columns",
    "bad_id": "the Segment ID does not match the release's pattern",
    "unknown_emotion": "the total emotion is empty or not one of the seven emotions",
    "bad_rating": "the total valence or arousal is not a number in [1, 5]",
    "duplicate": "the segment was already annotated in the same role",
    "missing_wav": "no wav file for the segment",
    "missing_txt": "no transcript file for the segment",
    "unreadable_wav": "the wav header cannot be read or holds no samples",
    "unreadable_txt": "the transcript file cannot be read",
    "empty_transcript": "the transcript file is empty",
}
"""Why a row can be skipped, in the order the checks run."""


@dataclass(frozen=True)
class _Layout:
    """Where a release keeps things, and how its annotation columns are laid out."""

    annotation_file: re.Pattern  # groups: session number, [gender of the annotating actor]
    segment_id: re.Pattern  # named groups: session, dialogue, speaker, gender
    segment_column: int  # emotion, valence, arousal follow it
    bio_folders: tuple[str, ...]
    display_name: str

    @property
    def min_columns(self) -> int:
        return self.segment_column + 4


LAYOUTS = {
    "kemdy19": _Layout(
        annotation_file=re.compile(r"Session(\d{2})_([MF])_res\.csv", re.IGNORECASE),
        segment_id=re.compile(r"Sess(?P<session>\d{2})_(?P<dialogue>(?:script|impro)\d{2})_(?P<gender>[MF])\d{3}"),
        segment_column=9,
        bio_folders=("ECG", "EDA", "TEMP"),
        display_name="KEMDy19",
    ),
    "kemdy20": _Layout(
        annotation_file=re.compile(r"Sess(\d{2})_eval\.csv", re.IGNORECASE),
        segment_id=re.compile(r"Sess(?P<session>\d{2})_(?P<dialogue>script0[1-6])_(?P<speaker>User\d{3}(?P<gender>[MF]))_\d{3}"),
        segment_column=3,
        bio_folders=("EDA", "IBI", "TEMP"),
        display_name="KEMDy20",
    ),
}


FEATURES = datasets.Features(
    {
        "segment_id": datasets.Value("string"),
        "session": datasets.Value("string"),
        "speaker": datasets.Value("string"),
        "gender": datasets.Value("string"),
        "role": datasets.Value("string"),
        "text": datasets.Value("string"),
        "transcript": datasets.Value("string"),
        "audio": datasets.Value("string"),
        "emotion": datasets.List(datasets.Value("string")),
        "arousal": datasets.Value("float32"),
        "valence": datasets.Value("float32"),
        "duration": datasets.Value("float32"),
    }
)


@dataclass
class KemdyReport:
    """What preparing a release kept and skipped.

    Attributes:
        name: ``"kemdy19"`` or ``"kemdy20"``.
        data_dir: the release folder.
        annotations: ``"speaker"`` or ``"all"``.
        num_rows: rows in the dataset.
        skipped: reason (a key of `SKIP_REASONS`) -> the IDs of the skipped rows, in file order (``file.csv:line``
            for a row without any ID). With ``annotations="all"`` a KEMDy19 segment can appear twice.
        corrected_ids: ID as written in the annotation file -> ID used (its session prefix replaced by the file's).
        text_fallback: segments whose transcript did not decode with the release's encoding (see
            `TRANSCRIPT_ENCODINGS`) and were decoded with the fallback, or with replacement characters.
        listener_rows_dropped: KEMDy19 listener rows left out because ``annotations="speaker"`` (not skips).
        from_cache: True when the dataset was served from the cache rather than prepared now.
    """

    name: str
    data_dir: str
    annotations: str
    num_rows: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    corrected_ids: dict[str, str] = field(default_factory=dict)
    text_fallback: list[str] = field(default_factory=list)
    listener_rows_dropped: int = 0
    from_cache: bool = False

    @property
    def skip_counts(self) -> dict[str, int]:
        """Reason -> number of rows skipped for it (reasons with none are left out)."""
        return {reason: len(ids) for reason, ids in self.skipped.items() if ids}

    @property
    def num_skipped(self) -> int:
        return sum(len(ids) for ids in self.skipped.values())

    def skip(self, reason: str, segment: str) -> None:
        self.skipped.setdefault(reason, []).append(segment)

    def summary(self) -> str:
        skips = ", ".join(f"{n} {reason}" for reason, n in self.skip_counts.items()) or "none"
        return f"{LAYOUTS[self.name].display_name} at {self.data_dir}: {self.num_rows} rows; skipped: {skips}"

    def log(self, level: int = logging.WARNING) -> None:
        """One log line per skip reason, with the first IDs."""
        display = LAYOUTS[self.name].display_name
        for reason, ids in self.skipped.items():
            if ids:
                shown = ", ".join(ids[:10]) + (f", ... ({len(ids) - 10} more)" if len(ids) > 10 else "")
                logger.log(level, "%s: skipped %d row(s), %s: %s", display, len(ids), SKIP_REASONS[reason], shown)
        if self.corrected_ids:
            logger.log(level, "%s: %d ID(s) carried another session's prefix; used the file's session: %s",
                       display, len(self.corrected_ids), ", ".join(list(self.corrected_ids)[:10]))
        if self.text_fallback:
            logger.log(level, "%s: %d transcript(s) were not %s and were decoded with a fallback: %s", display,
                       len(self.text_fallback), TRANSCRIPT_ENCODINGS[self.name], ", ".join(self.text_fallback[:10]))

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "from_cache"}, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str, from_cache: bool = False) -> KemdyReport:
        return cls(**json.loads(text), from_cache=from_cache)


def detect_release(data_dir: str | os.PathLike) -> str:
    """Return ``"kemdy19"`` or ``"kemdy20"`` from the annotation file names in `data_dir`.

    Raises a ValueError saying what was found and what a release holds when `data_dir` is neither.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise ValueError(f"KEMDy release folder {str(root)!r} does not exist or is not a folder.")
    annotation = root / "annotation"
    names = sorted(p.name for p in annotation.iterdir()) if annotation.is_dir() else []
    found = [name for name, layout in LAYOUTS.items() if any(layout.annotation_file.fullmatch(n) for n in names)]
    if len(found) == 1 and (root / "wav").is_dir():
        return found[0]
    if len(found) > 1:
        raise ValueError(f"{str(root)!r} holds annotation files of both KEMDy19 and KEMDy20; pass name=.")
    raise ValueError(_not_a_release_message(root, names))


def _not_a_release_message(root: Path, annotation_names: list[str]) -> str:
    entries = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    message = (
        f"{str(root)!r} is not a KEMDy release folder: expected 'annotation/' holding Session01_F_res.csv ... "
        f"(KEMDy19) or Sess01_eval.csv ... (KEMDy20), and 'wav/Session01/...'; found {entries[:12] or 'nothing'}"
    )
    if annotation_names:
        message += f", and in annotation/: {annotation_names[:8]}"
    nested = [name for name in entries if name.lower().startswith("kemdy") and (root / name / "annotation").is_dir()]
    if nested:
        message += f". Did you mean {str(root / nested[0])!r}?"
    return message + "."


def release_fingerprint(data_dir: str | os.PathLike) -> str:
    """A short hash of the release's annotation files (name, size, mtime) and wav folders (name, mtime).

    It changes when an annotation file is rewritten or a file is added to or removed from a wav folder; it does not
    read any file, so computing it costs milliseconds even for a full release.
    """
    root = Path(data_dir)
    digest = hashlib.sha256()
    annotation = root / "annotation"
    if annotation.is_dir():
        for entry in sorted(os.scandir(annotation), key=lambda e: e.name):
            stat = entry.stat()
            digest.update(f"annotation/{entry.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    # wav/, wav/SessionNN/ and (KEMDy19) wav/SessionNN/<dialogue>/: their mtimes change when files come or go.
    level = [root / "wav"] if (root / "wav").is_dir() else []
    for _ in range(3):
        below = []
        for folder in level:
            digest.update(f"{folder.relative_to(root)}|{folder.stat().st_mtime_ns}\n".encode())
            with os.scandir(folder) as entries:
                below.extend(Path(e.path) for e in entries if e.is_dir())
        level = sorted(below)
    return digest.hexdigest()[:16]


def _code_hash() -> str:
    """Hash of the code that shapes the rows: this module and the transcript cleaner."""
    digest = hashlib.sha256(VERSION.encode())
    for module_file in (__file__, os.path.join(os.path.dirname(__file__), "text.py")):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class KemdyConfig(datasets.BuilderConfig):
    """Options of the KEMDy builder.

    Attributes:
        annotations: ``"speaker"`` keeps, for KEMDy19, only the rows that label a segment with its own speaker's
            emotion; ``"all"`` also keeps the listener rows (as the seed paper did). KEMDy20 has speaker rows only.
        data_fingerprint: `release_fingerprint` of the release, filled in by `KemdyBuilder` so that the cache is
            keyed on the release's content.
    """

    annotations: str = "speaker"
    data_fingerprint: str = ""


class KemdyBuilder(datasets.GeneratorBasedBuilder):
    """`datasets` builder for a local KEMDy19 or KEMDy20 release (configs ``kemdy19`` and ``kemdy20``).

    Use it directly (datasets 5 has no loading scripts)::

        builder = KemdyBuilder(data_dir="KEMDy20_v1_1", cache_dir=...)   # config inferred from the folder
        builder.download_and_prepare()
        ds = builder.as_dataset(split="train")
        builder.report                                                    # a KemdyReport

    or, simpler, `load_kemdy`. Keyword arguments other than the `DatasetBuilder` ones (``annotations``) set
    `KemdyConfig` fields.
    """

    VERSION = datasets.Version(VERSION)
    BUILDER_CONFIG_CLASS = KemdyConfig
    BUILDER_CONFIGS = [
        KemdyConfig(name="kemdy19", version=VERSION, description="KEMDy19: actors' dialogues, 20 sessions"),
        KemdyConfig(name="kemdy20", version=VERSION, description="KEMDy20: general adults' free talk, 40 sessions"),
    ]

    def __init__(self, *args, config_name: str | None = None, data_dir: str | os.PathLike | None = None,
                 dataset_name: str | None = None, hash: str | None = None, **kwargs):
        if data_dir is None:
            raise ValueError("KemdyBuilder needs data_dir=, the folder of a KEMDy19 or KEMDy20 release.")
        data_dir = os.path.abspath(os.fspath(data_dir))
        if config_name is None:
            config_name = detect_release(data_dir)
        if config_name not in RELEASES:
            raise ValueError(f"name must be one of {RELEASES}; got {config_name!r}.")
        annotations = kwargs.get("annotations") or "speaker"
        if annotations not in ANNOTATIONS:
            raise ValueError(f"annotations must be one of {ANNOTATIONS}; got {annotations!r}.")
        kwargs["annotations"] = annotations
        kwargs.setdefault("data_fingerprint", release_fingerprint(data_dir))
        super().__init__(*args, config_name=config_name, data_dir=data_dir, dataset_name=dataset_name or "kemdy",
                         hash=hash or _code_hash(), **kwargs)
        self._prepared_now = False

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Korean multimodal emotion corpus (ETRI KEMDy): speech, transcript, rater emotions, "
            "arousal and valence per segment.",
            features=FEATURES,
            homepage="https://nanum.etri.re.kr/share/kjnoh/KEMDy20",
        )

    @property
    def layout(self) -> _Layout:
        return LAYOUTS[self.config.name]

    @property
    def report(self) -> KemdyReport | None:
        """The `KemdyReport` of the prepared data (None before `download_and_prepare`)."""
        path = os.path.join(self.cache_dir, REPORT_FILENAME)
        if not os.path.isfile(path):
            return None
        return KemdyReport.from_json(Path(path).read_text(encoding="utf-8"), from_cache=not self._prepared_now)

    def _split_generators(self, dl_manager):
        del dl_manager  # local release: nothing to download
        self._prepared_now = True
        root = Path(self.config.data_dir)
        detected = detect_release(root)  # raises for a folder that is no release
        if detected != self.config.name:
            raise ValueError(
                f"{str(root)!r} looks like {LAYOUTS[detected].display_name} (its annotation files are named that "
                f"way), not {self.layout.display_name}: pass name={detected!r}."
            )
        csv_paths = sorted(
            (p for p in (root / "annotation").iterdir() if self.layout.annotation_file.fullmatch(p.name)),
            key=lambda p: p.name.lower(),
        )
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"csv_paths": csv_paths})]

    def _generate_examples(self, csv_paths: list[Path]) -> Iterator[tuple[Key, dict]]:
        root = Path(self.config.data_dir)
        report = KemdyReport(name=self.config.name, data_dir=str(root), annotations=self.config.annotations)
        seen: set[tuple[str, str]] = set()
        file_index = _SessionFiles(root / "wav")
        for shard, csv_path in enumerate(csv_paths):
            for line, row in _read_annotation_rows(csv_path, self.layout):
                example = self._parse_row(row, csv_path, line, file_index, report, seen)
                if example is not None:
                    report.num_rows += 1
                    yield Key(shard, line), example
        Path(self._output_dir, REPORT_FILENAME).write_text(report.to_json(), encoding="utf-8")
        report.log()
        logger.info("%s", report.summary())

    def _parse_row(self, row, csv_path, line, files, report, seen) -> dict | None:
        """One annotation row -> one example, or None after recording why in `report`."""
        layout = self.layout
        file_match = layout.annotation_file.fullmatch(csv_path.name)
        file_session = file_match.group(1)
        if len(row) < layout.min_columns:
            report.skip("malformed_row", f"{csv_path.name}:{line}")
            return None
        written_id = row[layout.segment_column].strip()
        id_match = layout.segment_id.fullmatch(written_id)
        if id_match is None:
            report.skip("bad_id", written_id or f"{csv_path.name}:{line}")
            return None
        segment_id = written_id
        if id_match["session"] != file_session:
            segment_id = f"Sess{file_session}" + written_id[len("Sess00"):]
            report.corrected_ids[written_id] = segment_id
        gender = id_match["gender"]
        if self.config.name == "kemdy19":
            speaker = f"Sess{file_session}_{gender}"
            role = "speaker" if gender == file_match.group(2).upper() else "listener"
        else:
            speaker, role = id_match["speaker"], "speaker"
        if role == "listener" and self.config.annotations == "speaker":
            report.listener_rows_dropped += 1
            return None

        emotions = parse_emotions(row[layout.segment_column + 1])
        if emotions is None:
            report.skip("unknown_emotion", segment_id)
            return None
        valence = _parse_rating(row[layout.segment_column + 2])
        arousal = _parse_rating(row[layout.segment_column + 3])
        if valence is None or arousal is None:
            report.skip("bad_rating", segment_id)
            return None
        if (segment_id, role) in seen:
            report.skip("duplicate", segment_id)
            return None
        seen.add((segment_id, role))

        stems = (segment_id, written_id)
        wav = files.find(file_session, stems, ".wav") or files.find(id_match["session"], stems, ".wav")
        if wav is None:
            report.skip("missing_wav", segment_id)
            return None
        txt = files.find(file_session, stems, ".txt") or files.find(id_match["session"], stems, ".txt")
        if txt is None:
            report.skip("missing_txt", segment_id)
            return None
        try:
            info = sf.info(wav)
            duration = info.frames / info.samplerate
        except Exception:  # libsndfile raises RuntimeError subclasses; any failure means the same here
            duration = 0.0
        if not duration > 0:
            report.skip("unreadable_wav", segment_id)
            return None
        try:
            raw_transcript = Path(txt).read_bytes()
        except OSError:
            report.skip("unreadable_txt", segment_id)
            return None
        transcript, as_expected = decode_transcript(raw_transcript, TRANSCRIPT_ENCODINGS[self.config.name])
        if not as_expected and segment_id not in report.text_fallback:
            report.text_fallback.append(segment_id)
        if not transcript:
            report.skip("empty_transcript", segment_id)
            return None
        return {
            "segment_id": segment_id,
            "session": f"Sess{file_session}",
            "speaker": speaker,
            "gender": gender,
            "role": role,
            "text": clean_transcript(transcript),
            "transcript": transcript,
            "audio": wav,
            "emotion": emotions,
            "arousal": arousal,
            "valence": valence,
            "duration": duration,
        }


def parse_emotions(cell: str) -> list[str] | None:
    """``"neutral;happy"`` -> ``["neutral", "happy"]`` (canonical names, release order, no repeats).

    Accepts either disgust spelling and any letter case; returns None when the cell is empty or names an emotion
    that is not one of `EMOTIONS`.

    >>> parse_emotions(" Neutral;disqust ")
    ['neutral', 'disgust']
    >>> parse_emotions("bored") is None
    True
    """
    names = [part.strip().lower() for part in cell.split(";") if part.strip()]
    if not names or any(name not in EMOTION_ALIASES for name in names):
        return None
    return list(dict.fromkeys(EMOTION_ALIASES[name] for name in names))


def _parse_rating(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) and 1.0 <= value <= 5.0 else None


def _read_annotation_rows(csv_path: Path, layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of each data row of an annotation CSV: both header rows skipped by position, blank
    rows dropped."""
    raw = csv_path.read_bytes()
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("utf-8", errors="replace")
    rows = csv.reader(io.StringIO(text.replace("\x00", ""), newline=""))  # csv refuses NUL bytes
    group_header = next(rows, [])
    next(rows, None)  # the sub-header row: Emotion/Valence/Arousal, start/end; its Segment ID cell varies
    header_cell = group_header[layout.segment_column].strip().lower() if len(group_header) > layout.segment_column else ""
    if header_cell.replace("_", " ") != "segment id":
        logger.warning("%s: expected 'Segment ID' in column %d of the first header row, found %r; reading by position "
                       "anyway.", csv_path, layout.segment_column + 1, header_cell)
    for row in rows:
        if any(cell.strip() for cell in row):
            yield rows.line_num, row


class _SessionFiles:
    """Finds wav/txt files by stem inside ``wav/SessionNN`` (and its dialogue sub-folders), listing each once."""

    def __init__(self, wav_root: Path):
        self.wav_root = wav_root
        self._index: dict[str, dict[str, str]] = {}

    def find(self, session: str, stems: tuple[str, ...], suffix: str) -> str | None:
        if session not in self._index:
            self._index[session] = self._list(self.wav_root / f"Session{session}")
        files = self._index[session]
        for stem in stems:
            path = files.get(stem + suffix)
            if path is not None:
                return path
        return None

    @staticmethod
    def _list(folder: Path) -> dict[str, str]:
        found: dict[str, str] = {}
        for directory, _, names in os.walk(folder):
            for name in names:
                found.setdefault(name, os.path.join(directory, name))
        return found


def load_kemdy(
    data_dir: str | os.PathLike,
    name: str | None = None,
    *,
    annotations: str = "speaker",
    cache_dir: str | os.PathLike | None = None,
    force_rebuild: bool = False,
    keep_in_memory: bool = False,
    return_report: bool = False,
) -> datasets.Dataset | tuple[datasets.Dataset, KemdyReport]:
    """Load a KEMDy19 or KEMDy20 release folder as a `datasets.Dataset` (columns: see the module docstring).

    Args:
        data_dir: the release folder, holding ``annotation/`` and ``wav/``.
        name: ``"kemdy19"`` or ``"kemdy20"``; None infers it from the annotation file names.
        annotations: KEMDy19 only: ``"speaker"`` (default) keeps the rows that label a segment with its own
            speaker's emotion; ``"all"`` also keeps the listener rows, as the seed paper did.
        cache_dir: where prepared data is cached (default: the `datasets` cache).
        force_rebuild: prepare again even if a cached copy exists.
        keep_in_memory: load the Arrow table into memory instead of memory-mapping it.
        return_report: also return the `KemdyReport` (rows kept, rows skipped per reason with their IDs).

    Raises:
        ValueError: `data_dir` is not a KEMDy release, `name` disagrees with it, an option is unknown, or not a
            single row of the release could be used.
    """
    if name is not None and name not in RELEASES:
        raise ValueError(f"name must be one of {RELEASES} or None (infer); got {name!r}.")
    builder = KemdyBuilder(
        config_name=name,
        data_dir=data_dir,
        annotations=annotations,
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
    )
    builder.download_and_prepare(download_mode="force_redownload" if force_rebuild else None)
    report = builder.report
    if report.num_rows == 0:
        raise ValueError(f"No usable segment in {os.fspath(data_dir)!r}: {report.summary()}.")
    if report.from_cache:
        logger.info("Served from cache (%s): %s", builder.cache_dir, report.summary())
    dataset = builder.as_dataset(split="train", in_memory=keep_in_memory)
    return (dataset, report) if return_report else dataset
