"""Collect the certificate chain a TLS server presents: asyncio for I/O, pyOpenSSL memory BIOs for TLS.

The client verifies nothing (judging is the checks' job) and accepts legacy servers, so even broken
chains get collected. The server is untrusted: the whole exchange is bounded in time and in bytes, and
every failure comes back as a :class:`PresentedChain` with ``error``/``error_kind`` set.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import socket
import time
from collections.abc import Awaitable, Callable

from cryptography import x509
from OpenSSL import SSL, crypto

from ..certinfo import is_ip, short_reason
from ..errors import CollectError
from ..model import ClientAuth, PresentedChain, StartTls
from .clientcert import ClientIdentity, ca_names
from .pem import load_der_certificate
from .proxy import MAX_CONNECT_REPLY, Proxy, open_tunnel
from .starttls import PROTOCOLS, Channel, Upgrade, UpgradeFailed, printable

__all__ = ["ResolveError", "fetch_chain", "resolve"]

_READ_SIZE = 65_536
_NOT_TLS = "the server did not speak TLS (is this a plain HTTP port?)"
# Content types of a TLS record (change_cipher_spec, alert, handshake, application_data).
_TLS_RECORD_TYPES = frozenset({20, 21, 22, 23})


class ResolveError(CollectError):
    """A host name does not resolve (or resolution timed out)."""


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.1f}" if round(seconds, 1) == seconds else f"{seconds:g}"


def _strip_brackets(address: str) -> str:
    if address.startswith("[") and address.endswith("]"):
        return address[1:-1]
    return address


def _ip_literal(text: str) -> str | None:
    """``text`` without brackets if it is an IPv4/IPv6 literal, else None."""
    candidate = _strip_brackets(text.strip())
    return candidate if is_ip(candidate) else None


async def resolve(host: str, port: int, timeout: float) -> list[str]:
    """Every IPv4 and IPv6 address of ``host`` (deduplicated, resolver order); raises ResolveError."""
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise ResolveError(f"{host}: DNS resolution timed out after {_format_seconds(timeout)} s") from None
    except socket.gaierror as exc:
        raise ResolveError(f"{host}: the name does not resolve ({exc.strerror or exc})") from None
    except (UnicodeError, ValueError, OSError) as exc:
        raise ResolveError(f"{host}: cannot resolve ({exc})") from None
    addresses: dict[str, None] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            addresses.setdefault(str(sockaddr[0]), None)
    if not addresses:
        raise ResolveError(f"{host}: the name has no IPv4 or IPv6 address")
    return list(addresses)


class _ConnState:
    """Per-connection data reachable from OpenSSL callbacks (via ``Connection.get_app_data``); only used where
    the staple cannot be read after the handshake (see ``_NATIVE``)."""

    __slots__ = ("staple",)

    def __init__(self) -> None:
        self.staple: bytes | None = None


def _on_ocsp_staple(conn: SSL.Connection, staple: bytes, _data: object) -> bool:
    if staple:
        state = conn.get_app_data()
        if isinstance(state, _ConnState):
            state.staple = staple
    return True  # we only record the staple; the checks judge it


# Reading what the server sent straight from OpenSSL, through the cffi binding pyOpenSSL itself calls. The
# parse cache is keyed by each certificate's SHA-1 fingerprint, which OpenSSL computed while decoding it (so
# X509_digest only copies it), without wrapping and re-encoding every certificate in Python objects first; and
# the OCSP staple is read after the handshake instead of through a Python callback in the middle of it. In a
# scan that saves ~2 % of the work per target. SHA-1 is enough for a cache key here: a colliding pair has to be
# crafted, and whoever crafts one controls both certificates, so a cache hit can only ever hand out a
# certificate that person could have sent anyway. Where the binding lacks a function (another pyOpenSSL), the
# public pyOpenSSL API does the same, only slower, keyed by the SHA-256 of the encoding.
_NATIVE_FUNCTIONS = (
    "SSL_get_peer_cert_chain",
    "sk_X509_num",
    "sk_X509_value",
    "X509_digest",
    "EVP_get_digestbyname",
    "SSL_get_tlsext_status_ocsp_resp",
    "BIO_new",
    "BIO_s_mem",
    "BIO_free",
    "BIO_get_mem_data",
    "i2d_X509_bio",
)
try:
    from OpenSSL._util import ffi as _ffi
    from OpenSSL._util import lib as _lib

    _SHA1 = _lib.EVP_get_digestbyname(b"sha1")
    _NATIVE = _SHA1 != _ffi.NULL and all(hasattr(_lib, name) for name in _NATIVE_FUNCTIONS)
except Exception:  # pragma: no cover - another pyOpenSSL layout
    _NATIVE = False


class _BadCertificate(Exception):
    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"certificate {position} sent by the server cannot be parsed: {reason}")


# Parsed certificates by fingerprint, one object per distinct certificate and process: a scan sees the same
# intermediates and leaves over and over.
_PARSED: dict[bytes, x509.Certificate] = {}
MAX_PARSED = 4096


def _convert(cert: crypto.X509, position: int, key: bytes | None) -> x509.Certificate:
    try:
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
    except crypto.Error as exc:
        raise _BadCertificate(position, "it cannot be encoded") from exc
    return _parse(der, position, key)


def _native_der(x509_ptr: object, position: int) -> bytes:
    """The DER encoding of one of OpenSSL's X509 objects, written as pyOpenSSL's ``dump_certificate`` writes it
    (``i2d_X509_bio`` into a memory BIO) but without wrapping the certificate in a pyOpenSSL object first.
    Raises _BadCertificate."""
    bio = _ffi.gc(_lib.BIO_new(_lib.BIO_s_mem()), _lib.BIO_free)
    if bio == _ffi.NULL or _lib.i2d_X509_bio(bio, x509_ptr) != 1:
        raise _BadCertificate(position, "it cannot be encoded")
    data = _ffi.new("char **")
    size = _lib.BIO_get_mem_data(bio, data)
    if size <= 0 or data[0] == _ffi.NULL:
        raise _BadCertificate(position, "it cannot be encoded")
    return _ffi.buffer(data[0], size)[:]


def _parse(der: bytes, position: int, key: bytes | None) -> x509.Certificate:
    """The cryptography object for ``der``, from the process-wide cache when ``key`` (its SHA-1 fingerprint, or
    None: the SHA-256 of ``der`` is used) is there. Raises _BadCertificate."""
    if key is None:
        key = hashlib.sha256(der).digest()
    parsed = _PARSED.get(key)
    if parsed is None:
        try:
            parsed = load_der_certificate(der)
        except ValueError as exc:
            raise _BadCertificate(position, short_reason(exc)) from None
        if len(_PARSED) >= MAX_PARSED:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[key] = parsed
    return parsed


def _peer_certs(conn: SSL.Connection, max_certs: int) -> tuple[list[x509.Certificate], int]:
    """The first ``max_certs`` certificates the server sent, as cryptography objects, and how many it sent
    (a hostile server may send hundreds: only those kept are converted). Raises _BadCertificate."""
    if not _NATIVE:
        chain = conn.get_peer_cert_chain() or []
        return [_convert(cert, i, None) for i, cert in enumerate(chain[:max_certs])], len(chain)
    stack = _lib.SSL_get_peer_cert_chain(conn._ssl)
    if stack == _ffi.NULL:
        return [], 0
    total = _lib.sk_X509_num(stack)
    digest = _ffi.new("unsigned char[]", _lib.EVP_MAX_MD_SIZE)
    size = _ffi.new("unsigned int *")
    certs: list[x509.Certificate] = []
    for i in range(min(total, max_certs)):
        key = None
        pointer = _lib.sk_X509_value(stack, i)
        if _lib.X509_digest(pointer, _SHA1, digest, size) == 1:
            key = _ffi.buffer(digest, size[0])[:]
            cert = _PARSED.get(key)
            if cert is not None:
                certs.append(cert)
                continue
        certs.append(_parse(_native_der(pointer, i), i, key))  # a certificate not seen before
    return certs, total


def _staple(conn: SSL.Connection, state: _ConnState | None) -> bytes | None:
    """The OCSP response the server stapled, if any."""
    if state is not None:
        return state.staple
    pointer = _ffi.new("unsigned char **")
    size = _lib.SSL_get_tlsext_status_ocsp_resp(conn._ssl, pointer)
    if size <= 0 or pointer[0] == _ffi.NULL:
        return None
    return bytes(_ffi.buffer(pointer[0], size))


# The cipher suites of the first handshake: OpenSSL's default list (what curl, Python and most clients
# offer), at security level 0 so that weak keys, signatures and old TLS versions still complete the handshake
# and the checks can name them.
_MODERN_CIPHERS = b"DEFAULT:@SECLEVEL=0"
# The retry for servers that refuse the first ClientHello: every cipher suite OpenSSL has (3DES, DSS,
# CAMELLIA, anonymous ...). PSK and SRP suites are left out of the list: OpenSSL never offers them without a
# PSK/SRP callback, so the ClientHello is the same, but it skips weighing ~50 unusable suites in every handshake.
_LEGACY_CIPHERS = b"ALL:!PSK:!SRP:@SECLEVEL=0"
# What a server answers when it shares no cipher suite (or version) with the first ClientHello: an alert, a
# reset (Windows SChannel), or a close without a word (Python's asyncio servers, among others).
_REFUSALS = (
    "alert handshake failure",
    "alert protocol version",
    "alert insufficient security",
    "no shared cipher",
    "reset during the TLS handshake",
    "without answering the ClientHello",
)
_contexts: dict[tuple[bool, str | None, str | None], SSL.Context] = {}

# Offering only one key type, to collect each certificate of a server that has an RSA and an ECDSA one: in TLS 1.2
# the cipher suites' authentication (OpenSSL's aRSA/aECDSA groups); a server that speaks only TLS 1.3 picks its
# certificate by the signature algorithms offered (RFC 8446 §4.2.3), so the "…13" variants offer those instead.
RESTRICTIONS = {
    "rsa": (b"aRSA:@SECLEVEL=0", None),
    "ecdsa": (b"aECDSA:@SECLEVEL=0", None),
    "rsa13": (None, b"rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:RSA+SHA256:RSA+SHA384:RSA+SHA512"),
    "ecdsa13": (None, b"ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512"),
}


# The servers that asked for a client certificate: OpenSSL calls the certificate callback (SSL_CTX_set_cert_cb) on a
# client only when the server sent a CertificateRequest (statem_clnt.c, tls_prepare_client_certificate), so the
# handshakes of servers that do not ask cost nothing. Keyed by the address of the SSL object; cleared per attempt.
_ASKED: set[int] = set()
_cert_callback: object = None
try:
    if _NATIVE and hasattr(_lib, "SSL_CTX_set_cert_cb"):

        @_ffi.callback("int (*)(SSL *, void *)")
        def _cert_callback(ssl: object, _arg: object) -> int:  # type: ignore[misc]
            _ASKED.add(int(_ffi.cast("uintptr_t", ssl)))
            return 1  # go on: with a certificate configured OpenSSL sends it, otherwise an empty Certificate

except Exception:  # pragma: no cover - another binding
    _cert_callback = None


# SCTs in the TLS signed_certificate_timestamp extension (RFC 6962 §3.3, extension 18): asked for in every
# ClientHello (empty extension_data) through OpenSSL's custom extension API, whose parse callback gets the
# server's SignedCertificateTimestampList. OpenSSL hands the extension to a custom parser when its own CT
# validation is off (extensions_clnt.c, tls_parse_stoc_sct), but the legacy API's context is TLS 1.2 and below
# (SSL_CTX_add_client_custom_ext), and the binding does not expose SSL_CTX_add_custom_ext (which takes the
# SSL_EXT_TLS1_3_CERTIFICATE context) nor OpenSSL's own CT API (SSL_get0_peer_scts). In TLS 1.3 the SCTs ride in
# the extensions of the leaf's CertificateEntry (RFC 8446 §4.4.2), so they are read from the decrypted
# Certificate message that OpenSSL hands to the message callback (SSL_CTX_set_msg_callback; the ClientHello
# still carries the empty extension 18, added for every ClientHello). Keyed by the address of the SSL object;
# popped after each attempt.
SCT_EXTENSION = 18
MAX_TLS_SCTS = 65_535  # the list's own 2-byte length bounds it
_TLS_SCTS: dict[int, bytes] = {}
_sct_callback: object = None
try:
    if _NATIVE and hasattr(_lib, "SSL_CTX_add_client_custom_ext"):

        @_ffi.callback("int (*)(SSL *, unsigned int, unsigned char *, size_t, int *, void *)")
        def _sct_callback(ssl: object, _type: int, data: object, size: int, _alert: object, _arg: object) -> int:  # type: ignore[misc]
            if 0 < size <= MAX_TLS_SCTS + 2:
                _TLS_SCTS[int(_ffi.cast("uintptr_t", ssl))] = bytes(_ffi.buffer(data, size))
            return 1  # never fail the handshake over it: the checks judge what was sent

except Exception:  # pragma: no cover - another binding
    _sct_callback = None

TLS13 = 0x0304
_HANDSHAKE, _CERTIFICATE = 22, 11  # content type (RFC 8446 §5.1) and handshake type (§4)


def tls13_certificate_scts(message: bytes) -> bytes | None:
    """The ``signed_certificate_timestamp`` extension_data (a SignedCertificateTimestampList) of the first
    CertificateEntry of a TLS 1.3 Certificate handshake message (``message``: the 4-byte handshake header, then
    certificate_request_context<0..255>, certificate_list<0..2^24-1> of cert_data<1..2^24-1> and
    extensions<0..2^16-1>; RFC 8446 §4.4.2). None without one, or for a message that does not parse."""
    if len(message) < 5 or message[0] != _CERTIFICATE:
        return None
    if 4 + int.from_bytes(message[1:4], "big") != len(message):  # one whole handshake message
        return None
    pos = 4 + 1 + message[4]  # header, request context
    pos += 3  # certificate_list length
    cert_len = int.from_bytes(message[pos : pos + 3], "big")
    pos += 3 + cert_len
    ext_end = pos + 2 + int.from_bytes(message[pos : pos + 2], "big")
    if ext_end > len(message):
        return None
    pos += 2
    while pos + 4 <= ext_end:
        ext_type = int.from_bytes(message[pos : pos + 2], "big")
        size = int.from_bytes(message[pos + 2 : pos + 4], "big")
        if ext_type == SCT_EXTENSION and 0 < size <= MAX_TLS_SCTS + 2 and pos + 4 + size <= ext_end:
            return message[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return None


_msg_callback: object = None
try:
    if _NATIVE and _sct_callback is not None and hasattr(_lib, "SSL_CTX_set_msg_callback"):

        @_ffi.callback("void (*)(int, int, int, const void *, size_t, SSL *, void *)")
        def _msg_callback(
            write_p: int, version: int, content_type: int, buf: object, size: int, ssl: object, _arg: object
        ) -> None:  # type: ignore[misc]
            # received TLS 1.3 Certificate messages only (in TLS 1.2 the extension arrives in the ServerHello)
            if write_p or content_type != _HANDSHAKE or version != TLS13 or size < 4:
                return
            message = bytes(_ffi.buffer(buf, size))
            if message[0] != _CERTIFICATE:
                return
            found = tls13_certificate_scts(message)
            if found is not None:
                _TLS_SCTS.setdefault(int(_ffi.cast("uintptr_t", ssl)), found)

except Exception:  # pragma: no cover - another binding
    _msg_callback = None


def _conn_id(conn: SSL.Connection) -> int:
    return int(_ffi.cast("uintptr_t", conn._ssl)) if _NATIVE else 0


def _ssl_id(conn: SSL.Connection) -> int:
    return int(_ffi.cast("uintptr_t", conn._ssl)) if _cert_callback is not None else 0


def _client_context(
    legacy: bool = False, identity: ClientIdentity | None = None, restrict: str | None = None
) -> SSL.Context:
    """The process-wide client context (building one per handshake would dominate bulk scans), one per client
    certificate (``identity``: sent when a server asks for one) and key-type restriction (see RESTRICTIONS)."""
    key = (legacy, None if identity is None else identity.fingerprint, restrict)
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_verify(SSL.VERIFY_NONE)
        ctx.set_min_proto_version(SSL.TLS1_VERSION)
        ctx.set_cipher_list(_LEGACY_CIPHERS if legacy else _MODERN_CIPHERS)
        # Talk to servers without RFC 5746 support too (OpenSSL 3 refuses them by default).
        ctx.set_options(SSL.OP_ALL | SSL.OP_LEGACY_SERVER_CONNECT | SSL.OP_NO_COMPRESSION)
        if not _NATIVE:
            ctx.set_ocsp_client_callback(_on_ocsp_staple)
        if _cert_callback is not None:
            _lib.SSL_CTX_set_cert_cb(ctx._context, _cert_callback, _ffi.NULL)
        if _sct_callback is not None:
            _lib.SSL_CTX_add_client_custom_ext(
                ctx._context, SCT_EXTENSION, _ffi.NULL, _ffi.NULL, _ffi.NULL, _sct_callback, _ffi.NULL
            )
        if _msg_callback is not None:
            _lib.SSL_CTX_set_msg_callback(ctx._context, _msg_callback)
        if restrict is not None:
            ciphers, sigalgs = RESTRICTIONS[restrict]
            if ciphers is not None:
                ctx.set_cipher_list(ciphers)
                ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
            else:
                ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
                if _lib.SSL_CTX_set1_sigalgs_list(ctx._context, sigalgs) != 1:
                    raise ValueError(f"OpenSSL refuses the signature algorithms {sigalgs!r}")
        if identity is not None:
            ctx.use_certificate(identity.cert)
            for extra in identity.certs[1:]:
                ctx.add_extra_chain_cert(extra)
            ctx.use_privatekey(identity.key)
        _contexts[key] = ctx
    return ctx


@functools.lru_cache(maxsize=4096)
def _sni_bytes(sni: str) -> bytes | None:
    """The server_name to send: None for IP literals and empty names; raises ValueError if unusable. Cached:
    a scan sends the same few names over and over (a ValueError is not cached, and is raised again)."""
    name = sni.strip().rstrip(".")
    if not name or _ip_literal(name) is not None:
        return None
    if name.isascii():
        encoded = name.encode("ascii")
    else:
        try:
            try:
                import idna  # IDNA 2008 / UTS 46, like browsers (ships with httpx)
            except ImportError:  # pragma: no cover
                encoded = name.encode("idna")
            else:
                encoded = idna.encode(name, uts46=True)
        except UnicodeError as exc:
            raise ValueError(str(exc) or "not a valid internationalized name") from None
    if b"\0" in encoded or len(encoded) > 253:
        raise ValueError("not a valid host name")
    return encoded


def _source_label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_message(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the address ({exc.strerror or exc})"
    code = exc.errno
    if code == errno.ENETUNREACH:
        return "network unreachable"
    if code == errno.EHOSTUNREACH:
        return "host unreachable"
    if code == errno.ECONNRESET:
        return "connection reset while connecting"
    return f"cannot connect: {exc.strerror or exc}"


def _looks_like_tls(first: bytes) -> bool:
    return len(first) < 2 or (first[0] in _TLS_RECORD_TYPES and first[1] == 3)


def _reasons(exc: SSL.Error) -> list[str]:
    """OpenSSL's reason strings of ``exc``, deduplicated."""
    reasons: list[str] = []
    details = exc.args[0] if exc.args else None
    if isinstance(details, list):
        for item in details:
            reason = item[-1] if isinstance(item, tuple) and item else item
            if reason and str(reason) not in reasons:
                reasons.append(str(reason))
    elif details:
        reasons.append(str(details))
    return reasons


