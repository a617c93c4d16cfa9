"""Reading scan targets: one per line, or CSV with a header.

Line format (``#`` comments and blank lines are ignored)::

    example.com
    example.com:8443
    https://example.com:8443/health
    [2001:db8::1]:443
    example.com:443,sni=www.example.com        # send another SNI
    example.com:443,addr=192.0.2.10            # connect to this address instead of resolving (repeatable)
    192.0.2.10:443,name=example.com            # verify this name (SNI follows it unless sni= is given)
    smtp://mail.example.com:587                # speak SMTP first and upgrade with STARTTLS (imap://, pop3://)
    mail.example.com:2525,starttls=smtp        # the same on another port (starttls=none: TLS at once)
    mail.example.com:587                       # 25, 587 (smtp), 143 (imap), 110 (pop3) upgrade by default
    pay.example.com,label=team=payments        # a label, for the policy's [labels."team=payments"] (repeatable)

CSV: a first line with a ``host`` column (and optionally ``port``, ``sni``, ``name``, ``addr``/``address``,
addresses separated by ``|`` or spaces, ``starttls``). A malformed line becomes a :class:`BadLine`, never an
exception; so does a line longer than MAX_LINE characters (read through :func:`lines_of`, it is never held in
memory whole).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, NamedTuple

from ..certinfo import is_ip
from ..collect.starttls import STARTTLS_PORTS
from ..errors import InputError
from ..model import DeployedRef
from ..pipeline import SCHEME_PORTS, parse_target, starttls_for

MAX_LINE = 4096
_OPTIONS = frozenset({"sni", "name", "addr", "address", "port", "starttls", "label"})
_SPACE = re.compile(r"\s")
# URL schemes of TLS services (those parse_target knows a default port for), the STARTTLS ones included; any
# other (http://, gopher://, ...) is not scanned as HTTPS but reported as a bad line
TLS_SCHEMES = tuple(SCHEME_PORTS)
# The lines most inputs are made of, read without the general parser: "host", "host:port", either followed
# by one ",addr=IPv4". Anything else (and any port or address this does not vouch for) takes the long way.
# A plain line: host (DNS labels as pipeline.check_host accepts them) [:port] [,addr=IPv4]
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_SIMPLE = re.compile(rf"({_LABEL}(?:\.{_LABEL})*\.?)(?::([0-9]{{1,5}}))?(?:,addr=([0-9.]{{7,15}}))?")


class ScanTarget(NamedTuple):
    """One target to scan (a tuple: a scan makes thousands a second and sends them between processes)."""

    line: int  # 1-based line number in the input
    text: str  # the line as given (stripped), used as the record's "target"
    host: str
    port: int
    sni: str | None  # None: no SNI (IP targets without sni=)
    name: str  # the name the certificate must match
    addresses: tuple[str, ...] = ()  # connect here instead of resolving ``host``
    deployed: tuple[DeployedRef, ...] = ()  # files this target should serve (watch's linked deployed files)
    # The protocol upgraded to TLS first ("smtp", "imap", "pop3"; see certdoctor.collect.starttls); None: TLS at
    # once. Last, with a default: tuples made before it existed still read.
    starttls: str | None = None
    # (key, value) labels: the line's label=KEY=VALUE options or the watched target's labels (the policy's
    # [labels."k=v"] sections select on them). Last, with a default, as above.
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[int, str]:
        """What identifies a target in a results file (for --resume)."""
        return (self.line, self.text)

    def to_wire(self) -> tuple[Any, ...]:
        return tuple(self)

    @classmethod
    def from_wire(cls, wire: tuple[Any, ...]) -> ScanTarget:
        """The target of ``to_wire``'s tuple; a shorter tuple (from a version with fewer fields) gets the
        defaults of the fields it lacks."""
        return cls(*wire)


class BadLine(NamedTuple):
    line: int
    text: str
    reason: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.line, self.text)


def _make(line: int, text: str, spec: str, options: dict[str, list[str]]) -> ScanTarget | BadLine:
    if "://" in spec:
        scheme = spec.partition("://")[0].lower()
        if scheme not in TLS_SCHEMES:
            return BadLine(
                line, text, f"unsupported scheme {scheme + '://'!r}: scan speaks TLS ({', '.join(TLS_SCHEMES)})"
            )
    try:
        host, port = parse_target(spec)
    except InputError as exc:
        return BadLine(line, text, str(exc))
    if not options:  # the common case: just a host or host:port
        if _SPACE.search(host):
            return BadLine(line, text, "no host name")
        upgrade = starttls_for(spec, port)
        return ScanTarget(line, text, host, port, None if is_ip(host) else host, host, starttls=upgrade)
    unknown = options.keys() - _OPTIONS
    if unknown:
        return BadLine(
            line, text, f"unknown option {sorted(unknown)[0]!r} (known: sni=, name=, addr=, starttls=, label=)"
        )
    labels = []
    for value in options.get("label", []):
        k, eq, v = value.partition("=")
        if not eq or not k.strip() or not v.strip():
            return BadLine(line, text, f"label={value!r}: expected label=KEY=VALUE")
        labels.append((k.strip(), v.strip()))
    if "port" in options:
        value = options["port"][-1]
        if not value.isdigit() or not 0 < int(value) < 65536:
            return BadLine(line, text, f"invalid port {value!r}")
        port = int(value)
    try:
        upgrade = (
            starttls_for(spec, port, options["starttls"][-1]) if "starttls" in options else starttls_for(spec, port)
        )
    except InputError as exc:
        return BadLine(line, text, str(exc))
    name = options["name"][-1] if "name" in options else host
    if "sni" in options:
        sni: str | None = options["sni"][-1] or None
    else:
        sni = None if is_ip(name) else name
    addresses: list[str] = []
    for value in [*options.get("addr", []), *options.get("address", [])]:
        for a in value.replace("|", " ").split():
            a = a.strip("[]")
            if not is_ip(a):
                return BadLine(line, text, f"addr={a!r} is not an IP address")
            addresses.append(a)
    if not name or _SPACE.search(host):
        return BadLine(line, text, "no host name")
    return ScanTarget(line, text, host, port, sni, name, tuple(addresses), starttls=upgrade, labels=tuple(labels))


def parse_line(line: int, raw: str) -> ScanTarget | BadLine | None:
    """One input line: a target, a bad line, or None for comments and blank lines."""
    text = raw.strip()
    simple = _SIMPLE.fullmatch(text) if len(text) <= MAX_LINE else None
    if simple is not None:
        host, port_text, address = simple.groups()
        port = 443 if port_text is None else int(port_text)
        if 0 < port < 65536 and (address is None or is_ip(address)) and len(host.rstrip(".")) <= 253:
            sni = None if is_ip(host) else host
            addresses = () if address is None else (address,)
            return ScanTarget(line, text, host, port, sni, host, addresses, starttls=STARTTLS_PORTS.get(port))
    return _parse_general(line, text)


def _parse_general(line: int, text: str) -> ScanTarget | BadLine | None:
    if not text or text[0] == "#":
        return None
    if len(text) > MAX_LINE:
        return _too_long(line, text, len(text))
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    options: dict[str, list[str]] = {}
    if "," in text:
        spec, *parts = [p.strip() for p in text.split(",")]
        for part in parts:
            if not part:
                continue
            key, eq, value = part.partition("=")
            if not eq:
                return BadLine(line, text, f"expected key=value after the target, got {part!r}")
            options.setdefault(key.strip().lower(), []).append(value.strip())
    else:
        spec = text
    if not spec or _SPACE.search(spec):
        return BadLine(line, text, "not a target (HOST, HOST:PORT or https:// URL)")
    return _make(line, text, spec, options)


_CSV_COLUMNS = {"host", "hostname", "target", "port", "sni", "name", "addr", "address", "addresses", "starttls"}


def _is_csv_header(text: str) -> bool:
    cells = [c.strip().lower() for c in next(csv.reader([text]), [])]
    return len(cells) > 1 and bool({"host", "hostname", "target"} & set(cells)) and set(cells) <= _CSV_COLUMNS


def read_targets(lines: Iterable[str]) -> Iterator[ScanTarget | BadLine]:
    """Targets in input order, streaming (a million-line input is never held in memory).

    Never raises for what a line holds: a line longer than MAX_LINE characters, or one that cannot be read for
    any reason, becomes that line's :class:`BadLine`, and the lines after it are read as usual."""
    header: list[str] | None = None
    first = True
    for number, raw in enumerate(lines, start=1):
        item: ScanTarget | BadLine | None
        try:
            if len(raw) > MAX_LINE and (isinstance(raw, LongLine) or len(raw.strip()) > MAX_LINE):
                text = raw.strip()
                if text.startswith("#"):
                    continue  # a comment, however long
                first = False  # not a CSV header either
                item = _too_long(number, text, getattr(raw, "length", len(text)))
            elif header is None:
                if first:
                    text = raw.strip()
                    if text and not text.startswith("#"):
                        first = False
                        if _is_csv_header(text):
                            header = [c.strip().lower() for c in next(csv.reader([text]))]
                            continue
                item = parse_line(number, raw)
            else:
                item = _csv_row(number, raw.strip(), header)
        except Exception as exc:  # one line must never stop the scan
            item = BadLine(number, _shown(raw.strip()), f"unreadable line: {type(exc).__name__}: {exc}")
        if item is not None:
            yield item


