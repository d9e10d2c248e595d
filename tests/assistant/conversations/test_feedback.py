"""The feedback store, its review rules and verified answers, on SQLite and PostgreSQL, with the real embedding model."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from assistant.access import AccessDenied, Caller, audit_log
from assistant.database import session_scope
from assistant.database.models import Chunk, Conversation, Document, Feedback, KnowledgeBase, Message
from assistant.conversations.feedback import (TooMuchFeedback, add_feedback, count_feedback, label_of, list_feedback,
                                              normalise_rating, review_feedback)
from assistant.conversations.feedback_import import import_feedback
from assistant.answering.verified_answers import approve, approve_feedback, list_verified, lookup

CSV = (
    "question,answer,rating,corrected_answer,comment,given_by,kb\n"
    "How much is express shipping?,It costs 9.90 EUR.,down,Express shipping costs 14.90 EUR.,Wrong price,agent,shop\n"
    "Is shipping free?,Free above 75 EUR.,up,,,customer,shop\n"
    "Broken row,no rating,,,,customer,shop\n"
    "Too many,fields,up,,,customer,shop,extra\n"
    "Who asked?,An answer.,sideways,,,customer,shop\n"
    "Who gave it?,An answer.,4,,,robot,shop\n"
    '"Multi-line\nquestion?",Yes.,5,,,agent,\n'
    ",missing question,up,,,customer,shop\n"
)


def test_ratings_are_normalised():
    assert [normalise_rating(v) for v in ("Up", "thumbs_down", "+1", "5", " 2 ")] == ["up", "down", "up", "5", "2"]
    assert [label_of(r) for r in ("up", "down", "5", "4", "3", "2", "1")] == ["good", "bad", "good", "good", None, "bad", "bad"]
    with pytest.raises(ValueError, match="neither up/down nor"):
        normalise_rating("6")


def test_import_keeps_good_rows_and_reports_bad_ones_by_line(db_settings, tmp_path):
    path = tmp_path / "feedback.csv"
    path.write_text(CSV)
    report = import_feedback(path, kb="default", settings=db_settings, retrieve=False)
    assert (report.rows, report.added, report.corrections, report.duplicates) == (8, 3, 1, 0)
    assert [(bad.line, bad.error.split(" ")[0]) for bad in report.bad_rows] == [
        (4, "rating"), (5, "has"), (6, "rating"), (7, "given_by"), (10, "question")]
    rows = list_feedback(db_settings)
    assert [(r.kb, r.rating, r.given_by) for r in rows] == [("shop", "down", "agent"), ("shop", "up", "customer"), ("default", "5", "agent")]
    assert rows[0].corrected_answer == "Express shipping costs 14.90 EUR." and rows[0].comment == "Wrong price"
    assert rows[2].question == "Multi-line\nquestion?" and rows[0].source == "import:feedback.csv"
    assert len({r.conversation_key for r in rows}) == 3, "unlinked ratings are each their own conversation"
    again = import_feedback(path, kb="default", settings=db_settings, retrieve=False)
    assert (again.added, again.duplicates) == (0, 3) and count_feedback(db_settings) == 3
    assert count_feedback(db_settings, after_id=rows[0].id) == 2

    jsonl = tmp_path / "feedback.jsonl"
    jsonl.write_text('{"question": "Q?", "answer": "A.", "rating": "up", "kb": "shop"}\nnot json\n[1]\n')
    report = import_feedback(jsonl, settings=db_settings, retrieve=False)
    assert report.added == 1 and [(b.line, b.error) for b in report.bad_rows] == [(2, "not valid JSON (Expecting value at column 1)"), (3, "is not a JSON object")]

    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("q,a\nx,y\n")
    with pytest.raises(ValueError, match="header lacks question, answer, rating"):
        import_feedback(bad_header, settings=db_settings)


def test_import_without_an_ingested_kb_warns_and_stores_without_passages(settings, tmp_path):
    path = tmp_path / "feedback.csv"
    path.write_text("question,answer,rating\nIs shipping free?,Yes.,up\n")
    report = import_feedback(path, kb="nowhere", settings=settings)
    assert report.added == 1 and report.with_passages == 0
    assert "knowledge base 'nowhere' does not exist" in report.warnings[0]


def test_feedback_on_a_stored_message_takes_its_question_passages_and_model(db_settings):
    now = datetime.now(timezone.utc)
    with session_scope(db_settings) as session:
        kb = KnowledgeBase(name="shop")
        session.add(kb)
        session.flush()
        document = Document(kb_id=kb.id, source="shipping.md", path="shipping.md", format="markdown", file_hash="x", status="indexed")
        session.add(document)
        session.flush()
        chunks = [Chunk(document_id=document.id, kb_id=kb.id, ordinal=i, text=text, title="Shipping", token_count=5)
                  for i, text in enumerate(["Express shipping costs 14.90 EUR.", "Standard shipping costs 4.95 EUR."])]
        session.add_all(chunks)
        conversation = Conversation(channel="chat", kb="shop", started_at=now)
        session.add(conversation)
        session.flush()
        session.add(Message(conversation_id=conversation.id, role="customer", text="How much is express?", created_at=now))
        answer = Message(conversation_id=conversation.id, role="assistant", text="It costs 9.90 EUR [1].",
                         created_at=now + timedelta(seconds=2), model_version="smollm2-135m-instruct",
                         retrieved_chunk_ids=[chunks[1].id, chunks[0].id])
        session.add(answer)
        session.flush()
        answer_id, conversation_id = answer.id, conversation.id
    row = add_feedback("down", message_id=answer_id, corrected_answer="Express shipping costs 14.90 EUR.", given_by="agent",
                       settings=db_settings)
    assert (row.question, row.answer, row.kb, row.model_version) == ("How much is express?", "It costs 9.90 EUR [1].", "shop", "smollm2-135m-instruct")
    assert row.conversation_key == str(conversation_id)
    assert [p["text"] for p in row.passages] == ["Standard shipping costs 4.95 EUR.", "Express shipping costs 14.90 EUR."]
    with pytest.raises(ValueError, match="only assistant answers are rated"):
        add_feedback("up", message_id=answer_id - 1, settings=db_settings)
    with pytest.raises(ValueError, match="does not exist"):
        add_feedback("up", message_id=10_000, settings=db_settings)
    with session_scope(db_settings) as session:  # deleting the conversation keeps the rating, unlinked
        session.delete(session.get(Conversation, conversation_id))
    with session_scope(db_settings) as session:
        kept = session.get(Feedback, row.id)
        assert kept.message_id is None and kept.question == "How much is express?"


def _answers(settings, kb: str, count: int) -> tuple[int, list[int]]:
    """A chat conversation in ``kb`` with ``count`` question-and-answer turns: its id and the answers' message ids."""
    now = datetime.now(timezone.utc)
    with session_scope(settings) as session:
        conversation = Conversation(channel="chat", kb=kb, started_at=now)
        session.add(conversation)
        session.flush()
        answers = []
        for turn in range(count):
            session.add(Message(conversation_id=conversation.id, role="customer", text=f"Question {turn}?",
                                created_at=now + timedelta(seconds=2 * turn)))
            answer = Message(conversation_id=conversation.id, role="assistant", text=f"Answer {turn}.",
                             created_at=now + timedelta(seconds=2 * turn + 1))
            session.add(answer)
            session.flush()
            answers.append(answer.id)
        return conversation.id, answers


