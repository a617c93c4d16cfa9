"""Where alerts go (table ``alert_channels``): configured by URL, routed by label.

- ``http://`` and ``https://`` URLs: certdoctor's own JSON webhook — a POST of the message's payload
  (schemas/watch-alert.schema.json), ``Content-Type: application/json``, and, when the channel has a secret,
  ``X-Certdoctor-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes with the secret>`` (the scheme
  GitHub's webhooks use); a 10 s timeout, and up to 3 attempts (a connection error, a timeout or a 5xx/429
  answer is retried after 0.5 s, 1 s; any other answer is final).
- any other URL is handed to Apprise (the ``alerts`` extra): ``mailto://``, ``mailtos://`` (e-mail),
  ``slack://``, ``msteams://``, ``mmost://``, ``ntfy://``, ``pagerduty://``, ``tgram://``, ``json://``… — see
  Apprise's documentation for each service's URL.

A channel with labels receives only the messages of targets whose labels include all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from ..errors import InputError
from . import tables as t
from .alerts import Message, matches
from .store import Store, now

TIMEOUT = 10.0  # seconds, per webhook attempt
ATTEMPTS = 3
BACKOFF = (0.5, 1.0)  # seconds before the 2nd and 3rd attempts
SIGNATURE_HEADER = "X-Certdoctor-Signature"


@dataclass(frozen=True)
class Channel:
    id: int
    url: str
    labels: Mapping[str, str]
    secret: str | None

    @property
    def webhook(self) -> bool:
        return urlsplit(self.url).scheme.lower() in ("http", "https")

    def shown(self) -> str:
        """The URL without a password (``user:***@``)."""
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.url

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.shown(),
            "labels": dict(self.labels),
            "kind": "webhook" if self.webhook else "apprise",
            "signed": bool(self.secret),
        }


def signature(secret: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC-SHA256 of ``body`` keyed with ``secret`` (UTF-8)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def add_channel(store: Store, url: str, labels: Mapping[str, str] | None = None, secret: str | None = None) -> Channel:
    """Add (or update, same URL) a channel. Raises: InputError for a URL without a scheme, or an Apprise URL
    when Apprise is not installed or does not know the scheme."""
    if "://" not in url:
        raise InputError(f"not a channel URL: {url!r} (https://… for a webhook, or an Apprise URL: mailto://…)")
    probe = Channel(0, url, dict(labels or {}), secret)
    if not probe.webhook:
        apprise = _apprise()
        if apprise.Apprise.instantiate(url) is None:
            raise InputError(f"Apprise does not accept this URL: {probe.shown()}")
    c = t.alert_channels
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(c).where(c.c.url == url)).first()
        if row is None:
            conn.execute(sa.insert(c).values(url=url, labels=dict(labels or {}), secret=secret, created=now()))
        else:
            conn.execute(sa.update(c).where(c.c.id == row.id).values(labels=dict(labels or {}), secret=secret))
        row = conn.execute(sa.select(c).where(c.c.url == url)).one()
    return Channel(row.id, row.url, dict(row.labels or {}), row.secret)


def channels(store: Store) -> list[Channel]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.alert_channels).order_by(t.alert_channels.c.id)).all()
    return [Channel(r.id, r.url, dict(r.labels or {}), r.secret) for r in rows]


def remove_channel(store: Store, ref: str) -> bool:
    """Remove a channel by id or URL; True if one was."""
    c = t.alert_channels
    cond = c.c.id == int(ref) if ref.isdigit() else c.c.url == ref
    with store.engine.begin() as conn:
        return bool(conn.execute(sa.delete(c).where(cond)).rowcount)


def _apprise() -> Any:
    try:
        import apprise
    except ModuleNotFoundError:
        raise InputError("Apprise is not installed: pip install 'certdoctor[alerts]'") from None
    return apprise


@dataclass
class Delivery:
    channel: int
    target: str
    ok: bool
    error: str | None = None
    attempts: int = 1


def post_webhook(
    channel: Channel, message: Message, *, sleep: Callable[[float], None] = time.sleep
) -> tuple[bool, str | None, int]:
    """POST the payload; (ok, error, attempts)."""
    body = json.dumps(message.payload(), ensure_ascii=True, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "certdoctor-watch"}
    if channel.secret:
        headers[SIGNATURE_HEADER] = signature(channel.secret, body)
    error: str | None = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
                answer = client.post(channel.url, content=body, headers=headers)
            if answer.status_code < 300:
                return True, None, attempt
            error = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                return False, error, attempt
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt < ATTEMPTS:
            sleep(BACKOFF[attempt - 1])
    return False, error, ATTEMPTS


def send_apprise(channel: Channel, message: Message) -> tuple[bool, str | None]:
    apprise = _apprise()
    app = apprise.Apprise()
    if not app.add(channel.url):
        return False, "Apprise does not accept this URL"
    ok = app.notify(title=message.title(), body=message.body(), body_format=apprise.NotifyFormat.TEXT)
    return bool(ok), None if ok else "Apprise could not deliver (see its log)"


def routes(targets: Sequence[Channel], labels: Mapping[str, str]) -> list[Channel]:
    """The channels a target with ``labels`` is routed to: those whose labels are all among the target's (a
    channel without labels takes every target)."""
    return [c for c in targets if matches(c.labels, labels)]


def deliver(messages: Sequence[Message], targets: Sequence[Channel], only: str | None = None) -> list[Delivery]:
    """Send each message to every channel whose labels match its target's (``only``: one channel, by id or URL).

    Returns: one :class:`Delivery` per (message, channel).
    """
    out: list[Delivery] = []
    for channel in targets:
        if only is not None and only not in (str(channel.id), channel.url):
            continue
        for message in messages:
            if not matches(channel.labels, message.target.get("labels") or {}) and not message.test:
                continue
            if channel.webhook:
                ok, error, attempts = post_webhook(channel, message)
            else:
                try:
                    ok, error = send_apprise(channel, message)
                except InputError as exc:
                    ok, error = False, str(exc)
                attempts = 1
            out.append(Delivery(channel.id, message.target["target"], ok, error, attempts))
    return out


def sample_message() -> Message:
    """What ``watch test-alert`` sends."""
    moment = now().isoformat()
    return Message(
        {"id": 0, "target": "test.certdoctor.invalid:443", "labels": {}},
        [
            {
                "id": 0,
                "condition": "test",
                "status": "test",
                "severity": "info",
                "summary": "certdoctor test alert: this channel works",
                "opened_at": moment,
                "resolved_at": None,
                "acked": False,
                "detail": {},
            }
        ],
        None,
        test=True,
    )
