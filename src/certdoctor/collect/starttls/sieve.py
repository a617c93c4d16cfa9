"""ManageSieve: capabilities, STARTTLS (RFC 5804 §1.7, §2.2).

1. The server greets first with its capabilities (RFC 5804 §1.7): one capability per line, each a quoted string
   with an optional quoted value (``"IMPLEMENTATION" "Dovecot Pigeonhole"``, ``"STARTTLS"``, ``"SASL" "PLAIN"``),
   ended by an ``OK`` response. A ``BYE`` (or ``NO``) response instead means it will not serve this client.
2. STARTTLS is sent only when the capabilities list it (§2.2: "the server MUST list STARTTLS in its
   capabilities" when it supports it). ``STARTTLS`` answered ``OK`` starts the TLS negotiation at once; ``NO``
   or ``BYE`` refuse it (§2.2, §1.3 responses).

A response line is ``OK``/``NO``/``BYE``, an optional response code in parentheses and an optional quoted string
(§1.3, §4 ``response-oknobye``). A capability or response string may also come as a literal (``{n}`` then n
bytes, §4 ``literal-s2c``): its text is skipped line by line, bounded by the channel's caps.
"""

from __future__ import annotations

import re

from .channel import Channel, UpgradeFailed, not_the_protocol, printable

__all__ = ["NAME", "negotiate"]

NAME = "sieve"
NUDGE_COMMAND = "CAPABILITY"  # RFC 5804 §2.4: answered with the capability listing again
MAX_CAPABILITIES = 200
_RESPONSE = re.compile(r"(OK|NO|BYE)(?=$|[ (])(.*)", re.I | re.S)
_CAPABILITY = re.compile(r'"([^"]*)"')


def _not_sieve(channel: Channel, line: str) -> UpgradeFailed:
    return not_the_protocol(
        channel,
        line,
        "ManageSieve",
        "a ManageSieve server greets with its capabilities, '\"IMPLEMENTATION\" …', then OK, RFC 5804 §1.7",
    )


async def _response(channel: Channel, *, nudge: tuple[float, str] | None = None) -> tuple[list[str], str, str]:
    """Capability lines up to a response: (the capabilities' names, upper-case; the status "OK"/"NO"/"BYE"; the
    response line). Raises UpgradeFailed."""
    names: list[str] = []
    while True:
        line = await channel.readline(nudge=nudge if not names else None)
        match = _RESPONSE.match(line)
        if match is not None:
            return names, match.group(1).upper(), line
        if not line.startswith('"'):
            raise _not_sieve(channel, line)
        found = _CAPABILITY.match(line)
        if found is not None:
            names.append(found.group(1).upper())
        if len(names) > MAX_CAPABILITIES:
            raise UpgradeFailed(
                "protocol",
                f"the server lists more than {MAX_CAPABILITIES} capabilities, which no ManageSieve server does",
                stage=channel.stage,
                reply=line,
            )


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Capabilities, STARTTLS; returns when the server answered OK, raises UpgradeFailed otherwise."""
    channel.stage = "greeting"
    names, status, line = await _response(channel, nudge=(nudge_after, NUDGE_COMMAND))
    if not names and status != "OK":
        channel.banner = printable(line)
        raise UpgradeFailed(
            "refused",
            f"the server refuses the session: {printable(line, 200)!r}",
            stage="greeting",
            code=status,
            reply=line,
        )
    if not names:  # an OK without capabilities: not the greeting of RFC 5804 §1.7
        raise _not_sieve(channel, line)
    channel.banner = printable(line)
    if status != "OK":
        raise UpgradeFailed(
            "refused",
            f"the server refuses the session: {printable(line, 200)!r}",
            stage="greeting",
            code=status,
            reply=line,
        )
    if channel.nudged:  # the CAPABILITY sent while it was silent: its listing comes next
        channel.stage = "capability"
        names, status, line = await _response(channel)
    channel.offered = tuple(printable(n, 40) for n in dict.fromkeys(names))[:80]
    if "STARTTLS" not in names:
        raise UpgradeFailed(
            "refused",
            f"the server does not offer STARTTLS: its capabilities are {', '.join(channel.offered)} (RFC 5804 §2.2)",
            stage="capability",
            code=status,
            reply=line,
        )
    channel.stage = "starttls"
    channel.send("STARTTLS")
    _, status, line = await _response(channel)
    if status != "OK":
        raise UpgradeFailed(
            "refused",
            f"the server refused STARTTLS: {printable(line, 200)} (RFC 5804 §2.2)",
            stage="starttls",
            code=status,
            reply=line,
        )
