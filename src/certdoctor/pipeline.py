"""The diagnosis pipeline: collect evidence about a target, then judge it.

    target ──collect──▶ Evidence ──judge──▶ Diagnosis (findings, per-chain reports, client predictions)

:class:`Session` holds what many diagnoses share, so that tools diagnosing many targets (the scanner, a
monitor) keep one open:

* trust stores, ``--ca-file`` roots, the expected certificate and the key are loaded once;
* AIA downloads and OCSP/CRL answers are cached across targets (until the answers' nextUpdate);
* with ``cache=True`` (which fixes the check time for the whole session), the judgement of each distinct
  chain — path building, per-store verification, revocation status and every chain check — is computed once
  and reused for every other server presenting the same chain to the same name.

    >>> async with Session(DiagnoseOptions(ca_files=("corp-root.pem",))) as s:
    ...     for host in hosts:
    ...         d = await s.diagnose(host)

:func:`judge` is the pure half: every registered check on evidence already collected, no I/O.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from . import certinfo
from .collect.http import AsyncClosing, format_seconds
from .collect.starttls import PROTOCOLS, for_port
from .diagnosis import ChainReport, Diagnosis
from .errors import InputError
from .model import (
    DEFAULT_AIA_TIMEOUT,
    AiaFetch,
    DeployedFile,
    DeployedRef,
    DiagnoseOptions,
    Evidence,
    Finding,
    PresentedChain,
    Target,
    TrustStore,
)
from .paths import ChainAnalysis, StoreIndex, analyse, dedupe, missing_issuer_urls
from .revocation import CertRevocation, assess, evaluate_ocsp, path_pairs
from .revocation import urls as revocation_urls

MAX_CHAIN = 32  # certificates analysed per chain; the rest is reported, not verified
OTHER_KEY_TYPE_TIMEOUT = 5.0  # seconds at most for the handshake that asks for a dual server's other certificate


def leaf_key_type(chain: PresentedChain) -> str | None:
    """ "RSA" or "ECDSA" for a chain whose leaf has that key type; None otherwise (no chain, Ed25519, DSA...)."""
    if not chain.ok:
        return None
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = chain.certs[0].public_key()
    return (
        "RSA" if isinstance(key, rsa.RSAPublicKey) else "ECDSA" if isinstance(key, ec.EllipticCurvePublicKey) else None
    )


MAX_AIA_ROUNDS = 4
MAX_AIA_PER_CHAIN = 8
UNSET: Any = object()  # "not given" for arguments whose None has a meaning (name: no name check; sni: no SNI)


# URL schemes of TLS services and their ports (https, and the implicit-TLS scheme of each protocol of
# certdoctor.collect.starttls.PROTOCOLS: smtps 465, imaps 993, pop3s 995, ldaps 636...); any other scheme
# (http://, gopher://, ...) is refused.
TLS_PORTS = {"https": 443} | {
    p.implicit_scheme: p.implicit_port for p in PROTOCOLS.values() if p.implicit_scheme and p.implicit_port
}
# URL schemes of services upgraded to TLS in their own protocol first (certdoctor.collect.starttls), and their
# default ports (RFC 5321 §4.5.4.2 / RFC 6409 §3.1 give SMTP 25 and 587; RFC 3501 §2.1 IMAP 143; RFC 1939 §3 POP3
# 110; RFC 4511 §5.2 LDAP 389...): the scheme names the protocol. PostgreSQL 17's direct TLS has no scheme
# of its own (postgres://...?sslnegotiation=direct).
STARTTLS_SCHEMES = {p.name: p.port for p in PROTOCOLS.values() if p.ports}
# libpq's other URL scheme: PostgreSQL's SSLRequest on 5432.
STARTTLS_SCHEMES.update(postgresql=5432)
_SCHEME_PROTOCOL = {"postgresql": "postgres"}  # a scheme that is another name for a protocol
SCHEME_PORTS = {**TLS_PORTS, **STARTTLS_SCHEMES}
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


def check_host(host: str, spec: str) -> str:
    """``host`` if it is an IP address or a DNS name (labels of 1-63 letters, digits, '-' or '_'; 253
    characters in all; internationalised names in their IDNA form); raises InputError otherwise, so that a typo
    never becomes a resolver query."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if ":" in host:
        raise InputError(f"invalid target {spec!r}: {host!r} is not an IPv6 address (write [v6]:port)")
    name = host.rstrip(".")
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        raise InputError(f"invalid target {spec!r}: {host!r} is not a valid internationalised host name") from None
    labels = ascii_name.split(".")
    if not ascii_name or len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InputError(f"invalid target {spec!r}: {host!r} is not a host name or an IP address")
    return host


