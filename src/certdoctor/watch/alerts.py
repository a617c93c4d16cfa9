"""Alerts: raised from a pass's observations, events and thresholds, not on every check.

Conditions of a target (``condition`` keys), computed from its newest observation:

- ``expiring`` (warning): the earliest notAfter of the leaf and of the chain a client builds is in the future
  and nearer than ``min(expiry_days, expiry_percent % of the leaf's lifetime)`` — 30 days / 33 % by default, so
  a 90-day certificate alerts at ~30 days, a one-year one at 30 days and a 24-hour one at ~8 hours. An expired
  certificate is the ``finding:expired`` error instead.
- ``finding:<id>`` (critical): every error finding, with certdoctor's title, detail, fix and ``rejected_by``
  (the client families that refuse the chain because of it). Damped findings (:data:`DAMPED_FINDINGS`:
  revocation could not be checked) count only once present in ``after`` consecutive observations, of any
  severity.
- ``clients`` (critical): the client families whose predicted verdict is a rejection (one alert per target,
  ``detail.clients``, and per client the finding ids behind it); while it is open, a client that starts
  rejecting too is the one-shot notice ``client-started-rejecting``.
- ``unreachable`` (critical): no address presented a certificate in ``after`` consecutive observations
  (default 3), so that one failed connection does not page anyone.
- ``certificate-changed`` (info): a one-shot notice per ``certificate-rotated`` event.
- ``break`` (warning; critical within 7 days): the target's stored break forecast says clients will reject the
  chain served now within ``forecast_days`` (30 by default) for another reason than the chain's own expiry
  (which ``expiring`` covers): a cross-certificate or root expiring, a root leaving a store; one alert naming
  every client that breaks then; resolved when the break moves out — see
  :func:`certdoctor.watch.forecasting.break_conditions`.
- ``renewal-failed``, ``renewal-not-served`` (critical): from the renewal hooks' runs (see
  :func:`certdoctor.watch.renewal.conditions`).

An unreachable observation leaves the other conditions as they were (nothing is resolved by an outage).

State (tables ``alerts``, ``alert_snoozes``): at most one ``open`` alert per (target, condition). A condition
that appears opens one and notifies (``firing``); while it lasts, it is notified again every ``renotify``
(default 24 h; ``repeat``) unless acknowledged; when it clears, the alert is ``resolved`` and, if it was ever
notified, a ``resolved`` message goes out. A snoozed target (or condition) sends nothing until the snooze ends;
an alert opened meanwhile is notified then. Messages are grouped per target: one message per target and pass.

Every function takes ``at`` (the clock) so that tests can move time forward without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..errors import InputError
from . import forecasting, litebulk, pgbulk
from . import tables as t
from .condition import Condition
from .events import Event
from .store import Observation, Store, WatchedTarget, json_object, json_text, now, utc

DEFAULT_EXPIRY_DAYS = 30.0
DEFAULT_EXPIRY_PERCENT = 33.0
DEFAULT_RENOTIFY = 86400  # seconds
DEFAULT_AFTER = 3  # consecutive observations before unreachable / a damped finding alerts
DEFAULT_DRIFT_GRACE = 3600  # seconds a deployed file may differ from what is served before it alerts
# What is served differs from the deployed files (certdoctor.checks.deployed): after a renewal, the reload that
# follows takes a moment; these alert only once they have lasted the policy's drift grace.
DRIFT_FINDINGS = frozenset({"not-reloaded", "served-not-deployed", "partially-reloaded"})
# findings that a transient network failure produces (the OCSP responder or CRL server did not answer)
DAMPED_FINDINGS = frozenset({"revocation-unknown", "revocation-unreachable"})
SEVERITY = {"firing": 0, "repeat": 1, "notice": 2, "resolved": 3, "test": 4}


@dataclass(frozen=True)
class Policy:
    """Thresholds for a target: ``expiry_days``, ``expiry_percent`` (of the leaf's lifetime), ``renotify_s``
    (seconds between repeats), ``after`` (consecutive observations for damped conditions), ``drift_grace_s``
    (seconds a drift finding, :data:`DRIFT_FINDINGS`, lasts before it alerts), ``forecast_days`` (alert on a
    forecast break this many days ahead)."""

    expiry_days: float = DEFAULT_EXPIRY_DAYS
    expiry_percent: float = DEFAULT_EXPIRY_PERCENT
    renotify_s: int = DEFAULT_RENOTIFY
    after: int = DEFAULT_AFTER
    drift_grace_s: int = DEFAULT_DRIFT_GRACE
    forecast_days: float = forecasting.DEFAULT_FORECAST_DAYS

    def expiry_threshold(self, lifetime: timedelta | None) -> timedelta:
        days = timedelta(days=self.expiry_days)
        if lifetime is None or lifetime.total_seconds() <= 0:
            return days
        return min(days, lifetime * (self.expiry_percent / 100))


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True when every key=value of ``selector`` is among ``labels`` (an empty selector matches every target)."""
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass
class Message:
    """What one channel receives for one target: its alerts that changed or are due again in this pass."""

    target: dict[str, Any]  # id, target (spec), labels
    alerts: list[dict[str, Any]]  # id, condition, status, severity, summary, opened_at, resolved_at, detail
    observation: dict[str, Any] | None = None  # verdict, rejected_by, leaf_not_after, chain_not_after, checked_at
    test: bool = False

    def payload(self, at: datetime | None = None) -> dict[str, Any]:
        """The JSON document (schemas/watch-alert.schema.json) a webhook receives."""
        return {
            "certdoctor": 1,
            "kind": "watch-alert",
            "sent_at": (at or now()).isoformat(),
            "test": self.test,
            "target": self.target,
            "observation": self.observation,
            "alerts": self.alerts,
        }

    def title(self) -> str:
        counts: dict[str, int] = {}
        for a in self.alerts:
            counts[a["status"]] = counts.get(a["status"], 0) + 1
        status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda x: SEVERITY[x[0]]))
        first = self.alerts[0]["summary"] if self.alerts else ""
        return f"[certdoctor] {self.target['target']}: {first}" + (f" ({status})" if len(self.alerts) > 1 else "")

    def body(self) -> str:
        """Plain text: per alert its status, condition and summary, then the diagnosis (finding detail, the
        clients that reject, the fix)."""
        lines = [f"certdoctor watch — {self.target['target']}"]
        if self.target.get("labels"):
            lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(self.target["labels"].items())))
        if self.observation:
            o = self.observation
            lines.append(f"verdict: {o.get('verdict')}   checked: {o.get('checked_at')}")
            if o.get("rejected_by"):
                lines.append("rejected by: " + ", ".join(o["rejected_by"]))
        for a in self.alerts:
            lines += ["", f"{a['status'].upper()}  [{a['severity']}]  {a['condition']}: {a['summary']}"]
            d = a.get("detail") or {}
            finding = d.get("finding")
            if finding:
                lines.append(f"  finding: {finding['id']} — {finding['title']}")
                lines.append(f"  detail: {finding['detail']}")
                if finding.get("rejected_by"):
                    lines.append("  rejected by: " + ", ".join(finding["rejected_by"]))
                if finding.get("fix"):
                    lines.append(f"  fix: {finding['fix']}")
            for key in ("error", "consecutive", "not_after", "days_left", "threshold_days"):
                if key in d:
                    value = ", ".join(d[key]) if isinstance(d[key], list) else d[key]
                    lines.append(f"  {key.replace('_', ' ')}: {value}")
            if isinstance(d.get("because_of"), dict):  # clients: each family and the findings behind it
                lines += [f"  {client}: because of {', '.join(ids) or '?'}" for client, ids in d["because_of"].items()]
            if a["condition"].startswith("renewal-"):
                lines += _renewal_lines(d)
            if a["condition"] == "certificate-changed":
                lines.append(f"  {d.get('old_sha256')} → {d.get('new_sha256')}")
                lines.append(f"  issuer: {d.get('new_issuer')}   same key: {d.get('same_key')}")
            lines.append(
                f"  opened: {a['opened_at']}" + (f"   resolved: {a['resolved_at']}" if a["resolved_at"] else "")
            )
        return "\n".join(lines) + "\n"


