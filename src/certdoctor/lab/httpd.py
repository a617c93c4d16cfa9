"""A tiny HTTP/1.1 server (one request per connection), shared by the AIA server and the TLS scenarios.

Requests are read from a :class:`Reader` and answered on a :class:`Writer`: asyncio streams, or
:class:`memtls.MemoryTLS` for the scenarios served by pyOpenSSL. :class:`Router` maps paths to handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

REQUEST_TIMEOUT = 5.0  # seconds a client has to send its HTTP request head
SHUTDOWN_TIMEOUT = 2.0
MAX_HEAD = 16 * 1024  # bytes of request line + headers
MAX_BODY = 64 * 1024  # bytes of request body (OCSP requests are small)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    hold: bool = False  # send nothing at all: keep the connection open until the client leaves or the lab stops


HOLD = HttpResponse(0, hold=True)

RouteHandler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Too Large"}
_METHOD_NOT_ALLOWED = HttpResponse(405, b"method not allowed\n")


DEFAULT_METHODS = frozenset({"GET", "HEAD", "POST"})
_Route = tuple[RouteHandler, frozenset[str] | None]


class Router:
    """Exact-path routes (:meth:`add`, :meth:`add_static`) and prefix routes (:meth:`add_prefix`).

    An exact route wins over prefix routes; among prefixes, the longest match wins. A route answers the
    ``methods`` it was added with (None: any method); other methods get 405.
    """

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._prefixes: dict[str, _Route] = {}

    def add(self, path: str, handler: RouteHandler, methods: frozenset[str] | None = DEFAULT_METHODS) -> None:
        self._routes[path] = (handler, methods)

    def add_static(self, path: str, body: bytes, content_type: str) -> None:
        response = HttpResponse(200, body, content_type)
        self.add(path, lambda request: response)

    def add_prefix(self, prefix: str, handler: RouteHandler, methods: frozenset[str] | None = DEFAULT_METHODS) -> None:
        """Serve every path that starts with ``prefix`` (the handler gets the full path)."""
        self._prefixes[prefix] = (handler, methods)

    def paths(self) -> list[str]:
        return sorted(self._routes)

    def prefixes(self) -> list[str]:
        return sorted(self._prefixes)

    def _find(self, path: str) -> _Route | None:
        route = self._routes.get(path)
        if route is not None:
            return route
        matches = [prefix for prefix in self._prefixes if path.startswith(prefix)]
        return self._prefixes[max(matches, key=len)] if matches else None

    async def dispatch(self, request: HttpRequest) -> HttpResponse:
        route = self._find(request.path)
        if route is None:
            if request.method not in DEFAULT_METHODS:
                return _METHOD_NOT_ALLOWED
            return HttpResponse(404, b"not found\n")
        handler, methods = route
        if methods is not None and request.method not in methods:
            return _METHOD_NOT_ALLOWED
        result = handler(request)
        if isinstance(result, Awaitable):
            result = await result
        return result


class BadRequest(Exception):
    pass


class Reader(Protocol):
    """What :func:`read_request` reads from: an asyncio.StreamReader, or :class:`MemoryTLS`."""

    async def readuntil(self, separator: bytes = ...) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...


class Writer(Protocol):
    """What :func:`write_response` writes to: an asyncio.StreamWriter, or :class:`MemoryTLS`."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


async def read_request(reader: Reader) -> HttpRequest:
    """Read one request head (and a Content-Length body), bounded by MAX_HEAD / MAX_BODY."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("request head too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest("malformed request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    length = headers.get("content-length")
    if length:
        if not length.isdigit() or int(length) > MAX_BODY:
            raise BadRequest("bad content-length")
        body = await reader.readexactly(int(length))
    path, _, query = target.partition("?")
    return HttpRequest(method.upper(), path, query, headers, body)


async def write_response(writer: Writer, response: HttpResponse, *, head_only: bool = False) -> None:
    reason = _REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in response.headers),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        writer.write(response.body)
    await writer.drain()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s connection, aborting it when the close does not complete within SHUTDOWN_TIMEOUT."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), SHUTDOWN_TIMEOUT)
    except (TimeoutError, OSError):
        writer.transport.abort()
