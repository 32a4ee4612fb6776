"""KEMDy transcripts: decoding the `.txt` files and removing the transcription markers.

A KEMDy transcript is one line. Besides the words it carries the transcribers' markers:

- ``b/ o/ n/ l/ u/ N/ c/ s/`` (breath, other, noise, laugh, unintelligible, ...), written before or between words;
- ``*`` after a word the transcriber was unsure of;
- ``(A+B)`` spans that give alternatives for one stretch, e.g. ``(그리고+아니)``; a bare ``+`` elsewhere.

`clean_transcript` keeps the words a tokenizer should see: the markers and ``*`` go, an ``(A+B)`` span becomes its
first alternative ``A``, a bare ``+`` becomes a space, and runs of spaces collapse.

>>> clean_transcript("b/ 음 (그리고+아니) 오늘* 좋아요 l/")
'음 그리고 오늘 좋아요'
>>> clean_transcript("n/어제 갔어요+ 진짜")
'어제 갔어요 진짜'
"""

from __future__ import annotations

import codecs
import re

MARKER_LETTERS = "bonluNcs"
"""The letters that, followed by ``/``, form a transcription marker."""

_MARKER = re.compile(rf"(?<![A-Za-z0-9])[{MARKER_LETTERS}]/")
_ALTERNATIVES = re.compile(r"\(([^()+]*)\+[^()]*\)")
_PARENTHESES = re.compile(r"\(([^()]*)\)")
_SPACES = re.compile(r"\s+")

TRANSCRIPT_ENCODINGS: dict[str, str] = {"kemdy19": "utf-8", "kemdy20": "cp949"}
"""The encoding each release writes its transcripts in."""

FALLBACK_ENCODINGS = ("utf-8", "cp949")
"""Tried, in order, when a transcript is not valid text in its release's encoding."""


def clean_transcript(transcript: str) -> str:
    """Return `transcript` without KEMDy markers, as one line of words separated by single spaces."""
    text = _ALTERNATIVES.sub(r" \1 ", transcript)
    text = _PARENTHESES.sub(r" \1 ", text)
    text = _MARKER.sub(" ", text)
    text = text.replace("*", " ").replace("+", " ")
    return _SPACES.sub(" ", text).strip()


def decode_transcript(raw: bytes, encoding: str) -> tuple[str, bool]:
    r"""Decode the bytes of a transcript file written, by the release's rule, in `encoding`.

    Strict UTF-8 is tried first whatever the rule, because it is the one codec that rejects text in another
    encoding (cp949 Hangul is never valid UTF-8, while UTF-8 Hangul can pass as cp949 mojibake); then `encoding`,
    then `FALLBACK_ENCODINGS`; at last `encoding` with undecodable bytes replaced by U+FFFD. It never raises.

    Returns ``(text, as_expected)``: `text` is the transcript as one line (a transcript is one line ending in a
    newline; should a file hold several, they are joined with spaces; a UTF-8 byte-order mark is dropped);
    `as_expected` is False when the bytes were not valid `encoding` text and a fallback decoded them.

    >>> decode_transcript("좋아요\n".encode("cp949"), "cp949")
    ('좋아요', True)
    >>> decode_transcript("좋아요\n".encode("utf-8"), "cp949")
    ('좋아요', False)
    """
    expected = codecs.lookup(encoding).name
    text, used = None, None
    for candidate in dict.fromkeys(("utf-8", expected, *FALLBACK_ENCODINGS)):
        try:
            text, used = raw.decode(candidate), codecs.lookup(candidate).name
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        text = raw.decode(expected, errors="replace")
    as_expected = used == expected or raw.isascii()
    text = text.lstrip("\ufeff")
    return " ".join(line.strip() for line in text.splitlines() if line.strip()), as_expected
