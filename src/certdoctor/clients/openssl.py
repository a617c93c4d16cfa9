"""OpenSSL's own chain verifier, run in-process, for the clients built on OpenSSL (curl, Python, Node).

Instead of modelling what OpenSSL's ``X509_verify_cert`` (crypto/x509/x509_vfy.c) would say, this module asks
it: the presented certificates go in as the untrusted stack, the client's trust store as the X509_STORE, the
judged time as the verify parameter's time, and the context is set up the way libssl sets it up for a client
(``ssl_verify_cert_chain`` in ssl/ssl_cert.c):

- ``X509_STORE_CTX_set_default(ctx, "ssl_server")``: purpose sslserver and trust sslserver, so an intermediate
  whose extendedKeyUsage lacks serverAuth fails with ``X509_V_ERR_INVALID_PURPOSE``;
- ``X509_VERIFY_PARAM_set_auth_level(param, SSL security level)``: 2 for Debian's system OpenSSL (its
  openssl.cnf says ``CipherString = DEFAULT:@SECLEVEL=2``), which rejects RSA keys under 2048 bits and SHA-1
  signatures (``check_auth_level``); Node ships its own OpenSSL with the compiled-in default, level 1;
- the flags each client sets: curl 7.88 adds ``X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN`` to its
  store when it loads the CA file (lib/vtls/openssl.c; PARTIAL_CHAIN unless --crlfile); Python 3.11's
  ``create_default_context`` leaves ``VERIFY_X509_TRUSTED_FIRST`` only (``ctx.verify_flags``); Node 20 adds none;
- Python checks the host name inside the verification: when a client socket gets its ``server_hostname``,
  Modules/_ssl.c calls ``X509_VERIFY_PARAM_set1_host`` (or ``_set1_ip`` for an address) with the context's
  ``hostflags``, which start as ``X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS`` (``ctx._host_flags == 4``); curl checks
  the name after the handshake with its own code and Node in JavaScript (``tls.checkServerIdentity``), so those
  two stay with the engine's name check.

The verification callback lets OpenSSL continue past every error and records each one (code, depth), so one
run gives both what curl and Python print — the *first* error, where their callback stops the handshake — and
what Node prints — the *last* one, because Node's verify callback accepts everything and it reads
``SSL_get_verify_result`` after the handshake (and names the code with ``X509ErrorCode``,
src/crypto/crypto_common.cc). The tests compare all three with the real clients.

The library is the system's ``libcrypto.so.3`` (the one curl and Python's ``ssl`` are linked with), loaded with
:mod:`ctypes`: pyOpenSSL's binding is the OpenSSL statically linked into ``cryptography`` (another major
version) and exposes neither the auth level, nor the verify callback, nor ``set1_ip_asc``. When no OpenSSL 3
libcrypto can be loaded, :func:`available` is False and callers keep their declarative model.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import certinfo

# --- OpenSSL 3.0 constants (include/openssl/x509_vfy.h, x509v3.h) -----------------------------------------

X509_V_FLAG_TRUSTED_FIRST = 0x8000
X509_V_FLAG_PARTIAL_CHAIN = 0x80000
X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS = 0x4

# X509_V_ERR_* names by value (OpenSSL 3.0 x509_vfy.h), without the X509_V_ERR_ prefix.
ERROR_NAMES: dict[int, str] = dict(
    enumerate(
        [
            "OK",
            "UNSPECIFIED",
            "UNABLE_TO_GET_ISSUER_CERT",
            "UNABLE_TO_GET_CRL",
            "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
            "UNABLE_TO_DECRYPT_CRL_SIGNATURE",
            "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
            "CERT_SIGNATURE_FAILURE",
            "CRL_SIGNATURE_FAILURE",
            "CERT_NOT_YET_VALID",
            "CERT_HAS_EXPIRED",
            "CRL_NOT_YET_VALID",
            "CRL_HAS_EXPIRED",
            "ERROR_IN_CERT_NOT_BEFORE_FIELD",
            "ERROR_IN_CERT_NOT_AFTER_FIELD",
            "ERROR_IN_CRL_LAST_UPDATE_FIELD",
            "ERROR_IN_CRL_NEXT_UPDATE_FIELD",
            "OUT_OF_MEM",
            "DEPTH_ZERO_SELF_SIGNED_CERT",
            "SELF_SIGNED_CERT_IN_CHAIN",
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            "CERT_CHAIN_TOO_LONG",
            "CERT_REVOKED",
            "NO_ISSUER_PUBLIC_KEY",
            "PATH_LENGTH_EXCEEDED",
            "INVALID_PURPOSE",
            "CERT_UNTRUSTED",
            "CERT_REJECTED",
            "SUBJECT_ISSUER_MISMATCH",
            "AKID_SKID_MISMATCH",
            "AKID_ISSUER_SERIAL_MISMATCH",
            "KEYUSAGE_NO_CERTSIGN",
            "UNABLE_TO_GET_CRL_ISSUER",
            "UNHANDLED_CRITICAL_EXTENSION",
            "KEYUSAGE_NO_CRL_SIGN",
            "UNHANDLED_CRITICAL_CRL_EXTENSION",
            "INVALID_NON_CA",
            "PROXY_PATH_LENGTH_EXCEEDED",
            "KEYUSAGE_NO_DIGITAL_SIGNATURE",
            "PROXY_CERTIFICATES_NOT_ALLOWED",
            "INVALID_EXTENSION",
            "INVALID_POLICY_EXTENSION",
            "NO_EXPLICIT_POLICY",
            "DIFFERENT_CRL_SCOPE",
            "UNSUPPORTED_EXTENSION_FEATURE",
            "UNNESTED_RESOURCE",
            "PERMITTED_VIOLATION",
            "EXCLUDED_VIOLATION",
            "SUBTREE_MINMAX",
            "APPLICATION_VERIFICATION",
            "UNSUPPORTED_CONSTRAINT_TYPE",
            "UNSUPPORTED_CONSTRAINT_SYNTAX",
            "UNSUPPORTED_NAME_SYNTAX",
            "CRL_PATH_VALIDATION_ERROR",
            "PATH_LOOP",
            "SUITE_B_INVALID_VERSION",
            "SUITE_B_INVALID_ALGORITHM",
            "SUITE_B_INVALID_CURVE",
            "SUITE_B_INVALID_SIGNATURE_ALGORITHM",
            "SUITE_B_LOS_NOT_ALLOWED",
            "SUITE_B_CANNOT_SIGN_P_384_WITH_P_256",
            "HOSTNAME_MISMATCH",
            "EMAIL_MISMATCH",
            "IP_ADDRESS_MISMATCH",
            "DANE_NO_MATCH",
            "EE_KEY_TOO_SMALL",
            "CA_KEY_TOO_SMALL",
            "CA_MD_TOO_WEAK",
            "INVALID_CALL",
            "STORE_LOOKUP",
            "NO_VALID_SCTS",
            "PROXY_SUBJECT_NAME_VIOLATION",
            "OCSP_VERIFY_NEEDED",
            "OCSP_VERIFY_FAILED",
            "OCSP_CERT_UNKNOWN",
            "UNSUPPORTED_SIGNATURE_ALGORITHM",
            "SIGNATURE_ALGORITHM_MISMATCH",
            "SIGNATURE_ALGORITHM_INCONSISTENCY",
            "INVALID_CA",
            "PATHLEN_INVALID_FOR_NON_CA",
            "PATHLEN_WITHOUT_KU_KEY_CERT_SIGN",
            "KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA",
            "ISSUER_NAME_EMPTY",
            "SUBJECT_NAME_EMPTY",
            "MISSING_AUTHORITY_KEY_IDENTIFIER",
            "MISSING_SUBJECT_KEY_IDENTIFIER",
            "EMPTY_SUBJECT_ALT_NAME",
            "EMPTY_SUBJECT_SAN_NOT_CRITICAL",
            "CA_BCONS_NOT_CRITICAL",
            "AUTHORITY_KEY_IDENTIFIER_CRITICAL",
            "SUBJECT_KEY_IDENTIFIER_CRITICAL",
            "CA_CERT_MISSING_KEY_USAGE",
            "EXTENSIONS_REQUIRE_VERSION_3",
            "EC_KEY_EXPLICIT_PARAMS",
        ]
    )
)
_CODE = {name: code for code, name in ERROR_NAMES.items()}

# The codes Node names in err.code (X509ErrorCode in src/crypto/crypto_common.cc), by X509_V_ERR_* value: 2 to 28
# except NO_ISSUER_PUBLIC_KEY (24), then HOSTNAME_MISMATCH (62) and INVALID_CA (79); any other is "UNSPECIFIED".
NODE_NAMED = frozenset(ERROR_NAMES[n] for n in (*range(2, 24), *range(25, 29), 62, 79))


@dataclass(frozen=True)
class Settings:
    """How one client family sets up OpenSSL's verification (see the module docstring for the sources)."""

    auth_level: int  # SSL security level → X509_VERIFY_PARAM_set_auth_level
    flags: int  # X509_V_FLAG_* on top of the library defaults
    host_in_verify: bool  # the host name is checked by X509_verify_cert (X509_VERIFY_PARAM_set1_host / _ip)
    hostflags: int  # X509_CHECK_FLAG_* for that check
    reports: str  # "first": the first error stops the handshake; "last": SSL_get_verify_result after all


