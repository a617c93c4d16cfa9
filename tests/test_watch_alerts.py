"""Alerts of ``certdoctor watch`` with real receivers on loopback: an SMTP server (aiosmtpd) gets the e-mail
through Apprise, an HTTP server gets the signed webhook; a local TLS server's certificate is swapped for an
expired one and back. Time moves through the ``at`` clock the alert functions take, never by sleeping."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import jsonschemas
from certdoctor.cli import main
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store, run_pass
from certdoctor.watch import alerts as watch_alerts
from certdoctor.watch import channels as watch_channels
from certdoctor.watch.alerts import Policy
from certdoctor.watch.events import Endpoint
from certdoctor.watch.store import Observation
from netutil import free_port
from pki_builder import ec_key, intermediate, leaf, root
from test_watch import Swappable, store, swappable, watch_db  # noqa: F401 (fixtures)

NAME = "alerts.certdoctor.test"
SECRET = "s3cret-for-the-test"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def texts(self) -> list[tuple[str, str]]:
        """(subject, plain-text body) per message received."""
        return [(str(m["Subject"]), m.get_body(("plain",)).get_content()) for m in self.messages]  # type: ignore[union-attr]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    for attempt in range(5):  # a free port can be taken by another process before the server binds it
        port = free_port()
        controller = Controller(box, hostname="127.0.0.1", port=port)
        try:
            controller.start()
            break
        except (OSError, RuntimeError):
            if attempt == 4:
                raise
    yield box, port
    controller.stop()


class Hooks:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0


@pytest.fixture
def webhook() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if hooks.fail_next:
                hooks.fail_next -= 1
                self.send_response(503)
            else:
                hooks.received.append((dict(self.headers), body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hooks, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def verified(hooks: Hooks) -> list[dict[str, Any]]:
    """Every payload received, after checking its HMAC signature and its schema."""
    out = []
    for headers, body in hooks.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Certdoctor-Signature"], expected)
        doc = json.loads(body)
        jsonschemas.validate(doc)
        out.append(doc)
    hooks.received.clear()
    return out


def statuses(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["status"], a["condition"]) for d in docs for a in d["alerts"]]


def test_swapped_certificate_alerts_by_email_and_webhook(
    store: Store,  # noqa: F811
    swappable: Swappable,  # noqa: F811
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
    webhook: tuple[Hooks, str],
) -> None:
    box, smtp_port = smtp
    hooks, hook_url = webhook
    now = datetime.now(UTC)
    ca = root("Alerts Root")
    issuing = intermediate("Alerts CA", ca)
    key = ec_key("alerts-leaf")
    good = leaf(NAME, issuing, key=key, not_before=now - timedelta(days=10), not_after=now + timedelta(days=80))
    expired = leaf(NAME, issuing, key=key, not_before=now - timedelta(days=100), not_after=now - timedelta(days=3))
    (tmp_path / "root.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    options = DiagnoseOptions(ca_files=(str(tmp_path / "root.pem"),), timeout=3, revocation=False)
    target = f"{NAME}:{swappable.server.port},addr=127.0.0.1"
    store.add([target], labels={"team": "payments"})
    store.add(["other.example:443,addr=127.0.0.1"], labels={"team": "web"})  # never checked here
    mail = f"mailto://127.0.0.1:{smtp_port}?from=certdoctor@example.test&to=ops@example.test"
    watch_channels.add_channel(store, mail, {"team": "payments"})
    watch_channels.add_channel(store, hook_url, {}, SECRET)
    watch_channels.add_channel(store, hook_url + "/web-only", {"team": "web"}, SECRET)  # not routed here
    clock = [now]

    def check() -> list[watch_channels.Delivery]:
        result = run_pass(store, options, targets=[store.target(target)], retries=0)  # type: ignore[list-item]
        messages = watch_alerts.evaluate(store, result.results, at=clock[0])
        return watch_channels.deliver(messages, watch_channels.channels(store))

    swappable.serve(good, [issuing])
    assert check() == []  # a valid certificate 80 days from its end: nothing to say

    swappable.serve(expired, [issuing])
    deliveries = check()
    assert [(d.channel, d.ok) for d in deliveries] == [(1, True), (2, True)]
    docs = verified(hooks)
    assert len(docs) == 1 and docs[0]["target"] == {"id": 1, "target": target, "labels": {"team": "payments"}}
    got = statuses(docs)
    assert got[0] == ("firing", "finding:expired") and ("notice", "certificate-changed") in got
    # one alert for the clients that reject (not one per client), naming each and why
    assert [c for _, c in got if c.startswith("client")] == ["clients"]
    clients_alert = next(a for a in docs[0]["alerts"] if a["condition"] == "clients")
    assert {"chrome", "curl", "java"} <= set(clients_alert["detail"]["clients"])
    assert clients_alert["detail"]["because_of"]["chrome"] == ["expired"]
    expired_alert = docs[0]["alerts"][0]
    finding = expired_alert["detail"]["finding"]
    assert finding["id"] == "expired" and "chrome" in finding["rejected_by"] and finding["fix"]
    assert docs[0]["observation"]["verdict"] == "invalid"
    # the e-mail carries the diagnosis: the finding, the clients that reject, the fix
    [(subject, text)] = box.texts()
    assert subject.startswith(f"[certdoctor] {target}: ") and finding["title"] in subject
    assert "FIRING  [critical]  finding:expired" in text and f"detail: {finding['detail']}" in text
    assert "rejected by: " in text and "chrome" in text and f"fix: {finding['fix']}" in text

    # dedupe: the same condition, checked again, sends nothing
    assert check() == [] and not box.messages[1:]
    # re-notified once the interval (24 h) has passed
    clock[0] = now + timedelta(hours=25)
    check()
    assert {s for s, _ in statuses(verified(hooks))} == {"repeat"} and len(box.messages) == 2
    # acknowledged: no repeats any more
    assert watch_alerts.ack(store, target, at=clock[0]) > 0
    clock[0] = now + timedelta(hours=50)
    assert check() == []

    swappable.serve(good, [issuing])  # swapped back: resolved (an acknowledged alert is still resolved)
    check()
    got = statuses(verified(hooks))
    assert ("resolved", "finding:expired") in got and ("resolved", "clients") in got
    assert ("notice", "certificate-changed") in got and not any(s == "firing" for s, _ in got)
    subject, text = box.texts()[-1]
    assert "RESOLVED  [critical]  finding:expired" in text
    assert watch_alerts.alerts(store) == []


def _obs(target_id: int, verdict: str, at: datetime, **kw: Any) -> Observation:
    base: dict[str, Any] = dict(
        target_id=target_id,
        at=at,
        duration_ms=1.0,
        verdict=verdict,
        exit_code={"valid": 0, "invalid": 1}.get(verdict, 3),
        rejected_by=(),
        leaf_sha256=None,
        leaf_not_after=None,
        chain_not_after=None,
        findings=(),
        clients=(),
        endpoints=(Endpoint("127.0.0.1", verdict != "unreachable", None, ()),),
        certificates=(),
        error="connection refused" if verdict == "unreachable" else None,
    )
    base.update(kw)
    return Observation(**base)


def test_damping_snooze_and_expiry_thresholds(store: Store, webhook: tuple[Hooks, str]) -> None:  # noqa: F811
    hooks, hook_url = webhook
    watch_channels.add_channel(store, hook_url, {}, SECRET)
    [(target, _)] = store.add(["damped.example:443,addr=127.0.0.1"], labels={"env": "prod"})
    t0 = datetime.now(UTC)

    def step(verdict: str, minutes: int, **kw: Any) -> list[tuple[str, str]]:
        at = t0 + timedelta(minutes=minutes)
        obs = _obs(target.id, verdict, at, **kw)
        events = store.record(obs)
        messages = watch_alerts.evaluate(store, [(target, obs, events)], at=at)
        watch_channels.deliver(messages, watch_channels.channels(store))
        return statuses(verified(hooks))

    # unreachable only after 3 consecutive checks; one failure between successes never alerts
    assert step("unreachable", 1) == []
    assert step("valid", 2) == []
    assert step("unreachable", 3) == [] and step("unreachable", 4) == []
    assert step("unreachable", 5) == [("firing", "unreachable")]
    assert step("unreachable", 6) == []
    assert step("valid", 7) == [("resolved", "unreachable")]
    # revocation-unknown is damped the same way
    revocation = {"findings": (("revocation-unknown", "warning"),)}
    assert step("valid", 8, **revocation) == [] and step("valid", 9, **revocation) == []
    assert step("valid", 10, **revocation) == [("firing", "finding:revocation-unknown")]
    assert step("valid", 11) == [("resolved", "finding:revocation-unknown")]

    # snoozed for 2 days: nothing; afterwards the alert still open is notified
    assert watch_alerts.snooze(store, str(target.id), 2 * 86400, at=t0 + timedelta(minutes=12)) > t0
    for minute in (12, 13, 14):
        assert step("unreachable", minute) == []
    assert [a["condition"] for a in watch_alerts.alerts(store)] == ["unreachable"]  # open, silenced
    assert step("unreachable", 3 * 1440) == [("firing", "unreachable")]

    # expiry thresholds: min(30 days, 33 % of the lifetime)
    policy = Policy()
    assert policy.expiry_threshold(timedelta(days=90)) == timedelta(days=29.7)
    assert policy.expiry_threshold(timedelta(days=365)) == timedelta(days=30)
    assert policy.expiry_threshold(timedelta(hours=24)) == timedelta(hours=7.92)
    watch_alerts.set_policy(store, {"env": "prod"}, expiry_days=10)
    assert watch_alerts.policy_for({"env": "prod"}, watch_alerts.policies(store)).expiry_days == 10
    assert watch_alerts.policy_for({"env": "dev"}, watch_alerts.policies(store)).expiry_days == 30


def test_cli_channels_ack_snooze_and_test_alert(
    watch_db: str,  # noqa: F811
    webhook: tuple[Hooks, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    hooks, hook_url = webhook
    db = ["--db", watch_db]
    assert main(["watch", "add", f"refused.test:{free_port()},addr=127.0.0.1", *db]) == 0
    assert main(["watch", "channel", "add", hook_url, "--secret", SECRET, "--label", "team=x", *db]) == 0
    assert main(["watch", "channel", "add", "nonsense-without-scheme", *db]) == 2
    capsys.readouterr()
    assert main(["watch", "channel", "list", *db, "--json"]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert doc["channels"][0]["kind"] == "webhook" and doc["channels"][0]["labels"] == {"team": "x"}
    assert main(["watch", "test-alert", *db]) == 0
    [doc] = verified(hooks)
    assert doc["test"] is True and doc["alerts"][0]["status"] == "test"
    hooks.fail_next = 1  # one 503, then accepted: retried
    assert main(["watch", "test-alert", "--channel", "1", *db]) == 0
    assert len(verified(hooks)) == 1
    assert main(["watch", "ack", "refused.test:1", *db]) == 2  # no such target
    assert main(["watch", "snooze", "1", "2d", *db]) == 0
    assert main(["watch", "ack", "1", "--condition", "unreachable", *db]) == 0
    capsys.readouterr()
    assert main(["watch", "alerts", "--all", *db, "--json"]) == 0
    assert jsonschemas.loads(capsys.readouterr().out)["alerts"] == []  # one unreachable check: damped


def test_one_alert_for_the_clients_that_reject_and_a_notice_when_more_do(
    store: Store,  # noqa: F811
    webhook: tuple[Hooks, str],
) -> None:
    hooks, hook_url = webhook
    watch_channels.add_channel(store, hook_url, {}, SECRET)
    [(target, _)] = store.add(["clients.example:443,addr=127.0.0.1"])
    t0 = datetime.now(UTC)
    java_only = (("chrome", True), ("curl", True), ("java", False))
    two = (("chrome", True), ("curl", False), ("java", False))
    sha1 = {"id": "sha1-signature", "severity": "error", "title": "SHA-1", "detail": "", "fix": ""}

    def step(minutes: int, clients: tuple[tuple[str, bool], ...], rejected_by: list[str]) -> list[dict[str, Any]]:
        at = t0 + timedelta(minutes=minutes)
        findings = (("sha1-signature", "error"),) if rejected_by else ()
        details = ({**sha1, "rejected_by": rejected_by},) if rejected_by else ()
        obs = _obs(target.id, "invalid" if rejected_by else "valid", at, clients=clients, findings=findings,
                   finding_details=details)  # fmt: skip
        events = store.record(obs)
        watch_channels.deliver(
            watch_alerts.evaluate(store, [(target, obs, events)], at=at), watch_channels.channels(store)
        )
        return [a for doc in verified(hooks) for a in doc["alerts"]]

    first = step(1, java_only, ["java"])
    clients = next(a for a in first if a["condition"] == "clients")
    assert clients["status"] == "firing" and clients["detail"]["clients"] == ["java"]
    assert clients["summary"] == "rejected by java (1 of 3 client families)"
    assert clients["detail"]["because_of"] == {"java": ["sha1-signature"]}
    # curl starts rejecting too: the open alert is updated (no second firing) and a notice says who started
    more = step(2, two, ["curl", "java"])
    assert [(a["status"], a["condition"]) for a in more] == [("notice", "client-started-rejecting")]
    assert more[0]["detail"]["clients"] == ["curl"] and more[0]["summary"] == "curl started rejecting the chain"
    [open_] = [a for a in watch_alerts.alerts(store) if a["condition"] == "clients"]
    assert open_["detail"]["clients"] == ["curl", "java"]
    # every client accepts again: resolved
    done = step(3, (("chrome", True), ("curl", True), ("java", True)), [])
    assert ("resolved", "clients") in {(a["status"], a["condition"]) for a in done}
