"""What each client family does when a finding applies: the finding × client table.

Every finding id that a check can report has an explicit entry for every client family of
:data:`~certdoctor.clients.profiles.PROFILES` — there is no silent default. An entry is one of:

``rejects``
    the client refuses the chain whenever the finding applies; ``problem`` is the engine's problem key
    (:data:`~certdoctor.clients.profiles.PROBLEMS`) whose message, in the client's profile, is what it prints.
``accepts``
    the client connects although the finding applies; ``why`` says which documented behaviour lets it.
``depends``
    whether it refuses depends on the chain (for example Chrome fetches a missing intermediate when the leaf has
    an AIA URL; Java refuses more than ten certificates): the per-client prediction decides, and ``why`` says on
    what.
``unaffected``
    the finding is not about what a client verifies (a deployment or file problem, such as ``--expect`` or a key
    that does not match): it keeps the severity its check gave it.

The verdict uses this table (:func:`certdoctor.clients.verdict.reconcile`): an error finding that every client of
interest accepts is a warning (a standards non-conformance that no client minds), a warning that one of them
rejects is an error that names it. ``tests/test_client_reactions.py`` checks the table has no gaps and agrees with
the profiles; the conformance suite checks the profiles against the real clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..policy import finding_ids

ReactionKind = Literal["rejects", "accepts", "depends", "unaffected"]

CLIENT_IDS = ("chrome", "firefox", "safari", "curl", "python", "node", "java", "go", "dotnet")
BROWSERS = ("chrome", "firefox", "safari")
OPENSSL_FAMILY = ("curl", "python", "node")


@dataclass(frozen=True)
class Reaction:
    """One client family's reaction to one finding (see the module docstring for ``kind``)."""

    kind: ReactionKind
    problem: str | None = None  # the engine problem whose message the client prints (rejects, depends)
    why: str = ""  # the documented behaviour behind an "accepts" or "depends"


def rejects(problem: str) -> Reaction:
    return Reaction("rejects", problem)


def accepts(why: str) -> Reaction:
    return Reaction("accepts", None, why)


def depends(why: str, problem: str | None = None) -> Reaction:
    return Reaction("depends", problem, why)


def unaffected(why: str) -> Reaction:
    return Reaction("unaffected", None, why)


def _every(reaction: Reaction, **others: Reaction) -> dict[str, Reaction]:
    """The same reaction for every client, except those named (each spelled out by its id)."""
    unknown = set(others) - set(CLIENT_IDS)
    if unknown:
        raise KeyError(f"unknown client ids: {sorted(unknown)}")
    return {cid: others.get(cid, reaction) for cid in CLIENT_IDS}


_CN_FALLBACK = depends(
    "accepts a name found only in the subject Common Name when the certificate has no DNS subjectAltName "
    "(OpenSSL X509_check_host, Java HostnameChecker, .NET)",
    "hostname-cn-only",
)
_CN_FALLBACK_PARTIAL = depends(
    "accepts a name found only in the subject Common Name when the certificate has no DNS subjectAltName, and "
    "partial wildcards such as api*.example.com (Node's tls.checkServerIdentity, Java's HostnameChecker)",
    "hostname-cn-only",
)
_AIA = depends("fetches the missing intermediate from the leaf's AIA caIssuers URL when there is one", "issuer-unknown")
_NO_REVOCATION = accepts("checks no revocation by default")
_NO_CT = accepts("does not enforce Certificate Transparency")
_FILES = unaffected("about the files you deploy, not about what a client verifies")
_DRIFT = unaffected(
    "deployment drift: what is served differs from what is deployed; the served chain's own findings say whether "
    "clients reject it"
)
_SOFT_FAIL = accepts("revocation checking, where done, soft-fails: an unanswered or unusable response is ignored")

_NOT_MAIL = unaffected(
    "a browser speaks none of the protocols that upgrade to TLS (mail, databases, LDAP, FTP, XMPP, ManageSieve, "
    "NNTP, IRC)"
)
_MAIL_LIBRARY_REFUSED = depends(
    "its clients of the protocol (mail: Python's smtplib/imaplib/poplib, nodemailer, JavaMail, Go's net/smtp, "
    "MailKit; LDAP: python-ldap, JNDI; NNTP: nntplib) raise when TLS is required and the server does not upgrade, "
    "and carry on without TLS when it is opportunistic",
    "starttls-denied",
)
_MAIL_LIBRARY_STOPS = {
    problem: depends(
        "its clients of the protocol give up on a server that does not answer in the protocol: no session, TLS or not",
        problem,
    )
    for problem in ("starttls-protocol", "starttls-timeout")
}

