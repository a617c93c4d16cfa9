"""Reading the benchmark's target lists: one ``host:port[,addr=IP]`` per line (the ``certdoctor scan`` input
format, as far as the benchmark uses it). Shared by the raw probe and the sslyze driver, which import nothing
from certdoctor (the sslyze driver runs in sslyze's own virtual environment)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def target_lines(path: Path) -> Iterator[tuple[int, str, int, str]]:
    """``(line index, host, port, address)`` for each target line of ``path``; the host is also the SNI, the
    address (``addr=``, else the host) is where to connect. Blank lines and ``#`` comments are skipped."""
    with path.open(encoding="utf-8") as handle:
        for index, raw in enumerate(handle):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            head, *options = line.split(",")
            host, _, port = head.rpartition(":")
            addr = host
            for option in options:
                key, _, value = option.partition("=")
                if key.strip() == "addr":
                    addr = value.strip()
            yield index, host, int(port), addr
