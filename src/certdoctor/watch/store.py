"""The monitor's database: opening (and migrating) it, the inventory, writing observations, and the reads
behind ``status``, ``history``, ``events`` and ``prune``.

Any SQLAlchemy URL works; SQLite by default (:func:`default_url`), PostgreSQL through psycopg 3
(``postgresql+psycopg://user@host/db``, the ``postgres`` extra). Opening a store runs the Alembic migrations
shipped in ``certdoctor/watch/migrations`` up to the newest (no alembic.ini: the configuration is built here).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import CollectError, InputError
from ..pipeline import starttls_for
from ..scan.targets import BadLine, ScanTarget, lines_of, parse_line, read_targets
from . import forecast_rows, litebulk, pgbulk
from . import tables as t
from .clock import now, utc
from .events import Endpoint, Event, FirstBreak, Snapshot, derive

if TYPE_CHECKING:
    from .forecast_rows import ForecastRow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_EVERY = 3600  # seconds between checks of a target (`--every`)
DEFAULT_KEEP = 30 * 86400  # seconds of raw observations kept by prune (`--keep`)
URGENT = ("unreachable", "invalid")  # verdicts that put a target at the top of status
ADD_CHUNK = 500  # targets added per round of statements
# Rows per multi-row INSERT: a fixed page gives the same SQL text again and again, which psycopg converts once
# (a new text is parsed placeholder by placeholder: a third of a first pass's database time on PostgreSQL).
INSERT_PAGE = 32
KNOWN_CERTS = 100_000  # certificates remembered as stored (beyond that, forgotten: looked up again)


def default_url() -> str:
    """``$CERTDOCTOR_DB``, else SQLite at ``$XDG_DATA_HOME/certdoctor/watch.db`` (``~/.local/share`` when
    XDG_DATA_HOME is unset or not absolute, as the XDG Base Directory specification says)."""
    url = os.environ.get("CERTDOCTOR_DB")
    if url:
        return url
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return f"sqlite:///{root / 'certdoctor' / 'watch.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (status) do not wait for a pass's writes
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; a crash loses no committed row in WAL
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file, its directory is made and the pragmas above are set.

    Raises:
        InputError: a URL SQLAlchemy cannot parse, or a driver that is not installed (psycopg: the
            ``postgres`` extra).
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InputError(f"not a database URL: {url!r} ({exc})") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the watch database's folder {folder}: {exc.strerror or exc}") from None
    try:
        options: dict[str, Any] = {"insertmanyvalues_page_size": INSERT_PAGE}
        if parsed.get_backend_name() == "postgresql":
            options["paramstyle"] = "format"
        engine = sa.create_engine(parsed, **options)
    except ModuleNotFoundError as exc:
        extra = " (pip install 'certdoctor[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
        raise InputError(f"no driver for {parsed.drivername}: {exc}{extra}") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def head_revision() -> str:
    """The newest shipped migration's revision: migrations are named ``NNNN_*.py`` with revision ``"NNNN"``, in
    one line of history (a test checks this against Alembic's own view)."""
    names = (p.name for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return max(name[:4] for name in names)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema with the shipped Alembic migrations. At the newest already (every
    run but the first after an upgrade), one query and no Alembic import (a third of `watch status`'s time)."""
    try:
        with engine.connect() as conn:
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        if current == [head_revision()]:
            return
    except sa.exc.ProgrammingError:  # PostgreSQL: no such table yet (SQLite raises OperationalError)
        pass
    except sa.exc.OperationalError as exc:
        if "no such table" not in str(exc.orig):
            raise
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@dataclass(frozen=True)
class WatchedTarget:
    """One row of the inventory."""

    id: int
    spec: str  # as `certdoctor scan` reads it: "host:port,addr=…,sni=…,name=…"
    host: str
    port: int
    sni: str | None
    name: str
    addresses: tuple[str, ...]
    labels: Mapping[str, str]
    every_s: int
    next_due: datetime
    created: datetime
    enabled: bool
    last_observation_id: int | None = None

    def scan_target(self) -> ScanTarget:
        """The scan engine's target; its ``line`` is this target's id. The STARTTLS protocol has no column of its
        own: the spec says it (``smtp://…``, ``,starttls=…``, a well-known port), as it did when it was added."""
        return ScanTarget(
            self.id,
            self.spec,
            self.host,
            self.port,
            self.sni,
            self.name,
            self.addresses,
            starttls=self.starttls,
            labels=tuple(sorted((str(k), str(v)) for k, v in (self.labels or {}).items())),
        )

    @property
    def starttls(self) -> str | None:
        """The protocol upgraded to TLS first, as the spec says (None: TLS at once). Without a ``starttls=``
        option, the scheme or the port decides, as :func:`~certdoctor.scan.targets.parse_line` decides it (the
        whole line parsed again for each target was a tenth of a pass's own work besides the scan's)."""
        if "starttls" not in self.spec.lower():
            return starttls_for(self.spec.split(",", 1)[0].strip(), self.port)
        parsed = parse_line(1, self.spec)
        return parsed.starttls if isinstance(parsed, ScanTarget) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.spec,
            "labels": dict(self.labels),
            "every_s": self.every_s,
            "next_due": self.next_due.isoformat(),
            "enabled": self.enabled,
        }


def _target(row: Any) -> WatchedTarget:
    return WatchedTarget(
        row.id,
        row.spec,
        row.host,
        row.port,
        row.sni,
        row.name,
        _strings(row.addresses) if isinstance(row.addresses, str) else tuple(row.addresses or ()),
        dict(json_object(row.labels) if isinstance(row.labels, str) else row.labels or {}),
        row.every_s,
        utc(row.next_due),  # type: ignore[arg-type]
        utc(row.created),  # type: ignore[arg-type]
        bool(row.enabled),
        row.last_observation_id,
    )


@dataclass(frozen=True)
class CertRow:
    sha256: str
    der: bytes
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    spki_sha256: str


@dataclass(frozen=True)
class Observation:
    """One check of one target, ready to store (built by :func:`certdoctor.watch.runner.observation`)."""

    target_id: int
    at: datetime
    duration_ms: float
    verdict: str
    exit_code: int
    rejected_by: tuple[str, ...]
    leaf_sha256: str | None
    leaf_not_after: datetime | None
    chain_not_after: datetime | None  # the earliest notAfter of the chain a client builds (the best path)
    findings: tuple[tuple[str, str], ...]  # (id, severity), errors first
    clients: tuple[tuple[str, bool], ...]  # (client family, accepts)
    endpoints: tuple[Endpoint, ...]
    certificates: tuple[CertRow, ...]  # every certificate the endpoints presented (stored once)
    error: str | None  # why nothing was judged (unreachable), or the first error finding's detail
    first_error: str | None = None  # the first error finding's id
    # each finding in full for alerts (not stored): id, severity, title, detail, fix, rejected_by
    finding_details: tuple[Mapping[str, Any], ...] = ()
    # the target's break forecast when it was computed with this check (not a column: table ``forecasts``)
    forecast: ForecastRow | None = None


def parse_labels(pairs: Iterable[str]) -> dict[str, str]:
    """``["team=payments", "env=prod"]`` → a dict.

    Raises:
        InputError: an item without ``=`` or with an empty key.
    """
    labels: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise InputError(f"not a label: {pair!r} (key=value)")
        labels[key.strip()] = value.strip()
    return labels


def parse_spec(spec: str) -> ScanTarget:
    """One target as `certdoctor scan` reads a line.

    Raises:
        InputError: what scan would report as a bad input line.
    """
    parsed = parse_line(1, spec)
    if parsed is None:
        raise InputError(f"not a target: {spec!r}")
    if isinstance(parsed, BadLine):
        raise InputError(f"{spec}: {parsed.reason}")
    return parsed


class Store:
    """The monitor's database. ``Store(url)`` opens it (and migrates it); ``close()`` releases its connections."""

    def __init__(self, url: str | None = None) -> None:
        """Raises InputError for a URL that cannot be used, CollectError when the database does not answer."""
        self.url = url or default_url()
        self.engine = create_engine(self.url)
        try:
            migrate(self.engine)
        except sa.exc.OperationalError as exc:  # the server is down, refuses us, or the file cannot be opened
            self.engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            shown = sa.engine.make_url(self.url).render_as_string(hide_password=True)
            raise CollectError(f"cannot open the watch database {shown}: {reason}") from None
        self._insert_cert = _insert_ignoring_duplicates(self.engine.dialect.name)
        self._known_certs: set[str] = set()  # SHA-256s of certificates this store has committed (see prune)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- inventory ---------------------------------------------------------------------------------------

    def add(
        self,
        specs: Iterable[str | ScanTarget],
        labels: Mapping[str, str] | None = None,
        every: float = DEFAULT_EVERY,
    ) -> list[tuple[WatchedTarget, bool]]:
        """Add targets (spec text, or targets already parsed); one already present (the same spec) is not
        added again: its labels are updated (merged, the new values winning) and its interval set.

        Returns: (target, added) per spec, in order.
        Raises: InputError for a spec scan would not accept (nothing is added then).
        """
        parsed = [parse_spec(s) if isinstance(s, str) else s for s in specs]
        moment = now()
        table = t.targets
        added: set[str] = set()
        rows: dict[str, Any] = {}
        with self.engine.begin() as conn:
            for start in range(0, len(parsed), ADD_CHUNK):  # a few statements per chunk, not three per target
                chunk = list({p.text: p for p in parsed[start : start + ADD_CHUNK]}.values())
                existing = {
                    r.spec: r for r in conn.execute(sa.select(table).where(table.c.spec.in_([p.text for p in chunk])))
                }
                new = [
                    {
                        "spec": p.text,
                        "host": p.host,
                        "port": p.port,
                        "sni": p.sni,
                        "name": p.name,
                        "addresses": list(p.addresses),
                        "labels": dict(labels or {}),
                        "every_s": int(every),
                        "next_due": moment,
                        "created": moment,
                        "enabled": True,
                    }
                    for p in chunk
                    if p.text not in existing and p.text not in rows
                ]
                if new:
                    conn.execute(sa.insert(table), new)
                    added.update(n["spec"] for n in new)
                updates = [
                    {"tid": r.id, "new_labels": {**(r.labels or {}), **(labels or {})}, "new_every": int(every)}
                    for r in existing.values()
                ]
                if updates:
                    conn.execute(
                        sa.update(table)
                        .where(table.c.id == sa.bindparam("tid"))
                        .values(labels=sa.bindparam("new_labels"), every_s=sa.bindparam("new_every")),
                        updates,
                    )
                wanted = [p.text for p in chunk]
                rows.update({r.spec: r for r in conn.execute(sa.select(table).where(table.c.spec.in_(wanted)))})
        out: list[tuple[WatchedTarget, bool]] = []
        for p in parsed:
            first = p.text in added
            added.discard(p.text)  # the same spec again in this call: already there by then
            out.append((_target(rows[p.text]), first))
        return out

    def import_file(
        self, path: str | Path, labels: Mapping[str, str] | None = None, every: float = DEFAULT_EVERY
    ) -> tuple[list[tuple[WatchedTarget, bool]], list[BadLine]]:
        """Add every target of a file in `certdoctor scan`'s input format (lines or CSV); idempotent.

        Returns: (target, added) per target line, and the bad lines (skipped, as scan skips them).
        Raises: InputError when the file cannot be read.
        """
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                items = list(read_targets(lines_of(fh)))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        good = [i for i in items if isinstance(i, ScanTarget)]
        bad = [i for i in items if isinstance(i, BadLine)]
        return self.add(good, labels, every), bad

    def resolve(self, conn: Connection, ref: str | int) -> WatchedTarget | None:
        """A target by id (an integer, or digits) or by its spec."""
        table = t.targets
        if isinstance(ref, int) or ref.isdigit():
            row = conn.execute(sa.select(table).where(table.c.id == int(ref))).first()
            if row is not None:
                return _target(row)
            if isinstance(ref, int):
                return None
        row = conn.execute(sa.select(table).where(table.c.spec == ref.strip())).first()
        return None if row is None else _target(row)

    def target(self, ref: str | int) -> WatchedTarget | None:
        with self.engine.connect() as conn:
            return self.resolve(conn, ref)

    def remove(self, refs: Iterable[str | int]) -> tuple[list[WatchedTarget], list[str]]:
        """Remove targets (by id or spec) with their observations and events.

        Returns: the targets removed, and the references that named none.
        """
        removed: list[WatchedTarget] = []
        unknown: list[str] = []
        with self.engine.begin() as conn:
            for ref in refs:
                found = self.resolve(conn, ref)
                if found is None:
                    unknown.append(str(ref))
                    continue
                # explicit, so that PostgreSQL and SQLite without foreign_keys agree
                obs = sa.select(t.observations.c.id).where(t.observations.c.target_id == found.id)
                conn.execute(
                    sa.delete(t.observation_endpoints).where(t.observation_endpoints.c.observation_id.in_(obs))
                )
                conn.execute(sa.delete(t.events).where(t.events.c.target_id == found.id))
                for table in (
                    t.deployed_links,
                    t.forecasts,
                    t.renewal_runs,
                    t.renewal_hooks,
                    t.alerts,
                    t.alert_snoozes,
                ):
                    conn.execute(sa.delete(table).where(table.c.target_id == found.id))
                conn.execute(sa.delete(t.observations).where(t.observations.c.target_id == found.id))
                conn.execute(sa.delete(t.targets).where(t.targets.c.id == found.id))
                removed.append(found)
            _drop_unreferenced_certificates(conn)
            self._known_certs.clear()
        return removed, unknown

    def targets(self, labels: Mapping[str, str] | None = None) -> list[WatchedTarget]:
        """Every target (by id) whose labels include all of ``labels``."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*_TARGET_COLUMNS).order_by(t.targets.c.id)).all()
        found = [_target(r) for r in rows]
        want = dict(labels or {})
        return [x for x in found if all(x.labels.get(k) == v for k, v in want.items())]

    def due(self, at: datetime | None = None, *, everything: bool = False) -> list[WatchedTarget]:
        """The enabled targets whose ``next_due`` has come (all enabled ones with ``everything``), soonest first."""
        query = sa.select(*_TARGET_COLUMNS).where(t.targets.c.enabled.is_(True))
        if not everything:
            query = query.where(t.targets.c.next_due <= (at or now()))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.targets.c.next_due, t.targets.c.id)).all()
        return [_target(r) for r in rows]

    # --- observations --------------------------------------------------------------------------------------

    def record(self, obs: Observation, *, next_due: datetime | None = None) -> list[Event]:
        """Store one observation, its endpoints and certificates, and the events it makes (compared with the
        target's previous observations), in one transaction; set the target's next check.

        Returns: the events, (kind, detail) each.
        """
        return self.record_many([(obs, next_due)])[0]

    def record_many(self, items: Sequence[tuple[Observation, datetime | None]]) -> list[list[Event]]:
        """Store observations (each with the target's next check, or None to leave it) in one transaction, as
        :meth:`record` does one: the previous observations of the batch's targets are read in a few queries and
        every table is written with one multi-row statement (a statement per observation was most of a pass's
        database time at 10,000 targets). A target twice in ``items`` is compared with its own earlier item.

        Returns: the events of each item, in order.
        """
        out: list[list[Event]] = []
        start = 0
        while start < len(items):  # chunks in which no target appears twice
            seen: set[int] = set()
            stop = start
            while stop < len(items) and items[stop][0].target_id not in seen:
                seen.add(items[stop][0].target_id)
                stop += 1
            out.extend(self._record_chunk(items[start:stop]))
            start = stop
        return out

    def _record_chunk(self, items: Sequence[tuple[Observation, datetime | None]]) -> list[list[Event]]:
        o, e = t.observations, t.observation_endpoints
        written: set[str] = set()
        with self.engine.begin() as conn:
            previous = self._previous_many(conn, [obs.target_id for obs, _ in items])
            forecasts = {obs.target_id: obs.forecast for obs, _ in items if obs.forecast is not None}
            stored_breaks = forecast_rows.stored_first_breaks(conn, list(forecasts)) if forecasts else {}
            all_events: list[list[Event]] = []
            certs: dict[str, CertRow] = {}
            for obs, _ in items:
                mine = {c.sha256: c for c in obs.certificates}
                certs.update(mine)
                leaf = mine.get(obs.leaf_sha256 or "")
                snapshot = Snapshot(
                    obs.verdict,
                    obs.leaf_sha256,
                    leaf.issuer if leaf else None,
                    leaf.spki_sha256 if leaf else None,
                    obs.leaf_not_after,
                    obs.findings,
                    obs.clients,
                    obs.endpoints,
                    obs.error,
                    first_break=forecast_rows.first_break_of(obs.forecast),
                )
                before, reachable = previous.get(obs.target_id, (None, None))
                if reachable is not None and obs.target_id in stored_breaks:
                    reachable = replace(reachable, first_break=FirstBreak(stored_breaks[obs.target_id]))
                all_events.append(derive(before, reachable, snapshot))
            unknown = [sha for sha in certs if sha not in self._known_certs]
            if unknown:
                stored = set(
                    conn.execute(
                        sa.select(t.certificates.c.sha256).where(t.certificates.c.sha256.in_(unknown))
                    ).scalars()
                )
                missing = [certs[sha].__dict__ for sha in unknown if sha not in stored]
                if missing:  # ON CONFLICT DO NOTHING: another process may store the same one meanwhile
                    conn.execute(self._insert_cert, missing)
                written.update(unknown)
            rows = [
                {
                    "target_id": obs.target_id,
                    "at": obs.at,
                    "duration_ms": obs.duration_ms,
                    "verdict": obs.verdict,
                    "exit_code": obs.exit_code,
                    "rejected_by": list(obs.rejected_by),
                    "leaf_sha256": obs.leaf_sha256,
                    "leaf_not_after": obs.leaf_not_after,
                    "chain_not_after": obs.chain_not_after,
                    "findings": [list(f) for f in obs.findings],
                    "clients": [list(c) for c in obs.clients],
                    "error": obs.error,
                }
                for obs, _ in items
            ]
            postgres = conn.dialect.name == "postgresql"
            if postgres:  # ids from the sequence, then one statement of arrays per table (see pgbulk)
                ids = pgbulk.next_ids(conn, o, len(rows))
                pgbulk.insert(conn, o, [{"id": i, **r} for i, r in zip(ids, rows, strict=True)])
            else:  # plain tuples in one executemany per table (see litebulk)
                ids = litebulk.insert(conn, o, rows, ids=True)
            endpoints = [
                {"observation_id": obs_id, "address": p.address, "ok": p.ok, "error": p.error, "chain": list(p.chain)}
                for obs_id, (obs, _) in zip(ids, items, strict=True)
                for p in obs.endpoints
            ]
            if endpoints and postgres:
                pgbulk.insert(conn, e, endpoints)
            elif endpoints:
                litebulk.insert(conn, e, endpoints)
            events = [
                {"target_id": obs.target_id, "observation_id": obs_id, "at": obs.at, "kind": k, "detail": d}
                for obs_id, (obs, _), made in zip(ids, items, all_events, strict=True)
                for k, d in made
            ]
            if events and postgres:
                pgbulk.insert(conn, t.events, events)
            elif events:
                litebulk.insert(conn, t.events, events)
            pointers = [
                {"tid": obs.target_id, "oid": obs_id, "due": due}
                for obs_id, (obs, due) in zip(ids, items, strict=True)
                if due is not None
            ]
            forecast_rows.upsert(conn, forecasts)
            if pointers:
                changed = [{"id": p["tid"], "last_observation_id": p["oid"], "next_due": p["due"]} for p in pointers]
                if postgres:  # one UPDATE … FROM unnest(…) for the batch
                    pgbulk.update(conn, t.targets, "id", changed)
                else:  # SQLite: a statement per row costs microseconds (no round trip)
                    litebulk.update(conn, t.targets, "id", changed)
            unscheduled = [
                {"tid": obs.target_id, "oid": obs_id}
                for obs_id, (obs, due) in zip(ids, items, strict=True)
                if due is None
            ]
            if unscheduled:
                conn.execute(
                    sa.update(t.targets)
                    .where(t.targets.c.id == sa.bindparam("tid"))
                    .values(last_observation_id=sa.bindparam("oid")),
                    unscheduled,
                )
        self._known_certs.update(written)  # committed
        if len(self._known_certs) > KNOWN_CERTS:
            self._known_certs.clear()
        return all_events

    def _previous_many(
        self, conn: Connection, target_ids: Sequence[int]
    ) -> dict[int, tuple[Snapshot | None, Snapshot | None]]:
        """Per target: its latest observation and its latest reachable one, as snapshots (targets never checked
        are absent). The latest ones are read in three queries for the whole batch, through each target's
        ``last_observation_id``; the latest reachable one only for the targets whose latest was unreachable."""
        o, e = t.observations, t.observation_endpoints
        latest = conn.execute(
            sa.select(*_SNAPSHOT_COLUMNS)
            .join(t.targets, t.targets.c.last_observation_id == o.c.id)
            .where(t.targets.c.id.in_(list(target_ids)))
        ).all()
        if not latest:
            return {}
        ends: dict[int, list[Endpoint]] = {}
        query = sa.select(e.c.observation_id, e.c.address, e.c.ok, e.c.error, json_text(e.c.chain))
        for oid, address, ok, error, chain in conn.execute(
            query.where(e.c.observation_id.in_([r.id for r in latest])).order_by(e.c.id)
        ):
            ends.setdefault(oid, []).append(Endpoint(address, bool(ok), error, _strings(chain)))
        leaves = {r.leaf_sha256 for r in latest if r.leaf_sha256}
        issuers = {
            r.sha256: r
            for r in conn.execute(
                sa.select(t.certificates.c.sha256, t.certificates.c.issuer, t.certificates.c.spki_sha256).where(
                    t.certificates.c.sha256.in_(list(leaves))
                )
            )
        }
        out: dict[int, tuple[Snapshot | None, Snapshot | None]] = {}
        for row in latest:
            leaf = issuers.get(row.leaf_sha256 or "")
            snap = Snapshot(
                row.verdict,
                row.leaf_sha256,
                leaf.issuer if leaf else None,
                leaf.spki_sha256 if leaf else None,
                utc(row.leaf_not_after),
                _pairs(row.findings),
                _accepts(row.clients),
                tuple(ends.get(row.id, ())),
                row.error,
            )
            if snap.reachable:
                out[row.target_id] = (snap, snap)
                continue
            earlier = conn.execute(
                sa.select(o)
                .where(o.c.target_id == row.target_id, o.c.verdict != "unreachable")
                .order_by(o.c.at.desc(), o.c.id.desc())
                .limit(1)
            ).first()
            out[row.target_id] = (snap, None if earlier is None else self._snapshot(conn, earlier))
        return out

    def _snapshot(self, conn: Connection, row: Any) -> Snapshot:
        e = t.observation_endpoints
        endpoints = tuple(
            Endpoint(r.address, bool(r.ok), r.error, tuple(r.chain or ()))
            for r in conn.execute(sa.select(e).where(e.c.observation_id == row.id).order_by(e.c.id))
        )
        leaf = None
        if row.leaf_sha256:
            leaf = conn.execute(
                sa.select(t.certificates.c.issuer, t.certificates.c.spki_sha256).where(
                    t.certificates.c.sha256 == row.leaf_sha256
                )
            ).first()
        return _snapshot_of(row, endpoints, leaf)

    # --- reads ---------------------------------------------------------------------------------------------

    def status(self, at: datetime | None = None, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """One row per target, most urgent first: broken now (unreachable, then invalid), then by the earliest
        notAfter of the chain (soonest first), then targets never checked.

        Each row: ``id``, ``target``, ``labels``, ``verdict`` (None: never checked), ``rejected_by``,
        ``leaf_days_left``, ``chain_days_left`` (days from ``at``, negative when expired), ``leaf_not_after``,
        ``chain_not_after``, ``checked_at``, ``error`` (why unreachable), ``first_error`` (the first error finding's
        id), ``findings`` (ids).
        """
        moment = at or now()
        o = t.observations
        query = sa.select(  # no column status does not show: SQLite's times are text, parsed row by row
            t.targets.c.id,
            t.targets.c.spec,
            t.targets.c.labels,
            o.c.at.label("checked_at"),
            o.c.verdict,
            o.c.rejected_by,
            o.c.leaf_not_after,
            o.c.chain_not_after,
            o.c.findings,
            o.c.error,
        ).select_from(t.targets.outerjoin(o, o.c.id == t.targets.c.last_observation_id))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        want = dict(labels or {}).items()
        out = []
        iso: dict[Any, str | None] = {None: None}  # notAfter values repeat across a fleet (one CA, one renewal)
        for tid, spec, labels_, checked_at, verdict, rejected_by, leaf_na, chain_na, findings_, error in rows:
            labels_ = labels_ or {}
            if want and not all(labels_.get(k) == v for k, v in want):
                continue
            leaf_end, chain_end = utc(leaf_na), utc(chain_na)
            findings = findings_ or ()
            for end in (leaf_end, chain_end):
                if end not in iso:
                    iso[end] = end.isoformat()
            out.append(
                {
                    "id": tid,
                    "target": spec,
                    "labels": dict(labels_),
                    "verdict": verdict,
                    "rejected_by": list(rejected_by or ()),
                    "leaf_not_after": iso[leaf_end],
                    "chain_not_after": iso[chain_end],
                    "leaf_days_left": _days(leaf_end, moment),
                    "chain_days_left": _days(chain_end, moment),
                    "checked_at": _iso(utc(checked_at)),
                    "error": error if verdict == "unreachable" else None,
                    "first_error": next((f[0] for f in findings if f[1] == "error"), None),
                    "findings": [f[0] for f in findings],
                }
            )
        out.sort(key=_urgency)
        return out

    def history(
        self, ref: str | int, limit: int = 100
    ) -> tuple[WatchedTarget, list[dict[str, Any]], list[dict[str, Any]]]:
        """A target's latest ``limit`` observations and every event, newest first.

        Raises: InputError when ``ref`` names no target.
        """
        o = t.observations
        with self.engine.connect() as conn:
            target = self.resolve(conn, ref)
            if target is None:
                raise InputError(f"no such target in the watch list: {ref}")
            rows = conn.execute(
                sa.select(o).where(o.c.target_id == target.id).order_by(o.c.at.desc(), o.c.id.desc()).limit(limit)
            ).all()
            e = t.observation_endpoints
            ends: dict[int, list[dict[str, Any]]] = {}
            if rows:
                for r in conn.execute(
                    sa.select(e).where(e.c.observation_id.in_([x.id for x in rows])).order_by(e.c.id)
                ):
                    ends.setdefault(r.observation_id, []).append(
                        {"address": r.address, "ok": bool(r.ok), "error": r.error, "chain": list(r.chain or ())}
                    )
            observations = [_observation_dict(r, ends.get(r.id, [])) for r in rows]
            events = [_event_dict(r, target.spec) for r in self._events(conn, target_id=target.id)]
        return target, observations, events

    def events(self, since: datetime | None = None, *, after_id: int | None = None) -> list[dict[str, Any]]:
        """Events at or after ``since`` (and with an id above ``after_id``), oldest first (each with its target)."""
        with self.engine.connect() as conn:
            specs = {r.id: r.spec for r in conn.execute(sa.select(t.targets.c.id, t.targets.c.spec))}
            rows = self._events(conn, since=since, after_id=after_id, newest_first=False)
            return [_event_dict(r, specs.get(r.target_id)) for r in rows]

    def _events(
        self,
        conn: Connection,
        *,
        target_id: int | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        newest_first: bool = True,
    ) -> Iterator[Any]:
        ev = t.events
        query = sa.select(ev)
        if target_id is not None:
            query = query.where(ev.c.target_id == target_id)
        if since is not None:
            query = query.where(ev.c.at >= since)
        if after_id is not None:
            query = query.where(ev.c.id > after_id)
        order = (ev.c.at.desc(), ev.c.id.desc()) if newest_first else (ev.c.at, ev.c.id)
        yield from conn.execute(query.order_by(*order))

    # --- retention -----------------------------------------------------------------------------------------

    def prune(self, keep: float = DEFAULT_KEEP, at: datetime | None = None) -> dict[str, int]:
        """Delete observations older than ``keep`` seconds, except each target's latest; then the certificates
        no observation refers to any more. Events are never deleted.

        Returns: ``{"observations": n, "certificates": m}`` deleted.
        """
        cutoff = (at or now()) - timedelta(seconds=keep)
        o = t.observations
        latest = sa.select(t.targets.c.last_observation_id).where(t.targets.c.last_observation_id.is_not(None))
        old = sa.select(o.c.id).where(o.c.at < cutoff, o.c.id.not_in(latest))
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.observation_endpoints).where(t.observation_endpoints.c.observation_id.in_(old)))
            deleted = conn.execute(sa.delete(o).where(o.c.id.in_(old.scalar_subquery()))).rowcount
            certs = _drop_unreferenced_certificates(conn)
            self._known_certs.clear()
        return {"observations": deleted, "certificates": certs}

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        with self.engine.connect() as conn:
            return {
                table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in t.metadata.sorted_tables
            }


def json_text(column: Any) -> Any:
    """A JSON column read as its text (``CAST(… AS TEXT)``: SQLite keeps the text, PostgreSQL's ``json`` type too),
    for the readers below that decode each distinct text once."""
    return sa.cast(column, sa.Text).label(column.name)


# A batch's previous observations repeat the same few texts (a fleet's findings, client verdicts and chains are
# shared by the targets serving one chain): each distinct text is decoded once, into immutable tuples. Decoding
# every row's three JSON columns was a fifth of the writes' CPU time on a pass over a filled store.
DECODED = 1024  # distinct texts remembered per kind


@functools.lru_cache(maxsize=DECODED)
def _pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """``[["id", "severity"], …]`` (observations.findings) as tuples."""
    return tuple((x[0], x[1]) for x in json.loads(text)) if text else ()


@functools.lru_cache(maxsize=DECODED)
def _accepts(text: str | None) -> tuple[tuple[str, bool], ...]:
    """``[["client", true], …]`` (observations.clients) as tuples."""
    return tuple((x[0], bool(x[1])) for x in json.loads(text)) if text else ()


@functools.lru_cache(maxsize=DECODED)
def _strings(text: str | None) -> tuple[str, ...]:
    """``["sha256", …]`` (observation_endpoints.chain) as a tuple."""
    return tuple(json.loads(text)) if text else ()


@functools.lru_cache(maxsize=DECODED)
def json_object(text: str | None) -> Mapping[str, Any]:
    """A JSON object read as text (:func:`json_text`), decoded once per distinct text: the same text gives the
    same object, which the caller must not change (copy it to keep it)."""
    return json.loads(text) if text else {}


# the inventory's columns, its JSON ones as text (labels and addresses repeat across a fleet: see _object)
_TARGET_COLUMNS = tuple(json_text(c) if c.name in ("labels", "addresses") else c for c in t.targets.c)

# what a snapshot is made of (SQLite keeps times as text, each parsed on reading: no column not needed)
_SNAPSHOT_COLUMNS = (
    t.observations.c.id,
    t.observations.c.target_id,
    t.observations.c.verdict,
    t.observations.c.leaf_sha256,
    t.observations.c.leaf_not_after,
    json_text(t.observations.c.findings),
    json_text(t.observations.c.clients),
    t.observations.c.error,
)


def _snapshot_of(row: Any, endpoints: tuple[Endpoint, ...], leaf: Any) -> Snapshot:
    """A stored observation (``row``) as the events module compares it; ``leaf``: its leaf's issuer and
    spki_sha256 (a row, or None)."""
    return Snapshot(
        row.verdict,
        row.leaf_sha256,
        leaf.issuer if leaf else None,
        leaf.spki_sha256 if leaf else None,
        utc(row.leaf_not_after),
        tuple((f[0], f[1]) for f in row.findings or ()),
        tuple((c[0], bool(c[1])) for c in row.clients or ()),
        endpoints,
        row.error,
    )


def _insert_ignoring_duplicates(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for certificates (another process may store the same one meanwhile)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return sa.insert(t.certificates)
    return insert(t.certificates).on_conflict_do_nothing(index_elements=["sha256"])


def _drop_unreferenced_certificates(conn: Connection) -> int:
    """Delete certificates no observation or endpoint refers to: returns how many."""
    used = {r for r in conn.execute(sa.select(t.observations.c.leaf_sha256).distinct()).scalars() if r}
    for chain in conn.execute(sa.select(t.observation_endpoints.c.chain)).scalars():
        used.update(chain or ())
    stored = set(conn.execute(sa.select(t.certificates.c.sha256)).scalars())
    gone = sorted(stored - used)
    for start in range(0, len(gone), 500):
        conn.execute(sa.delete(t.certificates).where(t.certificates.c.sha256.in_(gone[start : start + 500])))
    return len(gone)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _days(end: datetime | None, at: datetime) -> float | None:
    return None if end is None else round((end - at).total_seconds() / 86400, 1)


def _urgency(row: Mapping[str, Any]) -> tuple[int, float, str]:
    verdict = row["verdict"]
    rank = {"unreachable": 0, "invalid": 1}.get(verdict, 2 if verdict is not None else 3)
    days = row["chain_days_left"] if row["chain_days_left"] is not None else row["leaf_days_left"]
    return (rank, days if days is not None else float("inf"), row["target"])


def _observation_dict(r: Any, endpoints: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": _iso(utc(r.at)),
        "duration_ms": r.duration_ms,
        "verdict": r.verdict,
        "exit_code": r.exit_code,
        "rejected_by": list(r.rejected_by or ()),
        "leaf_sha256": r.leaf_sha256,
        "leaf_not_after": _iso(utc(r.leaf_not_after)),
        "chain_not_after": _iso(utc(r.chain_not_after)),
        "findings": [{"id": f[0], "severity": f[1]} for f in r.findings or ()],
        "clients": [{"client": c[0], "accepts": bool(c[1])} for c in r.clients or ()],
        "error": r.error,
        "endpoints": list(endpoints),
    }


def _event_dict(r: Any, spec: str | None) -> dict[str, Any]:
    return {
        "id": r.id,
        "target_id": r.target_id,
        "target": spec,
        "at": _iso(utc(r.at)),
        "kind": r.kind,
        "detail": dict(r.detail or {}),
    }
