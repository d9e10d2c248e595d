"""Users and logins: Argon2 hashes in the database, roles, the `helpmate users` command."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner


def test_password_is_stored_only_as_an_argon2_hash(db_settings):
    from assistant.database import session_scope
    from assistant.database.models import User
    from ui.auth import add_user, authenticate

    add_user("olivia", "correct horse battery", "operator", db_settings)
    with session_scope(db_settings) as session:
        user = session.scalar(select(User).where(User.name == "olivia"))
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert user.last_login_at is None
    account = authenticate("olivia", "correct horse battery", db_settings)
    assert account is not None and account.role == "operator"
    with session_scope(db_settings) as session:
        assert session.scalar(select(User.last_login_at).where(User.name == "olivia")) is not None


def test_wrong_password_unknown_user_and_disabled_user_are_refused(settings):
    from ui.auth import add_user, authenticate, set_active

    # Four tries at one name in a row: let them all through the throttle (tests/security/test_logins.py covers it).
    settings = settings.model_copy(update={"login_free_failures": 10})
    add_user("adam", "s3cret-admin-pass", "admin", settings)
    assert authenticate("adam", "s3cret-admin-pas", settings) is None
    assert authenticate("eve", "s3cret-admin-pass", settings) is None
    set_active("adam", False, settings)
    assert authenticate("adam", "s3cret-admin-pass", settings) is None
    set_active("adam", True, settings)
    assert authenticate("adam", "s3cret-admin-pass", settings).role == "admin"


def test_roles_an_admin_may_do_what_an_operator_may():
    from ui.auth import Account

    assert Account("a", "admin").may("operator") and Account("a", "admin").may("admin")
    assert Account("o", "operator").may("operator") and not Account("o", "operator").may("admin")


def test_bad_input_is_refused_with_a_reason(settings):
    from ui.auth import UserError, add_user

    with pytest.raises(UserError, match="role 'boss'"):
        add_user("b", "long-enough-pass", "boss", settings)
    with pytest.raises(UserError, match="at least 8"):
        add_user("b", "short", "operator", settings)
    add_user("b", "long-enough-pass", "operator", settings)
    with pytest.raises(UserError, match="already exists"):
        add_user("b", "another-long-pass", "admin", settings)
    assert add_user("b", "another-long-pass", "admin", settings, replace=True).role == "admin"


def test_users_cli_reads_the_password_from_stdin_and_generates_one(settings):
    from ui.auth import authenticate
    from ui.users_cli import users_app

    runner = CliRunner()
    result = runner.invoke(users_app, ["add", "olivia", "--role", "operator", "--password-stdin"],
                           input="piped-password-1\n")
    assert result.exit_code == 0, result.output
    assert authenticate("olivia", "piped-password-1", settings).role == "operator"

    result = runner.invoke(users_app, ["add", "adam", "--role", "admin", "--generate"])
    assert result.exit_code == 0, result.output
    generated = result.output.split("password: ", 1)[1].strip()
    assert authenticate("adam", generated, settings).role == "admin"

    duplicate = runner.invoke(users_app, ["add", "adam", "--role", "admin", "--generate"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output

    listed = runner.invoke(users_app, ["list"])
    assert "adam\tadmin" in listed.output and "olivia\toperator" in listed.output


def test_users_migration_downgrades_and_upgrades_again(db_settings):
    import sqlalchemy
    from alembic import command
    from alembic.config import Config

    from assistant.database import MIGRATIONS_DIR, get_engine, migrate

    engine = get_engine(db_settings)
    assert "users" in sqlalchemy.inspect(engine).get_table_names()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    assert "users" not in sqlalchemy.inspect(engine).get_table_names()
    migrate(engine)
    assert "users" in sqlalchemy.inspect(engine).get_table_names()


def test_users_cli_limits_an_operator_to_knowledge_bases_as_an_audited_local_admin(settings):
    import getpass

    from assistant.access import audit_log
    from assistant.database import session_scope
    from assistant.database.models import KnowledgeBase
    from ui.auth import load_account
    from ui.users_cli import users_app

    with session_scope(settings) as session:
        session.add_all([KnowledgeBase(name="help"), KnowledgeBase(name="faq")])
    runner = CliRunner()
    added = runner.invoke(users_app, ["add", "olivia", "--role", "operator", "--kb", "help", "--kb", "faq", "--generate"])
    assert added.exit_code == 0, added.output
    assert "knowledge bases: faq, help" in added.output
    assert load_account(settings, "olivia").knowledge_bases == {"help", "faq"}

    assert runner.invoke(users_app, ["set-kbs", "olivia", "--kb", "help"]).exit_code == 0
    assert load_account(settings, "olivia").knowledge_bases == {"help"}
    listed = runner.invoke(users_app, ["list"]).output
    assert "olivia\toperator\tknowledge bases: help" in listed
    everything = runner.invoke(users_app, ["set-kbs", "olivia", "--all"])
    assert everything.exit_code == 0 and "now sees: all" in everything.output
    assert load_account(settings, "olivia").knowledge_bases is None

    neither = runner.invoke(users_app, ["set-kbs", "olivia"])
    assert neither.exit_code == 1 and "--kb NAME" in neither.output and "--all" in neither.output
    unknown = runner.invoke(users_app, ["set-kbs", "olivia", "--kb", "nope"])
    assert unknown.exit_code == 1 and "no knowledge base named nope" in unknown.output and "Traceback" not in unknown.output
    assert runner.invoke(users_app, ["disable", "olivia"]).exit_code == 0
    assert load_account(settings, "olivia") is None  # an open session ends on its next page run

    entries = [(e.actor, e.role, e.action, e.target) for e in reversed(audit_log(settings))]
    me = getpass.getuser()
    assert entries == [(me, "admin", "user.add", "olivia"), (me, "admin", "user.knowledge_bases", "olivia"),
                       (me, "admin", "user.knowledge_bases", "olivia"), (me, "admin", "user.disable", "olivia")]
