"""What each client family does with a server's certificate chain: pure data.

One :class:`ClientProfile` per client family. A profile records the version it describes, the trust store
the client uses and how to add a private CA to it, whether it fetches missing intermediates through AIA,
its name-checking, algorithm and key-size rules, its revocation behaviour, the order in which it reports
problems, and the exact text it prints for each problem (``messages``, keyed by :data:`PROBLEMS`).

The behaviour recorded here is checked against the real clients by the conformance suite
(``tests/test_clients_real.py``): the tests, not this file, are the authority.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..model import Engine, RevocationChecks, Sha1Policy

# Problem keys the engine can report, and the certdoctor finding ids that explain each of them.
PROBLEMS: dict[str, tuple[str, ...]] = {
    # only the leaf; its issuer is unknown (OpenSSL also when the leaf's AKI does not match the issuer's SKI)
    "issuer-unknown-leaf": ("missing-intermediate", "untrusted-root", "aki-ski-mismatch"),
    "issuer-unknown": ("missing-intermediate", "untrusted-root", "aki-ski-mismatch"),  # an intermediate's issuer
    "root-untrusted": ("untrusted-root",),  # the chain ends in a self-signed root the client does not trust
    "self-signed": ("self-signed",),  # the leaf itself is self-signed and not trusted
    "expired": ("expired",),
    "not-yet-valid": ("not-yet-valid",),
    "intermediate-expired": ("intermediate-expired",),
    "intermediate-not-yet-valid": ("intermediate-expired",),
    "root-expired": ("root-expired",),
    "hostname": ("hostname-mismatch",),
    "hostname-ip": ("hostname-mismatch",),
    "hostname-cn-only": ("hostname-mismatch", "no-subject-alt-name"),
    "weak-signature": ("weak-signature",),
    "weak-key-leaf": ("weak-key",),
    "weak-key-ca": ("weak-key",),
    "eku": ("missing-server-auth-eku", "leaf-without-eku"),
    "not-ca": ("issuer-not-ca",),
    "issuer-no-certsign": ("issuer-not-ca",),  # the issuer's keyUsage lacks keyCertSign
    "hostname-ip-none": ("hostname-mismatch",),  # connecting by IP; the certificate has no IP SAN at all
    "too-many-certs": ("extra-cert", "chain-truncated"),
    "validity-too-long": ("validity-too-long",),
    # a publicly trusted leaf without the SCTs the client's CT policy asks for (certdoctor.ct)
    "ct-required": ("ct-policy-not-met", "ct-sct-missing"),
    "too-large": ("chain-truncated", "extra-cert"),
    "handshake": ("handshake-failed",),
    "not-tls": ("handshake-failed",),
    "timeout": ("connection-failed",),
    "connect": ("connection-failed",),
    "resolve": ("connection-failed",),
    "revoked": ("revoked",),
    "staple-invalid": ("ocsp-invalid", "ocsp-stale"),
    "must-staple": ("must-staple-missing",),
    "critical-extension": ("unknown-critical-extension",),  # an extension marked critical the client does not know
    "path-length": ("path-length-exceeded",),  # a CA's pathLenConstraint is exceeded
    "name-constraints": ("name-constraints-violated",),  # a name is outside a CA's name constraints
    "ca-eku": ("missing-server-auth-eku",),  # an intermediate's EKU excludes serverAuth (EKU chaining)
    "leaf-ca": ("leaf-is-ca",),  # the server certificate has basicConstraints CA:TRUE
    "ed25519": ("ed25519-key",),  # no signature algorithm in common: the client does not do Ed25519
    "aki-mismatch-leaf": ("aki-ski-mismatch",),  # the leaf's AKI names no certificate the client has
    "aki-mismatch": ("aki-ski-mismatch",),  # an intermediate's AKI names no certificate the client has
    "hostname-trailing-dot": ("hostname-trailing-dot",),  # the client compares "name." with "name" literally
    "handshake-timeout": ("connection-failed",),  # TCP connected, then no TLS answer
    "client-certificate": ("client-certificate-required",),  # the server ends the handshake without one
    # The plaintext phase before TLS (certdoctor.collect.starttls): the client never gets to the certificate.
    # A message keyed "<problem>@<protocol>" (e.g. "starttls-not-offered@imap") is that protocol's wording.
    "starttls-denied": ("starttls-refused",),  # the upgrade command was answered with an error
    "starttls-not-offered": ("starttls-refused",),  # not listed (EHLO, CAPABILITY, CAPA), or the session refused
    "starttls-protocol": ("starttls-wrong-protocol",),
    "starttls-timeout": ("starttls-timeout",),
    # Errors OpenSSL's own verifier raises (clients/openssl.py) that the declarative model has no key for.
    "bad-signature": ("verification-failed", "missing-intermediate"),  # X509_V_ERR_CERT_SIGNATURE_FAILURE
    "chain-too-long": ("chain-truncated", "extra-cert"),  # X509_V_ERR_CERT_CHAIN_TOO_LONG
    "openssl-other": ("verification-failed",),  # any other X509_V_ERR_*: rendered with OpenSSL's own text
}

# How problems are grouped for comparison with what real clients do ("the error family").
FAMILIES: dict[str, str] = {
    "issuer-unknown-leaf": "untrusted",
    "issuer-unknown": "untrusted",
    "root-untrusted": "untrusted",
    "self-signed": "untrusted",
    "expired": "expired",
    "not-yet-valid": "expired",
    "intermediate-expired": "expired",
    "intermediate-not-yet-valid": "expired",
    "root-expired": "expired",
    "hostname": "hostname",
    "hostname-ip": "hostname",
    "hostname-cn-only": "hostname",
    "weak-signature": "weak",
    "weak-key-leaf": "weak",
    "weak-key-ca": "weak",
    "eku": "usage",
    "not-ca": "usage",
    "issuer-no-certsign": "usage",
    "hostname-ip-none": "hostname",
    "too-many-certs": "protocol",
    "validity-too-long": "policy",
    "ct-required": "policy",
    "too-large": "protocol",
    "handshake": "protocol",
    "not-tls": "protocol",
    "timeout": "network",
    "connect": "network",
    "resolve": "network",
    "revoked": "revoked",
    "staple-invalid": "revoked",
    "must-staple": "revoked",
    "critical-extension": "usage",
    "path-length": "usage",
    "name-constraints": "usage",
    "ca-eku": "usage",
    "leaf-ca": "usage",
    "ed25519": "protocol",
    "aki-mismatch-leaf": "untrusted",
    "aki-mismatch": "untrusted",
    "hostname-trailing-dot": "hostname",
    "handshake-timeout": "network",
    "client-certificate": "protocol",
    "starttls-denied": "protocol",
    "starttls-not-offered": "protocol",
    "starttls-protocol": "protocol",
    "starttls-timeout": "network",
    "bad-signature": "untrusted",
    "chain-too-long": "protocol",
    "openssl-other": "untrusted",
}

# The order in which each verification engine reports problems (first match wins). Derived from the
# engines' sources (OpenSSL x509_vfy.c, Java's PKIXValidator then HostnameChecker, Go's Certificate.Verify,
# Chromium's CertVerifyProc) and checked against the real clients.
_OPENSSL_CHAIN = (  # build_chain, then check_extensions (leaf first), check_name_constraints, check_auth_level
    "issuer-unknown-leaf",
    "aki-mismatch-leaf",
    "self-signed",
    "root-untrusted",
    "issuer-unknown",
    "aki-mismatch",
    "critical-extension",  # check_extensions: EXFLAG_CRITICAL is tested first on each certificate
    "eku",
    "not-ca",
    "ca-eku",
    "path-length",
    "name-constraints",
    "weak-key-leaf",
    "weak-key-ca",
    "weak-signature",
)
_OPENSSL_DATES = (  # internal_verify: from the top of the chain down to the leaf
    "root-expired",
    "intermediate-expired",
    "intermediate-not-yet-valid",
    "expired",
    "not-yet-valid",
)
_HOSTNAME = ("hostname-ip", "hostname", "hostname-cn-only", "hostname-trailing-dot")


@dataclass(frozen=True)
class ClientProfile:
    id: str
    name: str
    covers: str  # other software that behaves the same
    describes: str  # the version this profile was written for and checked against
    engine: Engine
    stores: tuple[str, ...]  # certdoctor store names, preferred first
    store_label: str  # the store in the client's own words
    trust_howto: str  # how to make this client trust a private CA
    aia: bool  # fetches missing intermediates from the AIA caIssuers URL
    cn_fallback: bool  # accepts a name found only in the subject CN when the certificate has no DNS SAN
    hostname_during_verify: bool  # name checked inside chain verification (before dates), not after
    min_rsa_leaf: int
    min_rsa_ca: int
    sha1: Sha1Policy  # "private-only": accepted when the root is not a public one
    public_only_rules: bool  # enforces the 398-day maximum validity (and CT) for publicly trusted roots
    revocation: str  # what it does about revocation by default
    order: tuple[str, ...]
    messages: dict[str, str]
    # Path and name rules that differ between clients (each profile states every one; see the block comment
    # above each profile for the client's documented behaviour and the conformance scenario that checks it).
    ca_eku_chained: bool  # an intermediate's extendedKeyUsage without serverAuth fails the path (EKU chaining)
    leaf_ca_rejected: bool  # a server certificate with basicConstraints CA:TRUE is refused
    partial_wildcards: bool  # "partial*.example.com" matches "partial-x.example.com" (leftmost label only)
    ed25519: bool  # can verify and negotiate with Ed25519 certificates (RFC 8410 / RFC 8446 ed25519)
    aki_must_match: bool  # a candidate issuer whose subjectKeyIdentifier differs from the AKI is not the issuer
    trailing_dot: bool  # verifies "name." (an absolute DNS name, RFC 1034 §3.1) like "name"
    negative_serial: bool  # accepts a certificate with a negative serial number (RFC 5280 §4.1.2.2 forbids it)
    notes: tuple[str, ...] = field(default_factory=tuple)
    expiry_checks_anchor: bool = True  # an expired trust anchor is an error
    max_handshake_bytes: int = 102_400  # larger certificate flights are refused (OpenSSL max_cert_list)
    max_chain_certs: int = 0  # more certificates in the Certificate message are refused (0: no limit)
    # What revocation evidence the client acts on by default: "none", "crlset" (Chrome's pushed list of revoked
    # public certificates: nothing for a private CA), or "staple" (it validates a stapled OCSP response and
    # rejects a revoked or invalid one). ``must_staple``: it enforces the TLS Feature extension.
    revocation_checks: RevocationChecks = "none"
    must_staple: bool = False
    # It enforces a CT policy for publicly trusted roots (certdoctor.ct: which SCTs, from how many distinct logs
    # and operators): the ct checks name the clients whose policy a leaf fails.
    enforces_ct: bool = False


# Messages may use {host} (the name checked), {names} (the certificate's names in the client's format),
# {not_after}/{not_before} and {now}; the engine fills them in.

_OPENSSL_VERIFY = {
    "issuer-unknown-leaf": "unable to get local issuer certificate",
    "issuer-unknown": "unable to get local issuer certificate",
    "root-untrusted": "self-signed certificate in certificate chain",
    "self-signed": "self-signed certificate",
    "expired": "certificate has expired",
    "not-yet-valid": "certificate is not yet valid",
    "intermediate-expired": "certificate has expired",
    "intermediate-not-yet-valid": "certificate is not yet valid",
    "root-expired": "certificate has expired",
    "weak-signature": "CA signature digest algorithm too weak",
    "weak-key-leaf": "EE certificate key too weak",
    "weak-key-ca": "CA certificate key too weak",
    "eku": "unsuitable certificate purpose",
    "not-ca": "invalid CA certificate",
    "ca-eku": "unsuitable certificate purpose",
    "path-length": "path length constraint exceeded",
    "name-constraints": "{nc_kind} subtree violation",
    "aki-mismatch-leaf": "unable to get local issuer certificate",
    "aki-mismatch": "unable to get local issuer certificate",
    # raised by OpenSSL's verifier (clients/openssl.py); the text is X509_verify_cert_error_string's
    "issuer-no-certsign": "key usage does not include certificate signing",
    "bad-signature": "certificate signature failure",
    "chain-too-long": "certificate chain too long",
    "critical-extension": "unhandled critical extension",  # X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION
    "openssl-other": "{openssl}",
}

# OpenSSL 3.0 as curl, Python and Node use it (x509_vfy.c, v3_purp.c, v3_utl.c):
# - EKU chaining: check_purpose() runs X509_check_purpose(SSL_SERVER) on every CA too, and check_purpose_ssl_server
#   fails a CA whose EKU lacks serverAuth (xku_reject) -> X509_V_ERR_INVALID_PURPOSE.
# - a leaf with CA:TRUE is accepted (no end-entity check without X509_V_FLAG_X509_STRICT).
# - partial wildcards: Python sets X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS; curl matches names itself
#   (Curl_cert_hostcheck: the wildcard must be the whole leftmost label). Node's checkServerIdentity allows them.
# - Ed25519: supported (OpenSSL 1.1.1+ signs and verifies it; it is in the default signature_algorithms).
# - AKI: X509_check_issued() rejects a candidate whose SKI differs from the AKI keyIdentifier (X509_check_akid),
#   so the issuer is "not found".
# - trailing dot: curl strips it (Curl_cert_hostcheck); Python passes the name to X509_VERIFY_PARAM_set1_host,
#   which compares it literally ("name." never equals "name"); Node's checkServerIdentity strips it.
# - negative serials: parsed and accepted.
_OPENSSL_FACTS = {
    "ca_eku_chained": True,
    "leaf_ca_rejected": False,
    "ed25519": True,
    "aki_must_match": True,
    "negative_serial": True,
}

CURL = ClientProfile(
    id="curl",
    name="curl / OpenSSL",
    covers="curl, wget, git over HTTPS, PHP, Ruby, anything linked against the system OpenSSL",
    describes="curl 7.88 with OpenSSL 3.0 (Debian 12)",
    engine="openssl",
    stores=("system", "mozilla"),
    store_label="the system CA bundle (/etc/ssl/certs/ca-certificates.crt)",
    trust_howto=(
        "curl --cacert ca.pem, or CURL_CA_BUNDLE=ca.pem; system-wide: copy it to "
        "/usr/local/share/ca-certificates/ca.crt and run update-ca-certificates"
    ),
    aia=False,
    cn_fallback=True,
    hostname_during_verify=False,
    min_rsa_leaf=2048,
    min_rsa_ca=2048,
    sha1="reject",
    public_only_rules=False,
    revocation="none unless --crlfile is given (no OCSP, no CRL download)",
    order=(*_OPENSSL_CHAIN, *_OPENSSL_DATES, *_HOSTNAME),  # curl checks the name after the handshake
    messages={
        **{k: f"curl: (60) SSL certificate problem: {v}" for k, v in _OPENSSL_VERIFY.items()},
        "hostname": "curl: (60) SSL: no alternative certificate subject name matches target host name '{host}'",
        "hostname-ip": "curl: (60) SSL: no alternative certificate subject name matches target host name '{host}'",
        "hostname-cn-only": "curl: (60) SSL: certificate subject name '{cn}' does not match target host name '{host}'",
        "too-large": "curl: (35) OpenSSL/3.0: error:0A000098:SSL routines::excessive message size",
        "handshake": "curl: (35) OpenSSL/3.0: error:0A000410:SSL routines::sslv3 alert handshake failure",
        "client-certificate": "curl: (56) OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL routines::tlsv13 alert "
        "certificate required, errno 0",
        "not-tls": "curl: (35) OpenSSL/3.0: error:0A00010B:SSL routines::wrong version number",
        "timeout": "curl: (28) Operation timed out",
        "connect": "curl: (7) Failed to connect to {host} port {port}: Connection refused",
        "resolve": "curl: (6) Could not resolve host: {host}",
        # curl's connect timeout covers the TLS handshake (multi.c: Curl_timeleft)
        "handshake-timeout": "curl: (28) Connection timed out after {timeout_ms} milliseconds",
        # --ssl-reqd smtp:// imap:// pop3:// (curl 7.88, measured against protocol-faithful servers): a refused
        # upgrade is CURLE_USE_SSL_FAILED; a server that is not the protocol is waited for (curl skips lines that
        # are not a reply) until the timeout
        "starttls-denied": "curl: (64) STARTTLS denied",
        "starttls-denied@smtp": "curl: (64) STARTTLS denied, code {code}",
        "starttls-not-offered": "curl: (64) STARTTLS not supported.",
        "starttls-not-offered@imap": "curl: (64) STARTTLS not available.",
        "starttls-not-offered@pop3": "curl: (64) STLS not supported.",
        # ftp:// (curl 7.88 against vsftpd without TLS): AUTH TLS, then AUTH SSL, both refused (lib/ftp.c)
        "starttls-denied@ftp": "curl: (64) Requested SSL level failed",
        "starttls-protocol": "curl: (28) Operation timed out after {timeout_ms} milliseconds with 0 bytes received",
        "starttls-timeout": "curl: (28) Operation timed out after {timeout_ms} milliseconds with 0 bytes received",
        # curl speaks no database protocol, nor XMPP, ManageSieve, NNTP or IRC (curl 7.88 given a postgres://,
        # mysql://, xmpp://, xmpp-server://, sieve://, nntp:// or irc:// URL, measured): it stops before connecting
        **{
            f"{problem}@{protocol}": f'curl: (1) Protocol "{scheme}" not supported or disabled in libcurl'
            for problem in ("starttls-denied", "starttls-not-offered", "starttls-protocol", "starttls-timeout")
            for protocol, scheme in (
                ("postgres", "postgres"),
                ("postgres-direct", "postgres"),
                ("mysql", "mysql"),
                ("xmpp", "xmpp"),
                ("xmpp-server", "xmpp-server"),
                ("sieve", "sieve"),
                ("nntp", "nntp"),
                ("irc", "irc"),
            )
        },
        # ldap:// with --ssl-reqd: curl 7.88's LDAP (lib/ldap.c over OpenLDAP) has no StartTLS. Measured against
        # slapd with and without TLS: it binds, then gives up with CURLE_UNSUPPORTED_PROTOCOL's bare text; a
        # silent server or one that is not LDAP is a timeout, as for the other protocols (the messages above)
        "starttls-denied@ldap": "curl: (1) Unsupported protocol",
        "starttls-not-offered@ldap": "curl: (1) Unsupported protocol",
    },
    **_OPENSSL_FACTS,
    partial_wildcards=False,
    trailing_dot=True,
)

PYTHON = ClientProfile(
    id="python",
    name="Python (ssl, urllib, requests)",
    covers="urllib, http.client, aiohttp, httpx, requests (which uses certifi's Mozilla bundle instead)",
    describes="Python 3.11 ssl with OpenSSL 3.0",
    engine="openssl",
    stores=("system", "mozilla"),
    store_label="OpenSSL's default paths (the system bundle); requests/httpx use certifi (Mozilla)",
    trust_howto=(
        "ssl.create_default_context(cafile='ca.pem') or SSL_CERT_FILE=ca.pem; "
        "requests: REQUESTS_CA_BUNDLE=ca.pem or verify='ca.pem'"
    ),
    aia=False,
    cn_fallback=True,
    hostname_during_verify=True,
    min_rsa_leaf=2048,
    min_rsa_ca=2048,
    sha1="reject",
    public_only_rules=False,
    revocation="none (no OCSP, no CRL download; CRLs only if loaded and flagged explicitly)",
    order=(*_OPENSSL_CHAIN, *_HOSTNAME, *_OPENSSL_DATES),  # check_id runs before internal_verify
    messages={
        **{
            k: f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {v} (_ssl.c:1006)"
            for k, v in _OPENSSL_VERIFY.items()
        },
        "hostname": "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
        "certificate is not valid for '{host}'. (_ssl.c:1006)",
        "hostname-cn-only": "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
        "certificate is not valid for '{host}'. (_ssl.c:1006)",
        "hostname-ip": "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, "
        "certificate is not valid for '{host}'. (_ssl.c:1006)",
        "too-large": "[SSL: EXCESSIVE_MESSAGE_SIZE] excessive message size (_ssl.c:1006)",
        # psycopg (libpq) with sslmode=require or stricter, to a PostgreSQL server that answers N (measured:
        # psycopg 3.3 with libpq 18)
        "starttls-denied@postgres": 'connection failed: connection to server at "{host}", port {port} failed: '
        "server does not support SSL, but SSL was required",
        # LDAP: Python's standard library has none; python-ldap 3.4 (libldap 2.5, as ldapsearch -ZZ) with
        # start_tls_s() is modelled, measured against slapd without TLS (resultCode 2); {ldap_python} and
        # {ldap_desc} are python-ldap's exception and libldap's ldap_err2string() for the resultCode
        "starttls-denied@ldap": "ldap.{ldap_python}: {'result': {code}, 'desc': '{ldap_desc}', 'ctrls': []{ldap_info}}",
        # NNTP: nntplib (Python 3.11; removed in 3.13) NNTP.starttls(), measured against INN 2.7's nnrpd without a
        # certificate ("nntplib.NNTPPermanentError: 580 Error initializing TLS"); STARTTLS is refused with 5xx
        # (RFC 4642 §2.2: 502, 580), which nntplib raises as NNTPPermanentError. It sends STARTTLS without reading
        # CAPABILITIES, so a server that does not list it answers whatever it answers an unknown command (RFC 3977
        # §3.2.1: 500)
        "starttls-denied@nntp": "nntplib.NNTPPermanentError: {reply}",
        "starttls-not-offered@nntp": "nntplib.NNTPPermanentError: the server's answer to STARTTLS, which its "
        "CAPABILITIES do not list (500 per RFC 3977 §3.2.1)",
        # Neither XMPP, ManageSieve nor IRC has a client in the standard library: their refusals say what the
        # server said ("no TLS: ..."), as for Node.js, Go and .NET, which have no LDAP, NNTP, XMPP, ManageSieve
        # or IRC client of their own either
        "handshake": "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure (_ssl.c:1006)",
        "client-certificate": "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required "
        "(_ssl.c:2580)",
        "not-tls": "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)",
        "timeout": "TimeoutError: The read operation timed out",
        "connect": "ConnectionRefusedError: [Errno 111] Connection refused",
        "resolve": "socket.gaierror: [Errno -2] Name or service not known",
        "hostname-trailing-dot": "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
        "certificate is not valid for '{host}'. (_ssl.c:1006)",
        "handshake-timeout": "TimeoutError: _ssl.c:989: The handshake operation timed out",
    },
    **_OPENSSL_FACTS,
    partial_wildcards=False,
    trailing_dot=False,
    notes=(
        "requests and httpx verify against certifi (Mozilla's roots), not the system bundle",
        "a host name with a trailing dot ('example.com.') fails: ssl compares it literally with the certificate",
    ),
)

# Node.js: OpenSSL 3 underneath, but its verify callback lets OpenSSL continue past every error and then
# reports the *last* one (SSL_get_verify_result); the name is checked afterwards by tls.checkServerIdentity.
_NODE_CODES = {
    "issuer-unknown-leaf": "UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate",
    "issuer-unknown": "UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate",
    "root-untrusted": "SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain",
    "self-signed": "DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate",
    "expired": "CERT_HAS_EXPIRED: certificate has expired",
    "not-yet-valid": "CERT_NOT_YET_VALID: certificate is not yet valid",
    "intermediate-expired": "CERT_HAS_EXPIRED: certificate has expired",
    "intermediate-not-yet-valid": "CERT_NOT_YET_VALID: certificate is not yet valid",
    "root-expired": "CERT_HAS_EXPIRED: certificate has expired",
    "weak-signature": "UNSPECIFIED: CA signature digest algorithm too weak",
    "weak-key-leaf": "UNSPECIFIED: EE certificate key too weak",
    "weak-key-ca": "UNSPECIFIED: CA certificate key too weak",
    "eku": "INVALID_PURPOSE: unsuitable certificate purpose",
    "not-ca": "INVALID_PURPOSE: unsuitable certificate purpose",
    "issuer-no-certsign": "UNSPECIFIED: key usage does not include certificate signing",
    "ca-eku": "INVALID_PURPOSE: unsuitable certificate purpose",
    "path-length": "PATH_LENGTH_EXCEEDED: path length constraint exceeded",
    "name-constraints": "UNSPECIFIED: {nc_kind} subtree violation",
    "aki-mismatch-leaf": "UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate",
    "aki-mismatch": "UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate",
    # Node has no client-side handshake timeout: the application's socket timeout (socket.setTimeout, the
    # timeout option of https.request) fires and the application destroys the socket with its own error.
    "handshake-timeout": "ETIMEDOUT: no TLS handshake before the socket timeout (socket.setTimeout)",
    "bad-signature": "CERT_SIGNATURE_FAILURE: certificate signature failure",
    "chain-too-long": "CERT_CHAIN_TOO_LONG: certificate chain too long",
    # X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION has no name in Node's X509ErrorCode list (observed, Node 20)
    "critical-extension": "UNSPECIFIED: unhandled critical extension",
    "openssl-other": "{node_code}: {openssl}",  # Node: err.code (X509ErrorCode) and OpenSSL's text
    "hostname": "ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: "
    "Host: {host}. is not in the cert's altnames: {names}",
    "hostname-cn-only": "ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: "
    "Host: {host}. is not cert's CN: {cn}",
    "hostname-ip": "ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: "
    "IP: {host} is not in the cert's list: {ips}",
    "too-large": "ERR_SSL_EXCESSIVE_MESSAGE_SIZE: error:0A000098:SSL routines::excessive message size",
    "handshake": "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: error:0A000410:SSL routines::sslv3 alert handshake failure",
    "client-certificate": "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: error:0A00045C:SSL routines::tlsv13 alert "
    "certificate required",
    "not-tls": "ERR_SSL_WRONG_VERSION_NUMBER: error:0A00010B:SSL routines::wrong version number",
    "timeout": "ETIMEDOUT: connect ETIMEDOUT {host}:{port}",
    "connect": "ECONNREFUSED: connect ECONNREFUSED {host}:{port}",
    "resolve": "ENOTFOUND: getaddrinfo ENOTFOUND {host}",
}

NODE = ClientProfile(
    id="node",
    name="Node.js / Postman",
    covers="Postman, Insomnia, Electron apps, npm, axios/fetch/got in Node",
    describes="Node.js 20 (bundled OpenSSL 3, bundled Mozilla roots)",
    engine="node",
    stores=("mozilla",),
    store_label="Node's bundled copy of the Mozilla roots (not the OS store)",
    trust_howto=(
        "NODE_EXTRA_CA_CERTS=/path/ca.pem (read at start-up), or the ca option of tls/https; "
        "Postman: Settings > Certificates > CA certificates; node --use-openssl-ca to use the system store"
    ),
    aia=False,
    cn_fallback=True,
    hostname_during_verify=False,
    min_rsa_leaf=1024,
    min_rsa_ca=1024,
    sha1="reject",
    public_only_rules=False,
    revocation="none (no OCSP, no CRL download)",
    order=(  # the last error OpenSSL reports wins: leaf dates are checked last
        "expired",
        "not-yet-valid",
        "intermediate-expired",
        "intermediate-not-yet-valid",
        "root-expired",
        "issuer-no-certsign",
        "name-constraints",
        "path-length",
        "issuer-unknown-leaf",
        "aki-mismatch-leaf",
        "weak-signature",
        "weak-key-ca",
        "weak-key-leaf",
        "not-ca",
        "ca-eku",
        "eku",
        "critical-extension",  # check_extensions: before the purpose checks of the same certificate
        "issuer-unknown",
        "aki-mismatch",
        "root-untrusted",
        "self-signed",
        *_HOSTNAME,
    ),
    messages=_NODE_CODES,
    **_OPENSSL_FACTS,
    partial_wildcards=True,  # tls.checkServerIdentity: a '*' anywhere in the leftmost label ("b*z.example.com")
    trailing_dot=True,  # tls.checkServerIdentity strips a trailing dot from the host name
)

_PKIX_BUILD = (
    "javax.net.ssl.SSLHandshakeException: PKIX path building failed: "
    "sun.security.provider.certpath.SunCertPathBuilderException: "
    "unable to find valid certification path to requested target"
)
_PKIX_VALIDATION = "javax.net.ssl.SSLHandshakeException: PKIX path validation failed: "
_CPVE = "java.security.cert.CertPathValidatorException: "

JAVA = ClientProfile(
    id="java",
    name="Java (JSSE)",
    covers="Spring/RestTemplate/WebClient, Apache HttpClient, OkHttp on the JVM, Maven/Gradle, Jenkins, Kafka",
    describes="OpenJDK 17 (SunJSSE, PKIX CertPathBuilder, default security properties)",
    engine="java",
    stores=("java", "mozilla"),
    store_label="the JDK's cacerts keystore",
    trust_howto=(
        "keytool -importcert -cacerts -storepass changeit -alias myca -file ca.pem -noprompt "
        "(or a separate truststore: -Djavax.net.ssl.trustStore=store.p12 -Djavax.net.ssl.trustStorePassword=...)"
    ),
    aia=False,  # only with -Dcom.sun.security.enableAIAcaIssuers=true
    cn_fallback=True,
    hostname_during_verify=False,
    min_rsa_leaf=1024,
    min_rsa_ca=1024,
    sha1="private-only",  # jdk.certpath.disabledAlgorithms: "SHA1 jdkCA & usage TLSServer"
    public_only_rules=False,
    revocation="none by default (-Dcom.sun.net.ssl.checkRevocation=true -Dcom.sun.security.enableCRLDP=true)",
    order=(
        "too-many-certs",
        "issuer-unknown-leaf",
        "issuer-unknown",
        "root-untrusted",
        "self-signed",
        "weak-signature",
        "weak-key-leaf",
        "weak-key-ca",
        "issuer-no-certsign",
        "not-ca",
        "path-length",
        "name-constraints",
        "intermediate-expired",
        "intermediate-not-yet-valid",
        "expired",
        "not-yet-valid",
        "critical-extension",  # PKIXMasterCertPathValidator: after every checker of the certificate
        "eku",
        "hostname-ip-none",
        "hostname-ip",
        "hostname",
        "hostname-cn-only",
    ),
    messages={
        "issuer-unknown-leaf": _PKIX_BUILD,
        "issuer-unknown": _PKIX_BUILD,
        "root-untrusted": _PKIX_BUILD,
        "self-signed": _PKIX_BUILD,
        "expired": _PKIX_VALIDATION + _CPVE + "validity check failed",
        "not-yet-valid": _PKIX_VALIDATION + _CPVE + "validity check failed",
        "intermediate-expired": _PKIX_VALIDATION + _CPVE + "validity check failed",
        "intermediate-not-yet-valid": _PKIX_VALIDATION + _CPVE + "validity check failed",
        "weak-signature": _PKIX_VALIDATION + _CPVE + "Algorithm constraints check failed on signature algorithm: "
        "{algorithm}",
        "weak-key-leaf": _PKIX_VALIDATION + _CPVE + "Algorithm constraints check failed on keysize limits",
        "weak-key-ca": _PKIX_VALIDATION + _CPVE + "Algorithm constraints check failed on keysize limits",
        "issuer-no-certsign": _PKIX_VALIDATION + _CPVE + "CA key usage check failed: keyCertSign bit is not set",
        "not-ca": _PKIX_VALIDATION + _CPVE + "basic constraints check failed: this is not a CA certificate",
        "path-length": _PKIX_VALIDATION + _CPVE + "basic constraints check failed: pathLenConstraint violated - "
        "this cert must be the last cert in the certification path",
        "name-constraints": _PKIX_VALIDATION + _CPVE + "name constraints check failed",
        "critical-extension": _PKIX_VALIDATION + _CPVE + "unrecognized critical extension(s)",
        "eku": "javax.net.ssl.SSLHandshakeException: Extended key usage does not permit use for TLS server "
        "authentication",
        "hostname": "javax.net.ssl.SSLHandshakeException: No subject alternative DNS name matching {host} found.",
        "hostname-cn-only": "javax.net.ssl.SSLHandshakeException: No name matching {host} found",
        "hostname-ip": "javax.net.ssl.SSLHandshakeException: No subject alternative names matching IP address "
        "{host} found",
        "hostname-ip-none": "javax.net.ssl.SSLHandshakeException: No subject alternative names matching IP address "
        "{host} found",
        "too-many-certs": "javax.net.ssl.SSLProtocolException: The certificate chain length (11) exceeds the "
        "maximum allowed length (10)",
        "too-large": "javax.net.ssl.SSLProtocolException: The size of the handshake message ({size}) exceeds the "
        "maximum allowed size (32768)",
        "handshake": "javax.net.ssl.SSLHandshakeException: Received fatal alert: handshake_failure",
        "client-certificate": "javax.net.ssl.SSLHandshakeException: Received fatal alert: certificate_required",
        "not-tls": "javax.net.ssl.SSLException: Unsupported or unrecognized SSL message",
        "timeout": "java.net.SocketTimeoutException: Read timed out",
        "connect": "java.net.ConnectException: Connection refused",
        "resolve": "java.net.UnknownHostException: {host}",
        "handshake-timeout": "java.net.SocketTimeoutException: Read timed out",
        # LDAP StartTLS through JNDI (ctx.extendedOperation(new StartTlsRequest())), measured with OpenJDK 17
        # against slapd without TLS: "javax.naming.CommunicationException: [LDAP: error code 2 - unsupported
        # extended operation]"; {ldap_jndi} is the NamingException subclass JNDI maps the resultCode to (JNDI's
        # LDAP provider documentation, "LDAP status codes to JNDI exceptions")
        "starttls-denied@ldap": "javax.naming.{ldap_jndi}: [LDAP: error code {code}{ldap_jndi_info}]",
    },
    # sun.security.validator.EndEntityChecker checks only the leaf's EKU; PKIXValidator ignores an
    # intermediate's EKU, and nothing rejects a CA:TRUE leaf. HostnameChecker.matchLeftmostWildcard accepts a
    # '*' inside the leftmost label. EdDSA: SunEC since JDK 15 (JEP 339), TLS 1.3 ed25519 signature scheme.
    # The AKI is only a hint for path building (ForwardBuilder). The JDK derives SNI from the host with a
    # trailing dot removed (Utilities.rawToSNIHostName) and matches the name without it; an application that
    # builds new SNIHostName("name.") itself gets IllegalArgumentException.
    ca_eku_chained=False,
    leaf_ca_rejected=False,
    partial_wildcards=True,
    ed25519=True,
    aki_must_match=False,
    trailing_dot=True,
    negative_serial=True,
    expiry_checks_anchor=False,
    max_handshake_bytes=32_768,
    max_chain_certs=10,
    notes=(
        "Java fetches missing intermediates only with -Dcom.sun.security.enableAIAcaIssuers=true",
        "a handshake message over 32,768 bytes (a huge certificate chain) is refused: "
        "-Djdk.tls.maxHandshakeMessageSize raises the limit; -Djdk.tls.maxCertificateChainLength (10) the count",
    ),
)

_GO_UNKNOWN = "x509: certificate signed by unknown authority"

GO = ClientProfile(
    id="go",
    name="Go (crypto/tls)",
    covers="Go programs: kubectl, Terraform, Docker/containerd registries, Prometheus, Grafana agents",
    describes="Go 1.19 crypto/x509 (Linux: the system bundle; Go 1.20+ prefixes 'tls: failed to verify certificate: ')",
    engine="go",
    stores=("system", "mozilla"),
    store_label="the system CA bundle (SSL_CERT_FILE / SSL_CERT_DIR override it)",
    trust_howto=(
        "SSL_CERT_FILE=/path/ca.pem (replaces the bundle) or add it to the system store "
        "(update-ca-certificates); in code: tls.Config{RootCAs: pool}"
    ),
    aia=False,
    cn_fallback=False,
    hostname_during_verify=True,
    min_rsa_leaf=0,
    min_rsa_ca=0,
    sha1="reject",
    public_only_rules=False,
    revocation="none (crypto/x509 does no revocation checking)",
    order=(
        "critical-extension",  # isValid: UnhandledCriticalExtensions is its first test
        "expired",
        "not-yet-valid",
        "hostname-cn-only",
        "hostname-ip-none",
        "hostname-ip",
        "hostname",
        "weak-signature",
        "not-ca",
        "issuer-no-certsign",
        "intermediate-expired",
        "intermediate-not-yet-valid",
        "root-expired",
        "issuer-unknown-leaf",
        "issuer-unknown",
        "root-untrusted",
        "self-signed",
        "path-length",
        "name-constraints",
        "eku",
        "ca-eku",
    ),
    messages={
        "issuer-unknown-leaf": _GO_UNKNOWN,
        "issuer-unknown": _GO_UNKNOWN,
        "root-untrusted": _GO_UNKNOWN,
        "self-signed": _GO_UNKNOWN,
        "expired": "x509: certificate has expired or is not yet valid: current time {now} is after {not_after}",
        "not-yet-valid": "x509: certificate has expired or is not yet valid: current time {now} is before {not_before}",
        "intermediate-expired": "x509: certificate has expired or is not yet valid: current time {now} is after "
        "{not_after}",
        "intermediate-not-yet-valid": "x509: certificate has expired or is not yet valid: current time {now} is "
        "before {not_before}",
        "root-expired": "x509: certificate has expired or is not yet valid: current time {now} is after {not_after}",
        "weak-signature": _GO_UNKNOWN + ' (possibly because of "x509: cannot verify signature: insecure algorithm '
        '{go_algorithm} (temporarily override with GODEBUG=x509sha1=1)" while trying to verify candidate '
        'authority certificate "{issuer_cn}")',
        "not-ca": _GO_UNKNOWN + ' (possibly because of "x509: invalid signature: parent certificate cannot sign '
        'this kind of certificate" while trying to verify candidate authority certificate "{issuer_cn}")',
        "issuer-no-certsign": _GO_UNKNOWN + ' (possibly because of "x509: invalid signature: parent certificate '
        'cannot sign this kind of certificate" while trying to verify candidate authority certificate '
        '"{issuer_cn}")',
        "eku": "x509: certificate specifies an incompatible key usage",
        "critical-extension": "x509: unhandled critical extension",
        "hostname": "x509: certificate is valid for {names}, not {host}",
        "hostname-cn-only": "x509: certificate relies on legacy Common Name field, use SANs instead",
        "hostname-ip": "x509: certificate is valid for {ips}, not {host}",
        "hostname-ip-none": "x509: cannot validate certificate for {host} because it doesn't contain any IP SANs",
        "too-large": "tls: handshake message of length {size} bytes exceeds maximum of 65536 bytes",
        "handshake": "remote error: tls: handshake failure",
        "client-certificate": "remote error: tls: certificate required",
        "not-tls": "tls: first record does not look like a TLS handshake",
        "timeout": "dial tcp {host}:{port}: i/o timeout",
        "connect": "dial tcp {host}:{port}: connect: connection refused",
        "resolve": "dial tcp: lookup {host}: no such host",
        "path-length": "x509: too many intermediates for path length constraint",
        "name-constraints": "x509: a root or intermediate certificate is not authorized to sign for this name: {go_nc}",
        "ca-eku": "x509: certificate specifies an incompatible key usage",
        # tls.DialWithDialer with a Dialer timeout; net/http's Transport says "net/http: TLS handshake timeout"
        "handshake-timeout": "context deadline exceeded",
    },
    # crypto/x509 Certificate.Verify: checkChainForKeyUsage walks the whole chain (an intermediate's EKU
    # without serverAuth or any fails); isValid checks pathLenConstraint and name constraints. Partial
    # wildcards never match (matchHostnames: the leftmost label must be exactly '*'). Ed25519 since Go 1.13.
    # The AKI is a hint only (CertPool.findPotentialParents). A trailing dot is removed from both sides
    # (VerifyHostname). Negative serials: accepted by Go 1.19 here; Go 1.23+ refuses to parse them
    # (GODEBUG x509negativeserial=1 restores).
    ca_eku_chained=True,
    leaf_ca_rejected=False,
    partial_wildcards=False,
    ed25519=True,
    aki_must_match=False,
    trailing_dot=True,
    negative_serial=True,
    max_handshake_bytes=65_536,  # crypto/tls maxHandshake: a larger Certificate message is refused
    notes=("a Certificate message over 65,536 bytes is refused (crypto/tls maxHandshake; not configurable)",),
)

_NET = "net::"


def _chrome_messages(prefix: str) -> dict[str, str]:
    authority = prefix + "ERR_CERT_AUTHORITY_INVALID"
    date = prefix + "ERR_CERT_DATE_INVALID"
    name = prefix + "ERR_CERT_COMMON_NAME_INVALID"
    invalid = prefix + "ERR_CERT_INVALID"
    return {
        "issuer-unknown-leaf": authority,
        "issuer-unknown": authority,
        "root-untrusted": authority,
        "self-signed": authority,
        "expired": date,
        "not-yet-valid": date,
        "intermediate-expired": date,
        "intermediate-not-yet-valid": date,
        "hostname": name,
        "hostname-ip": name,
        "hostname-cn-only": name,
        "weak-signature": invalid,
        "eku": invalid,
        "not-ca": invalid,
        "issuer-no-certsign": invalid,
        "weak-key-leaf": prefix + "ERR_CERT_WEAK_KEY",
        "weak-key-ca": prefix + "ERR_CERT_WEAK_KEY",
        "validity-too-long": prefix + "ERR_CERT_VALIDITY_TOO_LONG",
        "ct-required": prefix + "ERR_CERTIFICATE_TRANSPARENCY_REQUIRED",
        "too-large": prefix + "ERR_SSL_PROTOCOL_ERROR",
        "handshake": prefix + "ERR_SSL_PROTOCOL_ERROR",
        "client-certificate": prefix + "ERR_BAD_SSL_CLIENT_AUTH_CERT",
        "not-tls": prefix + "ERR_SSL_PROTOCOL_ERROR",
        "timeout": prefix + "ERR_TIMED_OUT",
        "connect": prefix + "ERR_CONNECTION_REFUSED",
        "resolve": prefix + "ERR_NAME_NOT_RESOLVED",
        "path-length": invalid,
        "name-constraints": invalid,
        "ca-eku": invalid,
        "critical-extension": invalid,  # kUnconsumedCriticalExtension -> CERT_STATUS_INVALID
        "ed25519": prefix + "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
        "handshake-timeout": prefix + "ERR_TIMED_OUT",
    }


# Chromium's MapCertStatusToNetError: the first status bit in this order decides the error page.
_CHROME_ORDER = (
    "ed25519",  # the handshake fails before any certificate is verified
    "weak-signature",
    "eku",
    "ca-eku",
    "path-length",
    "name-constraints",
    "not-ca",
    "issuer-no-certsign",
    "critical-extension",
    "issuer-unknown-leaf",
    "issuer-unknown",
    "root-untrusted",
    "self-signed",
    *_HOSTNAME,
    "ct-required",  # CERT_STATUS_CERTIFICATE_TRANSPARENCY_REQUIRED: after the name, before the weak key and dates
    "weak-key-leaf",
    "weak-key-ca",
    "root-expired",
    "intermediate-expired",
    "intermediate-not-yet-valid",
    "expired",
    "not-yet-valid",
    "validity-too-long",
)

CHROME = ClientProfile(
    id="chrome",
    name="Chrome / Edge",
    covers="Chromium, Edge, Brave, Opera, Electron's renderer, Android WebView",
    describes="Chromium 156 (Chrome Root Store, built-in verifier)",
    engine="chrome",
    stores=("chrome", "mozilla"),
    store_label="the Chrome Root Store, plus roots the user or OS added (NSS db on Linux, OS store elsewhere)",
    trust_howto=(
        "Linux: certutil -A -d sql:$HOME/.pki/nssdb -t 'C,,' -n myca -i ca.pem; Windows/macOS: import into the OS "
        "store (certmgr / Keychain Access, 'Always Trust'); managed: the CACertificates enterprise policy"
    ),
    aia=True,
    cn_fallback=False,
    hostname_during_verify=True,
    min_rsa_leaf=1024,
    min_rsa_ca=1024,
    sha1="reject",
    public_only_rules=True,
    enforces_ct=True,
    revocation="CRLSet only (no online OCSP/CRL checks, except EV in some versions)",
    revocation_checks="crlset",
    order=_CHROME_ORDER,
    messages=_chrome_messages(_NET),
    notes=(
        "the page shows NET::ERR_…; the DevTools/console and Electron show net::ERR_…",
        "398-day validity, CT and the Chrome Root Store rules apply only to publicly trusted chains",
    ),
    expiry_checks_anchor=False,
    # Chromium's verifier (net/cert/pki, path_builder + verify_certificate_chain): EKU chaining on intermediates,
    # pathLenConstraint and name constraints enforced; a CA:TRUE leaf accepted; partial wildcards rejected
    # (VerifyHostname: '*' must be the whole leftmost label); AKI only orders candidates. Chrome does not offer
    # ed25519 in its signature_algorithms, so a server with only an Ed25519 certificate ends the handshake
    # with handshake_failure (ERR_SSL_VERSION_OR_CIPHER_MISMATCH). A trailing dot is accepted (the URL host is
    # canonicalised). Negative serials are accepted.
    ca_eku_chained=True,
    leaf_ca_rejected=False,
    partial_wildcards=False,
    ed25519=False,
    aki_must_match=False,
    trailing_dot=True,
    negative_serial=True,
)

FIREFOX = ClientProfile(
    id="firefox",
    name="Firefox",
    covers="Firefox, Thunderbird, Tor Browser (NSS / mozilla::pkix)",
    describes="Firefox 153 ESR (mozilla::pkix), checked by the conformance suite",
    engine="firefox",
    stores=("mozilla",),
    store_label="Mozilla's root store built into NSS (plus enterprise roots when security.enterprise_roots.enabled)",
    trust_howto=(
        "Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import, or "
        "security.enterprise_roots.enabled=true to use the OS store; policies.json Certificates.Install"
    ),
    aia=False,  # it preloads the public intermediates from CCADB instead; for private CAs: no AIA
    cn_fallback=False,
    hostname_during_verify=True,
    min_rsa_leaf=1024,
    min_rsa_ca=1024,
    sha1="reject",
    public_only_rules=False,
    # Firefox 135+ enforces Mozilla's CT policy (certdoctor.ct) for roots of Mozilla's Root CA Program only
    # (security.pki.certificate_transparency.mode=2; a root added locally, as the lab's is, is exempt), so real
    # Firefox cannot be the oracle for the lab's CT scenarios: it accepts them all, like Chromium.
    enforces_ct=True,
    revocation="stapled OCSP responses validated (revoked or invalid: rejected); OCSP must-staple enforced; "
    "CRLite for public certificates; no OCSP fetching for domain-validated certificates (Firefox 137+)",
    revocation_checks="staple",
    must_staple=True,
    # mozilla::pkix (pkixbuild.cpp BuildForward) finds a path first: no path is a trust error whatever else is
    # wrong. On the path, an issuer's key usage is checked before its basicConstraints (pkixcheck.cpp
    # CheckIssuerIndependentProperties: RFC 5280 4.2.1.3 before 4.2.1.9), then signatures and the issuers'
    # dates. The leaf's own errors are deferred until a path is found. Of the overridable errors, Firefox
    # reports trust, then the name, then the leaf's dates (SSLServerCertVerification.cpp
    # DetermineCertOverrideErrors): a wrong name beats an expired leaf, not an expired intermediate (which is
    # not overridable). Checked with real Firefox 153 ESR on the lab, also with a wrong name on each scenario.
    order=(
        "ed25519",
        "critical-extension",  # BackCert::Init refuses the certificate before any path is built
        "issuer-unknown-leaf",
        "issuer-unknown",
        "root-untrusted",
        "self-signed",
        "issuer-no-certsign",
        "not-ca",
        "path-length",
        "name-constraints",
        "ca-eku",
        "leaf-ca",
        "weak-signature",
        "weak-key-leaf",
        "weak-key-ca",
        "root-expired",
        "intermediate-expired",
        "intermediate-not-yet-valid",
        "eku",
        "revoked",
        "staple-invalid",
        "must-staple",
        # CertVerifier::VerifyCert checks the CT policy once a path is built, before the name is checked
        # (VerifySSLServerCert); not checked with real Firefox (it enforces CT for built-in roots only).
        "ct-required",
        *_HOSTNAME,
        "expired",
        "not-yet-valid",
    ),
    messages={
        "ct-required": "MOZILLA_PKIX_ERROR_INSUFFICIENT_CERTIFICATE_TRANSPARENCY",
        "revoked": "SEC_ERROR_REVOKED_CERTIFICATE",
        "staple-invalid": "SEC_ERROR_OCSP_{ocsp_code}",
        "must-staple": "MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING",
        "issuer-unknown-leaf": "SEC_ERROR_UNKNOWN_ISSUER",
        "issuer-unknown": "SEC_ERROR_UNKNOWN_ISSUER",
        "root-untrusted": "SEC_ERROR_UNKNOWN_ISSUER",
        "self-signed": "MOZILLA_PKIX_ERROR_SELF_SIGNED_CERT",
        "expired": "SEC_ERROR_EXPIRED_CERTIFICATE",
        "not-yet-valid": "MOZILLA_PKIX_ERROR_NOT_YET_VALID_CERTIFICATE",
        "intermediate-expired": "SEC_ERROR_EXPIRED_ISSUER_CERTIFICATE",
        "intermediate-not-yet-valid": "MOZILLA_PKIX_ERROR_NOT_YET_VALID_ISSUER_CERTIFICATE",
        "root-expired": "SEC_ERROR_EXPIRED_ISSUER_CERTIFICATE",
        "weak-signature": "SEC_ERROR_CERT_SIGNATURE_ALGORITHM_DISABLED",
        "weak-key-leaf": "MOZILLA_PKIX_ERROR_INADEQUATE_KEY_SIZE",
        "weak-key-ca": "MOZILLA_PKIX_ERROR_INADEQUATE_KEY_SIZE",
        "eku": "SEC_ERROR_INADEQUATE_CERT_TYPE",
        "not-ca": "SEC_ERROR_CA_CERT_INVALID",
        "issuer-no-certsign": "SEC_ERROR_INADEQUATE_KEY_USAGE",
        "hostname": "SSL_ERROR_BAD_CERT_DOMAIN",
        "hostname-ip": "SSL_ERROR_BAD_CERT_DOMAIN",
        "hostname-cn-only": "SSL_ERROR_BAD_CERT_DOMAIN",
        # NSS refuses any handshake message over MAX_HANDSHAKE_MSG_LEN (0x1ffff bytes) with this code (ssl3con.c)
        "too-large": "SSL_ERROR_RX_MALFORMED_HANDSHAKE",
        "handshake": "SSL_ERROR_NO_CYPHER_OVERLAP",
        "client-certificate": "SSL_ERROR_RX_CERTIFICATE_REQUIRED_ALERT",
        "not-tls": "SSL_ERROR_RX_RECORD_TOO_LONG",
        "timeout": "The connection has timed out",
        "connect": "Unable to connect",
        "resolve": "Hmm. We're having trouble finding that site.",
        "path-length": "SEC_ERROR_PATH_LEN_CONSTRAINT_INVALID",
        "name-constraints": "SEC_ERROR_CERT_NOT_IN_NAME_SPACE",
        "ca-eku": "SEC_ERROR_INADEQUATE_CERT_TYPE",
        "leaf-ca": "MOZILLA_PKIX_ERROR_CA_CERT_USED_AS_END_ENTITY",
        "critical-extension": "SEC_ERROR_UNKNOWN_CRITICAL_EXTENSION",
        "ed25519": "SSL_ERROR_NO_CYPHER_OVERLAP",
        "handshake-timeout": "The connection has timed out",
    },
    max_handshake_bytes=131_071,
    # mozilla::pkix: EKU chaining and pathLenConstraint/name constraints enforced (pkixcheck.cpp,
    # pkixnames.cpp); a CA:TRUE end entity is refused (CA_CERT_USED_AS_END_ENTITY, observed here); a wildcard
    # must be the whole leftmost label; the AKI is ignored; a trailing dot and a negative serial are accepted;
    # a server with only an Ed25519 certificate gets SSL_ERROR_NO_CYPHER_OVERLAP. All observed on the lab
    # scenarios with Firefox ESR 153 (headless, WebDriver BiDi).
    ca_eku_chained=True,
    leaf_ca_rejected=True,
    partial_wildcards=False,
    ed25519=False,
    aki_must_match=False,
    trailing_dot=True,
    negative_serial=True,
    notes=("Firefox knows the public intermediates (CCADB preload), so a missing public intermediate often works",),
)

SAFARI = ClientProfile(
    id="safari",
    name="Safari / Apple",
    covers="Safari, iOS/macOS apps using URLSession, curl on macOS (Secure Transport builds)",
    describes="macOS 14 / iOS 17 trust evaluation (SecTrust); not run by the conformance suite",
    engine="safari",
    stores=("mozilla",),
    store_label="Apple's root store (approximated here by Mozilla's; they differ in a few roots)",
    trust_howto=(
        "macOS: Keychain Access > System > import, then Trust > 'Always Trust' (or security add-trusted-cert -d "
        "-r trustRoot -k /Library/Keychains/System.keychain ca.pem); iOS: install the profile, then Settings > "
        "General > About > Certificate Trust Settings"
    ),
    aia=True,
    cn_fallback=False,
    hostname_during_verify=True,
    min_rsa_leaf=2048,
    min_rsa_ca=2048,
    sha1="reject",
    public_only_rules=True,
    enforces_ct=True,
    revocation="OCSP for EV/some public certificates (soft-fail); no CRL",
    order=(
        "ed25519",
        "weak-signature",
        "weak-key-leaf",
        "weak-key-ca",
        "eku",
        "ca-eku",
        "not-ca",
        "issuer-no-certsign",
        "path-length",
        "name-constraints",
        "critical-extension",
        "issuer-unknown-leaf",
        "issuer-unknown",
        "root-untrusted",
        "self-signed",
        *_HOSTNAME,
        "root-expired",
        "intermediate-expired",
        "intermediate-not-yet-valid",
        "expired",
        "not-yet-valid",
        "validity-too-long",
        "ct-required",  # SecTrust evaluates the CT policy once the chain is otherwise trusted
    ),
    messages={
        **{
            k: "The certificate for this server is invalid. You might be connecting to a server that is pretending "
            "to be “{host}” which could put your confidential information at risk."
            for k in (
                "issuer-unknown-leaf",
                "issuer-unknown",
                "root-untrusted",
                "self-signed",
                "weak-signature",
                "weak-key-leaf",
                "weak-key-ca",
                "eku",
                "not-ca",
                "issuer-no-certsign",
                "validity-too-long",
                "ct-required",
                "path-length",
                "name-constraints",
                "ca-eku",
                # SecPolicyServer's CriticalExtensions check (errSecUnknownCriticalExtensionFlag): documented, not
                # observed (no Apple client here); URLSession words every trust failure this way
                "critical-extension",
                "hostname",
                "hostname-ip",
                "hostname-cn-only",
            )
        },
        "expired": "The certificate for this server has expired.",
        "intermediate-expired": "The certificate for this server has expired.",
        "root-expired": "The certificate for this server has expired.",
        "not-yet-valid": "The certificate for this server is not yet valid.",
        "intermediate-not-yet-valid": "The certificate for this server is not yet valid.",
        "too-large": "An SSL error has occurred and a secure connection to the server cannot be made.",
        "handshake": "An SSL error has occurred and a secure connection to the server cannot be made.",
        "client-certificate": "An SSL error has occurred and a secure connection to the server cannot be made.",
        "not-tls": "An SSL error has occurred and a secure connection to the server cannot be made.",
        "timeout": "The request timed out.",
        "connect": "Could not connect to the server.",
        "resolve": "A server with the specified hostname could not be found.",
        "ed25519": "An SSL error has occurred and a secure connection to the server cannot be made.",
        "handshake-timeout": "The request timed out.",
    },
    # SecTrust (SecPolicyServer): EKU checked on every certificate of the chain, basic and name constraints
    # enforced, wildcards only as the whole leftmost label; Apple's TLS stack has no Ed25519 (not observed).
    ca_eku_chained=True,
    leaf_ca_rejected=False,
    partial_wildcards=False,
    ed25519=False,
    aki_must_match=False,
    trailing_dot=True,
    negative_serial=True,
    notes=(
        "Apple requires RSA >= 2048 and SHA-2 for every TLS certificate, private CAs included (iOS 13+)",
        "Safari's page says 'This Connection Is Not Private'; URLSession apps get NSURLErrorServerCertificate…",
    ),
)

_DOTNET = "System.Security.Authentication.AuthenticationException: "
_CHAIN = _DOTNET + "The remote certificate is invalid because of errors in the certificate chain: "
_NAME_MISMATCH = (
    _DOTNET + "The remote certificate is invalid according to the validation procedure: RemoteCertificateNameMismatch"
)

DOTNET = ClientProfile(
    id="dotnet",
    name=".NET (HttpClient)",
    covers="HttpClient/SslStream, PowerShell Invoke-WebRequest, SqlClient (TrustServerCertificate=False)",
    describes=".NET 8 X509Chain (Windows CryptoAPI; on Linux the same status names over OpenSSL); "
    "not run by the conformance suite",
    engine="dotnet",
    stores=("microsoft", "system"),
    store_label="the Windows root store (Linux: the system bundle)",
    trust_howto=(
        "Windows: Import-Certificate -FilePath ca.cer -CertStoreLocation Cert:\\LocalMachine\\Root; Linux: copy to "
        "/usr/local/share/ca-certificates/ and run update-ca-certificates"
    ),
    aia=True,
    cn_fallback=True,
    hostname_during_verify=False,
    min_rsa_leaf=1024,
    min_rsa_ca=1024,
    sha1="accept",
    public_only_rules=False,
    revocation="none by default in HttpClient (CheckCertificateRevocationList=false); with it on, online OCSP/CRL "
    "and RevocationStatusUnknown/OfflineRevocation fail the connection",
    order=(
        "issuer-unknown-leaf",
        "issuer-unknown",
        "root-untrusted",
        "self-signed",
        "root-expired",
        "intermediate-expired",
        "intermediate-not-yet-valid",
        "expired",
        "not-yet-valid",
        "ed25519",
        "not-ca",
        "path-length",
        "issuer-no-certsign",
        "name-constraints",
        "critical-extension",
        "eku",
        "ca-eku",
        *_HOSTNAME,
    ),
    messages={
        "issuer-unknown-leaf": _CHAIN + "PartialChain",
        "issuer-unknown": _CHAIN + "PartialChain",
        "root-untrusted": _CHAIN + "UntrustedRoot",
        "self-signed": _CHAIN + "UntrustedRoot",
        "expired": _CHAIN + "NotTimeValid",
        "not-yet-valid": _CHAIN + "NotTimeValid",
        "intermediate-expired": _CHAIN + "NotTimeValid",
        "intermediate-not-yet-valid": _CHAIN + "NotTimeValid",
        "root-expired": _CHAIN + "NotTimeValid",
        "not-ca": _CHAIN + "InvalidBasicConstraints",
        "issuer-no-certsign": _CHAIN + "NotValidForUsage",
        "eku": _CHAIN + "NotValidForUsage",
        "hostname": _NAME_MISMATCH,
        "hostname-ip": _NAME_MISMATCH,
        "hostname-cn-only": _NAME_MISMATCH,
        "too-large": "System.IO.IOException: Received an unexpected EOF or 0 bytes from the transport stream.",
        "handshake": _DOTNET + "Authentication failed because the remote party sent a TLS alert: 'HandshakeFailure'.",
        "client-certificate": _DOTNET
        + "Authentication failed because the remote party sent a TLS alert: 'CertificateRequired'.",
        "not-tls": _DOTNET + "Cannot determine the frame size or a corrupted frame was received.",
        "timeout": "System.Threading.Tasks.TaskCanceledException: The request was canceled due to the configured "
        "HttpClient.Timeout of 100 seconds elapsing.",
        "connect": "System.Net.Http.HttpRequestException: Connection refused ({host}:{port})",
        "resolve": "System.Net.Http.HttpRequestException: Name or service not known ({host}:{port})",
        "path-length": _CHAIN + "InvalidBasicConstraints",
        "name-constraints": _CHAIN + "HasNotPermittedNameConstraint",
        # X509ChainStatusFlags.HasNotSupportedCriticalExtension (on Linux mapped from OpenSSL's
        # X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION): documented, not observed (no .NET here)
        "critical-extension": _CHAIN + "HasNotSupportedCriticalExtension",
        "ca-eku": _CHAIN + "NotValidForUsage",
        "ed25519": _DOTNET + "Authentication failed because the remote party sent a TLS alert: 'HandshakeFailure'.",
        "handshake-timeout": "System.Threading.Tasks.TaskCanceledException: The request was canceled due to the "
        "configured HttpClient.Timeout of 100 seconds elapsing.",
    },
    # X509Chain (CryptoAPI on Windows): X509ChainStatusFlags NotValidForUsage for EKU chaining,
    # InvalidBasicConstraints for path length, HasNotPermittedNameConstraint; SChannel has no Ed25519
    # certificates. Not run here: these facts are from the documentation, not observed.
    ca_eku_chained=True,
    leaf_ca_rejected=False,
    partial_wildcards=False,
    ed25519=False,
    aki_must_match=False,
    trailing_dot=True,
    negative_serial=True,
)

PROFILES: tuple[ClientProfile, ...] = (CHROME, FIREFOX, SAFARI, CURL, PYTHON, NODE, JAVA, GO, DOTNET)


# LDAP resultCodes a StartTLS request is refused with (RFC 4511 §4.1.9, Appendix A): python-ldap's exception
# (its names follow libldap's LDAP_* constants), libldap's ldap_err2string() text (as ldapsearch prints it: "Protocol
# error (2)") and the NamingException JNDI raises. Other codes: python-ldap's base LDAPError and JNDI's
# NamingException, with the code itself as the description.
_LDAP_CODES: dict[str, tuple[str, str, str]] = {
    "1": ("OPERATIONS_ERROR", "Operations error", "NamingException"),
    "2": ("PROTOCOL_ERROR", "Protocol error", "CommunicationException"),
    "51": ("BUSY", "Server is busy", "ServiceUnavailableException"),
    "52": ("UNAVAILABLE", "Server is unavailable", "ServiceUnavailableException"),
    "53": ("UNWILLING_TO_PERFORM", "Server is unwilling to perform", "OperationNotSupportedException"),
    "80": ("OTHER", "Other (e.g., implementation specific) error", "NamingException"),
}


def starttls_values(protocol: str, code: str, reply: str) -> dict[str, str]:
    """The placeholders a client's STARTTLS message of ``protocol`` uses beyond {code} and {reply}: for LDAP
    ``ldap_python``, ``ldap_desc``, ``ldap_info``, ``ldap_jndi``, ``ldap_jndi_info`` (from the resultCode and
    the diagnosticMessage, which ``reply`` quotes last: "resultCode 2 (protocolError), 'unsupported extended
    operation'"). Empty for the other protocols."""
    if protocol == "ldap":
        python, desc, jndi = _LDAP_CODES.get(code, ("LDAPError", f"result code {code}", "NamingException"))
        found = re.search(r", '(.*)'$", reply) or re.search(r', "(.*)"$', reply)
        diagnostic = found.group(1) if found else ""
        return {
            "ldap_python": python,
            "ldap_desc": desc,
            "ldap_info": f", 'info': '{diagnostic}'" if diagnostic else "",
            "ldap_jndi": jndi,
            "ldap_jndi_info": f" - {diagnostic}" if diagnostic else "",
        }
    return {}
