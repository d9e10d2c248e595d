"""How every `helpmate` command reports a mistake: one red line on stderr that says what to fix, no traceback.

Library code raises exceptions whose messages name the fix ("run `helpmate models prepare`");
commands turn the ones a user can act on into ``fail``. Shared by the assistant's, ingestion's,
fine-tuning's and the web app's commands, so they all look and exit alike.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, NoReturn

import typer


def fail(error: BaseException | str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` in red on stderr and exit with ``code`` (1: the command could not run)."""
    typer.secho(f"error: {error}", err=True, fg="red")
    raise typer.Exit(code)


@contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Inside the block, the given exceptions end the command through ``fail`` instead of a traceback."""
    try:
        yield
    except kinds as error:
        fail(error)