SETTINGS: dict[str, Settings] = {
    "curl": Settings(2, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN, False, 0, "first"),
    "python": Settings(2, X509_V_FLAG_TRUSTED_FIRST, True, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, "first"),
    # Node sets no flag; TRUSTED_FIRST is on by default since OpenSSL 1.1.0 (openssl-verification-options(1))
    "node": Settings(1, X509_V_FLAG_TRUSTED_FIRST, False, 0, "last"),
}


# --- the library ------------------------------------------------------------------------------------------

_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_P = ctypes.c_void_p


def _load() -> ctypes.CDLL | None:
    """The system libcrypto 3.x with the prototypes used here, or None."""
    candidates = ["libcrypto.so.3", ctypes.util.find_library("crypto"), "libcrypto.3.dylib"]
    for name in candidates:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.OpenSSL_version_num.restype = ctypes.c_ulong
            if lib.OpenSSL_version_num() < 0x30000000:
                continue
        except (OSError, AttributeError):
            continue
        protos: dict[str, tuple[object, list[object]]] = {
            "d2i_X509": (_P, [_P, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]),
            "i2d_X509": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_char_p)]),
            "X509_free": (None, [_P]),
            "X509_up_ref": (ctypes.c_int, [_P]),
            "X509_STORE_new": (_P, []),
            "X509_STORE_free": (None, [_P]),
            "X509_STORE_up_ref": (ctypes.c_int, [_P]),
            "X509_STORE_add_cert": (ctypes.c_int, [_P, _P]),
            "X509_STORE_CTX_new": (_P, []),
            "X509_STORE_CTX_free": (None, [_P]),
            "X509_STORE_CTX_init": (ctypes.c_int, [_P, _P, _P, _P]),
            "X509_STORE_CTX_set_default": (ctypes.c_int, [_P, ctypes.c_char_p]),
            "X509_STORE_CTX_get0_param": (_P, [_P]),
            "X509_STORE_CTX_set_verify_cb": (None, [_P, _VERIFY_CB]),
            "X509_STORE_CTX_get_error": (ctypes.c_int, [_P]),
            "X509_STORE_CTX_get_error_depth": (ctypes.c_int, [_P]),
            "X509_STORE_CTX_get_current_cert": (_P, [_P]),
            "X509_STORE_CTX_get0_chain": (_P, [_P]),
            "X509_VERIFY_PARAM_set_time": (None, [_P, ctypes.c_int64]),
            "X509_VERIFY_PARAM_set_auth_level": (None, [_P, ctypes.c_int]),
            "X509_VERIFY_PARAM_set_flags": (ctypes.c_int, [_P, ctypes.c_ulong]),
            "X509_VERIFY_PARAM_set_hostflags": (None, [_P, ctypes.c_uint]),
            "X509_VERIFY_PARAM_set1_host": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t]),
            "X509_VERIFY_PARAM_set1_ip_asc": (ctypes.c_int, [_P, ctypes.c_char_p]),
            "X509_verify_cert": (ctypes.c_int, [_P]),
            "X509_verify_cert_error_string": (ctypes.c_char_p, [ctypes.c_long]),
            "OPENSSL_sk_new_null": (_P, []),
            "OPENSSL_sk_push": (ctypes.c_int, [_P, _P]),
            "OPENSSL_sk_free": (None, [_P]),
            "OPENSSL_sk_num": (ctypes.c_int, [_P]),
            "OPENSSL_sk_value": (_P, [_P, ctypes.c_int]),
            "OpenSSL_version": (ctypes.c_char_p, [ctypes.c_int]),
        }
        try:
            for fn, (restype, argtypes) in protos.items():
                func = getattr(lib, fn)
                func.restype = restype
                func.argtypes = argtypes
        except AttributeError:
            continue
        return lib
    return None


