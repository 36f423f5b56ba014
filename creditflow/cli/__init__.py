"""The ``creditflow`` command line (``creditflow --help``)."""

from creditflow.cli import (  # noqa: F401  (each module registers its commands on the app)
    data_commands,
    limit_commands,
    model_commands,
    night_commands,
    notice_commands,
    output_commands,
)
from creditflow.cli.app import app

__all__ = ["app"]
