"""The Helpmate web app (`helpmate ui`): chat for customers, a dashboard for operators, admin.

Run with `helpmate ui`, or `streamlit run ui/app.py`: either way visitors get no error details and no
developer toolbar (``HARDENED_OPTIONS``). The pages are
files under ``ui/views``; the navigation below decides their order, titles and addresses.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ (not the repository) on sys.path; the pages import `ui.*`.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from ui.ui_cli import HARDENED_OPTIONS  # noqa: E402

# `helpmate ui` passes these on the command line; started any other way, the app sets them. Options are
# process-wide and a page's client options travel at the start of a run, so the run that sets them reruns.
if any(st.get_option(option) != value for option, value in HARDENED_OPTIONS.items()):
    for option, value in HARDENED_OPTIONS.items():
        st.set_option(option, value)
    st.rerun()

# Not "pages": a pages/ folder beside the main script switches Streamlit to its old directory-based
# navigation, which ignores st.navigation (titles, order, default page).
PAGES = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="Helpmate", page_icon="💬", layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "chat.py", title="Chat", icon="💬", default=True),  # the default page lives at /
    st.Page(PAGES / "dashboard.py", title="Operator dashboard", icon="📊", url_path="dashboard"),
    st.Page(PAGES / "review.py", title="Review suggestions", icon="📝", url_path="review"),
    st.Page(PAGES / "admin.py", title="Admin", icon="🛠️", url_path="admin"),
])
navigation.run()