_LIB = _load()


def available() -> bool:
    """True when the system's OpenSSL 3 libcrypto could be loaded (Linux, and macOS with Homebrew OpenSSL)."""
    return _LIB is not None


def library_version() -> str:
    """``OpenSSL 3.0.19 27 Jan 2026`` (OpenSSL_version(OPENSSL_VERSION)), or "" when unavailable."""
    return _LIB.OpenSSL_version(0).decode() if _LIB is not None else ""


def error_string(code: int) -> str:
    """OpenSSL's text for a verification error code (``X509_verify_cert_error_string``)."""
    if _LIB is None:
        return ERROR_NAMES.get(code, f"error {code}").lower().replace("_", " ")
    return (_LIB.X509_verify_cert_error_string(code) or b"").decode()


# --- results ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyError:
    """One error OpenSSL's verifier raised: its code, the depth of the certificate (0 = the leaf) and the
    chain as built when it was raised (leaf first)."""

    code: int
    depth: int
    chain_length: int
    cert: x509.Certificate | None  # the certificate the error is about (X509_STORE_CTX_get_current_cert)

    @property
    def name(self) -> str:
        """``CERT_HAS_EXPIRED`` (the X509_V_ERR_ name without its prefix)."""
        return ERROR_NAMES.get(self.code, "UNSPECIFIED")

    @property
    def text(self) -> str:
        """``certificate has expired`` (X509_verify_cert_error_string)."""
        return error_string(self.code)

    @property
    def node_code(self) -> str:
        """What Node puts in ``err.code``: the name for the codes it knows, else ``UNSPECIFIED``."""
        return self.name if self.name in NODE_NAMED else "UNSPECIFIED"


