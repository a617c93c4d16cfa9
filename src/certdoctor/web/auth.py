"""Who may read and who may write: the login cookie, the CSRF token, the Origin check, and the security headers.

- Without a token (``watch serve`` on loopback, no ``--token``): every read is open, every write is refused
  (403: the dashboard is read-only).
- With a token: a request needs ``Authorization: Bearer TOKEN`` (RFC 6750 §2.1; the JSON API's way) or the login
  cookie. An API path without either is answered 401 with ``WWW-Authenticate: Bearer`` (RFC 6750 §3), as the JSON
  API always did; a page is redirected to ``/login``.
- The login cookie (``POST /login`` with the token): ``<issued>.<session id>.<mac>``, the MAC an HMAC-SHA256 keyed
  with a random key made when the process starts (so a restart logs everyone out), ``HttpOnly; SameSite=Strict;
  Path=/`` (and ``Secure`` over https): scripts cannot read it and no other site's page sends it (RFC 6265bis
  §5.4.7, SameSite).
- Writes (every POST but ``/login``) need the login cookie and the form field ``csrf``: an HMAC of the session id
  under the same key (the synchronizer-token pattern, OWASP CSRF Prevention Cheat Sheet), compared with
  :func:`hmac.compare_digest`; as a second line, a request whose ``Origin`` (or, without one, ``Sec-Fetch-Site:
  cross-site``) names another site is refused (Fetch standard, "Origin" header; OWASP "Verifying Origin With
  Standard Headers").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..watch.httpapi import error as api_error

COOKIE = "certdoctor_session"
SESSION_LIFETIME = 12 * 3600  # seconds a login lasts
API_PREFIXES = ("/api/", "/healthz", "/metrics")
OPEN_PREFIXES = ("/static/", "/login")  # what an anonymous browser needs to log in
REVOKED_KEPT = 10_000  # sessions logged out, remembered (older ones expire anyway)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class Sessions:
    """Login sessions, stateless but for logouts: the cookie carries the session id and its MAC."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self._key = secrets.token_bytes(32)
        self._revoked: OrderedDict[str, None] = OrderedDict()

    @property
    def writable(self) -> bool:
        """False when serve runs without a token: the dashboard is read-only."""
        return bool(self.token)

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def check_token(self, given: str) -> bool:
        """Whether ``given`` is the access token (constant time)."""
        return bool(self.token) and hmac.compare_digest(given.encode(), self.token.encode())  # type: ignore[union-attr]

    def new_cookie(self) -> str:
        """A new session's cookie value."""
        sid = f"{int(time.time())}.{secrets.token_hex(16)}"
        return f"{sid}.{self._mac('login', sid)}"

    def session_of(self, cookie: str | None) -> str | None:
        """The session id of a valid, unexpired, not logged-out cookie value, else None."""
        if not cookie or not self.token:
            return None
        issued, _, rest = cookie.partition(".")
        rand, _, mac = rest.partition(".")
        sid = f"{issued}.{rand}"
        if not issued.isdigit() or not hmac.compare_digest(mac.encode(), self._mac("login", sid).encode()):
            return None
        if not 0 <= time.time() - int(issued) <= SESSION_LIFETIME or sid in self._revoked:
            return None
        return sid

    def csrf(self, sid: str | None) -> str:
        """The CSRF token of a session ("" without one: no form can then write)."""
        return "" if sid is None else self._mac("csrf", sid)

    def csrf_ok(self, sid: str | None, given: str) -> bool:
        return sid is not None and bool(given) and hmac.compare_digest(given.encode(), self.csrf(sid).encode())

    def logout(self, sid: str) -> None:
        self._revoked[sid] = None
        while len(self._revoked) > REVOKED_KEPT:
            self._revoked.popitem(last=False)


def cookie_value(headers: Headers) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header: as if none
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def same_origin(scope: Scope, headers: Headers) -> bool:
    """False when the request says it comes from another site: ``Sec-Fetch-Site: cross-site`` (Fetch Metadata), or
    an ``Origin`` other than this server's (scheme, Host). ``Origin: null`` is what Chromium sends for a form POST
    from a page with ``Referrer-Policy: no-referrer`` (ours), so it tells nothing; a request with neither header
    (curl, httpx) passes too: the CSRF token is the first line."""
    if headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = headers.get("origin")
    if origin is not None and origin != "null":  # "null": the browser hides it (Referrer-Policy: no-referrer)
        scheme = scope.get("scheme", "http")
        host = headers.get("host", "")
        return origin.lower() == f"{scheme}://{host}".lower()
    return True


def safe_next(path: str | None) -> str:
    """Where to go after login: a local path only (never ``//host`` or a scheme), else ``/``."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


class Guard:
    """ASGI middleware: authentication (see the module), the auth facts for the endpoints in ``scope["state"]``
    (``sid``: the session id or None; ``bearer``: a valid Bearer token), and the security headers on every
    answer."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions
        self.bearer = b"Bearer " + sessions.token.encode() if sessions.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", ())}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        headers = Headers(scope=scope)
        path: str = scope.get("path", "")
        state = scope.setdefault("state", {})
        sid = self.sessions.session_of(cookie_value(headers))
        state["sid"] = sid
        bearer = self.bearer is not None and hmac.compare_digest(
            headers.get("authorization", "").encode("latin-1"), self.bearer
        )
        state["bearer"] = bearer
        if self.sessions.writable and not bearer and sid is None and not path.startswith(OPEN_PREFIXES):
            response: Response
            if path.startswith(API_PREFIXES) or scope.get("method") not in ("GET", "HEAD"):
                response = api_error(
                    401, "a Bearer token is required", {"WWW-Authenticate": 'Bearer realm="certdoctor"'}
                )
            elif headers.get("hx-request"):  # an htmx partial: the whole page goes to the login form
                response = Response("login required", 401, headers={"HX-Redirect": "/login"})
            else:
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + (f"?{query}" if query else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def set_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(COOKIE, value, httponly=True, samesite="strict", path="/", secure=secure)


def clear_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)


def first(values: Iterable[str]) -> str:
    return next(iter(values), "")
