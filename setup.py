"""Metadata lives in setup.cfg. The model-card template lives in the top-level model_cards/ (the design card's
layout); a build copies it into the package so that a non-editable install can still write cards."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithModelCards(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "kemd_emotion" / "model_cards"
        target.mkdir(parents=True, exist_ok=True)
        for template in Path(__file__).resolve().parent.glob("model_cards/*.md"):
            shutil.copy2(template, target / template.name)


setup(cmdclass={"build_py": BuildWithModelCards})
