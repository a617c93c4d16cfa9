"""Bounded HTTP downloads for evidence collection (AIA issuers, OCSP, CRLs).

Every URL here comes from a certificate a server sent, so the URL, the server behind it and the response
are untrusted: each request is bounded in time (the whole request, not per read) and in size, compressed
bodies are inflated with a cap, and failures come back as a :class:`Download` with ``error`` set, never as
an exception.

Redirects are followed here, not by httpx, at most ``max_redirects`` (3) of them: credentials of a
``user:pass@`` URL never go to another origin (scheme, host, port), and a POST (an OCSP request) is never
re-sent through a 307/308 redirect to another origin (that is an error: the GET fallback of OCSP may follow
it). With ``refuse_private`` every connection, redirects included, goes to public addresses only (see
:mod:`certdoctor.collect.netguard`).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Self, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:  # httpx is imported lazily: it costs ~150 ms of CLI start-up
    import httpx

    from .proxy import ProxyPolicy

K = TypeVar("K")
V = TypeVar("V")

__all__ = [
    "REFUSE_PRIVATE_OPTION",
    "AsyncClosing",
    "BoundedHttp",
    "Download",
    "SharedResults",
    "format_seconds",
    "format_size",
    "preload",
]

REFUSE_PRIVATE_OPTION = "--refuse-private-urls"  # named in refusals, so that the reader knows what refused
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def preload() -> None:
    """Import the HTTP stack now. A scan calls this before it starts (and before it forks workers): imported
    lazily, the ~50–150 ms import would happen at the first AIA or OCSP download and stall every handshake
    in flight on that event loop."""
    import httpcore  # noqa: F401
    import httpx  # noqa: F401


def format_size(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def format_seconds(seconds: float) -> str:
    """1 -> "1", 0.5 -> "0.5", 2.345 -> "2.3"."""
    return f"{round(seconds, 1):g}"


@dataclass(frozen=True)
class Download:
    """The outcome of one request: ``body`` on HTTP 200, else ``error`` (and ``status`` when one came back)."""

    url: str
    body: bytes | None = None
    error: str | None = None
    status: int | None = None
    content_type: str | None = None
    size: int = 0  # bytes received on the wire


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Redirect:
    status: int
    location: str


class AsyncClosing:
    """``async with x:`` closes ``x`` (its ``aclose()``) on the way out."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:  # pragma: no cover - overridden
        pass


