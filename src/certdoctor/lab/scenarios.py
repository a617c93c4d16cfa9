"""The lab's scenario table: one row per misconfiguration, in the order ports are assigned.

Pure data. ``expected`` holds the exact certdoctor finding ids a check of the scenario must produce; the
private ``_spec`` says how the lab builds and serves it (see :class:`ServeSpec` and :class:`LeafSpec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, overload

from cryptography.x509 import ReasonFlags
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from .pki import REVOCATION_CA, REVOKED_CA
from .pkitypes import HashName, KeyKind, Revoke

DOMAIN = "certdoctor.test"
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

# Terminal escapes (clear screen, colour, bell, OSC 8 hyperlink), rich markup and HTML. cryptography
# accepts all of it in UTF8String attributes (it does not enforce the 64-character upper bound either), so
# nothing had to be dropped.
EVIL_O = "\x1b[2J\x1b[31mEVIL\x07 [bold red]markup[/bold red] <script>alert(1)</script>"
EVIL_OU = "\x1b]8;;http://x\x07link\x1b]8;;\x07"
# subjectAltName dNSName entries after the scenario's own name (which stays first, so the certificate stays
# valid for its hostname): an attribute break-out and a script element for HTML views. cryptography writes any
# ASCII text as the IA5String (RFC 5280 §4.2.1.6's preferred name syntax is not enforced when issuing).
EVIL_SANS = ('"><img src=x onerror=alert(1)>', "<script>alert(2)</script>")


@dataclass(frozen=True)
class LeafSpec:
    """How to issue a scenario's leaf certificate."""

    issuer: str | None = "lab-rsa-ca"  # CA slug (see pki.CA_SPECS); None: self-signed
    key: KeyKind = "rsa2048"
    key_name: str | None = None  # key cache name; None: "leaf-<scenario>"
    dns_names: tuple[str, ...] | None = None  # None: (scenario hostname,)
    common_name: str | None = None  # None: the first DNS name
    subject_extra: tuple[tuple[ObjectIdentifier, str], ...] = ()  # attributes placed before the CN
    san: bool = True  # False: no subjectAltName extension at all
    starts: float = -1.0  # days relative to now
    days: float = 90.0
    ekus: tuple[ObjectIdentifier, ...] = (SERVER_AUTH,)
    aia: bool = True
    hash: HashName = "sha256"
    # Revocation pointers: URL templates, "{aia}" is the AIA server's base URL, "{unreachable}" a URL on a
    # loopback port that refuses connections (Lab.unreachable_ocsp_url).
    ocsp_url: str | None = None
    crl_url: str | None = None
    must_staple: bool = False  # TLS Feature extension (status_request)
    revoked: Revoke | None = None  # revoked by its issuer (reason, when)
    claims_ca: bool = False  # basicConstraints cA TRUE on the server certificate
    serial: int | None = None  # this serial number (may be negative); None: random
    authority_key_id: bytes | None = None  # this AKI keyIdentifier instead of the issuer's SKI
    unknown_critical: bool = False  # an extension with a private OID (pki.UNKNOWN_CRITICAL_OID), marked critical
    # Embedded SCTs signed by these lab CT logs (ctlog.LOG_NAMES; "bad:<log>" for one whose signature does not verify)
    scts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServeSpec:
    """What a scenario's server does and sends."""

    kind: Literal["tls", "stall", "garbage"] = "tls"
    leaf: LeafSpec = field(default_factory=LeafSpec)
    chain: tuple[str, ...] = ("lab-rsa-ca",)  # slugs of the certificates sent after the leaf, in order
    filler: int = 0  # number of small unrelated self-signed certificates appended after ``chain``
    second_address: LeafSpec | None = None  # if set: also served on 127.0.0.2, same port, with this leaf
    no_sni: LeafSpec | None = None  # if set: the leaf sent when the ClientHello carries no SNI
    # If set: served by OpenSSL through pyOpenSSL (the ssl module cannot staple), stapling an OCSP response
    # for the leaf from its issuer's responder to clients that ask: "good" is fresh (thisUpdate now - 1 h,
    # nextUpdate now + 7 days), "stale" expired 3 days ago (thisUpdate now - 10 days, nextUpdate now - 3 days).
    staple: Literal["good", "stale"] | None = None
    # Served by OpenSSL through pyOpenSSL (without a staple) so that a failed handshake ends with the alert a
    # real server sends (handshake_failure when no signature algorithm fits); the ssl module's asyncio server
    # closes such a connection silently, which clients report differently (Chromium: ERR_CONNECTION_CLOSED).
    alerts: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str  # one plain-language sentence
    hostname: str  # the name a client connects with and verifies
    expected: frozenset[str] = frozenset()  # exact certdoctor finding ids
    # extra `certdoctor check` arguments; "{root}" stands for the lab root file, "{log_list}" for the lab's CT log
    # list (see Endpoint.check_argv)
    check_args: tuple[str, ...] = ()
    hostile: bool = False  # robustness fixture, not part of the demo
    _spec: ServeSpec = field(default_factory=ServeSpec, repr=False, compare=False)


