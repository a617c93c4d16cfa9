"""The result types of server-configuration discovery, and the capped, loop-safe file access the parsers share.

Configuration files are untrusted input (a directory handed to certdoctor may hold anything), so every read goes
through :class:`Reader`: one file is at most :data:`MAX_FILE_BYTES`, all files together at most
:data:`MAX_TOTAL_BYTES`, at most :data:`MAX_FILES` files and :data:`MAX_INCLUDE_DEPTH` nested includes; a file that
includes itself (directly, through others or through a symlink) is noted and skipped; FIFOs and devices are never
opened for reading (``collect.files.read_capped``). Whatever goes wrong becomes a :class:`Note`, not an exception.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ...errors import InputError
from ..files import CertificateParseError, parse_certificates_lenient, read_capped

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest configuration file read (bytes); a larger one is noted and skipped. Real ones are kilobytes."""
MAX_TOTAL_BYTES = 16 * 1024 * 1024
"""Largest total of configuration bytes read in one discovery."""
MAX_FILES = 1000
"""Most configuration files read in one discovery (each include of a file counts)."""
MAX_INCLUDE_DEPTH = 16
"""Deepest include nesting followed (nginx, Apache); nginx and Apache have no limit of their own but loops."""
MAX_GLOB_MATCHES = 1000
"""Most files one include pattern (or one HAProxy ``crt`` directory) expands to."""
MAX_GLOB_LEVELS = 3
"""Most path components with wildcards in one include pattern."""
MAX_CERT_FILES = 2000
"""Most certificate files inspected in one discovery (existence, leaf fingerprint, names)."""
MAX_CERT_BYTES = 1024 * 1024
"""Largest certificate file read to fingerprint its leaf."""

MAX_NOTES = 1000
"""Most notes kept; one more says that others were dropped."""

SERVER_TYPES = ("nginx", "apache", "haproxy")


class ServerConfError(InputError):
    """The configuration path cannot be used at all (missing, unreadable main file, unknown server type); one line."""


