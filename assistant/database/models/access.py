"""Who may do what: users, login attempts, the audit log, API keys, their rate windows and conversation secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.database.models.base import Base, UTCDateTime, utcnow


class User(Base):
    """Someone who logs in to the operator dashboard or the admin page (the chat needs no login).

    Only an Argon2 hash of the password is stored (``ui.auth``); ``role`` is operator or admin,
    and an admin may do everything an operator may. ``active`` False locks an account out
    without deleting who did what.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # operator | admin
    password_hash: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    knowledge_bases: Mapped[list[Any] | None] = mapped_column(JSON)  # an operator's knowledge bases; None: all

class LoginAttempt(Base):
    """One try to log in, kept to slow down guessing per user name and per client address."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_name_at", "name", "at"), Index("ix_login_attempts_client_at", "client", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    name: Mapped[str] = mapped_column(String(200))
    client: Mapped[str | None] = mapped_column(String(200))
    ok: Mapped[bool]

class AuditEntry(Base):
    """Who did what, for admins to read: logins, user and knowledge-base changes, reviews, promotions."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    client: Mapped[str | None] = mapped_column(String(200))

class ApiKey(Base):
    """A key for the HTTP API (`helpmate keys create`): role, knowledge bases, requests per minute.

    Only a SHA-256 hash is kept: a key is 40 random characters, so a fast hash cannot be reversed,
    and each request is checked with one indexed lookup (Argon2 suits passwords people choose).
    ``prefix`` tells keys apart in lists; a revoked key stays so the audit log can name it.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # customer | operator | admin
    knowledge_bases: Mapped[list[Any] | None] = mapped_column(JSON)  # None: all the role may use
    rate_limit: Mapped[int]  # requests per minute
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

class ApiRateWindow(Base):
    """Requests of one API key in one minute, counted here so that every API worker shares the count."""

    __tablename__ = "api_rate_windows"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # minutes since 1970
    requests: Mapped[int]

class ApiConversation(Base):
    """The hash of the secret that continues, reads and rates a conversation started through the API
    (a customer key sits in a web page, so the key alone must not reach anyone's conversation)."""

    __tablename__ = "api_conversations"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True,
                                                 autoincrement=False)
    secret_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
