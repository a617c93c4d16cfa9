"""The rules a policy file may set: their keys, value types, finding ids, default severities and sources.

Each rule is one key of a policy table (see :mod:`certdoctor.policy.parse` for the file's syntax); when a chain
breaks it, the ``policy`` check family (:mod:`certdoctor.checks.policy`) reports the rule's finding id, naming
the rule's location in the file (``policy.toml:12``), the value seen and the value required.

Value kinds (what :func:`normalise` accepts, and returns):

- ``bool``: true or false;
- ``days``: a whole number of days, 0 to 100,000;
- ``bits``: a whole number of bits, 512 to 16,384;
- ``count``: a whole number, 0 to 100;
- ``validity``: a whole number of days (1 to 100,000), or ``"cabf-br"``: the CA/Browser Forum's limit for the
  certificate's notBefore (:func:`cabf_max_validity_days`);
- ``key-types``: a list of ``rsa``, ``ecdsa``, ``ed25519``, ``ed448``, ``dsa``;
- ``curves``: a list of curve names (``P-256``/``secp256r1``/``prime256v1``, ``P-384``/``secp384r1``,
  ``P-521``/``secp521r1``), returned as cryptography's names (``secp256r1``);
- ``signatures``: a list of signature algorithm names as cryptography and OpenSSL name them
  (``sha256WithRSAEncryption``, ``ecdsa-with-SHA256``, ``RSASSA-PSS``, ``ed25519``) or dotted OIDs,
  returned lower-case;
- ``issuers``: a list of ``sha256:<hex>`` (a CA certificate's SHA-256 fingerprint, colons allowed),
  ``spki:<hex or base64>`` (the SHA-256 of its SubjectPublicKeyInfo, as HPKP's pin-sha256), or a name:
  the CA's subject as an RFC 4514 string (``CN=R3,O=Let's Encrypt,C=US``) or its common name alone;
- ``patterns``: a list of SAN patterns, shell-style (``*`` any characters, ``?`` one, ``[...]`` a set; ``[*]``
  a literal star), matched case-insensitively against each DNS name and IP address of the SAN;
- ``domains``: a list of DNS domains (``example.com``): a name is under one when it is the domain or ends with
  ``.`` + the domain;
- ``ekus``: a list of extended key usages: ``serverAuth``, ``clientAuth``, ``codeSigning``, ``emailProtection``,
  ``timeStamping``, ``OCSPSigning``, or dotted OIDs.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..model import Severity

__all__ = [
    "COMING",
    "RULES",
    "RuleSpec",
    "cabf_max_validity_days",
    "finding_ids",
    "normalise",
    "suggest",
]


@dataclass(frozen=True)
class RuleSpec:
    """One rule: its policy ``key``, value ``kind`` (see the module docstring), the ``finding`` id it raises,
    its default ``severity``, what it asks (``title``) and the rule or practice it comes from (``citation``)."""

    key: str
    kind: str
    finding: str
    severity: Severity
    title: str
    citation: str


_BR = "CA/B Forum Baseline Requirements"
RULES: dict[str, RuleSpec] = {
    r.key: r
    for r in (
        RuleSpec(
            "issuers",
            "issuers",
            "policy-issuer-not-allowed",
            Severity.ERROR,
            "No CA on the path is one the policy allows",
            "certificate policy (issuer allow-list, as CAA restricts issuance: RFC 8659)",
        ),
        RuleSpec(
            "key_types",
            "key-types",
            "policy-key-type-not-allowed",
            Severity.ERROR,
            "A certificate's key type is not one the policy allows",
            f"{_BR} §6.1.5; Mozilla Root Store Policy §5.1",
        ),
        RuleSpec(
            "rsa_min_bits",
            "bits",
            "policy-key-too-small",
            Severity.ERROR,
            "An RSA key is smaller than the policy's minimum",
            f"{_BR} §6.1.5 (RSA modulus at least 2048 bits)",
        ),
        RuleSpec(
            "ec_curves",
            "curves",
            "policy-ec-curve-not-allowed",
            Severity.ERROR,
            "An EC key is on a curve the policy does not allow",
            f"{_BR} §6.1.5 (P-256, P-384, P-521); Mozilla Root Store Policy §5.1 (P-256, P-384)",
        ),
        RuleSpec(
            "signature_algorithms",
            "signatures",
            "policy-signature-algorithm-not-allowed",
            Severity.ERROR,
            "A certificate is signed with an algorithm the policy does not allow",
            f"{_BR} §7.1.3.2 (no SHA-1)",
        ),
        RuleSpec(
            "max_validity_days",
            "validity",
            "policy-validity-too-long",
            Severity.ERROR,
            "The certificate's validity period is longer than the policy allows",
            f"{_BR} §6.3.2 (398 days; 200 from 2026-03-15, 100 from 2027-03-15, 47 from 2029-03-15: ballot SC-081)",
        ),
        RuleSpec(
            "days_left_warning",
            "days",
            "policy-expiring-soon",
            Severity.WARNING,
            "The certificate expires sooner than the policy's renewal margin",
            "certificate policy (renewal margin)",
        ),
        RuleSpec(
            "days_left_error",
            "days",
            "policy-expiring-soon",
            Severity.ERROR,
            "The certificate expires sooner than the policy's renewal margin",
            "certificate policy (renewal margin)",
        ),
        RuleSpec(
            "san_required",
            "bool",
            "policy-san-missing",
            Severity.ERROR,
            "The certificate has no subjectAltName",
            f"RFC 5280 §4.2.1.6; {_BR} §7.1.2.7.12 (subjectAltName required)",
        ),
        RuleSpec(
            "wildcards_allowed",
            "bool",
            "policy-san-wildcard",
            Severity.ERROR,
            "The certificate has a wildcard name the policy forbids",
            "certificate policy (no wildcards; RFC 6125 §7.2 on their risks)",
        ),
        RuleSpec(
            "internal_names_allowed",
            "bool",
            "policy-san-internal",
            Severity.ERROR,
            "The certificate names an internal host or a reserved IP address",
            f"{_BR} §7.1.2.7.12, §4.2.2 (no Internal Names or Reserved IP Addresses); RFC 6761; RFC 6890",
        ),
        RuleSpec(
            "san_domains",
            "domains",
            "policy-san-outside-domains",
            Severity.ERROR,
            "A name of the certificate is not under a domain the policy allows",
            "certificate policy (allowed domains)",
        ),
        RuleSpec(
            "san_forbidden",
            "patterns",
            "policy-san-forbidden",
            Severity.ERROR,
            "A name of the certificate matches a pattern the policy forbids",
            "certificate policy (forbidden names)",
        ),
        RuleSpec(
            "san_must_include",
            "patterns",
            "policy-san-required-missing",
            Severity.ERROR,
            "No name of the certificate matches a pattern the policy requires",
            "certificate policy (required names)",
        ),
        RuleSpec(
            "eku_required",
            "ekus",
            "policy-eku-missing",
            Severity.ERROR,
            "The certificate lacks an extended key usage the policy requires",
            f"RFC 5280 §4.2.1.12; {_BR} §7.1.2.7.10 (id-kp-serverAuth)",
        ),
        RuleSpec(
            "ocsp_stapling_required",
            "bool",
            "policy-ocsp-staple-missing",
            Severity.ERROR,
            "The server does not staple an OCSP response",
            "RFC 6066 §8 (status_request); certificate policy",
        ),
        RuleSpec(
            "must_staple_required",
            "bool",
            "policy-must-staple-missing",
            Severity.ERROR,
            "The certificate lacks the OCSP Must-Staple extension",
            "RFC 7633 (TLS Feature status_request); certificate policy",
        ),
        RuleSpec(
            "revocation_info_required",
            "bool",
            "policy-revocation-info-missing",
            Severity.ERROR,
            "The certificate has neither an OCSP URL nor a CRL distribution point",
            f"{_BR} §7.1.2.7.7, §7.1.2.11.2 (an OCSP URL or a CRL distribution point)",
        ),
        RuleSpec(
            "caa_required",
            "bool",
            "policy-caa-missing",
            Severity.ERROR,
            "A name of the certificate has no CAA record set (any CA may issue for it)",
            "RFC 8659 §3 (relevant record set); certificate policy",
        ),
        RuleSpec(
            "min_sct_count",
            "count",
            "policy-sct-count",
            Severity.ERROR,
            "The certificate comes with fewer Certificate Transparency SCTs than the policy requires",
            "RFC 6962 §3.3; Chrome CT Policy and Apple's CT policy (2 or 3 SCTs from distinct logs)",
        ),
    )
}

# Rules recognised but not evaluated yet: `policy check` says why they are refused (none at present).
COMING: dict[str, str] = {}


def finding_ids() -> list[str]:
    """Every policy finding id, once each, in rule order."""
    return list(dict.fromkeys(r.finding for r in RULES.values()))


def suggest(word: str, choices: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest of ``choices`` to a mistyped ``word`` (difflib's ratio at least 0.6), or None."""
    got = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return got[0] if got else None


