"""The plaintext side of a connection before its TLS upgrade: line reading with caps, and the transcript.

A :class:`Channel` is fed by the asyncio protocol that owns the connection (``feed``/``feed_eof``) and read by a
protocol's negotiator (``readline``); the negotiator writes with ``send``. The server is untrusted: a line longer
than ``max_line`` bytes, more than ``max_bytes`` in all, or a TLS record where a text greeting belongs ends the
phase with :class:`UpgradeFailed` ("protocol"); the time it may take is bounded by the caller (the handshake's
timeout covers the plaintext phase and the TLS handshake together).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

__all__ = ["MAX_BYTES", "MAX_LINE", "Channel", "UpgradeFailed", "printable"]

# A line longer than this is no mail protocol's: SMTP replies are at most 512 octets (RFC 5321 §4.5.3.1.5), IMAP
# servers keep lines under 8,000 octets (RFC 7162 §4 recommends clients accept that much), POP3 responses at most
# 512 (RFC 2449 §4).
MAX_LINE = 8192
# Everything a server may send before the upgrade (greeting, capabilities, the reply to STARTTLS).
MAX_BYTES = 65_536
# How much of one server string is kept as evidence.
_KEEP = 300

FailureKind = Literal["refused", "protocol"]


def printable(text: str, limit: int = _KEEP) -> str:
    """``text`` with control characters escaped (``\\x1b``), cut at ``limit`` characters (an ellipsis then)."""
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)
    return out if len(out) <= limit else out[:limit] + "…"


def _looks_like_tls_record(data: bytes) -> bool:
    """A TLS record header (handshake or alert, version 3.x): what a port that speaks TLS directly sends."""
    return len(data) >= 2 and data[0] in (21, 22) and data[1] == 3


class UpgradeFailed(Exception):
    """The plaintext phase ended without an upgrade. ``kind``: "refused" (the server speaks the protocol but does
    not offer, or refuses, the upgrade) or "protocol" (it does not speak the protocol). ``stage``, ``code``,
    ``reply``: as in :class:`certdoctor.model.StartTls`."""

    def __init__(
        self, kind: FailureKind, message: str, *, stage: str, code: str | None = None, reply: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.stage = stage
        self.code = code
        self.reply = None if reply is None else printable(reply)


class Channel:
    """Lines in and out of one plaintext connection (CRLF-terminated; a bare LF is accepted as well).

    ``write``: sends bytes on the connection. ``local_address``: the client's own address, for greetings that
    name the client (SMTP EHLO). ``protocol``: the protocol's name, for messages.
    """

    def __init__(
        self,
        protocol: str,
        write: Callable[[bytes], None],
        *,
        local_address: str | None = None,
        max_line: int = MAX_LINE,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.protocol = protocol
        self._write = write
        self.local_address = local_address
        self.max_line = max_line
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self.received = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self.stage = "greeting"  # the step in progress, for timeouts
        self.banner: str | None = None
        self.offered: tuple[str, ...] = ()
        self.last_reply: str | None = None  # the last complete line received
        self.nudged = False  # the nudge command was sent (see readline): the negotiator must not repeat it
        # The name the client asks the server for, for protocols whose plaintext phase names it (XMPP's stream
        # header): the SNI name, else the host connected to; None when neither is known.
        self.server_name: str | None = None
        # The last bytes handed to a byte-reading negotiator (read_exactly, read_some), at most 300: what had
        # arrived of an unfinished message when time runs out (its parser holds them, not the buffer).
        self.recent = b""

    # fed by the connection's protocol

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if len(self._buffer) <= self.max_bytes:  # beyond that, readline fails anyway: keep no more
            self._buffer += data
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # used by the negotiators

    @property
    def pending(self) -> bytes:
        """Bytes received and not read as a line (a partial line): for a timeout's message."""
        return bytes(self._buffer)

    def discard(self) -> int:
        """Drop what the server sent after its last reply (before the TLS handshake, RFC 3207 §4.2 and RFC 2595
        §3.1: nothing received in plaintext may be acted upon after the upgrade); returns how many bytes."""
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped

    def send(self, line: str) -> None:
        """Write one command line (CRLF appended)."""
        self._write(line.encode("ascii") + b"\r\n")

    def send_bytes(self, data: bytes) -> None:
        """Write a binary message as it is (the database protocols' packets)."""
        self._write(data)

    async def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes of a binary protocol (PostgreSQL, MySQL), under the same caps as lines: more than
        ``max_bytes`` in all is UpgradeFailed ("protocol") before any of it is waited for; a connection closed
        first is UpgradeFailed ("refused" once ``banner`` is set, "protocol" before), with the bytes received."""
        if self.received - len(self._buffer) + size > self.max_bytes:
            raise UpgradeFailed(
                "protocol",
                f"the server announced a message of {size} bytes before the upgrade, more than the "
                f"{self.max_bytes} bytes no {self.protocol} server needs",
                stage=self.stage,
                reply=self._buffer[:32].hex(" "),
            )
        while len(self._buffer) < size:
            if self._eof:
                partial = bytes(self._buffer)
                said = f" after {len(partial)} byte(s) ({partial[:16].hex(' ')})" if partial else ""
                raise UpgradeFailed(
                    "refused" if self.banner is not None else "protocol",
                    f"the server closed the connection{said}"
                    + ("" if self.received else f" without answering in the {self.protocol} protocol"),
                    stage=self.stage,
                    reply=partial[:64].hex(" ") or None,
                )
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def readline(self, *, nudge: tuple[float, str] | None = None) -> str:
        """The next line, without its line ending, decoded as UTF-8 (invalid bytes replaced).

        ``nudge`` (seconds, command): when nothing at all has been received after that long, send the command
        once: a server of another protocol that waits for the client to speak first (HTTP, TLS) then answers in
        its own words, which tells what it is; a server of the protocol that is only slow to greet answers it
        after its greeting (``nudged`` is then True and the negotiator reads that answer instead of asking
        again). Raises :class:`UpgradeFailed` ("protocol") for a TLS record, an
        over-long line or too many bytes; and for a connection closed before a complete line ("refused" once the
        greeting was recognised, i.e. ``banner`` is set, "protocol" before)."""
        nudged = nudge is None
        while True:
            if self._buffer and self.stage == "greeting" and _looks_like_tls_record(self._buffer):
                raise UpgradeFailed(
                    "protocol",
                    "the server speaks TLS from the first byte on this port (implicit TLS), not "
                    f"{self.protocol.upper()} with STARTTLS",
                    stage=self.stage,
                    reply=self._buffer[:16].hex(" "),
                )
            end = self._buffer.find(b"\n")
            if (end < 0 and len(self._buffer) > self.max_line) or end > self.max_line:
                raise UpgradeFailed(
                    "protocol",
                    f"the server sent a line longer than {self.max_line} bytes, which no {self.protocol.upper()} "
                    "server does",
                    stage=self.stage,
                    reply=self._buffer[:200].decode("utf-8", "replace"),
                )
            if end >= 0:
                raw = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                self.last_reply = printable(line)
                return line
            if self.received > self.max_bytes:
                raise UpgradeFailed(
                    "protocol",
                    f"the server sent more than {self.max_bytes} bytes before the upgrade, which no "
                    f"{self.protocol.upper()} server does",
                    stage=self.stage,
                    reply=self._buffer[:200].decode("utf-8", "replace"),
                )
            if self._eof:
                partial = self._buffer.decode("utf-8", "replace")
                said = f" after sending {printable(partial, 80)!r}" if partial else ""
                raise UpgradeFailed(
                    "refused" if self.banner is not None else "protocol",
                    f"the server closed the connection{said}"
                    + ("" if self.received else f" without sending its {self.protocol.upper()} greeting"),
                    stage=self.stage,
                    reply=partial or None,
                )
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                if not nudged and self.received == 0:
                    delay, command = nudge  # type: ignore[misc]
                    try:
                        await asyncio.wait_for(asyncio.shield(self._waiter), delay)
                    except TimeoutError:
                        nudged = self.nudged = True
                        self.send(command)
                        await self._waiter
                else:
                    await self._waiter
            finally:
                self._waiter = None

    # used by the binary and XML negotiators (LDAP's BER messages, XMPP's stream): bytes rather than lines

    def _check_bytes(self) -> None:
        """Raises :class:`UpgradeFailed` ("protocol") for a TLS record where the protocol's first bytes belong
        (``stage`` "greeting", or nothing read yet), and for more than ``max_bytes`` received."""
        if self._buffer and self.banner is None and _looks_like_tls_record(self._buffer):
            raise UpgradeFailed(
                "protocol",
                f"the server speaks TLS from the first byte on this port (implicit TLS), not {self.protocol.upper()} "
                "with its upgrade to TLS",
                stage=self.stage,
                reply=self._buffer[:16].hex(" "),
            )
        if self.received > self.max_bytes:
            raise UpgradeFailed(
                "protocol",
                f"the server sent more than {self.max_bytes} bytes before the upgrade, which no "
                f"{self.protocol.upper()} server does",
                stage=self.stage,
                reply=self._buffer[:200].decode("utf-8", "replace"),
            )

    def _closed(self) -> UpgradeFailed:
        partial = self._buffer.decode("utf-8", "replace")
        said = f" after sending {printable(partial, 80)!r}" if partial else ""
        return UpgradeFailed(
            "refused" if self.banner is not None else "protocol",
            f"the server closed the connection{said}"
            + ("" if self.received else f" without answering in {self.protocol.upper()}"),
            stage=self.stage,
            reply=partial or None,
        )

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_exactly(self, count: int) -> bytes:
        """The next ``count`` bytes. Raises :class:`UpgradeFailed`: "protocol" for a TLS record first, more than
        ``max_bytes`` in all or a ``count`` above it; a close before ``count`` bytes as :meth:`readline` does."""
        if count > self.max_bytes:
            raise UpgradeFailed(
                "protocol",
                f"the server announced a message of {count} bytes, more than any {self.protocol.upper()} server "
                f"sends before the upgrade ({self.max_bytes})",
                stage=self.stage,
            )
        while True:
            self._check_bytes()
            if len(self._buffer) >= count:
                data = bytes(self._buffer[:count])
                del self._buffer[:count]
                self.recent = (self.recent + data)[-300:]
                return data
            if self._eof:
                raise self._closed()
            await self._wait()

    async def read_some(self) -> bytes:
        """Whatever has arrived and was not read yet (at least one byte), for incremental parsers. Raises as
        :meth:`read_exactly` does."""
        while True:
            self._check_bytes()
            if self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                self.recent = (self.recent + data)[-300:]
                return data
            if self._eof:
                raise self._closed()
            await self._wait()
