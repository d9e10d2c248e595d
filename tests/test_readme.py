"""Every `helpmate` command line in README.md exists with the options it shows.

Each line of the README's bash blocks that runs `helpmate` is parsed as the shell would and given
to the real command with `--help` appended: Click checks the command path and every option name
before `--help` answers, so a renamed command or option fails here. (What the commands do is
tested beside each package.)
"""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from ui.cli import app


def _command_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if re.search(r"(?:^|\s)helpmate\s", command + " "):
                lines.append(command)
    return lines


LINES = _command_lines()


def test_the_readme_shows_commands():
    assert len(LINES) >= 30


@pytest.mark.parametrize("line", LINES)
def test_each_readme_command_exists_with_its_options(line):
    args = shlex.split(re.split(r"(?:^|\s)helpmate\s", line, maxsplit=1)[1])
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"{line}\n{result.output[-500:]}"


def test_every_setting_is_documented():
    """Each field of the settings object is named, as its HELPMATE_* variable, in README.md or docs/deploy.md."""
    from assistant.config import Settings

    docs = (REPO / "README.md").read_text() + (REPO / "docs" / "deploy.md").read_text()
    missing = [f"HELPMATE_{name.upper()}" for name in Settings.model_fields if f"HELPMATE_{name.upper()}" not in docs]
    assert not missing, f"document these settings in README.md's settings table: {missing}"
