"""POP3: greeting, CAPA, STLS (RFC 2595 §4 on RFC 1939, capabilities by RFC 2449).

1. The server greets first with ``+OK`` (RFC 1939 §4); ``-ERR`` means it will not serve this client.
2. ``CAPA`` (RFC 2449 §5): ``+OK`` then one capability per line, ended by a line of a single "." (multi-line
   response, RFC 1939 §3, with byte-stuffing: a line starting with "." has it doubled). A server without CAPA
   answers ``-ERR``; then STLS is tried all the same (RFC 2595 predates CAPA's wide use). A CAPA listing without
   ``STLS`` means the server does not offer it (RFC 2595 §4: "STLS" capability) and the upgrade is not tried.
3. ``STLS`` (RFC 2595 §4): ``+OK`` starts the TLS negotiation, ``-ERR`` refuses it. Anything the server sent
   after that ``+OK`` is discarded (RFC 2595 §3.1).

Responses are at most 512 octets (RFC 2449 §4); the channel's caps are looser.
"""

from __future__ import annotations

from .channel import Channel, UpgradeFailed, not_the_protocol, printable, read_dot_list

__all__ = ["NAME", "negotiate"]

NAME = "pop3"
NUDGE_COMMAND = "CAPA"
MAX_CAPA_LINES = 200


def _status(channel: Channel, line: str) -> tuple[str, str]:
    """("+OK" or "-ERR", the rest of the line); raises UpgradeFailed ("protocol") for anything else."""
    word, _, text = line.partition(" ")
    if word.upper() in ("+OK", "-ERR"):
        return word.upper(), text
    raise not_the_protocol(channel, line, "POP3", "a POP3 response starts with '+OK' or '-ERR', RFC 1939 §3")


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Greeting, CAPA, STLS; returns when the server answered +OK to STLS, raises UpgradeFailed otherwise."""
    channel.stage = "greeting"
    line = await channel.readline(nudge=(nudge_after, NUDGE_COMMAND))
    status, _ = _status(channel, line)
    channel.banner = printable(line)
    if status != "+OK":
        raise UpgradeFailed(
            "refused",
            f"the server refuses the session: {printable(line, 200)!r}",
            stage="greeting",
            code=status,
            reply=line,
        )
    channel.stage = "capability"
    if not channel.nudged:  # else the CAPA sent while it was silent is answered next
        channel.send("CAPA")
    line = await channel.readline()
    status, _ = _status(channel, line)
    capabilities: tuple[str, ...] | None = None
    if status == "+OK":
        lines = await read_dot_list(channel, MAX_CAPA_LINES, "the CAPA response", "POP3")
        capabilities = tuple(dict.fromkeys(x.split(" ", 1)[0].upper() for x in lines if x.strip()))
        channel.offered = tuple(printable(c, 40) for c in capabilities[:80])
        if "STLS" not in capabilities:
            raise UpgradeFailed(
                "refused",
                f"the server does not offer STLS: its CAPA lists {', '.join(channel.offered) or 'nothing'} "
                "(RFC 2595 §4)",
                stage="capability",
                code="+OK",
                reply=" | ".join([line, *lines]),
            )
    channel.stage = "starttls"
    channel.send("STLS")
    line = await channel.readline()
    status, _ = _status(channel, line)
    if status != "+OK":
        raise UpgradeFailed(
            "refused",
            f"the server refused STLS: {printable(line, 200)} (RFC 2595 §4)",
            stage="starttls",
            code=status,
            reply=line,
        )
