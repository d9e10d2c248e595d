"""`helpmate ask` and `helpmate chat`: the support agent in the terminal.

Both go through ``SupportAgent``, as the web chat does: every message is stored with its
sentiment, questions get grounded answers with citations, operators' sentiment questions get
numbers from the database, and a request for a person opens a ticket. Both work with either model
backend (``--backend`` overrides ``HELPMATE_LLM_BACKEND``). A model that cannot be reached, a
knowledge base that does not exist or a model that is not prepared ends in one red line that says
what to do, and exit code 1, never a traceback.

Both ask as a customer by default (``--as customer``): the public knowledge bases only, and a
request for another conversation or a report is answered as a question. ``--as operator`` asks as
a local operator, who may use every knowledge base and read reports and transcripts.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated, Literal

import typer

from assistant.access import AccessDenied, Caller
from assistant.answering.assistant import REPLACED_NOTE
from assistant.cli.errors import user_errors
from assistant.config import Settings, get_settings
from assistant.llm.base import ModelUnavailableError
from assistant.modelstore import ModelMissingError
from assistant.retrieval.types import heading_path

Backend = Literal["local", "vllm"]
AsRole = Literal["customer", "operator"]
_QUIT = {"exit", "quit", ":q"}
_KIND_NOTES = {
    "generated": "Checked against the help center; citations added:",
    "extractive": REPLACED_NOTE,
    "refusal": "",
}


# What a user can fix: a model server that is down, a model not prepared, an unknown knowledge base,
# a knowledge base or conversation the caller may not use.
USER_ERRORS = (ModelUnavailableError, ModelMissingError, ValueError, AccessDenied)
AS_HELP = "Ask as a customer (public knowledge bases only) or as an operator (every knowledge base, reports, transcripts)."


def _caller(role: AsRole, settings: Settings, conversation_id: int | None) -> Caller:
    if role == "operator":
        return Caller.staff("operator", getpass.getuser())
    return Caller.customer(settings, conversation_id)


def _settings(backend: Backend | None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"llm_backend": backend}) if backend else settings


def _format_citation(citation) -> str:
    heading = heading_path(citation.title, citation.section)
    page = f", page {citation.page}" if citation.page else ""
    return f"[{citation.number}] {heading} — {citation.source}{page}"


def _print_reply(reply, streamed: bool, replaced: bool) -> None:
    """The final reply (when it is not what was streamed), its citations and how it was made."""
    if not streamed:
        typer.echo(reply.text)
    elif replaced:
        typer.echo("")
        note = _KIND_NOTES.get(reply.kind, "")
        if note:
            typer.secho(note, fg="yellow")
        typer.echo(reply.text)
    else:
        typer.echo("")
    for citation in reply.citations:
        typer.secho("  " + _format_citation(citation), fg="cyan")
    tools = ", ".join(call["tool"] for call in reply.trace.get("tools", []))
    typer.secho(f"  ({reply.kind} · {reply.model or 'no model call'}{' · tools: ' + tools if tools else ''} · "
                f"{reply.latency_ms:.0f} ms · conversation {reply.conversation_id})", dim=True)


def _run(agent, conversation_id: int, question: str, stream: bool, caller: Caller):
    """One agent turn, printing tokens as they come when ``stream``; returns (reply, replaced, streamed)."""
    from assistant.agent import AgentFinal
    from assistant.answering.assistant import TokenEvent

    streamed = False
    for event in agent.stream(conversation_id, question, caller=caller):
        if isinstance(event, TokenEvent) and stream:
            typer.echo(event.text, nl=False)
            streamed = True
        elif isinstance(event, AgentFinal):
            return event.reply, event.replaced, streamed
    raise RuntimeError("the agent's stream ended without a reply")


def _print_team_replies(settings: Settings, caller: Caller, conversation_id: int, seen: int) -> int:
    """Print what a person of the team wrote in the conversation since message ``seen``; returns the newest id."""
    from assistant.conversations.tickets import agent_replies
    from assistant.database import session_scope

    with session_scope(settings) as session:
        replies = agent_replies(session, caller, conversation_id, seen)
    for reply in replies:
        typer.secho(f"team> {reply['text']}", fg="green")
    return replies[-1]["id"] if replies else seen


def reply_json(reply) -> dict:
    """A reply as `helpmate ask --json` prints it: the answer's fields plus the conversation's."""
    base = reply.answer.to_json() if reply.answer is not None else {"citations": [], "retrieved": [], "model": None}
    return {**base, "answer": reply.text, "kind": reply.kind, "latency_ms": round(reply.latency_ms, 1),
            "conversation_id": reply.conversation_id, "message_id": reply.message_id, "ticket": reply.ticket,
            "sentiment": {"label": reply.sentiment[0], "score": reply.sentiment[1]}, "trace": reply.trace,
            **({"repeated": True} if reply.repeated else {})}


def ask(
    question: Annotated[str, typer.Argument(help="The customer's question.")],
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to answer from.")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer, kind, citations, retrieved, model, latency_ms, conversation_id, ticket, trace.")] = False,
    backend: Annotated[Backend | None, typer.Option("--backend", help="Language model backend: local (in-process) or vllm (server); default HELPMATE_LLM_BACKEND.")] = None,
    stream: Annotated[bool | None, typer.Option("--stream/--no-stream", help="Print the model's tokens as they come (default: on a terminal, never with --json).")] = None,
    conversation: Annotated[int | None, typer.Option("--conversation", help="Continue this conversation (its id is printed with every answer).")] = None,
    channel: Annotated[str, typer.Option("--channel", help="Channel recorded for a new conversation.")] = "cli",
    as_role: Annotated[AsRole, typer.Option("--as", help=AS_HELP)] = "customer",
) -> None:
    """Answer one question from a knowledge base, with numbered citations of its sources.

    The model's answer is checked against the passages it cites; an unsupported answer is
    replaced by the passage sentences that answer the question, and a question the knowledge base
    does not cover gets an offer to talk to a person instead of a guess. Operators' questions about
    customer sentiment ("how did sentiment change this week?") are answered from the database.
    The question and the answer are stored as a conversation.
    """
    from assistant.agent import SupportAgent

    show_tokens = (sys.stdout.isatty() if stream is None else stream) and not as_json
    settings = _settings(backend)
    with user_errors(*USER_ERRORS):
        agent = SupportAgent(settings)
        caller = _caller(as_role, settings, conversation)
        conversation_id = conversation if conversation is not None else agent.start(channel, kb, caller=caller)
        reply, replaced, streamed = _run(agent, conversation_id, question, show_tokens, caller.in_conversation(conversation_id))
    if as_json:
        typer.echo(json.dumps(reply_json(reply), ensure_ascii=False, default=str))
    else:
        _print_reply(reply, streamed, replaced)


def chat(
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to answer from.")] = "default",
    backend: Annotated[Backend | None, typer.Option("--backend", help="Language model backend: local or vllm; default HELPMATE_LLM_BACKEND.")] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print the model's tokens as they come.")] = True,
    as_role: Annotated[AsRole, typer.Option("--as", help=AS_HELP)] = "customer",
) -> None:
    """A conversation in the terminal: follow-up questions use the earlier turns. `exit` or Ctrl-D quits.

    After a hand-over to a person, their replies are printed before each prompt (`team>`); an empty
    line looks for new ones."""
    from assistant.agent import SupportAgent

    settings = _settings(backend)
    with user_errors(*USER_ERRORS):
        agent = SupportAgent(settings)
        caller = _caller(as_role, settings, None)
        conversation_id = agent.start("cli", kb, caller=caller)
        caller = caller.in_conversation(conversation_id)
    typer.secho(f"Helpmate on knowledge base {kb!r} ({settings.llm_backend} model). Type `exit` or press Ctrl-D to quit.",
                dim=True)
    seen = 0  # the newest reply of a person of the team printed so far
    while True:
        seen = _print_team_replies(settings, caller, conversation_id, seen)
        try:
            question = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo("")
            return
        if question.lower() in _QUIT:
            return
        if not question:
            continue
        typer.echo("helpmate> ", nl=False)
        try:
            reply, replaced, streamed = _run(agent, conversation_id, question, stream, caller)
        except USER_ERRORS as error:
            typer.secho(f"\nerror: {error}", err=True, fg="red")
            continue
        except KeyboardInterrupt:
            typer.echo("")
            return
        _print_reply(reply, streamed, replaced)
