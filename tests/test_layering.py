"""The package's layers, read from the source with `ast`: no module imports a higher layer, the code copied next to
checkpoints imports only itself, no product module imports the tests, and no test module imports another.

`LAYERS` is the one statement of the order; the README's "Architecture" section lists it (checked here too). A
new module fails `test_every_module_has_a_layer` until it is placed.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "kemd_emotion"
TESTS = REPO / "tests"

LAYERS = (
    ("checkpoint code", ("configuration_klue_wav2vec2", "modeling_klue_wav2vec2", "processing_klue_wav2vec2",
                         "inputs_klue_wav2vec2", "pipeline_emotion", "transcription_klue_wav2vec2",
                         "segmentation_klue_wav2vec2", "onnxruntime_klue_wav2vec2",
                         "evaluate_metric")),
    ("library", ("kemd_emotion", "wordpiece", "metrics", "data", "small_encoders")),
    ("training and sharing", ("trainer", "hub", "onnx")),
    ("experiment", ("experiment",)),
    ("interfaces", ("cli", "demo", "handler")),
)
"""Bottom to top. A module may import its own layer and those below it. Names are the package's modules and
subpackages (``data`` is every ``kemd_emotion.data.*``); ``kemd_emotion`` is the package's ``__init__`` (the
public API, which registers the Auto classes and the pipeline task)."""

CHECKPOINT_CODE = ("configuration_klue_wav2vec2", "modeling_klue_wav2vec2", "processing_klue_wav2vec2",
                   "inputs_klue_wav2vec2", "pipeline_emotion", "transcription_klue_wav2vec2",
                   "segmentation_klue_wav2vec2", "onnxruntime_klue_wav2vec2")
"""Copied next to saved checkpoints (and ONNX folders) and loaded with `trust_remote_code` where this package is
not installed: they import each other with single-dot relative imports, and nothing else of the package."""

SELF_CONTAINED = ("handler", "evaluate_metric")
"""Copied on their own (handler.py into every checkpoint; the metric module to a Space): nothing of the package."""


def module_name(path: Path, root: Path) -> str:
    """The name `path` is imported by when `root`'s parent is on sys.path (``kemd_emotion.data.kemdy``)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path, PACKAGE): path for path in sorted(PACKAGE.rglob("*.py"))}


def name_in_tests(path: Path) -> str:
    """The name a file under tests/ is imported by (pytest puts tests/ on sys.path): ``test_hub``, ``helpers.runs``."""
    parts = list(path.relative_to(TESTS).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = package_modules()


def imports(path: Path, name: str) -> list[tuple[str, int, int]]:
    """``(imported module, relative level, line)`` for every import in the file, inside functions too; relative
    imports resolved (``from . import x`` names the submodule x when there is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if node.module is None:
                found += [(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target, node.level,
                           node.lineno) for alias in node.names]
            else:
                found.append((target, node.level, node.lineno))
    return found


def own_module(target: str) -> str | None:
    """The package module `target` is (or lies in), or None for another package's."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def layer_name(module: str) -> str:
    """``kemd_emotion.data.collator`` -> ``data``; ``kemd_emotion`` -> ``kemd_emotion``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


LAYER_OF = {name: index for index, (_, names) in enumerate(LAYERS) for name in names}


def test_every_module_has_a_layer():
    unplaced = sorted(module for module in MODULES if layer_name(module) not in LAYER_OF)
    assert not unplaced, f"put these modules in a layer of LAYERS (and the README's Architecture): {unplaced}"
    assert len(LAYER_OF) == sum(len(names) for _, names in LAYERS), "a name is in two layers"
    assert not set(LAYER_OF) - {layer_name(module) for module in MODULES}, "LAYERS names a module that is gone"


def test_no_module_imports_a_higher_layer():
    upward = []
    for module, path in MODULES.items():
        here = LAYER_OF[layer_name(module)]
        for target, _, line in imports(path, module):
            imported = own_module(target)
            if imported is not None and LAYER_OF[layer_name(imported)] > here:
                upward.append(f"{path.relative_to(REPO)}:{line} ({LAYERS[here][0]}) imports {imported} "
                              f"({LAYERS[LAYER_OF[layer_name(imported)]][0]})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_checkpoint_code_imports_only_itself_with_single_dot_imports():
    from kemd_emotion.hub import REMOTE_CODE_FILES
    from kemd_emotion.onnx import ONNX_CODE_FILE

    copied = {Path(name).stem for name in (*REMOTE_CODE_FILES, ONNX_CODE_FILE)}
    assert copied == set(CHECKPOINT_CODE)
    wrong = []
    for stem in CHECKPOINT_CODE:
        module = f"kemd_emotion.{stem}"
        for target, level, line in imports(MODULES[module], module):
            imported = own_module(target)
            if imported is None:
                continue
            if level != 1 or imported.split(".")[-1] not in CHECKPOINT_CODE:
                wrong.append(f"kemd_emotion/{stem}.py:{line} imports {target} (level {level})")
    assert not wrong, "checkpoint code must import only checkpoint code, with 'from .x import':\n" + "\n".join(wrong)


def test_self_contained_files_import_nothing_of_the_package():
    wrong = [f"{path.relative_to(REPO)}:{line} imports {target}"
             for module, path in MODULES.items() if layer_name(module) in SELF_CONTAINED
             for target, _, line in imports(path, module)
             if own_module(target) is not None and layer_name(own_module(target)) != layer_name(module)]
    assert not wrong, "\n".join(wrong)


def test_no_product_module_imports_the_tests():
    test_modules = {path.stem for path in TESTS.glob("*.py")} | {"tests", "helpers"}
    wrong = [f"{path.relative_to(REPO)}:{line} imports {target}" for module, path in MODULES.items()
             for target, _, line in imports(path, module) if target.split(".")[0] in test_modules]
    assert not wrong, "\n".join(wrong)


def test_no_test_module_imports_another():
    """Shared test code lives in tests/helpers/ (a package); conftest.py is pytest's, never imported."""
    test_modules = {path.stem for path in TESTS.glob("*.py")}
    wrong = []
    for path in sorted(TESTS.rglob("*.py")):
        for target, level, line in imports(path, name_in_tests(path)):
            top = target.split(".")[0]
            if (level == 0 and top in test_modules) or top == "tests":
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert not wrong, "test modules import test modules (move what they share to tests/helpers/):\n" + "\n".join(wrong)


def test_the_readme_states_the_layers():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Architecture"):]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    lines = {line.split("**")[1]: line for line in section.splitlines() if line.startswith(tuple(
        f"{number}. **" for number in range(1, len(LAYERS) + 1)))}
    assert list(lines) == [name for name, _ in LAYERS], "the README's Architecture lists other layers"
    for name, modules in LAYERS:
        missing = [module for module in modules if f"`{module}" not in lines[name]]
        assert not missing, f"the README's layer {name!r} does not name {missing}"


@pytest.mark.parametrize("source, expected", [
    ("from .modeling_klue_wav2vec2 import X", [("kemd_emotion.modeling_klue_wav2vec2", 1)]),
    ("from . import data", [("kemd_emotion.data", 1)]),
    ("from .. import cli", [("kemd_emotion.cli", 2)]),
    ("def f():\n    import kemd_emotion.experiment.fold as fold", [("kemd_emotion.experiment.fold", 0)]),
])
def test_imports_are_read_as_python_resolves_them(tmp_path, source, expected):
    path = tmp_path / "probe.py"
    path.write_text(source)
    name = "kemd_emotion.experiment.probe" if "cli" in source else "kemd_emotion.probe"
    assert [(target, level) for target, level, _ in imports(path, name)] == expected
