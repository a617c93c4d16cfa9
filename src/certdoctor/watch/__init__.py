"""``certdoctor watch``: the fleet monitor's core — an inventory of targets, an observation store (SQLAlchemy
Core, Alembic migrations; SQLite by default, PostgreSQL when configured), one pass over the targets that are
due through the scan engine, and the events that changes make.

    >>> from certdoctor.watch import Store, run_pass
    >>> with Store("sqlite:////tmp/watch.db") as store:
    ...     store.add(["example.com", "api.example.com:8443"], labels={"team": "payments"}, every=3600)
    ...     result = run_pass(store)
    ...     rows = store.status()          # most urgent first
    ...     recent = store.events(since)   # certificate-rotated, finding-appeared, ...

See :mod:`certdoctor.watch.tables` for what is stored and :mod:`certdoctor.watch.events` for the events.
"""

from __future__ import annotations

from .durations import format_duration, parse_duration
from .events import KINDS as EVENT_KINDS
from .events import Snapshot, derive
from .runner import PassResult, observation, run_pass
from .store import (
    DEFAULT_EVERY,
    DEFAULT_KEEP,
    Observation,
    Store,
    WatchedTarget,
    default_url,
    parse_labels,
    parse_spec,
)

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_KEEP",
    "EVENT_KINDS",
    "Observation",
    "PassResult",
    "Snapshot",
    "Store",
    "WatchedTarget",
    "default_url",
    "derive",
    "format_duration",
    "observation",
    "parse_duration",
    "parse_labels",
    "parse_spec",
    "run_pass",
]
