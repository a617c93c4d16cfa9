"""OpenSSL (pyOpenSSL) over memory BIOs, for the scenarios that staple an OCSP response (``ssl`` cannot).

The TLS connection is driven from the lab's asyncio event loop: ciphertext moves between the socket and
OpenSSL's memory BIOs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from OpenSSL import SSL

from .httpd import MAX_HEAD, SHUTDOWN_TIMEOUT, close_writer

log = logging.getLogger("certdoctor.lab")

TLS_CHUNK = 64 * 1024  # bytes moved at once between a socket and a memory BIO


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
        await close_writer(self.writer)


def openssl_context(chain_path: Path, key_path: Path, staple: Callable[[], bytes]) -> SSL.Context:
    """A server context like :func:`chains.server_context` that staples ``staple()`` to clients that ask for it."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # as the ssl module's server contexts
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_RENEGOTIATION)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")  # before loading the chain, as in server_context
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
