"""`helpmate kb`: the knowledge bases, their documents as the assistant reads them, and which customers see.

A knowledge base is internal (operators only) until an admin publishes it; only public ones are
offered in the customer chat and searched for customers. The command acts as a local admin (the
operating-system user), so whoever publishes or unpublishes is named in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from sqlalchemy import func, select

from assistant.access import AccessDenied, Caller, set_visibility
from assistant.cli.errors import user_errors
from assistant.config import get_settings
from assistant.database import session_scope
from assistant.database.models import Document, KnowledgeBase
from assistant.retrieval.documents import document_passages, documents

kb_app = typer.Typer(help="Knowledge bases: list them, read their documents' passages, and publish them to "
                          "customers or keep them internal.",
                     no_args_is_help=True)
NAME = Annotated[str, typer.Argument(help="Knowledge base name (`helpmate kb list` shows them).")]


@kb_app.command("list")
def list_() -> None:
    """Show every knowledge base, whether customers see it (public) or not (internal), and its documents."""
    with session_scope(get_settings()) as session:
        rows = session.execute(
            select(KnowledgeBase.name, KnowledgeBase.visibility, func.count(Document.id))
            .outerjoin(Document, Document.kb_id == KnowledgeBase.id)
            .group_by(KnowledgeBase.id, KnowledgeBase.name, KnowledgeBase.visibility).order_by(KnowledgeBase.name)).all()
    if not rows:
        typer.echo("no knowledge bases yet; create one with `helpmate ingest PATH --kb NAME`")
    for name, visibility, documents in rows:
        typer.echo(f"{name}\t{visibility}\t{documents} documents")


def _set(name: str, visibility: str) -> None:
    with user_errors(ValueError, AccessDenied):
        set_visibility(get_settings(), name, visibility, by=Caller.local_admin())
    typer.echo(f"{name} is now {visibility}" + (" (offered in the customer chat)" if visibility == "public"
                                                else " (operators only)"))


@kb_app.command("publish")
def publish(name: NAME) -> None:
    """Offer a knowledge base to customers in the chat."""
    _set(name, "public")


@kb_app.command("unpublish")
def unpublish(name: NAME) -> None:
    """Keep a knowledge base for operators only (customers no longer see or search it)."""
    _set(name, "internal")


@kb_app.command("show")
def show(
    name: NAME,
    document: Annotated[Optional[str], typer.Option("--document", "-d", help="Print this document's passages as the "
                                                    "assistant reads them: its source, or the source's end "
                                                    "(returns/returning-an-item.md).")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only the files that could not be ingested, with why.")] = False,
) -> None:
    """List a knowledge base's documents, or read one document's passages (sections, pages, text).

    Headings of PDFs and plain-text files are found from where lines stand, so check here how your
    own files came out before customers' questions do.
    """
    with user_errors(ValueError, AccessDenied), session_scope(get_settings()) as session:
        if document is None:
            rows = documents(session, Caller.local_admin(), name, failed_only=failed)
            typer.echo(f"{name}: {len(rows)} document{'' if len(rows) == 1 else 's'}" + (" that failed" if failed else ""))
            for row in rows:
                typer.echo(f"{row.status}\t{row.chunks}\t{row.format}\t{row.source}" + (f"\t{row.error}" if row.error else ""))
            return
        source, passages = document_passages(session, Caller.local_admin(), name, document)
    typer.echo(f"{source}: {len(passages)} passage{'' if len(passages) == 1 else 's'}")
    for p in passages:
        where = " · ".join(part for part in (p.section, f"page {p.page}" if p.page else None) if part)
        typer.echo(f"\n[{p.number}] {where or '(no heading)'} · {p.tokens} tokens\n{p.text}")
