"""creditflow: the nightly credit pipeline for digital micro-lenders."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# Nothing may reach the network at run time. These are set before Prefect or Great
# Expectations is imported anywhere in the process; an explicit value from the user wins.
OFFLINE_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "False",
}
for _name, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
