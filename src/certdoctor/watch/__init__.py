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

import importlib
from typing import Any

# Exports load on first use: `watch status` needs the store, not the scan engine behind `run_pass`.
_EXPORTS = {
    "format_duration": "durations",
    "parse_duration": "durations",
    "EVENT_KINDS": "events",
    "Snapshot": "events",
    "derive": "events",
    "PassResult": "runner",
    "observation": "runner",
    "run_pass": "runner",
    "DEFAULT_EVERY": "store",
    "DEFAULT_KEEP": "store",
    "Observation": "store",
    "Store": "store",
    "WatchedTarget": "store",
    "default_url": "store",
    "parse_labels": "store",
    "parse_spec": "store",
}
_NAMES = {"EVENT_KINDS": "KINDS"}  # exported under another name than the module's

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), _NAMES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
