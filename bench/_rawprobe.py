"""The raw reference probe: the thinnest asyncio + pyOpenSSL memory-BIO loop that completes TLS handshakes.

Independent of certdoctor on purpose (it imports nothing from it): it is the yardstick the scan is measured
against. Per target it connects, completes the handshake through memory BIOs (no verification), reads the
peer's chain with ``get_peer_cert_chain()`` and closes. Nothing is parsed, judged or written per target.

Run as a script (that is how the benchmark uses it, one process per shard)::

    python3 bench/_rawprobe.py TARGETS --concurrency 200 [--shard I/N] [--timeout S]

TARGETS holds one ``host:port,addr=IP`` per line (the ``certdoctor scan`` input format, as far as used here).
It prints one JSON object on stdout: counts, elapsed seconds (first connect to last close) and the chain
lengths seen per ``host:port``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from _targetlines import target_lines
from OpenSSL import SSL

_READ = 65_536


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # also the SNI
    port: int
    addr: str  # where to connect


def parse_targets(path: Path, shard: int = 0, shards: int = 1) -> list[Target]:
    """The targets of ``path`` (every ``shards``-th line starting at ``shard``); ``host:port[,addr=IP]`` lines."""
    return [Target(host, port, addr) for index, host, port, addr in target_lines(path) if index % shards == shard]


def client_context() -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    return ctx


class _Handshake(asyncio.Protocol):
    """One TLS handshake over memory BIOs; ``done`` gets the number of certificates the server sent."""

    __slots__ = ("conn", "done", "transport")

    def __init__(self, ctx: SSL.Context, sni: bytes, done: asyncio.Future[int]) -> None:
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_connect_state()
        self.conn.set_tlsext_host_name(sni)
        self.done = done
        self.transport: asyncio.Transport | None = None

    def _flush(self) -> None:
        while True:
            try:
                data = self.conn.bio_read(_READ)
            except SSL.WantReadError:
                return
            if self.transport is not None:
                self.transport.write(data)

    def _step(self) -> None:
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return
        except SSL.Error as exc:
            if not self.done.done():
                self.done.set_exception(exc)
            return
        self._flush()  # our Finished
        if not self.done.done():
            self.done.set_result(len(self.conn.get_peer_cert_chain() or ()))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._step()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.conn.bio_write(data)
        self._step()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionResetError("closed during the handshake"))


async def probe_one(ctx: SSL.Context, target: Target, timeout: float) -> int:
    """Handshake with ``target``; the number of certificates it sent (raises on failure)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    sni = target.host.encode("ascii")
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(lambda: _Handshake(ctx, sni, done), target.addr, target.port)
            return await done
    finally:
        if transport is not None:
            transport.close()


Probe = Callable[[Target, float], Awaitable[int]]  # one target, a timeout → certificates sent (raises on failure)


async def run(targets: list[Target], concurrency: int, timeout: float, probe: Probe | None = None) -> dict[str, object]:
    """Probe every target, ``concurrency`` at a time, with :func:`probe_one` (or ``probe``); the counts, errors,
    elapsed seconds and chain lengths per ``host:port``."""
    if probe is None:
        ctx = client_context()

        async def probe(target: Target, timeout: float) -> int:
            return await probe_one(ctx, target, timeout)

    chains: dict[str, Counter[int]] = {}
    errors: Counter[str] = Counter()
    position = 0
    ok = 0

    async def worker() -> None:
        nonlocal position, ok
        while position < len(targets):
            target = targets[position]
            position += 1
            try:
                count = await probe(target, timeout)
            except Exception as exc:
                errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                continue
            ok += 1
            chains.setdefault(f"{target.host}:{target.port}", Counter())[count] += 1

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


def main(argv: list[str] | None = None, probe: Probe | None = None, doc: str | None = None) -> int:
    """The command line (see the module docstring); ``probe`` and ``doc``: another probe's, for scripts that
    measure another handshake loop the same way (``_collectprobe.py``)."""
    parser = argparse.ArgumentParser(description=doc or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", type=Path)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--shard", default="0/1", help="I/N: probe every N-th line starting at line I (0-based)")
    ns = parser.parse_args(argv)
    index, _, count = ns.shard.partition("/")
    targets = parse_targets(ns.targets, int(index), int(count or 1))
    result = asyncio.run(run(targets, ns.concurrency, ns.timeout, probe))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
