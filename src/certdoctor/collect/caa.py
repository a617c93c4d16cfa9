"""CAA records of the leaf's DNS names (RFC 8659), looked up with dnspython.

For each DNS name of the leaf's subjectAltName, the *relevant record set* of RFC 8659 §3: the CAA record set of
the name itself, or else of its closest ancestor that has one, climbing the tree up to but not including the
root. A query follows CNAME aliases as DNS resolution does (the record set of ``X`` is the one at the end of
``X``'s alias chain), and the climb continues from ``X``'s parent, not from the alias target's (RFC 8659 §3
dropped RFC 6844's climb from the target). For a wildcard name ``*.example.com`` the record set sought is
``example.com``'s, whose ``issuewild`` properties apply (§4.3).

Only evidence here: :mod:`certdoctor.checks.caa` judges it. Bounds: at most :data:`MAX_NAMES` names per
target, :data:`MAX_RECORDS` records kept per record set and :data:`MAX_VALUE` characters per value; each
query gets at most two tries within ``min(timeout, 2 s)``, and every lookup of one target shares ``timeout``
seconds in all (a lookup still running then is ``timeout``). An ancestor's answer is reused by every name under
it. SERVFAIL, REFUSED and timeouts are failures (``error_kind``), never "no records": RFC 8659 §3 forbids a CA
to treat them as permission to issue (except for a DNSSEC-proven non-existence, not judged here).

Without ``server`` the system's resolver (``/etc/resolv.conf``) is asked, and names that cannot be in the public
DNS (:func:`certdoctor.names.is_internal_name`: ``.test``, ``.internal``, single labels...) and the documentation
domains (example.com, .net, .org: RFC 6761 §6.5) are not looked up; names that are not host names never are;
with ``server`` (``--dns-server HOST[:PORT]``) every name is asked of that server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509

from ..errors import InputError
from ..model import DEFAULT_CAA_TIMEOUT
from ..names import is_internal_name

MAX_NAMES = 32  # DNS names of the leaf looked up
MAX_RECORDS = 32  # CAA records kept per record set
MAX_VALUE = 255  # characters kept per property value
QUERY_LIFETIME = 2.0  # seconds at most per query (two tries)

# The property tags RFC 8659 §4.2-4.4 defines, and those registered since (IANA "Certification Authority
# Restriction Properties": contactemail and contactphone, CA/B Forum BR App. A; issuemail, RFC 9495; issuevmc,
# the Minimum Security Requirements for Verified Mark Certificates). A critical property with any other tag
# forbids issuance (RFC 8659 §4.1).
KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail", "issuevmc"})


@dataclass(frozen=True)
class CaaRecord:
    """One CAA resource record (RFC 8659 §4.1): ``flags`` (0-255; 128 is Issuer Critical), ``tag`` (lower
    case) and ``value`` (as text, at most :data:`MAX_VALUE` characters)."""

    flags: int
    tag: str
    value: str

    @property
    def critical(self) -> bool:
        return bool(self.flags & 128)

    @property
    def issuer_domain(self) -> str | None:
        """For issue/issuewild: the issuer domain name before any ``;`` parameters, lower case ("" when the
        value names none, which forbids every CA: RFC 8659 §4.2); None for other tags."""
        if self.tag not in ("issue", "issuewild"):
            return None
        return self.value.split(";", 1)[0].strip().rstrip(".").lower()

    def to_dict(self) -> dict[str, Any]:
        return {"flags": self.flags, "tag": self.tag, "value": self.value, "critical": self.critical}

    def __str__(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


@dataclass(frozen=True)
class CaaLookup:
    """The relevant CAA record set of one DNS name of the leaf.

    ``name``: the name as the certificate writes it; ``domain``: the name whose record set is sought (a
    wildcard's base domain); ``wildcard``: ``name`` is ``*.domain`` (issuewild applies); ``queried``: the names
    asked, in climbing order; ``relevant``: where the relevant record set was found (None: none found);
    ``alias``: the CNAME target that answered for ``relevant`` (None: no alias); ``records``: the relevant
    record set; ``error``/``error_kind`` ("servfail", "refused", "timeout", "error"): the lookup failed at
    ``queried[-1]``; ``skipped``: why the name was not looked up (an internal name without ``--dns-server``)."""

    name: str
    domain: str
    wildcard: bool = False
    queried: tuple[str, ...] = ()
    relevant: str | None = None
    alias: str | None = None
    records: tuple[CaaRecord, ...] = ()
    truncated: int = 0  # records beyond MAX_RECORDS, not kept
    error: str | None = None
    error_kind: str | None = None
    skipped: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.records) and self.error is None

    def properties(self) -> tuple[CaaRecord, ...]:
        """The issue (or, for a wildcard name, issuewild) properties that decide which CA may issue for
        ``name``: a wildcard's issuewild properties when the set has any, else its issue ones (RFC 8659 §4.3)."""
        if self.wildcard:
            wild = tuple(r for r in self.records if r.tag == "issuewild")
            if wild:
                return wild
        return tuple(r for r in self.records if r.tag == "issue")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "domain": self.domain,
            "wildcard": self.wildcard,
            "queried": list(self.queried),
            "relevant": self.relevant,
            "alias": self.alias,
            "records": [r.to_dict() for r in self.records],
            "truncated": self.truncated,
            "error": self.error,
            "error_kind": self.error_kind,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class CaaEvidence:
    """Every CAA lookup of one target: ``resolver`` ("127.0.0.1:5353" or "system resolver"), ``lookups`` (one
    per DNS name of the leaves), ``issuers``: entries added to the issuer table by ``--caa-issuer``
    (organisation, CAA domains), ``elapsed`` in seconds, ``notes`` (names not looked up beyond the cap)."""

    resolver: str
    lookups: tuple[CaaLookup, ...] = ()
    issuers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    elapsed: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolver": self.resolver,
            "lookups": [lookup.to_dict() for lookup in self.lookups],
            "issuers": [{"organization": o, "domains": list(d)} for o, d in self.issuers],
            "elapsed_ms": round(self.elapsed * 1000, 1),
            "notes": list(self.notes),
        }


