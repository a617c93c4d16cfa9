"""HAProxy: ``bind … ssl`` lines of ``frontend`` and ``listen`` sections, with the certificates they load.

Follows HAProxy's configuration manual (2.x, sections 2.2 "Quoting and escaping", 2.3 "Environment variables",
3.1 ``crt-base``/``key-base``, 5.1 bind options ``ssl``, ``crt``, ``crt-list``):

* A line is blank-separated words; ``#`` starts a comment outside quotes; ``"…"`` quotes with ``$VAR``/``${VAR}``
  expansion (noted: discovery does not know the server's environment), ``'…'`` quotes literally, ``\\`` escapes.
* ``bind ADDR:PORT[,ADDR:PORT…] [options]``; addresses ``:443``, ``*:443``, ``0.0.0.0:443``, ``1.2.3.4:443``,
  ``:::443``, ``ipv4@``/``ipv6@`` prefixes, ``PORT-PORT`` ranges; ``unix@``, ``abns@``, ``fd@``, ``sockpair@``
  and QUIC (``quic4@``/``quic6@``, UDP) are noted and not probed.
* ``crt PATH`` (repeatable) is a PEM file holding certificate, chain and usually the key, or a directory whose
  files are all loaded in name order except ``*.key``, ``*.ocsp``, ``*.issuer``, ``*.sctl`` and dot files; a
  missing ``site.pem`` with ``site.pem.rsa``/``.ecdsa``/``.dsa`` is a multi-certificate bundle. A key not in the
  PEM is looked for in ``PATH.key`` (``ssl-load-extra-files`` default). Relative ``crt`` paths and paths inside a
  crt-list are under ``crt-base`` (``key-base`` for keys) when set; the crt-list file itself is not.
* ``crt-list FILE``: one certificate per line, ``PATH [[ssl options]] [[!]sni-filter …]``; the filters are the
  SNI names that select it; without filters, the certificate's own names do.
* The first certificate of a bind line is its default (served without SNI or for an unknown name).
* ``-f DIR`` loads every ``*.cfg`` of DIR in name order: a directory without ``haproxy.cfg`` is read that way.
  ``.if``/``.elif``/``.else``/``.endif`` blocks are all read, noted in ``conditions``.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from ._base import MAX_GLOB_MATCHES, CertificateSource, ListenAddress, Reader, TlsListener

_SECTIONS = {
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "crt-store",
    "traces",
    "log-forward",
}
_SKIP_SUFFIXES = (".key", ".ocsp", ".issuer", ".sctl", ".dh")
_BUNDLE_SUFFIXES = (".rsa", ".ecdsa", ".dsa")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def discover_haproxy(main: Path, reader: Reader) -> list[TlsListener]:
    """Every ``bind … ssl`` of the configuration ``main`` (a file, or a directory of ``*.cfg``)."""
    files = sorted(main.glob("*.cfg"))[:MAX_GLOB_MATCHES] if main.is_dir() else [main]
    crt_base: str | None = None
    key_base: str | None = None
    listeners: list[TlsListener] = []
    for path in files:
        text = reader.read(path)
        if text is None:
            continue
        section = ""
        conditions: list[str] = []
        for number, line in enumerate(text.splitlines(), 1):
            where = (str(path), number)
            words = _words(line, reader, where)
            if not words:
                continue
            keyword = words[0]
            if keyword in (".if", ".elif", ".else"):
                if keyword != ".if" and conditions:
                    conditions.pop()
                conditions.append(" ".join(words))
                continue
            if keyword == ".endif":
                if conditions:
                    conditions.pop()
                continue
            if keyword in _SECTIONS:
                section = " ".join(words[:2])
                continue
            if section == "global" and keyword in ("crt-base", "key-base") and len(words) > 1:
                if keyword == "crt-base":
                    crt_base = words[1]
                else:
                    key_base = words[1]
                continue
            if keyword == "bind" and section.split(" ")[0] in ("frontend", "listen"):
                listener = _bind(words, section, tuple(conditions), where, crt_base, key_base, main, reader)
                if listener is not None:
                    listeners.append(listener)
    return listeners


def _words(line: str, reader: Reader, where: tuple[str, int]) -> list[str]:
    words: list[str] = []
    buf: list[str] = []
    in_word = False
    i, n = 0, len(line)
    quote = ""
    while i < n:
        c = line[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and i + 1 < n:
                i += 1
                buf.append(line[i])
            elif c == "$" and quote == '"':
                match = _VAR.match(line, i)
                if match:
                    name = match.group(1) or match.group(2)
                    reader.note(f"${name}: an environment variable of the HAProxy process, left as written", *where)
                    buf.append(match.group(0))
                    i = match.end()
                    continue
                buf.append(c)
            else:
                buf.append(c)
        elif c in "\"'":
            quote = c
            in_word = True
        elif c == "\\" and i + 1 < n:
            i += 1
            buf.append(line[i])
            in_word = True
        elif c == "#":
            break
        elif c.isspace():
            if in_word:
                words.append("".join(buf))
                buf, in_word = [], False
        else:
            buf.append(c)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(buf))
    return words


def _bind(
    words: list[str],
    section: str,
    conditions: tuple[str, ...],
    where: tuple[str, int],
    crt_base: str | None,
    key_base: str | None,
    main: Path,
    reader: Reader,
) -> TlsListener | None:
    if len(words) < 2:
        return None
    options = words[2:]
    if "ssl" not in options:
        return None
    addresses: list[ListenAddress] = []
    for item in words[1].split(","):
        addresses.extend(_address(item, reader, where))
    if not addresses:
        return None
    base_dir = main if main.is_dir() else main.parent
    sources: list[CertificateSource] = []
    i = 0
    while i < len(options):
        option = options[i]
        if option in ("crt", "crt-list") and i + 1 < len(options):
            value = options[i + 1]
            # crt-base prefixes crt paths and the paths inside a crt-list, not the crt-list file itself
            # (bind_parse_crt vs bind_parse_crt_list in src/cfgparse-ssl.c; haproxy -c agrees).
            path = _resolve(value, crt_base if option == "crt" else None, base_dir, reader, where)
            if option == "crt":
                sources.extend(_crt(path, key_base, reader, where))
            else:
                sources.extend(_crt_list(path, crt_base, key_base, base_dir, reader, where))
            i += 2
            continue
        i += 1
    if not sources:
        reader.note("bind … ssl without crt or crt-list (haproxy refuses it unless a default is set)", *where)
    names: list[str] = []
    for source in sources:
        names.extend(source.names)
    return TlsListener(
        server_type="haproxy",
        file=where[0],
        line=where[1],
        section=section,
        names=tuple(dict.fromkeys(names)),
        addresses=tuple(dict.fromkeys(addresses)),
        certificates=tuple(sources),
        default_server=True,
        conditions=conditions,
    )


def _address(item: str, reader: Reader, where: tuple[str, int]) -> list[ListenAddress]:
    family = ""
    if "@" in item:
        family, item = item.split("@", 1)
        if family not in ("ipv4", "ipv6", "tcp", "tcp4", "tcp6"):
            reader.note(f"bind {family}@{item}: not a TCP address, not probed", *where)
            return []
    if "$" in item:
        reader.note(f"bind {item}: uses an environment variable, not probed", *where)
        return []
    if ":" not in item:
        reader.note(f"bind {item}: no port", *where)
        return []
    host_text, port_text = item.rsplit(":", 1)
    host: str | None = host_text.strip("[]") or None
    if host in ("*", "0.0.0.0"):
        host = None
    low, _, high = port_text.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        reader.note(f"bind {item}: not a port", *where)
        return []
    first, last = int(low), int(high or low)
    if not 0 < first <= last < 65536 or last - first > 64:
        reader.note(f"bind {item}: port range not probed", *where)
        return []
    return [ListenAddress(host, port) for port in range(first, last + 1)]


def _resolve(value: str, base: str | None, base_dir: Path, reader: Reader, where: tuple[str, int]) -> str:
    if os.path.isabs(value) or "$" in value:
        return value
    if base:
        return os.path.normpath(os.path.join(base, value))
    reader.note_once(
        f"relative:{value}",
        f"{value} is relative to HAProxy's working directory; read under {base_dir}",
        *where,
    )
    return os.path.normpath(base_dir / value)


def _key_for(cert: str, has_key: bool, key_base: str | None) -> str | None:
    if has_key:
        return None
    candidate = cert + ".key"
    if key_base and not os.path.exists(candidate):
        candidate = os.path.join(key_base, os.path.basename(cert) + ".key")
    return candidate


def _crt(path: str, key_base: str | None, reader: Reader, where: tuple[str, int]) -> list[CertificateSource]:
    if "$" in path:
        reader.note(f"crt {path} uses an environment variable: not checked", *where)
        return [CertificateSource(path, None, None, "crt", *where)]
    if os.path.isdir(path):
        files = sorted(
            name
            for name in os.listdir(path)
            if not name.startswith(".")
            and not name.endswith(_SKIP_SUFFIXES)
            and os.path.isfile(os.path.join(path, name))
        )
        if len(files) > MAX_GLOB_MATCHES:
            reader.note(f"crt {path} holds more than {MAX_GLOB_MATCHES} files; the rest are ignored", *where)
        if not files:
            reader.note(f"crt {path} is an empty directory", *where)
        return [
            s for name in files[:MAX_GLOB_MATCHES] for s in _crt_file(os.path.join(path, name), key_base, reader, where)
        ]
    return _crt_file(path, key_base, reader, where)


def _crt_file(
    path: str,
    key_base: str | None,
    reader: Reader,
    where: tuple[str, int],
    filters: tuple[str, ...] | None = None,
    origin: str = "crt",
) -> list[CertificateSource]:
    paths = [path]
    if not os.path.exists(path):
        bundle = [path + s for s in _BUNDLE_SUFFIXES if os.path.isfile(path + s)]
        if bundle:
            paths = bundle
    out: list[CertificateSource] = []
    for p in paths:
        facts = reader.cert_facts(p)
        key = _key_for(p, facts.has_key, key_base)
        if facts.exists and key is not None and not os.path.exists(key):
            reader.note(f"{origin} {p} holds no private key and {key} does not exist", *where)
            key = None
        names = facts.names if filters is None else filters
        if facts.exists is False:
            reader.note(f"{origin} {p} does not exist", *where)
        out.append(
            CertificateSource(
                p, key, None, origin, where[0], where[1], tuple(names), facts.exists, facts.sha256, facts.names
            )
        )
    return out


def _crt_list(
    path: str, crt_base: str | None, key_base: str | None, base_dir: Path, reader: Reader, where: tuple[str, int]
) -> list[CertificateSource]:
    if "$" in path:
        reader.note(f"crt-list {path} uses an environment variable: not read", *where)
        return []
    text = reader.read(Path(path), where)
    if text is None:
        return []
    out: list[CertificateSource] = []
    for number, raw in enumerate(text.splitlines(), 1):
        lwhere = (path, number)
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        # Options in brackets may hold blanks: take them out before splitting.
        line = re.sub(r"\[[^\]]*\]", " ", line)
        words = _words(line, reader, lwhere)
        if not words:
            continue
        cert = _resolve(words[0], crt_base, base_dir, reader, lwhere)
        filters = tuple(w.lower() for w in words[1:] if not w.startswith("!"))
        excluded = tuple(w[1:].lower() for w in words[1:] if w.startswith("!"))
        sources = _crt_file(cert, key_base, reader, lwhere, filters or None, origin="crt-list")
        out.extend(replace(source, excluded_names=excluded) for source in sources)
    return out
