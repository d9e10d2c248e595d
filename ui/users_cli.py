"""`helpmate users`: accounts for the operator dashboard and the admin page.

The password is asked for (hidden, twice), read from standard input with ``--password-stdin``
(scripts, CI) or generated with ``--generate`` and printed once; it is never an argument, so it
does not end up in shell history or the process list.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from assistant.cli.errors import fail
from assistant.config import get_settings

users_app = typer.Typer(help="Operators and admins who log in to the dashboard and admin pages.", no_args_is_help=True)


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="operator (dashboard) or admin (dashboard and admin page).")] = "operator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")] = False,
    generate: Annotated[bool, typer.Option("--generate", help="Generate a random password and print it once.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Set a new password and role if the user exists.")] = False,
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
        account = add_user(name, password, role, get_settings(), replace=replace)
    except UserError as error:
        fail(str(error))
    typer.echo(f"user {account.name} ({account.role}) saved")
    if generate:
        typer.echo(f"password: {password}")


@users_app.command("list")
def list_() -> None:
    """Show every user, role, and last login."""
    from ui.auth import list_users

    users = list_users(get_settings())
    if not users:
        typer.echo("no users yet; add one with `helpmate users add NAME --role admin`")
    for user in users:
        last = user["last_login_at"].strftime("%Y-%m-%d %H:%M UTC") if user["last_login_at"] else "never"
        state = "" if user["active"] else " (disabled)"
        typer.echo(f"{user['name']}\t{user['role']}{state}\tlast login {last}")


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Lock a user out without deleting the account."""
    from ui.auth import UserError, set_active

    try:
        set_active(name, False, get_settings())
    except UserError as error:
        fail(str(error))
    typer.echo(f"user {name} disabled")


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Let a disabled user log in again."""
    from ui.auth import UserError, set_active

    try:
        set_active(name, True, get_settings())
    except UserError as error:
        fail(str(error))
    typer.echo(f"user {name} enabled")
