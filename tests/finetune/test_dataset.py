"""Training snapshots from feedback: the three views, redaction, de-duplication, the split by
conversation and the content hash."""

from __future__ import annotations

import hashlib
import json

import pytest

from assistant.answering.prompts import build_messages
from assistant.retrieval.types import Hit
from finetune.dataset import (
    FeedbackRecord,
    is_eval_conversation,
    read_jsonl,
    read_manifest,
    write_snapshot,
)



def _hit(number: int, text: str, title: str) -> Hit:
    return Hit(chunk_id=number, document_id=number, text=text, source=f"{title.lower()}.md", title=title,
               section=None, page=None, score=1.0)


SHIPPING = _hit(1, "Express shipping costs 14.90 EUR and delivers the next business day if you order before 14:00 CET.", "Shipping")
RETURNS = _hit(2, "Unused items can be returned within 30 days of delivery.", "Returns")
GIFT_CARDS = _hit(3, "Gift cards are valid for 3 years.", "Gift cards")


def _records() -> list[FeedbackRecord]:
    return [
        # Rated good: learn it.
        FeedbackRecord("conv-1", question="How much is express shipping?", passages=(SHIPPING, RETURNS),
                       answer="Express shipping costs 14.90 EUR [1].", label="good"),
        # Rated bad and corrected by an agent: learn the correction, prefer it over the answer.
        FeedbackRecord("conv-2", question="How long is a gift card valid? Mail me at anna@example.com",
                       passages=(GIFT_CARDS,), history=(("customer", "Hi!"), ("assistant", "Hello, how can I help?")),
                       answer="Gift cards are valid for 1 year.", label="bad",
                       corrected="Gift cards are valid for 3 years from the date of purchase [1]."),
        # Rated bad, no correction: only KTO learns from it, as an undesirable answer.
        FeedbackRecord("conv-3", question="Can I pay cash on delivery?", passages=(),
                       answer="Yes, call +49 89 1234 5678 to arrange it.", label="bad"),
        # The same rating again with other spacing and case: a duplicate.
        FeedbackRecord("conv-4", question="How much is  express shipping?", passages=(SHIPPING, RETURNS),
                       answer="express shipping costs 14.90 EUR [1].", label="good"),
    ]


def test_views_hold_what_each_trainer_needs(tmp_path):
    manifest = write_snapshot(_records(), tmp_path / "snap", eval_share=0.0)
    folder = tmp_path / "snap"

    sft = read_jsonl(folder / "sft_train.jsonl")
    assert [line["messages"][-1] for line in sft] == [
        {"role": "assistant", "content": "Express shipping costs 14.90 EUR [1]."},
        {"role": "assistant", "content": "Gift cards are valid for 3 years from the date of purchase [1]."},
    ]
    # The assistant's own prompt, numbered passages, history and all.
    assert sft[0]["messages"][:-1] == build_messages("How much is express shipping?", [SHIPPING, RETURNS])
    assert [m["role"] for m in sft[0]["messages"]] == ["system", "user", "assistant"]
    assert f"[1] Shipping\n{SHIPPING.text}\n\n[2] Returns\n{RETURNS.text}" in sft[0]["messages"][1]["content"]
    assert "Customer: Hi!" in sft[1]["messages"][1]["content"]

    preference = read_jsonl(folder / "preference_train.jsonl")
    assert len(preference) == 1
    assert preference[0]["chosen"] == [{"role": "assistant", "content": "Gift cards are valid for 3 years from the date of purchase [1]."}]
    assert preference[0]["rejected"] == [{"role": "assistant", "content": "Gift cards are valid for 1 year."}]
    assert preference[0]["prompt"] == sft[1]["messages"][:-1]

    kto = read_jsonl(folder / "kto_train.jsonl")
    assert [(line["completion"][0]["content"], line["label"]) for line in kto] == [
        ("Express shipping costs 14.90 EUR [1].", True),
        ("Gift cards are valid for 3 years from the date of purchase [1].", True),
        ("Gift cards are valid for 1 year.", False),
        ("Yes, call [PHONE] to arrange it.", False),
    ]
    assert all(set(line) == {"prompt", "completion", "label"} and isinstance(line["label"], bool) for line in kto)

    assert manifest.records == 4
    assert manifest.duplicates_dropped == {"sft": 1, "preference": 0, "kto": 1}
    assert manifest.examples("sft", "train") == 2 and manifest.examples("sft", "eval") == 0