def _renewal_lines(d: Mapping[str, Any]) -> list[str]:
    """The body lines of a renewal alert: the command, its exit code and output, the files and the fix."""
    lines = [f"  command: {d.get('command')}" + (f"   exit code: {d['exit_code']}" if "exit_code" in d else "")]
    if d.get("output_tail"):
        lines.append("  output (last lines):")
        lines += [f"    {x}" for x in str(d["output_tail"]).rstrip().splitlines()[-20:]]
    if "old_sha256" in d:
        lines.append(f"  still served: {d.get('old_sha256')}   deadline was: {d.get('deadline')}")
    for f in d.get("files") or ():
        kind = f.get("server_type") or "server type unknown"
        lines.append(f"  file: {f.get('path')} ({kind}) holds {f.get('leaf_sha256')}")
    if d.get("fix"):
        lines.append(f"  fix: {d['fix']}")
    return lines


# --- policies -----------------------------------------------------------------------------------------------------


def set_policy(
    store: Store,
    selector: Mapping[str, str],
    *,
    expiry_days: float | None = None,
    expiry_percent: float | None = None,
    renotify_s: int | None = None,
    after: int | None = None,
    drift_grace_s: int | None = None,
    forecast_days: float | None = None,
) -> None:
    """Thresholds for the targets whose labels include ``selector`` (replacing that selector's earlier ones);
    a None leaves the value to less specific policies and the defaults."""
    p = t.alert_policies
    with store.engine.begin() as conn:
        for row in conn.execute(sa.select(p)).all():
            if dict(row.selector or {}) == dict(selector):
                conn.execute(sa.delete(p).where(p.c.id == row.id))
        conn.execute(
            sa.insert(p).values(
                selector=dict(selector),
                expiry_days=expiry_days,
                expiry_percent=expiry_percent,
                renotify_s=renotify_s,
                after=after,
                drift_grace_s=drift_grace_s,
                forecast_days=forecast_days,
            )
        )


