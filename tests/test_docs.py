"""The README is a front door and `docs/` holds the rest: every page is linked, every link and anchor resolves, and
every command a page shows exists (its subcommand, its options, its make target), so the pages cannot drift from
the code. The preset table's check lives in test_run_emotion (it is generated from the presets)."""

import re
import shlex
from pathlib import Path

import pytest

from kemd_emotion.cli import build_parser
from kemd_emotion.experiment.arguments import argument_parser

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_LIMIT = 12_000
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
MACHINE_TEXT = ("../shared", "this 2-core", "this machine", "this CPU")


def ids(pages):
    return [str(page.relative_to(REPO)) for page in pages]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped (but - and _), spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"^#{1,6} ", line)}


def shell_lines(page: Path) -> list[str]:
    """The commands of a page's code blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in FENCE.findall(page.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("  #")[0].split(" # ")[0].strip()
            if command and not command.startswith(("#", ">>>", "...", "{", "[")):
                lines.append(command)
    return lines


def test_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text) < README_LIMIT, f"README.md has {len(text)} characters; move detail into docs/"
    assert "pip install" in text and 'pipeline("emotion-multimodal"' in text
    assert "make run" in text and "make test" in text


def test_every_docs_page_is_linked_from_the_readme():
    linked = {target.split("#")[0] for target in LINK.findall(README.read_text(encoding="utf-8"))}
    assert DOCS, "docs/ holds no page"
    missing = [str(page.relative_to(REPO)) for page in DOCS if str(page.relative_to(REPO)) not in linked]
    assert not missing, f"pages not linked from the README: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert not broken, f"{page.name}: links that do not resolve: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_pages_speak_of_the_package_not_of_the_machine_they_were_written_on(page):
    text = page.read_text(encoding="utf-8")
    assert not [phrase for phrase in MACHINE_TEXT if phrase in text]


def options_of(parser) -> set[str]:
    return set(parser._option_string_actions)


def test_option_parsers_are_found():
    """The checks below are only as good as the parsers they read: they must know the options pages use."""
    assert {"--rows", "--fusion", "--preset", "--output_dir"} <= options_of(argument_parser())
    assert "predict" in subcommands()


def subcommands() -> dict:
    parser = build_parser()
    action = next(action for action in parser._actions if action.dest == "command")
    return action.choices


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_every_command_a_page_shows_exists(page):
    experiment_options, commands = options_of(argument_parser()), subcommands()
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    wrong = []
    for line in shell_lines(page):
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if "examples/run_emotion.py" in words:
            after = words[words.index("examples/run_emotion.py") + 1:]
            wrong += [f"{word} ({line})" for word in after
                      if word.startswith("--") and word.split("=")[0] not in experiment_options]
        if words[0] == "kemd-emotion" and len(words) > 1 and not words[1].startswith("-"):
            if words[1] not in commands:
                wrong.append(f"kemd-emotion {words[1]} ({line})")
            else:
                known = options_of(commands[words[1]])
                wrong += [f"{word} ({line})" for word in words[2:]
                          if word.startswith("--") and word.split("=")[0] not in known]
        if words[0] == "make" and len(words) > 1 and not words[1].startswith("-") and "=" not in words[1]:
            if words[1] not in targets:
                wrong.append(f"make {words[1]} ({line})")
    assert not wrong, f"{page.name} shows commands or options that do not exist: {wrong}"
