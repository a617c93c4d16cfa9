"""FTP: greeting, AUTH TLS (RFC 4217 §4 on RFC 959).

1. The server greets first (RFC 959 §5.4 "Connection Establishment": 120 then 220, or 220, or 421): 220 is
   "Service ready"; 120 ("ready in nnn minutes") is followed by the 220; 421 refuses the session.
2. The client sends ``AUTH TLS`` (RFC 4217 §4: the mechanism name "TLS"; curl and ``openssl s_client -starttls
   ftp`` send it without asking FEAT first, and so does certdoctor). 234 starts the TLS negotiation at once
   (§4.1 "234 Security data exchange complete" — the server then waits for the ClientHello); 334 asks for ADAT
   data (another mechanism than TLS), 431, 500, 502, 504, 530, 534 refuse it (§4.1, §9 and RFC 2228 §4).

Replies (RFC 959 §4.2): a three-digit code and text; a multi-line reply starts with the code and "-", may have
lines of any text, and ends with a line of the same code and a space. The channel's caps bound its length.
"""

from __future__ import annotations

import re

from .channel import Channel, UpgradeFailed, not_the_protocol, printable, read_numeric_reply

__all__ = ["NAME", "negotiate"]

NAME = "ftp"
NUDGE_COMMAND = "AUTH TLS"
MAX_REPLY_LINES = 200
# What vsftpd with implicit_ssl answers plaintext with ("500 OOPS: error:0A00010B:SSL routines::wrong version
# number"): an OpenSSL error where a greeting belongs.
_TLS_ERROR = re.compile(r"SSL routines|wrong version number|SSL_accept|ssl3_get_record", re.I)
_SMTP = re.compile(r"\bE?SMTP\b|\bPostfix\b|\bExim\b", re.I)


def _not_ftp(channel: Channel, line: str) -> UpgradeFailed:
    return not_the_protocol(channel, line, "FTP", "an FTP reply starts with a three-digit code, RFC 959 §4.2")


async def read_reply(channel: Channel, *, nudge: tuple[float, str] | None = None) -> tuple[str, list[str]]:
    """One reply: its code and its lines' text (RFC 959 §4.2; the first and last lines without their code).
    Raises UpgradeFailed."""
    return await read_numeric_reply(
        channel,
        first_digits="12345",
        style="free",
        not_it=lambda line: _not_ftp(channel, line),
        nudge=nudge,
        max_lines=MAX_REPLY_LINES,
    )


def _joined(code: str, texts: list[str]) -> str:
    return " | ".join(f"{code} {t}".rstrip() for t in texts)


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Greeting, AUTH TLS; returns when the server said 234, raises UpgradeFailed otherwise."""
    channel.stage = "greeting"
    code, texts = await read_reply(channel, nudge=(nudge_after, NUDGE_COMMAND))
    while code == "120":  # "Service ready in nnn minutes": the 220 follows (RFC 959 §5.4)
        channel.banner = printable(_joined(code, texts))
        code, texts = await read_reply(channel)
    said = _joined(code, texts)
    channel.banner = printable(said)
    if code == "220" and _SMTP.search(said):
        raise UpgradeFailed(
            "protocol",
            f"the server does not speak FTP: its greeting {printable(said, 120)!r} is an SMTP server's",
            stage="greeting",
            code=code,
            reply=said,
        )
    if code != "220" and _TLS_ERROR.search(said):
        raise UpgradeFailed(
            "protocol",
            f"the server speaks TLS from the first byte on this port (implicit TLS, such as ftps:// on 990): its TLS "
            f"library failed on the plaintext it got and said so ({printable(said, 160)})",
            stage="greeting",
            code=code,
            reply=said,
        )
    if code != "220":
        raise UpgradeFailed(
            "refused",
            f"the server refuses the session in its greeting ({said}; RFC 959 §5.4)",
            stage="greeting",
            code=code,
            reply=said,
        )
    channel.stage = "starttls"
    if not channel.nudged:  # else the AUTH TLS sent while it was silent is answered next
        channel.send("AUTH TLS")
    code, texts = await read_reply(channel)
    said = _joined(code, texts)
    if code != "234":
        raise UpgradeFailed(
            "refused",
            f"the server refused AUTH TLS: {said} (RFC 4217 §4: 234 starts TLS; 500, 502, 504, 530, 534 refuse it)",
            stage="starttls",
            code=code,
            reply=said,
        )
    channel.offered = ("AUTH TLS",)
