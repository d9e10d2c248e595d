"""The layering contract in pyproject.toml ([tool.importlinter]): imports point down, no cycles.

``lint-imports`` (import-linter) reads the contracts and the code; the first test runs it on the
checkout. The others add one forbidden import to a copy of the code and check that the contract
catches it, so the contract cannot pass by checking nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("assistant", "ingest", "finetune", "ui")


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    """``lint-imports`` on the code under ``root`` (all contracts, or the given contract ids)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [str(Path(sys.executable).parent / "lint-imports"), str(root / "pyproject.toml"), "--no-cache", "--no-logo",
               *(f"--contract={contract}" for contract in contracts)]
    return subprocess.run(command,
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_checkout_keeps_every_contract():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("assistant/retrieval/types.py", "import ingest.pipeline", "packages"),  # assistant never imports ingest
    ("ingest/chunking.py", "import ui.common", "packages"),
    ("assistant/config.py", "import assistant.retrieval.retriever", "assistant"),  # the core imports no capability
    ("assistant/retrieval/retriever.py", "import assistant.llm.factory", "assistant"),  # retrieval needs no language model
    ("assistant/sentiment/model.py", "import assistant.agent.tools", "assistant"),
    ("ingest/chunking.py", "import streamlit", "streamlit"),
    ("assistant/agent/turn.py", "import assistant.agent.agent", "acyclic"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "weights", "*.safetensors"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    assert lint_imports(tmp_path, contract).returncode == 0  # the copy keeps it before the change
    with (tmp_path / module).open("a") as handle:
        handle.write(f"\n{line}  # added by the test\n")
    result = lint_imports(tmp_path, contract)
    assert result.returncode != 0 and "1 broken" in result.stdout, result.stdout
