"""The Gradio demo: record or upload an utterance, type its transcript, see the emotions and arousal/valence.

    kemd-emotion demo --model CHECKPOINT [--host 127.0.0.1 --port 7860]
    KEMD_EMOTION_MODEL=me/kemd-add python -m kemd_emotion.demo        # the Space pattern (see examples/space/)

The page shows (a) the seven emotion scores as bars, each with the decision threshold the pipeline applies marked,
and the predicted labels; (b) arousal and valence as a point on the circumplex; (c) for recordings longer than the
model's audio crop, a timeline of per-window emotions and arousal/valence (the pipeline's `chunk_length_s`); with
"Cut at utterances" ticked, a timeline of the recording's utterances instead (the pipeline's `segment="utterances"`),
with a table of each utterance's start, end, labels, arousal, valence and transcript under it. Bad
input (no audio, a file that is not audio, an empty transcript, a recording over the length limit) is answered with
a message on the page, never a stack trace, and the server keeps answering.

Needs the `demo` extra: ``pip install "kemd-emotion[demo]"`` (Gradio).
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .inputs_klue_wav2vec2 import LONG_INPUT_SECONDS, MISSING

logger = logging.getLogger(__name__)

MODEL_ENV = "KEMD_EMOTION_MODEL"
"""Environment variable naming the checkpoint (folder or Hub id) when the demo runs as a Space / `python -m`."""
MAX_AUDIO_SECONDS = LONG_INPUT_SECONDS
"""Longer recordings are refused from their header, before decoding: the demo scores whole recordings window by
window (the pipeline's `max_input_seconds`)."""
MAX_FILE_SIZE = "200mb"
WINDOW_BATCH_SIZE = 8
"""Windows of a long recording scored per forward pass (a 10-minute recording in 2 s windows: 0.7 s instead of 44 s
with the tiny test model on this 2-core machine)."""
EXAMPLES = (  # (category, speaker gender, seconds, seed): short utterances from the sample-corpus synthesiser
    ("happy", "F", 1.6, 4),
    ("angry", "M", 1.6, 1),
    ("sad", "F", 1.8, 7),
    ("neutral", "M", 1.5, 1),
)
LONG_EXAMPLE = (("neutral", 4.0), ("angry", 4.0), ("sad", 4.0))
"""Parts of the example that is longer than any model's crop, to show the timeline."""
QUADRANTS = (  # (valence, arousal) of the label, text
    (4.0, 4.6, "excited, happy"),
    (2.0, 4.6, "tense, angry"),
    (2.0, 1.4, "sad, tired"),
    (4.0, 1.4, "calm, content"),
)


class DemoError(ValueError):
    """A problem with what the user gave; its message is shown on the page as it is. `problem`: the pipeline's
    structured `InputProblem`."""

    def __init__(self, message: str, problem=None):
        super().__init__(message)
        self.problem = problem


# ---------------------------------------------------------------------------------------------------- the model
def load_classifier(model, *, device: str | int | None = "cpu", asr_model: str | None = None):
    """`model` (a checkpoint folder, a Hub id, or an already built emotion-multimodal pipeline) -> the pipeline.

    `asr_model`, when given, is passed to `pipeline()` for pipelines that transcribe recordings themselves.
    """
    if not isinstance(model, (str, os.PathLike)):
        if not hasattr(model, "model") or not hasattr(model.model, "config"):
            raise TypeError(f"model must be a checkpoint folder, a Hub id or a pipeline; got {type(model).__name__}.")
        return model
    from transformers import pipeline

    import kemd_emotion  # noqa: F401  registers the task

    path = os.fspath(model)
    if (os.path.isabs(path) or path.startswith(".")) and not os.path.isdir(path):
        raise ValueError(f"there is no checkpoint folder {path!r}.")
    options = {} if asr_model is None else {"asr_model": asr_model}
    try:
        return pipeline("emotion-multimodal", model=path, device=device, **options)
    except TypeError as error:
        if asr_model is not None and "asr_model" in str(error):
            raise ValueError(f"this version of the emotion pipeline cannot transcribe (asr_model): {error}") from error
        raise


def decision_thresholds(config, threshold: float | None = None) -> list[float]:
    """The score above which each emotion is predicted, in `config.id2label` order: `config.thresholds_for`, the
    rule the pipeline applies (`threshold` for every emotion, else the config's own, else 0.5)."""
    return config.thresholds_for(threshold)


# ---------------------------------------------------------------------------------------------------- examples
def write_examples(directory: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Synthesise the example clips into `directory`; returns `(wav path, transcript, label)` per example."""
    import soundfile

    from .data.sample import synthesize_utterance

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    examples = []
    for category, gender, seconds, seed in EXAMPLES:
        text, audio = synthesize_utterance(category, seconds, gender=gender, seed=seed)
        path = directory / f"{category}.wav"
        soundfile.write(path, audio, 16_000, subtype="PCM_16")
        examples.append((str(path), text, f"{category} ({seconds:g} s)"))
    texts, parts = [], []
    for number, (category, seconds) in enumerate(LONG_EXAMPLE):
        text, audio = synthesize_utterance(category, seconds, gender="F", seed=10 + number)
        texts.append(text)
        parts.append(audio)
    path = directory / "long_neutral_angry_sad.wav"
    soundfile.write(path, np.concatenate(parts), 16_000, subtype="PCM_16")
    total = sum(seconds for _, seconds in LONG_EXAMPLE)
    examples.append((str(path), " ".join(texts), f"{' → '.join(c for c, _ in LONG_EXAMPLE)} ({total:g} s, timeline)"))
    return examples


# ---------------------------------------------------------------------------------------------------- one request
FIELD_NAMES = {"audio": "The recording", "text": "The transcript"}
"""How the page names an input's fields in its messages."""
PAGE_HINTS = {
    ("audio", MISSING): "Upload an audio file or record one with the microphone.",
    ("text", MISSING): "Type or paste what is said in the recording.",
}
"""The page's own advice for a problem (field, code), instead of the pipeline's (which speaks of arguments)."""


def page_message(problem) -> str:
    """An `InputProblem` in the page's words: "The recording is 6.2 ms long; ...", with the page's own hints."""
    field = (problem.field or "").split(".")[0]
    return problem.describe(FIELD_NAMES.get(field, "The input"), PAGE_HINTS.get((field, problem.code)))


def predict(classifier, audio_path, text, *, threshold: float | None = None,
            max_seconds: float = MAX_AUDIO_SECONDS, segment: bool = False) -> dict:
    """Score one request as the page does; returns the pipeline's output plus `"duration"` and `"window_seconds"`.

    The pipeline reads the recording (refusing one over `max_seconds` from its header). A recording longer than the
    model's audio crop is scored in windows of the crop's length (the output then has the pipeline's `"chunks"`); a
    shorter one is one window, scored whole. An empty transcript is left out, so that a pipeline with a speech
    recogniser transcribes the recording. With `segment`, the recording is cut at its utterances instead
    (the pipeline's `segment="utterances"`; the output keeps its `"utterances"`, and `"duration"` is the last
    utterance's end). Raises `DemoError` with a message for the page.
    """
    needs_audio = classifier.model.config.uses_audio
    item = {"audio": audio_path} if audio_path else {}
    if (text or "").strip():
        item["text"] = text.strip()
    crop = getattr(classifier.processor, "max_audio_seconds", None)
    options = {"max_input_seconds": max_seconds, **({} if threshold is None else {"threshold": threshold})}
    if needs_audio and segment:
        options.update(segment="utterances", batch_size=WINDOW_BATCH_SIZE)
    elif needs_audio and crop is not None:  # windows of equal length in batches: many times faster than one by one
        options.update(chunk_length_s=crop, batch_size=WINDOW_BATCH_SIZE)
    output = classifier(item, errors="return", **options)
    if "error" in output:
        problem = classifier.InputProblem.from_dict(output["error"])
        raise DemoError(page_message(problem), problem)
    if "utterances" in output:
        utterances = output["utterances"]
        return {**output, "duration": utterances[-1]["end"] if utterances else 0.0, "window_seconds": None}
    chunks = output.pop("chunks", None)
    duration = chunks[-1]["end"] if chunks else 0.0
    windowed = bool(chunks) and len(chunks) > 1
    if windowed:
        output["chunks"] = chunks
    return {**output, "duration": duration, "window_seconds": crop if windowed else None}


# ---------------------------------------------------------------------------------------------------- what is shown
def summary_markdown(output: dict, thresholds: Mapping[str, float]) -> str:
    """The status line: predicted labels, arousal and valence, and how the recording was scored."""
    if "utterances" in output and not output["utterances"]:
        return f"### No speech found\n\n{output['note'][0].upper()}{output['note'][1:]}."
    labels = output["labels"]
    scores = {e["label"]: e["score"] for e in output["emotions"]}
    above = [label for label in labels if scores.get(label, 1.0) > thresholds[label]]
    note = "" if above else " (no emotion reached its threshold: the one nearest its threshold is given)"
    lines = [
        f"### Predicted: {', '.join(f'**{label}**' for label in labels)}{note}",
        *([f"Transcribed by the speech recogniser: “{output['transcript']}”"]
          if output.get("transcript_source") == "asr" else []),
        f"Arousal **{output['arousal']:.2f}** (1 calm … 5 excited) · "
        f"valence **{output['valence']:.2f}** (1 unpleasant … 5 pleasant)",
    ]
    if output.get("utterances"):
        lines.append(f"{len(output['utterances'])} utterance(s) found and scored one by one; these numbers are their "
                     "duration-weighted mean, the timeline below shows each utterance.")
    elif output.get("chunks"):
        windows = len(output["chunks"])
        lines.append(
            f"The {output['duration']:.1f} s recording was scored in {windows} windows of {output['window_seconds']:g}"
            " s (the model's audio length); these numbers are their mean, the timeline below shows each window."
        )
    elif output.get("duration"):
        lines.append(f"Scored the whole {output['duration']:.1f} s recording.")
    return "\n\n".join(lines)


UTTERANCE_HEADERS = ["start (s)", "end (s)", "labels", "arousal", "valence", "transcript"]


def utterance_table(output: dict) -> list[list]:
    """Rows `[start, end, labels, arousal, valence, transcript]`, one per utterance in time order, as shown under the
    utterance timeline (`[]` without utterances).

    >>> utterance_table({"utterances": [{"start": 0.5, "end": 2.25, "labels": ["happy", "neutral"], "arousal": 3.14159,
    ...                                  "valence": 3.9, "transcript": "좋아요"}]})
    [['0.50', '2.25', 'happy, neutral', '3.14', '3.90', '좋아요']]
    """
    return [[f"{u['start']:.2f}", f"{u['end']:.2f}", ", ".join(u["labels"]), f"{u['arousal']:.2f}",
             f"{u['valence']:.2f}", u.get("transcript") or ""] for u in output.get("utterances") or []]


def score_table(output: dict, thresholds: Mapping[str, float]) -> list[list]:
    """Rows `[emotion, score, threshold, predicted]`, best first, as shown under the bars."""
    labels = set(output["labels"])
    return [[e["label"], f"{e['score']:.3f}", f"{thresholds[e['label']]:.2f}", "yes" if e["label"] in labels else ""]
            for e in output["emotions"]]


def emotion_figure(output: dict, thresholds: Mapping[str, float]):
    """Horizontal bars of the emotion scores, best on top; predicted ones coloured; each threshold marked."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    emotions = output["emotions"][::-1]
    labels = set(output["labels"])
    figure = Figure(figsize=(6.0, 3.7), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    rows = np.arange(len(emotions))
    colours = ["#e4572e" if e["label"] in labels else "#9bb1c8" for e in emotions]
    axes.barh(rows, [e["score"] for e in emotions], color=colours, height=0.7)
    for row, emotion in zip(rows, emotions):
        axes.plot([thresholds[emotion["label"]]] * 2, [row - 0.45, row + 0.45], color="black", linewidth=2)
        axes.text(1.02, row, f"{emotion['score']:.2f}", va="center", fontsize=9, transform=axes.get_yaxis_transform())
    axes.set_yticks(rows, [e["label"] for e in emotions])
    axes.set_xlim(0, 1)
    axes.set_title("Emotion scores", fontsize=11, loc="left")
    axes.set_xlabel("score (independent per emotion: they need not sum to 1)")
    axes.legend(handles=[Line2D([], [], color="#e4572e", linewidth=6, label="predicted (above its threshold, else the nearest)"),
                         Line2D([], [], color="black", linewidth=2, label="decision threshold")],
                loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=8, frameon=False)
    return figure


def circumplex_figure(output: dict):
    """Arousal (y) against valence (x) on the 1-5 scale, quadrants labelled; windows as a faint path."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2, 4.2), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.axhline(3, color="#bbbbbb", linewidth=1)
    axes.axvline(3, color="#bbbbbb", linewidth=1)
    for valence, arousal, text in QUADRANTS:
        axes.text(valence, arousal, text, ha="center", va="center", fontsize=9, color="#777777")
    chunks = output.get("chunks") or []
    if chunks:
        axes.plot([c["valence"] for c in chunks], [c["arousal"] for c in chunks], "-o", color="#9bb1c8",
                  markersize=3, linewidth=1, label="windows")
    axes.plot([output["valence"]], [output["arousal"]], "o", color="#e4572e", markersize=11,
              label="this recording" if not chunks else "mean")
    axes.set_xlim(1, 5)
    axes.set_ylim(1, 5)
    axes.set_aspect("equal")
    axes.set_title("Arousal and valence", fontsize=11, loc="left")
    axes.set_xlabel("valence (1 unpleasant … 5 pleasant)")
    axes.set_ylabel("arousal (1 calm … 5 excited)")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, fontsize=8, frameon=False)
    return figure


def window_edges(chunks: Sequence[Mapping]) -> np.ndarray:
    """Edges of one cell per window for a timeline: midpoints between window centres, from 0 to the last end.

    >>> window_edges([{"start": 0.0, "end": 2.0}, {"start": 2.0, "end": 4.0}, {"start": 3.0, "end": 5.0}]).tolist()
    [0.0, 2.0, 3.5, 5.0]
    """
    centres = np.array([(c["start"] + c["end"]) / 2 for c in chunks])
    return np.concatenate([[chunks[0]["start"]], (centres[1:] + centres[:-1]) / 2, [chunks[-1]["end"]]])


def utterance_edges(utterances: Sequence[Mapping]) -> tuple[np.ndarray, list[int]]:
    """Edges of the cells of an utterance timeline (each utterance's own start and end, a blank cell for each pause
    between them) and the cell of each utterance.

    >>> edges, cells = utterance_edges([{"start": 0.5, "end": 2.0}, {"start": 3.0, "end": 4.0}])
    >>> edges.tolist(), cells
    ([0.5, 2.0, 3.0, 4.0], [0, 2])
    """
    edges = np.array([time for u in utterances for time in (u["start"], u["end"])], dtype=np.float64)
    return edges, list(range(0, 2 * len(utterances), 2))


def timeline_figure(output: dict, emotion_names: Sequence[str]):
    """Per-window (or per-utterance, the pipeline's `"utterances"`: pauses left blank) emotion scores (a heat map,
    predicted ones dotted) above their arousal and valence."""
    from matplotlib.figure import Figure

    utterances = output.get("utterances")
    chunks = utterances or output["chunks"]
    if utterances:
        edges, cells = utterance_edges(utterances)
        centres = np.array([(u["start"] + u["end"]) / 2 for u in utterances])
    else:
        edges = window_edges(chunks)
        cells = list(range(len(chunks)))
        centres = (edges[1:] + edges[:-1]) / 2
    scores = np.full((len(emotion_names), edges.shape[0] - 1), np.nan)
    for cell, c in zip(cells, chunks):
        row_scores = {e["label"]: e["score"] for e in c["emotions"]}
        scores[:, cell] = [row_scores.get(name, np.nan) for name in emotion_names]
    figure = Figure(figsize=(9.0, 4.6), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    mesh = top.pcolormesh(edges, np.arange(len(emotion_names) + 1), scores, cmap="Blues", vmin=0, vmax=1)
    for row, name in enumerate(emotion_names):
        hits = [centre for centre, c in zip(centres, chunks) if name in c["labels"]]
        top.plot(hits, [row + 0.5] * len(hits), "o", color="#e4572e", markersize=4)
    top.set_yticks(np.arange(len(emotion_names)) + 0.5, emotion_names)
    top.invert_yaxis()
    top.set_title(f"Timeline: emotion scores per {'utterance' if utterances else 'window'} (red dot: predicted), then "
                  "arousal and valence", fontsize=11, loc="left")
    figure.colorbar(mesh, ax=top, label="score", fraction=0.03)
    bottom.plot(centres, [c["arousal"] for c in chunks], "-o", markersize=3, label="arousal", color="#e4572e")
    bottom.plot(centres, [c["valence"] for c in chunks], "-o", markersize=3, label="valence", color="#3b7dd8")
    bottom.axhline(3, color="#bbbbbb", linewidth=1)
    bottom.set_ylim(1, 5)
    bottom.set_ylabel("1 … 5")
    bottom.set_xlabel("time in the recording (s)")
    bottom.legend(loc="upper right", fontsize=8, ncols=2)
    return figure


# ---------------------------------------------------------------------------------------------------- the app
def model_description(name: str, classifier, thresholds: Sequence[float]) -> str:
    config = classifier.model.config
    crop = getattr(classifier.processor, "max_audio_seconds", None)
    distinct = sorted(set(thresholds))
    threshold_text = f"{distinct[0]:g} for every emotion" if len(distinct) == 1 else "per emotion (see the table)"
    return (
        f"Model `{html.escape(name)}` · fusion `{config.fusion}` · the model hears {crop:g} s at a time "
        f"(longer recordings are scored window by window) · decision threshold {threshold_text}."
        if crop else f"Model `{html.escape(name)}` · fusion `{config.fusion}` · decision threshold {threshold_text}."
    )


def build_demo(model, *, device: str | int | None = "cpu", threshold: float | None = None,
               asr_model: str | None = None, max_audio_seconds: float = MAX_AUDIO_SECONDS,
               examples_dir: str | os.PathLike | None = None, title: str = "Korean speech emotion (kemd-emotion)"):
    """The demo as a `gr.Blocks` (not launched).

    Args:
        model: a checkpoint folder, a Hub id or an emotion-multimodal pipeline.
        device: where a model loaded from a folder or id runs.
        threshold: a decision threshold for every emotion, overriding the model's own (see `decision_thresholds`).
        asr_model: passed to `pipeline()` (for pipelines that can transcribe); the transcript may then be left empty.
        max_audio_seconds: longer recordings are refused with a message.
        examples_dir: where the example clips are written (default: a folder in the system's temporary directory,
            which Gradio serves).
        title: the page's title.
    """
    import gradio as gr

    classifier = load_classifier(model, device=device, asr_model=asr_model)
    config = classifier.model.config
    emotion_names = [config.id2label[i] for i in range(config.num_labels)]
    thresholds_list = decision_thresholds(config, threshold)
    thresholds = dict(zip(emotion_names, thresholds_list))
    transcribes = getattr(classifier, "can_transcribe", False)
    name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else getattr(config, "_name_or_path", "") or "?"
    if examples_dir is None:
        examples_dir = Path(tempfile.gettempdir()) / "kemd_emotion_demo_examples"
    example_rows = write_examples(examples_dir)

    def analyse(audio_path, text, segment=False):
        try:
            output = predict(classifier, audio_path, text, threshold=threshold, max_seconds=max_audio_seconds,
                             segment=bool(segment))
        except DemoError as error:
            raise gr.Error(str(error), duration=None,
                           print_exception=False) from None
        except Exception:  # never a stack trace on the page; the log keeps it
            logger.exception("the demo failed on an input")
            raise gr.Error("Something went wrong while scoring this input (the details are in the server's log). "
                           "Please try another recording.", duration=None,
                           print_exception=False) from None
        utterances = output.get("utterances")
        drawn = bool(output.get("chunks") or utterances)
        scored = output["arousal"] is not None  # no speech found: nothing was scored
        pipeline_output = {key: value for key, value in output.items() if key not in ("duration", "window_seconds")}
        return (
            summary_markdown(output, thresholds),
            score_table(output, thresholds),
            emotion_figure(output, thresholds) if scored else None,
            circumplex_figure(output) if scored else None,
            gr.update(value=timeline_figure(output, emotion_names) if drawn else None, visible=drawn),
            gr.update(value=utterance_table(output), visible=bool(utterances)),
            pipeline_output,
        )

    def clear():
        return ("*Analysing…*", None, None, None, gr.update(value=None, visible=False),
                gr.update(value=None, visible=False), None)

    def not_analysed():
        return "**Not analysed.** The reason is in the red message box; change the input and press Analyse again."

    with gr.Blocks(title=title, analytics_enabled=False) as demo:  # no calls home from a local demo
        gr.Markdown(f"# {title}\n{model_description(name, classifier, thresholds_list)}\n\n"
                    "Upload a recording or record one, type what is said, and press **Analyse**. The seven emotions "
                    "are scored independently (a recording can be both sad and angry); arousal and valence are on "
                    "the corpus' 1-5 rating scale.")
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording",
                                 elem_id="recording")
                transcript = gr.Textbox(label="Transcript (Korean)", lines=2, elem_id="transcript",
                                        placeholder="e.g. 오늘 정말 기분이 좋아요"
                                        + (" (leave empty to transcribe the recording)" if transcribes else ""))
                cut = gr.Checkbox(label="Cut at utterances", value=False, elem_id="cut-at-utterances",
                                  info="Score a conversation utterance by utterance (cut at its pauses, or at the "
                                       "speech recogniser's segments when it transcribes), as a timeline",
                                  visible=classifier.model.config.uses_audio)
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
                gr.Examples(examples=[[path, text] for path, text, _ in example_rows], inputs=[audio, transcript],
                            example_labels=[label for _, _, label in example_rows],
                            label="Examples (click one, then Analyse): synthetic utterances whose words carry "
                                  "valence and whose voice carries arousal")
                circumplex = gr.Plot(label="Arousal and valence", show_label=False, format="png",
                                     elem_id="circumplex")
            with gr.Column(scale=3):
                status = gr.Markdown("*Results appear here.*", elem_id="status")
                bars = gr.Plot(label="Emotion scores", show_label=False, format="png", elem_id="emotion-bars")
                table = gr.Dataframe(headers=["emotion", "score", "threshold", "predicted"], interactive=False,
                                     label="Scores", elem_id="scores", datatype="str")
        timeline = gr.Plot(label="Timeline", show_label=False, format="png", elem_id="timeline", visible=False)
        utterance_rows = gr.Dataframe(headers=UTTERANCE_HEADERS, interactive=False, label="Utterances",
                                      elem_id="utterances", datatype="str", visible=False, wrap=True)
        with gr.Accordion("Pipeline output (JSON)", open=False):
            raw = gr.JSON(elem_id="pipeline-output")
        outputs = [status, table, bars, circumplex, timeline, utterance_rows, raw]
        event = button.click(clear, outputs=outputs, queue=False, api_visibility="private")
        event = event.then(analyse, inputs=[audio, transcript, cut], outputs=outputs, api_name="analyse",
                           show_progress_on=status)  # one spinner (and no "Error" badge on every output)
        event.failure(not_analysed, outputs=status, queue=False, api_visibility="private")
    demo.queue(default_concurrency_limit=1)
    return demo


def launch_demo(model, host: str = "127.0.0.1", port: int = 7860, **options):
    """Build the demo and serve it on `host:port` until interrupted; `options` go to `build_demo`."""
    demo = build_demo(model, **options)
    demo.launch(server_name=host, server_port=port, show_error=False, max_file_size=MAX_FILE_SIZE,
                allowed_paths=[], footer_links=["api", "gradio"])
    return demo


def main() -> None:
    """`python -m kemd_emotion.demo` and a Space's app.py: the model comes from `$KEMD_EMOTION_MODEL`."""
    model = os.environ.get(MODEL_ENV)
    if not model:
        raise SystemExit(f"Set {MODEL_ENV} to a checkpoint folder or Hub id (e.g. {MODEL_ENV}=me/kemd-add).")
    launch_demo(model, host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if os.environ.get("SPACE_ID") else
                                           "127.0.0.1"),
                port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))


if __name__ == "__main__":
    main()
