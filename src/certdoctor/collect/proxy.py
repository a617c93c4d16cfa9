"""HTTP proxies: which one a connection goes through (``--proxy``, the environment, ``NO_PROXY``), and the CONNECT
request that opens a tunnel through it (RFC 9110 §9.3.6).

The choice follows curl's documented rules (curl(1), ENVIRONMENT and ``--noproxy``): ``--proxy URL`` for everything;
otherwise ``https_proxy`` (or ``HTTPS_PROXY``) for TLS servers and https:// downloads, ``http_proxy`` (lower case
only: a web server sets ``HTTP_PROXY`` from a request's ``Proxy:`` header) for http:// downloads, and ``all_proxy``
(or ``ALL_PROXY``) for both when the other is unset. A host is reached directly when it matches ``--noproxy`` or,
without that option, ``no_proxy`` (or ``NO_PROXY``): a comma-separated list of host names, each matching that name
and every name below it (a leading dot is ignored: ``example.com`` and ``.example.com`` both match
``www.example.com``), IP addresses and CIDR ranges (``10.0.0.0/8``), or ``*`` alone for every host.

Only ``http://`` proxies are spoken to (with Basic authentication from the URL's ``user:password@``); a SOCKS or
https:// proxy URL is an InputError.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..errors import InputError
from .starttls import Channel, UpgradeFailed, printable

__all__ = ["Proxy", "ProxyPolicy", "connect_request", "open_tunnel", "parse_proxy", "parse_status"]

# The CONNECT reply: its status line and headers, at most this many bytes (a proxy that sends more is broken).
MAX_CONNECT_REPLY = 16_384


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy: ``host``/``port`` to connect to, ``authorization`` the Proxy-Authorization header value
    (None without credentials). ``label``: the URL without its password, for messages and JSON."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)
    label: str = ""

    @property
    def url(self) -> str:
        """The URL for an HTTP client library (credentials included)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.authorization is None:
            return f"http://{host}:{self.port}"
        user, _, password = base64.b64decode(self.authorization.split(" ", 1)[1]).decode().partition(":")
        from urllib.parse import quote

        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{self.port}"


def parse_proxy(text: str, *, what: str = "--proxy") -> Proxy:
    """The :class:`Proxy` of ``http://[user:password@]host[:port]`` (port 1080 by default, as curl; a bare
    ``host:port`` is taken as http://). Raises InputError for another scheme or a malformed URL."""
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"{what} {text!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme != "http":
        raise InputError(f"{what} {text!r}: only http:// proxies are supported (HTTP CONNECT), not {scheme}://")
    if not parts.hostname:
        raise InputError(f"{what} {text!r}: no proxy host")
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    user = f"{unquote(parts.username)}:***@" if parts.username is not None else ""
    return Proxy(host, port or 1080, authorization, f"http://{user}{shown_host}:{port or 1080}")


