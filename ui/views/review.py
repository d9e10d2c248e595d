"""Review suggestions: customers' ratings and suggested answers wait here until an operator approves
or rejects them. Needs an operator (or admin) login.

Anyone can open the web chat, and customer feedback would otherwise decide both what the model is
fine-tuned on and the held-out set of the gate that promotes it (``finetune.export``). So it is
stored pending; only what is approved here (or with `helpmate feedback approve`) reaches training
and evaluation, and what is rejected never does. Each decision is recorded (who, when) and audited.

An operator limited to some knowledge bases sees and decides only those knowledge bases'
suggestions; the feedback store checks it again on every decision. Customer text is shown with
``st.text`` and ``st.code`` only, never as Markdown, so a suggestion cannot put links, images or
formatting on this page.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from assistant.access import AccessDenied, Caller
from assistant.conversations.feedback import review_feedback
from assistant.database import session_scope
from ui import dashboard_data as data
from ui.common import friendly_errors, require_role, settings

FLASH_KEY = "review_flash"
SHOWN = 50  # oldest first; the rest after these are decided


def _decide(caller: Caller, feedback_id: int, approve: bool) -> None:
    try:
        review_feedback(settings(), feedback_id, approve=approve, by=caller)
    except (AccessDenied, ValueError) as error:
        st.session_state[FLASH_KEY] = ("error", f"Feedback #{feedback_id}: {error}")
    else:
        verdict = "approved for training" if approve else "rejected; it will not be used for training"
        st.session_state[FLASH_KEY] = ("success", f"Feedback #{feedback_id} {verdict}.")
    st.rerun()


def _show(row: dict, caller: Caller) -> None:
    with st.container(border=True):
        at = row["at"].strftime("%Y-%m-%d %H:%M UTC") if pd.notna(row["at"]) else "-"
        st.text(f"#{row['id']}  ·  {row['kb'] or 'no knowledge base'}  ·  conversation {row['conversation']}  ·  "
                f"{at}  ·  rating {row['rating']}")
        st.caption("Customer's question")
        st.code(row["question"], language=None, wrap_lines=True)
        st.caption("The assistant's answer")
        st.code(row["answer"], language=None, wrap_lines=True)
        if row["suggested_answer"]:
            st.caption("Suggested answer")
            st.code(row["suggested_answer"], language=None, wrap_lines=True)
        if row["comment"]:
            st.caption("Comment")
            st.code(row["comment"], language=None, wrap_lines=True)
        approve, reject, _ = st.columns([1, 1, 4])
        if approve.button("Approve", key=f"approve_{row['id']}", type="primary"):
            _decide(caller, row["id"], True)
        if reject.button("Reject", key=f"reject_{row['id']}"):
            _decide(caller, row["id"], False)


# require_role reads the account from the database on every run: a disabled operator or a change of
# knowledge bases applies on the next click.
caller = require_role("operator").caller()
st.title("Review suggestions")
st.caption("Customers' ratings and suggested answers from the chat. Approved ones become training data and held-out "
           "examples for the evaluation gate; rejected ones never do. Nothing here changes what the assistant says "
           "today (`helpmate feedback approve ID --by NAME` also makes a suggestion a verified answer).")
flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    (st.error if flash[0] == "error" else st.success)(flash[1])
with friendly_errors():
    with session_scope(settings()) as session:
        queue = data.pending_feedback(session, caller, limit=SHOWN + 1)
    if queue.empty:
        st.info("No suggestion awaits review.")
    else:
        rows = queue.to_dict("records")
        st.caption(f"{min(len(rows), SHOWN)}{'+' if len(rows) > SHOWN else ''} awaiting review, oldest first"
                   + ("" if caller.knowledge_bases is None else " (your knowledge bases only)") + ".")
        for row in rows[:SHOWN]:
            _show(row, caller)
