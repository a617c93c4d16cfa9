"""The break forecast in the watch pass: when each client family will first reject the chain a target serves,
kept per target in the ``forecasts`` table, listed by ``watch forecast``, alerted on (``break``) and
turned into ``break-forecast`` events.

Cost (a watch pass must stay near `certdoctor scan`'s rate): :func:`certdoctor.forecast.forecast` re-judges a
diagnosis at each candidate instant (about 9 ms of CPU per distinct chain), so a target's forecast is computed
only when it is *needed*: no forecast is stored for it, the chain it serves now differs from the one its forecast
was computed for (:func:`chain_key`), or its forecast is older than :data:`REFRESH` (24 h: the trust stores'
removal dates and the clients' code may have changed meanwhile). What is stored is read once before the pass
(:func:`known`, target id → chain key of its forecast younger than 24 h) and handed to the processes that diagnose
(:func:`attach`, called by :func:`certdoctor.watch.runner.observe_target`); each process keeps one judgement
cache for :func:`~certdoctor.forecast.forecast` and the forecasts it made per chain key (a fleet serving one
chain under one name computes it once per process). The forecast travels on the
:class:`~certdoctor.watch.store.Observation` (``forecast``: a :class:`ForecastRow`) back to the process that
writes, which upserts it (:func:`upsert`) in the observation's transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import tables as t
from .clock import utc
from .forecast_rows import ForecastRow

if TYPE_CHECKING:
    from ..diagnosis import Diagnosis
    from .store import Observation, Store

REFRESH = timedelta(hours=24)  # a forecast of an unchanged chain is computed again after this
DEFAULT_FORECAST_DAYS = 30.0  # alert on a break this many days ahead (`watch policy --forecast-days`)
CRITICAL_DAYS = 7.0  # a break this near is a critical alert, else a warning
CACHE_LIMIT = 20_000  # judgements kept per process (forecast()'s cache), then dropped
MEMO_LIMIT = 4_096  # forecasts kept per process by chain key, then dropped
CHUNK = 500  # target ids per IN (...) list
# CPU budget per process: forecasting may take FREE_CPU_S, then BUDGET_SHARE of the CPU the process has used
# since its first observation; a target over budget is forecast at a later pass (it still needs one then)
FREE_CPU_S = 2.0
BUDGET_SHARE = 0.25

Known = Mapping[int, str]  # target id → chain key of its stored forecast, if younger than REFRESH


_FINGERPRINTS: dict[int, tuple[Any, str]] = {}  # id(certificate) → (certificate, SHA-256 hex): see _fingerprint
FINGERPRINTS_KEPT = 4096


def _fingerprint(cert: Any) -> str:
    """:func:`certdoctor.certinfo.fingerprint`, remembered per certificate object: the collector hands out one
    object per distinct certificate, so a fleet's chains repeat the same few objects (hashing each certificate's
    DER again was most of :func:`chain_key`'s time). The entry keeps the object alive, so its id is not reused."""
    hit = _FINGERPRINTS.get(id(cert))
    if hit is not None and hit[0] is cert:
        return hit[1]
    from .. import certinfo

    if len(_FINGERPRINTS) >= FINGERPRINTS_KEPT:
        _FINGERPRINTS.clear()
    value = certinfo.fingerprint(cert)
    _FINGERPRINTS[id(cert)] = (cert, value)
    return value


