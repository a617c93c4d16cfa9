"""XMPP: stream header, stream features, STARTTLS (RFC 6120 §4 and §5).

The client speaks first:

1. The client opens its stream (RFC 6120 §4.7: ``<stream:stream to=DOMAIN version='1.0' xmlns='jabber:client'
   xmlns:stream='http://etherx.jabber.org/streams'>``; ``jabber:server`` between servers, §4.8.1, without a
   'from' since certdoctor has no domain of its own, as ``openssl s_client -starttls xmpp-server`` does).
2. The server opens its own stream and sends ``<stream:features>`` (§4.3.2); STARTTLS is offered with
   ``<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`` among them (§5.4.1), perhaps with ``<required/>``. A
   ``<stream:error>`` (§4.9: e.g. host-unknown for a domain it does not serve) ends the stream.
3. The client sends ``<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`` (§5.4.2.1); the server answers
   ``<proceed/>`` (TLS starts at once, §5.4.2.3) or ``<failure/>`` and closes the stream (§5.4.2.2).

The stream is untrusted XML: it is scanned tag by tag with a tolerant scanner of this module, which never resolves
an entity, never reads a DTD (RFC 6120 §11.1 forbids them in streams: one is a protocol error here) and keeps
nothing but the names of the elements it needs. The channel's byte caps and the handshake's timeout bound it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from .channel import Channel, UpgradeFailed, printable, who_answered

__all__ = ["NAME", "Tag", "TagScanner", "negotiate", "negotiate_server"]

NAME = "xmpp"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
STREAMS_NS = "http://etherx.jabber.org/streams"
MAX_TAG = 8192  # a start tag longer than this is no XMPP server's (attributes of a stream header, a feature)


@dataclass
class Tag:
    """One scanned tag: ``kind`` "start", "end", "empty" (self-closing) or "text" (character data, cut at 300
    characters; a piece of it when it arrives in pieces); ``name`` as written (prefix:local); ``attrs`` its
    attributes' raw values (no entity decoding); ``raw`` the tag's text."""

    kind: str
    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @property
    def local(self) -> str:
        return self.name.rpartition(":")[2]


class XmlError(ValueError):
    pass


_NAME = re.compile(r"\s*([^\s/>=<&'\"]+)(.*)", re.S)
_ATTR = re.compile(r"\s*([^\s=<>'\"/]+)\s*=\s*(?:'([^']*)'|\"([^\"]*)\")", re.S)


def _parse_tag(body: str, raw: str) -> Tag:
    """The tag of ``<body>``: a start, end or empty-element tag (XML 1.0 §3.1). Raises XmlError."""
    kind = "start"
    if body.startswith("/"):
        kind, body = "end", body[1:]
    elif body.endswith("/"):
        kind, body = "empty", body[:-1]
    match = _NAME.match(body)
    if match is None:
        raise XmlError(f"a tag without a valid name: {printable(raw, 60)!r}")
    name, rest = match.groups()
    attrs: dict[str, str] = {}
    position = 0
    while rest[position:].strip():
        attr = _ATTR.match(rest, position)
        if attr is None or kind == "end":
            raise XmlError(f"a malformed attribute in {printable(raw, 60)!r}")
        attrs[attr.group(1)] = attr.group(2) if attr.group(2) is not None else attr.group(3)
        position = attr.end()
    return Tag(kind, name, attrs, raw)


class TagScanner:
    """Tags out of a stream of bytes fed in pieces: ``feed(data)`` returns the tags completed so far. Character
    data between tags is a "text" tag (whitespace, e.g. keepalives, is skipped); the XML declaration is skipped;
    a DOCTYPE, a comment, a CDATA section or a processing instruction other than the declaration raises XmlError
    (RFC 6120 §11.1), as does a tag longer than ``max_tag`` characters."""

    def __init__(self, max_tag: int = MAX_TAG) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._text = ""
        self._pos, self._quote = 1, None  # how far the tag at the start of _text was scanned, in which quote
        self.max_tag = max_tag
        self.seen_text = ""  # the first characters received, for messages about what the server is

    def feed(self, data: bytes) -> list[Tag]:
        chunk = self._decoder.decode(data)
        if len(self.seen_text) < 200:
            self.seen_text += chunk[: 200 - len(self.seen_text)]
        self._text += chunk
        tags: list[Tag] = []
        while True:
            start = self._text.find("<")
            data = self._text if start < 0 else self._text[:start]
            if data.strip():  # character data (a <text/>'s): kept short, as a "text" tag
                tags.append(Tag("text", "#text", raw=data.strip()[:300]))
            if start < 0:
                self._text = ""
                return tags
            self._text = self._text[start:]
            if self._text.startswith("<!"):
                raise XmlError(
                    f"{printable(self._text[:40], 40)!r}: a DOCTYPE, comment or CDATA section, which an XMPP stream "
                    "must not contain (RFC 6120 §11.1)"
                )
            if self._text.startswith("<?"):
                if len(self._text) < 6 and "<?xml ".startswith(self._text):
                    return tags  # the start of the declaration: wait for more
                if not self._text.startswith("<?xml") or self._text[5] not in " \t\r\n?":
                    raise XmlError(
                        f"{printable(self._text[:40], 40)!r}: a processing instruction, which an XMPP stream must "
                        "not contain (RFC 6120 §11.1)"
                    )
                end = self._text.find("?>")
                if end < 0:
                    if len(self._text) > self.max_tag:
                        raise XmlError(f"an XML declaration longer than {self.max_tag} characters")
                    return tags
                self._text = self._text[end + 2 :]
                continue
            end = self._find_end()
            if end < 0:
                if len(self._text) > self.max_tag:
                    raise XmlError(f"a tag longer than {self.max_tag} characters")
                return tags
            raw = self._text[: end + 1]
            self._text = self._text[end + 1 :]
            tags.append(_parse_tag(raw[1:-1], raw))

    def _find_end(self) -> int:
        """The index of the ">" that ends the tag at the start of the text (quotes respected), or -1. Resumes
        where the previous call stopped (``_pos``, ``_quote``), so that a tag arriving byte by byte is scanned
        once, not once per byte."""
        quote, text = self._quote, self._text
        for i in range(max(self._pos, 1), len(text)):
            c = text[i]
            if quote:
                if c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
            elif c == ">":
                self._pos, self._quote = 1, None
                return i
            elif c == "<":
                raise XmlError(f"a '<' inside a tag: {printable(text[: i + 1], 60)!r}")
        self._pos, self._quote = len(text), quote
        return -1


def _not_xmpp(channel: Channel, seen: str, why: str) -> UpgradeFailed:
    line = seen.split("\n", 1)[0].strip()
    what = who_answered(line, channel.protocol, "XMPP")
    return UpgradeFailed(
        "protocol",
        f"the server does not speak XMPP: {why} (it sent {printable(line, 120)!r}; {what}; an XMPP server answers "
        "with its stream header, RFC 6120 §4.7)",
        stage=channel.stage,
        reply=line,
    )


class _Stream:
    """The server's side of the stream, tag by tag, with the depth of the current element."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.scanner = TagScanner(min(MAX_TAG, channel.max_line))
        self.pending: list[Tag] = []

    async def next(self, *, text: bool = False) -> Tag:
        """The next tag (character data too when ``text``)."""
        while True:
            tag = await self._next()
            if tag.kind == "text" and self.channel.banner is None:  # text before the stream header
                raise _not_xmpp(self.channel, self.scanner.seen_text.lstrip(), "what it sent is not XML")
            if text or tag.kind != "text":
                return tag

    async def _next(self) -> Tag:
        while not self.pending:
            data = await self.channel.read_some()
            try:
                self.pending.extend(self.scanner.feed(data))
            except XmlError as exc:
                if self.channel.banner is None:
                    raise _not_xmpp(self.channel, self.scanner.seen_text, str(exc)) from None
                raise UpgradeFailed(
                    "protocol",
                    f"the server's XMPP stream is not valid XML: {exc}",
                    stage=self.channel.stage,
                    reply=printable(self.scanner.seen_text),
                ) from None
            if not self.pending and self.channel.banner is None:
                seen = self.scanner.seen_text.lstrip()
                if seen and not seen.startswith("<"):
                    raise _not_xmpp(self.channel, seen, "what it sent is not XML")
        return self.pending.pop(0)

    async def element(self, first: Tag) -> list[Tag]:
        """The tags of the element ``first`` starts, up to its end tag (``[first]`` for an empty one)."""
        tags = [first]
        depth = 1 if first.kind == "start" else 0
        while depth:
            tag = await self.next(text=True)
            tags.append(tag)
            depth += {"start": 1, "end": -1}.get(tag.kind, 0)
            if len(tags) > 1000:
                raise UpgradeFailed(
                    "protocol",
                    f"the server's <{first.name}> has more than 1000 elements, which no XMPP server sends",
                    stage=self.channel.stage,
                )
        return tags