_NAME_ERRORS = frozenset(("HOSTNAME_MISMATCH", "IP_ADDRESS_MISMATCH", "EMAIL_MISMATCH"))


@dataclass(frozen=True)
class Verification:
    """The outcome of one ``X509_verify_cert`` run: every error in the order raised, and the chain built."""

    errors: tuple[VerifyError, ...]
    chain_der: tuple[bytes, ...]  # the chain OpenSSL built (leaf first, ending at the anchor when trusted)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return tuple(x509.load_der_x509_certificate(der) for der in self.chain_der)

    def without_name_errors(self) -> Verification:
        """This run as a client that checks no name inside the verification would see it: OpenSSL's check_id
        only reports (the callback goes on), so dropping its errors leaves exactly the other steps' errors."""
        kept = tuple(e for e in self.errors if e.name not in _NAME_ERRORS)
        return self if len(kept) == len(self.errors) else Verification(kept, self.chain_der)

    def reported(self, settings: Settings) -> VerifyError | None:
        """The error the client prints: the first (curl, Python) or the last (Node); None when accepted."""
        if not self.errors:
            return None
        return self.errors[0] if settings.reports == "first" else self.errors[-1]


# --- stores and the cache ---------------------------------------------------------------------------------


class _Store:
    """One X509_STORE holding ``anchors`` (owned; freed when the last user releases it)."""

    def __init__(self, anchors: Sequence[x509.Certificate]) -> None:
        assert _LIB is not None
        self.ptr = _LIB.X509_STORE_new()
        # X509_V_FLAG_PARTIAL_CHAIN changes nothing unless some anchor is not self-signed (an intermediate)
        self.partial_matters = any(not certinfo.is_self_signed(c) for c in anchors)
        for cert in anchors:
            handle = _handle(cert)
            if handle:
                _LIB.X509_STORE_add_cert(self.ptr, handle)  # takes its own reference
                _LIB.X509_free(handle)

    def acquire(self) -> int:
        assert _LIB is not None
        _LIB.X509_STORE_up_ref(self.ptr)
        return self.ptr

    def __del__(self) -> None:
        if _LIB is not None and getattr(self, "ptr", None):
            _LIB.X509_STORE_free(self.ptr)


