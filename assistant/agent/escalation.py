"""When the assistant hands a conversation to a person.

Three rules, each a setting: the customer asks for a person (the router sees it); the customer's
last ``escalation_negative_streak`` messages all score at or below ``escalation_negative_score``;
the assistant could not answer (a refusal) ``escalation_refusal_streak`` times in a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from assistant.config import Settings
from assistant.database.models import Message

HANDOVER_TEXT = "I've passed our conversation to a member of our team (ticket #{ticket}); they will get back to you here."


@dataclass(frozen=True)
class Escalation:
    """Why a ticket is opened, and how urgent it is."""

    reason: str
    priority: str


def check(messages: Sequence[Message], settings: Settings, this_answer_refused: bool) -> Escalation | None:
    """Whether the conversation so far (oldest first, this turn's customer message included) needs a person.

    ``this_answer_refused`` is whether the reply being written now is a refusal; earlier refusals
    are read from the stored assistant messages.
    """
    customers = [m for m in messages if m.role == "customer"]
    streak = settings.escalation_negative_streak
    recent = customers[-streak:]
    if streak > 0 and len(recent) == streak and all(
        m.sentiment_score is not None and m.sentiment_score <= settings.escalation_negative_score for m in recent
    ):
        return Escalation(f"the customer's last {streak} messages were strongly negative "
                          f"(scores {', '.join(f'{m.sentiment_score:.2f}' for m in recent)})", "high")
    needed = settings.escalation_refusal_streak
    if this_answer_refused and needed > 0:
        earlier = [m.answer_kind for m in messages if m.role == "assistant"][-(needed - 1):] if needed > 1 else []
        if len(earlier) == needed - 1 and all(kind == "refusal" for kind in earlier):
            return Escalation(f"the assistant could not answer {needed} times in a row", "normal")
    return None
