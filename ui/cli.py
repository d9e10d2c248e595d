"""`helpmate`: one command whose subcommands each package defines; assembled here, at the top."""

from __future__ import annotations

import typer

from assistant.cli.chat import ask, chat
from assistant.cli.errors import fail
from assistant.cli.conversations import import_conversations
from assistant.cli.feedback import feedback_app
from assistant.cli.kb import kb_app
from assistant.cli.models import models_app
from assistant.cli.privacy import privacy_app
from assistant.cli.sentiment import sentiment_app
from assistant.cli.serve import serve_model
from assistant.cli.webhooks import webhooks_app
from assistant.config import SettingsError, get_settings
from finetune.cli import finetune_app
from ingest.cli import ingest
from ui.api.cli import api, keys_app
from ui.eval_cli import eval_app
from ui.ui_cli import ui
from ui.users_cli import users_app

# Markdown help: a docstring's paragraphs are re-wrapped to the terminal (in Typer's "rich" mode each source
# line break stays, so wrapped help reads in ragged pieces); backticks show as code.
app = typer.Typer(help="Helpmate: customer-service AI on your own documents.", no_args_is_help=True, add_completion=False,
                  rich_markup_mode="markdown")


@app.callback()
def _settings_first() -> None:
    # Every command reads the settings: a mistyped HELPMATE_* value ends it with one line naming the
    # variable, before any work, instead of a traceback from wherever the settings were first read.
    try:
        get_settings()
    except SettingsError as error:
        fail(error)


app.add_typer(models_app, name="models")
app.command("ingest")(ingest)
app.add_typer(eval_app, name="eval")
app.command("ask")(ask)
app.command("chat")(chat)
app.add_typer(sentiment_app, name="sentiment")
app.command("import-conversations")(import_conversations)
app.command("serve-model")(serve_model)
app.add_typer(feedback_app, name="feedback")
app.add_typer(finetune_app, name="finetune")
app.command("ui")(ui)
app.add_typer(users_app, name="users")
app.add_typer(privacy_app, name="privacy")
app.command("api")(api)
app.add_typer(keys_app, name="keys")
app.add_typer(kb_app, name="kb")
app.add_typer(webhooks_app, name="webhooks")

if __name__ == "__main__":
    app()
