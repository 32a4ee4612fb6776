"""The `kemd-emotion` command.

    kemd-emotion predict --model DIR --audio FILE [FILE|FOLDER ...] [--text "..." ...] [--asr-model ID]
                         [--segment utterances] [--format json|csv|vtt]
        Score recordings; JSON on stdout (a list, one entry per file, in order), a progress bar on stderr.
        --segment utterances cuts each recording at its pauses and scores every utterance ("utterances" in the
        JSON); --format csv writes one row per utterance (or window, or file), --format vtt WebVTT subtitles of one
        recording's timeline.
        Transcripts come from --text (one per file) or from a same-stem .txt next to each recording (KEMDy's
        layout; UTF-8 or cp949, transcription markers removed), else from --asr-model (any speech-recognition
        model; "transcript_source": "asr" in the JSON). A file that cannot be scored is reported on stderr and as
        {"audio", "error": {"field", "code", "message", "expected"}} in the JSON; the others are still scored. Exit status 1 only if none was.
    kemd-emotion card RUN_DIR [--row ROW] [--checkpoint-dir DIR] [--model-id ID]
        (Re)build the model card (README.md + PNG figures) of a run's final model(s). --fusion: alias of --row.
    kemd-emotion push CHECKPOINT_DIR REPO_ID [--private]
        Upload a checkpoint (weights, processor, code, card, figures) to the Hugging Face Hub in one commit.
    kemd-emotion make-sample OUT_DIR [...]
        Write a synthetic KEMDy19/KEMDy20 release (see `kemd_emotion.data.sample`).
    kemd-emotion demo --model DIR [--host 127.0.0.1 --port 7860]
        Serve the Gradio demo (needs the `demo` extra; see `kemd_emotion.demo`).
    kemd-emotion export CHECKPOINT OUT [--int8] [--opset N] [--overwrite]
        Write an ONNX model folder that onnxruntime serves, and that predict/demo/pipeline() load as a checkpoint
        (needs the `onnx` extra; see `kemd_emotion.onnx`).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
"""Files a folder given to --audio contributes (soundfile reads these)."""
PREDICT_DESCRIPTION = """Score recordings (and their transcripts) with a trained model.

JSON goes to stdout: a list with one entry per audio file, in order ({"audio", "text", "emotions", "labels",
"arousal", "valence", "transcript_source"}, plus "chunks" with --chunk-length-s, "utterances" with --segment).
"text" is what the text model
read; "transcript_source" says whether it was given ("given": --text or a .txt) or machine-made ("asr"). A file
that cannot be scored is reported on stderr and appears as {"audio", "error": {"field", "code", "message",
"expected"}} ("field": "audio" or "text"; "code": "unreadable", "too_short", "missing", "no_words", ...); the others
are still scored. The
exit status is 1 only when no file was scored.

Transcripts: --text gives one per audio file, in order; without it each recording's same-stem .txt is read (KEMDy's
layout; UTF-8 or cp949) and its transcription markers are removed. A file with neither is transcribed by
--asr-model (or the checkpoint's config.asr_model), from the whole recording (with --chunk-length-s, window by
window, with --segment utterance by utterance). A machine transcript costs accuracy: the text model was trained on
human transcripts.

Conversations: --segment utterances cuts each recording at its pauses (energy voice activity, no model) and scores
each utterance with its own audio; a given transcript (--text, .txt) is the whole recording's and is read with every
utterance, while --asr-model transcribes each utterance on its own. A recording without speech gets
"utterances": [] and a "note". --format csv writes the timeline as rows (file, start, end, labels, arousal,
valence, transcript, error; one per utterance, or window, or else file); --format vtt writes one recording's
timeline as WebVTT cues (labels, arousal/valence, transcript), for a video player or subtitle editor."""
FORMATS = ("json", "csv", "vtt")
CSV_COLUMNS = ("file", "start", "end", "labels", "arousal", "valence", "transcript", "error")


class CommandError(Exception):
    """A problem with the command line as a whole (not with one file): reported, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of `kemd-emotion`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(with_make_sample=bool(argv) and argv[0] == "make-sample")
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CommandError as error:
        print(f"kemd-emotion {args.command}: error: {error}", file=sys.stderr)
        return 2


