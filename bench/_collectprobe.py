"""certdoctor's own collector alone: the scan's handshakes without any judgement, the ceiling of any scan.

Per target it runs :func:`certdoctor.collect.handshake.fetch_chain`, the function `certdoctor scan` collects
each server's chain with (the same process-wide client context, SNI, OCSP status request, SCT extension and
message callback, certificates parsed with cryptography and cached by fingerprint), and nothing else: no path
building, verification, checks, records or output. The same command line and JSON as ``_rawprobe.py``, so that
the benchmark runs both the same way::

    python3 bench/_collectprobe.py TARGETS --concurrency 200 [--shard I/N] [--timeout S]

Its rate, in as many processes as the scan uses, bounds what the scan can reach on the machine: whatever the
judgement costs comes on top of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

from _rawprobe import Target, parse_targets

from certdoctor.collect.handshake import fetch_chain


async def run(targets: list[Target], concurrency: int, timeout: float) -> dict[str, object]:
    chains: dict[str, Counter[int]] = {}
    errors: Counter[str] = Counter()
    position = 0
    ok = 0

    async def worker() -> None:
        nonlocal position, ok
        while position < len(targets):
            target = targets[position]
            position += 1
            got = await fetch_chain(target.addr, target.port, target.host, timeout)
            if got.error_kind is not None:
                errors[f"{got.error_kind}: {got.error}"[:200]] += 1
                continue
            ok += 1
            chains.setdefault(f"{target.host}:{target.port}", Counter())[len(got.certs)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(targets))))))
    elapsed = time.perf_counter() - started
    return {
        "targets": len(targets),
        "ok": ok,
        "failed": len(targets) - ok,
        "errors": dict(errors.most_common(10)),
        "elapsed": elapsed,
        "chain_lengths": {key: dict(counter) for key, counter in chains.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", type=Path)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--shard", default="0/1", help="I/N: collect every N-th line starting at line I (0-based)")
    ns = parser.parse_args(argv)
    index, _, count = ns.shard.partition("/")
    targets = parse_targets(ns.targets, int(index), int(count or 1))
    result = asyncio.run(run(targets, ns.concurrency, ns.timeout))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