POLICY_KEYS = ("expiry_days", "expiry_percent", "renotify_s", "after", "drift_grace_s", "forecast_days")


def policies(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.alert_policies).order_by(t.alert_policies.c.id)).all()
    return [{**r._asdict(), "selector": dict(r.selector or {})} for r in rows]


def policy_for(labels: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> Policy:
    """The defaults, overridden by every matching policy, the more specific (more selector keys) winning."""
    values: dict[str, Any] = {}
    for row in sorted((r for r in rows if matches(r["selector"], labels)), key=lambda r: (len(r["selector"]), r["id"])):
        values.update({k: row[k] for k in POLICY_KEYS if row.get(k) is not None})
    return Policy(**values)


# --- conditions ---------------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def conditions(
    obs: Observation,
    events: Sequence[Event],
    policy: Policy,
    streaks: Mapping[str, int],
    at: datetime,
    since: Mapping[str, datetime] | None = None,
) -> tuple[list[Condition] | None, list[Condition]]:
    """(the target's conditions, or None when it was unreachable — only ``unreachable`` is judged then — and
    the one-shot notices). ``streaks``: consecutive observations (this one included) that were unreachable
    (``"unreachable"``) or had each damped finding id."""
    notices = [
        Condition(
            "certificate-changed",
            "info",
            f"certificate changed (issuer {d.get('new_issuer')}, {'same' if d.get('same_key') else 'new'} key)",
            dict(d),
        )
        for kind, d in events
        if kind == "certificate-rotated"
    ]
    if obs.verdict == "unreachable":
        return None, notices
    out: list[Condition] = []
    ends = [x for x in (obs.leaf_not_after, obs.chain_not_after) if x is not None]
    if ends:
        end = min(ends)
        leaf = next((c for c in obs.certificates if c.sha256 == obs.leaf_sha256), None)
        lifetime = (utc(leaf.not_after) - utc(leaf.not_before)) if leaf else None  # type: ignore[operator]
        threshold = policy.expiry_threshold(lifetime)
        left = end - at
        if timedelta(0) < left <= threshold:
            days = round(left.total_seconds() / 86400, 2)
            out.append(
                Condition(
                    "expiring",
                    "warning",
                    f"certificate expires in {days:g} days ({end.isoformat()})",
                    {
                        "not_after": end.isoformat(),
                        "days_left": days,
                        "threshold_days": round(threshold.total_seconds() / 86400, 2),
                        "lifetime_days": None if lifetime is None else round(lifetime.total_seconds() / 86400, 2),
                    },
                )
            )
    details = {f["id"]: f for f in obs.finding_details}
    for fid, severity in obs.findings:
        damped = fid in DAMPED_FINDINGS
        if severity != "error" and not damped:
            continue
        if damped and streaks.get(fid, 0) < policy.after:
            continue
        began = ((since or {}).get(fid) or (since or {}).get("")) if fid in DRIFT_FINDINGS else None
        if fid in DRIFT_FINDINGS and began is not None and (at - began).total_seconds() < policy.drift_grace_s:
            continue  # a reload may still follow the renewal
        f = dict(details.get(fid) or {"id": fid, "severity": severity, "title": fid, "detail": "", "fix": ""})
        f.setdefault("rejected_by", [])
        detail: dict[str, Any] = {"finding": f}
        if damped:
            detail["consecutive"] = streaks.get(fid, 0)
        if began is not None:
            detail["since"] = began.isoformat()
        out.append(Condition(f"finding:{fid}", "critical" if severity == "error" else "warning", f["title"], detail))
    rejecting = [client for client, accepts in obs.clients if not accepts]
    if rejecting:  # one alert for the clients that reject, not one per client (the message names each)
        because = {c: [f["id"] for f in obs.finding_details if c in (f.get("rejected_by") or ())] for c in rejecting}
        out.append(
            Condition(
                "clients",
                "critical",
                f"rejected by {', '.join(rejecting)} ({len(rejecting)} of {len(obs.clients)} client families)",
                {"clients": rejecting, "because_of": because},
            )
        )
    return out, notices