def _too_long(number: int, text: str, length: int) -> BadLine:
    return BadLine(number, _shown(text), f"line too long ({length} characters, longer than {MAX_LINE})")


def _shown(text: str) -> str:
    """What a record shows of a line as its target: at most 80 characters."""
    return text if len(text) <= 80 else text[:80] + "…"


class LongLine(str):
    """The first MAX_LINE + 2 characters of a line too long to read whole, and its ``length`` in characters
    (see :func:`lines_of`)."""

    length: int


def lines_of(stream: IO[str]) -> Iterator[str]:
    """The lines of ``stream``, each read into memory whole only when it is at most MAX_LINE characters long:
    a longer one comes as a :class:`LongLine` (its beginning and its length), so that an input of one
    gigabyte-long line costs no gigabyte. (A line is a line for :func:`read_targets` in either case.)"""
    readline = stream.readline
    limit = MAX_LINE + 2  # the line, "\r\n"
    while True:
        raw = readline(limit)
        if len(raw) < limit or raw[-1] == "\n":
            if not raw:
                return
            yield raw
            continue
        length = len(raw)
        while True:  # the rest of the line, read and dropped a block at a time
            rest = readline(1 << 16)
            length += len(rest)
            if not rest or rest[-1] == "\n":
                break
        long = LongLine(raw)
        long.length = length - (len(rest) - len(rest.rstrip("\r\n")))
        yield long


def _csv_row(number: int, text: str, header: list[str]) -> ScanTarget | BadLine | None:
    if not text or text.startswith("#"):
        return None
    try:
        cells = next(csv.reader(io.StringIO(text)))
    except (csv.Error, StopIteration) as exc:
        return BadLine(number, _shown(text), f"unreadable CSV line: {exc}")
    if len(cells) > len(header):
        return BadLine(number, text, f"{len(cells)} fields, the header has {len(header)}")
    row = dict(zip(header, (c.strip() for c in cells), strict=False))
    spec = row.get("host") or row.get("hostname") or row.get("target") or ""
    options: dict[str, list[str]] = {}
    for column, key in (("port", "port"), ("sni", "sni"), ("name", "name"), ("starttls", "starttls")):
        if row.get(column):
            options[key] = [row[column]]
    for column in ("addr", "address", "addresses"):
        if row.get(column):
            options.setdefault("addr", []).append(row[column])
    if not spec:
        return BadLine(number, text, "empty host")
    return _make(number, text, spec, options)