def parse_target(spec: str, default_port: int = 443) -> tuple[str, int]:
    """(host, port) of ``'host'``, ``'host:port'``, ``'[v6]:port'``, a bare IPv6 address, or a URL of a TLS service
    (``https://host[:port]/path``; ldaps, imaps, smtps, pop3s with their ports) or of a service upgraded to TLS
    (smtp, imap, pop3: see :func:`starttls_for`). Raises InputError for anything else: another scheme, an unclosed
    bracket, a port outside 1-65535, a host that is neither a DNS name nor an IP address."""
    spec = spec.strip()
    if not spec:
        raise InputError("empty target")
    if "://" in spec:
        scheme = spec.partition("://")[0].lower()
        if scheme not in SCHEME_PORTS:
            known = ", ".join(f"{s}://" for s in SCHEME_PORTS)
            raise InputError(f"invalid target {spec!r}: {scheme}:// is not a TLS service ({known})")
        try:
            parts = urlsplit(spec)
            hostname, port = parts.hostname, parts.port
        except ValueError as exc:
            raise InputError(f"invalid target {spec!r}: {exc}") from None
        if not hostname:
            raise InputError(f"cannot read a host name from {spec!r}")
        if port is not None and not 0 < port < 65536:
            raise InputError(f"invalid port in {spec!r}")
        return check_host(hostname, spec), port or SCHEME_PORTS[scheme]
    if spec.startswith("["):
        host, bracket, rest = spec[1:].partition("]")
        if not bracket:
            raise InputError(f"invalid target {spec!r}: no closing ']'")
        if rest and not rest.startswith(":"):
            raise InputError(f"invalid target {spec!r}: expected ':PORT' after ']'")
        port_s = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError(f"invalid target {spec!r}: {host!r} is not an IPv6 address") from None
    elif spec.count(":") == 1:
        host, port_s = spec.split(":")
    else:
        host, port_s = spec, ""  # a name, or an IPv6 literal without brackets
    if not host:
        raise InputError(f"cannot read a host name from {spec!r}")
    check_host(host, spec)
    if not port_s:
        return host, default_port
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise InputError(f"invalid port {port_s!r} in {spec!r}")
    return host, int(port_s)


def starttls_for(spec: str | None, port: int, starttls: str | None = UNSET) -> str | None:
    """The protocol to speak before the TLS handshake for target ``spec`` on ``port`` (None: TLS from the first
    byte). ``starttls``, when given, decides ("none" or None: no upgrade); otherwise the URL scheme (smtp://,
    imap://, pop3://, postgres:// or postgresql:// — with ``?sslnegotiation=direct``: postgres-direct —, mysql://;
    https://, smtps:// and the other TLS schemes: none); otherwise the well-known STARTTLS port
    (25 and 587: smtp, 143: imap, 110: pop3; see :data:`certdoctor.collect.starttls.STARTTLS_PORTS`). Raises
    InputError for a protocol certdoctor does not speak."""
    if starttls is not UNSET:
        if starttls is None or starttls.strip().lower() in ("", "none", "no"):
            return None
        name = starttls.strip().lower()
        if name not in PROTOCOLS:
            raise InputError(f"STARTTLS protocol {starttls!r}: one of {', '.join(PROTOCOLS)} (or none)")
        return name
    if spec and "://" in spec:
        scheme = spec.partition("://")[0].strip().lower()
        protocol = _SCHEME_PROTOCOL.get(scheme, scheme)
        if protocol == "postgres" and "sslnegotiation=direct" in spec.partition("?")[2].lower():
            return "postgres-direct"  # libpq's connection parameter (PostgreSQL 17): TLS from the first byte
        return protocol if scheme in STARTTLS_SCHEMES else None
    return for_port(port)


def parse_at(at: datetime | str | None) -> datetime:
    """The moment to judge as of, in UTC: None (now), a datetime (naive = UTC), or a string: ``YYYY-MM-DD``,
    ISO 8601 (UTC unless it has an offset) or seconds since the epoch (``1767225600``, ``@1767225600``, as
    ``openssl -attime`` and ``date -d`` take). Raises InputError for anything else."""
    if at is None:
        return datetime.now(UTC)
    if isinstance(at, str):
        text = at.strip()
        epoch = text[1:] if text.startswith("@") else text
        digits = epoch.lstrip("-")
        if not text or (digits.isdigit() and len(digits) in (4, 6) and not text.startswith("@")):
            raise InputError(f"invalid date {at!r}: give YYYY-MM-DD, an ISO 8601 date-time or epoch seconds")
        try:
            if digits.isdigit() and (len(digits) != 8 or text.startswith("@")):  # 20270101 is a date
                at = datetime.fromtimestamp(int(epoch), UTC)
            else:
                at = datetime.fromisoformat(text)
        except (ValueError, OverflowError, OSError) as exc:
            raise InputError(f"invalid date {at!r}: use YYYY-MM-DD, an ISO 8601 date-time or epoch seconds") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def load_stores(names: Sequence[str], explicit: bool) -> tuple[list[TrustStore], list[str]]:
    """The trust stores named, and notes for those skipped. ``explicit`` (the user asked for them): a missing
    store raises :class:`~certdoctor.collect.stores.StoreUnavailable` (an InputError) instead of a note."""
    from .collect.stores import StoreUnavailable, load_store

    stores, notes = [], []
    for name in names:
        try:
            stores.append(load_store(name))
        except StoreUnavailable as exc:
            if explicit:
                raise
            notes.append(f"trust store skipped: {exc}")
    return stores, notes


