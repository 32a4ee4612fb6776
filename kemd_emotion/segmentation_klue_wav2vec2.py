"""Cut a long recording at its utterances, with no model: an energy-based voice-activity split in numpy.

This file is copied next to saved checkpoints with the pipeline (``trust_remote_code``): it may import only from
numpy, soundfile, torch, transformers and the other ``*_klue_wav2vec2`` files, with single-dot imports.

- `speech_segments(audio, ...)`: ``(start_sample, end_sample)`` of each utterance of a 16 kHz recording
  (`pipeline(..., segment="utterances")`).
- `timestamp_segments(audio, timestamps, ...)`: ``(start_sample, end_sample, text)`` of each utterance cut at a
  speech recogniser's segment timestamps (Whisper's), with the same length rules.
- `check_segments(segments, ...)`: segments a user gives as ``[(start, end), ...]`` seconds -> sample bounds, or a
  ValueError naming the segment at fault (``segments[3]=(4.0, 3.5): ends before it starts``).

Why energy and not a voice-activity model: it needs nothing beyond numpy (no extra dependency in a checkpoint's
code, nothing to download), it is deterministic, and KEMDy-like dialogue recordings (one close microphone per
speaker, pauses between turns) separate well on loudness. It cannot tell speech from other loud sounds (music,
a door), nor separate overlapping speakers; give your own `segments` (e.g. from a diarisation model) for those.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLING_RATE = 16_000
FRAME_SECONDS = 0.01
"""Loudness is measured on frames of 10 ms (160 samples): every edge the segmenter finds is a multiple of it."""
SPEECH_DB = 25.0
"""A frame within this many dB of the recording's loud frames starts an utterance (`on_db`)."""
PAUSE_DB = 30.0
"""An utterance goes on while its frames stay within this many dB of the loud frames (`off_db`, the hysteresis)."""
LOUD_PERCENTILE = 95.0
"""The recording's loud frames: its reference level is this percentile of the frame levels."""
QUIET_PERCENTILE = 5.0
FLOOR_DBFS = -60.0
"""Frames quieter than this (dB below full scale) are never speech, however quiet the recording is."""
MIN_RANGE_DB = 12.0
"""Speech has pauses: unless the loud frames are this many dB above the quiet ones (`QUIET_PERCENTILE`), the
recording is taken to be silence or steady noise, with no utterance."""
MIN_SILENCE_SECONDS = 0.3
MIN_UTTERANCE_SECONDS = 0.5
PAD_SECONDS = 0.1


def frame_levels(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS level in dB below full scale of each `frame` samples of `audio` (a last partial frame counts)."""
    count = -(-audio.shape[0] // frame)
    padded = np.zeros(count * frame, dtype=np.float64)
    padded[: audio.shape[0]] = audio
    power = np.square(padded).reshape(count, frame).sum(1)
    lengths = np.full(count, frame, dtype=np.float64)
    lengths[-1] = audio.shape[0] - (count - 1) * frame
    return 10 * np.log10(power / lengths + 1e-20)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` frame indices of each run of True in `mask`.

    >>> runs(np.array([0, 1, 1, 0, 1], bool))
    [(1, 3), (4, 5)]
    """
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(start), int(end)) for start, end in zip(edges[::2], edges[1::2])]


