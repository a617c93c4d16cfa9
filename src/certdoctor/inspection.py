"""`certdoctor inspect`: every certificate in a set, described for humans, with roles and links.

A readable ``openssl x509 -text``: no judgement beyond naming each certificate's role and who issued whom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from . import certinfo
from .model import JSON_VERSION
from .paths import StoreIndex


@dataclass(frozen=True)
class Entry:
    """One certificate of the inspected set."""

    index: int  # position across all inputs (0-based)
    source: str  # file or address it came from
    position: int  # position within its source
    cert: x509.Certificate


def _ext(cert: x509.Certificate, cls: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except Exception:
        return None


def _other_names(cert: x509.Certificate) -> dict[str, list[str]]:
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is None:
        return {}
    out: dict[str, list[str]] = {}
    for kind, cls in (("email", x509.RFC822Name), ("uri", x509.UniformResourceIdentifier)):
        try:
            values = [str(v) for v in san.get_values_for_type(cls)]
        except Exception:
            values = []
        if values:
            out[kind] = values
    return out


def _key_id(cert: x509.Certificate, cls: type) -> str | None:
    value = _ext(cert, cls)
    if value is None:
        return None
    raw = getattr(value, "digest", None) or getattr(value, "key_identifier", None)
    return raw.hex(":") if raw else None


def _policies(cert: x509.Certificate) -> list[str]:
    value = _ext(cert, x509.CertificatePolicies)
    if value is None:
        return []
    names = {
        "2.23.140.1.2.1": "DV",
        "2.23.140.1.2.2": "OV",
        "2.23.140.1.2.3": "IV",
        "2.23.140.1.1": "EV",
        "2.5.29.32.0": "anyPolicy",
    }
    return [
        f"{p.policy_identifier.dotted_string}"
        + (f" ({names[p.policy_identifier.dotted_string]})" if p.policy_identifier.dotted_string in names else "")
        for p in value
    ]


def _issuer_link(
    entry: Entry, first: dict[str, int], by_name: certinfo.IssuerIndex, index: StoreIndex
) -> tuple[list[int], list[str]]:
    """Indices of certificates in the set that issued ``entry`` (the first copy of each), and trust stores
    holding its issuer. ``first``: fingerprint -> index of its first copy; ``by_name``: the set's distinct
    certificates."""
    cert = entry.cert
    if certinfo.is_self_signed(cert):
        return ([], sorted(index.stores_trusting(cert)))
    issuers = [first[certinfo.fingerprint(c)] for c in by_name.issuers_of(cert)]
    stores: set[str] = set()
    for _, names in index.issuers_of(cert):
        stores |= names
    return (issuers, sorted(stores))


def _roles(entries: Sequence[Entry], issued_by: dict[int, list[int]]) -> dict[int, str]:
    """leaf / intermediate / root / unrelated, relative to the leaves in the set."""
    issuers_of_any = {i for found in issued_by.values() for i in found}
    leaves = [e.index for e in entries if not certinfo.is_ca(e.cert) and e.index not in issuers_of_any]
    related: set[int] = set()
    frontier = list(leaves)
    while frontier:
        i = frontier.pop()
        if i in related:
            continue
        related.add(i)
        frontier.extend(issued_by.get(i, []))
    issuers = {i for found in issued_by.values() for i in found}
    roles = {}
    for e in entries:
        if not certinfo.is_ca(e.cert) and e.index in issuers:
            roles[e.index] = "intermediate"  # an end-entity certificate used to sign: see basic_constraints
        elif not certinfo.is_ca(e.cert):
            roles[e.index] = "leaf"
        elif leaves and e.index not in related:
            roles[e.index] = "unrelated"
        elif certinfo.is_self_signed(e.cert):
            roles[e.index] = "root"
        else:
            roles[e.index] = "intermediate"
    first: dict[str, int] = {}
    for e in entries:  # a repeated certificate has the role of its first copy (duplicate_of says it is one)
        fp = certinfo.fingerprint(e.cert)
        roles[e.index] = roles[first.setdefault(fp, e.index)]
    return roles


def describe(entries: Sequence[Entry], at: datetime, index: StoreIndex) -> list[dict[str, Any]]:
    """A JSON-able description of every certificate, with roles and issuer links."""
    first: dict[str, int] = {}
    for e in entries:
        first.setdefault(certinfo.fingerprint(e.cert), e.index)
    by_name = certinfo.IssuerIndex(e.cert for e in entries)
    links = {e.index: _issuer_link(e, first, by_name, index) for e in entries}
    roles = _roles(entries, {i: link[0] for i, link in links.items()})
    seen: dict[str, int] = {}
    out = []
    for e in entries:
        c = e.cert
        fp = certinfo.fingerprint(c)
        issuers, stores = links[e.index]
        d = certinfo.summary(c, at)
        d.update(
            {
                "index": e.index,
                "source": e.source,
                "position": e.position,
                "role": roles[e.index],
                "duplicate_of": seen.get(fp),
                "version": c.version.name,
                "email_addresses": _other_names(c).get("email", []),
                "uris": _other_names(c).get("uri", []),
                "key_usage": certinfo.key_usages(c),
                "subject_key_id": _key_id(c, x509.SubjectKeyIdentifier),
                "authority_key_id": _key_id(c, x509.AuthorityKeyIdentifier),
                "ocsp_urls": certinfo.ocsp_urls(c),
                "crl_urls": certinfo.crl_urls(c),
                "policies": _policies(c),
                "sha1": c.fingerprint(hashes.SHA1()).hex(),
                "issued_by": issuers,
                "issuer_in_stores": stores,
                "validity_days": round(certinfo.validity_days(c), 1),
            }
        )
        seen.setdefault(fp, e.index)
        out.append(d)
    return out


MAX_INSPECT_CERTS = 1000  # per file
# File formats inspect reads as they are: a DER or PKCS#7 file is not a formatting mistake when the question is
# "what is in it" (check --file still says that servers need PEM).
CONTAINERS = frozenset({"der", "pkcs7"})


@dataclass
class Inspection:
    """What ``certdoctor inspect`` saw: every certificate described (see :func:`describe`), grouped by source
    (a file, or the addresses presenting one chain), the files' PEM formatting problems, and what could not be
    read (one line each)."""

    groups: list[tuple[str, list[dict[str, Any]]]]
    chains: list[tuple[str, Sequence[x509.Certificate]]]  # the same sources' certificates, as read
    pem_issues: list[dict[str, Any]]
    errors: list[str]

    @property
    def empty(self) -> bool:
        return not any(certs for _, certs in self.chains)

    def to_dict(self) -> dict[str, Any]:
        """The ``inspect --json`` document (see schemas/inspect.schema.json)."""
        return {
            "certdoctor": JSON_VERSION,
            "kind": "inspect",
            "certificates": [d for _, described in self.groups for d in described],
            "pem_issues": self.pem_issues,
            "errors": self.errors,
        }


def _describe_groups(
    groups: Sequence[tuple[str, Sequence[x509.Certificate]]], at: datetime, index: StoreIndex
) -> list[tuple[str, list[dict[str, Any]]]]:
    entries, n = [], 0
    for source, certs in groups:
        for pos, cert in enumerate(certs):
            entries.append(Entry(n, source, pos, cert))
            n += 1
    described = describe(entries, at, index)
    return [(src, [d for d in described if d["source"] == src]) for src, _ in groups]


def _index(ca_files: Sequence[str]) -> StoreIndex:
    from .collect.files import load_certificate_files
    from .collect.stores import DEFAULT_STORES
    from .pipeline import load_stores

    stores, _ = load_stores(DEFAULT_STORES, explicit=False)
    return StoreIndex(stores, load_certificate_files(ca_files))


def inspect_files(paths: Sequence[str], *, at: datetime, ca_files: Sequence[str] = ()) -> Inspection:
    """Describe every certificate of ``paths`` (PEM, DER, PKCS#7; at most 1,000 per file), as of ``at`` (UTC).
    Unreadable files are listed in ``errors``; raises :class:`certdoctor.errors.InputError` for an unreadable
    ``ca_files`` entry."""
    from .collect.files import load_chain_file

    groups: list[tuple[str, Sequence[x509.Certificate]]] = []
    errors: list[str] = []
    lint: list[dict[str, Any]] = []
    for path in paths:
        chain = load_chain_file(path, max_certs=MAX_INSPECT_CERTS)
        lint.extend(
            {"file": path, "problem": i.code, "line": i.line, "detail": i.detail}
            for i in chain.pem_issues
            if i.code not in CONTAINERS
        )
        if chain.error:
            errors.append(f"{path}: {chain.error}")
        else:
            groups.append((path, chain.certs))
    return Inspection(_describe_groups(groups, at, _index(ca_files)), groups, lint, errors)


def inspect_server(
    target: str,
    *,
    at: datetime,
    resolve: Sequence[str] = (),
    sni: str | None = None,
    timeout: float = 10.0,
    ca_files: Sequence[str] = (),
    starttls: str | None = None,
    client: dict[str, Any] | None = None,
) -> Inspection:
    """Describe the chain(s) a server presents (every address; no AIA, no revocation), as of ``at`` (UTC).
    Addresses that fail are listed in ``errors``; raises :class:`certdoctor.errors.CollectError` when the name
    does not resolve. ``starttls``: as for :func:`certdoctor.api.diagnose` (None: the scheme's or port's).
    ``client``: more :func:`certdoctor.api.diagnose` arguments (the client certificate, the proxy)."""
    from .api import diagnose

    kwargs: dict[str, Any] = {"timeout": timeout, "fetch_aia": False, "revocation": False, "clients": False}
    if sni:
        kwargs["sni"] = sni
    if starttls is not None:
        kwargs["starttls"] = starttls
    kwargs.update(client or {})
    d = diagnose(target, resolve=resolve, at=at, **kwargs)
    errors = [f"{c.source}: {c.error}" for c in d.failures]
    groups = [(", ".join(r.sources), r.chain.certs) for r in d.reports]
    return Inspection(_describe_groups(groups, at, _index(ca_files)), groups, [], errors)
