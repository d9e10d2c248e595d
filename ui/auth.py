"""Users of the operator and admin pages: Argon2-hashed passwords, roles, knowledge bases, logins.

The chat page is open; the dashboard asks for an ``operator`` (or ``admin``) and the admin page
for an ``admin``. Only the Argon2id hash (argon2-cffi, with its default, OWASP-level parameters)
is stored; an old hash is rehashed on the next successful login when the parameters change. No
password is ever in the repository: ``helpmate users add`` asks for it, reads it from standard
input or generates one and prints it once.

Guessing is slowed down, per user name and per client address: every login try is recorded in
``login_attempts``, and once a name (or address) has ``login_free_failures`` failures in the last
hour since its last success, each further try must wait 2^(failures - free) seconds after the
last failure (at most ``login_max_delay_s``). A try during the wait is refused before the password
is looked at, so waiting is the only way on. Logins, failed and refused tries and every change to
a user are written to the audit log for admins.

An operator may be limited to some knowledge bases (``knowledge_bases``; None: all of them); an
admin always sees all. Pages re-read the account on every run (``load_account``), so disabling a
user or changing their role or knowledge bases takes effect in their open session at once.

This module does not import Streamlit, so the CLI and the tests use it directly; ``ui.common``
has the login form and the session handling.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.orm import Session

from assistant.access import Caller, audit
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import AuditEntry, KnowledgeBase, LoginAttempt, User

Role = Literal["operator", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
MIN_PASSWORD_CHARS = 8
THROTTLE_WINDOW = timedelta(hours=1)
_hasher = PasswordHasher()
# Verified when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user command that cannot be done as asked; the message says what to change."""


class LoginThrottled(Exception):
    """Too many failed logins for this name or address: the try was refused unchecked."""

    def __init__(self, wait_s: float):
        self.wait_s = wait_s
        super().__init__(f"Too many failed logins. Wait {describe_wait(wait_s)} before trying again.")


@dataclass(frozen=True)
class Account:
    """Who is logged in (never carries the hash), as the database says now."""

    name: str
    role: str
    knowledge_bases: frozenset[str] | None = None  # an operator's; None: every one (always for admins)
    client: str | None = None  # the address the session comes from, when known

    def may(self, role: str) -> bool:
        """An admin may do everything an operator may."""
        return self.role == "admin" or self.role == role

    def caller(self) -> Caller:
        """The caller the pages pass to data functions, which filter and check by it."""
        return Caller.staff(self.role, self.name, self.knowledge_bases, self.client)  # type: ignore[arg-type]


def describe_wait(seconds: float) -> str:
    """``8 seconds``, ``4 minutes``: how long to wait, rounded up, in words."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{math.ceil(whole / 60)} minutes"


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted; the parameters are part of the string)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password has {len(password)} characters; use at least {MIN_PASSWORD_CHARS}")
    return _hasher.hash(password)


def generate_password() -> str:
    """A random password for accounts created by scripts (printed once by the CLI)."""
    return secrets.token_urlsafe(12)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise UserError("a user name needs 1 to 200 characters")
    return name


def _check_admin(by: Caller | None) -> None:
    if by is not None:
        by.check_admin("change users")


def _check_knowledge_bases(session: Session, role: str, knowledge_bases: Iterable[str] | None) -> list[str] | None:
    """The sorted names, each an existing knowledge base; only operators are limited."""
    if knowledge_bases is None:
        return None
    names = sorted({kb.strip() for kb in knowledge_bases if kb.strip()})
    if role == "admin":
        raise UserError("an admin always sees every knowledge base; limit operators only (or use --role operator)")
    known = set(session.scalars(select(KnowledgeBase.name)))
    unknown = [kb for kb in names if kb not in known]
    if unknown:
        have = ", ".join(sorted(known)) or "none yet"
        raise UserError(f"no knowledge base named {', '.join(unknown)} (there are: {have}); "
                        "ingest it first with `helpmate ingest PATH --kb NAME`")
    return names


def _account(user: User, client: str | None = None) -> Account:
    limited = None if user.role == "admin" or user.knowledge_bases is None else frozenset(user.knowledge_bases)
    return Account(user.name, user.role, limited, client)


def add_user(name: str, password: str, role: str, settings: Settings, replace: bool = False,
             knowledge_bases: Iterable[str] | None = None, by: Caller | None = None) -> Account:
    """Create a user, or with ``replace`` set the password and role of an existing one.

    ``knowledge_bases`` limits an operator (None: all; on ``replace`` None keeps what they had).
    ``by`` is the admin doing it, recorded in the audit log.
    """
    _check_admin(by)
    name, role = _check_name(name), _check_role(role)
    password_hash = hash_password(password)
    with session_scope(settings) as session:
        kbs = _check_knowledge_bases(session, role, knowledge_bases)
        user = session.scalar(select(User).where(User.name == name))
        if user is not None and not replace:
            raise UserError(f"user {name!r} already exists; use --replace to set a new password and role")
        if user is None:
            user = User(name=name, role=role, password_hash=password_hash, active=True, knowledge_bases=kbs)
            session.add(user)
        else:
            user.role, user.password_hash, user.active = role, password_hash, True
            if kbs is not None:
                user.knowledge_bases = kbs
        account = _account(user)
    if by is not None:
        audit(settings, by, "user.replace" if replace else "user.add", name,
              {"role": role, "knowledge_bases": _listed(account.knowledge_bases)})
    return account


def _listed(knowledge_bases: frozenset[str] | None) -> list[str] | None:
    return None if knowledge_bases is None else sorted(knowledge_bases)


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == _check_name(name)))
    if user is None:
        raise UserError(f"there is no user {name!r}; `helpmate users list` shows them")
    return user


def set_active(name: str, active: bool, settings: Settings, by: Caller | None = None) -> None:
    """Lock an account out (or let it back in) without deleting it; an open session ends on its next page run."""
    _check_admin(by)
    with session_scope(settings) as session:
        _user(session, name).active = active
    if by is not None:
        audit(settings, by, "user.enable" if active else "user.disable", name.strip())


def set_knowledge_bases(name: str, knowledge_bases: Iterable[str] | None, settings: Settings, by: Caller) -> Account:
    """Limit an operator to ``knowledge_bases`` (None: every one); takes effect on their next page run."""
    _check_admin(by)
    with session_scope(settings) as session:
        user = _user(session, name)
        user.knowledge_bases = _check_knowledge_bases(session, user.role, knowledge_bases)
        account = _account(user)
    audit(settings, by, "user.knowledge_bases", account.name, {"knowledge_bases": _listed(account.knowledge_bases)})
    return account


def list_users(settings: Settings) -> list[dict]:
    """Every user's name, role, knowledge bases, whether active and when last logged in (no hashes)."""
    with session_scope(settings) as session:
        return [{"name": u.name, "role": u.role, "active": u.active, "created_at": u.created_at,
                 "last_login_at": u.last_login_at, "knowledge_bases": _listed(_account(u).knowledge_bases)}
                for u in session.scalars(select(User).order_by(User.name))]


