"""Streamlit helpers shared by the pages: settings, the shared chat backend, the login gate and
sessions, and a friendly message instead of a traceback when something unexpected breaks.

A login lasts for the browser session (Streamlit's session state), not across reloads, and holds
only the user's name and when they were last active. Every page run re-reads the account from the
database, so an admin disabling a user, or changing their role or knowledge bases, takes effect in
their open session on its next run; a session idle for ``session_idle_minutes`` must log in again.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import streamlit as st

from assistant.access import AccessDenied, audit
from assistant.config import Settings, get_settings
from ui.auth import Account, LoginThrottled, authenticate, load_account
from ui.safe_text import literal

ACCOUNT_KEY = "helpmate_account"
NOTICE_KEY = "helpmate_login_notice"
UNEXPECTED = ("Something went wrong on our side while showing this. Reload the page and try again; if it keeps "
              "happening, tell your admin the time it happened (the server log has the details).")
log = logging.getLogger("helpmate.ui")


@dataclass
class LoginSession:
    """What the browser session keeps of a login: who, and when they last did something (``time.time()``)."""

    name: str
    last_active: float


def settings() -> Settings:
    """The process's settings (``HELPMATE_*`` as the server was started with)."""
    return get_settings()


@st.cache_resource(show_spinner="Loading the assistant…")
def _backend(settings_json: str):
    from ui.chat_backend import ChatBackend

    return ChatBackend(get_settings())


def backend():
    """The chat backend for these settings: its models load once per server and serve every session."""
    current = settings()
    return _backend(current.model_dump_json())


def client_address() -> str | None:
    """The visitor's address as Streamlit sees it (None for local connections), for throttling and the audit log."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - outside a browser session there is no address
        return None
    return address if isinstance(address, str) else None  # AppTest's stand-in connection has none


def _end_session(notice: str) -> None:
    st.session_state.pop(ACCOUNT_KEY, None)
    st.session_state[NOTICE_KEY] = notice


def current_account() -> Account | None:
    """The logged-in account as the database says now; None when nobody is logged in, the session was
    idle too long, or the account has been disabled (the session is ended, with a notice for the form)."""
    state: LoginSession | None = st.session_state.get(ACCOUNT_KEY)
    if state is None:
        return None
    current = settings()
    if time.time() - state.last_active > current.session_idle_minutes * 60:
        _end_session(f"You were logged out after {current.session_idle_minutes:g} minutes without activity. "
                     "Log in again.")
        return None
    account = load_account(current, state.name, client_address())
    if account is None:
        _end_session("Your account is disabled or no longer exists. Ask an admin if you still need access.")
    return account


def touch() -> None:
    """Count this as activity (widgets inside fragments call it: a fragment's own reruns do not extend a session)."""
    state: LoginSession | None = st.session_state.get(ACCOUNT_KEY)
    if state is not None:
        state.last_active = time.time()


def check_session(role: str) -> Account:
    """For fragments that rerun on their own: the account if it may still see the page, else a full rerun
    (which shows the login form). Does not extend the session."""
    account = current_account()
    if account is None or not account.may(role):
        st.rerun(scope="app")
    return account


def require_role(role: str) -> Account:
    """The logged-in account (name, role, knowledge bases, address) when it may see a page for ``role``;
    otherwise a login form and stop. ``account.caller()`` is the caller to pass to data functions."""
    account = current_account()
    if account is not None and account.may(role):
        touch()
        with st.sidebar:
            st.caption(f"Logged in as **{literal(account.name)}** ({account.role})")
            if st.button("Log out", key="logout"):
                audit(settings(), account.caller(), "logout")
                st.session_state.pop(ACCOUNT_KEY, None)
                st.rerun()
        return account
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.warning(notice)
    if account is not None:
        st.warning(f"{literal(account.name)} is an {account.role}; this page needs an {role}. Log in as one.")
    st.subheader("Log in")
    st.caption("Accounts are created with `helpmate users add NAME --role operator|admin`.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        try:
            account = authenticate(name, password, settings(), client_address())
        except LoginThrottled as error:
            st.error(str(error))
            st.stop()
        if account is None:
            st.error("Wrong user name or password.")
        elif not account.may(role):
            st.error(f"{literal(account.name)} is an {account.role}; this page needs an {role}.")
        else:
            st.session_state[ACCOUNT_KEY] = LoginSession(account.name, time.time())
            st.rerun()
    st.stop()


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Around a page's body: what the caller may not do is said plainly; anything unexpected is logged on
    the server and the visitor sees what to do, never a traceback or a path. Streamlit's own control flow
    (``st.stop``, ``st.rerun``) is not an Exception and passes through."""
    try:
        yield
    except AccessDenied as error:
        st.warning(f"Not allowed: {error}.")
    except Exception:  # noqa: BLE001 - the last line of defence for a page
        log.exception("unexpected error on a page")
        st.error(UNEXPECTED)
