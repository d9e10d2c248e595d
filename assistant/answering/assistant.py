"""Grounded answers: question → retrieval → relevance gate → prompt → model → support check → answer.

Four kinds of answer come out, and the JSON says which:

* ``verified``: an agent approved an answer for a question close enough to this one
  (``assistant.answering.verified_answers``); it is given verbatim, before any retrieval or generation.

* ``generated``: the model's answer, every claim of which is supported by a passage it cites
  (uncited claims get the citation of the passage that supports them; see ``grounding``).
* ``extractive``: the model's answer was not supported, so it was replaced by the passage
  sentences that best answer the question, cited. The model's text is kept in ``generated_text``.
* ``refusal``: no retrieved passage is similar enough to the question (``answer_min_relevance``),
  or the model said the passages do not answer it. The assistant then says the help center does
  not cover the question and offers a person, instead of guessing.

Verification needs the whole answer, so ``stream`` yields the model's tokens as they come and
then one final event with the checked answer; when that answer replaces what was streamed, the
final event says so and the UI shows the final text.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Sequence

from assistant.config import Settings, get_settings
from assistant.answering.grounding import Grounder, cited_numbers
from assistant.llm.base import ChatModel, GenerationOptions
from assistant.llm.factory import get_chat_model, use_answering_threads
from assistant.answering.prompts import Turn, build_messages, rewrite_followup
from assistant.retrieval.retriever import Retriever
from assistant.retrieval.types import Hit

AnswerKind = Literal["verified", "generated", "extractive", "refusal"]

# The offer is the agent's to replace when the conversation already waits for a person.
REFUSAL_OFFER = "Would you like me to connect you with a member of our team?"
REFUSAL_TEXT = f"I couldn't find this in our help center, so I'd rather not guess. {REFUSAL_OFFER}"
# Above an extractive answer in every chat: the customer watched the model's draft stream in and
# then saw it replaced, and is told why.
REPLACED_NOTE = "The drafted answer is not supported by the help center; here is what the help center says:"
# Long enough for a two-sentence answer with citations; on CPU every token costs tens of
# milliseconds. The prompt asks for one or two sentences, so a blank line ends the answer: what the
# embedded model writes after one is a numbered ramble or an echoed "Question: ..." that would
# only fail the support check.
ANSWER_OPTIONS = GenerationOptions(max_tokens=100, temperature=0.0, stop=("\n\n", "\nQuestion:"))
_MODEL_DECLINED = re.compile(
    r"\b(?:i\s+(?:do\s+not|don['’]t)\s+know|(?:passages?|documents?|context)\s+(?:do(?:es)?\s+not|don['’]t)\s+"
    r"(?:answer|contain|mention|say|cover))\b",
    re.IGNORECASE,
)


def model_declined(text: str) -> bool:
    """Whether a model's answer says the passages do not answer the question (the refusal the prompt asks for)."""
    return bool(_MODEL_DECLINED.search(text))


@dataclass
class Citation:
    """A passage an answer cites as ``[number]``, with where it comes from."""

    number: int
    chunk_id: int
    source: str
    title: str | None
    section: str | None
    page: int | None
    text: str

    @classmethod
    def from_hit(cls, number: int, hit: Hit) -> Citation:
        return cls(number, hit.chunk_id, hit.source, hit.title, hit.section, hit.page, hit.text)


@dataclass
class Answer:
    """An answer and everything needed to audit it.

    ``supported`` is whether the model's own answer passed the support check: True for a
    ``generated`` answer, False when it was replaced by an ``extractive`` one, None for a refusal
    (no model answer was checked). ``relevance`` is the best dense similarity of a retrieved
    passage to the question, the number the refusal gate compares with ``answer_min_relevance``.
    """

    question: str
    text: str
    kind: AnswerKind
    citations: list[Citation]
    retrieved: list[Hit]
    model: str | None
    latency_ms: float
    rewritten_question: str
    supported: bool | None
    relevance: float
    generated_text: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The answer as `helpmate ask --json` prints it."""
        return {
            "answer": self.text,
            "kind": self.kind,
            "supported": self.supported,
            "citations": [vars(c).copy() for c in self.citations],
            "retrieved": [
                {"number": n, "chunk_id": h.chunk_id, "source": h.source, "title": h.title, "section": h.section,
                 "page": h.page, "score": round(h.score, 4),
                 "dense_score": None if h.dense_score is None else round(h.dense_score, 4),
                 "bm25_score": None if h.bm25_score is None else round(h.bm25_score, 4)}
                for n, h in enumerate(self.retrieved, start=1)
            ],
            "model": self.model,
            "latency_ms": round(self.latency_ms, 1),
            "question": self.question,
            "rewritten_question": self.rewritten_question,
            "relevance": round(self.relevance, 4),
            "generated_text": self.generated_text,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TokenEvent:
    """A piece of the model's answer as it is generated (not yet checked)."""

    text: str


@dataclass(frozen=True)
class FinalEvent:
    """The checked answer; ``replaced`` means it is not the text that was streamed (show ``answer.text``)."""

    answer: Answer
    replaced: bool = False


AnswerEvent = TokenEvent | FinalEvent


@dataclass
class _Draft:
    """What the pipeline knows before the model speaks."""

    question: str
    query: str
    hits: list[Hit]
    relevance: float
    started: float
    history: list[Turn] = field(default_factory=list)


