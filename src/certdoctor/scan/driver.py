"""Running a scan: reading targets, worker processes, streaming output, --resume, progress and the summary.

The scanning process reads the input, runs an :class:`~certdoctor.scan.engine.Engine` on it and writes every
record. Helper processes (forked after the trust stores are loaded, before any event loop exists, so they
share the stores) run an engine each on batches of targets sent through bounded queues, so the reader never
runs far ahead and a million-line input is never held in memory; their records come back serialised and are
written as they arrive. Helpers join all at once (``--workers K``) or, by default, one at a time while the
scanning process is CPU-bound and the machine has idle cores (see :class:`_Pool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from ..collect.http import preload as preload_http
from ..pipeline import preload as preload_judgement
from .engine import Engine, Meta, ScanOptions, record_meta, worst_severity
from .records import bad_line_record, error_record, serialise
from .startmethod import START_METHOD  # how helper processes start (re-exported)
from .targets import BadLine, ScanTarget, lines_of, read_targets

BATCH = 32  # targets per message to a worker
FLUSH_SECONDS = 0.25

Earlier = tuple[str, str | None]  # a record of the --resume file: (verdict, worst severity)


@dataclass
class Summary:
    """Counters for the live progress line and the final table (constant memory)."""

    total: int | None = None
    done: int = 0
    skipped: int = 0  # already in the --resume file
    earlier: int = 0  # of those, the records whose verdicts are counted here (read from the file)
    fail_on_warning: bool = False  # --fail-on warning: a valid target with warnings is a problem too
    warned: int = 0  # valid targets with warnings (this run and the earlier one)
    verdicts: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    soonest: list[tuple[float, str, str]] = field(default_factory=list)  # max-heap by -days: (−days, not_after, target)
    started: float = field(default_factory=time.monotonic)
    interrupted: bool = False

    def add(self, meta: Meta) -> None:
        self.done += 1
        self.verdicts[meta.verdict] += 1
        if meta.severity is not None and meta.verdict == "valid":
            self.warned += 1
        for fid in meta.ids:
            self.findings[fid] += 1
        if meta.error and meta.verdict != "bad-input":
            self.errors[meta.error.split(":")[-1].strip()[:60] or meta.error[:60]] += 1
        days = meta.days_left
        if days is None or not meta.not_after:
            return
        soonest = self.soonest
        if len(soonest) >= 10 and -days <= soonest[0][0]:
            return  # not among the 10 soonest (the usual case, checked before the duplicate scan below)
        if any(t == meta.target for _, _, t in soonest):
            return
        item = (-days, meta.not_after, meta.target)
        if len(soonest) < 10:
            heapq.heappush(soonest, item)
        else:
            heapq.heappushpop(soonest, item)

    def add_earlier(self, earlier: Earlier) -> None:
        """A target already done in the --resume file: its verdict counts as if scanned now."""
        verdict, severity = earlier
        self.skipped += 1
        self.earlier += 1
        self.verdicts[verdict] += 1
        if severity is not None and verdict == "valid":
            self.warned += 1

    @property
    def problems(self) -> int:
        """Targets that make the exit status 1: not valid (invalid, unreachable, bad input), and with
        --fail-on warning valid ones with warnings; the earlier run's records included."""
        problems = self.done + self.earlier - self.verdicts["valid"]
        return problems + self.warned if self.fail_on_warning else problems

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": self.done,
            "skipped": self.skipped,
            "earlier": self.earlier,
            "verdicts": dict(self.verdicts),
            "findings": dict(self.findings.most_common()),
            "soonest_expiries": [
                {"target": t, "not_after": na, "days_left": -d} for d, na, t in sorted(self.soonest, reverse=True)
            ],
            "elapsed_s": round(time.monotonic() - self.started, 2),
            "targets_per_s": round(self.rate, 1),
            "interrupted": self.interrupted,
        }


# --- resume ---------------------------------------------------------------------------------------------


def done_keys(path: Path) -> set[tuple[int, str]]:
    """(line, target) of every record in an earlier results file (see :func:`done_records`)."""
    return set(done_records(path))


