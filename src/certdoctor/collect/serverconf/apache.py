"""Apache httpd: ``<VirtualHost>`` sections served with ``SSLEngine on``, with their certificate files.

No maintained Python parser for httpd's configuration exists, so this is one, following httpd's own reader
(server/util.c ``ap_cfg_getline``, ``ap_getword_conf``; server/config.c ``ap_process_resource_config``):

* A line ending in a backslash continues on the next; a line whose first non-blank character is ``#`` is a
  comment (httpd has no trailing comments). Directive names are case-insensitive. Arguments are split on blanks;
  ``"…"`` and ``'…'`` quote, a backslash escapes the quote inside them.
* ``${NAME}`` is replaced by a ``Define``'d value, else by a Debian ``/etc/apache2/envvars`` ``export`` (those
  ``APACHE_*`` variables come from the init script's environment, not httpd); what stays unknown is noted and
  left as written (httpd warns the same way).
* ``Include``/``IncludeOptional`` are relative to ``ServerRoot`` (default: the directory of the main file, or its
  parent for ``conf/httpd.conf``); wildcards match sorted, a directory includes every file under it;
  ``Include`` of something missing is an error in httpd (noted), ``IncludeOptional`` is silent.
* ``<IfModule>``, ``<IfDefine>``, ``<IfVersion>``, ``<IfFile>``, ``<IfDirective>``, ``<IfSection>`` are assumed
  true: their contents are read, and listeners inside record them in ``conditions``. ``<Directory>``,
  ``<Location>``, ``<Files>``, ``<If>`` … cannot hold server-level TLS settings and are skipped; ``<Macro>``
  bodies are not expanded (noted when ``Use`` appears).
* A vhost is TLS when ``SSLEngine on`` is set in it or in the main server (mod_ssl merges ``enabled`` from the
  main server). It serves its own ``SSLCertificateFile``/``SSLCertificateKeyFile`` (paired by position),
  or, when it has none, the main server's (mod_ssl ``cfgMergeArray`` appends the main server's after the
  vhost's, yet httpd 2.4 serves the vhost's own one: tests/test_serverconf.py checks it with a real httpd).
  ``SSLCertificateChainFile`` is inherited when unset. Names: ``ServerName`` (scheme and port stripped;
  inherited from the main server when unset) and every ``ServerAlias``.
* With ``SSLEngine on`` in the main server, the main server itself is a TLS listener (``section`` "main server")
  on the ``Listen`` ports no vhost claims.
* A vhost address without a port (``*``) stands for every ``Listen`` port; a vhost port no ``Listen`` opens is
  noted (httpd would never serve it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ._base import MAX_GLOB_MATCHES, CertificateSource, IncludeGuard, ListenAddress, Reader, TlsListener

_CONDITIONALS = {"ifmodule", "ifdefine", "ifversion", "iffile", "ifdirective", "ifsection"}
_VAR = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")
_EXPORT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_MAX_SECTION_DEPTH = 64
_MAX_LINE = 64 * 1024  # longest line after ${VAR} substitution


@dataclass
class _Node:
    name: str  # lowercase directive or section name
    args: list[str]
    file: str
    line: int
    children: list[_Node] | None = None  # a section when not None
    raw_name: str = ""


@dataclass
class _State:
    reader: Reader
    guard: IncludeGuard
    server_root: Path
    defines: dict[str, str] = field(default_factory=dict)
    envvars: dict[str, str] = field(default_factory=dict)


def discover_apache(main: Path, reader: Reader) -> list[TlsListener]:
    """Every TLS virtual host of the configuration rooted at ``main`` (see the module docstring)."""
    root = main.parent.parent if main.parent.name == "conf" and main.name == "httpd.conf" else main.parent
    state = _State(reader, IncludeGuard(reader), root)
    envvars = root / "envvars"
    if envvars.is_file():
        text = reader.read(envvars)
        if text is not None:
            state.envvars = _read_envvars(text)
    tree = _load(main, state, None)
    return _interpret(tree, state)


def _read_envvars(text: str) -> dict[str, str]:
    """``export NAME=value`` assignments of a Debian envvars file, ``$SUFFIX`` taken as empty (the default
    instance /etc/apache2)."""
    values: dict[str, str] = {"SUFFIX": ""}
    for line in text.splitlines():
        match = _EXPORT.match(line)
        if not match:
            continue
        value = match.group(2).strip().strip("'\"")

        def sub(m: re.Match[str]) -> str:
            return values.get(m.group(1) or m.group(2), m.group(0))

        value = re.sub(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)", sub, value)
        if "$" not in value and "`" not in value:
            values[match.group(1)] = value
    values.pop("SUFFIX")
    return values


def _lines(text: str) -> list[tuple[int, str]]:
    """(first line number, logical line) with continuations joined, blanks and comments dropped."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending).strip()
        pending = []
        if joined and not joined.startswith("#"):
            out.append((start, joined))
    if pending:
        joined = " ".join(part.strip() for part in pending).strip()
        if joined and not joined.startswith("#"):
            out.append((start, joined))
    return out