def _stream_error(channel: Channel, tags: list[Tag]) -> UpgradeFailed:
    """A <stream:error> (RFC 6120 §4.9.3): the condition and its text."""
    condition = next((t.local for t in tags[1:] if t.kind in ("start", "empty") and t.local != "text"), "undefined")
    text = " ".join(t.raw for t in tags if t.kind == "text")
    return UpgradeFailed(
        "refused",
        f"the server ended the stream with the error <{condition}/>"
        + (f" {printable(text, 200)!r}" if text else "")
        + " (RFC 6120 §4.9.3"
        + ("; host-unknown: it does not serve this domain" if condition == "host-unknown" else "")
        + ")",
        stage=channel.stage,
        code=condition,
        reply=" ".join(t.raw for t in tags)[:300],
    )


def _escape(value: str) -> str:
    """``value`` as an XML attribute value in single quotes (XML 1.0 §2.4)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")


async def _negotiate(channel: Channel, namespace: str) -> None:
    channel.stage = "stream"
    to = f" to='{_escape(channel.server_name)}'" if channel.server_name else ""
    channel.send_bytes(
        f"<?xml version='1.0'?><stream:stream{to} version='1.0' xmlns='{namespace}' "
        f"xmlns:stream='{STREAMS_NS}'>".encode()
    )
    stream = _Stream(channel)
    tag = await stream.next()
    if tag.local != "stream" or tag.kind != "start":
        raise _not_xmpp(channel, stream.scanner.seen_text, f"its first element is <{printable(tag.name, 40)}>")
    channel.banner = printable(tag.raw)
    channel.stage = "features"
    while True:
        tag = await stream.next()
        if tag.kind == "end" and tag.local == "stream":
            raise UpgradeFailed("refused", "the server closed the stream before its features", stage="features")
        tags = await stream.element(tag)
        if tag.local == "error":
            raise _stream_error(channel, tags)
        if tag.local == "features":
            break
    depth, children, starttls = 0, [], False
    for t in tags[1:]:
        if t.kind in ("start", "empty") and depth == 0:
            children.append(t.local.upper())
            if t.local == "starttls" and t.attrs.get("xmlns", TLS_NS) == TLS_NS:
                starttls = True
        depth += {"start": 1, "end": -1}.get(t.kind, 0)
    channel.offered = tuple(printable(c, 40) for c in dict.fromkeys(children))[:50]
    if not starttls:
        listed = ", ".join(channel.offered) or "no feature at all"
        raise UpgradeFailed(
            "refused",
            f"the server does not offer STARTTLS: its stream features are {listed} (RFC 6120 §5.4.1)",
            stage="features",
            reply=" ".join(t.raw for t in tags)[:300],
        )
    channel.stage = "starttls"
    channel.send_bytes(f"<starttls xmlns='{TLS_NS}'/>".encode())
    tag = await stream.next()
    tags = await stream.element(tag)
    if tag.local == "proceed":
        return
    if tag.local == "error":
        raise _stream_error(channel, tags)
    raise UpgradeFailed(
        "refused",
        f"the server answered STARTTLS with <{printable(tag.name, 40)}/> (RFC 6120 §5.4.2.2: <failure/> refuses it)",
        stage="starttls",
        code=printable(tag.local, 40),
        reply=" ".join(t.raw for t in tags)[:300],
    )


async def negotiate(channel: Channel, nudge_after: float) -> None:
    """Client-to-server (jabber:client); returns on <proceed/>, raises UpgradeFailed otherwise. ``nudge_after`` is
    unused: the client speaks first."""
    await _negotiate(channel, "jabber:client")


async def negotiate_server(channel: Channel, nudge_after: float) -> None:
    """Server-to-server (jabber:server, RFC 6120 §4.8.1), as :func:`negotiate`."""
    await _negotiate(channel, "jabber:server")
