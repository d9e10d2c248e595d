"""The chat widget in a real browser: a plain page on one origin loads /widget.js from `helpmate api`
on another (as a company's website would), with one script tag and a public customer key. Headless
Chromium asks a question, sees the answer with a citation, rates it down (stored for review), finds
the conversation again after a reload, asks for a person (a ticket) and shows that person's replies,
which an operator sends through the API. The API's /docs page renders too. Real uvicorn, the demo help center, the packaged model.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from assistant.database import session_scope
from assistant.database.models import Feedback, Message, Ticket
from tests.api.support import demo_env, headers, key, real_agent, serve
from tests.conftest import REPO
from tests.ui.support import artifacts_dir
from ui.api.app import create_app

CHROMIUM = os.environ.get("HELPMATE_CHROMIUM", "/usr/bin/chromium")
pytestmark = [pytest.mark.slow, pytest.mark.needs(
    Path(CHROMIUM).exists() or shutil.which(CHROMIUM),
    reason=f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
           "(or point HELPMATE_CHROMIUM at a Chromium binary)")]
QUESTION = "How long do I have to return an item?"


@pytest.fixture(scope="module")
def site(tmp_path_factory, embedder, demo_snapshot):
    """The API on the demo help center, and a company page on another port that embeds the widget."""
    root = tmp_path_factory.mktemp("widget")
    with demo_env(root, "sqlite", demo_snapshot, embedder) as settings:
        customer = key(settings, "customer", ("demo",), name="website widget")
        with serve(create_app(settings, agent=real_agent(settings, embedder))) as api:
            page = (REPO / "examples" / "widget.html").read_text()
            page = page.replace("http://127.0.0.1:8080", api).replace("hm_REPLACE_WITH_A_CUSTOMER_KEY", customer)
            (root / "www").mkdir()
            (root / "www" / "index.html").write_text(page)
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root / "www"))
            web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=web.serve_forever, daemon=True).start()
            try:
                yield settings, f"http://127.0.0.1:{web.server_address[1]}/index.html", api
            finally:
                web.shutdown()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        yield tab
        tab.screenshot(path=str(artifacts_dir() / "widget-end.png"))
        browser.close()


def test_the_widget_answers_with_a_citation_takes_a_thumbs_down_and_keeps_the_conversation(site, page):
    from playwright.sync_api import expect

    settings, url, api = site
    page.goto(url)
    page.get_by_role("button", name="Open chat").click()
    box = page.get_by_label("Your message")
    box.fill(QUESTION)
    box.press("Enter")
    thumbs_down = page.get_by_role("button", name="Not helpful")
    thumbs_down.wait_for(timeout=240_000)  # the first answer loads the language model
    citation = page.locator("#helpmate-widget ol.cites summary").first
    assert citation.inner_text().startswith("[") and ".md" in citation.inner_text()
    citation.click()
    assert page.locator("#helpmate-widget ol.cites details[open] p").first.inner_text().strip()
    page.screenshot(path=str(artifacts_dir() / "widget-answer.png"))

    thumbs_down.click()
    page.get_by_text("Thanks for your feedback.").wait_for()
    with session_scope(settings) as session:
        feedback, message = session.execute(select(Feedback, Message).join(Message, Feedback.message_id == Message.id)).one()
        assert (feedback.rating, feedback.given_by, feedback.source, feedback.review_status) == ("down", "customer", "api",
                                                                                                 "pending")
        assert feedback.question == QUESTION and message.retrieved_chunk_ids
        answer, conversation_id = message.text, message.conversation_id
        replaced = message.answer_kind == "extractive"
        assert session.get(Message, message.id - 1).conversation.channel == "widget"
    # the greyed draft the visitor watched is explained when quoted passages replaced it
    assert (page.locator("#helpmate-widget .assistant .why").count() == 1) == replaced

    page.reload()
    page.get_by_role("button", name="Open chat").click()
    page.locator("#helpmate-widget .customer").filter(has_text=QUESTION).wait_for()
    assert page.locator("#helpmate-widget .assistant").filter(has_text=answer[:40]).count() == 1
    assert page.locator("#helpmate-widget ol.cites summary").count() >= 1  # citations come back too
    page.get_by_role("button", name="Talk to a person").click()
    page.get_by_text("ticket #").wait_for()
    page.screenshot(path=str(artifacts_dir() / "widget-handover.png"))
    with session_scope(settings) as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.conversation_id == conversation_id and ticket.status == "open"

    # an operator answers through the API; the open widget shows it as the team's, as text
    operator = key(settings, "operator", name="anna")
    team = "Anna here <b>from the team</b>: your refund left today."
    sent = httpx.post(f"{api}/v1/conversations/{conversation_id}/messages", json={"text": team},
                      headers=headers(operator), timeout=30)
    assert sent.status_code == 201, sent.text
    shown = page.locator("#helpmate-widget .agent")
    shown.filter(has_text=team).wait_for(timeout=30_000)
    assert shown.locator(".who").inner_text() == "Reply from our team" and shown.locator("b").count() == 0
    # with the panel closed, the next reply puts a dot on the bubble
    page.locator("#helpmate-widget .head button[aria-label='Close chat']").click()
    httpx.post(f"{api}/v1/conversations/{conversation_id}/messages", json={"text": "Anything else?"},
               headers=headers(operator), timeout=30).raise_for_status()
    page.locator("#helpmate-widget .bubble.unread").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts_dir() / "widget-team-reply.png"))
    page.get_by_role("button", name="Open chat (a new reply from our team)").click()
    assert page.locator("#helpmate-widget .bubble.unread").count() == 0 and shown.count() == 2
    expect(shown.last).to_be_in_viewport(ratio=1)  # the chat opens scrolled to the newest message
    # the person has the conversation now: the next message goes to them, with a receipt that takes no rating
    ratings = page.locator("#helpmate-widget .rate").count()
    box.fill("It is order 12345, thanks")
    box.press("Enter")
    page.get_by_text(f"Your message is with our team (ticket #{ticket.id})").wait_for(timeout=60_000)
    assert page.locator("#helpmate-widget .rate").count() == ratings
    # one receipt, however many messages follow before the person writes again
    box.fill("And the parcel number is 789.")
    box.press("Enter")
    page.locator("#helpmate-widget .customer").filter(has_text="parcel number is 789").wait_for()
    page.locator("#helpmate-widget .assistant.draft").wait_for(state="detached", timeout=60_000)
    assert page.get_by_text(f"Your message is with our team (ticket #{ticket.id})").count() == 1
    assert page.locator("#helpmate-widget .msg").last.inner_text() == "And the parcel number is 789."


def test_the_api_docs_render_without_any_outside_server(site, page):
    """/docs draws the OpenAPI page from scripts the API serves itself (this machine reaches no CDN)."""
    page.goto(f"{site[2]}/docs")
    page.get_by_text("/v1/chat/completions").first.wait_for()
    assert page.get_by_role("heading", name="Helpmate API").count() >= 1
