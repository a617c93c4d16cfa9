"""Private keys from files: PEM (PKCS#1, PKCS#8, SEC1; encrypted or not) and DER. Raises KeyLoadError."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from ..errors import InputError
from .files import iter_pem_blocks, read_capped

MAX_KEY_FILE = 1024 * 1024
# Key-derivation iterations certdoctor runs for a PKCS#12 file: exports use 2,000 to 10,000 (OpenSSL 2,048;
# Windows 2,000; hardened ones up to 600,000). 2^28 pins a CPU for over a minute, and a file is recognised as
# PKCS#12 by content, so any input file may ask for it.
MAX_PKCS12_ITERATIONS = 1_000_000


class KeyLoadError(InputError):
    """A key file cannot be read, is encrypted without a password, or the password is wrong."""


def _check_key_work(der_or_pem: bytes, source: str, pem: bool) -> None:
    """Refuse a private key whose decryption would run more than :data:`MAX_PKCS12_ITERATIONS` key-derivation
    iterations (PKCS#8 PBES1/PBES2 counts read from the DER before anything derives a key); a key given a
    password is decrypted with it, and ``fix`` gives the password of a PKCS#12 input to every input file.
    Traditional OpenSSL encryption (``DEK-Info``) derives its key in one iteration and is not looked into."""
    from .pem import pkcs12_iteration_counts

    if pem:
        block = next(iter_pem_blocks(der_or_pem), None)
        if block is None or block.body is None:
            return
        if b"DEK-Info:" in block.body:
            _check_dek_info(block.body, source)
            return
        body = b"".join(line for line in block.body.splitlines() if b":" not in line)  # RFC 1421 headers
    try:
        der = base64.b64decode(b"".join(body.split()) + b"==", validate=False) if pem else der_or_pem
        worst = max(pkcs12_iteration_counts(der), default=0)
    except ValueError as exc:  # binascii.Error is one
        raise KeyLoadError(f"{source}: not a usable private key ({exc})") from None
    if worst > MAX_PKCS12_ITERATIONS:
        shown = f"{worst:,}" if worst < 1 << 64 else "of more than 2^64"
        raise KeyLoadError(
            f"{source}: private key-derivation iteration count {shown} above certdoctor's limit of "
            f"{MAX_PKCS12_ITERATIONS:,} (re-encrypt it with the default: openssl pkcs8 -topk8 -iter 2048 ...)"
        )


# IV length in bytes of the ciphers of traditional OpenSSL PEM encryption (RFC 1423 DEK-Info), by name prefix.
_DEK_IV_BYTES = (("AES-", 16), ("DES-", 8), ("DES3", 8), ("CAMELLIA-", 16), ("SEED", 16), ("BF-", 8))


def _check_dek_info(body: bytes, source: str) -> None:
    """Refuse a ``DEK-Info`` whose IV is shorter than its cipher's (cryptography 50 aborts on one instead of
    raising an error)."""
    for line in body.splitlines():
        if line.startswith(b"DEK-Info:"):
            alg, _, iv = line[len(b"DEK-Info:") :].strip().partition(b",")
            name = alg.decode("ascii", "replace").upper()
            need = next((n for prefix, n in _DEK_IV_BYTES if name.startswith(prefix)), 0)
            if len(iv.strip()) < 2 * need:
                raise KeyLoadError(f"{source}: not a usable private key (DEK-Info IV too short for {name})")


def _load_one(der_or_pem: bytes, password: bytes | None, source: str, pem: bool) -> Any:
    loader = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    if password is not None:
        _check_key_work(der_or_pem, source, pem)
    try:
        return loader(der_or_pem, password=password)
    except TypeError as exc:
        text = str(exc).lower()
        if "password was given" in text:  # not encrypted after all: load it again, with the same error handling
            return _load_one(der_or_pem, None, source, pem)
        if "password was not given" in text or "encrypted" in text:
            raise KeyLoadError(
                f"{source}: the private key is encrypted; give its password (--password-file FILE, "
                "CERTDOCTOR_KEY_PASSWORD or --password)"
            ) from None
        raise KeyLoadError(f"{source}: {exc}") from None
    except ValueError as exc:
        encrypted = pem and b"ENCRYPTED" in der_or_pem  # PKCS#8 "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED"
        if password is not None and (encrypted or "decrypt" in str(exc).lower() or "bad" in str(exc).lower()):
            # a wrong password fails the padding check, or (1 time in 256) decrypts to bytes that are not a key
            raise KeyLoadError(f"{source}: wrong password for the private key (or the key is damaged)") from None
        raise KeyLoadError(f"{source}: not a usable private key ({exc})") from None
    except Exception as exc:  # unsupported algorithms and the like
        raise KeyLoadError(f"{source}: not a usable private key ({exc})") from None


def keys_in(data: bytes, source: str, password: bytes | None = None) -> Iterator[Any]:
    """Every private key in ``data`` (PEM blocks anywhere in the text, or one DER key)."""
    found = False
    for block in iter_pem_blocks(data):
        if not block.label.endswith(b"PRIVATE KEY") or block.body is None:
            continue
        found = True
        yield _load_one(data[block.start : block.end], password, source, pem=True)
    if not found and data[:1] == b"\x30":
        # DER certificates and PKCS#7 also start with a SEQUENCE: only a DER *key* counts here.
        try:
            key = _load_one(data, password, source, pem=False)
        except KeyLoadError as exc:
            if any(why in str(exc) for why in ("give its password", "wrong password", "iteration count")):
                raise
            return
        yield key


def load_private_key(path: str | Path, password: bytes | None = None) -> Any:
    """The single private key in a file."""
    try:
        data = read_capped(path, MAX_KEY_FILE)
    except InputError as exc:
        raise KeyLoadError(str(exc)) from None
    keys = list(keys_in(data, str(path), password))
    if not keys:
        raise KeyLoadError(f"{path}: no private key found")
    if len(keys) > 1:
        raise KeyLoadError(f"{path}: {len(keys)} private keys in one file; give the one for this certificate")
    return keys[0]


def key_pem(key: Any) -> bytes:
    """Unencrypted PKCS#8 PEM (what nginx, Apache and HAProxy read without a passphrase prompt)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_pkcs12(path: str | Path, password: bytes | None, data: bytes | None = None) -> tuple[Any, list[Any]]:
    """(key or None, certificates: the bundle's own certificate first) from a .pfx/.p12 file (or its ``data``)."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    if data is None:
        try:
            data = read_capped(path, 16 * 1024 * 1024)
        except InputError as exc:
            raise KeyLoadError(str(exc)) from None
    _check_pkcs12_work(path, data)
    attempts = [password] if password is not None else [None, b""]  # exports with an empty password are common
    last: Exception | None = None
    for attempt in attempts:
        try:
            bundle = pkcs12.load_pkcs12(data, attempt)
        except ValueError as exc:
            last = exc
            continue
        certs = [c.certificate for c in ([bundle.cert] if bundle.cert else []) + list(bundle.additional_certs)]
        return bundle.key, certs
    if password is None:
        raise KeyLoadError(
            f"{path}: the PKCS#12 file is protected; give its password (--password-file FILE, "
            "CERTDOCTOR_KEY_PASSWORD or --password)"
        ) from None
    raise KeyLoadError(f"{path}: wrong password for the PKCS#12 file, or not a PKCS#12 file ({last})") from None


def _check_pkcs12_work(path: str | Path, data: bytes) -> None:
    """Refuse a PKCS#12 file whose key derivation would take longer than :data:`MAX_PKCS12_ITERATIONS`
    iterations (counts read from the DER, before any KDF runs)."""
    from .pem import pkcs12_iteration_counts

    try:
        counts = pkcs12_iteration_counts(data)
    except ValueError as exc:
        raise KeyLoadError(f"{path}: not a readable PKCS#12 file ({exc})") from None
    worst = max(counts, default=0)
    if worst > MAX_PKCS12_ITERATIONS:
        shown = f"{worst:,}" if worst < 1 << 64 else "of more than 2^64"
        raise KeyLoadError(
            f"{path}: PKCS#12 key-derivation iteration count {shown} above certdoctor's limit of "
            f"{MAX_PKCS12_ITERATIONS:,} (re-export it with the default: openssl pkcs12 -export ... -iter 2048)"
        )


def pkcs12_bytes(key: Any, chain: list[Any], password: bytes | None, name: bytes = b"certdoctor") -> bytes:
    """A PKCS#12 bundle of key + chain (leaf first) for Windows/IIS, Java keystores and appliances."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(name, key, chain[0], chain[1:] or None, encryption)
