"""Operator dashboard: how customers feel, what went wrong, and the ticket queue, where an operator
answers a handed-over customer in their own conversation.

Needs an operator (or admin) login. The filters live in the sidebar; everything below them is one
fragment that reruns on its own every refresh interval, so the page updates without a reload and
without losing the operator's place. Every table has a CSV download of exactly what it shows.

What the operator sees is what their caller may see: every data function filters by the
operator's knowledge bases. Customer messages are shown as text (``st.text`` and tables), never
rendered as Markdown, so a message cannot put links or images on this page. The fragment checks
the session on each of its own reruns too, so a disabled operator's open dashboard stops updating.
"""

from __future__ import annotations

import json
from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from assistant.access import Caller, audit
from assistant.database import session_scope
from ui import dashboard_data as data
from ui.common import check_session, friendly_errors, require_role, settings, touch
from ui.safe_text import literal

COLORS = alt.Scale(domain=["negative", "neutral", "positive"], range=["#d62728", "#9e9e9e", "#2ca02c"])
REFRESH_CHOICES = {"off": None, "30 s": 30, "1 min": 60, "5 min": 300}


def _csv_button(frame: pd.DataFrame, name: str, where: str = "") -> None:
    """``where`` tells apart two buttons for the same table in different sections (a widget key is unique)."""
    st.download_button(f"Download {name} (CSV)", data.csv_bytes(frame), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv_{where}{name}", disabled=frame.empty)


def _filters(caller: Caller) -> tuple[data.Period, str | None, str, int | None]:
    with session_scope(settings()) as session:
        kbs = data.knowledge_base_choices(session, caller)
        default = data.default_period(session)
    with st.sidebar:
        st.header("Filters")
        chosen = st.date_input("Dates (UTC)", value=(default.first, default.last), key="dash_dates")
        first, last = (chosen if isinstance(chosen, (tuple, list)) and len(chosen) == 2 else (default.first, default.last))
        kb_choice = st.selectbox("Knowledge base", ["All"] + kbs, key="dash_kb",
                                 help=None if caller.knowledge_bases is None else "The knowledge bases you may see.")
        granularity = st.radio("Sentiment over time by", ["day", "hour"], horizontal=True, key="dash_granularity")
        refresh = st.selectbox("Refresh every", list(REFRESH_CHOICES), index=2, key="dash_refresh")
    return data.Period(first, last), (None if kb_choice == "All" else kb_choice), granularity, REFRESH_CHOICES[refresh]


def _sentiment_chart(frame: pd.DataFrame, granularity: str) -> alt.Chart:
    return (alt.Chart(frame).mark_bar()
            .encode(x=alt.X("period:N", title="day (UTC)" if granularity == "day" else "hour (UTC)", sort=None),
                    y=alt.Y("messages:Q", stack="zero", title="customer messages"),
                    color=alt.Color("sentiment:N", scale=COLORS, sort=["negative", "neutral", "positive"]),
                    order=alt.Order("sentiment:N", sort="ascending"),
                    tooltip=["period", "sentiment", "messages"])
            .properties(height=280, title="Sentiment over time"))


def _breakdown_chart(frame: pd.DataFrame, column: str) -> alt.Chart:
    long = frame[[column, "negative", "neutral", "positive"]].melt(id_vars=[column], var_name="sentiment",
                      value_name="messages")
    return (alt.Chart(long).mark_bar()
            .encode(y=alt.Y(f"{column}:N", sort=list(frame[column]), title=column),
                    x=alt.X("messages:Q", stack="zero"), color=alt.Color("sentiment:N", scale=COLORS),
                    tooltip=[column, "sentiment", "messages"])
            .properties(height=max(160, 40 * len(frame))))


def _drilldown(session, caller: Caller, conversation_id: int, where: str = "") -> None:
    rows = data.transcript_rows(session, caller, conversation_id)
    st.markdown(f"**Conversation {conversation_id}**: {len(rows)} messages")
    for row in rows:
        details = [row["role"], f"{row['at']:%Y-%m-%d %H:%M} UTC"]
        if row["sentiment"]:
            details.append(f"{row['sentiment']} ({row['score']:+.2f})")
        if row["answer_kind"]:
            details.append(row["answer_kind"])
        if row["topic"]:
            details.append(f"topic: {literal(row['topic'])}")
        with st.chat_message("user" if row["role"] == "customer" else "assistant"):
            st.caption(" · ".join(details))
            st.text(row["text"])  # as written: no Markdown, links or images from a message
            if row["trace"]:
                with st.expander("Tool trace"):
                    st.json(row["trace"] if isinstance(row["trace"], (dict, list)) else json.loads(row["trace"]))
    _csv_button(pd.DataFrame(rows, columns=data.TRANSCRIPT_COLUMNS).drop(columns=["trace"]),
                f"conversation_{conversation_id}", where)


def _tickets(session, caller: Caller, kb: str | None) -> None:
    from assistant.conversations.tickets import STATUSES

    if "dash_flash" in st.session_state:
        st.success(st.session_state.pop("dash_flash"))
    show_closed = st.toggle("Show closed tickets", key="dash_show_closed", on_change=touch)
    queue = data.tickets(session, caller, STATUSES if show_closed else ("open", "assigned"), kb)
    st.dataframe(queue, hide_index=True, width="stretch")
    _csv_button(queue, "tickets")
    if queue.empty:
        return
    with st.form("ticket_status"):
        left, middle, right = st.columns(3)
        ticket_id = left.selectbox("Ticket", list(queue["id"]), format_func=lambda i: f"#{i}")
        status = middle.selectbox("New status", STATUSES, index=1)
        assignee = right.text_input("Assignee", value=caller.name)
        if st.form_submit_button("Update ticket"):
            try:
                data.update_ticket(session, caller, int(ticket_id), status, assignee.strip() or None)
                session.commit()
                audit(settings(), caller, "ticket.status", f"ticket {int(ticket_id)}",
                      {"status": status, "assignee": assignee.strip() or None})
                st.session_state["dash_flash"] = f"Ticket #{ticket_id} is now {status}."
                st.rerun()
            except ValueError as error:
                st.error(str(error))
    _reply(session, caller, queue)


def _reply(session, caller: Caller, queue: pd.DataFrame) -> None:
    """Answer the customer of a ticket in their own conversation: they read it in their chat."""
    from assistant.conversations.store import MAX_TEXT_CHARS
    from assistant.conversations.tickets import reply_as_agent

    st.markdown("**Answer the customer**")
    by_id = queue.set_index("id")
    ticket_id = st.selectbox("Conversation of ticket", list(queue["id"]), key="dash_reply_ticket", on_change=touch,
                             format_func=lambda i: f"#{i} · {by_id.loc[i, 'reason'][:80]}")
    conversation_id = int(by_id.loc[ticket_id, "conversation_id"])
    _drilldown(session, caller, conversation_id, where="ticket_")
    with st.form("ticket_reply", clear_on_submit=True):
        text = st.text_area("Your reply (the customer reads it in their chat)", key="dash_reply_text", max_chars=MAX_TEXT_CHARS)
        if st.form_submit_button("Send reply", on_click=touch):
            try:
                reply_as_agent(session, caller, conversation_id, text, settings())
                session.commit()
            except ValueError as error:
                st.error(str(error))
                return
            audit(settings(), caller, "conversation.reply", f"conversation {conversation_id}", {"ticket": int(ticket_id)})
            st.session_state["dash_flash"] = f"Your reply is in conversation {conversation_id} (ticket #{ticket_id})."
            st.rerun()


def _body(period: data.Period, kb: str | None, granularity: str) -> None:
    # The fragment reruns on its own: each time, the session must still be allowed (it is not extended).
    caller = check_session("operator").caller()
    with friendly_errors(), session_scope(settings()) as session:
        _sections(session, caller, period, kb, granularity)


def _sections(session, caller: Caller, period: data.Period, kb: str | None, granularity: str) -> None:
    head = data.overview(session, caller, period, kb)
    a, b, c, d = st.columns(4)
    a.metric("Customer messages", head["messages"])
    b.metric("Negative", "–" if head["share_negative"] is None else f"{head['share_negative']:.0%}")
    c.metric("Open tickets", head["open_tickets"])
    d.metric("Alerts", head["alerts"])

    over_time = data.sentiment_over_time(session, caller, period, granularity, kb)
    if over_time.empty:
        st.info("No customer messages in this period. Widen the dates or import conversations "
                "(`helpmate import-conversations FILE`).")
    else:
        st.altair_chart(_sentiment_chart(over_time, granularity), width="stretch")
    _csv_button(over_time, "sentiment_over_time")

    st.subheader("Sentiment by")
    for tab, column in zip(st.tabs(["Channel", "Knowledge base", "Topic"]), ["channel", "kb", "topic"]):
        with tab:
            frame = data.sentiment_by(session, caller, period, column, kb)
            if not frame.empty:
                st.altair_chart(_breakdown_chart(frame, column), width="stretch")
            st.dataframe(frame, hide_index=True, width="stretch")
            _csv_button(frame, f"sentiment_by_{column}")

    st.subheader("Alerts: negative spikes")
    spikes = data.alerts(session, caller, period, kb)
    st.dataframe(spikes, hide_index=True, width="stretch") if not spikes.empty else st.caption("No spike in this period.")
    _csv_button(spikes, "alerts")

    st.subheader("Most negative conversations")
    worst = data.most_negative(session, caller, period, kb)
    st.dataframe(worst, hide_index=True, width="stretch")
    _csv_button(worst, "most_negative")
    if not worst.empty:
        chosen = st.selectbox("Open a conversation", list(worst["conversation_id"]), key="dash_conversation",
                              on_change=touch,
                              format_func=lambda i: f"#{i} · {worst.set_index('conversation_id').loc[i, 'worst_message'][:80]}")
        _drilldown(session, caller, int(chosen))

    st.subheader("Feedback by model version")
    feedback = data.feedback_by_model(session, caller, period, kb)
    st.dataframe(feedback, hide_index=True, width="stretch",
                 column_config={"feedback_rate": st.column_config.NumberColumn(format="percent"),
                                "thumbs_up_share": st.column_config.NumberColumn(format="percent")})
    _csv_button(feedback, "feedback_by_model")

    st.subheader("Questions the assistant could not answer")
    missing = data.unanswered(session, caller, period, kb)
    st.dataframe(missing, hide_index=True, width="stretch") if not missing.empty else st.caption("None in this period.")
    _csv_button(missing, "unanswered")

    st.subheader("Ticket queue")
    _tickets(session, caller, kb)


def main() -> None:
    caller = require_role("operator").caller()
    st.title("Operator dashboard")
    with friendly_errors():
        period, kb, granularity, every = _filters(caller)
        everything = "all knowledge bases" if caller.knowledge_bases is None else "all your knowledge bases"
        st.caption(f"{period.first:%d %b %Y} – {period.last:%d %b %Y} (UTC) · "
                   f"{literal(kb) if kb else everything} · refreshes {'every %d s' % every if every else 'on demand'}")
        fragment = st.fragment(run_every=timedelta(seconds=every) if every else None)(_body)
        fragment(period, kb, granularity)


main()