def _streaks(conn: sa.Connection, limits: Mapping[int, int]) -> dict[int, dict[str, int]]:
    """Per target (id → how many of its latest observations to look at): how many consecutive latest
    observations were unreachable, or had each damped finding. One query per 500 targets (a window function,
    which SQLite ≥ 3.25 and PostgreSQL have), not one per target."""
    o = t.observations
    rows: dict[int, list[Any]] = {}
    ids = sorted(limits)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rank = sa.func.row_number().over(partition_by=o.c.target_id, order_by=(o.c.at.desc(), o.c.id.desc()))
        inner = sa.select(o.c.target_id, o.c.verdict, o.c.findings, rank.label("rank")).where(o.c.target_id.in_(chunk))
        latest = inner.subquery()
        query = (
            sa.select(latest)
            .where(latest.c.rank <= max(limits[i] for i in chunk))
            .order_by(latest.c.target_id, latest.c.rank)
        )
        for r in conn.execute(query):
            if r.rank <= limits[r.target_id]:
                rows.setdefault(r.target_id, []).append(r)
    out: dict[int, dict[str, int]] = {}
    for target_id in ids:
        counts: dict[str, int] = {}
        for key in ["unreachable", *DAMPED_FINDINGS]:
            n = 0
            for r in rows.get(target_id, ()):
                has = r.verdict == "unreachable" if key == "unreachable" else key in {f[0] for f in r.findings or ()}
                if not has:
                    break
                n += 1
            counts[key] = n
        out[target_id] = counts
    return out


def _finding_since(conn: sa.Connection, target_ids: Iterable[int]) -> dict[int, dict[str, datetime]]:
    """Per target: since when each finding present now has been present — finding id → its latest
    ``finding-appeared`` event; ``""`` → the target's ``first-seen`` (for a finding present from the first check,
    which has no such event). One query per 500 targets."""
    e = t.events
    ids = sorted(target_ids)
    out: dict[int, dict[str, datetime]] = {}
    for start in range(0, len(ids), 500):
        query = (
            sa.select(e.c.target_id, e.c.kind, e.c.at, e.c.detail)
            .where(e.c.target_id.in_(ids[start : start + 500]), e.c.kind.in_(("finding-appeared", "first-seen")))
            .order_by(e.c.id)
        )
        for r in conn.execute(query):
            mine = out.setdefault(r.target_id, {})
            at = utc(r.at)
            if at is None:
                continue
            if r.kind == "first-seen":
                mine.setdefault("", at)
            elif isinstance(r.detail, dict) and r.detail.get("id"):
                mine[str(r.detail["id"])] = at
    return out


# --- state --------------------------------------------------------------------------------------------------------


def _alert_dict(row: Any, status: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "condition": row.condition,
        "status": status,
        "severity": row.severity,
        "summary": row.summary,
        "opened_at": _iso(utc(row.opened_at)),
        "resolved_at": _iso(utc(row.resolved_at)),
        "acked": row.acked_at is not None,
        "detail": dict(row.detail or {}),
    }


