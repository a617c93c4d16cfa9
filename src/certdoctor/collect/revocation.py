"""Query OCSP responders and download CRLs for the certificates of a built path.

The URLs come from certificates a server sent: every request goes through
:class:`~certdoctor.collect.http.BoundedHttp` (time and size limits), and the whole lookup of a target is
bounded by one time budget, so a slow responder costs at most that budget, never a hang.

Responses are cached in the :class:`RevocationFetcher` until their nextUpdate (failures for a minute), keyed
by URL + issuer key + serial for OCSP and by URL for CRLs. A scan that shares one fetcher across targets
therefore asks each responder once per certificate, and downloads each CRL once.

Policy (like Windows CryptoAPI and Java's PKIX checker with both methods on): OCSP first; the CRL only when
no OCSP responder gave a valid, definitive answer (or the certificate has no OCSP URL). A fresh, valid
stapled response for the leaf makes the leaf's own OCSP query unnecessary.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from cryptography import x509

from .. import certinfo
from ..model import RevocationFetch
from ..revocation import (
    crl_key,
    crl_next_update,
    evaluate_crl,
    evaluate_ocsp,
    ocsp_key,
    ocsp_next_update,
    ocsp_request,
    urls,
)
from .http import AsyncClosing, BoundedHttp, Download, SharedResults, format_seconds
from .proxy import ProxyPolicy

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_REVOCATION_TIMEOUT", "RevocationFetcher", "collect_revocation"]

DEFAULT_REVOCATION_TIMEOUT = 5.0
MAX_OCSP_BYTES = 65_536
MAX_CRL_BYTES = 16 * 1024 * 1024
FAILURE_TTL = 60.0  # seconds a failed lookup is remembered (a dead responder is not asked again at once)
NO_NEXT_UPDATE_TTL = 3600.0
_USER_AGENT = "certdoctor (revocation check)"
_OCSP_HEADERS = {"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"}

Pair = tuple[x509.Certificate, x509.Certificate]


def _until(next_update: datetime | None) -> float:
    now = time.time()
    if next_update is None:
        return now + NO_NEXT_UPDATE_TTL
    until = next_update.timestamp()
    return until if until > now else now + FAILURE_TTL


class RevocationFetcher(AsyncClosing):
    """OCSP and CRL lookups with a cache shared by every target diagnosed with this fetcher."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_REVOCATION_TIMEOUT,
        max_ocsp_bytes: int = MAX_OCSP_BYTES,
        max_crl_bytes: int = MAX_CRL_BYTES,
        client: httpx.AsyncClient | None = None,
        refuse_private: bool = False,
        proxies: ProxyPolicy | None = None,
    ) -> None:
        """``refuse_private``: connect to public addresses only (:mod:`certdoctor.collect.netguard`)."""
        self._http = BoundedHttp(
            timeout=timeout,
            max_bytes=max_ocsp_bytes,
            user_agent=_USER_AGENT,
            client=client,
            refuse_private=refuse_private,
            proxies=proxies,
        )
        self._max_crl_bytes = max_crl_bytes
        self._ocsp: SharedResults[str, RevocationFetch] = SharedResults()
        self._crl: SharedResults[str, RevocationFetch] = SharedResults()

    async def aclose(self) -> None:
        await self._ocsp.aclose()
        await self._crl.aclose()
        await self._http.aclose()

    @property
    def stats(self) -> dict[str, int]:
        """Cache hits and network lookups so far (for scans and benchmarks)."""
        return {
            "ocsp_hits": self._ocsp.hits,
            "ocsp_queries": self._ocsp.misses,
            "crl_hits": self._crl.hits,
            "crl_downloads": self._crl.misses,
        }

    async def ocsp(
        self, url: str, cert: x509.Certificate, issuer: x509.Certificate, *, timeout: float | None = None
    ) -> RevocationFetch:
        """Ask ``url`` about ``cert``: POST, then GET if the responder refuses the POST. Never raises."""
        key = ocsp_key(url, cert, issuer)

        def expires(f: RevocationFetch) -> float:
            return _until(ocsp_next_update(f.data)) if f.data is not None else time.time() + FAILURE_TTL

        return await self._cached(self._ocsp, key, lambda: self._query(url, key, cert, issuer, timeout), expires)

    async def crl(self, url: str, *, timeout: float | None = None) -> RevocationFetch:
        """Download the CRL at ``url`` (DER or PEM, at most 16 MiB). Never raises."""
        key = crl_key(url)

        def expires(f: RevocationFetch) -> float:
            return _until(crl_next_update(f.data)) if f.data is not None else time.time() + FAILURE_TTL

        async def download() -> RevocationFetch:
            started = time.perf_counter()
            got = await self._http.request("GET", url, timeout=timeout, max_bytes=self._max_crl_bytes)
            return _fetch("crl", url, key, got, "GET", started)

        return await self._cached(self._crl, key, download, expires)

    @staticmethod
    async def _cached(
        results: SharedResults[str, RevocationFetch],
        key: str,
        make: Callable[[], Awaitable[RevocationFetch]],
        expires: Callable[[RevocationFetch], float],
    ) -> RevocationFetch:
        before = results.hits
        got = await results.get(key, make, expires)
        if results.hits > before and not got.cached:
            return dataclasses.replace(got, cached=True)
        return got

    async def _query(
        self, url: str, key: str, cert: x509.Certificate, issuer: x509.Certificate, timeout: float | None
    ) -> RevocationFetch:
        started = time.perf_counter()
        request = ocsp_request(cert, issuer)
        got = await self._http.request("POST", url, content=request, headers=_OCSP_HEADERS, timeout=timeout)
        if got.body is not None or got.status is None or got.status == 200:
            return _fetch("ocsp", url, key, got, "POST", started)
        # RFC 6960 A.1: GET {url}/{url-encoded base64 of the DER request}, for responders that refuse POST.
        spent = time.perf_counter() - started
        remaining = None if timeout is None else max(0.001, timeout - spent)
        get_url = url.rstrip("/") + "/" + quote(base64.b64encode(request).decode("ascii"), safe="")
        retry = await self._http.request(
            "GET", get_url, headers={"Accept": "application/ocsp-response"}, timeout=remaining
        )
        if retry.body is None:
            error = f"POST: {got.error}; GET: {retry.error}"
            return RevocationFetch(
                "ocsp", url, key, error=error, status=retry.status, method="GET", elapsed=time.perf_counter() - started
            )
        return _fetch("ocsp", url, key, retry, "GET", started)


