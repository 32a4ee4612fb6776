#!/usr/bin/env python3
"""Print a pip constraints file that pins every requirement of setup.cfg (install_requires and the given extras) to
the lowest version its bound claims, so CI can check that the bounds are true.

    python3 .ci/lowest_constraints.py [EXTRA ...] > lowest.txt

A requirement without a lower bound is left to pip. torch is left out: CI keeps the local CPU build (a pinned
old torch would be a multi-GB CUDA download), so torch's lower bound is the one claim this stage does not check.
"""

import configparser
import re
import sys
from pathlib import Path

NOT_PINNED = {"torch"}
LOWER_BOUND = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(.*)$")


def requirements(setup_cfg: Path, extras: list[str]) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    lines = parser["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += parser["options.extras_require"][extra].splitlines()
    return [line.split(";")[0].strip() for line in lines if line.strip()]


def lowest_pins(lines: list[str]) -> list[str]:
    pins = []
    for line in lines:
        name, specifiers = LOWER_BOUND.match(line).groups()
        lowest = [spec.strip()[2:].strip() for spec in specifiers.split(",") if spec.strip().startswith(">=")]
        if name.lower() not in NOT_PINNED and lowest:
            pins.append(f"{name}=={lowest[0]}")
    return pins


if __name__ == "__main__":
    setup_cfg = Path(__file__).resolve().parent.parent / "setup.cfg"
    print("\n".join(lowest_pins(requirements(setup_cfg, sys.argv[1:]))))
