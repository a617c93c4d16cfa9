"""Discover TLS listeners and the certificate files they serve from nginx, Apache httpd and HAProxy configurations.

``discover(path)`` reads a server's configuration — a directory such as ``/etc/nginx``, ``/etc/apache2``,
``/etc/httpd`` or ``/etc/haproxy``, or its main file — the way the server would (includes, inheritance, defaults)
and returns a :class:`Discovery`: one :class:`TlsListener` per TLS-serving unit (nginx ``server`` block, Apache
``<VirtualHost>`` with ``SSLEngine on``, HAProxy ``bind … ssl``), each with the addresses it listens on, the names
it answers for and the certificate files (:class:`CertificateSource`) it serves, plus :class:`Note` s for every
problem or caveat (missing include or certificate file, unresolved variables, conditional sections assumed true,
an include loop, a file over the size cap). It only reads files: it never runs the server or connects anywhere.

It never raises for what is inside the configuration — that becomes a note; it raises :class:`ServerConfError`
(an ``InputError``, one line) only when ``path`` itself is unusable: missing, unreadable, of an unknown server.

Example::

    found = discover("/etc/nginx")
    for listener in found.listeners:
        for address in listener.addresses:
            for name in listener.sni_names or (None,):
                source = listener.certificate_for(name)   # what "deployed on disk" says should be served
                ...   # handshake with address.connect_host:address.port, SNI name; compare the leaf with
                      # source.leaf_sha256
    for note in found.notes:
        print(note)   # "/etc/nginx/sites-enabled/x:12: ssl_certificate /etc/ssl/x.pem does not exist"
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ._base import (
    MAX_CERT_FILES,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_INCLUDE_DEPTH,
    MAX_NOTES,
    MAX_TOTAL_BYTES,
    SERVER_TYPES,
    CertificateSource,
    Discovery,
    ListenAddress,
    Note,
    Reader,
    ServerConfError,
    TlsListener,
)

__all__ = [
    "MAX_CERT_FILES",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_INCLUDE_DEPTH",
    "MAX_NOTES",
    "MAX_TOTAL_BYTES",
    "SERVER_TYPES",
    "CertificateSource",
    "Discovery",
    "ListenAddress",
    "Note",
    "ServerConfError",
    "TlsListener",
    "detect",
    "discover",
]

# Main file names, in the order looked for inside a directory (Debian, RHEL, source builds, FreeBSD).
_MAIN_FILES = (
    ("nginx.conf", "nginx"),
    ("apache2.conf", "apache"),
    ("httpd.conf", "apache"),
    ("conf/httpd.conf", "apache"),
    ("haproxy.cfg", "haproxy"),
)
_ALIASES = {"nginx": "nginx", "apache": "apache", "apache2": "apache", "httpd": "apache", "haproxy": "haproxy"}
_SNIFF = (
    (re.compile(r"^\s*<VirtualHost\b|^\s*(ServerRoot|LoadModule|Listen)\s", re.M | re.I), "apache"),
    (re.compile(r"^\s*(frontend|backend|listen|global|defaults)\b", re.M), "haproxy"),
    (re.compile(r"^\s*(http|events|stream)\s*\{|^\s*server\s*\{", re.M), "nginx"),
)


def detect(path: str | os.PathLike[str], server_type: str | None = None) -> tuple[str, Path]:
    """(server type, main configuration file) for ``path``; raises ServerConfError when it cannot tell.

    A directory is searched for ``nginx.conf``, ``apache2.conf``, ``httpd.conf``, ``conf/httpd.conf``,
    ``haproxy.cfg`` (in that order; with ``server_type``, only that server's names). A file is recognised by
    its name, else by its first kilobytes (``<VirtualHost``, ``frontend``, ``http {`` …).
    """
    kind = None
    if server_type is not None:
        kind = _ALIASES.get(server_type.lower())
        if kind is None:
            raise ServerConfError(f"unknown server type {server_type!r} (expected one of: {', '.join(SERVER_TYPES)})")
    p = Path(path)
    if not p.exists():
        raise ServerConfError(f"{p} does not exist")
    if p.is_dir():
        for name, found in _MAIN_FILES:
            if (kind is None or found == kind) and (p / name).is_file():
                return found, p / name
        if kind == "haproxy" and any(p.glob("*.cfg")):
            return kind, p
        wanted = [n for n, k in _MAIN_FILES if kind is None or k == kind]
        raise ServerConfError(f"{p} holds no server configuration (looked for {', '.join(wanted)})")
    if not p.is_file():
        raise ServerConfError(f"{p} is not a regular file")
    if kind is not None:
        return kind, p
    for name, found in _MAIN_FILES:
        if p.name == Path(name).name:
            return found, p
    try:
        with open(p, "rb") as handle:
            head = handle.read(8192).decode("utf-8", errors="replace")
    except OSError as exc:
        raise ServerConfError(f"cannot read {p}: {exc.strerror or exc}") from None
    for pattern, found in _SNIFF:
        if pattern.search(head):
            return found, p
    raise ServerConfError(f"cannot tell which server reads {p}; name the type (nginx, apache or haproxy)")


def discover(path: str | os.PathLike[str], *, server_type: str | None = None) -> Discovery:
    """The TLS listeners configured under ``path`` (see the module docstring); ``server_type`` is one of
    ``nginx``, ``apache`` (``apache2``, ``httpd``), ``haproxy``, or None to detect it. Raises ServerConfError
    only when ``path`` is unusable; everything else is a note."""
    kind, main = detect(path, server_type)
    main = main.absolute()
    reader = Reader()
    if main.is_file():
        probe = Reader()
        if probe.read(main) is None:
            raise ServerConfError(str(probe.notes[0]) if probe.notes else f"cannot read {main}")
    if kind == "nginx":
        from .nginx import discover_nginx

        listeners = discover_nginx(main, reader)
    elif kind == "apache":
        from .apache import discover_apache

        listeners = discover_apache(main, reader)
    else:
        from .haproxy import discover_haproxy

        listeners = discover_haproxy(main, reader)
    if kind in ("nginx", "apache"):
        _note_conflicting_names(listeners, reader)
    return Discovery(
        server_type=kind,
        root=str(main),
        listeners=tuple(listeners),
        notes=tuple(dict.fromkeys(reader.notes)),
        files=tuple(dict.fromkeys(reader.files)),
    )


def _note_conflicting_names(listeners: list[TlsListener], reader: Reader) -> None:
    """A name served by two blocks on one address: the first wins (nginx warns "conflicting server name …,
    ignored"; httpd matches name-based vhosts in configuration order), so the later block never serves it."""
    first: dict[tuple[str | None, int, str], TlsListener] = {}
    for listener in listeners:
        for address in listener.addresses:
            for name in listener.names:
                key = (address.host, address.port, name)
                winner = first.setdefault(key, listener)
                if winner is not listener:
                    reader.note(
                        f"{name} on {address} is also defined at {winner.file}:{winner.line}, which wins:"
                        " this block never serves it",
                        listener.file,
                        listener.line,
                    )
