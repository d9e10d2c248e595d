"""The support check judged on good answers as well as bad ones, with the real MiniLM and the shipped verifier.

Good answers: human agents' replies from DSTC9 (Apache-2.0; read from ``shared/datasets``) and
paraphrases of the kinds they write. Bad answers: the same replies with a fact flipped, a number
changed, another entity named, or a claim no passage makes. The calibration on the whole held-out
part is in BENCHMARKS.md ("Support check"); these tests pin the behaviour case by case.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.answering.claims import answer_claims, numbers
from assistant.answering.grounding import Grounder
from assistant.answering.support_data import dstc9_cases, dstc9_part, load_dstc9, names_entity, read_cases
from assistant.answering.verifier import Verifier, get_verifier
from assistant.retrieval.types import Hit
from tests.conftest import REPO, SHARED
from ui.cli import app

DSTC9 = SHARED / "datasets" / "dstc9_grounded_test"
needs_dstc9 = pytest.mark.needs((DSTC9 / "labels.json").is_file(), reason=f"DSTC9 grounded test data not in {DSTC9}")


def _faq(entity: str, *entries: tuple[str, str]) -> list[Hit]:
    """Passages as `helpmate ingest` stores FAQ entries: "question\\nanswer", the question as section."""
    return [Hit(n, n, f"{q}\n{a}", f"faq/{entity}.csv", entity, q, None, 1.0, 1.0) for n, (q, a) in enumerate(entries, 1)]


HOTEL = _faq(
    "Alexander Bed and Breakfast",
    ("Is there breakfast?", "No breakfast is offered."),
    ("Is parking available?", "Free parking is available on site."),
    ("What payment methods are accepted?", "The hotel accepts American Express and Visa."),
    ("What time is check-in?", "Check-in is from 3 pm to 10 pm."),
)
OTHER_HOTEL = _faq(
    "Gonville Hotel",
    ("Is there breakfast?", "Breakfast is served every morning."),
    ("Is parking available?", "Parking costs 10 pounds a night."),
    ("What payment methods are accepted?", "Only cash is accepted."),
    ("Is there a gym?", "The Gonville Hotel has a gym on the second floor."),
)


@pytest.fixture(scope="module")
def grounder(embedder) -> Grounder:
    return Grounder(embedder)


@pytest.mark.parametrize("question, reply", [
    ("Is there breakfast?", "Unfortunately, this hotel doesn't offer any breakfast at this time. "
                            "Would you still be interested in staying here?"),  # the DSTC9 example
    ("Is there breakfast?", "The Alexander is void of a breakfast option. Anything else I can help with?"),  # synonym
    ("What payment methods are accepted?", "Yes, you can pay with AMEX there."),  # abbreviation
    ("What payment methods are accepted?", "They take Visa."),  # partial: states only part of the snippet
    ("Is parking available?", "Yes, they do. Would you like me to book a room?"),  # a bare yes, read with the question
    ("Is parking available?", "Sure, let me check that for you. Yes, there is free parking at the property!"),
    ("What time is check-in?", "You can check in between 3 pm and 10 pm."),
    ("What time is check-in?", "Check-in starts at 3:00 PM and ends at ten."),  # a full hour written two ways, a number word
])
def test_human_paraphrases_are_accepted(grounder, question, reply):
    report = grounder.check(reply, HOTEL, question)
    assert report.supported, report.reason


# Known gaps of the shipped verifier (BENCHMARKS.md, "Support check"), kept as strict known failures:
# a contradiction worded with other words than the passage's, and a sentence that another, unrelated
# sentence of the same FAQ "supports" well enough. They must start failing when the verifier improves.
_KNOWN_GAP = pytest.mark.xfail(strict=True, reason="known gap of the shipped verifier: contradiction or unrelated support")


@pytest.mark.parametrize("question, reply, why", [
    ("Is parking available?", "No, there is no parking at this hotel.", "flipped"),
    ("What time is check-in?", "Check-in is from 2 pm to 10 pm.", "a changed number"),
    ("Is there a gym?", "The Gonville Hotel has a gym on the second floor.", "another entity's fact"),
    ("What payment methods are accepted?", "The Gonville Hotel accepts American Express and Visa.", "another entity named"),
    pytest.param("Is there breakfast?", "Yes, this hotel offers breakfast every morning.", "flipped", marks=_KNOWN_GAP),
    ("Is there breakfast?", "Yes, they do. Anything else?", "a bare yes to a no"),
    pytest.param("Is there breakfast?", "Breakfast is included in the price.", "contradiction", marks=_KNOWN_GAP),
    pytest.param("Is parking available?", "Parking is free, and the hotel also has an indoor pool.", "a claim in no passage",
                 marks=_KNOWN_GAP),
])
def test_wrong_replies_are_rejected(grounder, question, reply, why):
    report = grounder.check(reply, HOTEL, question)
    assert not report.supported, why


def test_a_later_sentence_of_the_question_names_nothing_by_its_first_word(grounder):
    """Customers' e-mails add sentences ("Write to me at ..."); their opening words are not names the passage lacks,
    while a name the passage lacks still counts wherever it stands."""
    reply = "Free parking is available."
    assert grounder.check(reply, HOTEL, "Is parking available? Write to me at [EMAIL]. Thanks.").supported
    assert not grounder.check(reply, HOTEL, "Is parking available? I am staying at the Gonville Hotel.").supported


def test_the_same_reply_is_rejected_given_another_entitys_passages(grounder):
    reply = "The Alexander Bed and Breakfast accepts American Express and Visa. Anything else?"
    assert grounder.check(reply, HOTEL, "What payment methods are accepted?").supported
    assert not grounder.check(reply, OTHER_HOTEL, "What payment methods are accepted?").supported


def test_questions_offers_and_pleasantries_are_not_claims():
    _, claims = answer_claims("Free parking is available. Would you like me to book it? Let me know if you need "
                              "anything else. Have a great day!", "Is parking available?")
    assert [c.text for c in claims] == ["Free parking is available."]
    _, claims = answer_claims("Yes, they do.", None)
    assert claims == []  # a bare yes without the question asserts nothing checkable


TAXI = _faq(
    "Taxi",
    ("What is the cancellation policy?", "You are able to cancel for free up to 24 hours in advance, we will charge "
                                         "10 GBP after the cancellation time frame."),
    ("Can I make changes to my booking later?", "When the cancellation period (up to 24 hours in advance) is over, only "
                                                "minor changes can be made to booking arrangements."),
    ("How much data is included with the onboard wifi?", "Data is limited to 50MB per day with no option of additional data."),
)


def test_an_answer_is_on_topic_through_any_passage_that_supports_it(grounder):
    """Supported by the entries on changes and on cancelling, the reply answers the question about the latter."""
    reply = "Yes, you may cancel up to 24 hours for free, only minor changes are allowed after this time frame."
    report = grounder.check(reply, TAXI, "What is the cancellation policy?")
    assert report.supported, report.reason


def test_a_leading_yes_to_a_what_question_affirms_nothing():
    from assistant.answering.verifier import Statement

    claim = "Yes, there is a daily data limit of 50 MB."
    vector = np.zeros(3, dtype=np.float32)
    assert Statement(claim, vector, set(), question="How much data is included with the onboard wifi?").lead is None
    assert Statement(claim, vector, set(), question="Is there a data limit?").lead == "yes"


def test_a_bare_yes_is_checked_against_the_passage_the_question_asks_about(grounder):
    report = grounder.check("Yes, they do.", HOTEL, "Is there breakfast?")
    assert not report.supported and "passage 1" in report.reason


def test_numbers_are_read_as_people_write_them():
    assert numbers("open 8:00AM to 8:00PM") == {"8"} and numbers("8 am to 10:30 pm") == {"8", "10:30"}
    assert numbers("forty five dollars") == numbers("forty-five") == {"45"} and numbers("twenty") == {"20"}


def test_a_statement_run_on_into_a_question_back_in_lower_case_is_a_claim():
    _, claims = answer_claims("a variety of breakfast options are available but at a fee what else do you need?", "q?")
    assert [c.text for c in claims] == ["a variety of breakfast options are available but at a fee"]
    _, claims = answer_claims("Unfortunately you cannot reserve a seat. Can I do anything else for you?", "q?")
    assert [c.text for c in claims] == ["Unfortunately you cannot reserve a seat."]


@needs_dstc9
def test_wrong_entity_cases_are_reported_by_whether_the_reply_or_question_names_the_entity(grounder):
    from assistant.answering.support_eval import evaluate_support

    cases = dstc9_cases(DSTC9, "held_out", seed=1, limit=30)
    other = [c for c in cases if c.condition == "other"]
    assert {c.named for c in other} == {True, False} and all(c.named is None for c in cases if c.condition == "own")
    assert not names_entity("The Wi-Fi is free to access!", {"gonville"})
    assert names_entity("The Gonville has free Wi-Fi.", {"gonville"})
    conditions = evaluate_support(cases, grounder)["conditions"]
    assert conditions["other, named"]["should_reject"] + conditions["other, unnamed"]["should_reject"] == len(other)


@needs_dstc9
def test_dstc9_split_keeps_each_entity_in_one_part():
    replies, _ = load_dstc9(DSTC9)
    parts: dict[tuple[str, str], set[str]] = {}
    for reply in replies:
        if reply.snippet.domain not in ("taxi", "train"):
            parts.setdefault((reply.snippet.domain, reply.snippet.entity_id), set()).add(dstc9_part(reply.snippet))
    assert all(len(p) == 1 for p in parts.values())
    assert 0.4 < sum(dstc9_part(r.snippet) == "fit" for r in replies) / len(replies) < 0.6


@needs_dstc9
def test_held_out_human_replies_are_accepted_with_their_snippet_and_rejected_with_another_entitys(embedder, grounder):
    cases = dstc9_cases(DSTC9, "held_out", seed=1, limit=40)
    own = [grounder.check(c.answer, c.passages, c.question).supported for c in cases if c.condition == "own"]
    other = [grounder.check(c.answer, c.passages, c.question).supported for c in cases if c.condition == "other"]
    assert len(own) == 40 and len(other) > 20
    assert sum(own) / len(own) >= 0.8 and sum(not v for v in other) / len(other) >= 0.85


@needs_dstc9
def test_every_wrong_entity_reply_the_check_accepts_is_labelled_by_hand():
    """bench/wrong_entity.py joins the held-out wrong-entity replies the shipped check accepts with the
    hand labels of bench/dstc9_wrong_entity.jsonl: every one must have a label (a change to the check
    that accepts new ones must label them, by the rules in the script), and the bound it prints is the
    reject rate left once the replies the passages state are accepted."""
    import subprocess
    import sys

    labels = [json.loads(line) for line in (REPO / "bench" / "dstc9_wrong_entity.jsonl").read_text().splitlines()]
    assert {row["label"] for row in labels} <= {"stated", "names another entity", "topic absent", "contradicted", "adds a fact"}
    run = subprocess.run([sys.executable, str(REPO / "bench" / "wrong_entity.py"), "--json"], capture_output=True,
                         text=True, timeout=600, check=True)
    result = json.loads(run.stdout)
    assert result["unlabelled"] == [], result["unlabelled"]
    assert result["accepted"] == sum(result["accepted_by_label"].values()) > 0
    stated = result["accepted_by_label"]["stated"]
    assert result["most_a_check_accepting_stated_replies_rejects"] == round(1 - stated / result["cases"], 3)
    assert result["rejected"] <= result["most_a_check_accepting_stated_replies_rejects"]


def test_the_shipped_verifier_records_how_it_was_made(embedder):
    metadata = get_verifier(embedder).metadata
    assert metadata["seed"] == 0 and set(metadata["data"]["files"]) == {"knowledge.json", "labels.json"}
    assert metadata["data"]["limit"] is None and metadata["training"]["pairs"]["positive"] > 800
    # The rates measured at training time on a sample of the held-out part are recorded, not asserted here:
    # test_held_out_human_replies_are_accepted_... computes them, and BENCHMARKS.md has a larger run.
    held_out = metadata["metrics"]["held_out"]
    limit = metadata["metrics"]["held_out_limit"]  # None: the whole held-out part
    assert held_out["should_accept"] == (limit or held_out["should_accept"]) and held_out["should_reject"] > 100
    assert 0 <= held_out["accepted"] <= 1 and 0 <= held_out["rejected"] <= 1


@needs_dstc9
def test_training_is_reproducible_on_a_small_sample(embedder, tmp_path):
    from assistant.answering.verifier_training import fit_verifier, training_pairs

    cases = dstc9_cases(DSTC9, "fit", seed=0, limit=30)
    rows, labels, weights, counts = training_pairs(cases, embedder)
    assert counts["positive"] >= 25 and counts["negation_flipped"] > 0 and 0 < labels.mean() < 0.5
    first = fit_verifier(rows, labels, weights)
    second = fit_verifier(*training_pairs(dstc9_cases(DSTC9, "fit", seed=0, limit=30), embedder)[:3])
    assert np.array_equal(first[0], second[0]) and first[1] == second[1]
    other = fit_verifier(*training_pairs(dstc9_cases(DSTC9, "fit", seed=1, limit=30), embedder)[:3])
    assert not np.array_equal(first[0], other[0])  # the seed chooses the sample

    verifier = Verifier(first[0], first[1], {"seed": 0, "embedding_model": embedder.name})
    verifier.save(tmp_path)
    loaded = Verifier.load(tmp_path)
    assert np.array_equal(loaded.scores(rows[:5]), verifier.scores(rows[:5])) and loaded.metadata["seed"] == 0


def _case_file(path, cases) -> None:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))


def test_cli_eval_support_on_a_labelled_file(tmp_path):
    passages = [{"text": p.text, "title": p.title, "section": p.section} for p in HOTEL]
    file = tmp_path / "labelled.jsonl"
    _case_file(file, [
        {"passages": passages, "answer": "Sorry, there's no breakfast here.", "accept": True, "question": "Is there breakfast?"},
        {"passages": passages, "answer": "Check-in starts at 3 pm.", "accept": True},
        {"passages": passages, "answer": "Check-in is from 2 pm to 11 pm.", "accept": False},
        {"passages": passages, "answer": "The Gonville Hotel has free parking.", "accept": False, "question": "Parking?"},
    ])
    assert len(read_cases(file)) == 4
    result = CliRunner().invoke(app, ["eval", "support", "--file", str(file), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cases"] == 4 and data["helpmate"]["accepted"] == 1.0 and data["helpmate"]["rejected"] == 1.0
    assert data["today"]["accepted"] < 1.0  # the word rules reject "no breakfast here" against "No breakfast is offered."
    assert data["helpmate"]["ms_per_answer"]["median"] > 0

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"passages": [], "answer": "x", "accept": true}\n')
    result = CliRunner().invoke(app, ["eval", "support", "--file", str(bad)])
    assert result.exit_code == 1 and "line 1" in result.output


@needs_dstc9
def test_cli_eval_support_on_dstc9_prints_both_checks():
    result = CliRunner().invoke(app, ["eval", "support", "--dstc9", str(DSTC9), "--limit", "8", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "today" in result.output and "helpmate" in result.output and "own: accepted" in result.output