class ScenarioTable(tuple[Scenario, ...]):
    """The scenarios in table order; also indexable by name (``SCENARIOS["expired"]``)."""

    __slots__ = ()

    @overload
    def __getitem__(self, key: str) -> Scenario: ...
    @overload
    def __getitem__(self, key: int) -> Scenario: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[Scenario, ...]: ...
    def __getitem__(self, key: str | int | slice) -> Scenario | tuple[Scenario, ...]:
        if isinstance(key, str):
            for scenario in self:
                if scenario.name == key:
                    return scenario
            raise KeyError(key)
        return super().__getitem__(key)

    def names(self) -> list[str]:
        return [s.name for s in self]


def _host(name: str) -> str:
    return f"{name}.{DOMAIN}"


def _s(
    name: str,
    description: str,
    expected: tuple[str, ...] = (),
    *,
    hostname: str | None = None,
    check_args: tuple[str, ...] = (),
    hostile: bool = False,
    spec: ServeSpec | None = None,
) -> Scenario:
    return Scenario(
        name=name,
        description=description,
        hostname=hostname or _host(name),
        expected=frozenset(expected),
        check_args=check_args,
        hostile=hostile,
        _spec=spec or ServeSpec(),
    )


# The CT scenarios' check arguments: the lab root judged as publicly trusted for CT, SCTs verified against the
# lab's log list ("{root}" and "{log_list}" are filled in by Endpoint.check_argv).
_CT_ARGS = ("--treat-as-public-root", "{root}", "--ct-log-list", "{log_list}")

REVOCATION_CA_OCSP = "{aia}/ocsp/" + REVOCATION_CA  # answered by the CA's delegated OCSP signer
REVOCATION_CA_CRL = "{aia}/crl/" + REVOCATION_CA + ".crl"


def _revocation_leaf(
    *,
    issuer: str = REVOCATION_CA,
    ocsp_url: str | None = REVOCATION_CA_OCSP,
    crl_url: str | None = None,
    must_staple: bool = False,
    revoked: Revoke | None = None,
) -> LeafSpec:
    return LeafSpec(issuer=issuer, ocsp_url=ocsp_url, crl_url=crl_url, must_staple=must_staple, revoked=revoked)


