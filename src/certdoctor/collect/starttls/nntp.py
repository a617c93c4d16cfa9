"""NNTP: greeting, CAPABILITIES, STARTTLS (RFC 4642 §2 on RFC 3977).

1. The server greets first (RFC 3977 §5.1.1): 200 (posting allowed) or 201 (not allowed) serve the client; 400
   (service temporarily unavailable) and 502 (permanently unavailable) do not.
2. ``CAPABILITIES`` (RFC 3977 §5.2): 101 then one capability per line, ended by a line of a single "." (a
   multi-line block, §3.1.1, byte-stuffed). STARTTLS is offered when listed (RFC 4642 §2.1); a server without
   CAPABILITIES (500, an NNTP server older than RFC 3977) is asked STARTTLS all the same, as RFC 4642 predates
   neither and ``openssl s_client -starttls nntp`` does.
3. ``STARTTLS`` (RFC 4642 §2.2): 382 ("Continue with TLS negotiation") starts TLS at once; 502 (not permitted:
   already TLS, or not for this client) and 580 ("Can not initiate TLS negotiation") refuse it.

Responses are a three-digit code and text (RFC 3977 §3.2), at most 512 octets; the channel's caps are looser.
"""

from __future__ import annotations

import re

from .channel import Channel, UpgradeFailed, not_the_protocol, printable, read_dot_list, read_numeric_reply

__all__ = ["NAME", "negotiate"]

NAME = "nntp"
NUDGE_COMMAND = "CAPABILITIES"
MAX_CAPABILITIES = 200


def _not_nntp(channel: Channel, line: str) -> UpgradeFailed:
    return not_the_protocol(channel, line, "NNTP", "an NNTP response starts with a three-digit code, RFC 3977 §3.2")


async def _status(channel: Channel, *, nudge: tuple[float, str] | None = None) -> tuple[str, str]:
    """One response line (RFC 3977 §3.2): (its code, the line as received, made printable)."""
    code, _ = await read_numeric_reply(
        channel, first_digits="12345", style="single", not_it=lambda line: _not_nntp(channel, line), nudge=nudge
    )
    return code, channel.last_reply or code


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Greeting, CAPABILITIES, STARTTLS; returns when the server answered 382, raises UpgradeFailed otherwise."""
    channel.stage = "greeting"
    code, line = await _status(channel, nudge=(nudge_after, NUDGE_COMMAND))
    channel.banner = printable(line)
    if code in ("220", "250") or re.search(r"\bE?SMTP\b|\bFTP\b", line, re.I):
        raise UpgradeFailed(
            "protocol",
            f"the server does not speak NNTP: its greeting {printable(line, 120)!r} is an SMTP or FTP server's",
            stage="greeting",
            code=code,
            reply=line,
        )
    if code not in ("200", "201"):
        raise UpgradeFailed(
            "refused",
            f"the server refuses the session in its greeting ({printable(line, 200)}; RFC 3977 §5.1.1)",
            stage="greeting",
            code=code,
            reply=line,
        )
    channel.stage = "capability"
    if not channel.nudged:  # else the CAPABILITIES sent while it was silent is answered next
        channel.send("CAPABILITIES")
    code, line = await _status(channel)
    if code == "101":
        items = await read_dot_list(channel, MAX_CAPABILITIES, "the CAPABILITIES list", "NNTP")
        names = tuple(dict.fromkeys(x.split(" ", 1)[0].upper() for x in items if x.strip()))
        channel.offered = tuple(printable(n, 40) for n in names[:80])
        if "STARTTLS" not in names:
            raise UpgradeFailed(
                "refused",
                f"the server does not offer STARTTLS: its CAPABILITIES are {', '.join(channel.offered) or 'none'} "
                "(RFC 4642 §2.1)",
                stage="capability",
                code=code,
                reply=" | ".join([line, *items])[:300],
            )
    channel.stage = "starttls"
    channel.send("STARTTLS")
    code, line = await _status(channel)
    if code != "382":
        raise UpgradeFailed(
            "refused",
            f"the server refused STARTTLS: {printable(line, 200)} (RFC 4642 §2.2: 382 starts TLS; 502 and 580 "
            "refuse it)",
            stage="starttls",
            code=code,
            reply=line,
        )
