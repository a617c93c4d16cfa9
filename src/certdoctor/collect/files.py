"""Read certificates from bytes and files: PEM (any armour, any mess around it), DER and PKCS#7.

Input is untrusted (files handed to us, AIA downloads), so parsing is linear in the input size, never
recurses on attacker data and caps the number of certificates.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cryptography import x509

from ..certinfo import short_reason
from ..errors import InputError
from ..model import PresentedChain
from .pem import (
    PemBlock,
    der_sequence_length,
    iter_pem_blocks,
    load_der_certificate,
    load_pkcs7_certificates,
    looks_like_pkcs12,
)

__all__ = [
    "MAX_FILE_BYTES",
    "CertificateParseError",
    "NotARegularFile",
    "PemBlock",
    "der_sequence_length",
    "iter_pem_blocks",
    "load_certificate_files",
    "load_chain_file",
    "parse_certificates",
    "short_reason",
]

MAX_FILE_BYTES = 16 * 1024 * 1024

_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_PKCS7_LABELS = frozenset({b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"})
_BASE64_ONLY = re.compile(rb"[A-Za-z0-9+/=\s]+")


class CertificateParseError(InputError):
    """The input holds no usable certificate, or a certificate that cannot be parsed."""


class _TooManyCertificates(CertificateParseError):
    pass


def _decode_base64(body: bytes) -> bytes:
    # RFC 7468 allows no headers for certificates, but tolerate RFC 1421 style "Key: value" lines.
    if b":" in body:
        body = b"\n".join(line for line in body.splitlines() if b":" not in line)
    compact = b"".join(body.split())
    if len(compact) % 4:
        compact += b"=" * (-len(compact) % 4)
    return base64.b64decode(compact, validate=True)


def _load_der_tolerant(der: bytes) -> x509.Certificate:
    """One DER certificate, tolerating trailing bytes after the certificate's SEQUENCE."""
    try:
        return load_der_certificate(der)
    except ValueError:
        length = der_sequence_length(der)
        if length is None or length >= len(der):
            raise
        return load_der_certificate(der[:length])


def _parse_der(data: bytes) -> list[x509.Certificate]:
    """A DER certificate, a DER PKCS#7 bundle, or several DER certificates back to back."""
    try:
        return [load_der_certificate(data)]
    except ValueError as exc:
        first_error = exc
    try:
        return load_pkcs7_certificates(data)
    except ValueError:
        pass
    certs: list[x509.Certificate] = []
    offset = 0
    while offset < len(data):
        length = der_sequence_length(data, offset)
        if length is None or offset + length > len(data):
            break
        try:
            certs.append(load_der_certificate(data[offset : offset + length]))
        except ValueError:
            break
        offset += length
    if certs and not data[offset:].strip():  # tolerate a trailing newline after DER
        return certs
    raise CertificateParseError(f"not a valid DER certificate or PKCS#7 bundle: {short_reason(first_error)}")


def _describe_labels(labels: list[bytes]) -> str:
    names = list(dict.fromkeys(label.decode("ascii", "replace") for label in labels))
    parts = [f"{'an' if name[:1] in 'AEIOU' or name.startswith(('RSA', 'X509')) else 'a'} {name}" for name in names[:3]]
    if len(names) > 3:
        parts.append("other blocks")
    return " and ".join(parts)


def _parse(data: bytes, max_certs: int, *, lenient: bool) -> tuple[list[x509.Certificate], int]:
    """Certificates in ``data`` and the number of broken certificate blocks skipped (lenient mode)."""
    certs: list[x509.Certificate] = []
    skipped = 0
    other_labels: list[bytes] = []
    saw_block = False

    def add(new: list[x509.Certificate]) -> None:
        certs.extend(new)
        if len(certs) > max_certs:
            raise _TooManyCertificates(f"more than {max_certs} certificates")

    for block in iter_pem_blocks(data):
        saw_block = True
        is_cert = block.label in _CERT_LABELS
        if not is_cert and block.label not in _PKCS7_LABELS:
            other_labels.append(block.label)
            continue
        what = "certificate" if is_cert else "PKCS#7 bundle"
        try:
            if block.body is None:
                raise CertificateParseError(
                    f"block {block.index} is truncated (no -----END {block.label.decode()}----- line)"
                )
            try:
                der = _decode_base64(block.body)
            except (binascii.Error, ValueError) as exc:
                raise CertificateParseError(f"block {block.index} is not a valid {what}: bad base64 ({exc})") from None
            try:
                if not is_cert:
                    add(load_pkcs7_certificates(der))
                elif block.label == b"TRUSTED CERTIFICATE":
                    # OpenSSL appends its trust settings after the certificate: keep the first SEQUENCE.
                    length = der_sequence_length(der)
                    add([load_der_certificate(der if length is None else der[:length])])
                else:
                    add([_load_der_tolerant(der)])
            except ValueError as exc:
                raise CertificateParseError(f"block {block.index} is not a valid {what}: {short_reason(exc)}") from None
        except _TooManyCertificates:
            raise
        except CertificateParseError:
            if not lenient:
                raise
            skipped += 1

    if saw_block:
        if certs or skipped:
            return certs, skipped
        raise CertificateParseError(f"no certificate found (the file holds {_describe_labels(other_labels)})")

    if data[:1] == b"\x30":  # DER: never strip, the last byte may well be 0x20 or 0x0a
        add(_parse_der(data))
        return certs, 0
    stripped = data.strip()
    if not stripped:
        raise CertificateParseError("no certificate found (the input is empty)")
    if _BASE64_ONLY.fullmatch(stripped):  # base64 of DER without PEM armour
        try:
            der = _decode_base64(stripped)
        except (binascii.Error, ValueError):
            der = b""
        if der[:1] == b"\x30":
            add(_parse_der(der))
            return certs, 0
    raise CertificateParseError("no certificate found (no PEM block, and not DER or PKCS#7)")


