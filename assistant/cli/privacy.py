"""`helpmate privacy …`: erase a customer's data on request, purge conversations past the retention period.

The command acts as a local admin (the operating-system user, ``Caller.staff("admin", …)``): whoever
can run it on the server can already read the database, and each run lands in the audit log under
their name with what it removed.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from assistant.access import Caller
from assistant.cli.errors import user_errors
from assistant.config import get_settings

privacy_app = typer.Typer(help="Personal data: erase a customer's conversations, purge old ones.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print what was removed as one JSON object.")]


def _counts(removed) -> str:
    return (f"{removed.conversations} conversations, {removed.messages} messages, {removed.tickets} tickets, "
            f"{removed.feedback} feedback, {removed.webhook_deliveries} webhook deliveries")


@privacy_app.command("erase")
def erase(
    customer: Annotated[str, typer.Option("--customer", help="The customer's id (customer_id of their conversations).")],
    as_json: JsonOption = False,
) -> None:
    """Delete every conversation of one customer, with its messages, tickets and feedback (the feedback
    on their conversations' answers too). Audited; cannot be undone."""
    from assistant.conversations.privacy import erase_customer

    with user_errors(ValueError):
        removed = erase_customer(get_settings(), customer, Caller.local_admin())
    if as_json:
        typer.echo(json.dumps({"customer": customer.strip(), **removed.as_dict()}))
    elif removed.conversations:
        typer.echo(f"erased customer {customer.strip()}: {_counts(removed)}")
    else:
        typer.echo(f"nothing stored for customer {customer.strip()}: no conversation has that customer_id")


@privacy_app.command("purge")
def purge(as_json: JsonOption = False) -> None:
    """Delete the conversations whose last message is older than HELPMATE_RETENTION_DAYS, with their
    messages, tickets and feedback. Audited; meant for a daily cron job."""
    from assistant.conversations.privacy import purge_expired

    with user_errors(ValueError):
        purged = purge_expired(get_settings(), Caller.local_admin())
    if as_json:
        typer.echo(json.dumps(purged.as_dict()))
    else:
        typer.echo(f"purged conversations last active before {purged.cutoff:%Y-%m-%d %H:%M} UTC "
                   f"(HELPMATE_RETENTION_DAYS={purged.retention_days}): {_counts(purged)}")