def _x509(der: bytes) -> int | None:
    assert _LIB is not None
    buf = ctypes.c_char_p(der)
    return _LIB.d2i_X509(None, ctypes.byref(buf), len(der))


_LOCK = threading.Lock()
_HANDLES: OrderedDict[str, int] = OrderedDict()  # fingerprint -> X509* (one reference owned by the cache)
MAX_HANDLES = 512  # X509 structures live in OpenSSL memory: a few KiB each


def _handle(cert: x509.Certificate) -> int | None:
    """A new reference to the parsed X509 of ``cert`` (free it with X509_free). Parsed once per certificate:
    OpenSSL 3's d2i_X509 costs about 0.1 ms, and the same leaf is verified for three clients, the same
    intermediates for many servers."""
    assert _LIB is not None
    fp = certinfo.fingerprint(cert)
    with _LOCK:
        handle = _HANDLES.get(fp)
        if handle is not None:
            _HANDLES.move_to_end(fp)
            _LIB.X509_up_ref(handle)
            return handle
    handle = _x509(cert.public_bytes(Encoding.DER))
    if not handle:
        return None
    with _LOCK:
        if fp in _HANDLES:  # another thread parsed it meanwhile: keep ours private
            return handle
        _HANDLES[fp] = handle
        _LIB.X509_up_ref(handle)
        while len(_HANDLES) > MAX_HANDLES:
            _LIB.X509_free(_HANDLES.popitem(last=False)[1])
    return handle


def _der_of(handle: int | None) -> bytes | None:
    if not handle or _LIB is None:
        return None
    size = _LIB.i2d_X509(handle, None)
    if size <= 0:
        return None
    out = ctypes.create_string_buffer(size)
    cursor = ctypes.c_char_p(ctypes.addressof(out))
    _LIB.i2d_X509(handle, ctypes.byref(cursor))
    return out.raw


def _from_handle(handle: int | None) -> x509.Certificate | None:
    der = _der_of(handle)
    if der is None:
        return None
    try:
        return x509.load_der_x509_certificate(der)
    except Exception:  # what OpenSSL accepted, cryptography may refuse: the error is kept without it
        return None


_STORES: OrderedDict[tuple[object, ...], tuple[object, _Store]] = OrderedDict()
_BY_SUBJECT: OrderedDict[int, tuple[object, dict[bytes, list[x509.Certificate]]]] = OrderedDict()
_RESULTS: OrderedDict[tuple[object, ...], Verification] = OrderedDict()
MAX_STORES = 64  # small stores: the few roots a chain can reach
MAX_RESULTS = 1024  # verdicts are reused within one diagnosis (clients, addresses), rarely later


def _by_subject(roots: Sequence[x509.Certificate]) -> dict[bytes, list[x509.Certificate]]:
    """The roots of one trust store by their subject name (DER), built once per store (the tuple is kept
    alive in the cache, so its id cannot be reused)."""
    key = id(roots)
    with _LOCK:
        hit = _BY_SUBJECT.get(key)
        if hit is not None:
            return hit[1]
    index: dict[bytes, list[x509.Certificate]] = {}
    for cert in roots:
        subject = _name_der(cert, "subject")
        if subject is not None:
            index.setdefault(subject, []).append(cert)
    with _LOCK:
        _BY_SUBJECT[key] = (roots, index)
        while len(_BY_SUBJECT) > MAX_STORES:
            _BY_SUBJECT.popitem(last=False)
    return index


