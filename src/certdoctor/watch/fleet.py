"""The fleet at a glance: one row per target, filtered, sorted and paged in memory — the data layer of the watch
dashboard (``certdoctor.web``) and of ``GET /api/fleet``.

:class:`FleetIndex` keeps every target's latest facts in memory (one index per process) and refreshes them
incrementally from the store: each refresh reads ``targets.(id, last_observation_id, labels, spec, host, port)``
(one query); only the targets whose latest observation, labels or spec changed, and the new ones, are read
again (their observation, the addresses its endpoints were probed on, their ``forecasts`` row); the leaf's
details (subject, SANs, issuer, key type) are parsed once per leaf SHA-256 from ``certificates.der``. A query
(:meth:`FleetIndex.query`) is then pure Python over the rows in memory.

Status of a row at a moment ``at`` (UTC), in this order:

- ``unchecked``: the target has no observation yet;
- ``unreachable``: its latest verdict is ``unreachable`` (nothing was judged);
- ``broken``: checked, and its verdict is not ``valid``, or a client family rejects the chain
  (``rejected_by``), or the chain has expired since (``days_left`` < 0: RFC 5280 §4.1.2.5, notAfter is the
  last valid instant);
- ``expiring``: otherwise, ``days_left`` ≤ ``soon_days``, or the stored break forecast's first break
  (:mod:`certdoctor.watch.forecasting`) is at most ``soon_days`` away;
- ``ok``: the rest.

``days_left``: days (86,400 s) from ``at`` to the earliest notAfter of the chain a client builds
(``chain_not_after``), the leaf's notAfter when that is unknown; negative once expired. Every time is UTC.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

import sqlalchemy as sa

from ..errors import InputError
from . import tables as t
from .clock import now, utc

if TYPE_CHECKING:
    from .store import Store

Status = Literal["broken", "expiring", "ok", "unreachable", "unchecked"]
STATUSES: tuple[str, ...] = get_args(Status)
STATUS_TEXT = {
    "broken": "broken",
    "expiring": "breaks soon",
    "ok": "ok",
    "unreachable": "unreachable",
    "unchecked": "never checked",
}
SORT_KEYS = (
    "urgency",
    "target",
    "status",
    "subject",
    "issuer",
    "key_type",
    "not_after",
    "days_left",
    "rejected_by",
    "checked_at",
)
# the order of ``status`` (and the first key of ``urgency``): broken now first, never checked last
STATUS_RANK = {"unreachable": 0, "broken": 1, "expiring": 2, "ok": 3, "unchecked": 4}
HISTOGRAM_BINS = ("expired", "<7", "7-30", "30-90", ">90", "unknown")  # days_left bins, in this order
HISTOGRAM_UPPER = (("expired", 0.0), ("<7", 7.0), ("7-30", 30.0), ("30-90", 90.0))  # bin: days_left below
MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
JSON_MEMO = 20_000  # distinct JSON texts remembered (then forgotten at once)
CHUNK = 2000  # ids per IN (...) list (SQLite allows 32,766 variables, PostgreSQL 65,535)
DAY_S = 86400.0
# OWASP "CSV Injection" / ASVS 1.2.10: a cell starting with one of these is a formula to Excel, LibreOffice
# Calc and Google Sheets; a leading ' makes it text (NUL: ASVS's list)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
# EC curves by the names of FIPS 186-4 / RFC 5480 (cryptography names them by SEC 2)
CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521", "secp224r1": "P-224"}


# --- rows -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    """One target as the fleet page shows it, at the moment the query was made for.

    ``addresses``: the addresses its latest observation probed (its endpoints), in order; ``subject``,
    ``issuer``: RFC 4514 strings of the leaf (the first certificate the first endpoint presented); ``sans``: its
    subjectAltName DNS names then IP addresses; ``key_type``: "RSA 2048", "EC P-256", "Ed25519"…; any of these
    None when the target was not judged or the certificate cannot be parsed. ``not_after``: the leaf's notAfter;
    ``chain_not_after``: the earliest notAfter of the chain a client builds; ``days_left``: see the module;
    ``rejected_by``: client families that reject; ``first_error``: the first error finding's id; ``findings``:
    every finding id of the latest observation; ``checked_at``: when; ``error``: why nothing was judged
    (unreachable only); ``first_break``: the stored forecast's first break (any client family); all times UTC.
    ``leaf_sha256``, ``clients`` (families that accept) and ``families`` (every family judged) are additions to
    the dashboard contract."""

    id: int
    target: str
    host: str
    port: int
    addresses: tuple[str, ...]
    labels: Mapping[str, str]
    status: Status
    verdict: str | None
    subject: str | None
    sans: tuple[str, ...]
    issuer: str | None
    key_type: str | None
    not_after: datetime | None
    chain_not_after: datetime | None
    days_left: float | None
    rejected_by: tuple[str, ...]
    first_error: str | None
    findings: tuple[str, ...]
    checked_at: datetime | None
    error: str | None
    first_break: datetime | None
    leaf_sha256: str | None = None
    clients: tuple[str, ...] = ()
    families: tuple[str, ...] = ()

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: times as ISO 8601 (UTC offset), tuples as lists, ``status_text`` added."""
        return {
            "id": self.id,
            "target": self.target,
            "host": self.host,
            "port": self.port,
            "addresses": list(self.addresses),
            "labels": dict(self.labels),
            "status": self.status,
            "status_text": STATUS_TEXT[self.status],
            "verdict": self.verdict,
            "subject": self.subject,
            "sans": list(self.sans),
            "issuer": self.issuer,
            "key_type": self.key_type,
            "not_after": _iso(self.not_after),
            "chain_not_after": _iso(self.chain_not_after),
            "days_left": None if self.days_left is None else round(self.days_left, 3),
            "rejected_by": list(self.rejected_by),
            "first_error": self.first_error,
            "findings": list(self.findings),
            "checked_at": _iso(self.checked_at),
            "error": self.error,
            "first_break": _iso(self.first_break),
            "leaf_sha256": self.leaf_sha256,
            "clients": list(self.clients),
            "families": list(self.families),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- queries ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetQuery:
    """What the fleet page asks for: filters (all must hold), one sort key, a page.

    ``status``: the statuses wanted (empty: every one); ``labels``: every key=value must be among the target's;
    ``issuer``: a case-insensitive substring of the leaf's issuer; ``key_type``: exact ("RSA 2048");
    ``client``: rows that this client family rejects; ``days_min``/``days_max``: an inclusive window of
    ``days_left`` (rows without one never match a window); ``text``: a case-insensitive substring of the
    target, subject, a SAN, the issuer, an address, a label key or value; ``sort``: one of :data:`SORT_KEYS`
    (rows without a value for it come last in either direction; ties by target); ``page`` from 1,
    ``per_page`` 1…500."""

    status: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)
    issuer: str | None = None
    key_type: str | None = None
    client: str | None = None
    days_min: float | None = None
    days_max: float | None = None
    text: str | None = None
    sort: str = "urgency"
    descending: bool = False
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def __post_init__(self) -> None:
        """Raises InputError for a status, sort key, page or per_page out of their ranges."""
        bad = sorted(set(self.status) - set(STATUSES))
        if bad:
            raise InputError(f"status: not one of {', '.join(STATUSES)}: {bad[0]!r}")
        if self.sort not in SORT_KEYS:
            raise InputError(f"sort: not one of {', '.join(SORT_KEYS)}: {self.sort!r}")
        if self.page < 1:
            raise InputError(f"page: must be at least 1: {self.page}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise InputError(f"per_page: must be 1..{MAX_PER_PAGE}: {self.per_page}")
        if self.days_min is not None and self.days_max is not None and self.days_min > self.days_max:
            raise InputError(f"days_min ({self.days_min:g}) is above days_max ({self.days_max:g})")
        object.__setattr__(self, "status", frozenset(self.status))
        object.__setattr__(self, "labels", dict(self.labels))

    @classmethod
    def from_params(cls, params: Mapping[str, str | Sequence[str]]) -> FleetQuery:
        """The query of a URL's parameters (a Starlette ``QueryParams``, or a mapping of a name to a string or a
        list of strings): ``status`` (repeatable), ``label=K=V`` (repeatable), ``issuer``, ``key_type``,
        ``client``, ``days_min``, ``days_max``, ``q``, ``sort``, ``order`` (asc|desc), ``page``,
        ``per_page``. Empty values are ignored (an HTML form sends every field). Unknown names are ignored.

        Raises:
            InputError: a value out of its range or of the wrong type (one line naming the parameter).
        """

        def values(name: str) -> list[str]:
            getlist = getattr(params, "getlist", None)
            if callable(getlist):
                raw = list(getlist(name))
            else:
                got = params.get(name)
                raw = [] if got is None else [got] if isinstance(got, str) else list(got)
            return [v.strip() for v in raw if isinstance(v, str) and v.strip()]

        def one(name: str) -> str | None:
            got = values(name)
            return got[-1] if got else None

        def number(name: str) -> float | None:
            text = one(name)
            if text is None:
                return None
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"{name}: not a number: {text!r}") from None
            if not math.isfinite(value):
                raise InputError(f"{name}: not a finite number: {text!r}")
            return value

        def integer(name: str, default: int) -> int:
            text = one(name)
            if text is None:
                return default
            if not text.isascii() or not text.isdigit():
                raise InputError(f"{name}: not a positive integer: {text!r}")
            return int(text)

        labels: dict[str, str] = {}
        for pair in values("label"):
            key, eq, value = pair.partition("=")
            if not eq or not key.strip():
                raise InputError(f"label: not key=value: {pair!r}")
            labels[key.strip()] = value.strip()
        order = (one("order") or "asc").lower()
        if order not in ("asc", "desc"):
            raise InputError(f"order: not asc or desc: {order!r}")
        return cls(
            status=frozenset(values("status")),
            labels=labels,
            issuer=one("issuer"),
            key_type=one("key_type"),
            client=one("client"),
            days_min=number("days_min"),
            days_max=number("days_max"),
            text=one("q"),
            sort=one("sort") or "urgency",
            descending=order == "desc",
            page=integer("page", 1),
            per_page=integer("per_page", DEFAULT_PER_PAGE),
        )

    def to_params(self, **changes: Any) -> list[tuple[str, str]]:
        """This query (with ``changes``: field names, e.g. ``sort="issuer", descending=True, page=2``) as URL
        parameters in the names :meth:`from_params` reads, the defaults left out, statuses in
        :data:`STATUSES` order and labels by key (the same query gives the same URL).

        Raises: InputError when ``changes`` make an invalid query; TypeError for an unknown field."""
        q = replace(self, **changes) if changes else self
        out: list[tuple[str, str]] = [("status", s) for s in STATUSES if s in q.status]
        out += [("label", f"{k}={v}") for k, v in sorted(q.labels.items())]
        for name, value in (("issuer", q.issuer), ("key_type", q.key_type), ("client", q.client)):
            if value:
                out.append((name, value))
        for name, number in (("days_min", q.days_min), ("days_max", q.days_max)):
            if number is not None:
                out.append((name, str(int(number)) if float(number).is_integer() else repr(float(number))))
        if q.text:
            out.append(("q", q.text))
        if q.sort != "urgency":
            out.append(("sort", q.sort))
        if q.descending:
            out.append(("order", "desc"))
        if q.page != 1:
            out.append(("page", str(q.page)))
        if q.per_page != DEFAULT_PER_PAGE:
            out.append(("per_page", str(q.per_page)))
        return out


