"""The certificate files deployed on a server's disk (``--deployed FILE``): what the server will serve once it
(re)reads them.

Each file (or every match of a glob) becomes one :class:`~certdoctor.model.DeployedFile`: its modification time,
size, format, certificates in file order with the leaf identified, whether it holds a private key and whether that
key (or the ``--key`` file) belongs to the leaf. Formats: PEM (any armour, lenient: a broken block is skipped and
named), DER, PKCS#7, PKCS#12 (RFC 7292) and Java keystores (JKS, JCEKS; through the optional ``pyjks`` library,
``pip install 'certdoctor[jks]'``).

Files are attacker-controlled: every read goes through :func:`certdoctor.collect.files.read_capped` (at most
:data:`MAX_DEPLOYED_BYTES`), at most :data:`MAX_DEPLOYED_FILES` files per glob and 32 certificates per file, the
PKCS#12 and JCEKS key-derivation iteration counts are read before any key is derived and refused above
:data:`certdoctor.collect.keys.MAX_PKCS12_ITERATIONS`, and nothing here raises: a file that gives nothing usable
is a DeployedFile with ``error`` set (the ``deployed-file-unreadable`` finding).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from .. import certinfo
from ..errors import InputError
from ..model import DeployedErrorKind, DeployedFile, DeployedFormat, PemIssue
from .files import (
    MAX_FILE_BYTES,
    CertificateParseError,
    NotARegularFile,
    parse_certificates,
    parse_certificates_lenient,
    read_capped,
)
from .keys import MAX_PKCS12_ITERATIONS, KeyLoadError, keys_in, load_pkcs12
from .pem import iter_pem_blocks, load_der_certificate, load_pkcs7_certificates, looks_like_pkcs12

__all__ = [
    "MAX_DEPLOYED_BYTES",
    "MAX_DEPLOYED_CERTS",
    "MAX_DEPLOYED_FILES",
    "DeployedFile",
    "DeployedInputError",
    "expand_deployed",
    "load_deployed",
    "read_deployed_file",
    "require_usable",
]

MAX_DEPLOYED_BYTES = MAX_FILE_BYTES  # 16 MiB: a certificate bundle is a few KiB, a large CA bundle ~250 KiB
MAX_DEPLOYED_CERTS = 32  # per file (what a server would send at most; more is not a server's certificate file)
MAX_DEPLOYED_FILES = 1000  # per glob
_GLOB_CHARS = frozenset("*?[")
_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCEKS_MAGIC = b"\xce\xce\xce\xce"
# Sun's JCE key protection (PBEWithMD5AndTripleDES), whose PBEParameter carries an iteration count (JCEKS keys)
_SUN_JCE_OID = (1, 3, 6, 1, 4, 1, 42, 2, 19, 1)


class DeployedInputError(InputError):
    """A deployed file cannot be judged because of how certdoctor was asked (a PKCS#12 or keystore password that
    is missing or wrong, pyjks not installed): a one-line usage error, exit status 2."""


class _Failed(Exception):
    def __init__(self, kind: DeployedErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def expand_deployed(patterns: Sequence[str]) -> list[str]:
    """The files of ``--deployed`` arguments, in the order given: a path as is, a glob (``*``, ``?``, ``[``) as
    its matches in sorted order (at most :data:`MAX_DEPLOYED_FILES` per glob; a glob matching nothing stays
    itself, and :func:`read_deployed_file` reports it). Duplicates are dropped."""
    out: list[str] = []
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern) and not os.path.lexists(pattern):
            matches = sorted(glob.glob(pattern))[:MAX_DEPLOYED_FILES]
            out.extend(matches or [pattern])
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def load_deployed(
    patterns: Sequence[str],
    *,
    password: bytes | None = None,
    key: str | None = None,
    key_public: Any = None,
) -> tuple[DeployedFile, ...]:
    """Every deployed file of ``patterns`` (see :func:`expand_deployed`), read with :func:`read_deployed_file`;
    ``key``/``key_public``: the ``--key`` file and its public key, compared with each file's leaf. Never raises."""
    return tuple(
        read_deployed_file(path, password=password, key=key, key_public=key_public)
        for path in expand_deployed(patterns)
    )


def require_usable(files: Sequence[DeployedFile]) -> None:
    """Raise :class:`DeployedInputError` (one line naming the file) for a file that failed because of the
    invocation rather than its content: a missing or wrong password, pyjks not installed."""
    for f in files:
        if f.error_kind in ("password", "library"):
            raise DeployedInputError(f.error or f.path)


def read_deployed_file(
    path: str,
    *,
    password: bytes | None = None,
    key: str | None = None,
    key_public: Any = None,
) -> DeployedFile:
    """One deployed file as a :class:`DeployedFile`; never raises (a failure is ``error``/``error_kind``).

    ``password``: of a PKCS#12 file or Java keystore (PKCS#12: None tries no password and the empty one, as
    exports often use; JKS/JCEKS: None reads the certificates without checking the store's integrity, and leaves
    the key encrypted). ``key``/``key_public``: the ``--key`` file and its public key; the leaf is the certificate
    whose public key it is, and ``key_matches`` says whether it is one of them.
    """
    path = str(path)
    mtime: datetime | None = None
    size = 0
    try:
        if not os.path.lexists(path) and _GLOB_CHARS & set(path):
            raise _Failed("no-match", f"{path}: no file matches this pattern")
        try:
            st = os.stat(path)
            mtime, size = datetime.fromtimestamp(st.st_mtime, UTC), st.st_size
        except OSError:
            pass
        try:
            data = read_capped(path, MAX_DEPLOYED_BYTES)
        except NotARegularFile as exc:
            raise _Failed("unreadable", str(exc)) from None
        except CertificateParseError as exc:
            kind: DeployedErrorKind = "too-large" if "larger than" in str(exc) else "unreadable"
            raise _Failed(kind, str(exc)) from None
        size = len(data)
        fmt, certs, keys, problems, issues = _parse(path, data, password)
    except _Failed as exc:
        return DeployedFile(path, mtime, size, error=str(exc), error_kind=exc.kind)
    except Exception as exc:  # defensive: a parser bug must never become a traceback
        return DeployedFile(
            path, mtime, size, error=f"{path}: cannot read ({certinfo.short_reason(exc)})", error_kind="parse"
        )
    if len(certs) > MAX_DEPLOYED_CERTS:
        problems.append(f"{len(certs)} certificates: only the first {MAX_DEPLOYED_CERTS} are looked at")
        certs = certs[:MAX_DEPLOYED_CERTS]
    has_key = bool(keys) or any(p.startswith("a private key") for p in problems) or (fmt == "pem" and not certs)
    compare = [k for k in keys if k is not None]
    if key_public is not None:
        compare.append(key_public)
    leaf_index = _leaf_index(certs, compare)
    key_matches: bool | None = None
    if compare and leaf_index is not None:
        key_matches = all(certinfo.same_public_key(certs[leaf_index], k) for k in compare)
    key_source = key if key_public is not None else (path if compare else None)
    return DeployedFile(
        path=path,
        mtime=mtime,
        size=size,
        format=fmt,
        certs=tuple(certs),
        leaf_index=leaf_index,
        has_key=has_key,
        key_matches=key_matches,
        key_source=key_source,
        problems=tuple(problems),
        pem_issues=tuple(issues),
    )


def _leaf_index(certs: Sequence[x509.Certificate], keys: Sequence[Any]) -> int | None:
    """The server certificate: the first one a given key belongs to, else the first that is not a CA, else the
    first."""
    if not certs:
        return None
    for k in keys:
        for i, cert in enumerate(certs):
            if certinfo.same_public_key(cert, k):
                return i
    return next((i for i, c in enumerate(certs) if not certinfo.is_ca(c)), 0)


_Parsed = tuple[DeployedFormat, list[x509.Certificate], list[Any], list[str], list[PemIssue]]


def _parse(path: str, data: bytes, password: bytes | None) -> _Parsed:
    """(format, certificates, public keys of the private keys found (None: one that could not be decrypted),
    problems, PEM issues); raises _Failed."""
    if data[:4] in (_JKS_MAGIC, _JCEKS_MAGIC):
        return _parse_keystore(path, data, password)
    if looks_like_pkcs12(path, data[:64]) and data[:1] == b"\x30":
        return _parse_pkcs12(path, data, password)
    if b"-----BEGIN" in data:
        return _parse_pem(path, data, password)
    return _parse_der(path, data)


def _parse_pem(path: str, data: bytes, password: bytes | None) -> _Parsed:
    from .pemlint import lint_pem

    problems: list[str] = []
    labels = [b.label for b in iter_pem_blocks(data)]
    if labels and all(x.endswith(b"PRIVATE KEY") for x in labels):
        # a key file matched by a glob (privkey.pem next to fullchain.pem): no certificate, and no error
        return "pem", [], [], [], []
    try:
        certs = parse_certificates(data, max_certs=10_000)
    except CertificateParseError as exc:
        try:
            certs, skipped = parse_certificates_lenient(data, max_certs=10_000)
        except CertificateParseError as exc2:
            raise _Failed("parse", f"{path}: {exc2}") from None
        if not certs:
            raise _Failed("parse", f"{path}: {exc}") from None
        problems.append(f"{skipped} broken certificate block(s) skipped: {exc}")
    cert_labels = [x for x in labels if x.endswith(b"CERTIFICATE")]
    fmt: DeployedFormat = "pem" if cert_labels or not labels else "pkcs7"
    keys: list[Any] = []
    if any(x.endswith(b"PRIVATE KEY") for x in labels):
        try:
            keys = [k.public_key() for k in keys_in(data, path, password)]
        except KeyLoadError as exc:
            keys = [None]
            problems.append(f"a private key is in the file but could not be compared with the certificate: {exc}")
    return fmt, certs, keys, problems, lint_pem(data)


def _parse_der(path: str, data: bytes) -> _Parsed:
    if data[:1] != b"\x30":
        raise _Failed(
            "parse", f"{path}: no certificate found (no PEM block, and not DER, PKCS#7, PKCS#12 or a keystore)"
        )
    try:
        return "pkcs7", load_pkcs7_certificates(data), [], [], []
    except ValueError:
        pass
    try:
        return "der", parse_certificates(data, max_certs=10_000), [], [], []
    except CertificateParseError as exc:
        raise _Failed("parse", f"{path}: {exc}") from None


def _parse_pkcs12(path: str, data: bytes, password: bytes | None) -> _Parsed:
    """RFC 7292; the iteration counts are checked by load_pkcs12 before any key derivation."""
    try:
        key, certs = load_pkcs12(path, password, data)
    except KeyLoadError as exc:
        text = str(exc)
        kind: DeployedErrorKind = "password" if "password" in text and "iteration" not in text else "parse"
        raise _Failed(kind, text) from None
    if not certs:
        raise _Failed("parse", f"{path}: the PKCS#12 file holds no certificate")
    return "pkcs12", list(certs), ([key.public_key()] if key is not None else []), [], []


def _jks_module() -> Any:
    try:
        import jks
    except ImportError:
        raise _Failed(
            "library",
            "reading a Java keystore (JKS/JCEKS) needs the pyjks library: pip install 'certdoctor[jks]' "
            "(or convert it: keytool -importkeystore -srckeystore FILE -destkeystore out.p12 -deststoretype PKCS12)",
        ) from None
    return jks


def _parse_keystore(path: str, data: bytes, password: bytes | None) -> _Parsed:
    """A Java keystore (JKS: magic FEEDFEED; JCEKS: CECECECE), as the JDK's sun.security.provider.JavaKeyStore
    writes it. Key entries' chains first (in alias order), then trusted certificates. With a password, the store's
    integrity hash is checked and each key entry is decrypted with it (the JDK's keytool default: key password =
    store password)."""
    jks = _jks_module()
    store_type: DeployedFormat = "jks" if data[:4] == _JKS_MAGIC else "jceks"
    pw: str | None = None
    if password is not None:
        try:
            pw = password.decode("utf-8")
        except UnicodeDecodeError:
            raise _Failed("password", f"{path}: a keystore password must be text (UTF-8)") from None
    try:
        store = jks.KeyStore.loads(data, pw, try_decrypt_keys=False)
    except jks.KeystoreSignatureException:
        raise _Failed("password", f"{path}: wrong password for the {store_type.upper()} keystore") from None
    except Exception as exc:  # pyjks raises its own exceptions, struct and pyasn1 errors on hostile input
        raise _Failed(
            "parse", f"{path}: not a readable {store_type.upper()} keystore ({certinfo.short_reason(exc)})"
        ) from None
    certs: list[x509.Certificate] = []
    keys: list[Any] = []
    problems: list[str] = []

    def add(der: bytes) -> None:
        if len(certs) > MAX_DEPLOYED_CERTS:
            return
        try:
            certs.append(load_der_certificate(bytes(der)))
        except ValueError as exc:
            problems.append(f"a keystore certificate cannot be parsed ({certinfo.short_reason(exc)})")

    for alias in sorted(store.private_keys):
        entry = store.private_keys[alias]
        for _type, der in entry.cert_chain:
            add(der)
        if pw is None:
            keys.append(None)
            problems.append(f"a private key (alias {alias!r}) is in the keystore; give its password to compare it")
            continue
        keys.append(_keystore_key(path, entry, pw, alias, problems))
    for alias in sorted(store.certs):
        add(store.certs[alias].cert)
    if not certs:
        raise _Failed("parse", f"{path}: the {store_type.upper()} keystore holds no certificate")
    return store_type, certs, keys, problems, []


def _keystore_key(path: str, entry: Any, password: str, alias: str, problems: list[str]) -> Any:
    """The public key of a keystore key entry, decrypted with ``password`` (None, with a problem, when it cannot
    be); a JCEKS iteration count above the limit is refused before any key derivation."""
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    try:
        count = _jceks_iterations(entry._encrypted)
        if count > MAX_PKCS12_ITERATIONS:
            problems.append(
                f"a private key (alias {alias!r}) asks for {count:,} key-derivation iterations, above certdoctor's "
                f"limit of {MAX_PKCS12_ITERATIONS:,}: not compared"
            )
            return None
        entry.decrypt(password)
        return load_der_private_key(bytes(entry.pkey_pkcs8), None).public_key()
    except Exception as exc:
        problems.append(f"a private key (alias {alias!r}) could not be decrypted ({certinfo.short_reason(exc)})")
        return None


def _jceks_iterations(encrypted: bytes) -> int:
    """The iteration count of a JCEKS key's PBEWithMD5AndTripleDES parameters (0 for the JKS algorithm, which
    derives its key stream with SHA-1 once per 20 bytes)."""
    from jks import rfc2898  # pyjks's own PBEParameter (RFC 2898 A.3)
    from pyasn1.codec.ber import decoder
    from pyasn1_modules import rfc5208

    info = decoder.decode(bytes(encrypted), asn1Spec=rfc5208.EncryptedPrivateKeyInfo())[0]
    if info["encryptionAlgorithm"]["algorithm"].asTuple() != _SUN_JCE_OID:
        return 0
    params = decoder.decode(info["encryptionAlgorithm"]["parameters"].asOctets(), asn1Spec=rfc2898.PBEParameter())[0]
    return int(params["iterationCount"])


def deployed_to_dict(f: DeployedFile) -> dict[str, Any]:
    """One deployed file as the ``deployed`` items of ``check --json`` (schemas/common.schema.json
    ``deployedFile``): path, mtime (ISO 8601, UTC), size (bytes), format, certificates in file order (sha256,
    subject, not_before, not_after, is_ca), leaf_index, has_key, key_matches, key_source, error, error_kind,
    problems."""
    return {
        "path": f.path,
        "mtime": f.mtime.isoformat() if f.mtime is not None else None,
        "size": f.size,
        "format": f.format,
        "certificates": [
            {
                "sha256": certinfo.fingerprint(c),
                "subject": certinfo.subject(c),
                "not_before": certinfo.not_before(c).isoformat(),
                "not_after": certinfo.not_after(c).isoformat(),
                "is_ca": certinfo.is_ca(c),
            }
            for c in f.certs
        ],
        "leaf_index": f.leaf_index,
        "has_key": f.has_key,
        "key_matches": f.key_matches,
        "key_source": f.key_source,
        "error": f.error,
        "error_kind": f.error_kind,
        "problems": list(f.problems),
    }
