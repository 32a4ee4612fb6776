"""examples/run_emotion.py end to end on the tiny sample corpus: 2-process DDP, kill-and-resume, arguments, table."""

import dataclasses
import json
import re
import shutil
import sys

import numpy as np
import pytest
from helpers.runs import REPO, SCRIPT, read_json, run, sample_dir, tiny_run_arguments  # noqa: F401 (sample_dir: a fixture)

from kemd_emotion.experiment import (
    EXIT_AFTER_SAVE_ENV,
    PRESETS,
    SAMPLE_PRESET,
    DataArguments,
    Experiment,
    ModelArguments,
    RunArguments,
    format_table,
    last_complete_checkpoint,
    parse_arguments,
    preset_table_markdown,
    write_json,
    write_summary,
)


def test_two_process_ddp_on_cpu(tmp_path, sample_dir):
    """torchrun, 2 processes, gloo: both ranks train every fold, the main one writes the table."""
    output_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(SCRIPT),
               *tiny_run_arguments(sample_dir, output_dir)]
    result = run(command)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    for fold in (0, 1):
        metrics = read_json(output_dir / "cat" / f"fold{fold}" / "metrics.json")
        assert metrics["world_size"] == 2 and metrics["distributed_type"] == "MULTI_CPU"
        assert [process["rank"] for process in metrics["processes"]] == [0, 1]
        assert all(process["training_steps_this_session"] > 0 for process in metrics["processes"])
        assert len({process["pid"] for process in metrics["processes"]}) == 2
        assert metrics["predictions_aligned"]
        for rank in (0, 1):
            assert f"[rank {rank}/2] cat fold {fold}/2: ran" in result.stderr
        predictions = np.load(output_dir / "cat" / f"fold{fold}" / "predictions.npz")
        assert predictions["logits"].shape == (metrics["num_test"], 7)
        assert predictions["segment_id"].shape == (metrics["num_test"],)
    summary = read_json(output_dir / "summary.json")
    assert summary["complete"] and summary["rows"]["cat"]["folds"] == [0, 1]
    table = (output_dir / "summary.md").read_text()
    assert "| Cat (concatenation) |" in table and "Majority class" in table
    assert "| Cat (concatenation) |" in result.stdout  # printed too
    assert (output_dir / "cat" / "final" / "model.safetensors").exists()
    assert not list((output_dir / "cat").glob("fold*/checkpoint-*"))
    # Another setting in the same directory: refused on every rank (none waits for the others), nothing written.
    before = (output_dir / "run_args.json").read_bytes()
    refused = run(command + ["--pooling", "last"], timeout=120)
    assert refused.returncode != 0 and refused.stderr.count("pooling: 'mean' -> 'last'") >= 2
    assert (output_dir / "run_args.json").read_bytes() == before


def test_killed_run_resumes_without_recomputing(tmp_path, sample_dir):
    """Kill fold 1 one batch into its second epoch; the rerun skips fold 0, resumes fold 1 from its checkpoint
    (same data order: a stock length-grouped sampler fails this) and ends where an uninterrupted run ends."""
    output_dir = tmp_path / "run"
    arguments = tiny_run_arguments(sample_dir, output_dir, "--num_train_epochs", "2", "--save_strategy", "steps",
                                   "--save_steps", "1")
    killed = run([sys.executable, str(SCRIPT), *arguments], {EXIT_AFTER_SAVE_ENV: "cat/fold1:4"})
    assert killed.returncode == 75, killed.stderr[-5000:]
    done = output_dir / "cat" / "fold0" / "metrics.json"
    assert done.exists() and not (output_dir / "cat" / "fold1" / "metrics.json").exists()
    assert [p.name for p in (output_dir / "cat" / "fold1").glob("checkpoint-*")] == ["checkpoint-4"]
    assert not (output_dir / "summary.json").exists()
    finished_at = done.stat().st_mtime_ns

    resumed = run([sys.executable, str(SCRIPT), *arguments])
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    assert "cat fold 0/2: already done, skipped" in resumed.stderr
    assert "cat fold 1/2: resuming from checkpoint-4" in resumed.stderr
    assert done.stat().st_mtime_ns == finished_at
    metrics = read_json(output_dir / "cat" / "fold1" / "metrics.json")
    total_steps = metrics["global_step"]
    assert metrics["resumed_from"] == "checkpoint-4"
    assert metrics["processes"][0]["training_steps_this_session"] == total_steps - 4
    assert read_json(output_dir / "summary.json")["complete"]
    assert not list((output_dir / "cat" / "fold1").glob("checkpoint-*"))

    # Nothing was lost: the same fold trained without interruption predicts the same.
    reference_dir = tmp_path / "reference"  # its own vocabulary: the same, since it is trained deterministically
    reference = run([sys.executable, str(SCRIPT), *tiny_run_arguments(
        sample_dir, reference_dir, "--num_train_epochs", "2", "--save_strategy", "steps", "--save_steps", "1",
        "--folds", "1")])
    assert reference.returncode == 0, reference.stderr[-5000:]
    assert read_json(reference_dir / "cat" / "fold1" / "metrics.json")["global_step"] == total_steps
    ours = np.load(output_dir / "cat" / "fold1" / "predictions.npz")
    theirs = np.load(reference_dir / "cat" / "fold1" / "predictions.npz")
    np.testing.assert_array_equal(ours["segment_id"], theirs["segment_id"])
    np.testing.assert_allclose(ours["logits"], theirs["logits"], atol=1e-5)
    np.testing.assert_allclose(ours["regression"], theirs["regression"], atol=1e-5)


