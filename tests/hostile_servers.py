"""Hostile TLS and HTTP servers for tests/test_hostile_campaign.py: small threaded socket servers on loopback
whose every byte the test decides (real TLS from Python's ``ssl``/pyOpenSSL where a real server is needed,
raw records where a real server would not misbehave that way)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Handler = Callable[[socket.socket, threading.Event], None]


@dataclass
class RawServer:
    """A TCP server on ``host`` (port chosen by the OS) that runs ``handler(conn, stop)`` in a thread per
    connection. ``stop`` is set when the test ends: handlers that wait must wait on it."""

    handler: Handler
    host: str = "127.0.0.1"
    stop: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    connections: int = 0

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            self.handler(conn, self.stop)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client gave up, as it should
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self._sock.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.close()


# --- TLS bytes --------------------------------------------------------------------------------------------


def read_record(conn: socket.socket) -> bytes:
    """One whole TLS record (the ClientHello), or what came before the peer closed."""
    data = b""
    while len(data) < 5 or len(data) < 5 + struct.unpack("!H", data[3:5])[0]:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def records(data: bytes) -> list[bytes]:
    """``data`` split into TLS records (header included)."""
    out = []
    while len(data) >= 5:
        end = 5 + struct.unpack("!H", data[3:5])[0]
        out.append(data[:end])
        data = data[end:]
    return out


def server_flight(ctx: ssl.SSLContext, client_hello: bytes) -> bytes:
    """What a real ``ssl`` server answers to ``client_hello`` (ServerHello and the rest of its first flight)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(client_hello)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def server_hello_only(flight: bytes) -> bytes:
    """The first record of ``flight`` cut down to its first handshake message (the ServerHello)."""
    first = records(flight)[0]
    body = first[5:]
    length = 4 + int.from_bytes(body[1:4], "big")
    return first[:3] + struct.pack("!H", length) + body[:length]


def alert(description: int) -> bytes:
    """A fatal TLS alert record (40 handshake_failure, 112 unrecognized_name)."""
    return bytes([21, 3, 3, 0, 2, 2, description])


# --- handlers ---------------------------------------------------------------------------------------------


def stall(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(60)


def drip(ctx: ssl.SSLContext, every: float = 0.2) -> Handler:
    """A real server's first flight, one byte every ``every`` seconds."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        for byte in server_flight(ctx, read_record(conn)):
            if stop.wait(every):
                return
            conn.sendall(bytes([byte]))

    return handle


def answer(data: bytes, *, read_first: bool = True, linger: float = 0.0) -> Handler:
    """Read the ClientHello (unless ``read_first`` is False), send ``data``, close after ``linger`` s."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        if read_first:
            read_record(conn)
        conn.sendall(data)
        if linger:
            stop.wait(linger)

    return handle


def after_server_hello(ctx: ssl.SSLContext) -> Handler:
    """A real ServerHello, then close."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(server_hello_only(server_flight(ctx, read_record(conn))))

    return handle


def huge_certificate_message(ctx: ssl.SSLContext, total: int = 8 << 20) -> Handler:
    """A real TLS 1.2 ServerHello, then a Certificate message announcing 16 MiB, streamed in full-size records
    until ``total`` bytes went out or the client hangs up."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(server_hello_only(server_flight(ctx, read_record(conn))))
        payload = bytes([11]) + (0xFFFFFF).to_bytes(3, "big") + b"\x00" * 16380
        sent = 0
        while sent < total and not stop.is_set():
            conn.sendall(b"\x16\x03\x03" + struct.pack("!H", len(payload)) + payload)
            sent += len(payload) + 5
            payload = b"\x30" * 16384

    return handle


def reset(*, read_first: bool) -> Handler:
    """Close with a TCP RST (SO_LINGER 0), right after accept or after the ClientHello."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        if read_first:
            read_record(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return handle


def tls(ctx: ssl.SSLContext) -> Handler:
    """A real TLS server: handshake, then wait for the client to go."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.settimeout(10)
            with contextlib.suppress(OSError, ssl.SSLError):
                tls_conn.recv(1)

    return handle


def renegotiating(cert_file: str, key_file: str) -> Handler:
    """A TLS 1.2 server (pyOpenSSL) that sends a HelloRequest right after the handshake."""
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate_chain_file(cert_file)
    ctx.use_privatekey_file(key_file)
    requests: list[bool] = []

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(None)  # blocking: OpenSSL reads the socket itself (RawServer.close ends a wait)
        server = SSL.Connection(ctx, conn)
        server.set_accept_state()
        try:
            server.do_handshake()
        except SSL.Error:  # a ClientHello it cannot serve (an ECDSA-only offer): refused, as a server does
            return
        requests.append(server.renegotiate())
        with contextlib.suppress(SSL.Error):
            server.do_handshake()  # sends the HelloRequest; the client never answers it
        with contextlib.suppress(SSL.Error, OSError):
            server.recv(1)  # until the client goes

    handle.requests = requests  # type: ignore[attr-defined]
    return handle


HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 48\r\n"
    b"Connection: close\r\n\r\n<html><body>400 plain HTTP to HTTPS</body></html>"
)


# --- HTTP (AIA / OCSP / CRL) ------------------------------------------------------------------------------


def read_http_request(conn: socket.socket) -> tuple[str, str, bytes]:
    """(method, path, body) of one HTTP/1.1 request."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return "", "", b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, path, body


def http_head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
