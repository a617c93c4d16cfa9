"""PostgreSQL: SSLRequest, and PostgreSQL 17's direct TLS negotiation.

PostgreSQL docs, "Frontend/Backend Protocol", §53.2.10 (PostgreSQL 17 numbering) "SSL Session Encryption" and
§53.7 "Message Formats" (SSLRequest, ErrorResponse):

1. The client speaks first (the server sends nothing until it gets a startup packet): SSLRequest is 8 bytes,
   Int32 length 8 then Int32 code 80877103 (1234 in the high 16 bits, 5679 in the low).
2. The server answers one byte: ``S`` (it will do TLS: the client starts the handshake at once), ``N`` (it will
   not: ``ssl = off``, or built without SSL support). A server that predates SSL support answers an
   ErrorResponse instead (``E``, Int32 length, fields of a type byte and a NUL-terminated string, ended by a NUL
   byte; ``S`` severity, ``C`` SQLSTATE, ``M`` message). libpq does not show that message (it is unauthenticated,
   CVE-2024-10977); certdoctor keeps it, escaped and capped, as evidence.
3. Bytes the server sends after ``S`` and before the handshake are an attack on the client (CVE-2021-23214,
   "buffered data after SSL response"); libpq 14 and later close the connection ("received unencrypted data after
   SSL response"), and so does this negotiator.

Direct TLS (PostgreSQL 17, libpq ``sslnegotiation=direct``): TLS from the first byte on the same port, and the
server requires the ALPN protocol "postgresql" (§53.2.10 "Direct SSL"; it closes a connection without it). The
handshake offers that ALPN for both modes, as libpq 17 does. An older server reads the ClientHello as a startup
packet and closes.
"""

from __future__ import annotations

import struct

from .channel import Channel, UpgradeFailed, printable

__all__ = ["ALPN", "NAME", "SSL_REQUEST", "direct", "negotiate"]

NAME = "postgres"
SSL_REQUEST = struct.pack("!II", 8, 80877103)
ALPN = (b"postgresql",)
MAX_ERROR = 4096  # an ErrorResponse to SSLRequest longer than this is no PostgreSQL server's


def _describe(first: bytes) -> str:
    """What a first answer that is not S, N or E looks like (for the message)."""
    if len(first) >= 2 and first[0] in (21, 22) and first[1] == 3:
        return "a TLS record: the server speaks TLS from the first byte (PostgreSQL 17: --starttls postgres-direct)"
    if first.startswith(b"HTTP/"):
        return "an HTTP server"
    if first.startswith(b"SSH-"):
        return "an SSH server"
    if len(first) >= 5 and first[3] == 0 and first[4] == 10:
        return "a MySQL/MariaDB server's greeting"
    if first[:3].isdigit() or first.startswith((b"* OK", b"+OK")):
        return "a mail server's greeting"
    return "not PostgreSQL"


def _error_fields(body: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse body (type byte → text), invalid UTF-8 replaced."""
    fields: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            fields.setdefault(chr(part[0]), part[1:].decode("utf-8", "replace"))
    return fields


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """SSLRequest and its one-byte answer; returns on ``S``, raises UpgradeFailed otherwise. ``nudge_after`` is
    unused: the client speaks first."""
    channel.stage = "starttls"
    channel.send_bytes(SSL_REQUEST)
    try:
        answer = await channel.read(1)
    except UpgradeFailed as exc:
        if channel.received:
            raise
        raise UpgradeFailed(
            "protocol",
            "the server closed the connection without answering SSLRequest, which every PostgreSQL server answers "
            "(a port that speaks TLS from the first byte closes on anything but a ClientHello: for PostgreSQL 17's "
            "direct TLS, --starttls postgres-direct or ?sslnegotiation=direct)",
            stage="starttls",
        ) from exc
    if answer == b"S":
        extra = channel.pending
        if extra:
            raise UpgradeFailed(
                "protocol",
                f"the server answered S to SSLRequest and then sent {len(extra)} more byte(s) before the TLS "
                "handshake, which libpq refuses ('received unencrypted data after SSL response', CVE-2021-23214)",
                stage="starttls",
                code="S",
                reply=extra[:32].hex(" "),
            )
        return
    if answer == b"N":
        raise UpgradeFailed(
            "refused",
            "the server answered N to SSLRequest: it does not accept TLS connections (ssl = off in "
            "postgresql.conf, or built without SSL support)",
            stage="starttls",
            code="N",
            reply="N",
        )
    if answer == b"E":
        header = await channel.read(4)
        (length,) = struct.unpack("!I", header)
        if not 4 < length <= MAX_ERROR:
            raise UpgradeFailed(
                "protocol",
                f"the server answered SSLRequest with an ErrorResponse of {length} bytes, which no PostgreSQL "
                f"server sends (at most {MAX_ERROR} expected)",
                stage="starttls",
                code="E",
                reply=(answer + header).hex(" "),
            )
        fields = _error_fields(await channel.read(length - 4))
        said = " ".join(x for x in (fields.get("S"), fields.get("C"), fields.get("M")) if x) or "(no message)"
        raise UpgradeFailed(
            "refused",
            f"the server answered SSLRequest with an error ({printable(said, 200)}): a server that predates SSL "
            "support, or one that refuses this client",
            stage="starttls",
            code=fields.get("C") or "E",
            reply=said,
        )
    first = answer + channel.pending
    shown = printable(first[:40].decode("latin-1"), 60)
    raise UpgradeFailed(
        "protocol",
        f"the server does not speak PostgreSQL: it answered SSLRequest with {shown!r} "
        f"({_describe(first)}; a PostgreSQL server answers one byte, S or N)",
        stage="starttls",
        reply=first[:32].hex(" "),
    )


async def direct(channel: Channel, nudge_after: float) -> None:
    """Direct TLS: nothing to say in plaintext (the handshake offers ALPN "postgresql")."""