def _complete_record(data: bytes) -> bool:
    """``data`` begins with at least one whole TLS record (5-byte header, then its length)."""
    return len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big")


def _handshake_message(exc: SSL.Error, first: bytes) -> str:
    if first and not _looks_like_tls(first):
        return _NOT_TLS
    reasons = _reasons(exc)
    if isinstance(exc, SSL.ZeroReturnError):
        return "the server closed the TLS session during the handshake"
    if not reasons:
        return "TLS handshake failed (no reason given by OpenSSL)"
    text = "; ".join(reasons)
    if "alert protocol version" in text:
        return f"the server accepts none of the TLS versions offered ({text})"
    if "alert handshake failure" in text:
        return f"the server aborted the handshake ({text}): no common cipher, or the server wants another SNI"
    if "unrecognized name" in text:  # OpenSSL says "tlsv1 unrecognized name" for alert 112
        return f"the server does not know the SNI name sent ({text})"
    return f"TLS handshake failed: {text}"


def _drain(conn: SSL.Connection) -> bytes:
    """Everything OpenSSL wants to send."""
    try:
        data = conn.bio_read(_READ_SIZE)
    except SSL.WantReadError:
        return b""
    if len(data) < _READ_SIZE:
        return data
    parts = [data]
    while True:
        try:
            parts.append(conn.bio_read(_READ_SIZE))
        except SSL.WantReadError:
            return b"".join(parts)


