"""The rows of the table: a fusion, optionally with modifiers that change the model options for that row alone.

A row is not a fusion: a row name is the model's fusion (``text``, ``speech``, ``cat``, ``add``, and any other the
config accepts) followed by modifiers joined with ``+``: ``cat+rare`` is the cat model with the rare-emotion
settings (positive weights from each fold's training rows and per-emotion decision thresholds tuned on a held-out
slice of them), ``cat+hidden`` the cat model on wav2vec2's last hidden state. Every row of a run shares the run's other options, seeds and folds,
so rows can be compared fold by fold; each row trains in its own folder, ``OUTPUT_DIR/{row}/``.

>>> [row.name for row in parse_rows("cat+rare,all")]
['text', 'speech', 'cat', 'add', 'cat+rare']
>>> row = parse_row("add+rare")
>>> row.fusion, row.model_options
('add', {'emotion_pos_weight': 'auto', 'tune_thresholds': True})
>>> row.options
{'fusion': 'add', 'emotion_pos_weight': 'auto', 'tune_thresholds': True}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..configuration_klue_wav2vec2 import AUDIO_REPRESENTATIONS, FUSIONS, fusion_modalities

PROSODY_FUSION = "prosody"
"""A row that is not a model fusion: eGeMAPS functionals with a linear head (`kemd_emotion.experiment.prosody_row`)."""
ROW_FUSIONS = (*FUSIONS, PROSODY_FUSION)
PAPER_ROWS = ("text", "speech", "cat", "add")
"""The paper's four rows, in the table's order (``--rows all``)."""

RARE_EMOTION_OPTIONS = {"emotion_pos_weight": "auto", "tune_thresholds": True}
MODIFIERS: dict[str, dict[str, object]] = {
    "rare": RARE_EMOTION_OPTIONS,
    "posweight": {"emotion_pos_weight": "auto"},
    "thresholds": {"tune_thresholds": True},
    **{representation: {"audio_representation": representation} for representation in AUDIO_REPRESENTATIONS},
}
"""Modifier -> the model options it sets for its row."""

MODIFIER_TITLES = {
    "rare": "rare-emotion settings",
    "posweight": "positive weights",
    "thresholds": "tuned thresholds",
    "conv": "conv features",
    "hidden": "last hidden layer",
    "weighted": "all layers weighted",
}
FUSION_TITLES = {"text": "Text only", "speech": "Speech only", "cat": "Cat (concatenation)",
                 "add": "Add (projection + sum)", "cross": "Cross (cross-modal attention)",
                 PROSODY_FUSION: "eGeMAPS functionals + linear head"}

ROW_SETS: dict[str, tuple[str, ...]] = {
    "all": PAPER_ROWS,
    "full": PAPER_ROWS + ("cat+posweight", "add+posweight", "cat+thresholds", "cat+rare", "cross", "cross+posweight",
                          "cat+weighted", "cat+weighted+posweight", "cross+weighted+posweight"),
}
"""Named lists of rows: ``all`` is the paper's four (the embedded default's: under 10 minutes on 2 CPU cores);
``full`` every row of the main table in docs/results.md (about 40 minutes on 2 CPU cores)."""


@dataclass(frozen=True)
class TableRow:
    """One row: its name (also its folder), its model's fusion, its modifiers and the model options they set."""

    name: str
    fusion: str
    """The model's fusion (`KlueWav2Vec2EmotionConfig.fusion`): ``cat`` for the row ``cat+rare``."""
    modifiers: tuple[str, ...] = ()
    model_options: dict = field(default_factory=dict, compare=False, hash=False)
    """The `ModelArguments` values its modifiers set, over the run's (``{"emotion_pos_weight": "auto", ...}``)."""

    @property
    def options(self) -> dict:
        """Everything the row sets, as ``run_args.json`` and ``metrics.json`` record it: the fusion, then the
        modifiers' model options."""
        return {"fusion": self.fusion, **self.model_options}

    def model_arguments(self, model_args):
        """The run's `model_args` (a `ModelArguments`) with what this row's modifiers set."""
        return dataclasses.replace(model_args, **self.model_options)

    @property
    def title(self) -> str:
        base = FUSION_TITLES.get(self.fusion, self.fusion)
        return base + "".join(f" + {MODIFIER_TITLES.get(name, name)}" for name in self.modifiers)


def parse_row(name: str) -> TableRow:
    """``"cat+rare"`` -> its `TableRow`; raises a ValueError naming the accepted fusions and modifiers."""
    fusion, *modifiers = [part.strip() for part in str(name).split("+")]
    expected = (f"a fusion ({', '.join(ROW_FUSIONS)}) optionally followed by modifiers joined with '+' "
                f"({', '.join(MODIFIERS)}), e.g. 'cat+rare'")
    if fusion not in ROW_FUSIONS or any(modifier not in MODIFIERS for modifier in modifiers):
        raise ValueError(f"row {name!r}: expected {expected}.")
    if len(set(modifiers)) != len(modifiers):
        raise ValueError(f"row {name!r}: a modifier is repeated; expected {expected}.")
    options = {}
    for modifier in modifiers:
        clash = {key for key in MODIFIERS[modifier] if key in options and options[key] != MODIFIERS[modifier][key]}
        if clash:
            raise ValueError(f"row {name!r}: {modifier!r} sets {', '.join(sorted(clash))} again, differently.")
        options.update(MODIFIERS[modifier])
    if fusion == PROSODY_FUSION and set(options) - {"fusion", "emotion_pos_weight"}:
        raise ValueError(f"row {name!r}: the prosody row takes only the posweight modifier.")
    if fusion in FUSIONS and not fusion_modalities(fusion)[1] and "audio_representation" in options:
        raise ValueError(f"row {name!r}: a text-only row has no speech features to choose.")
    return TableRow("+".join([fusion, *modifiers]), fusion, tuple(modifiers), options)


def parse_rows(value: str) -> list[TableRow]:
    """``--rows``: row names and row sets (``all``, ``full``), comma-separated -> the rows, each once.

    The paper's rows come first in the paper's order, then the others in the order given.
    """
    names = []
    for part in (part.strip() for part in str(value).split(",")):
        if part:
            names.extend(ROW_SETS.get(part, (part,)))
    if not names:
        raise ValueError(f"--rows {value!r}: expected row names or {', '.join(ROW_SETS)}, comma-separated.")
    try:
        rows = list({row.name: row for row in map(parse_row, names)}.values())
    except ValueError as error:
        raise ValueError(f"--rows {value!r}: {error} Row sets: {', '.join(ROW_SETS)}.") from None
    paper = [row for name in PAPER_ROWS for row in rows if row.name == name]
    return paper + [row for row in rows if row.name not in PAPER_ROWS]


def is_row_name(name: str) -> bool:
    """Whether `name` (a folder of a run directory) is a row's folder."""
    try:
        return parse_row(name).name == name
    except ValueError:
        return False


__all__ = ["PAPER_ROWS", "MODIFIERS", "ROW_SETS", "TableRow", "parse_row", "parse_rows", "is_row_name",
           "RARE_EMOTION_OPTIONS"]
