"""Chat: customers ask, the assistant answers from the help center with its sources.

Open to everyone. The conversation lives in the session state (it survives reruns) and in the
database (every message, with sentiment). Each answer has thumbs, a "suggest a better answer"
form and expandable citations; "Talk to a person" opens a ticket for the operators. Once a ticket
is open the page looks for the operators' replies every few seconds (a fragment: the page does not
reload) and shows them in the conversation.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from assistant.llm.base import ModelUnavailableError
from assistant.access import AccessDenied
from assistant.answering.assistant import REPLACED_NOTE
from ui.chat_backend import (Reply, Token, citation_label, customer, document_name, give_feedback, knowledge_bases, new_agent_replies,
                              request_person, start_chat)
from ui.common import backend, client_address, friendly_errors, settings
from ui.safe_text import literal

STATE = "helpmate_chat"
DOWN_MESSAGE = ("The answer model is not reachable right now, so I cannot answer. Your message is saved; "
                "try again in a minute or ask to talk to a person.")
# Replies that answer nothing from the help center: a receipt while a person has the conversation,
# a greeting or thanks in return. There is nothing to rate.
UNRATED = ("with_person", "smalltalk")
REPLY_POLL = timedelta(seconds=5)  # how often an open ticket's conversation is checked for an operator's reply


def _state() -> dict:
    if STATE not in st.session_state:
        st.session_state[STATE] = {"conversation_id": None, "kb": None, "turns": [], "ticket_id": None, "agent_seen": 0}
    return st.session_state[STATE]


def _reset(state: dict, kb: str | None) -> None:
    state.update(conversation_id=None, kb=kb, turns=[], ticket_id=None, agent_seen=0)


@st.cache_resource(show_spinner="Loading the language model…")
def _warm(database: str, kb: str) -> bool:
    """Load the models once per server and knowledge base, so the first customer does not wait."""
    backend().warm(kb)
    return True


def _choose_kb(state: dict) -> str | None:
    names = knowledge_bases(settings())
    if not names:
        st.info("No knowledge base has been ingested yet. An admin can upload documents on the Admin page, "
                "or run `helpmate ingest FOLDER --kb NAME`.")
        return None
    preferred = st.query_params.get("kb") or settings().ui_kb or state["kb"]
    index = names.index(preferred) if preferred in names else (names.index("demo") if "demo" in names else 0)
    with st.sidebar:
        kb = st.selectbox("Knowledge base", names, index=index, key="chat_kb")
        if st.button("New conversation", key="new_conversation"):
            _reset(state, kb)
            st.rerun()
    if kb != state["kb"]:
        _reset(state, kb)
    return kb


def _send_feedback(message_id: int, rating: str, corrected_answer: str | None = None) -> bool:
    """Store the visitor's rating as this conversation's customer; a refusal (too many) is shown, not raised."""
    caller = customer(settings(), _state()["conversation_id"], client_address())
    try:
        give_feedback(settings(), message_id, rating, corrected_answer=corrected_answer, caller=caller)
    except (ValueError, AccessDenied) as error:
        st.warning(str(error))
        return False
    return True


def _feedback_controls(index: int, turn: dict) -> None:
    message_id = turn.get("message_id")
    if message_id is None:
        return
    if turn.get("rating"):
        st.caption("Thanks for your feedback." if turn["rating"] == "up" else
                   "Thanks; your feedback helps us improve this answer.")
    else:
        up, down, _ = st.columns([1, 1, 3])
        rating = None
        if up.button("👍 Helpful", key=f"up_{index}"):
            rating = "up"
        if down.button("👎 Not helpful", key=f"down_{index}"):
            rating = "down"
        if rating and _send_feedback(message_id, rating):
            turn["rating"] = rating
            st.rerun()
    if turn.get("suggested"):
        st.caption("Your suggested answer was sent to our team.")
        return
    with st.expander("Suggest a better answer"):
        with st.form(key=f"better_{index}", clear_on_submit=True):
            better = st.text_area("What should the answer have said?", key=f"better_text_{index}")
            sent = st.form_submit_button("Send suggestion")
        if sent:
            if not better.strip():
                st.warning("Write the better answer first.")
            # A correction without a thumb says the answer was not good enough.
            elif _send_feedback(message_id, turn.get("rating") or "down", corrected_answer=better.strip()):
                turn["suggested"] = True
                st.rerun()


def _show_turn(index: int, turn: dict) -> None:
    if turn["role"] == "agent":  # a person of the team, answering after a hand-over
        with st.chat_message("assistant", avatar="🧑‍💼"):
            st.caption("Reply from our team")
            st.markdown(literal(turn["text"]))
        return
    with st.chat_message("user" if turn["role"] == "customer" else "assistant"):
        if turn.get("error"):
            st.error(turn["error"])
            return
        if turn.get("kind") == "extractive":
            st.caption(REPLACED_NOTE)  # the draft streamed in this bubble is gone; say why
        st.markdown(literal(turn["text"]))  # what the customer or the assistant wrote, never markup
        if turn["role"] == "customer":
            return
        for citation in turn.get("citations") or []:
            with st.expander(literal(citation_label(citation))):
                st.markdown(literal(citation.get("text") or ""))  # the passage as written, never markup
                page = f" · page {citation['page']}" if citation.get("page") else ""
                st.caption(f"Source: {literal(document_name(citation))}{page}")  # the name, not the server path
        # A reply that opened a ticket says so itself (the sidebar keeps the ticket in view).
        if turn.get("kind") not in UNRATED:
            _feedback_controls(index, turn)


def _customer(state: dict, kb: str):
    """This visitor as a customer bound to the conversation their session started (started now if none)."""
    client = client_address()
    if state["conversation_id"] is None:
        state["conversation_id"] = start_chat(settings(), kb, client).conversation_id
    return customer(settings(), state["conversation_id"], client)


def _answer(state: dict, kb: str, question: str) -> None:
    state["turns"].append({"role": "customer", "text": question})
    _show_turn(len(state["turns"]) - 1, state["turns"][-1])
    with st.chat_message("assistant"):
        placeholder = st.empty()
        placeholder.markdown("…")
        streamed = ""
        try:
            for event in backend().ask(_customer(state, kb), question):
                if isinstance(event, Token):
                    streamed += event.text
                    placeholder.markdown(literal(streamed) + "▌")
                elif isinstance(event, Reply):
                    if not event.repeated:  # a person has the conversation and the receipt already stands above
                        state["turns"].append({"role": "assistant", "text": event.text, "kind": event.kind,
                                               "citations": event.citations, "message_id": event.message_id,
                                               "ticket_id": event.ticket_id, "model": event.model})
                    if event.ticket_id:
                        state["ticket_id"] = event.ticket_id
        except ModelUnavailableError as error:
            state["turns"].append({"role": "assistant", "error": f"{DOWN_MESSAGE}\n\n({error})"})
        except (ValueError, AccessDenied) as error:
            state["turns"].append({"role": "assistant", "error": f"I cannot answer from {kb!r}: {error}"})
    st.rerun()


def _talk_to_person(state: dict, kb: str) -> None:
    with st.sidebar:
        if state["ticket_id"]:
            st.success(f"Ticket #{state['ticket_id']} is open; a member of our team will reply here or by e-mail.")
        clicked = st.button("🙋 Talk to a person", key="talk_to_person")
    if clicked:
        ticket_id, created = request_person(settings(), _customer(state, kb))
        state["ticket_id"] = ticket_id
        note = "We've asked a member of our team to take over" if created else "Your request is already with our team"
        state["turns"].append({"role": "assistant", "text": f"{note} (ticket #{ticket_id}).", "kind": "handover"})
        st.rerun()


@st.fragment(run_every=REPLY_POLL)
def _pick_up_replies() -> None:
    """Show what the team wrote since the last look (the page reruns only when there is something new)."""
    state = _state()
    fresh = new_agent_replies(settings(), customer(settings(), state["conversation_id"], client_address()),
                              state["agent_seen"])
    if fresh:
        state["turns"] += [{"role": "agent", "text": reply["text"]} for reply in fresh]
        state["agent_seen"] = fresh[-1]["id"]
        st.rerun()


def main() -> None:
    st.title("Ask our help center")
    state = _state()
    kb = _choose_kb(state)
    if kb is None:
        return
    if settings().llm_backend == "local":
        try:
            _warm(settings().database, kb)
        except ModelUnavailableError as error:
            st.warning(f"{DOWN_MESSAGE}\n\n({error})")
    for index, turn in enumerate(state["turns"]):
        _show_turn(index, turn)
    _talk_to_person(state, kb)
    if state["ticket_id"] and state["conversation_id"]:
        _pick_up_replies()
    question = st.chat_input("Ask a question about orders, returns, shipping…")
    if question and question.strip():
        _answer(state, kb, question.strip())


with friendly_errors():
    main()