def _name_der(cert: x509.Certificate, which: str) -> bytes | None:
    """The DER of the certificate's issuer or subject name; None when cryptography cannot decode it (a
    hostile certificate: no root can be looked up by it)."""
    try:
        return (cert.issuer if which == "issuer" else cert.subject).public_bytes()
    except ValueError:
        return None


def _candidates(
    presented: Sequence[x509.Certificate], root_sets: Sequence[Sequence[x509.Certificate]]
) -> list[x509.Certificate]:
    """The trust store roots X509_verify_cert can reach from ``presented``: OpenSSL looks issuers up in the
    store by subject name only (X509_STORE_CTX_get1_issuer), so the roots whose subject is the issuer of a
    presented certificate, or of such a root (cross-signed anchors), are all that can change its answer.
    A store of those few is built in microseconds instead of parsing every root of the bundle."""
    indexes = [_by_subject(roots) for roots in root_sets]
    wanted = [name for c in presented if (name := _name_der(c, "issuer")) is not None]
    seen_names: set[bytes] = set()
    out: dict[str, x509.Certificate] = {}
    while wanted:
        name = wanted.pop()
        if name in seen_names:
            continue
        seen_names.add(name)
        for index in indexes:
            for cert in index.get(name, ()):
                fp = certinfo.fingerprint(cert)
                if fp not in out:
                    out[fp] = cert
                    issuer = _name_der(cert, "issuer")
                    if issuer is not None:
                        wanted.append(issuer)
    return list(out.values())


def _store_for(
    presented: Sequence[x509.Certificate],
    root_sets: Sequence[Sequence[x509.Certificate]],
    extra: Sequence[x509.Certificate],
) -> tuple[tuple[object, ...], _Store]:
    """The X509_STORE of the --ca-file roots plus the trust stores' roots that ``presented`` can reach (see
    :func:`_candidates`); cached by the anchors' fingerprints."""
    anchors = _candidates(presented, root_sets) + list(extra)
    key = tuple(sorted(certinfo.fingerprint(c) for c in anchors))
    with _LOCK:
        hit = _STORES.get(key)
        if hit is not None:
            _STORES.move_to_end(key)
            return key, hit[1]
    store = _Store(anchors)
    with _LOCK:
        _STORES[key] = (tuple(anchors), store)
        while len(_STORES) > MAX_STORES:
            _STORES.popitem(last=False)
    return key, store


def verify(
    presented: Sequence[x509.Certificate],
    root_sets: Sequence[Sequence[x509.Certificate]],
    extra_roots: Sequence[x509.Certificate],
    at: datetime,
    settings: Settings,
    host: str | None = None,
) -> Verification | None:
    """Run ``X509_verify_cert`` on ``presented`` (leaf first; the rest is the untrusted stack) against the
    roots of every set in ``root_sets`` (one per trust store) + ``extra_roots`` at ``at`` as the client
    described by ``settings`` does; ``host`` is checked only when ``settings.host_in_verify``.
    None when the library is unavailable or the leaf does not parse.

    Runs are shared: the name is always checked with Python's flags and its errors dropped for a client that
    does not check it there (see :meth:`Verification.without_name_errors`); PARTIAL_CHAIN is left out when no
    anchor is an intermediate; a lower security level reuses a level-2 run that raised no level error. So
    curl, Python and Node usually share one run, cached by (chain fingerprints, store, time, security level,
    flags, host)."""
    if _LIB is None or not presented:
        return None
    store_key, store = _store_for(presented, root_sets, extra_roots)
    flags = settings.flags if store.partial_matters else settings.flags & ~X509_V_FLAG_PARTIAL_CHAIN
    hostflags = settings.hostflags if settings.host_in_verify else _SHARED_HOSTFLAGS
    fps = tuple(certinfo.fingerprint(c) for c in presented)

    def cached(level: int) -> Verification | None:
        key = (fps, store_key, int(at.timestamp()), level, flags, host or None, hostflags)
        with _LOCK:
            hit = _RESULTS.get(key)
            if hit is not None:
                _RESULTS.move_to_end(key)
                return hit
        done = _run(presented, store, at, level, flags, host or None, hostflags)
        if done is not None:
            with _LOCK:
                _RESULTS[key] = done
                while len(_RESULTS) > MAX_RESULTS:
                    _RESULTS.popitem(last=False)
        return done

    result = None
    if settings.auth_level < _SHARED_LEVEL:
        # The level only adds check_auth_level's errors: a run at a higher level without any is this one too.
        shared = cached(_SHARED_LEVEL)
        if shared is not None and not any(e.name in _LEVEL_ERRORS for e in shared.errors):
            result = shared
    if result is None:
        result = cached(settings.auth_level)
    if result is None:
        return None
    return result if settings.host_in_verify else result.without_name_errors()