def load_account(settings: Settings, name: str, client: str | None = None) -> Account | None:
    """The account as the database says now, or None when it is disabled or gone (the session must end)."""
    with session_scope(settings) as session:
        user = session.scalar(select(User).where(User.name == name))
        return _account(user, client) if user is not None and user.active else None


def _as_utc(value: Any) -> datetime:
    """MAX() bypasses the column type on SQLite: it comes back naive, or as text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _wait_for(session: Session, matches: ColumnElement[bool], settings: Settings, now: datetime) -> float:
    """Seconds until the next try is allowed for the attempts ``matches`` selects (one name, or one address)."""
    since = now - THROTTLE_WINDOW
    last_ok = session.scalar(select(func.max(LoginAttempt.at)).where(matches, LoginAttempt.ok.is_(True)))
    if last_ok is not None:
        since = max(since, _as_utc(last_ok))
    failures, last_failure = session.execute(
        select(func.count(LoginAttempt.id), func.max(LoginAttempt.at))
        .where(matches, LoginAttempt.ok.is_(False), LoginAttempt.at > since)).one()
    over = int(failures) - settings.login_free_failures
    if over < 0:
        return 0.0
    delay = min(2.0 ** min(over, 40), settings.login_max_delay_s)
    return max(0.0, (_as_utc(last_failure) + timedelta(seconds=delay) - now).total_seconds())


def login_wait(settings: Settings, name: str, client: str | None, now: datetime | None = None) -> float:
    """Seconds before ``name`` may try again from ``client`` (0: now). An unknown address (None, as
    Streamlit reports local connections) is not throttled as an address; the name still is."""
    with session_scope(settings) as session:
        return _throttle_wait(session, name[:200], client, settings, now or datetime.now(timezone.utc))


def _throttle_wait(session: Session, name: str, client: str | None, settings: Settings, now: datetime,
                   besides: int | None = None) -> float:
    """``login_wait`` in ``session``, not counting the attempt with id ``besides`` (the try being decided)."""
    other = LoginAttempt.id != besides if besides is not None else true()
    waits = [_wait_for(session, and_(LoginAttempt.name == name, other), settings, now)]
    if client:
        waits.append(_wait_for(session, and_(LoginAttempt.client == client[:200], other), settings, now))
    return max(waits)


def _audit_login(session: Session, action: str, actor: str, role: str, client: str | None,
                 detail: dict[str, Any] | None = None, now: datetime | None = None) -> None:
    # Written in the login's own transaction: the one trying is not a caller yet (role "visitor" until it works).
    session.add(AuditEntry(at=now or datetime.now(timezone.utc), actor=actor[:200], role=role, action=action,
                           client=client[:200] if client else None, detail=detail))


def authenticate(name: str, password: str, settings: Settings, client: str | None = None,
                 now: datetime | None = None) -> Account | None:
    """The account when ``name`` and ``password`` match an active user, else None (no reason given,
    so a login form does not tell which of the two was wrong).

    Raises ``LoginThrottled`` (with the seconds to wait) without looking at the password while the
    name or the address must wait. ``now`` is for tests; it defaults to the current time.
    """
    name, now = name.strip()[:200], now or datetime.now(timezone.utc)
    with session_scope(settings) as session:
        # Recorded (as a failure until the password matches) and committed before the throttle is asked, so
        # tries made at the same moment count each other: each sees every try committed before its own
        # check, and no burst of simultaneous tries gets more than the free failures past the throttle.
        attempt = LoginAttempt(at=now, name=name, client=client[:200] if client else None, ok=False)
        session.add(attempt)
        session.commit()
        wait = _throttle_wait(session, name, client, settings, now, besides=attempt.id)
        if wait > 0:  # a refused try is not an attempt (it does not lengthen the wait), only audited
            session.delete(attempt)
            _audit_login(session, "login.throttled", name, "visitor", client, {"wait_s": round(wait, 1)}, now)
            session.commit()
            raise LoginThrottled(wait)
        user = session.scalar(select(User).where(User.name == name))
        stored = user.password_hash if user is not None and user.active else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
            matched = True
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            matched = False
        if not matched or user is None or not user.active:
            reason = "unknown user" if user is None else "disabled" if not user.active else "wrong password"
            _audit_login(session, "login.failed", name, "visitor", client, {"reason": reason}, now)
            return None
        attempt.ok = True
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        user.last_login_at = now
        _audit_login(session, "login", user.name, user.role, client, None, now)
        return _account(user, client)
