"""A backfill's delivery checks, ahead of the nights and in parallel on the cluster.

Checking a delivery (manifest, every file's sha256, row count and header) depends on
nothing but its own folder, so on a cluster a backfill checks all its dates at once, one
task per date, before the nights run in date order. The rest of ingest stays in date order:
its rules read what earlier dates loaded (known customers, loan and transaction ids not
delivered before, the repayment a reversal names), as docs/scale_out.md explains.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from creditflow.landing import Delivery, DeliveryError, open_delivery


def checked_or_none(landing: Path, d: date) -> Delivery | None:
    """The checked delivery of ``d``, or None when it fails a check: the night checks it
    again itself and fails with the error, exactly as without a cluster."""
    try:
        return open_delivery(landing, d)
    except DeliveryError:
        return None