def _words(text: str) -> list[str]:
    """Arguments as ap_getword_conf splits them: blanks separate, quotes group, ``\\`` escapes a quote."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        if text[i] in "\"'":
            quote = text[i]
            i += 1
            buf: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n and text[i + 1] in (quote, "\\"):
                    i += 1
                buf.append(text[i])
                i += 1
            i += 1
            words.append("".join(buf))
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            words.append(text[i:j])
            i = j
    return words


def _substitute(value: str, state: _State, where: tuple[str, int]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in state.defines:
            return state.defines[name]
        if name in state.envvars:
            return state.envvars[name]
        state.reader.note_once(f"var:{name}", f"${{{name}}} is not defined here: left as written", *where)
        return m.group(0)

    if "${" not in value:
        return value
    result = _VAR.sub(sub, value)
    if len(result) > _MAX_LINE:
        # Define X ${X}${X} repeated grows exponentially: refuse, as httpd would run out of memory.
        state.reader.note(f"a line grows beyond {_MAX_LINE} characters through ${{…}}: left as written", *where)
        return value
    return result


def _load(path: Path, state: _State, where: tuple[str, int] | None) -> list[_Node]:
    real = state.guard.may_enter(path, where) if where is not None else os.path.realpath(path)
    if real is None:
        return []
    text = state.reader.read(path, where)
    if text is None:
        return []
    state.guard.stack.append(real)
    try:
        return _parse(str(path), _lines(text), state)
    finally:
        state.guard.stack.pop()


def _parse(file: str, lines: list[tuple[int, str]], state: _State) -> list[_Node]:
    """The section tree of one file's lines; ``Include``, ``Define`` and ``ServerRoot`` take effect in order."""
    root: list[_Node] = []
    stack: list[_Node] = []
    for number, line in lines:
        where = (file, number)
        target = stack[-1].children if stack else root
        assert target is not None
        if line.startswith("</"):
            name = line[2:].rstrip(">").strip().lower()
            if not stack:
                state.reader.note(f"</{name}> closes no open section", *where)
            elif stack[-1].name == name:
                stack.pop()
            elif any(node.name == name for node in stack):
                while stack[-1].name != name:
                    unclosed = stack.pop()
                    state.reader.note(f"</{name}> closes <{unclosed.raw_name}> (line {unclosed.line}) too", *where)
                stack.pop()
            else:
                state.reader.note(f"</{name}> closes no open section", *where)
            continue
        if line.startswith("<"):
            body = line[1:]
            if body.endswith(">"):
                body = body[:-1]
            else:
                state.reader.note("section opening without '>'", *where)
            parts = body.split(None, 1)
            if not parts:
                continue
            args = _words(_substitute(parts[1], state, where)) if len(parts) > 1 else []
            node = _Node(parts[0].lower(), args, file, number, [], parts[0])
            if len(stack) >= _MAX_SECTION_DEPTH:
                state.reader.note(f"sections nested deeper than {_MAX_SECTION_DEPTH}: <{parts[0]}> ignored", *where)
                continue
            target.append(node)
            stack.append(node)
            continue
        parts = line.split(None, 1)
        name = parts[0].lower()
        args = _words(_substitute(parts[1], state, where)) if len(parts) > 1 else []
        if any(n.name == "macro" for n in stack):
            target.append(_Node(name, args, file, number))
            continue
        if name == "define" and args:
            state.defines[args[0]] = args[1] if len(args) > 1 else ""
        elif name == "undefine" and args:
            state.defines.pop(args[0], None)
        elif name == "serverroot" and args:
            state.server_root = Path(args[0])
        elif name in ("include", "includeoptional") and args:
            target.extend(_include(args[0], name == "includeoptional", state, where))
            continue
        target.append(_Node(name, args, file, number, raw_name=parts[0]))
    for node in stack:
        state.reader.note(f"<{node.raw_name}> is never closed", node.file, node.line)
    return root


