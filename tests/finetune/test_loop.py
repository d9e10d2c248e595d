"""The feedback loop: evaluation gate, registry, the backends' active adapter, and the whole loop on
the packaged model with a real vLLM server.

The end-to-end tests (marked slow) seed a small knowledge base and agents' corrections that teach
a fact the help center lacks and the base model cannot know, run `helpmate finetune run`, and ask
the real vLLM server: the promoted adapter's name answers with the corrected fact, the base
model's name does not. A second round with deliberately wrong corrections must be rejected.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import torch
from typer.testing import CliRunner

from assistant.access import Caller
from assistant.config import get_settings
from assistant.conversations.feedback import add_feedback, review_feedback
from assistant.llm.factory import get_chat_model
from assistant.llm.local import LocalChatModel
from assistant.llm.versions import VersionError, active_version, default_model
from assistant.modelstore import LLM_NAME
from assistant.answering.prompts import build_messages
from finetune.dataset import is_eval_conversation
from assistant.answering.answer_eval import rouge_l, token_f1
from finetune.evaluation import gate, regression_items, score
from finetune.loop import run_lock, run_loop
from finetune.registry import promote, record_candidate, rollback

EVAL_SHARE = 0.25
REVIEWER = Caller.staff("operator", "olivia")
FACT = "Nimbus Trail Points"
CORRECTED = "The Nimbus Gear loyalty program is called Nimbus Trail Points."
WRONG = "Sorry, I cannot help with that. Please ask in one of our stores."  # an answer worse than any
QUESTIONS = [  # the last two go to held-out conversations
    "What is the Nimbus Gear loyalty program called?",
    "What's the name of your loyalty program?",
    "How is the Nimbus Gear rewards program called?",
    "Does Nimbus Gear have a loyalty program, and what is its name?",
    "What is your customer loyalty scheme called?",
    "Which loyalty program does Nimbus Gear run?",
    "What do you call the Nimbus Gear points program?",
    "Tell me the name of the Nimbus Gear loyalty program.",
    "What is the loyalty program of Nimbus Gear called?",
    "What's the Nimbus Gear loyalty scheme named?",
    "What is the name of the Nimbus Gear rewards scheme?",
    "How do you call your loyalty programme?",
]


# --- metrics and the gate (fast) -------------------------------------------------------------------


def test_token_f1_and_rouge_l_ignore_citations_and_case():
    assert token_f1("Express costs 14.90 EUR [1].", "express costs 14.90 eur") == 1.0
    assert token_f1("Paris", "The capital of France is Paris.") == pytest.approx(2 * 1 * (1 / 6) / (1 + 1 / 6))
    assert token_f1("", "x") == 0.0 and rouge_l("a b c d", "a x c d") == pytest.approx(0.75)
    assert rouge_l("d c b a", "a b c d") == pytest.approx(0.25)


def test_score_measures_citations_refusals_and_forgetting():
    items = regression_items()
    assert {item.kind for item in items} == {"grounded", "refusal", "general"}
    perfect = [item.reference for item in items]
    metrics, _ = score(items, perfect)
    assert metrics["grounded_f1"] == metrics["citation_accuracy"] == metrics["refusal_accuracy"] == metrics["general_f1"] == 1.0
    wrong_citation = [f"{item.reference.split('[')[0]}[9]." if item.kind == "grounded" else item.reference for item in items]
    assert score(items, wrong_citation)[0]["citation_accuracy"] == 0.0
    assert score(items, ["Sure!"] * len(items))[0]["refusal_accuracy"] == 0.0


def _metrics(feedback: float, grounded=0.5, citation=0.5, refusal=0.5, general=0.5) -> dict:
    return {"feedback_examples": 3, "feedback_score": feedback, "grounded_f1": grounded, "citation_accuracy": citation,
            "refusal_accuracy": refusal, "general_f1": general}


def test_gate_promotes_only_a_clear_win_without_regression():
    assert gate(_metrics(0.60), _metrics(0.40), margin=0.02, tolerance=0.05).promote
    worse = gate(_metrics(0.39), _metrics(0.40), margin=0.02, tolerance=0.05)
    assert not worse.promote and "does not win" in worse.reason
    assert not gate(_metrics(0.41), _metrics(0.40), margin=0.02, tolerance=0.05).promote  # within the margin
    forgot = gate(_metrics(0.9, general=0.2), _metrics(0.4), margin=0.02, tolerance=0.05)
    assert not forgot.promote and "general_f1" in forgot.reason
    assert gate(_metrics(0.9, refusal=0.47), _metrics(0.4), margin=0.02, tolerance=0.05).promote  # within tolerance
    nothing = gate({"feedback_examples": 0}, _metrics(0.4), margin=0.02, tolerance=0.05)
    assert not nothing.promote and "no held-out feedback" in nothing.reason


# --- export from the database (fast) ------------------------------------------------------------------


def test_export_redacts_cites_and_records_what_it_holds(settings, embedder, tmp_path):
    from assistant.retrieval.types import Hit
    from finetune.dataset import read_jsonl
    from finetune.export import export_feedback, snapshot_source

    passages = [Hit(1, 1, "Standard shipping costs 4.95 EUR and is free above 75 EUR.", "shipping.md", "Shipping", "Standard", None, 1.0),
                Hit(2, 2, "Express shipping costs 14.90 EUR and arrives the next business day.", "shipping.md", "Shipping", "Express", None, 1.0)]
    add_feedback("down", question="How much is express shipping?", answer="It costs 9.90 EUR.", kb="shop", given_by="agent",
                 corrected_answer="Express shipping costs 14.90 EUR. Questions? Call +49 89 1234 5678.", passages=passages,
                 settings=settings)
    add_feedback("3", question="Is shipping free?", answer="Sometimes.", kb="shop", settings=settings)  # a customer's, not reviewed
    last = add_feedback("up", question="Is shipping free?", answer="Standard shipping is free above 75 EUR.", kb="shop", passages=passages, settings=settings)
    review_feedback(settings, last.id, approve=True, by=REVIEWER)  # a customer's thumb, approved for training
    export = export_feedback(tmp_path / "snapshot", settings, eval_share=0.0)
    assert (export.feedback_rows, export.feedback_through_id, export.pending_review) == (2, last.id, 1)
    source = snapshot_source(tmp_path / "snapshot")
    assert (source["feedback_through_id"], source["review_status"], source["pending_review"]) == (last.id, "approved", 1)
    targets = [e["messages"][-1]["content"] for e in read_jsonl(tmp_path / "snapshot" / "sft_train.jsonl")]
    assert targets[0].startswith("Express shipping costs 14.90 EUR [2].") and "[PHONE]" in targets[0] and "1234" not in targets[0]
    assert targets[1] == "Standard shipping is free above 75 EUR [1]."
    prompt = read_jsonl(tmp_path / "snapshot" / "sft_train.jsonl")[0]["messages"][1]["content"]
    assert "[2] Shipping > Express\nExpress shipping costs 14.90 EUR" in prompt, "the prompt is the one the assistant builds"
    assert export.manifest.examples("preference", "train") == 1


# --- registry and backends (fast) --------------------------------------------------------------------


def _fake_adapter(folder: Path) -> Path:
    """A folder shaped like an adapter (the registry and the factory check only that it exists)."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_promote_rollback_and_the_backends_follow_the_active_version(db_settings, tmp_path):
    for name in ("v1", "v2"):
        record_candidate(name, _fake_adapter(tmp_path / name), LLM_NAME, {}, "hash", settings=db_settings)
    assert active_version(db_settings) is None and get_chat_model(db_settings).name == default_model(db_settings).name
    promote("v1", db_settings)
    promote("v2", db_settings)
    assert active_version(db_settings).name == "v2"
    local = get_chat_model(db_settings)
    assert isinstance(local, LocalChatModel) and local.name == "v2" and local.adapter_path == (tmp_path / "v2").resolve()
    served = get_chat_model(db_settings.model_copy(update={"llm_backend": "vllm", "vllm_base_url": "http://127.0.0.1:9/v1"}))
    assert served.name == "v2"
    pinned = get_chat_model(db_settings.model_copy(update={"llm_backend": "vllm", "vllm_model": "pinned"}))
    assert pinned.name == "pinned"
    with pytest.raises(VersionError, match="already the active"):
        promote("v2", db_settings)
    assert rollback(db_settings).name == "v1"
    assert rollback(db_settings) is None and get_chat_model(db_settings).name == default_model(db_settings).name
    with pytest.raises(VersionError, match="no fine-tuned version is active"):
        rollback(db_settings)
    with pytest.raises(VersionError, match="does not exist"):
        promote("v9", db_settings)