class _Handshake(asyncio.Protocol):
    """One TLS client handshake over memory BIOs, driven by the transport's callbacks (no streams: a scan
    runs thousands of these a second). ``done`` gets None on success, or (error_kind, message).

    With a ``channel`` the connection starts in plaintext: what arrives goes to the channel (a STARTTLS
    negotiator reads it there) until :meth:`start_tls` begins the handshake on the same connection."""

    def __init__(
        self,
        conn: SSL.Connection,
        max_bytes: int,
        done: asyncio.Future[tuple[str, str] | None],
        channel: Channel | None = None,
    ) -> None:
        self.conn = conn
        self.max_bytes = max_bytes
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.received = 0
        self.first = b""
        self.channel = channel
        # After a TLS 1.3 handshake in which the server asked for a client certificate: its answer to our
        # Certificate and Finished (None: a record that is not an alert, such as a session ticket; else the alert).
        self.after: asyncio.Future[str | None] | None = None
        self.post = b""

    def write_plain(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def start_tls(self) -> None:
        """End the plaintext phase: drop what the server sent after its last reply, send the ClientHello."""
        if self.channel is not None:
            self.channel.discard()
            self.channel = None
        self._step()

    def _fail(self, kind: str, message: str) -> None:
        if not self.done.done():
            self.done.set_result((kind, message))

    def _flush(self) -> None:
        out = _drain(self.conn)
        if out and self.transport is not None:
            self.transport.write(out)

    def _step(self) -> None:
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return
        except SSL.Error as exc:
            message = _handshake_message(exc, self.first)
            self._fail("not-tls" if message == _NOT_TLS else "handshake", message)
            return
        self._flush()  # our Finished (and anything else pending)
        if not self.done.done():
            self.done.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.channel is not None:
            sockname = transport.get_extra_info("sockname")
            if isinstance(sockname, tuple) and sockname:
                self.channel.local_address = str(sockname[0])
            return  # plaintext first: the negotiator speaks
        self._step()

    def data_received(self, data: bytes) -> None:
        if self.channel is not None:
            self.channel.feed(data)
            return
        if self.done.done():
            if self.after is not None and not self.after.done():
                self._after_handshake(data)
            return  # after the handshake (session tickets): not our business
        if len(self.first) < 5:
            self.first = (self.first + data)[:5]
        self.received += len(data)
        if self.received > self.max_bytes:
            self._fail(
                "too-large", f"the server sent more than {self.max_bytes} bytes without completing the handshake"
            )
            return
        self.conn.bio_write(data)
        self._step()

    def _after_handshake(self, data: bytes) -> None:
        """The server's first records after our Finished: an alert (it refuses the client certificate, or its
        absence: RFC 8446 §4.4.2.4, alert certificate_required) or anything else (it goes on)."""
        assert self.after is not None
        self.post = (self.post + data)[:_READ_SIZE]
        self.conn.bio_write(data)
        try:
            self.conn.recv(_READ_SIZE)
        except SSL.WantReadError:
            if _complete_record(self.post):
                self.after.set_result(None)
            return
        except SSL.ZeroReturnError:
            self.after.set_result("the server closed the TLS session (close_notify)")
            return
        except SSL.Error as exc:
            self.after.set_result("; ".join(_reasons(exc)) or "TLS error after the handshake")
            return
        self.after.set_result(None)

    def eof_received(self) -> bool:
        if self.channel is not None:
            self.channel.feed_eof()
        return False  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        if self.channel is not None:
            self.channel.feed_eof()
            return
        if self.after is not None and not self.after.done():
            self.after.set_result("the server closed the connection right after the handshake")
        if self.done.done():
            return
        if self.first and not _looks_like_tls(self.first):
            self._fail("not-tls", _NOT_TLS)
        elif exc is not None:
            reason = "reset" if isinstance(exc, ConnectionResetError) else f"lost ({exc})"
            self._fail("handshake", f"the connection was {reason} during the TLS handshake")
        elif self.received == 0:
            self._fail(
                "handshake",
                "the server closed the connection without answering the ClientHello "
                "(it may reject the TLS versions, ciphers or SNI name offered)",
            )
        else:
            self._fail("handshake", "the server closed the connection during the TLS handshake")


def _close(transport: asyncio.BaseTransport | None, *, polite: bool) -> None:
    """Close without waiting: after a completed handshake a plain TCP close (FIN; no close_notify, which would
    cost another record and syscall per target in a scan), otherwise an abort."""
    if transport is None:
        return
    try:
        if polite:
            transport.close()
        else:
            transport.abort()  # type: ignore[attr-defined]
    except Exception:  # the connection may already be gone; nothing useful to report
        pass


async def fetch_chain(
    address: str,
    port: int,
    sni: str | None,
    timeout: float = 10.0,
    *,
    max_certs: int = 32,
    max_bytes: int = 1_048_576,
    gate: Callable[[], Awaitable[None]] | None = None,
    starttls: str | None = None,
    identity: ClientIdentity | None = None,
    proxy: Proxy | None = None,
    restrict: str | None = None,
) -> PresentedChain:
    """Handshake with ``address:port`` and return the certificates it presents; never raises.

    ``starttls``: a protocol of :data:`certdoctor.collect.starttls.PROTOCOLS` ("smtp", "imap", "pop3") to speak
    in plaintext first, up to its upgrade command; the result's ``starttls`` says what the server said. A server
    that does not upgrade is an ``error_kind`` of "starttls-refused" (it speaks the protocol but does not offer
    or refuses the upgrade), "starttls-protocol" (it does not speak the protocol) or "starttls-timeout" (the
    plaintext phase did not end within ``timeout``). An unknown protocol name raises ValueError.

    The first ClientHello offers what common clients offer; a server that refuses it (no shared cipher suite
    or version) is asked once more with every suite OpenSSL has, so that even a legacy-only server's
    certificate gets collected. ``timeout`` bounds both attempts together. ``gate``, when given, is awaited
    before each connection (a scan's rate limit).

    ``identity``: the client certificate to send when the server asks for one (mutual TLS). A server that asks is
    recorded in the result's ``client_auth`` (the CA names it accepts; whether it refused the connection over the
    certificate, or its absence): a server that ends the handshake for that still has its chain collected (it sent
    it before asking), and after a TLS 1.3 handshake the server's first records are waited for (at most
    :data:`CLIENT_AUTH_WAIT` seconds), since there the refusal comes after the client's Finished.

    ``proxy``: an HTTP proxy to open a tunnel through first (CONNECT ``address:port``, where ``address`` may be a
    host name: the proxy resolves it). A proxy that cannot be reached, refuses the tunnel (407, 403, 502...) or
    does not answer in HTTP within the timeout and :data:`~certdoctor.collect.proxy.MAX_CONNECT_REPLY` bytes is an
    ``error_kind`` of "proxy" whose message quotes its status line.

    ``restrict``: offer only one key type (a key of :data:`RESTRICTIONS`), with no legacy retry.
    """
    upgrade = None
    if starttls is not None:
        upgrade = PROTOCOLS.get(starttls)
        if upgrade is None:
            raise ValueError(f"unknown STARTTLS protocol {starttls!r} (known: {', '.join(PROTOCOLS)})")
    started = time.perf_counter()
    if gate is not None:
        await gate()
    first = await _attempt(
        address,
        port,
        sni,
        timeout,
        max_certs,
        max_bytes,
        started,
        legacy=False,
        upgrade=upgrade,
        identity=identity,
        proxy=proxy,
        restrict=restrict,
    )
    if restrict is not None:
        return first
    if first.error_kind != "handshake" or not any(r in (first.error or "") for r in _REFUSALS):
        return first
    remaining = timeout - (time.perf_counter() - started)
    if remaining <= 0.05:
        return first
    if gate is not None:
        await gate()
    second = await _attempt(
        address,
        port,
        sni,
        remaining,
        max_certs,
        max_bytes,
        started,
        legacy=True,
        upgrade=upgrade,
        identity=identity,
        proxy=proxy,
    )
    if second.error_kind is None or second.error_kind == "no-certificate":
        return second
    return first  # refused both ways: the answer to what common clients offer says more


def _failure(
    source: str,
    host: str,
    started: float,
    kind: str,
    message: str,
    starttls: StartTls | None = None,
    proxy: Proxy | None = None,
) -> PresentedChain:
    return PresentedChain(
        source=source,
        address=host,
        error=message,
        error_kind=kind,  # type: ignore[arg-type]
        elapsed=time.perf_counter() - started,
        starttls=starttls,
        proxy=None if proxy is None else proxy.label,
    )


# Seconds of silence after which a STARTTLS negotiator sends its first command unasked (at most a third of the
# timeout): a server of another protocol that waits for the client (HTTP, a TLS port) then says what it is.
_NUDGE_AFTER = 3.0


def _upgrade_failed(upgrade: Upgrade, exc: UpgradeFailed, channel: Channel) -> tuple[str, str, StartTls]:
    kind = "starttls-refused" if exc.kind == "refused" else "starttls-protocol"
    info = StartTls(
        upgrade.name,
        banner=channel.banner,
        stage=exc.stage,
        code=exc.code,
        reply=exc.reply,
        offered=channel.offered,
    )
    message = f"{upgrade.title} {upgrade.command}: {exc}"
    if exc.kind == "protocol" and channel.received == 0 and upgrade.implicit_scheme:
        message += f" (a port that speaks TLS from the first byte{_implicit_example(upgrade)} waits for the client's "
        message += "ClientHello and closes on anything else)"
    return kind, message, info


def _implicit_example(upgrade: Upgrade) -> str:
    """ ", such as ldaps:// on 636," for a protocol with an implicit-TLS port, else nothing."""
    if upgrade.implicit_scheme is None:
        return ""
    return f", such as {upgrade.implicit_scheme}:// on {upgrade.implicit_port},"


def _article(title: str) -> str:
    """ "an" before a title said letter by letter from a vowel sound (an SMTP, an LDAP), else "a" (a POP3, a
    ManageSieve)."""
    if title[:2].isupper():
        return "an" if title[0] in "AEFHILMNORSX" else "a"
    return "an" if title[0] in "AEIOU" else "a"


def _upgrade_timeout(upgrade: Upgrade, channel: Channel, seconds: str) -> tuple[str, str, StartTls]:
    pending = channel.pending or channel.recent
    if channel.received == 0:
        tls_port = f"a port that speaks TLS from the first byte{_implicit_example(upgrade)} waits for the client"
        article = _article(upgrade.title)
        if upgrade.client_first:
            said = f"the server sent nothing ({article} {upgrade.title} server answers {upgrade.command} at once"
            said += f"; {tls_port})" if upgrade.implicit_scheme else ")"
        else:
            said = f"the server sent nothing ({article} {upgrade.title} server greets first; {tls_port})"
        reply = None
    elif upgrade.name in ("postgres", "mysql"):  # binary protocols: what is pending, in hex
        reply = pending[:64].hex(" ") or None
        said = f"{channel.received} byte(s) so far, the last message unfinished"
    elif pending:
        reply = printable(pending.decode("utf-8", "replace"))
        unit = "line" if not channel.recent else "message"
        said = f"{len(pending)} byte(s) of an unfinished {unit} so far: {printable(reply, 80)!r}"
    else:
        reply = channel.last_reply
        said = f"its last line was {printable(reply or '', 80)!r}"
    waiting = {"greeting": "its greeting", "starttls": f"its answer to {upgrade.command}"}.get(
        channel.stage, f"its answer to {channel.stage.upper()}"
    )
    message = f"{upgrade.title} {upgrade.command}: the server did not send {waiting} within {seconds} s ({said})"
    info = StartTls(upgrade.name, banner=channel.banner, stage=channel.stage, reply=reply, offered=channel.offered)
    return "starttls-timeout", message, info


async def _attempt(
    address: str,
    port: int,
    sni: str | None,
    timeout: float,
    max_certs: int,
    max_bytes: int,
    started: float,
    *,
    legacy: bool,
    upgrade: Upgrade | None = None,
    identity: ClientIdentity | None = None,
    proxy: Proxy | None = None,
    restrict: str | None = None,
) -> PresentedChain:
    host = _strip_brackets(address.strip())
    source = _source_label(host, port)
    try:
        server_name = None if sni is None else _sni_bytes(sni)
    except ValueError as exc:
        return _failure(source, host, started, "handshake", f"cannot send {sni!r} as SNI: {exc}")

    transport: asyncio.BaseTransport | None = None
    conn: SSL.Connection | None = None
    polite = False
    phase = "connect"
    channel: Channel | None = None
    upgraded: StartTls | None = None
    loop = asyncio.get_running_loop()
    try:
        conn = SSL.Connection(_client_context(legacy, identity, restrict), None)
        state = None
        if not _NATIVE:
            state = _ConnState()
            conn.set_app_data(state)
        conn.set_connect_state()
        conn.request_ocsp()
        if server_name is not None:
            conn.set_tlsext_host_name(server_name)
        if upgrade is not None and upgrade.alpn:
            conn.set_alpn_protos(list(upgrade.alpn))
        done: asyncio.Future[tuple[str, str] | None] = loop.create_future()
        protocol = _Handshake(conn, max_bytes, done)
        if upgrade is not None:
            channel = Channel(upgrade.name, protocol.write_plain)
            channel.server_name = sni or (None if is_ip(host) else host)
            protocol.channel = channel
        tunnel: Channel | None = None
        if proxy is not None:  # the CONNECT exchange comes first, on a channel of its own
            tunnel = Channel("http", protocol.write_plain, max_line=MAX_CONNECT_REPLY, max_bytes=MAX_CONNECT_REPLY)
            tunnel.stage = "connect"
            protocol.channel = tunnel

        async with asyncio.timeout(timeout):
            try:
                if proxy is not None:
                    transport, _ = await loop.create_connection(lambda: protocol, proxy.host, proxy.port)
                else:
                    transport, _ = await loop.create_connection(lambda: protocol, host, port)
            except OSError as exc:
                if proxy is not None:
                    message = f"cannot connect to the proxy {proxy.label}: {_connect_message(exc)}"
                    return _failure(source, host, started, "proxy", message, proxy=proxy)
                if isinstance(exc, TimeoutError):
                    message = "no TCP connection established (connect timed out)"
                    return _failure(source, host, started, "timeout", message)
                kind = "resolve" if isinstance(exc, socket.gaierror) else "connect"
                return _failure(source, host, started, kind, _connect_message(exc))
            if proxy is not None and tunnel is not None:
                phase = "proxy"
                refused = await open_tunnel(protocol.write_plain, tunnel, host, port, proxy)
                if refused is not None:
                    return _failure(source, host, started, "proxy", refused, proxy=proxy)
                if channel is not None:  # what the server said right after the tunnel opened is its greeting
                    channel.local_address = tunnel.local_address
                    channel.feed(tunnel.pending)
                    protocol.channel = channel
                else:
                    protocol.start_tls()
            if upgrade is not None and channel is not None:
                phase = "starttls"
                try:
                    await upgrade.negotiate(channel, min(_NUDGE_AFTER, timeout / 3))
                except UpgradeFailed as exc:
                    return _failure(source, host, started, *_upgrade_failed(upgrade, exc, channel))
                upgraded = StartTls(upgrade.name, banner=channel.banner, offered=channel.offered)
                protocol.start_tls()
            phase = "handshake"
            failed = await done
        client_auth = None
        if _ssl_id(conn) in _ASKED:
            phase = "client certificate"
            client_auth = await _client_auth(
                conn, protocol, failed, identity, timeout - (time.perf_counter() - started)
            )
            if client_auth.refused is not None and failed is not None:
                failed = None  # refused over the client certificate: the chain it sent before is what we want
        if failed is not None:
            kind, message = failed
            if upgrade is not None and upgrade.name == "postgres-direct" and protocol.received == 0:
                message += (
                    "; a PostgreSQL server before 17 reads a ClientHello as a startup packet and closes: use "
                    "postgres:// (SSLRequest) unless the server is PostgreSQL 17 or later"
                )
            if kind == "not-tls" and upgrade is not None:
                message = (
                    f"the server agreed to {upgrade.command} ({upgrade.title}) but then did not speak TLS: it answered "
                    "the ClientHello in plaintext"
                )
            return _failure(source, host, started, kind, message, starttls=upgraded)

        polite = True
        received = protocol.received
        try:
            converted, total = _peer_certs(conn, max_certs)
        except _BadCertificate as exc:
            return _failure(source, host, started, "handshake", str(exc))
        certs = tuple(converted)
        version = conn.get_protocol_version_name()
        cipher = conn.get_cipher_name()
        elapsed = time.perf_counter() - started
        staple = _staple(conn, state)
        tls_scts = _TLS_SCTS.pop(_conn_id(conn), None) if _TLS_SCTS else None
        if not total:
            return PresentedChain(
                source=source,
                address=host,
                tls_version=version,
                cipher=cipher,
                error="the handshake completed but the server sent no certificate (anonymous cipher?)",
                error_kind="no-certificate",
                ocsp_staple=staple,
                elapsed=elapsed,
                starttls=upgraded,
                proxy=None if proxy is None else proxy.label,
            )
        return PresentedChain(
            source=source,
            address=host,
            certs=certs,
            total_received=total,
            handshake_bytes=received,
            tls_version=version,
            cipher=cipher,
            ocsp_staple=staple,
            elapsed=elapsed,
            starttls=upgraded,
            client_auth=client_auth,
            proxy=None if proxy is None else proxy.label,
            tls_scts=tls_scts,
        )
    except TimeoutError:
        seconds = _format_seconds(timeout)
        if phase == "proxy" and proxy is not None:
            message = f"the proxy {proxy.label} did not answer CONNECT within {seconds} s"
            return _failure(source, host, started, "proxy", message, proxy=proxy)
        if phase == "starttls" and upgrade is not None and channel is not None:
            return _failure(source, host, started, *_upgrade_timeout(upgrade, channel, seconds))
        if phase == "connect":
            return _failure(source, host, started, "timeout", f"no TCP connection established within {seconds} s")
        return _failure(
            source, host, started, "timeout", f"no TLS handshake completed within {seconds} s", starttls=upgraded
        )
    except Exception as exc:  # defensive: a hostile server must never crash the caller
        message = f"unexpected error during the {phase}: {type(exc).__name__}: {exc}"
        kind = phase if phase in ("connect", "handshake", "proxy") else "handshake"
        return _failure(source, host, started, kind, message)
    finally:
        if conn is not None and _ASKED:
            _ASKED.discard(_ssl_id(conn))
        if conn is not None and _TLS_SCTS:
            _TLS_SCTS.pop(_conn_id(conn), None)
        _close(transport, polite=polite)


# Seconds to wait, after a TLS 1.3 handshake in which the server asked for a client certificate, for its first
# records: an alert (refused) or a session ticket (accepted). Servers answer within a round trip.
CLIENT_AUTH_WAIT = 2.0


async def _client_auth(
    conn: SSL.Connection,
    protocol: _Handshake,
    failed: tuple[str, str] | None,
    identity: ClientIdentity | None,
    remaining: float,
) -> ClientAuth:
    """What the server that asked for a client certificate did with ours (or its absence): a handshake that failed
    with an alert was refused; a TLS 1.3 handshake is followed by the server's answer (see CLIENT_AUTH_WAIT)."""
    refused: str | None = None
    if failed is not None:
        try:
            sent_chain = _peer_certs(conn, 1)[1] > 0
        except _BadCertificate:
            sent_chain = False
        if failed[0] == "handshake" and sent_chain:
            refused = failed[1]
    elif conn.get_protocol_version_name() == "TLSv1.3" and remaining > 0:
        after = asyncio.get_running_loop().create_future()
        protocol.after = after
        protocol.post = b""
        try:
            async with asyncio.timeout(min(CLIENT_AUTH_WAIT, remaining)):
                refused = await after
        except TimeoutError:
            refused = None  # nothing said: the session goes on
    return ClientAuth(ca_names=ca_names(conn), sent=identity is not None, refused=refused)