@dataclass(frozen=True)
class Note:
    """A non-fatal problem or caveat met while reading configurations: ``file``/``line`` where (when known)."""

    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ListenAddress:
    """One address a listener accepts TLS on.

    ``host`` is the address or name as configured, IPv6 without brackets; None means every address (nginx
    ``listen 443``, ``*:443``, Apache ``*``/``_default_``, HAProxy ``:443``/``*:443``). ``options`` are the
    server's own words for the listener (nginx ``default_server``, ``http2``, ``proxy_protocol``; Apache the
    ``Listen`` protocol; HAProxy nothing yet).
    """

    host: str | None
    port: int
    options: tuple[str, ...] = ()

    @property
    def connect_host(self) -> str:
        """Where a local probe connects: the configured host, or loopback for a wildcard address."""
        if self.host is None or self.host == "0.0.0.0":
            return "127.0.0.1"
        if self.host == "::":
            return "::1"
        return self.host

    def __str__(self) -> str:
        if self.host is None:
            return f"*:{self.port}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CertificateSource:
    """One certificate a listener is configured to serve, as files on disk.

    ``certificate`` is the file whose first certificate is the leaf served (absolute; as written when it holds
    variables the parser cannot resolve). ``key`` is the private-key file, None when the key is in the certificate
    file or unknown; ``chain`` a separate chain file (Apache ``SSLCertificateChainFile``). ``names`` are the SNI
    names that select this certificate when the server chooses by name (HAProxy crt-list filters, else the
    leaf's names); empty for nginx and Apache, which choose the server block/vhost by name, not the certificate.
    ``origin`` is the directive it came from (``ssl_certificate``, ``SSLCertificateFile``, ``crt``, ``crt-list``),
    at ``file``:``line``. ``exists`` is False when the file is missing, None when not checked (variables).
    ``leaf_sha256`` (lowercase hex of the DER) and ``leaf_names`` (DNS subjectAltNames, else the CN) describe the
    first certificate of the file when it could be read. ``excluded_names``: HAProxy crt-list negative filters
    (``!name``), names this certificate is never chosen for even when a wildcard of ``names`` covers them.
    """

    certificate: str
    key: str | None
    chain: str | None
    origin: str
    file: str
    line: int
    names: tuple[str, ...] = ()
    exists: bool | None = None
    leaf_sha256: str | None = None
    leaf_names: tuple[str, ...] = ()
    excluded_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsListener:
    """One TLS-serving unit of a server configuration: an nginx ``server`` block, an Apache ``<VirtualHost>``
    with ``SSLEngine on``, or an HAProxy ``bind … ssl`` line.

    ``names``: the names it answers for, lowercase, in configuration order — nginx ``server_name`` (wildcards such
    as ``*.example.com`` kept, regular expressions left out with a note), Apache ``ServerName`` + ``ServerAlias``,
    HAProxy the crt-list filters and the certificates' names. ``addresses``: where it listens. ``certificates``:
    what it serves, the first being the default one (HAProxy: for clients without a matching SNI). ``section``
    names the enclosing block (``http server``, ``stream server``, ``VirtualHost *:443``, ``frontend www``).
    ``default_server``: nginx ``default_server``/``default`` on one of its listens, Apache ``_default_``.
    ``conditions``: the Apache ``<IfModule>``/``<IfDefine>``/``<IfVersion>`` (HAProxy ``.if``) sections around
    it, which discovery assumes true.
    """

    server_type: str
    file: str
    line: int
    section: str
    names: tuple[str, ...]
    addresses: tuple[ListenAddress, ...]
    certificates: tuple[CertificateSource, ...]
    default_server: bool = False
    conditions: tuple[str, ...] = ()

    @property
    def sni_names(self) -> tuple[str, ...]:
        """The names a client can send as SNI as they are: ``names`` without wildcard patterns."""
        return tuple(n for n in self.names if "*" not in n)

    @property
    def certificate(self) -> str | None:
        """The default certificate file (first of ``certificates``), or None when none is configured."""
        return self.certificates[0].certificate if self.certificates else None

    @property
    def key(self) -> str | None:
        return self.certificates[0].key if self.certificates else None

    @property
    def chain(self) -> str | None:
        return self.certificates[0].chain if self.certificates else None

    def certificate_for(self, sni: str | None) -> CertificateSource | None:
        """The certificate this listener serves to a client sending ``sni`` (None: no SNI).

        HAProxy picks by name: an exact ``names`` match first, then a ``*.`` wildcard one label deep, else its
        default (first) certificate (HAProxy configuration manual, "crt" and "crt-list"). nginx and Apache choose the
        server block by name and then serve its certificate for the client's key type: the first one is returned.
        """
        if not self.certificates:
            return None
        if sni and self.server_type == "haproxy":
            sni = sni.lower().rstrip(".")
            for source in self.certificates:
                if sni in source.names and sni not in source.excluded_names:
                    return source
            if "." in sni:
                wildcard = "*." + sni.split(".", 1)[1]
                for source in self.certificates:
                    if wildcard in source.names and sni not in source.excluded_names:
                        return source
        return self.certificates[0]


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found: ``listeners`` in configuration order, ``notes`` (problems and caveats, in
    the order met), ``files`` (every configuration file read), ``root`` (the main configuration file)."""

    server_type: str
    root: str
    listeners: tuple[TlsListener, ...]
    notes: tuple[Note, ...]
    files: tuple[str, ...]

    def listener_for(self, port: int, sni: str | None = None, host: str | None = None) -> TlsListener | None:
        """The listener a client reaching ``host``:``port`` (None: any address) with ``sni`` lands on, or None.

        Among the listeners on that port: the first whose ``names`` hold ``sni``; else the first with a wildcard
        covering it (``*.example.com``, nginx's ``www.example.*``); else the address's default — nginx's
        ``default_server``, otherwise the first block listening there (nginx's and httpd's documented rule for
        name-based virtual hosts); HAProxy has one listener per bind line. A simplification: nginx keeps
        separate defaults for a specific address and the wildcard one; pass ``host`` to pick the address.
        """
        candidates = [
            listener
            for listener in self.listeners
            if any(a.port == port and (host is None or a.host in (None, host)) for a in listener.addresses)
        ]
        if not candidates:
            return None
        if sni:
            name = sni.lower().rstrip(".")
            for listener in candidates:
                if name in listener.names:
                    return listener
            for listener in candidates:
                if any(_wildcard_covers(pattern, name) for pattern in listener.names if "*" in pattern):
                    return listener
        return next((listener for listener in candidates if listener.default_server), candidates[0])

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields above, each listener with its ``sni_names`` too, each address with its
        ``connect_host``, each note as {"file", "line", "message", "text"} (``text`` is ``str(note)``)."""

        def listener(item: TlsListener) -> dict[str, Any]:
            out = asdict(item)
            out["sni_names"] = list(item.sni_names)
            for address, data in zip(item.addresses, out["addresses"], strict=True):
                data["connect_host"] = address.connect_host
            return out

        return {
            "server_type": self.server_type,
            "root": self.root,
            "listeners": [listener(item) for item in self.listeners],
            "notes": [{**asdict(note), "text": str(note)} for note in self.notes],
            "files": list(self.files),
        }


def _wildcard_covers(pattern: str, name: str) -> bool:
    """nginx/httpd wildcard names: ``*.example.com`` (any depth for nginx), ``www.example.*``."""
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1])
    return False


