"""Scans beyond one machine: deterministic shards of the input, and a Dask cluster as the scan's workers.

Shards (``certdoctor scan FILE --shards N --shard I``, I from 0 to N − 1 as ZMap numbers its ``--shard``):
a target belongs to shard ``blake2b(text) mod N``, ``text`` being the target line as written (stripped; the
record's ``"target"``). That depends on nothing but the line itself: not on its position, the machine, the
Python version or the run, so that a reordered or extended file splits the same way and ``--resume`` of one
shard's output agrees with it. Identical lines land in the same shard.

Cluster (``--cluster tcp://HOST:PORT`` or ``--cluster local:N``): this process reads the input, sends the
targets out in *tasks* of :data:`TASK_TARGETS` (a few seconds of work: a worker that dies loses little), and
writes every record as its task completes (``distributed.as_completed``). Each task runs the scan's own
:class:`~certdoctor.scan.engine.Engine` on its targets inside the worker process, on an event loop of its own
(a thread started on the first task, so that the worker's own loop keeps answering the scheduler), through a
caching :class:`~certdoctor.pipeline.Session` kept by the worker process between tasks: trust stores are loaded
and each distinct chain judged once per worker, not once per task. At most :data:`TASKS_PER_THREAD` tasks per
worker thread are out at a time, so a ten-million-line input is never held in memory (here or on the
scheduler).

A worker that dies mid-task (SIGKILL, OOM, a lost machine): the scheduler runs its tasks again on another worker
(Dask's own rescheduling); a task's records come back together with its result, so nothing the client wrote is
sent twice, and a task seen complete twice (resubmitted after a failure that was not one) is dropped by its
number: every target gets exactly one record. A task that fails :data:`ATTEMPTS` times gets one ``internal``
error record per target. The scheduler lost for ``timeout`` seconds: :class:`ClusterError` (the output holds
complete lines only, ready for ``--resume``).

Dask is imported by this module only, which is imported only for ``--cluster``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import pickle
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..errors import CollectError, InputError
from ..pipeline import Session
from ..pipeline import preload as preload_judgement
from .engine import Engine, Meta, ScanOptions, record_meta
from .records import error_record, serialise
from .startmethod import START_METHOD
from .targets import BadLine, ScanTarget

TASK_TARGETS = 200  # targets per task: ~0.1–0.5 s of a worker's time on reachable servers, a few seconds at most
TASKS_PER_THREAD = 4  # tasks out per worker thread (queued on the workers, so none waits for the client)
ATTEMPTS = 3  # a task that failed this many times (its workers died each time) gets error records
CONNECT_SECONDS = 10.0  # to reach the scheduler at the start, and without it mid-scan before giving up
POLL_SECONDS = 0.02
# local:N worker processes forked from the scanning process (see _local_cluster) where the scan's own helpers
# are (driver.START_METHOD: not on macOS, where forking a process that has used system frameworks is unsafe,
# nor on Windows, which has no fork)
FORK_WORKERS = START_METHOD == "fork"
INSTALL_HINT = "--cluster needs Dask distributed: pip install 'certdoctor[cluster]'"


class ClusterError(CollectError):
    """The cluster cannot be used: the scheduler cannot be reached, or went away mid-scan (exit status 3)."""


# --- shards -----------------------------------------------------------------------------------------------


def shard_of(text: str, shards: int) -> int:
    """The shard (0 … ``shards`` − 1) of the target line ``text`` (as the record's ``"target"`` shows it):
    the first 8 bytes of its BLAKE2b digest, big-endian, modulo ``shards``."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_filter(shards: int, shard: int) -> Any:
    """A predicate on targets and bad lines: whether one is in shard ``shard`` of ``shards``."""
    if not 0 <= shard < shards:
        raise InputError(f"--shard {shard} is not one of 0 … {shards - 1} (shards are numbered from 0, as ZMap's)")

    def selected(item: ScanTarget | BadLine) -> bool:
        return shards == 1 or shard_of(item.text, shards) == shard

    return selected


# --- the worker's side ------------------------------------------------------------------------------------

_LOCK = threading.Lock()
_WORKER: dict[str, Any] = {}  # per worker process: "loop" (the scans' event loop), "sessions" (by options)
SESSIONS = 4  # distinct option sets kept per worker process (one per concurrent scan, in practice)


def _loop() -> asyncio.AbstractEventLoop:
    with _LOCK:
        loop = _WORKER.get("loop")
        if loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="certdoctor-scan", daemon=True).start()
            _WORKER["loop"] = loop
            _WORKER["sessions"] = OrderedDict()
    return loop


