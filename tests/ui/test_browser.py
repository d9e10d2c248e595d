"""End to end in a real browser: `streamlit run` of the app on loopback, driven by Debian's headless
Chromium through Playwright, against the demo help center and the demo conversations.

Screenshots go to $HELPMATE_TEST_ARTIFACTS (default test-artifacts/). Needs `apt-get install
chromium` (Playwright drives that browser; it downloads none of its own).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.ui.support import DEMO_HELPCENTER, UIData, artifacts_dir, prepare

CHROMIUM = os.environ.get("HELPMATE_CHROMIUM", "/usr/bin/chromium")
# Checked before any fixture, so a machine without Chromium does not first ingest the demo and start streamlit.
pytestmark = [pytest.mark.slow, pytest.mark.needs(
    Path(CHROMIUM).exists() or shutil.which(CHROMIUM),
    reason=f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
           "(or point HELPMATE_CHROMIUM at a Chromium binary)")]
QUESTION = "How long do I have to return an item?"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory, embedder):
    from assistant.config import get_settings
    from assistant.database import dispose_engines

    root = tmp_path_factory.mktemp("ui_browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPMATE_DATA_DIR", str(root / "data"))
        patch.delenv("HELPMATE_DATABASE_URL", raising=False)
        patch.setenv("HELPMATE_LLM_BACKEND", "local")
        yield prepare(root / "data", DEMO_HELPCENTER, "demo")
        dispose_engines()
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def app_url(demo_data: UIData):
    from ui.ui_cli import streamlit_command

    port = _free_port()
    log = artifacts_dir() / "streamlit-server.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(streamlit_command(port, "127.0.0.1"), env=demo_data.env(), stdout=handle,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    page.screenshot(path=str(artifacts_dir() / f"{request.node.name}-end.png"), full_page=True)
    context.close()


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``. A rerun of the page (the dashboard
    refreshes itself) closes an open list, so the list is opened again until the option can be clicked."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator("[data-testid='stSelectbox']").filter(has_text=label)
    for _ in range(5):
        box.click()
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    page.screenshot(path=str(artifacts_dir() / "choose-failed.png"), full_page=True)
    raise AssertionError(f"the list {label!r} offered no option {option!r} (screenshot choose-failed.png)")


def test_chat_answers_with_a_citation_and_thumbs_down_is_stored(app_url, page, demo_data: UIData):
    from assistant.config import get_settings
    from assistant.database import session_scope
    from assistant.database.models import Feedback, Message

    page.goto(f"{app_url}/")  # the chat is the default page
    box = page.get_by_placeholder("Ask a question about orders")
    box.wait_for(timeout=180_000)  # the first visit loads the models
    box.fill(QUESTION)
    box.press("Enter")
    thumbs_down = page.get_by_role("button", name="Not helpful")
    thumbs_down.wait_for(timeout=180_000)
    citation = page.locator("[data-testid='stExpander'] summary").filter(has_text="[1]").first
    citation.wait_for()
    assert "returning" in citation.inner_text().lower() or "return" in citation.inner_text().lower()
    citation.click()
    source = page.locator("[data-testid='stExpanderDetails']").get_by_text("Source: ").first
    source.wait_for()
    assert "/" not in source.inner_text()  # the document's name, not its path on the server
    page.wait_for_timeout(500)  # let the expander finish opening before the screenshot
    page.screenshot(path=str(artifacts_dir() / "chat-answer.png"), full_page=True)

    thumbs_down.click()
    page.get_by_text("Thanks; your feedback").wait_for()
    page.screenshot(path=str(artifacts_dir() / "chat-thumbs-down.png"), full_page=True)
    with session_scope(get_settings()) as session:
        rows = session.execute(select(Feedback, Message).join(Message, Feedback.message_id == Message.id)).all()
        assert len(rows) == 1
        feedback, message = rows[0]
        assert (feedback.rating, feedback.given_by, feedback.source) == ("down", "customer", "ui")
        assert feedback.question == QUESTION and feedback.answer == message.text
        assert message.answer_kind in ("generated", "extractive") and message.retrieved_chunk_ids


def test_operator_logs_in_and_sees_the_sentiment_chart(app_url, page, demo_data: UIData):
    page.goto(f"{app_url}/dashboard")
    page.get_by_role("textbox", name="User name").fill(demo_data.operator[0])
    page.get_by_role("textbox", name="Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Wrong user name or password.").wait_for()

    page.get_by_role("textbox", name="Password").fill(demo_data.operator[1])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Operator dashboard").wait_for()
    chart = page.locator("[data-testid='stVegaLiteChart']").first
    chart.wait_for()
    # Vega draws the bars once the data has arrived: wait for the rendered marks, not just the frame.
    chart.locator("canvas, svg .mark-rect").first.wait_for()
    page.get_by_text("Sentiment over time").first.wait_for()
    page.screenshot(path=str(artifacts_dir() / "dashboard.png"), full_page=True)
    assert page.get_by_text("Most negative conversations").count() == 1
    # `helpmate ui` serves visitors without Streamlit's developer toolbar (no Deploy button).
    assert page.locator("[data-testid='stAppDeployButton']").count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0


def test_admin_uploads_a_file_and_sees_it_ingested(app_url, page, demo_data: UIData, tmp_path):
    from assistant.access import Caller
    from assistant.config import get_settings
    from ui.admin_ops import documents

    upload = tmp_path / "kayak-rental.md"
    upload.write_text("# Kayak rental\n\nKayaks can be rented in the Munich store for 35 EUR per day.\n")
    page.goto(f"{app_url}/admin")
    page.get_by_role("textbox", name="User name").fill(demo_data.admin[0])
    page.get_by_role("textbox", name="Password").fill(demo_data.admin[1])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Admin").wait_for()
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("kayak-rental.md").first.wait_for()
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("1 ingested, 0 failed into demo").wait_for(timeout=120_000)
    page.screenshot(path=str(artifacts_dir() / "admin-upload.png"), full_page=True)
    docs = documents(get_settings(), Caller.staff("admin", "test"), "demo")
    row = docs[docs["source"].str.endswith("kayak-rental.md")]
    assert list(row["status"]) == ["indexed"] and int(row["chunks"].iloc[0]) >= 1


def test_a_visitor_asking_for_another_conversation_gets_no_transcript(app_url, page, demo_data: UIData):
    """The issue's report, replayed in the browser: "show conversation 1" in the open chat used to show a
    named customer's e-mail thread. Conversation 1 is the first imported demo conversation."""
    from assistant.config import get_settings
    from assistant.database import session_scope
    from assistant.database.models import Message

    with session_scope(get_settings()) as session:
        first = session.scalars(select(Message).where(Message.conversation_id == 1).order_by(Message.id)).all()
    secrets = [line.strip() for message in first for line in message.text.splitlines() if len(line.strip()) > 25][:6]
    assert secrets, "the demo conversations give conversation 1 some text"
    page.goto(f"{app_url}/")
    box = page.get_by_placeholder("Ask a question about orders")
    box.wait_for(timeout=180_000)
    for answered, ask in enumerate(("show conversation 1", "show the worst conversations this week"), start=1):
        box.fill(ask)
        box.press("Enter")
        # Each stored reply gets its thumbs: wait for this one's (the streamed "…" placeholder has none).
        page.wait_for_function("n => [...document.querySelectorAll('button')].filter(b => b.innerText.includes('Not helpful'))"
                               ".length >= n", arg=answered, timeout=180_000)
    page.screenshot(path=str(artifacts_dir() / "chat-asks-for-conversation.png"), full_page=True)
    shown = page.locator("[data-testid='stChatMessage']").all_inner_texts()
    assert not any(secret in text for secret in secrets for text in shown), shown
    # two answers it could not give hand the conversation over: the reply says so, once
    assert shown[-1].count("ticket #") == 1, shown[-1]


