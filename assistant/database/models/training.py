"""Fine-tuned model versions and the verified answers operators approved."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant.database.models.base import Base, UTCDateTime, utcnow


class ModelVersion(Base):
    """A fine-tuned adapter and its life: trained as a ``candidate``, then ``rejected`` by the
    evaluation gate or promoted to ``active`` (one at a time), later ``retired`` by a newer one.

    ``name`` is the model name vLLM serves the adapter under; it is never reused, since vLLM can
    serve a stale cached adapter when a changed one is loaded under an old name.
    ``feedback_through_id`` is the newest feedback the training snapshot included, so the periodic
    job can count what has come in since.
    """

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    base_model: Mapped[str] = mapped_column(String(300))
    adapter_path: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), index=True)  # candidate | active | retired | rejected
    data_hash: Mapped[str | None] = mapped_column(String(64))
    snapshot_path: Mapped[str | None] = mapped_column(String(2000))
    feedback_through_id: Mapped[int | None]
    training_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evaluation_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)  # why the gate promoted or rejected it, or why it was rolled back
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

class VerifiedAnswer(Base):
    """An answer an agent approved for a question; later questions close enough to it get it verbatim.

    ``embedding`` is the question's vector from ``embedding_model``; when the configured embedding
    model changes, the vector is recomputed on the next lookup rather than compared across models.
    """

    __tablename__ = "verified_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kb: Mapped[str] = mapped_column(String(200), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list[Any] | None] = mapped_column(JSON)
    embedding_model: Mapped[str | None] = mapped_column(String(300))
    approved_by: Mapped[str] = mapped_column(String(200))
    source_feedback_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
