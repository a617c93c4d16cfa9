"""``certdoctor watch serve --cluster``: the daemon's checks made by the workers of a Dask cluster.

The daemon keeps scheduling (the store's ``next_due``), storing (this process alone writes the database) and
alerting; the targets that fall due go out in *tasks* of up to ``task_targets`` targets, each run by
:func:`certdoctor.scan.cluster.scan_task` on a worker (the scan engine, in the worker's caching session) with
``produce`` = :func:`certdoctor.watch.runner.observe_with_document`: every target comes back as the
:class:`~certdoctor.watch.store.Observation` a local check makes and its ``check --json`` document (for the
dashboard's latest diagnosis). At most :data:`~certdoctor.scan.cluster.TASKS_PER_THREAD` tasks per worker
thread are out at a time (as ``scan --cluster``); ``check now`` from the HTTP side is a task of one, awaited.

The client is Dask's asynchronous one, on the daemon's own event loop: submitting and awaiting tasks never
blocks the HTTP side (no thread). Workers judge at the daemon's check time, sent with each task and moved to
now every ``judgement_ttl`` (a worker keeps one session per check time, see ``scan.cluster.SESSIONS``).

Failures: the scheduler unreachable at start is :class:`~certdoctor.scan.cluster.ClusterError` (exit status
3). Lost mid-run: the tasks out fail with :class:`ClusterDown` (their targets stay due: nothing was stored),
:meth:`ClusterLink.watch` says so in one stderr line, reports it in ``/healthz`` and connects again every few
seconds until the scheduler answers. A worker that dies mid-task: the scheduler runs the task again on another
worker (Dask's rescheduling); a task that still fails is submitted again, :data:`ATTEMPTS` times in all — one
result per task, so every target gets exactly one observation.

Dask is imported by this module only (through :mod:`certdoctor.scan.cluster`), which is imported only with
``--cluster``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..model import DiagnoseOptions
from ..scan.cluster import (
    TASKS_PER_THREAD,
    WORKER_PRELOAD,
    ClusterError,
    environ,
    import_distributed,
    parse_address,
    quiet_logs,
    scan_task,
)
from ..scan.engine import ScanOptions
from ..scan.targets import ScanTarget
from .runner import observe_with_document
from .store import Observation

ATTEMPTS = 3  # submissions of a task whose worker died each time, before its targets are given up (due again)
RECONNECT_SECONDS = 2.0  # between two attempts to reach a lost scheduler
WATCH_SECONDS = 0.5  # how often the client's connection is looked at


class ClusterDown(Exception):
    """The scheduler is unreachable (now or mid-task): the targets sent were not checked."""


class ClusterLink:
    """The daemon's connection to a Dask scheduler (or a LocalCluster it started): :meth:`open` at start,
    :meth:`check` per task, :meth:`watch` in the background, :meth:`close` at the end."""

    def __init__(self, address: str, timeout: float = 10.0, task_targets: int = 200) -> None:
        self.address = address
        self.timeout = timeout
        self.task_targets = max(1, task_targets)
        self.client: Any = None
        self.cluster: Any = None  # the LocalCluster of local:N
        self.error: str | None = None  # why the scheduler is unreachable (None: connected)
        self.tasks = 0  # tasks out now
        self.submitted = 0  # since start
        self.failed = 0  # tasks that failed on the cluster (a worker lost, the scheduler lost), since start
        self._numbers = itertools.count()
        self._prefix = f"certdoctor-serve-{time.time_ns():x}"
        self._closing = False

    # --- connection -----------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (or start ``local:N``). Raises ClusterError when the scheduler does not answer within
        ``timeout`` seconds, InputError when Dask is not installed."""
        where, local = parse_address(self.address)
        distributed = import_distributed()
        with environ(quiet_logs(local is not None)):
            try:
                if local is not None:
                    self.cluster = await distributed.LocalCluster(
                        n_workers=local,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address="127.0.0.1:0",
                        asynchronous=True,
                        preload=[WORKER_PRELOAD],  # a terminal's Ctrl-C stops the daemon, which stops them
                    )
                self.client = await distributed.Client(
                    self.cluster if self.cluster is not None else where, asynchronous=True, timeout=self.timeout
                )
            except (OSError, TimeoutError) as exc:
                await self.close()
                raise ClusterError(
                    f"cannot reach the Dask scheduler at {self.address} within {self.timeout:g} s ({_first(exc)})"
                ) from exc

    @property
    def up(self) -> bool:
        return self.client is not None and self.client.status == "running"

    @property
    def ready(self) -> bool:
        """Connected to a scheduler that has a worker: a task sent now gets run (without a worker it would
        wait on the scheduler until one joins)."""
        return self.up and self.workers() > 0

    @property
    def reason(self) -> str:
        """Why no task can go out now, or would wait (meaningful while not :attr:`ready`)."""
        if self.up:
            return f"the Dask scheduler at {self.address} has no worker"
        return self.error or f"lost the connection to the Dask scheduler at {self.address}"

    def threads(self) -> int:
        """Worker threads the scheduler knows of (the client's view, refreshed by Dask every few seconds; the
        asynchronous client's cache holds the totals ``n_workers``/``total_threads`` and an empty ``workers``,
        as ``Client.scheduler_info`` of distributed 2026.8 documents)."""
        if not self.up:
            return 0
        with contextlib.suppress(Exception):
            info = self.client.scheduler_info()
            if "total_threads" in info:  # the asynchronous client's cache: totals only, "workers" left empty
                return int(info["total_threads"])
            return sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
        return 0

    def workers(self) -> int:
        if not self.up:
            return 0
        with contextlib.suppress(Exception):
            info = self.client.scheduler_info()
            if "n_workers" in info:  # as in threads()
                return int(info["n_workers"])
            return len(info.get("workers", {}))
        return 0

    def capacity(self) -> int:
        """Targets to keep out: :data:`TASKS_PER_THREAD` full tasks per worker thread (two tasks at least); 0
        while the scheduler is unreachable."""
        if not self.up:
            return 0
        return max(2, TASKS_PER_THREAD * self.threads()) * self.task_targets

    async def watch(self, stopping: asyncio.Event) -> None:
        """Until ``stopping``: notice a lost scheduler (one stderr line, ``error`` set, the old client closed)
        and connect again every :data:`RECONNECT_SECONDS` until it answers (one stderr line)."""
        distributed = import_distributed()
        where, local = parse_address(self.address)
        target = self.cluster if local is not None else where
        while not stopping.is_set():
            if self.client is not None and self.client.status != "running" and self.error is None:
                self.error = f"lost the connection to the Dask scheduler at {self.address}"
                print(
                    f"certdoctor watch serve: {self.error}; the targets out are due again, reconnecting",
                    file=sys.stderr,
                    flush=True,
                )
                old, self.client = self.client, None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(old.close(timeout=2), 5)
            if self.client is None and not self._closing:
                try:
                    self.client = await distributed.Client(
                        target, asynchronous=True, timeout=min(self.timeout, RECONNECT_SECONDS)
                    )
                except (OSError, TimeoutError) as exc:
                    self.error = f"cannot reach the Dask scheduler at {self.address} ({_first(exc)})"
                else:
                    print(
                        f"certdoctor watch serve: connected to the Dask scheduler at {self.address} again",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.error = None
            delay = WATCH_SECONDS if self.client is not None else RECONNECT_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)

    async def close(self) -> None:
        """Close the client and the LocalCluster (never raises)."""
        self._closing = True
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(timeout=2), 5)
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(cluster.close(timeout=5), 10)

    # --- tasks ------------------------------------------------------------------------------------------------

    def options(
        self, diagnose: DiagnoseOptions, at: datetime, concurrency: int, retries: int, known: dict[int, str]
    ) -> ScanOptions:
        """The scan options of a task: judged at ``at`` (the daemon's check time), ``concurrency`` targets in
        flight per worker thread, ``known`` the stored forecasts of its targets (see
        :func:`certdoctor.watch.forecasting.known`)."""
        return ScanOptions(
            concurrency=concurrency,
            retries=retries,
            clients=True,
            diagnose=replace(diagnose, clients=True, at=at),
            produce=functools.partial(observe_with_document, known=known),
        )

    async def check(
        self, options: ScanOptions, targets: Sequence[ScanTarget]
    ) -> list[tuple[Observation, dict[str, Any] | None]]:
        """One task: every target's observation and ``check --json`` document, as a worker made them. Raises
        ClusterDown when the scheduler is (or becomes) unreachable; the last error of a task that failed
        :data:`ATTEMPTS` times (its workers dying)."""
        if not self.up:
            raise ClusterDown(self.reason)
        wires = [t.to_wire() for t in targets]
        number = next(self._numbers)
        self.tasks += 1
        try:
            for attempt in range(1, ATTEMPTS + 1):
                client = self.client
                if client is None or client.status != "running":
                    raise ClusterDown(self.reason)
                future = client.submit(scan_task, options, wires, key=f"{self._prefix}-{number}-{attempt}", pure=False)
                self.submitted += 1
                try:
                    got = await future
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    with contextlib.suppress(Exception):
                        future.release()  # the scheduler forgets a task nobody waits for
                    if task is not None and task.cancelling():  # this check abandoned (SIGTERM after the grace)
                        raise
                    self.failed += 1
                    raise ClusterDown(f"lost the Dask scheduler at {self.address}") from None
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        future.release()
                    self.failed += 1
                    if not self.up:
                        raise ClusterDown(f"lost the Dask scheduler at {self.address}") from exc
                    if attempt == ATTEMPTS:
                        raise
                    continue
                with contextlib.suppress(Exception):
                    future.release()
                return [value for value, _meta in got]
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self.tasks -= 1

    def health(self) -> dict[str, Any]:
        """The ``cluster`` object of ``/healthz``: ``status`` ``ok``, ``unreachable`` (no scheduler) or
        ``no-workers`` (a scheduler without a worker: nothing gets checked until one joins)."""
        workers = self.workers()
        status = "unreachable" if not self.up else ("ok" if workers else "no-workers")
        return {
            "address": self.address,
            "status": status,
            "error": None if status == "ok" else self.reason,
            "workers": workers,
            "threads": self.threads(),
            "tasks_out": self.tasks,
            "tasks_submitted": self.submitted,
            "tasks_failed": self.failed,
        }


def _first(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
