"""Certificate Transparency: the SCTs a server delivers, their signatures, and the browsers' CT policies.

An SCT (Signed Certificate Timestamp, RFC 6962 §3.2) is a log's promise to publish a certificate. A server
delivers them three ways (RFC 6962 §3.3): embedded in the certificate (the ``signedCertificateTimestampList``
extension, OID 1.3.6.1.4.1.11129.2.4.2, signed over the *precertificate*: the TBSCertificate without that
extension, plus the SHA-256 of the issuer's SubjectPublicKeyInfo), in the TLS ``signed_certificate_timestamp``
extension, or in a stapled OCSP response (single extension 1.3.6.1.4.1.11129.2.4.5); the last two are signed
over the certificate itself (an ``x509_entry``).

The browsers' policies (for certificates that chain to a publicly trusted root only):

- Chrome (the Chrome CT Policy, googlechrome.github.io/CertificateTransparency/ct_policy.html, and
  components/certificate_transparency/chrome_ct_policy_enforcer.cc): embedded SCTs from at least 2 distinct logs
  for a certificate valid for 180 days or less, 3 for longer, from at least 2 distinct log operators; or SCTs
  delivered by TLS or OCSP from at least 2 distinct logs of at least 2 distinct operators. Chrome refuses a
  non-compliant certificate with ``NET::ERR_CERTIFICATE_TRANSPARENCY_REQUIRED``.
- Apple (Safari and every Apple platform; "Apple's Certificate Transparency policy", support.apple.com/103214):
  embedded SCTs from at least 2 distinct logs (180 days or less; at most 1 per log operator counts) or 3 (181
  to 398 days; at most 2 per operator count); or at least 2 SCTs of which one delivered by TLS or OCSP.
- Firefox (135+ on the desktop, for roots of Mozilla's Root CA Program; Mozilla's CT policy,
  wiki.mozilla.org/SecurityEngineering/Certificate_Transparency, implemented in security/ct/CTPolicyEnforcer.cpp,
  bug 1912120): embedded SCTs from at least 2 distinct logs for a certificate valid 180 days or less, 3 for
  longer, that are Admissible (qualified, usable, readonly) or Retired, at least one of them Admissible, from at
  least 2 distinct log operators; or SCTs delivered by TLS or OCSP from at least 2 Admissible logs of 2 distinct
  operators. Firefox refuses a non-compliant certificate with
  ``MOZILLA_PKIX_ERROR_INSUFFICIENT_CERTIFICATE_TRANSPARENCY``.

Only SCTs that count are counted: with a log list (``--ct-log-list``: the JSON the browsers publish, Chrome's
``log_list.json`` v3), those of a log in the list whose signature verifies; without one, every SCT (unverified,
log operators unknown, so the operator-diversity rules are not evaluated).

Pure functions and plain data, apart from :func:`load_log_list` reading its file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.certificate_transparency import LogEntryType, SignedCertificateTimestamp

from .errors import InputError
from .model import Evidence, PresentedChain
from .paths import PUBLIC_STORES, ChainAnalysis

__all__ = [
    "MAX_LOG_LIST_BYTES",
    "CtLog",
    "CtReport",
    "LogList",
    "PolicyFailure",
    "Sct",
    "evaluate",
    "load_log_list",
    "parse_sct_list",
    "public_leaf",
    "report_for",
    "signed_data",
]

SctSource = Literal["embedded", "tls", "ocsp"]
MAX_LOG_LIST_BYTES = 16 * 1024 * 1024  # Chrome's list is ~100 KB
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# TLS SignatureAndHashAlgorithm codes (RFC 5246 §7.4.1.4.1), as an SCT carries them.
_HASHES = {4: "SHA256", 5: "SHA384", 6: "SHA512"}
_SIGNATURES = {1: "RSA", 3: "ECDSA"}
# The log states (Chrome's log list v3) whose SCTs count for Chrome's policy (ct_policy.md, "CT Log States").
COUNTING_STATES = frozenset({"qualified", "usable", "readonly", "retired"})
# Mozilla's "Admissible" log states (CT policy: Pending and Rejected are disregarded, Retired counts only for
# embedded SCTs and only next to an Admissible one).
ADMISSIBLE_STATES = frozenset({"qualified", "usable", "readonly"})


@dataclass(frozen=True)
class CtLog:
    """One log of a log list: ``log_id`` (SHA-256 of its key), ``key`` (DER SubjectPublicKeyInfo), its
    ``description``, its ``operator``'s name and its ``state`` (qualified, usable, readonly, retired, pending,
    rejected; None when the list gives none)."""

    log_id: bytes
    key: bytes
    description: str
    operator: str
    state: str | None = None


@dataclass(frozen=True)
class LogList:
    """A parsed log list: its logs by log id, and the file it came from."""

    logs: dict[bytes, CtLog]
    source: str
    version: str | None = None


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}: not base64") from None


def load_log_list(path: str | Path) -> LogList:
    """Read a CT log list in the format the browsers publish (Chrome's ``log_list.json`` v3: ``operators[]``, each
    with a ``name`` and ``logs[]`` of ``log_id``, ``key`` (base64 DER SubjectPublicKeyInfo), ``description``,
    ``state`` ({"usable": {...}}); ``tiled_logs[]`` are read the same way). Apple's list has the same shape.

    Raises :class:`InputError` for a file that cannot be read, is not such JSON, or holds a log whose
    ``log_id`` is not the SHA-256 of its ``key`` (RFC 6962 §3.2)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_LOG_LIST_BYTES + 1)
    except OSError as exc:
        raise InputError(f"--ct-log-list {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_LOG_LIST_BYTES:
        raise InputError(f"--ct-log-list {path}: larger than {MAX_LOG_LIST_BYTES // (1024 * 1024)} MB")
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("operators"), list):
            raise ValueError("no operators list (expected Chrome's log_list.json v3 format)")
        logs: dict[bytes, CtLog] = {}
        for i, op in enumerate(doc["operators"]):
            if not isinstance(op, dict):
                raise ValueError(f"operators[{i}]: not an object")
            name = str(op.get("name") or f"operator {i + 1}")
            for kind in ("logs", "tiled_logs"):
                for j, entry in enumerate(op.get(kind) or ()):
                    where = f"operators[{i}].{kind}[{j}]"
                    if not isinstance(entry, dict):
                        raise ValueError(f"{where}: not an object")
                    key = _b64(entry.get("key"), f"{where}.key")
                    log_id = _b64(entry.get("log_id"), f"{where}.log_id")
                    if hashlib.sha256(key).digest() != log_id:
                        raise ValueError(f"{where}: log_id is not the SHA-256 of the key")
                    states = entry.get("state")
                    state = next(iter(states)) if isinstance(states, dict) and states else None
                    logs[log_id] = CtLog(log_id, key, str(entry.get("description") or where), name, state)
    except (ValueError, TypeError) as exc:
        raise InputError(f"--ct-log-list {path}: {exc}") from None
    version = doc.get("version")
    return LogList(logs, str(p), str(version) if version is not None else None)