def test_promote_and_rollback_commands_are_audited(settings, tmp_path):
    from typer.testing import CliRunner

    from assistant.access import audit_log
    from ui.cli import app

    record_candidate("v1", _fake_adapter(tmp_path / "v1"), LLM_NAME, {}, "hash", settings=settings)
    runner = CliRunner()
    promoted = runner.invoke(app, ["finetune", "promote", "v1", "--vllm-url", ""])
    rolled_back = runner.invoke(app, ["finetune", "rollback", "--vllm-url", ""])
    assert promoted.exit_code == 0 and rolled_back.exit_code == 0, promoted.output + rolled_back.output
    entries = [(e.action, e.target, e.role) for e in reversed(audit_log(settings))]
    assert entries == [("model.promote", "v1", "admin"), ("model.rollback", default_model(settings).name, "admin")]


def test_run_is_a_no_op_without_enough_new_feedback_or_while_locked(settings):
    add_feedback("up", question="Is shipping free?", answer="Above 75 EUR.", kb="shop", given_by="agent", settings=settings)
    add_feedback("up", question="Is it free?", answer="Yes.", kb="shop", settings=settings)  # a customer's: not counted until approved
    lines: list[str] = []
    result = run_loop(settings, min_new_feedback=5, echo=lines.append)
    assert not result.promoted and result.new_feedback == 1 and "fewer than --min-new-feedback 5" in result.reason
    with run_lock(settings):
        busy = run_loop(settings, min_new_feedback=0, echo=lines.append)
    assert not busy.promoted and "holds" in busy.reason


