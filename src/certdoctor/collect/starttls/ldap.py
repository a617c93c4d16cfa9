"""LDAP: the StartTLS extended operation (RFC 4511 §4.14, messages in BER per §5.1 and X.690).

The client speaks first (LDAP servers send nothing until asked):

1. The client sends an ExtendedRequest (RFC 4511 §4.12) whose requestName is the StartTLS OID
   1.3.6.1.4.1.1466.20037 and which has no requestValue (§4.14.1), as message 1.
2. The server answers with an ExtendedResponse (§4.12, [APPLICATION 24]) to message 1: resultCode 0 (success)
   starts TLS at once (§4.14.2); any other code refuses it, with a diagnosticMessage that says why (slapd without
   certificates: 52 "unavailable"; a server that does not know the operation: 2 "protocolError", §4.12). A
   Notice of Disconnection (§4.4.1: messageID 0, responseName 1.3.6.1.4.1.1466.20036) also ends the phase.

The BER here is the small, definite-length subset LDAP uses (§5.1: "only the definite form of length encoding";
no constructed strings): a TLV is one tag byte (LDAP's tags are all below 31), a length (short form, or long form
with at most 4 length bytes) and the contents. Anything else is not LDAP.
"""

from __future__ import annotations

from .channel import Channel, UpgradeFailed, printable, who_answered

__all__ = ["NAME", "REQUEST", "negotiate"]

NAME = "ldap"
STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
NOTICE_OF_DISCONNECTION = b"1.3.6.1.4.1.1466.20036"
_SEQUENCE = 0x30
_INTEGER = 0x02
_ENUMERATED = 0x0A
_OCTET_STRING = 0x04
_EXTENDED_REQUEST = 0x77  # [APPLICATION 23], constructed
_EXTENDED_RESPONSE = 0x78  # [APPLICATION 24], constructed
_REQUEST_NAME = 0x80  # [0], primitive
_RESPONSE_NAME = 0x8A  # [10], primitive
# The result codes of RFC 4511 §4.1.9 (Appendix A) a server answers StartTLS with, by name.
RESULT_NAMES = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    80: "other",
}


def _tlv(tag: int, content: bytes) -> bytes:
    """One BER TLV with a definite length (X.690 §8.1.3: short form below 128, else long form)."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


# LDAPMessage { messageID 1, extendedReq { requestName "1.3.6.1.4.1.1466.20037" } } (RFC 4511 §4.14.1):
# 30 1d 02 01 01 77 18 80 16 "1.3.6.1.4.1.1466.20037".
REQUEST = _tlv(_SEQUENCE, _tlv(_INTEGER, b"\x01") + _tlv(_EXTENDED_REQUEST, _tlv(_REQUEST_NAME, STARTTLS_OID)))


class _Malformed(ValueError):
    pass


def _parse(data: bytes) -> list[tuple[int, bytes]]:
    """The TLVs of ``data``, one after the other: [(tag, contents)]. Raises _Malformed."""
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise _Malformed("a truncated element")
        tag, first = data[i], data[i + 1]
        if tag & 0x1F == 0x1F:
            raise _Malformed(f"a multi-byte tag ({tag:#04x}), which LDAP does not use")
        i += 2
        if first & 0x80:
            count = first & 0x7F
            if count == 0 or count > 4 or i + count > len(data):
                raise _Malformed("an indefinite or impossible length, which LDAP does not use (RFC 4511 §5.1)")
            size = int.from_bytes(data[i : i + count], "big")
            i += count
        else:
            size = first
        if i + size > len(data):
            raise _Malformed("an element longer than its message")
        out.append((tag, data[i : i + size]))
        i += size
    return out


def _integer(content: bytes) -> int:
    if not 0 < len(content) <= 4:
        raise _Malformed("an integer of an impossible size")
    return int.from_bytes(content, "big", signed=True)


async def _read_message(channel: Channel) -> bytes:
    """One LDAPMessage's contents (the SEQUENCE's). Raises UpgradeFailed ("protocol") for anything else."""
    head = await channel.read_exactly(2)
    if head[0] != _SEQUENCE:
        rest = channel.pending[:120]
        text = (head + rest).decode("utf-8", "replace")
        what = who_answered(text, channel.protocol, "LDAP")
        raise UpgradeFailed(
            "protocol",
            f"the server does not speak LDAP: it answered {printable(text, 120)!r} ({what}; an LDAP message is a BER "
            "SEQUENCE, RFC 4511 §5.1)",
            stage=channel.stage,
            reply=text,
        )
    if head[1] & 0x80:
        count = head[1] & 0x7F
        if count == 0 or count > 4:
            raise UpgradeFailed(
                "protocol",
                "the server's LDAP message has an indefinite or impossible length (RFC 4511 §5.1)",
                stage=channel.stage,
                reply=head.hex(" "),
            )
        size = int.from_bytes(await channel.read_exactly(count), "big")
    else:
        size = head[1]
    return await channel.read_exactly(size)


def _describe(code: int) -> str:
    name = RESULT_NAMES.get(code)
    return f"{code} ({name})" if name else str(code)


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Sends the StartTLS request, reads the answer; returns on resultCode 0, raises UpgradeFailed otherwise.
    ``nudge_after`` is unused: the client speaks first."""
    channel.stage = "starttls"
    channel.send_bytes(REQUEST)
    while True:
        content = await _read_message(channel)
        try:
            elements = _parse(content)
            if len(elements) < 2 or elements[0][0] != _INTEGER:
                raise _Malformed("no messageID and protocolOp")
            message_id = _integer(elements[0][1])
            op_tag, op = elements[1]
            if op_tag != _EXTENDED_RESPONSE:
                if message_id == 1:
                    raise _Malformed(f"an answer of another kind (tag {op_tag:#04x}) to the ExtendedRequest")
                continue  # another message (RFC 4511 §4.1.1.1: only message 1 is outstanding): not ours
            fields = _parse(op)
            if len(fields) < 3 or fields[0][0] != _ENUMERATED or fields[2][0] != _OCTET_STRING:
                raise _Malformed("an ExtendedResponse without resultCode, matchedDN, diagnosticMessage")
            code = _integer(fields[0][1])
            diagnostic = fields[2][1].decode("utf-8", "replace")
            name = next((v for t, v in fields[3:] if t == _RESPONSE_NAME), None)
        except _Malformed as exc:
            raise UpgradeFailed(
                "protocol",
                f"the server's answer is not a valid LDAP message: {exc} (RFC 4511 §4.12, §5.1)",
                stage=channel.stage,
                reply=content[:64].hex(" "),
            ) from None
        said = f"resultCode {_describe(code)}" + (f", {diagnostic!r}" if diagnostic else "")
        channel.banner = printable(said)  # an LDAP server has no greeting: its answer stands for one
        if message_id == 0 and name == NOTICE_OF_DISCONNECTION:
            raise UpgradeFailed(
                "refused",
                f"the server ends the session (Notice of Disconnection, RFC 4511 §4.4.1): {said}",
                stage="starttls",
                code=str(code),
                reply=said,
            )
        if message_id != 1:
            continue
        if code != 0:
            raise UpgradeFailed(
                "refused",
                f"the server refused StartTLS: {said} (RFC 4511 §4.14.2)",
                stage="starttls",
                code=str(code),
                reply=said,
            )
        channel.offered = ("STARTTLS",)
        return