@dataclass(frozen=True)
class Sct:
    """One SCT as delivered (RFC 6962 §3.2): the ``log_id`` (32 bytes), ``timestamp`` (UTC, millisecond
    precision), ``source``, the signature's TLS ``hash_algorithm``/``signature_algorithm`` codes (4 SHA256, 3
    ECDSA, 1 RSA), the ``signature`` and the SCT's ``extensions``. ``verified``: True/False once checked against
    the log's key, None when not checked (``problem`` says why); ``log``: the log list's entry, when known."""

    log_id: bytes
    timestamp: datetime
    source: SctSource
    hash_algorithm: int
    signature_algorithm: int
    signature: bytes
    extensions: bytes = b""
    version: int = 0
    verified: bool | None = None
    problem: str | None = None
    log: CtLog | None = None

    @property
    def algorithm(self) -> str:
        """``ECDSA-SHA256``, ``RSA-SHA256`` (or the codes when unknown)."""
        sig = _SIGNATURES.get(self.signature_algorithm, str(self.signature_algorithm))
        return f"{sig}-{_HASHES.get(self.hash_algorithm, str(self.hash_algorithm))}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_id": base64.b64encode(self.log_id).decode(),
            "log_id_hex": self.log_id.hex(),
            "timestamp": self.timestamp.isoformat(),
            "source": self.source,
            "signature_algorithm": self.algorithm,
            "verified": self.verified,
            "problem": self.problem,
            "log": None if self.log is None else self.log.description,
            "operator": None if self.log is None else self.log.operator,
        }