def _snoozed(conn: sa.Connection, at: datetime) -> dict[int, list[str | None]]:
    s = t.alert_snoozes
    out: dict[int, list[str | None]] = {}
    for r in conn.execute(sa.select(s).where(s.c.until > at)):
        out.setdefault(r.target_id, []).append(r.condition)
    return out


def _is_snoozed(snoozed: Mapping[int, list[str | None]], target_id: int, condition: str) -> bool:
    return any(c is None or c == condition for c in snoozed.get(target_id, ()))


def evaluate(
    store: Store,
    results: Iterable[tuple[WatchedTarget, Observation, Sequence[Event]]],
    at: datetime | None = None,
) -> list[Message]:
    """Update the alert state with a pass's results (target, observation, events) and return the messages to
    send: per target, its alerts newly firing, due again, resolved, and its notices. Alerts of targets not in
    ``results`` are re-notified too when due (a pass with nothing due still repeats what lasts)."""
    moment = at or now()
    a = t.alerts
    rows_policies = policies(store)
    out: dict[int, Message] = {}
    targets: dict[int, WatchedTarget] = {}

    def message(target: WatchedTarget) -> Message:
        if target.id not in out:
            out[target.id] = Message({"id": target.id, "target": target.spec, "labels": dict(target.labels)}, [])
        return out[target.id]

    with store.engine.begin() as conn:
        snoozed = _snoozed(conn, moment)
        # Every open alert in one query, and the new open alerts and detail updates written in one executemany
        # each after the loop (before the firing/repeat query below reads them): per-statement overhead was
        # most of this function's time on a 10,000-target pass.
        open_all: dict[int, dict[str, Any]] = {}
        # only the columns compared here: SQLite keeps times as text, parsed row by row (most of this query's time)
        # (the details as text, each distinct one decoded once: a fleet's alerts repeat the same few)
        columns = (a.c.id, a.c.target_id, a.c.condition, a.c.summary, json_text(a.c.detail), a.c.notified)
        for r in conn.execute(sa.select(*columns).where(a.c.state == "open")).all():
            open_all.setdefault(r.target_id, {})[r.condition] = r
        new_open: list[dict[str, Any]] = []
        resolved: dict[int, Message | None] = {}  # alert id → the message to tell (None: never notified)
        refreshed: list[dict[str, Any]] = []
        results = list(results)
        # consecutive observations matter only to damped conditions: read them only for those, all at once
        streaks_of = _streaks(
            conn,
            {
                target.id: max(policy_for(target.labels, rows_policies).after, 1)
                for target, obs, _ in results
                if obs.verdict == "unreachable" or any(fid in DAMPED_FINDINGS for fid, _ in obs.findings)
            },
        )
        drifting = {target.id for target, obs, _ in results if any(f in DRIFT_FINDINGS for f, _ in obs.findings)}
        since_of = _finding_since(conn, drifting)
        # renewal hooks' conditions (renewal-failed, renewal-not-served): one query for every target
        from .renewal import conditions as renewal_conditions

        renewal_of = renewal_conditions(
            conn, {target.id: None if obs.verdict == "unreachable" else obs.leaf_sha256 for target, obs, _ in results}
        )
        # the stored forecasts with a break within the longest forecast_days of any policy, in one query
        farthest = max([forecasting.DEFAULT_FORECAST_DAYS, *(r.get("forecast_days") or 0 for r in rows_policies)])
        breaks_of = forecasting.breaks_within(
            conn, [x.id for x, o, _ in results if o.verdict != "unreachable"], moment + timedelta(days=farthest)
        )
        for target, obs, events in results:
            targets[target.id] = target
            policy = policy_for(target.labels, rows_policies)
            streaks = streaks_of.get(target.id, {})
            current, notices = conditions(obs, events, policy, streaks, moment, since_of.get(target.id))
            if current is not None and target.id in breaks_of:
                ends = [x for x in (obs.leaf_not_after, obs.chain_not_after) if x is not None]
                found = forecasting.break_conditions(
                    breaks_of[target.id], policy.forecast_days, moment, min(ends) if ends else None
                )
                current += [Condition(*c) for c in found]
            renewal = renewal_of.get(target.id, [])
            msg = message(target)
            msg.observation = {
                "verdict": obs.verdict,
                "rejected_by": list(obs.rejected_by),
                "leaf_sha256": obs.leaf_sha256,
                "leaf_not_after": _iso(obs.leaf_not_after),
                "chain_not_after": _iso(obs.chain_not_after),
                "checked_at": _iso(obs.at),
                "error": obs.error,
            }
            open_rows = open_all.pop(target.id, {})  # popped: a target listed twice sees no stale rows
            if current is None:  # unreachable: judge only that
                current = [*_unreachable(obs, policy, streaks), *renewal]
                keep = {k for k in open_rows if k != "unreachable"}
            else:
                current = [*current, *renewal]
                keep = set()
            wanted = {c.key: c for c in current}
            started = [d.get("client") for k, d in events if k == "client-started-rejecting"]
            if started and "clients" in open_rows and "clients" in wanted:  # more clients reject than before
                notices = [
                    *notices,
                    Condition(
                        "client-started-rejecting",
                        "critical",
                        f"{', '.join(map(str, started))} started rejecting the chain",
                        {"clients": started},
                    ),
                ]
            for key, row in open_rows.items():
                if key in wanted or key in keep:
                    continue
                resolved[row.id] = msg if row.notified else None  # written together after the loop
            for key, cond in wanted.items():
                row = open_rows.get(key)
                if row is not None:
                    if row.summary != cond.summary or json_object(row.detail) != cond.detail:  # most stay as they were
                        refreshed.append({"alert_id": row.id, "new_detail": cond.detail, "new_summary": cond.summary})
                    continue
                new_open.append(
                    {
                        "target_id": target.id,
                        "condition": key,
                        "state": "open",
                        "severity": cond.severity,
                        "summary": cond.summary,
                        "detail": cond.detail,
                        "opened_at": moment,
                        "notified": 0,
                    }
                )
            for cond in notices:
                new_id = conn.execute(
                    sa.insert(a).values(
                        target_id=target.id,
                        condition=cond.key,
                        state="notice",
                        severity=cond.severity,
                        summary=cond.summary,
                        detail=cond.detail,
                        opened_at=moment,
                        resolved_at=moment,
                        notified=0,
                    )
                ).inserted_primary_key[0]
                if not _is_snoozed(snoozed, target.id, cond.key):
                    conn.execute(sa.update(a).where(a.c.id == new_id).values(notified=1, last_notified_at=moment))
                    msg.alerts.append(_alert_dict(conn.execute(sa.select(a).where(a.c.id == new_id)).one(), "notice"))
        ids = list(resolved)
        for start in range(0, len(ids), 500):  # one statement per 500, not one per alert (a renewal wave)
            chunk = ids[start : start + 500]
            conn.execute(sa.update(a).where(a.c.id.in_(chunk)).values(state="resolved", resolved_at=moment))
            told = [i for i in chunk if resolved[i] is not None]
            for fresh in conn.execute(sa.select(a).where(a.c.id.in_(told)).order_by(a.c.id)) if told else ():
                resolved[fresh.id].alerts.append(_alert_dict(fresh, "resolved"))  # type: ignore[union-attr]
        postgres = conn.dialect.name == "postgresql"
        # one statement of arrays on PostgreSQL (see pgbulk), one executemany of tuples on SQLite (see litebulk)
        bulk = pgbulk if postgres else litebulk
        if refreshed:
            changed = [{"id": r["alert_id"], "detail": r["new_detail"], "summary": r["new_summary"]} for r in refreshed]
            bulk.update(conn, a, "id", changed)
        if new_open:
            bulk.insert(conn, a, new_open)
        # firing (never notified) and repeats, across every target
        query = sa.select(t.targets.c.id, t.targets.c.spec, json_text(t.targets.c.labels))
        specs = {r.id: r for r in conn.execute(query)}
        # only those never sent, or sent longer ago than the shortest repeat interval of any policy
        shortest = min([DEFAULT_RENOTIFY, *(r["renotify_s"] for r in rows_policies if r["renotify_s"] is not None)])
        candidates = sa.select(a).where(
            a.c.state == "open",
            a.c.acked_at.is_(None),
            sa.or_(a.c.last_notified_at.is_(None), a.c.last_notified_at <= moment - timedelta(seconds=shortest)),
        )
        sent: list[dict[str, Any]] = []
        for row in conn.execute(candidates.order_by(a.c.id)).all():
            if row.acked_at is not None or _is_snoozed(snoozed, row.target_id, row.condition):
                continue
            spec = specs.get(row.target_id)
            if spec is None:
                continue
            labels = dict(json_object(spec.labels))
            if row.last_notified_at is None:
                status = "firing"
            elif moment - utc(row.last_notified_at) >= timedelta(  # type: ignore[operator]
                seconds=policy_for(labels, rows_policies).renotify_s
            ):
                status = "repeat"
            else:
                continue
            sent.append({"alert_id": row.id, "times": row.notified + 1})
            target = targets.get(row.target_id)
            msg = (
                message(target)
                if target is not None
                else out.setdefault(
                    row.target_id, Message({"id": row.target_id, "target": spec.spec, "labels": labels}, [])
                )
            )
            msg.alerts.append(_alert_dict(row, status))
        if sent:  # one statement for all (a round trip per alert was most of a first pass on PostgreSQL)
            bulk.update(
                conn, a, "id", [{"id": r["alert_id"], "notified": r["times"], "last_notified_at": moment} for r in sent]
            )
    messages = [m for m in out.values() if m.alerts]
    for m in messages:
        m.alerts.sort(key=lambda x: (SEVERITY[x["status"]], x["id"]))
    return messages