async def collect_aia(
    chains: Sequence[PresentedChain], index: StoreIndex, fetcher: Any, *, budget: float = DEFAULT_AIA_TIMEOUT
) -> tuple[dict[str, AiaFetch], list[str]]:
    """Download missing issuers named by AIA caIssuers URLs, a few levels up, for every distinct chain, within
    ``budget`` seconds in all (every level and chain of the target shares it: levels are fetched one after
    another, so a per-download timeout alone would multiply). Returns the fetches by URL, and notes (the URLs
    not answered in time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    results: dict[str, AiaFetch] = {}
    late: list[str] = []
    out_of_time = f"not answered within the {format_seconds(budget)} s AIA time budget"
    for chain in chains:
        known = dedupe(chain.certs)
        frontier = list(known)
        fetched = 0
        for _ in range(MAX_AIA_ROUNDS):
            urls = [u for u in missing_issuer_urls(frontier, known, index) if u not in results]
            urls = urls[: max(0, MAX_AIA_PER_CHAIN - fetched)]
            if not urls:
                break
            left = deadline - loop.time()
            if left <= 0:
                for url in urls:
                    results[url] = AiaFetch(
                        url=url, error=f"not tried: the {format_seconds(budget)} s AIA time budget ran out"
                    )
                late.extend(urls)
                break
            fetched += len(urls)
            got = await _fetch_within(fetcher, urls, left, out_of_time)
            frontier = []
            for res in got:
                if res.error and res.error.startswith("timed out") and loop.time() >= deadline - 0.05:
                    res = replace(res, error=f"timed out: {out_of_time}")
                if res.error and out_of_time in res.error:
                    late.append(res.url)
                results[res.url] = res
                new = [c for c in res.certs if c not in known]
                known.extend(new)
                frontier.extend(new)
            if not frontier:
                break
    notes = []
    if late:
        shown = ", ".join(map(certinfo.short_url, late))
        notes.append(f"AIA downloads stopped after {format_seconds(budget)} s; not answered in time: {shown}")
    return results, notes


async def _fetch_within(fetcher: Any, urls: Sequence[str], seconds: float, out_of_time: str) -> list[AiaFetch]:
    """Every URL fetched concurrently, each download bounded by ``seconds``; a fetcher that overruns (it should
    not) is abandoned a moment later and its URL reported as not answered."""
    tasks = [asyncio.ensure_future(fetcher.fetch(u, timeout=seconds)) for u in urls]
    await asyncio.wait(tasks, timeout=seconds + 0.5)
    out: list[AiaFetch] = []
    for url, task in zip(urls, tasks, strict=True):
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            out.append(AiaFetch(url=url, error=f"timed out: {out_of_time}"))
        elif task.exception() is not None:  # defensive: a fetcher bug must not sink the diagnosis
            exc = task.exception()
            out.append(AiaFetch(url=url, error=f"unexpected error: {type(exc).__name__}: {exc}"))
        else:
            out.append(task.result())
    return out


async def collect_revocation_evidence(
    evidence: Evidence, analyses: dict[tuple[str, ...], ChainAnalysis], fetcher: Any, budget: float
) -> Evidence:
    """Query OCSP/CRLs for the certificates of every best path (skipping leaves a valid staple answered)."""
    from .collect.revocation import RevocationFetcher, collect_revocation

    pairs: list[tuple[x509.Certificate, x509.Certificate]] = []
    answered: list[x509.Certificate] = []
    for analysis in analyses.values():
        path = [(c, i) for c, i in path_pairs(analysis.best.nodes, analysis.best.end) if i is not None]
        pairs.extend((c, i) for c, i in path if any(revocation_urls(c)))  # type: ignore[misc]
        if path:
            leaf, issuer = path[0]
            sources = [c for c in evidence.chains if c.ok and c.certs[0] == leaf]
            staples = [c.ocsp_staple for c in sources]
            if sources and all(
                s is not None and evaluate_ocsp(s, leaf, issuer, evidence.at).definitive for s in staples
            ):
                answered.append(leaf)
    if not pairs:
        return evidence
    if fetcher is not None and not hasattr(fetcher, "ocsp"):
        fetcher = fetcher()  # a factory: the fetcher is only created when there is something to look up
    own = fetcher is None
    fetcher = fetcher or RevocationFetcher(timeout=budget)
    try:
        fetched, notes = await collect_revocation(pairs, fetcher, evidence.at, budget=budget, leaf_answered=answered)
    finally:
        if own:
            await fetcher.aclose()
    return replace(evidence, revocation=fetched, revocation_notes=tuple(notes))


def group_chains(chains: Sequence[PresentedChain]) -> list[tuple[tuple[str, ...], PresentedChain]]:
    """The distinct chains presented, each with the sources that presented it (failed sources left out)."""
    groups: dict[tuple[str, ...], list[PresentedChain]] = {}
    for c in chains:
        if c.ok:
            groups.setdefault(tuple(certinfo.fingerprint(x) for x in c.certs), []).append(c)
    return [(tuple(c.source for c in members), members[0]) for members in groups.values()]


def judge(
    evidence: Evidence,
    *,
    index: StoreIndex | None = None,
    notes: Sequence[str] = (),
    started: float | None = None,
    analyses: dict[tuple[str, ...], ChainAnalysis] | None = None,
    judged: Callable[[tuple[str, ...], list[PresentedChain]], Any] | None = None,
    clients: Sequence[str] | None = None,
    memo: Any = None,
) -> Diagnosis:
    """Run every registered check on collected evidence, then set each finding's severity by what the clients
    do (:func:`certdoctor.clients.verdict.reconcile`). Pure: no network or file access.

    ``clients``: the client family ids whose refusal makes the verdict INVALID (None: every family).

    ``analyses``: path analyses already computed for this evidence, by the chain's fingerprints.
    ``judged(sources, members)``: a cache of earlier judgements of the same chain presented the same way
    (a :class:`certdoctor.session.ChainJudgement`, or None); used by sessions that diagnose many targets.
    ``memo``: a :class:`certdoctor.clients.PredictionMemo` of the same session's earlier client verdicts.
    """
    from .checks import ChainContext, TargetContext, run_chain_checks, run_checks

    started = time.perf_counter() if started is None else started
    index = index or StoreIndex(evidence.stores, evidence.extra_roots)
    analyses = analyses or {}
    contexts = []
    for sources, chain in group_chains(evidence.chains):
        members = [c for c in evidence.chains if c.source in sources]
        hit = judged(sources, members) if judged is not None else None
        if hit is not None:
            ctx = ChainContext(evidence, chain, sources, hit.analysis, revocation=list(hit.revocation))
            ctx.findings = list(hit.findings)
        else:
            fps = tuple(certinfo.fingerprint(x) for x in chain.certs)
            analysis = analyses.get(fps) or analyse(chain, evidence, index)
            status = assess(evidence, path_pairs(analysis.best.nodes, analysis.best.end), members)
            ctx = ChainContext(evidence, chain, sources, analysis, revocation=status)
            run_chain_checks(ctx)
        contexts.append(ctx)
    failures = [c for c in evidence.chains if not c.ok]
    findings = run_checks(TargetContext(evidence, contexts, failures), chains_done=True)
    reports = tuple(
        ChainReport(c.sources, c.chain, c.analysis, tuple(c.revocation), tuple(c.findings)) for c in contexts
    )
    standards = Diagnosis(
        evidence.target,
        evidence,
        reports,
        tuple(failures),
        tuple(findings),
        time.perf_counter() - started,
        (*notes, *evidence.aia_notes, *evidence.revocation_notes),
        predictor=_predict,
    )
    return by_clients(standards, clients, memo)


def _predict(d: Diagnosis, memo: Any = None) -> Any:
    from .clients import predict

    return predict(d, memo=memo)


def by_clients(d: Diagnosis, clients: Sequence[str] | None = None, memo: Any = None) -> Diagnosis:
    """``d`` with its findings' severities set by the clients (see :mod:`certdoctor.clients.verdict`); the
    per-client predictions, when computed for that, are kept for ``d.clients``."""
    from .clients.verdict import DEFAULT_CLIENTS, reconcile

    computed: list[Any] = []

    def predictions() -> Any:
        if not computed:
            computed.append(tuple(_predict(d, memo)))
        return computed[0]

    findings = reconcile(d.findings, clients or DEFAULT_CLIENTS, predictions, eager=bool(d.evidence.client_stores))
    keep = (lambda _d: computed[0]) if computed else (lambda later: _predict(later, memo))
    return replace(d, findings=tuple(findings), predictor=keep, verdict_clients=tuple(clients or DEFAULT_CLIENTS))


CACHE_SIZE = 4096  # distinct chains whose judgement a caching session keeps


@dataclass(frozen=True)
class ChainJudgement:
    """Everything judged about one distinct chain, reusable for another target presenting it the same way."""

    analysis: ChainAnalysis
    revocation: tuple[CertRevocation, ...]
    findings: tuple[Finding, ...]
    sources: tuple[str, ...]  # the sources the findings were made for (rebased on reuse)


def chain_key(is_files: bool, name: str | None, members: Sequence[PresentedChain]) -> tuple[Any, ...]:
    """What makes two presentations of a chain judge the same: the certificates, the name, whether it came
    from files, and which sources stapled which OCSP response (in source order)."""
    first = members[0]
    staples = tuple(None if c.ocsp_staple is None else hashlib.sha256(c.ocsp_staple).digest() for c in members)
    return (is_files, name, tuple(certinfo.fingerprint(x) for x in first.certs), staples)


def rebase(findings: Sequence[Finding], old: Sequence[str], new: Sequence[str]) -> list[Finding]:
    """The same findings for another set of sources (matched by position)."""
    if tuple(old) == tuple(new):
        return list(findings)
    mapping = dict(zip(old, new, strict=False))
    return [replace(f, sources=tuple(mapping.get(s, s) for s in f.sources)) for f in findings]


_HANDSHAKE: Any = None


def preload() -> None:
    """Import now what judging a handshake's chains imports on first use: the handshake collector, every check
    family and the client models. A scan calls this before it forks helper processes, so that they inherit these
    modules instead of each importing them again (~0.1 s of CPU per helper); idempotent."""
    from .checks.registry import load_all
    from .clients import predict  # noqa: F401
    from .clients.verdict import reconcile  # noqa: F401

    _handshake_module()
    load_all()


def _handshake_module() -> Any:
    """The handshake collector, imported on first use (it loads pyOpenSSL, which file checks never need)."""
    global _HANDSHAKE
    if _HANDSHAKE is None:
        from .collect import handshake

        _HANDSHAKE = handshake
    return _HANDSHAKE


class Session(AsyncClosing):
    """Shared configuration and caches for diagnosing many targets (see the module docstring).

    ``options.at`` None means "now" at each diagnosis — unless ``cache`` is on, which fixes it at the
    session's start so that cached judgements stay true for every target.
    """

    def __init__(
        self,
        options: DiagnoseOptions | None = None,
        *,
        cache: bool = False,
        aia_fetcher: Any = None,
        revocation_fetcher: Any = None,
    ) -> None:
        """Load the trust stores, extra roots, expected certificate and key of ``options``.

        ``cache``: judge each distinct chain once for the whole session (fixes the check time at the session's
        start). ``aia_fetcher``/``revocation_fetcher``: share the fetchers' caches with other sessions (closed
        by their owner, not by this session). Raises :class:`certdoctor.errors.InputError` when a file, key or
        explicitly requested trust store cannot be loaded.
        """
        from .collect.files import load_certificate_files, load_crl_files
        from .collect.stores import DEFAULT_STORES

        o = self.options = options if options is not None else DiagnoseOptions()
        self.timeout = o.timeout
        self.at = parse_at(o.at) if o.at is not None or cache else None
        if o.ca_bundle:
            stores: list[TrustStore] = []
            self.notes: list[str] = []
            bundle = tuple(load_certificate_files(o.ca_bundle))
            stores.append(TrustStore("ca-bundle", f"--ca-bundle {', '.join(o.ca_bundle)}", bundle, o.ca_bundle[0]))
        else:
            explicit = o.trust_stores is not None
            names = list(o.trust_stores) if o.trust_stores is not None else list(DEFAULT_STORES)
            stores, self.notes = load_stores(names, explicit)
        self.stores: tuple[TrustStore, ...] = tuple(stores)
        self.extra = (*o.ca_certs, *load_certificate_files(o.ca_files)) if o.ca_files else tuple(o.ca_certs)
        self.expected = tuple(load_certificate_files([o.expect])) if o.expect else None
        self.crls = load_crl_files(o.crl_files)
        self.max_chain_depth = o.max_chain_depth
        self.expect = o.expect
        self.key = o.key
        self.key_public = None
        if o.key:
            from .collect.keys import load_private_key

            self.key_public = load_private_key(o.key, o.key_password).public_key()
        self.identity: Any = None  # the client certificate sent to servers that ask for one (--cert)
        if o.client_cert:
            from .collect.clientcert import load_client_identity

            self.identity = load_client_identity(o.client_cert, o.client_key, o.client_key_password)
        elif o.client_key:
            raise InputError("--client-key goes with --cert FILE (the client certificate)")
        from .collect.proxy import ProxyPolicy

        self.proxies = ProxyPolicy(o.proxy, o.no_proxy)  # --proxy/--noproxy, else the environment (curl's rules)
        self.all_key_types = o.all_key_types
        self.deployed = o.deployed
        self.deployed_password = o.deployed_password
        self.server_type = o.server_type
        if o.deployed:
            from .collect.deployed import require_usable

            require_usable(self.load_deployed())
        if not self.stores and not self.extra:
            raise InputError("no trust store available: select one with --trust-store or give --ca-file")
        self.index = StoreIndex(self.stores, self.extra)
        self.warn_days = o.warn_days
        self.policy = o.policy
        self.labels = o.labels
        self.ct_logs = None  # --ct-log-list (certdoctor.ct.LogList)
        if o.ct_log_list:
            from .ct import load_log_list

            self.ct_logs = load_log_list(o.ct_log_list)
        self.public_roots = tuple(load_certificate_files(o.public_roots)) if o.public_roots else ()
        self.verdict_clients = o.verdict_clients
        self.fetch_aia = o.fetch_aia
        self.aia_timeout = o.aia_timeout
        self.refuse_private = not o.allow_private_fetch
        self.revocation = o.revocation
        self.revocation_timeout = o.revocation_timeout
        self.caa, self.caa_timeout, self.caa_issuers = o.caa, o.caa_timeout, o.caa_issuers
        self._caa_resolver: Any = None
        if o.dns_server is not None:
            from .collect.caa import parse_server

            parse_server(o.dns_server)  # an impossible --dns-server is refused before any connection
        self.dns_server = o.dns_server
        self.client_stores: tuple[TrustStore, ...] = ()
        if o.clients:
            from .clients import CLIENT_STORES

            loaded, _ = load_stores(CLIENT_STORES, explicit=False)
            self.client_stores = tuple(loaded)
        self._aia_fetcher = aia_fetcher
        self._own_aia = aia_fetcher is None
        self._revocation_fetcher = revocation_fetcher
        self._own_revocation = revocation_fetcher is None
        self._revocation_stats: dict[str, int] = {}
        self.cache = cache
        self._judged: OrderedDict[tuple[Any, ...], ChainJudgement] = OrderedDict()
        from .clients import PredictionMemo  # every judgement imports the clients package anyway

        self.predicted = PredictionMemo()  # client verdicts of earlier targets (used when ``cache``)
        self._inflight: dict[tuple[Any, ...], asyncio.Future[None]] = {}
        self.chain_hits = 0
        self.chain_misses = 0

    def load_deployed(self) -> tuple[DeployedFile, ...]:
        """The ``deployed`` files of the options as they are on disk now (globs expanded now); never raises (see
        :func:`certdoctor.collect.deployed.load_deployed`). Read again at every diagnosis: a file renewed since the
        last one is what the drift checks must see."""
        if not self.deployed:
            return ()
        from .collect.deployed import load_deployed

        return load_deployed(self.deployed, password=self.deployed_password, key=self.key, key_public=self.key_public)

    # fetchers (created on first use, closed with the session when the session made them)

    @property
    def aia_fetcher(self) -> Any:
        if self._aia_fetcher is None:
            from .collect.aia import AiaFetcher

            self._aia_fetcher = AiaFetcher(
                timeout=min(self.timeout, 10.0), refuse_private=self.refuse_private, proxies=self.proxies
            )
        return self._aia_fetcher

    @property
    def revocation_fetcher(self) -> Any:
        if self._revocation_fetcher is None:
            from .collect.revocation import RevocationFetcher

            self._revocation_fetcher = RevocationFetcher(
                timeout=self.revocation_timeout, refuse_private=self.refuse_private, proxies=self.proxies
            )
        return self._revocation_fetcher

    @property
    def revocation_fetcher_stats(self) -> dict[str, int]:
        """OCSP/CRL cache hits and network lookups (kept after the session is closed)."""
        if self._revocation_fetcher is not None:
            return dict(self._revocation_fetcher.stats)
        return dict(self._revocation_stats)

    async def aclose(self) -> None:
        if self._revocation_fetcher is not None:
            self._revocation_stats = dict(self._revocation_fetcher.stats)
        if self._own_aia and self._aia_fetcher is not None:
            await self._aia_fetcher.aclose()
            self._aia_fetcher = None
        if self._own_revocation and self._revocation_fetcher is not None:
            await self._revocation_fetcher.aclose()
            self._revocation_fetcher = None

    # collection

    def target_for(
        self,
        target: str | None,
        *,
        port: int | None = None,
        files: Sequence[str] = (),
        name: str | None = UNSET,
        resolve: Sequence[str] = (),
        sni: str | None = UNSET,
        separate_files: bool = False,
        starttls: str | None = UNSET,
    ) -> tuple[Target, str | None]:
        """The :class:`Target` for these arguments, and the host to resolve (None for files). ``starttls``: see
        :func:`starttls_for`."""
        if files:
            if target:
                raise InputError("give either a server or --file, not both")
            verify_name = None if name is UNSET else name
            return Target(verify_name, port=0, files=tuple(files), separate_files=separate_files), None
        if not target:
            raise InputError("no target: give HOST[:PORT], a URL, or --file")
        host, tport = parse_target(target, port or 443)
        if port:
            tport = port
        for address in resolve:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise InputError(
                    f"resolve: {address!r} is not an IP address (give addresses, e.g. resolve=['10.0.0.5'])"
                ) from None
        verify_name = host if name is UNSET else name
        send_sni = (None if certinfo.is_ip(host) else host) if sni is UNSET else sni
        upgrade = starttls_for(target, tport, starttls)
        tgt = Target(name=verify_name, port=tport, sni=send_sni, addresses=tuple(resolve), host=host, starttls=upgrade)
        return tgt, host

    async def collect_chains(self, tgt: Target, host: str | None) -> list[PresentedChain]:
        """The chains every address (or file) presents; raises
        :class:`~certdoctor.collect.handshake.ResolveError` (a CollectError) when the name does not resolve."""
        if tgt.files:
            from .collect.files import load_chain_file, load_chain_files

            if tgt.separate_files:
                return [load_chain_file(f, max_certs=MAX_CHAIN) for f in tgt.files]
            return load_chain_files(tgt.files, max_certs=MAX_CHAIN)
        return await self.fetch(host or "", tgt.port, tgt.sni, tgt.addresses, starttls=tgt.starttls)

    async def fetch(
        self,
        host: str,
        port: int,
        sni: str | None,
        addresses: Sequence[str] = (),
        gate: Callable[[], Awaitable[None]] | None = None,
        starttls: str | None = None,
    ) -> list[PresentedChain]:
        """The chain each address of ``host`` presents (``addresses``, when given, instead of resolving);
        raises :class:`~certdoctor.collect.handshake.ResolveError` (a CollectError) when the name does not
        resolve. ``gate`` is awaited before each connection. ``starttls``: the protocol to upgrade from
        ("smtp", "imap", "pop3"; None: TLS from the first byte)."""
        handshake = _handshake_module()
        proxy = self.proxies.for_host(host) if self.proxies.active else None
        if not addresses:
            # through a proxy, the proxy resolves the name (CONNECT host:port), as curl does: one connection
            addresses = [host] if proxy is not None else await handshake.resolve(host, port, self.timeout)
        fetch_chain = handshake.fetch_chain

        async def one(address: str) -> list[PresentedChain]:
            chain = await fetch_chain(
                address,
                port,
                sni,
                self.timeout,
                max_certs=MAX_CHAIN,
                gate=gate,
                starttls=starttls,
                identity=self.identity,
                proxy=proxy,
            )
            if not self.all_key_types:  # (a scan's default): no need to load the leaf's public key here
                return [chain]
            kind = leaf_key_type(chain)
            if kind is None:
                return [chain]
            # the other certificate of a server with both an RSA and an ECDSA one: offer only the other key type
            # (TLS 1.2 cipher suites; TLS 1.3 signature algorithms for a server that refuses TLS 1.2: one that
            # speaks it and refuses the cipher suites has one certificate, and costs no third connection)
            other_kind = "ECDSA" if kind == "RSA" else "RSA"
            restrict = other_kind.lower()
            timeout = min(self.timeout, OTHER_KEY_TYPE_TIMEOUT)
            kw: dict[str, Any] = {"max_certs": MAX_CHAIN, "gate": gate, "starttls": starttls}
            kw.update(identity=self.identity, proxy=proxy)
            other = await fetch_chain(address, port, sni, timeout, restrict=restrict, **kw)
            if not other.ok and chain.tls_version == "TLSv1.3" and "protocol version" in (other.error or ""):
                other = await fetch_chain(address, port, sni, timeout, restrict=restrict + "13", **kw)
            if leaf_key_type(other) != other_kind or other.certs[0] == chain.certs[0]:
                return [chain]  # one certificate (the server refused, or sent the same one)
            return [
                replace(chain, key_type=kind),
                replace(other, source=f"{chain.source} ({other_kind})", key_type=other_kind, key_type_only=True),
            ]

        if len(addresses) == 1:  # the common case, without gather's tasks
            return await one(addresses[0])
        return [c for got in await asyncio.gather(*(one(a) for a in addresses)) for c in got]

    async def diagnose(
        self,
        target: str | None = None,
        *,
        port: int | None = None,
        files: Sequence[str] = (),
        name: str | None = UNSET,
        resolve: Sequence[str] = (),
        sni: str | None = UNSET,
        separate_files: bool = False,
        starttls: str | None = UNSET,
    ) -> Diagnosis:
        """Diagnose one server or set of chain files (arguments as in :func:`certdoctor.diagnose`)."""
        started = time.perf_counter()
        tgt, host = self.target_for(
            target,
            port=port,
            files=files,
            name=name,
            resolve=resolve,
            sni=sni,
            separate_files=separate_files,
            starttls=starttls,
        )
        chains = await self.collect_chains(tgt, host)
        return await self.judge_chains(tgt, chains, started=started)

    async def judge_chains(
        self,
        tgt: Target,
        chains: Sequence[PresentedChain],
        *,
        started: float | None = None,
        deployed: Sequence[DeployedRef] | None = None,
    ) -> Diagnosis:
        """Collect AIA and revocation evidence for chains already fetched, then judge them.

        ``deployed``: the files this target should serve, instead of the options' ``deployed`` (see
        :meth:`read_deployed`)."""
        started = time.perf_counter() if started is None else started
        when = self.at or parse_at(None)
        groups = group_chains(chains)
        todo: list[PresentedChain] = []
        mine: list[tuple[Any, ...]] = []  # keys this call judges (others wait for it instead of repeating it)
        for sources, chain in groups:
            members = [c for c in chains if c.source in sources]
            key = chain_key(tgt.is_files, tgt.name, members)
            if self.cache and key not in self._judged and key in self._inflight:
                await asyncio.shield(self._inflight[key])
            hit = self._judged.get(key) if self.cache else None
            if hit is not None:
                self._judged.move_to_end(key)
                self.chain_hits += 1
            else:
                todo.append(chain)
                if self.cache and key not in self._inflight:
                    self._inflight[key] = asyncio.get_running_loop().create_future()
                    mine.append(key)
        try:
            return await self._judge(tgt, chains, when, todo, started, deployed)
        finally:
            for key in mine:
                future = self._inflight.pop(key)
                if not future.done():
                    future.set_result(None)

    async def _judge(
        self,
        tgt: Target,
        chains: Sequence[PresentedChain],
        when: datetime,
        todo: list[PresentedChain],
        started: float,
        deployed: Sequence[DeployedRef] | None = None,
    ) -> Diagnosis:
        aia: dict[str, AiaFetch] = {}
        aia_notes: list[str] = []
        if self.fetch_aia and todo:
            aia, aia_notes = await collect_aia(todo, self.index, self.aia_fetcher, budget=self.aia_timeout)
        evidence = Evidence(
            target=tgt,
            at=when,
            chains=tuple(chains),
            stores=self.stores,
            aia=aia,
            aia_notes=tuple(aia_notes),
            extra_roots=tuple(self.extra),
            expected=self.expected,
            expected_source=self.expect,
            warn_days=self.warn_days,
            key_public=self.key_public,
            key_source=self.key,
            client_stores=self.client_stores,
            revocation_checked=self.revocation,
            crls=self.crls,
            max_chain_depth=self.max_chain_depth,
            deployed=self.load_deployed() if deployed is None else read_deployed(deployed),
            server_type=self.server_type if not deployed else _server_type(deployed, self.server_type),
            policy=self.policy,
            labels=tgt.labels if not self.labels else tuple({**dict(self.labels), **dict(tgt.labels)}.items()),
            ct_logs=self.ct_logs,
            public_roots=self.public_roots,
        )
        analyses = {
            tuple(certinfo.fingerprint(x) for x in chain.certs): analyse(chain, evidence, self.index) for chain in todo
        }
        if self.revocation and analyses:
            factory = lambda: self.revocation_fetcher  # noqa: E731 - created only if there is something to ask
            evidence = await collect_revocation_evidence(evidence, analyses, factory, self.revocation_timeout)
        if self._wants_caa(evidence):
            evidence = replace(evidence, caa=await self.collect_caa(chains))
        diagnosis = judge(
            evidence,
            index=self.index,
            notes=self.notes,
            started=started,
            analyses=analyses,
            judged=self._lookup(tgt, chains) if self.cache else None,
            clients=self.verdict_clients,
            memo=self.predicted if self.cache else None,
        )
        if self.cache:
            self._remember(tgt, chains, diagnosis)
        return diagnosis

    def _wants_caa(self, evidence: Evidence) -> bool:
        """CAA is looked up with ``caa=True``, for network targets with ``caa=None``, and whenever the policy's
        ``caa_required`` applies to the target."""
        rule = self.policy.rules_for(dict(evidence.labels)).get("caa_required") if self.policy is not None else None
        if rule is not None and rule.value:
            return True
        return self.caa is True or (self.caa is None and not evidence.target.is_files)

    async def collect_caa(self, chains: Sequence[PresentedChain]) -> Any:
        """The :class:`certdoctor.collect.caa.CaaEvidence` of the leaves' DNS names (the session's resolver and
        its answer cache are shared by every target)."""
        from .collect.caa import CaaResolver, collect_caa, leaf_dns_names

        def resolver() -> Any:  # made once, on the first name that is looked up
            if self._caa_resolver is None:
                self._caa_resolver = CaaResolver(self.dns_server)
            return self._caa_resolver

        return await collect_caa(
            leaf_dns_names(chains),
            server=self.dns_server,
            timeout=self.caa_timeout,
            issuers=self.caa_issuers,
            resolver=resolver,
        )

    # the judgement cache

    def forget_judgements(self) -> None:
        """Drop the cached chain judgements and client verdicts (made at the old time, when ``at`` moves on: a
        long-running monitor's clock)."""
        from .clients import PredictionMemo

        self._judged.clear()
        self.predicted = PredictionMemo(self.predicted.size)

    def _lookup(self, tgt: Target, chains: Sequence[PresentedChain]) -> Any:
        def lookup(sources: tuple[str, ...], members: Sequence[PresentedChain]) -> ChainJudgement | None:
            hit = self._judged.get(chain_key(tgt.is_files, tgt.name, members))
            if hit is None:
                return None
            return replace(hit, findings=tuple(rebase(hit.findings, hit.sources, sources)), sources=sources)

        return lookup

    def _remember(self, tgt: Target, chains: Sequence[PresentedChain], diagnosis: Diagnosis) -> None:
        for report in diagnosis.reports:
            members = [c for c in chains if c.source in report.sources]
            key = chain_key(tgt.is_files, tgt.name, members)
            if key in self._judged:
                continue
            self.chain_misses += 1
            judged = ChainJudgement(report.analysis, report.revocation, report.chain_findings, report.sources)
            self._judged[key] = judged
            if len(self._judged) > CACHE_SIZE:
                self._judged.popitem(last=False)


def read_deployed(refs: Sequence[DeployedRef]) -> tuple[DeployedFile, ...]:
    """The files of ``refs`` as they are on disk now, each with its own password (from its environment variable
    or file, read now) and key file; never raises (a password or key that cannot be read leaves the file's own
    error to say what is wrong)."""
    import os

    from .collect.deployed import read_deployed_file

    out = []
    for ref in refs:
        password: bytes | None = None
        if ref.password_env and os.environ.get(ref.password_env) is not None:
            password = os.environ[ref.password_env].encode()
        elif ref.password_file:
            try:
                with open(ref.password_file, "rb") as fh:
                    password = fh.read(4096).rstrip(b"\r\n")
            except OSError:
                password = None
        key_public = None
        if ref.key:
            try:
                from .collect.keys import load_private_key

                key_public = load_private_key(ref.key, None).public_key()
            except Exception:  # unreadable or encrypted key: the file is still compared, without its key
                key_public = None
        out.append(read_deployed_file(ref.path, password=password, key=ref.key, key_public=key_public))
    return tuple(out)


def _server_type(refs: Sequence[DeployedRef], default: Any) -> Any:
    """The server type the refs name (the first that names one), else ``default``."""
    return next((r.server_type for r in refs if r.server_type), default)