def _millis(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def _from_cryptography(sct: SignedCertificateTimestamp, source: SctSource) -> Sct:
    hash_code = {"sha256": 4, "sha384": 5, "sha512": 6}.get(sct.signature_hash_algorithm.name, 0)
    return Sct(
        log_id=sct.log_id,
        timestamp=sct.timestamp.replace(tzinfo=UTC),
        source=source,
        hash_algorithm=hash_code,
        signature_algorithm=int(sct.signature_algorithm.value),
        signature=sct.signature,
        extensions=sct.extension_bytes,
        version=int(sct.version.value),
    )


def _take(data: bytes, offset: int, size: int) -> tuple[bytes, int]:
    if offset + size > len(data):
        raise ValueError("truncated SCT list")
    return data[offset : offset + size], offset + size


def _vector(data: bytes, offset: int, length_bytes: int) -> tuple[bytes, int]:
    raw, offset = _take(data, offset, length_bytes)
    return _take(data, offset, int.from_bytes(raw, "big"))


def parse_sct_list(data: bytes, source: SctSource) -> list[Sct]:
    """The SCTs of a TLS-encoded ``SignedCertificateTimestampList`` (RFC 6962 §3.3: a 2-byte length, then each
    SCT with a 2-byte length); SCTs of an unknown version are skipped (§3.3: clients ignore them). Raises
    ValueError for a malformed list."""
    body, end = _vector(data, 0, 2)
    if end != len(data):
        raise ValueError("trailing bytes after the SCT list")
    out: list[Sct] = []
    offset = 0
    while offset < len(body):
        raw, offset = _vector(body, offset, 2)
        if not raw or raw[0] != 0:
            continue
        log_id, pos = _take(raw, 1, 32)
        stamp, pos = _take(raw, pos, 8)
        extensions, pos = _vector(raw, pos, 2)
        algs, pos = _take(raw, pos, 2)
        signature, pos = _vector(raw, pos, 2)
        if pos != len(raw):
            raise ValueError("trailing bytes in an SCT")
        when = _EPOCH + timedelta(milliseconds=struct.unpack(">Q", stamp)[0])
        out.append(Sct(log_id, when, source, algs[0], algs[1], signature, extensions))
    return out


def embedded_scts(cert: x509.Certificate) -> list[Sct]:
    """The SCTs embedded in ``cert`` ([] without the extension or when cryptography cannot parse it)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
        return [_from_cryptography(s, "embedded") for s in ext.value]
    except x509.ExtensionNotFound:
        return []
    except Exception:  # unreadable extensions (duplicates, bad DER): other checks report those
        return []


def ocsp_scts(staple: bytes | None) -> list[Sct]:
    """The SCTs in a stapled OCSP response's single extensions ([] without, or for a response that does not
    parse: the revocation checks report that)."""
    if not staple:
        return []
    try:
        response = ocsp.load_der_ocsp_response(staple)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return []
        ext = response.single_extensions.get_extension_for_class(x509.SignedCertificateTimestamps)
        return [_from_cryptography(s, "ocsp") for s in ext.value]
    except x509.ExtensionNotFound:
        return []
    except Exception:  # a response that does not parse: the revocation checks report it
        return []


def signed_data(
    sct: Sct, leaf: x509.Certificate, issuer_key_hash: bytes | None, tbs_precert: bytes | None = None
) -> bytes:
    """The bytes an SCT's signature covers (RFC 6962 §3.2 ``digitally-signed struct``): version, signature type
    certificate_timestamp (0), the timestamp in milliseconds, the entry type and entry, the SCT's extensions.

    An embedded SCT covers a ``precert_entry``: ``issuer_key_hash`` (SHA-256 of the issuer's DER
    SubjectPublicKeyInfo) and the TBSCertificate without the SCT extension (``tbs_precert``, by default
    cryptography's ``tbs_precertificate_bytes``); one delivered by TLS or OCSP an ``x509_entry``: the DER
    certificate. Raises ValueError for an embedded SCT without ``issuer_key_hash``."""
    head = bytes([sct.version, 0]) + struct.pack(">Q", _millis(sct.timestamp))
    if sct.source == "embedded":
        if issuer_key_hash is None:
            raise ValueError("the issuer's key is needed to verify an embedded SCT")
        tbs = tbs_precert if tbs_precert is not None else leaf.tbs_precertificate_bytes
        entry = struct.pack(">H", LogEntryType.PRE_CERTIFICATE.value) + issuer_key_hash + len(tbs).to_bytes(3, "big")
        entry += tbs
    else:
        der = leaf.public_bytes(serialization.Encoding.DER)
        entry = struct.pack(">H", LogEntryType.X509_CERTIFICATE.value) + len(der).to_bytes(3, "big") + der
    return head + entry + struct.pack(">H", len(sct.extensions)) + sct.extensions


def issuer_key_hash(issuer: x509.Certificate) -> bytes:
    """SHA-256 of the issuer's DER SubjectPublicKeyInfo (RFC 6962 §3.2 ``issuer_key_hash``)."""
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def _verify_one(sct: Sct, log: CtLog, leaf: x509.Certificate, issuer: x509.Certificate | None) -> Sct:
    from dataclasses import replace

    if sct.hash_algorithm != 4:
        return replace(sct, log=log, verified=False, problem=f"hash algorithm {sct.algorithm} (RFC 6962: SHA-256)")
    try:
        data = signed_data(sct, leaf, issuer_key_hash(issuer) if issuer is not None else None)
    except (ValueError, UnsupportedAlgorithm) as exc:  # no issuer, or an issuer key that cannot be read
        return replace(sct, log=log, problem=str(exc) or type(exc).__name__)
    try:
        key = serialization.load_der_public_key(log.key)
        if isinstance(key, ec.EllipticCurvePublicKey) and sct.signature_algorithm == 3:
            key.verify(sct.signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey) and sct.signature_algorithm == 1:
            key.verify(sct.signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return replace(sct, log=log, verified=False, problem=f"{sct.algorithm} does not match the log's key")
    except InvalidSignature:
        return replace(sct, log=log, verified=False, problem="the signature does not verify with the log's key")
    except (ValueError, UnsupportedAlgorithm) as exc:
        return replace(sct, log=log, verified=False, problem=f"the log's key cannot be used: {exc}")
    return replace(sct, log=log, verified=True)


def verify(
    scts: Iterable[Sct], leaf: x509.Certificate, issuer: x509.Certificate | None, logs: LogList | None
) -> list[Sct]:
    """Each SCT with ``verified`` set against ``logs`` (None: left unverified, ``problem`` says so)."""
    from dataclasses import replace

    out = []
    for sct in scts:
        if logs is None:
            out.append(replace(sct, problem="not verified: no --ct-log-list"))
        elif sct.log_id not in logs.logs:
            out.append(replace(sct, problem="the log is not in the log list"))
        else:
            out.append(_verify_one(sct, logs.logs[sct.log_id], leaf, issuer))
    return out


@dataclass(frozen=True)
class PolicyFailure:
    """One browser policy rule a certificate does not meet: the ``client`` family ("chrome", "firefox", "safari"), the
    ``rule`` id, what it asks (``text``), the number ``required`` and ``seen``."""

    client: str
    rule: str
    text: str
    required: int
    seen: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "rule": self.rule,
            "text": self.text,
            "required": self.required,
            "seen": self.seen,
        }


@dataclass(frozen=True)
class CtReport:
    """The CT facts of one leaf: every SCT (``scts``), whether signatures were checked (``verified_against``: the
    log list's file, None without one), the leaf's ``lifetime_days`` and, for a publicly trusted leaf
    (``public``), the browser rules it fails (``failures``; empty: every policy met)."""

    scts: tuple[Sct, ...]
    verified_against: str | None
    lifetime_days: int
    public: bool
    failures: tuple[PolicyFailure, ...] = field(default_factory=tuple)

    def counting(self) -> list[Sct]:
        """The SCTs the policies count: verified ones from listed logs, or every one without a log list."""
        if self.verified_against is None:
            return list(self.scts)
        return [s for s in self.scts if s.verified and (s.log is None or (s.log.state or "usable") in COUNTING_STATES)]

    @property
    def invalid(self) -> list[Sct]:
        return [s for s in self.scts if s.verified is False]

    def to_dict(self) -> dict[str, Any]:
        counting = self.counting()
        return {
            "sct_count": len(self.scts),
            "counted": len(counting),
            "distinct_logs": len({s.log_id for s in counting}),
            "signatures_verified": self.verified_against is not None,
            "log_list": self.verified_against,
            "lifetime_days": self.lifetime_days,
            "public": self.public,
            "scts": [s.to_dict() for s in self.scts],
            "policy_failures": [f.to_dict() for f in self.failures],
        }


def lifetime_days(cert: x509.Certificate) -> int:
    """The validity period in days as Apple counts it: notBefore through notAfter inclusive (RFC 5280
    §4.1.2.5), a day being 86,400 seconds and any part of one more counting as a day."""
    seconds = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() + 1
    return int(-(-seconds // 86400))


def _distinct(scts: Sequence[Sct]) -> dict[bytes, Sct]:
    return {s.log_id: s for s in scts}


def _operators(scts: Sequence[Sct]) -> dict[str, int] | None:
    """Distinct logs per operator, or None when an operator is unknown (no log list)."""
    out: dict[str, int] = {}
    for s in _distinct(scts).values():
        if s.log is None:
            return None
        out[s.log.operator] = out.get(s.log.operator, 0) + 1
    return out


def _chrome(counting: Sequence[Sct], days: int) -> list[PolicyFailure]:
    embedded = [s for s in counting if s.source == "embedded"]
    delivered = [s for s in counting if s.source != "embedded"]
    if delivered:
        logs, ops = len(_distinct(delivered)), _operators(delivered)
        if logs >= 2 and (ops is None or len(ops) >= 2):
            return []
    need = 2 if days <= 180 else 3
    logs = len(_distinct(embedded))
    ops = _operators(embedded)
    out = []
    if logs < need:
        out.append(
            PolicyFailure(
                "chrome",
                "chrome-embedded-sct-count",
                f"Chrome: {need} embedded SCTs from distinct logs for a certificate valid "
                f"{'180 days or less' if need == 2 else 'over 180 days'} (or 2 delivered by TLS/OCSP)",
                need,
                logs,
            )
        )
    if ops is not None and len(ops) < 2:
        out.append(
            PolicyFailure(
                "chrome",
                "chrome-log-operator-diversity",
                "Chrome: SCTs from at least 2 distinct log operators",
                2,
                len(ops),
            )
        )
    return out


def _apple(counting: Sequence[Sct], days: int) -> list[PolicyFailure]:
    delivered = [s for s in counting if s.source != "embedded"]
    if delivered and len(_distinct(counting)) >= 2:
        return []
    embedded = [s for s in counting if s.source == "embedded"]
    need, cap = (2, 1) if days <= 180 else (3, 2)
    ops = _operators(embedded)
    logs = len(_distinct(embedded)) if ops is None else sum(min(n, cap) for n in ops.values())
    if logs >= need:
        return []
    per = f", at most {cap} per log operator" if ops is not None else ""
    return [
        PolicyFailure(
            "safari",
            "apple-embedded-sct-count",
            f"Apple: {need} embedded SCTs from distinct logs{per} for a certificate valid "
            f"{'180 days or less' if need == 2 else '181 to 398 days'} (or 2 SCTs, one delivered by TLS/OCSP)",
            need,
            logs,
        )
    ]


def _admissible(sct: Sct) -> bool:
    """The SCT's log is Admissible for Mozilla (unknown without a log list, or without a state: assumed so)."""
    return sct.log is None or (sct.log.state or "usable") in ADMISSIBLE_STATES


def _firefox(counting: Sequence[Sct], days: int) -> list[PolicyFailure]:
    """Mozilla's CT policy (CTPolicyEnforcer.cpp): the delivered SCTs or the embedded ones must comply; the
    failures reported are the embedded rules' (as for Chrome), unless only delivered SCTs were seen."""
    delivered = [s for s in counting if s.source != "embedded" and _admissible(s)]
    if delivered:
        ops = _operators(delivered)
        if len(_distinct(delivered)) >= 2 and (ops is None or len(ops) >= 2):
            return []
    embedded = [s for s in counting if s.source == "embedded"]
    need = 2 if days <= 180 else 3
    out = []
    if delivered and not embedded:
        ops = _operators(delivered)
        logs = len(_distinct(delivered))
        if logs < 2:
            out.append(
                PolicyFailure(
                    "firefox",
                    "firefox-delivered-sct-count",
                    "Firefox: 2 SCTs from distinct Admissible logs delivered by TLS/OCSP (or enough embedded ones)",
                    2,
                    logs,
                )
            )
    else:
        logs = len(_distinct(embedded))
        ops = _operators(embedded)
        if logs < need:
            out.append(
                PolicyFailure(
                    "firefox",
                    "firefox-embedded-sct-count",
                    f"Firefox: {need} embedded SCTs from distinct logs for a certificate valid "
                    f"{'180 days or less' if need == 2 else 'over 180 days'} (or 2 delivered by TLS/OCSP)",
                    need,
                    logs,
                )
            )
        admissible = len({s.log_id for s in embedded if _admissible(s)})
        if embedded and not admissible:
            out.append(
                PolicyFailure(
                    "firefox",
                    "firefox-admissible-log",
                    "Firefox: at least 1 embedded SCT from an Admissible (qualified, usable or readonly) log",
                    1,
                    0,
                )
            )
    if ops is not None and len(ops) < 2:
        out.append(
            PolicyFailure(
                "firefox",
                "firefox-log-operator-diversity",
                "Firefox: SCTs from at least 2 distinct log operators",
                2,
                len(ops),
            )
        )
    return out


def evaluate(
    leaf: x509.Certificate,
    issuer: x509.Certificate | None,
    *,
    staple: bytes | None = None,
    tls_scts: bytes | None = None,
    logs: LogList | None = None,
    public: bool = False,
) -> CtReport:
    """The CT report of ``leaf``: its embedded SCTs, those of the TLS extension (``tls_scts``, the raw list) and
    of the stapled OCSP response, verified against ``logs`` when given, and for a ``public`` leaf the Chrome,
    Firefox and Apple rules it fails."""
    scts = embedded_scts(leaf) + ocsp_scts(staple)
    if tls_scts:
        with contextlib.suppress(ValueError):  # a malformed list counts as none (RFC 6962 §3.3: ignore)
            scts += parse_sct_list(tls_scts, "tls")
    checked = verify(scts, leaf, issuer, logs)
    days = lifetime_days(leaf)
    report = CtReport(tuple(checked), logs.source if logs is not None else None, days, public)
    if not public:
        return report
    counting = report.counting()
    failures = _chrome(counting, days) + _firefox(counting, days) + _apple(counting, days)
    return CtReport(report.scts, report.verified_against, days, public, tuple(failures))


def public_leaf(analysis: ChainAnalysis, public_roots: Sequence[x509.Certificate] = ()) -> bool:
    """The best path ends at a root of a public store (:data:`certdoctor.paths.PUBLIC_STORES`: the browsers' CT
    policies apply below those only), or at a root given with ``--treat-as-public-root``."""
    best = analysis.best
    if best.end != "anchor":
        return False
    if PUBLIC_STORES & set(best.anchored_in):
        return True
    top = best.nodes[-1].cert
    return any(top == root for root in public_roots)


# The last reports made, so that the checks, the JSON, the text and a scan record of one diagnosis verify each SCT
# once: (evidence, chain, analysis, report), matched by identity (the objects are kept, so ids are not reused).
_RECENT: list[tuple[Evidence, PresentedChain, ChainAnalysis, CtReport | None]] = []
_RECENT_MAX = 16


def report_for(evidence: Evidence, chain: PresentedChain, analysis: ChainAnalysis) -> CtReport | None:
    """The :class:`CtReport` of one presented chain's leaf (None without certificates). The issuer (for an
    embedded SCT's issuer key hash) is the next certificate of the best path; the staple is the chain's. The
    last few reports are remembered (by the identity of the three arguments)."""
    for ev, ch, an, got in _RECENT:
        if ev is evidence and ch is chain and an is analysis:
            return got
    report = _report(evidence, chain, analysis)
    _RECENT.append((evidence, chain, analysis, report))
    if len(_RECENT) > _RECENT_MAX:
        del _RECENT[0]
    return report


def _report(evidence: Evidence, chain: PresentedChain, analysis: ChainAnalysis) -> CtReport | None:
    if not chain.certs:
        return None
    nodes = analysis.best.nodes
    issuer = nodes[1].cert if len(nodes) > 1 else None
    return evaluate(
        chain.certs[0],
        issuer,
        staple=chain.ocsp_staple,
        tls_scts=chain.tls_scts,
        logs=evidence.ct_logs,
        public=public_leaf(analysis, evidence.public_roots),
    )
