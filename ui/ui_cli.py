"""`helpmate ui`: start the web app (Streamlit) on a local port and print its address."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.errors import fail

APP = Path(__file__).resolve().parent / "app.py"


# What visitors must not get: tracebacks and exception messages (they name files and internals; the
# server log keeps them), and the developer toolbar (Deploy, rerun, clear cache). The pages show their
# own message for unexpected errors (ui.common.friendly_errors); this covers anything outside them.
# ui/app.py sets the same options itself, for a bare `streamlit run ui/app.py` (a container's entry point, say).
HARDENED_OPTIONS = {"client.showErrorDetails": "none", "client.toolbarMode": "viewer"}
HARDENING = [argument for option, value in HARDENED_OPTIONS.items() for argument in (f"--{option}", value)]


def streamlit_command(port: int, host: str) -> list[str]:
    """The `streamlit run` command line for the app (headless: it prints, it does not open a browser)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address", host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
            *HARDENING]


def ui(
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 serves other machines too.")] = "127.0.0.1",
    kb: Annotated[str | None, typer.Option("--kb", help="Knowledge base the chat answers from by default.")] = None,
) -> None:
    """Open the web app: customer chat, operator dashboard and admin page (Ctrl-C stops it)."""
    if not 1 <= port <= 65535:
        fail(f"port {port} is not between 1 and 65535")
    env = dict(os.environ)
    if kb:
        env["HELPMATE_UI_KB"] = kb
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.secho(f"Helpmate is running at http://{shown}:{port}  (dashboard: /dashboard, admin: /admin; Ctrl-C stops it)",
                fg="green")
    typer.echo("Operators and admins log in with accounts from `helpmate users add NAME --role operator|admin`.")
    sys.stdout.flush()
    # Become the Streamlit server (no child left behind): Ctrl-C and a service manager's SIGTERM
    # reach it directly.
    command = streamlit_command(port, host)
    os.execve(command[0], command, env)