def test_customer_feedback_waits_for_review_by_staff_of_its_knowledge_base(db_settings):
    mine, (answer,) = _answers(db_settings, "shop", 1)
    _, (theirs,) = _answers(db_settings, "shop", 1)
    customer = Caller.customer(db_settings, mine)
    suggestion = add_feedback("down", message_id=answer, corrected_answer="Express costs 14.90 EUR.", given_by="customer",
                              caller=customer, settings=db_settings)
    assert (suggestion.review_status, suggestion.reviewed_by, suggestion.question) == ("pending", None, "Question 0?")
    with pytest.raises(AccessDenied, match="your own conversation"):
        add_feedback("up", message_id=theirs, caller=customer, settings=db_settings)
    with pytest.raises(AccessDenied, match="not an agent's"):
        add_feedback("up", message_id=answer, given_by="agent", caller=customer, settings=db_settings)
    with pytest.raises(AccessDenied, match="give the rated message"):
        add_feedback("up", question="Q?", answer="A.", caller=customer, settings=db_settings)
    # Without a caller, customer feedback is pending too; staff feedback is approved as it is stored.
    anonymous = add_feedback("up", question="Q?", answer="A.", kb="shop", settings=db_settings)
    agent = add_feedback("down", question="Q?", answer="A.", kb="shop", corrected_answer="B.", given_by="agent", settings=db_settings)
    entered = add_feedback("up", question="Q2?", answer="A2.", kb="shop", caller=Caller.staff("admin", "cli"), settings=db_settings)
    assert [r.review_status for r in (anonymous, agent, entered)] == ["pending", "approved", "approved"]
    assert [r.id for r in list_feedback(db_settings, review_status="pending")] == [suggestion.id, anonymous.id]
    assert count_feedback(db_settings, review_status="approved") == 2 and count_feedback(db_settings) == 4
    with pytest.raises(ValueError, match="not one of pending, approved, rejected"):
        list_feedback(db_settings, review_status="maybe")

    with pytest.raises(AccessDenied, match="for our team only"):
        review_feedback(db_settings, suggestion.id, approve=True, by=customer)
    with pytest.raises(AccessDenied, match=r"you may see \(other\)"):
        review_feedback(db_settings, suggestion.id, approve=True, by=Caller.staff("operator", "olivia", ["other"]))
    with pytest.raises(ValueError, match="feedback list --pending"):
        review_feedback(db_settings, 10_000, approve=True, by=Caller.staff("admin", "adam"))
    before = datetime.now(timezone.utc)
    approved = review_feedback(db_settings, suggestion.id, approve=True, by=Caller.staff("operator", "olivia", ["shop"]))
    assert (approved.review_status, approved.reviewed_by) == ("approved", "olivia") and approved.reviewed_at >= before
    review_feedback(db_settings, anonymous.id, approve=False, by=Caller.staff("admin", "adam"))
    assert list_feedback(db_settings, review_status="pending") == []
    assert [r.id for r in list_feedback(db_settings, review_status=("approved",))] == [suggestion.id, agent.id, entered.id]
    entries = audit_log(db_settings)
    assert [(e.actor, e.action, e.target, e.detail["previous"]) for e in entries] == [
        ("adam", "feedback.reject", f"feedback {anonymous.id}", "pending"),
        ("olivia", "feedback.approve", f"feedback {suggestion.id}", "pending")]
    # Approved after a snapshot that held ids up to `entered`: new to training all the same.
    assert count_feedback(db_settings, after_id=entered.id, review_status="approved") == 0
    assert count_feedback(db_settings, after_id=entered.id, review_status="approved", reviewed_after=before) == 1


