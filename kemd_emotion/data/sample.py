"""A synthetic KEMDy19 / KEMDy20 release: the real on-disk layout and quirks, with a learnable signal.

`write_sample_corpus` writes a folder that `load_kemdy` reads exactly like an ETRI release; tests, examples and the
default training job use it, since the real corpora are not redistributable.

How the signal is made (so that, as in real speech, each modality carries part of it):

- Every segment has a true emotion category, drawn from an imbalanced prior (neutral most often), and latent
  arousal and valence around that category's prototype (`PROTOTYPES`, 1-5 scale). Ten simulated raters each
  perceive arousal and valence with noise, rate them as integers 1-5, and vote a category (mostly the true one,
  otherwise the one nearest to what they perceived). The CSV holds their votes, the majority vote (ties joined
  with ``;``) and the means, as the releases do.
- The words follow valence only: positive and negative words, mild or strong, in proportion to the latent
  valence, among neutral words and fillers; fear, disgust and surprise sometimes bring a word of their own. Nothing
  in the text depends on arousal.
- The voice follows arousal only: a harmonic source on a time-varying f0 with syllable envelopes, whose pitch level
  and range, syllable rate, spectral tilt (vocal effort) and loudness rise with arousal; each speaker has their own
  pitch (by gender), rate and timbre, and every segment gets acoustic noise. Nothing in the audio depends on
  valence.
- Categories need both: happy, angry and surprise share high arousal and differ in valence; angry, disgust and
  sad share negative valence and differ in arousal.

Sizes (`write_sample_corpus` arguments; the files are 16-bit PCM, about 32 kB per second at 16 kHz):

====================  ==========================================================  =========
preset (`SIZES`)       options                                                     on disk
====================  ==========================================================  =========
``"tiny"`` (tests)    3 sessions x 8 segments, 0.4-0.8 s                          ~0.8 MB
``"default"``         10 sessions x 40 segments, 1.0-2.0 s (the main job)         ~22 MB
``"kemdy20-size"``    40 sessions, 13,462 segments, 0.1-0.3 s (benchmarks)        ~93 MB
====================  ==========================================================  =========

Quirks written when ``quirks=True`` (at fixed places; `SampleManifest` lists them): both header styles of the
``Segment ID`` sub-header cell (blank, a space, repeated), ``disqust`` (KEMDy20) / ``disgust`` (KEMDy19), a forced
``;`` tie, cp949 (KEMDy20) / UTF-8 (KEMDy19) transcripts and one transcript in the other encoding, transcript
markers, 44.1 kHz, 8 kHz and stereo files, one missing wav, one corrupt wav, one row with a malformed ID, one with an
unknown emotion; KEMDy20 one ID with another session's prefix; KEMDy19 one missing transcript, one empty
transcript, and per-gender files that list every segment (speaker and listener rows).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf


MANIFEST_FILENAME = "sample_manifest.json"
"""Written at the release root; the builder ignores it. It says what the writer wrote (see `SampleManifest`)."""

VOICES = ("builtin", "espeak")
"""`write_sample_corpus(voice=...)`: the corpus kinds."""

SIZES: dict[str, dict] = {
    "tiny": dict(sessions=3, segments_per_session=8, min_seconds=0.4, max_seconds=0.8),
    "default": dict(sessions=10, segments_per_session=40, min_seconds=1.0, max_seconds=2.0),
    "kemdy20-size": dict(sessions=40, num_segments=13_462, min_seconds=0.1, max_seconds=0.3),
}
"""Named sizes for `write_sample_corpus(size=...)`."""

CATEGORY_PRIOR = {
    "angry": 0.11, "disgust": 0.09, "fear": 0.09, "happy": 0.15, "neutral": 0.35, "sad": 0.12, "surprise": 0.09,
}
PROTOTYPES = {  # (arousal, valence), 1-5
    "angry": (4.2, 1.7), "disgust": (2.9, 1.8), "fear": (3.7, 2.2), "happy": (3.9, 4.2),
    "neutral": (3.0, 3.0), "sad": (1.9, 2.0), "surprise": (4.3, 3.3),
}
LATENT_SPREAD = 0.4
"""Standard deviation of a segment's latent arousal / valence around its category's prototype."""
RATER_NOISE = 0.55
NUM_RATERS = 10

POSITIVE = (("좋아요", "괜찮아요", "재밌어요", "고마워요", "편해요", "다행이에요"),
            ("최고예요", "행복해요", "신나요", "사랑해요", "멋져요", "대박이에요"))
NEGATIVE = (("별로예요", "불편해요", "귀찮아요", "아쉬워요", "싫어요", "피곤해요"),
            ("최악이에요", "미워요", "괴로워요", "속상해요", "답답해요", "실망이에요"))
"""(mild words, strong words)."""
NEUTRAL_WORDS = ("오늘", "어제", "내일", "회사", "학교", "친구", "집에", "주말에", "밥을", "시간", "우리", "저는",
                 "그거", "이번에", "먹었어요", "갔어요", "했어요", "봤어요", "있어요", "그래서", "그런데", "그냥",
                 "진짜", "정말")
FILLERS = ("음", "어", "그", "아", "뭐")
CATEGORY_WORDS = {"fear": ("무서워요", "겁나요", "불안해요"), "disgust": ("역겨워요", "더러워요", "징그러워요"),
                  "surprise": ("깜짝", "놀랐어요", "어머")}
ALTERNATIVES = (("그리고", "아니"), ("그래서", "그러니까"), ("근데", "그런데"))
MARKERS = ("b/", "n/", "o/", "c/", "s/", "N/")

_HEADER_STYLES = ("", " ", "Segment ID")
_CSV_SPELLING = {"kemdy19": {}, "kemdy20": {"disgust": "disqust"}}
_TRANSCRIPT_ENCODING = {"kemdy19": "utf-8", "kemdy20": "cp949"}
_OTHER_ENCODING = {"kemdy19": "cp949", "kemdy20": "utf-8"}
_BIO_FOLDERS = {"kemdy19": ("ECG", "EDA", "TEMP"), "kemdy20": ("EDA", "IBI", "TEMP")}

# Where the quirks go: (session index, segment index within the session, in annotation order).
_Q_ALL_MARKERS = (0, 0)
_Q_RATES = {(0, 1): (44_100, 1), (0, 2): (8_000, 1), (0, 3): (None, 2), (1, 1): (44_100, 2)}
_Q_MISSING_WAV = (0, 4)
_Q_UNKNOWN_EMOTION = (0, 6)
_Q_OTHER_ENCODING = (1, 0)
_Q_MISPREFIXED = (1, 2)  # KEMDy20
_Q_MISSING_TXT = (1, 3)  # KEMDy19
_Q_CORRUPT_WAV = (1, 5)
_Q_BAD_ID = (2, 1)
_Q_TIE = (2, 2)
_Q_EMPTY_TRANSCRIPT = (2, 3)  # KEMDy19
_Q_DISGUST = (2, 4)
MIN_SESSIONS_FOR_QUIRKS, MIN_SEGMENTS_FOR_QUIRKS = 3, 7


@dataclass
class SampleManifest:
    """What `write_sample_corpus` wrote, so tests can state expectations without the builder.

    Attributes:
        root: the release folder.
        name: ``"kemdy19"`` or ``"kemdy20"``.
        options: the arguments it was written with.
        rows: one dict per annotation row, in file order (annotation files sorted by name, then rows): ``csv``,
            ``written_id`` (as in the CSV), ``segment_id`` (with the file's session), ``session``, ``speaker``,
            ``gender``, ``role`` (``"speaker"`` or ``"listener"``), ``emotion`` (canonical names, release
            order), ``arousal``, ``valence``, ``transcript`` (raw), ``text`` (the words, built without the
            cleaner), ``audio`` (path relative to `root`), ``sampling_rate``, ``channels``, ``duration``
            (frames / rate), ``category`` (the true category) and ``skip`` (the reason the builder must skip the
            row, or None).
        text_fallback: segments whose transcript is deliberately in the other encoding.
        corrected_ids: IDs written with another session's prefix -> the ID with the file's session.
    """

    root: str
    name: str
    options: dict
    rows: list[dict] = field(default_factory=list)
    text_fallback: list[str] = field(default_factory=list)
    corrected_ids: dict[str, str] = field(default_factory=dict)

    def _kept_in(self, row: dict, annotations: str) -> bool:
        # The builder filters listener rows before it checks anything but the ID.
        return annotations == "all" or row["role"] == "speaker" or row["skip"] == "bad_id"

    def expected_rows(self, annotations: str = "speaker") -> list[dict]:
        """The rows `load_kemdy(root, annotations=...)` must return, in order."""
        return [r for r in self.rows if r["skip"] is None and self._kept_in(r, annotations)]

    def expected_skips(self, annotations: str = "speaker") -> dict[str, list[str]]:
        """Skip reason -> IDs (as written), in file order, as `KemdyReport.skipped` must hold them."""
        skips: dict[str, list[str]] = {}
        for row in self.rows:
            if row["skip"] is not None and self._kept_in(row, annotations):
                key = row["written_id"] if row["skip"] == "bad_id" else row["segment_id"]
                skips.setdefault(row["skip"], []).append(key)
        return skips

    def expected_listener_rows_dropped(self, annotations: str = "speaker") -> int:
        if annotations == "all":
            return 0
        return sum(1 for r in self.rows if r["role"] == "listener" and r["skip"] != "bad_id")

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, root_or_file: str | os.PathLike) -> SampleManifest:
        """Read the manifest of a sample release (its folder, or the JSON file itself)."""
        path = Path(root_or_file)
        if path.is_dir():
            path = path / MANIFEST_FILENAME
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class _Speaker:
    speaker_id: str
    gender: str
    f0: float  # Hz, at neutral arousal
    rate: float  # syllables per second, at neutral arousal
    tilt: float  # harmonic roll-off exponent, at neutral arousal
    formants: tuple[float, float]  # Hz
    gain: float
    noise: float


@dataclass
class _Segment:
    session_index: int
    index: int  # within the session, in annotation order
    segment_id: str
    speaker: _Speaker
    category: str
    arousal: float  # latent
    valence: float  # latent
    duration: float  # target, seconds
    file_rate: int = 16_000
    channels: int = 1
    transcript: str = ""
    text: str = ""


def write_sample_corpus(
    out_dir: str | os.PathLike,
    name: str = "kemdy20",
    *,
    size: str | None = None,
    sessions: int = 10,
    segments_per_session: int = 40,
    num_segments: int | None = None,
    min_seconds: float = 1.0,
    max_seconds: float = 2.0,
    sampling_rate: int = 16_000,
    quirks: bool = True,
    seed: int = 0,
    overwrite: bool = False,
    voice: str = "builtin",
) -> SampleManifest:
    """Write a synthetic KEMDy release into `out_dir` (which becomes the release folder) and return its manifest.

    Args:
        out_dir: the release folder to create; it must not exist or be empty, unless `overwrite`.
        name: ``"kemdy20"`` (40 sessions of free talk in the real one) or ``"kemdy19"`` (actors' dialogues).
        size: a preset from `SIZES` (``"tiny"``, ``"default"``, ``"kemdy20-size"``); its values replace the
            size arguments below.
        sessions: number of sessions (two speakers each; session folds need at least as many as folds).
        segments_per_session: segments (utterances) per session; with KEMDy19 each gives a speaker row in its
            speaker's annotation file and a listener row in the other's.
        num_segments: total segments, spread evenly over the sessions (overrides `segments_per_session`).
        min_seconds, max_seconds: clip durations are uniform in this range (seconds).
        sampling_rate: rate of most files (Hz); with `quirks` a few are 44.1 kHz, 8 kHz or stereo.
        quirks: write the release's quirks and faults (see the module docstring).
        seed: everything written depends only on it and the other arguments.
        overwrite: remove `out_dir` first if it holds anything.
        voice: ``"builtin"`` (this module's synthesiser, no system dependency) or ``"espeak"`` (an independent
            corpus kind: the espeak-ng text-to-speech engine speaks other sentences, one voice per session; see
            `kemd_emotion.data.espeak_sample`). Each kind has its own `size` presets.

    Returns:
        The `SampleManifest`, also saved as ``out_dir/sample_manifest.json``.

    Raises:
        ValueError: an argument is out of range (naming it and the range), or `out_dir` is not empty.
    """
    if voice not in VOICES:
        raise ValueError(f"voice must be one of {VOICES}; got {voice!r}.")
    writer_class, sizes = _ReleaseWriter, SIZES
    if voice == "espeak":
        from .espeak_sample import ESPEAK_SIZES, EspeakReleaseWriter

        writer_class, sizes = EspeakReleaseWriter, ESPEAK_SIZES
        writer_class.check_available()
    if size is not None:
        if size not in sizes:
            raise ValueError(f"size must be one of {tuple(sizes)} for voice {voice!r}; got {size!r}.")
        preset = dict(sizes[size])
        sessions = preset.pop("sessions")
        segments_per_session = preset.pop("segments_per_session", segments_per_session)
        num_segments = preset.pop("num_segments", None)
        min_seconds, max_seconds = preset.pop("min_seconds"), preset.pop("max_seconds")
    if name not in _TRANSCRIPT_ENCODING:
        raise ValueError(f"name must be 'kemdy19' or 'kemdy20'; got {name!r}.")
    if not 1 <= sessions <= 99:
        raise ValueError(f"sessions must be between 1 and 99 (two-digit session numbers); got {sessions}.")
    counts = _segments_per_session(sessions, segments_per_session, num_segments)
    if min(counts) < 1 or max(counts) > 999:
        raise ValueError(f"each session needs 1 to 999 segments; got {min(counts)} to {max(counts)}.")
    if quirks and (sessions < MIN_SESSIONS_FOR_QUIRKS or min(counts) < MIN_SEGMENTS_FOR_QUIRKS):
        raise ValueError(
            f"quirks=True needs at least {MIN_SESSIONS_FOR_QUIRKS} sessions of {MIN_SEGMENTS_FOR_QUIRKS} segments; "
            f"got {sessions} sessions, the smallest with {min(counts)}. Pass quirks=False for smaller corpora."
        )
    if not 0.05 <= min_seconds <= max_seconds <= 60:
        raise ValueError(f"need 0.05 <= min_seconds <= max_seconds <= 60; got {min_seconds} and {max_seconds}.")
    if sampling_rate not in (8_000, 16_000, 22_050, 44_100, 48_000):
        raise ValueError(f"sampling_rate must be one of 8000, 16000, 22050, 44100, 48000; got {sampling_rate}.")

    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise ValueError(f"{str(root)!r} is not empty; pass overwrite=True to replace it.")
        shutil.rmtree(root)
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(exist_ok=True)

    options = dict(name=name, sessions=sessions, segments_per_session=counts, min_seconds=min_seconds,
                   max_seconds=max_seconds, sampling_rate=sampling_rate, quirks=quirks, seed=seed)
    if voice != "builtin":  # the default corpus' manifest stays as it was
        options.update(voice=voice, **writer_class.engine_info())
    manifest = SampleManifest(root=os.path.abspath(root), name=name, options=options)
    writer = writer_class(root, name, sampling_rate, quirks, seed, manifest)
    for session_index, count in enumerate(counts):
        writer.write_session(session_index, count, min_seconds, max_seconds)
    manifest.save(root / MANIFEST_FILENAME)
    return manifest


def _segments_per_session(sessions: int, per_session: int, total: int | None) -> list[int]:
    if total is None:
        return [per_session] * sessions
    base, extra = divmod(total, sessions)
    return [base + (i < extra) for i in range(sessions)]


class _ReleaseWriter:
    """Writes one session at a time: its wav/txt files, its annotation file(s) and tiny bio-signal files.

    Another corpus kind subclasses it and overrides the three hooks that make its people, words and voice
    (`_speakers`, `_words`, `_audio`); the layout, labels and quirks stay this class' own.
    """

    def __init__(self, root: Path, name: str, sampling_rate: int, quirks: bool, seed: int, manifest):
        self.root, self.name, self.rate, self.quirks, self.seed = root, name, sampling_rate, quirks, seed
        self.manifest = manifest
        self.spelling = _CSV_SPELLING[name]

    # -- the session's people and segments -----------------------------------------------------------------------
    def _speakers(self, session_index: int, rng: np.random.Generator) -> list[_Speaker]:
        if self.name == "kemdy19":
            genders = ["F", "M"]
            ids = [f"Sess{session_index + 1:02d}_{g}" for g in genders]
        else:
            genders = list(rng.choice(["F", "M"], size=2))
            ids = [f"User{2 * session_index + k + 1:03d}{g}" for k, g in enumerate(genders)]
        speakers = []
        for speaker_id, gender in zip(ids, genders):
            speakers.append(_Speaker(
                speaker_id=speaker_id, gender=gender,
                f0=float(rng.uniform(95, 135) if gender == "M" else rng.uniform(175, 235)),
                rate=float(rng.uniform(3.6, 4.6)), tilt=float(rng.uniform(1.0, 1.4)),
                formants=(float(rng.uniform(500, 900)), float(rng.uniform(1200, 2200))),
                gain=float(rng.uniform(0.6, 1.0)), noise=float(rng.uniform(0.005, 0.02)),
            ))
        return speakers

    def _plan(self, session_index: int, count: int, min_s: float, max_s: float) -> tuple[list[_Segment], list]:
        """The session's segments in annotation order, and its speakers."""
        rng = np.random.default_rng([self.seed, session_index, 0])
        speakers = self._speakers(session_index, rng)
        session = session_index + 1
        per_dialogue = 8 if self.name == "kemdy19" else max(1, math.ceil(count / 6))
        segments: list[_Segment] = []
        turn_numbers: dict[tuple[int, str], int] = {}
        mood = None
        for index in range(count):
            dialogue = index // per_dialogue
            if index % per_dialogue == 0:
                mood = _draw_category(rng)
            speaker = speakers[(index + dialogue) % len(speakers)]
            key = (dialogue, speaker.speaker_id)
            turn_numbers[key] = turn_numbers.get(key, 0) + 1
            if self.name == "kemdy19":
                kind = "script" if dialogue % 2 == 0 else "impro"
                segment_id = f"Sess{session:02d}_{kind}{dialogue // 2 + 1:02d}_{speaker.gender}{turn_numbers[key]:03d}"
            else:
                segment_id = f"Sess{session:02d}_script{dialogue + 1:02d}_{speaker.speaker_id}_{turn_numbers[key]:03d}"
            category = mood if rng.random() < 0.4 else _draw_category(rng)  # turns of a dialogue share a mood
            if self.quirks and (session_index, index) == _Q_DISGUST:
                category = "disgust"
            arousal, valence = _latent(category, rng)
            segment = _Segment(session_index, index, segment_id, speaker, category, arousal, valence,
                               duration=float(rng.uniform(min_s, max_s)), file_rate=self.rate)
            if self.quirks:
                rate, channels = _Q_RATES.get((session_index, index), (self.rate, 1))
                segment.file_rate, segment.channels = rate or self.rate, channels
            segment.transcript, segment.text = _with_markers(
                self._words(segment, rng), rng, all_markers=self.quirks and (session_index, index) == _Q_ALL_MARKERS)
            segments.append(segment)
        return segments, speakers

    def _words(self, segment: _Segment, rng: np.random.Generator) -> list[str]:
        """The segment's words (they follow valence only)."""
        return _words(segment, rng)

    def _audio(self, segment: _Segment, rng: np.random.Generator) -> np.ndarray:
        """The segment's mono float32 samples at ``segment.file_rate`` (the voice follows arousal only)."""
        return synthesize(segment.speaker, segment.arousal, segment.duration, segment.file_rate, rng)

    # -- writing ------------------------------------------------------------------------------------------------
    def write_session(self, session_index: int, count: int, min_s: float, max_s: float) -> None:
        session = session_index + 1
        segments, speakers = self._plan(session_index, count, min_s, max_s)
        wav_dir = self.root / "wav" / f"Session{session:02d}"
        written = {}
        for segment in segments:
            written[segment.index] = self._write_segment_files(segment, wav_dir)
        file_genders = ["F", "M"] if self.name == "kemdy19" else [None]  # KEMDy19: one file per actor
        for offset, file_gender in enumerate(file_genders):
            self._write_annotation(session_index, segments, written, file_gender,
                                   header_style=(len(file_genders) * session_index + offset) % 3)
        for folder in _BIO_FOLDERS[self.name]:
            bio = self.root / folder / f"Session{session:02d}"
            bio.mkdir(parents=True, exist_ok=True)
            for speaker in speakers:
                (bio / f"Sess{session:02d}_{speaker.speaker_id.split('_')[-1]}.csv").write_text(
                    "time,value\n0.00,0.0\n0.25,0.0\n", encoding="ascii")

    def _quirk(self, segment: _Segment, where: tuple[int, int], release: str | None = None) -> bool:
        return self.quirks and (segment.session_index, segment.index) == where and release in (None, self.name)

    def _write_segment_files(self, segment: _Segment, wav_dir: Path) -> dict:
        """Write the wav and txt files; return what the manifest needs (path, frames, skip reason)."""
        folder = wav_dir / segment.segment_id[:-5] if self.name == "kemdy19" else wav_dir
        folder.mkdir(parents=True, exist_ok=True)
        # A bad ID is a fault of the annotation file only: the files carry the right name.
        wav_path, txt_path = folder / f"{segment.segment_id}.wav", folder / f"{segment.segment_id}.txt"
        info = {"audio": str(wav_path.relative_to(self.root)), "sampling_rate": segment.file_rate,
                "channels": segment.channels, "duration": None, "skip": None, "transcript": segment.transcript,
                "text": segment.text}

        rng = np.random.default_rng([self.seed, segment.session_index, segment.index + 1])
        if self._quirk(segment, _Q_MISSING_WAV):
            info["skip"] = "missing_wav"
        elif self._quirk(segment, _Q_CORRUPT_WAV):
            wav_path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + rng.bytes(64))
            info["skip"] = "unreadable_wav"
        else:
            audio = self._audio(segment, rng)
            if segment.channels == 2:  # a second microphone: quieter, its own noise
                second = 0.8 * audio + 0.003 * rng.standard_normal(audio.shape[0]).astype(np.float32)
                audio = np.stack([audio, second], axis=1)
            sf.write(wav_path, audio, segment.file_rate, subtype="PCM_16")
            info["duration"] = audio.shape[0] / segment.file_rate

        if self._quirk(segment, _Q_MISSING_TXT, "kemdy19"):
            info["skip"] = info["skip"] or "missing_txt"
        else:
            transcript = segment.transcript
            if self._quirk(segment, _Q_EMPTY_TRANSCRIPT, "kemdy19"):
                transcript = info["transcript"] = info["text"] = ""
                info["skip"] = info["skip"] or "empty_transcript"
            encoding = _TRANSCRIPT_ENCODING[self.name]
            if self._quirk(segment, _Q_OTHER_ENCODING):
                encoding = _OTHER_ENCODING[self.name]
                self.manifest.text_fallback.append(segment.segment_id)
            txt_path.write_bytes((transcript + "\n").encode(encoding))
        return info

    def _write_annotation(self, session_index, segments, written, file_gender, header_style) -> None:
        session = session_index + 1
        rng = np.random.default_rng([self.seed, session_index, 10_000 + (file_gender == "M")])
        if self.name == "kemdy19":
            csv_name = f"Session{session:02d}_{file_gender}_res.csv"
            lead = ["Numb", "Wav", "", "ECG", "", "E4-EDA", "", "E4-TEMP", "", "Segment ID"]
            sub = ["", "start", "end"] * 1 + ["start", "end"] * 3 + [_HEADER_STYLES[header_style]]
            raters = [f"Eval{k + 1:02d}" for k in range(NUM_RATERS)]
        else:
            csv_name = f"Sess{session:02d}_eval.csv"
            lead = ["Numb", "Wav", "", "Segment ID"]
            sub = ["", "start", "end", _HEADER_STYLES[header_style]]
            raters = [f"Eval{k + 1:02d}{'FM'[k % 2]}" for k in range(NUM_RATERS)]
        group_row = lead + ["Total Evaluation", "", ""] + [c for r in raters for c in (r, "", "")]
        sub_row = sub + ["Emotion", "Valence", "Arousal"] * (1 + NUM_RATERS)

        rows = [group_row, sub_row]
        clock = float(rng.uniform(1, 5))
        for number, segment in enumerate(segments, start=1):
            files = written[segment.index]
            role = "speaker" if file_gender in (None, segment.speaker.gender) else "listener"
            if role == "speaker":
                category, arousal, valence = segment.category, segment.arousal, segment.valence
            else:  # the listener's own emotion, loosely following the talk
                category = segment.category if rng.random() < 0.4 else _draw_category(rng)
                arousal, valence = _latent(category, rng)
            force_tie = role == "speaker" and self._quirk(segment, _Q_TIE)
            votes = _rate(category, arousal, valence, rng, force_tie=force_tie)
            emotion_cell = ";".join(self.spelling.get(e, e) for e in votes["emotion"])
            skip = files["skip"]
            written_id = segment.segment_id
            if role == "speaker" and self._quirk(segment, _Q_UNKNOWN_EMOTION):
                emotion_cell, skip = "nuetral", skip or "unknown_emotion"
            if role == "speaker" and self._quirk(segment, _Q_BAD_ID):
                written_id, skip = _bad_id(segment.segment_id, self.name), "bad_id"
            if self._quirk(segment, _Q_MISPREFIXED, "kemdy20"):
                other = (session % 99) + 1
                written_id = f"Sess{other:02d}" + segment.segment_id[len("Sess00"):]
                self.manifest.corrected_ids[written_id] = segment.segment_id
            start, end = clock, clock + segment.duration
            clock = end + float(rng.uniform(0.2, 1.5))
            times = [f"{start:.3f}", f"{end:.3f}"] * (4 if self.name == "kemdy19" else 1)
            rater_cells = [c for v in votes["raters"] for c in (self.spelling.get(v[0], v[0]), v[1], v[2])]
            rows.append([str(number), *times, written_id, emotion_cell, f"{votes['valence']:.1f}",
                         f"{votes['arousal']:.1f}", *rater_cells])
            self.manifest.rows.append({
                "csv": csv_name, "written_id": written_id, "segment_id": segment.segment_id,
                "session": f"Sess{session:02d}", "speaker": segment.speaker.speaker_id,
                "gender": segment.speaker.gender, "role": role, "emotion": votes["emotion"],
                "arousal": round(votes["arousal"], 1), "valence": round(votes["valence"], 1),
                "transcript": files["transcript"], "text": files["text"], "audio": files["audio"],
                "sampling_rate": files["sampling_rate"], "channels": files["channels"],
                "duration": files["duration"], "category": category, "skip": skip,
            })
        with open(self.root / "annotation" / csv_name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)


def _bad_id(segment_id: str, name: str) -> str:
    """The malformed ID the bad-ID quirk writes: KEMDy20 loses the gender letter, KEMDy19 gets speaker ``X``."""
    if name == "kemdy20":
        head, tail = segment_id.rsplit("_", 1)
        return f"{head[:-1]}_{tail}"
    return segment_id[:-4] + "X" + segment_id[-3:]


def _draw_category(rng: np.random.Generator) -> str:
    names = list(CATEGORY_PRIOR)
    return names[rng.choice(len(names), p=np.array(list(CATEGORY_PRIOR.values())))]


def _latent(category: str, rng: np.random.Generator) -> tuple[float, float]:
    arousal, valence = PROTOTYPES[category]
    noise = rng.normal(0.0, LATENT_SPREAD, size=2)
    return float(np.clip(arousal + noise[0], 1, 5)), float(np.clip(valence + noise[1], 1, 5))


def _rate(category: str, arousal: float, valence: float, rng: np.random.Generator, force_tie: bool = False) -> dict:
    """Ten raters' (emotion, valence, arousal) and the totals: majority emotions (ties in first-vote order), means."""
    names = list(PROTOTYPES)
    centres = np.array([PROTOTYPES[n] for n in names])
    agreement = rng.uniform(0.35, 0.85)  # how clear-cut the segment is
    perceived = np.array([arousal, valence]) + rng.normal(0.0, RATER_NOISE, size=(NUM_RATERS, 2))
    ratings = np.clip(np.rint(perceived), 1, 5).astype(int)
    votes = []
    for a, v in perceived:
        if rng.random() < agreement:
            votes.append(category)
        else:
            votes.append(names[int(np.argmin(((centres - (a, v)) ** 2).sum(axis=1)))])
    if force_tie:
        other = "neutral" if category != "neutral" else "happy"
        votes = [category, other] * 4 + ["sad" if category != "sad" else "fear"] * 2
    tally: dict[str, int] = {}
    for vote in votes:
        tally[vote] = tally.get(vote, 0) + 1
    top = max(tally.values())
    return {
        "emotion": [e for e in tally if tally[e] == top],
        "arousal": float(ratings[:, 0].mean()),
        "valence": float(ratings[:, 1].mean()),
        "raters": [(vote, str(v), str(a)) for vote, (a, v) in zip(votes, ratings)],
    }


def _transcript(segment: _Segment, rng: np.random.Generator, all_markers: bool = False) -> tuple[str, str]:
    """(raw transcript with markers, the same words without them). Words depend on valence, never on arousal."""
    return _with_markers(_words(segment, rng), rng, all_markers)


def _words(segment: _Segment, rng: np.random.Generator) -> list[str]:
    """The default corpus' words: valence-bearing words among neutral ones and fillers."""
    score = (segment.valence - 3.0) / 1.2 + rng.normal(0.0, 0.25)
    words = []
    for _ in range(int(rng.integers(2, 5))):
        if rng.random() < min(0.9, 0.15 + 0.7 * abs(score)):
            positive = (score > 0) == (rng.random() < 0.9)
            tier = POSITIVE if positive else NEGATIVE
            strong = rng.random() < min(0.9, max(0.05, abs(score) - 0.4))
            words.append(str(rng.choice(tier[int(strong)])))
        else:
            words.append(str(rng.choice(NEUTRAL_WORDS)))
    if segment.category in CATEGORY_WORDS and rng.random() < 0.35:
        words.append(str(rng.choice(CATEGORY_WORDS[segment.category])))
    for _ in range(int(rng.integers(0, 3))):
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(NEUTRAL_WORDS)))
    order = rng.permutation(len(words))
    words = [words[i] for i in order]
    if rng.random() < 0.4:
        words.insert(0, str(rng.choice(FILLERS)))
    return words


