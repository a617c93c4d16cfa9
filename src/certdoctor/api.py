"""The public entry point: collect evidence about a target, then judge it.

    >>> from certdoctor import diagnose
    >>> d = diagnose("example.com")            # or diagnose(files=["served.pem"], name="example.com")
    >>> d.valid, [f.id for f in d.findings]

``diagnose_async`` is the same as a coroutine, for callers that already run an event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from . import certinfo
from .model import AiaFetch, Evidence, Finding, PresentedChain, Severity, Target, TrustStore
from .paths import ChainAnalysis, StoreIndex, analyse, dedupe, missing_issuer_urls
from .revocation import CertRevocation, assess, evaluate_ocsp, path_pairs
from .revocation import urls as revocation_urls

DEFAULT_TIMEOUT = 10.0
MAX_CHAIN = 32  # certificates analysed per chain; the rest is reported, not verified
MAX_AIA_ROUNDS = 4
MAX_AIA_PER_CHAIN = 8
DEFAULT_REVOCATION_TIMEOUT = 5.0
_UNSET: Any = object()


class DiagnoseError(Exception):
    """A usage or connection problem that prevents any diagnosis (the CLI exits with status 2)."""


def parse_target(spec: str, default_port: int = 443) -> tuple[str, int]:
    """'host', 'host:port', 'https://host[:port]/path', '[v6]:port', or a bare IPv6 address."""
    spec = spec.strip()
    if not spec:
        raise DiagnoseError("empty target")
    if "://" in spec:
        parts = urlsplit(spec)
        if not parts.hostname:
            raise DiagnoseError(f"cannot read a host name from {spec!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise DiagnoseError(f"invalid port in {spec!r}") from exc
        default = {"https": 443, "ldaps": 636, "imaps": 993, "smtps": 465, "pop3s": 995}.get(parts.scheme)
        return parts.hostname, port or default or default_port
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port_s = rest.lstrip(":")
    elif spec.count(":") == 1:
        host, port_s = spec.split(":")
    else:
        host, port_s = spec, ""  # a name, or an IPv6 literal without brackets
    if not host:
        raise DiagnoseError(f"cannot read a host name from {spec!r}")
    if not port_s:
        return host, default_port
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise DiagnoseError(f"invalid port {port_s!r} in {spec!r}")
    return host, int(port_s)


@dataclass(frozen=True)
class ChainReport:
    """One distinct chain and every source that presented it."""

    sources: tuple[str, ...]
    chain: PresentedChain
    analysis: ChainAnalysis
    revocation: tuple[CertRevocation, ...] = ()  # one per certificate of the best path (trust anchor excluded)
    chain_findings: tuple[Finding, ...] = ()  # what the chain checks found on this chain


@dataclass(frozen=True, repr=False)
class Diagnosis:
    target: Target
    evidence: Evidence
    reports: tuple[ChainReport, ...]
    failures: tuple[PresentedChain, ...]
    findings: tuple[Finding, ...]
    elapsed: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __repr__(self) -> str:  # the generated one is 100 KB (asyncio.run even calls it, twice)
        return f"<Diagnosis {self.target.label()} {self.exit_code} findings={self.ids()}>"

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def reachable(self) -> bool:
        return bool(self.reports)

    @property
    def valid(self) -> bool:
        return self.reachable and not self.errors

    @property
    def exit_code(self) -> int:
        if not self.reachable:
            return 2
        return 0 if self.valid else 1

    def ids(self) -> list[str]:
        return [f.id for f in self.findings]

    @cached_property
    def clients(self) -> tuple[Any, ...]:
        """Per-client predictions (:class:`certdoctor.clients.ClientVerdict`), computed on first use."""
        from .clients import predict

        return tuple(predict(self))

    def to_dict(self) -> dict[str, Any]:
        ev = self.evidence
        return {
            "certdoctor": 1,
            "target": {
                "name": self.target.name,
                "port": None if self.target.is_files else self.target.port,
                "sni": self.target.sni,
                "files": list(self.target.files),
            },
            "checked_at": ev.at.isoformat(),
            "verdict": "valid" if self.valid else ("unreachable" if not self.reachable else "invalid"),
            "exit_code": self.exit_code,
            "stores": [{"name": s.name, "description": s.description, "roots": len(s.roots)} for s in ev.stores]
            + (
                [{"name": "custom", "description": "--ca-file", "roots": len(ev.extra_roots)}] if ev.extra_roots else []
            ),
            "endpoints": [
                {
                    "source": c.source,
                    "address": c.address,
                    "ok": c.ok,
                    "tls_version": c.tls_version,
                    "cipher": c.cipher,
                    "certificates_received": c.total_received,
                    "error": c.error,
                    "error_kind": c.error_kind,
                    "elapsed_ms": round(c.elapsed * 1000, 1),
                }
                for c in ev.chains
            ],
            "chains": [_report_dict(r, ev.at) for r in self.reports],
            "aia": [
                {
                    "url": a.url,
                    "status": a.status,
                    "certificates": [certinfo.fingerprint(c) for c in a.certs],
                    "error": a.error,
                }
                for a in ev.aia.values()
            ],
            "findings": [f.to_dict() for f in self.findings],
            "clients": [v.to_dict() for v in self.clients] if ev.client_stores else [],
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "info": len(self.findings) - len(self.errors) - len(self.warnings),
            },
            "notes": list(self.notes),
            "elapsed_ms": round(self.elapsed * 1000, 1),
        }


def _report_dict(r: ChainReport, at: datetime) -> dict[str, Any]:
    a = r.analysis
    best = a.best
    return {
        "sources": list(r.sources),
        "presented": [dict(certinfo.summary(c, at), position=i) for i, c in enumerate(r.chain.certs)],
        "certificates_received": r.chain.total_received,
        "path": {
            "end": best.end,
            "anchored_in": list(best.anchored_in),
            "certificates": [
                {
                    "sha256": certinfo.fingerprint(n.cert),
                    "subject": certinfo.subject(n.cert),
                    "origin": n.origin,
                    "position": n.position,
                    "detail": n.detail,
                }
                for n in best.nodes
            ],
        },
        "revocation": [c.to_dict() for c in r.revocation],
        "trust": [
            {
                "store": v.store,
                "description": v.description,
                "valid": v.ok,
                "error": v.error,
                "valid_with_aia": v.ok_with_aia,
            }
            for v in a.verdicts
        ],
    }


def _parse_at(at: datetime | str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError as exc:
            raise DiagnoseError(f"invalid date {at!r}: use YYYY-MM-DD or an ISO 8601 date-time") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def _load_stores(names: Sequence[str], explicit: bool) -> tuple[list[TrustStore], list[str]]:
    from .collect.stores import StoreUnavailable, load_store

    stores, notes = [], []
    for name in names:
        try:
            stores.append(load_store(name))
        except StoreUnavailable as exc:
            if explicit:
                raise DiagnoseError(str(exc)) from exc
            notes.append(f"trust store skipped: {exc}")
    return stores, notes


async def _collect_aia(chains: Sequence[PresentedChain], index: StoreIndex, fetcher: Any) -> dict[str, AiaFetch]:
    """Download missing issuers named by AIA caIssuers URLs, a few levels up, for every distinct chain."""
    results: dict[str, AiaFetch] = {}
    for chain in chains:
        known = dedupe(chain.certs)
        frontier = list(known)
        fetched = 0
        for _ in range(MAX_AIA_ROUNDS):
            urls = [u for u in missing_issuer_urls(frontier, known, index) if u not in results]
            urls = urls[: max(0, MAX_AIA_PER_CHAIN - fetched)]
            if not urls:
                break
            fetched += len(urls)
            got = await asyncio.gather(*(fetcher.fetch(u) for u in urls))
            frontier = []
            for res in got:
                results[res.url] = res
                new = [c for c in res.certs if c not in known]
                known.extend(new)
                frontier.extend(new)
            if not frontier:
                break
    return results


def _distinct(chains: Sequence[PresentedChain]) -> list[tuple[tuple[str, ...], PresentedChain]]:
    """(fingerprints, chain) for each distinct chain presented."""
    return [(tuple(certinfo.fingerprint(x) for x in c.certs), c) for _, c in _group(chains)]


async def _collect_revocation(
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


def _group(chains: Sequence[PresentedChain]) -> list[tuple[tuple[str, ...], PresentedChain]]:
    groups: dict[tuple[str, ...], list[PresentedChain]] = {}
    for c in chains:
        if c.ok:
            groups.setdefault(tuple(certinfo.fingerprint(x) for x in c.certs), []).append(c)
    return [(tuple(c.source for c in members), members[0]) for members in groups.values()]


async def diagnose_async(
    target: str | None = None,
    *,
    port: int | None = None,
    files: Sequence[str] = (),
    name: str | None = _UNSET,
    resolve: Sequence[str] = (),
    sni: str | None = _UNSET,
    timeout: float = DEFAULT_TIMEOUT,
    ca_files: Sequence[str] = (),
    ca_certs: Sequence[x509.Certificate] = (),
    trust_stores: Sequence[str] | None = None,
    at: datetime | str | None = None,
    expect: str | None = None,
    warn_days: int = 30,
    fetch_aia: bool = True,
    aia_fetcher: Any = None,
    key: str | None = None,
    key_password: bytes | None = None,
    clients: bool = True,
    revocation: bool = True,
    revocation_timeout: float | None = None,
    revocation_fetcher: Any = None,
) -> Diagnosis:
    """Diagnose a server (``target`` = "host[:port]" or URL) or local chain ``files``.

    ``name``: the name to verify (default: the target host; for files, no name check unless given).
    ``resolve``: addresses to connect to instead of DNS (curl's --resolve). ``sni``: the SNI to send
    (default: the name; None: no SNI). ``trust_stores``: store names (default mozilla + system).
    ``ca_files``/``ca_certs``: extra trusted roots. ``at``: judge as of this moment. ``expect``: a file
    with the certificate that should be served. ``clients``: also load the trust stores of the client
    families (Chrome, Java, …) so that :func:`certdoctor.clients.predict` can use them. ``revocation``:
    query OCSP responders and CRLs for every certificate of the built path (stapled responses are judged
    either way), within ``revocation_timeout`` seconds in all (default 5). ``aia_fetcher`` and
    ``revocation_fetcher`` may be shared across calls to share their caches.
    """
    from .session import Session

    started = time.perf_counter()
    session = Session(
        timeout=timeout,
        ca_files=ca_files,
        ca_certs=ca_certs,
        trust_stores=trust_stores,
        at=at,
        expect=expect,
        warn_days=warn_days,
        fetch_aia=fetch_aia,
        aia_fetcher=aia_fetcher,
        key=key,
        key_password=key_password,
        clients=clients,
        revocation=revocation,
        revocation_timeout=revocation_timeout,
        revocation_fetcher=revocation_fetcher,
    )
    async with session:
        tgt, host = session.target_for(target, port=port, files=files, name=name, resolve=resolve, sni=sni)
        chains = await session.collect_chains(tgt, host)
        return await session.judge_chains(tgt, chains, started=started)


def judge(
    evidence: Evidence,
    *,
    index: StoreIndex | None = None,
    notes: Sequence[str] = (),
    started: float | None = None,
    analyses: dict[tuple[str, ...], ChainAnalysis] | None = None,
    judged: Callable[[tuple[str, ...], list[PresentedChain]], Any] | None = None,
) -> Diagnosis:
    """Run every registered check on collected evidence. Pure: no network or file access.

    ``analyses``: path analyses already computed for this evidence, by the chain's fingerprints.
    ``judged(sources, members)``: a cache of earlier judgements of the same chain presented the same way
    (a :class:`certdoctor.session.ChainJudgement`, or None); used by sessions that diagnose many targets.
    """
    from .checks import ChainContext, TargetContext, run_chain_checks, run_checks

    started = time.perf_counter() if started is None else started
    index = index or StoreIndex(evidence.stores, evidence.extra_roots)
    analyses = analyses or {}
    contexts = []
    for sources, chain in _group(evidence.chains):
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
    return Diagnosis(
        evidence.target,
        evidence,
        reports,
        tuple(failures),
        tuple(findings),
        time.perf_counter() - started,
        (*notes, *evidence.revocation_notes),
    )


def diagnose(target: str | None = None, **kwargs: Any) -> Diagnosis:
    """Synchronous form of :func:`diagnose_async` (same arguments)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(diagnose_async(target, **kwargs))
    raise RuntimeError("diagnose() called from a running event loop: await diagnose_async() instead")
