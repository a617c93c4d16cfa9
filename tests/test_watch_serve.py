"""``certdoctor watch serve``: the daemon as a subprocess on a free loopback port over the lab — its scheduler
stores observations for due targets, its API answers with schema-valid documents, a token guards it, SIGTERM
stops it with status 0, and SIGKILL in the middle of a pass loses no stored observation, leaves no partial row
and the next start carries on — on SQLite and PostgreSQL (the ``watch_db`` fixture of test_watch.py). Service-mode
safety: an AIA URL naming 169.254.169.254 gets no connection and is a finding."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

import certdoctor
import jsonschemas
import test_watch
from certdoctor.lab import Lab
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store
from certdoctor.watch import tables as wt
from certdoctor.watch.daemon import Daemon, ServeConfig, backoff_interval
from netutil import free_port
from pki_builder import intermediate, leaf, root
from test_watch import Swappable, spec

watch_db = test_watch.watch_db  # the fixtures: SQLite, and PostgreSQL when the postgres_url fixture exists
swappable = test_watch.swappable

SRC = str(Path(certdoctor.__file__).resolve().parents[1])
LAB_TARGETS = ["good-rsa", "expired", "expiring-soon", "expired-intermediate", "multi-address", "incomplete-aia"]
PATIENCE = 60.0  # seconds any wait gives the daemon before the test fails (not a timing assertion)


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int
    token: str | None = None

    def get(self, path: str, token: str | None = ...) -> tuple[int, dict[str, Any], dict[str, str]]:  # type: ignore[assignment]
        token = self.token if token is ... else token
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")

        def parsed(body: bytes, headers: Any) -> Any:  # /metrics is text, everything else a JSON document
            return json.loads(body) if "json" in headers.get("content-type", "") else body.decode()

        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, parsed(answer.read(), answer.headers), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, parsed(exc.read(), exc.headers), dict(exc.headers)

    def doc(self, path: str) -> dict[str, Any]:
        status, body, _ = self.get(path)
        assert status == 200, (path, body)
        jsonschemas.validate(body)
        return body

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err


def _argv(db: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "certdoctor", "watch", "serve", "--db", db, "--listen", f"127.0.0.1:{port}", *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CERTDOCTOR_TOKEN", "CERTDOCTOR_DB")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def wait_for(what: str, condition: Callable[[], Any], proc: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) waiting for {what}: {proc.stderr.read()}")
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def start(lab: Lab) -> Iterator[Callable[..., Served]]:
    """``start(db, *options, token=None)``: a daemon on a free port over the lab's root, answering /healthz."""
    running: list[Served] = []

    def _start(db: str, *extra: str, token: str | None = None, env: dict[str, str] | None = None) -> Served:
        port = free_port()
        argv = _argv(db, port, "--ca-file", str(lab.root_path), "--timeout", "3", "--retries", "0", *extra)
        proc = subprocess.Popen(argv, env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        served = Served(proc, port, token)
        running.append(served)

        def healthy() -> bool:
            try:
                return served.get("/healthz")[0] == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False

        wait_for("/healthz", healthy, proc)
        return served

    yield _start
    for served in running:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.communicate()


@pytest.fixture
def lab_requests(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of every request the lab's AIA/OCSP/CRL server answers during the test (the lab runs in this
    process; the daemon is a client of it)."""
    seen: list[str] = []
    dispatch = lab.router.dispatch

    async def counting(request: Any) -> Any:
        seen.append(request.path)
        return await dispatch(request)

    monkeypatch.setattr(lab.router, "dispatch", counting)
    return seen


def checked(served: Served) -> dict[str, str | None]:
    """Target → its latest verdict (None: not checked yet), from /api/targets."""
    return {r["target"]: r["verdict"] for r in served.doc("/api/targets")["targets"]}


# --- the API over the lab ------------------------------------------------------------------------------------


def test_serve_checks_due_targets_and_answers_the_api(lab: Lab, watch_db: str, start, lab_requests) -> None:
    with Store(watch_db) as store:
        store.add([spec(lab, n) for n in LAB_TARGETS], labels={"env": "lab"})
        store.add([spec(lab, "good-ecdsa")], labels={"env": "other"})
    served = start(watch_db, "--allow-private-fetch")
    health = served.doc("/healthz")
    assert health["status"] == "ok" and health["database"] == "ok" and health["targets"] == len(LAB_TARGETS) + 1
    verdicts = wait_for("every target checked", lambda: (v := checked(served)) and None not in v.values() and v)
    by_name = {n: verdicts[spec(lab, n)] for n in [*LAB_TARGETS, "good-ecdsa"]}
    assert by_name == {
        "good-rsa": "valid",
        "expired": "invalid",
        "expiring-soon": "valid",
        "expired-intermediate": "invalid",
        "multi-address": "invalid",
        "incomplete-aia": "invalid",  # the server does not send its intermediate (clients without AIA reject)
        "good-ecdsa": "valid",
    }
    assert lab_requests  # the opt-out: the lab's AIA server on 127.0.0.1 was asked
    rows = served.doc("/api/targets?label=env=lab")["targets"]
    assert sorted(r["target"] for r in rows) == sorted(spec(lab, n) for n in LAB_TARGETS)
    assert rows[0]["verdict"] == "invalid"  # most urgent first
    expired = next(r for r in rows if r["target"] == spec(lab, "expired"))
    assert expired["first_error"] == "expired" and expired["leaf_days_left"] < 0

    history = served.doc(f"/api/targets/{expired['id']}?limit=5")
    assert history["kind"] == "watch-history" and history["target"]["id"] == expired["id"]
    (obs,) = history["observations"]
    assert obs["verdict"] == "invalid" and [e["address"] for e in obs["endpoints"]] == ["127.0.0.1"]
    assert "expired" in [f["id"] for f in obs["findings"]]
    assert [e["kind"] for e in history["events"]] == ["first-seen"]
    multi = served.doc(f"/api/targets/{next(r['id'] for r in rows if r['target'] == spec(lab, 'multi-address'))}")
    assert len(multi["observations"][0]["endpoints"]) == 2

    events = served.doc("/api/events?since=1h")
    assert events["kind"] == "watch-events"
    assert {e["target"] for e in events["events"] if e["kind"] == "first-seen"} == set(verdicts)
    last = max(e["id"] for e in events["events"])
    assert served.doc(f"/api/events?since=1h&after={last}")["events"] == []
    moment = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert len(served.doc(f"/api/events?since={urllib.request.quote(moment)}")["events"]) == len(events["events"])

    for path, status in [("/api/targets/99999", 404), ("/api/events?since=soon", 400), ("/nothing", 404)]:
        code, body, _ = served.get(path)
        assert code == status, body
        jsonschemas.validate(body)
        assert body["kind"] == "watch-api-error" and body["status"] == status

    code, body, headers = served.get("/metrics")
    if importlib.util.find_spec("certdoctor.watch.metrics") is None:  # served only where that module exists
        assert code == 404
    else:
        assert code == 200 and headers.get("content-type", "").startswith("text/plain")
        assert "certdoctor_target_valid{" in body and "certdoctor_store_up 1.0" in body

    health = served.doc("/healthz")
    assert health["checks"] == len(LAB_TARGETS) + 1 and health["in_flight"] == 0
    code, err = served.stop(signal.SIGTERM)
    assert code == 0, err
    assert "stopped after" in err


def test_one_session_serves_every_pass_and_its_judgement_cache(lab: Lab, tmp_path: Path, start) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        store.add([spec(lab, "good-rsa")], every=1)
    served = start(db)
    health = wait_for("three checks", lambda: (h := served.doc("/healthz"))["checks"] >= 3 and h, served.proc)
    assert health["verdicts"] == {"valid": health["checks"]}
    # the same chain again: judged once, then from the cache the daemon keeps between passes
    assert health["judgement_cache"]["misses"] == 1 and health["judgement_cache"]["hits"] >= 2
    assert served.stop()[0] == 0


def test_serve_compares_each_target_with_its_deployed_files(lab: Lab, tmp_path: Path, start) -> None:
    """The daemon reads a target's linked files at each check, as `watch run` does: a file holding another
    certificate than the one served is `served-not-deployed`, and `watch files` shows it as read."""
    from certdoctor.watch.deployed import add_file, files
    from pki_builder import leaf, root

    db = f"sqlite:///{tmp_path / 'watch.db'}"
    ca = root("Deployed Elsewhere Root")
    another = leaf("elsewhere.certdoctor.test", ca)  # a certificate the target does not serve
    deployed = tmp_path / "fullchain.pem"
    deployed.write_bytes(another.cert.public_bytes(serialization.Encoding.PEM))
    with Store(db) as store:
        add_file(store, str(deployed), serves=[spec(lab, "good-rsa")], server_type="nginx")
    served = start(db)
    row = wait_for("the target checked", lambda: (r := served.doc("/api/targets")["targets"][0])["verdict"] and r)
    assert "served-not-deployed" in row["findings"], row
    with Store(db) as store:
        [f] = files(store)
        assert f.read_at is not None and f.leaf_sha256
    assert served.stop()[0] == 0


def test_serve_refuses_private_fetches_by_default(lab: Lab, tmp_path: Path, start, lab_requests) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        store.add([spec(lab, "incomplete-aia")])
    served = start(db)
    wait_for("the check", lambda: None not in checked(served).values())
    (row,) = served.doc("/api/targets")["targets"]
    assert row["verdict"] == "invalid" and row["first_error"] == "missing-intermediate"
    obs = served.doc(f"/api/targets/{row['id']}")["observations"][0]
    assert "missing-intermediate" in [f["id"] for f in obs["findings"]]
    assert "refused: 127.0.0.1 is a loopback address" in obs["error"]
    assert lab_requests == []
    assert served.stop()[0] == 0


# --- access --------------------------------------------------------------------------------------------------


def test_a_non_loopback_bind_without_a_token_is_refused_at_start(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    argv = [sys.executable, "-m", "certdoctor", "watch", "serve", "--db", db, "--listen", f"0.0.0.0:{free_port()}"]
    run = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=PATIENCE)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "requires --token or CERTDOCTOR_TOKEN" in run.stderr
    run = subprocess.run(
        [*argv[:-2], "--listen", "127.0.0.1:99999"], env=_env(), capture_output=True, text=True, timeout=PATIENCE
    )
    assert run.returncode == 2 and "not HOST:PORT" in run.stderr


def test_with_a_token_every_request_needs_it(tmp_path: Path, start) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    served = start(db, token="s3cret-token", env=_env(CERTDOCTOR_TOKEN="s3cret-token"))
    for path in ("/healthz", "/api/targets", "/api/events", "/api/targets/1"):
        for token in (None, "wrong", "s3cret-token-longer", ""):
            code, body, headers = served.get(path, token)
            assert code == 401, (path, token, body)
            jsonschemas.validate(body)
            assert headers.get("www-authenticate", headers.get("WWW-Authenticate", "")).startswith("Bearer")
    assert served.doc("/healthz")["status"] == "ok"
    assert served.doc("/api/targets")["targets"] == []
    assert served.stop(signal.SIGINT)[0] == 0


def test_sigterm_abandons_the_targets_still_in_flight_after_the_grace(lab: Lab, tmp_path: Path, start) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    ep = lab.endpoints["stall"]
    with Store(db) as store:
        store.add([f"{ep.hostname}:{ep.port},addr={ep.addresses[0]},name=stall{i}.test" for i in range(2)])
        store.add([spec(lab, "good-rsa")])
    served = start(db, "--timeout", "120", "--grace", "1s")
    wait_for("the stalled targets in flight", lambda: served.doc("/healthz")["in_flight"] == 2, served.proc)
    wait_for("good-rsa checked", lambda: checked(served)[spec(lab, "good-rsa")] == "valid", served.proc)
    code, err = served.stop(signal.SIGTERM)
    assert code == 0, err
    with Store(db) as store:
        assert [r["verdict"] for r in store.status()] == ["valid", None, None]  # nothing stored for the abandoned
        assert len(store.due()) == 2  # due again at the next start


# --- SIGKILL in the middle of a pass ------------------------------------------------------------------------


def _observations(url: str) -> dict[int, tuple[int, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {r.id: (r.target_id, r.verdict) for r in conn.execute(sa.select(wt.observations))}
    finally:
        engine.dispose()


def test_sigkill_mid_pass_loses_no_observation_and_the_pass_resumes(lab: Lab, watch_db: str, start) -> None:
    ep = lab.endpoints["stall"]
    stalls = [f"{ep.hostname}:{ep.port},addr={ep.addresses[0]},name=stall{i}.test" for i in range(8)]
    quick = [spec(lab, n) for n in [*LAB_TARGETS, "good-ecdsa", "good-two-level", "wildcard"]]
    specs = [s for pair in zip(stalls, quick * 2, strict=False) for s in pair]
    with Store(watch_db) as store:
        added = store.add(list(dict.fromkeys(specs)))
    targets = {t.id: t for t, _ in added}
    served = start(watch_db, "--allow-private-fetch", "--concurrency", "4")
    # some observations stored, stalled targets still in flight: kill it there
    wait_for("a pass half done", lambda: 3 <= len(_observations(watch_db)) < len(targets) - 4, served.proc)
    before = _observations(watch_db)
    served.proc.kill()
    served.proc.communicate()
    after = _observations(watch_db)
    assert before.items() <= after.items()  # every observation stored before the kill is there
    assert len(after) < len(targets)

    with Store(watch_db) as store:  # opens (and would migrate) fine
        _assert_consistent(store, targets)
        if store.engine.dialect.name == "sqlite":
            with store.engine.connect() as conn:
                assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"

    served = start(watch_db, "--allow-private-fetch", "--concurrency", "8")
    wait_for("every target checked", lambda: {t for t, _ in _observations(watch_db).values()} == set(targets))
    assert served.stop()[0] == 0
    final = _observations(watch_db)
    assert after.items() <= final.items()
    with Store(watch_db) as store:
        _assert_consistent(store, targets)
        verdicts = {store.target(i).spec: v for i, v in ((t, v) for t, v in final.values())}  # type: ignore[union-attr]
    assert all(verdicts[s] == "unreachable" for s in stalls)
    assert verdicts[spec(lab, "good-rsa")] == "valid"


def _assert_consistent(store: Store, targets: dict[int, Any]) -> None:
    """Every observation has all its endpoints (one per address of its target) or none; every event and every
    target's latest observation points at a stored observation."""
    o, e = wt.observations, wt.observation_endpoints
    with store.engine.connect() as conn:
        ends: dict[int, int] = dict(
            conn.execute(sa.select(e.c.observation_id, sa.func.count()).group_by(e.c.observation_id)).all()
        )
        observed = conn.execute(sa.select(o.c.id, o.c.target_id, o.c.verdict)).all()
        ids = {r.id for r in observed}
        assert set(ends) <= ids
        for r in observed:
            assert ends.get(r.id, 0) in (0, len(targets[r.target_id].addresses)), r
            if r.verdict != "unreachable":
                assert ends[r.id] == len(targets[r.target_id].addresses), r
        assert set(conn.execute(sa.select(wt.events.c.observation_id)).scalars()) <= ids
        latest = {r.id: r.last_observation_id for r in conn.execute(sa.select(wt.targets))}
        assert {v for v in latest.values() if v is not None} <= ids
        for target_id, last in latest.items():
            mine = [r.id for r in observed if r.target_id == target_id]
            assert last == (max(mine) if mine else None), (target_id, last, mine)


# --- the scheduler's back-off; service-mode safety --------------------------------------------------------------


def test_backoff_doubles_an_unreachable_targets_interval_up_to_the_cap() -> None:
    assert [backoff_interval(3600, n, 86400) for n in range(7)] == [3600, 3600, 7200, 14400, 28800, 57600, 86400]
    assert backoff_interval(3600, 100, 86400) == 86400
    assert backoff_interval(7 * 86400, 3, 86400) == 7 * 86400  # never more often than the interval


def test_an_unreachable_targets_next_check_backs_off(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'watch.db'}") as store:
        ((target, _),) = store.add([f"down.test:{free_port()},addr=127.0.0.1"], every=600)
        daemon = Daemon(store, None, ServeConfig(max_backoff=3000))
        moment = datetime.now(UTC)

        def unreachable(minutes: int) -> Any:
            from certdoctor.watch.store import Observation

            at = moment + timedelta(minutes=minutes)
            return Observation(target.id, at, 1.0, "unreachable", 3, (), None, None, None, (), (), (), (), "refused")

        intervals = []
        for n in range(5):
            obs = unreachable(n)
            due = daemon._next_due(target, obs)
            intervals.append((due - obs.at).total_seconds())
            store.record(obs, next_due=due)
    for got, want in zip(intervals, [600, 1200, 2400, 3000, 3000], strict=True):
        assert want * 0.9 <= got <= want * 1.1, intervals


def test_aia_at_the_metadata_address_gets_no_connection_and_is_a_finding(
    tmp_path: Path, swappable: Swappable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``watch serve`` does by default (allow_private_fetch off) with a server whose certificate sends AIA
    to the cloud metadata address: no connection is attempted there; the refusal is in the finding."""
    ca = root("Serve Root")
    issuing = intermediate("Serve CA", ca)
    metadata = "http://169.254.169.254/latest/meta-data/iam/ca.der"
    name = "aia.serve.test"
    moment = datetime.now(UTC)
    cert = leaf(
        name,
        issuing,
        aia_ca_issuers=metadata,
        not_before=moment - timedelta(days=1),
        not_after=moment + timedelta(days=60),
    )
    swappable.serve(cert, [])  # the intermediate is not sent
    (tmp_path / "root.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))

    attempts: list[Any] = []
    connect = socket.socket.connect

    def recording(self: socket.socket, address: Any) -> Any:
        attempts.append(address)
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    import httpcore

    inner = httpcore.AnyIOBackend.connect_tcp

    async def recording_tcp(self: Any, host: str, port: int, *args: Any, **kw: Any) -> Any:
        attempts.append((host, port))
        return await inner(self, host, port, *args, **kw)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", recording_tcp)

    db = f"sqlite:///{tmp_path / 'watch.db'}"
    options = DiagnoseOptions(ca_files=(str(tmp_path / "root.pem"),), timeout=3, allow_private_fetch=False)
    with Store(db) as store:
        store.add([f"{name}:{swappable.server.port},addr=127.0.0.1"])
        daemon = Daemon(store, options, ServeConfig(poll=0.2, retries=0))

        async def once() -> None:
            task = asyncio.ensure_future(daemon.schedule())
            while daemon.state.checks < 1 and not task.done():
                await asyncio.sleep(0.05)
            daemon.stop()
            await task

        asyncio.run(once())
        (row,) = store.status()
        _, (obs,), _ = store.history(row["id"])
    assert attempts  # the recorder sees connections (the handshake with the server on 127.0.0.1)
    assert not [a for a in attempts if "169.254" in str(a)], attempts
    assert obs["verdict"] == "invalid" and row["first_error"] == "missing-intermediate"
    assert "refused: 169.254.169.254 is a link-local address" in obs["error"]


NETNS_SCRIPT = r"""
import asyncio, json, socket, ssl, sys, threading
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store
from certdoctor.watch.daemon import Daemon, ServeConfig

tmp, allow = sys.argv[1], sys.argv[2] == "allow"
connections = []
metadata = socket.create_server(("169.254.169.254", 80))  # what a cloud's metadata service would be


def answer_metadata():
    while True:
        conn, peer = metadata.accept()
        connections.append(peer[0])
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        conn.close()


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{tmp}/leaf.pem", f"{tmp}/key.pem")
tls = socket.create_server(("127.0.0.1", 0))


def answer_tls():
    while True:
        conn, _ = tls.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as c:
                c.settimeout(5)
                c.recv(1)
        except (OSError, ssl.SSLError):
            pass


for fn in (answer_metadata, answer_tls):
    threading.Thread(target=fn, daemon=True).start()
options = DiagnoseOptions(ca_files=(f"{tmp}/root.pem",), timeout=3, allow_private_fetch=allow, revocation=False)
with Store(f"sqlite:///{tmp}/watch-{sys.argv[2]}.db") as store:
    store.add([f"aia.serve.test:{tls.getsockname()[1]},addr=127.0.0.1"])
    daemon = Daemon(store, options, ServeConfig(poll=0.2, retries=0))

    async def once():
        task = asyncio.ensure_future(daemon.schedule())
        while daemon.state.checks < 1 and not task.done():
            await asyncio.sleep(0.05)
        daemon.stop()
        await task

    asyncio.run(once())
    (row,) = store.status()
    _, (obs,), _ = store.history(row["id"])
print(json.dumps({"connections": connections, "error": obs["error"], "findings": row["findings"]}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare -n needs root")
def test_in_a_network_namespace_no_packet_reaches_the_metadata_address(tmp_path: Path) -> None:
    """In a network namespace of its own (only loopback, with 169.254.169.254 on it and a listener there), the
    daemon's default makes no connection to the metadata address; the opt-out does (so the listener would have
    seen a leak)."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n does not work here")
    ca = root("Netns Root")
    issuing = intermediate("Netns CA", ca)
    moment = datetime.now(UTC)
    cert = leaf(
        "aia.serve.test",
        issuing,
        aia_ca_issuers="http://169.254.169.254/latest/meta-data/ca.der",
        not_before=moment - timedelta(days=1),
        not_after=moment + timedelta(days=60),
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "root.pem").write_bytes(ca.cert.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(cert.cert.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        cert.key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "netns.py").write_text(NETNS_SCRIPT, encoding="utf-8")
    results = {}
    for mode in ("refuse", "allow"):
        shell = (
            "ip link set lo up && ip addr add 169.254.169.254/32 dev lo && "
            f'exec "{sys.executable}" "{tmp_path / "netns.py"}" "{tmp_path}" {mode}'
        )
        run = subprocess.run(["unshare", "-n", "sh", "-c", shell], env=_env(), capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-3000:]
        results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    assert results["refuse"]["connections"] == []
    assert "refused: 169.254.169.254 is a link-local address" in results["refuse"]["error"]
    assert "missing-intermediate" in results["refuse"]["findings"]
    assert set(results["allow"]["connections"]) == {"169.254.169.254"}  # the opt-out connects: a leak would be seen


def test_serve_sends_alerts_for_a_swapped_certificate(tmp_path: Path, swappable: Swappable, start) -> None:
    """The daemon alerts as `watch run` does: a certificate swapped for an expired one fires a signed webhook
    alert carrying the finding, its fix and the rejecting clients; swapped back, it resolves."""
    from test_watch_alerts import SECRET, Hooks, statuses, verified

    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hooks.received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    root_ca = root("Serve Alert Root")
    ca = intermediate("Serve Alert CA", root_ca)
    moment = datetime.now(UTC)
    good = leaf("alerting.test", ca, not_before=moment - timedelta(days=10), not_after=moment + timedelta(days=80))
    swappable.serve(good, [ca])
    anchor = tmp_path / "root.pem"
    anchor.write_bytes(root_ca.cert.public_bytes(serialization.Encoding.PEM))
    with Store(db) as store:
        store.add([f"alerting.test:{swappable.server.port},addr=127.0.0.1"], every=1)
        from certdoctor.watch import channels

        channels.add_channel(store, f"http://127.0.0.1:{receiver.server_address[1]}/hook", {}, SECRET)
    try:
        served = start(db, "--ca-file", str(anchor), "--alert-every", "1s", "--no-revocation")
        wait_for("a valid check", lambda: served.doc("/healthz")["verdicts"].get("valid"), served.proc)
        expired = leaf(
            "alerting.test", ca, not_before=moment - timedelta(days=100), not_after=moment - timedelta(days=2)
        )
        swappable.serve(expired, [ca])
        wait_for("the alert", lambda: any(h for h in hooks.received), served.proc)
        docs = verified(hooks)
        assert ("firing", "finding:expired") in statuses(docs)
        finding = next(a for d in docs for a in d["alerts"] if a["condition"] == "finding:expired")["detail"]["finding"]
        assert finding["fix"] and "curl" in finding["rejected_by"]
        swappable.serve(good, [ca])

        def resolved() -> bool:  # every message so far, parsed (the notice of the change may come first)
            return any(
                a["status"] == "resolved" and a["condition"] == "finding:expired"
                for _h, body in list(hooks.received)
                for a in json.loads(body)["alerts"]
            )

        wait_for("resolved", resolved, served.proc)
        assert ("resolved", "finding:expired") in statuses(verified(hooks))
        assert served.doc("/healthz")["alerts"]["sent"] >= 2
        code, err = served.stop(signal.SIGTERM)
        assert code == 0, err
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_serve_applies_the_retention(lab: Lab, tmp_path: Path, start) -> None:
    """Raw observations older than --keep go (each target's latest and the events stay): the database of a
    daemon does not grow without bound."""
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        store.add([spec(lab, "good-rsa")], every=3600)
    served = start(db, "--keep-all")
    wait_for("a check", lambda: served.doc("/healthz")["checks"] >= 1, served.proc)
    assert served.stop(signal.SIGTERM)[0] == 0
    with Store(db) as store:  # age what is stored: three observations, two days old
        with store.engine.begin() as conn:
            (target_id,) = conn.execute(sa.select(wt.targets.c.id)).scalars().all()
            first = conn.execute(sa.select(wt.observations)).mappings().one()
            row = {k: v for k, v in first.items() if k != "id"}
            for _ in range(2):
                conn.execute(sa.insert(wt.observations).values(row))
            conn.execute(sa.update(wt.observations).values(at=datetime.now(UTC) - timedelta(days=2)))
        count = lambda: store.engine.connect().execute(sa.select(sa.func.count()).select_from(wt.observations))  # noqa: E731
        assert count().scalar_one() == 3
    served = start(db, "--keep", "1d")
    health = wait_for("the retention", lambda: (h := served.doc("/healthz"))["pruned"] >= 2 and h, served.proc)
    assert health["pruned"] == 2
    assert served.stop(signal.SIGTERM)[0] == 0
    with Store(db) as store, store.engine.connect() as conn:
        kept = conn.execute(sa.select(wt.observations.c.id)).scalars().all()
        latest = conn.execute(sa.select(wt.targets.c.last_observation_id).where(wt.targets.c.id == target_id)).scalar()
        assert latest in kept