def test_pretrained_encoders_from_local_folders(tmp_path, sample_dir):
    """--text_model / --audio_model take folders (or hub ids): encoders, tokenizer and feature extractor load from
    them, the paper's preset applies, and the final model keeps their weights' shapes."""
    import torch
    from transformers import BertModel, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from kemd_emotion.experiment import main
    from kemd_emotion.small_encoders import (
        DEFAULT_TEXTS,
        tiny_audio_config,
        tiny_text_config,
        train_wordpiece_tokenizer,
    )

    text_dir, audio_dir = tmp_path / "bert", tmp_path / "wav2vec2"
    tokenizer = train_wordpiece_tokenizer(DEFAULT_TEXTS, vocab_size=200)
    torch.manual_seed(0)
    BertModel(tiny_text_config(vocab_size=len(tokenizer))).save_pretrained(text_dir)
    tokenizer.save_pretrained(text_dir)
    Wav2Vec2Model(tiny_audio_config()).save_pretrained(audio_dir)
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(audio_dir)

    output_dir = tmp_path / "run"
    summary = main(["--text_model", str(text_dir), "--audio_model", str(audio_dir), "--data_dir", str(sample_dir),
                    "--output_dir", str(output_dir), "--rows", "add", "--num_folds", "2", "--folds", "1",
                    "--num_train_epochs", "1", "--per_device_train_batch_size", "8", "--disable_tqdm", "true"])
    assert summary["rows"]["add"]["folds"] == [1] and summary["text_model"] == str(text_dir)
    # The paper's preset, recorded: every value it set, and each option given instead.
    run_args = read_json(output_dir / "run_args.json")
    preset = run_args["preset"]
    assert (preset["requested"], preset["preset"]) == ("auto", "paper") and preset["values"] == PRESETS["paper"]
    assert preset["overrides"] == {
        "rows": {"preset": "all", "given": "add"},
        "text_model": {"preset": "klue/bert-base", "given": str(text_dir)},
        "audio_model": {"preset": "facebook/wav2vec2-base", "given": str(audio_dir)},
        "num_folds": {"preset": 5, "given": 2},
        "num_train_epochs": {"preset": 5.0, "given": 1.0},
        "per_device_train_batch_size": {"preset": 32, "given": 8},
    }
    assert set(preset["applied"]) == set(PRESETS["paper"]) - set(preset["overrides"])
    recorded = {**run_args["model"], **run_args["data"], **run_args["training"]}
    assert {name: recorded[name] for name in preset["applied"]} == preset["applied"]
    assert (recorded["pooling"], recorded["audio_representation"], recorded["max_audio_seconds"]) == ("last", "conv", 5.0)
    assert (recorded["learning_rate"], recorded["adam_epsilon"], recorded["fold_by"], recorded["annotations"]) == (
        1e-5, 1e-8, "contiguous", "all")
    final = output_dir / "add" / "final"
    config = read_json(final / "config.json")
    assert config["text_config"]["vocab_size"] == len(tokenizer) and config["pooling"] == "last"
    assert (final / "tokenizer.json").exists() and read_json(final / "final_info.json")["origin"] == "last_fold"


