"""The scan engine of one process: many targets on one event loop, through one caching :class:`Session`.

At most ``concurrency`` targets are in flight; ``rate`` caps how many start per second (a token bucket);
transient connection failures (connect timeouts, resets, temporary DNS failures) are retried ``retries``
times with jittered exponential backoff. Every target ends as exactly one record, in completion order.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from .. import certinfo
from ..api import DiagnoseError
from ..model import PresentedChain
from ..session import Session
from .records import diagnosis_record, error_record, middle_of, splice, to_csv_row, to_jsonl
from .targets import ScanTarget

RECORD_CACHE = 4096  # distinct (target, evidence) records kept for splicing
BACKOFF = 0.5  # seconds before the first retry; doubled each time, jittered, capped at MAX_BACKOFF
MAX_BACKOFF = 5.0


@dataclass
class ScanOptions:
    concurrency: int = 100
    rate: float | None = None  # target starts per second (None: no cap)
    retries: int = 2
    full: bool = False  # the whole `check --json` document per target
    clients: bool = False  # per-client predictions in each record
    fmt: str = "jsonl"  # "jsonl" or "csv": how workers serialise records
    session: dict[str, Any] = field(default_factory=dict)  # Session(...) arguments


class Meta(NamedTuple):
    """What the main process keeps of a record for the live counters and the summary (a tuple: it crosses
    process boundaries once per target)."""

    line: int
    target: str
    verdict: str
    ids: tuple[str, ...] = ()
    not_after: str | None = None
    days_left: float | None = None
    error: str | None = None


Emit = Callable[[str, Meta], None]


class RateLimiter:
    """A token bucket: ``acquire()`` waits until a start is allowed (``rate`` per second, bursts of 1 s)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


def transient(chains: Iterable[PresentedChain]) -> bool:
    """True when every address failed in a way worth retrying (nothing was presented)."""
    chains = list(chains)
    if not chains or any(c.ok for c in chains):
        return False
    for c in chains:
        error = c.error or ""
        if c.error_kind == "timeout" and "TCP" in error:
            continue  # connect timeout (SYN lost, overloaded listener)
        if c.error_kind in ("connect", "handshake") and ("reset" in error or "without answering" in error):
            continue
        return False
    return True


def _meta(record: dict[str, Any]) -> Meta:
    leaf = record.get("leaf") or {}
    if "findings" in record and record["findings"] and "id" in record["findings"][0]:
        ids = tuple(dict.fromkeys(f["id"] for f in record["findings"]))
    else:
        ids = ()
    return Meta(
        record["line"],
        record["target"],
        record.get("verdict", "unreachable"),
        ids,
        leaf.get("not_after"),
        leaf.get("days_left"),
        record.get("error"),
    )