def parse_certificates(data: bytes, *, max_certs: int = 10_000) -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM, DER or PKCS#7), in order; raises CertificateParseError."""
    return _parse(bytes(data), max_certs, lenient=False)[0]


def parse_certificates_lenient(data: bytes, *, max_certs: int = 10_000) -> tuple[list[x509.Certificate], int]:
    """Like :func:`parse_certificates`, but skip broken PEM certificate blocks; returns (certs, skipped)."""
    return _parse(bytes(data), max_certs, lenient=True)


class NotARegularFile(CertificateParseError):
    """A path that names a FIFO, a device, a socket or a directory: reading it could block forever or never end,
    so it is refused as unusable input (exit status 2), never read."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_capped(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The content of ``path``; raises CertificateParseError when unreadable or larger than ``limit``, and
    NotARegularFile (without reading or blocking) for a FIFO, device, socket or directory. Every certificate,
    key and PKCS#12 file certdoctor reads goes through here."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CertificateParseError(f"cannot read {path}: {reason}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise NotARegularFile(f"cannot read {path}: it is {kind}, not a regular file")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CertificateParseError(f"cannot read {path}: {reason}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise CertificateParseError(f"{path} is larger than {limit // (1024 * 1024)} MiB")
    return data


def load_chain_file(path: str | Path, *, max_certs: int = 32) -> PresentedChain:
    """The chain in a file, as a PresentedChain whose source is ``path``; raises only NotARegularFile (a FIFO,
    device or directory is unusable input, not a broken certificate file)."""
    try:
        data = read_capped(path)
    except NotARegularFile:
        raise
    except CertificateParseError as exc:
        return PresentedChain(source=str(path), error=str(exc), error_kind="parse")
    return chain_from_bytes(data, str(path), max_certs=max_certs)


def chain_from_bytes(data: bytes, source: str, *, max_certs: int = 32) -> PresentedChain:
    """The chain in already-read file content (with its PEM formatting facts); never raises."""
    from .pemlint import lint_pem

    if looks_like_pkcs12(source, data[:64]):
        return PresentedChain(
            source=source,
            error=f"a PKCS#12 (.pfx/.p12) bundle, not a certificate chain: `certdoctor fix {source} "
            "--password-file FILE -d out` writes its chain as PEM (or: openssl pkcs12 -in FILE -nokeys -out chain.pem)",
            error_kind="parse",
        )
    try:
        issues = tuple(lint_pem(data))
        certs = parse_certificates(data)
    except CertificateParseError as exc:
        return PresentedChain(source=source, error=str(exc), error_kind="parse")
    except Exception as exc:  # defensive: a parse bug must not take the tool down
        return PresentedChain(source=source, error=f"cannot parse {source}: {exc}", error_kind="parse")
    return PresentedChain(source=source, certs=tuple(certs[:max_certs]), total_received=len(certs), pem_issues=issues)


def load_chain_files(paths: Sequence[str | Path], *, max_certs: int = 32) -> list[PresentedChain]:
    """Files read as ONE presented chain, in the order given: what a server configured with them sends (Apache's
    SSLCertificateFile + SSLCertificateChainFile, or cert.pem + chain.pem). Raises only NotARegularFile.

    Returns the combined chain (source ``"a.pem + b.pem"``, PEM facts naming their file), followed by one
    failed chain per file that could not be read (its source is that file).
    """
    if len(paths) == 1:
        return [load_chain_file(paths[0], max_certs=max_certs)]
    parts = [load_chain_file(p, max_certs=max_certs) for p in paths]
    good = [c for c in parts if c.ok]
    failed = [c for c in parts if not c.ok]
    if not good:
        return failed
    certs = tuple(cert for c in good for cert in c.certs)
    combined = PresentedChain(
        source=" + ".join(c.source for c in good),
        certs=certs[:max_certs],
        total_received=sum(c.total_received for c in good),
        pem_issues=tuple(replace(i, file=c.source) for c in good for i in c.pem_issues),
    )
    return [combined, *failed]


def load_certificate_files(paths: Sequence[str | Path]) -> list[x509.Certificate]:
    """All certificates of several files (for --ca-file and --expect); errors name the file."""
    result: list[x509.Certificate] = []
    for path in paths:
        data = read_capped(path)
        try:
            result.extend(parse_certificates(data))
        except CertificateParseError as exc:
            raise CertificateParseError(f"{path}: {exc}") from None
    return result


MAX_CRL_BYTES = 64 * 1024 * 1024  # large CAs publish CRLs of tens of MB


def load_crl_files(paths: Sequence[str | Path]) -> tuple[tuple[str, bytes], ...]:
    """(file, DER) of every CRL file (PEM or DER, one CRL per file) given with --crl; raises
    CertificateParseError (an InputError: exit status 2) naming the file when one is unreadable, larger than
    :data:`MAX_CRL_BYTES` or not a CRL."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from ..revocation import parse_crl

    out: list[tuple[str, bytes]] = []
    for path in paths:
        data = read_capped(path, MAX_CRL_BYTES)
        try:
            crl = parse_crl(data)
        except ValueError as exc:
            raise CertificateParseError(f"{path}: not a CRL (PEM or DER): {short_reason(exc)}") from None
        out.append((str(path), crl.public_bytes(Encoding.DER)))
    return tuple(out)