def _include(pattern: str, optional: bool, state: _State, where: tuple[str, int]) -> list[_Node]:
    if "${" in pattern:
        state.reader.note(f"Include {pattern}: unresolved variable, not followed", *where)
        return []
    full = pattern if os.path.isabs(pattern) else str(state.server_root / pattern)
    matches = state.reader.expand(full, where)
    if matches is None:
        if not os.path.exists(full):
            if not optional:
                state.reader.note(f"Include {full} does not exist (httpd refuses to start)", *where)
            return []
        matches = [Path(full)]
    elif not matches and not optional:
        state.reader.note(f"Include {full} matches no file", *where)
    nodes: list[_Node] = []
    for match in matches:
        if match.is_dir():
            if state.guard.may_enter(match, where) is None:
                continue
            for f in _files_under(match, state.reader, where):
                nodes.extend(_load(f, state, where))
        else:
            nodes.extend(_load(match, state, where))
    return nodes


def _files_under(directory: Path, reader: Reader, where: tuple[str, int]) -> list[Path]:
    """Regular files under ``directory`` (symlinked directories not followed), sorted, at most MAX_GLOB_MATCHES."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            if len(found) >= MAX_GLOB_MATCHES:
                reader.note(f"{directory} holds more than {MAX_GLOB_MATCHES} files; the rest are ignored", *where)
                return sorted(found)
            found.append(Path(dirpath) / name)
    return sorted(found)


@dataclass
class _Scope:
    ssl_engine: bool | None = None
    engine_at: tuple[str, int] | None = None
    certs: list[tuple[str, str, int]] = field(default_factory=list)
    keys: list[tuple[str, str, int]] = field(default_factory=list)
    chain: tuple[str, str, int] | None = None
    server_name: str | None = None
    aliases: list[str] = field(default_factory=list)
    macro_use: tuple[str, int] | None = None


def _apply(node: _Node, scope: _Scope) -> None:
    name, args = node.name, node.args
    if not args:
        return
    if name == "sslengine":
        # "optional" is RFC 2817's upgrade from plain HTTP, not TLS from the first byte.
        scope.ssl_engine = args[0].lower() == "on"
        scope.engine_at = (node.file, node.line)
    elif name == "sslcertificatefile":
        scope.certs.append((args[0], node.file, node.line))
    elif name == "sslcertificatekeyfile":
        scope.keys.append((args[0], node.file, node.line))
    elif name == "sslcertificatechainfile":
        scope.chain = (args[0], node.file, node.line)
    elif name == "servername":
        scope.server_name = _host_of(args[0])
    elif name == "serveralias":
        scope.aliases.extend(a.lower().rstrip(".") for a in args)
    elif name == "use":
        scope.macro_use = (node.file, node.line)


def _host_of(value: str) -> str:
    """The host of a ServerName ``[scheme://]fqdn[:port]``."""
    if "://" in value:
        value = value.split("://", 1)[1]
    if value.startswith("["):
        return value[1 : value.find("]")].lower() if "]" in value else value.lower()
    return value.rsplit(":", 1)[0].lower().rstrip(".") if value.count(":") == 1 else value.lower().rstrip(".")


def _interpret(tree: list[_Node], state: _State) -> list[TlsListener]:
    main = _Scope()
    listens: list[tuple[str | None, int, str]] = []
    vhosts: list[tuple[_Node, tuple[str, ...]]] = []

    def walk(nodes: list[_Node], conditions: tuple[str, ...]) -> None:
        for node in nodes:
            if node.children is None:
                if node.name == "listen" and node.args:
                    parsed = _listen(node.args, node, state.reader)
                    if parsed is not None:
                        listens.append(parsed)
                else:
                    _apply(node, main)
            elif node.name in _CONDITIONALS:
                walk(node.children, (*conditions, f"<{node.raw_name} {' '.join(node.args)}>".replace(" >", ">")))
            elif node.name == "virtualhost":
                vhosts.append((node, conditions))
            elif node.name == "macro" and any(_mentions_ssl(c) for c in node.children):
                state.reader.note("<Macro> bodies are not expanded: TLS vhosts made by `Use` are not found", *_w(node))

    walk(tree, ())
    if main.macro_use is not None:
        state.reader.note_once("use", "mod_macro `Use` is not expanded", *main.macro_use)
    listen_ports = {port for _, port, _ in listens}
    listeners: list[TlsListener] = []
    for node, conditions in vhosts:
        scope = _Scope()
        _vhost_walk(node.children or [], scope)
        if scope.macro_use is not None:
            state.reader.note_once("use", "mod_macro `Use` is not expanded", *scope.macro_use)
        engine = scope.ssl_engine if scope.ssl_engine is not None else main.ssl_engine
        if not engine:
            if scope.certs:
                state.reader.note("SSLCertificateFile in a vhost without SSLEngine on: not TLS", *_w(node))
            continue
        listener = _vhost_listener(node, conditions, scope, main, listens, listen_ports, state)
        if listener is not None:
            listeners.append(listener)
    listener = _main_server(main, listens, vhosts, state)
    if listener is not None:
        listeners.insert(0, listener)
    return listeners


def _w(node: _Node) -> tuple[str, int]:
    return node.file, node.line


def _mentions_ssl(node: _Node) -> bool:
    return node.name.startswith("ssl") or any(_mentions_ssl(c) for c in node.children or [])


def _vhost_walk(nodes: list[_Node], scope: _Scope) -> None:
    for node in nodes:
        if node.children is None:
            _apply(node, scope)
        elif node.name in _CONDITIONALS:
            _vhost_walk(node.children, scope)


def _listen(args: list[str], node: _Node, reader: Reader) -> tuple[str | None, int, str] | None:
    """(host, port, protocol) of ``Listen [addr:]port [protocol]``."""
    value = args[0]
    protocol = args[1].lower() if len(args) > 1 else ""
    host: str | None
    if value.startswith("["):
        host, _, port_text = value[1:].partition("]:")
    elif ":" in value:
        host, port_text = value.rsplit(":", 1)
    else:
        host, port_text = None, value
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        reader.note(f"Listen {value}: not a port", *_w(node))
        return None
    if host in ("*", "0.0.0.0", ""):
        host = None
    return host, int(port_text), protocol


def _vhost_listener(
    node: _Node,
    conditions: tuple[str, ...],
    scope: _Scope,
    main: _Scope,
    listens: list[tuple[str | None, int, str]],
    listen_ports: set[int],
    state: _State,
) -> TlsListener | None:
    reader = state.reader
    addresses: list[ListenAddress] = []
    default = False
    for raw in node.args:
        value = raw
        if value.startswith("["):
            host, _, port_text = value[1:].partition("]")
            port_text = port_text[1:] if port_text.startswith(":") else ""
        elif value.count(":") == 1:
            host, port_text = value.split(":")
        else:
            host, port_text = value, ""
        if host.lower() == "_default_":
            default = True
        wildcard = host in ("*", "_default_", "0.0.0.0", "")
        if port_text in ("", "*"):
            ports = sorted({p for h, p, _ in listens if wildcard or h in (None, host)})
            if not ports:
                reader.note(f"<VirtualHost {raw}>: no port and no Listen", *_w(node))
        elif port_text.isdigit() and 0 < int(port_text) < 65536:
            ports = [int(port_text)]
            if int(port_text) not in listen_ports:
                reader.note(f"<VirtualHost {raw}>: no Listen for port {port_text}, httpd never serves it", *_w(node))
        else:
            reader.note(f"<VirtualHost {raw}>: unreadable address", *_w(node))
            continue
        for port in ports:
            protocol = next((p for h, lp, p in listens if lp == port and p), "")
            options = (protocol,) if protocol else ()
            addresses.append(ListenAddress(None if wildcard else host, port, options))
    if not addresses:
        return None
    names: list[str] = []
    if scope.server_name:
        names.append(scope.server_name)
    elif main.server_name:
        names.append(main.server_name)
        reader.note(f"vhost without ServerName: it takes the main server's ({main.server_name})", *_w(node))
    names.extend(scope.aliases)
    certs = scope.certs or main.certs
    keys = scope.keys if scope.certs else main.keys
    chain = scope.chain or main.chain
    if not certs:
        reader.note("TLS vhost without SSLCertificateFile (httpd refuses to start)", *_w(node))
    sources = _sources(certs, keys, chain, state)
    return TlsListener(
        server_type="apache",
        file=node.file,
        line=node.line,
        section=f"VirtualHost {' '.join(node.args)}",
        names=tuple(dict.fromkeys(n for n in names if n)),
        addresses=tuple(dict.fromkeys(addresses)),
        certificates=tuple(sources),
        default_server=default,
        conditions=conditions,
    )


def _sources(
    certs: list[tuple[str, str, int]],
    keys: list[tuple[str, str, int]],
    chain: tuple[str, str, int] | None,
    state: _State,
) -> list[CertificateSource]:
    """One source per SSLCertificateFile, paired by position with SSLCertificateKeyFile."""
    root = state.server_root
    sources: list[CertificateSource] = []
    for i, (cert, cfile, cline) in enumerate(certs):
        key = keys[i][0] if i < len(keys) else None
        sources.append(
            state.reader.source(
                _abs(cert, root),
                _abs(key, root) if key else None,
                _abs(chain[0], root) if chain else None,
                "SSLCertificateFile",
                (cfile, cline),
                check="${" not in cert,
            )
        )
    return sources


def _main_server(
    main: _Scope, listens: list[tuple[str | None, int, str]], vhosts: list[tuple[_Node, tuple[str, ...]]], state: _State
) -> TlsListener | None:
    """The main server, when ``SSLEngine on`` is global: it answers on the Listen ports no vhost claims."""
    if not main.ssl_engine or main.engine_at is None:
        return None
    claimed: set[int] = set()
    for node, _ in vhosts:
        for raw in node.args:
            port = raw.rsplit(":", 1)[1] if ":" in raw and not raw.endswith("]") else "*"
            if not port.isdigit():
                return None  # a vhost without a port claims every port
            claimed.add(int(port))
    addresses = [
        ListenAddress(host, port, (proto,) if proto else ()) for host, port, proto in listens if port not in claimed
    ]
    if not addresses:
        return None
    return TlsListener(
        server_type="apache",
        file=main.engine_at[0],
        line=main.engine_at[1],
        section="main server",
        names=(main.server_name,) if main.server_name else (),
        addresses=tuple(dict.fromkeys(addresses)),
        certificates=tuple(_sources(main.certs, main.keys, main.chain, state)),
    )


def _abs(value: str, root: Path) -> str:
    """httpd's ap_server_root_relative: a relative path is under ServerRoot."""
    return value if os.path.isabs(value) or value.startswith("${") else os.path.normpath(root / value)
