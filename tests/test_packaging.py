"""What a wheel of Helpmate carries: the code and the files the code loads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_the_wheel_ships_the_sentiment_weights_and_the_migrations(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(REPO), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("helpmate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "assistant" / "sentiment" / "weights").iterdir())
    assert shipped and set(shipped) <= names
    assert {"assistant/database/migrations/env.py", "assistant/database/migrations/versions/0001_initial.py"} <= names