def build_parser(with_make_sample: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kemd-emotion", description="Korean multimodal (transcript + speech) emotion recognition."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    predict = commands.add_parser(
        "predict", help="score recordings (and transcripts) with a trained model; JSON on stdout",
        description=PREDICT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("--model", required=True, help="a checkpoint folder or Hub id")
    predict.add_argument("--audio", required=True, nargs="+", metavar="PATH",
                         help=f"audio files and/or folders (searched recursively for {', '.join(AUDIO_SUFFIXES)})")
    predict.add_argument("--text", nargs="+", metavar="TEXT",
                         help="transcripts, one per audio file (default: a same-stem .txt next to each file)")
    predict.add_argument("--asr-model", default=None, metavar="ID",
                         help="speech-recognition model (Hub id or folder, e.g. openai/whisper-small) that transcribes "
                              "files with neither --text nor a .txt (default: the checkpoint's config.asr_model)")
    predict.add_argument("--asr-language", default=None, metavar="LANG",
                         help="language for Whisper-style ASR models, e.g. english; auto: the model detects it "
                              "(default: korean for a multilingual Whisper model)")
    predict.add_argument("--on-empty-transcript", choices=("error", "speech_only"), default=None,
                         help="when ASR hears no words: report the file (error, the default) or score it from its "
                              "speech with the text side reading 'no words', as in training (speech_only)")
    predict.add_argument("--batch-size", type=int, default=8, help="utterances (or windows) per forward pass")
    predict.add_argument("--top-k", type=int, default=None, help="how many emotions to list (default: all 7)")
    predict.add_argument("--threshold", type=float, default=None,
                         help="score above which an emotion is a label, for every emotion (default: the model's own "
                              "per-emotion decision_thresholds, else 0.5)")
    predict.add_argument("--chunk-length-s", type=float, default=None,
                         help="score long recordings in windows of this many seconds (at most the training crop)")
    predict.add_argument("--stride-length-s", type=float, default=None, help="overlap of consecutive windows (s)")
    predict.add_argument("--segment", choices=("utterances",), default=None,
                         help="cut each recording at its pauses and score every utterance (not with "
                              "--chunk-length-s)")
    predict.add_argument("--format", choices=FORMATS, default="json",
                         help="json (default): the pipeline's answers; csv: one row per utterance, window or file; "
                              "vtt: WebVTT cues of one recording's timeline (needs --segment or --chunk-length-s)")
    predict.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, ... (default: cpu)")
    predict.add_argument("--trust-remote-code", action="store_true",
                         help="run the code stored with a Hub checkpoint (needed only for another package's code)")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    predict.set_defaults(func=run_predict)

    card = commands.add_parser("card", help="(re)build the model card of a run's final model(s)")
    card.add_argument("run_dir", help="the run's --output_dir (run_args.json, {row}/fold*/, {row}/final/)")
    card.add_argument("--row", "--fusion", dest="row", default=None,
                      help="which row's model: its folder in the run, e.g. cat or cat+rare (default: every row with "
                           "finished folds); --fusion is its former name")
    card.add_argument("--checkpoint-dir", default=None, help="where to write the card (default: {row}/final)")
    card.add_argument("--model-id", default=None, help="the Hub repo id the card's examples load")
    card.set_defaults(func=run_card)

    push = commands.add_parser("push", help="upload a checkpoint folder to the Hugging Face Hub")
    push.add_argument("checkpoint_dir")
    push.add_argument("repo_id", help="user-or-org/name")
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", default=None, help="branch to commit to")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    push.add_argument("--commit-message", default="Upload kemd-emotion checkpoint")
    push.set_defaults(func=run_push)

    demo = commands.add_parser("demo", help="serve the Gradio demo (pip install 'kemd-emotion[demo]')")
    demo.add_argument("--model", required=True, help="a checkpoint folder or Hub id")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    demo.add_argument("--port", type=int, default=7860)
    demo.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, ... (default: cpu)")
    demo.add_argument("--threshold", type=float, default=None,
                      help="decision threshold for every emotion (default: the model's own, else 0.5)")
    demo.add_argument("--asr-model", default=None,
                      help="speech recogniser passed to the pipeline, for recordings without a transcript")
    demo.set_defaults(func=run_demo)

    export = commands.add_parser(
        "export", help="export a checkpoint to an ONNX model folder (pip install 'kemd-emotion[onnx]')",
        description="Export a checkpoint to an ONNX model folder: model.onnx (dynamic batch, tokens and samples), "
                    "config, processor and onnx_config.json. `predict --model OUT`, `demo --model OUT` and "
                    "pipeline('emotion-multimodal', model=OUT) load it as they load a checkpoint, on onnxruntime.",
    )
    export.add_argument("checkpoint", help="a checkpoint folder (config.json, *.safetensors, processor files)")
    export.add_argument("out", help="the ONNX model folder to write (never left half-written)")
    export.add_argument("--int8", action="store_true",
                        help="int8 weights for every Linear layer (dynamic quantization); the conv feature encoder "
                             "stays float32")
    export.add_argument("--opset", type=int, default=None, help="ONNX opset, 18 or newer (default: 18)")
    export.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    export.set_defaults(func=run_export)

    if with_make_sample:
        from .data.sample import add_make_sample_parser  # imports datasets: only when asked for

        add_make_sample_parser(commands)
    else:
        commands.add_parser("make-sample", help="write a synthetic KEMDy19/KEMDy20 release (see make-sample -h)",
                            add_help=False)
    return parser


# ---------------------------------------------------------------------------------------------------- predict
def find_audio_files(paths: list[str]) -> list[Path]:
    """Expand folders (recursively, sorted) into their audio files; files are kept as given, even missing ones."""
    files = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES))
        else:
            files.append(path)
    return files


