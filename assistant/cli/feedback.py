"""`helpmate feedback …`: store ratings and corrections, import them, review customers' suggestions,
approve verified answers.

The command line is run by someone with the database in hand, so it acts as a local admin
(``Caller.staff("admin", NAME)``): what it stores is approved for training, and its reviews are
audited under the ``--by`` name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assistant.access import Caller
from assistant.cli.errors import user_errors
from assistant.config import get_settings
from assistant.conversations.feedback import add_feedback, list_feedback, review_feedback
from assistant.conversations.feedback_import import import_feedback

feedback_app = typer.Typer(help="Ratings and corrections of the assistant's answers; verified answers.", no_args_is_help=True)


@feedback_app.command("add")
def add(
    rating: Annotated[str, typer.Argument(help="up or down, or stars from 1 to 5.")],
    message_id: Annotated[int | None, typer.Option("--message", help="The rated assistant message (its question, passages and model are taken from it).")] = None,
    question: Annotated[str | None, typer.Option(help="The customer's question (when no --message).")] = None,
    answer: Annotated[str | None, typer.Option(help="The assistant's answer that is rated (when no --message).")] = None,
    kb: Annotated[str | None, typer.Option(help="Knowledge base the answer came from.")] = None,
    corrected: Annotated[str | None, typer.Option("--corrected", help="The answer it should have given.")] = None,
    comment: Annotated[str | None, typer.Option(help="Free-text comment.")] = None,
    given_by: Annotated[str, typer.Option(help="customer or agent.")] = "agent",
    verify: Annotated[str | None, typer.Option("--verify", metavar="APPROVER", help="Also approve the corrected answer as a verified answer, by this person.")] = None,
) -> None:
    """Store one rating (with an optional correction) of an assistant answer."""
    settings = get_settings()
    with user_errors(ValueError):
        row = add_feedback(rating, message_id=message_id, question=question, answer=answer, kb=kb, corrected_answer=corrected,
                           comment=comment, given_by=given_by, source="cli", caller=Caller.staff("admin", verify or "cli"),
                           settings=settings)
        typer.echo(f"feedback {row.id} stored ({row.rating}{', with a correction' if row.corrected_answer else ''})")
        if verify:
            from assistant.answering.verified_answers import approve_feedback

            verified = approve_feedback(row.id, verify, settings=settings)
            typer.echo(f"verified answer {verified.id} for {verified.question!r} in {verified.kb!r}")


@feedback_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="CSV (header: question,answer,rating[,corrected_answer,comment,given_by,kb,conversation_id,model_version,created_at]) or JSONL.")],
    kb: Annotated[str | None, typer.Option(help="Knowledge base of rows that name none; its passages are stored with each row.")] = None,
    retrieve: Annotated[bool, typer.Option("--retrieve/--no-retrieve", help="Store the passages the assistant retrieves for each question.")] = True,
    review: Annotated[bool, typer.Option("--review", help="Hold the rows given by customers for review (`feedback approve`) instead of approving them for training.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import feedback collected elsewhere; bad rows are reported by line and skipped.

    Importing vouches for the file: its rows are approved for training unless --review.
    Exit status: 0 all rows imported (or already there), 2 some rows were bad, 1 the file could not be read.
    """
    with user_errors(FileNotFoundError, ValueError):
        report = import_feedback(path, kb=kb, settings=get_settings(), retrieve=retrieve, review_customer=review)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        typer.echo(f"{report.added} ratings imported ({report.corrections} with corrections, {report.with_passages} with passages), "
                   f"{report.duplicates} already stored, {len(report.bad_rows)} bad rows, from {report.rows} rows of {path}"
                   + (f"; {report.pending} customer rows await review (`helpmate feedback list --pending`)" if report.pending else ""))
        for warning in report.warnings:
            typer.secho(f"warning: {warning}", err=True, fg="yellow")
        for bad in report.bad_rows:
            typer.secho(f"  line {bad.line}: {bad.error}", err=True, fg="yellow")
    if report.bad_rows:
        raise typer.Exit(2)


@feedback_app.command("list")
def list_(
    kb: Annotated[str | None, typer.Option(help="Only this knowledge base.")] = None,
    corrections: Annotated[bool, typer.Option("--corrections", help="Only ratings with a corrected answer.")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="Only customer feedback awaiting review (`feedback approve` / `feedback reject`).")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The stored ratings, newest last, with their review status."""
    rows = list_feedback(get_settings(), kb=kb, only_corrections=corrections, review_status="pending" if pending else None)[-limit:]
    for row in rows:
        fix = f" -> {row.corrected_answer[:60]!r}" if row.corrected_answer else ""
        typer.echo(f"{row.id:>5}  {row.rating:<4} {row.given_by:<8} {row.review_status:<8} [{row.kb or '-'}] {row.question[:60]!r}{fix}")
    if pending and not rows:
        typer.echo("no feedback awaits review")


@feedback_app.command("approve")
def approve(
    feedback_id: Annotated[int, typer.Argument(help="The rating to approve for training (and whose corrected answer becomes the verified answer).")],
    approved_by: Annotated[str, typer.Option("--by", help="Who approves it (recorded in the feedback and the audit log).")],
    answer: Annotated[str | None, typer.Option(help="Verify this text instead of the stored correction.")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Also make its corrected answer the verified answer, served verbatim; --no-verify only approves it for training.")] = True,
) -> None:
    """Approve a rating for training and evaluation, and its corrected answer as the verified answer for its question."""
    from assistant.answering.verified_answers import approve_feedback

    if answer and not verify:
        raise typer.BadParameter("--answer gives the verified answer's text; drop it, or drop --no-verify", param_hint="--answer")
    settings = get_settings()
    with user_errors(ValueError):
        try:
            verified = approve_feedback(feedback_id, approved_by, answer=answer, settings=settings) if verify else None
        except ValueError as error:
            if "does not exist" in str(error):
                raise
            raise ValueError(f"{error}; or approve it for training only with --no-verify") from error
        review_feedback(settings, feedback_id, approve=True, by=Caller.staff("admin", approved_by))
    typer.echo(f"feedback {feedback_id} approved for training by {approved_by}")
    if verified is not None:
        typer.echo(f"verified answer {verified.id} for {verified.question!r} in {verified.kb!r}")


@feedback_app.command("reject")
def reject(
    feedback_id: Annotated[int, typer.Argument(help="The rating to keep out of training and evaluation.")],
    rejected_by: Annotated[str, typer.Option("--by", help="Who rejects it (recorded in the feedback and the audit log).")],
) -> None:
    """Reject a rating: it stays stored (and on the dashboard) but never reaches an export or the gate."""
    with user_errors(ValueError):
        review_feedback(get_settings(), feedback_id, approve=False, by=Caller.staff("admin", rejected_by))
    typer.echo(f"feedback {feedback_id} rejected by {rejected_by}")
