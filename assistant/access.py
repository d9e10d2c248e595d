"""Who is asking: the caller every entry point creates, what it may reach, and the audit log of staff actions.

Every call into Helpmate has a caller. The web chat and `helpmate ask` (by default) create an
anonymous customer bound to one conversation, who may use the public knowledge bases only; the
operator pages create the logged-in operator (limited to their knowledge bases, when an admin set
some) or admin; `helpmate ask --as operator` creates a local operator with every knowledge base.
The caller travels with the call down to each tool and query, and each checks it there, not only
the page that called it:

    caller = Caller.customer(settings, conversation_id)
    caller.check_kb("support")            # AccessDenied unless "support" is public
    caller.check_staff(kb="support")      # AccessDenied: customers may not read reports

``AccessDenied`` messages are safe to show the caller: they say what is not allowed, never what
the data holds.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, replace
from typing import Any, Iterable, Literal, get_args

from sqlalchemy import select

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import AuditEntry, KnowledgeBase

Role = Literal["customer", "operator", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
Visibility = Literal["public", "internal"]
VISIBILITIES: tuple[str, ...] = get_args(Visibility)


class AccessDenied(PermissionError):
    """The caller may not do this; the message can be shown to them as it is."""


@dataclass(frozen=True)
class Caller:
    """One caller. ``knowledge_bases`` None means every knowledge base (admins, unrestricted operators)."""

    role: Role
    name: str
    conversation_id: int | None = None  # a customer's own conversation, the only one they may act on
    knowledge_bases: frozenset[str] | None = None
    client: str | None = None  # where the call came from (an address), for the audit log and login throttling

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; choose one of {', '.join(ROLES)}")
        if self.role == "customer" and self.knowledge_bases is None:
            raise ValueError("a customer caller needs its knowledge bases (the public ones)")

    @classmethod
    def customer(cls, settings: Settings, conversation_id: int | None, client: str | None = None) -> Caller:
        """An anonymous customer of ``conversation_id``, who may use the public knowledge bases."""
        return cls("customer", "customer", conversation_id, frozenset(public_knowledge_bases(settings)), client)

    @classmethod
    def staff(cls, role: Role, name: str, knowledge_bases: Iterable[str] | None = None, client: str | None = None) -> Caller:
        """An operator or admin; an admin always reaches every knowledge base."""
        if role == "customer":
            raise ValueError("use Caller.customer for customers")
        limited = None if role == "admin" or knowledge_bases is None else frozenset(knowledge_bases)
        return cls(role, name, None, limited, client)

    @classmethod
    def local_admin(cls) -> Caller:
        """Whoever runs a management command on the server (`helpmate kb`, `users`, `webhooks` ...):
        shell access is admin access, and the audit log names the operating-system user."""
        return cls.staff("admin", getpass.getuser())

    def in_conversation(self, conversation_id: int) -> Caller:
        """This customer bound to the conversation they just started (staff are not bound to one)."""
        if self.role != "customer":
            return self
        if self.conversation_id not in (None, conversation_id):
            raise AccessDenied("you can only do that in your own conversation")
        return replace(self, conversation_id=conversation_id)

    @property
    def is_staff(self) -> bool:
        return self.role in ("operator", "admin")

    def may_use_kb(self, kb: str | None) -> bool:
        return self.knowledge_bases is None or (kb is not None and kb in self.knowledge_bases)

    def check_kb(self, kb: str | None) -> None:
        """Searching ``kb``: customers the public ones, operators theirs."""
        if not self.may_use_kb(kb):
            what = "a public knowledge base" if self.role == "customer" else "one of your knowledge bases"
            raise AccessDenied(f"the knowledge base {kb!r} is not {what}")

    def check_staff(self, kb: str | None = None, what: str = "this") -> None:
        """Operators' data (reports, other conversations): staff only, and for ``kb`` staff with access to it.

        An operator limited to some knowledge bases must name one (``kb=None`` would mean all of them).
        """
        if not self.is_staff:
            raise AccessDenied(f"{what} is for our team only")
        if self.knowledge_bases is not None and (kb is None or kb not in self.knowledge_bases):
            names = ", ".join(sorted(self.knowledge_bases)) or "none"
            raise AccessDenied(f"{what} needs a knowledge base you may see ({names})")

    def check_admin(self, what: str) -> None:
        """Settings that change what others may reach (users, visibility, webhooks, erasure): admins only."""
        if self.role != "admin":
            raise AccessDenied(f"only an admin may {what}")

    def check_conversation(self, conversation_id: int, kb: str | None) -> None:
        """Acting on a conversation (a ticket): customers only on their own, staff on their knowledge bases'."""
        if self.role == "customer":
            if conversation_id != self.conversation_id:
                raise AccessDenied("you can only do that in your own conversation")
            return
        self.check_staff(kb, "that conversation")


def public_knowledge_bases(settings: Settings) -> list[str]:
    """The knowledge bases offered to customers, by name."""
    with session_scope(settings) as session:
        return list(session.scalars(select(KnowledgeBase.name).where(KnowledgeBase.visibility == "public")
                                    .order_by(KnowledgeBase.name)))


def set_visibility(settings: Settings, kb: str, visibility: str, by: Caller) -> None:
    """Make ``kb`` public (offered to customers) or internal (operators only); admins only, audited."""
    by.check_admin("change who sees a knowledge base")
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r}: choose public or internal")
    with session_scope(settings) as session:
        row = session.scalars(select(KnowledgeBase).where(KnowledgeBase.name == kb)).first()
        if row is None:
            raise ValueError(f"knowledge base {kb!r} does not exist; create it with `helpmate ingest PATH --kb {kb}`")
        row.visibility = visibility
    audit(settings, by, "kb.visibility", kb, {"visibility": visibility})


def audit(settings: Settings, caller: Caller, action: str, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Record what a caller did (logins, user and knowledge-base changes, reviews, promotions)."""
    with session_scope(settings) as session:
        session.add(AuditEntry(actor=caller.name, role=caller.role, action=action, target=target, detail=detail,
                               client=caller.client))


def audit_log(settings: Settings, limit: int = 200) -> list[AuditEntry]:
    """The newest entries first."""
    with session_scope(settings) as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))