SCENARIOS: ScenarioTable = ScenarioTable(
    (
        _s("good-rsa", "A correct chain: RSA leaf plus its RSA intermediate."),
        _s(
            "good-ecdsa",
            "A correct chain: ECDSA P-256 leaf plus its ECDSA intermediate.",
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-ecdsa-ca", key="ec256"), chain=("lab-ecdsa-ca",)),
        ),
        _s(
            "good-two-level",
            "A correct chain through two intermediates (Issuing CA 2, then Policy CA).",
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-issuing-ca-2"), chain=("lab-issuing-ca-2", "lab-policy-ca")),
        ),
        _s(
            "expired",
            "The leaf certificate expired 30 days ago.",
            ("expired",),
            spec=ServeSpec(leaf=LeafSpec(starts=-120, days=90)),
        ),
        _s(
            "not-yet-valid",
            "The leaf certificate only becomes valid in 10 days.",
            ("not-yet-valid",),
            spec=ServeSpec(leaf=LeafSpec(starts=10, days=90)),
        ),
        _s(
            "expiring-soon",
            "The leaf certificate is valid but expires in 10 days.",
            ("expiring-soon",),
            spec=ServeSpec(leaf=LeafSpec(starts=-80, days=90)),
        ),
        _s(
            "wrong-host",
            "The certificate is for other-host.certdoctor.test, not the name the client asked for.",
            ("hostname-mismatch",),
            spec=ServeSpec(leaf=LeafSpec(dns_names=(_host("other-host"),))),
        ),
        _s(
            "wildcard",
            "A wildcard certificate (*.wildcard.certdoctor.test) used for a name it covers.",
            hostname=_host("www.wildcard"),
            spec=ServeSpec(leaf=LeafSpec(dns_names=("*." + _host("wildcard"),))),
        ),
        _s(
            "wildcard-apex",
            "A wildcard certificate used for the bare domain, which a wildcard does not cover.",
            ("hostname-mismatch",),
            spec=ServeSpec(leaf=LeafSpec(dns_names=("*." + _host("wildcard-apex"),))),
        ),
        _s(
            "cn-only",
            "The name is only in the subject CN; there is no subjectAltName, which clients require.",
            ("hostname-mismatch",),
            spec=ServeSpec(leaf=LeafSpec(san=False, common_name=_host("cn-only"))),
        ),
        _s(
            "ip-no-san",
            "Connecting by IP address, but the IP is only in the CN, not in an IP subjectAltName.",
            ("hostname-mismatch",),
            hostname="127.0.0.1",
            spec=ServeSpec(leaf=LeafSpec(dns_names=(_host("ip-no-san"),), common_name="127.0.0.1")),
        ),
        _s(
            "self-signed",
            "The server sends a lone self-signed certificate that no client trusts.",
            ("self-signed",),
            spec=ServeSpec(leaf=LeafSpec(issuer=None), chain=()),
        ),
        _s(
            "untrusted-root",
            "The chain is complete but ends at a private root that is not in any trust store.",
            ("untrusted-root",),
            spec=ServeSpec(leaf=LeafSpec(issuer="untrusted-ca"), chain=("untrusted-ca",)),
        ),
        _s(
            "incomplete-aia",
            "The server forgets the intermediate; only clients that follow the AIA URL can recover.",
            ("missing-intermediate",),
            spec=ServeSpec(chain=()),
        ),
        _s(
            "incomplete-no-aia",
            "The server forgets the intermediate and the leaf has no AIA URL to fetch it from.",
            ("missing-intermediate",),
            spec=ServeSpec(leaf=LeafSpec(aia=False), chain=()),
        ),
        _s(
            "wrong-order",
            "The two intermediates are sent in reverse order.",
            ("wrong-order",),
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-issuing-ca-2"), chain=("lab-policy-ca", "lab-issuing-ca-2")),
        ),
        _s(
            "extra-cert",
            "The chain carries an unrelated CA certificate that is not part of the path.",
            ("extra-cert",),
            spec=ServeSpec(chain=("lab-rsa-ca", "unrelated-ca")),
        ),
        _s(
            "root-included",
            "The server also sends the root certificate, which is useless to clients.",
            ("contains-root",),
            spec=ServeSpec(chain=("lab-rsa-ca", "lab-root")),
        ),
        _s(
            "duplicate-cert",
            "The intermediate certificate is sent twice.",
            ("duplicate-cert",),
            spec=ServeSpec(chain=("lab-rsa-ca", "lab-rsa-ca")),
        ),
        _s(
            "expired-intermediate",
            "The leaf is valid but its intermediate CA certificate expired 10 days ago.",
            ("intermediate-expired",),
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-expired-ca"), chain=("lab-expired-ca",)),
        ),
        _s(
            "issuer-not-ca",
            "The leaf was signed by another server certificate (CA:FALSE) instead of a CA.",
            ("issuer-not-ca",),
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-not-a-ca"), chain=("lab-not-a-ca", "lab-rsa-ca")),
        ),
        _s(
            "client-auth-eku",
            "The certificate is only allowed for TLS client authentication, not for servers.",
            ("missing-server-auth-eku",),
            spec=ServeSpec(leaf=LeafSpec(ekus=(CLIENT_AUTH,))),
        ),
        _s(
            "sha1",
            "The leaf is signed with SHA-1, which clients no longer accept.",
            ("weak-signature",),
            spec=ServeSpec(leaf=LeafSpec(hash="sha1")),
        ),
        _s(
            "rsa-1024",
            "The leaf has a 1024-bit RSA key, too weak for modern clients.",
            ("weak-key",),
            spec=ServeSpec(leaf=LeafSpec(key="rsa1024")),
        ),
        _s(
            "long-validity",
            "The leaf is valid for 825 days, longer than browsers accept for public certificates.",
            ("validity-too-long",),
            spec=ServeSpec(leaf=LeafSpec(days=825)),
        ),
        _s(
            "multi-address",
            "Two addresses for one name: 127.0.0.2 still serves an old, expired certificate.",
            ("endpoints-differ", "expired"),
            spec=ServeSpec(
                second_address=LeafSpec(key_name="leaf-multi-address-old", starts=-120, days=90),
            ),
        ),
        _s(
            "no-sni",
            "Clients that send no SNI get the server's default certificate, for another name.",
            ("hostname-mismatch",),
            check_args=("--no-sni",),
            spec=ServeSpec(
                no_sni=LeafSpec(key_name="leaf-no-sni-default", dns_names=(_host("default"),)),
            ),
        ),
        # --- hostile: robustness fixtures, not part of the demo ---
        _s(
            "stall",
            "Accepts the TCP connection and never sends a byte.",
            hostile=True,
            spec=ServeSpec(kind="stall"),
        ),
        _s(
            "garbage",
            "Answers the ClientHello with 4 KiB of random bytes that are not TLS.",
            hostile=True,
            spec=ServeSpec(kind="garbage"),
        ),
        _s(
            "huge-chain",
            "Sends a leaf followed by 10,000 certificates (several megabytes).",
            hostile=True,
            spec=ServeSpec(chain=(), filler=10_000),
        ),
        _s(
            "many-certs",
            "A valid chain followed by 50 small unrelated self-signed certificates.",
            ("extra-cert", "chain-truncated"),
            hostile=True,
            spec=ServeSpec(filler=50),
        ),
        _s(
            "evil-fields",
            "A valid chain whose subject and SANs carry terminal escapes, rich markup and HTML.",
            hostile=True,
            spec=ServeSpec(
                leaf=LeafSpec(
                    dns_names=(_host("evil-fields"), *EVIL_SANS),
                    subject_extra=(
                        (NameOID.ORGANIZATION_NAME, EVIL_O),
                        (NameOID.ORGANIZATIONAL_UNIT_NAME, EVIL_OU),
                    ),
                )
            ),
        ),
        # --- revocation (appended after the hostile ones so that earlier ports stay where they were) ---
        _s(
            "revoked-ocsp",
            "The leaf certificate is revoked; its CA's OCSP responder says so.",
            ("revoked", "stapling-absent"),
            spec=ServeSpec(
                leaf=_revocation_leaf(revoked=Revoke(ReasonFlags.key_compromise, days=-1)),
                chain=(REVOCATION_CA,),
            ),
        ),
        _s(
            "revoked-crl",
            "The leaf certificate is revoked; only its CA's CRL says so (no OCSP URL).",
            ("revoked",),
            spec=ServeSpec(
                leaf=_revocation_leaf(
                    ocsp_url=None, crl_url=REVOCATION_CA_CRL, revoked=Revoke(ReasonFlags.superseded, days=-1)
                ),
                chain=(REVOCATION_CA,),
            ),
        ),
        _s(
            "revoked-intermediate",
            "The leaf is fine but its intermediate CA was revoked by the root.",
            ("revoked", "stapling-absent"),
            spec=ServeSpec(
                leaf=_revocation_leaf(issuer=REVOKED_CA, ocsp_url="{aia}/ocsp/" + REVOKED_CA),
                chain=(REVOKED_CA,),
            ),
        ),
        _s(
            "good-stapled",
            "A good chain whose server staples a fresh OCSP response.",
            spec=ServeSpec(leaf=_revocation_leaf(), chain=(REVOCATION_CA,), staple="good"),
        ),
        _s(
            "stale-staple",
            "The server staples an OCSP response that expired 3 days ago.",
            ("ocsp-stale",),
            spec=ServeSpec(leaf=_revocation_leaf(), chain=(REVOCATION_CA,), staple="stale"),
        ),
        _s(
            "must-staple",
            "The leaf demands OCSP stapling (TLS Feature extension) but the server does not staple.",
            ("must-staple-missing",),
            spec=ServeSpec(leaf=_revocation_leaf(must_staple=True), chain=(REVOCATION_CA,)),
        ),
        _s(
            "ocsp-unreachable",
            "The leaf's OCSP responder refuses connections and there is no CRL.",
            ("revocation-unknown", "stapling-absent"),
            spec=ServeSpec(leaf=_revocation_leaf(ocsp_url="{unreachable}"), chain=(REVOCATION_CA,)),
        ),
        _s(
            "ocsp-garbage",
            "The leaf's OCSP responder answers with random bytes.",
            ("ocsp-invalid", "revocation-unknown", "stapling-absent"),
            spec=ServeSpec(leaf=_revocation_leaf(ocsp_url="{aia}/ocsp-garbage"), chain=(REVOCATION_CA,)),
        ),
        # --- path building and client-specific rules (appended so that earlier ports stay where they were) ---
        _s(
            "path-length",
            "An intermediate allowed no CA below it (pathLenConstraint 0) issued another intermediate.",
            ("path-length-exceeded",),
            spec=ServeSpec(
                leaf=LeafSpec(issuer="lab-below-pathlen0-ca"), chain=("lab-below-pathlen0-ca", "lab-pathlen0-ca")
            ),
        ),
        _s(
            "name-constraints",
            "The issuing CA may only issue for permitted.certdoctor.test (name constraints), not for this name.",
            ("name-constraints-violated",),
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-constrained-ca"), chain=("lab-constrained-ca",)),
        ),
        _s(
            "expired-cross-root",
            "A good chain plus an expired cross-certificate of the trusted root by an old root (AddTrust, 2020).",
            ("cross-signed-root",),
            spec=ServeSpec(chain=("lab-rsa-ca", "lab-root-by-old-expired")),
        ),
        _s(
            "le-2021-shape",
            "A good chain plus the trusted root cross-signed by an expired old root (Let's Encrypt, 2021).",
            ("cross-signed-root",),
            spec=ServeSpec(chain=("lab-rsa-ca", "lab-root-by-old")),
        ),
        _s(
            "trailing-dot",
            "The client asks for the name with a trailing dot (fully qualified); the certificate has none.",
            ("hostname-trailing-dot",),
            hostname=_host("trailing-dot") + ".",
            spec=ServeSpec(leaf=LeafSpec(dns_names=(_host("trailing-dot"),))),
        ),
        _s(
            "intermediate-eku",
            "The intermediate's extended key usage allows e-mail and client authentication, not TLS servers.",
            ("missing-server-auth-eku",),
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-email-eku-ca"), chain=("lab-email-eku-ca",)),
        ),
        _s(
            "leaf-ca-true",
            "The server certificate says it is a CA (basicConstraints CA:TRUE).",
            ("leaf-is-ca",),
            spec=ServeSpec(leaf=LeafSpec(claims_ca=True)),
        ),
        _s(
            "partial-wildcard",
            "The certificate's name has a partial wildcard (partial*.certdoctor.test) that matches the name.",
            ("hostname-mismatch",),
            spec=ServeSpec(leaf=LeafSpec(dns_names=("partial*." + DOMAIN,))),
        ),
        _s(
            "ed25519",
            "An Ed25519 leaf under an Ed25519 intermediate (the root is RSA).",
            ("ed25519-key",),
            spec=ServeSpec(
                leaf=LeafSpec(issuer="lab-ed25519-ca", key="ed25519"), chain=("lab-ed25519-ca",), alerts=True
            ),
        ),
        _s(
            "negative-serial",
            "The leaf's serial number is negative, which RFC 5280 forbids.",
            ("negative-serial",),
            spec=ServeSpec(leaf=LeafSpec(serial=-0x5A17_C0DE_D00D_F00D_1234_5678_9ABC_DEF1)),
        ),
        _s(
            "aki-mismatch",
            "The leaf's authority key identifier does not match its intermediate's subject key identifier.",
            ("aki-ski-mismatch",),
            spec=ServeSpec(leaf=LeafSpec(authority_key_id=bytes.fromhex("0badc0de" * 5))),
        ),
        _s(
            "critical-extension",
            "The leaf carries a private extension marked critical, which no client understands.",
            ("unknown-critical-extension",),
            spec=ServeSpec(leaf=LeafSpec(unknown_critical=True)),
        ),
        # --- the break forecast (appended so that earlier ports stay where they were) ---
        _s(
            "intermediate-expires-first",
            "A good chain whose intermediate expires in 30 days, before the leaf (89 days).",
            spec=ServeSpec(leaf=LeafSpec(issuer="lab-expiring-ca"), chain=("lab-expiring-ca",)),
        ),
        _s(
            "cross-expires-first",
            "A good chain plus the root cross-signed by an expired old root; the cross-certificate expires in 40 days.",
            ("cross-signed-root",),
            spec=ServeSpec(chain=("lab-rsa-ca", "lab-root-by-old-soon")),
        ),
        # --- Certificate Transparency: leaves with SCTs of the lab's CT logs (lab/ctlog.py), judged as if the lab
        # root were publicly trusted (browsers enforce CT for public roots only) and verified against its log list
        _s(
            "ct-ok",
            "The leaf embeds SCTs from two lab CT logs of two operators: enough for Chrome's, Firefox's and Apple's "
            "CT policies.",
            check_args=_CT_ARGS,
            spec=ServeSpec(leaf=LeafSpec(scts=("lab-ct-log-1", "lab-ct-log-2"))),
        ),
        _s(
            "ct-too-few",
            "The leaf embeds one SCT only; under a public root Chrome, Firefox and Safari refuse it.",
            ("ct-policy-not-met",),
            check_args=_CT_ARGS,
            spec=ServeSpec(leaf=LeafSpec(scts=("lab-ct-log-1",))),
        ),
        _s(
            "ct-bad-sct",
            "The leaf embeds two SCTs, one of which has a signature that does not verify, so only one counts.",
            ("ct-sct-invalid-signature", "ct-policy-not-met"),
            check_args=_CT_ARGS,
            spec=ServeSpec(leaf=LeafSpec(scts=("lab-ct-log-1", "bad:lab-ct-log-2"))),
        ),
    )
)