def chain_key(d: Diagnosis) -> str:
    """SHA-256 (hex) of what a forecast depends on: the name and port, each chain presented (certificate
    SHA-256s in order), the trust stores (name, description, number of roots) and --ca-file roots, the client
    families predicted, and those that accept today (a client that starts rejecting for another reason — a
    revocation — changes the forecast too). Equal keys: the forecast of one holds for the other."""
    ev = d.evidence
    h = hashlib.sha256()
    parts: list[str] = [ev.target.name or "", str(None if ev.target.is_files else ev.target.port)]
    for r in d.reports:
        parts.append(",".join(_fingerprint(c) for c in r.chain.certs))
    for s in (*ev.stores, "|", *ev.client_stores):
        parts.append(s if isinstance(s, str) else f"{s.name}:{s.description}:{len(s.roots)}")
    parts.append(",".join(_fingerprint(c) for c in ev.extra_roots))
    parts.append(",".join(d.verdict_clients))
    parts.append(",".join(v.client for v in d.clients if v.accepts))
    h.update("\n".join(parts).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


_CACHE: dict[Any, Any] = {}  # forecast()'s judgements, per process
_MEMO: dict[str, ForecastRow] = {}  # chain key → the forecast this process made for it
COMPUTED = [0]  # forecasts computed by this process (not taken from the memo): for tests and the bench
_CPU = [0.0, -1.0]  # CPU seconds spent forecasting in this process; process CPU time at its first observation


def affordable() -> bool:
    """True while this process's forecasts have cost at most :data:`FREE_CPU_S` plus :data:`BUDGET_SHARE` of
    the CPU time it used since its first observation (so that the first pass over a fleet of distinct chains,
    about 8 ms of CPU each, stays near scan's rate: the rest are forecast over the next passes)."""
    used = time.process_time()
    if _CPU[1] < 0 or used < _CPU[1]:  # the first observation, or a forked helper (its CPU time starts at 0)
        _CPU[0], _CPU[1] = 0.0, used
    return _CPU[0] <= FREE_CPU_S + BUDGET_SHARE * (used - _CPU[1])


def needed(target_id: int, key: str, known: Known) -> bool:
    """True when target ``target_id`` has no stored forecast younger than :data:`REFRESH` (``known``, read at
    the start of the pass), or has one for another chain than ``key``."""
    return known.get(target_id) != key


def compute(d: Diagnosis, key: str, at: datetime) -> ForecastRow:
    """The forecast of ``d`` as a :class:`ForecastRow` computed at ``at``: taken from this process's memo when
    one for the same chain key is younger than :data:`REFRESH`, else computed
    (:func:`certdoctor.forecast.forecast`, default horizon and store removal dates, this process's cache).
    Raises what forecast() raises."""
    memo = _MEMO.get(key)
    if memo is not None and at - memo.computed_at < REFRESH:
        return replace(memo, computed_at=at)
    from ..forecast import forecast

    if len(_CACHE) > CACHE_LIMIT:
        _CACHE.clear()
    started = time.process_time()
    f = forecast(d, cache=_CACHE)
    _CPU[0] += time.process_time() - started
    COMPUTED[0] += 1
    breaks = tuple({"client": b.client, "name": b.name, **b.to_dict()} for b in f.breaks)
    row = ForecastRow(key, at, f.until, f.breaks[0].at if f.breaks else None, breaks)
    if len(_MEMO) >= MEMO_LIMIT:
        _MEMO.clear()
    _MEMO[key] = row
    return row


def attach(obs: Observation, diagnosis: Diagnosis | None, known: Known) -> Observation:
    """``obs`` with its target's forecast when one is needed (see :func:`needed`) and :func:`affordable` (or
    made by this process for the same chain already), else ``obs`` itself. A target that was not judged
    (unreachable) keeps its stored forecast; a forecast that fails or is over budget is skipped (the
    observation matters more), and tried again at the next check."""
    if diagnosis is None or obs.verdict == "unreachable" or not diagnosis.reports:
        return obs
    try:
        key = chain_key(diagnosis)
        if not needed(obs.target_id, key, known):
            return obs
        if key not in _MEMO and not affordable():
            return obs
        return replace(obs, forecast=compute(diagnosis, key, obs.at))
    except Exception:  # defensive: a chain the forecast cannot judge must not cost the observation
        return obs


# --- the database -------------------------------------------------------------------------------------------------


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def known(store: Store, at: datetime, target_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Target id → chain key of every stored forecast computed after ``at`` − :data:`REFRESH` (of
    ``target_ids`` only, when given): one query for the whole table, the age compared by the database (no time
    parsed here: 10,000 of them were most of this function's time on SQLite)."""
    f = t.forecasts
    query = sa.select(f.c.target_id, f.c.chain_key).where(f.c.computed_at > at - REFRESH)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    wanted = None if target_ids is None else set(target_ids)
    return {r.target_id: r.chain_key for r in rows if wanted is None or r.target_id in wanted}


def known_one(store: Store, target_id: int, at: datetime) -> dict[int, str]:
    """:func:`known` for one target (``watch serve``, which checks targets one at a time)."""
    f = t.forecasts
    query = sa.select(f.c.chain_key).where(f.c.target_id == target_id, f.c.computed_at > at - REFRESH)
    with store.engine.connect() as conn:
        key = conn.execute(query).scalar()
    return {} if key is None else {target_id: key}


def breaks_within(conn: Connection, target_ids: Sequence[int], until: datetime) -> dict[int, list[dict[str, Any]]]:
    """Target id → its stored breaks, for the targets whose first break is at or before ``until`` (the others
    have nothing to alert on): one query per :data:`CHUNK` targets, through the first_break index. Each break
    only with what :func:`break_conditions` reads (client, name, at, reason_id, reason, and the certificate's
    subject and role): a pass over 10,000 targets holds them all until its alerts are written."""
    f = t.forecasts
    out: dict[int, list[dict[str, Any]]] = {}
    for chunk in _chunks(sorted(set(target_ids))):
        query = sa.select(f.c.target_id, f.c.breaks).where(
            f.c.target_id.in_(chunk), f.c.first_break.is_not(None), f.c.first_break <= until
        )
        for r in conn.execute(query):
            out[r.target_id] = [
                {
                    **{k: b[k] for k in ("client", "name", "at", "reason_id", "reason")},
                    "certificate": {k: (b.get("certificate") or {}).get(k) for k in ("subject", "role")},
                }
                for b in r.breaks or ()
            ]
    return out


# --- alerts -------------------------------------------------------------------------------------------------------


def break_conditions(
    breaks: Sequence[Mapping[str, Any]], forecast_days: float, at: datetime, expires: datetime | None = None
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The ``break`` alert condition of a target, as (key, severity, summary, detail), or none: the first break
    still ahead of ``at`` and at most ``forecast_days`` days away, with every client that breaks at that instant
    (one alert, not one per client); critical within :data:`CRITICAL_DAYS`, else warning. None when that break is
    the chain's own expiry (at ``expires``, the earliest notAfter of the chain served, or the second after it:
    OpenSSL's clients break at notAfter, the others a second later): the ``expiring`` alert says that already.
    What remains is what expiry alerts miss — a cross-certificate or a root one client family relies on expiring,
    a root leaving a store, a path that changes. A break already past is not one (the client rejects now:
    ``clients``). The summary and detail name the instant, not the days left, so that an open alert is
    not rewritten at every pass while its break stays where it was."""
    horizon = timedelta(days=forecast_days)
    ahead = sorted(
        ((datetime.fromisoformat(b["at"]), b) for b in breaks if timedelta(0) < datetime.fromisoformat(b["at"]) - at),
        key=lambda pair: pair[0],
    )
    if not ahead:
        return []
    first = ahead[0][0]
    if first - at > horizon:
        return []
    if expires is not None and first <= expires + timedelta(seconds=1):
        return []
    group = [b for when, b in ahead if when <= first + timedelta(seconds=1)]  # OpenSSL a second before the rest
    lead = group[0]
    cert = lead.get("certificate") or {}
    names = ", ".join(dict.fromkeys(b["name"] for b in group))
    return [
        (
            "break",
            "critical" if first - at <= timedelta(days=CRITICAL_DAYS) else "warning",
            f"{names} will reject the chain from {first:%Y-%m-%d %H:%M:%S} UTC: {lead['reason']}",
            {
                "at": first.isoformat(),
                "clients": [b["client"] for b in group],
                "threshold_days": forecast_days,
                "reason_id": lead["reason_id"],
                "reason": lead["reason"],
                "certificate": cert.get("subject"),
                "role": cert.get("role"),
            },
        )
    ]


# --- `watch forecast` ---------------------------------------------------------------------------------------------


def fleet(
    store: Store,
    days: float,
    *,
    labels: Mapping[str, str] | None = None,
    clients: Sequence[str] = (),
    at: datetime,
) -> dict[str, Any]:
    """The body of a ``watch-forecast`` document: every stored break after ``at`` and within ``days`` days, of
    the targets carrying every label of ``labels`` and the client families of ``clients`` (empty: all), in date
    order (then target, then the forecast's client order). Reads only the database (no network)."""

    f, tg = t.forecasts, t.targets
    until = at + timedelta(days=days)
    query = (
        sa.select(tg.c.id, tg.c.spec, tg.c.labels, f.c.computed_at, f.c.breaks)
        .select_from(f.join(tg, tg.c.id == f.c.target_id))
        .where(f.c.first_break.is_not(None), f.c.first_break <= until)
    )
    count = sa.select(sa.func.count()).select_from(f)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        forecast_targets = conn.execute(count).scalar_one()
    want = dict(labels or {})
    out: list[tuple[datetime, str, int, dict[str, Any]]] = []
    for r in rows:
        if not all((r.labels or {}).get(k) == v for k, v in want.items()):
            continue
        for order, b in enumerate(r.breaks or ()):
            when = datetime.fromisoformat(b["at"])
            if not at < when <= until or (clients and b["client"] not in clients):
                continue
            brk = {k: v for k, v in b.items() if k not in ("client", "name")}
            entry = {
                "target_id": r.id,
                "target": r.spec,
                "labels": dict(r.labels or {}),
                "client": b["client"],
                "name": b["name"],
                "days_left": round((when - at).total_seconds() / 86400, 2),
                "computed_at": utc(r.computed_at).isoformat(),  # type: ignore[union-attr]
                "break": brk,
            }
            out.append((when, r.spec, order, entry))
    out.sort(key=lambda x: x[:3])
    return {
        "at": at.isoformat(),
        "until": until.isoformat(),
        "days": days,
        "forecast_targets": forecast_targets,
        "breaks": [e for *_, e in out],
    }
