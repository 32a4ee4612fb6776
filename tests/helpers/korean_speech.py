"""Korean speech for the real-ASR tests: espeak-ng's Korean voice, and how whisper-base is asked to hear it."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.real_weights import real_weights_required

SPOKEN = "저는 지금 너무 화가 나요. 왜 약속을 지키지 않았어요?"
"""What espeak-ng says (whisper-base with language="korean" heard " 저는 지금놈으로 가가요, 왜 약속을 지키지 않아서요.")."""
HANGUL = re.compile("[\uac00-\ud7a3]")
WHISPER_KOREAN = {"generate_kwargs": {"language": "korean", "task": "transcribe", "max_new_tokens": 64}}
"""Korean, given: left to detect the language, whisper-base takes espeak-ng's Korean for Thai or repeats one syllable
to its 448-token limit (minutes on a CPU). max_new_tokens bounds a run that goes astray all the same."""


def speak_korean(folder: Path) -> Path:
    """espeak-ng's Korean voice saying `SPOKEN`, as `folder/korean.wav` (22.05 kHz). Without espeak-ng the test is
    skipped, or fails where the real weights are required (CI)."""
    if shutil.which("espeak-ng") is None:
        message = "Korean speech for the ASR tests comes from espeak-ng: apt-get install espeak-ng"
        (pytest.fail if real_weights_required() else pytest.skip)(message)
    path = Path(folder) / "korean.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), SPOKEN], check=True, capture_output=True)
    return path
