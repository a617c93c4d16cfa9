"""Download the issuer certificates named in AIA caIssuers URLs.

Downloads go through :class:`~certdoctor.collect.http.BoundedHttp` (time and size limits, capped
decompression); failures come back as an :class:`AiaFetch` with ``error`` set.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..certinfo import ca_issuer_urls  # re-exported: one implementation
from ..model import AiaFetch
from .files import CertificateParseError, parse_certificates
from .http import AsyncClosing, BoundedHttp, SharedResults
from .proxy import ProxyPolicy

if TYPE_CHECKING:
    import httpx

__all__ = ["AiaFetcher", "ca_issuer_urls"]

_USER_AGENT = "certdoctor (AIA caIssuers fetch)"
FAILURE_TTL = 60.0  # seconds a failed download is remembered (then asked again: a scan outlives outages)


class AiaFetcher(AsyncClosing):
    """Fetches AIA URLs with a per-instance cache; concurrent fetches of one URL share one request.

    ``timeout``: seconds per download (at most; :meth:`fetch` may give less). ``refuse_private``: connect to
    public addresses only (:mod:`certdoctor.collect.netguard`).
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 262_144,
        max_redirects: int = 3,
        client: httpx.AsyncClient | None = None,
        refuse_private: bool = False,
        proxies: ProxyPolicy | None = None,
    ) -> None:
        self._http = BoundedHttp(
            timeout=timeout,
            max_bytes=max_bytes,
            max_redirects=max_redirects,
            user_agent=_USER_AGENT,
            client=client,
            refuse_private=refuse_private,
            proxies=proxies,
        )
        self._results: SharedResults[str, AiaFetch] = SharedResults()

    async def aclose(self) -> None:
        await self._results.aclose()
        await self._http.aclose()

    async def fetch(self, url: str, *, timeout: float | None = None) -> AiaFetch:
        """Download and parse one caIssuers URL within ``timeout`` seconds (None: the fetcher's); never raises
        (errors are in the result). Failures are cached for a minute, answers for the life of the fetcher."""

        def expires(f: AiaFetch) -> float | None:
            return time.time() + FAILURE_TTL if f.error else None

        seconds = None if timeout is None else min(timeout, self._http.timeout)
        return await self._results.get(url, lambda: self._fetch(url, seconds), expires)

    async def _fetch(self, url: str, timeout: float | None) -> AiaFetch:
        got = await self._http.request("GET", url, timeout=timeout)
        if got.body is None:
            return AiaFetch(url=url, error=got.error, status=got.status, content_type=got.content_type, size=got.size)
        try:
            certs = parse_certificates(got.body)
        except CertificateParseError as exc:
            return AiaFetch(url=url, error=str(exc), status=got.status, content_type=got.content_type, size=got.size)
        return AiaFetch(url=url, certs=tuple(certs), status=got.status, content_type=got.content_type, size=got.size)
