"""The monitor's Prometheus exposition: the latest state of the store, read from the database at each scrape.

A :class:`StoreCollector` (a ``prometheus_client`` custom collector, registered in a registry of its own — no
module-level metrics) reads the targets and each one's latest observation when it is collected, so that
``certdoctor watch metrics`` (a file for node_exporter's textfile collector) and ``watch serve``'s ``/metrics``
show the same thing: :func:`render_metrics` gives the bytes, :data:`CONTENT_TYPE` the HTTP content type.

Conventions (https://prometheus.io/docs/practices/naming/ and the exporters users already run): times are
timestamps in seconds since the epoch, never countdowns (``certdoctor_cert_not_after_seconds - time()`` is the
time left, so a series does not change between checks and an alert rule picks its own threshold), durations in
seconds, booleans as 1/0 gauges, and few labels: ``target`` (the target as added, its spec), plus ``client`` or
``finding``/``severity`` where the series is per client family or per finding. The exporters' names map as:

=====================================================  =====================================================
blackbox_exporter ``probe_ssl_earliest_cert_expiry``   ``certdoctor_chain_earliest_not_after_seconds``
ssl_exporter ``ssl_cert_not_after`` (the leaf's row)   ``certdoctor_cert_not_after_seconds``
x509-certificate-exporter ``x509_cert_not_after``      ``certdoctor_cert_not_after_seconds``
blackbox ``probe_success`` / ssl ``ssl_tls_connect_…`` ``certdoctor_target_reachable``
=====================================================  =====================================================

Per target (its latest observation; a target never checked has only ``certdoctor_check_interval_seconds``):

- ``certdoctor_cert_not_after_seconds``: the leaf's notAfter (absent when no leaf was seen).
- ``certdoctor_chain_earliest_not_after_seconds``: the earliest notAfter of the chain a client builds (the best
  path to a trust anchor, else the chain as presented) — an expired intermediate shows here, not in the leaf's.
- ``certdoctor_target_reachable``: 1 when a chain was judged, 0 when the target was unreachable. An expired
  certificate is reachable and invalid, never "down".
- ``certdoctor_target_valid``: 1 when the verdict is valid, else 0 (absent for an unreachable target).
- ``certdoctor_client_accepts{client}``: per client family of the predictions, 1 accepts / 0 rejects (absent
  when unreachable: a client that cannot connect has not rejected anything).
- ``certdoctor_finding{finding, severity}``: 1 per finding of the latest observation (present only; an
  unreachable target has its ``connection-failed``, ``handshake-failed``, … finding).
- ``certdoctor_last_check_timestamp_seconds``, ``certdoctor_check_duration_seconds``: when the latest check was
  made and how long it took; ``certdoctor_check_interval_seconds``: the target's interval (``--every``), so that
  a rule can call a check stale after a few intervals.

The store and the passes:

- ``certdoctor_targets``, ``certdoctor_targets_due`` (next check time come), ``certdoctor_targets_unchecked``,
  ``certdoctor_targets_invalid``, ``certdoctor_targets_unreachable`` (enabled targets, by latest verdict).
- ``certdoctor_last_observation_timestamp_seconds``: the newest check of any target.
- ``certdoctor_last_pass_timestamp_seconds``, ``certdoctor_last_pass_duration_seconds``,
  ``certdoctor_last_pass_checked_targets``: the last pass this process ran (``watch serve`` passes it);
  absent from ``watch metrics``, since passes are not stored (``certdoctor_last_observation_timestamp_seconds``
  and ``certdoctor_targets_due`` tell whether cron's passes run).
- ``certdoctor_store_up``: 1 when the database could be read; 0 (and nothing else) when it could not.
- ``certdoctor_metrics_read_duration_seconds``: how long reading the store took for this exposition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import tables as t
from .runner import PassResult
from .store import Store, now, utc

# The classic text format, which every Prometheus and textfile collector reads (prometheus_client ≥ 0.22 calls its
# own output "version=1.0.0": the same text for names like these, which need no UTF-8 escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "certdoctor_"


@dataclass(frozen=True)
class PassInfo:
    """The last pass a process ran: when it ended (UTC), seconds it took, targets it checked."""

    at: datetime
    elapsed_s: float
    checked: int

    @classmethod
    def of(cls, result: PassResult, at: datetime | None = None) -> PassInfo:
        """From :func:`certdoctor.watch.run_pass`'s result, ended at ``at`` (default: now)."""
        return cls(at or now(), result.elapsed_s, result.checked)


def _ts(value: datetime | None) -> float | None:
    value = utc(value)
    return None if value is None else value.timestamp()


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ("target",), unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels), unit=unit)


