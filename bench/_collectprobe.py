"""certdoctor's own collector alone: the scan's handshakes without any judgement, the ceiling of any scan.

Per target it runs :func:`certdoctor.collect.handshake.fetch_chain`, the function `certdoctor scan` collects
each server's chain with (the same process-wide client context, SNI, OCSP status request, SCT extension and
message callback, certificates parsed with cryptography and cached by fingerprint), and nothing else: no path
building, verification, checks, records or output. The same command line, loop and JSON as ``_rawprobe.py``
(only the probe of one target differs), so that the benchmark runs both the same way::

    python3 bench/_collectprobe.py TARGETS --concurrency 200 [--shard I/N] [--timeout S]

Its rate, in as many processes as the scan uses, bounds what the scan can reach on the machine: whatever the
judgement costs comes on top of it.
"""

from __future__ import annotations

import sys

import _rawprobe

from certdoctor.collect.handshake import fetch_chain


class CollectError(Exception):
    """The collector's failure (its ``error_kind`` and message), counted by the loop as the raw probe's are."""


async def collect_one(target: _rawprobe.Target, timeout: float) -> int:
    """The chain of ``target`` through certdoctor's collector; the number of certificates (raises on failure)."""
    got = await fetch_chain(target.addr, target.port, target.host, timeout)
    if got.error_kind is not None:
        raise CollectError(f"{got.error_kind}: {got.error}")
    return len(got.certs)


if __name__ == "__main__":
    sys.exit(_rawprobe.main(probe=collect_one, doc=__doc__))
