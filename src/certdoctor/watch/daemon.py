"""``certdoctor watch serve``: the long-running monitor — a scheduler over the store's ``next_due`` times, the
scan engine's :class:`~certdoctor.scan.engine.Engine` with one :class:`~certdoctor.pipeline.Session` kept for
the daemon's life (trust stores, client stores, AIA and OCSP/CRL caches, chain judgements), and the HTTP side:
the application :func:`serve` is given (``certdoctor watch serve`` hands it the dashboard, :mod:`certdoctor.web`,
which mounts the JSON API), else the JSON API alone (:mod:`certdoctor.watch.httpapi`); Starlette under uvicorn,
imported only here.

Latest diagnoses: the daemon keeps, per target, the ``check --json`` document of its latest check (at most
:data:`DIAGNOSES_KEPT` targets, least recently checked or read forgotten first), zlib-compressed JSON, so that the
dashboard can show the full diagnosis (findings with evidence and fix, each client's error text) that the store
does not keep; :meth:`Daemon.check_now` checks one target at once through the same path as a scheduled check.

Scheduling: a target is started when its ``next_due`` has come and it is not already in flight, at most
``concurrency`` at a time. Each result is stored by :meth:`Store.record` in one transaction (observation,
endpoints, certificates, events, the target's next check), so a daemon killed with SIGKILL loses only the
targets in flight: their ``next_due`` was never moved, so they are due again at the next start.

Next check: the target's interval ± :data:`~certdoctor.watch.runner.JITTER`; after ``n`` consecutive
unreachable observations, the interval doubled ``n - 1`` times, at most ``max_backoff`` (never below the
interval itself) — a dead host is not hammered, and is still looked at daily by default.

Check time: a cached chain judgement is only true at the time it was made (expiry, "expiring soon"), so the
session's check time is moved to now, and its judgement cache emptied, once it is ``judgement_ttl`` old.

Cluster (``--cluster``, :mod:`certdoctor.watch.remote`): the due targets are checked by a Dask cluster's workers
in tasks of up to ``task_targets``, judged at the daemon's check time; the results are stored here as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import socket
import sys
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..diagnosis import Diagnosis
from ..model import DeployedRef, DiagnoseOptions
from ..pipeline import Session
from ..scan.engine import Engine, ScanOptions
from ..scan.targets import ScanTarget
from . import forecasting
from . import tables as t
from .deployed import files, refresh_files, refs_by_target
from .runner import JITTER, observation
from .store import Observation, Store, WatchedTarget, _target, now, utc

DEFAULT_LISTEN = ("127.0.0.1", 8427)
DIAGNOSES_KEPT = 2000  # targets whose latest full diagnosis the daemon keeps in memory (a few KiB each, compressed)
BACKOFF_HISTORY = 16  # consecutive unreachable observations counted at most (2**15 × interval is past any cap)


@dataclass
class ServeConfig:
    """How the daemon runs. Seconds throughout."""

    host: str = DEFAULT_LISTEN[0]
    port: int = DEFAULT_LISTEN[1]
    token: str | None = None  # Bearer token every request must carry (required off loopback)
    concurrency: int = 20  # targets in flight
    retries: int = 2  # retries of transient failures within one check (the scan engine's)
    grace: float = 10.0  # on SIGTERM: how long the targets in flight may finish before they are abandoned
    poll: float = 5.0  # longest sleep between two looks at the due targets (targets added meanwhile)
    max_backoff: float = 86400.0  # the longest interval back-off gives an unreachable target
    judgement_ttl: float = 300.0  # oldest check time a cached chain judgement is reused at
    alert_every: float = 30.0  # how often the checks made meanwhile are turned into alerts and sent
    keep: float | None = 30 * 86400.0  # retention of raw observations (None: keep all); applied hourly
    prune_every: float = 3600.0
    # --cluster: a Dask scheduler's address (tcp://HOST:PORT) or local:N; None: checks in this process
    cluster: str | None = None
    task_targets: int = 200  # with cluster: targets per task at most (due ones go out together)
    cluster_timeout: float = 10.0  # with cluster: seconds to reach the scheduler at start
    batch_wait: float = 0.5  # with cluster: shortest sleep between two looks, so that due targets go out together


@dataclass
class DaemonState:
    """What /healthz reports."""

    started: datetime = field(default_factory=now)
    checks: int = 0
    errors: int = 0  # checks that could not be stored (the database failing), since start
    last_check: datetime | None = None
    verdicts: dict[str, int] = field(default_factory=dict)
    pruned: int = 0  # observations deleted by retention, since start
    alerts_sent: int = 0  # alert messages delivered (per channel), since start
    alert_failures: int = 0  # deliveries that failed


def backoff_interval(every_s: float, failures: int, cap: float) -> float:
    """Seconds until the next check of a target with ``failures`` consecutive unreachable observations (the
    latest included; 0 for a reachable target): ``every_s`` doubled per failure after the first, at most
    ``max(cap, every_s)``."""
    if failures <= 1:
        return every_s
    return min(every_s * 2 ** min(failures - 1, BACKOFF_HISTORY), max(cap, every_s))


class Daemon:
    """The scheduler and the engine; :meth:`run` until :meth:`stop`."""

    def __init__(self, store: Store, diagnose: DiagnoseOptions | None, config: ServeConfig) -> None:
        self.store = store
        self.config = config
        self.diagnose = replace(diagnose or DiagnoseOptions(), clients=True)
        self.state = DaemonState()
        self.inflight: dict[int, asyncio.Task[None]] = {}
        self._cooldown: dict[int, float] = {}  # target id → monotonic time before which it is not retried
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._by_id: dict[int, WatchedTarget] = {}
        self.session: Session | None = None
        self.engine: Engine | None = None
        self._clock_set = 0.0
        self._results: list[tuple[WatchedTarget, Observation, list[Any]]] = []  # checked, not yet alerted on
        self._diagnoses: OrderedDict[int, bytes] = OrderedDict()  # target id → zlib(JSON) of its latest check
        self.remote: Any = None  # the ClusterLink (certdoctor.watch.remote) with --cluster, opened by serve()
        self.at = now()  # the check time (the session's, or sent to the cluster's workers)
        self._checking = False  # the scheduler has started

    def stop(self) -> None:
        """Stop starting targets; :meth:`run` then lets those in flight finish within ``grace``."""
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- one check ------------------------------------------------------------------------------------------

    def _failures(self, target_id: int) -> int:
        """Consecutive unreachable observations of a target, newest first (at most :data:`BACKOFF_HISTORY`)."""
        o = t.observations
        with self.store.engine.connect() as conn:
            verdicts = conn.execute(
                sa.select(o.c.verdict)
                .where(o.c.target_id == target_id)
                .order_by(o.c.at.desc(), o.c.id.desc())
                .limit(BACKOFF_HISTORY)
            ).scalars()
            count = 0
            for verdict in verdicts:
                if verdict != "unreachable":
                    break
                count += 1
        return count

    def _next_due(self, watched: WatchedTarget, obs: Observation) -> datetime:
        interval = float(watched.every_s)
        if obs.verdict == "unreachable":
            interval = backoff_interval(interval, self._failures(watched.id) + 1, self.config.max_backoff)
        return obs.at + timedelta(seconds=interval * random.uniform(1 - JITTER, 1 + JITTER))

    def _observe(self, target: ScanTarget, record: dict[str, Any], diagnosis: Diagnosis | None) -> None:
        watched = self._by_id[target.line]
        moment = now()
        try:
            obs = observation(watched.id, record, diagnosis, moment)
        except Exception:  # defensive, as in run_pass: a certificate the store cannot describe
            obs = observation(watched.id, record, None, moment)
        else:  # the break forecast, when the target needs one (as in run_pass)
            obs = forecasting.attach(obs, diagnosis, forecasting.known_one(self.store, watched.id, moment))
        events = self.store.record(obs, next_due=self._next_due(watched, obs))
        self._remember(watched.id, record, diagnosis, obs)
        self._results.append((watched, obs, events))
        self.state.checks += 1
        self.state.last_check = moment
        self.state.verdicts[obs.verdict] = self.state.verdicts.get(obs.verdict, 0) + 1

    def _remember(self, target_id: int, record: dict[str, Any], diagnosis: Diagnosis | None, obs: Observation) -> None:
        """Keep the target's latest diagnosis as ``certdoctor check --json`` prints it (``Diagnosis.to_dict``;
        ``forecast``: the clients that break within the horizon, from the observation's forecast when one was
        made). A target that could not be judged keeps the scan record (kind ``scan-record``: its ``error`` and
        the ``scan-error``/``connection-failed`` finding). Never fails the check."""
        try:
            if diagnosis is not None:
                doc = diagnosis.to_dict()
                doc["forecast"] = _forecast_list(obs)
            else:
                doc = dict(record)
        except Exception:  # defensive: the dashboard then shows the stored facts only
            return
        self._keep_document(target_id, doc)

    def _keep_document(self, target_id: int, doc: dict[str, Any]) -> None:
        try:
            blob = zlib.compress(json.dumps(doc, ensure_ascii=True, default=str).encode(), 6)
        except Exception:  # defensive: the dashboard then shows the stored facts only
            return
        self._diagnoses[target_id] = blob
        self._diagnoses.move_to_end(target_id)
        while len(self._diagnoses) > DIAGNOSES_KEPT:
            self._diagnoses.popitem(last=False)

    def latest_diagnosis(self, target_id: int) -> dict[str, Any] | None:
        """The ``check --json`` document of the target's latest check made by this process (None: none kept)."""
        blob = self._diagnoses.get(target_id)
        if blob is None:
            return None
        self._diagnoses.move_to_end(target_id)
        return json.loads(zlib.decompress(blob))

    async def check_now(self, target_id: int) -> dict[str, Any] | None:
        """Check one target now, through the scheduler's path (the same session and engine, its deployed files
        read, the observation recorded with its events and next check, alerts at the next round), and return its
        ``check --json`` document. A target already in flight is waited for instead of checked twice.

        Returns: the document, or None when the target is unknown or could not be stored (the database failing).
        Raises: RuntimeError when the scheduler has not started (no session yet) or is stopping, or (with
        --cluster) the Dask scheduler is unreachable or has no worker.
        """
        if self.remote is not None and not self.remote.ready:  # else awaited (even in flight) until a worker joins
            raise RuntimeError(f"the daemon cannot check targets now: {self.remote.reason}")
        running = self.inflight.get(target_id)
        if running is None:
            if not self._checking or self.stopping:
                raise RuntimeError("the daemon is not checking targets (starting or stopping)")
            watched = self.store.target(target_id)
            if watched is None:
                return None
            refs = refs_by_target(self.store, [watched.id]).get(watched.id, ())
            if refs:
                refresh_files(self.store, [f.id for f in files(self.store, target_ids=[watched.id])])
            self._by_id[watched.id] = watched
            if self.remote is not None:  # a task of one, on the cluster
                running = asyncio.ensure_future(self._check_remote([(watched, refs)]))
            else:
                running = asyncio.ensure_future(self._check(watched, refs))
            self.inflight[watched.id] = running
        await asyncio.shield(running)
        return self.latest_diagnosis(target_id)

    async def _check(self, watched: WatchedTarget, deployed: tuple[DeployedRef, ...] = ()) -> None:
        assert self.engine is not None
        try:
            await self.engine.one(watched.scan_target()._replace(deployed=deployed))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database failing: retried after a poll, not in a tight loop
            self.state.errors += 1
            self._cooldown[watched.id] = time.monotonic() + max(self.config.poll, 30.0)
            print(f"certdoctor watch serve: {watched.spec}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            self.inflight.pop(watched.id, None)
            self._by_id.pop(watched.id, None)
            self._wake.set()

    async def _check_remote(self, batch: list[tuple[WatchedTarget, tuple[DeployedRef, ...]]]) -> None:
        """One task on the cluster: its targets' results stored as :meth:`_observe` stores a local check's. The
        scheduler lost, or the task failed on every attempt: nothing is stored, the targets are due again after
        a cooldown."""
        remote = self.remote
        assert remote is not None
        ids = [watched.id for watched, _refs in batch]
        try:
            moment = now()  # the stored forecasts younger than a day: the task's own (one row for a task of one)
            known = (
                forecasting.known_one(self.store, ids[0], moment)
                if len(ids) == 1
                else forecasting.known(self.store, moment, ids)
            )
            options = remote.options(self.diagnose, self.at, self.config.concurrency, self.config.retries, known)
            targets = [watched.scan_target()._replace(deployed=refs) for watched, refs in batch]
            results = await remote.check(options, targets)
            for obs, doc in results:
                watched = self._by_id.get(obs.target_id) or next(w for w, _ in batch if w.id == obs.target_id)
                try:
                    self._store_remote(watched, obs, doc)
                except Exception as exc:  # the database failing: retried after a poll, not in a tight loop
                    self.state.errors += 1
                    self._cooldown[watched.id] = time.monotonic() + max(self.config.poll, 30.0)
                    print(f"certdoctor watch serve: {watched.spec}: {type(exc).__name__}: {exc}", file=sys.stderr)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from .remote import ClusterDown

            until = time.monotonic() + max(self.config.poll, 30.0 if not isinstance(exc, ClusterDown) else 0.0)
            for ident in ids:
                self._cooldown[ident] = until
            if not isinstance(exc, ClusterDown):  # the scheduler lost is said once, by the link
                reason = str(exc).splitlines()[0] if str(exc) else ""
                print(
                    f"certdoctor watch serve: a task of {len(ids)} target(s) failed on the cluster "
                    f"({type(exc).__name__}: {reason}); they are due again",
                    file=sys.stderr,
                )
        finally:
            for ident in ids:
                self.inflight.pop(ident, None)
                self._by_id.pop(ident, None)
            self._wake.set()

    def _store_remote(self, watched: WatchedTarget, obs: Observation, doc: dict[str, Any] | None) -> None:
        """Store a worker's observation with its events and next check, keep its document (``forecast`` from
        the observation, as :meth:`_remember`), count it."""
        events = self.store.record(obs, next_due=self._next_due(watched, obs))
        if doc is not None:
            doc["forecast"] = _forecast_list(obs)
            self._keep_document(watched.id, doc)
        self._results.append((watched, obs, events))
        self.state.checks += 1
        self.state.last_check = obs.at
        self.state.verdicts[obs.verdict] = self.state.verdicts.get(obs.verdict, 0) + 1

    # --- the scheduler --------------------------------------------------------------------------------------

    def _refresh_clock(self) -> None:
        """Move the check time to now once it is ``judgement_ttl`` old, dropping the session's judgements made
        at the old time (they name days left and expiry as of then). On a cluster the new time goes with the
        next tasks: each worker judges in a session of that time (its older sessions are dropped in turn)."""
        if time.monotonic() - self._clock_set < self.config.judgement_ttl:
            return
        self.at = now()
        self._clock_set = time.monotonic()
        session, engine = self.session, self.engine
        if session is None or engine is None:
            return
        session.at = self.at
        session.forget_judgements()  # chain judgements and client verdicts made at the old check time
        engine.at = session.at

    def _capacity(self) -> int:
        """Targets in flight at most: ``concurrency``, or on a cluster the targets of the tasks it may have out
        (0 while its scheduler is unreachable)."""
        return self.config.concurrency if self.remote is None else self.remote.capacity()

    def _next_wake(self) -> float:
        """Seconds until the soonest ``next_due`` of a target neither in flight nor cooling down (at most
        ``poll``; on a cluster at least ``batch_wait``); ``poll`` when every slot is taken (a completion wakes
        the scheduler)."""
        if len(self.inflight) >= self._capacity():
            return self.config.poll
        query = sa.select(sa.func.min(t.targets.c.next_due)).where(t.targets.c.enabled.is_(True))
        busy = [*self.inflight, *self._cooldown]
        if busy:
            query = query.where(t.targets.c.id.not_in(busy))
        with self.store.engine.connect() as conn:
            soonest = utc(conn.execute(query).scalar())
        if soonest is None:
            return self.config.poll
        shortest = 0.05 if self.remote is None else self.config.batch_wait
        return max(shortest, min(self.config.poll, (soonest - now()).total_seconds()))

    def _start_due(self) -> None:
        free = self._capacity() - len(self.inflight)
        if free <= 0:
            return
        moment = time.monotonic()
        self._cooldown = {k: v for k, v in self._cooldown.items() if v > moment}
        busy = [*self.inflight, *self._cooldown]
        query = sa.select(t.targets).where(t.targets.c.enabled.is_(True), t.targets.c.next_due <= now())
        if busy:
            query = query.where(t.targets.c.id.not_in(busy))
        # only as many as there are free slots: a fleet of 10,000 due targets is not read at each completion
        query = query.order_by(t.targets.c.next_due, t.targets.c.id).limit(free)
        with self.store.engine.connect() as conn:
            due = [_target(row) for row in conn.execute(query)]
        refs = refs_by_target(self.store, [w.id for w in due]) if due else {}  # deployed files, read at the check
        if refs:  # their rows as read now, for `watch files` and the API
            refresh_files(self.store, [f.id for f in files(self.store, target_ids=list(refs))])
        if self.remote is not None:  # in tasks of up to task_targets
            size = max(1, self.config.task_targets)
            for start in range(0, len(due), size):
                batch = [(w, refs.get(w.id, ())) for w in due[start : start + size]]
                task = asyncio.ensure_future(self._check_remote(batch))
                for watched, _refs in batch:
                    self._by_id[watched.id] = watched
                    self.inflight[watched.id] = task
            return
        for watched in due:
            self._by_id[watched.id] = watched
            self.inflight[watched.id] = asyncio.ensure_future(self._check(watched, refs.get(watched.id, ())))

    def _alert(self, results: list[tuple[WatchedTarget, Observation, list[Any]]]) -> None:
        """Turn checks into alerts (as ``watch run`` does at the end of a pass: renewal hooks, thresholds, damping,
        dedupe, repeats of what lasts) and deliver them to the channels; run in a worker thread, since delivery waits on
        the network (bounded by each channel's timeout and retries)."""
        from . import alerts, channels, renewal

        results, _runs = renewal.after_pass(self.store, results, self.diagnose)  # hooks due, re-checks, settling
        messages = alerts.evaluate(self.store, results)
        if not messages:
            return
        for delivery in channels.deliver(messages, channels.channels(self.store)):
            if delivery.ok:
                self.state.alerts_sent += 1
            else:
                self.state.alert_failures += 1
                print(
                    f"certdoctor watch serve: alert to channel {delivery.channel} failed: {delivery.error}",
                    file=sys.stderr,
                )

    async def alert_round(self) -> None:
        """Alert on the checks made since the last round (and repeat what lasts)."""
        results, self._results = self._results, []
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._alert, results)
        except Exception as exc:  # the database or a channel failing: said, tried again at the next round
            self._results[:0] = results
            print(f"certdoctor watch serve: alerts: {type(exc).__name__}: {exc}", file=sys.stderr)

    async def retention(self) -> None:
        """Apply the retention (``keep``) at start and every ``prune_every`` seconds until :meth:`stop`, so that
        the database does not grow without bound (events and each target's latest observation are kept)."""
        if self.config.keep is None:
            return
        loop = asyncio.get_running_loop()
        while not self.stopping:
            try:
                deleted = await loop.run_in_executor(None, self.store.prune, self.config.keep)
                self.state.pruned += deleted["observations"]
            except Exception as exc:  # the database failing: said, tried again later
                print(f"certdoctor watch serve: retention: {type(exc).__name__}: {exc}", file=sys.stderr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.prune_every)

    async def alerting(self) -> None:
        """An alert round every ``alert_every`` seconds until :meth:`stop` (the caller runs the last one once the
        targets in flight are done)."""
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.alert_every)
            if not self.stopping:
                await self.alert_round()

    async def schedule(self) -> None:
        """Start due targets until :meth:`stop`; then wait ``grace`` for those in flight, cancel the rest."""
        if self.remote is not None:
            await self._loop()
            return
        async with Session(self.diagnose, cache=True) as session:
            self.session = session
            self.engine = Engine(
                ScanOptions(
                    concurrency=self.config.concurrency,
                    retries=self.config.retries,
                    clients=True,
                    diagnose=self.diagnose,
                ),
                lambda _text, _meta: None,
                observe=self._observe,
            )
            self.engine.session = session
            await self._loop()

    async def _loop(self) -> None:
        self._clock_set = -self.config.judgement_ttl  # set at the first look
        self._checking = True
        while not self.stopping:
            self._wake.clear()
            try:
                self._refresh_clock()
                self._start_due()
                delay = self._next_wake()
            except Exception as exc:  # the database unreachable: say so, try again after a poll
                print(f"certdoctor watch serve: {type(exc).__name__}: {exc}", file=sys.stderr)
                delay = self.config.poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        tasks = list(set(self.inflight.values()))  # on a cluster, one task per batch of targets
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.config.grace)
            for task in pending:  # abandoned: nothing stored, so due again at the next start
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        """The ``watch-health`` document's body."""
        database = "ok"
        try:
            with self.store.engine.connect() as conn:
                targets = conn.execute(sa.select(sa.func.count()).select_from(t.targets)).scalar_one()
        except Exception as exc:
            database, targets = f"{type(exc).__name__}: {exc}"[:500], None
        cluster = None if self.remote is None else self.remote.health()
        fine = database == "ok" and (cluster is None or cluster["status"] == "ok")
        return {
            "status": "stopping" if self.stopping else ("ok" if fine else "error"),
            "database": database,
            "started": self.state.started.isoformat(),
            "uptime_s": round((now() - self.state.started).total_seconds(), 1),
            "targets": targets,
            "in_flight": len(self.inflight),
            "checks": self.state.checks,
            "check_errors": self.state.errors,
            "verdicts": dict(self.state.verdicts),
            "last_check": None if self.state.last_check is None else self.state.last_check.isoformat(),
            "check_time": (
                self.at.isoformat()
                if self.remote is not None
                else None
                if self.session is None or self.session.at is None
                else self.session.at.isoformat()
            ),
            "alerts": {"sent": self.state.alerts_sent, "failed": self.state.alert_failures},
            "pruned": self.state.pruned,
            # with --cluster the workers judge, each in its own session: no count of this process's would be true
            **(
                {}
                if self.remote is not None
                else {
                    "judgement_cache": {
                        "hits": 0 if self.session is None else self.session.chain_hits,
                        "misses": 0 if self.session is None else self.session.chain_misses,
                    }
                }
            ),
            **({} if cluster is None else {"cluster": cluster}),
        }


