"""Does the embedded default hear what it should on more than one corpus? (issue 24)

Runs `examples/run_emotion.py` with the embedded default (no encoders given: the `sample` preset, its rows, 5
session folds, seed 42) on two corpora in the KEMDy20 layout whose speech comes from different sources:

- ``sample``: the default sample corpus (this package's own synthesiser, `kemd-emotion make-sample`);
- ``espeak``: the espeak-ng corpus (`kemd-emotion make-sample --voice espeak`: eight Korean espeak-ng voices, one
  per session, arousal in the engine's pitch / rate / amplitude, other sentences).

It prints both tables and, with ``--write``, puts them into benchmarks/README.md between the
``embedded-default-corpora`` markers. What to read in them: speech alone should learn arousal (CCC arousal well
above 0, and read against the eGeMAPS row), text alone valence, and both fused rows should beat both single
modalities on CCC avg by more than the fold spread. Not a timed test: about 2 x 10 minutes on 2 CPU cores.

    python benchmarks/bench_embedded_default_corpora.py [--out runs/corpora] [--write] [-- extra run_emotion args]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "benchmarks" / "README.md"
START, END = "<!-- embedded-default-corpora:start -->", "<!-- embedded-default-corpora:end -->"
CORPORA = {"sample": "builtin", "espeak": "espeak"}


def run_corpus(kind: str, out: Path, extra: list[str]) -> tuple[str, float, dict]:
    from kemd_emotion.data import write_sample_corpus
    from kemd_emotion.data.sample import MANIFEST_FILENAME

    corpus = out / f"{kind}_corpus"
    if not (corpus / MANIFEST_FILENAME).exists():
        write_sample_corpus(corpus, voice=CORPORA[kind], size="default", overwrite=True)
    command = [sys.executable, str(REPO / "examples" / "run_emotion.py"), "--data_dir", str(corpus),
               "--fold_by", "session", "--output_dir", str(out / kind), "--disable_tqdm", "true", *extra]
    started = time.time()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    subprocess.run(command, check=True, cwd=REPO, env=env)
    seconds = time.time() - started
    summary = json.loads((out / kind / "summary.json").read_text(encoding="utf-8"))
    table = (out / kind / "summary.md").read_text(encoding="utf-8")
    return table, seconds, summary


def first_table(markdown: str) -> str:
    """The main table (header to the majority row) of a summary.md."""
    match = re.search(r"^\| Model .*?(?=\n\n)", markdown, flags=re.S | re.M)
    return match.group(0) if match else markdown


def checks(summary: dict) -> list[str]:
    """The issue's conditions on one corpus, as lines (met / not met, with the numbers)."""
    rows = summary["rows"]
    mean = {name: {m: 100 * row["metrics"][m]["mean"] for m in ("ccc_arousal", "ccc_valence", "ccc_avg")}
            for name, row in rows.items()}
    spread = {name: 100 * row["metrics"]["ccc_avg"]["std"] for name, row in rows.items()}
    lines = []
    if "speech" in mean:
        lines.append(f"speech CCC arousal {mean['speech']['ccc_arousal']:.1f} (>= 25: "
                     f"{'met' if mean['speech']['ccc_arousal'] >= 25 else 'NOT met'})")
    if "text" in mean:
        lines.append(f"text CCC valence {mean['text']['ccc_valence']:.1f}")
    for fused in ("cat", "add"):
        if fused in mean and "text" in mean and "speech" in mean:
            best_single = max(mean["text"]["ccc_avg"], mean["speech"]["ccc_avg"])
            margin = mean[fused]["ccc_avg"] - best_single
            widest = max(spread[fused], spread["text"], spread["speech"])
            lines.append(f"{fused} CCC avg {mean[fused]['ccc_avg']:.1f}: {margin:+.1f} over the better single "
                         f"modality (fold spread up to {widest:.1f}: {'met' if margin > widest else 'NOT met'})")
    if "prosody" in mean and "speech" in mean:
        gap = mean["speech"]["ccc_arousal"] - mean["prosody"]["ccc_arousal"]
        lines.append(f"speech vs eGeMAPS CCC arousal: {gap:+.1f}"
                     + (" (the deep speech row is BELOW the eGeMAPS baseline)" if gap < 0 else ""))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/corpora", help="where the corpora and runs go")
    parser.add_argument("--corpora", default="sample,espeak")
    parser.add_argument("--write", action="store_true", help="put the tables into benchmarks/README.md")
    parser.add_argument("extra", nargs="*", help="more run_emotion.py arguments (after --)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    sections = []
    for kind in args.corpora.split(","):
        table, seconds, summary = run_corpus(kind, out, args.extra)
        facts = "\n".join(f"- {line}" for line in checks(summary))
        section = (f"**{kind}** corpus ({summary.get('num_rows', '?')} utterances; {seconds / 60:.1f} min here):\n\n"
                   f"{first_table(table)}\n\n{facts}\n")
        print(section, flush=True)
        sections.append(section)
    if args.write:
        text = README.read_text(encoding="utf-8")
        block = START + "\n" + "\n".join(sections) + END
        if START in text:
            text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
        else:
            text += "\n" + block + "\n"
        README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
