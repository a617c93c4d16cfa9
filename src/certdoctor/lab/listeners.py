"""The lab's listening sockets and what runs on them: the AIA server, and one TLS (or hostile) server per
scenario, all on one asyncio event loop in a background daemon thread (:class:`ServerThread`).

Sockets are bound by the caller (:func:`listen`) before anything else, so a busy port is reported before
any work is done. TLS is the ``ssl`` module's, except for the scenarios that staple an OCSP response: those
are served by pyOpenSSL over memory BIOs (:class:`memtls.MemoryTLS`) on the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from OpenSSL import SSL

from . import aia
from .endpoint import bracket
from .httpd import (
    MAX_HEAD,
    REQUEST_TIMEOUT,
    SHUTDOWN_TIMEOUT,
    BadRequest,
    HttpResponse,
    Reader,
    Router,
    Writer,
    close_writer,
    read_request,
    write_response,
)
from .memtls import MemoryTLS
from .scenarios import Scenario

log = logging.getLogger("certdoctor.lab")

HANDSHAKE_TIMEOUT = 10.0

# What misbehaving clients cause: the connection ends, quietly (logged at debug level).
QUIET_ERRORS = (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, BadRequest, UnicodeError, SSL.Error)


@dataclass
class Listener:
    """One listening socket and what to run on it."""

    scenario: Scenario | None  # None: the AIA server
    sock: socket.socket
    address: str
    ssl_context: ssl.SSLContext | None = None
    kind: str = "tls"  # "tls", "stall", "garbage" or "aia"
    openssl_context: SSL.Context | None = None  # set instead of ssl_context for the stapling scenarios

    @property
    def label(self) -> str:
        return self.scenario.name if self.scenario is not None else "aia"


# --- sockets --------------------------------------------------------------------------------------------


def listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def busy_message(what: str, address: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        reason = "address already in use"
    elif exc.errno == errno.EADDRNOTAVAIL:
        reason = "address not available on this host"
    else:
        reason = exc.strerror or str(exc)
    where = f"{bracket(address)}:{port}" if port else bracket(address)
    return f"lab: cannot listen on {where} for {what}: {reason}"


# --- the event loop thread ------------------------------------------------------------------------------

Handler = Callable[[Listener, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ServerThread:
    """Serves ``listeners`` (bound sockets, with their TLS contexts set) until :meth:`stop`.

    The AIA listener answers with ``router``. Stopping closes the servers and cancels every connection.
    """

    def __init__(self, listeners: Sequence[Listener], router: Router) -> None:
        self.listeners = list(listeners)
        self.router = router
        self.error: BaseException | None = None  # why the servers did not start
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def start(self, timeout: float) -> bool:
        """Start the thread; True once every server listens, False on an error (:attr:`error`) or timeout."""
        self._ready.clear()
        self.error = None
        self._thread = threading.Thread(target=self._run, name="certdoctor-lab", daemon=True)
        self._thread.start()
        return self._ready.wait(timeout) and self.error is None

    def stop(self) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self._stop = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(_quiet_exception_handler)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # pragma: no cover - reported through start()
            self.error = self.error or exc
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        servers: list[asyncio.Server] = []
        try:
            for listener in self.listeners:
                servers.append(await self._serve(listener))
        except Exception as exc:
            self.error = exc
        self._ready.set()
        if self.error is None:
            await self._stop.wait()
        for server in servers:
            server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in servers:
            await server.wait_closed()

    async def _serve(self, listener: Listener) -> asyncio.Server:
        handlers: dict[str, Handler] = {
            "tls": self._handle_tls,
            "stall": self._handle_stall,
            "garbage": self._handle_garbage,
        }
        handler = self._handle_aia if listener.kind == "aia" else handlers[listener.kind]
        if listener.openssl_context is not None:
            handler = self._handle_openssl

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)  # type: ignore[arg-type]
            try:
                await handler(listener, reader, writer)
            except asyncio.CancelledError:
                writer.transport.abort()
                raise
            except QUIET_ERRORS as exc:
                log.debug("lab: %s connection ended: %r", listener.label, exc)
                writer.transport.abort()
            except Exception:  # a bug in the lab; never let it print a traceback to the user
                log.debug("lab: error serving %s", listener.label, exc_info=True)
                writer.transport.abort()
            finally:
                self._connections.discard(task)  # type: ignore[arg-type]

        if listener.ssl_context is not None:
            return await asyncio.start_server(
                on_connect,
                sock=listener.sock,
                ssl=listener.ssl_context,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
                limit=MAX_HEAD,
            )
        return await asyncio.start_server(on_connect, sock=listener.sock, limit=MAX_HEAD)

    # --- what each kind of listener does with a connection

    async def _handle_aia(self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await aia.serve_connection(self.router, reader, writer)

    async def _handle_tls(self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer_https(listener, reader, writer)
        await close_writer(writer)

    async def _handle_openssl(
        self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """As _handle_tls, with TLS done by pyOpenSSL (the stapling scenarios)."""
        assert listener.openssl_context is not None
        tls = MemoryTLS(listener.openssl_context, reader, writer)
        await asyncio.wait_for(tls.handshake(), HANDSHAKE_TIMEOUT)
        await _answer_https(listener, tls, tls)
        await tls.close()

    async def _handle_stall(
        self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self._stop is not None
        await self._stop.wait()  # hold the connection open, silently, until the lab stops
        writer.transport.abort()

    async def _handle_garbage(
        self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1024), 2.0)  # typically the ClientHello
        data = bytearray(os.urandom(4096))
        if 20 <= data[0] <= 24 or data[0] == 0x80:  # never a TLS record header, nor Go's SSLv2 header byte
            data[0] = 0x5A
        writer.write(bytes(data))
        await writer.drain()
        await close_writer(writer)


async def _answer_https(listener: Listener, reader: Reader, writer: Writer) -> None:
    """Read one request (within REQUEST_TIMEOUT) and say which scenario this is."""
    scenario = listener.scenario
    assert scenario is not None
    try:
        request = await asyncio.wait_for(read_request(reader), REQUEST_TIMEOUT)
    except BadRequest as exc:
        await write_response(writer, HttpResponse(400, f"{exc}\n".encode()))
    else:
        body = f"certdoctor lab: {scenario.name} ({listener.address})\n{scenario.description}\n"
        await write_response(writer, HttpResponse(200, body.encode()), head_only=request.method == "HEAD")


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Clients of the lab misbehave on purpose; nothing they do should print a traceback."""
    exc = context.get("exception")
    log.debug("lab: %s (%r)", context.get("message"), exc)