_SHARED_HOSTFLAGS = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS  # Python's: a run made for curl can serve Python
_SHARED_LEVEL = 2  # curl's and Python's: a run made for them serves Node unless it raised a level error
_LEVEL_ERRORS = frozenset(("EE_KEY_TOO_SMALL", "CA_KEY_TOO_SMALL", "CA_MD_TOO_WEAK"))  # check_auth_level's


def _run(
    presented: Sequence[x509.Certificate],
    store: _Store,
    at: datetime,
    auth_level: int,
    flags: int,
    host: str | None,
    hostflags: int,
) -> Verification | None:
    lib = _LIB
    assert lib is not None
    handles = [_handle(c) for c in presented]
    if not handles[0]:
        for h in handles:
            if h:
                lib.X509_free(h)
        return None
    untrusted = lib.OPENSSL_sk_new_null()
    for h in handles[1:]:
        if h:
            lib.OPENSSL_sk_push(untrusted, h)
    store_ptr = store.acquire()
    ctx = lib.X509_STORE_CTX_new()
    errors: list[VerifyError] = []

    def callback(ok: int, cctx: int) -> int:
        if not ok:
            code = lib.X509_STORE_CTX_get_error(cctx)
            depth = lib.X509_STORE_CTX_get_error_depth(cctx)
            chain = lib.X509_STORE_CTX_get0_chain(cctx)
            try:  # an exception must not escape into C (ctypes would return 0 and print it)
                cert = _from_handle(lib.X509_STORE_CTX_get_current_cert(cctx))
            except Exception:
                cert = None
            errors.append(VerifyError(code, depth, lib.OPENSSL_sk_num(chain) if chain else 0, cert))
        return 1  # go on: every error is recorded (curl/Python stop at the first, Node reports the last)

    cb = _VERIFY_CB(callback)
    built: list[bytes] = []
    try:
        if not lib.X509_STORE_CTX_init(ctx, store_ptr, handles[0], untrusted):
            return None
        lib.X509_STORE_CTX_set_default(ctx, b"ssl_server")
        param = lib.X509_STORE_CTX_get0_param(ctx)
        lib.X509_VERIFY_PARAM_set_time(param, int(at.timestamp()))
        lib.X509_VERIFY_PARAM_set_auth_level(param, auth_level)
        if flags:
            lib.X509_VERIFY_PARAM_set_flags(param, flags)
        if host:
            if certinfo.is_ip(host):
                lib.X509_VERIFY_PARAM_set1_ip_asc(param, host.strip("[]").encode())
            else:
                lib.X509_VERIFY_PARAM_set_hostflags(param, hostflags)
                lib.X509_VERIFY_PARAM_set1_host(param, _encode_host(host), 0)
        lib.X509_STORE_CTX_set_verify_cb(ctx, cb)
        ret = lib.X509_verify_cert(ctx)
        if ret <= 0 and not errors:
            code = lib.X509_STORE_CTX_get_error(ctx) or _CODE["UNSPECIFIED"]
            errors.append(VerifyError(code, lib.X509_STORE_CTX_get_error_depth(ctx), 0, None))
        chain = lib.X509_STORE_CTX_get0_chain(ctx)
        for i in range(lib.OPENSSL_sk_num(chain) if chain else 0):
            der = _der_of(lib.OPENSSL_sk_value(chain, i))
            if der is not None:
                built.append(der)
    finally:
        lib.X509_STORE_CTX_free(ctx)
        lib.X509_STORE_free(store_ptr)
        lib.OPENSSL_sk_free(untrusted)
        for h in handles:
            if h:
                lib.X509_free(h)
    return Verification(tuple(errors), tuple(built))