def test_a_checkpoint_cut_short_is_not_resumed_from(tmp_path):
    complete, cut = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    for path in (complete, cut):
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"")
    (complete / "trainer_state.json").write_text('{"global_step": 2}')
    (tmp_path / "checkpoint-10-old").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(complete)
    assert not cut.exists()
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_presets_and_explicit_options():
    model, data, args, preset = parse_arguments([])
    assert preset["preset"] == "sample" and model.text_model is None
    assert args.learning_rate == SAMPLE_PRESET["learning_rate"]
    assert data.max_audio_seconds == SAMPLE_PRESET["max_audio_seconds"]
    # An option given on the command line beats the preset, and is recorded as an override.
    _, _, args, preset = parse_arguments(["--learning_rate", "0.01"])
    assert args.learning_rate == 0.01 and "learning_rate" not in preset["applied"]
    assert preset["overrides"] == {"learning_rate": {"preset": 4e-3, "given": 0.01}}
    # With pretrained encoders: the paper's settings, every one of them.
    model, data, args, preset = parse_arguments(["--text_model", "klue/bert-base", "--audio_model", "w2v"])
    assert preset["preset"] == "paper" and preset["overrides"] == {
        "audio_model": {"preset": "facebook/wav2vec2-base", "given": "w2v"}}
    assert (args.per_device_train_batch_size, args.learning_rate, args.num_train_epochs, args.adam_epsilon) == (
        32, 1e-5, 5.0, 1e-8)
    assert (data.num_folds, data.fold_by, data.annotations, data.max_audio_seconds) == (5, "contiguous", "all", 5.0)
    assert (model.pooling, model.audio_representation, model.rows) == ("last", "conv", "all")
    assert args.train_sampling_strategy == "group_by_length" and args.length_column_name == "duration"
    assert not args.remove_unused_columns
    # best: our settings; its encoders fill in as a pair, never next to a given one.
    model, data, _, preset = parse_arguments(["--preset", "best"])
    assert (model.text_model, model.audio_model, model.pooling, data.fold_by, data.annotations) == (
        "klue/bert-base", "facebook/wav2vec2-base", "mean", "session", "speaker")
    model, _, _, _ = parse_arguments(["--preset", "best", "--text_model", "my/bert", "--rows", "text"])
    assert (model.text_model, model.audio_model) == ("my/bert", None)
    _, _, _, preset = parse_arguments(["--preset", "paper", "--pooling", "mean"])
    assert preset["overrides"] == {"pooling": {"preset": "last", "given": "mean"}}


def test_best_preset_is_for_a_few_hundred_rows_with_real_encoders():
    """best: encoders at 1e-4, heads at 1e-3, batch 16, 10 epochs, mean pooling (the small-corpus evidence in the
    preset's help text); the paper keeps one learning rate."""
    model, _, args, _ = parse_arguments(["--preset", "best"])
    assert (args.learning_rate, args.head_learning_rate, args.per_device_train_batch_size, args.num_train_epochs,
            model.pooling) == (1e-4, 1e-3, 16, 10.0, "mean")
    _, _, args, _ = parse_arguments(["--preset", "paper"])
    assert (args.learning_rate, args.head_learning_rate) == (1e-5, None)


def test_a_whisper_speech_encoder_turns_the_presets_conv_into_hidden(tmp_path):
    """The one rule (presets.speech_feature_rule): a preset's conv (wav2vec2's) becomes hidden for a Whisper
    --audio_model, under paper and auto, and is recorded; a given --audio_representation and wav2vec2 are untouched."""
    whisper, wav2vec2 = tmp_path / "whisper", tmp_path / "w2v"
    for folder, model_type in ((whisper, "whisper"), (wav2vec2, "wav2vec2")):
        folder.mkdir()
        (folder / "config.json").write_text(f'{{"model_type": "{model_type}"}}')
    for preset_args in (["--preset", "paper"], []):
        model, _, _, preset = parse_arguments([*preset_args, "--text_model", "t", "--audio_model", str(whisper)])
        assert preset["preset"] == "paper" and model.audio_representation == "hidden"
        assert preset["applied"]["audio_representation"] == "hidden"
        assert preset["adapted"]["audio_representation"]["preset"] == "conv"
    model, _, _, preset = parse_arguments(["--preset", "paper", "--text_model", "t", "--audio_model", str(wav2vec2)])
    assert model.audio_representation == "conv" and preset["adapted"] == {}
    model, _, _, preset = parse_arguments(["--preset", "paper", "--text_model", "t", "--audio_model", str(whisper),
                                           "--audio_representation", "weighted"])
    assert model.audio_representation == "weighted" and preset["adapted"] == {}
    model, _, _, preset = parse_arguments(["--preset", "best", "--text_model", "t", "--audio_model", str(whisper)])
    assert model.audio_representation == "weighted" and preset["adapted"] == {}  # best's weighted works for Whisper


