"""Plain data shared by every layer: what was seen (evidence) and what was concluded (findings).

Collection produces :class:`Evidence`; checks read it and produce :class:`Finding`; renderers present a
:class:`Diagnosis`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, Literal, NamedTuple

from cryptography import x509

from .errors import InputError

# The kinds that are strings in the JSON vocabulary, as types (a checker catches a misspelt kind).
ChainErrorKind = Literal[
    "resolve", "connect", "timeout", "handshake", "not-tls", "too-large", "no-certificate", "parse",
    "starttls-refused", "starttls-protocol", "starttls-timeout", "proxy",
]  # fmt: skip
# The protocols whose STARTTLS-style upgrade the collector speaks (certdoctor.collect.starttls).
StartTlsProtocol = Literal[
    "smtp", "imap", "pop3", "postgres", "postgres-direct", "mysql", "ldap", "ftp", "xmpp", "xmpp-server",
    "sieve", "nntp", "irc",
]  # fmt: skip
Origin = Literal["presented", "aia", "store"]  # where a certificate of a built path came from
PathEnd = Literal["anchor", "untrusted-root", "unknown-issuer"]  # how a built path ends
RevocationKind = Literal["ocsp", "crl"]
Engine = Literal["openssl", "chrome", "firefox", "safari", "java", "go", "dotnet"]  # a client's verifier
RevocationChecks = Literal["none", "crlset", "staple"]  # what revocation evidence a client acts on by default
Sha1Policy = Literal["reject", "accept", "private-only"]
# How a deployed certificate file is written (see certdoctor.collect.deployed), and the server that reads it.
DeployedFormat = Literal["pem", "der", "pkcs7", "pkcs12", "jks", "jceks"]
# Why a deployed file gave nothing usable: "unreadable" (missing, a directory, permissions), "too-large", "parse"
# (no certificate in it), "password" (a PKCS#12 or keystore password that is missing or wrong), "library" (pyjks
# is not installed), "no-match" (a glob that matches no file).
DeployedErrorKind = Literal["unreadable", "too-large", "parse", "password", "library", "no-match"]
ServerType = Literal["nginx", "apache", "haproxy", "lb", "other"]
SERVER_TYPES: tuple[str, ...] = ("nginx", "apache", "haproxy", "lb", "other")


class DeployedRef(NamedTuple):
    """One certificate file a particular target should serve (``certdoctor watch add-file``/``discover``): read at
    each check of that target, as ``--deployed`` files are. ``password_env``/``password_file``: where the
    PKCS#12 or keystore password is (read when the file is); ``key``: the private key file configured with it."""

    path: str
    server_type: str | None = None
    key: str | None = None
    password_env: str | None = None
    password_file: str | None = None


class Verdict(StrEnum):
    """The one-word answer for a target (``verdict`` in every JSON document and scan record)."""

    VALID = "valid"  # reachable, and no error finding
    INVALID = "invalid"  # at least one error finding
    UNREACHABLE = "unreachable"  # no certificate could be obtained


JSON_VERSION = 1  # the version of the --json vocabulary: every document's "certdoctor" key


class ExitCode(IntEnum):
    """The exit status of every certdoctor command (curl and Nagios-plugin style)."""

    OK = 0  # nothing wrong (warnings allowed, unless --fail-on warning)
    PROBLEMS = 1  # problems found (errors; warnings too with --fail-on warning)
    USAGE = 2  # bad arguments or unusable input (a one-line message on stderr)
    UNCHECKED = 3  # could not check: nothing could be obtained from the target (unreachable, no certificate)
    INTERNAL = 70  # a bug in certdoctor (sysexits' EX_SOFTWARE): one line, the traceback with CERTDOCTOR_DEBUG=1
    INTERRUPTED = 130  # Ctrl-C or SIGTERM (what was done is written)