def _unreachable(obs: Observation, policy: Policy, streaks: Mapping[str, int]) -> list[Condition]:
    n = streaks.get("unreachable", 0)
    if n < policy.after:
        return []
    return [
        Condition(
            "unreachable",
            "critical",
            f"unreachable in {n} consecutive checks",
            {"error": obs.error or "", "consecutive": n},
        )
    ]


# --- acknowledge, snooze, list ------------------------------------------------------------------------------------


def _target_or_fail(store: Store, conn: sa.Connection, ref: str) -> WatchedTarget:
    target = store.resolve(conn, ref)
    if target is None:
        raise InputError(f"no such target in the watch list: {ref}")
    return target


def ack(store: Store, ref: str, condition: str | None = None, at: datetime | None = None) -> int:
    """Acknowledge a target's open alerts (or the one of ``condition``): no repeats; resolved is still sent.

    Returns: how many alerts were acknowledged. Raises: InputError for an unknown target.
    """
    a = t.alerts
    with store.engine.begin() as conn:
        target = _target_or_fail(store, conn, ref)
        query = sa.update(a).where(a.c.target_id == target.id, a.c.state == "open", a.c.acked_at.is_(None))
        if condition:
            query = query.where(a.c.condition == condition)
        return int(conn.execute(query.values(acked_at=at or now())).rowcount)


