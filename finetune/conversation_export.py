"""A team's own history as training data: each customer question and the human agent's reply that followed.

`helpmate finetune export --from-conversations` reads imported conversations (role ``agent``:
`helpmate import-conversations`) and turns every agent reply into a training example in Helpmate's
prompt format, so the grounded answerer can learn a team's voice through the same snapshot, gate
and promotion as feedback (``finetune.dataset``, ``finetune.evaluation``, ``finetune.registry``):

* the **question** is the customer's message(s) since the previous reply, the earlier turns are
  the conversation so far, and the **passages** are retrieved for the question now, the way the
  assistant retrieves them (follow-ups made standalone, hybrid search, ``HELPMATE_ANSWER_PASSAGES``),
  because the adapter must learn to answer from what retrieval gives it;
* e-mail salutations and signatures ("Hi Mia,", "Best,\\nSelin") are removed from both sides:
  they are not the answer, and a model would learn to sign with an agent's name;
* a reply is **left out, and counted**, when it is

  - a ``greeting``: only thanks, pleasantries or goodbyes ("Anytime. Let us know if there's
    anything else."): nothing to answer from passages;
  - a ``hand-off``: the agent acts on the case or passes it on ("I've escalated NG-16109648", "I'll
    pass them on to the team", "Could you send me a photo"): an assistant that learned to write
    these would promise what it cannot do;
  - ``unsupported``: the support check (``assistant.answering.grounding.Grounder.check`` with the
    learned verifier, which was calibrated on human agents' replies) does not find it in the
    retrieved passages: the reply
    used knowledge the help center lacks (an order's state, a customer's history), and an adapter
    that learned it would learn to invent;

* a kept reply is the support check's text of it: each claim with the ``[n]`` of the passage that
  supports it, the first one moved to the front, which is the grounded answerer's format
  (``finetune.answerer_data.citation_first``; training continues from that adapter);
* everything is **redacted** and split by conversation by ``finetune.dataset.write_snapshot``, as
  feedback is. ``source.json`` records the counts. Agents' replies are staff-written, so the
  snapshot counts as reviewed (``review_status: approved``) for the gate.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal

from sqlalchemy import select

from assistant.answering.grounding import Grounder, split_sentences
from assistant.answering.prompts import Turn, rewrite_followup
from assistant.config import Settings
from assistant.conversations.framing import strip_email_framing
from assistant.database import session_scope
from assistant.database.models import Conversation
from finetune.answerer_data import citation_first
from finetune.dataset import FeedbackRecord, SnapshotManifest, write_snapshot
from finetune.export import SOURCE

Verdict = Literal["kept", "greeting", "hand-off", "unsupported"]
Echo = Callable[[str], None]

_PLEASANTRY = re.compile(
    r"^\W*(?:(?:oh|ok|okay|great|perfect|again|and|so)\W+)*(?:thanks?|thank you|you'?re (?:very )?welcome|anytime|any time|"
    r"happy to help|glad (?:to|i could)|my pleasure|no problem|enjoy|have a (?:good|great|nice|wonderful|lovely)|"
    r"let us know|let me know|feel free|sounds (?:great|good)|that'?s (?:great|good|wonderful) to hear|"
    r"i (?:completely |totally |fully )?understand|i'?m (?:very |so |really )?sorry|sorry|apologies|please accept our apologies|"
    r"we apologi[sz]e|i apologi[sz]e|take care|bye|goodbye|see you|you too|cheers)\b", re.IGNORECASE)
_HANDOFF = re.compile(
    r"\b(?:i(?:'ve| have)|i(?:'ll| will)|we(?:'ve| have)|we(?:'ll| will))\s+(?:just\s+|also\s+|now\s+|personally\s+)?"
    r"(?:escalated|escalate|opened|open|passed|pass|forwarded|forward|asked|ask|flagged|flag|added|add|set|keep|"
    r"email|e-mail|call|contact|get back|cancelled|canceled|cancel|issued|issue|sent|send|refunded|refund|informed|inform|"
    r"reserved|reserve|checked|check|arranged|arrange|created|create|lend|look into|follow up)\b"
    r"|\b(?:could|can|would) you (?:please )?(?:send|tell|share|give|confirm|provide)\b|\bjust tell me\b"
    r"|\breply to this (?:message|email|e-mail)\b|\b(?:a|my) colleague\b|\bconnect you\b|\btransfer(?:ring)? you\b"
    r"|^\W*done\b", re.IGNORECASE)


def is_pleasantry(sentence: str) -> bool:
    """Whether a sentence only thanks, apologises or says goodbye: it opens with such a phrase and
    whatever follows its first comma, dash or full stop is a name or another pleasantry ("Sorry for the
    wait, Tom." is one; "Sorry, rentals are only available in Munich." states a fact)."""
    match = _PLEASANTRY.match(sentence.strip())
    if not match:
        return False
    rest = re.split(r"[,;.!?]|\s[-–]\s", sentence.strip()[match.end():], maxsplit=1)
    if len(rest) < 2:
        return True
    remainder = rest[1].strip(" .!?-–")
    return len(remainder.split()) <= 2 or is_pleasantry(remainder)


def classify_reply(reply: str) -> Verdict | None:
    """``greeting`` or ``hand-off`` (module docstring), or None when the support check decides."""
    sentences = split_sentences(reply) or [reply]
    if all(is_pleasantry(s) for s in sentences):
        return "greeting"
    if any(_HANDOFF.search(s) for s in sentences):
        return "hand-off"
    return None


@dataclass
class Pair:
    """One agent reply and what came before it."""

    conversation: str
    kb: str | None
    question: str
    reply: str
    history: list[Turn] = field(default_factory=list)


def conversation_pairs(settings: Settings, kb: str | None = None) -> list[Pair]:
    """Every agent reply that answers customer messages, oldest conversation first, texts unframed."""
    pairs = []
    with session_scope(settings) as session:
        query = select(Conversation).order_by(Conversation.started_at, Conversation.id)
        if kb is not None:
            query = query.where(Conversation.kb == kb)
        for conversation in session.scalars(query):
            turns: list[Turn] = []
            asked: list[str] = []
            for message in conversation.messages:
                text = strip_email_framing(message.text)
                if not text:
                    continue
                if message.role == "customer":
                    asked.append(text)
                    continue
                if message.role == "agent" and asked:
                    pairs.append(Pair(conversation.external_id or str(conversation.id), conversation.kb, " ".join(asked),
                                      text, list(turns)))
                turns += [("customer", q) for q in asked] + [("assistant", text)]
                asked = []
    return pairs


@dataclass
class ConversationExport:
    folder: Path
    manifest: SnapshotManifest
    pairs: int
    counts: dict[str, int]


def conversation_records(settings: Settings, kb: str | None = None, echo: Echo = print) -> tuple[list[FeedbackRecord], Counter[str], int]:
    """The kept replies as records (the answer to learn, rated good), the count of each verdict, and the pairs seen."""
    from assistant.retrieval.retriever import Retriever

    pairs = conversation_pairs(settings, kb)
    retriever = Retriever(settings)
    # The learned verifier whatever HELPMATE_SUPPORT_CHECK says for model answers: it was calibrated on human
    # agents' replies, which the word-overlap rules mostly reject (BENCHMARKS.md, "Support check").
    grounder = Grounder(retriever.embedder, settings.support_min_score, "verifier")
    counts: Counter[str] = Counter({verdict: 0 for verdict in ("kept", "greeting", "hand-off", "unsupported")})
    records = []
    for number, pair in enumerate(pairs, start=1):
        verdict = classify_reply(pair.reply)
        if verdict is None:
            if not pair.kb:
                raise ValueError(f"conversation {pair.conversation} has no knowledge base; import it with --kb or export with --kb")
            recent = pair.history[-settings.history_turns:] if settings.history_turns > 0 else []
            query = rewrite_followup(pair.question, recent, settings.history_turns)
            hits = retriever.search(query, pair.kb, k=settings.answer_passages, mode="hybrid",
                                    per_document=settings.answer_chunks_per_document)
            report = grounder.check(pair.reply, hits, query) if hits else None
            if report is not None and report.supported:
                verdict = "kept"
                records.append(FeedbackRecord(conversation_id=pair.conversation, answer=citation_first(report.text), label="good",
                                              question=pair.question, passages=tuple(hits), history=tuple(recent)))
            else:
                verdict = "unsupported"
        counts[verdict] += 1
        if number % 20 == 0:
            echo(f"{number}/{len(pairs)} replies checked: {dict(counts)}")
    return records, counts, len(pairs)


def export_conversations(folder: Path, settings: Settings, kb: str | None = None, eval_share: float = 0.25,
                         echo: Echo = print) -> ConversationExport:
    """Write the snapshot of the kept replies (redacted, de-duplicated, split by conversation) and ``source.json``."""
    exported_at = datetime.now(timezone.utc)
    records, counts, pairs = conversation_records(settings, kb, echo)
    if not records:
        raise ValueError(f"none of {pairs} agent replies could be used ({dict(counts)}); import conversations with agent "
                         "replies (`helpmate import-conversations FILE --kb NAME`) and ingest that knowledge base first")
    manifest = write_snapshot(records, folder, eval_share=eval_share)
    (Path(folder) / SOURCE).write_text(json.dumps({
        "source": "conversations", "kb": kb, "agent_replies": pairs, "counts": dict(counts),
        "feedback_rows": 0, "feedback_through_id": None,
        "review_status": "approved", "approved_as": "human agents' replies (staff-written), kept only when supported",
        "support_min_score": settings.support_min_score, "exported_at": exported_at.isoformat(),
    }, indent=2) + "\n")
    return ConversationExport(Path(folder), manifest, pairs, dict(counts))
