"""`helpmate webhooks`: the team's endpoints that hear of hand-overs, customers' messages and alerts.

The command acts as a local admin (the operating-system user), named in the audit log. Deliveries
are sent by `helpmate api` while it runs, or by `helpmate webhooks deliver --watch` where no API
runs (``assistant.webhooks.delivery``).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Optional

import typer

from assistant.access import AccessDenied, Caller
from assistant.cli.errors import user_errors
from assistant.config import get_settings
from assistant.webhooks import EVENTS, deliver_due, manage

webhooks_app = typer.Typer(help="Webhooks: tell a help desk or chat channel at once when a customer is handed over, "
                                "writes to a person, or when negative messages spike.", no_args_is_help=True)
WEBHOOK_ID = Annotated[int, typer.Argument(help="The webhook's id (`helpmate webhooks list`).")]


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST the events (http or https).")],
    event: Annotated[Optional[list[str]], typer.Option(
        "--event", "-e", help="An event to send (repeatable; default: all): "
                              + "; ".join(f"{name}: {what}" for name, what in EVENTS.items()))] = None,
    kb: Annotated[Optional[str], typer.Option("--kb", help="Only events of this knowledge base (default: all).")] = None,
) -> None:
    """Add a webhook and print its signing secret, once: keep it where the receiver checks signatures."""
    with user_errors(ValueError, AccessDenied):
        webhook_id, events, secret = manage.add(get_settings(), Caller.local_admin(), url, event or list(EVENTS), kb)
    typer.echo(f"webhook {webhook_id}: {', '.join(events)} of {kb or 'every knowledge base'} -> {url}")
    typer.secho(f"signing secret (shown once): {secret}", fg="yellow")
    typer.echo(f"Try it: helpmate webhooks test {webhook_id}")


@webhooks_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show every webhook: address, events, knowledge base, and its deliveries by status."""
    with user_errors(AccessDenied):
        rows = manage.webhooks(get_settings(), Caller.local_admin())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no webhooks yet; add one with `helpmate webhooks add URL`")
    for row in rows:
        state = "active" if row["active"] else "removed"
        typer.echo(f"{row['id']}\t{state}\t{row['url']}\t{row['kb'] or 'all'}\t{','.join(row['events'])}\t"
                   f"{row['delivered']} delivered, {row['pending']} pending, {row['failed']} failed")


@webhooks_app.command("remove")
def remove(webhook_id: WEBHOOK_ID) -> None:
    """Stop a webhook: nothing more is sent to it; its deliveries stay listed."""
    with user_errors(ValueError, AccessDenied):
        url = manage.remove(get_settings(), Caller.local_admin(), webhook_id)
    typer.echo(f"webhook {webhook_id} removed ({url})")


@webhooks_app.command("test")
def test(webhook_id: WEBHOOK_ID) -> None:
    """Send a `ping` event to one webhook now and say whether the receiver took it."""
    with user_errors(ValueError, AccessDenied):
        last = manage.ping(get_settings(), Caller.local_admin(), webhook_id)
    if last["status"] == "delivered":
        typer.secho(f"delivery {last['id']}: delivered", fg="green")
        return
    typer.secho(f"delivery {last['id']}: not taken ({last['last_error']}); it is retried like any other", fg="red", err=True)
    raise typer.Exit(1)


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: Annotated[Optional[int], typer.Option("--webhook", help="Only this webhook's.")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The newest deliveries: event, status, attempts and the last error."""
    with user_errors(AccessDenied):
        rows = manage.deliveries(get_settings(), Caller.local_admin(), webhook_id, status, limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        error = f"\t{row['last_error']}" if row["last_error"] and row["status"] != "delivered" else ""
        typer.echo(f"{row['id']}\twebhook {row['webhook_id']}\t{row['event']}\t{row['status']}\t"
                   f"{row['attempts']} attempts\t{row['created_at'][:19]}{error}")


@webhooks_app.command("retry")
def retry(delivery_id: Annotated[int, typer.Argument(help="The delivery's id (`helpmate webhooks deliveries`).")]) -> None:
    """Send a delivery again (a failed one, after its receiver is fixed) at the next round."""
    with user_errors(ValueError, AccessDenied):
        manage.retry(get_settings(), Caller.local_admin(), delivery_id)
    typer.echo(f"delivery {delivery_id} will be sent again")


@webhooks_app.command("deliver")
def deliver(
    watch: Annotated[bool, typer.Option("--watch", help="Keep sending every few seconds until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between rounds with --watch.")] = 2.0,
) -> None:
    """Send what is due now (or keep sending, with --watch): for deployments where `helpmate api` does not run."""
    settings = get_settings()
    while True:
        done = deliver_due(settings)
        if done.delivered or done.retrying or done.failed or not watch:
            typer.echo(f"{done.delivered} delivered, {done.retrying} to retry, {done.failed} failed")
        if not watch:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return
