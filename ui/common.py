"""Streamlit helpers shared by the pages: settings, the shared chat backend, the login gate."""

from __future__ import annotations

import streamlit as st

from assistant.config import Settings, get_settings
from ui.auth import Account, authenticate

ACCOUNT_KEY = "helpmate_account"


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


def current_account() -> Account | None:
    return st.session_state.get(ACCOUNT_KEY)


def require_role(role: str) -> Account:
    """The logged-in account when it may see a page for ``role``; otherwise a login form and stop.

    A login lasts for the browser session (Streamlit's session state), not across reloads.
    """
    account = current_account()
    if account is not None and account.may(role):
        with st.sidebar:
            st.caption(f"Logged in as **{account.name}** ({account.role})")
            if st.button("Log out", key="logout"):
                st.session_state.pop(ACCOUNT_KEY, None)
                st.rerun()
        return account
    if account is not None:
        st.warning(f"{account.name} is an {account.role}; this page needs an {role}. Log in as one.")
    st.subheader("Log in")
    st.caption("Accounts are created with `helpmate users add NAME --role operator|admin`.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        account = authenticate(name, password, settings())
        if account is None:
            st.error("Wrong user name or password.")
        elif not account.may(role):
            st.error(f"{account.name} is an {account.role}; this page needs an {role}.")
        else:
            st.session_state[ACCOUNT_KEY] = account
            st.rerun()
    st.stop()
