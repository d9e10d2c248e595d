"""`helpmate ask` and `helpmate chat`: grounded answers from a knowledge base in the terminal.

Both work with either model backend (``--backend`` overrides ``HELPMATE_LLM_BACKEND``). A model
that cannot be reached, a knowledge base that does not exist or a model that is not prepared ends
in one red line that says what to do, and exit code 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Annotated, Iterator, Literal, Sequence

import typer

from assistant.config import Settings, get_settings
from assistant.llm.base import ModelUnavailableError
from assistant.modelstore import ModelMissingError

Backend = Literal["local", "vllm"]
_QUIT = {"exit", "quit", ":q"}
_KIND_NOTES = {
    "generated": "Checked against the help center; citations added:",
    "extractive": "The model's answer is not supported by the help center; here is what the help center says:",
    "refusal": "",
}


class _UserError(Exception):
    """An error whose message tells the user what to fix; printed in red without a traceback."""


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except (ModelUnavailableError, ModelMissingError, ValueError) as error:
        raise _UserError(str(error)) from error


def _settings(backend: Backend | None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"llm_backend": backend}) if backend else settings


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(1)


def _format_citation(citation) -> str:
    heading = " > ".join(part for part in (citation.title, citation.section) if part)
    page = f", page {citation.page}" if citation.page else ""
    return f"[{citation.number}] {heading} — {citation.source}{page}"


def _print_answer(answer, streamed: bool, replaced: bool) -> None:
    """The final answer (when it is not what was streamed), its citations and how it was made."""
    if not streamed:
        typer.echo(answer.text)
    elif replaced:
        typer.echo("")
        note = _KIND_NOTES[answer.kind]
        if note:
            typer.secho(note, fg="yellow")
        typer.echo(answer.text)
    else:
        typer.echo("")
    for citation in answer.citations:
        typer.secho("  " + _format_citation(citation), fg="cyan")
    typer.secho(f"  ({answer.kind} · {answer.model or 'no model call'} · {answer.latency_ms:.0f} ms)", dim=True)


def _run(assistant, question: str, kb: str, history: Sequence[tuple[str, str]], stream: bool):
    """Answer one question, printing tokens as they come when ``stream``; returns (answer, replaced, streamed)."""
    from assistant.answering import FinalEvent, TokenEvent

    streamed = False
    for event in assistant.stream(question, kb, history):
        if isinstance(event, TokenEvent) and stream:
            typer.echo(event.text, nl=False)
            streamed = True
        elif isinstance(event, FinalEvent):
            return event.answer, event.replaced, streamed
    raise RuntimeError("the answer stream ended without a final answer")


def ask(
    question: Annotated[str, typer.Argument(help="The customer's question.")],
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to answer from.")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer, kind, citations, retrieved, model, latency_ms.")] = False,
    backend: Annotated[Backend | None, typer.Option("--backend", help="Language model backend: local (in-process) or vllm (server); default HELPMATE_LLM_BACKEND.")] = None,
    stream: Annotated[bool | None, typer.Option("--stream/--no-stream", help="Print the model's tokens as they come (default: on a terminal, never with --json).")] = None,
) -> None:
    """Answer one question from a knowledge base, with numbered citations of its sources.

    The model's answer is checked against the passages it cites; an unsupported answer is
    replaced by the passage sentences that answer the question, and a question the knowledge base
    does not cover gets an offer to talk to a person instead of a guess.
    """
    from assistant.answering import Assistant

    show_tokens = (sys.stdout.isatty() if stream is None else stream) and not as_json
    try:
        with _user_errors():
            assistant = Assistant(_settings(backend))
            answer, replaced, streamed = _run(assistant, question, kb, (), show_tokens)
    except _UserError as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(answer.to_json(), ensure_ascii=False))
    else:
        _print_answer(answer, streamed, replaced)


def chat(
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to answer from.")] = "default",
    backend: Annotated[Backend | None, typer.Option("--backend", help="Language model backend: local or vllm; default HELPMATE_LLM_BACKEND.")] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print the model's tokens as they come.")] = True,
) -> None:
    """A conversation in the terminal: follow-up questions use the earlier turns. `exit` or Ctrl-D quits."""
    from assistant.answering import Assistant

    settings = _settings(backend)
    try:
        with _user_errors():
            assistant = Assistant(settings)
    except _UserError as error:
        _fail(str(error))
    typer.secho(f"Helpmate on knowledge base {kb!r} ({settings.llm_backend} model). Type `exit` or press Ctrl-D to quit.",
                dim=True)
    history: list[tuple[str, str]] = []
    while True:
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
            with _user_errors():
                answer, replaced, streamed = _run(assistant, question, kb, history, stream)
        except _UserError as error:
            typer.secho(f"\nerror: {error}", err=True, fg="red")
            continue
        except KeyboardInterrupt:
            typer.echo("")
            return
        _print_answer(answer, streamed, replaced)
        history += [("user", question), ("assistant", answer.text)]
