"""The scan engine of one process: many targets on one event loop, through one caching :class:`Session`.

At most ``concurrency`` targets are in flight; ``rate`` caps how many start per second (a token bucket);
transient connection failures (connect timeouts, resets, temporary DNS failures) are retried ``retries``
times with jittered exponential backoff. Every target ends as exactly one record, in completion order.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence, Sized
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from ..diagnosis import Diagnosis
from ..errors import CertdoctorError
from ..model import DiagnoseOptions, PresentedChain, Target
from ..pipeline import Session
from .records import diagnosis_record, error_record, middle_of, serialise, splice
from .targets import ScanTarget

RECORD_CACHE = 4096  # distinct (target, evidence) records kept for splicing
BACKOFF = 0.5  # seconds before the first retry; doubled each time, jittered, capped at MAX_BACKOFF
MAX_BACKOFF = 5.0
MAX_CONCURRENCY = 10_000  # targets in flight per scan: each holds a socket (and a task, ~1 KB, made up front)
GC_THRESHOLD = 20_000  # allocations between young-generation collections during a scan (Python's default: 700)


@dataclass
class ScanOptions:
    concurrency: int = 100
    rate: float | None = None  # target starts per second (None: no cap)
    retries: int = 2
    full: bool = False  # the whole `check --json` document per target
    clients: bool = False  # per-client predictions in each record
    fmt: str = "jsonl"  # "jsonl" or "csv": how workers serialise records
    diagnose: DiagnoseOptions = field(default_factory=DiagnoseOptions)  # the Session's options
    # Instead of a serialised record, each result is produce(target, record, diagnosis or None), emitted as
    # (that value, None) — from every process of the scan: a module-level function (helper processes started
    # with "spawn" get it by name) whose value crosses process boundaries (picklable). `certdoctor watch`
    # makes its observations so.
    produce: Callable[[ScanTarget, dict[str, Any], Diagnosis | None], Any] | None = None
    # --starttls: the protocol to upgrade from ("smtp", "imap", "pop3", "none") for every line that names none
    # itself (no smtp:// imap:// pop3:// scheme, no starttls= option); None: each line's own (its port's).
    starttls: str | None = None


class Meta(NamedTuple):
    """What the main process keeps of a record for the live counters and the summary (a tuple: it crosses
    process boundaries once per target)."""

    target: str
    verdict: str
    ids: tuple[str, ...] = ()
    not_after: str | None = None
    days_left: float | None = None
    error: str | None = None
    severity: str | None = None  # the worst severity among the findings: "error", "warning" or None


def worst_severity(summary: dict[str, Any] | None) -> str | None:
    """ "error", "warning" or None, from a record's ``summary`` counts (a CSV row's errors/warnings columns)."""
    if not summary:
        return None
    if summary.get("errors") not in (0, "0", "", None):
        return "error"
    if summary.get("warnings") not in (0, "0", "", None):
        return "warning"
    return None


Emit = Callable[[Any, Meta | None], None]  # (serialised record, meta), or (produced value, None): see produce
# (target, record, diagnosis or None when the target could not be judged): see Engine's ``observe``
Observe = Callable[[ScanTarget, dict[str, Any], Diagnosis | None], None]


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


def transient(chains: Sequence[PresentedChain]) -> bool:
    """True when every address failed in a way worth retrying (nothing was presented)."""
    if not chains:
        return False
    for c in chains:
        if c.error is None:
            return False  # something was presented (or the handshake completed without a certificate)
        error = c.error
        if c.error_kind == "timeout" and "TCP" in error:
            continue  # connect timeout (SYN lost, overloaded listener)
        if c.error_kind in ("connect", "handshake") and ("reset" in error or "without answering" in error):
            continue
        return False
    return True


def record_meta(record: dict[str, Any]) -> Meta:
    leaf = record.get("leaf") or {}
    if "findings" in record and record["findings"] and "id" in record["findings"][0]:
        ids = tuple(dict.fromkeys(f["id"] for f in record["findings"]))
    else:
        ids = ()
    return Meta(
        record["target"],
        record.get("verdict", "unreachable"),
        ids,
        leaf.get("not_after"),
        leaf.get("days_left"),
        record.get("error") or _unreachable_reason(record),
        worst_severity(record.get("summary")),
    )


def _unreachable_reason(record: dict[str, Any]) -> str | None:
    """Why no address of an unreachable target answered ("connection refused"; distinct reasons joined)."""
    if record.get("verdict") != "unreachable":
        return None
    reasons = dict.fromkeys(e["error"] for e in record.get("endpoints") or [] if e.get("error"))
    return "; ".join(reasons) or None


class Engine:
    """Diagnoses targets with one session; ``emit(serialised_record, meta)`` gets each result.

    ``observe``: instead of ``emit``, ``observe(target, record, diagnosis)`` gets each result unserialised, with
    the :class:`Diagnosis` it was made from (None for a target that could not be judged: unresolvable, an
    internal error), and no record is spliced from another target's (``certdoctor watch`` stores them)."""

    def __init__(self, options: ScanOptions, emit: Emit, *, observe: Observe | None = None) -> None:
        self.options = options
        self.emit = emit
        if observe is None and options.produce is not None:
            produce = options.produce
            observe = lambda target, record, d: emit(produce(target, record, d), None)  # noqa: E731
        self.observe = observe
        self.limiter = RateLimiter(options.rate) if options.rate else None
        self.limit = options.concurrency  # workers allowed to take new targets (see share())
        self.session: Session | None = None
        self.at: datetime | None = None
        # Records by evidence: the same target presenting the same chains (same certificates, staples and
        # errors per address) gets the same judgement, so its record is spliced from the first one's.
        # Each entry also holds the chains it was made from: their certificate objects must outlive the key,
        # which names them by id().
        self._records: OrderedDict[tuple[Any, ...], tuple[str, Meta, object]] = OrderedDict()
        self.record_hits = 0

    @property
    def fmt(self) -> str:
        return self.options.fmt

    def _serialise(self, record: dict[str, Any]) -> str:
        return serialise(self.options.fmt, record)

    async def run(
        self, targets: AsyncIterator[ScanTarget] | Iterable[ScanTarget], session: Session | None = None
    ) -> None:
        """Diagnose every target, ``concurrency`` at a time.

        ``session``: a caching Session (``cache=True``) made by the caller and left open, to share its trust
        stores and judgements with later runs on the same event loop (a cluster worker scans shard after shard
        with one); None: the engine makes its own for this run and closes it at the end."""
        if session is not None:
            await self._run(targets, session)
            return
        async with Session(replace(self.options.diagnose, clients=self.options.clients), cache=True) as session:
            await self._run(targets, session)

    async def _run(self, targets: AsyncIterator[ScanTarget] | Iterable[ScanTarget], session: Session) -> None:
        self.session = session
        self.at = session.at
        # ``concurrency`` long-lived workers pulling targets: no task, semaphore or callback per target
        # (at thousands of targets a second, those cost as much as the judgement).
        source = _Source(targets)
        count = min(self.options.concurrency, MAX_CONCURRENCY)
        if isinstance(targets, Sized):  # never more workers than targets
            count = min(count, max(1, len(targets)))
        workers = [asyncio.ensure_future(self._work(source, i)) for i in range(count)]
        # The trust stores, indexes and modules loaded so far live as long as the scan: keep the cyclic
        # garbage collector from walking them again and again, and let it run less often (each handshake
        # allocates a few hundred short-lived objects; at the default threshold of 700 the collector runs
        # several times per target and costs ~5 % of a scan). Cycles are still collected.
        thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
        try:
            await asyncio.gather(*workers)
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    def share(self, parts: int) -> None:
        """Keep 1/``parts`` of the concurrency and of the rate (other processes took on the rest): the
        workers above the new limit stop after their current target."""
        self.limit = max(1, self.options.concurrency // parts)
        if self.limiter is not None and self.options.rate:
            self.limiter.rate = self.options.rate / parts
            self.limiter.capacity = max(1.0, self.limiter.rate)

    async def _work(self, source: _Source, index: int) -> None:
        if source.sync is not None:
            # A plain iterator is shared by the workers without a lock: next() never awaits, so no two workers
            # are ever inside it at once.
            for target in source.sync:
                await self.one(target)
                if index >= self.limit:
                    return
            return
        while index < self.limit:
            target = await source.next()
            if target is None:
                return
            await self.one(target)

    async def one(self, target: ScanTarget) -> None:
        if self.options.starttls is not None and not _names_its_protocol(target.text):
            target = target._replace(starttls=None if self.options.starttls == "none" else self.options.starttls)
        session = self.session
        assert session is not None and self.at is not None
        started = time.perf_counter()
        attempts = 0
        retries = self.options.retries
        gate = None if self.limiter is None else self.limiter.acquire  # the rate caps every connection
        while True:
            attempts += 1
            try:
                chains = await session.fetch(
                    target.host, target.port, target.sni, target.addresses, gate, starttls=target.starttls
                )
            except CertdoctorError as exc:
                message = str(exc)
                if "Temporary failure" in message and attempts <= retries:
                    await self._backoff(attempts)
                    continue
                kind = "resolve" if "resolv" in message else "usage"
                self._record(
                    target,
                    None,
                    error_record(
                        target, message, kind, attempts=attempts, elapsed=time.perf_counter() - started, at=self.at
                    ),
                )
                return
            except Exception as exc:  # defensive: one target must never stop the scan
                self._record(target, None, self._internal(target, exc, attempts, started))
                return
            if attempts <= retries and chains and chains[0].error is not None and transient(chains):
                await self._backoff(attempts)
                continue
            break
        key = None if self.options.full or self.observe is not None else _evidence_key(target, chains)
        if key is not None:
            cached = self._records.get(key)
            if cached is not None:
                # The same target presenting the same evidence as before: the same record, another line.
                self.record_hits += 1
                middle, meta, _ = cached
                self.emit(splice(self.options.fmt, target.line, middle, attempts, time.perf_counter() - started), meta)
                return
        d: Diagnosis | None = None
        try:
            tgt = Target(
                target.name,
                target.port,
                target.sni,
                target.addresses,
                host=target.host,
                starttls=target.starttls,
                labels=target.labels,
            )
            d = await session.judge_chains(tgt, chains, started=started, deployed=target.deployed or None)
            record = diagnosis_record(
                target,
                d,
                attempts=attempts,
                elapsed=time.perf_counter() - started,
                full=self.options.full,
                clients=self.options.clients,
            )
        except Exception as exc:  # defensive, as above
            key, d = None, None
            record = self._internal(target, exc, attempts, started)
        self._record(target, key, record, chains, d)

    def _internal(self, target: ScanTarget, exc: Exception, attempts: int, started: float) -> dict[str, Any]:
        return error_record(
            target,
            f"unexpected error: {type(exc).__name__}: {exc}",
            "internal",
            attempts=attempts,
            elapsed=time.perf_counter() - started,
            at=self.at,
        )

    def _record(
        self,
        target: ScanTarget,
        key: tuple[Any, ...] | None,
        record: dict[str, Any],
        evidence: object = None,
        diagnosis: Diagnosis | None = None,
    ) -> None:
        """Emit a freshly built record, and keep it (with the ``evidence`` its key names) for splicing when
        ``key`` is given; or hand it to ``observe``."""
        if self.observe is not None:
            self.observe(target, record, diagnosis)
            return
        meta = _full_meta(record) if self.options.full else record_meta(record)
        if key is not None:
            self._records[key] = (middle_of(self.fmt, record), meta, evidence)
            if len(self._records) > RECORD_CACHE:
                self._records.popitem(last=False)
        self.emit(self._serialise(record), meta)

    async def _backoff(self, attempt: int) -> None:
        delay = min(MAX_BACKOFF, BACKOFF * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        await asyncio.sleep(delay)


def _names_its_protocol(text: str) -> bool:
    """Whether a target line says how to speak to it (a URL scheme or a starttls= option), which --starttls
    does not override."""
    return "://" in text or "starttls=" in text.lower()


def _evidence_key(target: ScanTarget, chains: Iterable[PresentedChain]) -> tuple[Any, ...]:
    """Everything a record depends on besides the line number and the timing. The collector hands out one
    object per distinct certificate, so certificates are named by ``id()``: hashing the certificate objects
    would hash their whole encoding on every lookup. The record cache keeps the chains alive with the key, so
    no id can be reused while the key exists."""
    return (
        target.text,
        *[
            (c.source, c.error_kind, c.error, c.tls_version, c.total_received, tuple(map(id, c.certs)), c.ocsp_staple)
            for c in chains
        ],
    )


def _full_meta(record: dict[str, Any]) -> Meta:
    # the leaf expiring soonest among the chains presented (the worst case, as in compact records)
    leaves = [c["presented"][0] for c in record.get("chains") or [] if c.get("presented")]
    leaf = min(leaves, key=lambda x: x.get("not_after") or "~") if leaves else {}
    return Meta(
        record["target"],
        record.get("verdict", "unreachable"),
        tuple(dict.fromkeys(f["id"] for f in record.get("findings") or [])),
        leaf.get("not_after"),
        leaf.get("days_left"),
        record.get("error"),
        worst_severity(record.get("summary")),
    )


class _Source:
    """Targets shared by the workers: a plain iterator is read without awaiting; an async one under a lock
    (an async generator cannot be advanced by two coroutines at once)."""

    def __init__(self, items: AsyncIterator[ScanTarget] | Iterable[ScanTarget]) -> None:
        self._async = items if hasattr(items, "__anext__") else None
        self.sync = None if self._async is not None else iter(items)  # type: ignore[arg-type]
        self._lock = asyncio.Lock()
        self._done = False

    async def next(self) -> ScanTarget | None:
        if self._done:
            return None
        if self.sync is not None:
            target = next(self.sync, None)
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