def _with_markers(words: list[str], rng: np.random.Generator, all_markers: bool = False) -> tuple[str, str]:
    """(raw transcript with the release's markers, the words without them) of `words` (a list it may extend)."""
    words = list(words)
    raw = list(words)  # raw[i] is the written form of words[i]
    if all_markers or rng.random() < 0.1:
        first, second = ALTERNATIVES[int(rng.integers(len(ALTERNATIVES)))]
        at = int(rng.integers(0, len(words) + 1))
        words.insert(at, first)
        raw.insert(at, f"({first}+{second})")
    if all_markers or rng.random() < 0.08:
        at = int(rng.integers(0, len(raw)))
        raw[at] += "*"
    tokens = list(raw)
    if all_markers or rng.random() < 0.2:
        tokens.insert(0, str(rng.choice(MARKERS)) if not all_markers else "b/")
    if all_markers or rng.random() < 0.05:
        tokens.insert(int(rng.integers(1, len(tokens) + 1)), "u/")
    if all_markers or rng.random() < 0.08:
        tokens.append("l/")
    if all_markers:
        tokens.insert(len(tokens) // 2, "n/" + tokens.pop(len(tokens) // 2))  # a marker glued to its word
    return " ".join(tokens), " ".join(words)


def synthesize(speaker: _Speaker, arousal: float, duration: float, sampling_rate: int,
               rng: np.random.Generator) -> np.ndarray:
    """A voiced, syllabic, speech-like clip whose prosody follows `arousal` (1-5) and the speaker's traits.

    Returns float32 mono samples in [-1, 1], shape ``(round(duration * sampling_rate),)``. Pitch level and range,
    syllable rate, spectral brightness and loudness rise with arousal; noise makes each clip imperfect.
    """
    n = max(int(round(duration * sampling_rate)), 1)
    t = np.arange(n, dtype=np.float32) / sampling_rate
    level = (arousal - 3.0) / 1.5 + rng.normal(0.0, 0.25)  # about -1.3 .. 1.3, with acoustic noise

    rate = speaker.rate * (1.0 + 0.22 * level) * rng.uniform(0.9, 1.1)
    lengths = rng.uniform(0.75, 1.25, size=int(duration * rate) + 3) / rate
    onsets = np.concatenate([[rng.uniform(0.03, 0.1)], lengths]).cumsum()
    syllable = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, len(lengths) - 1)
    position = (t - onsets[syllable]) / lengths[syllable]
    voiced = (position >= 0) & (position < 0.8) & (rng.random(len(lengths)) > 0.08)[syllable]
    envelope = np.where(voiced, np.sin(np.pi * np.clip(position / 0.8, 0, 1)) ** 0.7, 0.0).astype(np.float32)

    f0_mean = speaker.f0 * 2.0 ** (0.35 * level)
    pitch_range = 0.06 + 0.08 * (level + 1.3)
    accents = np.clip(rng.normal(0.0, 1.0, size=len(lengths)), -1.5, 1.5)
    contour = 1.0 + pitch_range * accents[syllable] - 0.08 * t / max(duration, 1e-3)
    smooth = max(int(0.02 * sampling_rate), 1)
    padded = np.concatenate([np.full(smooth // 2, contour[0]), contour, np.full(smooth - smooth // 2, contour[-1])])
    running = np.cumsum(padded, dtype=np.float64)
    contour = (running[smooth:] - running[:-smooth]) / smooth  # 20 ms moving average: no pitch jumps
    f0 = f0_mean * contour
    phase = 2.0 * np.pi * np.cumsum(f0) / sampling_rate

    tilt = float(np.clip(speaker.tilt - 0.45 * level, 0.4, 2.2))
    num_harmonics = int(max(1, min(24, 0.45 * sampling_rate / (f0.max() + 1.0))))
    k = np.arange(1, num_harmonics + 1, dtype=np.float32)
    f1, f2 = speaker.formants
    amplitudes = k ** -tilt * (1.0 + 2.0 * np.exp(-(((k * f0_mean - f1) / 250.0) ** 2))
                               + 1.2 * np.exp(-(((k * f0_mean - f2) / 350.0) ** 2)))
    # sum_k a_k sin(k phase), with the powers of exp(i phase) built by repeated products (3x faster than sin)
    rotor, power, source = np.exp(1j * phase), np.ones(n, dtype=np.complex128), np.zeros(n)
    for amplitude in amplitudes:
        power *= rotor
        source += amplitude * power.imag
    source /= np.abs(source).max() + 1e-6

    loudness = speaker.gain * 0.25 * 10.0 ** (0.3 * level)
    breath = speaker.noise * (0.3 + envelope) * rng.standard_normal(n).astype(np.float32)
    audio = loudness * envelope * source + breath
    peak = np.abs(audio).max()
    if peak > 0.95:
        audio *= 0.95 / peak
    return audio.astype(np.float32)


def synthesize_utterance(category: str, seconds: float = 1.6, *, gender: str = "F", seed: int = 0,
                         sampling_rate: int = 16_000) -> tuple[str, np.ndarray]:
    """One utterance as the sample corpus would write it, at `category`'s prototype arousal and valence.

    Returns `(transcript, audio)`: the cleaned transcript (its words follow valence) and float32 mono samples of
    shape ``(round(seconds * sampling_rate),)`` (the voice follows arousal). Used for the demo's examples.

    >>> text, audio = synthesize_utterance("happy", 1.0, seed=1)
    >>> audio.shape, audio.dtype.name, bool(text)
    ((16000,), 'float32', True)
    """
    if category not in PROTOTYPES:
        raise ValueError(f"category must be one of {tuple(PROTOTYPES)}; got {category!r}.")
    if gender not in ("F", "M"):
        raise ValueError(f"gender must be 'F' or 'M'; got {gender!r}.")
    rng = np.random.default_rng([seed, 7919])
    speaker = _Speaker(speaker_id=f"Example{gender}", gender=gender, f0=200.0 if gender == "F" else 115.0, rate=4.1,
                       tilt=1.2, formants=(700.0, 1700.0), gain=0.8, noise=0.008)
    arousal, valence = PROTOTYPES[category]
    segment = _Segment(0, 0, "example", speaker, category, arousal, valence, duration=float(seconds))
    _, text = _transcript(segment, rng)
    return text, synthesize(speaker, arousal, float(seconds), sampling_rate, rng)


def add_make_sample_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``make-sample`` sub-command to an argparse `subparsers`; it runs `make_sample_main`'s work."""
    parser = subparsers.add_parser(
        "make-sample", help="write a synthetic KEMDy19/KEMDy20 release (real layout and quirks, learnable signal)",
        description=write_sample_corpus.__doc__.split("\n\n")[0],
    )
    parser.add_argument("out_dir", help="release folder to create (must be empty unless --overwrite)")
    parser.add_argument("--name", choices=("kemdy20", "kemdy19"), default="kemdy20")
    parser.add_argument("--voice", choices=VOICES, default="builtin",
                        help="builtin: this package's synthesiser (the default corpus); espeak: an independent corpus "
                             "spoken by the espeak-ng text-to-speech engine (needs the espeak-ng program)")
    parser.add_argument("--size", choices=tuple(SIZES), default=None,
                        help="a preset of the chosen voice's corpus; replaces the size options (default: the options "
                             "below)")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--segments-per-session", type=int, default=40)
    parser.add_argument("--num-segments", type=int, default=None, help="total, spread over the sessions")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    parser.add_argument("--sampling-rate", type=int, default=16_000)
    parser.add_argument("--no-quirks", dest="quirks", action="store_false", help="a clean corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(func=_run_make_sample)
    return parser


def _run_make_sample(args: argparse.Namespace) -> int:
    manifest = write_sample_corpus(
        args.out_dir, args.name, size=args.size, sessions=args.sessions,
        segments_per_session=args.segments_per_session, num_segments=args.num_segments,
        min_seconds=args.min_seconds, max_seconds=args.max_seconds, sampling_rate=args.sampling_rate,
        quirks=args.quirks, seed=args.seed, overwrite=args.overwrite, voice=args.voice,
    )
    kept = len(manifest.expected_rows("speaker"))
    print(f"wrote {len(manifest.rows)} annotation rows ({kept} usable speaker rows) to {manifest.root}")
    return 0


def make_sample_main(argv: list[str] | None = None) -> int:
    """``kemd-emotion make-sample OUT_DIR [options]``: parse `argv` and write a sample corpus; returns 0."""
    parser = argparse.ArgumentParser(prog="kemd-emotion")
    add_make_sample_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["make-sample", *(argv or [])])
    return args.func(args)
