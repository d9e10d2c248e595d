"""Users of the operator and admin pages: Argon2-hashed passwords and roles in the database.

The chat page is open; the dashboard asks for an ``operator`` (or ``admin``) and the admin page
for an ``admin``. Only the Argon2id hash (argon2-cffi, with its default, OWASP-level parameters)
is stored; an old hash is rehashed on the next successful login when the parameters change. No
password is ever in the repository: ``helpmate users add`` asks for it, reads it from standard
input or generates one and prints it once.

This module does not import Streamlit, so the CLI can use it; ``ui.common`` has the login form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import User

Role = Literal["operator", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
MIN_PASSWORD_CHARS = 8
_hasher = PasswordHasher()
# Verified when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user command that cannot be done as asked; the message says what to change."""


@dataclass(frozen=True)
class Account:
    """Who is logged in (never carries the hash)."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """An admin may do everything an operator may."""
        return self.role == "admin" or self.role == role


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


def add_user(name: str, password: str, role: str, settings: Settings, replace: bool = False) -> Account:
    """Create a user, or with ``replace`` set the password and role of an existing one."""
    name, role = _check_name(name), _check_role(role)
    password_hash = hash_password(password)
    with session_scope(settings) as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is not None and not replace:
            raise UserError(f"user {name!r} already exists; use --replace to set a new password and role")
        if user is None:
            session.add(User(name=name, role=role, password_hash=password_hash, active=True))
        else:
            user.role, user.password_hash, user.active = role, password_hash, True
    return Account(name, role)


def set_active(name: str, active: bool, settings: Settings) -> None:
    """Lock an account out (or let it back in) without deleting it."""
    with session_scope(settings) as session:
        user = session.scalar(select(User).where(User.name == _check_name(name)))
        if user is None:
            raise UserError(f"there is no user {name!r}; `helpmate users list` shows them")
        user.active = active


def list_users(settings: Settings) -> list[dict]:
    """Every user's name, role, whether active and when last logged in (no hashes)."""
    with session_scope(settings) as session:
        return [{"name": u.name, "role": u.role, "active": u.active, "created_at": u.created_at,
                 "last_login_at": u.last_login_at}
                for u in session.scalars(select(User).order_by(User.name))]


def authenticate(name: str, password: str, settings: Settings) -> Account | None:
    """The account when ``name`` and ``password`` match an active user, else None (no reason given,
    so a login form does not tell which of the two was wrong)."""
    with session_scope(settings) as session:
        user = session.scalar(select(User).where(User.name == name.strip()))
        stored = user.password_hash if user is not None and user.active else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or not user.active:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        user.last_login_at = datetime.now(timezone.utc)
        return Account(user.name, user.role)
