"""The assistant's `helpmate` subcommands, one module per command group (``ui.cli`` assembles them)."""