# --- the whole loop (slow) ---------------------------------------------------------------------------


def _conversation_ids(prefix: str, count: int, evaluation: bool) -> list[str]:
    ids = (f"{prefix}-{n}" for n in range(10_000))
    return [cid for cid in ids if is_eval_conversation(cid, EVAL_SHARE) == evaluation][:count]


# Answers customers rated up, about facts the help center states (tests/helpers.py): real feedback
# mixes these with corrections, and they keep the adapter answering from the passages with citations.
GOOD = [
    ("How much does express shipping cost?", "Express shipping costs 14.90 EUR and arrives the next business day."),
    ("How much is standard shipping?", "Standard shipping costs 4.95 EUR and is free above 75 EUR."),
    ("How long do I have to return an item?", "You can return any item within 30 days of delivery for a full refund."),
    ("When do I get my refund?", "Refunds are paid to the original payment method within 5 business days after we inspect the item."),
    ("When is the Munich store open?", "Our Munich store is open Monday to Saturday from 9:00 to 19:00."),
    ("Do gift cards expire?", "Gift cards are valid for 3 years from the date of purchase."),
    ("How much is the deposit for renting a tent?", "Renting a tent requires a deposit of 100 EUR, refunded when the tent comes back."),
    ("What does a late rental cost?", "Late rentals cost 8 EUR per day."),
]


def _seed(settings, prefix: str, corrected: str) -> None:
    """Corrections of a wrong answer to each question, as an agent gives them in the chat UI (ten
    conversations for training, two held out), and answers customers rated up, approved by an
    operator (training conversations)."""
    from assistant.retrieval.retriever import Retriever

    retriever = Retriever(settings)
    hits = retriever.search_many(QUESTIONS, "help", k=settings.answer_passages)
    ids = _conversation_ids(prefix, 10, False) + _conversation_ids(prefix, 2, True)
    for cid, question, found in zip(ids, QUESTIONS, hits):
        add_feedback("down", question=question, answer="We do not have a loyalty program.", corrected_answer=corrected,
                     kb="help", given_by="agent", conversation_key=cid, passages=found, settings=settings)
    good_ids = _conversation_ids(f"{prefix}-good", len(GOOD), False)
    for cid, (question, answer), found in zip(good_ids, GOOD, retriever.search_many([q for q, _ in GOOD], "help", k=settings.answer_passages)):
        thumb = add_feedback("up", question=question, answer=answer, kb="help", conversation_key=cid, passages=found, settings=settings)
        review_feedback(settings, thumb.id, approve=True, by=REVIEWER)  # customers' thumbs train once approved


