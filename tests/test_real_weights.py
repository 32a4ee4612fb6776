"""The contract suite on real pretrained weights, and real speech recognition.

The folders come from `tests/helpers/real_weights.py` (multilingual-e5-small, whisper-base; fixture
`real_weights_dirs`): not built, these tests are skipped saying how to build them, and fail under CI.

- e5 as the text encoder: its SentencePiece tokenizer (`<s> ... </s>`, pad id 1, no token type ids) goes through
  the processor unchanged; pooling "last" takes `</s>`; each fusion of `REAL_CASES` gives each item of a padded batch
  what it gives alone, the same outputs after save -> from_pretrained and through `trust_remote_code` in a fresh
  process, and an ONNX export that gives the eager outputs.
- whisper-base as the speech-recognition model of the pipeline (`asr_model=`) and of `kemd-emotion predict
  --asr-model`, on Korean speech from espeak-ng.

The speech encoder is a parameter of `REAL_CASES` (`SPEECH_ENCODERS`): the real e5 with a tiny wav2vec2, and with the
real whisper-base's encoder (log-mel input_features from its own WhisperFeatureExtractor).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoModel, AutoTokenizer, pipeline

from helpers.audio import speech_like
from helpers.contract_matrix import (
    AUDIO_ENCODERS,
    ContractCase,
    build_from_encoder_folders,
    processor_for_encoders,
    save_encoder_folders,
)
from helpers.contract_probes import batch_and_alone, forward_outputs
from helpers.fresh_process import BLOCK_KEMD_EMOTION
from helpers.korean_speech import HANGUL, SPOKEN, WHISPER_KOREAN, speak_korean
from helpers.real_weights import RealWeights
from kemd_emotion import KlueWav2Vec2ForEmotion
from kemd_emotion.small_encoders import tiny_text_config

pytestmark = pytest.mark.realweights

E5 = "multilingual-e5-small"
TEXTS = ["음", "약속을 어겨서 너무 화나요", "오늘 정말 행복해요"]
"""Short sentences (the e5 encoder is 117 M parameters): one token, and two of different lengths."""
CLIP_SECONDS = (0.3, 1.0, 0.6)
BOS, PAD, EOS = 0, 1, 2
"""multilingual-e5-small's (XLM-R's) `<s>`, `<pad>` and `</s>` ids."""


@dataclass(frozen=True)
class SpeechEncoder:
    """A speech encoder the real e5 is fused with, and the fusions tested with it."""

    name: str
    fusions: tuple[tuple[str, str], ...]
    """(fusion, pooling) pairs."""
    folder: Callable[[RealWeights, Path], Path]
    """(the real weights, a scratch folder) -> the encoder's folder (model and feature extractor)."""


def tiny_wav2vec2(weights: RealWeights, scratch: Path) -> Path:
    """A random-init wav2vec2 with wav2vec2-base's group-norm feature encoder, saved as a pretrained folder."""
    folders = save_encoder_folders(scratch, text_encoders={"bert": tiny_text_config},
                                   audio_encoders={"wav2vec2-group": AUDIO_ENCODERS["wav2vec2-group"]})
    return folders["wav2vec2-group"]


SPEECH_ENCODERS = [
    SpeechEncoder("wav2vec2-group", (("text", "last"), ("cat", "mean"), ("add", "last"), ("cross", "mean")),
                  tiny_wav2vec2),
    SpeechEncoder("whisper-base", (("speech", "mean"), ("cat", "mean"), ("add", "last"), ("cross", "mean")),
                  lambda weights, scratch: weights.whisper),  # the encoder of the real WhisperForConditionalGeneration
]
REAL_CASES = [ContractCase(fusion, "hidden", pooling, speech.name, E5)
              for speech in SPEECH_ENCODERS for fusion, pooling in speech.fusions]
