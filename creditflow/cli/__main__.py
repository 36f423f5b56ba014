"""``python -m creditflow.cli``: the same as the ``creditflow`` command."""

from creditflow.cli import app

app()