# The CA/Browser Forum's maximum validity by the certificate's notBefore: BR §6.3.2, ballot SC-081 (2025).
CABF_VALIDITY: tuple[tuple[datetime, int], ...] = (
    (datetime(2029, 3, 15, tzinfo=UTC), 47),
    (datetime(2027, 3, 15, tzinfo=UTC), 100),
    (datetime(2026, 3, 15, tzinfo=UTC), 200),
    (datetime(2020, 9, 1, tzinfo=UTC), 398),
    (datetime(2018, 3, 1, tzinfo=UTC), 825),
)


def cabf_max_validity_days(not_before: datetime) -> int:
    """The Baseline Requirements' maximum validity in days for a certificate issued at ``not_before`` (UTC):
    825 (from 2018-03-01), 398 (from 2020-09-01), then ballot SC-081's 200 (from 2026-03-15), 100 (from
    2027-03-15) and 47 (from 2029-03-15); 39 months (1,187 days) before 2018-03-01."""
    for start, days in CABF_VALIDITY:
        if not_before >= start:
            return days
    return 1187


KEY_TYPES = ("rsa", "ecdsa", "ed25519", "ed448", "dsa")
CURVES = {
    "p-256": "secp256r1",
    "secp256r1": "secp256r1",
    "prime256v1": "secp256r1",
    "p-384": "secp384r1",
    "secp384r1": "secp384r1",
    "p-521": "secp521r1",
    "secp521r1": "secp521r1",
}
SIGNATURES = {
    name.lower()
    for name in (
        "sha1WithRSAEncryption",
        "sha224WithRSAEncryption",
        "sha256WithRSAEncryption",
        "sha384WithRSAEncryption",
        "sha512WithRSAEncryption",
        "md5WithRSAEncryption",
        "RSASSA-PSS",
        "ecdsa-with-SHA1",
        "ecdsa-with-SHA224",
        "ecdsa-with-SHA256",
        "ecdsa-with-SHA384",
        "ecdsa-with-SHA512",
        "ed25519",
        "ed448",
        "dsa-with-sha1",
        "dsa-with-sha224",
        "dsa-with-sha256",
    )
}
EKUS = {
    "serverauth": "1.3.6.1.5.5.7.3.1",
    "clientauth": "1.3.6.1.5.5.7.3.2",
    "codesigning": "1.3.6.1.5.5.7.3.3",
    "emailprotection": "1.3.6.1.5.5.7.3.4",
    "timestamping": "1.3.6.1.5.5.7.3.8",
    "ocspsigning": "1.3.6.1.5.5.7.3.9",
}
EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
}
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
)
_PATTERN = re.compile(r"[a-z0-9_.*?\-:\[\]!]+")


