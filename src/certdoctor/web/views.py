"""What the pages show, read from the store: a target's stored facts (chain per address with each certificate's
fields and PEM, latest findings and client verdicts, events, deployed files, forecast), the alerts with the
channels they are routed to, and the forecast calendar grouped by week. Plain data for the templates; every
function reads the database (run them off the event loop)."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import certinfo
from ..watch import alerts as watch_alerts
from ..watch import channels as watch_channels
from ..watch import tables as t
from ..watch.clock import now, utc
from ..watch.deployed import files as deployed_files
from ..watch.store import Store

CERTS_CACHED = 2048  # parsed certificates kept (by SHA-256)
HISTORY_OBSERVATIONS = 20
EVENTS_SHOWN = 200
DRIFT_FINDINGS = ("not-reloaded", "served-not-deployed", "partially-reloaded")

_CERTS: OrderedDict[str, dict[str, Any]] = OrderedDict()


@functools.cache
def titles() -> dict[str, str]:
    """Finding id → its title in the rule book (:func:`certdoctor.rules.rules`)."""
    from ..rules import rules

    return {r["id"]: r["title"] for r in rules()}


def describe_certificate(sha256: str, der: bytes, at: datetime) -> dict[str, Any]:
    """A certificate's fields as the target page shows them: subject, issuer, serial (hex), validity, days left,
    key, signature algorithm, SANs, SHA-256 and PEM. A DER cryptography cannot parse gives ``error`` and the
    SHA-256 only. Cached per SHA-256 (days left recomputed)."""
    hit = _CERTS.get(sha256)
    if hit is None:
        try:
            cert = x509.load_der_x509_certificate(der)
            hit = {
                "sha256": sha256,
                "subject": certinfo.subject(cert),
                "issuer": certinfo.issuer(cert),
                "serial": format(cert.serial_number, "x"),
                "not_before": certinfo.not_before(cert),
                "not_after": certinfo.not_after(cert),
                "key": certinfo.key_str(cert),
                "signature": certinfo.signature_algorithm(cert),
                "sans": [*certinfo.dns_names(cert), *certinfo.ip_addresses(cert)],
                "is_ca": certinfo.is_ca(cert),
                "pem": cert.public_bytes(Encoding.PEM).decode("ascii"),
                "error": None,
            }
        except Exception as exc:  # a certificate the server sent that cryptography refuses
            hit = {"sha256": sha256, "error": f"{type(exc).__name__}: {exc}"[:300], "sans": [], "pem": None}
        _CERTS[sha256] = hit
        if len(_CERTS) > CERTS_CACHED:
            _CERTS.popitem(last=False)
    _CERTS.move_to_end(sha256)
    out = dict(hit)
    if out.get("not_after") is not None:
        out["days_left"] = round((out["not_after"] - at).total_seconds() / 86400, 1)
    return out


def _certificates(store: Store, shas: Sequence[str]) -> dict[str, bytes]:
    if not shas:
        return {}
    c = t.certificates
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(c.c.sha256, c.c.der).where(c.c.sha256.in_(list(set(shas))))).all()
    return {r.sha256: r.der for r in rows}


def _forecast(store: Store, target_id: int) -> dict[str, Any] | None:
    f = t.forecasts
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(f).where(f.c.target_id == target_id)).first()
    if row is None:
        return None
    return {
        "computed_at": utc(row.computed_at),
        "until": utc(row.until),
        "first_break": utc(row.first_break),
        "breaks": list(row.breaks or ()),
    }


def target_page(store: Store, target_id: int, at: datetime | None = None) -> dict[str, Any] | None:
    """Everything the target page shows from the store (None: no such target)."""
    moment = at or now()
    target = store.target(target_id)
    if target is None:
        return None
    _target, observations, events = store.history(target_id, limit=HISTORY_OBSERVATIONS)
    latest = observations[0] if observations else None
    chains: list[dict[str, Any]] = []
    if latest is not None:
        ders = _certificates(store, [sha for e in latest["endpoints"] for sha in e["chain"]])
        for e in latest["endpoints"]:
            certs = [
                describe_certificate(sha, ders[sha], moment)
                if sha in ders
                else {"sha256": sha, "error": "not stored", "sans": [], "pem": None}
                for sha in e["chain"]
            ]
            chains.append({"address": e["address"], "ok": e["ok"], "error": e["error"], "certificates": certs})
    names = titles()
    findings = [{**f, "title": names.get(f["id"], f["id"])} for f in (latest["findings"] if latest is not None else [])]
    files = deployed_files(store, target_ids=[target_id])
    served = latest["leaf_sha256"] if latest is not None else None
    deployed = [
        {
            **f.to_dict(),
            "matches": None if not f.leaf_sha256 or not served else f.leaf_sha256 == served,
        }
        for f in files
    ]
    drift = [f for f in findings if f["id"] in DRIFT_FINDINGS]
    return {
        "target": target,
        "latest": latest,
        "observations": observations,
        "chains": chains,
        "findings": findings,
        "clients": latest["clients"] if latest is not None else [],
        "events": events[:EVENTS_SHOWN],
        "events_total": len(events),
        "deployed": deployed,
        "drift": drift,
        "forecast": _forecast(store, target_id),
        "at": moment,
    }


def alert_state(row: Mapping[str, Any]) -> str:
    """open, acked (open and acknowledged) or resolved (a one-shot notice counts as resolved)."""
    if row["status"] == "open":
        return "acked" if row["acked"] else "open"
    return "resolved"


def alerts_page(store: Store, *, since_days: float = 7.0, events_shown: int = 100) -> dict[str, Any]:
    """Every alert (newest first) with its state and the channels it is routed to (by the target's labels), and
    the latest ``events_shown`` events of the last ``since_days`` days (newest first) with how many there were."""
    rows = watch_alerts.alerts(store, everything=True)
    chans = watch_channels.channels(store)
    since = now() - timedelta(days=since_days)
    tg, ev = t.targets, t.events
    wanted = sorted({r["target_id"] for r in rows})
    labels: dict[int, Mapping[str, str]] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for r in conn.execute(sa.select(tg.c.id, tg.c.labels).where(tg.c.id.in_(chunk))):
                labels[r.id] = dict(r.labels or {})
        recent = conn.execute(
            sa.select(ev.c.id, ev.c.target_id, ev.c.at, ev.c.kind, tg.c.spec)
            .select_from(ev.join(tg, tg.c.id == ev.c.target_id))
            .where(ev.c.at >= since)
            .order_by(ev.c.at.desc(), ev.c.id.desc())
            .limit(events_shown)
        ).all()
        total = conn.execute(sa.select(sa.func.count()).select_from(ev).where(ev.c.at >= since)).scalar_one()
    out = []
    for r in rows:
        mine = labels.get(r["target_id"], {})
        routed = [c.to_dict() for c in watch_channels.routes(chans, mine)]
        out.append({**r, "state": alert_state(r), "channels": routed, "labels": mine})
    events = [
        {"id": e.id, "target_id": e.target_id, "target": e.spec, "at": utc(e.at).isoformat(), "kind": e.kind}  # type: ignore[union-attr]
        for e in recent
    ]
    return {
        "alerts": out,
        "channels": [c.to_dict() for c in chans],
        "events": events,
        "events_total": total,
        "since_days": since_days,
    }


def target_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.targets)).scalar_one())


def due_now(store: Store) -> int:
    """How many enabled targets are due (their next check has come)."""
    tg = t.targets
    query = sa.select(sa.func.count()).select_from(tg).where(tg.c.enabled.is_(True), tg.c.next_due <= now())
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def week_of(day: date) -> date:
    """The Monday starting ``day``'s week (ISO 8601 weeks)."""
    return day - timedelta(days=day.weekday())


def by_week(entries: Sequence[Mapping[str, Any]], group: str | None = None) -> list[dict[str, Any]]:
    """Calendar entries (:func:`certdoctor.watch.fleet.calendar`) grouped by week (Monday), in date order; within a
    week, by the value of label ``group`` when given (``(none)`` for targets without it)."""
    weeks: dict[date, dict[str, list[Mapping[str, Any]]]] = {}
    for e in entries:
        day = date.fromisoformat(e["date"])
        key = "" if not group else str((e.get("labels") or {}).get(group, "(none)"))
        weeks.setdefault(week_of(day), {}).setdefault(key, []).append(e)
    return [
        {
            "week": week,
            "count": sum(len(v) for v in groups.values()),
            "groups": [{"value": k, "entries": groups[k]} for k in sorted(groups)],
        }
        for week, groups in sorted(weeks.items())
    ]


CHART_WEEKS = 60  # weeks a chart shows one bar each, empty ones included; beyond, only the weeks with entries


def week_counts(weeks: Sequence[Mapping[str, Any]], at: datetime, days: float) -> list[tuple[str, int]]:
    """The bars of the forecast chart: (Monday as MM-DD, entries) for every week from ``at``'s to the end of the
    window (empty weeks as 0), or only :func:`by_week`'s weeks when the window is longer than
    :data:`CHART_WEEKS` weeks."""
    counts = {w["week"]: w["count"] for w in weeks}
    first, last = week_of(at.date()), week_of((at + timedelta(days=days)).date())
    if (last - first).days // 7 + 1 > CHART_WEEKS:
        return [(w.strftime("%m-%d"), n) for w, n in sorted(counts.items())]
    out = []
    day = first
    while day <= last:
        out.append((day.strftime("%m-%d"), counts.get(day, 0)))
        day += timedelta(days=7)
    return out