def test_fusion_is_the_former_name_of_rows(tmp_path):
    """`--fusion` (and a .json file's "fusion") parse as `--rows` does: the same options, preset record and
    fingerprint; giving both is refused."""
    base = ["--output_dir", str(tmp_path), "--use_cpu", "true", "--num_folds", "2"]
    by_rows = parse_arguments([*base, "--rows", "cat,cat+rare"])
    by_former_name = parse_arguments([*base, "--fusion", "cat,cat+rare"])
    assert by_rows == by_former_name and by_rows[0].rows == "cat,cat+rare" and "rows" in by_rows[3]["explicit"]
    experiments = [Experiment(*parsed) for parsed in (by_rows, by_former_name)]
    assert experiments[0].fingerprint == experiments[1].fingerprint
    assert list(experiments[0].rows) == list(experiments[1].rows) == ["cat", "cat+rare"]
    # The preset fills neither when either is given.
    model, _, _, preset = parse_arguments(["--preset", "best", "--fusion", "text"])
    assert model.rows == "text" and preset["overrides"]["rows"] == {"preset": "cross", "given": "text"}
    with pytest.raises(ValueError, match=r"give --rows or --fusion \(its former name\), not both"):
        parse_arguments([*base, "--rows", "cat", "--fusion", "add"])
    for values in ({"fusion": "add"}, {"rows": "add"}):
        options = tmp_path / "options.json"
        options.write_text(json.dumps({"output_dir": str(tmp_path), **values}))
        assert parse_arguments([str(options)])[0].rows == "add"
    options.write_text(json.dumps({"output_dir": str(tmp_path), "rows": "add", "fusion": "cat"}))
    with pytest.raises(ValueError, match="not both"):
        parse_arguments([str(options)])


def test_the_dataclass_defaults_are_the_papers():
    """Code that builds the option dataclasses itself gets the paper's values (the encoders excepted)."""
    defaults = {**dataclasses.asdict(ModelArguments()), **dataclasses.asdict(DataArguments()),
                **{name: getattr(RunArguments(output_dir="x"), name) for name in PRESETS["paper"]
                   if hasattr(RunArguments, name)}}
    for name, value in PRESETS["paper"].items():
        if name not in ("text_model", "audio_model"):
            assert defaults[name] == value, name


def test_the_experiment_page_shows_the_preset_table():
    assert preset_table_markdown() in (REPO / "docs" / "experiment.md").read_text(encoding="utf-8")