def ack_alert(store: Store, alert_id: int, at: datetime | None = None) -> bool:
    """Acknowledge one open alert by its id (the dashboard's button): no repeats; resolved is still sent.

    Returns: True when it was open and not acknowledged yet (False: unknown, resolved, a notice, or acked).
    """
    a = t.alerts
    with store.engine.begin() as conn:
        query = sa.update(a).where(a.c.id == alert_id, a.c.state == "open", a.c.acked_at.is_(None))
        return bool(conn.execute(query.values(acked_at=at or now())).rowcount)


def snooze(
    store: Store, ref: str, seconds: float, condition: str | None = None, at: datetime | None = None
) -> datetime:
    """Send nothing for a target (or one condition of it) for ``seconds``. Returns: until when.
    Raises: InputError for an unknown target."""
    until = (at or now()) + timedelta(seconds=seconds)
    with store.engine.begin() as conn:
        target = _target_or_fail(store, conn, ref)
        conn.execute(sa.insert(t.alert_snoozes).values(target_id=target.id, condition=condition, until=until))
    return until


def alerts(store: Store, *, everything: bool = False) -> list[dict[str, Any]]:
    """The open alerts (every alert with ``everything``), newest first, each with its target (``target``: spec,
    ``target_id``), ``notified`` (messages sent) and ``last_notified_at``."""
    a = t.alerts
    query = sa.select(a, t.targets.c.spec).select_from(a.join(t.targets, t.targets.c.id == a.c.target_id))
    if not everything:
        query = query.where(a.c.state == "open")
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(a.c.id.desc())).all()
    return [
        {
            **_alert_dict(r, r.state),
            "target": r.spec,
            "target_id": r.target_id,
            "notified": r.notified,
            "last_notified_at": _iso(utc(r.last_notified_at)),
        }
        for r in rows
    ]