def parse_server(spec: str) -> tuple[str, int]:
    """(address, port) of ``--dns-server``: ``HOST``, ``HOST:PORT``, ``[v6]:PORT`` or a bare IPv6 address; the
    host must be an IP address (the resolver of the resolver is not configurable). Raises InputError."""
    host, port = spec.strip(), 53
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        host = inner
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"--dns-server {spec!r}: write [v6]:port")
            port = _port(spec, rest[1:])
    elif host.count(":") == 1:
        host, _, p = host.partition(":")
        port = _port(spec, p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"--dns-server {spec!r}: {host!r} is not an IP address") from None
    return host, port


def _port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(f"--dns-server {spec!r}: {text!r} is not a port (1-65535)")
    return int(text)


def leaf_dns_names(chains: Sequence[Any]) -> list[str]:
    """The DNS names of the subjectAltName of every distinct leaf of ``chains`` (PresentedChain), lower case,
    in order of first appearance."""
    names: dict[str, None] = {}
    for chain in chains:
        if not chain.certs:
            continue
        try:
            san = chain.certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        for n in san.get_values_for_type(x509.DNSName):
            names.setdefault(n.strip().rstrip(".").lower(), None)
    return list(names)


class CaaResolver:
    """CAA queries to one resolver, with an answer cache shared by the names of one target (and, when the
    caller keeps the resolver, by later targets: answers are kept for their TTL, failures are not kept)."""

    def __init__(self, server: str | None = None, *, cache_size: int = 4096) -> None:
        import dns.asyncresolver

        self.server = server
        self.resolver = dns.asyncresolver.Resolver(configure=server is None)
        if server is not None:
            host, port = parse_server(server)
            self.resolver.nameservers = [host]
            self.resolver.port = port
            self.label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            self.label = "system resolver"
        self.resolver.retry_servfail = False
        self.resolver.timeout = QUERY_LIFETIME / 2  # per try: two tries within a query's lifetime
        self.resolver.use_edns(0, 0, 1232)  # the DNS Flag Day 2020 payload size: no IP fragmentation
        self._cache: dict[str, tuple[float, tuple[CaaRecord, ...], int, str | None]] = {}
        self._cache_size = cache_size

    async def query(self, qname: str, lifetime: float) -> tuple[tuple[CaaRecord, ...], int, str | None]:
        """(records, records not kept, CNAME target or None) of the CAA record set at ``qname``; empty for a
        name that does not exist or has none. Raises :class:`LookupFailed`."""
        import dns.exception
        import dns.name
        import dns.resolver

        hit = self._cache.get(qname)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2], hit[3]
        lifetime = max(0.05, min(lifetime, QUERY_LIFETIME))
        ttl = 300.0
        try:
            answer = await self.resolver.resolve(
                dns.name.from_text(qname), "CAA", raise_on_no_answer=False, search=False, lifetime=lifetime
            )
        except dns.resolver.NXDOMAIN:
            records: tuple[CaaRecord, ...] = ()
            dropped, alias = 0, None
        except dns.resolver.NoNameservers as exc:
            kind = "refused" if "REFUSED" in str(exc) else "servfail"
            raise LookupFailed(kind, f"{qname}: {'REFUSED' if kind == 'refused' else 'SERVFAIL'}") from None
        except dns.exception.Timeout:
            raise LookupFailed("timeout", f"{qname}: no answer within {lifetime:g} s") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise LookupFailed("error", f"{qname}: {type(exc).__name__}: {exc}") from None
        else:
            rrset = answer.rrset
            alias = None
            if answer.canonical_name != answer.qname:
                alias = answer.canonical_name.to_text().rstrip(".")
            kept = list(rrset or ())[:MAX_RECORDS]
            dropped = len(rrset or ()) - len(kept)
            records = tuple(
                CaaRecord(int(r.flags), r.tag.decode("ascii", "replace").lower(), _text(r.value)[:MAX_VALUE])
                for r in kept
            )
            if rrset is not None:
                ttl = float(min(rrset.ttl, 3600))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[qname] = (time.monotonic() + ttl, records, dropped, alias)
        return records, dropped, alias


