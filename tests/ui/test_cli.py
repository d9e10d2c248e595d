"""`helpmate ui`: starts Streamlit on the app, prints the local URL, and the app answers there."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from tests.conftest import REPO



def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ui_command_prints_the_url_and_serves_the_app(tmp_path):
    port = _free_port()
    env = dict(os.environ, HELPMATE_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    command = [sys.executable, "-c", "import typer; from ui.ui_cli import ui; typer.run(ui)", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first_line, first_line
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    assert response.read().decode() == "ok"
                    break
            except OSError:
                assert time.monotonic() < deadline, "streamlit did not start within 90 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200 and "<div id=\"root\">" in response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=20)
    # The command became the server, so stopping it leaves nothing listening.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_ui_command_refuses_a_bad_port():
    from typer.testing import CliRunner
    import typer

    from ui.ui_cli import ui

    app = typer.Typer()
    app.command()(ui)
    result = CliRunner().invoke(app, ["--port", "70000"])
    assert result.exit_code == 1 and "between 1 and 65535" in result.output


def test_the_served_app_hides_error_details_and_the_developer_toolbar():
    """Visitors get no tracebacks or exception messages and no Deploy/rerun/clear-cache menu (Streamlit 1.67 options)."""
    from streamlit import config

    from ui.ui_cli import streamlit_command

    command = streamlit_command(8501, "127.0.0.1")
    options = dict(zip(command[5::2], command[6::2]))  # after: python -m streamlit run APP
    assert options["--client.showErrorDetails"] == "none" and options["--client.toolbarMode"] == "viewer"
    for option in ("client.showErrorDetails", "client.toolbarMode"):
        assert option in config._config_options_template  # still options of the installed Streamlit


def test_kb_show_lists_documents_and_prints_a_documents_passages(settings, embedder, tmp_path):
    from typer.testing import CliRunner

    from assistant.cli.kb import kb_app
    from ingest.pipeline import Ingestor
    from tests.helpers import make_helpcenter

    folder = make_helpcenter(tmp_path / "kb")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    Ingestor("help", settings, embedder, show_progress=False).run([folder])
    runner = CliRunner()
    listed = runner.invoke(kb_app, ["show", "help"])
    assert listed.exit_code == 0 and listed.output.startswith("help: 7 documents\nfailed\t0\tpdf\t")
    assert f"indexed\t2\tpdf\t{folder / 'warranty.pdf'}\n" in listed.output
    failed = runner.invoke(kb_app, ["show", "help", "--failed"]).output.splitlines()
    assert failed == ["help: 1 document that failed",
                      f"failed\t0\tpdf\t{folder / 'broken.pdf'}\tnot a valid PDF (EOF marker not found; the file looks truncated)"]
    shown = runner.invoke(kb_app, ["show", "help", "-d", "rental.docx"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"{folder / 'rental.docx'}: 2 passages\n\n[1] Rental program > Deposit · ")
    assert "\nRenting a tent requires a deposit of 100 EUR, refunded when the tent comes back.\n" in shown.output
    missing = runner.invoke(kb_app, ["show", "help", "-d", "nope.md"])
    assert missing.exit_code == 1 and "has no document 'nope.md'" in missing.output and "Traceback" not in missing.output


def test_kb_cli_lists_publishes_and_unpublishes_as_an_audited_local_admin(settings):
    import getpass

    from typer.testing import CliRunner

    from assistant.access import audit_log, public_knowledge_bases
    from assistant.cli.kb import kb_app
    from assistant.database import session_scope
    from assistant.database.models import KnowledgeBase

    runner = CliRunner()
    assert "no knowledge bases yet" in runner.invoke(kb_app, ["list"]).output
    with session_scope(settings) as session:
        session.add_all([KnowledgeBase(name="help"), KnowledgeBase(name="notes")])
    assert runner.invoke(kb_app, ["list"]).output.splitlines() == ["help\tinternal\t0 documents",
                                                                   "notes\tinternal\t0 documents"]
    published = runner.invoke(kb_app, ["publish", "help"])
    assert published.exit_code == 0 and "help is now public" in published.output
    assert public_knowledge_bases(settings) == ["help"]
    assert "help\tpublic" in runner.invoke(kb_app, ["list"]).output
    assert runner.invoke(kb_app, ["unpublish", "help"]).exit_code == 0
    assert public_knowledge_bases(settings) == []
    missing = runner.invoke(kb_app, ["publish", "nope"])
    assert missing.exit_code == 1 and "does not exist" in missing.output and "Traceback" not in missing.output
    assert [(e.actor, e.action, e.detail) for e in reversed(audit_log(settings))] == [
        (getpass.getuser(), "kb.visibility", {"visibility": "public"}),
        (getpass.getuser(), "kb.visibility", {"visibility": "internal"})]


def test_a_mistyped_setting_ends_any_command_with_one_line_naming_it(settings, monkeypatch):
    from typer.testing import CliRunner

    from assistant.config import get_settings
    from ui.cli import app

    monkeypatch.setenv("HELPMATE_LLM_BACKEND", "vlm")
    monkeypatch.setenv("HELPMATE_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/33")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["kb", "list"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == ("error: HELPMATE_LLM_BACKEND: Input should be 'local' or 'vllm' (got 'vlm'); "
                                     "HELPMATE_WEBHOOK_ALLOWED_NETWORKS: '10.0.0.0/33' is not a network; write one "
                                     "like 10.0.0.0/8 or 127.0.0.1/32")


def _commands(command, path=()):
    """Every command of the `helpmate` tree with its path of subcommand names."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_help_page_shows_all_its_words_in_rewrapped_paragraphs():
    """`--help` renders each command's docstring and option help as Markdown, whose paragraphs re-wrap to
    the terminal (Typer's "rich" mode kept every source line break, so help read in ragged pieces). In
    Markdown an <angle-bracket placeholder> would vanish as an HTML tag, so every word must show."""
    import re

    import typer
    from typer.testing import CliRunner

    from ui.cli import app

    word = re.compile(r"[A-Za-z][A-Za-z0-9]{2,}")
    pages = 0
    for path, command in _commands(typer.main.get_command(app)):
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        written = " ".join([command.help or ""] + [getattr(p, "help", None) or "" for p in command.params])
        missing = set(word.findall(written)) - set(word.findall(result.output))
        assert not missing, (path, missing)
        pages += 1
    assert pages > 40
    result = CliRunner().invoke(app, ["eval", "support", "--help"], env={"COLUMNS": "200"})
    assert ("A good check accepts the answers that should be accepted and rejects the others; both rates are "
            "printed, per condition, with the check's time per answer.") in result.output