REACTIONS: dict[str, dict[str, Reaction]] = {
    # --- trust: can the client build a path to an anchor it has? ---
    "self-signed": _every(rejects("self-signed")),
    "untrusted-root": _every(rejects("root-untrusted")),
    "missing-intermediate": _every(
        rejects("issuer-unknown"),
        chrome=_AIA,
        safari=_AIA,
        dotnet=_AIA,
        firefox=depends(
            "ships the intermediates of every publicly trusted CA (intermediate preloading), so a public chain "
            "without its intermediate still verifies; a private one does not",
            "issuer-unknown",
        ),
    ),
    "root-expired": _every(
        rejects("root-expired"),
        chrome=accepts("does not check the validity dates of a trust anchor"),
        java=accepts("PKIX TrustAnchor: the anchor's validity dates are not checked"),
    ),
    "issuer-not-ca": _every(rejects("not-ca")),
    "name-constraints-violated": _every(rejects("name-constraints")),
    "path-length-exceeded": _every(rejects("path-length")),
    "unknown-critical-extension": _every(rejects("critical-extension")),
    "verification-failed": _every(
        depends("the reference verifier's reason is not one a check names; most clients refuse such a chain")
    ),
    # --- the presented chain: order, extras, size ---
    "wrong-order": _every(accepts("builds the path from the certificates sent, whatever their order")),
    "duplicate-cert": _every(accepts("ignores a certificate sent twice")),
    "contains-root": _every(accepts("ignores the root: it uses its own copy of the trust anchor")),
    "extra-cert": _every(
        accepts("ignores certificates it does not need to build the path"),
        java=depends(
            "refuses more than 10 certificates in the server's Certificate message (jdk.tls.maxCertificateChainLength)",
            "too-many-certs",
        ),
    ),
    "chain-truncated": _every(
        depends("refuses a Certificate message larger than its handshake message limit", "too-large"),
        java=depends(
            "refuses more than 10 certificates (jdk.tls.maxCertificateChainLength) or a Certificate message "
            "over 32,768 bytes (jdk.tls.maxHandshakeMessageSize)",
            "too-many-certs",
        ),
    ),
    # --- algorithms and keys ---
    "weak-signature": _every(
        rejects("weak-signature"),
        java=depends(
            "refuses SHA-1 in chains that end at a root of the JDK's cacerts; accepts it below a private root "
            "(jdk.certpath.disabledAlgorithms: SHA1 jdkCA & usage TLSServer)",
            "weak-signature",
        ),
        dotnet=depends(
            "uses the platform verifier: OpenSSL on Linux refuses SHA-1, Windows accepts it for private roots",
            "weak-signature",
        ),
    ),
    "weak-key": _every(
        depends("refuses RSA keys shorter than 1024 bits; accepts 1024 to 2047", "weak-key-leaf"),
        safari=rejects("weak-key-leaf"),
        curl=rejects("weak-key-leaf"),
        python=rejects("weak-key-leaf"),
        go=depends("refuses RSA keys shorter than 1024 bits (Go 1.24 and later)", "weak-key-leaf"),
    ),
    "malformed-certificate": _every(
        depends(
            "refuses what its own DER parser cannot read; parsers differ on lenient encodings (OpenSSL accepts "
            "some that cryptography and Go refuse)"
        )
    ),
    # --- names ---
    "hostname-mismatch": _every(
        rejects("hostname"),
        curl=_CN_FALLBACK,
        python=_CN_FALLBACK,
        node=_CN_FALLBACK_PARTIAL,
        java=_CN_FALLBACK_PARTIAL,
        dotnet=_CN_FALLBACK,
    ),
    "no-subject-alt-name": _every(
        rejects("hostname-cn-only"),
        curl=_CN_FALLBACK,
        python=_CN_FALLBACK,
        node=_CN_FALLBACK,
        java=_CN_FALLBACK,
        dotnet=_CN_FALLBACK,
    ),
    # --- usage ---
    "missing-server-auth-eku": _every(
        rejects("eku"),
        java=depends(
            "checks only the server certificate's EKU; an intermediate's EKU without serverAuth is accepted "
            "(lab scenario intermediate-eku)",
            "eku",
        ),
    ),
    "leaf-is-ca": _every(
        accepts("accepts a server certificate with basicConstraints CA:TRUE"),
        firefox=rejects("leaf-ca"),
    ),
    # --- dates ---
    "expired": _every(rejects("expired")),
    "not-yet-valid": _every(rejects("not-yet-valid")),
    "intermediate-expired": _every(rejects("intermediate-expired")),
    "expiring-soon": _every(accepts("the certificate is still valid")),
    "validity-too-long": _every(
        accepts("does not limit the validity period"),
        chrome=depends(
            "refuses a validity over 398 days for certificates issued under a public root", "validity-too-long"
        ),
        safari=depends(
            "refuses a validity over 398 days for certificates issued under a public root", "validity-too-long"
        ),
    ),
    # --- Certificate Transparency (publicly trusted leaves only: certdoctor.checks.ct) ---
    "ct-sct-missing": _every(
        _NO_CT,
        firefox=rejects("ct-required"),
        chrome=rejects("ct-required"),
        safari=rejects("ct-required"),
    ),
    "ct-policy-not-met": _every(
        _NO_CT,
        firefox=depends(
            "refuses a publicly trusted certificate whose SCTs fail Mozilla's CT policy (Firefox 135+)", "ct-required"
        ),
        chrome=depends("refuses a publicly trusted certificate whose SCTs fail the Chrome CT Policy", "ct-required"),
        safari=depends("refuses a publicly trusted certificate whose SCTs fail Apple's CT policy", "ct-required"),
    ),
    "ct-sct-invalid-signature": _every(
        unaffected("an SCT that does not verify is ignored: whether clients refuse depends on the SCTs that do")
    ),
    # --- revocation ---
    "revoked": _every(
        _NO_REVOCATION,
        chrome=depends("refuses certificates that Google's CRLSet lists (public CAs only)", "revoked"),
        firefox=depends(
            "refuses a revoked certificate when the server staples its OCSP response, and public "
            "certificates listed in CRLite",
            "revoked",
        ),
    ),
    "revocation-unknown": _every(_SOFT_FAIL),
    "ocsp-stale": _every(
        _SOFT_FAIL,
        firefox=depends("refuses a stapled OCSP response it cannot use", "staple-invalid"),
    ),
    "ocsp-invalid": _every(
        _SOFT_FAIL,
        firefox=depends("refuses a stapled OCSP response it cannot use", "staple-invalid"),
    ),
    "must-staple-missing": _every(
        accepts("ignores the TLS Feature (must-staple) extension"),
        firefox=rejects("must-staple"),
    ),
    "stapling-absent": _every(accepts("does not require an OCSP staple")),
    # --- certificate profile (RFC 5280 / CA/B Forum lints; x509-limbo) ---
    "aki-ski-mismatch": _every(
        accepts("builds the path by subject name and signature; the key identifiers are only hints"),
        curl=rejects("aki-mismatch-leaf"),
        python=rejects("aki-mismatch-leaf"),
        node=rejects("aki-mismatch-leaf"),
        dotnet=depends(
            "on Linux .NET builds the chain with OpenSSL, which refuses it; on Windows CryptoAPI builds it by name",
            "issuer-unknown",
        ),
    ),
    "max-chain-depth-exceeded": _every(
        unaffected("judged against the verify depth you gave with --max-chain-depth: your client's own setting")
    ),
    "aki-issuer-serial": _every(accepts("ignores authorityCertIssuer/authorityCertSerialNumber when they are present")),
    "key-identifier-missing": _every(accepts("builds the path without key identifiers when they are absent")),
    "extension-criticality": _every(accepts("does not enforce the criticality RFC 5280 prescribes for this extension")),
    "cn-not-in-san": _every(accepts("matches the host name against the subjectAltName only")),
    "crl-nonconforming": _every(accepts("checks no CRL by default")),
    "leaf-any-eku": _every(accepts("accepts anyExtendedKeyUsage for a server certificate")),
    "leaf-without-eku": _every(
        accepts("treats a certificate without extendedKeyUsage as good for any purpose"),
        safari=depends("Apple requires serverAuth in the EKU of TLS certificates issued after 2019-07-01", "eku"),
    ),
    "root-has-eku": _every(
        accepts("does not restrict a trust anchor by its extendedKeyUsage"),
        **dict.fromkeys(
            OPENSSL_FAMILY,
            depends("OpenSSL checks the purpose of every certificate of the chain, the anchor's EKU included"),
        ),
    ),
    "rsa-modulus-size": _every(accepts("accepts an RSA modulus whose size is not a multiple of 8 bits")),
    "serial-number-invalid": _every(
        accepts("accepts a zero serial number, or one longer than 20 octets"),
    ),
    "negative-serial": _every(
        accepts("accepts a negative serial number (checked here: OpenSSL 3.0, Java 17, Go 1.19, Chromium, Firefox)"),
        go=depends("Go 1.23 and later refuse to parse a negative serial number (GODEBUG x509negativeserial=1)"),
    ),
    "ed25519-key": _every(
        accepts("negotiates Ed25519 signatures in TLS 1.3 and verifies Ed25519 certificates"),
        chrome=rejects("ed25519"),
        firefox=rejects("ed25519"),
        safari=depends("Apple's TLS stack does not offer Ed25519 before macOS 14 / iOS 17", "ed25519"),
        dotnet=depends("on Linux .NET uses OpenSSL (Ed25519 supported); on Windows SChannel has no Ed25519", "ed25519"),
    ),
    "hostname-trailing-dot": _every(
        accepts("strips the trailing dot of a fully qualified name before matching"),
        python=rejects("hostname-trailing-dot"),
    ),
    "cross-signed-root": _every(
        accepts("builds the path to its own copy of the root and ignores the sent cross-certificate"),
    ),
    # --- the connection ---
    "connection-failed": _every(rejects("connect")),
    "handshake-failed": _every(rejects("handshake")),
    # --- the plaintext phase before TLS (STARTTLS): no certificate is ever sent. curl --ssl-reqd is measured
    # (tests/test_starttls.py, test_starttls_dir.py: for the protocols it does not speak it stops before
    # connecting); browsers speak none of these protocols; the other families' clients of the protocol stop when
    # TLS is required and carry on in plaintext when it is opportunistic.
    "starttls-refused": _every(
        _MAIL_LIBRARY_REFUSED,
        **dict.fromkeys(BROWSERS, _NOT_MAIL),
        curl=rejects("starttls-denied"),
    ),
    "starttls-wrong-protocol": _every(
        _MAIL_LIBRARY_STOPS["starttls-protocol"],
        **dict.fromkeys(BROWSERS, _NOT_MAIL),
        curl=rejects("starttls-protocol"),
    ),
    "starttls-timeout": _every(
        _MAIL_LIBRARY_STOPS["starttls-timeout"],
        **dict.fromkeys(BROWSERS, _NOT_MAIL),
        curl=rejects("starttls-timeout"),
    ),
    # --- client certificates (mutual TLS): a client without one fails the same way, whatever it verifies; the
    # messages of curl and Python are measured (tests/test_reach.py), the others are the clients' names for alert
    # 116 (TLS 1.3) or 40 (TLS 1.2)
    "client-certificate-required": _every(rejects("client-certificate")),
    "client-certificate-requested": _every(
        unaffected(
            "the handshake completes without a client certificate; whether the application then refuses the "
            "request (nginx ssl_verify_client on: HTTP 400) is not a TLS matter"
        )
    ),
    "client-certificate-rejected": _every(
        unaffected("about the client certificate given with --cert, not about what a client verifies of the server")
    ),
    "proxy-failed": _every(
        unaffected(
            "about the proxy certdoctor went through (--proxy, https_proxy): a client through the same proxy fails the "
            "same way, one that does not use it never sees this"
        )
    ),
    "endpoints-differ": _every(depends("depends on which address the client connects to")),
    "key-types-differ": _every(
        unaffected(
            "which certificate a client gets depends on the key types it offers; the broken chain's own findings say "
            "which clients refuse it"
        )
    ),
    # --- deployment and files ---
    "served-differs-from-expected": _every(
        unaffected("--expect compares what is served with what you meant to deploy; clients only see the former")
    ),
    "unreadable-file": _every(_FILES),
    "no-certificate": _every(_FILES),
    "pem-format": _every(_FILES),
    "key-in-cert-file": _every(_FILES),
    "key-mismatch": _every(unaffected("a server refuses to start with a key that does not match its certificate")),
    # --- deployment drift (--deployed): the served chain's own findings say whether clients reject it ---
    "not-reloaded": _every(_DRIFT),
    "served-not-deployed": _every(_DRIFT),
    "partially-reloaded": _every(_DRIFT),
    "deployed-file-unreadable": _every(_FILES),
    "deployed-file-problem": _every(
        unaffected("about the file on the server's disk, which clients see only once the server reloads it")
    ),
    # --- CAA (RFC 8659): a rule for CAs at issuance; no client looks CAA up ---
    **{
        fid: _every(accepts("CAA binds a CA when it issues (RFC 8659 §1); no TLS client looks CAA records up"))
        for fid in ("caa-issuer-not-authorized", "caa-lookup-failed", "caa-critical-unknown")
    },
    # --- your certificate policy (--policy): your own rules, not what a client verifies ---
    **{
        fid: _every(unaffected("a rule of your certificate policy (--policy), not something a client verifies"))
        for fid in finding_ids()
    },
}


def reaction(finding_id: str, client_id: str) -> Reaction:
    """The reaction of ``client_id`` to ``finding_id``; raises KeyError when the table has no entry."""
    return REACTIONS[finding_id][client_id]
