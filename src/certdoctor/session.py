"""A diagnosis session: what many diagnoses share.

:func:`certdoctor.diagnose` builds a session for one target. Tools that diagnose many targets (the scanner,
a monitor) keep one :class:`Session` open instead, so that

* trust stores, ``--ca-file`` roots, the expected certificate and the key are loaded once;
* AIA downloads and OCSP/CRL answers are cached across targets (until the answers' nextUpdate);
* with ``cache=True`` (which fixes the check time for the whole session), the judgement of each distinct
  chain — path building, per-store verification, revocation status and every chain check — is computed once
  and reused for every other server presenting the same chain to the same name.

    >>> async with Session(ca_files=["corp-root.pem"]) as s:
    ...     for host in hosts:
    ...         d = await s.diagnose(host)
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography import x509

from . import certinfo
from .api import (
    _UNSET,
    DEFAULT_REVOCATION_TIMEOUT,
    DEFAULT_TIMEOUT,
    MAX_CHAIN,
    DiagnoseError,
    Diagnosis,
    _collect_aia,
    _collect_revocation,
    _group,
    _load_stores,
    _parse_at,
    judge,
    parse_target,
)
from .collect.http import AsyncClosing
from .model import AiaFetch, Evidence, Finding, PresentedChain, Target, TrustStore
from .paths import ChainAnalysis, StoreIndex, analyse
from .revocation import CertRevocation

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


def _handshake_module() -> Any:
    """The handshake collector, imported on first use (it loads pyOpenSSL, which file checks never need)."""
    global _HANDSHAKE
    if _HANDSHAKE is None:
        from .collect import handshake

        _HANDSHAKE = handshake
    return _HANDSHAKE


class Session(AsyncClosing):
    """Shared configuration and caches for diagnosing many targets (see the module docstring).

    The arguments are those of :func:`certdoctor.diagnose` that do not depend on the target. ``at`` None
    means "now" at each diagnosis — unless ``cache`` is on, which fixes it at the session's start so that
    cached judgements stay true for every target.
    """

    def __init__(
        self,
        *,
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
        cache: bool = False,
    ) -> None:
        from .collect.files import CertificateParseError, load_certificate_files
        from .collect.stores import DEFAULT_STORES

        self.timeout = timeout
        self.at = _parse_at(at) if at is not None or cache else None
        explicit = trust_stores is not None
        names = list(trust_stores) if trust_stores is not None else list(DEFAULT_STORES)
        stores, self.notes = _load_stores(names, explicit)
        self.stores: tuple[TrustStore, ...] = tuple(stores)
        try:
            self.extra = (*ca_certs, *load_certificate_files(ca_files)) if ca_files else tuple(ca_certs)
            self.expected = tuple(load_certificate_files([expect])) if expect else None
        except CertificateParseError as exc:
            raise DiagnoseError(str(exc)) from exc
        self.expect = expect
        self.key = key
        self.key_public = None
        if key:
            from .collect.keys import KeyLoadError, load_private_key

            try:
                self.key_public = load_private_key(key, key_password).public_key()
            except KeyLoadError as exc:
                raise DiagnoseError(str(exc)) from exc
        if not self.stores and not self.extra:
            raise DiagnoseError("no trust store available: select one with --trust-store or give --ca-file")
        self.index = StoreIndex(self.stores, self.extra)
        self.warn_days = warn_days
        self.fetch_aia = fetch_aia
        self.revocation = revocation
        self.revocation_timeout = revocation_timeout or DEFAULT_REVOCATION_TIMEOUT
        self.client_stores: tuple[TrustStore, ...] = ()
        if clients:
            from .clients import CLIENT_STORES

            loaded, _ = _load_stores(CLIENT_STORES, explicit=False)
            self.client_stores = tuple(loaded)
        self._aia_fetcher = aia_fetcher
        self._own_aia = aia_fetcher is None
        self._revocation_fetcher = revocation_fetcher
        self._own_revocation = revocation_fetcher is None
        self._revocation_stats: dict[str, int] = {}
        self.cache = cache
        self._judged: OrderedDict[tuple[Any, ...], ChainJudgement] = OrderedDict()
        self._inflight: dict[tuple[Any, ...], asyncio.Future[None]] = {}
        self.chain_hits = 0
        self.chain_misses = 0

    # fetchers (created on first use, closed with the session when the session made them)

    @property
    def aia_fetcher(self) -> Any:
        if self._aia_fetcher is None:
            from .collect.aia import AiaFetcher

            self._aia_fetcher = AiaFetcher(timeout=min(self.timeout, 10.0))
        return self._aia_fetcher

    @property
    def revocation_fetcher(self) -> Any:
        if self._revocation_fetcher is None:
            from .collect.revocation import RevocationFetcher

            self._revocation_fetcher = RevocationFetcher(timeout=self.revocation_timeout)
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
        name: str | None = _UNSET,
        resolve: Sequence[str] = (),
        sni: str | None = _UNSET,
    ) -> tuple[Target, str | None]:
        """The :class:`Target` for these arguments, and the host to resolve (None for files)."""
        if files:
            if target:
                raise DiagnoseError("give either a server or --file, not both")
            return Target(name=None if name is _UNSET else name, port=0, sni=None, files=tuple(files)), None
        if not target:
            raise DiagnoseError("no target: give HOST[:PORT], a URL, or --file")
        host, tport = parse_target(target, port or 443)
        if port:
            tport = port
        verify_name = host if name is _UNSET else name
        send_sni = (None if certinfo.is_ip(host) else host) if sni is _UNSET else sni
        return Target(name=verify_name, port=tport, sni=send_sni, addresses=tuple(resolve)), host

    async def collect_chains(self, tgt: Target, host: str | None) -> list[PresentedChain]:
        """The chains every address (or file) presents; raises DiagnoseError when the name does not resolve."""
        if tgt.files:
            from .collect.files import load_chain_file

            return [load_chain_file(f, max_certs=MAX_CHAIN) for f in tgt.files]
        return await self.fetch(host or "", tgt.port, tgt.sni, tgt.addresses)

    async def fetch(
        self,
        host: str,
        port: int,
        sni: str | None,
        addresses: Sequence[str] = (),
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> list[PresentedChain]:
        """The chain each address of ``host`` presents (``addresses``, when given, instead of resolving);
        raises DiagnoseError when the name does not resolve. ``gate`` is awaited before each connection."""
        handshake = _handshake_module()
        if not addresses:
            try:
                addresses = await handshake.resolve(host, port, self.timeout)
            except handshake.ResolveError as exc:
                raise DiagnoseError(str(exc)) from exc
        fetch_chain = handshake.fetch_chain
        if len(addresses) == 1:  # the common case, without gather's tasks
            return [await fetch_chain(addresses[0], port, sni, self.timeout, max_certs=MAX_CHAIN, gate=gate)]
        return list(
            await asyncio.gather(
                *(fetch_chain(a, port, sni, self.timeout, max_certs=MAX_CHAIN, gate=gate) for a in addresses)
            )
        )

    async def diagnose(
        self,
        target: str | None = None,
        *,
        port: int | None = None,
        files: Sequence[str] = (),
        name: str | None = _UNSET,
        resolve: Sequence[str] = (),
        sni: str | None = _UNSET,
    ) -> Diagnosis:
        """Diagnose one server or set of chain files (arguments as in :func:`certdoctor.diagnose`)."""
        started = time.perf_counter()
        tgt, host = self.target_for(target, port=port, files=files, name=name, resolve=resolve, sni=sni)
        chains = await self.collect_chains(tgt, host)
        return await self.judge_chains(tgt, chains, started=started)

    async def judge_chains(
        self, tgt: Target, chains: Sequence[PresentedChain], *, started: float | None = None
    ) -> Diagnosis:
        """Collect AIA and revocation evidence for chains already fetched, then judge them."""
        started = time.perf_counter() if started is None else started
        when = self.at or _parse_at(None)
        groups = _group(chains)
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
            return await self._judge(tgt, chains, when, todo, started)
        finally:
            for key in mine:
                future = self._inflight.pop(key)
                if not future.done():
                    future.set_result(None)

    async def _judge(
        self, tgt: Target, chains: Sequence[PresentedChain], when: datetime, todo: list[PresentedChain], started: float
    ) -> Diagnosis:
        aia: dict[str, AiaFetch] = {}
        if self.fetch_aia and todo:
            aia = await _collect_aia(todo, self.index, self.aia_fetcher)
        evidence = Evidence(
            target=tgt,
            at=when,
            chains=tuple(chains),
            stores=self.stores,
            aia=aia,
            extra_roots=tuple(self.extra),
            expected=self.expected,
            expected_source=self.expect,
            warn_days=self.warn_days,
            key_public=self.key_public,
            key_source=self.key,
            client_stores=self.client_stores,
            revocation_checked=self.revocation,
        )
        analyses = {
            tuple(certinfo.fingerprint(x) for x in chain.certs): analyse(chain, evidence, self.index) for chain in todo
        }
        if self.revocation and analyses:
            factory = lambda: self.revocation_fetcher  # noqa: E731 - created only if there is something to ask
            evidence = await _collect_revocation(evidence, analyses, factory, self.revocation_timeout)
        diagnosis = judge(
            evidence,
            index=self.index,
            notes=self.notes,
            started=started,
            analyses=analyses,
            judged=self._lookup(tgt, chains) if self.cache else None,
        )
        if self.cache:
            self._remember(tgt, chains, diagnosis)
        return diagnosis

    # the judgement cache

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
