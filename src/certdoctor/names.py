"""Hostname verification as browsers do it (RFC 6125 §6.4, RFC 9525, CA/B Forum BR 7.1.4.2).

Pure functions: given a certificate and the name a client connected to, say whether it matches and why.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from cryptography import x509

from . import certinfo

# Special-use and private-use names (RFC 6761 §6, RFC 6762 .local, RFC 8375 home.arpa, ICANN's .internal
# (2024), RFC 7686 .onion) and top-level names commonly used inside networks that are not in the root zone: a
# certificate naming them is for an Internal Name (BR §1.6.1), which a publicly trusted CA may not issue.
INTERNAL_SUFFIXES = (
    "test",
    "example",
    "invalid",
    "localhost",
    "local",
    "internal",
    "onion",
    "home.arpa",
    "lan",
    "home",
    "corp",
    "intranet",
    "private",
    "localdomain",
)


def is_internal_name(name: str) -> bool:
    """A DNS name that is not globally unique in the public DNS: a single label, or one under a special-use or
    private-use suffix (:data:`INTERNAL_SUFFIXES`); an IP address that is not global (RFC 6890's private,
    loopback, link-local, CGNAT, documentation and other reserved ranges)."""
    if certinfo.is_ip(name):
        try:
            return not ipaddress.ip_address(name.strip("[]")).is_global
        except ValueError:
            return True
    name = name.lower().rstrip(".").removeprefix("*.")
    if "." not in name:
        return True
    return any(name == s or name.endswith("." + s) for s in INTERNAL_SUFFIXES)


@dataclass(frozen=True)
class NameMatch:
    name: str  # the name that was checked, normalised
    matched: bool
    matched_by: str | None = None  # the certificate name that matched
    kind: str = "dns"  # "dns" or "ip"
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    common_names: tuple[str, ...] = ()
    has_san: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)  # why near-misses did not match


def normalise_host(name: str) -> str:
    """Lower-case, strip brackets and a trailing dot, convert U-labels to A-labels."""
    name = name.strip().strip("[]").rstrip(".").lower()
    if certinfo.is_ip(name):
        return str(ipaddress.ip_address(name))
    if name.isascii():
        # Python's IDNA codec (RFC 3490 ToASCII) returns an all-ASCII label unchanged, or raises for an empty or
        # over-long one (then the name is kept as it is): either way the name itself, without the codec's cost
        return name
    try:
        return name.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return name


def _wildcard_match(pattern: str, host: str) -> tuple[bool, str | None]:
    """Match one SAN pattern against host. Returns (matched, note explaining a near miss)."""
    if "*" not in pattern:
        return (pattern == host, None)
    labels = pattern.split(".")
    if labels[0] != "*":
        return (
            False,
            f"{pattern}: partial or non-leftmost wildcards are not accepted by browsers, curl, Python or Go "
            "(Node and Java accept a partial wildcard in the leftmost label)",
        )
    if any("*" in lab for lab in labels[1:]):
        return (False, f"{pattern}: a wildcard is allowed only as the whole leftmost label")
    if len(labels) < 3:
        return (False, f"{pattern}: a wildcard needs at least two labels after it")
    suffix = ".".join(labels[1:])
    host_labels = host.split(".")
    if host == suffix:
        return (False, f"{pattern} covers names one level below {suffix}, not {suffix} itself")
    if len(host_labels) == len(labels) and ".".join(host_labels[1:]) == suffix:
        return (True, None)
    if host.endswith("." + suffix):
        return (False, f"{pattern} matches exactly one label; {host} has more levels")
    return (False, None)


def match_hostname(cert: x509.Certificate, host: str) -> NameMatch:
    name = normalise_host(host)
    dns = tuple(n.lower().rstrip(".") for n in certinfo.dns_names(cert))
    ips = tuple(certinfo.ip_addresses(cert))
    cns = tuple(certinfo.common_names(cert))
    has_san = certinfo.has_san_extension(cert)
    notes: list[str] = []
    if certinfo.is_ip(name):
        ip = ipaddress.ip_address(name)
        for candidate in ips:
            try:
                same = ipaddress.ip_address(candidate) == ip
            except ValueError:  # a network (a.b.c.d/nn) is not a valid SAN for a host
                same = False
            if same:
                return NameMatch(name, True, candidate, "ip", dns, ips, cns, has_san)
        if name in dns:
            notes.append(f"{name} appears as a DNS name, but IP addresses must be listed as IP SAN entries")
        if name in cns:
            notes.append(f"{name} appears only in the subject CN, which clients ignore for IP addresses")
        return NameMatch(name, False, None, "ip", dns, ips, cns, has_san, tuple(notes))
    for pattern in dns:
        ok, note = _wildcard_match(pattern, name)
        if ok:
            return NameMatch(name, True, pattern, "dns", dns, ips, cns, has_san)
        if note:
            notes.append(note)
    if not has_san and any(normalise_host(cn) == name for cn in cns):
        notes.append(
            "the name appears only in the subject Common Name; the certificate has no subjectAltName, "
            "and browsers and Go ignore the Common Name"
        )
    return NameMatch(name, False, None, "dns", dns, ips, cns, has_san, tuple(notes))