@dataclass
class _CertFacts:
    exists: bool | None
    sha256: str | None
    names: tuple[str, ...]
    has_key: bool


def cert_names(cert: x509.Certificate) -> tuple[str, ...]:
    """DNS subjectAltNames of ``cert``, lowercase; the subject CN when there is no SAN extension."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return tuple(dict.fromkeys(n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)))
    except x509.ExtensionNotFound:
        pass
    except ValueError:
        return ()
    try:
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except ValueError:
        return ()
    return tuple(str(a.value).lower() for a in cns[:1])


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """``text`` with control characters (C0, DEL, C1: a configuration may hold terminal escapes) as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


@dataclass
class Reader:
    """Capped reads of configuration files and inspection of certificate files, collecting notes."""

    notes: list[Note] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    total_bytes: int = 0
    file_count: int = 0
    _certs: dict[str, _CertFacts] = field(default_factory=dict)
    _noted: set[str] = field(default_factory=set)

    def note(self, message: str, file: str | os.PathLike[str] | None = None, line: int | None = None) -> None:
        if len(self.notes) < MAX_NOTES:
            name = None if file is None else _printable(str(file))
            self.notes.append(Note(_printable(message), name, line))
        elif len(self.notes) == MAX_NOTES:
            self.notes.append(Note(f"more than {MAX_NOTES} notes: the rest are dropped"))

    def note_once(self, key: str, message: str, file: str | None = None, line: int | None = None) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.note(message, file, line)

    def read(self, path: Path, where: tuple[str, int] | None = None) -> str | None:
        """The text of the configuration file ``path`` (UTF-8, undecodable bytes replaced), or None with a note."""
        file, line = where if where is not None else (None, None)
        if self.file_count >= MAX_FILES:
            self.note_once("max-files", f"more than {MAX_FILES} configuration files; the rest are not read", file, line)
            return None
        self.file_count += 1
        limit = min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - self.total_bytes)
        try:
            data = read_capped(path, limit=max(limit, 0))
        except CertificateParseError as exc:
            text = str(exc)
            if "larger than" in text:
                if limit < MAX_FILE_BYTES:
                    text = f"{path} is not read: the configuration files together exceed {MAX_TOTAL_BYTES} bytes"
                else:
                    text = f"{path} is larger than {MAX_FILE_BYTES} bytes: not read"
            self.note(text, file, line)
            return None
        self.total_bytes += len(data)
        self.files.append(str(path))
        return data.decode("utf-8", errors="replace")

    def expand(self, pattern: str, where: tuple[str, int]) -> list[Path] | None:
        """The files a glob ``pattern`` (absolute) names, sorted; None when it has no wildcard."""
        if not glob.has_magic(pattern):
            return None
        if sum(glob.has_magic(part) for part in Path(pattern).parts) > MAX_GLOB_LEVELS:
            # /*/*/*/*/*/x would walk the whole file system: real includes use one or two wildcard levels.
            self.note(f"{pattern} has wildcards in more than {MAX_GLOB_LEVELS} path components: not followed", *where)
            return []
        matches: list[Path] = []
        for i, match in enumerate(glob.iglob(pattern)):
            if i >= MAX_GLOB_MATCHES:
                self.note(f"{pattern} matches more than {MAX_GLOB_MATCHES} files; the rest are ignored", *where)
                break
            matches.append(Path(match))
        return sorted(matches)

    def cert_facts(self, path: str) -> _CertFacts:
        """Whether the certificate file exists, and its leaf's SHA-256 and names when readable (cached)."""
        facts = self._certs.get(path)
        if facts is not None:
            return facts
        if len(self._certs) >= MAX_CERT_FILES:
            self.note_once("max-certs", f"more than {MAX_CERT_FILES} certificate files; the rest are not inspected")
            return _CertFacts(None, None, (), False)
        if not os.path.lexists(path):
            facts = _CertFacts(False, None, (), False)
        else:
            facts = _CertFacts(True, None, (), False)
            try:
                data = read_capped(path, limit=MAX_CERT_BYTES)
                certs, _ = parse_certificates_lenient(data, max_certs=64)
                if certs:
                    facts.sha256 = hashlib.sha256(certs[0].public_bytes(Encoding.DER)).hexdigest()
                    facts.names = cert_names(certs[0])
                facts.has_key = b"PRIVATE KEY-----" in data
            except CertificateParseError as exc:
                facts.exists = os.path.exists(path)
                text = str(exc)
                self.note(text if path in text else f"certificate file {path}: {text}")
        self._certs[path] = facts
        return facts

    def source(
        self,
        certificate: str,
        key: str | None,
        chain: str | None,
        origin: str,
        where: tuple[str, int],
        *,
        names: tuple[str, ...] = (),
        check: bool = True,
    ) -> CertificateSource:
        """A CertificateSource for ``certificate`` (absolute), noting a missing certificate, key or chain file."""
        if not check:
            return CertificateSource(certificate, key, chain, origin, where[0], where[1], names)
        facts = self.cert_facts(certificate)
        if facts.exists is False:
            self.note(f"{origin} {certificate} does not exist", *where)
        for kind, other in (("key", key), ("chain", chain)):
            checkable = other is not None and "$" not in other and ":" not in other.split("/", 1)[0]
            if checkable and not os.path.lexists(other):  # type: ignore[arg-type]
                self.note(f"{kind} file {other} does not exist", *where)
        return CertificateSource(
            certificate,
            key,
            chain,
            origin,
            where[0],
            where[1],
            names,
            exists=facts.exists,
            leaf_sha256=facts.sha256,
            leaf_names=facts.names,
        )


class IncludeGuard:
    """Tracks the chain of files being included (by real path) to stop loops and over-deep nesting."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.stack: list[str] = []

    def may_enter(self, path: Path, where: tuple[str, int]) -> str | None:
        """The real path to push when ``path`` may be read now, or None (with a note) for a loop or too deep."""
        try:
            real = os.path.realpath(path, strict=True)
        except OSError as exc:
            reason = "a symlink loop" if "loop" in str(exc).lower() or getattr(exc, "errno", 0) == 40 else None
            self.reader.note(f"cannot read {path}: {reason or exc.strerror or exc}", *where)
            return None
        if real in self.stack:
            self.reader.note(f"include loop: {path} includes itself (through {len(self.stack)} files); skipped", *where)
            return None
        if len(self.stack) > MAX_INCLUDE_DEPTH:
            self.reader.note(f"includes nested deeper than {MAX_INCLUDE_DEPTH}: {path} not read", *where)
            return None
        return real
