"""One pass (``certdoctor watch run``): the targets that are due, diagnosed by the scan engine (its session,
judgement cache, concurrency, retries, helper processes), each result stored as an observation as it arrives:
in small transactions (at most :data:`BATCH` observations, committed at least every :data:`FLUSH_SECONDS`), so
that a pass killed midway loses only the targets in flight and the last fraction of a second of results."""

from __future__ import annotations

import functools
import hashlib
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from .. import certinfo
from ..collect.http import preload as preload_http
from ..diagnosis import Diagnosis
from ..model import DiagnoseOptions
from ..pipeline import Session, parse_at
from ..scan.driver import ClusterSpec, run_pool
from ..scan.engine import ScanOptions
from ..scan.targets import ScanTarget
from . import forecasting
from .events import Endpoint, Event
from .store import CertRow, Observation, Store, WatchedTarget, now

JITTER = 0.1  # the next check of a target is due after its interval ± 10 %, so that a fleet spreads out
BATCH = 256  # observations per transaction at most
SMALL_PASS = 200  # fewer targets than this: one process, even when helpers may be added
FLUSH_SECONDS = 0.25  # an observation waits at most this long (plus a helper's own quarter second) to be stored


@dataclass
class PassResult:
    """What one pass did: targets checked, verdict counts, events made (kind → count), seconds."""

    checked: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    results: list[tuple[WatchedTarget, Observation, list[Event]]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a target is invalid, else 3 when one is unreachable, else 0 (the CLI's statuses)."""
        if self.verdicts["invalid"]:
            return 1
        if self.verdicts["unreachable"]:
            return 3
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "verdicts": dict(self.verdicts),
            "events": dict(self.events),
            "elapsed_s": round(self.elapsed_s, 2),
        }


_ROWS: OrderedDict[int, tuple[Any, CertRow]] = OrderedDict()  # id(cert) → (cert, its row): see _cert_row
ROWS_CACHED = 4096


def _cert_row(cert: Any) -> CertRow:
    """The stored description of a certificate. The collector hands out one object per distinct certificate,
    so rows are remembered by object (the entry keeps the object alive, so its id is not reused)."""
    hit = _ROWS.get(id(cert))
    if hit is not None and hit[0] is cert:
        return hit[1]
    row = _describe(cert)
    _ROWS[id(cert)] = (cert, row)
    if len(_ROWS) > ROWS_CACHED:
        _ROWS.popitem(last=False)
    return row


def _describe(cert: Any) -> CertRow:
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        spki_sha256 = hashlib.sha256(spki).hexdigest()
    except Exception:  # a key cryptography cannot load (unknown algorithm, bad encoding): no key identity
        spki_sha256 = ""
    return CertRow(
        certinfo.fingerprint(cert),
        der,
        certinfo.subject(cert),
        certinfo.issuer(cert),
        certinfo.not_before(cert),
        certinfo.not_after(cert),
        spki_sha256,
    )


def observation(target_id: int, record: dict[str, Any], diagnosis: Diagnosis | None, at: datetime) -> Observation:
    """An :class:`Observation` of a scan record (``clients`` on) and the :class:`Diagnosis` behind it (None for
    a target that could not be judged: then the record's error)."""
    certs: dict[str, CertRow] = {}
    endpoints: list[Endpoint] = []
    chain_end: datetime | None = None
    if diagnosis is not None:
        seen: dict[int, CertRow] = {}  # by object: the collector hands out one object per distinct certificate
        for chain in diagnosis.evidence.chains:
            shas = []
            for cert in chain.certs:
                row = seen.get(id(cert))
                if row is None:
                    row = seen[id(cert)] = _cert_row(cert)
                    certs[row.sha256] = row
                shas.append(row.sha256)
            # a dual server's other certificate ("ADDRESS:PORT (RSA)") is an endpoint of its own, not its address
            where = chain.source if chain.key_type_only else (chain.address or chain.source)
            endpoints.append(Endpoint(where, chain.ok, chain.error, tuple(shas)))
        for report in diagnosis.reports:
            path = report.analysis.best.certs() if report.analysis.paths else report.chain.certs
            for cert in path:
                end = certinfo.not_after(cert)
                if chain_end is None or end < chain_end:
                    chain_end = end
    leaf = record.get("leaf") or {}
    findings = tuple((f["id"], f["severity"]) for f in record.get("findings") or ())
    first_error = next((f for f in record.get("findings") or () if f["severity"] == "error"), None)
    verdict = record.get("verdict", "unreachable")
    if verdict == "unreachable":
        error = (
            record.get("error")
            or "; ".join(dict.fromkeys(e["error"] for e in record.get("endpoints") or () if e.get("error")))
            or (first_error["detail"] if first_error else None)
        )
    else:
        error = first_error["detail"] if first_error else None
    return Observation(
        target_id=target_id,
        at=at,
        duration_ms=float(record.get("elapsed_ms") or 0.0),
        verdict=verdict,
        exit_code=int(record.get("exit_code", 3)),
        rejected_by=tuple(record.get("rejected_by") or ()),
        leaf_sha256=leaf.get("sha256"),
        leaf_not_after=datetime.fromisoformat(leaf["not_after"]) if leaf.get("not_after") else None,
        chain_not_after=chain_end,
        findings=findings,
        clients=tuple((c["client"], bool(c["accepts"])) for c in record.get("clients") or ()),
        endpoints=tuple(endpoints),
        certificates=tuple(certs.values()),
        error=error,
        first_error=first_error["id"] if first_error else None,
        finding_details=_finding_details(record, diagnosis),
    )


def _finding_details(record: dict[str, Any], diagnosis: Diagnosis | None) -> tuple[dict[str, Any], ...]:
    """Each finding as alerts carry it: id, severity, title, detail, fix, rejected_by (client family ids)."""
    if diagnosis is not None:
        return tuple(
            {
                "id": f.id,
                "severity": f.severity.value,
                "title": f.title,
                "detail": f.detail,
                "fix": f.fix,
                "rejected_by": list(f.rejected_by),
            }
            for f in diagnosis.findings
        )
    return tuple(
        {
            k: f.get(k, [] if k == "rejected_by" else "")
            for k in ("id", "severity", "title", "detail", "fix", "rejected_by")
        }
        for f in record.get("findings") or ()
    )


def next_due(target: WatchedTarget, at: datetime) -> datetime:
    """When ``target`` is checked again: its interval from ``at``, ± :data:`JITTER`."""
    return at + timedelta(seconds=target.every_s * random.uniform(1 - JITTER, 1 + JITTER))


def observe_target(
    target: ScanTarget,
    record: dict[str, Any],
    diagnosis: Diagnosis | None,
    known: forecasting.Known | None = None,
) -> Observation:
    """The scan engine's result for one watched target (whose ``line`` is its id) as an :class:`Observation`;
    run in whichever process diagnosed it (see ScanOptions.produce). ``known``: the stored forecasts younger than
    a day (target id → chain key): given, the observation carries a new forecast when the target needs one (see
    :func:`certdoctor.watch.forecasting.attach`)."""
    moment = now()
    try:
        obs = observation(target.line, record, diagnosis, moment)
    except Exception:  # defensive: a certificate the store cannot describe must not stop the pass
        return observation(target.line, record, None, moment)
    return obs if known is None else forecasting.attach(obs, diagnosis, known)


def observe_with_document(
    target: ScanTarget,
    record: dict[str, Any],
    diagnosis: Diagnosis | None,
    known: forecasting.Known | None = None,
) -> tuple[Observation, dict[str, Any] | None]:
    """:func:`observe_target` and the target's ``check --json`` document (``Diagnosis.to_dict()``; the scan
    record for a target that could not be judged; None when it cannot be made): what a cluster worker returns
    to ``watch serve --cluster``, which stores the observation and keeps the document as the target's latest
    diagnosis (the :class:`Diagnosis` itself does not cross processes)."""
    obs = observe_target(target, record, diagnosis, known)
    try:
        doc = diagnosis.to_dict() if diagnosis is not None else dict(record)
    except Exception:  # defensive, as the daemon's own: the dashboard then shows the stored facts only
        doc = None
    return obs, doc


def kept(obs: Observation) -> Observation:
    """What a pass keeps of an observation for the alerts at its end: no endpoints, only the leaf certificate
    without its DER (10,000 observations with their chains were most of a pass's memory), a forecast without
    its breaks."""
    leaf = tuple(replace(c, der=b"") for c in obs.certificates if c.sha256 == obs.leaf_sha256)
    forecast = None if obs.forecast is None else replace(obs.forecast, breaks=())  # stored; alerts read the table
    return replace(obs, endpoints=(), certificates=leaf, forecast=forecast)


class _Writer:
    """Stores the observations of a pass as they arrive, :data:`BATCH` at a time or every :data:`FLUSH_SECONDS`
    (``tick``), and counts them into the :class:`PassResult`.

    In the event loop's thread: a writer thread measured twice as slow, its Python work taking the GIL from
    the event loop for a switch interval at a time."""

    def __init__(
        self,
        store: Store,
        by_id: dict[int, WatchedTarget],
        result: PassResult,
        on_result: Callable[[WatchedTarget, Observation, list[Event]], None] | None,
    ) -> None:
        self.store = store
        self.by_id = by_id
        self.result = result
        self.on_result = on_result
        self.pending: list[Observation] = []
        self.last = time.monotonic()

    def add(self, obs: Observation, _meta: object = None) -> None:
        self.pending.append(obs)
        if len(self.pending) >= BATCH:
            self.flush()

    def tick(self) -> None:
        if self.pending and time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        made = self.store.record_many([(obs, next_due(self.by_id[obs.target_id], obs.at)) for obs in batch])
        result = self.result
        for obs, events in zip(batch, made, strict=True):
            watched = self.by_id[obs.target_id]
            result.checked += 1
            result.verdicts[obs.verdict] += 1
            result.events.update(kind for kind, _ in events)
            result.results.append((watched, kept(obs), events))
            if self.on_result is not None:
                self.on_result(watched, obs, events)


def _scan_targets(store: Store, todo: Sequence[WatchedTarget]) -> list[ScanTarget]:
    """The scan engine's targets, each with the deployed files linked to it (read at its check, compared with
    what it serves); the linked files' rows are refreshed first (``watch files`` shows what the pass read)."""
    from .deployed import refresh_files, refs_by_target

    refs = refs_by_target(store, [x.id for x in todo])
    if refs:
        from .deployed import files

        refresh_files(store, [f.id for f in files(store, target_ids=list(refs))])
    return [x.scan_target()._replace(deployed=refs[x.id]) if x.id in refs else x.scan_target() for x in todo]


def run_pass(
    store: Store,
    diagnose: DiagnoseOptions | None = None,
    *,
    everything: bool = False,
    targets: Sequence[WatchedTarget] | None = None,
    concurrency: int = 100,
    retries: int = 2,
    workers: int = 1,
    adaptive: bool = False,
    on_result: Callable[[WatchedTarget, Observation, list[Event]], None] | None = None,
    cluster: ClusterSpec | str | None = None,
) -> PassResult:
    """Check the targets that are due (every enabled one with ``everything``; or exactly ``targets``) and store
    an observation and its events for each, as each completes (see the module docstring for the batches).

    ``diagnose``: the judgement options (trust stores, --ca-file, timeouts); client predictions are always on.
    ``workers``: processes that diagnose (this one and ``workers - 1`` helpers, as `certdoctor scan` runs them;
    ``adaptive``: helpers only while this process is CPU-bound); this process alone writes the database.
    ``on_result(target, observation, events)``: called after each observation is committed.
    ``cluster``: a Dask scheduler's address (``tcp://HOST:PORT``) or ``local:N``, or a
    :class:`~certdoctor.scan.driver.ClusterSpec` (with its task size and timeout): the workers of that cluster
    diagnose instead of local processes (see :mod:`certdoctor.scan.cluster`); the results come back to this
    process, which alone writes the database.
    The result's ``results`` keep each observation without its endpoints and chain (see :func:`kept`).
    """
    started = time.monotonic()
    todo = list(targets) if targets is not None else store.due(everything=everything)
    result = PassResult()
    if not todo:
        return result
    by_id = {x.id: x for x in todo}
    options = ScanOptions(
        concurrency=max(1, min(concurrency, len(todo))),
        retries=retries,
        clients=True,
        diagnose=replace(diagnose or DiagnoseOptions(), clients=True),
        # a partial of a module-level function: it pickles, for helpers started with "spawn"
        produce=functools.partial(observe_target, known=forecasting.known(store, now(), by_id)),
    )
    writer = _Writer(store, by_id, result, on_result)
    processes = 1 if adaptive and len(todo) < SMALL_PASS else max(1, min(workers, len(todo)))
    if cluster is not None:  # one moment for every worker's judgements, as below
        options.diagnose = replace(options.diagnose, at=parse_at(options.diagnose.at))
        store.engine.dispose()  # a local:N cluster's workers are forked: no pooled connection goes with them
    elif processes > 1:
        # As `certdoctor scan` does: one moment for every process's judgements, and the trust stores loaded
        # (cached by the module) before helpers fork, so that they share them.
        options.diagnose = replace(options.diagnose, at=parse_at(options.diagnose.at))
        Session(options.diagnose, cache=True)
        if options.diagnose.fetch_aia or options.diagnose.revocation:
            preload_http()
        store.engine.dispose()  # no pooled database connection is shared with a forked helper
    try:
        run_pool(
            options,
            _scan_targets(store, todo),
            writer.add,
            writer,
            workers=processes,
            adaptive=adaptive,
            cluster=cluster,
        )
    finally:
        writer.flush()  # interrupted too: what is done is stored
        result.elapsed_s = time.monotonic() - started
    return result