def test_every_text_is_redacted(tmp_path):
    records = [FeedbackRecord(
        "c1", question="Refund to DE89 3704 0044 0532 0130 00 please, I'm anna@example.com",
        passages=(_hit(4, "Call us on +49 89 1234 5678.", "Contact"),), answer="We refunded card 4111 1111 1111 1111.",
        label="bad", corrected="We will refund to account 12345678 within 5 business days.")]
    manifest = write_snapshot(records, tmp_path / "snap", eval_share=0.0)
    text = "".join(p.read_text() for p in sorted((tmp_path / "snap").glob("*.jsonl")))
    for secret in ("DE89", "anna@", "1234 5678", "4111", "12345678"):
        assert secret not in text
    for placeholder in ("[IBAN]", "[EMAIL]", "[PHONE]", "[CARD]", "[ACCOUNT]"):
        assert placeholder in text
    assert "5 business days" in text
    # Counted once per record, though the prompt is written into every view.
    assert set(manifest.redactions) == {"[IBAN]", "[EMAIL]", "[PHONE]", "[CARD]", "[ACCOUNT]"}


def test_recorded_prompt_is_used_as_sent(tmp_path):
    prompt = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, where is my order?"},
              {"role": "assistant", "content": "Which order number?"}, {"role": "user", "content": "NG-2026-118734"})
    write_snapshot([FeedbackRecord("c1", prompt=prompt, answer="It ships today.", label="good")], tmp_path / "snap", eval_share=0.0)
    [line] = read_jsonl(tmp_path / "snap" / "sft_train.jsonl")
    assert line["messages"] == [*prompt, {"role": "assistant", "content": "It ships today."}]


def test_split_is_by_conversation_deterministic_and_stable(tmp_path):
    records = [FeedbackRecord(f"conversation-{c}", question=f"Question {c}.{turn}", answer=f"Answer {c}.{turn}", label="good")
               for c in range(400) for turn in range(3)]
    manifest = write_snapshot(records, tmp_path / "a", eval_share=0.2)
    train = read_jsonl(tmp_path / "a" / "sft_train.jsonl")
    evaluation = read_jsonl(tmp_path / "a" / "sft_eval.jsonl")

    def conversations(lines):
        return {line["messages"][-1]["content"].split()[1].split(".")[0] for line in lines}

    assert conversations(train).isdisjoint(conversations(evaluation))
    assert len(train) % 3 == 0 and len(evaluation) % 3 == 0  # all three turns on the same side
    assert 0.14 < len(conversations(evaluation)) / 400 < 0.26
    assert manifest.conversations == {"train": len(conversations(train)), "eval": len(conversations(evaluation))}

    # More feedback later never moves a conversation to the other side.
    more = records + [FeedbackRecord(f"conversation-{c}", question=f"Question {c}.9", answer=f"Answer {c}.9", label="good")
                      for c in range(400, 500)]
    write_snapshot(more, tmp_path / "b", eval_share=0.2)
    assert conversations(evaluation) <= conversations(read_jsonl(tmp_path / "b" / "sft_eval.jsonl"))
    assert all(is_eval_conversation(f"conversation-{c}", 0.2) == (str(c) in conversations(evaluation)) for c in range(400))


def test_content_hash_covers_exactly_the_files(tmp_path):
    first = write_snapshot(_records(), tmp_path / "a", eval_share=0.5)
    second = write_snapshot(_records(), tmp_path / "b", eval_share=0.5)
    assert first.content_hash == second.content_hash
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()

    digest = hashlib.sha256()
    for name in sorted(first.files):
        assert hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest() == first.files[name]["sha256"]
        digest.update(f"{name}\n{first.files[name]['sha256']}\n".encode())
    assert digest.hexdigest() == first.content_hash
    assert read_manifest(tmp_path / "a") == first

    changed = _records()
    changed[0] = FeedbackRecord("conv-1", question="How much is express shipping?", passages=(SHIPPING, RETURNS),
                                answer="Express shipping costs 14.90 EUR.", label="good")
    assert write_snapshot(changed, tmp_path / "c", eval_share=0.5).content_hash != first.content_hash
    assert write_snapshot(_records(), tmp_path / "d", eval_share=0.0).content_hash != first.content_hash


def test_bad_input_is_refused_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match="label must be 'good' or 'bad'"):
        write_snapshot([FeedbackRecord("c9", question="Q?", answer="A.", label="thumbs-up")], tmp_path / "snap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs either the recorded prompt or the question"):
        write_snapshot([FeedbackRecord("c9", answer="A.", label="good")], tmp_path / "snap")
    with pytest.raises(ValueError, match="no feedback"):
        write_snapshot([], tmp_path / "snap")
    with pytest.raises(ValueError, match="eval_share"):
        write_snapshot(_records(), tmp_path / "snap", eval_share=1.0)
    assert list(tmp_path.iterdir()) == []

    write_snapshot(_records(), tmp_path / "snap")
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_snapshot(_records(), tmp_path / "snap")
    with pytest.raises(FileNotFoundError, match="not a feedback snapshot"):
        read_manifest(tmp_path)
    (tmp_path / "broken.jsonl").write_text('{"messages": []}\n{"messages": [\n')
    with pytest.raises(ValueError, match="broken.jsonl, line 2"):
        read_jsonl(tmp_path / "broken.jsonl")
    assert json.loads((tmp_path / "snap" / "manifest.json").read_text())["format"] == "helpmate-feedback-snapshot/1"