class Engine:
    """Diagnoses targets with one session; ``emit(serialised_record, meta)`` gets each result."""

    def __init__(self, options: ScanOptions, emit: Emit) -> None:
        self.options = options
        self.emit = emit
        self.limiter = RateLimiter(options.rate) if options.rate else None
        self.session: Session | None = None
        self.at: datetime | None = None
        # Records by evidence: the same target presenting the same chains (same certificates, staples and
        # errors per address) gets the same judgement, so its record is spliced from the first one's.
        self._records: OrderedDict[tuple[Any, ...], tuple[str, Meta]] = OrderedDict()
        self.record_hits = 0

    def _serialise(self, record: dict[str, Any]) -> str:
        return to_csv_row(record) if self.options.fmt == "csv" else to_jsonl(record)

    async def run(self, targets: AsyncIterator[ScanTarget] | Iterable[ScanTarget]) -> None:
        """Diagnose every target, ``concurrency`` at a time."""
        async with Session(cache=True, clients=self.options.clients, **self.options.session) as session:
            self.session = session
            self.at = session.at
            # ``concurrency`` long-lived workers pulling targets: no task, semaphore or callback per target
            # (at thousands of targets a second, those cost as much as the judgement).
            source = _Source(targets)
            workers = [asyncio.ensure_future(self._work(source)) for _ in range(self.options.concurrency)]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self, source: _Source) -> None:
        while True:
            target = await source.next()
            if target is None:
                return
            await self.one(target)

    async def one(self, target: ScanTarget) -> None:
        session = self.session
        assert session is not None and self.at is not None
        started = time.perf_counter()
        attempts = 0
        key: tuple[Any, ...] | None = None
        while True:
            attempts += 1
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                tgt, host = session.target_for(
                    target.host, port=target.port, name=target.name, sni=target.sni, resolve=target.addresses
                )
                chains = await session.collect_chains(tgt, host)
            except DiagnoseError as exc:
                message = str(exc)
                if "Temporary failure" in message and attempts <= self.options.retries:
                    await self._backoff(attempts)
                    continue
                kind = "resolve" if "resolv" in message else "usage"
                record = error_record(
                    target, message, kind, attempts=attempts, elapsed=time.perf_counter() - started, at=self.at
                )
                break
            except Exception as exc:  # defensive: one target must never stop the scan
                record = error_record(
                    target,
                    f"unexpected error: {type(exc).__name__}: {exc}",
                    "internal",
                    attempts=attempts,
                    elapsed=time.perf_counter() - started,
                    at=self.at,
                )
                break
            if transient(chains) and attempts <= self.options.retries:
                await self._backoff(attempts)
                continue
            key = None if self.options.full else _evidence_key(target, chains)
            cached = self._records.get(key) if key is not None else None
            if cached is not None:
                self.record_hits += 1
                middle, meta = cached
                elapsed = time.perf_counter() - started
                self.emit(
                    splice(self.options.fmt, target.line, middle, attempts, elapsed), meta._replace(line=target.line)
                )
                return
            try:
                d = await session.judge_chains(tgt, chains, started=started)
                record = diagnosis_record(
                    target,
                    d,
                    attempts=attempts,
                    elapsed=time.perf_counter() - started,
                    full=self.options.full,
                    clients=self.options.clients,
                )
            except Exception as exc:  # defensive, as above
                record = error_record(
                    target,
                    f"unexpected error: {type(exc).__name__}: {exc}",
                    "internal",
                    attempts=attempts,
                    elapsed=time.perf_counter() - started,
                    at=self.at,
                )
            break
        meta = _meta(record) if not self.options.full else _full_meta(record)
        if key is not None and record.get("error_kind") != "internal":
            self._records[key] = (middle_of(self.options.fmt, record), meta)
            if len(self._records) > RECORD_CACHE:
                self._records.popitem(last=False)
        self.emit(self._serialise(record), meta)

    async def _backoff(self, attempt: int) -> None:
        delay = min(MAX_BACKOFF, BACKOFF * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        await asyncio.sleep(delay)


def _evidence_key(target: ScanTarget, chains: Iterable[PresentedChain]) -> tuple[Any, ...]:
    """Everything a record depends on besides the line number and the timing."""
    return (
        target.text,
        tuple(
            (
                c.source,
                c.error_kind,
                c.error,
                c.tls_version,
                c.total_received,
                tuple(certinfo.fingerprint(x) for x in c.certs),
                None if c.ocsp_staple is None else hashlib.sha256(c.ocsp_staple).digest(),
            )
            for c in chains
        ),
    )


def _full_meta(record: dict[str, Any]) -> Meta:
    chains = record.get("chains") or []
    leaf = (chains[0].get("presented") or [{}])[0] if chains else {}
    return Meta(
        record["line"],
        record["target"],
        record.get("verdict", "unreachable"),
        tuple(dict.fromkeys(f["id"] for f in record.get("findings") or [])),
        leaf.get("not_after"),
        None,
        record.get("error"),
    )


class _Source:
    """Targets shared by the workers: a plain iterator is read without awaiting; an async one under a lock
    (an async generator cannot be advanced by two coroutines at once)."""

    def __init__(self, items: AsyncIterator[ScanTarget] | Iterable[ScanTarget]) -> None:
        self._async = items if hasattr(items, "__anext__") else None
        self._sync = None if self._async is not None else iter(items)  # type: ignore[arg-type]
        self._lock = asyncio.Lock()
        self._done = False

    async def next(self) -> ScanTarget | None:
        if self._done:
            return None
        if self._sync is not None:
            target = next(self._sync, None)
        else:
            async with self._lock:
                if self._done:
                    return None
                try:
                    target = await self._async.__anext__()  # type: ignore[union-attr]
                except StopAsyncIteration:
                    target = None
        if target is None:
            self._done = True
        return target