class Severity(StrEnum):
    """How bad a finding is: error (a client rejects the chain), warning (some clients do, or will), info."""

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
    ``--resolve``). ``files``: chain files instead of a server, read as one chain in the order given unless
    ``separate_files``. ``starttls``: the protocol spoken in plaintext before the TLS handshake (see
    :mod:`certdoctor.collect.starttls`), None for a port that speaks TLS from the first byte.
    """

    name: str | None
    port: int = 443
    sni: str | None = None
    addresses: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # chain files: one presented chain, in this order (leaf first)...
    separate_files: bool = False  # ...or each file the chain of another server, judged side by side
    host: str | None = None  # the host connected to (resolved, unless ``addresses``); None for files
    starttls: str | None = None  # the plaintext protocol upgraded to TLS first ("smtp", "imap", "pop3"); None: TLS
    # (key, value) pairs: the scan line's label= options or the watched target's labels (policy sections select
    # on them, see certdoctor.policy)
    labels: tuple[tuple[str, str], ...] = ()

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
    line: int | None = None  # 1-based
    file: str | None = None  # the file it was seen in, when a chain was read from several files


@dataclass(frozen=True)
class StartTls:
    """What a server said in the plaintext phase before TLS (STARTTLS, STLS): collected for every network source
    of a ``starttls`` target, whether the upgrade worked or not.

    ``protocol``: a name of :data:`certdoctor.collect.starttls.PROTOCOLS` ("smtp", "imap", "pop3", "postgres",
    "mysql", "ldap", "ftp", "xmpp"...). ``banner``: the server's greeting (its first line; MySQL: its version or
    ERR packet; LDAP, which has none: its answer to StartTLS; XMPP: its stream header; None when it sent none, as
    PostgreSQL never does). ``stage``: the step that failed ("greeting", "ehlo", "capability", "starttls"); None
    when the upgrade worked. ``code``: the reply code of that step (SMTP "454", IMAP "NO"/"BAD"/"BYE", POP3
    "-ERR", PostgreSQL "N" or a SQLSTATE, MySQL an error number or "0x…" capability flags without CLIENT_SSL, an
    LDAP resultCode, an XMPP stream error condition), when there was one.
    ``reply``: what the server answered there (a reply's lines joined by " | "; for a timeout, the bytes
    received so far). ``offered``: the extensions or capabilities the server listed (EHLO keywords, IMAP
    CAPABILITY, POP3 CAPA), upper-case. Every string is printable (control characters escaped) and capped.
    """

    protocol: str
    banner: str | None = None
    stage: str | None = None
    code: str | None = None
    reply: str | None = None
    offered: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "banner": self.banner,
            "stage": self.stage,
            "code": self.code,
            "reply": self.reply,
            "offered": list(self.offered),
        }


@dataclass(frozen=True)
class ClientAuth:
    """The server asked for a client certificate during the handshake (a CertificateRequest: RFC 8446 §4.3.2,
    RFC 5246 §7.4.4): collected for every network source that asked, whether a certificate was sent or not.

    ``ca_names``: the acceptable CA names the request carried (RFC 4514 strings, in the order sent; empty when it
    named none, and a client may send any certificate). ``sent``: a client certificate was sent (``--cert``).
    ``refused``: the server ended the connection over it (its alert, e.g. "tlsv13 alert certificate required",
    or "the server closed the connection"), None when it went on with the session (it accepted the certificate
    sent, or completed the handshake without one: the request was optional at the TLS level).
    """

    ca_names: tuple[str, ...] = ()
    sent: bool = False
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ca_names": list(self.ca_names), "sent": self.sent, "refused": self.refused}


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
    # "too-large": an oversized handshake; "parse": an unreadable file
    error_kind: ChainErrorKind | None = None
    ocsp_staple: bytes | None = None
    elapsed: float = 0.0
    handshake_bytes: int = 0  # bytes the server sent until the handshake completed (its certificate flight)
    pem_issues: tuple[PemIssue, ...] = ()  # for files: how the file is written
    starttls: StartTls | None = None  # the plaintext phase before TLS, for targets with a ``starttls`` protocol
    client_auth: ClientAuth | None = None  # the server asked for a client certificate (None: it did not)
    proxy: str | None = None  # the HTTP proxy the connection went through (its URL, without a password)
    # A server with both an RSA and an ECDSA certificate (both collected, see DiagnoseOptions.all_key_types): the
    # key type of this chain's leaf ("RSA", "ECDSA"), and whether it was obtained offering only that key type (the
    # other certificate, whose source is labelled "ADDRESS:PORT (RSA)"); None/False for a server with one
    key_type: str | None = None
    key_type_only: bool = False
    # The SignedCertificateTimestampList of the TLS signed_certificate_timestamp extension (RFC 6962 §3.3), raw;
    # None when the server sent none (or the handshake library could not read it)
    tls_scts: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.certs)


@dataclass(frozen=True, repr=False)
class DeployedFile:
    """A certificate file as deployed on a server's disk (``--deployed``), read by
    :func:`certdoctor.collect.deployed.read_deployed_file`.

    ``mtime``: the file's modification time (UTC; None when it could not be read). ``size`` in bytes. ``certs``:
    every certificate in file order (a PKCS#12 bundle's own certificate first, a keystore's key entries' chains,
    then its trusted certificates); ``leaf_index``: which of them is the server certificate (the one matching the
    private key when there is one, else the first that is not a CA; None without certificates). ``has_key``: the
    file itself holds a private key (PEM key block, PKCS#12 key bag, keystore key entry). ``key_matches``: that
    key, or the ``--key`` file (``key_source``), belongs to the leaf (None: no key to compare, or an encrypted
    one). ``error``/``error_kind``: nothing usable could be read. ``problems``: what was skipped or could not be
    checked while reading (a truncated PEM block, an encrypted key without its password), one sentence each.
    ``pem_issues``: the PEM formatting facts (:mod:`certdoctor.collect.pemlint`), for PEM files.
    """

    path: str
    mtime: datetime | None = None
    size: int = 0
    format: DeployedFormat | None = None
    certs: tuple[x509.Certificate, ...] = ()
    leaf_index: int | None = None
    has_key: bool = False
    key_matches: bool | None = None
    key_source: str | None = None
    error: str | None = None
    error_kind: DeployedErrorKind | None = None
    problems: tuple[str, ...] = ()
    pem_issues: tuple[PemIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and self.leaf_index is not None

    @property
    def leaf(self) -> x509.Certificate | None:
        return None if self.leaf_index is None else self.certs[self.leaf_index]

    def __repr__(self) -> str:
        what = self.error or f"{self.format}, {len(self.certs)} certificate(s)"
        return f"<DeployedFile {self.path}: {what}>"


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

    kind: RevocationKind
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
    aia_notes: tuple[str, ...] = ()  # e.g. the URLs not answered within the AIA time budget
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
    crls: tuple[tuple[str, bytes], ...] = ()  # --crl: (file, DER) of CRLs supplied by the user, judged offline
    max_chain_depth: int | None = None  # --max-chain-depth: intermediates a client allows (None: no limit)
    deployed: tuple[DeployedFile, ...] = ()  # --deployed: the certificate files on the server's disk
    server_type: ServerType | None = None  # --server-type: which server reads them (for the fix text)
    policy: Any = None  # --policy: a certdoctor.policy.Policy (None: no policy checks)
    labels: tuple[tuple[str, str], ...] = ()  # the target's labels (--label, label=, watch labels), for the policy
    caa: Any = None  # a certdoctor.collect.caa.CaaEvidence (None: CAA not looked up)
    ct_logs: Any = None  # --ct-log-list: a certdoctor.ct.LogList the SCT signatures are verified against (None: not)
    # --treat-as-public-root: roots whose leaves the Certificate Transparency checks judge as publicly trusted
    public_roots: tuple[x509.Certificate, ...] = ()

    def __repr__(self) -> str:
        return f"<Evidence {self.target.label()} at {self.at.isoformat()}: {len(self.chains)} source(s)>"


@dataclass(frozen=True)
class Finding:
    """One problem found, as reported in every output: the registered check's ``id``, ``title``, ``severity``
    and ``citation`` (the RFC or CA/B Forum clause), what was seen (``detail``) and how to repair it (``fix``),
    the ``sources`` (addresses or files) it applies to, the certificate it is about (``cert_position``: 0 = leaf,
    None when not presented) and machine-readable ``evidence``."""

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
    # the client families (ids: "chrome", "curl", ...) that refuse the chain because of this finding, as the
    # finding x client table and the per-client predictions say (see certdoctor.clients.verdict)
    rejected_by: tuple[str, ...] = ()

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
            "rejected_by": list(self.rejected_by),
        }


DEFAULT_TIMEOUT = 10.0  # seconds, per connection
DEFAULT_REVOCATION_TIMEOUT = 5.0  # seconds, for all OCSP/CRL lookups of one target
DEFAULT_AIA_TIMEOUT = 5.0  # seconds, for all AIA downloads of one target (every level)
DEFAULT_CAA_TIMEOUT = 5.0  # seconds, for all CAA lookups of one target
DEFAULT_WARN_DAYS = 30


@dataclass(frozen=True)
class DiagnoseOptions:
    """How to diagnose: everything that is the same for every target of a run (``check``, a ``scan``, a
    ``watch`` cycle). Passed to :class:`certdoctor.pipeline.Session`; :func:`certdoctor.diagnose` builds one
    from its keyword arguments.

    ``timeout``: seconds per connection (> 0). ``ca_files``/``ca_certs``: extra trusted roots, added to every
    store. ``ca_bundle``: judge against exactly the roots of these files (curl's ``--cacert``), instead of
    ``trust_stores``. ``trust_stores``: store names (None: mozilla and system; see ``certdoctor stores``).
    ``at``: the moment to judge as of (UTC; None: now). ``expect``: a file with the certificate that should be
    served. ``warn_days``: ``expiring-soon`` threshold in days (>= 0). ``fetch_aia``: download missing
    intermediates, within ``aia_timeout`` seconds in all (> 0; every level of the chain shares it, each download
    also bounded by ``timeout``, at most 10 s). ``key``/``key_password``: the server's private key
    (``key-mismatch``). ``clients``: also load the client families' trust stores for per-client predictions.
    ``revocation``: query OCSP responders and CRLs (stapled responses are judged either way) within
    ``revocation_timeout`` seconds in all (> 0).
    ``verdict_clients``: the client family ids whose refusal makes the verdict INVALID (None: every family,
    see ``certdoctor.clients.verdict``).
    ``allow_private_fetch``: False refuses AIA, OCSP and CRL downloads from loopback, link-local, private (RFC
    1918, RFC 4193), CGNAT, multicast and unspecified addresses, checked on the address connected to
    (``--refuse-private-urls``; the refusal is the download's error, named in the findings).
    ``crl_files``: CRL files (PEM or DER, at most :data:`certdoctor.collect.files.MAX_CRL_BYTES` each) judged
    offline like downloaded ones: verified against the issuing CA of the path (issuer name, signature, cRLSign,
    thisUpdate at the judged time) and looked up for every certificate that CA issued (``--crl``).
    ``max_chain_depth``: the number of intermediates the modelled client allows (OpenSSL's verify depth;
    None: no limit); a longer path is ``max-chain-depth-exceeded``.
    ``deployed``: certificate files or globs as deployed on the server (PEM, DER, PKCS#7, PKCS#12, JKS/JCEKS),
    re-read at every diagnosis and compared with what is served (``not-reloaded``, ``served-not-deployed``,
    ``partially-reloaded``, ``deployed-file-*``); ``deployed_password``: their PKCS#12/keystore password;
    ``server_type``: one of :data:`SERVER_TYPES`, for the fix text.
    ``client_cert``: a PEM file with the client certificate to send to servers that ask for one (mutual TLS; its
    intermediates may follow it, and its key too), ``client_key`` its key when in another file,
    ``client_key_password`` the key's password (see :mod:`certdoctor.collect.clientcert`).
    ``proxy``: the HTTP proxy (``http://[user:password@]host[:port]``) for handshakes and AIA/OCSP/CRL downloads;
    None: the environment's (``https_proxy``, ``http_proxy``, ``all_proxy``); "": none. ``no_proxy``: the hosts
    reached directly (curl's ``--noproxy`` list); None: the environment's ``no_proxy``. See
    :mod:`certdoctor.collect.proxy`.
    ``all_key_types``: after a handshake that got an RSA (or ECDSA) leaf, one more offering only ECDSA (or RSA)
    cipher suites and signature algorithms, to collect and judge the other certificate of a server that has both
    (one more connection per address; a server with one certificate refuses it at once).
    ``policy``: a :class:`certdoctor.policy.Policy` whose rules the ``policy-*`` checks apply (None: none; see
    :func:`certdoctor.policy.load_policy`); ``labels``: (key, value) pairs every target has (``check --label``),
    to which a target's own labels (a scan line's ``label=``, a watched target's) are added; the policy's
    ``[labels."k=v"]`` sections select on them.
    ``caa``: look up the CAA records of the leaf's DNS names (RFC 8659; :mod:`certdoctor.collect.caa`): True for
    every target, None for network targets only (``check``'s default), False never (unless the policy sets
    ``caa_required``); ``dns_server``: the resolver to ask (``HOST[:PORT]``; None: the system's, which is not
    asked about internal names such as ``*.test``); ``caa_timeout``: seconds for all lookups of one target
    (> 0); ``caa_issuers``: (organisation, CAA domains) entries added to the table of known CAs
    (:data:`certdoctor.checks.caa.KNOWN_ISSUERS`).
    ``ct_log_list``: a CT log list file (the JSON the browsers publish, see :func:`certdoctor.ct.load_log_list`)
    to verify SCT signatures against (None: SCTs are counted, not verified). ``public_roots``: root certificate
    files whose leaves the Certificate Transparency checks treat as publicly trusted (``--treat-as-public-root``:
    for testing CT with a private CA such as the lab's; nothing else changes for them).

    Raises :class:`certdoctor.errors.InputError` for an impossible value.
    """

    timeout: float = DEFAULT_TIMEOUT
    ca_files: tuple[str, ...] = ()
    ca_certs: tuple[x509.Certificate, ...] = ()
    ca_bundle: tuple[str, ...] = ()
    trust_stores: tuple[str, ...] | None = None
    at: datetime | str | None = None
    expect: str | None = None
    warn_days: int = DEFAULT_WARN_DAYS
    fetch_aia: bool = True
    key: str | None = None
    key_password: bytes | None = field(default=None, repr=False)
    clients: bool = True
    revocation: bool = True
    revocation_timeout: float = DEFAULT_REVOCATION_TIMEOUT
    aia_timeout: float = DEFAULT_AIA_TIMEOUT
    allow_private_fetch: bool = True
    verdict_clients: tuple[str, ...] | None = None
    crl_files: tuple[str, ...] = ()
    max_chain_depth: int | None = None
    deployed: tuple[str, ...] = ()
    deployed_password: bytes | None = field(default=None, repr=False)
    server_type: ServerType | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_key_password: bytes | None = field(default=None, repr=False)
    proxy: str | None = None
    no_proxy: str | None = None
    all_key_types: bool = True
    policy: Any = None
    labels: tuple[tuple[str, str], ...] = ()
    caa: bool | None = False
    dns_server: str | None = None
    caa_timeout: float = DEFAULT_CAA_TIMEOUT
    caa_issuers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ct_log_list: str | None = None
    public_roots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_chain_depth is not None and not (
            isinstance(self.max_chain_depth, int) and 0 <= self.max_chain_depth <= 1000
        ):
            raise InputError(f"max chain depth {self.max_chain_depth!r}: must be a whole number from 0 to 1000")
        if self.server_type is not None and self.server_type not in SERVER_TYPES:
            raise InputError(f"server type {self.server_type!r}: one of {', '.join(SERVER_TYPES)}")
        if isinstance(self.labels, Mapping):
            object.__setattr__(self, "labels", tuple(sorted(self.labels.items())))
        for name in (
            "ca_files",
            "ca_certs",
            "ca_bundle",
            "crl_files",
            "deployed",
            "labels",
            "caa_issuers",
            "public_roots",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("trust_stores", "verdict_clients"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("timeout", "revocation_timeout", "aia_timeout", "caa_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < 86_400):
                what = name.replace("_", " ")
                raise InputError(f"{what} {value!r}: must be more than 0 seconds and less than a day")
        if self.warn_days < 0:
            raise InputError(f"warn days {self.warn_days}: must be 0 or more")
