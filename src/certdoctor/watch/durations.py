"""Durations as the monitor's options take them: ``90s``, ``15m``, ``1h``, ``7d`` (a number and one unit)."""

from __future__ import annotations

import re

from ..errors import InputError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``90s``, ``15m``, ``1h``, ``7d``, ``2w``; more than 0).

    Raises:
        InputError: any other text (``1h30m``, ``-5m``, ``10``: a unit is required).
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InputError(f"not a duration: {text!r} (a number and a unit: 90s, 15m, 1h, 7d)")
    seconds = float(match.group(1)) * UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise InputError(f"not a duration: {text!r} (must be more than 0)")
    return seconds


def format_duration(seconds: float) -> str:
    """The largest whole unit: 3600 → ``1h``, 90 → ``90s``."""
    for unit in ("w", "d", "h", "m"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{int(seconds // UNITS[unit])}{unit}"
    return f"{seconds:g}s"
