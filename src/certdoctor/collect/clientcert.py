"""The client certificate certdoctor presents to servers that ask for one (mutual TLS, ``--cert``/``--client-key``).

A PEM file with the certificate first (then, optionally, the intermediates the server needs to verify it, as curl's
``--cert`` file holds them), and its private key in the same file or in another one. Raises
:class:`ClientCertificateError` (an InputError: exit status 2) for a file that cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ..errors import InputError
from .files import parse_certificates, read_capped
from .keys import KeyLoadError, keys_in

__all__ = ["ClientCertificateError", "ClientIdentity", "ca_names", "load_client_identity"]

MAX_CLIENT_FILE = 1024 * 1024
MAX_CA_NAMES = 64  # CA names kept from a CertificateRequest


class ClientCertificateError(InputError):
    """A client certificate or its key cannot be used."""


@dataclass(frozen=True, eq=False)
class ClientIdentity:
    """A client certificate, the intermediates sent with it, and its private key (a cryptography key object).

    ``source``: the file(s) it was read from, for messages. ``fingerprint``: the SHA-256 of the certificate, hex
    (the collector keys its TLS contexts by it)."""

    certs: tuple[x509.Certificate, ...]
    key: Any = field(repr=False)
    source: str = ""

    @property
    def cert(self) -> x509.Certificate:
        return self.certs[0]

    @property
    def fingerprint(self) -> str:
        from cryptography.hazmat.primitives import hashes

        return self.cert.fingerprint(hashes.SHA256()).hex()


def load_client_identity(cert_path: str, key_path: str | None = None, password: bytes | None = None) -> ClientIdentity:
    """The identity of ``cert_path`` (PEM: the certificate, then any intermediates; the key may follow in the same
    file) with the key of ``key_path`` when given, else the key found in ``cert_path``. ``password`` decrypts an
    encrypted key. Raises ClientCertificateError: no certificate, no key, several keys, or a key that does not
    belong to the certificate."""
    try:
        data = read_capped(cert_path, MAX_CLIENT_FILE)
    except InputError as exc:
        raise ClientCertificateError(f"--cert {exc}") from None
    try:
        certs = parse_certificates(data, max_certs=32)
    except InputError as exc:
        raise ClientCertificateError(f"--cert {cert_path}: {exc}") from None
    if not certs:
        raise ClientCertificateError(f"--cert {cert_path}: no certificate in the file")
    source = cert_path
    try:
        if key_path:
            source = f"{cert_path} (key {key_path})"
            key_data = read_capped(key_path, MAX_CLIENT_FILE)
            keys = list(keys_in(key_data, key_path, password))
            where = key_path
        else:
            keys = list(keys_in(data, cert_path, password))
            where = cert_path
    except KeyLoadError as exc:
        raise ClientCertificateError(f"client key: {exc}") from None
    except InputError as exc:
        raise ClientCertificateError(f"--client-key {exc}") from None
    if not keys:
        hint = "" if key_path else " (give it with --client-key FILE)"
        raise ClientCertificateError(f"client key: no private key in {where}{hint}")
    if len(keys) > 1:
        raise ClientCertificateError(f"client key: {len(keys)} private keys in {where}; keep only the certificate's")
    key = keys[0]
    if key.public_key() != certs[0].public_key():
        raise ClientCertificateError(
            f"client key: the private key in {where} does not belong to the certificate in {cert_path} "
            "(the first certificate of the file is the one sent)"
        )
    return ClientIdentity(tuple(certs), key, source)


def ca_names(conn: Any) -> tuple[str, ...]:
    """The acceptable CA names of the server's CertificateRequest on the pyOpenSSL connection ``conn`` (RFC 8446
    §4.2.4 certificate_authorities, RFC 5246 §7.4.4), as RFC 4514 strings (most specific attribute first),
    printable, at most :data:`MAX_CA_NAMES` of 256 characters per value."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        names = conn.get_client_ca_list()[:MAX_CA_NAMES]
        out = []
        for name in names:
            parts = []
            for key, value in reversed(name.get_components()):
                text = value.decode("utf-8", "replace")
                text = text.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+")
                text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
                parts.append(f"{key.decode('ascii', 'replace')}={text[:256]}")
            out.append(",".join(parts))
    return tuple(out)