def scan_task(options: ScanOptions, wires: list[tuple[Any, ...]]) -> list[tuple[Any, Meta | None]]:
    """One task, run by a Dask worker: the records of ``wires`` (targets' ``to_wire()``), in completion order,
    as the local scan's engine emits them (``(serialised record, Meta)``; with ``options.produce``, ``(produced
    value, None)``). Blocks the worker thread that runs it; the engine runs on this process's scan loop."""
    return asyncio.run_coroutine_threadsafe(_scan(options, wires), _loop()).result()


async def _scan(options: ScanOptions, wires: list[tuple[Any, ...]]) -> list[tuple[Any, Meta | None]]:
    from dataclasses import replace

    diagnose = replace(options.diagnose, clients=options.clients)
    key = pickle.dumps(diagnose)
    sessions: OrderedDict[bytes, tuple[Session, OrderedDict[Any, Any]]] = _WORKER["sessions"]
    kept = sessions.get(key)
    if kept is None:
        kept = (Session(diagnose, cache=True), OrderedDict())
        sessions[key] = kept
        while len(sessions) > SESSIONS:
            _, (old, _) = sessions.popitem(last=False)
            await old.aclose()
    sessions.move_to_end(key)
    session, records = kept
    out: list[tuple[Any, Meta | None]] = []
    engine = Engine(options, lambda value, meta: out.append((value, meta)))
    engine._records = records  # records by evidence, spliced across this worker's tasks as in one local scan
    await engine.run([ScanTarget.from_wire(w) for w in wires], session=session)
    return out


# --- the client's side ------------------------------------------------------------------------------------


def import_distributed() -> Any:
    """The ``distributed`` module (imported on first use: only ``--cluster`` needs Dask). Raises InputError
    naming the ``certdoctor[cluster]`` extra when it is not installed."""
    try:
        import distributed
    except ImportError as exc:
        raise InputError(INSTALL_HINT) from exc
    return distributed


def parse_address(address: str) -> tuple[str, int | None]:
    """("local", N) for ``local:N``; (address, None) for a scheduler's address (``tcp://HOST:PORT``,
    ``tls://…``, or ``HOST:PORT``). Raises InputError for anything else."""
    if address.startswith("local:"):
        count = address.partition(":")[2]
        if not count.isdigit() or not 0 < int(count) <= 256:
            raise InputError(f"--cluster {address}: local:N wants N worker processes, 1 to 256")
        return "local", int(count)
    scheme, sep, rest = address.rpartition("://")
    host, colon, port = (rest if sep else address).rpartition(":")
    bad_scheme = sep and scheme not in ("tcp", "tls", "ws", "wss", "ucx")
    if bad_scheme or not host or not colon or not port.isdigit():
        raise InputError(f"--cluster {address}: expected tcp://HOST:PORT (a Dask scheduler) or local:N")
    return address, None


def quiet_logs(local: bool) -> dict[str, str]:
    """Silence Dask's loggers in this process (unless ``CERTDOCTOR_DEBUG`` is set) and return the environment
    that silences the worker processes of a LocalCluster (``local``) started under it: Dask's log lines (a
    reconnection's traceback, a worker removed, a task cancelled by Ctrl-C) would bury certdoctor's own
    one-line errors under dozens."""
    if os.environ.get("CERTDOCTOR_DEBUG"):
        return {}
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL)
    # A LocalCluster's worker processes read their logging level from the environment when they start (Dask's
    # configuration: DASK_LOGGING__DISTRIBUTED), not from this process's loggers
    return {"DASK_LOGGING__DISTRIBUTED": "critical"} if local else {}


