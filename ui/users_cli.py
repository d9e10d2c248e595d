"""`helpmate users`: accounts for the operator dashboard and the admin page.

The password is asked for (hidden, twice), read from standard input with ``--password-stdin``
(scripts, CI) or generated with ``--generate`` and printed once; it is never an argument, so it
does not end up in shell history or the process list.

The command acts as a local admin (``Caller.local_admin()``, the operating-system user): whoever
can run it on the server can already read the database, and every change lands in the audit log
under their name.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from assistant.access import Caller
from assistant.cli.errors import fail
from assistant.config import get_settings

users_app = typer.Typer(help="Operators and admins who log in to the dashboard and admin pages.", no_args_is_help=True)
KB_HELP = "Limit an operator to this knowledge base (repeat for more); without it they see all."


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="operator (dashboard) or admin (dashboard and admin page).")] = "operator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")] = False,
    generate: Annotated[bool, typer.Option("--generate", help="Generate a random password and print it once.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Set a new password and role if the user exists.")] = False,
    kb: Annotated[list[str] | None, typer.Option("--kb", help=KB_HELP)] = None,
) -> None:
    """Create a user who can log in to the operator dashboard (operator) or also the admin page (admin)."""
    from ui.auth import UserError, add_user, generate_password

    if password_stdin and generate:
        fail("choose one of --password-stdin and --generate")
    if generate:
        password = generate_password()
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        account = add_user(name, password, role, get_settings(), replace=replace, knowledge_bases=kb or None,
                           by=Caller.local_admin())
    except UserError as error:
        fail(str(error))
    typer.echo(f"user {account.name} ({account.role}) saved; knowledge bases: {_kbs(account.knowledge_bases)}")
    if generate:
        typer.echo(f"password: {password}")


def _kbs(knowledge_bases) -> str:
    return "all" if knowledge_bases is None else ", ".join(sorted(knowledge_bases)) or "none"


@users_app.command("set-kbs")
def set_kbs(
    name: Annotated[str, typer.Argument(help="Login name of an operator.")],
    kb: Annotated[list[str] | None, typer.Option("--kb", help="A knowledge base they may see (repeat for more).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Let them see every knowledge base.")] = False,
) -> None:
    """Choose the knowledge bases an operator sees on the dashboard (applies on their next page run)."""
    from ui.auth import UserError, set_knowledge_bases

    if bool(kb) == all_:
        fail("give the knowledge bases with --kb NAME (repeat for more), or --all for every one")
    try:
        account = set_knowledge_bases(name, None if all_ else kb, get_settings(), by=Caller.local_admin())
    except UserError as error:
        fail(str(error))
    typer.echo(f"user {account.name} ({account.role}) now sees: {_kbs(account.knowledge_bases)}")


@users_app.command("list")
def list_() -> None:
    """Show every user, role, knowledge bases and last login."""
    from ui.auth import list_users

    users = list_users(get_settings())
    if not users:
        typer.echo("no users yet; add one with `helpmate users add NAME --role admin`")
    for user in users:
        last = user["last_login_at"].strftime("%Y-%m-%d %H:%M UTC") if user["last_login_at"] else "never"
        state = "" if user["active"] else " (disabled)"
        typer.echo(f"{user['name']}\t{user['role']}{state}\tknowledge bases: {_kbs(user['knowledge_bases'])}"
                   f"\tlast login {last}")


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Lock a user out without deleting the account."""
    from ui.auth import UserError, set_active

    try:
        set_active(name, False, get_settings(), by=Caller.local_admin())
    except UserError as error:
        fail(str(error))
    typer.echo(f"user {name} disabled")


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Let a disabled user log in again."""
    from ui.auth import UserError, set_active

    try:
        set_active(name, True, get_settings(), by=Caller.local_admin())
    except UserError as error:
        fail(str(error))
    typer.echo(f"user {name} enabled")