def _forecast_list(obs: Observation) -> list[dict[str, Any]]:
    """The ``forecast`` list of a ``check --json`` document from the observation's stored forecast: one entry per
    client family that breaks within the horizon (``accepts_now`` true; the families that do not break are not
    listed, unlike check's own list). Empty when no forecast was made with this check."""
    row = obs.forecast
    if row is None:
        return []
    return [
        {
            "client": b["client"],
            "name": b["name"],
            "accepts_now": True,
            "until": row.until.isoformat(),
            "break": {k: v for k, v in b.items() if k not in ("client", "name")},
        }
        for b in row.breaks
    ]


AppFactory = Callable[[Store, "Daemon"], Any]  # (store, daemon) → an ASGI application


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6), made before anything else starts so that a
    port in use is reported at once. Raises OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def _no_signal_capture() -> Iterator[None]:
    yield


async def serve(
    store: Store,
    diagnose: DiagnoseOptions | None,
    config: ServeConfig,
    sock: socket.socket,
    *,
    app: AppFactory | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run the daemon and its HTTP side on ``sock`` until SIGTERM or SIGINT; then stop taking targets, let
    those in flight finish within ``config.grace`` seconds, stop the server. ``app(store, daemon)`` builds the
    ASGI application (it reads ``daemon.config.token``); default: the JSON API alone
    (:func:`certdoctor.watch.httpapi.make_app`). ``ready()`` is called once the daemon is about to serve. The
    caller closes the store.

    With ``config.cluster``: the scheduler is reached first (ClusterError, exit status 3, when it does not
    answer within ``config.cluster_timeout`` seconds; InputError without Dask), and the client (and a
    LocalCluster) closed at the end."""
    import uvicorn

    daemon = Daemon(store, diagnose, config)
    if config.cluster is not None:
        from .remote import ClusterLink

        daemon.remote = ClusterLink(config.cluster, config.cluster_timeout, config.task_targets)
        await daemon.remote.open()
    try:
        await _serve(daemon, store, config, sock, app, ready, uvicorn)
    finally:
        if daemon.remote is not None:
            await daemon.remote.close()


async def _serve(
    daemon: Daemon,
    store: Store,
    config: ServeConfig,
    sock: socket.socket,
    app: AppFactory | None,
    ready: Callable[[], None] | None,
    uvicorn: Any,
) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop)
    if app is None:
        from .httpapi import make_app

        asgi = make_app(store, daemon, token=config.token)
    else:
        asgi = app(store, daemon)
    server = uvicorn.Server(
        uvicorn.Config(asgi, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2)
    )
    # uvicorn re-raises the signals it captured once it has shut down (killing the process with them); the
    # daemon owns SIGTERM/SIGINT here and stops the server itself.
    server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
    http = asyncio.ensure_future(server.serve(sockets=[sock]))
    if ready is not None:
        ready()
    scheduler = asyncio.ensure_future(daemon.schedule())
    alerting = asyncio.ensure_future(daemon.alerting())
    retention = asyncio.ensure_future(daemon.retention())
    link = None if daemon.remote is None else asyncio.ensure_future(daemon.remote.watch(daemon._stopping))
    try:
        done, _ = await asyncio.wait({http, scheduler}, return_when=asyncio.FIRST_COMPLETED)
        if http in done and not scheduler.done():  # the server failed: stop the scheduler too
            daemon.stop()
        await scheduler
        await alerting
        await retention
        if link is not None:
            await link
        await daemon.alert_round()  # the last checks' alerts
    finally:
        if link is not None and not link.done():
            link.cancel()
            await asyncio.gather(link, return_exceptions=True)
        server.should_exit = True
        await asyncio.gather(http, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if http.done() and not http.cancelled() and http.exception() is not None:
        raise http.exception()  # type: ignore[misc]
