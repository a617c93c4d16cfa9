"""MySQL and MariaDB: the server's Handshake v10, the client's SSLRequest, then TLS.

MySQL Client/Server Protocol (dev.mysql.com/doc/dev/mysql-server/latest/ "Connection Phase", "Protocol::
HandshakeV10", "Protocol::SSLRequest", "ERR_Packet"; MariaDB's "Connection" page says the same):

1. Packets are a 3-byte little-endian payload length, a 1-byte sequence id, then the payload (at most 16 MB - 1).
2. The server greets first (sequence 0): Handshake v10 (first byte 10: server version NUL-terminated, a 4-byte
   connection id, 8 bytes of scramble, a filler byte, then the low 16 bits of its capability flags, and, when
   there is more, charset, status and the high 16 bits); or an ERR packet (first byte 0xFF: a 2-byte error code,
   optionally ``#`` and a 5-character SQLSTATE, then the message) when it refuses the client at once ("Host …
   is not allowed to connect", ER_HOST_NOT_PRIVILEGED 1130; "Too many connections", 1040). Protocol version 9
   (pre-4.1 servers) has no TLS.
3. A server that can do TLS sets CLIENT_SSL (0x800) in its capabilities (it does once ``ssl_cert``/``ssl_key``
   are configured). The client then sends SSLRequest (sequence 1): its capability flags (4 bytes, with
   CLIENT_SSL), max packet size (4), charset (1) and 23 zero bytes, 32 bytes in all; the TLS handshake follows at
   once, with no answer in between.

The greeting is small (under 200 bytes in practice); one whose announced length exceeds :data:`MAX_GREETING` is
refused before it is read, so that a hostile 16 MB length cannot hold the client.
"""

from __future__ import annotations

import struct

from .channel import Channel, UpgradeFailed, printable

__all__ = ["CLIENT_SSL", "NAME", "negotiate", "ssl_request"]

NAME = "mysql"
MAX_GREETING = 16_384
CLIENT_LONG_PASSWORD = 0x1
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
# The capabilities certdoctor announces (what the C client library sends in its SSLRequest, minus the options
# of a session it never has: no database, no compression).
CLIENT_FLAGS = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
_NAMED = {
    0x1: "LONG_PASSWORD",
    0x8: "CONNECT_WITH_DB",
    0x20: "COMPRESS",
    0x200: "PROTOCOL_41",
    0x800: "SSL",
    0x8000: "SECURE_CONNECTION",
    0x80000: "PLUGIN_AUTH",
    0x200000: "PLUGIN_AUTH_LENENC_CLIENT_DATA",
    0x1000000: "SESSION_TRACK",
    0x2000000: "DEPRECATE_EOF",
}
UTF8_GENERAL_CI = 33


def ssl_request(sequence: int = 1, charset: int = UTF8_GENERAL_CI) -> bytes:
    """The SSLRequest packet: header (length 32, ``sequence``) and its 32-byte payload."""
    payload = struct.pack("<IIB23x", CLIENT_FLAGS, 16_777_216, charset)
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


def _describe(first: bytes) -> str:
    if len(first) >= 2 and first[0] in (21, 22) and first[1] == 3:
        return "a TLS record: the port speaks TLS from the first byte"
    if first.startswith(b"HTTP/"):
        return "an HTTP server"
    if first.startswith(b"SSH-"):
        return "an SSH server"
    if first[:3].isdigit() or first.startswith((b"* OK", b"+OK")):
        return "a mail server's greeting"
    return "not MySQL"


def _not_mysql(channel: Channel, data: bytes, why: str) -> UpgradeFailed:
    return UpgradeFailed(
        "protocol",
        f"the server does not speak MySQL: it sent {printable(data[:40].decode('latin-1'), 60)!r} ({_describe(data)}; "
        f"{why})",
        stage=channel.stage,
        reply=data[:32].hex(" "),
    )


def _capabilities(payload: bytes) -> tuple[str, int]:
    """(server version, capability flags) of a Handshake v10 payload; raises ValueError when it is cut short."""
    end = payload.index(b"\0", 1)
    version = payload[1:end].decode("utf-8", "replace")
    at = end + 1 + 4 + 8 + 1  # connection id, scramble part 1, filler
    low = struct.unpack_from("<H", payload, at)[0]
    high = 0
    if len(payload) >= at + 2 + 1 + 2 + 2:  # charset, status flags, then the high 16 bits
        high = struct.unpack_from("<H", payload, at + 5)[0]
    return version, low | high << 16


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Greeting, then SSLRequest when it offers CLIENT_SSL; raises UpgradeFailed otherwise. ``nudge_after`` is
    unused: nothing may be sent before the server's greeting."""
    channel.stage = "greeting"
    header = await channel.read(4)
    length = int.from_bytes(header[:3], "little")
    if header[3] != 0 or length == 0 or length > MAX_GREETING:
        if header[3] == 0 and length > MAX_GREETING:
            why = f"a greeting packet of {length} bytes, where MySQL servers send under {MAX_GREETING}"
        else:
            why = "a MySQL server greets with a packet of sequence 0"
        raise _not_mysql(channel, header + channel.pending, why)
    payload = await channel.read(length)
    kind = payload[0]
    if kind == 0xFF:  # ERR packet: the server will not talk to this client
        code = str(struct.unpack_from("<H", payload, 1)[0]) if length >= 3 else ""
        text = payload[3:]
        state = ""
        if text.startswith(b"#") and len(text) >= 6:
            state, text = text[1:6].decode("ascii", "replace"), text[6:]
        message = text.decode("utf-8", "replace")
        channel.banner = printable(f"ERR {code}{' (' + state + ')' if state else ''}: {message}")
        raise UpgradeFailed(
            "refused",
            f"the server refuses the connection in its greeting: error {code}: {printable(message, 200)}",
            stage="greeting",
            code=code or None,
            reply=message,
        )
    if kind == 9:
        channel.banner = printable(payload[1:].split(b"\0", 1)[0].decode("utf-8", "replace"))
        raise UpgradeFailed(
            "refused",
            "the server speaks protocol version 9 (MySQL before 4.1), which has no TLS",
            stage="greeting",
            code="9",
            reply=channel.banner,
        )
    if kind != 10:
        raise _not_mysql(channel, header + payload, "a MySQL greeting is a Handshake v10 packet, first byte 10")
    try:
        version, flags = _capabilities(payload)
    except (ValueError, struct.error):
        raise _not_mysql(channel, header + payload, "its Handshake v10 packet is cut short") from None
    channel.banner = printable(version, 120)
    channel.offered = tuple(name for bit, name in _NAMED.items() if flags & bit)
    if not flags & CLIENT_SSL:
        raise UpgradeFailed(
            "refused",
            f"the server ({printable(version, 80)}) does not offer TLS: CLIENT_SSL is not among its capabilities "
            "(no ssl_cert/ssl_key configured, or built without TLS)",
            stage="greeting",
            code=f"0x{flags:08x}",
            reply=version,
        )
    channel.stage = "starttls"
    channel.send_bytes(ssl_request(header[3] + 1))