class BoundedHttp(AsyncClosing):
    """One shared ``httpx.AsyncClient`` plus the limits every download obeys."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 262_144,
        max_redirects: int = 3,
        user_agent: str = "certdoctor",
        client: httpx.AsyncClient | None = None,
        refuse_private: bool = False,
        proxies: ProxyPolicy | None = None,
    ) -> None:
        """``refuse_private``: connect to public addresses only (ignored when ``client`` is given: the caller's
        client decides). ``proxies``: which downloads go through an HTTP proxy (None: httpx's own reading of the
        environment, or none with ``refuse_private``). Through a proxy with ``refuse_private``, the URL's host is
        resolved here and refused unless every address is public (the proxy then connects to it by name: a name
        that changes its answer in between is not caught, as it is on a direct connection); the proxy itself was
        chosen by the user and is not vetted."""
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.refuse_private = refuse_private
        self._user_agent = user_agent
        self._client = client
        self._owns_client = client is None
        self.proxies = proxies
        self._proxied: dict[str, httpx.AsyncClient] = {}  # one client per proxy URL

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        proxied, self._proxied = self._proxied, {}
        for client in proxied.values():
            await client.aclose()

    async def _client_for(self, url: str) -> httpx.AsyncClient:
        """The client to send ``url`` with: through its proxy (see ``proxies``), else the direct one. Raises
        AddressRefused for a proxied URL whose host is not public, with ``refuse_private``."""
        proxy = None
        if self.proxies is not None and self._owns_client:
            proxy = self.proxies.for_url(url)
        if proxy is None:
            return self._get_client()
        if self.refuse_private:
            from .netguard import vet_host

            parts = urlsplit(url)
            await vet_host(parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80))
        client = self._proxied.get(proxy.url)
        if client is None:
            import httpx

            client = self._proxied[proxy.url] = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                verify=False,
                proxy=proxy.url,
                trust_env=False,
                headers={"User-Agent": self._user_agent, "Accept-Encoding": "identity"},
            )
        return client

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            # verify=False: an https URL in a certificate is a courtesy channel; what is downloaded is
            # signed data (certificates, OCSP responses, CRLs) whose signatures the checks verify, so TLS
            # adds nothing but failures (and recursion: OCSP over https needs revocation checking).
            transport = None
            if self.refuse_private:
                from .netguard import guarded_transport

                transport = guarded_transport()
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,  # followed in _request, see the module docstring
                verify=False,
                transport=transport,
                trust_env=self.proxies is None,  # with a policy, it alone decides (curl's rules)
                headers={"User-Agent": self._user_agent, "Accept-Encoding": "identity"},
            )
        return self._client

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> Download:
        """Send one request; never raises (except cancellation). ``timeout`` bounds the whole request."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        seconds = self.timeout if timeout is None else max(0.001, timeout)
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            return Download(url=url, error="unsupported URL scheme")
        try:
            return await self._request(method, url, content, headers, seconds, limit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # defensive: never let a download bug escape
            return Download(url=url, error=f"unexpected error: {type(exc).__name__}: {exc}")

    async def _request(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str] | None,
        seconds: float,
        limit: int,
    ) -> Download:
        import httpx

        from .netguard import AddressRefused

        status: int | None = None
        try:
            async with asyncio.timeout(seconds):  # the whole request, redirects included
                current, verb, body, sent = url, method, content, dict(headers or {})
                for hop in range(self.max_redirects + 1):
                    got = await self._exchange(verb, current, body, sent, seconds, limit, original=url)
                    if isinstance(got, Download):
                        return got
                    status = got.status
                    if hop == self.max_redirects:
                        break
                    target = _redirect_target(current, got.location)
                    if target is None:
                        return Download(url=url, error="unsupported URL scheme (after a redirect)", status=status)
                    cross = _origin(target) != _origin(current)
                    if cross:
                        target = _without_credentials(target)
                    if got.status in (307, 308):
                        if verb == "POST" and cross:
                            return Download(
                                url=url,
                                error=f"refused to re-send the POST to another origin ({_origin_text(target)}) "
                                f"through an HTTP {got.status} redirect",
                                status=got.status,
                            )
                    elif verb == "POST" or (got.status == 303 and verb != "HEAD"):  # a GET, as httpx and browsers
                        verb, body = "GET", None
                        sent = {k: v for k, v in sent.items() if k.lower() != "content-type"}
                    current = target
                return Download(url=url, error=f"more than {self.max_redirects} redirects", status=status)
        except _TooLarge as exc:
            return Download(
                url=url,
                error=f"response larger than {format_size(limit)}",
                status=exc.args[0] if exc.args else status,
                content_type=exc.args[1] if len(exc.args) > 1 else None,
                size=limit,
            )
        except (TimeoutError, httpx.TimeoutException):
            return Download(url=url, error=f"timed out after {format_seconds(seconds)} s", status=status)
        except AddressRefused as exc:
            return Download(url=url, error=f"refused: {exc} ({REFUSE_PRIVATE_OPTION})", status=status)
        except httpx.UnsupportedProtocol:
            return Download(url=url, error="unsupported URL scheme (after a redirect)", status=status)
        except httpx.ConnectError as exc:
            return Download(url=url, error=f"cannot connect: {_connect_reason(exc)}", status=status)
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return Download(url=url, error=f"download failed: {exc}", status=status)

    async def _exchange(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        seconds: float,
        limit: int,
        *,
        original: str,
    ) -> Download | _Redirect:
        """One request, no redirect followed: the download, or where the server redirects to."""
        client = await self._client_for(url)
        async with client.stream(method, url, content=content, headers=headers, timeout=seconds) as response:
            status = response.status_code
            content_type = response.headers.get("content-type")
            location = response.headers.get("location")
            if status in REDIRECT_STATUSES and location:
                return _Redirect(status, location)
            if status != 200:
                phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
                return Download(url=original, error=f"HTTP {status}{phrase}", status=status, content_type=content_type)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _TooLarge(status, content_type)
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > limit:
                    raise _TooLarge(status, content_type)
            size = len(body)
            encoding = response.headers.get("content-encoding", "").strip().lower()

        data = bytes(body)
        if encoding not in ("", "identity"):
            try:
                data = _inflate(data, encoding, limit)
            except _TooLarge:
                return Download(
                    url=original,
                    error=f"response larger than {format_size(limit)} once decompressed",
                    status=status,
                    content_type=content_type,
                    size=size,
                )
            except (zlib.error, ValueError) as exc:
                return Download(
                    url=original,
                    error=f"cannot decode {encoding} content: {exc}",
                    status=status,
                    content_type=content_type,
                    size=size,
                )
        return Download(url=original, body=data, status=status, content_type=content_type, size=size)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