@dataclass(frozen=True)
class FleetPage:
    """One page of matching rows. ``total``: rows matching (all pages); ``page``: the page shown (a page past
    the last is shown as the last); ``pages``: at least 1. ``summary``: the whole fleet, unfiltered — ``total``,
    one count per status, ``expires_7d``/``expires_30d`` (0 ≤ days_left ≤ 7 / 30). ``facets``: the values
    the filters can take over the whole fleet, sorted — ``issuers``, ``key_types``, ``labels`` ("k=v"),
    ``clients`` (every client family judged). ``refreshed_at``: when the index last read the store
    (an addition to the contract)."""

    rows: tuple[FleetRow, ...]
    total: int
    page: int
    per_page: int
    pages: int
    summary: Mapping[str, int]
    facets: Mapping[str, tuple[str, ...]]
    refreshed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The body of a ``watch-fleet`` document."""
        return {
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "summary": dict(self.summary),
            "facets": {k: list(v) for k, v in self.facets.items()},
            "refreshed_at": _iso(self.refreshed_at),
            "rows": [r.to_dict() for r in self.rows],
        }


# --- certificates -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertFacts:
    """What the fleet shows of a leaf certificate (None/empty: not parsable)."""

    subject: str | None
    issuer: str | None
    sans: tuple[str, ...]
    key_type: str | None


UNPARSABLE = CertFacts(None, None, (), None)


def cert_facts(der: bytes | None, subject: str | None = None, issuer: str | None = None) -> CertFacts:
    """The subject and issuer (RFC 4514, :func:`certdoctor.certinfo.subject`), the SANs (DNS names, then IP
    addresses) and the key type ("RSA 2048", "EC P-256", "Ed25519", "DSA 2048") of a DER certificate.
    ``subject``/``issuer``: as stored in ``certificates`` (made by that same function when it was stored),
    taken instead of rendering the names again (two thirds of the time per certificate). Never raises: a
    certificate cryptography cannot load gives :data:`UNPARSABLE`, a field it cannot read None (or empty)."""
    if not der:
        return UNPARSABLE
    from cryptography import x509

    from .. import certinfo

    try:
        cert = x509.load_der_x509_certificate(bytes(der))
    except Exception:
        return UNPARSABLE

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:  # malformed or duplicate extensions, names or keys cryptography refuses
            return None

    if subject is None:
        subject = attempt(lambda: certinfo.subject(cert))
    if issuer is None:
        issuer = attempt(lambda: certinfo.issuer(cert))
    sans: tuple[str, ...] = ()
    san = attempt(lambda: cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    if san is not None:
        dns = attempt(lambda: [str(n) for n in san.get_values_for_type(x509.DNSName)]) or []
        ips = attempt(lambda: [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]) or []
        sans = (*dns, *ips)
    return CertFacts(subject, issuer, sans, attempt(lambda: _key_type(cert)))


def _key_type(cert: Any) -> str | None:
    kind, bits = _key_description(cert)
    if kind == "unknown":
        return None
    if kind.startswith("EC "):
        curve = kind[3:]
        return f"EC {CURVE_NAMES.get(curve, curve)}"
    if kind in ("RSA", "DSA"):
        return f"{kind} {bits}"
    return kind


def _key_description(cert: Any) -> tuple[str, int]:
    from .. import certinfo

    return certinfo.key_description(cert)


# --- the index ----------------------------------------------------------------------------------------------------


class _Entry(NamedTuple):
    """A target's facts that do not depend on the moment (what a refresh builds); times also as POSIX seconds
    (``end_ts``: what days_left counts to; ``fixed``: the status when it does not depend on the moment)."""

    id: int
    target: str
    host: str
    port: int
    addresses: tuple[str, ...]
    labels: Mapping[str, str]
    labels_text: str
    verdict: str | None
    facts: CertFacts
    not_after: datetime | None
    chain_not_after: datetime | None
    end_ts: float | None
    na_ts: float | None
    rejected_by: tuple[str, ...]
    rejected_key: tuple[int, str] | None
    first_error: str | None
    findings: tuple[str, ...]
    checked_at: datetime | None
    checked_ts: float | None
    error: str | None
    first_break: datetime | None
    fb_ts: float | None
    leaf_sha256: str | None
    clients: tuple[str, ...]
    families: tuple[str, ...]
    fixed: str | None
    search: str
    subject_key: str | None
    issuer_key: str | None


def _search(target: str, facts: CertFacts, addresses: tuple[str, ...], labels: Mapping[str, str]) -> str:
    """What ``text`` searches: the target, subject, SANs, issuer, addresses, label keys and values (lowercase)."""
    parts = [target, facts.subject or "", *facts.sans, facts.issuer or "", *addresses]
    for k, v in labels.items():
        parts += [k, v]
    return "\n".join(parts).lower()


class _Observation(NamedTuple):
    """The columns of ``observations`` a row needs, the JSON ones parsed (tuples)."""

    id: int
    target_id: int
    at: datetime
    verdict: str
    rejected_by: tuple[str, ...]
    leaf_sha256: str | None
    leaf_not_after: datetime | None
    chain_not_after: datetime | None
    findings: tuple[tuple[str, str], ...]
    clients: tuple[tuple[str, bool], ...]
    error: str | None


@dataclass(frozen=True)
class _View:
    """The statuses and summary of a snapshot's entries for every moment in [t0, t1) (POSIX seconds): t1 is the
    first instant at or after t0 at which a status or a summary count may change (an expiry, an expiry less
    ``soon_days``, 7 or 30 days, a forecast break less ``soon_days``). ``orders``: the full orders by
    urgency and status (they depend on the statuses), by (sort, descending)."""

    t0: float
    t1: float
    statuses: list[str]
    summary: dict[str, int]
    orders: dict[tuple[str, bool], list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Snapshot:
    """What one refresh built, never changed after (but for its caches, which only memoize): the entries by
    target, by id, the facets; ``orders``: full orders by the sort keys that do not depend on the moment;
    ``view``: the latest :class:`_View` (a one-item list)."""

    entries: tuple[_Entry, ...]  # by target
    by_id: Mapping[int, _Entry]
    facets: Mapping[str, tuple[str, ...]]
    refreshed_at: datetime | None
    orders: dict[tuple[str, bool], list[int]] = field(default_factory=dict)
    view: list[_View] = field(default_factory=list)
    by_label: list[dict[tuple[str, str], frozenset[int]]] = field(default_factory=list)  # (key, value) → indexes

    def labelled(self, key: str, value: str) -> frozenset[int]:
        """Indexes of the entries whose label ``key`` is ``value`` (the inverted index made at first use)."""
        if not self.by_label:
            index: dict[tuple[str, str], set[int]] = {}
            for i, e in enumerate(self.entries):
                for pair in e.labels.items():
                    index.setdefault(pair, set()).add(i)
            self.by_label[:] = [{pair: frozenset(ids) for pair, ids in index.items()}]
        return self.by_label[0].get((key, value), frozenset())


_EMPTY = _Snapshot((), {}, {"issuers": (), "key_types": (), "labels": (), "clients": ()}, None)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class FleetIndex:
    """In-memory index of the fleet (one per process, thread-safe), refreshed incrementally from the store:
    reads targets.(id, last_observation_id, labels…) each refresh, re-reads only changed rows; certificate
    details (subject, SANs, issuer, key type) parsed once per leaf SHA-256 from certificates.der.

    ``soon_days``: the ``expiring`` threshold (days); ``max_age_s``: :meth:`query` and the other readers
    refresh first when the last refresh is older than this (seconds). A refresh runs under a lock (one at a
    time; a reader that finds one running waits for it); readers work on an immutable snapshot, so a query never
    sees half a refresh. When a refresh after the first fails (the database is down), the previous snapshot is
    kept, :attr:`last_error` says why, and the readers answer from it; the first refresh's error propagates."""

    def __init__(self, store: Store, *, soon_days: float = 30.0, max_age_s: float = 2.0) -> None:
        self.store = store
        self.soon_days = soon_days
        self.max_age_s = max_age_s
        self.last_error: str | None = None
        self.reads = 0  # targets whose observation was read (for tests and the bench)
        self._lock = threading.Lock()
        self._snap = _EMPTY
        self._refreshed = -math.inf  # time.monotonic() of the last refresh
        # target id → (last_observation_id read, labels as stored, spec): what the snapshot was built from
        self._seen: dict[int, tuple[int | None, str, str]] = {}
        self._certs: dict[str, CertFacts] = {}
        self._parsed: dict[str, Any] = {}  # JSON text → value (see _json)
        self._derivations: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # see _derived

    # --- refresh ----------------------------------------------------------------------------------------------

    @property
    def refreshed_at(self) -> datetime | None:
        return self._snap.refreshed_at

    def refresh(self) -> None:
        """Read what changed in the store since the last refresh (see the class). Raises what SQLAlchemy raises
        when the database does not answer (see the class for what is kept then)."""
        with self._lock:
            self._refresh_locked()

    def _fresh(self) -> _Snapshot:
        if time.monotonic() - self._refreshed > self.max_age_s:
            with self._lock:
                if time.monotonic() - self._refreshed > self.max_age_s:  # not done by another thread meanwhile
                    try:
                        self._refresh_locked()
                    except sa.exc.SQLAlchemyError as exc:
                        if self._snap is _EMPTY:
                            raise
                        self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"[:300]
                        self._refreshed = time.monotonic()  # retried after max_age_s, not at every request
        return self._snap

    def _refresh_locked(self) -> None:
        # The cyclic garbage collector is paused while rows are built: a build makes about 30 objects per
        # target, none in a cycle, and collections triggered by them over a server's heap were half of a first
        # build's time at 10,000 targets. It is enabled again at once after (one refresh at a time: the lock).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._refresh_unpaused()
        finally:
            if enabled:
                gc.enable()

    def _refresh_unpaused(self) -> None:
        tg = t.targets
        query = sa.select(
            tg.c.id,
            tg.c.last_observation_id,
            sa.cast(tg.c.labels, sa.Text).label("labels"),
            tg.c.spec,
            tg.c.host,
            tg.c.port,
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
            current = {r[0]: (r[1], r[2], r[3]) for r in rows}
            moment = now()
            if current == self._seen and self._snap is not _EMPTY:
                self._snap = replace(self._snap, refreshed_at=moment)
                self._refreshed = time.monotonic()
                self.last_error = None
                return
            old = self._snap.by_id
            seen = self._seen
            reread: list[Any] = []  # rows of targets whose observation (or spec) changed, or new ones
            relabel: list[Any] = []
            for r in rows:
                before = seen.get(r[0])
                if before is None or before[0] != r[1] or before[2] != r[3] or r[0] not in old:
                    reread.append(r)
                elif before[1] != r[2]:
                    relabel.append(r)
            built = self._read(conn, reread, bulk=len(reread) > max(CHUNK, len(rows) // 2))
        entries = dict(old)
        for gone in set(entries) - set(current):
            del entries[gone]
        # unchanged targets keep what they were read from; one whose observation could not be read keeps its
        # old value too (it differs from the store's: read again next time)
        new_seen = {tid: seen[tid] for tid in current if tid in seen and tid in entries}
        for r in relabel:
            entry = entries[r[0]]
            labels = _labels(r[2])
            search = _search(entry.target, entry.facts, entry.addresses, labels)
            entries[r[0]] = entry._replace(labels=labels, labels_text=r[2], search=search)
        for r in reread:
            entry, obs_id = built.get(r[0], (None, None))
            if entry is None:
                continue  # its observation vanished meanwhile (pruned): read again next time
            entries[r[0]] = entry
            new_seen[r[0]] = (obs_id, r[2], r[3])
        for r in relabel:
            new_seen[r[0]] = current[r[0]]
        self._seen = {tid: v for tid, v in new_seen.items() if tid in current}
        ordered = tuple(sorted(entries.values(), key=lambda e: (e.target, e.id)))
        self._snap = _Snapshot(ordered, {e.id: e for e in ordered}, _facets(ordered), moment)
        self._refreshed = time.monotonic()
        self.last_error = None
        if len(self._certs) > 2 * len(ordered) + 1000:  # forget the leaves no target serves any more
            used = {e.leaf_sha256 for e in ordered}
            self._certs = {sha: f for sha, f in self._certs.items() if sha in used}

    def _read(
        self, conn: sa.Connection, rows: Sequence[Any], bulk: bool = False
    ) -> dict[int, tuple[_Entry, int | None]]:
        """Entries of the targets of ``rows`` (targets rows), from their latest observation (by the id the
        targets query read, so that what is read belongs together even while a pass writes).

        ``bulk`` (most targets changed, e.g. the first build): the observations, endpoints and forecasts are read
        through the targets table (``IN (SELECT last_observation_id FROM targets)``) instead of lists of ids
        (long IN lists were most of a first build's database time on PostgreSQL); an observation the join misses
        (a newer one arrived between the two queries) is then read by id."""
        o, e, f, c = t.observations, t.observation_endpoints, t.forecasts, t.certificates
        obs_ids = [r[1] for r in rows if r[1] is not None]
        wanted = set(obs_ids)
        target_ids = {r[0] for r in rows if r[1] is not None}
        observations: dict[int, Any] = {}
        addresses: dict[int, list[str]] = {}
        breaks: dict[int, datetime | None] = {}
        # the JSON columns as text, each distinct text parsed once (most targets share their findings' and
        # clients' lists; SQLAlchemy's JSON type parsing each was a quarter of a first build)
        columns = (
            o.c.id, o.c.target_id, o.c.at, o.c.verdict, sa.cast(o.c.rejected_by, sa.Text).label("rejected_by"),
            o.c.leaf_sha256, o.c.leaf_not_after, o.c.chain_not_after, sa.cast(o.c.findings, sa.Text).label("findings"),
            sa.cast(o.c.clients, sa.Text).label("clients"), o.c.error,
        )  # fmt: skip
        latest = sa.select(t.targets.c.last_observation_id).where(t.targets.c.last_observation_id.is_not(None))

        def observations_where(condition: Any) -> None:
            for r in conn.execute(sa.select(*columns).where(condition)):
                if r.id in wanted:
                    observations[r.id] = _Observation(
                        r.id, r.target_id, r.at, r.verdict, self._json(r.rejected_by), r.leaf_sha256,
                        r.leaf_not_after, r.chain_not_after, self._json(r.findings), self._json(r.clients), r.error,
                    )  # fmt: skip

        def endpoints_where(condition: Any) -> None:
            query = sa.select(e.c.observation_id, e.c.address).where(condition).order_by(e.c.id)
            for r in conn.execute(query):
                if r.observation_id in wanted:
                    addresses.setdefault(r.observation_id, []).append(r.address)

        missing = obs_ids
        if bulk:
            observations_where(o.c.id.in_(latest))
            endpoints_where(e.c.observation_id.in_(latest))
            missing = [i for i in obs_ids if i not in observations]
        for chunk in _chunks(missing):
            observations_where(o.c.id.in_(chunk))
            endpoints_where(e.c.observation_id.in_(chunk))
        if bulk:
            query = sa.select(f.c.target_id, f.c.first_break)
            breaks = {r.target_id: utc(r.first_break) for r in conn.execute(query) if r.target_id in target_ids}
        else:
            for chunk in _chunks(sorted(target_ids)):
                for r in conn.execute(sa.select(f.c.target_id, f.c.first_break).where(f.c.target_id.in_(chunk))):
                    breaks[r.target_id] = utc(r.first_break)
        leaves = {r.leaf_sha256 for r in observations.values() if r.leaf_sha256} - set(self._certs)
        names = (c.c.sha256, c.c.der, c.c.subject, c.c.issuer)
        if len(leaves) > CHUNK:  # through the targets too
            served = sa.select(o.c.leaf_sha256).where(o.c.id.in_(latest))
            for r in conn.execute(sa.select(*names).where(c.c.sha256.in_(served))):
                if r.sha256 in leaves:
                    self._certs[r.sha256] = cert_facts(r.der, r.subject, r.issuer)
            leaves -= set(self._certs)
        for chunk in _chunks(sorted(leaves)):
            for r in conn.execute(sa.select(*names).where(c.c.sha256.in_(chunk))):
                self._certs[r.sha256] = cert_facts(r.der, r.subject, r.issuer)
        out: dict[int, tuple[_Entry, int | None]] = {}
        for r in rows:
            tid, obs_id, labels_text, spec, host, port = r
            obs = observations.get(obs_id) if obs_id is not None else None
            if obs_id is not None and obs is None:
                continue
            self.reads += obs is not None
            entry = _entry(
                tid, spec, host, port, labels_text, obs, tuple(addresses.get(obs_id, ())) if obs else (),
                breaks.get(tid) if obs else None,
                self._certs.get(obs.leaf_sha256, UNPARSABLE) if obs is not None and obs.leaf_sha256 else UNPARSABLE,
                self._derived,
            )  # fmt: skip
            out[tid] = (entry, obs_id)
        return out

    def _json(self, text: str | None) -> Any:
        """A JSON column's value, parsed once per distinct text (lists of lists come back as tuples)."""
        if text is None:
            return ()
        value = self._parsed.get(text)
        if value is None:
            if len(self._parsed) > JSON_MEMO:
                self._parsed.clear()
            try:
                loaded = json.loads(text)
            except ValueError:
                loaded = []
            value = self._parsed[text] = tuple(tuple(x) if isinstance(x, list) else x for x in loaded or ())
        return value

    def _derived(self, obs: _Observation) -> tuple[Any, ...]:
        """(first_error, finding ids, families that accept, every family, rejected_by's sort key) of an
        observation, computed once per distinct (findings, clients, rejected_by)."""
        key = (obs.findings, obs.clients, obs.rejected_by)
        value = self._derivations.get(key)
        if value is None:
            if len(self._derivations) > JSON_MEMO:
                self._derivations.clear()
            value = self._derivations[key] = (
                next((f[0] for f in obs.findings if f[1] == "error"), None),
                tuple(f[0] for f in obs.findings),
                tuple(c[0] for c in obs.clients if c[1]),
                tuple(c[0] for c in obs.clients),
                (len(obs.rejected_by), ",".join(sorted(obs.rejected_by))),
            )
        return value

    # --- reads ------------------------------------------------------------------------------------------------

    def query(self, q: FleetQuery, at: datetime | None = None) -> FleetPage:
        """One page of the rows matching ``q``, their statuses and ``days_left`` as of ``at`` (default: now,
        UTC), with the fleet's summary and facets. Refreshes first when the index is older than ``max_age_s``."""
        snap = self._fresh()
        ts = (at or now()).timestamp()
        view = self._view(snap, ts)
        matches = self._match(snap, view, q, ts)
        total = len(matches)
        pages = max(1, -(-total // q.per_page))
        page = min(q.page, pages)
        start = (page - 1) * q.per_page
        shown = matches[start : start + q.per_page]
        rows = tuple(_row(snap.entries[i], view.statuses[i], ts) for i in shown)
        return FleetPage(rows, total, page, q.per_page, pages, dict(view.summary), snap.facets, snap.refreshed_at)

    def rows(self, q: FleetQuery, at: datetime | None = None) -> list[FleetRow]:
        """Every row matching ``q`` (its filters and sort; no paging), e.g. for a CSV export."""
        snap = self._fresh()
        ts = (at or now()).timestamp()
        view = self._view(snap, ts)
        return [_row(snap.entries[i], view.statuses[i], ts) for i in self._match(snap, view, q, ts)]

    def row(self, target_id: int, at: datetime | None = None) -> FleetRow | None:
        """The row of one target (None: no such target), as of ``at`` (default: now)."""
        snap = self._fresh()
        entry = snap.by_id.get(target_id)
        if entry is None:
            return None
        ts = (at or now()).timestamp()
        return _row(entry, _status(entry, ts, self.soon_days * DAY_S), ts)

    def summary(self, at: datetime | None = None) -> dict[str, int]:
        """:attr:`FleetPage.summary` alone."""
        snap = self._fresh()
        return dict(self._view(snap, (at or now()).timestamp()).summary)

    def days_left_histogram(self, at: datetime | None = None, q: FleetQuery | None = None) -> list[tuple[str, int]]:
        """Rows per ``days_left`` bin, in :data:`HISTOGRAM_BINS` order: ``expired`` (< 0), ``<7`` (0 ≤ d < 7),
        ``7-30``, ``30-90``, ``>90`` (≥ 90) and ``unknown`` (no certificate judged); of the whole fleet, or of
        the rows matching ``q``'s filters."""
        snap = self._fresh()
        ts = (at or now()).timestamp()
        counts = dict.fromkeys(HISTOGRAM_BINS, 0)
        for e in self._entries(snap, q, ts):
            if e.end_ts is None:
                counts["unknown"] += 1
                continue
            days = (e.end_ts - ts) / DAY_S
            counts[next((name for name, upper in HISTOGRAM_UPPER if days < upper), ">90")] += 1
        return list(counts.items())

    def expiries_per_week(
        self, weeks: int = 13, at: datetime | None = None, q: FleetQuery | None = None
    ) -> list[tuple[date, int]]:
        """Upcoming expiries (the instant ``days_left`` counts to) per week: ``weeks`` weeks, each named by its
        Monday (UTC, ISO 8601 weeks), from the week of ``at``; an expiry counts when it is after ``at`` and
        before the end of the last week. Of the whole fleet, or of the rows matching ``q``'s filters.

        Raises: InputError when ``weeks`` is not 1…520."""
        if not 1 <= weeks <= 520:
            raise InputError(f"weeks: must be 1..520: {weeks}")
        snap = self._fresh()
        moment = (at or now()).astimezone(UTC)
        first = moment.date() - timedelta(days=moment.weekday())
        start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
        ts = moment.timestamp()
        counts = [0] * weeks
        week_s = 7 * DAY_S
        for e in self._entries(snap, q, ts):
            end = e.end_ts
            if end is None or end <= ts:
                continue
            slot = int((end - start) // week_s)
            if slot < weeks:
                counts[slot] += 1
        return [(first + timedelta(weeks=i), n) for i, n in enumerate(counts)]

    # --- internals --------------------------------------------------------------------------------------------

    def _entries(self, snap: _Snapshot, q: FleetQuery | None, ts: float) -> list[_Entry]:
        if q is None:
            return list(snap.entries)
        view = self._view(snap, ts)
        return [snap.entries[i] for i in self._match(snap, view, replace(q, sort="target"), ts)]

    def _view(self, snap: _Snapshot, ts: float) -> _View:
        """The statuses and summary at ``ts``: the snapshot's latest view when ``ts`` is within it, else a new
        one (one pass over the entries, which also finds how long it holds)."""
        views = snap.view
        if views and views[0].t0 <= ts < views[0].t1:
            return views[0]
        soon = self.soon_days * DAY_S
        entries = snap.entries
        statuses = [_status(e, ts, soon) for e in entries]
        counts = Counter(statuses)
        week, month = ts + 7 * DAY_S, ts + 30 * DAY_S
        ends = [e.end_ts for e in entries if e.end_ts is not None and e.end_ts >= ts]
        summary = {
            "total": len(statuses),
            **{s: counts.get(s, 0) for s in STATUSES},
            "expires_7d": sum(1 for end in ends if end <= week),
            "expires_30d": sum(1 for end in ends if end <= month),
        }
        t1 = math.inf
        for e in entries:
            end, fb = e.end_ts, e.fb_ts
            if end is not None:
                for x in (end, end - soon, end - 7 * DAY_S, end - 30 * DAY_S):
                    if ts <= x < t1:
                        t1 = x
            if fb is not None and ts <= fb - soon < t1:
                t1 = fb - soon
        view = _View(ts, t1, statuses, summary)
        snap.view[:] = [view]  # a list swap: another thread sees the old view or the new one
        return view

    @staticmethod
    def _order(snap: _Snapshot, view: _View, sort: str, descending: bool) -> list[int]:
        """Every entry's index in the order of ``sort`` (see :func:`_sorted`), computed once per snapshot (per
        view for urgency and status). Callers must not change the list."""
        cache = view.orders if sort in ("urgency", "status") else snap.orders
        key = (sort, descending)
        order = cache.get(key)
        if order is None:
            order = cache[key] = _sorted(list(range(len(snap.entries))), snap.entries, view.statuses, sort, descending)
        return order

    @classmethod
    def _match(cls, snap: _Snapshot, view: _View, q: FleetQuery, ts: float) -> list[int]:
        """Indexes into ``snap.entries`` of the rows matching ``q``, in ``q``'s order (the full order filtered:
        filters keep the order)."""
        es = snap.entries
        statuses = view.statuses
        idx = cls._order(snap, view, q.sort, q.descending)
        if q.status:
            wanted = q.status
            idx = [i for i in idx if statuses[i] in wanted]
        for key, value in q.labels.items():
            having = snap.labelled(key, value)
            idx = [i for i in idx if i in having]
        if q.issuer:
            needle = q.issuer.lower()
            idx = [i for i in idx if es[i].issuer_key is not None and needle in es[i].issuer_key]
        if q.key_type:
            kind = q.key_type
            idx = [i for i in idx if es[i].facts.key_type == kind]
        if q.client:
            client = q.client
            idx = [i for i in idx if client in es[i].rejected_by]
        if q.days_min is not None or q.days_max is not None:
            low = -math.inf if q.days_min is None else ts + q.days_min * DAY_S
            high = math.inf if q.days_max is None else ts + q.days_max * DAY_S
            idx = [i for i in idx if es[i].end_ts is not None and low <= es[i].end_ts <= high]
        if q.text:
            needle = q.text.lower()
            idx = [i for i in idx if needle in es[i].search]
        return idx


def _status(e: _Entry, ts: float, soon_s: float) -> str:
    if e.fixed is not None:
        return e.fixed  # type: ignore[no-any-return]
    end = e.end_ts
    if end is not None:
        if end < ts:
            return "broken"
        if end - ts <= soon_s:
            return "expiring"
    fb = e.fb_ts
    if fb is not None and fb - ts <= soon_s:
        return "expiring"
    return "ok"


_INF = math.inf


def _sorted(idx: list[int], es: Sequence[_Entry], statuses: list[str], sort: str, descending: bool) -> list[int]:
    """``idx`` (in target order already) by ``sort``; rows without a value last either way; ties keep the target
    order (a stable sort, also with ``reverse``)."""
    if sort == "target":
        return idx[::-1] if descending else idx
    rank = STATUS_RANK
    key: Callable[[int], Any]
    if sort == "urgency":

        def key(i: int) -> Any:
            e = es[i]
            end, fb = e.end_ts, e.fb_ts
            soonest = min(_INF if end is None else end, _INF if fb is None else fb)
            return (rank[statuses[i]], soonest)

        idx.sort(key=key, reverse=descending)
        return idx
    if sort == "status":
        idx.sort(key=lambda i: rank[statuses[i]], reverse=descending)
        return idx
    getter: Callable[[_Entry], Any] = {
        "subject": lambda e: e.subject_key,
        "issuer": lambda e: e.issuer_key,
        "key_type": lambda e: e.facts.key_type,
        "not_after": lambda e: e.na_ts,
        "days_left": lambda e: e.end_ts,
        "rejected_by": lambda e: e.rejected_key,
        "checked_at": lambda e: e.checked_ts,
    }[sort]
    have = [i for i in idx if getter(es[i]) is not None]
    missing = [i for i in idx if getter(es[i]) is None]
    have.sort(key=lambda i: getter(es[i]), reverse=descending)
    return have + missing


def _chunks(items: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


def _labels(text: str | None) -> dict[str, str]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _entry(
    tid: int,
    spec: str,
    host: str,
    port: int,
    labels_text: str,
    obs: _Observation | None,
    addresses: tuple[str, ...],
    first_break: datetime | None,
    facts: CertFacts,
    derived: Callable[[_Observation], tuple[Any, ...]],
) -> _Entry:
    labels = _labels(labels_text)
    if obs is None:
        verdict = not_after = chain_not_after = checked_at = error = leaf = first_error = rejected_key = None
        rejected: tuple[str, ...] = ()
        findings: tuple[str, ...] = ()
        clients: tuple[str, ...] = ()
        families: tuple[str, ...] = ()
        fixed: str | None = "unchecked"
    else:
        verdict = obs.verdict
        rejected = obs.rejected_by
        first_error, findings, clients, families, rejected_key = derived(obs)
        fixed = "unreachable" if verdict == "unreachable" else "broken" if verdict != "valid" or rejected else None
        not_after, chain_not_after, checked_at = utc(obs.leaf_not_after), utc(obs.chain_not_after), utc(obs.at)
        error = obs.error if verdict == "unreachable" else None
        leaf = obs.leaf_sha256
    end = chain_not_after or not_after
    return _Entry(
        tid, spec, host, port, addresses, labels, labels_text, verdict, facts, not_after, chain_not_after,
        _ts(end), _ts(not_after), rejected, rejected_key, first_error, findings, checked_at, _ts(checked_at), error,
        first_break, _ts(first_break), leaf, clients, families, fixed, _search(spec, facts, addresses, labels),
        _lower(facts.subject), _lower(facts.issuer),
    )  # fmt: skip


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def _row(e: _Entry, status: str, ts: float) -> FleetRow:
    f = e.facts
    return FleetRow(
        id=e.id,
        target=e.target,
        host=e.host,
        port=e.port,
        addresses=e.addresses,
        labels=dict(e.labels),
        status=status,  # type: ignore[arg-type]
        verdict=e.verdict,
        subject=f.subject,
        sans=f.sans,
        issuer=f.issuer,
        key_type=f.key_type,
        not_after=e.not_after,
        chain_not_after=e.chain_not_after,
        days_left=None if e.end_ts is None else (e.end_ts - ts) / DAY_S,
        rejected_by=e.rejected_by,
        first_error=e.first_error,
        findings=e.findings,
        checked_at=e.checked_at,
        error=e.error,
        first_break=e.first_break,
        leaf_sha256=e.leaf_sha256,
        clients=e.clients,
        families=e.families,
    )


def _facets(entries: Sequence[_Entry]) -> dict[str, tuple[str, ...]]:
    issuers: set[str] = set()
    kinds: set[str] = set()
    labels: set[str] = set()
    clients: set[str] = set()
    for e in entries:
        if e.facts.issuer:
            issuers.add(e.facts.issuer)
        if e.facts.key_type:
            kinds.add(e.facts.key_type)
        labels.update(f"{k}={v}" for k, v in e.labels.items())
        clients.update(e.families)
    return {
        "issuers": tuple(sorted(issuers)),
        "key_types": tuple(sorted(kinds)),
        "labels": tuple(sorted(labels)),
        "clients": tuple(sorted(clients)),
    }


# --- CSV ----------------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id",
    "target",
    "host",
    "port",
    "addresses",
    "status",
    "verdict",
    "subject",
    "sans",
    "issuer",
    "key_type",
    "not_after",
    "chain_not_after",
    "days_left",
    "rejected_by",
    "first_error",
    "findings",
    "checked_at",
    "error",
    "first_break",
    "labels",
)


def _cell(value: Any) -> Any:
    """A CSV cell: numbers as they are; text with a formula's first character (:data:`FORMULA_START`) after a
    ``'`` (OWASP "CSV Injection", ASVS 1.2.10), so that a spreadsheet shows it as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_lines(rows: Iterable[FleetRow]) -> Iterator[str]:
    """A CSV document (RFC 4180: CRLF line ends, fields with a comma, quote or line break quoted, quotes doubled
    — the csv module's ``excel`` dialect): the header (:data:`CSV_COLUMNS`), then one record per row. Lists
    (addresses, SANs, clients, findings) are joined with spaces, labels as ``k=v`` joined with spaces, times in
    ISO 8601, days_left rounded to 0.01 day. Text cells that start with = + - @ TAB CR (or NUL) are prefixed with
    ``'`` (formula injection); numbers are written as numbers. Yields one string per record (a record may hold
    line breaks inside a quoted field)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Sequence[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(v) for v in values])
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for r in rows:
        yield line(
            (
                r.id,
                r.target,
                r.host,
                r.port,
                " ".join(r.addresses),
                r.status,
                r.verdict,
                r.subject,
                " ".join(r.sans),
                r.issuer,
                r.key_type,
                _iso(r.not_after),
                _iso(r.chain_not_after),
                None if r.days_left is None else round(r.days_left, 2),
                " ".join(r.rejected_by),
                r.first_error,
                " ".join(r.findings),
                _iso(r.checked_at),
                r.error,
                _iso(r.first_break),
                " ".join(f"{k}={v}" for k, v in sorted(r.labels.items())),
            )
        )


# --- the calendar -------------------------------------------------------------------------------------------------


def calendar(
    store: Store,
    index: FleetIndex,
    *,
    days: float = 90,
    labels: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Upcoming expiries and forecast breaks within ``days`` days after ``at`` (default now, UTC), of the targets
    carrying every label of ``labels``, in date order (then target, expiries before breaks).

    Each item: ``at`` (ISO 8601), ``date`` (YYYY-MM-DD, UTC), ``kind`` ("expiry" | "break"), ``target_id``,
    ``target``, ``labels``, ``clients``, ``reason``, ``subject``.

    - expiry: the instant ``days_left`` counts to (the chain's earliest notAfter), and the leaf's notAfter when
      that is another instant, from the index; ``clients``: the families that accept the chain today (those
      that will reject it then); ``subject``: the leaf's;
    - break: :func:`certdoctor.watch.forecasting.fleet`'s stored breaks, one item per target and instant
      (the clients that break within a second of each other together, as alerts group them); a break within a
      second of one of the target's expiries is that expiry (not listed twice); ``reason``: the forecast's,
      ``subject``: the certificate it names.

    Raises: InputError when ``days`` is not positive (the index's and the database's errors propagate)."""
    from .forecasting import fleet

    if not days > 0 or not math.isfinite(days):
        raise InputError(f"days: must be a positive number: {days}")
    moment = (at or now()).astimezone(UTC)
    until = moment + timedelta(days=days)
    q = FleetQuery(labels=dict(labels or {}), sort="target", per_page=MAX_PER_PAGE)
    items: list[tuple[datetime, str, int, dict[str, Any]]] = []
    expiries: dict[int, list[datetime]] = {}
    for r in index.rows(q, moment):
        if r.verdict in (None, "unreachable"):
            continue
        ends: list[tuple[datetime, str]] = []
        if r.chain_not_after is not None and r.chain_not_after != r.not_after:
            ends.append((r.chain_not_after, "a certificate of the chain expires (before the leaf)"))
        if r.not_after is not None:
            ends.append((r.not_after, "the leaf certificate expires"))
        for when, reason in ends:
            if not moment < when <= until:
                continue
            expiries.setdefault(r.id, []).append(when)
            items.append(
                (when, r.target, 0, _item(when, "expiry", r.id, r.target, r.labels, r.clients, reason, r.subject))
            )
    body = fleet(store, days, labels=labels, at=moment)
    groups: dict[int, list[tuple[datetime, dict[str, Any]]]] = {}  # target id → (instant, item) of its breaks
    second = timedelta(seconds=1)
    for b in body["breaks"]:
        when = datetime.fromisoformat(b["break"]["at"])
        tid = b["target_id"]
        if any(abs(when - end) <= second for end in expiries.get(tid, ())):
            continue
        mine = groups.setdefault(tid, [])
        group = next((item for instant, item in mine if abs(when - instant) <= second), None)
        if group is None:
            brk = b["break"]
            subject = (brk.get("certificate") or {}).get("subject")
            group = _item(when, "break", tid, b["target"], b["labels"], (), brk.get("reason"), subject)
            mine.append((when, group))
            items.append((when, b["target"], 1, group))
        if b["client"] not in group["clients"]:
            group["clients"].append(b["client"])
    items.sort(key=lambda x: x[:3])
    return [item for *_, item in items]


def _item(
    when: datetime,
    kind: str,
    tid: int,
    target: str,
    labels: Mapping[str, str],
    clients: Iterable[str],
    reason: str | None,
    subject: str | None,
) -> dict[str, Any]:
    when = when.astimezone(UTC)
    return {
        "at": when.isoformat(),
        "date": when.date().isoformat(),
        "kind": kind,
        "target_id": tid,
        "target": target,
        "labels": dict(labels),
        "clients": list(clients),
        "reason": reason,
        "subject": subject,
    }


__all__ = [
    "CSV_COLUMNS",
    "HISTOGRAM_BINS",
    "SORT_KEYS",
    "STATUSES",
    "STATUS_TEXT",
    "CertFacts",
    "FleetIndex",
    "FleetPage",
    "FleetQuery",
    "FleetRow",
    "Status",
    "calendar",
    "cert_facts",
    "csv_lines",
]
