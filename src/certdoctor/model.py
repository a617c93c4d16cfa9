"""Plain data shared by every layer: what was seen (evidence) and what was concluded (findings).

Collection produces :class:`Evidence`; checks read it and produce :class:`Finding`; renderers present a
:class:`Diagnosis`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class Target:
    """What to diagnose: a server (host/port) or local files.

    ``name`` is the name the certificate must match (None: no name check). ``sni`` is the server name sent
    in the ClientHello (None: no SNI extension). ``addresses`` overrides DNS resolution (like curl's
    ``--resolve``).
    """

    name: str | None
    port: int = 443
    sni: str | None = None
    addresses: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def is_files(self) -> bool:
        return bool(self.files)

    def label(self) -> str:
        if self.files:
            return ", ".join(self.files)
        return f"{self.name}:{self.port}"


@dataclass(frozen=True)
class PemIssue:
    """A formatting fact about a certificate file (collected from files; judged by the pem checks)."""

    code: str  # "glued", "crlf", "whitespace", "no-final-newline", "armour", "private-key", "der", "pkcs7",
    #            "unterminated"
    detail: str
    line: int | None = None


@dataclass(frozen=True)
class PresentedChain:
    """The certificates one source (an address, or a file) presented, in the order presented.

    ``certs`` is capped (see ``total_received``); duplicates are kept, since sending one is a finding.
    On a connection or handshake failure ``certs`` is empty and ``error``/``error_kind`` say why.
    """

    source: str  # "127.0.0.1:443", "[::1]:443" or a file path
    address: str | None = None  # the IP address, for network sources
    certs: tuple[x509.Certificate, ...] = ()
    total_received: int = 0
    tls_version: str | None = None
    cipher: str | None = None
    error: str | None = None
    # "resolve", "connect", "timeout", "handshake", "not-tls", "too-large" (oversized handshake),
    # "no-certificate", "parse"
    error_kind: str | None = None
    ocsp_staple: bytes | None = None
    elapsed: float = 0.0
    handshake_bytes: int = 0  # bytes the server sent until the handshake completed (its certificate flight)
    pem_issues: tuple[PemIssue, ...] = ()  # for files: how the file is written

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.certs)


@dataclass(frozen=True)
class AiaFetch:
    """The result of downloading one AIA caIssuers URL."""

    url: str
    certs: tuple[x509.Certificate, ...] = ()
    error: str | None = None
    status: int | None = None
    content_type: str | None = None
    size: int = 0


@dataclass(frozen=True)
class RevocationFetch:
    """One OCSP query or CRL download (raw: the checks parse and validate what came back).

    ``key`` identifies what was asked: for OCSP ``"<url> <issuer key SHA-1> <serial hex>"``, for a CRL the
    URL. ``data`` is the DER OCSP response or the CRL (DER or PEM) as received; None when ``error`` is set.
    """

    kind: str  # "ocsp" or "crl"
    url: str
    key: str
    data: bytes | None = None
    error: str | None = None
    status: int | None = None  # HTTP status
    method: str | None = None  # "POST" or "GET" (OCSP)
    elapsed: float = 0.0
    cached: bool = False  # answered from a cache filled by an earlier lookup


@dataclass(frozen=True)
class TrustStore:
    """A named set of trust anchors (root certificates)."""

    name: str  # "mozilla", "system", "chrome", "microsoft", "java", "custom"
    description: str  # e.g. "Mozilla (certifi 2026.10.18)"
    roots: tuple[x509.Certificate, ...] = ()
    source: str = ""  # file or package it came from


@dataclass(frozen=True, repr=False)
class Evidence:
    """Everything collected about one target; the only input of the checks."""

    target: Target
    at: datetime
    chains: tuple[PresentedChain, ...]
    stores: tuple[TrustStore, ...]
    aia: Mapping[str, AiaFetch] = field(default_factory=dict)
    extra_roots: tuple[x509.Certificate, ...] = ()  # --ca-file: trusted in addition to every store
    expected: tuple[x509.Certificate, ...] | None = None  # --expect
    expected_source: str | None = None
    warn_days: int = 30
    key_public: Any = None  # --key: the public half of the private key the server is configured with
    key_source: str | None = None
    client_stores: tuple[TrustStore, ...] = ()  # the stores client predictions use (chrome, java, ...)
    # OCSP responses and CRLs fetched for the certificates of the built paths, by RevocationFetch.key
    revocation: Mapping[str, RevocationFetch] = field(default_factory=dict)
    revocation_checked: bool = False  # False: --no-revocation (only stapled responses are judged)
    revocation_notes: tuple[str, ...] = ()  # e.g. "revocation lookups stopped after 5 s"

    def __repr__(self) -> str:
        return f"<Evidence {self.target.label()} at {self.at.isoformat()}: {len(self.chains)} source(s)>"


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    title: str
    detail: str
    fix: str
    citation: str = ""
    sources: tuple[str, ...] = ()  # addresses / files the finding applies to
    cert_position: int | None = None  # position in the presented chain (0 = leaf); None if not presented
    cert_fingerprint: str | None = None  # SHA-256, hex
    cert_subject: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "detail": self.detail,
            "fix": self.fix,
            "citation": self.citation,
            "sources": list(self.sources),
            "certificate": None
            if self.cert_fingerprint is None
            else {
                "position": self.cert_position,
                "sha256": self.cert_fingerprint,
                "subject": self.cert_subject,
            },
            "evidence": dict(self.evidence),
        }