def speech_segments(audio: np.ndarray, sampling_rate: int = SAMPLING_RATE, *,
                    min_silence_seconds: float = MIN_SILENCE_SECONDS,
                    min_utterance_seconds: float = MIN_UTTERANCE_SECONDS,
                    max_utterance_seconds: float | None = None, pad_seconds: float = PAD_SECONDS,
                    on_db: float = SPEECH_DB, off_db: float = PAUSE_DB) -> list[tuple[int, int]]:
    """``(start_sample, end_sample)`` of each utterance of a mono recording, in time order; `[]` when it has none.

    Energy-based voice activity (no model, numpy only; see the module docstring for why and its limits):

    1. The RMS level of every 10 ms frame, in dB; the recording's reference level is that of its loud frames (the
       95th percentile), so the split works the same for quiet and loud recordings.
    2. Hysteresis: an utterance starts at a frame within `on_db` dB of the reference and goes on while frames stay
       within `off_db` dB (a syllable fading out is not cut off). Frames below -60 dBFS are never speech, and a
       recording whose loud frames are less than 12 dB above its quiet ones is silence or steady noise: no speech.
    3. Pauses shorter than `min_silence_seconds` join their neighbours (the gaps between words); utterances
       shorter than `min_utterance_seconds` are dropped (clicks, breaths).
    4. Each utterance is widened by `pad_seconds` on both sides (onsets are soft), never into its neighbour.
    5. An utterance longer than `max_utterance_seconds` (the pipeline passes the processor's `max_audio_seconds`:
       the model never heard longer clips) is split at its quietest frame, again until every part fits; no part
       is shorter than `min_utterance_seconds`.

    Args:
        audio: `(samples,)` float samples in [-1, 1].
        sampling_rate: of `audio` (Hz).
        min_silence_seconds: the shortest pause that ends an utterance (0.3 s: longer than the gaps between words).
        min_utterance_seconds: the shortest utterance kept (0.5 s).
        max_utterance_seconds: the longest utterance; None: no limit. At least twice `min_utterance_seconds`.
        pad_seconds: margin added before and after each utterance (0.1 s).
        on_db, off_db: the hysteresis thresholds, dB below the loud frames (25 and 30).

    Raises:
        ValueError: for audio that is not 1-D, or settings that contradict each other.

    >>> rng = np.random.default_rng(0)
    >>> tone = 0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220)
    >>> pause = 0.001 * rng.standard_normal(16000)
    >>> speech_segments(np.concatenate([pause, tone, pause, tone, pause]))
    [(14400, 33600), (46400, 65600)]
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (samples,); got shape {audio.shape}.")
    if not 0 <= on_db <= off_db:
        raise ValueError(f"on_db={on_db} and off_db={off_db}: expected 0 <= on_db <= off_db.")
    if max_utterance_seconds is not None and max_utterance_seconds < 2 * min_utterance_seconds:
        raise ValueError(f"max_utterance_seconds={max_utterance_seconds} must be at least twice "
                         f"min_utterance_seconds={min_utterance_seconds}, so that a long utterance can be split.")
    frame = max(1, int(round(FRAME_SECONDS * sampling_rate)))
    if audio.shape[0] < frame:
        return []
    levels = frame_levels(audio, frame)
    reference = float(np.percentile(levels, LOUD_PERCENTILE))
    if reference < FLOOR_DBFS or reference - float(np.percentile(levels, QUIET_PERCENTILE)) < MIN_RANGE_DB:
        return []
    starts = levels >= max(reference - on_db, FLOOR_DBFS)
    goes_on = levels >= max(reference - off_db, FLOOR_DBFS)
    speech = np.zeros_like(starts)
    for start, end in runs(goes_on):  # a run of frames loud enough to go on is speech if one of them starts it
        if starts[start:end].any():
            speech[start:end] = True
    frames_of = lambda seconds: int(round(seconds * sampling_rate / frame))  # noqa: E731
    merged: list[list[int]] = []
    for start, end in runs(speech):
        if merged and start - merged[-1][1] < frames_of(min_silence_seconds):
            merged[-1][1] = end
        else:
            merged.append([start, end])
    kept = [(start, end) for start, end in merged if end - start >= frames_of(min_utterance_seconds)]
    pad, count = frames_of(pad_seconds), levels.shape[0]
    padded = []
    for number, (start, end) in enumerate(kept):
        before = 0 if number == 0 else (kept[number - 1][1] + start) // 2
        after = count if number == len(kept) - 1 else (end + kept[number + 1][0] + 1) // 2
        padded.append((max(start - pad, before), min(end + pad, after)))
    if max_utterance_seconds is not None:
        longest, shortest = frames_of(max_utterance_seconds), frames_of(min_utterance_seconds)
        padded = [part for start, end in padded for part in split_long(levels, start, end, longest, shortest)]
    return [(start * frame, min(end * frame, audio.shape[0])) for start, end in padded]


def split_long(levels: np.ndarray, start: int, end: int, longest: int, shortest: int) -> list[tuple[int, int]]:
    """Frames `start:end` split at their quietest frame (leaving at least `shortest` frames each side) until every
    part is at most `longest` frames."""
    if end - start <= longest:
        return [(start, end)]
    inner = levels[start + shortest: end - shortest + 1]
    cut = start + shortest + int(np.argmin(inner))  # the first of equally quiet frames: deterministic
    return split_long(levels, start, cut, longest, shortest) + split_long(levels, cut, end, longest, shortest)


def timestamp_segments(audio: np.ndarray, timestamps, sampling_rate: int = SAMPLING_RATE, *,
                       min_utterance_seconds: float = MIN_UTTERANCE_SECONDS,
                       max_utterance_seconds: float | None = None,
                       min_samples: int = 1) -> list[tuple[int, int, str]]:
    """``(start_sample, end_sample, text)`` of each utterance of a recording, cut at a speech recogniser's segment
    timestamps (Whisper's ``return_timestamps=True`` chunks), with the length rules of `speech_segments`.

    1. Each ``(start_s, end_s, text)`` of `timestamps` becomes a piece, kept inside the recording and after the
       previous piece (an open end, None, runs to the end of the recording). A piece left with no length gives
       its words to its neighbour (the previous one, else the next).
    2. An utterance shorter than `min_utterance_seconds` joins its neighbour across the shorter pause (the
       previous or the next one, whichever is nearer), if the result is no longer than `max_utterance_seconds`;
       with no neighbour that fits it stays alone, widened to `min_samples` (the speech encoder's shortest clip)
       into the pauses around it if needed. Joined utterances span the pause between them; their texts are joined
       with a space.
    3. An utterance longer than `max_utterance_seconds` is split, again until every part fits:
       - made of several pieces, it is split between two of them, never inside one: at the boundary whose pause
         (or, for touching pieces, the frame at the boundary) is quietest, preferring boundaries that leave
         `min_utterance_seconds` on both sides; each part keeps its own pieces' words;
       - a single piece longer than `max_utterance_seconds` (one Whisper segment) is split at its quietest 10 ms
         frame, leaving `min_utterance_seconds` on both sides, and **both parts carry the whole piece's text**
         (the recogniser gives no word timings to divide it by).

    Args:
        audio: `(samples,)` float samples in [-1, 1] (for the quietest frames and the recording's length).
        timestamps: ``[(start_s, end_s | None, text), ...]`` seconds, in time order.
        sampling_rate: of `audio` (Hz).
        min_utterance_seconds, max_utterance_seconds: as in `speech_segments` (None: no longest).
        min_samples: the shortest clip the model can score.

    Raises:
        ValueError: for audio that is not 1-D, or settings that contradict each other.

    >>> audio = np.zeros(16000 * 4, dtype=np.float32)
    >>> timestamp_segments(audio, [(0.0, 1.5, "하나"), (1.5, 1.7, "둘"), (2.5, None, "셋")])
    [(0, 27200, '하나 둘'), (40000, 64000, '셋')]
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (samples,); got shape {audio.shape}.")
    if max_utterance_seconds is not None and max_utterance_seconds < 2 * min_utterance_seconds:
        raise ValueError(f"max_utterance_seconds={max_utterance_seconds} must be at least twice "
                         f"min_utterance_seconds={min_utterance_seconds}, so that a long utterance can be split.")
    count = audio.shape[0]
    shortest = int(round(min_utterance_seconds * sampling_rate))
    longest = None if max_utterance_seconds is None else int(round(max_utterance_seconds * sampling_rate))
    pieces: list[list] = []  # [start, end, text]
    carried = ""
    for start_s, end_s, text in timestamps:
        start = min(max(int(round(float(start_s) * sampling_rate)), pieces[-1][1] if pieces else 0), count)
        end = count if end_s is None else min(int(round(float(end_s) * sampling_rate)), count)
        text = " ".join(part for part in (carried, text.strip()) if part)
        carried = ""
        if end <= start:
            if pieces:
                pieces[-1][2] = " ".join(part for part in (pieces[-1][2], text) if part)
            else:
                carried = text
            continue
        pieces.append([start, end, text])
    if carried and pieces:
        pieces[-1][2] = " ".join(part for part in (pieces[-1][2], carried) if part)
    if not pieces:
        return []

    span = lambda group: group[-1][1] - group[0][0]  # noqa: E731
    fits = lambda group: longest is None or span(group) <= longest  # noqa: E731
    groups = [[piece] for piece in pieces]
    joined: list[list[list]] = []
    for number, group in enumerate(groups):
        if span(group) < shortest:
            after = groups[number + 1] if number + 1 < len(groups) else None
            gap_before = group[0][0] - joined[-1][-1][1] if joined and fits(joined[-1] + group) else None
            gap_after = after[0][0] - group[-1][1] if after is not None and fits(group + after) else None
            if gap_before is not None and (gap_after is None or gap_before <= gap_after):
                joined[-1] = joined[-1] + group
                continue
            if gap_after is not None:
                groups[number + 1] = group + after  # checked again when its turn comes
                continue
        joined.append(group)

    frame = max(1, int(round(FRAME_SECONDS * sampling_rate)))
    levels = frame_levels(audio, frame) if count >= frame else np.zeros(1)

    def level_at(start: int, end: int) -> float:
        """The quietest frame level of samples `start:end` (the frame at `start` for an empty span)."""
        return float(levels[start // frame: max(start // frame + 1, -(-end // frame))].min())

    def split(group: list[list]) -> list[tuple[int, int, str]]:
        start, end = group[0][0], group[-1][1]
        if longest is None or end - start <= longest:
            return [(start, end, " ".join(piece[2] for piece in group if piece[2]))]
        if len(group) > 1:
            boundaries = range(1, len(group))
            balanced = [b for b in boundaries
                        if group[b - 1][1] - start >= shortest and end - group[b][0] >= shortest]
            cut = min(balanced or boundaries, key=lambda b: (level_at(group[b - 1][1], group[b][0]), b))
            return split(group[:cut]) + split(group[cut:])
        first = -(-(start + shortest) // frame)
        last = (end - shortest) // frame
        cut = (first + int(np.argmin(levels[first: last + 1]))) * frame if last >= first else (start + end) // 2
        text = group[0][2]
        return split([[start, cut, text]]) + split([[cut, end, text]])

    segments = [part for group in joined for part in split(group)]
    widened = []
    for number, (start, end, text) in enumerate(segments):
        if end - start < min_samples:
            low = widened[-1][1] if widened else 0
            high = segments[number + 1][0] if number + 1 < len(segments) else count
            end = min(high, start + min_samples)
            start = max(low, end - min_samples)
        widened.append((start, end, text))
    return widened


def describe(index: int, segment) -> str:
    """How messages name a user's segment: ``segments[3]=(4.0, 3.5)``."""
    try:
        start, end = segment
        return f"segments[{index}]=({float(start)!r}, {float(end)!r})"
    except (TypeError, ValueError):
        return f"segments[{index}]={segment!r}"


def check_segments(segments, *, min_samples: int, max_samples: int | None = None, num_samples: int | None = None,
                   sampling_rate: int = SAMPLING_RATE) -> list[tuple[int, int]]:
    """User-given ``[(start, end), ...]`` seconds -> ``(start_sample, end_sample)`` bounds; raise ValueError naming
    the first segment at fault.

    A segment must be a pair of finite numbers, start at 0 s or later, end after it starts, not start before the
    previous segment ends (in time order, not overlapping; touching is fine), be at least `min_samples` long (the
    speech encoder's shortest clip) and at most `max_samples` (the processor's crop, when given), and end within
    the recording (`num_samples`, when given).

    >>> check_segments([(0.0, 1.5), (2, 3.25)], min_samples=400)
    [(0, 24000), (32000, 52000)]
    >>> check_segments([(0.0, 1.0), (4.0, 3.5)], min_samples=400)
    Traceback (most recent call last):
    ...
    ValueError: segments[1]=(4.0, 3.5): ends before it starts.
    """
    if isinstance(segments, (str, bytes)) or not isinstance(segments, (Sequence, np.ndarray)):
        raise ValueError(f"segments must be a list of (start, end) pairs of seconds; got {type(segments).__name__}.")
    if len(segments) == 0:
        raise ValueError("segments is empty: give at least one (start, end) pair of seconds.")
    bounds: list[tuple[int, int]] = []
    for index, segment in enumerate(segments):
        name = describe(index, segment)
        if isinstance(segment, (str, bytes)) or not isinstance(segment, (Sequence, np.ndarray)) or len(segment) != 2:
            raise ValueError(f"{name}: must be a (start, end) pair of seconds.")
        if any(isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
               or not np.isfinite(value) for value in segment):
            raise ValueError(f"{name}: start and end must be finite numbers of seconds.")
        start_s, end_s = float(segment[0]), float(segment[1])
        if start_s < 0:
            raise ValueError(f"{name}: starts before the recording (at a negative time).")
        if end_s <= start_s:
            raise ValueError(f"{name}: ends before it starts.")
        start, end = int(round(start_s * sampling_rate)), int(round(end_s * sampling_rate))
        if bounds and start < bounds[-1][1]:
            previous = describe(index - 1, segments[index - 1])
            if start < bounds[-1][0]:
                raise ValueError(f"{name}: starts before {previous}; segments must be in time order.")
            raise ValueError(f"{name}: overlaps {previous}, which ends at {float(segments[index - 1][1])!r} s.")
        if end - start < min_samples:
            raise ValueError(f"{name}: is {1000 * (end - start) / sampling_rate:g} ms long; the speech encoder needs "
                             f"at least {1000 * min_samples / sampling_rate:g} ms.")
        if max_samples is not None and end - start > max_samples:
            raise ValueError(f"{name}: is {(end - start) / sampling_rate:g} s long, longer than the processor's "
                             f"max_audio_seconds={max_samples / sampling_rate:g}: the model never heard longer clips "
                             "(it would be cropped). Split it.")
        if num_samples is not None and end > num_samples:
            raise ValueError(f"{name}: ends after the recording, which is {num_samples / sampling_rate:g} s long.")
        bounds.append((start, end))
    return bounds


def segments_past_end(bounds: list[tuple[int, int]], num_samples: int) -> int | None:
    """The index of the first of `bounds` that ends after `num_samples`, or None."""
    return next((index for index, (_, end) in enumerate(bounds) if end > num_samples), None)


__all__ = ["speech_segments", "timestamp_segments", "check_segments", "segments_past_end", "describe"]