def test_a_conversation_may_send_only_so_many_ratings_and_suggestions(db_settings):
    settings = db_settings.model_copy(update={"feedback_suggestions_per_conversation": 2})
    conversation, answers = _answers(settings, "shop", 3)
    customer = Caller.customer(settings, conversation)
    add_feedback("up", message_id=answers[0], caller=customer, settings=settings)
    add_feedback("down", message_id=answers[1], corrected_answer="Better.", caller=customer, settings=settings)
    with pytest.raises(TooMuchFeedback, match="this conversation has already sent 2 suggestions"):
        add_feedback("down", message_id=answers[2], corrected_answer="Spam.", caller=customer, settings=settings)
    assert isinstance(TooMuchFeedback("x"), ValueError)
    # An agent's correction in the same conversation is not the customer's to count; another conversation has its own.
    add_feedback("down", message_id=answers[2], corrected_answer="Right.", given_by="agent", settings=settings)
    other, (answer,) = _answers(settings, "shop", 1)
    add_feedback("up", message_id=answer, caller=Caller.customer(settings, other), settings=settings)
    assert count_feedback(settings, review_status="pending") == 3 and count_feedback(settings) == 4


def test_reviewing_from_the_cli(settings, embedder, tmp_path):
    import typer

    from assistant.cli.feedback import feedback_app

    app = typer.Typer()
    app.add_typer(feedback_app, name="feedback")
    app.command("noop")(lambda: None)
    runner = CliRunner()
    suggestion = add_feedback("down", question="Do gift cards expire?", answer="After 1 year.", kb="shop",
                              corrected_answer="Gift cards are valid for 3 years.", settings=settings)
    thumb = add_feedback("down", question="Is shipping free?", answer="No.", kb="shop", settings=settings)
    listed = runner.invoke(app, ["feedback", "list", "--pending"])
    assert listed.exit_code == 0 and "pending" in listed.output and "Do gift cards expire?" in listed.output

    result = runner.invoke(app, ["feedback", "approve", str(thumb.id), "--by", "ana"])  # nothing to verify
    assert result.exit_code == 1 and "--no-verify" in result.output
    assert list_feedback(settings, review_status="pending")[-1].id == thumb.id, "a failed approval changes nothing"
    result = runner.invoke(app, ["feedback", "approve", str(thumb.id), "--by", "ana", "--no-verify"])
    assert result.exit_code == 0 and "approved for training by ana" in result.output and "verified" not in result.output
    assert list_verified("shop", settings) == []
    result = runner.invoke(app, ["feedback", "reject", str(suggestion.id), "--by", "ben"])
    assert result.exit_code == 0 and "rejected by ben" in result.output
    assert runner.invoke(app, ["feedback", "list", "--pending"]).output.strip() == "no feedback awaits review"
    result = runner.invoke(app, ["feedback", "approve", str(suggestion.id), "--by", "ana"])  # changes her mind
    assert result.exit_code == 0 and "verified answer" in result.output
    assert lookup("shop", "Do gift cards expire?", settings, embedder).answer == "Gift cards are valid for 3 years."
    assert [(r.id, r.review_status, r.reviewed_by) for r in list_feedback(settings)] == [
        (suggestion.id, "approved", "ana"), (thumb.id, "approved", "ana")]
    assert [(e.actor, e.role, e.action) for e in audit_log(settings)][0] == ("ana", "admin", "feedback.approve")

    # What the CLI stores is staff feedback; an import is approved unless --review holds its customer rows.
    added = runner.invoke(app, ["feedback", "add", "up", "--question", "Q?", "--answer", "A.", "--given-by", "customer"])
    assert added.exit_code == 0 and list_feedback(settings)[-1].review_status == "approved"
    path = tmp_path / "f.csv"
    path.write_text("question,answer,rating,given_by\nQ1?,A1.,up,customer\nQ2?,A2.,up,agent\n")
    result = runner.invoke(app, ["feedback", "import", str(path), "--kb", "shop", "--no-retrieve", "--review"])
    assert result.exit_code == 0 and "1 customer rows await review" in result.output
    assert [(r.question, r.review_status) for r in list_feedback(settings)[-2:]] == [("Q1?", "pending"), ("Q2?", "approved")]