def done_records(path: Path) -> dict[tuple[int, str], Earlier]:
    """(line, target) → (verdict, worst severity) of every record in an earlier results file (JSON Lines or
    CSV), so that a resumed scan counts them in its verdicts and exit status; a torn last line (the scan was
    killed mid-write) is ignored."""
    done: dict[tuple[int, str], Earlier] = {}
    if not path.exists():
        return done
    import csv

    shared: dict[Earlier, Earlier] = {}  # one tuple per distinct value (a million records, a handful of values)
    with path.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
        fh.seek(0)
        if first.startswith("{"):
            for raw in fh:
                if not raw.endswith("\n"):
                    break
                try:
                    record = json.loads(raw)
                    key = (int(record["line"]), str(record["target"]))
                    value = (str(record.get("verdict", "unreachable")), worst_severity(record.get("summary")))
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                done[key] = shared.setdefault(value, value)
        else:
            for row in csv.DictReader(fh):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    value = (row.get("verdict") or "unreachable", worst_severity(row))
                    done[(int(row["line"]), str(row["target"]))] = shared.setdefault(value, value)
    return done


def repair_tail(path: Path) -> None:
    """Cut a torn last line (the bytes after the last newline: the scan was killed mid-write) so that appended
    records start on a line of their own. Every complete line before it is kept, however long the torn one."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        end = size
        while end > 0:  # backwards, a block at a time, to the last newline
            start = max(0, end - (1 << 20))
            fh.seek(start)
            cut = fh.read(end - start).rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        if end < size:
            fh.truncate(end)


# --- input ----------------------------------------------------------------------------------------------


def count_targets(path: str) -> int | None:
    """Non-comment lines of a regular file (for the progress bar); None for stdin or a pipe."""
    if path == "-" or not os.path.isfile(path):
        return None
    n = 0
    with open(path, "rb") as fh:
        for raw in fh:
            s = raw.strip()
            if s and not s.startswith(b"#"):
                n += 1
    return n


def open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    return open(path, encoding="utf-8", errors="replace")


# --- the worker process ---------------------------------------------------------------------------------


def _worker_main(options: ScanOptions, tasks: Any, results: Any, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C (and a hangup) and stops us
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ... and terminates us (not the command line's handler)
    if options.diagnose.fetch_aia or options.diagnose.revocation:
        preload_http()  # a spawned helper starts without it (a forked one has it already)
    buffer: list[tuple[str, Meta]] = []
    last = [time.monotonic()]

    def flush() -> None:
        if buffer:
            results.put(list(buffer))
            buffer.clear()
        last[0] = time.monotonic()

    def emit(line: str, meta: Meta) -> None:
        buffer.append((line, meta))
        if len(buffer) >= 64 or time.monotonic() - last[0] > FLUSH_SECONDS:
            flush()

    async def feed() -> Any:
        loop = asyncio.get_running_loop()
        while True:
            batch = await loop.run_in_executor(None, tasks.get)
            if batch is None:
                return
            for wire in batch:
                yield ScanTarget.from_wire(wire)

    async def main() -> None:
        async def ticker() -> None:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                if os.getppid() != parent:  # the parent died without stopping us (SIGKILL): no one to report to
                    os._exit(1)
                flush()

        tick = asyncio.ensure_future(ticker())
        try:
            await Engine(options, emit).run(feed())
        finally:
            tick.cancel()

    try:
        asyncio.run(main())
    finally:
        flush()
        results.put(None)


class ClusterSpec(NamedTuple):
    """Where and how to scan on a Dask cluster (see :func:`certdoctor.scan.cluster.run_cluster`)."""

    address: str  # tcp://HOST:PORT of a scheduler, or local:N
    task_targets: int = 200  # targets per task
    timeout: float = 10.0  # seconds to reach the scheduler, and without it mid-scan


def _on_cluster(
    cluster: ClusterSpec | str, options: ScanOptions, targets: Iterable[ScanTarget], record: Any, writer: Any
) -> None:
    from .cluster import run_cluster  # Dask is imported for --cluster only

    spec = ClusterSpec(cluster) if isinstance(cluster, str) else cluster
    run_cluster(spec.address, options, targets, record, writer, task_targets=spec.task_targets, timeout=spec.timeout)


# --- the scan -------------------------------------------------------------------------------------------


class Writer:
    """Writes records to the output as they come (flushed at least every FLUSH_SECONDS)."""

    def __init__(self, out: IO[str], fmt: str, text_line: Any = None) -> None:
        self.out = out
        self.fmt = fmt
        self.text_line = text_line
        self.last_flush = time.monotonic()
        self.dirty = False

    def write(self, line: str, meta: Meta) -> None:
        self.out.write(self.text_line(meta) if self.fmt == "text" else line)
        self.dirty = True
        self.tick()

    def tick(self) -> None:
        """Flush if something was written and the last flush is FLUSH_SECONDS old (called periodically too, so
        that a record is on disk soon after it is done even when no other record follows)."""
        if self.dirty and time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()
        self.last_flush = time.monotonic()
        self.dirty = False


def _bad(bad: BadLine, fmt: str) -> tuple[str, Meta]:
    record = bad_line_record(bad)
    line = serialise(fmt, record)
    return line, Meta(bad.text, "bad-input", error=bad.reason)


def run_scan(
    source: str,
    options: ScanOptions,
    out: IO[str],
    *,
    fmt: str,
    workers: int,
    adaptive: bool = False,
    resume: Mapping[tuple[int, str], Earlier] | set[tuple[int, str]] | None = None,
    on_record: Any = None,
    on_bad: Any = None,
    summary: Summary | None = None,
    text_line: Any = None,
    select: Any = None,
    cluster: ClusterSpec | str | None = None,
) -> Summary:
    """Scan every target of ``source`` (a path or "-"), writing records to ``out`` in completion order.

    ``workers`` processes run an event loop each: this one and ``workers - 1`` forked helpers. With
    ``adaptive``, helpers only get targets while this process is busy and the machine has idle CPU (see
    :class:`_Pool`); otherwise all of them from the start.

    ``on_record(meta)`` is called after each record (progress); ``on_bad(bad)`` for each malformed line.
    ``select(item)``: only the targets and bad lines for which it is true are scanned or reported (a shard, see
    :func:`certdoctor.scan.cluster.shard_filter`). ``cluster``: a Dask scheduler's address or ``local:N`` scans
    on that cluster instead of local processes (see :mod:`certdoctor.scan.cluster`; ``workers`` is then unused).
    Raises KeyboardInterrupt after writing what is done when interrupted.
    """
    summary = summary or Summary()
    writer = Writer(out, fmt, text_line)
    options.fmt = "csv" if fmt == "csv" else "jsonl"
    skip = resume or set()

    def record(line: str, meta: Meta) -> None:
        summary.add(meta)
        if on_record is not None:
            on_record(meta)  # first, so that a record printed under the progress bar shows the new counts
        writer.write(line, meta)

    def bad(item: BadLine) -> None:
        if on_bad is not None:
            on_bad(item)
        record(*_bad(item, options.fmt))

    handle = open_input(source)
    try:
        items: Iterable[ScanTarget | BadLine] = read_targets(lines_of(handle))
        if select is not None:
            items = filter(select, items)
        good = _good(items, bad, skip, summary)
        if cluster is not None:
            _on_cluster(cluster, options, good, record, writer)
        else:
            _Pool(options, max(1, workers), adaptive, record, writer).run(good)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        writer.flush()
        if handle is not sys.stdin:
            handle.close()
    return summary


def run_pool(
    options: ScanOptions,
    targets: Iterable[ScanTarget],
    record: Any,
    writer: Any,
    *,
    workers: int,
    adaptive: bool = False,
    cluster: ClusterSpec | str | None = None,
) -> None:
    """Diagnose ``targets`` with this process and up to ``workers - 1`` helper processes, as :func:`run_scan`
    does (``adaptive``: helpers only while this process is CPU-bound and cores are idle); ``record(value,
    meta)`` gets each result in this process as it arrives (with ``options.produce``: ``(produced, None)``),
    and ``writer.tick()`` is called every FLUSH_SECONDS. Raises KeyboardInterrupt when interrupted, after
    handing over what the helpers had sent. ``cluster``: on that Dask cluster instead (see
    :func:`certdoctor.scan.cluster.run_cluster`)."""
    if cluster is not None:
        _on_cluster(cluster, options, targets, record, writer)
        return
    _Pool(options, max(1, workers), adaptive, record, writer).run(iter(targets))


def _good(
    items: Iterable[ScanTarget | BadLine],
    bad: Any,
    skip: Mapping[tuple[int, str], Earlier] | set[tuple[int, str]],
    summary: Summary,
) -> Iterator[ScanTarget]:
    """The targets to scan: bad lines go to ``bad``, and lines already done (``skip``, from --resume) are
    left out, their earlier verdicts counted (when ``skip`` maps them to theirs)."""
    counted = isinstance(skip, Mapping)
    for item in items:
        if skip and item.key in skip:
            if counted:
                summary.add_earlier(skip[item.key])  # type: ignore[index]
            else:
                summary.skipped += 1
        elif isinstance(item, BadLine):
            bad(item)
        else:
            yield item


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done (then raise KeyboardInterrupt, unless another
    exception is on its way already): for cleanup that must not be cut short. Only in the main thread."""
    caught: list[int] = []
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            handler = signal.getsignal(sig)
            if handler is not signal.SIG_IGN and handler is not None:
                previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


