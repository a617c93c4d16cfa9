"""nginx: TLS ``server`` blocks of the ``http``, ``stream`` and ``mail`` contexts, with their certificates.

Each file is tokenised and parsed by ``crossplane`` (one file at a time, ``single=True``); ``include`` is followed
here, so that every read is capped and loops are stopped (see ``_base``). The rules follow nginx's documentation
and source:

* ``include`` and relative ``ssl_certificate``/``ssl_certificate_key`` paths are relative to the configuration
  prefix, the directory of the main file (``ngx_conf_full_name(cycle, name, conf_prefix=1)``); a pattern with
  wildcards may match nothing, a plain path must exist (ngx_conf_include).
* A ``listen`` with ``ssl``, or any listen of a server (or http/stream context) with the legacy ``ssl on;``, is TLS.
  A server without ``listen`` listens on ``*:80`` (``*:8000`` when nginx does not run as root) — TLS only with
  ``ssl on``.
* ``ssl_certificate``/``ssl_certificate_key`` pair up by position; a server that sets none inherits the
  enclosing context's (ngx_conf_merge_ptr_value in ngx_http_ssl_merge_srv_conf).
* ``server_name``: ``.example.com`` means ``example.com`` and ``*.example.com``; ``~regex`` names and
  ``$hostname`` are left out with a note; ``""`` and ``_`` name nothing.
* Paths with ``$variables`` (nginx ≥ 1.15.9 loads them per handshake) and ``data:``/``engine:`` values are kept as
  written, noted, not checked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ._base import CertificateSource, IncludeGuard, ListenAddress, Reader, TlsListener

_TLS_CONTEXTS = ("http", "stream", "mail")
_PORT = re.compile(r"\d{1,5}")


def discover_nginx(main: Path, reader: Reader) -> list[TlsListener]:
    """Every TLS server block of the configuration rooted at ``main`` (see the module docstring)."""
    try:
        import crossplane  # noqa: F401
    except ImportError:  # pragma: no cover - a declared dependency
        reader.note("nginx configurations need the crossplane package (pip install crossplane)")
        return []
    prefix = main.parent
    guard = IncludeGuard(reader)
    tree = _load(main, prefix, reader, guard, None)
    listeners: list[TlsListener] = []
    for directive in tree:
        if directive["directive"] in _TLS_CONTEXTS and "block" in directive:
            _context(directive, prefix, reader, listeners)
    return listeners


def _load(
    path: Path, prefix: Path, reader: Reader, guard: IncludeGuard, where: tuple[str, int] | None
) -> list[dict[str, Any]]:
    """The directives of ``path`` with includes expanded in place; each directive gains ``file``."""
    import crossplane

    real = guard.may_enter(path, where or (str(path), 0)) if where is not None else os.path.realpath(path)
    if real is None:
        return []
    text = reader.read(path, where)
    if text is None:
        return []
    del text  # read() checked the file's kind and size; crossplane reads it again by name
    try:
        payload = crossplane.parse(
            str(path), single=True, catch_errors=True, check_ctx=False, check_args=False, comments=False
        )
    except (RecursionError, OSError, UnicodeDecodeError, ValueError) as exc:
        reader.note(f"cannot parse: {type(exc).__name__}", path)
        return []
    for error in payload.get("errors", []):
        message = str(error.get("error", "parse error"))
        message = re.sub(r" in \S+:\d+$", "", message)
        reader.note(f"nginx syntax: {message}", path, error.get("line"))
    config = payload.get("config") or [{}]
    parsed = config[0].get("parsed") or []
    guard.stack.append(real)
    try:
        return _expand(parsed, path, prefix, reader, guard, 0)
    finally:
        guard.stack.pop()


def _expand(
    directives: list[dict[str, Any]], path: Path, prefix: Path, reader: Reader, guard: IncludeGuard, depth: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if depth > 64:
        reader.note("blocks nested deeper than 64: ignored", path)
        return out
    for d in directives:
        line = int(d.get("line") or 0)
        if d.get("directive") == "include" and d.get("args"):
            where = (str(path), line)
            pattern = d["args"][0]
            if "$" in pattern:
                reader.note(f"include {pattern} uses variables: not followed", *where)
                continue
            full = pattern if os.path.isabs(pattern) else str(prefix / pattern)
            matches = reader.expand(full, where)
            if matches is None:
                if not os.path.lexists(full):
                    reader.note(f"include {full} does not exist (nginx -t fails)", *where)
                    continue
                matches = [Path(full)]
            for match in matches:
                out.extend(_load(match, prefix, reader, guard, where))
            continue
        item = {"directive": d.get("directive", ""), "args": list(d.get("args") or []), "line": line, "file": str(path)}
        if "block" in d:
            item["block"] = _expand(d["block"], path, prefix, reader, guard, depth + 1)
        out.append(item)
    return out


def _context(ctx: dict[str, Any], prefix: Path, reader: Reader, listeners: list[TlsListener]) -> None:
    """One http/stream/mail context: its inherited SSL settings, then each server block."""
    inherited = _ssl_settings(ctx["block"])
    for d in ctx["block"]:
        if d["directive"] == "server" and "block" in d:
            listener = _server(ctx["directive"], d, inherited, prefix, reader)
            if listener is not None:
                listeners.append(listener)


def _ssl_settings(block: list[dict[str, Any]]) -> dict[str, Any]:
    settings: dict[str, Any] = {"certs": [], "keys": [], "ssl_on": None}
    for d in block:
        name, args = d["directive"], d["args"]
        if name == "ssl_certificate" and args:
            settings["certs"].append((args[0], d["file"], d["line"]))
        elif name == "ssl_certificate_key" and args:
            settings["keys"].append((args[0], d["file"], d["line"]))
        elif name == "ssl" and args:
            settings["ssl_on"] = (args[0].lower() == "on", d["file"], d["line"])
    return settings


def _server(
    context: str, server: dict[str, Any], inherited: dict[str, Any], prefix: Path, reader: Reader
) -> TlsListener | None:
    own = _ssl_settings(server["block"])
    where = (server["file"], server["line"])
    ssl_on = own["ssl_on"] if own["ssl_on"] is not None else inherited["ssl_on"]
    if ssl_on is not None and ssl_on[0]:
        reader.note_once(
            f"ssl-on:{ssl_on[1]}:{ssl_on[2]}",
            "legacy `ssl on;` (removed in nginx 1.25.1): every listen of the server is TLS",
            ssl_on[1],
            ssl_on[2],
        )
    all_ssl = bool(ssl_on and ssl_on[0])
    addresses: list[ListenAddress] = []
    default = False
    saw_listen = False
    for d in server["block"]:
        if d["directive"] != "listen" or not d["args"]:
            continue
        saw_listen = True
        params = [a.lower() for a in d["args"][1:]]
        if "quic" in params:
            reader.note("listen … quic (HTTP/3 over UDP) is not probed over TCP", d["file"], d["line"])
            continue
        if not (all_ssl or "ssl" in params):
            continue
        address = _listen_address(d["args"][0], context, d["file"], d["line"], reader)
        if address is None:
            continue
        options = tuple(p for p in params if p != "ssl" and "=" not in p)
        addresses.append(ListenAddress(address[0], address[1], options))
        default = default or "default_server" in params or "default" in params
    if not saw_listen and all_ssl and context == "http":
        addresses.append(ListenAddress(None, 80))
        reader.note("server without listen: nginx listens on *:80 (*:8000 when not run as root)", *where)
    if not addresses:
        return None
    names = _names(server["block"], reader)
    certs = own["certs"] or inherited["certs"]
    keys = own["keys"] if own["certs"] else inherited["keys"]
    sources: list[CertificateSource] = []
    if not certs:
        reader.note(f"TLS {context} server without ssl_certificate: nginx refuses its handshakes", *where)
    for i, (cert, cfile, cline) in enumerate(certs):
        cwhere = (cfile, cline)
        key = keys[i][0] if i < len(keys) else None
        if key is None:
            reader.note(f"ssl_certificate {cert} has no ssl_certificate_key (nginx -t fails)", *cwhere)
        cert_path, cert_ok = _path(cert, prefix, reader, cwhere, "ssl_certificate")
        key_path = None
        if key is not None:
            key_path, _ = _path(key, prefix, reader, cwhere, "ssl_certificate_key")
        sources.append(reader.source(cert_path, key_path, None, "ssl_certificate", cwhere, check=cert_ok))
    return TlsListener(
        server_type="nginx",
        file=server["file"],
        line=server["line"],
        section=f"{context} server",
        names=tuple(names),
        addresses=tuple(dict.fromkeys(addresses)),
        certificates=tuple(sources),
        default_server=default,
    )


def _path(value: str, prefix: Path, reader: Reader, where: tuple[str, int], directive: str) -> tuple[str, bool]:
    """The absolute path for a certificate/key value and whether it can be checked on disk."""
    if value.startswith(("data:", "engine:", "store:")):
        reader.note(f"{directive} {value.split(':', 1)[0]}:… is not a file: not checked", *where)
        return value, False
    if "$" in value:
        reader.note(f"{directive} {value} uses variables, resolved per handshake: not checked", *where)
        return value, False
    return (value if os.path.isabs(value) else os.path.normpath(prefix / value)), True


def _listen_address(value: str, context: str, file: str, line: int, reader: Reader) -> tuple[str | None, int] | None:
    """(host, port) of a ``listen`` address: ``443``, ``*:443``, ``1.2.3.4:443``, ``[::]:443``, ``host``."""
    if value.startswith("unix:"):
        reader.note(f"listen {value}: a UNIX socket, not probed", file, line)
        return None
    default_port = 80 if context == "http" else None
    host: str | None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            reader.note(f"listen {value}: unreadable address", file, line)
            return None
        host, rest = value[1:end], value[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    elif _PORT.fullmatch(value):
        host, port_text = None, value
    elif ":" in value:
        host, port_text = value.rsplit(":", 1)
    else:
        host, port_text = value, ""
    if host == "*" or host == "":
        host = None
    if not port_text:
        if default_port is None:
            reader.note(f"listen {value}: no port", file, line)
            return None
        return host, default_port
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        reader.note(f"listen {value}: not a port", file, line)
        return None
    return host, int(port_text)


def _names(block: list[dict[str, Any]], reader: Reader) -> list[str]:
    names: list[str] = []
    for d in block:
        if d["directive"] != "server_name":
            continue
        for raw in d["args"]:
            name = raw.lower().rstrip(".") if raw not in (".", "") else ""
            if not name or name == "_":
                continue
            if raw.startswith("~"):
                reader.note(f"server_name {raw} is a regular expression: left out", d["file"], d["line"])
            elif "$" in raw:
                reader.note(f"server_name {raw} uses a variable: left out", d["file"], d["line"])
            elif raw.startswith("."):
                names.extend([name[1:], "*" + name])
            else:
                names.append(name)
    return list(dict.fromkeys(names))
