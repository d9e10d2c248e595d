"""`helpmate finetune export --from-conversations` on a small real sample: four demo conversations and
one with personal data, the demo help center's payments pages ingested, the real embedding model
and support check. Greetings and hand-offs are counted exactly; the support check keeps the
replies the pages state and leaves out the one they do not cover (washing a sleeping bag)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.conversations.framing import strip_email_framing
from finetune.conversation_export import classify_reply
from tests.conftest import REPO

DEMO = REPO / "demo"
SAMPLE = ("conv-0006", "conv-0008", "conv-0035", "conv-0050")
PRIVATE = ("conv-private", "2026-11-21T09:00:00+00:00", "customer",
           "Hello,\n\nCan I use my gift card in your Zurich store? Write to mia.lehmann@example.com "
           "or call +49 170 1234567.\n\nRegards,\nMia Lehmann", "email")
# A reply no demo conversation has (a duplicate of one would be dropped, and with it what this test checks).
PRIVATE_REPLY = ("conv-private", "2026-11-21T10:00:00+00:00", "agent",
                 "Hi Mia,\n\nNo, gift cards cannot be used in our Zurich store.\n\nBest,\nSelin", "email")


def _demo_rows() -> list[dict[str, str]]:
    with open(DEMO / "conversations.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_email_framing_is_removed_and_greetings_and_hand_offs_are_recognised():
    rows = {(r["conversation_id"], r["role"], n): r["text"] for n, r in enumerate(_demo_rows())}
    first = [text for (cid, role, _), text in rows.items() if cid == "conv-0001"]
    assert strip_email_framing(first[0]) == "Which of your stores has the foot scanner for boots?"
    assert strip_email_framing(first[1]) == "The 3D foot scanner is in the boot fitting studio of our Zurich store."
    assert strip_email_framing(first[4]) == "Thanks, that helps a lot!"
    assert classify_reply("Anytime. Let us know if there's anything else.") == "greeting"
    assert classify_reply("Thank you for letting us know, and sorry about the trouble.") == "greeting"
    assert classify_reply("Sounds great - have a wonderful time out there!") == "greeting"
    assert classify_reply("Sorry, rentals are only available in our Munich and Vienna stores.") is None, "an apology that states a fact"
    assert classify_reply("I'm sorry, we don't refund the difference when our own price drops after a purchase.") is None
    assert classify_reply("I'm very sorry about the delay, Felix. I've checked NG-10202384: the parcel is in the DHL network.") == "hand-off"
    assert classify_reply("Could you send me a photo of the label inside the tent bag?") == "hand-off"
    assert classify_reply("Done - the replacement ships today.") == "hand-off"
    assert classify_reply("Yes, gift cards can be combined with any other payment method.") is None


@pytest.fixture(scope="module")
def demo_sample(tmp_path_factory, embedder):
    """The payments pages of the demo help center as knowledge base "demo", and the sample imported into it."""
    from assistant.config import get_settings
    from assistant.conversations.store import import_conversations
    from assistant.database import dispose_engines
    from ingest.pipeline import Ingestor

    root = tmp_path_factory.mktemp("conversation-export")
    rows = [r for r in _demo_rows() if r["conversation_id"] in SAMPLE]
    path = root / "sample.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["conversation_id", "timestamp", "role", "text", "channel"])
        writer.writerows([[r["conversation_id"], r["timestamp"], r["role"], r["text"], r["channel"]] for r in rows])
        writer.writerows([PRIVATE, PRIVATE_REPLY])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPMATE_DATA_DIR", str(root / "data"))
        patch.delenv("HELPMATE_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        settings = get_settings()
        Ingestor("demo", settings, embedder, show_progress=False).run([DEMO / "helpcenter" / "payments"])
        import_conversations(path, "demo", settings=settings, show_progress=False)
        yield settings
        dispose_engines()
        get_settings.cache_clear()


def test_export_from_conversations_counts_what_it_leaves_out_and_redacts_what_it_keeps(demo_sample, tmp_path):
    from ui.cli import app

    folder = tmp_path / "snapshot"
    result = CliRunner().invoke(app, ["finetune", "export", str(folder), "--from-conversations", "--kb", "demo", "--eval-share", "0"])
    assert result.exit_code == 0, result.output
    source = json.loads((folder / "source.json").read_text())
    counts = source["counts"]
    assert source["agent_replies"] == 9 and sum(counts.values()) == 9
    assert (counts["greeting"], counts["hand-off"]) == (1, 2)
    assert counts["unsupported"] >= 1, "washing a sleeping bag is not on the payments pages"
    assert counts["kept"] >= 2, counts
    assert f"{counts['kept']} kept" in result.output and "2 hand-offs" in result.output
    examples = [json.loads(line) for line in (folder / "sft_train.jsonl").read_text().splitlines()]
    assert len(examples) == counts["kept"] - json.loads((folder / "manifest.json").read_text())["duplicates_dropped"]["sft"]
    texts = {e["messages"][-1]["content"]: e["messages"][1]["content"] for e in examples}
    combined = [answer for answer in texts if "Yes, gift cards can be combined with any other payment method" in answer]
    assert combined and all(re.match(r"\[\d\] Yes, gift cards", answer) for answer in combined), \
        "a kept reply opens with the citation of its passage, as the grounded answerer answers"
    assert not any("wash" in prompt.split("Question:")[-1] for prompt in texts.values())
    everything = (folder / "sft_train.jsonl").read_text()
    assert "mia.lehmann@example.com" not in everything and "1234567" not in everything and "[EMAIL]" in everything
    assert "Hi Mia" not in everything and "Best,\\nSelin" not in everything and "Regards" not in everything
    prompt = next(p for p in texts.values() if "[EMAIL]" in p)
    assert prompt.startswith("Passages (quoted") and "They cannot be used in our Zurich store." in prompt.split("Question:")[0]