def test_verified_answer_matches_paraphrases_only_in_its_kb(db_settings, embedder):
    approve("shop", "How much is express shipping?", "Express shipping costs 14.90 EUR.", "ana", db_settings, embedder)
    approve("shop", "How long is a gift card valid?", "Gift cards are valid for 3 years.", "ana", db_settings, embedder)
    match = lookup("shop", "what's the price of express shipping", db_settings, embedder)
    assert match is not None and match.answer == "Express shipping costs 14.90 EUR." and match.similarity >= db_settings.verified_min_similarity
    assert lookup("shop", "How long are your gift cards valid?", db_settings, embedder).answer == "Gift cards are valid for 3 years."
    # A near-miss about another fact, an unrelated question and another knowledge base get nothing.
    assert lookup("shop", "How much is standard shipping?", db_settings, embedder) is None
    assert lookup("shop", "What is the capital of France?", db_settings, embedder) is None
    assert lookup("other", "How much is express shipping?", db_settings, embedder) is None
    # Re-approving the same question replaces the answer instead of adding a second one.
    approve("shop", "how much is  express shipping?", "Express costs 14.90 EUR, next day.", "ben", db_settings, embedder)
    assert len(list_verified("shop", db_settings)) == 2
    assert lookup("shop", "How much is express shipping?", db_settings, embedder).answer == "Express costs 14.90 EUR, next day."


