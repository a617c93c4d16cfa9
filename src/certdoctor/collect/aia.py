"""Download the issuer certificates named in AIA caIssuers URLs.

AIA URLs come from certificates a server sent, so the URL, the server behind it and the response are
all untrusted: each download is bounded in time (whole request, not per read) and in size, compressed
bodies are inflated with a cap, and failures come back as an :class:`AiaFetch` with ``error`` set.
"""

from __future__ import annotations

import asyncio
import zlib
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..model import AiaFetch
from .files import CertificateParseError, parse_certificates

if TYPE_CHECKING:  # httpx is imported lazily: it costs ~150 ms of CLI start-up
    import httpx

from ..certinfo import ca_issuer_urls  # re-exported: one implementation

__all__ = ["AiaFetcher", "ca_issuer_urls"]

_USER_AGENT = "certdoctor (AIA caIssuers fetch)"


def _format_size(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


class _TooLarge(Exception):
    pass


class AiaFetcher:
    """Fetches AIA URLs with a per-instance cache; concurrent fetches of one URL share one request."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 262_144,
        max_redirects: int = 3,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._client = client
        self._owns_client = client is None
        self._results: dict[str, AiaFetch] = {}
        self._pending: dict[str, asyncio.Task[AiaFetch]] = {}

    async def __aenter__(self) -> AiaFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._pending.clear()
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            # verify=False: an https AIA URL is a courtesy channel; what is downloaded is only a
            # candidate issuer whose signature the checks verify, so TLS adds nothing but failures.
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=True,
                max_redirects=self._max_redirects,
                verify=False,
                headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
            )
        return self._client

    async def fetch(self, url: str) -> AiaFetch:
        """Download and parse one caIssuers URL; never raises (errors are in the result)."""
        done = self._results.get(url)
        if done is not None:
            return done
        task = self._pending.get(url)
        if task is None:
            task = asyncio.ensure_future(self._fetch_and_store(url))
            self._pending[url] = task
        # shield: one impatient caller being cancelled must not cancel the download the others share.
        return await asyncio.shield(task)

    async def _fetch_and_store(self, url: str) -> AiaFetch:
        try:
            result = await self._fetch(url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # defensive: never let a download bug escape
            result = AiaFetch(url=url, error=f"unexpected error: {type(exc).__name__}: {exc}")
        self._results[url] = result
        self._pending.pop(url, None)
        return result

    async def _fetch(self, url: str) -> AiaFetch:
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            return AiaFetch(url=url, error="unsupported URL scheme")

        import httpx

        status: int | None = None
        content_type: str | None = None
        size = 0
        try:
            async with asyncio.timeout(self._timeout):
                async with self._get_client().stream("GET", url) as response:
                    status = response.status_code
                    content_type = response.headers.get("content-type")
                    if status != 200:
                        phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
                        return AiaFetch(
                            url=url, error=f"HTTP {status}{phrase}", status=status, content_type=content_type
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self._max_bytes:
                        raise _TooLarge
                    body = bytearray()
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise _TooLarge
                    size = len(body)
                    encoding = response.headers.get("content-encoding", "").strip().lower()
        except _TooLarge:
            return AiaFetch(
                url=url,
                error=f"response larger than {_format_size(self._max_bytes)}",
                status=status,
                content_type=content_type,
                size=self._max_bytes,
            )
        except TimeoutError:
            return AiaFetch(
                url=url,
                error=f"timed out after {self._timeout:g} s",
                status=status,
                content_type=content_type,
            )
        except httpx.TooManyRedirects:
            return AiaFetch(url=url, error=f"more than {self._max_redirects} redirects", status=status)
        except httpx.TimeoutException:
            return AiaFetch(url=url, error=f"timed out after {self._timeout:g} s", status=status)
        except httpx.UnsupportedProtocol:
            return AiaFetch(url=url, error="unsupported URL scheme (after a redirect)", status=status)
        except httpx.ConnectError as exc:
            return AiaFetch(url=url, error=f"cannot connect: {exc}", status=status)
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return AiaFetch(url=url, error=f"download failed: {exc}", status=status)

        data = bytes(body)
        if encoding not in ("", "identity"):
            try:
                data = self._inflate(data, encoding)
            except _TooLarge:
                return AiaFetch(
                    url=url,
                    error=f"response larger than {_format_size(self._max_bytes)} once decompressed",
                    status=status,
                    content_type=content_type,
                    size=size,
                )
            except (zlib.error, ValueError) as exc:
                return AiaFetch(
                    url=url,
                    error=f"cannot decode {encoding} content: {exc}",
                    status=status,
                    content_type=content_type,
                    size=size,
                )
        try:
            certs = parse_certificates(data)
        except CertificateParseError as exc:
            return AiaFetch(url=url, error=str(exc), status=status, content_type=content_type, size=size)
        return AiaFetch(url=url, certs=tuple(certs), status=status, content_type=content_type, size=size)

    def _inflate(self, data: bytes, encoding: str) -> bytes:
        if encoding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":  # zlib-wrapped per the RFC, raw deflate in practice too
            decoder = zlib.decompressobj(zlib.MAX_WBITS if data[:1] == b"\x78" else -zlib.MAX_WBITS)
        else:
            raise ValueError("unsupported content encoding")
        out = decoder.decompress(data, self._max_bytes + 1)
        if len(out) > self._max_bytes or decoder.unconsumed_tail:
            raise _TooLarge
        return out