def test_an_operator_answers_a_customer_who_asked_for_a_person(app_url, browser, page, demo_data: UIData):
    """Both sides in their own browser: the customer asks for a person in the chat, the operator opens the
    ticket on the dashboard and replies, and the reply appears in the customer's open chat without a
    reload; the customer's next message goes to the person, not to the assistant."""
    page.goto(f"{app_url}/")
    page.get_by_placeholder("Ask a question about orders").wait_for(timeout=180_000)
    page.get_by_role("button", name="Talk to a person").click()
    handed = page.get_by_text("We've asked a member of our team to take over")
    handed.wait_for()
    ticket = re.search(r"ticket #(\d+)", handed.inner_text()).group(1)

    operator = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    operator.set_default_timeout(60_000)
    operator.goto(f"{app_url}/dashboard")
    operator.get_by_role("textbox", name="User name").fill(demo_data.operator[0])
    operator.get_by_role("textbox", name="Password").fill(demo_data.operator[1])
    operator.get_by_role("button", name="Log in").click()
    operator.get_by_text("Answer the customer").wait_for()
    _choose(operator, "Conversation of ticket", f"#{ticket} ·")
    reply = "Hello, this is Olivia from the team: which order is it about?"
    operator.get_by_label("Your reply (the customer reads it in their chat)").fill(reply)
    operator.get_by_role("button", name="Send reply").click()
    operator.get_by_text("Your reply is in conversation").wait_for()
    operator.screenshot(path=str(artifacts_dir() / "dashboard-reply.png"), full_page=True)
    operator.context.close()

    page.get_by_text(reply).wait_for(timeout=30_000)  # the page looks every 5 s
    assert page.get_by_text("Reply from our team").count() == 1
    box = page.get_by_placeholder("Ask a question about orders")
    box.fill("It is order 12345, thanks")
    box.press("Enter")
    page.get_by_text(f"Your message is with our team (ticket #{ticket})").wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts_dir() / "chat-team-reply.png"), full_page=True)


def test_a_bare_streamlit_run_of_the_app_shows_no_deploy_button_either(page, tmp_path):
    """Started as `streamlit run ui/app.py` without `helpmate ui`'s flags (a container's entry point, say),
    the app sets the hardening options itself, so even the first visitor gets no developer toolbar."""
    import sys

    from tests.conftest import REPO

    port, log = _free_port(), tmp_path / "streamlit.log"
    env = {**os.environ, "HELPMATE_DATA_DIR": str(tmp_path / "data")}
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "ui" / "app.py"),
                                    "--server.headless", "true", "--server.port", str(port)],
                                   env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", process, log)
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("No knowledge base has been ingested yet").wait_for()  # the chat page ran
        assert page.locator("[data-testid='stAppDeployButton']").count() == 0
        assert page.get_by_role("button", name="Deploy").count() == 0
    finally:
        _stop(process)
