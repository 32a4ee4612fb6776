"""A run directory belongs to one configuration: a command with other settings is refused before anything is
written (each difference listed), the same command resumes, --overwrite_output_dir starts over; no pickle in any
final/ folder or push."""

import dataclasses
import logging

import pytest
from helpers.hub import fake_hub  # noqa: F401 (a fixture)
from helpers.runs import read_json, sample_dir, tiny_run_arguments  # noqa: F401 (sample_dir: a fixture)

from kemd_emotion.experiment import (
    NOT_FINGERPRINTED,
    DataArguments,
    ModelArguments,
    RunArguments,
    fingerprint,
    main,
    write_json,
    write_summary,
)
from kemd_emotion.experiment.run_directory import check_previous_run, fingerprint_differences, option_defaults
from kemd_emotion.hub import PICKLE_SUFFIXES, check_checkpoint, push_checkpoint
from kemd_emotion.experiment.model_card import load_run


def snapshot(directory):
    """Every file under `directory` (the datasets cache aside) -> its bytes."""
    return {path.relative_to(directory).as_posix(): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file() and "cache" not in path.relative_to(directory).parts}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sample_dir):  # noqa: F811
    output_dir = tmp_path_factory.mktemp("run") / "run"
    arguments = tiny_run_arguments(sample_dir, output_dir)
    main(arguments)
    return output_dir, arguments


def test_other_settings_are_refused_with_the_list_and_nothing_is_touched(finished_run, caplog):
    output_dir, arguments = finished_run
    before = snapshot(output_dir)
    assert {"run_args.json", "summary.json", "cat/fold1/metrics.json", "cat/final/README.md"} <= set(before)
    changed = [*arguments, "--pooling", "last", "--max_audio_seconds", "0.5", "--learning_rate", "0.1"]
    with pytest.raises(ValueError) as refused:
        main(changed)
    message = str(refused.value)
    assert f"{output_dir} holds a run made with other settings" in message
    assert ("  learning_rate: 0.004 -> 0.1\n  max_audio_seconds: 2.0 -> 0.5\n  pooling: 'mean' -> 'last'\n"
            in message)
    assert "--overwrite_output_dir" in message and "another --output_dir" in message
    with pytest.raises(ValueError, match=r"seeds: \[42\] -> \[7\]"):
        main([*arguments, "--seed", "7"])
    with pytest.raises(ValueError, match=r"fold_by: 'session' -> 'random'"):
        main([*arguments, "--fold_by", "random"])
    assert snapshot(output_dir) == before  # nothing overwritten: run_args, summary, metrics, model card

    # The same command resumes: every fold is kept; options that change no result (logging) do not count.
    with caplog.at_level(logging.INFO, logger="kemd_emotion.experiment"):
        main([*arguments, "--logging_steps", "7", "--per_device_eval_batch_size", "2"])
    assert "cat fold 0/2: already done, skipped" in caplog.text and "cat fold 1/2: already done" in caplog.text
    after = snapshot(output_dir)
    assert {name: after[name] for name in before if "/fold" in name} == {
        name: data for name, data in before.items() if "/fold" in name}
    assert after["summary.json"] == before["summary.json"]


def test_a_run_directory_written_before_rows_were_named_resumes(finished_run, tmp_path, caplog):
    """A run_args.json of the former option name (model.fusion, the preset's "fusion", a "fusions" list, a {fusion}
    layout) is the same run: its fingerprint never held the rows, so the same command resumes it, given with the
    former --fusion, and the table it gives is the same."""
    import shutil

    output_dir, arguments = finished_run
    copy = tmp_path / "run"
    shutil.copytree(output_dir, copy)
    run_args = read_json(copy / "run_args.json")
    assert "rows" not in run_args["fingerprint"] and "fusion" not in run_args["fingerprint"]
    run_args["model"] = {("fusion" if key == "rows" else key): value for key, value in run_args["model"].items()}
    for key in ("values", "applied"):
        run_args["preset"][key] = {("fusion" if name == "rows" else name): value
                                   for name, value in run_args["preset"][key].items()}
    run_args["preset"]["explicit"] = sorted("fusion" if name == "rows" else name
                                            for name in run_args["preset"]["explicit"])
    run_args.update(fusions=list(run_args["rows"]), layout="{fusion}/fold{k}")
    write_json(copy / "run_args.json", run_args)
    before = snapshot(copy)
    former = [{"--rows": "--fusion", str(output_dir): str(copy)}.get(value, value) for value in arguments]
    assert "--fusion" in former and str(copy) in former
    with caplog.at_level(logging.INFO, logger="kemd_emotion.experiment"):
        main(former)
    assert "cat fold 0/2: already done, skipped" in caplog.text and "cat fold 1/2: already done" in caplog.text
    after = snapshot(copy)
    assert {name: after[name] for name in before if "/fold" in name or name.startswith("summary.")} == {
        name: data for name, data in before.items() if "/fold" in name or name.startswith("summary.")}
    assert load_run(copy, "cat").fusion == "cat"


