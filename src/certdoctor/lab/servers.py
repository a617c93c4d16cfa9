"""The lab's servers: one TLS (or hostile) server per scenario plus the AIA HTTP server, on loopback.

Everything runs on one asyncio event loop in a background daemon thread. Sockets are bound in the caller's
thread first, so a busy port is reported before any work is done, and the AIA port is known before the
certificates (whose AIA URLs contain it) are issued.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shlex
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from cryptography import x509

from ..certinfo import is_ip
from . import pki
from .scenarios import SCENARIOS, LeafSpec, Scenario

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("certdoctor.lab")

REQUEST_TIMEOUT = 5.0  # seconds a client has to send its HTTP request head
HANDSHAKE_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 2.0
MAX_HEAD = 16 * 1024  # bytes of request line + headers
MAX_BODY = 64 * 1024  # bytes of request body (OCSP requests are small)
START_TIMEOUT = 30.0
SECOND_ADDRESS = "127.0.0.2"
BIG_CHAIN = 1000  # chains with at least this many filler certificates are built in a worker thread


def default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certdoctor" / "lab"


class LabStartError(RuntimeError):
    """The lab could not start (typically: a port is already in use)."""


# --- a tiny HTTP/1.1 server, shared by the AIA server and the TLS scenarios -------------------------------


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


RouteHandler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Too Large"}


class Router:
    """Exact-path routes. Add one with :meth:`add` (any handler) or :meth:`add_static` (fixed bytes)."""

    def __init__(self) -> None:
        self._routes: dict[str, RouteHandler] = {}

    def add(self, path: str, handler: RouteHandler) -> None:
        self._routes[path] = handler

    def add_static(self, path: str, body: bytes, content_type: str) -> None:
        response = HttpResponse(200, body, content_type)
        self.add(path, lambda request: response)

    def paths(self) -> list[str]:
        return sorted(self._routes)

    async def dispatch(self, request: HttpRequest) -> HttpResponse:
        handler = self._routes.get(request.path)
        if handler is None:
            return HttpResponse(404, b"not found\n")
        result = handler(request)
        if isinstance(result, Awaitable):
            result = await result
        return result


class BadRequest(Exception):
    pass


async def read_request(reader: asyncio.StreamReader) -> HttpRequest:
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


async def write_response(writer: asyncio.StreamWriter, response: HttpResponse, *, head_only: bool = False) -> None:
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


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), SHUTDOWN_TIMEOUT)
    except (TimeoutError, OSError):
        writer.transport.abort()


_QUIET = (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, BadRequest, UnicodeError)


# --- endpoints ------------------------------------------------------------------------------------------


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclass(frozen=True)
class Endpoint:
    """Where a scenario is served, and the files of the chain it serves.

    ``chain_path`` is the PEM a client gets when it connects as ``check_argv`` does (for no-sni: the
    no-SNI chain; the SNI one is ``no-sni@sni.pem``; for multi-address: the 127.0.0.1 one, the other is
    ``multi-address@127.0.0.2.pem``). It does not exist for the non-TLS scenarios (stall, garbage).
    """

    scenario: Scenario
    port: int
    addresses: tuple[str, ...]
    chain_path: Path
    key_path: Path

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def hostname(self) -> str:
        return self.scenario.hostname

    @property
    def connect_host(self) -> str:
        """The host part of the target: the scenario's hostname, or the address for IP scenarios."""
        return self.addresses[0] if is_ip(self.hostname) else self.hostname

    @property
    def target(self) -> str:
        return f"{_bracket(self.connect_host)}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.target}/"

    def resolve_arg(self, addresses: tuple[str, ...] | None = None) -> str:
        """curl-style ``host:port:addr[,addr...]``."""
        addrs = ",".join(_bracket(a) for a in (addresses or self.addresses))
        return f"{self.hostname}:{self.port}:{addrs}"

    def check_argv(self, root_path: Path | str) -> list[str]:
        """``certdoctor`` arguments that check this scenario (multi-address: all addresses)."""
        argv = ["check", self.target]
        if not is_ip(self.hostname):
            argv += ["--resolve", self.resolve_arg()]
        return [*argv, "--ca-file", str(root_path), *self.scenario.check_args]

    def curl_argv(self, root_path: Path | str) -> list[str]:
        """``curl`` arguments that fetch this scenario (multi-address: the first address only)."""
        argv = ["curl", "-sS", "--cacert", str(root_path)]
        if not is_ip(self.hostname):
            argv += ["--resolve", self.resolve_arg(self.addresses[:1])]
        return [*argv, self.url]


