"""Running a scan: reading targets, worker processes, streaming output, --resume, progress and the summary.

One process reads the input and writes the output; ``workers`` processes (forked after the trust stores are
loaded, so they share them) each run an :class:`~certdoctor.scan.engine.Engine` on their own event loop.
Targets go to the workers in small batches through bounded queues, so the reader never runs far ahead and a
million-line input is never held in memory; records come back serialised, and are written as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .engine import Engine, Meta, ScanOptions
from .records import bad_line_record, to_csv_row, to_jsonl
from .targets import BadLine, ScanTarget, read_targets

BATCH = 32  # targets per message to a worker
FLUSH_SECONDS = 0.25


@dataclass
class Summary:
    """Counters for the live progress line and the final table (constant memory)."""

    total: int | None = None
    done: int = 0
    skipped: int = 0  # already in the --resume file
    verdicts: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    soonest: list[tuple[float, str, str]] = field(default_factory=list)  # max-heap by -days: (−days, not_after, target)
    started: float = field(default_factory=time.monotonic)
    interrupted: bool = False

    def add(self, meta: Meta) -> None:
        self.done += 1
        self.verdicts[meta.verdict] += 1
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

    @property
    def problems(self) -> int:
        return self.done - self.verdicts["valid"]

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": self.done,
            "skipped": self.skipped,
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
    """(line, target) of every record in an earlier results file (JSON Lines or CSV); a torn last line
    (the scan was killed mid-write) is ignored."""
    keys: set[tuple[int, str]] = set()
    if not path.exists():
        return keys
    import csv

    with path.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
        fh.seek(0)
        if first.startswith("{"):
            for raw in fh:
                if not raw.endswith("\n"):
                    break
                try:
                    record = json.loads(raw)
                    keys.add((int(record["line"]), str(record["target"])))
                except (ValueError, KeyError, TypeError):
                    continue
        else:
            for row in csv.DictReader(fh):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    keys.add((int(row["line"]), str(row["target"])))
    return keys


def repair_tail(path: Path) -> None:
    """Cut a torn last line so that appended records start on a line of their own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        size = fh.seek(0, os.SEEK_END)
        block = min(size, 1 << 20)
        fh.seek(size - block)
        data = fh.read(block)
        cut = data.rfind(b"\n")
        fh.truncate(size - block + cut + 1 if cut >= 0 else 0)


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


def _worker_main(options: ScanOptions, tasks: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
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
    line = to_csv_row(record) if fmt == "csv" else to_jsonl(record)
    return line, Meta(bad.text, "bad-input", error=bad.reason)


def _batches(
    items: Iterable[ScanTarget | BadLine], skip: set[tuple[int, str]], summary: Summary
) -> Iterator[ScanTarget | BadLine]:
    for item in items:
        if item.key in skip:
            summary.skipped += 1
            continue
        yield item


def run_scan(
    source: str,
    options: ScanOptions,
    out: IO[str],
    *,
    fmt: str,
    workers: int,
    resume: set[tuple[int, str]] | None = None,
    on_record: Any = None,
    on_bad: Any = None,
    summary: Summary | None = None,
    text_line: Any = None,
) -> Summary:
    """Scan every target of ``source`` (a path or "-"), writing records to ``out`` in completion order.

    ``on_record(meta)`` is called after each record (progress); ``on_bad(bad)`` for each malformed line.
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
        items = _batches(read_targets(handle), skip, summary)
        if workers <= 1:
            _run_inline(items, options, record, bad, writer)
        else:
            _run_workers(items, options, workers, record, bad, summary, writer)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        writer.flush()
        if handle is not sys.stdin:
            handle.close()
    return summary


def _run_inline(
    items: Iterator[ScanTarget | BadLine], options: ScanOptions, record: Any, bad: Any, writer: Writer
) -> None:
    def targets() -> Iterator[ScanTarget]:
        for item in items:
            if isinstance(item, BadLine):
                bad(item)
            else:
                yield item

    async def main() -> None:
        async def ticker() -> None:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                writer.tick()

        tick = asyncio.ensure_future(ticker())
        try:
            await Engine(options, record).run(targets())
        finally:
            tick.cancel()

    asyncio.run(main())


def _run_workers(
    items: Iterator[ScanTarget | BadLine],
    options: ScanOptions,
    workers: int,
    record: Any,
    bad: Any,
    summary: Summary,
    writer: Writer,
) -> None:
    ctx = mp.get_context("fork")
    task_queues = [ctx.Queue(maxsize=max(4, options.concurrency // BATCH + 2)) for _ in range(workers)]
    results = ctx.Queue()
    per_worker = ScanOptions(**{**options.__dict__, "concurrency": max(1, options.concurrency // workers)})
    if options.rate:
        per_worker.rate = options.rate / workers
    procs = [ctx.Process(target=_worker_main, args=(per_worker, q, results), daemon=True) for q in task_queues]
    for p in procs:
        p.start()
    stop = threading.Event()
    bad_lines: queue.Queue[BadLine] = queue.Queue()

    def put(q: Any, item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                if not any(p.is_alive() for p in procs):
                    return False
        return False

    def feeder() -> None:
        try:
            batch: list[Any] = []
            turn = 0
            for item in items:
                if stop.is_set():
                    return
                if isinstance(item, BadLine):
                    bad_lines.put(item)
                    continue
                batch.append(item.to_wire())
                if len(batch) >= BATCH:
                    if not put(task_queues[turn % workers], batch):
                        return
                    turn += 1
                    batch = []
            if batch:
                put(task_queues[turn % workers], batch)
        finally:
            for q in task_queues:
                put(q, None)

    thread = threading.Thread(target=feeder, name="certdoctor-scan-feeder", daemon=True)
    thread.start()
    finished = 0
    try:
        while finished < workers:
            while not bad_lines.empty():
                bad(bad_lines.get_nowait())
            writer.tick()
            try:
                got = results.get(timeout=0.2)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    break
                continue
            if got is None:
                finished += 1
                continue
            for line, meta in got:
                record(line, meta)
        while not bad_lines.empty():
            bad(bad_lines.get_nowait())
    finally:
        stop.set()
        for p in procs:
            if p.is_alive() and (summary.interrupted or finished < workers):
                p.terminate()
        for p in procs:
            p.join(timeout=5)
        thread.join(timeout=1)
