"""The error texts certdoctor recognises, and the causes behind them. Pure data.

A :class:`Signature` is one message a client prints (as a case-insensitive regular expression), the
client(s) that print it, its error family, what it means, and its causes ranked by how often they are the
reason. Every signature carries at least one real example text; the test suite checks that each example is
recognised as its own signature first. A :class:`Cause` says how to tell it apart from the others and
how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Cause:
    id: str
    title: str
    tell_apart: str
    fix: str


@dataclass(frozen=True)
class Signature:
    id: str
    client: str  # who prints it, in words
    clients: tuple[str, ...]  # certdoctor client ids that print it
    pattern: str
    family: str  # see profiles.FAMILIES
    meaning: str
    causes: tuple[str, ...]
    examples: tuple[str, ...]
    specificity: float = 0.0  # wrappers (curl (60), CERTIFICATE_VERIFY_FAILED) rank below what they wrap
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern, re.IGNORECASE))


_C = Cause
CAUSES: dict[str, Cause] = {
    c.id: c
    for c in (
        _C(
            "missing-intermediate",
            "The server does not send its intermediate certificate(s)",
            "certdoctor check reports missing-intermediate; `openssl s_client -showcerts` lists a single "
            "certificate. Typical sign: the site works in Chrome/Edge/Safari (they fetch the intermediate via "
            "AIA) but fails in curl, Python, Node, Java and Go.",
            "Serve the full chain (leaf, then intermediates): `certdoctor fix HOST` writes fullchain.pem and the "
            "server configuration line to use it.",
        ),
        _C(
            "private-ca",
            "The certificate comes from a private or internal CA that this client does not trust",
            "certdoctor check without --ca-file reports untrusted-root, and passes with --ca-file your-ca.pem. "
            "Only clients that were given your CA accept it.",
            "Add the CA to that client's own store (each client has its own: see `certdoctor check HOST` under "
            "clients for the exact command), or use a publicly trusted certificate.",
        ),
        _C(
            "self-signed",
            "The server uses a self-signed certificate",
            "certdoctor check reports self-signed: the certificate's issuer is itself.",
            "Use a certificate from a public CA (e.g. ACME/Let's Encrypt) or from your private CA, and trust that CA "
            "in the clients.",
        ),
        _C(
            "tls-interception",
            "A TLS-inspecting proxy, firewall or antivirus re-signs the connection with its own CA",
            "Compare the issuer your client sees (`openssl s_client -connect HOST:443 -showcerts` from the failing "
            "machine) with what certdoctor sees from a clean network: a corporate CA name (Zscaler, Netskope, "
            "Fortinet, Palo Alto, Kaspersky, Avast…) means interception.",
            "Add the proxy's root CA to the client's store (the same way as a private CA), or exempt the host from "
            "inspection.",
        ),
        _C(
            "outdated-store",
            "The client's CA bundle is out of date and lacks a newer root",
            "certdoctor check says valid against current stores, yet one old client (old Java, old certifi, an "
            "old OS or Docker image) fails.",
            "Update the client's CA bundle (ca-certificates, certifi, the JDK) or the base image.",
        ),
        _C(
            "untrusted-root",
            "The chain ends at a root that is not in public trust stores",
            "certdoctor check reports untrusted-root and names the root; the stores section lists which stores "
            "trust it.",
            "Get a certificate from a publicly trusted CA, or distribute the root to every client.",
        ),
        _C(
            "expired",
            "The server certificate has expired",
            "certdoctor check reports expired with the notAfter date.",
            "Renew the certificate and reload the server; then check each address (load balancers keep old copies).",
        ),
        _C(
            "intermediate-expired",
            "An intermediate certificate in the chain has expired",
            "certdoctor check reports intermediate-expired: the leaf is valid but the chain file carries an old "
            "intermediate.",
            "Replace the intermediate with the CA's current one: `certdoctor fix` rebuilds the chain.",
        ),
        _C(
            "not-yet-valid",
            "The certificate is not valid yet",
            "certdoctor check reports not-yet-valid; the notBefore date is in the future.",
            "Wait until notBefore, or re-issue; check the issuing system's clock.",
        ),
        _C(
            "client-clock",
            "The client machine's clock is wrong",
            "certdoctor check from another machine says the dates are fine; `date -u` on the failing machine is "
            "far off.",
            "Fix the clock (NTP). Devices without a battery-backed clock often start in 1970.",
        ),
        _C(
            "hostname-mismatch",
            "The certificate does not cover the name the client connected to",
            "certdoctor check reports hostname-mismatch and lists the certificate's names.",
            "Re-issue the certificate with the name as a subjectAltName, or connect with a name it covers.",
        ),
        _C(
            "no-san",
            "The name is only in the Common Name; the certificate has no subjectAltName",
            "certdoctor check reports hostname-mismatch saying the certificate has no subjectAltName (or, with no "
            "name to check, no-subject-alt-name); Go and browsers refuse it, curl, Python, Node and Java fall back "
            "to the Common Name.",
            "Re-issue with the name in the subjectAltName extension.",
        ),
        _C(
            "leaf-is-ca",
            "The server certificate is a CA certificate (basicConstraints CA:TRUE)",
            "certdoctor check reports leaf-is-ca; Firefox refuses it (MOZILLA_PKIX_ERROR_CA_CERT_USED_AS_END_ENTITY), "
            "the other clients accept it.",
            "Re-issue the server certificate with basicConstraints CA:FALSE (and no keyCertSign key usage).",
        ),
        _C(
            "trailing-dot",
            "The client asks for the name with a trailing dot (an absolute name, 'api.example.com.')",
            "certdoctor check NAME. (with the dot) reports hostname-trailing-dot; Python's ssl compares the dotted "
            "name literally and refuses, curl, Node, Go, Java and browsers strip the dot.",
            "Configure the client with the name without the trailing dot.",
        ),
        _C(
            "wrong-certificate",
            "The server hands out another certificate: wrong virtual host, default certificate or missing SNI",
            "certdoctor check --no-sni shows a different certificate than with SNI; or several addresses serve "
            "different certificates (endpoints-differ).",
            "Configure the certificate on the virtual host/listener that answers this name, and on every node.",
        ),
        _C(
            "weak-signature",
            "A certificate is signed with SHA-1 (or MD5)",
            "certdoctor check reports weak-signature with the algorithm.",
            "Re-issue with SHA-256.",
        ),
        _C(
            "weak-key",
            "A key is too small (RSA under 2048 bits)",
            "certdoctor check reports weak-key with the size.",
            "Re-issue with RSA 2048+ or ECDSA P-256.",
        ),
        _C(
            "missing-server-auth-eku",
            "The certificate is not allowed for TLS servers (extendedKeyUsage lacks serverAuth)",
            "certdoctor check reports missing-server-auth-eku.",
            "Re-issue with the serverAuth extended key usage (a TLS server template).",
        ),
        _C(
            "issuer-not-ca",
            "A certificate in the chain is not a CA but was used as one",
            "certdoctor check reports issuer-not-ca (basicConstraints CA:FALSE or keyUsage without keyCertSign).",
            "Sign the server certificate with a real CA certificate; do not put a server certificate in the middle.",
        ),
        _C(
            "revoked",
            "The certificate has been revoked by its CA",
            "certdoctor check reports revoked with the date and reason.",
            "Get a new certificate (and a new key if the reason is key compromise).",
        ),
        _C(
            "ocsp-invalid",
            "An OCSP response (stapled by the server, or from the CA's responder) is invalid or out of date",
            "certdoctor check reports ocsp-invalid or ocsp-stale with the reason (signature, responder, certificate "
            "ID, dates); `openssl s_client -status` shows the stapled response.",
            "Reload the server so it fetches a fresh staple for the current certificate; if the CA's responder is "
            "at fault, report it to the CA.",
        ),
        _C(
            "revocation-unreachable",
            "The client could not check revocation (OCSP responder or CRL unreachable)",
            "The error mentions revocation status; the client machine cannot reach the OCSP/CRL URLs "
            "(firewall, proxy).",
            "Allow the client to reach the CA's OCSP/CRL URLs, or enable OCSP stapling on the server.",
        ),
        _C(
            "validity-too-long",
            "The certificate is valid for longer than browsers allow (398 days)",
            "certdoctor check reports validity-too-long.",
            "Re-issue with a validity of at most 398 days (browsers enforce it for public CAs).",
        ),
        _C(
            "ct-missing",
            "The certificate is not logged in Certificate Transparency, or with too few logs",
            "certdoctor check reports ct-sct-missing or ct-policy-not-met (naming the failing Chrome/Firefox/Apple "
            "rule); with --ct-log-list, ct-sct-invalid-signature for an SCT that does not verify.",
            "Ask the CA for a certificate with embedded SCTs from enough logs of distinct operators (every public CA "
            "does this by default).",
        ),
        _C(
            "not-tls",
            "The port does not speak TLS (plain HTTP, another protocol, or STARTTLS)",
            "certdoctor check reports handshake-failed saying the server did not speak TLS; `curl http://HOST:PORT` "
            "answers.",
            "Use the TLS port (443), or https:// only where the server listens with TLS.",
        ),
        _C(
            "starttls",
            "A mail server (SMTP, IMAP, POP3) does not upgrade the connection to TLS: it does not offer STARTTLS/STLS, "
            "refuses it, is not the protocol the client speaks on that port, or never finishes its greeting",
            "certdoctor check smtp://HOST:PORT (imap://, pop3://, or --starttls) reports starttls-refused with the "
            "server's greeting and reply code, starttls-wrong-protocol with what it answered instead, or "
            "starttls-timeout; `openssl s_client -starttls smtp -connect HOST:PORT` shows the same exchange.",
            "Enable TLS on that listener (Postfix: smtpd_tls_security_level = may and smtpd_tls_chain_files; "
            "Dovecot: ssl = yes with ssl_cert/ssl_key; a 454 reply usually means unreadable certificate or key "
            "files: the server's log says which), or point the client at the port that matches: 587 or 25 with "
            "STARTTLS, 465 with TLS from the first byte (IMAP 143 / 993, POP3 110 / 995).",
        ),
        _C(
            "starttls-other",
            "A directory, chat, news or Sieve server (LDAP, XMPP, ManageSieve, NNTP, IRC) does not upgrade the "
            "connection to TLS, or the client cannot speak the protocol's upgrade at all",
            "certdoctor check ldap://HOST (xmpp://, sieve://, nntp://, irc://) reports starttls-refused with what the "
            "server said (an LDAP resultCode and diagnosticMessage, the capabilities it listed, a 580 or 691 reply). "
            "curl speaks none of XMPP, ManageSieve, NNTP and IRC, and its LDAP has no StartTLS: it cannot test "
            "them; ldapsearch -ZZ and openssl s_client -starttls PROTO can.",
            "Give the listener a certificate and key (slapd: TLSCertificateFile and TLSCertificateKeyFile; INN: "
            "tlscertfile and tlskeyfile in inn.conf; Prosody: a certificate for the VirtualHost; Dovecot: ssl = "
            "yes), then reload, or use the port with TLS from the first byte (636, 5223, 563, 6697).",
        ),
        _C(
            "database-tls",
            "A database server (PostgreSQL, MySQL, MariaDB) does not upgrade the connection to TLS, or the client "
            "cannot speak the database's protocol at all",
            "certdoctor check postgres://HOST:5432 (mysql://HOST:3306) reports starttls-refused with what the server "
            "said: PostgreSQL answers N to SSLRequest when ssl = off; MySQL and MariaDB leave CLIENT_SSL out of their "
            "greeting when they have no certificate. curl has no postgres:// or mysql:// support: it cannot test "
            "them; psql with sslmode=verify-full and mariadb --ssl-verify-server-cert can.",
            "PostgreSQL: ssl = on with ssl_cert_file (the chain, leaf first) and ssl_key_file, then reload. MySQL and "
            "MariaDB: ssl_cert and ssl_key in [mysqld], then restart (MySQL 8: ALTER INSTANCE RELOAD TLS).",
        ),
        _C(
            "protocol-mismatch",
            "Client and server share no TLS version or cipher suite",
            "certdoctor check reports handshake-failed with a protocol alert; `openssl s_client -tls1_2` and "
            "`-tls1_3` show which versions the server accepts.",
            "Enable TLS 1.2 and 1.3 with modern cipher suites on the server (or upgrade the client).",
        ),
        _C(
            "chain-too-large",
            "The server sends too many or too large certificates",
            "certdoctor check reports extra-cert or a chain-truncated/handshake error; the chain file carries "
            "unrelated certificates (a whole CA bundle).",
            "Serve only leaf + intermediates: `certdoctor fix` writes a minimal fullchain.pem.",
        ),
        _C(
            "client-cert-required",
            "The server wants a client certificate (mutual TLS) or rejected the one sent",
            "The alert comes from the server after the client's certificate step; certdoctor check of the server "
            "reports client-certificate-required with the CA names the server accepts (or, with --cert, "
            "client-certificate-rejected).",
            "Configure the client certificate and key, or ask the server operator which CA it expects.",
        ),
        _C(
            "ca-file-missing",
            "The CA file or directory the client is configured with does not exist or cannot be read",
            "The path in the message does not exist or is empty (`ls -l PATH`).",
            "Point the client at an existing bundle (e.g. /etc/ssl/certs/ca-certificates.crt) or install "
            "ca-certificates.",
        ),
        _C(
            "name-constraints",
            "A CA in the chain is not allowed to issue for this name (name constraints)",
            "certdoctor check reports name-constraints-violated.",
            "Use a certificate from a CA permitted to issue for this name.",
        ),
        _C(
            "unknown-critical-extension",
            "A certificate marks as critical an extension the client does not know (a private or very new one)",
            "certdoctor check reports unknown-critical-extension; `openssl x509 -noout -text` lists the extension "
            "by its bare OID with 'critical'. Every client refuses it (RFC 5280 §4.2), whatever the trust store.",
            "Re-issue the certificate without the critical marking on the private extension (or without it).",
        ),
        _C(
            "path-length",
            "The chain is longer than a CA's pathLenConstraint allows",
            "certdoctor check reports path-length-exceeded.",
            "Serve the chain the CA intends (often a cross-signed intermediate is wrong), or re-issue.",
        ),
        _C(
            "unreachable",
            "The client cannot reach the server: nothing answers, a firewall drops the packets, or the name does not "
            "resolve from there",
            "certdoctor check from the same machine reports connection-failed (timeout, refused or unresolvable); "
            "`nc -vz HOST PORT` shows the same.",
            "Check the address the name resolves to from the client, the firewall/security groups and that the "
            "service listens on that port.",
        ),
        _C(
            "kubeconfig-ca-mismatch",
            "The client trusts a CA with the same name but another key: the cluster was re-created, or the "
            "kubeconfig (context, certificate-authority-data) belongs to another cluster",
            "`kubectl config current-context` names another cluster, or the CA in the kubeconfig "
            "(`kubectl config view --raw --minify`) differs from the one the API server presents "
            "(`certdoctor check HOST:6443` shows its issuer); same name, different key.",
            "Switch to the right context, or fetch a fresh kubeconfig from the re-created cluster (e.g. "
            "/etc/kubernetes/admin.conf, `aws eks update-kubeconfig`, `gcloud container clusters get-credentials`).",
        ),
        _C(
            "ca-rekeyed",
            "A CA certificate with the right name but another key is in the chain or the trust store (a re-keyed "
            "CA, an old intermediate, a stale CA file)",
            "The certificate's Authority Key Identifier differs from the candidate issuer's Subject Key Identifier "
            "(`openssl x509 -noout -ext authorityKeyIdentifier,subjectKeyIdentifier`); certdoctor check from a "
            "clean client passes.",
            "Serve and trust the CA's current certificate (the one whose key signed the server certificate): "
            "`certdoctor fix HOST` rebuilds the chain; replace the stale CA file.",
        ),
        _C(
            "no-ca-bundle",
            "No CA bundle is configured: nothing to verify against (git's http.sslCAInfo unset and the system "
            "bundle missing)",
            "The message says `CAfile: none` (and `CApath: none`); `git config --show-origin --get-all "
            "http.sslCAInfo` is empty and /etc/ssl/certs/ca-certificates.crt does not exist (minimal images).",
            "Install the system bundle (`apt-get install ca-certificates`, `apk add ca-certificates`) or point git "
            "at one: `git config --global http.sslCAInfo /path/to/ca-bundle.pem`.",
        ),
        _C(
            "legacy-renegotiation",
            "The server does not support secure renegotiation (RFC 5746), which OpenSSL 3 requires",
            "`openssl s_client -connect HOST:443` prints 'Secure Renegotiation IS NOT supported'; OpenSSL 1.1 "
            "clients connect, OpenSSL 3 ones do not. Often an old appliance or TLS-inspecting middlebox.",
            "Upgrade or patch the server (or the middlebox). Stopgap on the client only: `Options = "
            "UnsafeLegacyServerConnect` in the OpenSSL configuration the client uses.",
        ),
        _C(
            "negative-serial",
            "A certificate has a negative serial number (an old or home-made CA)",
            "`openssl x509 -noout -serial` shows a serial whose first byte is 80 or above (the sign bit); Go "
            "1.23+ refuses it, other clients accept it.",
            "Re-issue with a positive random serial (the CA's software or config is at fault). Stopgap for Go: "
            "GODEBUG=x509negativeserial=1.",
        ),
        _C(
            "malformed-certificate",
            "A certificate is malformed (a field badly encoded, e.g. a date that is not valid UTCTime/GeneralizedTime)",
            "`certdoctor inspect` or `openssl x509 -noout -text` shows the broken field (dates with no seconds, no "
            "'Z', or a 4-digit year in UTCTime); other strict clients fail too.",
            "Re-issue the certificate with a conforming CA; home-made tooling is the usual culprit.",
        ),
        _C(
            "pinning",
            "The client pins a specific certificate or key, and the server's changed",
            "The server chain is valid everywhere else (certdoctor check passes); only the app with pinning fails.",
            "Update the pins in the app (pin the CA's key or several backups, not the leaf).",
        ),
    )
}

_OPENSSL = ("curl", "python", "node")
_OSSL = "OpenSSL (curl, Python, PHP, Ruby, git, openssl s_client)"


def _s(
    id: str,
    client: str,
    clients: tuple[str, ...],
    pattern: str,
    family: str,
    meaning: str,
    causes: tuple[str, ...],
    *examples: str,
    specificity: float = 0.0,
) -> Signature:
    return Signature(id, client, clients, pattern, family, meaning, causes, examples, specificity)


_UNTRUSTED = ("missing-intermediate", "private-ca", "tls-interception", "outdated-store")
_EXPIRED = ("expired", "intermediate-expired", "client-clock")
_NAME = ("hostname-mismatch", "wrong-certificate", "no-san")

_BASE: tuple[Signature, ...] = (
    # --- OpenSSL verify results (curl, Python, PHP, Ruby, git, s_client, and Node's codes) ---
    _s(
        "openssl-20",
        _OSSL,
        _OPENSSL,
        r"unable to get local issuer certificate|UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        "untrusted",
        "OpenSSL could not find the issuer of the last certificate the server sent, in the chain or the store.",
        _UNTRUSTED,
        "curl: (60) SSL certificate problem: unable to get local issuer certificate",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate "
        "(_ssl.c:1006)",
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate",
        "verify error:num=20:unable to get local issuer certificate",
    ),
    _s(
        "openssl-2",
        _OSSL,
        _OPENSSL,
        r"unable to get issuer certificate|UNABLE_TO_GET_ISSUER_CERT\b",
        "untrusted",
        "The issuer of a certificate in the chain is missing (the chain reached a trusted certificate that is "
        "not a root, or the store is incomplete).",
        _UNTRUSTED,
        "UNABLE_TO_GET_ISSUER_CERT: unable to get issuer certificate",
    ),
    _s(
        "openssl-21",
        "OpenSSL / Node.js / Postman",
        ("node", "curl", "python"),
        r"unable to verify the first certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        "untrusted",
        "Only the server certificate arrived and its issuer is unknown: almost always a missing intermediate.",
        ("missing-intermediate", "private-ca", "tls-interception"),
        "UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate",
        "Error: unable to verify the first certificate",
        "Verify return code: 21 (unable to verify the first certificate)",
    ),
    _s(
        "openssl-19",
        _OSSL,
        _OPENSSL,
        r"self[- ]signed certificate in certificate chain|SELF_SIGNED_CERT_IN_CHAIN",
        "untrusted",
        "The chain ends in a root certificate (sent by the server) that this client does not trust.",
        ("private-ca", "tls-interception", "untrusted-root", "outdated-store"),
        "curl: (60) SSL certificate problem: self-signed certificate in certificate chain",
        "SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain",
        "Error: self signed certificate in certificate chain",
    ),
    _s(
        "openssl-18",
        _OSSL,
        _OPENSSL,
        r"self[- ]signed certificate(?! in)",
        "untrusted",
        "The server's own certificate is self-signed and not trusted.",
        ("self-signed", "tls-interception"),
        "curl: (60) SSL certificate problem: self-signed certificate",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self signed certificate (_ssl.c:1123)",
    ),
    _s(
        "node-self-signed",
        "Node.js (code DEPTH_ZERO_SELF_SIGNED_CERT; also npm, yarn, Postman, VS Code)",
        ("node",),
        r"DEPTH_ZERO_SELF_SIGNED_CERT",
        "untrusted",
        "The server's own certificate is self-signed and not trusted (Node reports OpenSSL's result as a code).",
        ("self-signed", "tls-interception"),
        "DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate",
        "Error: self-signed certificate\n    at TLSSocket.onConnectSecure (node:_tls_wrap:1674:34) {\n  code: "
        "'DEPTH_ZERO_SELF_SIGNED_CERT'\n}",
        specificity=0.1,
    ),
    _s(
        "openssl-10",
        _OSSL,
        _OPENSSL,
        r"(?<!This )certificate has expired(?! or is not yet valid)",
        "expired",
        "A certificate in the chain (the server's or an intermediate) is past its notAfter date.",
        _EXPIRED,
        "curl: (60) SSL certificate problem: certificate has expired",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)",
    ),
    _s(
        "node-expired",
        "Node.js (code CERT_HAS_EXPIRED; also npm, yarn, Postman, VS Code)",
        ("node",),
        r"CERT_HAS_EXPIRED",
        "expired",
        "A certificate in the chain (the server's or an intermediate) is past its notAfter date.",
        _EXPIRED,
        "CERT_HAS_EXPIRED: certificate has expired",
        "Error: certificate has expired\n    at TLSSocket.onConnectSecure (node:_tls_wrap:1674:34) {\n  code: "
        "'CERT_HAS_EXPIRED'\n}",
        specificity=0.1,
    ),
    _s(
        "openssl-9",
        _OSSL,
        _OPENSSL,
        r"certificate is not yet valid|CERT_NOT_YET_VALID",
        "expired",
        "A certificate's notBefore date is in the future.",
        ("not-yet-valid", "client-clock"),
        "curl: (60) SSL certificate problem: certificate is not yet valid",
        "CERT_NOT_YET_VALID: certificate is not yet valid",
    ),
    _s(
        "openssl-68",
        _OSSL,
        _OPENSSL,
        r"CA signature digest algorithm too weak|CA_MD_TOO_WEAK",
        "weak",
        "A certificate is signed with SHA-1 or MD5, refused at OpenSSL's security level.",
        ("weak-signature",),
        "curl: (60) SSL certificate problem: CA signature digest algorithm too weak",
        "UNSPECIFIED: CA signature digest algorithm too weak",
    ),
    _s(
        "openssl-66",
        _OSSL,
        _OPENSSL,
        r"EE certificate key too weak|EE_KEY_TOO_SMALL",
        "weak",
        "The server certificate's key is too small for the security level (RSA < 2048 at level 2).",
        ("weak-key",),
        "curl: (60) SSL certificate problem: EE certificate key too weak",
    ),
    _s(
        "openssl-67",
        _OSSL,
        _OPENSSL,
        r"CA certificate key too weak|CA_KEY_TOO_SMALL",
        "weak",
        "A CA certificate's key is too small for the security level.",
        ("weak-key",),
        "curl: (60) SSL certificate problem: CA certificate key too weak",
    ),
    _s(
        "openssl-26",
        _OSSL,
        _OPENSSL,
        r"unsuitable certificate purpose|INVALID_PURPOSE",
        "usage",
        "The certificate's extendedKeyUsage does not allow TLS server authentication (or a CA's does not).",
        ("missing-server-auth-eku", "issuer-not-ca"),
        "curl: (60) SSL certificate problem: unsuitable certificate purpose",
        "INVALID_PURPOSE: unsuitable certificate purpose",
    ),
    _s(
        "openssl-24",
        _OSSL,
        _OPENSSL,
        r"invalid CA certificate|INVALID_CA\b",
        "usage",
        "A certificate used as an issuer is not a CA (basicConstraints CA:FALSE).",
        ("issuer-not-ca",),
        "curl: (60) SSL certificate problem: invalid CA certificate",
        "INVALID_CA: invalid CA certificate",
    ),
    _s(
        "openssl-30",
        _OSSL,
        _OPENSSL,
        r"authority and subject key identifier mismatch|AKID_SKID_MISMATCH",
        "untrusted",
        "The candidate issuer has the right name but not the key that signed the certificate (its Subject Key "
        "Identifier differs from the certificate's Authority Key Identifier).",
        ("ca-rekeyed", "kubeconfig-ca-mismatch"),
        "curl: (60) SSL certificate problem: authority and subject key identifier mismatch",
        "verify error:num=30:authority and subject key identifier mismatch",
    ),
    _s(
        "openssl-13",
        _OSSL,
        _OPENSSL,
        r"format error in certificate's not(?:Before|After) field|ERROR_IN_CERT_NOT_(?:BEFORE|AFTER)_FIELD",
        "usage",
        "A certificate's validity date is not encoded correctly, so OpenSSL cannot compare it with the time.",
        ("malformed-certificate",),
        "curl: (60) SSL certificate problem: format error in certificate's notBefore field",
        "verify error:num=13:format error in certificate's notBefore field",
    ),
    _s(
        "openssl-unsafe-renegotiation",
        "OpenSSL 3 (curl, Python 3.10+, PHP, Ruby, git, openssl s_client)",
        _OPENSSL,
        r"unsafe legacy renegotiation disabled|UNSAFE_LEGACY_RENEGOTIATION_DISABLED",
        "protocol",
        "The server does not support secure renegotiation (RFC 5746); OpenSSL 3 refuses to connect to it.",
        ("legacy-renegotiation", "tls-interception"),
        "curl: (35) error:0A000152:SSL routines::unsafe legacy renegotiation disabled",
        "ssl.SSLError: [SSL: UNSAFE_LEGACY_RENEGOTIATION_DISABLED] unsafe legacy renegotiation disabled (_ssl.c:1006)",
    ),
    _s(
        "openssl-32",
        _OSSL,
        _OPENSSL,
        r"key usage does not include certificate signing|KEYUSAGE_NO_CERTSIGN",
        "usage",
        "An issuer's keyUsage lacks keyCertSign: it is not allowed to sign certificates.",
        ("issuer-not-ca",),
        "UNSPECIFIED: key usage does not include certificate signing",
    ),
    _s(
        "openssl-62",
        "OpenSSL (Python, PHP, openssl s_client -verify_hostname)",
        ("python",),
        r"Hostname mismatch|HOSTNAME_MISMATCH",
        "hostname",
        "The certificate's names do not include the host name the client connected to.",
        _NAME,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not valid "
        "for 'api.example.com'. (_ssl.c:1006)",
    ),
    _s(
        "openssl-64",
        "OpenSSL (Python, PHP)",
        ("python",),
        r"IP address mismatch|IP_ADDRESS_MISMATCH",
        "hostname",
        "The client connected by IP address and the certificate has no matching IP subjectAltName.",
        ("hostname-mismatch",),
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, certificate is not valid "
        "for '10.0.0.5'. (_ssl.c:1006)",
    ),
    _s(
        "openssl-23",
        _OSSL,
        _OPENSSL,
        r"certificate revoked|(?<!ERR_)CERT_REVOKED",
        "revoked",
        "A CRL or OCSP response says a certificate in the chain is revoked.",
        ("revoked",),
        "curl: (60) SSL certificate problem: certificate revoked",
        "CERT_REVOKED: certificate revoked",
    ),
    _s(
        "openssl-3",
        _OSSL,
        _OPENSSL,
        r"unable to get certificate CRL|UNABLE_TO_GET_CRL",
        "revoked",
        "CRL checking is on, and no CRL for a certificate of the chain is loaded.",
        ("revocation-unreachable",),
        "curl: (60) SSL certificate problem: unable to get certificate CRL",
    ),
    _s(
        "openssl-12",
        _OSSL,
        _OPENSSL,
        r"CRL has expired|CRL_HAS_EXPIRED",
        "revoked",
        "The CRL loaded for revocation checking is past its nextUpdate.",
        ("revocation-unreachable",),
        "curl: (60) SSL certificate problem: CRL has expired",
    ),
    _s(
        "openssl-25",
        _OSSL,
        _OPENSSL,
        r"path length constraint exceeded|PATH_LENGTH_EXCEEDED",
        "usage",
        "The chain is longer than a CA's pathLenConstraint permits.",
        ("path-length",),
        "curl: (60) SSL certificate problem: path length constraint exceeded",
    ),
    _s(
        "openssl-7",
        _OSSL,
        _OPENSSL,
        r"certificate signature failure|CERT_SIGNATURE_FAILURE",
        "untrusted",
        "A signature in the chain does not verify: a wrong intermediate (same name, different key) or corruption.",
        ("missing-intermediate", "tls-interception"),
        "curl: (60) SSL certificate problem: certificate signature failure",
    ),
    _s(
        "openssl-47",
        _OSSL,
        _OPENSSL,
        r"subtree violation|name constraints",  # "permitted" or "excluded subtree violation"
        "usage",
        "A CA's name constraints do not allow this name.",
        ("name-constraints",),
        "curl: (60) SSL certificate problem: permitted subtree violation",
    ),
    _s(
        "openssl-34",
        _OSSL,
        _OPENSSL,
        r"unhandled critical extension|UNHANDLED_CRITICAL_EXTENSION",
        "usage",
        "A certificate has an extension marked critical that OpenSSL does not know (X509_V_ERR_UNHANDLED_CRITICAL_"
        "EXTENSION, check_extensions in x509_vfy.c).",
        ("unknown-critical-extension",),
        "curl: (60) SSL certificate problem: unhandled critical extension",
        "UNSPECIFIED: unhandled critical extension",
    ),
    _s(
        "openssl-22",
        _OSSL,
        _OPENSSL,
        r"certificate chain too long|CERT_CHAIN_TOO_LONG",
        "protocol",
        "The chain exceeds the client's depth limit.",
        ("chain-too-large", "path-length"),
        "curl: (60) SSL certificate problem: certificate chain too long",
    ),
    _s(
        "openssl-excessive-size",
        _OSSL,
        _OPENSSL,
        r"excessive message size|EXCESSIVE_MESSAGE_SIZE",
        "protocol",
        "The server's certificate message is larger than the client accepts (100 KiB for OpenSSL).",
        ("chain-too-large",),
        "curl: (35) OpenSSL/3.0.19: error:0A000098:SSL routines::excessive message size",
        "[SSL: EXCESSIVE_MESSAGE_SIZE] excessive message size (_ssl.c:1006)",
        "ERR_SSL_EXCESSIVE_MESSAGE_SIZE: 80AC81626C7F0000:error:0A000098:SSL routines:read_state_machine:excessive "
        "message size:../deps/openssl/openssl/ssl/statem/statem.c:609:",
    ),
    _s(
        "openssl-wrong-version",
        _OSSL,
        _OPENSSL,
        r"wrong version number|WRONG_VERSION_NUMBER|packet length too long|http request",
        "protocol",
        "What came back is not TLS: typically plain HTTP on that port, or a proxy speaking something else.",
        ("not-tls", "protocol-mismatch"),
        "curl: (35) OpenSSL/3.0.19: error:0A00010B:SSL routines::wrong version number",
        "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)",
        "ERR_SSL_WRONG_VERSION_NUMBER: 80AC81626C7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version "
        "number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:",
    ),
    _s(
        "openssl-handshake-failure",
        _OSSL,
        _OPENSSL,
        r"alert handshake failure|SSLV3_ALERT_HANDSHAKE_FAILURE|no protocols available|unsupported protocol|"
        r"no shared cipher|tlsv1 alert protocol version",
        "protocol",
        "The server refused the handshake: no common TLS version or cipher suite, or it needs SNI or a client "
        "certificate.",
        ("protocol-mismatch", "wrong-certificate", "client-cert-required"),
        "curl: (35) OpenSSL/3.0.19: error:0A000410:SSL routines::sslv3 alert handshake failure",
        "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1006)",
    ),
    _s(
        "openssl-unknown-ca-alert",
        _OSSL,
        _OPENSSL,
        r"tlsv1 alert unknown ca|TLSV1_ALERT_UNKNOWN_CA|alert bad certificate|SSLV3_ALERT_BAD_CERTIFICATE|"
        r"certificate required",
        "protocol",
        "The *server* rejected the client's certificate (mutual TLS), or a client behind you rejected ours.",
        ("client-cert-required",),
        "curl: (56) OpenSSL SSL_read: error:0A000418:SSL routines::tlsv1 alert unknown ca, errno 0",
        "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)",
    ),
    _s(
        "openssl-verify-failed",
        _OSSL,
        _OPENSSL,
        r"certificate verify failed|CERTIFICATE_VERIFY_FAILED|SSL routines::certificate verify failed",
        "untrusted",
        "Certificate verification failed; the reason follows in the message (or in the verify return code).",
        (*_UNTRUSTED, "expired", "hostname-mismatch"),
        "error:0A000086:SSL routines::certificate verify failed",
        "SSL_connect returned=1 errno=0 peeraddr=93.184.216.34:443 state=error: certificate verify failed",
        specificity=-0.5,
    ),
    # --- curl's own messages ---
    _s(
        "curl-60",
        "curl / libcurl (also PHP's cURL error 60, git)",
        ("curl",),
        r"curl: \(60\)|cURL error 60|SSL certificate problem",
        "untrusted",
        "curl's certificate verification failed; the text after 'SSL certificate problem:' is OpenSSL's reason.",
        _UNTRUSTED,
        "curl: (60) SSL certificate problem: unknown reason",
        "cURL error 60: SSL certificate problem",
        specificity=-0.5,
    ),
    _s(
        "curl-starttls",
        "curl / libcurl (smtp://, imap://, pop3:// with --ssl-reqd)",
        ("curl",),
        r"curl: \(64\)|STARTTLS denied|STARTTLS not (?:supported|available)|STLS not supported",
        "protocol",
        "The mail server did not upgrade the connection to TLS, which --ssl-reqd requires (CURLE_USE_SSL_FAILED): "
        "it refused the STARTTLS/STLS command ('denied', with the SMTP reply code), or did not list it.",
        ("starttls",),
        "curl: (64) STARTTLS denied, code 454",
        "curl: (64) STARTTLS denied",
        "curl: (64) STARTTLS not supported.",
        "curl: (64) STARTTLS not available.",
        "curl: (64) STLS not supported.",
    ),
    _s(
        "curl-unsupported-protocol",
        "curl / libcurl",
        ("curl",),
        r'curl: \(1\) (?:Protocol "[^"]{1,40}" not supported|Unsupported protocol)',
        "protocol",
        "curl does not speak this URL's protocol (postgres://, mysql://, xmpp://, sieve://, nntp://, irc://; "
        "CURLE_UNSUPPORTED_PROTOCOL), or not with TLS required (ldap:// with --ssl-reqd: its LDAP has no StartTLS): "
        "it never reaches TLS, so it cannot say whether the certificate is accepted. Use the protocol's own client.",
        ("database-tls", "starttls-other"),
        'curl: (1) Protocol "postgres" not supported or disabled in libcurl',
        'curl: (1) Protocol "mysql" not supported or disabled in libcurl',
        'curl: (1) Protocol "nntp" not supported or disabled in libcurl',
        "curl: (1) Unsupported protocol",
    ),
    _s(
        "ldap-starttls",
        "libldap (ldapsearch -ZZ, python-ldap), JNDI (Java)",
        ("python", "java"),
        r"ldap_start_tls: |ldap\.[\w{}]{1,40}: \{'result': |\[LDAP: error code ",
        "protocol",
        "The LDAP server answered the StartTLS extended operation with a resultCode other than success (RFC 4511 "
        "§4.14.2): 2 (protocol error) when it has no TLS configured at all, 52 or 53 when it will not now.",
        ("starttls-other",),
        "ldap_start_tls: Protocol error (2)",
        "ldap.PROTOCOL_ERROR: {'result': 2, 'desc': 'Protocol error', 'ctrls': [], 'info': 'unsupported extended "
        "operation'}",
        "javax.naming.CommunicationException: [LDAP: error code 2 - unsupported extended operation]",
    ),
    _s(
        "nntplib-starttls",
        "Python's nntplib (NNTP.starttls)",
        ("python",),
        r"nntplib\.NNTP\w{0,12}Error",
        "protocol",
        "The news server refused STARTTLS (RFC 4642: 580 when it cannot start TLS, 502 when it will not) or does "
        "not know the command (500).",
        ("starttls-other",),
        "nntplib.NNTPPermanentError: 580 Error initializing TLS",
    ),
    _s(
        "db-ssl-required",
        "libpq (psql, psycopg), libmysqlclient / MariaDB Connector/C (mysql, mariadb, mysqlclient)",
        ("python",),
        r"server does not support SSL, but SSL was required|SSL is required, but the server does not support it",
        "protocol",
        "The client requires TLS (sslmode=require or stricter; --ssl-mode=REQUIRED, --ssl-verify-server-cert) and "
        "the database server does not offer it: PostgreSQL answered N to SSLRequest, MySQL/MariaDB left CLIENT_SSL "
        "out of its greeting.",
        ("database-tls",),
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: server does not support SSL, '
        "but SSL was required",
        "ERROR 2026 (HY000): TLS/SSL error: SSL is required, but the server does not support it",
    ),
    _s(
        "curl-no-alt-name",
        "curl / libcurl",
        ("curl",),
        r"no alternative certificate subject name matches target host name",
        "hostname",
        "None of the certificate's subjectAltNames matches the host in the URL.",
        _NAME,
        "curl: (60) SSL: no alternative certificate subject name matches target host name 'api.example.com'",
    ),
    _s(
        "curl-subject-name",
        "curl / libcurl",
        ("curl",),
        r"certificate subject name '.{0,300}' does not match target host name",
        "hostname",
        "The certificate has no subjectAltName and its Common Name is a different host.",
        ("hostname-mismatch", "no-san", "wrong-certificate"),
        "curl: (60) SSL: certificate subject name 'old.example.com' does not match target host name 'api.example.com'",
    ),
    _s(
        "curl-77",
        "curl / libcurl",
        ("curl",),
        r"curl: \(77\)|error setting certificate verify locations|error adding trust anchors",
        "untrusted",
        "curl could not read the CA bundle it was told to use.",
        ("ca-file-missing",),
        "curl: (77) error setting certificate verify locations:  CAfile: /etc/ssl/certs/ca.pem CApath: none",
    ),
    _s(
        "curl-35-syscall",
        "curl / libcurl",
        ("curl",),
        r"SSL_ERROR_SYSCALL|Connection reset by peer in connection|unexpected eof while reading",
        "protocol",
        "The server (or something in between) closed the connection during the handshake.",
        ("protocol-mismatch", "wrong-certificate", "not-tls"),
        "curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to api.example.com:443",
    ),
    _s(
        "schannel-untrusted",
        "curl/PowerShell/.NET on Windows (Schannel)",
        ("dotnet",),
        r"SEC_E_UNTRUSTED_ROOT|CERT_E_UNTRUSTEDROOT|terminated in a root certificate which is not trusted|"
        r"issued by an authority that is not trusted",
        "untrusted",
        "Windows could not build a chain to a trusted root.",
        ("private-ca", "missing-intermediate", "tls-interception"),
        "curl: (60) schannel: SEC_E_UNTRUSTED_ROOT (0x80090325) - The certificate chain was issued by an authority "
        "that is not trusted.",
        "The certificate chain was issued by an authority that is not trusted.",
    ),
    _s(
        "schannel-revocation",
        "curl/PowerShell/.NET on Windows (Schannel)",
        ("dotnet",),
        r"CRYPT_E_NO_REVOCATION_CHECK|CRYPT_E_REVOCATION_OFFLINE|revocation function was unable to check revocation|"
        r"RevocationStatusUnknown|OfflineRevocation",
        "revoked",
        "Windows could not reach the CRL/OCSP URLs to check revocation, and the client hard-fails.",
        ("revocation-unreachable", "tls-interception"),
        "curl: (35) schannel: next InitializeSecurityContext failed: Unknown error (0x80092012) - The revocation "
        "function was unable to check revocation for the certificate. CRYPT_E_NO_REVOCATION_CHECK",
    ),
    _s(
        "schannel-name",
        "Windows (Schannel, SQL Server clients)",
        ("dotnet",),
        r"target principal name is incorrect|CERT_E_CN_NO_MATCH|SEC_E_WRONG_PRINCIPAL",
        "hostname",
        "The certificate does not cover the name the client used.",
        _NAME,
        "The target principal name is incorrect.",
    ),
    _s(
        "schannel-expired",
        "Windows (Schannel)",
        ("dotnet",),
        r"CERT_E_EXPIRED|SEC_E_CERT_EXPIRED|not within its validity period",
        "expired",
        "A certificate is outside its validity period.",
        _EXPIRED,
        "A required certificate is not within its validity period when verifying against the current system "
        "clock or the timestamp in the signed file.",
    ),
    # --- Python specifics ---
    _s(
        "python-verify-failed",
        "Python ssl / requests / urllib3 / pip",
        ("python",),
        r"SSLCertVerificationError|\[SSL: CERTIFICATE_VERIFY_FAILED\]|certificate verify failed \(_ssl",
        "untrusted",
        "Python's verification failed; the reason follows 'certificate verify failed:'.",
        _UNTRUSTED,
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:997)",
        specificity=-0.4,
    ),
    _s(
        "python-old-hostname",
        "Python < 3.7 (ssl.match_hostname)",
        ("python",),
        r"hostname '.{0,300}' doesn't match|CertificateError: hostname",
        "hostname",
        "The certificate does not cover the host name (old Python wording).",
        _NAME,
        "ssl.CertificateError: hostname 'api.example.com' doesn't match 'www.example.com'",
    ),
    _s(
        "pip-ssl",
        "pip",
        ("python",),
        r"There was a problem confirming the ssl certificate|Could not fetch URL .{0,300}SSL",
        "untrusted",
        "pip could not verify the index server (pip uses certifi, or the system store with --use-feature=truststore).",
        ("tls-interception", "private-ca", "outdated-store"),
        "Could not fetch URL https://pypi.org/simple/pip/: There was a problem confirming the ssl certificate",
    ),
    # --- Node.js ---
    _s(
        "node-altname",
        "Node.js / Postman / Electron",
        ("node",),
        r"ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames|is not in the cert's (?:altnames|list)",
        "hostname",
        "The certificate's subjectAltNames do not include the requested host.",
        _NAME,
        "ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: Host: api.example.com. is "
        "not in the cert's altnames: DNS:www.example.com",
        "Hostname/IP does not match certificate's altnames: IP: 10.0.0.5 is not in the cert's list: ",
    ),
    _s(
        "node-cert-untrusted",
        "Node.js",
        ("node",),
        r"CERT_UNTRUSTED|CERT_REJECTED|certificate not trusted",
        "untrusted",
        "OpenSSL marked a trust anchor as not trusted for this purpose.",
        ("private-ca", "untrusted-root"),
        "CERT_UNTRUSTED: certificate not trusted",
    ),
    # --- Java ---
    _s(
        "java-pkix-build",
        "Java (JSSE, Spring, Maven, Gradle, Jenkins, Kafka)",
        ("java",),
        r"PKIX path building failed|unable to find valid certification path to requested target|"
        r"SunCertPathBuilderException",
        "untrusted",
        "Java could not build a path to a root in its truststore (cacerts). Java does not fetch missing intermediates.",
        ("missing-intermediate", "private-ca", "tls-interception", "outdated-store"),
        "javax.net.ssl.SSLHandshakeException: PKIX path building failed: "
        "sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path to "
        "requested target",
    ),
    _s(
        "java-validity",
        "Java (JSSE)",
        ("java",),
        r"validity check failed|CertificateExpiredException|NotAfter:",
        "expired",
        "A certificate on the built path is outside its validity period.",
        _EXPIRED,
        "javax.net.ssl.SSLHandshakeException: PKIX path validation failed: "
        "java.security.cert.CertPathValidatorException: validity check failed",
        "java.security.cert.CertificateExpiredException: NotAfter: Sat Oct 24 21:34:48 UTC 2026",
    ),
    _s(
        "java-not-yet-valid",
        "Java (JSSE)",
        ("java",),
        r"CertificateNotYetValidException|NotBefore:",
        "expired",
        "A certificate's notBefore is in the future.",
        ("not-yet-valid", "client-clock"),
        "java.security.cert.CertificateNotYetValidException: NotBefore: Thu Dec 03 21:34:48 UTC 2026",
        specificity=0.1,
    ),
    _s(
        "java-no-dns-name",
        "Java (JSSE)",
        ("java",),
        r"No subject alternative DNS name matching .{0,300} found",
        "hostname",
        "The certificate's DNS subjectAltNames do not include the host.",
        _NAME,
        "javax.net.ssl.SSLHandshakeException: No subject alternative DNS name matching api.example.com found.",
    ),
    _s(
        "java-no-ip",
        "Java (JSSE)",
        ("java",),
        r"No subject alternative names matching IP address .{0,300} found",
        "hostname",
        "Connected by IP; the certificate has no matching IP subjectAltName.",
        ("hostname-mismatch",),
        "javax.net.ssl.SSLHandshakeException: No subject alternative names matching IP address 10.0.0.5 found",
    ),
    _s(
        "java-no-san",
        "Java (JSSE)",
        ("java",),
        r"No subject alternative names present|No name matching .{0,300} found",
        "hostname",
        "The certificate has no subjectAltName (and its CN does not match).",
        ("no-san", "hostname-mismatch", "wrong-certificate"),
        "java.security.cert.CertificateException: No subject alternative names present",
        "javax.net.ssl.SSLHandshakeException: No name matching api.example.com found",
    ),
    _s(
        "java-eku",
        "Java (JSSE)",
        ("java",),
        r"Extended key usage does not permit use for TLS server authentication",
        "usage",
        "The certificate's extendedKeyUsage lacks serverAuth.",
        ("missing-server-auth-eku",),
        "javax.net.ssl.SSLHandshakeException: Extended key usage does not permit use for TLS server authentication",
    ),
    _s(
        "java-ca-key-usage",
        "Java (JSSE)",
        ("java",),
        r"CA key usage check failed|keyCertSign bit is not set",
        "usage",
        "An issuer in the chain may not sign certificates (keyUsage lacks keyCertSign).",
        ("issuer-not-ca",),
        "java.security.cert.CertPathValidatorException: CA key usage check failed: keyCertSign bit is not set",
    ),
    _s(
        "java-basic-constraints",
        "Java (JSSE)",
        ("java",),
        r"basic constraints check failed",
        "usage",
        "A certificate used as an issuer is not a CA, or a pathLenConstraint is exceeded.",
        ("issuer-not-ca", "path-length"),
        "java.security.cert.CertPathValidatorException: basic constraints check failed: this is not a CA certificate",
    ),
    _s(
        "java-critical-extension",
        "Java (JSSE)",
        ("java",),
        r"unrecognized critical extension",
        "usage",
        "A certificate has an extension marked critical that no PKIX checker of the JDK processes.",
        ("unknown-critical-extension",),
        "java.security.cert.CertPathValidatorException: unrecognized critical extension(s)",
    ),
    _s(
        "java-algorithm",
        "Java (JSSE)",
        ("java",),
        r"Algorithm constraints check failed|jdk\.certpath\.disabledAlgorithms",
        "weak",
        "A signature algorithm or key size is disabled by jdk.certpath.disabledAlgorithms (e.g. SHA-1 under a "
        "public root, RSA < 1024).",
        ("weak-signature", "weak-key"),
        "java.security.cert.CertPathValidatorException: Algorithm constraints check failed on signature "
        "algorithm: SHA1withRSA",
    ),
    _s(
        "java-chain-length",
        "Java (JSSE)",
        ("java",),
        r"certificate chain length \(\d{1,9}\) exceeds the maximum allowed length",
        "protocol",
        "The server sent more than 10 certificates (jdk.tls.maxCertificateChainLength).",
        ("chain-too-large",),
        "javax.net.ssl.SSLProtocolException: The certificate chain length (11) exceeds the maximum allowed length (10)",
    ),
    _s(
        "java-message-size",
        "Java (JSSE)",
        ("java",),
        r"size of the handshake message \(\d{1,9}\) exceeds the maximum allowed size",
        "protocol",
        "The server's certificate message exceeds 32 KiB (jdk.tls.maxHandshakeMessageSize).",
        ("chain-too-large",),
        "javax.net.ssl.SSLProtocolException: The size of the handshake message (3381039) exceeds the maximum "
        "allowed size (32768)",
    ),
    _s(
        "java-revoked",
        "Java (JSSE)",
        ("java",),
        r"Certificate has been revoked|CertificateRevokedException",
        "revoked",
        "Revocation checking is on and a certificate is revoked.",
        ("revoked",),
        "java.security.cert.CertPathValidatorException: Certificate has been revoked, reason: KEY_COMPROMISE",
    ),
    _s(
        "java-revocation-unknown",
        "Java (JSSE)",
        ("java",),
        r"Could not determine revocation status|revocation status check failed",
        "revoked",
        "Revocation checking is on and no OCSP/CRL source answered.",
        ("revocation-unreachable",),
        "java.security.cert.CertPathValidatorException: Could not determine revocation status",
    ),
    _s(
        "java-unrecognized",
        "Java (JSSE)",
        ("java",),
        r"Unsupported or unrecognized SSL message|Unrecognized SSL message, plaintext connection",
        "protocol",
        "The server did not answer with TLS (plain HTTP on the port?).",
        ("not-tls",),
        "javax.net.ssl.SSLException: Unsupported or unrecognized SSL message",
    ),
    _s(
        "java-handshake-alert",
        "Java (JSSE)",
        ("java",),
        r"Received fatal alert: (?:handshake_failure|protocol_version)|No appropriate protocol",
        "protocol",
        "The server refused the handshake (TLS version, cipher suites, SNI or client certificate).",
        ("protocol-mismatch", "client-cert-required"),
        "javax.net.ssl.SSLHandshakeException: Received fatal alert: handshake_failure",
    ),
    _s(
        "android-trust-anchor",
        "Android / OkHttp",
        ("java",),
        r"Trust anchor for certification path not found",
        "untrusted",
        "Android could not chain to a system or app-trusted root.",
        ("missing-intermediate", "private-ca", "tls-interception"),
        "java.security.cert.CertPathValidatorException: Trust anchor for certification path not found.",
    ),
    _s(
        "okhttp-hostname",
        "OkHttp",
        ("java",),
        r"Hostname .{0,300} not verified",
        "hostname",
        "The certificate does not cover the host name.",
        _NAME,
        "javax.net.ssl.SSLPeerUnverifiedException: Hostname api.example.com not verified:",
    ),
    _s(
        "okhttp-pinning",
        "OkHttp / mobile apps",
        ("java",),
        r"Certificate pinning failure",
        "untrusted",
        "The app pins keys that the server's chain no longer contains.",
        ("pinning", "tls-interception"),
        "javax.net.ssl.SSLPeerUnverifiedException: Certificate pinning failure!",
    ),
    # --- Go ---
    _s(
        "go-unknown-authority",
        "Go (kubectl, Terraform, Docker, Prometheus…)",
        ("go",),
        r"x509: certificate signed by unknown authority(?! \(possibly)",
        "untrusted",
        "Go could not chain to a root in its pool (the system bundle unless the program sets RootCAs).",
        ("missing-intermediate", "private-ca", "tls-interception", "outdated-store"),
        "x509: certificate signed by unknown authority",
        "tls: failed to verify certificate: x509: certificate signed by unknown authority",
    ),
    _s(
        "go-candidate-other-key",
        "Go (kubectl, Helm, Terraform, Docker…)",
        ("go",),
        r"possibly because of .{0,20}(?:crypto/(?:rsa|ecdsa): verification error|ECDSA verification failure|"
        r"verification failure|signature did not verify)",
        "untrusted",
        "Go found a trusted CA with the issuer's name, but the server certificate's signature does not verify with "
        "its key: the certificate was issued by another CA of the same name.",
        ("kubeconfig-ca-mismatch", "ca-rekeyed", "wrong-certificate"),
        "Unable to connect to the server: x509: certificate signed by unknown authority (possibly because of "
        '"crypto/rsa: verification error" while trying to verify candidate authority certificate "kubernetes")',
        'x509: certificate signed by unknown authority (possibly because of "x509: ECDSA verification failure" '
        'while trying to verify candidate authority certificate "Example CA")',
        specificity=0.2,
    ),
    _s(
        "go-negative-serial",
        "Go 1.23+",
        ("go",),
        r"x509: negative serial number",
        "usage",
        "A certificate in the chain has a negative serial number; Go 1.23 and later refuse to parse it.",
        ("negative-serial",),
        "tls: failed to parse certificate from server: x509: negative serial number",
    ),
    _s(
        "go-tls-handshake-timeout",
        "Go (kubectl, Docker, Terraform, Helm: net/http)",
        ("go",),
        r"net/http: TLS handshake timeout",
        "network",
        "The TCP connection opened but the TLS handshake did not finish within 10 seconds: the server (or something "
        "in between) accepted the connection and never answered the ClientHello.",
        ("not-tls", "unreachable", "tls-interception"),
        "Unable to connect to the server: net/http: TLS handshake timeout",
        'Get "https://registry.example.com/v2/": net/http: TLS handshake timeout',
        specificity=0.1,
    ),
    _s(
        "go-expired",
        "Go",
        ("go",),
        r"x509: certificate has expired or is not yet valid",
        "expired",
        "A certificate's validity period does not include the current time (the message says which bound).",
        ("expired", "intermediate-expired", "not-yet-valid", "client-clock"),
        "x509: certificate has expired or is not yet valid: current time 2026-11-23T21:33:37Z is after "
        "2026-10-24T21:33:32Z",
    ),
    _s(
        "go-valid-for",
        "Go",
        ("go",),
        r"x509: certificate is valid for .{0,500}, not |x509: certificate is not valid for any names",
        "hostname",
        "The certificate's names do not include the host.",
        _NAME,
        "x509: certificate is valid for www.example.com, example.com, not api.example.com",
        "x509: certificate is not valid for any names, but wanted to match api.example.com",
    ),
    _s(
        "go-legacy-cn",
        "Go 1.15+",
        ("go",),
        r"relies on legacy Common Name field",
        "hostname",
        "The certificate has no subjectAltName; Go no longer uses the Common Name.",
        ("no-san",),
        "x509: certificate relies on legacy Common Name field, use SANs instead",
    ),
    _s(
        "go-no-ip-sans",
        "Go",
        ("go",),
        r"doesn't contain any IP SANs",
        "hostname",
        "Connected by IP address; the certificate lists no IP addresses.",
        ("hostname-mismatch",),
        "x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs",
    ),
    _s(
        "go-key-usage",
        "Go",
        ("go",),
        r"x509: certificate specifies an incompatible key usage",
        "usage",
        "The certificate's extendedKeyUsage does not include serverAuth.",
        ("missing-server-auth-eku",),
        "x509: certificate specifies an incompatible key usage",
    ),
    _s(
        "go-insecure-algorithm",
        "Go 1.18+",
        ("go",),
        r"insecure algorithm (?:SHA1|MD5)|x509sha1",
        "weak",
        "A certificate is signed with SHA-1; Go refuses it.",
        ("weak-signature",),
        'x509: certificate signed by unknown authority (possibly because of "x509: cannot verify signature: '
        'insecure algorithm SHA1-RSA (temporarily override with GODEBUG=x509sha1=1)" while trying to verify '
        'candidate authority certificate "Example CA")',
        specificity=0.2,
    ),
    _s(
        "go-parent-cannot-sign",
        "Go",
        ("go",),
        r"parent certificate cannot sign this kind of certificate",
        "usage",
        "The issuer is not a CA (basicConstraints or keyUsage).",
        ("issuer-not-ca",),
        'x509: certificate signed by unknown authority (possibly because of "x509: invalid signature: parent '
        'certificate cannot sign this kind of certificate" while trying to verify candidate authority certificate '
        '"Not A CA")',
        specificity=0.2,
    ),
    _s(
        "go-name-constraints",
        "Go",
        ("go",),
        r"not authorized to sign for this name|not permitted by any constraint|too many intermediates for path length",
        "usage",
        "A CA's name or path-length constraints forbid this certificate.",
        ("name-constraints", "path-length"),
        "x509: a root or intermediate certificate is not authorized to sign for this name: DNS name "
        '"api.example.com" is not permitted by any constraint',
    ),
    _s(
        "go-critical-extension",
        "Go",
        ("go",),
        r"x509: unhandled critical extension",
        "usage",
        "A certificate has an extension marked critical that crypto/x509 does not parse "
        "(Certificate.UnhandledCriticalExtensions).",
        ("unknown-critical-extension",),
        "tls: failed to verify certificate: x509: unhandled critical extension",
    ),
    _s(
        "go-message-size",
        "Go",
        ("go",),
        r"tls: handshake message of length \d{1,9} bytes exceeds maximum",
        "protocol",
        "The server's certificate message is larger than Go accepts.",
        ("chain-too-large",),
        "tls: handshake message of length 3380880 bytes exceeds maximum of 65536 bytes",
    ),
    _s(
        "go-not-tls",
        "Go",
        ("go",),
        r"first record does not look like a TLS handshake|server gave HTTP response to HTTPS client|"
        r"unsupported SSLv2 handshake received",
        "protocol",
        "The server did not answer with TLS (Go reads the first bytes as a record header: bytes that look like an "
        "SSLv2 header give 'unsupported SSLv2 handshake received').",
        ("not-tls",),
        "tls: first record does not look like a TLS handshake",
        "http: server gave HTTP response to HTTPS client",
        "tls: unsupported SSLv2 handshake received",
    ),
    _s(
        "go-macos-not-trusted",
        "Go on macOS",
        ("go",),
        r"x509: [“\"'].{0,300}[”\"'] certificate is not (?:trusted|standards compliant)",
        "untrusted",
        "macOS's verifier (used by Go on macOS) rejected the chain.",
        ("private-ca", "missing-intermediate", "validity-too-long"),
        'x509: "api.example.com" certificate is not trusted',
    ),
    # --- network: before TLS ---
    _s(
        "network-timeout",
        "any client (curl (28), Python, Node ETIMEDOUT, Java, Go, Chrome ERR_TIMED_OUT)",
        ("curl", "python", "node", "java", "go", "chrome", "dotnet"),
        r"timed out|ETIMEDOUT|i/o timeout|context deadline exceeded|ERR_TIMED_OUT|ERR_CONNECTION_TIMED_OUT|"
        r"\(28\)|no navigation result within|HttpClient\.Timeout",
        "network",
        "The connection or the TLS handshake did not complete in time: nothing answered, or the server accepted "
        "the connection and never spoke TLS (for a mail client: never sent the greeting it waits for).",
        ("unreachable", "not-tls", "starttls"),
        "curl: (28) Connection timed out after 8001 milliseconds",
        "TimeoutError: _ssl.c:990: The handshake operation timed out",
        "java.net.SocketTimeoutException: Read timed out",
        "dial tcp 10.0.0.5:443: i/o timeout",
        "net::ERR_CONNECTION_TIMED_OUT",
    ),
    _s(
        "network-refused",
        "any client",
        ("curl", "python", "node", "java", "go", "chrome", "dotnet"),
        r"connection refused|ECONNREFUSED|ERR_CONNECTION_REFUSED|curl: \(7\)|Unable to connect(?! to the server:)|"
        r"Could not connect to the server",
        "network",
        "Nothing listens on that address and port (or a firewall rejects the connection).",
        ("unreachable",),
        "curl: (7) Failed to connect to api.example.com port 443 after 0 ms: Couldn't connect to server",
        "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:8443",
        "dial tcp 127.0.0.1:8443: connect: connection refused",
        "net::ERR_CONNECTION_REFUSED",
    ),
    _s(
        "network-resolve",
        "any client",
        ("curl", "python", "node", "java", "go", "chrome", "dotnet"),
        r"Could not resolve host|ENOTFOUND|no such host|Name or service not known|UnknownHostException|"
        r"ERR_NAME_NOT_RESOLVED|nodename nor servname|trouble finding that site|specified hostname could not be found",
        "network",
        "The host name does not resolve from the client.",
        ("unreachable",),
        "curl: (6) Could not resolve host: api.example.internal",
        "getaddrinfo ENOTFOUND api.example.internal",
        "dial tcp: lookup api.example.internal: no such host",
        "java.net.UnknownHostException: api.example.internal",
    ),
    _s(
        "handshake-dropped",
        "Node.js / Postman (ECONNRESET)",
        ("node",),
        r"socket disconnected before secure TLS connection was established|ECONNRESET",
        "protocol",
        "The server dropped the connection during the TLS handshake: no TLS on that port (it answered something "
        "else and hung up), a server refusing the versions, cipher suites or SNI name offered, or a middlebox "
        "cutting TLS.",
        ("not-tls", "protocol-mismatch"),
        "ECONNRESET: Client network socket disconnected before secure TLS connection was established",
        "Error: read ECONNRESET",
    ),
    _s(
        "go-handshake-alert",
        "Go",
        ("go",),
        r"remote error: tls: (?:handshake failure|protocol version not supported|bad certificate|unknown certificate)",
        "protocol",
        "The server sent a TLS alert: no common version/cipher, or it wants/refuses a client certificate.",
        ("protocol-mismatch", "client-cert-required"),
        "remote error: tls: handshake failure",
        "remote error: tls: bad certificate",
    ),
    _s(
        "client-certificate-required-alert",
        "Java, Go, Chrome, Firefox",
        ("java", "go", "chrome", "firefox"),
        r"Received fatal alert: certificate_required|remote error: tls: certificate required|"
        r"ERR_BAD_SSL_CLIENT_AUTH_CERT|ERR_SSL_CLIENT_AUTH_CERT_NEEDED|SSL_ERROR_RX_CERTIFICATE_REQUIRED_ALERT",
        "protocol",
        "The server requires a client certificate (mutual TLS) and the client sent none, or one it refused: TLS "
        "1.3's certificate_required alert (RFC 8446 §4.4.2.4), or the browser's name for a refused client "
        "certificate.",
        ("client-cert-required",),
        "javax.net.ssl.SSLHandshakeException: Received fatal alert: certificate_required",
        "remote error: tls: certificate required",
        "net::ERR_BAD_SSL_CLIENT_AUTH_CERT",
        "SSL_ERROR_RX_CERTIFICATE_REQUIRED_ALERT",
        specificity=0.5,
    ),
    # --- Chrome / Edge / Chromium ---
    _s(
        "chrome-authority-invalid",
        "Chrome / Edge / Chromium",
        ("chrome",),
        r"ERR_CERT_AUTHORITY_INVALID",
        "untrusted",
        "The browser could not chain to a trusted root, even after fetching intermediates via AIA.",
        ("private-ca", "self-signed", "tls-interception", "missing-intermediate"),
        "NET::ERR_CERT_AUTHORITY_INVALID",
        "net::ERR_CERT_AUTHORITY_INVALID",
    ),
    _s(
        "chrome-common-name-invalid",
        "Chrome / Edge / Chromium",
        ("chrome",),
        r"ERR_CERT_COMMON_NAME_INVALID",
        "hostname",
        "The certificate does not cover the site's name (Chrome ignores the Common Name).",
        ("hostname-mismatch", "no-san", "wrong-certificate"),
        "NET::ERR_CERT_COMMON_NAME_INVALID",
    ),
    _s(
        "chrome-date-invalid",
        "Chrome / Edge / Chromium",
        ("chrome",),
        r"ERR_CERT_DATE_INVALID",
        "expired",
        "A certificate is expired or not yet valid (or the computer's clock is wrong).",
        ("expired", "intermediate-expired", "client-clock", "not-yet-valid"),
        "NET::ERR_CERT_DATE_INVALID",
    ),
    _s(
        "chrome-weak-signature",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_CERT_WEAK_SIGNATURE_ALGORITHM",
        "weak",
        "A certificate is signed with SHA-1 or MD5.",
        ("weak-signature",),
        "NET::ERR_CERT_WEAK_SIGNATURE_ALGORITHM",
    ),
    _s(
        "chrome-weak-key",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_CERT_WEAK_KEY",
        "weak",
        "A key is too small.",
        ("weak-key",),
        "NET::ERR_CERT_WEAK_KEY",
    ),
    _s(
        "chrome-cert-invalid",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_CERT_INVALID",
        "usage",
        "The certificate is malformed or used for the wrong purpose (EKU, a non-CA issuer, bad encoding, an "
        "unknown critical extension).",
        ("missing-server-auth-eku", "issuer-not-ca", "weak-signature", "unknown-critical-extension"),
        "NET::ERR_CERT_INVALID",
    ),
    _s(
        "chrome-revoked",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_CERT_REVOKED",
        "revoked",
        "The certificate is revoked (CRLSet or OCSP).",
        ("revoked",),
        "NET::ERR_CERT_REVOKED",
    ),
    _s(
        "chrome-validity-too-long",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_CERT_VALIDITY_TOO_LONG",
        "policy",
        "A publicly trusted certificate is valid for more than 398 days.",
        ("validity-too-long",),
        "NET::ERR_CERT_VALIDITY_TOO_LONG",
    ),
    _s(
        "chrome-ct",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_CERTIFICATE_TRANSPARENCY_REQUIRED",
        "policy",
        "A publicly trusted certificate lacks Certificate Transparency proofs.",
        ("ct-missing",),
        "NET::ERR_CERTIFICATE_TRANSPARENCY_REQUIRED",
    ),
    _s(
        "chrome-name-constraint",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_CERT_NAME_CONSTRAINT_VIOLATION",
        "usage",
        "A CA's name constraints do not allow this name.",
        ("name-constraints",),
        "NET::ERR_CERT_NAME_CONSTRAINT_VIOLATION",
    ),
    _s(
        "chrome-interception",
        "Chrome",
        ("chrome",),
        r"ERR_CERT_KNOWN_INTERCEPTION_BLOCKED|ERR_CERT_SYMANTEC_LEGACY",
        "untrusted",
        "The chain uses a root Chrome blocks (known interception or distrusted CA).",
        ("tls-interception", "outdated-store"),
        "NET::ERR_CERT_KNOWN_INTERCEPTION_BLOCKED",
    ),
    _s(
        "chrome-protocol",
        "Chrome / Edge",
        ("chrome",),
        r"ERR_SSL_PROTOCOL_ERROR|ERR_SSL_VERSION_OR_CIPHER_MISMATCH|can't provide a secure connection|"
        r"sent an invalid response",
        "protocol",
        "The TLS handshake failed before any certificate check (protocol, cipher, or an oversized/garbled "
        "certificate message).",
        ("protocol-mismatch", "not-tls", "chain-too-large"),
        "net::ERR_SSL_PROTOCOL_ERROR",
        "This site can't provide a secure connection",
    ),
    _s(
        "browser-not-private",
        "Chrome / Edge / Safari (interstitial page)",
        ("chrome", "safari"),
        r"Your connection (?:is not|isn't|isn’t) private|Privacy error|This Connection Is Not Private|"
        r"This connection is not private",
        "untrusted",
        "The browser's certificate warning page; the exact code (NET::ERR_CERT_…) is shown below the text or "
        "under 'Advanced'/'Show Details'.",
        ("private-ca", "missing-intermediate", "expired", "hostname-mismatch", "tls-interception"),
        "Your connection is not private",
        "Your connection isn't private",
        "This Connection Is Not Private",
        "Privacy error",
        specificity=-0.6,
    ),
    # --- Firefox (NSS / mozilla::pkix) ---
    _s(
        "firefox-unknown-issuer",
        "Firefox (NSS)",
        ("firefox",),
        r"SEC_ERROR_UNKNOWN_ISSUER",
        "untrusted",
        "Firefox found no path to a trusted root. It does not fetch AIA; it knows public intermediates from its "
        "preload list, so for private CAs a missing intermediate fails here.",
        ("missing-intermediate", "private-ca", "tls-interception"),
        "SEC_ERROR_UNKNOWN_ISSUER",
    ),
    _s(
        "firefox-self-signed",
        "Firefox",
        ("firefox",),
        r"MOZILLA_PKIX_ERROR_SELF_SIGNED_CERT",
        "untrusted",
        "The server certificate is self-signed.",
        ("self-signed",),
        "MOZILLA_PKIX_ERROR_SELF_SIGNED_CERT",
    ),
    _s(
        "firefox-ca-as-ee",
        "Firefox",
        ("firefox",),
        r"MOZILLA_PKIX_ERROR_CA_CERT_USED_AS_END_ENTITY",
        "usage",
        "The server certificate is a CA certificate (basicConstraints CA:TRUE).",
        ("leaf-is-ca", "self-signed"),
        "MOZILLA_PKIX_ERROR_CA_CERT_USED_AS_END_ENTITY",
    ),
    _s(
        "firefox-expired",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_EXPIRED_CERTIFICATE",
        "expired",
        "The server certificate has expired (or the clock is wrong).",
        ("expired", "client-clock"),
        "SEC_ERROR_EXPIRED_CERTIFICATE",
    ),
    _s(
        "firefox-expired-issuer",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_EXPIRED_ISSUER_CERTIFICATE",
        "expired",
        "An intermediate or root in the chain has expired.",
        ("intermediate-expired", "outdated-store", "client-clock"),
        "SEC_ERROR_EXPIRED_ISSUER_CERTIFICATE",
    ),
    _s(
        "firefox-not-yet-valid",
        "Firefox",
        ("firefox",),
        r"MOZILLA_PKIX_ERROR_NOT_YET_VALID_(?:ISSUER_)?CERTIFICATE",
        "expired",
        "A certificate is not valid yet.",
        ("not-yet-valid", "client-clock"),
        "MOZILLA_PKIX_ERROR_NOT_YET_VALID_CERTIFICATE",
    ),
    _s(
        "firefox-bad-domain",
        "Firefox",
        ("firefox",),
        r"SSL_ERROR_BAD_CERT_DOMAIN",
        "hostname",
        "The certificate is not valid for this name.",
        _NAME,
        "SSL_ERROR_BAD_CERT_DOMAIN",
    ),
    _s(
        "firefox-revoked",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_REVOKED_CERTIFICATE",
        "revoked",
        "The certificate is revoked (CRLite or OCSP).",
        ("revoked",),
        "SEC_ERROR_REVOKED_CERTIFICATE",
    ),
    _s(
        "firefox-algorithm",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_CERT_SIGNATURE_ALGORITHM_DISABLED|MOZILLA_PKIX_ERROR_INADEQUATE_KEY_SIZE",
        "weak",
        "A SHA-1 signature or a too-small key.",
        ("weak-signature", "weak-key"),
        "SEC_ERROR_CERT_SIGNATURE_ALGORITHM_DISABLED",
        "MOZILLA_PKIX_ERROR_INADEQUATE_KEY_SIZE",
    ),
    _s(
        "firefox-key-usage",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_INADEQUATE_KEY_USAGE|SEC_ERROR_INADEQUATE_CERT_TYPE|SEC_ERROR_CA_CERT_INVALID",
        "usage",
        "A key usage / extended key usage / basicConstraints problem.",
        ("missing-server-auth-eku", "issuer-not-ca"),
        "SEC_ERROR_INADEQUATE_CERT_TYPE",
        "SEC_ERROR_CA_CERT_INVALID",
    ),
    _s(
        "firefox-critical-extension",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_UNKNOWN_CRITICAL_EXTENSION",
        "usage",
        "A certificate has an extension marked critical that mozilla::pkix does not know.",
        ("unknown-critical-extension",),
        "SEC_ERROR_UNKNOWN_CRITICAL_EXTENSION",
    ),
    _s(
        "firefox-mitm",
        "Firefox",
        ("firefox",),
        r"MOZILLA_PKIX_ERROR_MITM_DETECTED",
        "untrusted",
        "Firefox detected a TLS-intercepting product.",
        ("tls-interception",),
        "MOZILLA_PKIX_ERROR_MITM_DETECTED",
    ),
    _s(
        "firefox-ocsp",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_OCSP_\w{0,40}",
        "revoked",
        "Firefox could not accept an OCSP response: malformed, badly signed, from an unauthorized responder, about "
        "another certificate, or out of date.",
        ("ocsp-invalid", "revocation-unreachable"),
        "SEC_ERROR_OCSP_BAD_SIGNATURE",
        "SEC_ERROR_OCSP_UNAUTHORIZED_RESPONSE",
        "SEC_ERROR_OCSP_MALFORMED_RESPONSE",
        "SEC_ERROR_OCSP_OLD_RESPONSE",
    ),
    _s(
        "firefox-must-staple",
        "Firefox",
        ("firefox",),
        r"MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING",
        "revoked",
        "The certificate requires an OCSP staple (must-staple) and the server sent none.",
        ("revocation-unreachable",),
        "MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING",
    ),
    _s(
        "firefox-ct",
        "Firefox",
        ("firefox",),
        r"MOZILLA_PKIX_ERROR_INSUFFICIENT_CERTIFICATE_TRANSPARENCY",
        "policy",
        "A publicly trusted certificate lacks the Certificate Transparency proofs Mozilla's CT policy asks for "
        "(Firefox 135+).",
        ("ct-missing",),
        "MOZILLA_PKIX_ERROR_INSUFFICIENT_CERTIFICATE_TRANSPARENCY",
    ),
    _s(
        "firefox-protocol",
        "Firefox",
        ("firefox",),
        r"SSL_ERROR_(?:NO_CYPHER_OVERLAP|PROTOCOL_VERSION_ALERT|UNSUPPORTED_VERSION|HANDSHAKE_FAILURE_ALERT)",
        "protocol",
        "The TLS handshake failed: Firefox and the server share no TLS version or cipher suite (NO_CYPHER_OVERLAP, "
        "UNSUPPORTED_VERSION, PROTOCOL_VERSION_ALERT), or the server refused the handshake.",
        ("protocol-mismatch", "client-cert-required"),
        "SSL_ERROR_NO_CYPHER_OVERLAP",
        "SSL_ERROR_UNSUPPORTED_VERSION",
        "SSL_ERROR_HANDSHAKE_FAILURE_ALERT",
    ),
    _s(
        "firefox-record-too-long",
        "Firefox",
        ("firefox",),
        r"SSL_ERROR_RX_RECORD_TOO_LONG",
        "protocol",
        "The answer was not a TLS record: almost always plain HTTP (or another protocol) on the port used for HTTPS.",
        ("not-tls",),
        "SSL_ERROR_RX_RECORD_TOO_LONG",
    ),
    _s(
        "firefox-malformed-certificate",
        "Firefox",
        ("firefox",),
        r"SSL_ERROR_RX_MALFORMED_CERTIFICATE",
        "protocol",
        "Firefox could not parse the Certificate message: too many or too large certificates, or a broken one.",
        ("chain-too-large", "malformed-certificate"),
        "SSL_ERROR_RX_MALFORMED_CERTIFICATE",
    ),
    _s(
        "firefox-malformed-handshake",
        "Firefox",
        ("firefox",),
        r"SSL_ERROR_RX_MALFORMED_HANDSHAKE",
        "protocol",
        "NSS could not accept a handshake message: it refuses any over 128 KiB (MAX_HANDSHAKE_MSG_LEN in NSS's "
        "ssl3con.c), which a server sending a very long or bloated certificate chain hits, or a broken one.",
        ("chain-too-large", "malformed-certificate"),
        "SSL_ERROR_RX_MALFORMED_HANDSHAKE",
    ),
    _s(
        "firefox-distrusted",
        "Firefox",
        ("firefox",),
        r"SEC_ERROR_UNTRUSTED_(?:ISSUER|CERT)",
        "untrusted",
        "A certificate in the chain (ISSUER) or the server certificate itself (CERT) is explicitly distrusted in "
        "Firefox's certificate store (trust flags without C/P), e.g. a root the user or Mozilla marked distrusted.",
        ("private-ca", "tls-interception", "outdated-store"),
        "SEC_ERROR_UNTRUSTED_ISSUER",
        "SEC_ERROR_UNTRUSTED_CERT",
    ),
    _s(
        "firefox-network",
        "Firefox (WebDriver, devtools, about:neterror)",
        ("firefox",),
        r"NS_ERROR_(?:NET_TIMEOUT|CONNECTION_REFUSED|UNKNOWN_HOST|NET_RESET|NET_INTERRUPT|OFFLINE|"
        r"PROXY_CONNECTION_REFUSED|UNKNOWN_PROXY_HOST)",
        "network",
        "Firefox never got a certificate to judge: the connection timed out, was refused or reset, or the name "
        "did not resolve. The page shows 'The connection has timed out', 'Unable to connect' or 'Hmm. We're having "
        "trouble finding that site.'; automation and the console show the NS_ERROR_… name.",
        ("unreachable",),
        "NS_ERROR_NET_TIMEOUT",
        "NS_ERROR_CONNECTION_REFUSED",
        "NS_ERROR_UNKNOWN_HOST",
    ),
    _s(
        "firefox-page",
        "Firefox (interstitial page)",
        ("firefox",),
        r"Warning: Potential Security Risk Ahead|Secure Connection Failed|Did Not Connect: Potential Security Issue",
        "untrusted",
        "Firefox's warning page; the code (SEC_ERROR_…) is under 'Advanced'.",
        ("private-ca", "missing-intermediate", "expired", "hostname-mismatch", "tls-interception"),
        "Warning: Potential Security Risk Ahead",
        specificity=-0.6,
    ),
    # --- .NET ---
    _s(
        "dotnet-chain-errors",
        ".NET (HttpClient, SqlClient)",
        ("dotnet",),
        r"RemoteCertificateChainErrors|errors in the certificate chain|UntrustedRoot|PartialChain",
        "untrusted",
        ".NET's X509Chain failed; the chain status (UntrustedRoot, PartialChain, NotTimeValid, Revoked...) says why.",
        ("private-ca", "missing-intermediate", "tls-interception", "expired"),
        "The remote certificate is invalid because of errors in the certificate chain: UntrustedRoot",
        "The remote certificate is invalid according to the validation procedure: RemoteCertificateChainErrors",
        "The remote certificate is invalid because of errors in the certificate chain: PartialChain",
    ),
    _s(
        "dotnet-name-mismatch",
        ".NET",
        ("dotnet",),
        r"RemoteCertificateNameMismatch",
        "hostname",
        "The certificate does not cover the host name.",
        _NAME,
        "The remote certificate is invalid according to the validation procedure: RemoteCertificateNameMismatch",
        specificity=0.1,
    ),
    _s(
        "dotnet-not-time-valid",
        ".NET",
        ("dotnet",),
        r"NotTimeValid",
        "expired",
        "A certificate is outside its validity period.",
        _EXPIRED,
        "The remote certificate is invalid because of errors in the certificate chain: NotTimeValid",
        specificity=0.1,
    ),
    _s(
        "dotnet-critical-extension",
        ".NET",
        ("dotnet",),
        r"HasNotSupportedCriticalExtension",
        "usage",
        "A certificate has an extension marked critical that the platform's chain engine does not support.",
        ("unknown-critical-extension",),
        "The remote certificate is invalid because of errors in the certificate chain: "
        "HasNotSupportedCriticalExtension",
        specificity=0.1,
    ),
    _s(
        "dotnet-revoked",
        ".NET",
        ("dotnet",),
        r"chain: Revoked\b|X509ChainStatusFlags\.Revoked",
        "revoked",
        "A certificate in the chain is revoked.",
        ("revoked",),
        "The remote certificate is invalid because of errors in the certificate chain: Revoked",
        specificity=0.1,
    ),
    _s(
        "dotnet-protocol",
        ".NET",
        ("dotnet",),
        r"remote party sent a TLS alert|Cannot determine the frame size|unexpected EOF or 0 bytes from the transport",
        "protocol",
        "The TLS handshake failed before certificate validation (protocol, cipher suites, not TLS, oversized chain).",
        ("protocol-mismatch", "not-tls", "chain-too-large"),
        "System.Security.Authentication.AuthenticationException: Authentication failed because the remote party "
        "sent a TLS alert: 'HandshakeFailure'.",
        "System.IO.IOException: Received an unexpected EOF or 0 bytes from the transport stream.",
    ),
    _s(
        "dotnet-framework-trust",
        ".NET Framework (WebClient, HttpWebRequest, WCF, PowerShell 5 Invoke-WebRequest)",
        ("dotnet",),
        r"Could not establish trust relationship for the SSL/TLS secure channel",
        "untrusted",
        "Windows' certificate validation rejected the server certificate; the inner exception "
        "(RemoteCertificateChainErrors, RemoteCertificateNameMismatch) says which check failed.",
        ("private-ca", "tls-interception", "hostname-mismatch", "expired", "missing-intermediate"),
        "System.Net.WebException: The underlying connection was closed: Could not establish trust relationship "
        "for the SSL/TLS secure channel.",
        "Could not establish trust relationship for the SSL/TLS secure channel with authority 'api.example.com'.",
    ),
    # --- other common tools ---
    _s(
        "wget-issuer",
        "wget (OpenSSL or GnuTLS)",
        ("curl",),
        r"Unable to locally verify the issuer's authority|cannot verify .{0,300}'s certificate, issued by",
        "untrusted",
        "wget could not chain the certificate to a trusted root.",
        _UNTRUSTED,
        "ERROR: cannot verify api.example.com's certificate, issued by 'CN=R3,O=Let's Encrypt,C=US': Unable to "
        "locally verify the issuer's authority.",
    ),
    _s(
        "wget-self-signed",
        "wget",
        ("curl",),
        r"Self-signed certificate encountered",
        "untrusted",
        "The server certificate is self-signed.",
        ("self-signed", "private-ca"),
        "Self-signed certificate encountered.",
        specificity=0.1,
    ),
    _s(
        "wget-expired",
        "wget",
        ("curl",),
        r"Issued certificate has expired",
        "expired",
        "A certificate in the chain has expired.",
        _EXPIRED,
        "Issued certificate has expired.",
        specificity=0.1,
    ),
    _s(
        "wget-name",
        "wget",
        ("curl",),
        r"no certificate subject alternative name matches|"
        r"certificate common name .{0,300} doesn't match requested host",
        "hostname",
        "The certificate does not cover the host.",
        _NAME,
        "ERROR: no certificate subject alternative name matches requested host name 'api.example.com'.",
    ),
    _s(
        "gnutls-untrusted",
        "git / apt / wget built with GnuTLS",
        ("curl",),
        r"server certificate verification failed\. CAfile: (?!none)|The certificate is NOT trusted|"
        r"certificate issuer is unknown",
        "untrusted",
        "GnuTLS could not verify the chain.",
        _UNTRUSTED,
        "fatal: unable to access 'https://git.example.com/repo.git/': server certificate verification failed. "
        "CAfile: /etc/ssl/certs/ca-certificates.crt CRLfile: none",
        "The certificate is NOT trusted. The certificate issuer is unknown.",
    ),
    _s(
        "gnutls-no-cafile",
        "git / apt / curl built with GnuTLS, with no CA bundle",
        ("curl",),
        r"verification failed\. CAfile: none",
        "untrusted",
        "No CA bundle is configured (`CAfile: none`): git's http.sslCAInfo is unset and the system bundle was not "
        "found, so no certificate can be verified.",
        ("no-ca-bundle", "ca-file-missing"),
        "fatal: unable to access 'https://git.example.com/repo.git/': server certificate verification failed. "
        "CAfile: none CRLfile: none",
        specificity=0.1,
    ),
    _s(
        "macos-not-trusted",
        "Safari / macOS / iOS (Security framework)",
        ("safari",),
        r"certificate is not trusted|kSecTrustResultRecoverableTrustFailure|errSSLXCertChainInvalid|-9807|"
        r"was signed by an untrusted issuer",
        "untrusted",
        "Apple's trust evaluation failed (unknown issuer, private root, or policy such as 398 days/CT).",
        ("private-ca", "missing-intermediate", "validity-too-long", "tls-interception"),
        "“api.example.com” certificate is not trusted",
        "This certificate was signed by an untrusted issuer.",
        specificity=-0.1,
    ),
    _s(
        "apple-urlsession-invalid",
        "Safari / iOS / macOS apps (URLSession, NSURLErrorServerCertificateUntrusted -1202)",
        ("safari",),
        r"The certificate for this server is invalid|NSURLErrorServerCertificateUntrusted|-1202",
        "untrusted",
        "Apple's trust evaluation failed: unknown issuer, private root, name mismatch or a policy (RSA < 2048, "
        "SHA-1, 398/825 days, CT).",
        ("private-ca", "missing-intermediate", "hostname-mismatch", "weak-key", "validity-too-long"),
        "The certificate for this server is invalid. You might be connecting to a server that is pretending to be "
        "“api.example.com” which could put your confidential information at risk.",
    ),
    _s(
        "apple-urlsession-date",
        "Safari / iOS / macOS apps (URLSession -1201/-1203)",
        ("safari",),
        r"The certificate for this server (?:has expired|is not yet valid)|NSURLErrorServerCertificateHasBadDate|"
        r"NSURLErrorServerCertificateNotYetValid",
        "expired",
        "A certificate is outside its validity period (or the device clock is wrong).",
        _EXPIRED,
        "The certificate for this server has expired.",
        "The certificate for this server is not yet valid.",
        specificity=0.1,
    ),
    _s(
        "apple-ssl-error",
        "Safari / iOS / macOS apps (URLSession -1200)",
        ("safari",),
        r"An SSL error has occurred and a secure connection to the server cannot be made|"
        r"NSURLErrorSecureConnectionFailed",
        "protocol",
        "The TLS handshake failed (protocol/cipher, App Transport Security requirements, or not TLS).",
        ("protocol-mismatch", "not-tls"),
        "An SSL error has occurred and a secure connection to the server cannot be made.",
    ),
    _s(
        "safari-cannot-establish",
        "Safari",
        ("safari",),
        r"can'?t establish a secure connection to the server|cannot establish a secure connection to the server",
        "protocol",
        "Safari's TLS handshake failed before any certificate question (a certificate problem shows 'This "
        "Connection Is Not Private' instead): no common TLS version or cipher, not TLS, or a client certificate.",
        ("protocol-mismatch", "not-tls", "client-cert-required", "tls-interception"),
        "Safari Can't Open the Page. Safari can't open the page “https://api.example.com” because Safari can't "
        "establish a secure connection to the server “api.example.com”.",
    ),
    _s(
        "macos-name",
        "Safari / macOS / iOS",
        ("safari",),
        r"certificate name does not match input",
        "hostname",
        "The certificate does not cover the host.",
        _NAME,
        "“api.example.com” certificate name does not match input",
    ),
    _s(
        "macos-expired",
        "Safari / macOS / iOS",
        ("safari",),
        r"This certificate has expired|certificate is expired|errSSLCertExpired",
        "expired",
        "A certificate in the chain has expired.",
        _EXPIRED,
        "This certificate has expired.",
    ),
)


# Node reports OpenSSL's verify result as ``err.code``: the X509_V_ERR_* name without its prefix
# (lib/_tls_wrap.js onConnectSecure, src/crypto/crypto_common.cc X509ErrorCode). curl, Python, PHP and
# ``openssl s_client`` print OpenSSL's text, never that name: a paste carrying the code comes from Node.
_X509_CODE = re.compile(r"^(?P<text>.+)\|(?P<code>(?:\(\?<!ERR_\))?[A-Z][A-Z0-9_]+(?:\\b)?)$")


_PY_VERIFY = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
# Names Node never reports: it checks the host name in JavaScript (ERR_TLS_CERT_ALTNAME_INVALID).
_NOT_NODE = frozenset({"HOSTNAME_MISMATCH", "IP_ADDRESS_MISMATCH"})


def _node_twins(signatures: tuple[Signature, ...]) -> tuple[Signature, ...]:
    """Each OpenSSL certificate-verification signature (``openssl-<X509_V_ERR number>``, pattern
    ``text|CODE``) split in two: OpenSSL's text for curl, Python…, and the code for Node, ranked first."""
    out: list[Signature] = []
    for sig in signatures:
        m = _X509_CODE.match(sig.pattern)
        code = m.group("code").removeprefix("(?<!ERR_)").removesuffix("\\b") if m is not None else ""
        if not sig.id.removeprefix("openssl-").isdigit() or m is None or code in _NOT_NODE:
            out.append(sig)
            continue
        node_examples = tuple(e for e in sig.examples if code in e)
        said = sig.examples[0]
        for prefix in (f"{code}: ", "curl: (60) SSL certificate problem: ", _PY_VERIFY):
            said = said.removeprefix(prefix)
        text_examples = tuple(e for e in sig.examples if code not in e) or (
            f"curl: (60) SSL certificate problem: {said}",
        )
        node_example = (
            f"Error: {said}\n    at TLSSocket.onConnectSecure (node:_tls_wrap:1674:34) {{\n  code: '{code}'\n}}"
        )
        out.append(replace(sig, pattern=m.group("text"), examples=text_examples))
        out.append(
            Signature(
                f"node-{code.lower().replace('_', '-')}",
                f"Node.js (code {code}; also npm, yarn, Postman, VS Code)",
                ("node",),
                m.group("code"),
                sig.family,
                sig.meaning,
                sig.causes,
                node_examples or (node_example,),
                specificity=sig.specificity + 0.1,
            )
        )
    return tuple(out)


SIGNATURES: tuple[Signature, ...] = _node_twins(_BASE)
