"""IMAP: greeting, CAPABILITY, STARTTLS (RFC 3501; RFC 9051 keeps the same exchange for IMAP4rev2).

1. The server greets first with an untagged ``* OK`` (not authenticated), ``* PREAUTH`` (already
   authenticated: STARTTLS is no longer allowed) or ``* BYE`` (it will not serve this client) (RFC 3501 §7.1,
   §7.1.5; greeting rule in §9 ``greeting``). An OK greeting may carry the capabilities as a ``[CAPABILITY …]``
   response code (§7.1), which saves the CAPABILITY command.
2. Otherwise the client asks ``a1 CAPABILITY`` (§6.1.1): the untagged ``* CAPABILITY …`` response lists them, the
   tagged ``a1 OK`` ends it. STARTTLS is sent only when listed (§6.2.1: "STARTTLS" capability; clients MUST NOT
   attempt it otherwise, RFC 2595 §3.1).
3. ``a2 STARTTLS`` (§6.2.1): the tagged ``a2 OK`` starts the TLS negotiation; ``NO``/``BAD`` refuse it (§7.1.2,
   §7.1.3). Untagged responses in between are skipped (§2.2.2, a bounded number). Anything the server sent after
   the tagged OK is discarded (RFC 2595 §3.1).
"""

from __future__ import annotations

import re

from .channel import Channel, UpgradeFailed, not_the_protocol, printable

__all__ = ["NAME", "negotiate"]

NAME = "imap"
NUDGE_TAG = "a0"
NUDGE_COMMAND = f"{NUDGE_TAG} CAPABILITY"
MAX_UNTAGGED = 200  # untagged responses skipped while waiting for one tagged response
_CAPABILITY_CODE = re.compile(r"\[CAPABILITY ([^\]]*)\]", re.I)


def _not_imap(channel: Channel, line: str) -> UpgradeFailed:
    return not_the_protocol(channel, line, "IMAP", "an IMAP greeting is '* OK', '* PREAUTH' or '* BYE', RFC 3501 §7.1")


async def _tagged(channel: Channel, tag: str) -> tuple[str, str, list[str]]:
    """Read up to the tagged response of ``tag``: (status OK/NO/BAD, its text, untagged lines before it)."""
    untagged: list[str] = []
    while True:
        line = await channel.readline()
        if line.startswith("* "):
            if line[2:].upper().startswith("BYE"):
                raise UpgradeFailed(
                    "refused",
                    f"the server closed the session: {printable(line, 200)!r} (RFC 3501 §7.1.5)",
                    stage=channel.stage,
                    code="BYE",
                    reply=line,
                )
            untagged.append(line)
            if len(untagged) > MAX_UNTAGGED:
                raise UpgradeFailed(
                    "protocol",
                    f"more than {MAX_UNTAGGED} untagged responses without the tagged answer to {tag}",
                    stage=channel.stage,
                    reply=line,
                )
            continue
        first, _, rest = line.partition(" ")
        status, _, text = rest.partition(" ")
        if first == tag and status.upper() in ("OK", "NO", "BAD"):
            return status.upper(), text, untagged
        if first == NUDGE_TAG and tag != NUDGE_TAG and channel.nudged:
            continue  # the answer to the CAPABILITY sent while the server was silent (RFC 3501 §2.2.2)
        if first == "+":  # a continuation request: nothing of ours asked for one
            raise _not_imap(channel, line)
        raise _not_imap(channel, line)


def _capabilities(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(word.upper() for word in text.split()))


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Greeting, CAPABILITY (unless the greeting lists them), STARTTLS; returns when the server answered OK to
    STARTTLS, raises UpgradeFailed otherwise."""
    channel.stage = "greeting"
    line = await channel.readline(nudge=(nudge_after, NUDGE_COMMAND))
    head = line[:10].upper()
    if not head.startswith(("* OK", "* PREAUTH", "* BYE")):
        raise _not_imap(channel, line)
    channel.banner = printable(line)
    if head.startswith("* BYE"):
        raise UpgradeFailed(
            "refused",
            f"the server refuses the session: {printable(line, 200)!r}",
            stage="greeting",
            code="BYE",
            reply=line,
        )
    if head.startswith("* PREAUTH"):
        raise UpgradeFailed(
            "refused",
            f"the server greets with PREAUTH ({printable(line, 200)!r}): the session is already authenticated, and "
            "STARTTLS is only allowed before (RFC 3501 §6.2.1)",
            stage="greeting",
            code="PREAUTH",
            reply=line,
        )
    listed = _CAPABILITY_CODE.search(line)
    if listed is not None:
        capabilities = _capabilities(listed.group(1))
        stage_reply = line
    else:
        channel.stage = "capability"
        tag = NUDGE_TAG if channel.nudged else "a1"  # the CAPABILITY sent while it was silent is answered next
        if not channel.nudged:
            channel.send("a1 CAPABILITY")
        status, text, untagged = await _tagged(channel, tag)
        if status != "OK":
            raise UpgradeFailed(
                "refused",
                f"the server refused CAPABILITY: {tag} {status} {printable(text, 200)}",
                stage="capability",
                code=status,
                reply=f"{tag} {status} {text}",
            )
        words: list[str] = []
        for u in untagged:
            if u[2:].upper().startswith("CAPABILITY"):
                words += u[2:].split()[1:]
        capabilities = _capabilities(" ".join(words))
        stage_reply = " | ".join([*untagged, f"{tag} {status} {text}"])
    channel.offered = tuple(printable(c, 40) for c in capabilities[:80])
    if "STARTTLS" not in capabilities:
        raise UpgradeFailed(
            "refused",
            f"the server does not offer STARTTLS: its capabilities are {' '.join(channel.offered) or 'none'} "
            "(RFC 3501 §6.2.1)",
            stage="capability",
            reply=stage_reply,
        )
    channel.stage = "starttls"
    channel.send("a2 STARTTLS")
    status, text, _ = await _tagged(channel, "a2")
    if status != "OK":
        raise UpgradeFailed(
            "refused",
            f"the server refused STARTTLS: a2 {status} {printable(text, 200)} (RFC 3501 §6.2.1)",
            stage="starttls",
            code=status,
            reply=f"a2 {status} {text}",
        )