class Assistant:
    """Answers customers' questions from one knowledge base at a time; shares its models between calls."""

    def __init__(self, settings: Settings | None = None, retriever: Retriever | None = None,
                 model: ChatModel | None = None):
        self.settings = settings or get_settings()
        use_answering_threads(self.settings)
        self.retriever = retriever or Retriever(self.settings)
        self._model = model
        self.grounder = Grounder(self.retriever.embedder, self.settings.support_min_score, self.settings.support_check)

    @property
    def model(self) -> ChatModel:
        """Created on first use: a refusal never loads or calls the language model."""
        if self._model is None:
            self._model = get_chat_model(self.settings)
        return self._model

    def answer(self, question: str, kb: str, history: Sequence[Turn] = ()) -> Answer:
        """The checked answer to ``question`` (``history``: earlier (role, text) turns, oldest first)."""
        final = None
        for event in self.stream(question, kb, history):
            if isinstance(event, FinalEvent):
                final = event.answer
        assert final is not None, "stream() always ends with a FinalEvent"
        return final

    def stream(self, question: str, kb: str, history: Sequence[Turn] = ()) -> Iterator[AnswerEvent]:
        """Token events while the model writes, then one ``FinalEvent`` with the checked answer.

        Raises ``ModelUnavailableError`` (from the backend) when the model cannot be reached.
        """
        verified = self.verified_answer(question, kb, history)
        if verified is not None:
            yield FinalEvent(verified)
            return
        draft = self.retrieve(question, kb, history)
        if draft.relevance < self.settings.answer_min_relevance:
            yield FinalEvent(self._refusal(draft, None, None,
                                           f"best passage similarity {draft.relevance:.2f} is below "
                                           f"answer_min_relevance={self.settings.answer_min_relevance:.2f}"))
            return
        model = self.model
        pieces: list[str] = []
        for piece in model.stream(build_messages(draft.question, draft.hits, draft.history), ANSWER_OPTIONS):
            pieces.append(piece)
            yield TokenEvent(piece)
        generated = "".join(pieces).strip()
        if _MODEL_DECLINED.search(generated):
            yield FinalEvent(self._refusal(draft, model.name, generated, "the model said the passages do not answer it"),
                             replaced=True)
            return
        report = self.grounder.check(generated, draft.hits, draft.query)
        if report.supported:
            yield FinalEvent(self._finish(draft, report.text, "generated", model.name, True, generated),
                             replaced=report.text != generated)
            return
        text, _ = self.grounder.extractive_answer(draft.query, draft.hits)
        if not text:
            yield FinalEvent(self._refusal(draft, model.name, generated, "the passages hold no sentence to answer from"),
                             replaced=True)
            return
        answer = self._finish(draft, text, "extractive", model.name, False, generated, report.reason)
        yield FinalEvent(answer, replaced=True)

    def verified_answer(self, question: str, kb: str, history: Sequence[Turn] = ()) -> Answer | None:
        """The agent-approved answer for this question (a follow-up made standalone first), if one
        matches closely enough; ``relevance`` is then the similarity of the two questions."""
        from assistant.answering.verified_answers import lookup

        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        recent = list(history)[-self.settings.history_turns:] if self.settings.history_turns > 0 else []
        query = rewrite_followup(question, recent, self.settings.history_turns)
        match = lookup(kb, query, self.settings, self.retriever.embedder)
        if match is None:
            return None
        return Answer(question, match.answer, "verified", [], [], None, (time.perf_counter() - started) * 1000, query,
                      None, match.similarity,
                      reason=f"verified answer {match.id} (approved by {match.approved_by}) for {match.question!r}, "
                             f"question similarity {match.similarity:.2f} >= verified_min_similarity="
                             f"{self.settings.verified_min_similarity:.2f}")

    def retrieve(self, question: str, kb: str, history: Sequence[Turn] = ()) -> _Draft:
        """Rewrite a follow-up, search, and measure how relevant the best passage is."""
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        recent = list(history)[-self.settings.history_turns:] if self.settings.history_turns > 0 else []
        query = rewrite_followup(question, recent, self.settings.history_turns)
        passages, per_document = self.settings.answer_passages, self.settings.answer_chunks_per_document
        # Enough chunks to hold the best chunk of each of the `passages` best documents as well.
        found = self.retriever.search(query, kb, k=passages * per_document, mode="hybrid", per_document=per_document)
        leading: dict[int, Hit] = {}
        for hit in found:
            leading.setdefault(hit.document_id, hit)
        # The refusal gate measures the best chunk of each of the best documents, as it was calibrated
        # (BENCHMARKS.md "Refusal gate"): a second chunk of one article is no evidence that the question
        # is answerable, and counting it refused fewer unanswerable demo questions. Hybrid search scores
        # every candidate densely, so dense_score is the cosine of each hit.
        relevance = max((h.dense_score for h in list(leading.values())[:passages] if h.dense_score is not None),
                        default=0.0)
        return _Draft(question, query, found[:passages], relevance, started, recent)

    def _refusal(self, draft: _Draft, model: str | None, generated: str | None, reason: str) -> Answer:
        return Answer(draft.question, REFUSAL_TEXT, "refusal", [], draft.hits, model,
                      (time.perf_counter() - draft.started) * 1000, draft.query, None, draft.relevance,
                      generated, reason)

    def _finish(self, draft: _Draft, text: str, kind: AnswerKind, model: str, supported: bool, generated: str,
                reason: str = "") -> Answer:
        citations = [Citation.from_hit(n, draft.hits[n - 1]) for n in cited_numbers(text) if 1 <= n <= len(draft.hits)]
        return Answer(draft.question, text, kind, citations, draft.hits, model,
                      (time.perf_counter() - draft.started) * 1000, draft.query, supported, draft.relevance,
                      generated, reason)