def _redirect_target(base: str, location: str) -> str | None:
    """The absolute URL a Location header points to (relative to ``base``); None for a non-HTTP scheme."""
    import httpx

    try:
        target = str(httpx.URL(base).join(location.strip()))
    except (httpx.InvalidURL, ValueError):
        return None
    return target if urlsplit(target).scheme.lower() in ("http", "https") else None


def _without_credentials(url: str) -> str:
    """``url`` without its ``user:pass@``: httpx sends a URL's userinfo as Basic authorization."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _connect_reason(exc: BaseException) -> str:
    """The OS-level reason behind httpx's "All connection attempts failed"."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text or type(exc).__name__


def _inflate(data: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":  # zlib-wrapped per the RFC, raw deflate in practice too
        decoder = zlib.decompressobj(zlib.MAX_WBITS if data[:1] == b"\x78" else -zlib.MAX_WBITS)
    else:
        raise ValueError("unsupported content encoding")
    out = decoder.decompress(data, limit + 1)
    if len(out) > limit or decoder.unconsumed_tail:
        raise _TooLarge
    return out


class SharedResults(Generic[K, V]):
    """Results by key, shared by every caller: concurrent requests for one key run one task, and a result
    is kept until its expiry (seconds since the epoch; None: for the life of the object).
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries  # the oldest results are dropped beyond this (bounded memory in scans)
        self._results: dict[K, tuple[V, float | None]] = {}
        self._pending: dict[K, asyncio.Task[V]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._results)

    async def get(
        self,
        key: K,
        make: Callable[[], Awaitable[V]],
        expires: Callable[[V], float | None] = lambda _value: None,
    ) -> V:
        entry = self._results.get(key)
        if entry is not None:
            value, until = entry
            if until is None or until > time.time():
                self.hits += 1
                return value
            del self._results[key]
        task = self._pending.get(key)
        if task is None:
            self.misses += 1
            task = asyncio.ensure_future(self._run(key, make, expires))
            self._pending[key] = task
        # shield: one impatient caller being cancelled must not cancel the work the others share.
        return await asyncio.shield(task)

    async def _run(self, key: K, make: Callable[[], Awaitable[V]], expires: Callable[[V], float | None]) -> V:
        try:
            value = await make()
            self._results[key] = (value, expires(value))
            if len(self._results) > self.max_entries:
                del self._results[next(iter(self._results))]
            return value
        finally:
            self._pending.pop(key, None)

    async def aclose(self) -> None:
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._pending.clear()