def _encode_host(host: str) -> bytes:
    """The host name as Python's ssl hands it to OpenSSL: IDNA A-labels (``SSLContext._encode_hostname``)."""
    try:
        return host.encode("idna")
    except UnicodeError:
        return host.encode("ascii", "replace")


# --- from OpenSSL's error to the engine's problem key -----------------------------------------------------

# One problem key (profiles.PROBLEMS) per OpenSSL error; "openssl-other" renders OpenSSL's own text.
_PROBLEM_BY_NAME = {
    "UNABLE_TO_GET_ISSUER_CERT": "issuer-unknown",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY": "issuer-unknown",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE": "issuer-unknown-leaf",
    "DEPTH_ZERO_SELF_SIGNED_CERT": "self-signed",
    "SELF_SIGNED_CERT_IN_CHAIN": "root-untrusted",
    "CERT_SIGNATURE_FAILURE": "bad-signature",
    "PATH_LENGTH_EXCEEDED": "path-length",
    "PERMITTED_VIOLATION": "name-constraints",  # {nc_kind}: "permitted"
    "EXCLUDED_VIOLATION": "name-constraints",  # {nc_kind}: "excluded"
    "INVALID_CA": "not-ca",
    "KEYUSAGE_NO_CERTSIGN": "issuer-no-certsign",
    "EE_KEY_TOO_SMALL": "weak-key-leaf",
    "CA_KEY_TOO_SMALL": "weak-key-ca",
    "CA_MD_TOO_WEAK": "weak-signature",
    "HOSTNAME_MISMATCH": "hostname",
    "IP_ADDRESS_MISMATCH": "hostname-ip",
    "CERT_CHAIN_TOO_LONG": "chain-too-long",
    "UNHANDLED_CRITICAL_EXTENSION": "critical-extension",  # check_extensions (x509_vfy.c), EXFLAG_CRITICAL
}


def problem_for(error: VerifyError) -> str:
    """The engine's problem key for one OpenSSL error (``profiles.PROBLEMS``)."""
    name = error.name
    if name in ("UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_GET_ISSUER_CERT") and error.chain_length <= 1:
        return "issuer-unknown-leaf"
    if name in ("CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"):
        expired = name == "CERT_HAS_EXPIRED"
        if error.depth == 0:
            return "expired" if expired else "not-yet-valid"
        if error.depth == error.chain_length - 1 and error.cert is not None and certinfo.is_self_signed(error.cert):
            return "root-expired" if expired else "intermediate-not-yet-valid"
        return "intermediate-expired" if expired else "intermediate-not-yet-valid"
    if name == "INVALID_PURPOSE":
        return "eku" if error.depth == 0 else "ca-eku"
    return _PROBLEM_BY_NAME.get(name, "openssl-other")


def values_for(error: VerifyError, at: datetime) -> dict[str, str]:
    """The values the profiles' message templates use: ``{openssl}`` (OpenSSL's text), ``{node_code}``,
    ``{depth}``, ``{subject}`` (the certificate's display name) and its dates."""
    out = {"openssl": error.text, "node_code": error.node_code, "depth": str(error.depth), "now": _fmt(at)}
    if error.name in ("PERMITTED_VIOLATION", "EXCLUDED_VIOLATION"):
        out["nc_kind"] = "permitted" if error.name == "PERMITTED_VIOLATION" else "excluded"
    if error.cert is not None:
        out["subject"] = certinfo.display_name(error.cert)
        out["issuer_cn"] = certinfo.display_name(error.cert)
        out["not_after"] = _fmt(certinfo.not_after(error.cert))
        out["not_before"] = _fmt(certinfo.not_before(error.cert))
    return out


def _fmt(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