@contextlib.contextmanager
def connect(address: str, timeout: float = CONNECT_SECONDS, *, fork: bool = False) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``address``, or of a new LocalCluster for ``local:N``
    (N worker processes of one thread each, no dashboard), closed (with its cluster) on the way out. Raises
    InputError when Dask is not installed or the address is malformed, ClusterError when the scheduler does
    not answer within ``timeout`` seconds.

    ``fork``: a LocalCluster's workers are forked from this process (see :func:`_local_cluster`) rather than
    spawned. For a command that starts the cluster for one run (``scan``, ``watch run``); a long-running
    process with listening sockets and threads of its own (a daemon) should leave it off: its workers would
    inherit those sockets."""
    where, local = parse_address(address)
    distributed = import_distributed()
    with environ(quiet_logs(local is not None)):
        cluster = None
        try:
            if local is not None:
                cluster = _local_cluster(distributed, local, fork and FORK_WORKERS)
                client = distributed.Client(cluster, timeout=timeout)
            else:
                client = distributed.Client(where, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            if cluster is not None:
                cluster.close()
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({reason})") from exc
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=2)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close(timeout=5)


def _local_cluster(distributed: Any, workers: int, fork: bool) -> Any:
    """A started ``distributed.LocalCluster`` of ``workers`` worker processes (one thread each, a nanny each, the
    scheduler in this process), whose workers are forked from this process with ``fork``, spawned otherwise.

    Forked (Dask's ``distributed.worker.multiprocessing-method: fork``), a worker starts with what this process
    has loaded: Dask, certdoctor's judging modules (:func:`~certdoctor.pipeline.preload`, imported here first),
    the HTTP stack and the trust stores (``certdoctor scan`` loads both before the cluster starts). Spawned
    (Dask's default), each worker is a fresh interpreter that imports and loads them all again: measured here,
    ``scan --cluster local:2`` of 20 targets took ~1.8 s of CPU and 1.15–1.7 s to the first record spawned,
    ~1.05 s and 0.95–1.15 s forked (a scan on this machine alone: ~0.5 s; see bench/README.md). The fork is made
    by the nanny's process-starting thread while Dask's event loop thread runs (Python's multiprocessing
    ``fork`` context, as Dask does it for this setting): the child holds only that thread, and a lock another
    thread held at that moment would stay held in it — the risk Dask takes with this setting; certdoctor holds
    none then (the trust stores are loaded, no scan runs yet). The setting is Dask's configuration for the
    duration of this call only, so a
    worker its nanny restarts later (after a SIGKILL, an OOM) is spawned as by default, not forked from a
    process whose scan is running. A forked worker also inherits this process's signal handlers (the command
    line's: SIGTERM and SIGHUP as Ctrl-C), which :func:`dask_setup` puts back to what a spawned one has.

    The workers' statistical profiler (``distributed.worker.profile``: a stack sample of every thread each 10 ms,
    for the dashboard's profile page, which a LocalCluster without bokeh has not) is off: it took ~0.12 s of
    CPU per worker per 4,000-target scan here, ~3 % of the scan."""
    import dask

    settings: dict[str, Any] = {"distributed.worker.profile.enabled": False}
    if fork:
        preload_judgement()
        settings["distributed.worker.multiprocessing-method"] = "fork"
    with dask.config.set(settings):
        return distributed.LocalCluster(
            # the scheduler's HTTP endpoint (no dashboard without bokeh) on a free loopback port
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            preload=[WORKER_PRELOAD],  # dask_setup, in every worker, a restarted one too
        )


WORKER_PRELOAD = __name__  # run by each worker of a LocalCluster as it starts: see dask_setup


def dask_setup(worker: Any) -> None:
    """Dask's worker preload hook (``preload=[WORKER_PRELOAD]``; Dask's "Customize initialization"
    documentation), run in each worker process of a ``local:N`` LocalCluster as it starts, in its main thread
    (where Dask runs its event loop; elsewhere signal handlers cannot be set):

    - SIGINT ignored. Ctrl-C at a terminal signals the whole foreground process group, these workers included;
      each would die with a KeyboardInterrupt traceback mid-task, whereas the scanning process (or daemon) stops
      them itself (the running tasks' records written, the queued ones cancelled).
    - SIGTERM and SIGHUP back to their default action when a handler catches them. A forked worker starts with
      the handlers of the command that forked it; ``certdoctor``'s turn SIGTERM and SIGHUP into a
      KeyboardInterrupt, so that its nanny's SIGTERM would end the worker with a traceback on the command's
      stderr instead of at once. That is what an exec (a spawned worker) has; ignored ones (``nohup``) stay
      ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in os.environ for the block (for the processes started in it), then restored."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cluster(
    address: str,
    options: ScanOptions,
    targets: Iterable[ScanTarget],
    record: Any,
    writer: Any,
    *,
    task_targets: int = TASK_TARGETS,
    timeout: float = CONNECT_SECONDS,
    fork: bool = True,
) -> None:
    """Diagnose ``targets`` on the Dask cluster at ``address`` (see the module docstring): ``record(value,
    meta)`` gets every target's record in this process as its task completes, ``writer.tick()`` is called while
    waiting. ``options.concurrency`` is per worker thread (each runs one task at a time); ``options.rate`` is a
    total, split among the cluster's threads when the scan starts.

    Raises ClusterError when the scheduler cannot be reached or goes away, KeyboardInterrupt when interrupted
    (what completed is recorded; the tasks still out are cancelled). ``task_targets``: targets per task;
    ``timeout``: seconds to reach the scheduler, and without it mid-scan before giving up; ``fork``: a
    ``local:N`` cluster's workers forked from this process (see :func:`connect`)."""
    distributed = import_distributed()
    if fork:
        # what this process has buffered for the output (a CSV header) is written before workers are forked from
        # it: a child that ever flushed its copy of the buffer would write it a second time
        writer.flush()
    with connect(address, timeout, fork=fork) as client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"the Dask scheduler at {address} has no worker (waited {timeout:g} s)") from exc
        threads = max(1, sum(client.nthreads().values()))
        share = ScanOptions(**options.__dict__)
        if options.rate:
            share.rate = options.rate / threads
        _Dispatch(client, distributed, share, targets, record, writer, task_targets, timeout).run()