def test_overwrite_output_dir_starts_over(tmp_path, sample_dir):  # noqa: F811
    output_dir = tmp_path / "run"
    arguments = tiny_run_arguments(sample_dir, output_dir, "--folds", "1")
    main(arguments)
    (output_dir / "notes.txt").write_text("mine")
    first = read_json(output_dir / "cat" / "fold1" / "metrics.json")
    main([*arguments, "--pooling", "last", "--overwrite_output_dir", "true"])
    assert read_json(output_dir / "run_args.json")["model"]["pooling"] == "last"
    assert read_json(output_dir / "cat" / "final" / "config.json")["pooling"] == "last"
    assert read_json(output_dir / "cat" / "fold1" / "metrics.json")["ccc_avg"] != first["ccc_avg"]
    assert (output_dir / "notes.txt").read_text() == "mine"  # only the run's own files are deleted


def test_no_pickle_in_final_folders_or_pushes(finished_run, fake_hub, tmp_path):  # noqa: F811
    output_dir, _ = finished_run
    final = output_dir / "cat" / "final"
    assert not [path for path in final.rglob("*") if path.suffix in (".bin", ".pt", ".pkl")]
    training = read_json(final / "training_args.json")
    assert training["learning_rate"] == 4e-3 and training["seed"] == 42
    # A Trainer-style folder with its pickles: they stay home.
    import shutil

    folder = tmp_path / "final"
    shutil.copytree(final, folder)
    for name in ("training_args.bin", "optimizer.pt", "rng_state.pth", "extra.pkl"):
        (folder / name).write_bytes(b"pickle")
    push_checkpoint(folder, "someone/kemd")
    pushed = fake_hub.commits[0]["paths"]
    assert "model.safetensors" in pushed and "training_args.json" in pushed and "README.md" in pushed
    assert not [path for path in pushed if path.endswith(PICKLE_SUFFIXES)]
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model.bin is a pickle and is not shared"):
        check_checkpoint(folder)


def test_every_option_is_fingerprinted_unless_listed():
    fields = {item.name for cls in (ModelArguments, DataArguments, RunArguments) for item in dataclasses.fields(cls)}
    assert set(NOT_FINGERPRINTED) <= fields  # no stale names
    assert {"pooling", "learning_rate", "max_audio_seconds", "fold_by", "num_folds", "annotations", "text_model",
            "gradient_accumulation_steps", "full_determinism", "sample_vocab_size"} <= fields - set(NOT_FINGERPRINTED)

    @dataclasses.dataclass
    class Later(ModelArguments):  # an option a later version adds
        focal_gamma: float = 0.0

    values = fingerprint(Later(focal_gamma=2.0), DataArguments(), RunArguments(output_dir="x"), preset="best",
                         seeds=[1, 2], world_size=4)
    assert (values["focal_gamma"], values["preset"], values["seeds"], values["world_size"]) == (2.0, "best", [1, 2], 4)
    assert "output_dir" not in values and "seed" not in values and "logging_steps" not in values
    old = {key: value for key, value in values.items() if key != "focal_gamma"}  # recorded before it existed
    defaults = option_defaults(Later)
    assert fingerprint_differences(old, {**values, "focal_gamma": 0.0}, defaults) == []  # the old behaviour
    assert fingerprint_differences(old, values, defaults) == ["focal_gamma: 0.0 -> 2.0"]


def test_runs_that_cannot_be_checked_are_refused(tmp_path):
    write_json(tmp_path / "old" / "run_args.json", {"split": {"num_folds": 5}})
    with pytest.raises(ValueError, match="records no settings fingerprint"):
        check_previous_run(tmp_path / "old", {})
    (tmp_path / "bare" / "cat" / "fold0").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds results of a run \(cat\) but no run_args.json"):
        check_previous_run(tmp_path / "bare", {})
    assert check_previous_run(tmp_path / "new", {}) is False


def test_summary_and_card_only_from_the_runs_settings(finished_run, tmp_path):
    import shutil

    output_dir, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(output_dir, copy)
    metrics = read_json(copy / "cat" / "fold0" / "metrics.json")
    write_json(copy / "cat" / "fold0" / "metrics.json", {**metrics, "fingerprint_sha256": "0" * 64})
    with pytest.raises(ValueError, match=r"cat/fold0 were trained with other settings than run_args.json records"):
        write_summary(copy, ["cat"])
    info = read_json(copy / "cat" / "final" / "final_info.json")
    write_json(copy / "cat" / "final" / "final_info.json", {**info, "fingerprint_sha256": "1" * 64})
    with pytest.raises(ValueError, match="was trained with other settings than run_args.json records"):
        load_run(copy, "cat")