class _CpuSample(NamedTuple):
    process: float  # CPU seconds of this process
    wall: float
    idle: int  # jiffies of the whole machine (/proc/stat): idle + iowait
    total: int


def _cpu_sample() -> _CpuSample | None:
    """This process's CPU time and the machine's idle time, or None where /proc/stat does not exist."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return _CpuSample(time.process_time(), time.monotonic(), fields[3] + fields[4], sum(fields[:8]))


def wants_helper(before: _CpuSample, after: _CpuSample, cores: int) -> bool:
    """Whether another process would speed the scan up: this one is CPU-bound (its event loop is the
    bottleneck) and the machine has at least half a core idle. On a machine whose cores are already busy (the
    servers scanned run here too, or other work does), another process would only compete for them."""
    wall = after.wall - before.wall
    ticks = after.total - before.total
    if wall <= 0 or ticks <= 0:
        return False
    busy = (after.process - before.process) / wall
    idle_cores = (after.idle - before.idle) / ticks * cores
    return busy > 0.8 and idle_cores > 0.5


class _Pool:
    """This process runs an :class:`Engine` on the input and writes every record; helper processes each run
    their own, fed batches of targets through a queue, and send their records back. ``concurrency`` and
    ``rate`` are totals, split evenly among the active processes.

    Helpers are forked at the start, before any event loop exists (forking a process whose event loop has
    sockets open would hand those sockets to the child), so they share the loaded trust stores and imports. With a
    fixed number of processes, all of them take targets from the start. Adaptive, they wait in reserve: one
    starts taking targets each time :func:`wants_helper` says so (checked every second); those never wanted
    only ever read the end of the input from their queue. A reserve helper costs a fork (a few milliseconds,
    then the copy-on-write faults of the pages this process writes afterwards), where a helper spawned when
    wanted paid a fresh interpreter's imports and trust stores (~0.45 s of CPU). Where fork is not the safe
    way to start a process (Windows, macOS: see :data:`START_METHOD`) helpers are spawned, adaptive ones when
    wanted.
    """

    CONTROL_SECONDS = 1.0

    def __init__(self, options: ScanOptions, processes: int, adaptive: bool, record: Any, writer: Writer) -> None:
        self.options = options
        self.processes = processes
        self.adaptive = adaptive and _cpu_sample() is not None
        self.record = record
        self.writer = writer
        self.ctx = mp.get_context(START_METHOD)
        # adaptive helpers forked at the start and kept waiting, rather than spawned when wanted
        self.reserve = self.adaptive and START_METHOD == "fork"
        self.queues: list[Any] = []
        self.procs: list[Any] = []  # the helpers: the first ``active`` of them take targets
        self.started = 0  # helpers that take targets
        self.results: Any = None  # created with the first helper (a spawn-context queue starts a tracker process)
        self.engine: Engine | None = None  # this process's engine, once the event loop runs
        self.exhausted = False
        self.fed = False  # every target handed out, and every helper told to finish

    @property
    def active(self) -> int:
        """Helpers that take targets (forked ones in reserve do not count)."""
        return self.started

    def run(self, targets: Iterator[ScanTarget]) -> None:
        interrupted = False
        try:
            if self.processes > 1 and self.reserve:
                self._fork(self.processes - 1)  # forked now, while no event loop exists; started when wanted
            elif self.processes > 1 and not self.adaptive:
                self._start(self.processes - 1)  # forked now: no event loop exists yet
            asyncio.run(self._main(targets))
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            # No helper outlives the scan, however it ends (another Ctrl-C or SIGTERM waits until they are gone)
            with _signals_deferred():
                if interrupted:
                    self._drain()
                self._stop()

    def _drain(self, seconds: float = 0.5) -> None:
        """Interrupted: write the records the helpers have sent and this process has not read yet."""
        if self.results is None:
            return
        deadline = time.monotonic() + seconds
        with contextlib.suppress(Exception):  # best effort (a closed pipe on stdout, a helper gone)
            while time.monotonic() < deadline:
                got = self.results.get(timeout=0.05)
                for line, meta in got or ():
                    self.record(line, meta)

    def _stop(self) -> None:
        """Terminate the helpers still running (SIGTERM, then SIGKILL after 3 s) and wait for them."""
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + 3
        for proc in self.procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=1)
        for q in self.queues:  # a helper gone with batches unread: do not wait for them to be sent at exit
            q.cancel_join_thread()
            q.close()

    def _fork(self, count: int) -> None:
        """Create ``count`` more helpers (forked or spawned, see :data:`START_METHOD`); none takes targets yet."""
        share = ScanOptions(
            **{**self.options.__dict__, "concurrency": max(1, self.options.concurrency // self.processes)}
        )
        if self.options.rate:
            share.rate = self.options.rate / self.processes
        if self.results is None:
            self.results = self.ctx.Queue()
        if self.ctx.get_start_method() == "fork":
            preload_judgement()  # imported once here, not once per helper
        for _ in range(count):
            q = self.ctx.Queue(maxsize=max(4, share.concurrency // BATCH + 2))
            proc = self.ctx.Process(target=_worker_main, args=(share, q, self.results, os.getpid()), daemon=True)
            proc.start()
            self.queues.append(q)
            self.procs.append(proc)

    def _start(self, count: int) -> None:
        """``count`` more helpers take targets: those in reserve first, then new ones."""
        missing = count - (len(self.procs) - self.started)
        if missing > 0:
            self._fork(missing)
        self.started += count
        if self.engine is not None:
            self.engine.share(self.active + 1)

    async def _main(self, targets: Iterator[ScanTarget]) -> None:
        self.targets = targets
        self.engine = Engine(self.options, self.record)
        if self.active:
            self.engine.share(self.active + 1)
        tasks = [asyncio.ensure_future(self._tick())]
        helpers = self.processes > 1
        feeding = asyncio.ensure_future(self._feed()) if helpers else None
        collecting = asyncio.ensure_future(self._collect()) if helpers else None
        if helpers and self.adaptive:
            tasks.append(asyncio.ensure_future(self._control()))
        try:
            await self.engine.run(targets)
            self.exhausted = True
            for task in (feeding, collecting):
                if task is not None:
                    await task
        finally:
            for task in [*tasks, feeding, collecting]:
                if task is not None:
                    task.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.writer.tick()

    async def _control(self) -> None:
        cores = os.cpu_count() or 1
        before = _cpu_sample()
        while before is not None and self.active < self.processes - 1 and not self.exhausted:
            await asyncio.sleep(self.CONTROL_SECONDS)
            after = _cpu_sample()
            if after is None or self.exhausted:
                return
            if wants_helper(before, after, cores):
                self._start(1)
                after = _cpu_sample() or after  # starting one took time: measure afresh
            before = after

    async def _feed(self) -> None:
        """Keep the active helpers' queues full; when the input is done, tell every helper to finish."""
        held: list[list[Any] | None] = []
        done = False
        while True:
            held += [None] * (len(self.queues) - len(held))
            for i in range(self.active):
                if held[i] is not None and not self.procs[i].is_alive():
                    self._lost(held[i] or [])  # the helper died: these targets still get a record
                    held[i] = None
                    continue
                while True:
                    batch = held[i]
                    if batch is None:
                        if done:
                            break
                        batch = [t.to_wire() for t in itertools.islice(self.targets, BATCH)]
                        if not batch:
                            done = True
                            break
                    try:
                        self.queues[i].put_nowait(batch)
                    except queue.Full:
                        held[i] = batch
                        break
                    held[i] = None
            if done or self.exhausted:
                if all(b is None for b in held):
                    break
                done = True
            await asyncio.sleep(0.02)
        self.exhausted = True  # no helper starts after this
        for q in self.queues:  # the end
            while True:
                try:
                    q.put_nowait(None)
                    break
                except queue.Full:
                    await asyncio.sleep(0.02)
        self.fed = True

    def _lost(self, batch: list[Any]) -> None:
        at = self.engine.at or datetime.now(UTC)
        for wire in batch:
            target = ScanTarget.from_wire(wire)
            record = error_record(
                target, "a helper process of the scan died", "internal", attempts=0, elapsed=0.0, at=at
            )
            if self.options.produce is not None:
                self.record(self.options.produce(target, record, None), None)
            else:
                self.record(serialise(self.options.fmt, record), record_meta(record))

    async def _collect(self) -> None:
        """Write the helpers' records as they come, until every helper has finished (or died)."""
        finished = 0
        last_check = time.monotonic()
        while not self.fed or finished < len(self.procs):
            if self.results is None:  # no helper (yet)
                await asyncio.sleep(0.05)
                continue
            try:
                got = self.results.get_nowait()
            except queue.Empty:
                now = time.monotonic()
                if now - last_check > 0.5:
                    last_check = now
                    if self.fed and not any(p.is_alive() for p in self.procs) and self.results.empty():
                        return
                await asyncio.sleep(0.02)
                continue
            if got is None:
                finished += 1
                continue
            for line, meta in got:
                self.record(line, meta)
