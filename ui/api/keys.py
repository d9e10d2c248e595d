"""API keys: created and revoked by `helpmate keys`, checked on every request, and rate-limited.

A key is ``hm_`` and 40 random characters, shown once when it is created; the database keeps its
SHA-256 hash (see ``ApiKey`` for why not Argon2) and its first characters to tell keys apart. Each
key has a role and, optionally, the knowledge bases it may use:

- **customer** (public: it sits in a web page): chat on the public knowledge bases (and of those,
  the key's), and the conversations it started, each only with that conversation's secret;
- **operator**: also reads conversations, reports, alerts and tickets of its knowledge bases;
- **admin**: everything, ingestion jobs included (an admin reaches every knowledge base).

Requests are counted per key and minute in the database (``ApiRateWindow``), so every worker of
`helpmate api --workers N` shares one count; over the key's limit a request gets 429 with
``Retry-After``. Creating and revoking keys is written to the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from assistant.access import ROLES, AccessDenied, Caller, audit
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import ApiKey, ApiRateWindow, KnowledgeBase

KEY_PREFIX = "hm_"
WINDOW_S = 60


def digest(secret: str) -> str:
    """The stored form of a key or a conversation secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_digest(secret: str, stored: str) -> bool:
    return hmac.compare_digest(digest(secret), stored)


@dataclass(frozen=True)
class KeyInfo:
    """A checked key: who it is, for requests and the audit log."""

    id: int
    name: str
    role: str
    knowledge_bases: frozenset[str] | None
    rate_limit: int

    @property
    def actor(self) -> str:
        return f"api-key {self.id} ({self.name})"

    def caller(self, settings: Settings, conversation_id: int | None = None, client: str | None = None) -> Caller:
        """The request's ``Caller``: a customer bound to ``conversation_id``, or the key's operator or admin."""
        if self.role == "customer":
            caller = Caller.customer(settings, conversation_id, client)
            if self.knowledge_bases is not None:
                caller = replace(caller, knowledge_bases=caller.knowledge_bases & self.knowledge_bases)
            return caller
        return Caller.staff(self.role, self.actor, self.knowledge_bases, client)  # type: ignore[arg-type]


def create_key(settings: Settings, role: str, knowledge_bases: Iterable[str] = (), name: str | None = None,
               rate_limit: int = 120, by: Caller | None = None) -> tuple[str, ApiKey]:
    """A new key (the secret, returned only here) and its stored row; audited as ``by``."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: choose customer, operator or admin")
    if rate_limit < 1:
        raise ValueError("--rate-limit must be at least 1 request per minute")
    kbs = sorted(set(knowledge_bases))
    if role == "admin" and kbs:
        raise ValueError("an admin key reaches every knowledge base; leave out --kb, or create an operator key")
    with session_scope(settings) as session:
        known = set(session.scalars(select(KnowledgeBase.name)))
        public = set(session.scalars(select(KnowledgeBase.name).where(KnowledgeBase.visibility == "public")))
    for kb in kbs:
        if kb not in known:
            raise ValueError(f"knowledge base {kb!r} does not exist; create it with `helpmate ingest PATH --kb {kb}`")
        if role == "customer" and kb not in public:
            raise ValueError(f"knowledge base {kb!r} is internal, so a customer key could not use it; "
                             f"publish it first with `helpmate kb publish {kb}`")
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    by = by or Caller.staff("admin", "local admin")
    with session_scope(settings) as session:
        row = ApiKey(name=(name or f"{role} key").strip()[:200], prefix=secret[:11], key_hash=digest(secret), role=role,
                     knowledge_bases=kbs or None, rate_limit=rate_limit, created_by=by.name)
        session.add(row)
        session.flush()
    audit(settings, by, "api_key.create", f"api-key {row.id} ({row.name})",
          {"role": role, "knowledge_bases": kbs or None, "rate_limit": rate_limit})
    return secret, row


def list_keys(settings: Settings) -> list[ApiKey]:
    with session_scope(settings) as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(settings: Settings, which: str, by: Caller | None = None) -> ApiKey:
    """Revoke the key with this id or prefix; it stops working at its next request (nothing caches keys)."""
    with session_scope(settings) as session:
        query = select(ApiKey).where(ApiKey.id == int(which)) if which.isdigit() else select(ApiKey).where(ApiKey.prefix == which)
        rows = list(session.scalars(query))
        if len(rows) != 1:
            raise ValueError(f"no key {which!r}; `helpmate keys list` shows each key's id and prefix")
        row = rows[0]
        if row.revoked_at is None:
            row.revoked_at = datetime.now(timezone.utc)
    audit(settings, by or Caller.staff("admin", "local admin"), "api_key.revoke", f"api-key {row.id} ({row.name})",
          {"role": row.role})
    return row


def check_key(settings: Settings, secret: str) -> KeyInfo:
    """The key behind a bearer token; AccessDenied for an unknown or revoked one (the message says what to do)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        raise AccessDenied("that is not a Helpmate API key; create one with `helpmate keys create`")
    with session_scope(settings) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest(secret))).first()
        if row is None or row.revoked_at is not None:
            raise AccessDenied("this API key is unknown or revoked; ask your Helpmate admin for a valid one")
        return KeyInfo(row.id, row.name, row.role, frozenset(row.knowledge_bases) if row.knowledge_bases is not None else None,
                       row.rate_limit)


def _upsert(session: Session, key_id: int, window: int) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - Helpmate runs on SQLite or PostgreSQL
        raise RuntimeError(f"rate limits need SQLite or PostgreSQL, not {dialect}")
    table = ApiRateWindow.__table__
    statement = insert(table).values(key_id=key_id, window=window, requests=1)
    statement = statement.on_conflict_do_update(index_elements=[table.c.key_id, table.c.window],
                                                set_={"requests": table.c.requests + 1})
    return session.execute(statement.returning(table.c.requests)).scalar_one()


def count_request(settings: Settings, key: KeyInfo, now: float | None = None) -> float | None:
    """Count one request of ``key`` in this minute; the seconds to wait when it is over its limit, else None.

    One atomic upsert per request, so workers and threads never lose a count. The first request of
    a minute also drops the key's older minutes and records when the key was last used.
    """
    now = time.time() if now is None else now
    window = int(now // WINDOW_S)
    with session_scope(settings) as session:
        requests = _upsert(session, key.id, window)
        if requests == 1:
            session.execute(delete(ApiRateWindow).where(ApiRateWindow.key_id == key.id, ApiRateWindow.window < window))
            session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=datetime.now(timezone.utc)))
    if requests > key.rate_limit:
        return max(1.0, math.ceil((window + 1) * WINDOW_S - now))
    return None