def test_approving_feedback_and_the_cli(settings, embedder, tmp_path):
    import typer

    from assistant.cli.feedback import feedback_app

    app = typer.Typer()  # as ui/cli.py registers it: `helpmate feedback ...`
    app.add_typer(feedback_app, name="feedback")
    app.command("noop")(lambda: None)  # two commands, so typer keeps the "feedback" group name
    runner = CliRunner()
    result = runner.invoke(app, ["feedback", "add", "down", "--question", "Do gift cards expire?", "--answer", "After 1 year.",
                                 "--kb", "shop", "--corrected", "Gift cards are valid for 3 years.", "--verify", "ana"])
    assert result.exit_code == 0, result.output
    assert "verified answer" in result.output
    assert lookup("shop", "Do gift cards expire?", settings, embedder).answer == "Gift cards are valid for 3 years."
    plain = add_feedback("down", question="Q?", answer="A.", kb="shop", settings=settings)
    with pytest.raises(ValueError, match="has no correction"):
        approve_feedback(plain.id, "ana", settings=settings, embedder=embedder)
    path = tmp_path / "f.csv"
    path.write_text("question,answer,rating\nQ1?,A1.,up\nQ2?,A2.,meh\n")
    result = runner.invoke(app, ["feedback", "import", str(path), "--kb", "shop", "--no-retrieve"])
    assert result.exit_code == 2 and "1 ratings imported" in result.output and "line 3: rating 'meh'" in result.output
    assert runner.invoke(app, ["feedback", "import", str(tmp_path / "missing.csv")]).exit_code == 1


def test_the_assistant_answers_a_paraphrase_with_the_verified_answer_without_generating(tmp_path, monkeypatch, embedder):
    from assistant.answering.assistant import Assistant
    from assistant.config import get_settings
    from assistant.database import dispose_engines
    from assistant.retrieval.retriever import Retriever
    from ingest.pipeline import Ingestor
    from tests.helpers import make_helpcenter
    from tests.assistant.answering.test_answering import ScriptedModel

    monkeypatch.setenv("HELPMATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HELPMATE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    try:
        Ingestor("help", settings, embedder, show_progress=False).run([make_helpcenter(tmp_path / "kb")])
        approve("help", "How much is express shipping?", "Express shipping costs 14.90 EUR, next business day.", "ana",
                settings, embedder)
        model = ScriptedModel("Standard shipping costs 4.95 EUR [1].")
        assistant = Assistant(settings, Retriever(settings, embedder), model)
        answer = assistant.answer("What does express delivery cost?", "help")
        assert answer.kind == "verified" and answer.text == "Express shipping costs 14.90 EUR, next business day."
        assert answer.to_json()["kind"] == "verified" and "approved by ana" in answer.reason
        assert model.prompts == [], "a verified answer is given without calling the model"
        other = assistant.answer("How much is standard shipping?", "help")
        assert other.kind != "verified" and len(model.prompts) == 1
        approve("other", "Do gift cards expire?", "Never.", "ana", settings, embedder)
        assert assistant.answer("Do gift cards expire?", "help").kind != "verified"
    finally:
        dispose_engines()
        get_settings.cache_clear()