class _Dispatch:
    """Hands tasks out, at most TASKS_PER_THREAD per worker thread, and records their results as they come."""

    def __init__(
        self,
        client: Any,
        distributed: Any,
        options: ScanOptions,
        targets: Iterable[ScanTarget],
        record: Any,
        writer: Any,
        task_targets: int,
        lost_seconds: float,
    ) -> None:
        self.client = client
        self.distributed = distributed
        self.options = options
        self.targets = iter(targets)
        self.record = record
        self.writer = writer
        self.task_targets = max(1, task_targets)
        self.lost_seconds = lost_seconds
        self.pending: dict[Any, tuple[int, list[tuple[Any, ...]], int]] = {}  # future → (task, wires, attempt)
        self.done: set[int] = set()  # tasks whose records were written
        self.numbers = itertools.count()
        self.scan = f"certdoctor-scan-{time.time_ns():x}"
        self.exhausted = False
        self.completed = distributed.as_completed()  # the futures out, yielded as they complete
        self.threads = 0
        self.threads_at = -1e9

    def window(self) -> int:
        """Tasks to keep out: TASKS_PER_THREAD per worker thread (asked of the scheduler at most once a second:
        workers join and leave during a scan)."""
        now = time.monotonic()
        if now - self.threads_at > 1.0:
            self.threads_at = now
            with contextlib.suppress(Exception):
                self.threads = sum(self.client.nthreads().values())
        return max(2, TASKS_PER_THREAD * max(1, self.threads))

    def submit(self, number: int, wires: list[tuple[Any, ...]], attempt: int) -> None:
        future = self.client.submit(scan_task, self.options, wires, key=f"{self.scan}-{number}-{attempt}", pure=False)
        self.pending[future] = (number, wires, attempt)
        self.completed.add(future)

    def refill(self) -> None:
        limit = self.window()
        while not self.exhausted and len(self.pending) < limit:
            wires = [t.to_wire() for t in itertools.islice(self.targets, self.task_targets)]
            if not wires:
                self.exhausted = True
                return
            self.submit(next(self.numbers), wires, 1)

    def run(self) -> None:
        try:
            self.refill()
            lost_since: float | None = None
            while self.pending:
                ready = self.completed.next_batch(block=False)
                if not ready:
                    if self.client.status != "running":
                        lost_since = lost_since or time.monotonic()
                        if time.monotonic() - lost_since > self.lost_seconds:
                            raise ClusterError(self._lost_message())
                    else:
                        lost_since = None
                    self.writer.tick()
                    time.sleep(POLL_SECONDS)
                    continue
                for future in ready:
                    self.finish(future)
                self.refill()
        finally:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self.pending))
            self.pending.clear()

    def finish(self, future: Any) -> None:
        number, wires, attempt = self.pending.pop(future)
        try:
            got = future.result()
        except (Exception, asyncio.CancelledError) as exc:
            future.release()
            if self.client.status != "running" or future.status == "cancelled":
                raise ClusterError(self._lost_message()) from exc
            if number in self.done:
                return
            if attempt < ATTEMPTS:
                self.submit(number, wires, attempt + 1)
            else:
                self.lost(wires, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                self.done.add(number)
            return
        future.release()
        if number in self.done:  # already written (a resubmitted task whose first run completed after all)
            return
        self.done.add(number)
        for value, meta in got:
            self.record(value, meta)
        self.writer.tick()

    def lost(self, wires: list[tuple[Any, ...]], reason: str) -> None:
        """Error records for the targets of a task that failed ATTEMPTS times."""
        at = self.options.diagnose.at
        when = at if isinstance(at, datetime) else datetime.now(UTC)
        for wire in wires:
            target = ScanTarget.from_wire(wire)
            rec = error_record(
                target, f"the cluster could not scan it: {reason}", "internal", attempts=0, elapsed=0.0, at=when
            )
            if self.options.produce is not None:
                self.record(self.options.produce(target, rec, None), None)
            else:
                self.record(serialise(self.options.fmt, rec), record_meta(rec))

    def _lost_message(self) -> str:
        return (
            "lost the Dask scheduler mid-scan: every record finished before is written (complete lines); "
            "run the scan again with --resume FILE to continue"
        )