ONNX_CASES = [case for case in REAL_CASES if case.fusion in ("cat",)]
"""One ONNX export (about a minute for 117 M parameters): both encoders and the fused heads in one graph."""
ATOL = 1e-5
"""float32: the same sentence alone and padded in a batch runs other matrix shapes through 12 layers (1.4e-6 seen)."""


def ids(cases):
    return [case.id for case in cases]


def close(actual, expected, atol=ATOL, name=""):
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=0, err_msg=name)


class RealZoo:
    """Each case's model built once from the real folders, its saved checkpoint, and what was measured on it."""

    def __init__(self, weights: RealWeights, root: Path):
        self.weights, self.root = weights, root
        self.folders = {E5: weights.e5}
        for speech in SPEECH_ENCODERS:
            self.folders[speech.name] = speech.folder(weights, root / "speech" / speech.name)
        self.processors = {speech.name: processor_for_encoders(weights.e5, self.folders[speech.name])
                           for speech in SPEECH_ENCODERS}
        self._models, self._checkpoints = {}, {}

    def processor(self, case: ContractCase):
        return self.processors[case.audio_encoder]

    def model(self, case: ContractCase) -> KlueWav2Vec2ForEmotion:
        if case not in self._models:
            self._models[case] = build_from_encoder_folders(case, self.folders, seed=len(self._models))
        return self._models[case]

    def checkpoint(self, case: ContractCase) -> Path:
        if case not in self._checkpoints:
            directory = self.root / "checkpoints" / case.id
            self.model(case).save_pretrained(directory)
            self.processor(case).save_pretrained(directory)
            self._checkpoints[case] = directory
        return self._checkpoints[case]


