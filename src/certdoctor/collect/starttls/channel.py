"""The plaintext side of a connection before its TLS upgrade: line reading with caps, and the transcript.

A :class:`Channel` is fed by the asyncio protocol that owns the connection (``feed``/``feed_eof``) and read by a
protocol's negotiator (``readline``); the negotiator writes with ``send``. The server is untrusted: a line longer
than ``max_line`` bytes, more than ``max_bytes`` in all, or a TLS record where a text greeting belongs ends the
phase with :class:`UpgradeFailed` ("protocol"); the time it may take is bounded by the caller (the handshake's
timeout covers the plaintext phase and the TLS handshake together).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Literal

__all__ = [
    "MAX_BYTES",
    "MAX_LINE",
    "Channel",
    "UpgradeFailed",
    "not_the_protocol",
    "printable",
    "read_numeric_reply",
    "who_answered",
]

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
        """Exactly ``size`` bytes of a binary protocol with length-prefixed packets (PostgreSQL, MySQL), under the
        same caps as lines: more than ``max_bytes`` in all is UpgradeFailed ("protocol") before any of it is waited
        for; a connection closed first is UpgradeFailed ("refused" once ``banner`` is set, "protocol" before),
        with the bytes received in hex. Unlike :meth:`read_exactly`, no TLS record is looked for (the first byte
        of a PostgreSQL answer is a single letter) and what is read is not kept in ``recent`` (a timeout shows
        what is pending in hex)."""
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
                raise self._closed(binary=True)
            await self._wait()
        return self._take(size)

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
                raw = self._take(end + 1)
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
                raise self._closed(silent=f"without sending its {self.protocol.upper()} greeting")
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

    def _closed(self, *, binary: bool = False, silent: str | None = None) -> UpgradeFailed:
        """The failure for a connection the server closed before a complete line or message: "refused" once the
        greeting was recognised (``banner`` set), "protocol" before. What had arrived is quoted as text, or with
        ``binary`` in hex; ``silent``: what the message says when nothing at all had arrived."""
        kind: FailureKind = "refused" if self.banner is not None else "protocol"
        if binary:
            raw = bytes(self._buffer)
            said = f" after {len(raw)} byte(s) ({raw[:16].hex(' ')})" if raw else ""
            reply = raw[:64].hex(" ") or None
            silent = silent or f"without answering in the {self.protocol} protocol"
        else:
            partial = self._buffer.decode("utf-8", "replace")
            said = f" after sending {printable(partial, 80)!r}" if partial else ""
            reply = partial or None
            silent = silent or f"without answering in {self.protocol.upper()}"
        return UpgradeFailed(
            kind,
            f"the server closed the connection{said}" + ("" if self.received else f" {silent}"),
            stage=self.stage,
            reply=reply,
        )

    def _take(self, count: int) -> bytes:
        """The first ``count`` bytes of the buffer, removed from it."""
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

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
                data = self._take(count)
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
                data = self._take(len(self._buffer))
                self.recent = (self.recent + data)[-300:]
                return data
            if self._eof:
                raise self._closed()
            await self._wait()


# How servers of other protocols open a conversation, to say which one answered instead: an HTTP status line
# (RFC 9112 §4), an SSH identification string (RFC 4253 §4.2), an IMAP greeting (RFC 3501 §7.1), a POP3 status
# (RFC 1939 §3), and the three-digit replies of SMTP, FTP and NNTP (RFC 5321 §4.2, RFC 959 §4.2, RFC 3977 §3.2).
_SPEAKERS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("HTTP/",), "an HTTP server", "http"),
    (("SSH-",), "an SSH server", "ssh"),
    (("* OK", "* PREAUTH", "* BYE"), "an IMAP server", "imap"),
    (("+OK", "-ERR"), "a POP3 server", "pop3"),
)
_NUMERIC_PROTOCOLS = ("smtp", "ftp", "nntp")


def who_answered(line: str, protocol: str, title: str) -> str:
    """Which kind of server sent ``line`` where ``protocol`` (a name of the registry; ``title``: how it is
    written, "ManageSieve") was expected: "an HTTP server", "an SSH server", "an IMAP server", "a POP3 server",
    "a text protocol's server with three-digit replies (SMTP, FTP, NNTP)", or "not TITLE" when the line says nothing."""
    for prefixes, name, speaker in _SPEAKERS:
        if speaker != protocol and line.startswith(prefixes):
            return name
    if line[:3].isdigit() and protocol not in _NUMERIC_PROTOCOLS:
        return "a text protocol's server with three-digit replies (SMTP, FTP, NNTP)"
    return f"not {title}"


def not_the_protocol(channel: Channel, line: str, title: str, expected: str) -> UpgradeFailed:
    """The failure for a text ``line`` that is not ``channel.protocol``'s: what it answered, which kind of server
    that looks like (:func:`who_answered`) and ``expected`` (what the protocol's answer looks like, with its RFC
    section)."""
    what = who_answered(line, channel.protocol, title)
    return UpgradeFailed(
        "protocol",
        f"the server does not speak {title}: it answered {printable(line, 120)!r} ({what}; {expected})",
        stage=channel.stage,
        reply=line,
    )


_NUMERIC = re.compile(r"([0-9]{3})([ -]|$)(.*)", re.S)
NumericStyle = Literal["single", "same-code", "free"]


async def read_numeric_reply(
    channel: Channel,
    *,
    first_digits: str,
    style: NumericStyle,
    not_it: Callable[[str], UpgradeFailed],
    nudge: tuple[float, str] | None = None,
    max_lines: int = 200,
) -> tuple[str, list[str]]:
    """One reply of a protocol whose replies start with a three-digit code: (the code, the text of each line
    without its code). ``first_digits``: the first digits a code may start with ("2345" for SMTP, RFC 5321
    §4.2.1; "12345" for FTP and NNTP). ``style``: "single" (NNTP, RFC 3977 §3.2: one line, the code followed by a
    space or nothing), "same-code" (SMTP, RFC 5321 §4.2.1: "code-" on every line but the last, "code " on the last,
    all with the same code) or "free" (FTP, RFC 959 §4.2: "code-" on the first line, lines of any text, then
    "code " on the last; a line in between that starts with the code loses it). ``not_it(line)``: the failure for
    a line that is not a reply. ``nudge``: as in :meth:`Channel.readline`, for the first line. Raises
    :class:`UpgradeFailed`; "protocol" also for a reply of more than ``max_lines`` lines."""
    texts: list[str] = []
    code: str | None = None
    while True:
        line = await channel.readline(nudge=nudge if code is None else None)
        match = _NUMERIC.fullmatch(line)
        same = match is not None and match.group(1)[0] in first_digits and code in (None, match.group(1))
        last = same and match.group(2) != "-"  # type: ignore[union-attr]
        if code is None or style == "same-code":
            if match is None or not same or (style == "single" and not last):
                raise not_it(line)
            code = match.group(1)
            texts.append(match.group(3))
        else:  # "free": the lines between the first and the last are any text
            texts.append(match.group(3) if same else line)  # type: ignore[union-attr]
        if last:
            return code, texts
        if len(texts) >= max_lines:
            raise UpgradeFailed(
                "protocol",
                f"the server's reply has more than {max_lines} lines, which no {channel.protocol.upper()} server sends",
                stage=channel.stage,
                reply=line,
            )


async def read_dot_list(channel: Channel, limit: int, what: str, server: str) -> list[str]:
    """The lines of a multi-line response up to its terminating ``.`` line, dot-unstuffed (RFC 3977 §3.1.1,
    RFC 1939 §3). More than ``limit`` lines is UpgradeFailed("protocol"): "``what`` has more than ``limit``
    lines, which no ``server`` server sends"."""
    items: list[str] = []
    while True:
        item = await channel.readline()
        if item == ".":
            return items
        items.append(item[1:] if item.startswith("..") else item)
        if len(items) > limit:
            raise UpgradeFailed(
                "protocol",
                f"{what} has more than {limit} lines, which no {server} server sends",
                stage="capability",
                reply=item,
            )