class StoreCollector(Collector):
    """Reads ``store`` at each ``collect()`` (one query for targets and their latest observation, two counts).

    ``last_pass``: a callable returning the process's last :class:`PassInfo` (or None), read at each collect.
    ``clock``: the moment that decides which targets are due (default: now).
    """

    def __init__(
        self,
        store: Store,
        last_pass: Callable[[], PassInfo | None] | None = None,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.store = store
        self.last_pass = last_pass
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # the families depend on the data: no describe-time read of the database

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        up = _gauge("store_up", "1 when the watch database could be read, else 0", ())
        try:
            families = self._families()
        except sa.exc.SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        info = self.last_pass() if self.last_pass is not None else None
        if info is not None:
            for name, doc, value in (
                ("last_pass_timestamp_seconds", "when the last pass of this process ended", _ts(info.at)),
                ("last_pass_duration_seconds", "seconds the last pass of this process took", info.elapsed_s),
                ("last_pass_checked_targets", "targets the last pass of this process checked", info.checked),
            ):
                g = _gauge(name, doc, ())
                g.add_metric([], float(value or 0))
                yield g
        read = _gauge("metrics_read_duration_seconds", "seconds spent reading the store for this exposition", ())
        read.add_metric([], time.monotonic() - started)
        yield read

    def _families(self) -> list[Metric]:
        o = t.observations
        query = (
            sa.select(
                t.targets.c.spec,
                t.targets.c.every_s,
                t.targets.c.next_due,
                o.c.at,
                o.c.duration_ms,
                o.c.verdict,
                o.c.leaf_not_after,
                o.c.chain_not_after,
                o.c.findings,
                o.c.clients,
            )
            .select_from(t.targets.outerjoin(o, o.c.id == t.targets.c.last_observation_id))
            .where(t.targets.c.enabled.is_(True))
            .order_by(t.targets.c.id)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        moment = self.clock()
        leaf = _gauge("cert_not_after_seconds", "the leaf certificate's notAfter, seconds since the epoch")
        chain = _gauge(
            "chain_earliest_not_after_seconds",
            "the earliest notAfter of the chain a client builds (leaf, intermediates, anchor), seconds since epoch",
        )
        reachable = _gauge("target_reachable", "1 when the latest check judged a chain, 0 when unreachable")
        valid = _gauge("target_valid", "1 when the latest verdict is valid, else 0 (absent when unreachable)")
        accepts = _gauge("client_accepts", "1 when the client family accepts the chain, else 0", ("target", "client"))
        finding = _gauge(
            "finding", "1 per finding of the latest check (present only)", ("target", "finding", "severity")
        )
        checked = _gauge("last_check_timestamp_seconds", "when the latest check of the target was made")
        duration = _gauge("check_duration_seconds", "seconds the latest check of the target took")
        interval = _gauge("check_interval_seconds", "seconds between two checks of the target (--every)")
        counts = {"targets": 0, "due": 0, "unchecked": 0, "invalid": 0, "unreachable": 0}
        newest: float | None = None
        for r in rows:
            target = [r.spec]
            counts["targets"] += 1
            interval.add_metric(target, float(r.every_s))
            if utc(r.next_due) <= moment:  # type: ignore[operator]
                counts["due"] += 1
            if r.verdict is None:
                counts["unchecked"] += 1
                continue
            at = _ts(r.at)
            newest = at if newest is None or (at is not None and at > newest) else newest
            checked.add_metric(target, at or 0.0)
            duration.add_metric(target, float(r.duration_ms or 0) / 1000)
            reachable.add_metric(target, 0 if r.verdict == "unreachable" else 1)
            if r.verdict == "unreachable":
                counts["unreachable"] += 1
            else:
                valid.add_metric(target, 1 if r.verdict == "valid" else 0)
                counts["invalid"] += r.verdict == "invalid"
            for family, when in ((leaf, r.leaf_not_after), (chain, r.chain_not_after)):
                stamp = _ts(when)
                if stamp is not None:
                    family.add_metric(target, stamp)
            seen_clients: set[str] = set()
            # an unreachable target's predictions are all "rejects" (nothing to accept): not a client's verdict
            for client, ok in r.clients or () if r.verdict != "unreachable" else ():
                if client not in seen_clients:
                    seen_clients.add(client)
                    accepts.add_metric([r.spec, str(client)], 1 if ok else 0)
            for fid, severity in sorted({(str(f[0]), str(f[1])) for f in r.findings or ()}):
                finding.add_metric([r.spec, fid, severity], 1)
        store_families = []
        for key, name, doc in (
            ("targets", "targets", "enabled targets in the watch list"),
            ("due", "targets_due", "enabled targets whose next check time has come"),
            ("unchecked", "targets_unchecked", "enabled targets never checked"),
            ("invalid", "targets_invalid", "enabled targets whose latest verdict is invalid"),
            ("unreachable", "targets_unreachable", "enabled targets unreachable at their latest check"),
        ):
            g = _gauge(name, doc, ())
            g.add_metric([], counts[key])
            store_families.append(g)
        if newest is not None:
            g = _gauge("last_observation_timestamp_seconds", "when the newest check of any target was made", ())
            g.add_metric([], newest)
            store_families.append(g)
        per_target = [leaf, chain, reachable, valid, accepts, finding, checked, duration, interval]
        return [f for f in per_target if f.samples] + store_families


def registry(store: Store, last_pass: Callable[[], PassInfo | None] | None = None) -> CollectorRegistry:
    """A registry of its own holding one :class:`StoreCollector` (no process or platform metrics)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(store, last_pass))
    return reg


def render_metrics(store: Store, last_pass: PassInfo | None = None) -> bytes:
    """The text exposition (format 0.0.4, :data:`CONTENT_TYPE`) of ``store``'s latest state, read now.

    ``last_pass``: the last pass this process ran, for the ``certdoctor_last_pass_*`` series (None: absent);
    ``PassInfo.of(run_pass(…))``. A long-running server may rather register :func:`registry`'s collector once,
    with a callable that returns its latest pass.
    A database that cannot be read gives ``certdoctor_store_up 0`` rather than an exception.
    """
    return generate_latest(registry(store, lambda: last_pass))