class ValueProblem(ValueError):
    """A rule's value is not of its kind; the message says what was expected (and ``suggestion`` a fix)."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


def _whole(value: Any, lowest: int, highest: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueProblem(f"expected a whole number of {what}, got {_kind(value)}")
    if not lowest <= value <= highest:
        raise ValueProblem(f"expected {lowest} to {highest:,} {what}, got {value}")
    return value


def _kind(value: Any) -> str:
    """``value``'s TOML type, for messages."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueProblem(f"expected an array of strings, got {_kind(value)}")
    bad = next((v for v in value if not isinstance(v, str)), None)
    if bad is not None:
        raise ValueProblem(f"expected an array of strings, it holds {_kind(bad)}")
    if not value:
        raise ValueProblem("expected at least one entry (an empty list would allow nothing)")
    return list(value)


def _one_of(item: str, known: dict[str, str] | set[str] | tuple[str, ...], what: str) -> None:
    raise ValueProblem(f"unknown {what} {item!r}", suggest(item, list(known)))


def _issuer(item: str) -> tuple[str, str]:
    kind, sep, rest = item.partition(":")
    kind = kind.strip().lower()
    if sep and kind == "sha256":
        digest = rest.replace(":", "").strip().lower()
        if not _HEX64.fullmatch(digest):
            raise ValueProblem(f"{item!r}: a SHA-256 fingerprint is 64 hexadecimal digits (colons allowed)")
        return ("sha256", digest)
    if sep and kind == "spki":
        digest = rest.replace(":", "").strip()
        if _HEX64.fullmatch(digest.lower()):
            return ("spki", digest.lower())
        try:
            raw = base64.b64decode(digest, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueProblem(f"{item!r}: an SPKI SHA-256 is 64 hexadecimal digits or 44 base64 characters")
        return ("spki", raw.hex())
    if not item.strip():
        raise ValueProblem("an empty issuer name")
    return ("name", item.strip())


def normalise(spec: RuleSpec, value: Any) -> Any:
    """``value`` as the checks use it, for a rule of ``spec``'s kind (see the module docstring).

    Raises :class:`ValueProblem` naming what was expected, with a suggestion for a near-miss name."""
    kind = spec.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueProblem(f"expected true or false, got {_kind(value)}")
        return value
    if kind == "days":
        return _whole(value, 0, 100_000, "days")
    if kind == "bits":
        return _whole(value, 512, 16_384, "bits")
    if kind == "count":
        return _whole(value, 0, 100, "SCTs")
    if kind == "validity":
        if isinstance(value, str):
            if value.lower() != "cabf-br":
                raise ValueProblem(f'expected a number of days or "cabf-br", got {value!r}', "cabf-br")
            return "cabf-br"
        return _whole(value, 1, 100_000, "days")
    items = _strings(value)
    if kind == "key-types":
        for item in items:
            if item.lower() not in KEY_TYPES:
                _one_of(item, KEY_TYPES, "key type")
        return tuple(item.lower() for item in items)
    if kind == "curves":
        for item in items:
            if item.lower() not in CURVES:
                _one_of(item, CURVES, "curve")
        return tuple(CURVES[item.lower()] for item in items)
    if kind == "signatures":
        for item in items:
            if item.lower() not in SIGNATURES and not _OID.fullmatch(item):
                _one_of(item, {s for s in SIGNATURES}, "signature algorithm")
        return tuple(item.lower() for item in items)
    if kind == "ekus":
        out = []
        for item in items:
            if item.lower() in EKUS:
                out.append(EKUS[item.lower()])
            elif _OID.fullmatch(item):
                out.append(item)
            else:
                _one_of(item, {"serverAuth", "clientAuth", "codeSigning", "emailProtection", "timeStamping"}, "EKU")
        return tuple(out)
    if kind == "issuers":
        return tuple(_issuer(item) for item in items)
    if kind == "domains":
        out = []
        for item in items:
            domain = item.strip().lower().rstrip(".")
            if "*" in domain or not _DOMAIN.fullmatch(domain):
                raise ValueProblem(f"{item!r} is not a DNS domain (no wildcards: write example.com, not *.example.com)")
            out.append(domain)
        return tuple(out)
    if kind == "patterns":
        out = []
        for item in items:
            pattern = item.strip().lower()
            if not pattern or not _PATTERN.fullmatch(pattern) or pattern.count("[") != pattern.count("]"):
                raise ValueProblem(
                    f"{item!r} is not a SAN pattern (letters, digits, . - _ : and the wildcards * ? [...])"
                )
            try:
                re.compile(fnmatch.translate(pattern))
            except re.error as exc:
                raise ValueProblem(f"{item!r} is not a SAN pattern ({exc})") from None
            out.append(pattern)
        return tuple(out)
    raise AssertionError(f"unknown rule kind {kind}")  # pragma: no cover
