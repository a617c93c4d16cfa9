"""The lab's servers: one TLS (or hostile) server per scenario plus the AIA HTTP server, on loopback.

Everything runs on one asyncio event loop in a background daemon thread. Sockets are bound in the caller's
thread first, so a busy port is reported before any work is done, and the AIA port is known before the
certificates (whose AIA URLs contain it) are issued.

TLS is the ``ssl`` module's, except for scenarios that staple an OCSP response (``ssl`` cannot): those are
served by OpenSSL through pyOpenSSL, over memory BIOs driven from the same event loop.

The AIA server also publishes revocation status (see :meth:`Lab.add_revocation_routes` for the routes):
an OCSP responder and a CRL for each CA of :data:`pki.REVOCATION_SLUGS`, plus misbehaving responders.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import logging
import os
import shlex
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from OpenSSL import SSL

from ..certinfo import is_ip
from ..render.escape import clean
from . import pki, revocation
from .scenarios import SCENARIOS, LeafSpec, Scenario

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: labs do not lock their state directory
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("certdoctor.lab")

REQUEST_TIMEOUT = 5.0  # seconds a client has to send its HTTP request head
HANDSHAKE_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 2.0
MAX_HEAD = 16 * 1024  # bytes of request line + headers
MAX_BODY = 64 * 1024  # bytes of request body (OCSP requests are small)
TLS_CHUNK = 64 * 1024  # bytes moved at once between a socket and a memory BIO
START_TIMEOUT = 30.0
SECOND_ADDRESS = "127.0.0.2"
BIG_CHAIN = 1000  # chains with at least this many filler certificates are built in a worker thread
STAPLE_REFRESH = 300.0  # seconds a stapling server keeps serving the same OCSP response
MAX_PORT = 65535
LOCK_NAME = ".lock"  # in the state directory: held (flock) by the lab that owns it, while it runs


def default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certdoctor" / "lab"


class LabStartError(RuntimeError):
    """The lab could not start (typically: a port is already in use). The message is one line."""


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


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), SHUTDOWN_TIMEOUT)
    except (TimeoutError, OSError):
        writer.transport.abort()


_QUIET = (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, BadRequest, UnicodeError, SSL.Error)


# --- OpenSSL (pyOpenSSL) over memory BIOs, for the scenarios that staple ---------------------------------


class MemoryTLS:
    """The server side of one TLS connection: a pyOpenSSL Connection over memory BIOs, fed from asyncio.

    Ciphertext moves between the socket (``reader`` / ``writer``) and OpenSSL's memory BIOs; plaintext is
    offered as :class:`Reader` / :class:`Writer`, so :func:`read_request` and :func:`write_response` work
    unchanged. Reads hold at most ``MAX_HEAD`` bytes of a request head, as with the other servers.
    """

    def __init__(self, context: SSL.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conn = SSL.Connection(context, None)
        self.conn.set_accept_state()
        self.reader = reader
        self.writer = writer
        self._plain = bytearray()

    def _flush(self) -> None:
        """Hand whatever OpenSSL wrote (handshake records, alerts, application data) to the socket."""
        while True:
            try:
                data = self.conn.bio_read(TLS_CHUNK)
            except SSL.WantReadError:
                return
            if not data:
                return
            self.writer.write(data)

    async def _receive(self) -> None:
        """Send what is pending, then give OpenSSL the next bytes from the socket."""
        self._flush()
        await self.writer.drain()
        data = await self.reader.read(TLS_CHUNK)
        if not data:
            raise EOFError("connection closed by the client")
        self.conn.bio_write(data)

    async def handshake(self) -> None:
        while True:
            try:
                self.conn.do_handshake()
            except SSL.WantReadError:
                await self._receive()
                continue
            except SSL.Error:
                self._flush()  # the alert, if OpenSSL made one
                raise
            break
        self._flush()
        await self.writer.drain()

    async def _fill(self) -> None:
        while True:
            try:
                data = self.conn.recv(TLS_CHUNK)
            except SSL.WantReadError:
                await self._receive()
                continue
            except SSL.ZeroReturnError:  # close_notify
                raise asyncio.IncompleteReadError(bytes(self._plain), None) from None
            self._plain += data
            return

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        while (index := self._plain.find(separator)) < 0:
            if len(self._plain) > MAX_HEAD:
                raise asyncio.LimitOverrunError("separator not found within the limit", len(self._plain))
            await self._fill()
        end = index + len(separator)
        if end > MAX_HEAD:
            raise asyncio.LimitOverrunError("separator found beyond the limit", end)
        data = bytes(self._plain[:end])
        del self._plain[:end]
        return data

    async def readexactly(self, n: int) -> bytes:
        while len(self._plain) < n:
            await self._fill()
        data = bytes(self._plain[:n])
        del self._plain[:n]
        return data

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)
        self._flush()

    async def drain(self) -> None:
        self._flush()
        await self.writer.drain()

    async def close(self) -> None:
        """Send close_notify, then close the socket."""
        with contextlib.suppress(SSL.Error):
            self.conn.shutdown()
        self._flush()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.drain(), SHUTDOWN_TIMEOUT)
        await _close(self.writer)


def _openssl_context(chain_path: Path, key_path: Path, staple: Callable[[], bytes]) -> SSL.Context:
    """A server context like :func:`_server_context` that staples ``staple()`` to clients that ask for it."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # as the ssl module's server contexts
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_RENEGOTIATION)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")  # before loading the chain, as in _server_context
    ctx.use_certificate_chain_file(str(chain_path))
    ctx.use_privatekey_file(str(key_path))
    ctx.check_privatekey()

    def ocsp_callback(conn: SSL.Connection, data: object) -> bytes:
        # Called by OpenSSL only when the ClientHello carries status_request; b"" means no staple.
        try:
            return staple()
        except Exception:  # never break the handshake over a staple
            log.debug("lab: cannot build the OCSP staple", exc_info=True)
            return b""

    ctx.set_ocsp_server_callback(ocsp_callback)
    return ctx


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
    openssl_context: SSL.Context | None = None  # set instead of ssl_context for the stapling scenarios

    @property
    def label(self) -> str:
        return self.scenario.name if self.scenario is not None else "aia"


