"""Customer feedback is untrusted until staff review it: an anonymous chat's ratings and suggested
answers reach neither the training export nor the evaluation gate's held-out set while they are
pending or rejected; approved ones (and staff corrections) reach both.

Real database (SQLite and PostgreSQL), the real chat backend's feedback call, the real
`helpmate finetune export` command and the gate's own selection of held-out examples
(``finetune.evaluation.feedback_items``). No training: the export and the selection decide what the
adapter learns and what it is judged on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from assistant.access import AccessDenied, Caller
from assistant.conversations.feedback import add_feedback, review_feedback
from assistant.database import session_scope
from assistant.database.models import Conversation, Message
from finetune.dataset import is_eval_conversation
from finetune.evaluation import feedback_items
from finetune.loop import new_feedback
from finetune.registry import record_candidate
from ui.chat_backend import give_feedback

EVAL_SHARE = 0.5
OPERATOR = Caller.staff("operator", "olivia", ["help"])
# One made-up word per kind of feedback, in its question, answer and suggestion: found in a file, it
# says which feedback got there.
PENDING, REJECTED, APPROVED, AGENT = "Quokka", "Narwhal", "Axolotl", "Pangolin"


def _conversation(settings, word: str, evaluation: bool) -> tuple[int, int]:
    """A chat conversation about ``word`` on the held-out (``evaluation``) or the training side of
    the split: its id and its assistant answer's message id."""
    now = datetime.now(timezone.utc)
    side = "held out" if evaluation else "trained"  # different texts: identical examples would be de-duplicated
    while True:
        with session_scope(settings) as session:
            conversation = Conversation(channel="chat", kb="help", started_at=now)
            session.add(conversation)
            session.flush()
            if is_eval_conversation(str(conversation.id), EVAL_SHARE) != evaluation:
                continue  # committed but unrated: that conversation stays out of every export
            session.add(Message(conversation_id=conversation.id, role="customer", text=f"What is the {word} program ({side})?",
                                created_at=now))
            answer = Message(conversation_id=conversation.id, role="assistant", text=f"The {word} program does not exist ({side}).",
                             created_at=now + timedelta(seconds=1))
            session.add(answer)
            session.flush()
            return conversation.id, answer.id


def _seed(settings) -> dict[str, list[int]]:
    """For each kind, one suggestion in a held-out conversation and one in a training conversation,
    given through the chat backend as a stranger would (staff: an agent's correction)."""
    ids: dict[str, list[int]] = {}
    for word in (PENDING, REJECTED, APPROVED, AGENT):
        for evaluation in (True, False):
            conversation, answer = _conversation(settings, word, evaluation)
            better = f"The {word} program gives points on every order{' (held out)' if evaluation else ''}."
            if word == AGENT:
                row_id = add_feedback("down", message_id=answer, corrected_answer=better, given_by="agent", settings=settings).id
            else:
                row_id = give_feedback(settings, answer, "down", corrected_answer=better,
                                       caller=Caller.customer(settings, conversation))
            ids.setdefault(word, []).append(row_id)
    for row_id in ids[REJECTED]:
        review_feedback(settings, row_id, approve=False, by=OPERATOR)
    for row_id in ids[APPROVED]:
        review_feedback(settings, row_id, approve=True, by=OPERATOR)
    return ids


def _snapshot_text(folder) -> str:
    return "\n".join(path.read_text() for path in sorted(folder.iterdir()) if path.is_file())


def test_only_approved_feedback_reaches_the_export_and_the_gates_held_out_set(db_settings, tmp_path):
    from ui.cli import app

    _seed(db_settings)
    folder = tmp_path / "snapshot"
    result = CliRunner().invoke(app, ["finetune", "export", str(folder), "--eval-share", str(EVAL_SHARE), "--no-cite"])
    assert result.exit_code == 0, result.output
    assert "awaiting review: 2 customer ratings left out" in result.output
    everything = _snapshot_text(folder)
    for word in (PENDING, REJECTED):
        assert word not in everything, f"unapproved feedback ({word}) reached the snapshot"
    for word in (APPROVED, AGENT):
        assert everything.count(word) > 0, f"approved feedback ({word}) is missing from the snapshot"
    source = json.loads((folder / "source.json").read_text())
    assert (source["feedback_rows"], source["review_status"], source["pending_review"]) == (4, "approved", 2)

    held_out = feedback_items(folder)  # what the gate judges the candidate on
    references = sorted(item.reference for item in held_out)
    assert references == [f"The {APPROVED} program gives points on every order (held out).",
                          f"The {AGENT} program gives points on every order (held out)."]
    prompts = json.dumps([item.messages for item in held_out])
    assert PENDING not in prompts and REJECTED not in prompts
    trained = (folder / "sft_train.jsonl").read_text()
    assert APPROVED in trained and AGENT in trained