@pytest.fixture(scope="module")
def zoo(real_weights_dirs, tmp_path_factory):
    return RealZoo(real_weights_dirs, tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [speech_like(rng, seconds) for seconds in CLIP_SECONDS]


@pytest.fixture(scope="module")
def e5_tokenizer(real_weights_dirs):
    return AutoTokenizer.from_pretrained(real_weights_dirs.e5)


MEASURED = {}


def measured(zoo, clips, case: ContractCase) -> dict:
    """Outputs of `case`'s built model on the ragged batch and on each item alone (contract_probes.batch_and_alone)."""
    if case not in MEASURED:
        MEASURED[case] = batch_and_alone(zoo.model(case), zoo.processor(case), TEXTS, clips)
    return MEASURED[case]


# ----------------------------------------------------------------------------------------------- the folders
def test_e5_folder_holds_the_pretrained_multilingual_e5(real_weights_dirs, e5_tokenizer):
    """Real pretrained knowledge, not a random init: e5's own pieces, and Korean sentences of one emotion nearer to
    each other (and to the English one) than to an angry one."""
    tokens = e5_tokenizer.convert_ids_to_tokens(e5_tokenizer("약속을 어겨서 너무 화나요")["input_ids"])
    assert tokens == ["<s>", "▁약속", "을", "▁어", "겨", "서", "▁너무", "▁화", "나요", "</s>"]
    model = AutoModel.from_pretrained(real_weights_dirs.e5).eval()
    assert model.config.hidden_size == 384 and model.config.pad_token_id == PAD
    assert model.num_parameters() == pytest.approx(117.5e6, rel=0.01)
    sentences = ["오늘 정말 행복하고 기분이 좋아요", "너무 기뻐서 웃음이 나요", "약속을 어겨서 너무 화나요", "I am so happy today!"]
    batch = e5_tokenizer([f"query: {s}" for s in sentences], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    vectors = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = (vectors @ vectors.T).numpy()
    happy, glad, angry, english = range(4)
    assert similarity[happy, glad] > similarity[happy, angry] + 0.03
    assert similarity[happy, english] > similarity[english, angry] + 0.05


# ----------------------------------------------------------------------------------------------- e5 through the processor
@pytest.mark.parametrize("padding", [True, "max_length"])
def test_processor_passes_the_e5_tokenizers_output_unchanged(zoo, e5_tokenizer, clips, padding):
    """`<s> … </s>`, pad id 1 (right-padded), and no token_type_ids (XLM-R's tokenizer makes none): exactly the
    tokenizer's own output, whatever the processor's BERT-shaped defaults."""
    processor = zoo.processors[SPEECH_ENCODERS[0].name]
    found = processor(text=TEXTS, audio=clips, sampling_rate=16000, padding=padding)
    own = e5_tokenizer(TEXTS, padding=padding, truncation=True, max_length=processor.max_text_length,
                       return_tensors="pt")
    text_keys = {key for key in found if key not in ("input_values", "audio_attention_mask")}
    assert text_keys == set(own) == {"input_ids", "attention_mask"}
    for key in own:
        assert torch.equal(found[key], own[key]), key
    ids, mask = found["input_ids"], found["attention_mask"].bool()
    lengths = mask.sum(1)
    assert (ids[:, 0] == BOS).all()
    assert ids[torch.arange(len(ids)), lengths - 1].tolist() == [EOS] * len(TEXTS)
    assert (ids[~mask] == PAD).all() and (~mask).any()
    assert ((ids == EOS).sum(1) == 1).all()


def test_last_pooling_takes_the_closing_token_of_e5(zoo, clips, real_weights_dirs):
    """pooling="last" pools `</s>`, the last real token, not a pad: each sentence's pooled text vector is the plain
    e5 encoder's state at `</s>` of that sentence alone."""
    case = next(case for case in REAL_CASES if case.fusion == "text" and case.pooling == "last")
    model, processor = zoo.model(case), zoo.processor(case)
    batch = processor(text=TEXTS, audio=clips, sampling_rate=16000)
    assert (batch["input_ids"] == PAD).any()
    with torch.no_grad():
        pooled = model(**batch).text_embeds
    encoder = AutoModel.from_pretrained(real_weights_dirs.e5).eval()
    for row, text in enumerate(TEXTS):
        alone = processor(text=text)
        assert alone["input_ids"][0, -1].item() == EOS
        with torch.no_grad():
            states = encoder(**alone).last_hidden_state[0]
        close(pooled[row].numpy(), states[-1].numpy(), name=f"pooled vs </s> of {text!r}")
        if len(states) > 1:
            assert np.abs(pooled[row].numpy() - states[-2].numpy()).max() > 0.1


def test_token_type_ids_of_zeros_change_nothing(zoo, clips):
    """e5's processor gives no token_type_ids; the model then reads type 0, as when they are given as zeros."""
    case = REAL_CASES[0]
    batch = zoo.processor(case)(text=TEXTS, audio=clips, sampling_rate=16000)
    assert "token_type_ids" not in batch
    without = forward_outputs(zoo.model(case), batch)
    given = forward_outputs(zoo.model(case), {**batch, "token_type_ids": torch.zeros_like(batch["input_ids"])})
    for field, value in without.items():
        close(given[field], value, atol=0, name=field)


# ----------------------------------------------------------------------------------------------- the contracts
@pytest.mark.parametrize("case", REAL_CASES, ids=ids(REAL_CASES))
def test_padding_never_enters_on_real_weights(zoo, clips, case):
    """Each item of a ragged batch gives what it gives alone: pooled embeddings, logits and regression."""
    found = measured(zoo, clips, case)
    fields = [key.split("/", 1)[1] for key in found if key.startswith("batch/")]
    assert {"logits", "regression"} <= set(fields) and ("text_embeds" in fields) == (case.fusion != "speech")
    for field in fields:
        expected = found[f"alone/{field}"]
        # whisper-base's pooled frames reach |6.5| (its states |23|): float32 rounding of other matrix shapes, 2e-5
        # there (relative 3e-6); exact in float64 (test_whisper_base_ignores_padding_exactly_in_float64).
        atol = ATOL * max(1.0, np.abs(expected).max()) if field == "audio_embeds" else ATOL
        close(found[f"batch/{field}"], expected, atol=atol, name=f"{field}: batch vs alone")
    embeds = "text_embeds" if case.fusion != "speech" else "audio_embeds"
    assert np.abs(found[f"batch/{embeds}"]).max() > 0.1  # real activations, not a degenerate zero vector


def test_whisper_base_ignores_padding_exactly_in_float64(zoo, clips):
    """whisper-base's encoder on each clip alone and in the padded batch, in float64: equal to 1e-10 (what float32
    leaves at 2e-5 on its |23| states is rounding, not padding)."""
    from kemd_emotion.modeling_klue_wav2vec2 import WhisperSpeechEncoder, whisper_encoder_states

    encoder = WhisperSpeechEncoder.from_pretrained(zoo.folders["whisper-base"], dtype=torch.float64).eval()
    processor = zoo.processors["whisper-base"]
    batch = processor(audio=clips, sampling_rate=16000)
    lengths = batch["audio_attention_mask"].sum(-1)
    with torch.no_grad():
        (together,), mask = whisper_encoder_states(encoder, batch["input_features"].double(), lengths)
        for row, clip in enumerate(clips):
            alone_features = processor(audio=clip, sampling_rate=16000)["input_features"].double()
            (alone,), _ = whisper_encoder_states(encoder, alone_features, lengths[row:row + 1])
            frames = alone.shape[1]
            assert mask[row].sum() == frames and alone.abs().max() > 1
            close(together[row, :frames].numpy(), alone[0].numpy(), atol=1e-10, name=f"clip {row}")


@pytest.mark.parametrize("case", REAL_CASES, ids=ids(REAL_CASES))
def test_save_and_from_pretrained_give_the_same_outputs(zoo, clips, case):
    reloaded, info = KlueWav2Vec2ForEmotion.from_pretrained(zoo.checkpoint(case), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    found = batch_and_alone(reloaded.eval(), zoo.processor(case), TEXTS, clips)
    expected = measured(zoo, clips, case)
    for key, value in expected.items():
        close(found[key], value, atol=0 if key.startswith("inputs/") else 1e-6, name=key)


@pytest.fixture(scope="module")
def remote(zoo, clips, tmp_path_factory):
    """The outputs of every case's checkpoint loaded with `trust_remote_code` in one fresh interpreter where
    kemd_emotion cannot be imported (tests/helpers/contract_probes.py), and its pipeline's."""
    work = tmp_path_factory.mktemp("remote")
    np.savez(work / "clips.npz", **{f"clip{i}": clip for i, clip in enumerate(clips)})
    plan = {"inputs": str(work / "clips.npz"), "texts": TEXTS,
            "jobs": [{"name": case.id, "checkpoint": str(zoo.checkpoint(case)),
                      "probes": ["batch"] + (["pipeline"] if case == REAL_CASES[1] else [])} for case in REAL_CASES]}
    (work / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(work / "modules"), "PYTHONPATH": ""}
    script = Path(__file__).parent / "helpers" / "contract_probes.py"
    run = (BLOCK_KEMD_EMOTION + f"import runpy\nsys.path.insert(0, {str(script.parent)!r})\n"
           f"runpy.run_path({str(script)!r}, run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", run, str(work / "plan.json"), str(work / "out.npz")],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    return dict(np.load(work / "out.npz"))


@pytest.mark.parametrize("case", REAL_CASES, ids=ids(REAL_CASES))
def test_trust_remote_code_in_a_fresh_process_gives_the_same_outputs(zoo, clips, remote, case):
    found = {key.split("/", 1)[1]: value for key, value in remote.items() if key.startswith(case.id + "/")}
    assert str(found["module"]).startswith("transformers_modules"), found["module"]
    expected = measured(zoo, clips, case)
    for key, value in expected.items():
        close(found[key], value, atol=0 if key.startswith("inputs/") else 1e-6, name=key)
    if "pipeline/scores" in found:
        close(found["pipeline/scores"], 1 / (1 + np.exp(-expected["batch/logits"])), name="pipeline scores")


@pytest.mark.parametrize("case", ONNX_CASES, ids=ids(ONNX_CASES))
def test_onnx_export_gives_the_eager_outputs(zoo, clips, case, tmp_path):
    """`export_onnx` of a real-e5 checkpoint: the onnxruntime model gives the eager logits and regression on a
    ragged batch of another size than the one it was captured on."""
    pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'kemd-emotion[onnx]'")
    from kemd_emotion.onnx import export_onnx
    from kemd_emotion.onnxruntime_klue_wav2vec2 import OnnxKlueWav2Vec2ForEmotion

    out = export_onnx(zoo.checkpoint(case), tmp_path / "onnx")
    onnx_model = OnnxKlueWav2Vec2ForEmotion.from_pretrained(out)
    batch = zoo.processor(case)(text=TEXTS, audio=clips, sampling_rate=16000)
    found = onnx_model(**batch)
    expected = measured(zoo, clips, case)
    for field in ("logits", "regression"):
        close(np.asarray(found[field]), expected[f"batch/{field}"], atol=1e-4, name=f"onnx {field}")


# ----------------------------------------------------------------------------------------------- real speech recognition
@pytest.fixture(scope="module")
def korean_speech(tmp_path_factory) -> Path:
    """espeak-ng's Korean voice saying `SPOKEN` (a 22.05 kHz wav file)."""
    path = speak_korean(tmp_path_factory.mktemp("speech"))
    assert soundfile.info(str(path)).duration > 2.0
    return path


def hangul_share(text: str) -> float:
    letters = [char for char in text if not char.isspace() and char not in ".,?!"]
    return sum(bool(HANGUL.match(char)) for char in letters) / max(1, len(letters))


def assert_korean_transcript(text: str) -> None:
    assert text.strip(), "empty transcript"
    assert hangul_share(text) > 0.8, f"not a Korean transcript: {text!r}"
    heard = set(HANGUL.findall(text))
    assert len(heard & set(SPOKEN)) >= 5, f"{text!r} shares few syllables with {SPOKEN!r}"


def test_pipeline_transcribes_korean_speech_with_whisper(zoo, real_weights_dirs, korean_speech):
    """`asr_model=` a Whisper folder: a recording without a transcript is transcribed (Korean) and scored."""
    case = next(case for case in REAL_CASES if case.fusion == "cat")
    classifier = pipeline("emotion-multimodal", model=str(zoo.checkpoint(case)), device="cpu",
                          asr_model=str(real_weights_dirs.whisper), asr_kwargs=WHISPER_KOREAN)
    output = classifier({"audio": str(korean_speech)})
    assert output["transcript_source"] == "asr"
    assert_korean_transcript(output["transcript"])
    assert len(output["emotions"]) == 7 and np.isfinite([output["arousal"], output["valence"]]).all()
    # the transcript is what the text model read: scoring it as a given text gives the same numbers
    given = classifier({"audio": str(korean_speech), "text": output["transcript"]})
    assert given["transcript_source"] == "given"
    close(np.array([e["score"] for e in given["emotions"]]), np.array([e["score"] for e in output["emotions"]]),
          atol=1e-6, name="scores of the ASR transcript vs the same text given")


def test_cli_predict_transcribes_korean_speech_with_whisper(zoo, real_weights_dirs, korean_speech):
    """`--asr-model` a Whisper folder and no `--asr-language`: the package's default language (Korean) applies."""
    case = next(case for case in REAL_CASES if case.fusion == "cat")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "kemd_emotion.cli", "predict", "--model", str(zoo.checkpoint(case)),
         "--audio", str(korean_speech), "--asr-model", str(real_weights_dirs.whisper)],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (entry,) = json.loads(result.stdout)
    assert entry["transcript_source"] == "asr", entry
    assert_korean_transcript(entry["text"])
    assert len(entry["emotions"]) == 7
