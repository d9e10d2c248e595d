"""What a wheel of Helpmate carries: the code and the files the code loads at run time (weights, migrations)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_the_wheel_ships_the_model_weights_and_the_migrations(tmp_path):
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ and *.egg-info there
    for package in ("assistant", "ingest", "finetune", "ui"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("helpmate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("sentiment/weights", "answering/verifier_weights"):
        shipped = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "assistant" / folder).iterdir())
        assert shipped and set(shipped) <= names, folder
    assert {"assistant/database/migrations/env.py", "assistant/database/migrations/versions/0001_initial.py"} <= names
