"""Only the package list lives here; everything else is in pyproject.toml.

Every folder under a mapped stage folder ships (templates, board folders, bundled models):
setuptools wants each one listed as a package, or it prints a "Package would be ignored"
warning per folder, and a list typed by hand goes stale whenever a board folder is added.
"""

import tomllib
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def packages() -> list[str]:
    names = []
    for package, folder in PACKAGE_DIR.items():
        base = ROOT / folder
        names.append(package)
        for sub in sorted(p for p in base.rglob("*") if p.is_dir()):
            parts = sub.relative_to(base).parts
            if "__pycache__" in parts or any(part.startswith(".") for part in parts):
                continue
            names.append(".".join((package, *parts)))
    return names


setup(packages=packages())