def read_transcript(audio_path: Path) -> str | None:
    """The cleaned transcript in `audio_path`'s same-stem .txt (UTF-8 or cp949), or None when there is none."""
    transcript = audio_path.with_suffix(".txt")
    if not transcript.is_file():
        return None
    from .data.text import clean_transcript, decode_transcript

    text, _ = decode_transcript(transcript.read_bytes(), "utf-8")
    return clean_transcript(text)


def run_predict(args: argparse.Namespace) -> int:
    files = find_audio_files(args.audio)
    if not files:
        raise CommandError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {' '.join(args.audio)}.")
    if args.text is not None and len(args.text) != len(files):
        raise CommandError(
            f"--text gives {len(args.text)} transcript(s) for {len(files)} audio file(s); give one per file, in "
            "order, or none to read a same-stem .txt next to each file."
        )
    if args.segment is not None and args.chunk_length_s is not None:
        raise CommandError("--segment and --chunk-length-s cannot be used together: --segment cuts recordings at "
                           "their utterances, --chunk-length-s into fixed windows.")
    if args.format == "vtt":
        if args.segment is None and args.chunk_length_s is None:
            raise CommandError("--format vtt writes a timeline: pass --segment utterances (or --chunk-length-s).")
        if len(files) != 1:
            raise CommandError(f"--format vtt writes the cues of one recording; {len(files)} audio files were given "
                               "(use --format csv for several).")
    classifier = _load_pipeline(args)
    options = {key: value for key, value in (("top_k", args.top_k), ("threshold", args.threshold),
               ("chunk_length_s", args.chunk_length_s), ("stride_length_s", args.stride_length_s),
               ("segment", args.segment), ("on_empty_transcript", args.on_empty_transcript)) if value is not None}

    from tqdm.auto import tqdm

    results: list[dict] = []
    batch = max(1, args.batch_size)
    with tqdm(total=len(files), unit="file", file=sys.stderr, disable=args.no_progress) as progress:
        for start in range(0, len(files), batch):
            paths = files[start : start + batch]
            inputs = [predict_input(path, None if args.text is None else args.text[start + offset], classifier)
                      for offset, path in enumerate(paths)]
            outputs = classifier(inputs, batch_size=batch, errors="return", **options)
            results.extend(file_entry(path, item, output, classifier)
                           for path, item, output in zip(paths, inputs, outputs))
            progress.update(len(paths))

    if args.format == "csv":
        write_csv(results, sys.stdout)
    elif args.format == "vtt":
        write_vtt(results[0], sys.stdout)
    else:
        json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    failed = sum("error" in entry for entry in results)
    if failed:
        print(f"kemd-emotion: {failed} of {len(results)} file(s) could not be scored.", file=sys.stderr)
    return 1 if failed == len(results) else 0


