"""Callers and what they may reach: knowledge-base visibility, operators' knowledge bases, the audit log."""

from __future__ import annotations

import pytest

from assistant.access import AccessDenied, Caller, audit_log, public_knowledge_bases, set_visibility
from assistant.database import session_scope
from assistant.database.models import KnowledgeBase

ADMIN = Caller.staff("admin", "adam")


def _knowledge_bases(settings, *names):
    with session_scope(settings) as session:
        session.add_all(KnowledgeBase(name=name) for name in names)


def test_new_knowledge_bases_are_internal_until_an_admin_publishes_them(db_settings):
    _knowledge_bases(db_settings, "help", "internal-notes")
    assert public_knowledge_bases(db_settings) == []
    with pytest.raises(AccessDenied, match="only an admin"):
        set_visibility(db_settings, "help", "public", Caller.staff("operator", "olivia"))
    set_visibility(db_settings, "help", "public", ADMIN)
    assert public_knowledge_bases(db_settings) == ["help"]
    (entry,) = audit_log(db_settings)
    assert (entry.actor, entry.role, entry.action, entry.target, entry.detail) == ("adam", "admin", "kb.visibility", "help",
                                                                                   {"visibility": "public"})
    with pytest.raises(ValueError, match="does not exist"):
        set_visibility(db_settings, "nope", "public", ADMIN)
    with pytest.raises(ValueError, match="choose public or internal"):
        set_visibility(db_settings, "help", "secret", ADMIN)


def test_a_customer_uses_public_knowledge_bases_and_acts_only_on_their_own_conversation(settings):
    _knowledge_bases(settings, "help", "internal-notes")
    set_visibility(settings, "help", "public", ADMIN)
    customer = Caller.customer(settings, conversation_id=7)
    customer.check_kb("help")
    with pytest.raises(AccessDenied, match="not a public knowledge base"):
        customer.check_kb("internal-notes")
    customer.check_conversation(7, "help")
    with pytest.raises(AccessDenied, match="your own conversation"):
        customer.check_conversation(3, "help")
    with pytest.raises(AccessDenied, match="for our team only"):
        customer.check_staff("help", "a sentiment report")


def test_an_operator_is_limited_to_their_knowledge_bases_and_an_admin_is_not():
    operator = Caller.staff("operator", "olivia", knowledge_bases=["help"])
    operator.check_staff("help")
    operator.check_conversation(3, "help")
    with pytest.raises(AccessDenied, match=r"you may see \(help\)"):
        operator.check_staff("internal-notes")
    with pytest.raises(AccessDenied):
        operator.check_staff(None)  # "all of them" is more than theirs
    Caller.staff("operator", "uma").check_staff(None)  # unrestricted operator
    assert Caller.staff("admin", "adam", knowledge_bases=["help"]).knowledge_bases is None
    with pytest.raises(ValueError, match="Caller.customer"):
        Caller.staff("customer", "x")


def test_admin_only_settings_are_checked_on_the_caller_and_shell_commands_act_as_a_named_admin(settings, monkeypatch):
    for caller in (Caller.staff("operator", "olivia"), Caller.customer(settings, conversation_id=7)):
        with pytest.raises(AccessDenied, match="only an admin may erase a customer's data"):
            caller.check_admin("erase a customer's data")
    ADMIN.check_admin("erase a customer's data")
    monkeypatch.setenv("USER", "root-of-trust")
    monkeypatch.setenv("LOGNAME", "root-of-trust")
    local = Caller.local_admin()
    assert (local.role, local.name, local.knowledge_bases) == ("admin", "root-of-trust", None)