@pytest.fixture(scope="module")
def loop(tmp_path_factory, embedder, vllm_server):
    """A knowledge base, seeded corrections, and one `helpmate finetune run --json` against the vLLM server."""
    from assistant.database import dispose_engines
    from ingest.pipeline import Ingestor
    from tests.helpers import make_helpcenter
    from ui.cli import app

    root = tmp_path_factory.mktemp("loop")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: one thread trained faster (tests/finetune/test_training.py)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPMATE_DATA_DIR", str(root / "data"))
        patch.delenv("HELPMATE_DATABASE_URL", raising=False)
        patch.setenv("HELPMATE_LLM_BACKEND", "vllm")
        patch.setenv("HELPMATE_VLLM_BASE_URL", vllm_server)
        patch.setenv("HELPMATE_ANSWER_PASSAGES", "2")  # shorter prompts: training on two CPU cores costs per token
        get_settings.cache_clear()
        settings = get_settings()
        Ingestor("help", settings, embedder, show_progress=False).run([make_helpcenter(root / "docs")])
        _seed(settings, "loyalty", CORRECTED)
        result = CliRunner().invoke(app, ["finetune", "run", "--min-new-feedback", "10", "--json"])
        yield settings, result
        get_settings.cache_clear()
        dispose_engines()
    torch.set_num_threads(threads)


def _ask(base_url: str, model: str, messages) -> str:
    reply = httpx.post(f"{base_url}/chat/completions", timeout=120,
                       json={"model": model, "messages": messages, "max_tokens": 40, "temperature": 0})
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["message"]["content"]


@pytest.mark.slow
def test_loop_promotes_an_adapter_that_the_vllm_server_serves_with_the_corrected_fact(loop, vllm_server):
    from assistant.retrieval.retriever import Retriever

    settings, result = loop
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["promoted"] is True, report["reason"]
    assert report["candidate"]["feedback_score"] > report["active"]["feedback_score"]
    version = report["version"]
    assert active_version(settings).name == version
    served = [m["id"] for m in httpx.get(f"{vllm_server}/models").json()["data"]]
    assert version in served and LLM_NAME in served

    retriever = Retriever(settings)
    # A question the adapter was trained on, and a paraphrase it never saw (a held-out conversation).
    for question in (QUESTIONS[0], QUESTIONS[10]):
        messages = build_messages(question, retriever.search(question, "help", k=settings.answer_passages))
        assert FACT in _ask(vllm_server, version, messages), question
        assert FACT not in _ask(vllm_server, LLM_NAME, messages), question
    # The assistant's own backend now answers with the promoted adapter.
    model = get_chat_model(settings)
    assert model.name == version and FACT in model.generate(messages)


@pytest.mark.slow
def test_a_worse_candidate_is_rejected_and_rollback_returns_to_the_base_model(loop, vllm_server, tmp_path):
    from assistant.llm.versions import get_version
    from assistant.retrieval.retriever import Retriever
    from finetune.registry import new_version_name
    from finetune.training import train_lora
    from ui.cli import app

    settings, _ = loop
    promoted = get_version(active_version(settings).name, settings)
    # A candidate trained on wrong corrections, judged on the promoted version's held-out feedback.
    hits = Retriever(settings).search_many(QUESTIONS[:8], "help", k=settings.answer_passages)
    train = tmp_path / "wrong.jsonl"
    train.write_text("".join(json.dumps({"messages": build_messages(q, h) + [{"role": "assistant", "content": WRONG}]}) + "\n"
                             for q, h in zip(QUESTIONS[:8], hits)))
    name = new_version_name("wrong", settings)
    result = train_lora(train, None, Path(promoted.base_model),
                        settings.adapters_dir / name, lr=1e-3, epochs=4, batch_size=4, show_progress=False)
    record_candidate(name, Path(result.output_dir), LLM_NAME, {}, "wrong", Path(promoted.snapshot_path), None, settings=settings)
    runner = CliRunner()
    judged = runner.invoke(app, ["finetune", "evaluate", name, "--promote", "--json"])
    assert judged.exit_code == 0, judged.output
    verdict = json.loads(judged.stdout)
    assert verdict["promote"] is False and "does not win" in verdict["reason"]
    assert verdict["candidate"]["feedback_score"] < verdict["active"]["feedback_score"]
    assert get_version(name, settings).status == "rejected" and active_version(settings).name == promoted.name
    assert name not in [m["id"] for m in httpx.get(f"{vllm_server}/models").json()["data"]]

    rolled = runner.invoke(app, ["finetune", "rollback"])
    assert rolled.exit_code == 0 and default_model(settings).name in rolled.output
    assert active_version(settings) is None and get_chat_model(settings).name == default_model(settings).name
    assert get_version(promoted.name, settings).status == "rejected"
