"""``certdoctor scan``: diagnose many endpoints at once, streaming one record per target.

    >>> from certdoctor.scan import ScanOptions, run_scan
    >>> summary = run_scan("targets.txt", ScanOptions(concurrency=200), sys.stdout, fmt="jsonl", workers=2)

See :mod:`certdoctor.scan.targets` for the input format, :mod:`certdoctor.scan.records` for the records,
:mod:`certdoctor.scan.engine` for one process's event loop and :mod:`certdoctor.scan.driver` for workers,
output and --resume.
"""

from __future__ import annotations

from .driver import Summary, done_keys, run_scan
from .engine import Engine, Meta, ScanOptions
from .targets import BadLine, ScanTarget, parse_line, read_targets

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