def test_bad_arguments_fail_clearly(tmp_path, sample_dir):
    with pytest.raises(ValueError, match="--rows 'late'"):
        Experiment(*_parsed(tmp_path, "--rows", "late"))
    with pytest.raises(ValueError, match=r"--folds '7': expected fold numbers between 0 and 4 \(--num_folds 5\)"):
        Experiment(*_parsed(tmp_path, "--folds", "7"))
    with pytest.raises(ValueError, match=r"--folds 'one': expected fold numbers"):
        Experiment(*_parsed(tmp_path, "--folds", "one"))
    with pytest.raises(ValueError, match="needs --audio_model"):
        Experiment(*_parsed(tmp_path, "--text_model", "klue/bert-base", "--rows", "cat"))
    with pytest.raises(ValueError, match=r"--preset 'paperish' is not a preset; expected one of auto, paper, sample"):
        _parsed(tmp_path, "--preset", "paperish")
    for seeds, message in (("1,2,1", "1 given twice"), ("1,x", "'x' is not an integer"), ("", "one or more integer"),
                           (" , ", "one or more integer"), ("1.5", "'1.5' is not an integer"), ("-1", "outside 0")):
        with pytest.raises(ValueError, match=rf"--seeds '{re.escape(seeds)}': .*{message}"):
            _parsed(tmp_path, "--seeds", seeds)
    with pytest.raises(ValueError, match="give --seed or --seeds, not both"):
        _parsed(tmp_path, "--seed", "3", "--seeds", "1,2")
    # A split the data cannot give: before any training, and nothing of a fold written.
    experiment = Experiment(*_parsed(tmp_path / "sessions", "--sample_dir", str(sample_dir), "--sample_size", "tiny",
                                     "--fold_by", "session", "--sample_vocab_size", "300"))
    with pytest.raises(ValueError, match=r"--num_folds 5 --fold_by session: by='session' needs at least k=5 sessions; "
                                         r"the data has 3: \['Sess01', 'Sess02', 'Sess03'\]\. Use fewer folds or "
                                         r"another --fold_by"):
        experiment.run()
    assert not (tmp_path / "sessions" / "cat").exists() and not (tmp_path / "sessions" / "run_args.json").exists()


def _parsed(tmp_path, *argv):
    return parse_arguments(["--output_dir", str(tmp_path), "--use_cpu", "true", *argv])


def test_unusable_audio_is_reported_and_left_out(tmp_path, sample_dir):
    """A wav that passes the builder (valid header) but is 5 ms long or holds NaN is dropped before any fold."""
    import soundfile

    from kemd_emotion.data import load_kemdy

    corpus = tmp_path / "corpus"
    shutil.copytree(sample_dir, corpus)
    rows = load_kemdy(corpus, cache_dir=tmp_path / "cache0")
    short, broken = rows[0], rows[1]
    soundfile.write(short["audio"], np.zeros(80, dtype=np.float32), 16000, subtype="PCM_16")
    soundfile.write(broken["audio"], np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    experiment = Experiment(*_parsed(tmp_path / "run", "--sample_dir", str(corpus), "--sample_size", "tiny",
                                     "--num_folds", "2", "--sample_vocab_size", "300"))
    experiment.prepare()
    problems = read_json(tmp_path / "run" / "skipped_audio.json")
    assert set(problems) == {short["segment_id"], broken["segment_id"]}
    assert "NaN" in problems[broken["segment_id"]] and "25 ms" in problems[short["segment_id"]]
    assert len(experiment.dataset) == len(rows) - 2
    assert sum(len(test) for _, test in experiment.folds) == len(rows) - 2


def test_summary_table_mean_and_std(tmp_path):
    for fusion, values in (("text", (0.40, 0.50)), ("cat", (0.70, 0.74))):
        for fold, value in enumerate(values):
            metrics = {"fold": fold, "f1_micro": value, "f1_macro": value / 2, "f1_weighted": value,
                       "ccc_arousal": value, "ccc_valence": value, "ccc_avg": value, "pearson_arousal": value,
                       "majority_label": "neutral", "majority_f1_micro": 0.3, "majority_f1_macro": 0.05,
                       "majority_f1_weighted": 0.1}
            write_json(tmp_path / fusion / f"fold{fold}" / "metrics.json", metrics)
    write_json(tmp_path / "run_args.json", {"split": {"num_folds": 2, "fold_by": "contiguous"}, "num_rows": 99})
    summary = write_summary(tmp_path, ["cat", "text", "add"])
    assert list(summary["rows"]) == ["text", "cat"]  # the paper's order; "add" has no folds
    assert summary["rows"]["cat"]["metrics"]["ccc_avg"]["mean"] == pytest.approx(0.72)
    assert summary["rows"]["cat"]["metrics"]["ccc_avg"]["std"] == pytest.approx(np.std([0.70, 0.74], ddof=1))
    assert summary["complete"]
    table = (tmp_path / "summary.md").read_text()
    assert table == format_table(summary)
    assert "| Text only | 45.00 ± 7.07 | 22.50 ± 3.54 |" in table
    assert "| Majority class (neutral) | 30.00 ± 0.00 | 5.00 ± 0.00 | 0.00 | 0.00 | 0.00 | 2 |" in table
