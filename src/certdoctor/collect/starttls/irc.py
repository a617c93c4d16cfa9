"""IRC: CAP LS, STARTTLS (the IRCv3 "tls" extension; messages as RFC 1459 §2.3.1 and RFC 2812 §2.3).

The client speaks first (IRC servers may send ``NOTICE`` lines at once, e.g. "*** Looking up your hostname",
which are skipped):

1. ``CAP LS 302`` (IRCv3 capability negotiation): the server lists its capabilities in ``CAP * LS`` replies (a
   ``*`` before the list marks more lines to come); ``tls`` means it takes STARTTLS. A server without capability
   negotiation answers 421 (ERR_UNKNOWNCOMMAND) or nothing; then STARTTLS is tried all the same, as
   ``openssl s_client -starttls irc`` does (it sends STARTTLS without asking).
2. ``STARTTLS``: numeric 670 (RPL_STARTTLS, "STARTTLS successful, go ahead with TLS handshake") starts TLS at once;
   691 (ERR_STARTTLS), 421 (unknown command) or ``ERROR`` refuse it.

A ``PING`` on the way is answered with ``PONG`` (RFC 2812 §3.7.2), as the server may require before it goes on.
Lines are at most 512 octets (RFC 2812 §2.3; 8191 with IRCv3 tags); the channel's caps are looser; at most
:data:`MAX_LINES` lines are skipped while waiting for one reply.
"""

from __future__ import annotations

import re

from .channel import Channel, UpgradeFailed, not_the_protocol, printable

__all__ = ["NAME", "negotiate"]

NAME = "irc"
MAX_LINES = 200
# [@tags ][:prefix ]command params (RFC 2812 §2.3.1; IRCv3 message tags)
_MESSAGE = re.compile(r"(?:@\S+ +)?(?::(\S+) +)?([A-Za-z]+|[0-9]{3})(?: +(.*))?", re.S)


def _not_irc(channel: Channel, line: str) -> UpgradeFailed:
    return not_the_protocol(channel, line, "IRC", "an IRC message is '[:prefix] COMMAND params', RFC 2812 §2.3.1")


async def _message(channel: Channel) -> tuple[str, str, str]:
    """The next message that is not a NOTICE or PING (answered): (command upper-case, params, line)."""
    for _ in range(MAX_LINES):
        line = await channel.readline()
        if not line.strip():
            continue
        match = _MESSAGE.fullmatch(line.strip())
        if match is None:
            raise _not_irc(channel, line)
        if channel.banner is None:
            channel.banner = printable(line)
        command, params = match.group(2).upper(), match.group(3) or ""
        if command == "PING":
            channel.send(f"PONG {params}"[:510])
            continue
        if command == "NOTICE":
            continue
        return command, params, line
    raise UpgradeFailed(
        "protocol",
        f"the server sent more than {MAX_LINES} lines without answering, which no IRC server does",
        stage=channel.stage,
    )


def _refused(channel: Channel, command: str, line: str, stage: str, why: str) -> UpgradeFailed:
    return UpgradeFailed("refused", why, stage=stage, code=command, reply=line)


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """CAP LS, STARTTLS; returns on 670, raises UpgradeFailed otherwise. ``nudge_after`` is unused: the client
    speaks first."""
    channel.stage = "greeting"  # a TLS record or another protocol's greeting shows up here
    channel.send("CAP LS 302")
    capabilities: list[str] | None = None
    for _ in range(MAX_LINES):
        command, params, line = await _message(channel)
        channel.stage = "capability"
        if command == "CAP":
            # "<nick or *> LS [*] :cap1 cap2=value ..."
            head, _, listed = params.partition(":")
            words = head.split()
            if len(words) < 2 or words[1].upper() != "LS":
                continue
            capabilities = (capabilities or []) + [c.split("=", 1)[0].lower() for c in listed.split()]
            if len(capabilities) > 500:
                raise UpgradeFailed("protocol", "the server lists more than 500 capabilities", stage="capability")
            if "*" in words[2:]:
                continue  # more CAP LS lines follow
            break
        if command in ("421", "451"):  # CAP unknown, or "not registered": no capability negotiation
            break
        if command == "ERROR":
            raise _refused(channel, command, line, "capability", f"the server closed the session: {printable(line)}")
        # another numeric (a welcome, 020 "please wait"): keep waiting for the CAP reply
    else:
        raise UpgradeFailed("protocol", f"no answer to CAP LS in {MAX_LINES} messages", stage="capability")
    if capabilities is not None:
        channel.offered = tuple(printable(c.upper(), 40) for c in dict.fromkeys(capabilities))[:80]
        if "tls" not in capabilities:
            raise _refused(
                channel,
                "CAP",
                line,
                "capability",
                f"the server does not offer STARTTLS: its capabilities are {', '.join(channel.offered) or 'none'} "
                "(IRCv3 'tls' capability)",
            )
    channel.stage = "starttls"
    channel.send("STARTTLS")
    for _ in range(MAX_LINES):
        command, params, line = await _message(channel)
        if command == "670":
            return
        if command in ("691", "421", "ERROR"):
            what = {"691": "ERR_STARTTLS", "421": "ERR_UNKNOWNCOMMAND", "ERROR": "ERROR"}[command]
            raise _refused(
                channel, command, line, "starttls", f"the server refused STARTTLS: {printable(line, 200)} ({what})"
            )
    raise UpgradeFailed("protocol", f"no answer to STARTTLS in {MAX_LINES} messages", stage="starttls")