def predict_input(path: Path, text: str | None, classifier) -> dict:
    """One file's pipeline input: the recording, and its transcript (--text, else its same-stem .txt; none: the
    pipeline transcribes it, or answers that it has none)."""
    if text is None and classifier.needs_text:
        text = read_transcript(path)
    return {"audio": str(path)} if text is None else {"audio": str(path), "text": text}


def timeline(entry: dict) -> list[dict]:
    """The scored parts of one file's entry: its utterances, else its windows, else the file as one part."""
    if "utterances" in entry:
        return entry["utterances"]
    if "chunks" in entry:
        return entry["chunks"]
    return [entry]


def write_csv(entries: list[dict], stream) -> None:
    """One row per utterance (or window, or file) of every entry: `CSV_COLUMNS`; labels joined with ';', times in
    seconds (empty for a whole file), the error's message for a file that could not be scored, the note for one
    without speech."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        if "error" in entry:
            writer.writerow([entry["audio"], "", "", "", "", "", "", entry["error"]["message"]])
            continue
        if not timeline(entry):
            writer.writerow([entry["audio"], "", "", "", "", "", entry.get("text", ""), entry.get("note", "")])
        for part in timeline(entry):
            transcript = part.get("transcript", part.get("text", ""))
            writer.writerow([entry["audio"], part.get("start", ""), part.get("end", ""), ";".join(part["labels"]),
                             f"{part['arousal']:.4f}", f"{part['valence']:.4f}", transcript, ""])


def vtt_time(seconds: float) -> str:
    """WebVTT's cue time: ``hh:mm:ss.mmm``.

    >>> vtt_time(3725.5)
    '01:02:05.500'
    """
    milliseconds = int(round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def vtt_text(text: str) -> str:
    """Text safe inside a cue: WebVTT reads '&' and '<' as markup, and a blank line ends the cue."""
    return " ".join(text.replace("&", "&amp;").replace("<", "&lt;").split())


def write_vtt(entry: dict, stream) -> None:
    """One recording's timeline as WebVTT: one cue per utterance (or window): its labels, arousal and valence, then
    its transcript. A file that could not be scored, or holds no speech, gets a NOTE saying why and no cue."""
    stream.write("WEBVTT\n\n")
    stream.write(f"NOTE {vtt_text(entry['audio'])}\n\n")
    if "error" in entry:
        stream.write(f"NOTE {vtt_text(entry['error']['message'])}\n\n")
        return
    if "note" in entry:
        stream.write(f"NOTE {vtt_text(entry['note'])}\n\n")
    for number, part in enumerate(timeline(entry), 1):
        stream.write(f"{number}\n{vtt_time(part['start'])} --> {vtt_time(part['end'])}\n")
        stream.write(f"{', '.join(part['labels'])} (arousal {part['arousal']:.2f}, valence {part['valence']:.2f})\n")
        if part.get("transcript"):
            stream.write(vtt_text(part["transcript"]) + "\n")
        stream.write("\n")


FIELD_NAMES = {"audio": "the recording", "text": "the transcript"}
"""How the command names an input's fields in its messages (the file is named by its entry)."""


def file_entry(path: Path, item: dict, output: dict, classifier) -> dict:
    """One file's JSON entry: the pipeline's output ("text": what the text model read), or
    ``{"audio", "error": {"field", "code", "message", "expected"}}``, also reported on stderr."""
    entry = {"audio": str(path), **({"text": item["text"]} if "text" in item else {})}
    if "error" not in output:
        entry.update(output)
        if "transcript" in entry:
            entry["text"] = entry.pop("transcript")
        return entry
    problem = classifier.InputProblem.from_dict(output["error"])
    subject = FIELD_NAMES.get((problem.field or "").split(".")[0], "the input")
    message = problem.describe(subject, command_hint(problem, path))
    entry["error"] = {"field": problem.field, "code": problem.code, "message": message, "expected": problem.expected}
    from tqdm import tqdm

    tqdm.write(f"kemd-emotion: {path}: {message}", file=sys.stderr)  # above the progress bar
    return entry


def command_hint(problem, path: Path) -> str | None:
    """The command's own advice for a missing or wordless transcript (its options, not the pipeline's arguments)."""
    from .inputs_klue_wav2vec2 import MISSING, NO_WORDS

    if problem.field == "text" and problem.code == MISSING:
        return (f"Pass --text, put {path.with_suffix('.txt').name} next to the recording, or pass --asr-model ID to "
                "transcribe it.")
    if problem.field == "text" and problem.code == NO_WORDS:
        return "Pass --text for it, or --on-empty-transcript speech_only to score it from its speech."
    return None


