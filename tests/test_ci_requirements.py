"""A missing service or data set skips a test on a developer's machine and fails it under CI=true.

Runs a tiny pytest session in a subprocess, with tests/conftest.py loaded as a plugin, once with
CI=true and once without CI (or CI=false), and reads each test's outcome from its JUnit XML report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import REPO

TESTS = '''
import pytest

from tests.conftest import missing, require


def test_service_gone():
    missing("the frobnicator service is not here")


def test_data_present():
    require(True, "never shown")


@pytest.mark.needs(False, reason="the widget data set is not here")
def test_marked_data_gone(tmp_path):
    pass


@pytest.mark.needs(True, reason="never shown")
def test_marked_data_present():
    pass
'''

WHOLE_MODULE = '''
import pytest

pytestmark = pytest.mark.needs(False, reason="the cluster is not here")


def test_on_the_cluster():
    pass


def test_also_on_the_cluster():
    pass
'''


def _outcomes(tmp_path, ci: str | None) -> tuple[dict[str, tuple[str, str]], int]:
    """{test name: (outcome, message)} of the tiny session, and its exit code."""
    folder = tmp_path / ("ci" if ci else "local")
    folder.mkdir()
    (folder / "test_requirements.py").write_text(TESTS)
    (folder / "test_whole_module.py").write_text(WHOLE_MODULE)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if ci is not None:
        env["CI"] = ci
    report = folder / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}",
         f"--rootdir={folder}", "-c", os.devnull, str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )
    assert report.exists(), result.stdout + result.stderr
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        found = [child for child in case if child.tag in {"failure", "error", "skipped"}]
        outcomes[case.get("name")] = (found[0].tag, found[0].get("message", "")) if found else ("passed", "")
    return outcomes, result.returncode


@pytest.mark.parametrize("ci", [None, "false"])
def test_outside_ci_a_missing_requirement_skips(tmp_path, ci):
    outcomes, exit_code = _outcomes(tmp_path, ci)
    assert outcomes == {
        "test_service_gone": ("skipped", "the frobnicator service is not here"),
        "test_data_present": ("passed", ""),
        "test_marked_data_gone": ("skipped", "the widget data set is not here"),
        "test_marked_data_present": ("passed", ""),
        "test_on_the_cluster": ("skipped", "the cluster is not here"),
        "test_also_on_the_cluster": ("skipped", "the cluster is not here"),
    }
    assert exit_code == 0


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_requirement_fails(tmp_path, ci):
    outcomes, exit_code = _outcomes(tmp_path, ci)
    suffix = " (CI=true: a missing requirement fails the run; unset CI to skip instead)"
    assert outcomes == {
        "test_service_gone": ("failure", "Failed: the frobnicator service is not here" + suffix),
        "test_data_present": ("passed", ""),
        # A mark is checked in setup, before the test's fixtures (like skipif): the test errors there.
        "test_marked_data_gone": ("error", "failed on setup with \"Failed: the widget data set is not here" + suffix + '"'),
        "test_marked_data_present": ("passed", ""),
        "test_on_the_cluster": ("error", "failed on setup with \"Failed: the cluster is not here" + suffix + '"'),
        "test_also_on_the_cluster": ("error", "failed on setup with \"Failed: the cluster is not here" + suffix + '"'),
    }
    assert exit_code == 1
