"""`helpmate eval answers` on a small real knowledge base with the real embedded model, and its metrics."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.answering.answer_eval import is_source, read_questions, rouge_l, summarize, token_f1
from tests.helpers import ingested_helpcenter
from ui.cli import app


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    with ingested_helpcenter(tmp_path_factory.mktemp("answer-eval"), embedder) as (settings, folder):
        yield settings, folder


def test_questions_file_reads_the_demo_spelling_and_infers_answerable(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in [
        {"question": "How much is express?", "answer": "14.90 EUR.", "must_contain": ["14.90"], "source": "shipping.html"},
        {"question": "Do you sell kayaks?", "answer": None, "must_contain": [], "source": None},
        {"question": "And on Sundays?", "history": [["user", "When are you open?"]], "answerable": True},
        {"question": "Anything?"},
    ]) + "\n")
    first, second, third, fourth = read_questions(path)
    assert (first.answerable, first.expected_source, first.reference) == (True, "shipping.html", "14.90 EUR.")
    assert second.answerable is False and third.history == [("user", "When are you open?")]
    assert fourth.answerable is None
    path.write_text('{"history": []}\n')
    with pytest.raises(ValueError, match="line 1"):
        read_questions(path)


def test_metrics():
    assert token_f1("Express shipping costs 14.90 EUR [1].", "Express shipping costs 14.90 EUR.") == 1.0
    assert token_f1("No.", "Express shipping costs 14.90 EUR.") == 0.0
    assert rouge_l("costs express shipping", "express shipping costs") == pytest.approx(2 / 3)
    assert is_source("/tmp/kb/shipping/costs.md", "shipping/costs.md") and not is_source("/tmp/kb/costs.md", "shipping/costs.md")
    records = [
        {"answerable": True, "kind": "generated", "model_checked": True, "contains": True, "model_contains": True,
         "first_citation_ok": True, "f1": 1.0, "rouge_l": 1.0, "latency_ms": 10.0, "relevance": 0.6},
        {"answerable": True, "kind": "extractive", "model_checked": True, "contains": False, "model_contains": False,
         "first_citation_ok": False, "f1": 0.5, "rouge_l": 0.25, "model_f1": 0.2, "latency_ms": 30.0, "relevance": 0.5},
        {"answerable": False, "kind": "refusal", "model_checked": False, "contains": None, "model_contains": None,
         "first_citation_ok": None, "latency_ms": 20.0, "relevance": 0.3},
    ]
    result = summarize(records, 0.4)
    assert result["kinds"] == {"verified": 0.0, "generated": 0.3333, "extractive": 0.3333, "refusal": 0.3333}
    assert result["model_answers_kept"] == 0.5 and result["term_containment"] == 0.5
    assert result["first_citation_accuracy"] == 0.5 and result["unanswerable_refused"] == 1.0
    assert result["token_f1"] == 0.75 and result["rouge_l"] == 0.625 and result["latency_ms_median"] == 20.0
    assert result["model_token_f1"] == 0.2  # only where the model wrote something (the first record has no model_f1)
    records[1] |= {"source_shown": True, "terms_shown": False}  # retrieval found the source, the passages lack the terms
    ceilings = summarize(records, 0.4)
    assert ceilings["passages_hold_expected_source"] == 0.5 and ceilings["passages_hold_terms"] == 0.0


def test_cli_eval_answers_on_a_real_knowledge_base(kb, tmp_path):
    file = tmp_path / "questions.jsonl"
    file.write_text("\n".join(json.dumps(row) for row in [
        {"question": "How much does express shipping cost?", "must_contain": ["14.90"], "expected_source": "shipping.html",
         "reference": "Express shipping costs 14.90 EUR and arrives the next business day."},
        {"question": "Do you sell kayaks in Brazil?", "answerable": False},
    ]) + "\n")
    result = CliRunner().invoke(app, ["eval", "answers", "--file", str(file), "--kb", "help", "--json", "--no-progress",
                                      "--backend", "local"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["questions"] == 2 and data["answerable"] == 1 and data["unanswerable"] == 1
    assert data["term_containment"] == 1.0 and data["first_citation_accuracy"] == 1.0
    assert data["passages_hold_terms"] == 1.0 and data["passages_hold_expected_source"] == 1.0
    assert data["answers"][0]["source_shown"] and data["answers"][1]["source_shown"] is None
    assert data["unanswerable_refused"] == 1.0 and data["kinds"]["refusal"] == 0.5
    assert 0 < data["token_f1"] <= 1 and 0 < data["rouge_l"] <= 1 and data["latency_ms_median"] > 0
    assert 0 <= data["model_token_f1"] <= 1 and "model_f1" in data["answers"][0]
    assert [a["kind"] for a in data["answers"]][1] == "refusal"

    result = CliRunner().invoke(app, ["eval", "answers", "--file", str(file), "--kb", "nowhere", "--no-progress"])
    assert result.exit_code == 1 and "nowhere" in result.output and "Traceback" not in result.output
