"""``certdoctor scan``: diagnose many endpoints at once, streaming one record per target.

    >>> from certdoctor.scan import ScanOptions, run_scan
    >>> summary = run_scan("targets.txt", ScanOptions(concurrency=200), sys.stdout, fmt="jsonl", workers=2)

See :mod:`certdoctor.scan.targets` for the input format, :mod:`certdoctor.scan.records` for the records,
:mod:`certdoctor.scan.engine` for one process's event loop and :mod:`certdoctor.scan.driver` for workers,
output and --resume.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .driver import Summary, done_keys, run_scan
    from .engine import Engine, Meta, ScanOptions
    from .targets import BadLine, ScanTarget, parse_line, read_targets

# Imported on first use (PEP 562): the target parser alone (watch's store, the CLI) does not need the engine's
# asyncio and OpenSSL machinery.
_HOME = {
    "Summary": "driver",
    "done_keys": "driver",
    "run_scan": "driver",
    "Engine": "engine",
    "Meta": "engine",
    "ScanOptions": "engine",
    "BadLine": "targets",
    "ScanTarget": "targets",
    "parse_line": "targets",
    "read_targets": "targets",
}

__all__ = [
    "BadLine",
    "Engine",
    "Meta",
    "ScanOptions",
    "ScanTarget",
    "Summary",
    "done_keys",
    "parse_line",
    "read_targets",
    "run_scan",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
