"""SMTP: greeting, EHLO, STARTTLS (RFC 3207 on RFC 5321).

1. The server greets first with a 220 reply (RFC 5321 §3.1, §4.3.2 "CONNECTION ESTABLISHMENT: S: 220, E: 554");
   a 554 (or any other) greeting means it will not serve this client.
2. The client sends EHLO with its own name (§4.1.1.1; an address literal, §4.1.3, since certdoctor has no
   domain of its own); the 250 reply's lines after the first are the extension keywords (§4.1.1.1, §2.2.1).
   STARTTLS needs EHLO: a server that answers EHLO with 500/502 does not speak ESMTP, hence no STARTTLS.
3. STARTTLS is sent only when the EHLO reply lists it (RFC 3207 §4: the keyword says the server "is currently
   able to negotiate the use of TLS"); the server answers 220 ("Ready to start TLS") or 454 ("TLS not available
   due to temporary reason"), 501 (syntax) (RFC 3207 §4). After the 220 the TLS handshake starts at once;
   anything the server sent in plaintext after that reply is discarded (RFC 3207 §4.2).

Replies (RFC 5321 §4.2): a three-digit code, then "-" on every line but the last and " " (or nothing) on the last
(§4.2.1); the lines of one reply carry the same code. A reply line is at most 512 octets (§4.5.3.1.5); the
channel's caps are looser so that sloppy servers still get diagnosed.
"""

from __future__ import annotations

from .channel import Channel, UpgradeFailed, not_the_protocol, printable, read_numeric_reply

__all__ = ["NAME", "negotiate"]

NAME = "smtp"
MAX_REPLY_LINES = 200  # a reply longer than this is no SMTP server's
NUDGE_COMMAND = "EHLO certdoctor.invalid"


def ehlo_name(channel: Channel) -> str:
    """The EHLO argument: the client's address as an address literal (RFC 5321 §4.1.3: ``[192.0.2.1]``,
    ``[IPv6:2001:db8::1]``), or a name under the reserved .invalid domain (RFC 6761 §6.4) when it is unknown."""
    address = channel.local_address
    if not address:
        return "certdoctor.invalid"
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _not_smtp(channel: Channel, line: str) -> UpgradeFailed:
    return not_the_protocol(channel, line, "SMTP", "an SMTP reply starts with a three-digit code, RFC 5321 §4.2")


async def read_reply(channel: Channel, *, nudge: tuple[float, str] | None = None) -> tuple[str, list[str]]:
    """One reply: its code and the text of each of its lines (RFC 5321 §4.2.1). Raises UpgradeFailed."""
    return await read_numeric_reply(
        channel,
        first_digits="2345",
        style="same-code",
        not_it=lambda line: _not_smtp(channel, line),
        nudge=nudge,
        max_lines=MAX_REPLY_LINES,
    )


def _joined(code: str, texts: list[str]) -> str:
    return " | ".join(f"{code} {t}".rstrip() for t in texts)


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Greeting, EHLO, STARTTLS; returns when the server said 220 to STARTTLS, raises UpgradeFailed otherwise.
    ``nudge_after``: seconds of silence before an EHLO is sent unasked (see :meth:`Channel.readline`)."""
    channel.stage = "greeting"
    code, texts = await read_reply(channel, nudge=(nudge_after, NUDGE_COMMAND))
    channel.banner = printable(_joined(code, texts))
    if code != "220":
        raise UpgradeFailed(
            "refused",
            f"the server refuses the session in its greeting ({_joined(code, texts)})",
            stage="greeting",
            code=code,
            reply=_joined(code, texts),
        )
    channel.stage = "ehlo"
    if not channel.nudged:  # else the EHLO sent while it was silent is answered next
        channel.send(f"EHLO {ehlo_name(channel)}")
    code, texts = await read_reply(channel)
    if code != "250":
        raise UpgradeFailed(
            "refused",
            f"the server does not accept EHLO ({_joined(code, texts)}), so it cannot offer STARTTLS (RFC 3207 §4)",
            stage="ehlo",
            code=code,
            reply=_joined(code, texts),
        )
    keywords = tuple(dict.fromkeys(t.split(" ", 1)[0].upper() for t in texts[1:] if t.strip()))
    channel.offered = tuple(printable(k, 40) for k in keywords[:50])
    if "STARTTLS" not in keywords:
        listed = ", ".join(channel.offered) or "no extension at all"
        raise UpgradeFailed(
            "refused",
            f"the server does not offer STARTTLS: its EHLO reply lists {listed} (RFC 3207 §4)",
            stage="ehlo",
            code=code,
            reply=_joined(code, texts),
        )
    channel.stage = "starttls"
    channel.send("STARTTLS")
    code, texts = await read_reply(channel)
    if code != "220":
        raise UpgradeFailed(
            "refused",
            f"the server refused STARTTLS: {_joined(code, texts)} (RFC 3207 §4: 454 is 'TLS not available due to "
            "temporary reason')",
            stage="starttls",
            code=code,
            reply=_joined(code, texts),
        )