@dataclass
class _Built:
    """The files and TLS contexts of one scenario."""

    chain_path: Path
    key_path: Path
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)  # address -> context
    openssl_context: SSL.Context | None = None  # stapling scenarios: served with pyOpenSSL on every address


def _leaf_args(scenario: Scenario, spec: LeafSpec, expand_url: Callable[[str], str]) -> dict[str, object]:
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
        "ocsp_url": expand_url(spec.ocsp_url) if spec.ocsp_url else None,
        "crl_url": expand_url(spec.crl_url) if spec.crl_url else None,
        "must_staple": spec.must_staple,
        "revoked": spec.revoked,
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

    def _write(self, stem: str, scenario: Scenario, spec: LeafSpec) -> tuple[Path, Path, x509.Certificate]:
        leaf, key = self.pki.issue_leaf(**_leaf_args(scenario, spec, self.pki.expand_url))  # type: ignore[arg-type]
        serve = scenario._spec
        chain = [leaf, *(self.pki.issuers[slug].cert for slug in serve.chain)]
        if serve.filler:
            chain += pki.filler_certificates(serve.filler, label=scenario.name, now=self.pki.now)
        chain_path = self.chains_dir / f"{stem}.pem"
        key_path = self.chains_dir / f"{stem}.key"
        pki.write_atomic(chain_path, pki.certs_pem(chain))
        pki.write_atomic(key_path, pki.key_pem(key), private=True)
        return chain_path, key_path, leaf

    def _stapler(self, leaf: x509.Certificate, issuer: str, staple: Literal["good", "stale"]) -> Callable[[], bytes]:
        """What the server staples for ``leaf``: a response of ``issuer``'s responder, refreshed every
        STAPLE_REFRESH like a real server's stapling cache (so clients see the same bytes meanwhile)."""
        cached: list[tuple[float, bytes]] = []

        def build() -> bytes:
            if cached and time.monotonic() - cached[0][0] < STAPLE_REFRESH:
                return cached[0][1]
            now = pki.utcnow()
            if staple == "stale":
                der = self.pki.ocsp_response(
                    leaf, issuer, this_update=now - dt.timedelta(days=10), next_update=now - dt.timedelta(days=3)
                )
            else:
                der = self.pki.ocsp_response(leaf, issuer)
            cached[:] = [(time.monotonic(), der)]
            return der

        return build

    def build(self, scenario: Scenario, addresses: tuple[str, ...]) -> _Built:
        serve = scenario._spec
        name = scenario.name
        if serve.kind != "tls":
            return _Built(self.chains_dir / f"{name}.pem", self.chains_dir / f"{name}.key")
        if serve.staple is not None:
            issuer = serve.leaf.issuer
            if serve.no_sni is not None or serve.second_address is not None or issuer not in self.pki.responders:
                raise ValueError(f"{name}: a stapling scenario has one leaf, issued by a CA with an OCSP responder")
            chain_path, key_path, leaf = self._write(name, scenario, serve.leaf)
            stapler = self._stapler(leaf, issuer, serve.staple)
            return _Built(chain_path, key_path, openssl_context=_openssl_context(chain_path, key_path, stapler))
        if serve.no_sni is not None:
            chain_path, key_path, _ = self._write(name, scenario, serve.no_sni)
            sni_chain, sni_key, _ = self._write(f"{name}@sni", scenario, serve.leaf)
            default_ctx = _server_context(chain_path, key_path)
            sni_ctx = _server_context(sni_chain, sni_key)

            def switch(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
                if server_name is not None:
                    sslobj.context = sni_ctx

            default_ctx.sni_callback = switch  # type: ignore[assignment]
            return _Built(chain_path, key_path, {a: default_ctx for a in addresses})
        chain_path, key_path, _ = self._write(name, scenario, serve.leaf)
        built = _Built(chain_path, key_path, {addresses[0]: _server_context(chain_path, key_path)})
        if serve.second_address is not None and len(addresses) > 1:
            other_chain, other_key, _ = self._write(f"{name}@{addresses[1]}", scenario, serve.second_address)
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
    :data:`SCENARIOS` on ``port_base + 1 + i`` (a base whose ports do not all fit in 1-65535 is refused with
    :class:`LabStartError` by the constructor). ``bind`` is the listening address (a wildcard is fine; the
    commands then use 127.0.0.1). multi-address additionally listens on 127.0.0.2 when ``bind`` is
    127.0.0.1.

    A started lab owns its ``state_dir`` (an exclusive lock on ``<state_dir>/.lock``, released by stop): it
    alone writes there. A lab started on a state directory that another lab owns (:attr:`owns_state_dir`
    False) only reads it: it reuses the cached keys and root certificate without rewriting them (anything
    missing is generated in memory) and writes its chain files, and its own root when it could not reuse
    the cached one, to a private temporary directory (:attr:`files_dir`) that stop deletes.

    Revocation, once started: :meth:`ocsp_url` and :meth:`crl_url` locate the OCSP responders and CRLs of the
    CAs in :data:`pki.REVOCATION_SLUGS`; :attr:`unreachable_ocsp_url` is a URL whose port refuses
    connections; :meth:`ocsp_response` builds a response the way a responder signs it; :attr:`revoked` lists
    what is revoked. ``lab.pki.ocsp_signer`` is the Revocation CA's delegated OCSP signer.
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
        self.files_dir = self.state_dir  # where chains/ is written: state_dir, or a private temporary directory
        self.owns_state_dir = False  # True while started and holding the state directory's lock
        self.aia_base_url = ""
        self.aia_port = 0
        self.pki: pki.LabPKI | None = None
        self.start_seconds: float | None = None
        self.unreachable_ocsp_url = ""  # http://127.0.0.1:PORT/ocsp, PORT bound but not listening
        self._unreachable: socket.socket | None = None
        self._listeners: list[_Listener] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._addresses: dict[str, tuple[str, ...]] = {}
        self._lock_file: IO[bytes] | None = None
        self._private_dir: Path | None = None
        self._check_port_base()

    @property
    def root(self) -> x509.Certificate:
        """The lab root certificate (the one in ``root_path``); available once started."""
        if self.pki is None:
            raise RuntimeError("lab: not started")
        return self.pki.root.cert

    def _started_pki(self) -> pki.LabPKI:
        if self.pki is None:
            raise RuntimeError("lab: not started")
        return self.pki

    # revocation

    def ocsp_url(self, slug: str, *, route: Literal["ocsp", "ocsp-get-only", "ocsp-slow"] = "ocsp") -> str:
        """The OCSP responder URL of CA ``slug`` (one of :data:`pki.REVOCATION_SLUGS`).

        ``route`` "ocsp-get-only" is the same responder refusing POST (HTTP 405); "ocsp-slow" never answers.
        """
        return f"{self.aia_base_url}/{route}/{slug}"

    def crl_url(self, slug: str, pem: bool = False) -> str:
        """The URL of CA ``slug``'s CRL, DER (``.crl``) or PEM (``.pem``)."""
        return f"{self.aia_base_url}/crl/{slug}.{'pem' if pem else 'crl'}"

    @property
    def ocsp_garbage_url(self) -> str:
        """A "responder" answering 2 KiB of random bytes as application/ocsp-response."""
        return f"{self.aia_base_url}/ocsp-garbage"

    def ocsp_response(
        self,
        cert: x509.Certificate,
        issuer_slug: str,
        *,
        this_update: dt.datetime | None = None,
        next_update: dt.datetime | None = None,
    ) -> bytes:
        """A DER OCSP response for ``cert``, signed as ``issuer_slug``'s responder signs its answers.

        ``this_update`` / ``next_update`` default to now - 1 hour / now + 7 days. See
        :meth:`pki.LabPKI.ocsp_response`.
        """
        return self._started_pki().ocsp_response(cert, issuer_slug, this_update=this_update, next_update=next_update)

    @property
    def revoked(self) -> dict[int, revocation.Revocation]:
        """Every revoked serial (any issuer) -> (revocation time, reason); per issuer: ``pki.revocations``."""
        return self._started_pki().revoked()

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
            self._claim_state_dir()
            self._build_all()
        except BaseException:
            self._close_sockets()
            self._release_state_dir()
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
        self._release_state_dir()

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

    def _check_port_base(self) -> None:
        """LabStartError unless every port the lab listens on (from ``port_base`` up) is a TCP port."""
        base = self.port_base
        if base == 0:
            return
        if base < 0:
            raise LabStartError(f"lab: port base {base}: ports start at 1 (0 picks free ports)")
        last = max((self._port_for(s) for s in self.scenarios), default=base)
        if last > MAX_PORT:
            raise LabStartError(f"lab: port base {base}: the lab needs ports {base}-{last}, above {MAX_PORT}")

    def _claim_state_dir(self) -> None:
        """Create the state directory and own it (lock it), or, when another lab owns it, get a private
        directory for the files this lab writes."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock_file = open(self.state_dir / LOCK_NAME, "ab")  # noqa: SIM115 - held until stop
        except OSError as exc:
            raise LabStartError(
                f"lab: cannot use the state directory {self.state_dir}: {exc.strerror or exc} "
                "(choose another with --state-dir)"
            ) from exc
        owner = True
        if fcntl is not None:
            try:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = False
            except OSError:  # a file system without locks: behave as before locks existed
                log.debug("lab: cannot lock %s", self.state_dir, exc_info=True)
        if owner:
            self._lock_file = lock_file
            self.owns_state_dir = True
            self.files_dir = self.state_dir
            return
        lock_file.close()
        log.debug("lab: %s is in use by another lab; files go to a private directory", self.state_dir)
        try:
            self._private_dir = Path(tempfile.mkdtemp(prefix="certdoctor-lab-"))
        except OSError as exc:
            raise LabStartError(f"lab: cannot create a temporary directory: {exc.strerror or exc}") from exc
        self.files_dir = self._private_dir

    def _release_state_dir(self) -> None:
        """Unlock the state directory (if this lab owns it) and delete the private directory (if any)."""
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None
        self.owns_state_dir = False
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None

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
        self._reserve_unreachable()

    def _reserve_unreachable(self) -> None:
        """Bind, but never listen on, a loopback port: connecting to it is refused for the lab's lifetime.

        No SO_REUSEADDR, so nobody else can bind (and listen on) that port meanwhile.
        """
        address = self.connect_address
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((address, 0))
        except OSError as exc:
            sock.close()
            raise LabStartError(_busy_message("the unreachable OCSP responder", address, 0, exc)) from exc
        self._unreachable = sock
        self.unreachable_ocsp_url = f"http://{_bracket(address)}:{sock.getsockname()[1]}/ocsp"

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
        self.aia_base_url = f"http://{_bracket(self.connect_address)}:{self.aia_port}"
        self.pki = pki.LabPKI(
            self.state_dir,
            self.aia_base_url,
            url_values={"unreachable": self.unreachable_ocsp_url},
            write=self.owns_state_dir,
        )
        self.root_path = self.state_dir / "lab-root.pem"
        if not self.owns_state_dir and not self.pki.root_reused:
            # Not the root users trust (that one could not be reused): this lab's own, in its own directory.
            self.root_path = self.files_dir / "lab-root.pem"
            pki.write_atomic(self.root_path, pki.cert_pem(self.pki.root.cert))
        for path, der in self.pki.ca_files().items():
            self.router.add_static(path, der, "application/pkix-cert")
        self.add_revocation_routes()
        builder = _Builder(self.pki, self.files_dir / "chains")
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
                if b.openssl_context is not None:
                    listener.openssl_context = b.openssl_context
                else:
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
        if self._unreachable is not None:
            self._unreachable.close()
            self._unreachable = None

    # revocation routes on the AIA server

    def add_revocation_routes(self) -> None:
        """Add the revocation routes to the AIA server (done by start).

        - ``POST /ocsp/<slug>`` (body: a DER OCSPRequest) and ``GET /ocsp/<slug>/<url-encoded base64 of the
          request>`` (RFC 6960 A.1): the DER OCSPResponse of CA ``<slug>``'s responder, see
          :meth:`pki.LabPKI.answer_ocsp`. HTTP 404 for a CA without a responder.
        - ``/ocsp-get-only/<slug>...``: the same responder, but POST gets HTTP 405.
        - ``/ocsp-slow/...`` (any method): never answers; the connection is held until the client leaves or
          the lab stops.
        - ``/ocsp-garbage`` and anything below it (any method): 2 KiB of random bytes, as
          application/ocsp-response.
        - ``GET /crl/<slug>.crl`` (DER) and ``/crl/<slug>.pem`` (PEM): CA ``<slug>``'s CRL, signed anew for
          each request (:meth:`pki.LabPKI.crl`).
        """
        self.router.add_prefix("/ocsp/", self._ocsp_route("/ocsp/", get_only=False))
        self.router.add_prefix("/ocsp-get-only/", self._ocsp_route("/ocsp-get-only/", get_only=True))
        for path, handler in (("/ocsp-slow", _hold), ("/ocsp-garbage", _garbage_ocsp)):
            self.router.add(path, handler, methods=None)
            self.router.add_prefix(path + "/", handler, methods=None)
        for slug in pki.REVOCATION_SLUGS:
            self.router.add(f"/crl/{slug}.crl", self._crl_route(slug, pem=False))
            self.router.add(f"/crl/{slug}.pem", self._crl_route(slug, pem=True))

    def _ocsp_route(self, prefix: str, *, get_only: bool) -> RouteHandler:
        def handle(request: HttpRequest) -> HttpResponse:
            lab_pki = self._started_pki()
            slug, _, encoded = request.path[len(prefix) :].partition("/")
            if slug not in lab_pki.responders:
                return HttpResponse(404, b"no OCSP responder here\n")
            if request.method == "POST":
                if get_only:
                    return HttpResponse(405, b"this responder only answers GET\n", headers=(("Allow", "GET"),))
                der = request.body
            else:
                der = revocation.decode_get(encoded)
            try:
                answer = lab_pki.answer_ocsp(slug, der)
            except Exception:  # a request the lab did not foresee; still answer in OCSP
                log.debug("lab: OCSP responder %s failed", slug, exc_info=True)
                answer = revocation.unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
            return HttpResponse(200, answer, "application/ocsp-response")

        return handle

    def _crl_route(self, slug: str, *, pem: bool) -> RouteHandler:
        def handle(request: HttpRequest) -> HttpResponse:
            crl = self._started_pki().crl(slug)
            if pem:
                return HttpResponse(200, crl.public_bytes(serialization.Encoding.PEM), "application/x-pem-file")
            return HttpResponse(200, crl.public_bytes(serialization.Encoding.DER), "application/pkix-crl")

        return handle

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
            response = await self.router.dispatch(request)
            if response.hold:
                # Say nothing; read (and drop) until the client leaves. Stopping the lab cancels this task.
                while await reader.read(4096):
                    pass
                writer.transport.abort()
                return
            await write_response(writer, response, head_only=request.method == "HEAD")
        await _close(writer)

    async def _handle_tls(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._answer_https(listener, reader, writer)
        await _close(writer)

    async def _answer_https(self, listener: _Listener, reader: Reader, writer: Writer) -> None:
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

    async def _handle_openssl(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """As _handle_tls, with TLS done by pyOpenSSL (the stapling scenarios)."""
        assert listener.openssl_context is not None
        tls = MemoryTLS(listener.openssl_context, reader, writer)
        await asyncio.wait_for(tls.handshake(), HANDSHAKE_TIMEOUT)
        await self._answer_https(listener, tls, tls)
        await tls.close()

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


def _hold(request: HttpRequest) -> HttpResponse:
    return HOLD


def _garbage_ocsp(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, revocation.garbage(), "application/ocsp-response")


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
        "ocsp": {slug: lab.ocsp_url(slug) for slug in pki.REVOCATION_SLUGS},
        "crl": {slug: lab.crl_url(slug) for slug in pki.REVOCATION_SLUGS},
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


def serve_foreground(
    state_dir: Path | None,
    port_base: int,
    console: Console,
    *,
    json_output: bool = False,
    err: Console | None = None,
) -> int:
    """Run the lab until Ctrl-C, printing every scenario with ready-to-paste commands on ``console``.

    Returns 0 after a clean stop, 2 when the lab cannot start (e.g. a port is in use, or ``port_base`` is out
    of range); the reason is then one line on ``err`` (default: standard error, coloured like ``console``).
    """
    from rich.console import Console as RichConsole
    from rich.text import Text

    if err is None:
        err = RichConsole(stderr=True, no_color=console.no_color, highlight=False, emoji=False, markup=False)
    try:
        lab = Lab(state_dir, port_base=port_base, include_hostile=True)
        lab.start()
    except LabStartError as exc:
        err.print(Text("error: ", style="red").append(clean(exc)), soft_wrap=True)
        return 2
    if not lab.owns_state_dir:
        err.print(
            Text(
                clean(
                    f"note: another lab is using {lab.state_dir}; this one keeps its chain files in "
                    f"{lab.files_dir} (deleted when it stops). Use --state-dir for a lab of your own."
                ),
                style="dim",
            ),
            soft_wrap=True,
        )
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
            f"OCSP responders: {lab.aia_base_url}/ocsp/<ca>  CRLs: {lab.aia_base_url}/crl/<ca>.crl  "
            f"(<ca>: {', '.join(pki.REVOCATION_SLUGS)})",
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