class LookupFailed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _text(value: bytes) -> str:
    """A CAA value as printable text (non-printable bytes as \\xNN)."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in value)


_HOST = re.compile(r"(\*\.)?([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
# RFC 6761 §6.5: the second-level names reserved for documentation, in every example and test fixture.
DOCUMENTATION_DOMAINS = ("example.com", "example.net", "example.org")


def _not_looked_up(name: str, server: str | None) -> str | None:
    """Why ``name`` is not looked up, or None: not a host name (a partial wildcard, markup...), or, without a
    server of the user's, a name that cannot be in the public DNS or a documentation domain."""
    if len(name) > 253 or not _HOST.match(name):
        return "not a DNS host name: not looked up"
    if server is None:
        base = name.removeprefix("*.")
        if is_internal_name(name) or any(base == d or base.endswith("." + d) for d in DOCUMENTATION_DOMAINS):
            return "not a public DNS name (no --dns-server to ask): not looked up"
    return None


def _ancestors(domain: str) -> list[str]:
    """``domain`` and each of its ancestors, up to but not including the root (RFC 8659 §3)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


async def relevant_set(resolver: CaaResolver, name: str, deadline: float) -> CaaLookup:
    """The relevant CAA record set of the certificate name ``name`` (RFC 8659 §3; for ``*.d``, ``d``'s)."""
    wildcard = name.startswith("*.")
    domain = name[2:] if wildcard else name
    lookup = CaaLookup(name, domain, wildcard)
    queried: list[str] = []
    for qname in _ancestors(domain):
        queried.append(qname)
        left = deadline - time.monotonic()
        if left <= 0:
            return replace(lookup, queried=tuple(queried), error=f"{qname}: out of time", error_kind="timeout")
        try:
            records, dropped, alias = await resolver.query(qname, left)
        except LookupFailed as exc:
            return replace(lookup, queried=tuple(queried), error=str(exc), error_kind=exc.kind)
        if records:
            return replace(
                lookup, queried=tuple(queried), relevant=qname, alias=alias, records=records, truncated=dropped
            )
    return replace(lookup, queried=tuple(queried))


async def collect_caa(
    names: Sequence[str],
    *,
    server: str | None = None,
    timeout: float = DEFAULT_CAA_TIMEOUT,
    issuers: Sequence[tuple[str, tuple[str, ...]]] = (),
    resolver: CaaResolver | Callable[[], CaaResolver] | None = None,
) -> CaaEvidence:
    """The relevant CAA record set of each of ``names`` (the leaf's DNS names), all within ``timeout``
    seconds; ``issuers`` are carried into the evidence for the judgement (``--caa-issuer``). Never raises for
    a DNS problem (it is the lookup's ``error``). ``resolver``: one to reuse, or a function that makes it (called
    only when a name is to be looked up; default: a :class:`CaaResolver` of ``server``)."""
    started = time.monotonic()
    made: CaaResolver | None = resolver if isinstance(resolver, CaaResolver) else None
    factory = resolver if callable(resolver) and made is None else (lambda: CaaResolver(server))
    label = made.label if made is not None else ("system resolver" if server is None else server)
    notes: list[str] = []
    if len(names) > MAX_NAMES:
        notes.append(f"CAA looked up for the first {MAX_NAMES} of {len(names)} names")
        names = names[:MAX_NAMES]
    deadline = started + timeout
    lookups: list[CaaLookup] = []
    for name in names:  # one after another: names of one certificate share ancestors (answered from the cache)
        why = _not_looked_up(name, server)
        if why is not None:
            lookups.append(CaaLookup(name, name.removeprefix("*."), name.startswith("*."), skipped=why))
            continue
        if made is None:
            try:
                made = factory()
                label = made.label
            except Exception as exc:  # e.g. dnspython's NoResolverConfiguration: no /etc/resolv.conf
                lookups.append(
                    CaaLookup(name, name.removeprefix("*."), name.startswith("*."), error=f"no resolver: {exc}",
                              error_kind="error")
                )  # fmt: skip
                continue
        try:
            left = max(0.05, deadline - time.monotonic() + 0.5)  # a safety net: relevant_set keeps the deadline
            lookups.append(await asyncio.wait_for(relevant_set(made, name, deadline), left))
        except TimeoutError:
            lookups.append(
                CaaLookup(
                    name, name.removeprefix("*."), name.startswith("*."), error="out of time", error_kind="timeout"
                )
            )
    return CaaEvidence(
        label,
        tuple(lookups),
        tuple((o, tuple(d)) for o, d in issuers),
        time.monotonic() - started,
        tuple(notes),
    )
