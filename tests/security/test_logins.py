"""Logins and sessions of the operator and admin pages: throttling per user name and per client address,
the audit log, and an open session that follows the database (disabled, role and knowledge bases
changed, idle) on its next page run.

The throttle is tested on ``ui.auth`` with explicit times (waits of seconds to minutes are not slept
through); the sessions through Streamlit's AppTest running the real pages on a real database.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from assistant.access import Caller
from assistant.database import session_scope
from assistant.database.models import AuditEntry, KnowledgeBase, LoginAttempt
from tests.conftest import REPO

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ADMIN = Caller.staff("admin", "root")
VIEWS = REPO / "ui" / "views"


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _actions(settings) -> list[tuple[str, str]]:
    with session_scope(settings) as session:
        return [(e.action, e.actor) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_failed_logins_for_one_name_wait_longer_and_longer_until_a_success(db_settings):
    from ui.auth import LoginThrottled, add_user, authenticate, login_wait

    add_user("olivia", "right-password", "operator", db_settings)
    for second in range(3):  # the free failures (login_free_failures = 3)
        assert authenticate("olivia", "wrong", db_settings, now=_at(second)) is None
    assert login_wait(db_settings, "olivia", None, _at(2)) == pytest.approx(1.0)  # 2^(3-3) s after the last failure

    # During the wait even the right password is refused, unchecked, saying how long to wait.
    with pytest.raises(LoginThrottled, match="Wait 1 second before") as refused:
        authenticate("olivia", "right-password", db_settings, now=_at(2.5))
    assert refused.value.wait_s == pytest.approx(0.5)

    # Each further failure doubles the wait: 2 s, then 4 s, then 8 s.
    assert authenticate("olivia", "wrong", db_settings, now=_at(3.1)) is None
    assert login_wait(db_settings, "olivia", None, _at(3.1)) == pytest.approx(2.0)
    assert authenticate("olivia", "wrong", db_settings, now=_at(5.2)) is None
    assert login_wait(db_settings, "olivia", None, _at(5.2)) == pytest.approx(4.0)
    assert authenticate("olivia", "wrong", db_settings, now=_at(9.3)) is None
    assert login_wait(db_settings, "olivia", None, _at(9.3)) == pytest.approx(8.0)
    with pytest.raises(LoginThrottled):
        authenticate("olivia", "wrong", db_settings, now=_at(12))

    # A success resets the count: the next failures are free again.
    assert authenticate("olivia", "right-password", db_settings, now=_at(20)).name == "olivia"
    assert login_wait(db_settings, "olivia", None, _at(20)) == 0
    for second in (21, 22, 23):
        assert authenticate("olivia", "wrong", db_settings, now=_at(second)) is None
    assert login_wait(db_settings, "olivia", None, _at(23)) == pytest.approx(1.0)

    # Refused tries are not attempts (they do not lengthen the wait); every checked try is recorded.
    with session_scope(db_settings) as session:
        attempts = session.execute(select(LoginAttempt.ok).order_by(LoginAttempt.id)).scalars().all()
    assert attempts == [False] * 6 + [True] + [False] * 3
    actions = [action for action, _ in _actions(db_settings)]
    assert actions.count("login.failed") == 9 and actions.count("login.throttled") == 2 and actions.count("login") == 1


def test_the_wait_is_capped_and_old_failures_are_forgotten_after_an_hour(settings):
    from ui.auth import add_user, authenticate, login_wait

    capped = settings.model_copy(update={"login_free_failures": 1, "login_max_delay_s": 5.0})
    add_user("adam", "right-password", "admin", capped)
    second = 0.0
    for _ in range(6):  # waits 1, 2, 4, then 5 (capped), 5
        second += login_wait(capped, "adam", None, _at(second))
        assert authenticate("adam", "wrong", capped, now=_at(second)) is None
    assert login_wait(capped, "adam", None, _at(second)) == pytest.approx(5.0)
    assert login_wait(capped, "adam", None, _at(second + 3601)) == 0
    assert authenticate("adam", "right-password", capped, now=_at(second + 3601)).role == "admin"


def test_one_address_trying_many_names_is_slowed_down_and_others_are_not(db_settings):
    from ui.auth import LoginThrottled, add_user, authenticate, login_wait

    add_user("olivia", "right-password", "operator", db_settings)
    guesser, colleague = "203.0.113.7", "198.51.100.2"
    for second, name in enumerate(["admin", "root", "olivia"]):
        assert authenticate(name, "guess", db_settings, client=guesser, now=_at(second)) is None
    # A fourth name from the same address waits, although that name never failed.
    assert login_wait(db_settings, "support", guesser, _at(2.2)) == pytest.approx(0.8)
    with pytest.raises(LoginThrottled):
        authenticate("support", "guess", db_settings, client=guesser, now=_at(2.2))
    # Another address with an untouched name is not slowed down; olivia's name has only one failure.
    assert login_wait(db_settings, "olivia", colleague, _at(2.2)) == 0
    assert authenticate("olivia", "right-password", db_settings, client=colleague, now=_at(2.3)).name == "olivia"
    # An unknown address (Streamlit reports local connections as None) is throttled by name only.
    assert login_wait(db_settings, "support", None, _at(2.2)) == 0
    with session_scope(db_settings) as session:
        throttled = session.scalars(select(AuditEntry).where(AuditEntry.action == "login.throttled")).one()
    assert (throttled.actor, throttled.client, throttled.role) == ("support", guesser, "visitor")


def test_a_burst_of_simultaneous_tries_gets_no_more_than_the_free_failures_checked(db_settings):
    """Tries sent at the same moment (a script guessing in parallel) must not all pass the throttle before
    any of them is recorded: at most ``login_free_failures`` passwords are checked, the rest are refused
    (tries in flight count against each other, so a burst may see all of them refused)."""
    import threading

    from ui.auth import LoginThrottled, add_user, authenticate

    add_user("olivia", "right-password", "operator", db_settings)
    tries, start = 8, threading.Barrier(8)
    outcomes: list[str] = []

    def guess(number: int) -> None:
        start.wait()
        try:
            outcomes.append("checked" if authenticate("olivia", f"guess-{number}", db_settings, now=_at(0)) is None
                            else "let in")
        except LoginThrottled:
            outcomes.append("refused")

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == tries and "let in" not in outcomes
    assert outcomes.count("checked") <= db_settings.login_free_failures, outcomes
    with session_scope(db_settings) as session:  # refused tries leave no attempt behind, only their audit entry
        assert len(session.scalars(select(LoginAttempt)).all()) == outcomes.count("checked")
    actions = [action for action, _ in _actions(db_settings)]
    assert actions.count("login.failed") == outcomes.count("checked")
    assert actions.count("login.throttled") == outcomes.count("refused")
    # The burst costs the owner no more than the ordinary wait after the free failures.
    assert authenticate("olivia", "right-password", db_settings, now=_at(1)).name == "olivia"


def test_user_changes_made_by_an_admin_are_audited_and_checked(settings):
    from assistant.access import AccessDenied
    from ui.auth import UserError, add_user, set_active, set_knowledge_bases

    with session_scope(settings) as session:
        session.add_all([KnowledgeBase(name="help"), KnowledgeBase(name="faq")])
    add_user("olivia", "right-password", "operator", settings, knowledge_bases=["help"], by=ADMIN)
    set_knowledge_bases("olivia", ["faq", "help"], settings, by=ADMIN)
    set_active("olivia", False, settings, by=ADMIN)
    assert _actions(settings) == [("user.add", "root"), ("user.knowledge_bases", "root"), ("user.disable", "root")]
    with pytest.raises(UserError, match="no knowledge base named nope .*helpmate ingest"):
        set_knowledge_bases("olivia", ["nope"], settings, by=ADMIN)
    with pytest.raises(UserError, match="an admin always sees every knowledge base"):
        add_user("adam", "right-password", "admin", settings, knowledge_bases=["help"], by=ADMIN)
    with pytest.raises(AccessDenied, match="only an admin"):
        set_knowledge_bases("olivia", None, settings, by=Caller.staff("operator", "olivia"))


# --- sessions on the real pages ---------------------------------------------------------------------------


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=120)


def _log_in(at: AppTest, name: str, password: str) -> AppTest:
    at.run()
    at.text_input(key="login_name").set_value(name)
    at.text_input(key="login_password").set_value(password)
    [b for b in at.button if b.label == "Log in"][0].click().run()
    assert not at.exception, at.exception
    return at


def _title(at: AppTest) -> str | None:
    return at.title[0].value if at.title else None


def _warnings(at: AppTest) -> str:
    return "\n".join(w.value for w in at.warning) + "\n".join(e.value for e in at.error)


@pytest.fixture
def staff(settings):
    """Two knowledge bases, an operator limited to one of them, and an admin."""
    from ui.auth import add_user

    with session_scope(settings) as session:
        session.add_all([KnowledgeBase(name="help"), KnowledgeBase(name="internal")])
    add_user("olivia", "operator-password", "operator", settings, knowledge_bases=["help"])
    add_user("adam", "admin-password", "admin", settings)
    return settings


def test_a_disabled_operator_loses_the_open_dashboard_on_the_next_page_run(staff):
    from ui.auth import set_active

    at = _log_in(_page("dashboard"), "olivia", "operator-password")
    assert _title(at) == "Operator dashboard"
    set_active("olivia", False, staff, by=ADMIN)
    at.run()
    assert not at.exception, at.exception
    assert _title(at) is None and [b.label for b in at.button] == ["Log in"]
    assert "disabled" in _warnings(at)
    assert "helpmate_account" not in at.session_state


def test_role_and_knowledge_base_changes_apply_to_an_open_session_at_once(staff):
    from ui.auth import add_user, set_knowledge_bases

    dashboard = _log_in(_page("dashboard"), "olivia", "operator-password")
    assert dashboard.selectbox(key="dash_kb").options == ["All", "help"]
    set_knowledge_bases("olivia", ["internal"], staff, by=ADMIN)
    dashboard.run()
    assert dashboard.selectbox(key="dash_kb").options == ["All", "internal"]

    admin = _log_in(_page("admin"), "adam", "admin-password")
    assert _title(admin) == "Admin"
    add_user("adam", "admin-password", "operator", staff, replace=True, by=ADMIN)  # demoted
    admin.run()
    assert not admin.exception, admin.exception
    assert _title(admin) is None and "needs an admin" in _warnings(admin)


def test_an_idle_session_expires(staff):
    at = _log_in(_page("dashboard"), "olivia", "operator-password")
    assert _title(at) == "Operator dashboard"
    at.run()  # activity keeps the session
    assert _title(at) == "Operator dashboard"
    at.session_state["helpmate_account"].last_active = time.time() - 31 * 60  # default: 30 idle minutes
    at.run()
    assert _title(at) is None and "after 30 minutes without activity" in _warnings(at)


def test_the_login_form_refuses_a_throttled_name_and_says_how_long_to_wait(staff):
    now = datetime.now(timezone.utc)
    with session_scope(staff) as session:  # ten recent failures: the next try waits 2^7 s
        session.add_all(LoginAttempt(at=now - timedelta(seconds=10 - i), name="olivia", client=None, ok=False)
                        for i in range(10))
    at = _log_in(_page("dashboard"), "olivia", "operator-password")
    assert "Too many failed logins. Wait 3 minutes before trying again." in _warnings(at)  # 128 s, rounded up
    assert _title(at) is None


def test_logins_are_in_the_audit_log(staff):
    _log_in(_page("dashboard"), "olivia", "not-the-password")
    _log_in(_page("dashboard"), "olivia", "operator-password")
    assert _actions(staff) == [("login.failed", "olivia"), ("login", "olivia")]
