"""What a message asks for, decided without the language model.

Small models call tools badly, so the common cases are routed by rules and embeddings: a request
for a person (rules for the usual words, and similarity to example requests for the rest), an
operator's sentiment question (``assistant.analytics.questions``), a request to show a
conversation by number, a greeting, thanks or goodbye (``smalltalk``). Everything else is a
question for the knowledge base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from assistant.agent.smalltalk import smalltalk
from assistant.analytics.questions import is_sentiment_question
from assistant.embeddings import Embedder

Intent = Literal["human", "report", "conversation", "smalltalk", "question"]

_PERSON = (r"(?:(?:a|an|some|real|actual|live|human) ){0,2}(?:human(?: being)?|person|people|agent|representative|rep|"
           r"operator|someone|somebody|staff|manager|supervisor|customer (?:service|support)|support team|your team|"
           r"member of (?:your |the )?(?:staff|team|support))")
_HUMAN = re.compile(
    rf"\b(?:(?:talk|speak|chat)(?:ing)? (?:to|with) {_PERSON}|(?:connect|transfer|put|pass|escalate) (?:me |this )?"
    rf"(?:to|through to|on to|over to) {_PERSON}|(?:i )?(?:want|need|would like|'d like) {_PERSON}|get me {_PERSON}|"
    rf"help from {_PERSON}|{_PERSON}\W+(?:\w+\W+){{0,3}}?(?:contact|call|ring|phone|email) me|"
    rf"(?:human|real person|live agent) please|(?:call|ring) me back|escalate (?:this|my case|it))\b",
    re.I,
)
_CONVERSATION = re.compile(r"\b(?:show|open|get|display|see|view)\b.*?\b(?:conversation|transcript|chat)\s*#?\s*(\d+)\b", re.I)
# Requests for a person that the rules above may miss; a message this close to one of them is one.
HUMAN_EXAMPLES: tuple[str, ...] = (
    "I want to talk to a real person",
    "Can I speak with someone from your team?",
    "Please let me talk to a human being, not a bot",
    "Stop the bot and get me a member of staff",
    "I need to speak to a customer service representative",
    "Is there anybody real I can talk to?",
    "Can someone from support call me?",
)
HUMAN_MIN_SIMILARITY = 0.62


@dataclass
class Route:
    """The router's decision: the intent, the arguments it found, and why (for the trace)."""

    intent: Intent
    arguments: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


class Router:
    """``Router(embedder).route(text)``; the example requests are embedded once."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self._examples: np.ndarray | None = None

    def _human_similarity(self, text: str) -> float:
        if self._examples is None:
            self._examples = self.embedder.encode(list(HUMAN_EXAMPLES))
        vector = self.embedder.encode([text], cache=True)[0]
        return float(np.max(self._examples @ vector))

    def route(self, text: str) -> Route:
        text = text.strip()
        if _HUMAN.search(text):
            return Route("human", reason="asks for a person")
        if m := _CONVERSATION.search(text):
            return Route("conversation", {"conversation_id": int(m.group(1))}, "asks to see a conversation")
        if is_sentiment_question(text):
            return Route("report", reason="an operator's sentiment question")
        if kind := smalltalk(text):
            return Route("smalltalk", {"kind": kind}, f"a {kind}, not a question")
        similarity = self._human_similarity(text)
        if similarity >= HUMAN_MIN_SIMILARITY:
            return Route("human", reason=f"close to a request for a person (similarity {similarity:.2f})")
        return Route("question", reason="a question for the knowledge base")