def _no_proxy_match(host: str, patterns: str) -> bool:
    """Whether ``host`` matches a NO_PROXY list (see the module docstring)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for entry in patterns.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".").rstrip(".")
        if name == entry or name.endswith("." + entry):
            return True
    return False


@dataclass(frozen=True)
class ProxyPolicy:
    """Which proxy a host is reached through: ``proxy`` (``--proxy``; None: the environment's, "" none at all),
    ``no_proxy`` (``--noproxy``; None: the environment's ``no_proxy``/``NO_PROXY``), ``environ`` (the environment
    read, by default :data:`os.environ` when the policy is made)."""

    proxy: str | None = None
    no_proxy: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    def __post_init__(self) -> None:
        # every proxy URL is parsed now: a bad one is a usage error before anything is collected
        for kind in ("https", "http"):
            chosen = self._url_for(kind)
            if chosen is not None:
                parse_proxy(chosen[0], what=chosen[1])

    def _env(self, name: str, *, upper: bool = True) -> str | None:
        value = self.environ.get(name.lower()) or (self.environ.get(name.upper()) if upper else None)
        return value.strip() if value and value.strip() else None

    def _url_for(self, kind: str) -> tuple[str, str] | None:
        if self.proxy is not None:
            return (self.proxy, "--proxy") if self.proxy.strip() else None
        if kind == "https":
            value = self._env("https_proxy")
            if value:
                return value, "HTTPS_PROXY"
        else:
            value = self._env("http_proxy", upper=False)
            if value:
                return value, "http_proxy"
        value = self._env("all_proxy")
        return (value, "ALL_PROXY") if value else None

    def _exempt(self, host: str) -> bool:
        patterns = self.no_proxy if self.no_proxy is not None else self._env("no_proxy")
        return bool(patterns) and _no_proxy_match(host, patterns or "")

    def for_host(self, host: str, kind: str = "https") -> Proxy | None:
        """The proxy to reach ``host`` through for ``kind`` "https" (a TLS server, an https:// URL) or "http"
        (an http:// URL); None: directly. Raises InputError for an unusable proxy URL."""
        chosen = self._url_for(kind)
        if chosen is None or self._exempt(host):
            return None
        return parse_proxy(chosen[0], what=chosen[1])

    def for_url(self, url: str) -> Proxy | None:
        """The proxy for a download of ``url`` (http:// or https://)."""
        parts = urlsplit(url)
        return self.for_host(parts.hostname or "", "http" if parts.scheme.lower() == "http" else "https")

    @property
    def active(self) -> bool:
        """Whether any connection may go through a proxy."""
        return self._url_for("https") is not None or self._url_for("http") is not None


def connect_request(host: str, port: int, proxy: Proxy) -> bytes:
    """The CONNECT request for ``host:port`` (IPv6 in brackets), with Basic authentication when the proxy has
    credentials (RFC 9110 §9.3.6, RFC 7617)."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", "User-Agent: certdoctor"]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def parse_status(line: str) -> int | None:
    """The status code of an HTTP status line (``HTTP/1.1 200 Connection established``), None if it is not one."""
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not (len(parts[1]) == 3 and parts[1].isdigit()):
        return None
    return int(parts[1])


async def open_tunnel(
    write: Callable[[bytes], None], tunnel: Channel, host: str, port: int, proxy: Proxy
) -> str | None:
    """Send CONNECT with ``write`` and read the proxy's reply on ``tunnel`` (status line, headers, blank line: at
    most :data:`MAX_CONNECT_REPLY` bytes, the channel's caps); None when the tunnel is open (a 2xx status), else
    why not, quoting the status line."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    write(connect_request(host, port, proxy))
    headers_done = False
    problem = ""
    try:
        status_line = await tunnel.readline()
        if parse_status(status_line) is not None:
            while await tunnel.readline():
                pass
            headers_done = True
    except UpgradeFailed as exc:
        if tunnel.last_reply is None:  # not even a status line
            said = f" (it sent {printable(exc.reply, 80)!r})" if exc.reply else ""
            if "closed the connection" in str(exc):
                return f"the proxy {proxy.label} closed the connection before answering CONNECT {authority}{said}"
            return f"the proxy {proxy.label} did not answer CONNECT {authority} in HTTP: {exc}"
        problem = str(exc).replace("the server", "it")
        status_line = tunnel.last_reply if parse_status(tunnel.last_reply) is not None else status_line
    status = parse_status(status_line)
    shown = printable(status_line, 200)
    if status is None:
        return f"the proxy {proxy.label} answered CONNECT {authority} with {shown!r}, not an HTTP status line"
    if not 200 <= status < 300:
        hint = ""
        if status == 407 or (status == 401 and proxy.authorization is not None):  # tinyproxy says 401 then
            hint = (
                " (it wants credentials: give them in the proxy URL, http://user:password@host:port)"
                if proxy.authorization is None
                else " (it refused the credentials in the proxy URL)"
            )
        return f"the proxy {proxy.label} refused CONNECT {authority}: {shown}{hint}"
    if not headers_done:
        said = f"the proxy {proxy.label} answered CONNECT {authority} with {shown!r}"
        return f"{said} but not a whole HTTP header: {problem}"
    return None