def test_a_snapshot_exported_before_review_is_not_trusted_by_the_gate(settings, tmp_path):
    from finetune.export import export_feedback

    _seed(settings)
    folder = tmp_path / "snapshot"
    export_feedback(folder, settings, eval_share=EVAL_SHARE, cite_answers=False)
    source = folder / "source.json"
    old = {k: v for k, v in json.loads(source.read_text()).items() if k not in ("review_status", "pending_review")}
    source.write_text(json.dumps(old))  # as an export before feedback review wrote it
    with pytest.raises(ValueError, match="exported before customer feedback was reviewed.*export again"):
        feedback_items(folder)


def test_only_approved_feedback_counts_toward_the_next_training_and_a_late_approval_does(db_settings, tmp_path):
    from finetune.export import export_feedback

    ids = _seed(db_settings)
    assert new_feedback(db_settings) == 4, "approved customer suggestions and agents' corrections; not pending or rejected"
    export = export_feedback(tmp_path / "snapshot", db_settings, eval_share=EVAL_SHARE, cite_answers=False)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    record_candidate("v1", adapter, "base", {}, export.manifest.content_hash, export.folder, export.feedback_through_id,
                     settings=db_settings)
    assert export.feedback_through_id > ids[PENDING][0], "the pending ratings are older than what the snapshot held"
    assert new_feedback(db_settings) == 0
    review_feedback(db_settings, ids[PENDING][0], approve=True, by=OPERATOR)  # reviewed after the export
    review_feedback(db_settings, ids[PENDING][1], approve=False, by=OPERATOR)
    assert new_feedback(db_settings) == 1, "a suggestion approved after the export is new to training"


def test_a_stranger_cannot_rate_another_conversation_or_flood_the_review_queue(db_settings):
    mine, answer = _conversation(db_settings, APPROVED, True)
    _, theirs = _conversation(db_settings, AGENT, True)
    stranger = Caller.customer(db_settings, mine)
    with pytest.raises(AccessDenied, match="your own conversation"):
        give_feedback(db_settings, theirs, "down", corrected_answer="Wrong on purpose.", caller=stranger)
    for _ in range(db_settings.feedback_suggestions_per_conversation):
        give_feedback(db_settings, answer, "down", corrected_answer="Spam.", caller=stranger)
    with pytest.raises(ValueError, match="already sent 5 suggestions"):
        give_feedback(db_settings, answer, "down", corrected_answer="Spam.", caller=stranger)


def test_the_review_page_shows_an_operator_their_knowledge_bases_suggestions_as_text_and_records_decisions(settings):
    import secrets

    from sqlalchemy import select
    from streamlit.testing.v1 import AppTest

    from assistant.database.models import Feedback, User
    from tests.conftest import REPO
    from ui.auth import add_user

    password = secrets.token_urlsafe(12)
    add_user("olivia", password, "operator", settings)
    with session_scope(settings) as session:  # limited to "help", as an admin sets it on the admin page
        session.scalars(select(User).where(User.name == "olivia")).one().knowledge_bases = ["help"]
    markup = "![pixel](https://tracker.example/p.png) **Call** [us](https://evil.example)"
    conversation, answer = _conversation(settings, APPROVED, True)
    suggestion = give_feedback(settings, answer, "down", corrected_answer=markup, caller=Caller.customer(settings, conversation))
    thumb = give_feedback(settings, answer, "up", caller=Caller.customer(settings, conversation))
    internal = add_feedback("down", question=f"{PENDING} internal?", answer="Internal.", kb="internal", settings=settings)

    page = AppTest.from_file(str(REPO / "ui" / "views" / "review.py"), default_timeout=60).run()
    page.text_input(key="login_name").set_value("olivia")
    page.text_input(key="login_password").set_value(password)
    page = [b for b in page.button if b.label == "Log in"][0].click().run()
    assert not page.exception, page.exception
    shown = [c.value for c in page.code] + [t.value for t in page.text]
    assert markup in shown, "the suggestion is shown as written, as plain text"
    rendered = [m.value for m in page.markdown] + [c.value for c in page.caption]
    assert not any("tracker.example" in text or PENDING in text for text in rendered), "never as Markdown"
    assert not any(PENDING in text for text in shown), "another knowledge base's suggestion is not shown"

    page = page.button(key=f"approve_{suggestion}").click().run()
    assert f"Feedback #{suggestion} approved for training." in [s.value for s in page.success]
    page = page.button(key=f"reject_{thumb}").click().run()
    assert not page.exception, page.exception
    assert [i.value for i in page.info] == ["No suggestion awaits review."]
    with session_scope(settings) as session:
        decisions = {row.id: (row.review_status, row.reviewed_by) for row in session.scalars(select(Feedback))}
    assert decisions == {suggestion: ("approved", "olivia"), thumb: ("rejected", "olivia"), internal.id: ("pending", None)}
