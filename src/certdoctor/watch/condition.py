"""An alert condition: what :mod:`certdoctor.watch.alerts` opens, keeps and resolves per target (its own module,
so that the modules that make conditions — renewal hooks, forecasts — need not import the alerts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Condition:
    """``key`` (``finding:<id>``, ``clients``, ``expiring``, ``break``, ``renewal-failed``…), ``severity``
    (``critical``, ``warning``, ``info``), a one-line ``summary`` and the ``detail`` a message carries."""

    key: str
    severity: str  # "critical", "warning", "info"
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)