def _fetch(kind: str, url: str, key: str, got: Download, method: str, started: float) -> RevocationFetch:
    return RevocationFetch(
        kind,
        url,
        key,
        data=got.body,
        error=got.error,
        status=got.status,
        method=method,
        elapsed=time.perf_counter() - started,
    )


async def collect_revocation(
    pairs: Sequence[Pair],
    fetcher: RevocationFetcher,
    at: datetime,
    *,
    budget: float = DEFAULT_REVOCATION_TIMEOUT,
    leaf_answered: Sequence[x509.Certificate] = (),
) -> tuple[dict[str, RevocationFetch], list[str]]:
    """Look up every (certificate, issuer) pair, all pairs concurrently, within ``budget`` seconds in all.

    ``leaf_answered``: leaves whose stapled response already answered (their OCSP query is skipped).
    Returns the fetches by key, and notes (e.g. when the budget ran out).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    results: dict[str, RevocationFetch] = {}
    notes: list[str] = []
    skip = {certinfo.fingerprint(c) for c in leaf_answered}
    unique: dict[tuple[str, str], Pair] = {}
    for cert, issuer in pairs:
        unique.setdefault((certinfo.fingerprint(cert), certinfo.fingerprint(issuer)), (cert, issuer))

    def remaining() -> float:
        return deadline - loop.time()

    def out_of_time(kind: str, url: str, key: str) -> RevocationFetch:
        return RevocationFetch(
            kind, url, key, error=f"not tried: the {format_seconds(budget)} s revocation budget ran out"
        )

    async def one(cert: x509.Certificate, issuer: x509.Certificate) -> None:
        ocsp_urls, crl_urls = urls(cert)
        if certinfo.fingerprint(cert) not in skip:
            for url in ocsp_urls:
                key = ocsp_key(url, cert, issuer)
                if remaining() <= 0:
                    results[key] = out_of_time("ocsp", url, key)
                    continue
                f = await fetcher.ocsp(url, cert, issuer, timeout=remaining())
                results[key] = f
                if f.data is not None and evaluate_ocsp(f.data, cert, issuer, at).definitive:
                    return
        for url in crl_urls:
            key = crl_key(url)
            if remaining() <= 0:
                results[key] = out_of_time("crl", url, key)
                continue
            f = await fetcher.crl(url, timeout=remaining())
            results[key] = f
            if f.data is not None and evaluate_crl(f.data, cert, issuer, at, url=url).definitive:
                return

    tasks = [asyncio.ensure_future(one(c, i)) for c, i in unique.values()]
    if tasks:
        # Each request is bounded by the remaining budget; this outer bound is only a safety net.
        done, pending = await asyncio.wait(tasks, timeout=budget + 1.0)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            notes.append(f"revocation lookups stopped after {format_seconds(budget)} s")
        for task in done:
            if task.exception() is not None:  # defensive: a lookup bug must not sink the diagnosis
                notes.append(f"revocation lookup failed: {type(task.exception()).__name__}: {task.exception()}")
    return results, notes