# --- building what each scenario serves -----------------------------------------------------------------


@dataclass
class _Listener:
    """One listening socket and what to run on it."""

    scenario: Scenario | None  # None: the AIA server
    sock: socket.socket
    address: str
    ssl_context: ssl.SSLContext | None = None
    kind: str = "tls"  # "tls", "stall", "garbage" or "aia"

    @property
    def label(self) -> str:
        return self.scenario.name if self.scenario is not None else "aia"


@dataclass
class _Built:
    """The files and TLS contexts of one scenario."""

    chain_path: Path
    key_path: Path
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)  # address -> context


def _leaf_args(scenario: Scenario, spec: LeafSpec) -> dict[str, object]:
    dns = spec.dns_names if spec.dns_names is not None else (scenario.hostname,)
    return {
        "key_name": spec.key_name or f"leaf-{scenario.name}",
        "key_kind": spec.key,
        "issuer": spec.issuer,
        "dns_names": dns if spec.san else None,
        "common_name": spec.common_name if spec.common_name is not None else dns[0],
        "subject_extra": spec.subject_extra,
        "starts": spec.starts,
        "days": spec.days,
        "ekus": spec.ekus,
        "aia": spec.aia,
        "hash_name": spec.hash,
    }


def _server_context(chain_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Security level 0, set before loading the chain, so SHA-1 and RSA-1024 certificates can be served.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(chain_path, key_path)
    return ctx


class _Builder:
    """Issues each scenario's certificates, writes ``chains/<name>.pem|.key`` and makes SSL contexts."""

    def __init__(self, lab_pki: pki.LabPKI, chains_dir: Path) -> None:
        self.pki = lab_pki
        self.chains_dir = chains_dir

    def _write(self, stem: str, scenario: Scenario, spec: LeafSpec) -> tuple[Path, Path]:
        leaf, key = self.pki.issue_leaf(**_leaf_args(scenario, spec))  # type: ignore[arg-type]
        serve = scenario._spec
        chain = [leaf, *(self.pki.issuers[slug].cert for slug in serve.chain)]
        if serve.filler:
            chain += pki.filler_certificates(serve.filler, label=scenario.name, now=self.pki.now)
        chain_path = self.chains_dir / f"{stem}.pem"
        key_path = self.chains_dir / f"{stem}.key"
        pki.write_atomic(chain_path, pki.certs_pem(chain))
        pki.write_atomic(key_path, pki.key_pem(key), private=True)
        return chain_path, key_path

    def build(self, scenario: Scenario, addresses: tuple[str, ...]) -> _Built:
        serve = scenario._spec
        name = scenario.name
        if serve.kind != "tls":
            return _Built(self.chains_dir / f"{name}.pem", self.chains_dir / f"{name}.key")
        if serve.no_sni is not None:
            chain_path, key_path = self._write(name, scenario, serve.no_sni)
            sni_chain, sni_key = self._write(f"{name}@sni", scenario, serve.leaf)
            default_ctx = _server_context(chain_path, key_path)
            sni_ctx = _server_context(sni_chain, sni_key)

            def switch(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
                if server_name is not None:
                    sslobj.context = sni_ctx

            default_ctx.sni_callback = switch  # type: ignore[assignment]
            return _Built(chain_path, key_path, {a: default_ctx for a in addresses})
        chain_path, key_path = self._write(name, scenario, serve.leaf)
        built = _Built(chain_path, key_path, {addresses[0]: _server_context(chain_path, key_path)})
        if serve.second_address is not None and len(addresses) > 1:
            other_chain, other_key = self._write(f"{name}@{addresses[1]}", scenario, serve.second_address)
            built.contexts[addresses[1]] = _server_context(other_chain, other_key)
        return built


# --- sockets --------------------------------------------------------------------------------------------


def _listen(address: str, port: int) -> socket.socket:
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


def _busy_message(what: str, address: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        reason = "address already in use"
    elif exc.errno == errno.EADDRNOTAVAIL:
        reason = "address not available on this host"
    else:
        reason = exc.strerror or str(exc)
    where = f"{_bracket(address)}:{port}" if port else _bracket(address)
    return f"lab: cannot listen on {where} for {what}: {reason}"


# --- the lab --------------------------------------------------------------------------------------------


class Lab:
    """The offline badssl: a generated PKI plus one real server per scenario, on loopback.

    ``port_base`` 0 picks free ports; otherwise the AIA server listens on ``port_base`` and scenario *i* of
    :data:`SCENARIOS` on ``port_base + 1 + i``. ``bind`` is the listening address (a wildcard is fine; the
    commands then use 127.0.0.1). multi-address additionally listens on 127.0.0.2 when ``bind`` is
    127.0.0.1.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        port_base: int = 0,
        include_hostile: bool = True,
        bind: str = "127.0.0.1",
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.port_base = port_base
        self.include_hostile = include_hostile
        self.bind = bind
        self.scenarios: tuple[Scenario, ...] = tuple(s for s in SCENARIOS if include_hostile or not s.hostile)
        self.router = Router()
        self.endpoints: dict[str, Endpoint] = {}
        self.root_path = self.state_dir / "lab-root.pem"
        self.aia_base_url = ""
        self.aia_port = 0
        self.pki: pki.LabPKI | None = None
        self.start_seconds: float | None = None
        self._listeners: list[_Listener] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._addresses: dict[str, tuple[str, ...]] = {}

    @property
    def root(self) -> x509.Certificate:
        """The lab root certificate (the one in ``root_path``); available once started."""
        if self.pki is None:
            raise RuntimeError("lab: not started")
        return self.pki.root.cert

    @property
    def connect_address(self) -> str:
        """The address clients use: ``bind``, or loopback for a wildcard bind."""
        if self.bind in ("", "0.0.0.0"):
            return "127.0.0.1"
        if self.bind == "::":
            return "::1"
        return self.bind

    # lifecycle

    def start(self) -> Lab:
        if self._thread is not None:
            raise LabStartError("lab: already started")
        began = time.perf_counter()
        try:
            self._bind_all()
            self._build_all()
        except BaseException:
            self._close_sockets()
            raise
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="certdoctor-lab", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._error is not None:
            error = self._error
            self.stop()
            raise LabStartError(f"lab: servers failed to start: {error or 'timeout'}") from error
        self.start_seconds = time.perf_counter() - began
        return self

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
        self._close_sockets()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def add_route(self, path: str, handler: RouteHandler) -> None:
        """Serve ``handler`` at ``path`` on the AIA HTTP server (works before or after start)."""
        self.router.add(path, handler)

    def endpoint(self, name: str) -> Endpoint:
        return self.endpoints[name]

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.endpoints.values())

    # setup (caller's thread)

    def _port_for(self, scenario: Scenario) -> int:
        if not self.port_base:
            return 0
        return self.port_base + 1 + SCENARIOS.index(scenario)

    def _bind(self, what: str, address: str, port: int) -> socket.socket:
        try:
            return _listen(address, port)
        except OSError as exc:
            raise LabStartError(_busy_message(what, address, port, exc)) from exc

    def _bind_all(self) -> None:
        self._listeners = []
        aia_sock = self._bind("the AIA server", self.bind, self.port_base)
        self.aia_port = aia_sock.getsockname()[1]
        self._listeners.append(_Listener(None, aia_sock, self.bind, kind="aia"))
        self._addresses = {}
        for scenario in self.scenarios:
            port = self._port_for(scenario)
            wants_second = scenario._spec.second_address is not None and self.bind == "127.0.0.1"
            kind = scenario._spec.kind
            if not wants_second:
                sock = self._bind(f"scenario {scenario.name}", self.bind, port)
                self._listeners.append(_Listener(scenario, sock, self.bind, kind=kind))
                self._addresses[scenario.name] = (self.connect_address,)
                continue
            first, second = self._bind_pair(scenario, port)
            self._listeners += [
                _Listener(scenario, first, self.bind, kind=kind),
                _Listener(scenario, second, SECOND_ADDRESS, kind=kind),
            ]
            self._addresses[scenario.name] = (self.bind, SECOND_ADDRESS)

    def _bind_pair(self, scenario: Scenario, port: int) -> tuple[socket.socket, socket.socket]:
        """The same port on 127.0.0.1 and 127.0.0.2 (with port 0: retry until one is free on both)."""
        what = f"scenario {scenario.name}"
        for _ in range(50):
            first = self._bind(what, self.bind, port)
            actual = first.getsockname()[1]
            try:
                return first, _listen(SECOND_ADDRESS, actual)
            except OSError as exc:
                first.close()
                if port or exc.errno != errno.EADDRINUSE:
                    raise LabStartError(_busy_message(what, SECOND_ADDRESS, actual, exc)) from exc
        raise LabStartError(f"lab: no port free on both {self.bind} and {SECOND_ADDRESS} for {what}")

    def _build_all(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.aia_base_url = f"http://{_bracket(self.connect_address)}:{self.aia_port}"
        self.pki = pki.LabPKI(self.state_dir, self.aia_base_url)
        for path, der in self.pki.ca_files().items():
            self.router.add_static(path, der, "application/pkix-cert")
        builder = _Builder(self.pki, self.state_dir / "chains")
        # OpenSSL 3 needs ~0.1 ms to parse each certificate, so loading a huge chain takes over a second.
        # It releases the GIL meanwhile: build the big ones in worker threads while building the rest.
        big = [s for s in self.scenarios if s._spec.filler >= BIG_CHAIN]
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="certdoctor-lab-build") as pool:
            futures = {s.name: pool.submit(builder.build, s, self._addresses[s.name]) for s in big}
            built = {s.name: builder.build(s, self._addresses[s.name]) for s in self.scenarios if s not in big}
            built.update({name: future.result() for name, future in futures.items()})
        for scenario in self.scenarios:
            addresses = self._addresses[scenario.name]
            b = built[scenario.name]
            self.endpoints[scenario.name] = Endpoint(
                scenario=scenario,
                port=self._listener_port(scenario),
                addresses=addresses,
                chain_path=b.chain_path,
                key_path=b.key_path,
            )
        for listener in self._listeners:
            if listener.kind == "tls" and listener.scenario is not None:
                b = built[listener.scenario.name]
                listener.ssl_context = b.contexts.get(listener.address) or next(iter(b.contexts.values()))

    def _listener_port(self, scenario: Scenario) -> int:
        for listener in self._listeners:
            if listener.kind != "aia" and listener.scenario is scenario:
                return int(listener.sock.getsockname()[1])
        raise KeyError(scenario.name)

    def _close_sockets(self) -> None:
        for listener in self._listeners:
            listener.sock.close()
        self._listeners = []

    # the event loop thread

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(_quiet_exception_handler)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # pragma: no cover - reported through start()
            self._error = self._error or exc
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
            for listener in self._listeners:
                servers.append(await self._serve(listener))
        except Exception as exc:
            self._error = exc
        self._ready.set()
        if self._error is None:
            await self._stop.wait()
        for server in servers:
            server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in servers:
            await server.wait_closed()

    async def _serve(self, listener: _Listener) -> asyncio.Server:
        handlers = {"tls": self._handle_tls, "stall": self._handle_stall, "garbage": self._handle_garbage}
        handler = self._handle_aia if listener.kind == "aia" else handlers[listener.kind]

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)  # type: ignore[arg-type]
            try:
                await handler(listener, reader, writer)
            except asyncio.CancelledError:
                writer.transport.abort()
                raise
            except _QUIET as exc:
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

    async def _handle_aia(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            request = await asyncio.wait_for(read_request(reader), REQUEST_TIMEOUT)
        except BadRequest as exc:
            await write_response(writer, HttpResponse(400, f"{exc}\n".encode()))
        else:
            if request.method in ("GET", "HEAD", "POST"):
                response = await self.router.dispatch(request)
            else:
                response = HttpResponse(405, b"method not allowed\n")
            await write_response(writer, response, head_only=request.method == "HEAD")
        await _close(writer)

    async def _handle_tls(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        scenario = listener.scenario
        assert scenario is not None
        try:
            request = await asyncio.wait_for(read_request(reader), REQUEST_TIMEOUT)
        except BadRequest as exc:
            await write_response(writer, HttpResponse(400, f"{exc}\n".encode()))
        else:
            body = f"certdoctor lab: {scenario.name} ({listener.address})\n{scenario.description}\n"
            await write_response(writer, HttpResponse(200, body.encode()), head_only=request.method == "HEAD")
        await _close(writer)

    async def _handle_stall(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self._stop is not None
        await self._stop.wait()  # hold the connection open, silently, until the lab stops
        writer.transport.abort()

    async def _handle_garbage(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1024), 2.0)  # typically the ClientHello
        data = bytearray(os.urandom(4096))
        if 20 <= data[0] <= 24:  # never look like a TLS record header
            data[0] ^= 0x80
        writer.write(bytes(data))
        await writer.drain()
        await _close(writer)


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Clients of the lab misbehave on purpose; nothing they do should print a traceback."""
    exc = context.get("exception")
    log.debug("lab: %s (%r)", context.get("message"), exc)


# --- foreground mode (`certdoctor lab`) -----------------------------------------------------------------


def _block_until_interrupted() -> None:
    while True:
        time.sleep(3600)


def _print_json_listing(lab: Lab) -> None:
    """One JSON document on stdout (then flushed), for scripts that drive the lab."""
    import json
    import sys

    doc = {
        "root": str(lab.root_path),
        "aia": lab.aia_base_url,
        "scenarios": [
            {
                "name": e.scenario.name,
                "hostname": e.scenario.hostname,
                "addresses": list(e.addresses),
                "port": e.port,
                "hostile": e.scenario.hostile,
                "description": e.scenario.description,
                "expected": sorted(e.scenario.expected),
                "certdoctor": ["certdoctor", *e.check_argv(lab.root_path)],
                "curl": e.curl_argv(lab.root_path),
            }
            for e in lab.endpoints.values()
        ],
    }
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def serve_foreground(state_dir: Path | None, port_base: int, console: Console, *, json_output: bool = False) -> int:
    """Run the lab until Ctrl-C, printing every scenario with ready-to-paste commands.

    Returns 0 after a clean stop, 2 when the lab cannot start (e.g. a port is in use).
    """
    from rich.text import Text

    lab = Lab(state_dir, port_base=port_base, include_hostile=True)
    try:
        lab.start()
    except LabStartError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    try:
        if json_output:
            _print_json_listing(lab)
            _block_until_interrupted()
            return 0
        # One block per scenario; commands on their own unwrapped lines so they can be copied whole.
        console.print(Text("certdoctor lab", style="bold"), Text(f"— {len(lab.endpoints)} scenarios", style="dim"))
        for endpoint in lab.endpoints.values():
            scenario = endpoint.scenario
            address = ",".join(_bracket(a) for a in endpoint.addresses) + f":{endpoint.port}"
            head = Text(f"\n{scenario.name}", style="bold")
            head.append(f"  {address}", style="cyan")
            if scenario.hostile:
                head.append("  (hostile)", style="red")
            head.append(f"  {scenario.description}", style="dim")
            console.print(head)
            for argv in (["certdoctor", *endpoint.check_argv(lab.root_path)], endpoint.curl_argv(lab.root_path)):
                console.print(Text("  " + shlex.join(argv)), soft_wrap=True)
        console.print()
        root = shlex.quote(str(lab.root_path))
        console.print(f"Lab root certificate: {lab.root_path}", markup=False, highlight=False)
        console.print(
            f"Trust it explicitly: curl --cacert {root} ...  |  certdoctor check --ca-file {root} ...",
            markup=False,
            highlight=False,
        )
        console.print(
            f"AIA server: {lab.aia_base_url}/  (started in {lab.start_seconds or 0:.2f}s; Ctrl-C to stop)",
            markup=False,
            highlight=False,
        )
        _block_until_interrupted()
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
    return 0