def _load_pipeline(args: argparse.Namespace):
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from . import EmotionMultimodalPipeline  # registers the task

    # Passed only when asked for: the pipeline code of an older Hub checkpoint knows no ASR options.
    asr = {} if args.asr_model is None else {"asr_model": args.asr_model}
    if args.asr_language is not None:
        if args.asr_model is None:
            raise CommandError("--asr-language needs --asr-model: it is the language of the speech-recognition model.")
        language = None if args.asr_language == "auto" else args.asr_language
        asr["asr_kwargs"] = {"generate_kwargs": {"language": language}}
    # Quiet loading (no weight-loading bar, no warnings): stdout is JSON and stderr the progress of the files.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        classifier = pipeline(
            "emotion-multimodal", model=args.model, device=args.device,
            trust_remote_code=args.trust_remote_code or None, **asr,
        )
    except (OSError, ValueError, TypeError, ImportError) as error:
        # TypeError: pipeline code of a checkpoint older than --asr-model; ImportError: an ONNX folder without onnxruntime
        raise CommandError(f"could not load a model from {args.model!r}: {error}") from error
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if not isinstance(classifier, EmotionMultimodalPipeline) and not hasattr(classifier, "needs_text"):
        raise CommandError(f"{args.model!r} did not give an emotion-multimodal pipeline.")
    return classifier


# ---------------------------------------------------------------------------------------------------- card, push
def run_card(args: argparse.Namespace) -> int:
    from .experiment.model_card import write_model_card
    from .experiment.rows import PROSODY_FUSION, parse_row
    from .experiment.run_directory import finished_runs, row_folders

    run_dir = Path(args.run_dir)
    rows = [args.row] if args.row else [name for name in row_folders(run_dir) if finished_runs(run_dir, name)
                                        and parse_row(name).fusion != PROSODY_FUSION]  # the baseline has no card
    if not rows:
        raise CommandError(f"{str(run_dir)!r} holds no finished fold ({{row}}/[seed*/]fold*/metrics.json).")
    if args.checkpoint_dir and len(rows) > 1:
        raise CommandError(f"--checkpoint-dir needs --row: the run has {', '.join(rows)}.")
    for row in rows:
        try:
            path = write_model_card(run_dir, row, args.checkpoint_dir, model_id=args.model_id)
        except ValueError as error:
            raise CommandError(str(error)) from error
        print(path)
    return 0


def run_push(args: argparse.Namespace) -> int:
    from .hub import push_checkpoint

    try:
        commit = push_checkpoint(args.checkpoint_dir, args.repo_id, private=args.private or None,
                                 revision=args.revision, create_pr=args.create_pr, commit_message=args.commit_message)
    except ValueError as error:
        raise CommandError(str(error)) from error
    print(getattr(commit, "pr_url", None) or getattr(commit, "commit_url", commit))
    return 0


# ---------------------------------------------------------------------------------------------------- export
def run_export(args: argparse.Namespace) -> int:
    from .onnx import DEFAULT_OPSET, export_onnx

    try:
        out = export_onnx(args.checkpoint, args.out, opset=DEFAULT_OPSET if args.opset is None else args.opset,
                          quantize="int8" if args.int8 else None, overwrite=args.overwrite)
    except (ValueError, ImportError) as error:
        raise CommandError(str(error)) from error
    print(out)
    return 0


# ---------------------------------------------------------------------------------------------------- demo
def run_demo(args: argparse.Namespace) -> int:
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise CommandError(f"--threshold must be between 0 and 1; got {args.threshold}.")
    try:
        import gradio  # noqa: F401
    except ImportError as error:
        raise CommandError(f"the demo needs Gradio: pip install 'kemd-emotion[demo]' ({error}).") from error
    from .demo import launch_demo

    try:
        launch_demo(args.model, host=args.host, port=args.port, device=args.device, threshold=args.threshold,
                    asr_model=args.asr_model)
    except (OSError, ValueError) as error:
        raise CommandError(f"could not start the demo on {args.model!r}: {error}") from error
    return 0


if __name__ == "__main__":
    sys.exit(main())
