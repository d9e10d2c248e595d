"""Verified answers: an agent approves an answer for a question, and questions that mean the same
thing get it verbatim, marked as verified, without retrieval or generation.

This takes effect at once, long before any fine-tuning: the fix for a wrong answer is live as soon
as an agent approves the correction. A match needs the same knowledge base and a cosine similarity
of the questions' embeddings of at least ``verified_min_similarity`` (see ``assistant.config`` for
the measured figures behind the default). The threshold is deliberately strict: a near-miss
("standard" instead of "express" shipping) must go through normal answering, since a confidently
wrong verified answer is worse than a generated one.

Question vectors are stored with the name of the embedding model that made them; a lookup
recomputes (and stores) the vectors made by another model rather than compare across models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import select

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Feedback, VerifiedAnswer
from assistant.embeddings import Embedder, get_embedder
from assistant.conversations.feedback import label_of


@dataclass(frozen=True)
class VerifiedMatch:
    """The verified answer that matched a question, and how closely."""

    id: int
    kb: str
    question: str
    answer: str
    similarity: float
    approved_by: str


def _vector(embedder: Embedder, text: str) -> list[float]:
    return [float(x) for x in embedder.encode([text])[0]]


def approve(kb: str, question: str, answer: str, approved_by: str, settings: Settings,
            embedder: Embedder | None = None, source_feedback_id: int | None = None) -> VerifiedAnswer:
    """Store ``answer`` as the verified answer to ``question`` in knowledge base ``kb``.

    An earlier verified answer to the very same question (same knowledge base, same wording up to
    case and spaces) is replaced, so re-approving a better correction does not leave two answers.
    """
    kb, question, answer, approved_by = (kb or "").strip(), (question or "").strip(), (answer or "").strip(), (approved_by or "").strip()
    for value, what in ((kb, "knowledge base"), (question, "question"), (answer, "answer"), (approved_by, "approved_by (who approves it)")):
        if not value:
            raise ValueError(f"a verified answer needs a {what}")
    embedder = embedder or get_embedder(settings)
    vector = _vector(embedder, question)
    normal = " ".join(question.casefold().split())
    with session_scope(settings) as session:
        for old in session.scalars(select(VerifiedAnswer).where(VerifiedAnswer.kb == kb)).all():
            if " ".join(old.question.casefold().split()) == normal:
                session.delete(old)
        row = VerifiedAnswer(kb=kb, question=question, answer=answer, embedding=vector, embedding_model=embedder.name,
                             approved_by=approved_by, source_feedback_id=source_feedback_id,
                             created_at=datetime.now(timezone.utc))
        session.add(row)
        session.flush()
    return row


def approve_feedback(feedback_id: int, approved_by: str, answer: str | None = None, *, settings: Settings,
                     embedder: Embedder | None = None) -> VerifiedAnswer:
    """Approve a rating's corrected answer (or, rated good without a correction, its answer; or
    ``answer`` given here) as the verified answer to its question, in its knowledge base."""
    with session_scope(settings) as session:
        feedback = session.get(Feedback, feedback_id)
        if feedback is None:
            raise ValueError(f"feedback {feedback_id} does not exist; `helpmate feedback list` shows the stored ids")
        kb, question = feedback.kb, feedback.question
        chosen = answer or feedback.corrected_answer or (feedback.answer if label_of(feedback.rating) == "good" else None)
    if not kb:
        raise ValueError(f"feedback {feedback_id} names no knowledge base; approve it with an explicit --kb")
    if not chosen:
        raise ValueError(f"feedback {feedback_id} rated its answer {feedback.rating!r} and has no correction; "
                         "give the answer to verify")
    return approve(kb, question, chosen, approved_by, settings, embedder, source_feedback_id=feedback_id)


def lookup(kb: str, question: str, settings: Settings, embedder: Embedder | None = None,
           min_similarity: float | None = None) -> VerifiedMatch | None:
    """The verified answer of ``kb`` whose question is most similar to ``question``, if at least
    ``min_similarity`` (default: the ``verified_min_similarity`` setting); else None."""
    threshold = settings.verified_min_similarity if min_similarity is None else min_similarity
    with session_scope(settings) as session:
        rows = session.scalars(select(VerifiedAnswer).where(VerifiedAnswer.kb == kb).order_by(VerifiedAnswer.id)).all()
        if not rows:
            return None
        embedder = embedder or get_embedder(settings)
        stale = [row for row in rows if row.embedding_model != embedder.name or not row.embedding]
        if stale:
            for row, vector in zip(stale, embedder.encode([row.question for row in stale])):
                row.embedding, row.embedding_model = [float(x) for x in vector], embedder.name
        matrix = np.asarray([row.embedding for row in rows], dtype=np.float32)
        scores = matrix @ embedder.encode([question], cache=True)[0]
        best = int(np.argmax(scores))
        if float(scores[best]) < threshold:
            return None
        row = rows[best]
        return VerifiedMatch(row.id, row.kb, row.question, row.answer, float(scores[best]), row.approved_by)


def list_verified(kb: str | None, settings: Settings) -> list[VerifiedAnswer]:
    """The verified answers (of one knowledge base), oldest first."""
    query = select(VerifiedAnswer).order_by(VerifiedAnswer.id)
    if kb is not None:
        query = query.where(VerifiedAnswer.kb == kb)
    with session_scope(settings) as session:
        return list(session.scalars(query).all())


def remove_verified(verified_id: int, settings: Settings) -> None:
    """Withdraw a verified answer; later questions go through normal answering again."""
    with session_scope(settings) as session:
        row = session.get(VerifiedAnswer, verified_id)
        if row is None:
            raise ValueError(f"verified answer {verified_id} does not exist")
        session.delete(row)
