"""``certdoctor watch``: the inventory, one pass through the scan engine on real servers (the lab, and a server
of our own whose certificate is swapped between passes), the events, status, history, retention and the CLI —
against every database backend (SQLite; PostgreSQL when a ``postgres_url`` fixture exists)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

import jsonschemas
from certdoctor.certinfo import fingerprint
from certdoctor.cli import main
from certdoctor.errors import InputError
from certdoctor.lab import Lab
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store, parse_duration, run_pass
from certdoctor.watch import tables as watch_tables
from hostile_servers import RawServer
from netutil import free_port
from pki_builder import Issued, ec_key, intermediate, leaf, root

BASE_TABLES = ("events", "observation_endpoints", "observations", "certificates", "targets")
ALERT_TABLES = ("alerts", "alert_snoozes", "alert_channels", "alert_policies")
DEPLOYED_TABLES = ("deployed_links", "deployed_files", "renewal_runs", "renewal_hooks", "forecasts")


@pytest.fixture(params=["sqlite", "postgresql"])
def watch_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty database: a SQLite file, or the PostgreSQL cluster of the ``postgres_url``
    fixture (emptied first), skipped when no such fixture exists."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'watch.db'}"
    try:
        url = request.getfixturevalue("postgres_url")
    except pytest.FixtureLookupError:
        pytest.skip("no postgres_url fixture (a PostgreSQL cluster) in this test suite")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in (*DEPLOYED_TABLES, *ALERT_TABLES, *BASE_TABLES, "alembic_version"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def store(watch_db: str) -> Iterator[Store]:
    with Store(watch_db) as opened:
        yield opened


def spec(lab: Lab, name: str) -> str:
    ep = lab.endpoints[name]
    return f"{ep.hostname}:{ep.port}," + ",".join(f"addr={a}" for a in ep.addresses)


def lab_options(lab: Lab) -> DiagnoseOptions:
    return DiagnoseOptions(ca_files=(str(lab.root_path),), timeout=3)


# --- the lab ---------------------------------------------------------------------------------------------------


def test_a_pass_over_lab_targets_status_and_history(lab: Lab, store: Store) -> None:
    refused = f"refused.test:{free_port()},addr=127.0.0.1"
    names = ["good-rsa", "expiring-soon", "expired", "expired-intermediate", "multi-address"]
    store.add([spec(lab, n) for n in names] + [refused], labels={"env": "lab"})
    result = run_pass(store, lab_options(lab), retries=0)
    assert result.checked == 6 and result.exit_code == 1
    assert dict(result.verdicts) == {"valid": 2, "invalid": 3, "unreachable": 1}
    rows = store.status()
    jsonschemas.validate({"certdoctor": 1, "kind": "watch-status", "targets": rows})
    # broken now first (unreachable, then invalid by the chain's earliest notAfter), then soonest expiry
    assert [r["target"] for r in rows] == [
        refused,
        spec(lab, "expired"),  # leaf expired 30 days ago
        spec(lab, "multi-address"),  # the second address serves a leaf that expired 30 days ago too
        spec(lab, "expired-intermediate"),  # leaf valid, but the intermediate expired 10 days ago
        spec(lab, "expiring-soon"),
        spec(lab, "good-rsa"),
    ]
    by = {r["target"]: r for r in rows}
    assert by[refused]["verdict"] == "unreachable" and "refused" in by[refused]["error"]
    expired = by[spec(lab, "expired")]
    # an expired certificate is an observation with every field, never "down"
    assert expired["verdict"] == "invalid" and expired["first_error"] == "expired" and expired["error"] is None
    assert expired["leaf_days_left"] == pytest.approx(-30, abs=0.2) and expired["labels"] == {"env": "lab"}
    assert "chrome" in expired["rejected_by"]
    inter = by[spec(lab, "expired-intermediate")]
    assert inter["first_error"] == "intermediate-expired" and inter["chain_days_left"] < 0 < inter["leaf_days_left"]
    assert by[spec(lab, "expiring-soon")]["findings"] == ["expiring-soon"]

    target, observations, events = store.history(spec(lab, "expired"))
    assert target.labels == {"env": "lab"} and len(observations) == 1
    obs = observations[0]
    assert obs["verdict"] == "invalid" and obs["exit_code"] == 1 and obs["leaf_sha256"]
    assert {"id": "expired", "severity": "error"} in obs["findings"]
    assert {c["accepts"] for c in obs["clients"]} == {False}
    assert obs["endpoints"] == [
        {"address": "127.0.0.1", "ok": True, "error": None, "chain": obs["endpoints"][0]["chain"]}
    ]
    assert obs["endpoints"][0]["chain"][0] == obs["leaf_sha256"]
    assert [e["kind"] for e in events] == ["first-seen"]
    # the two addresses of multi-address serve different chains
    _, _, multi = store.history(spec(lab, "multi-address"))
    kinds = {e["kind"]: e["detail"] for e in multi}
    assert set(kinds["addresses-disagree"]["leaves"]) == {"127.0.0.1", "127.0.0.2"}
    _, _, down = store.history(refused)
    assert [e["kind"] for e in down] == ["unreachable", "first-seen"]  # newest first (same moment: by id)
    # nothing is due any more; --all checks again, and nothing changed
    assert run_pass(store, lab_options(lab)).checked == 0
    again = run_pass(store, lab_options(lab), everything=True, retries=0)
    assert again.checked == 6 and sum(again.events.values()) == 0
    assert store.counts()["observations"] == 12


def test_a_pass_with_helper_processes_stores_what_one_process_does(lab: Lab, store: Store, tmp_path: Path) -> None:
    """Helpers (forked, as scan's) diagnose, this process alone writes: every target gets one observation, and
    the same verdicts, findings, per-client verdicts and chains as a pass in one process on another store."""
    names = ["good-rsa", "expired", "incomplete-no-aia", "multi-address", "wrong-host", "good-ecdsa"]
    specs = [spec(lab, n) for n in names]
    # the same targets several times over (distinct specs: an URL path of their own), in more than one batch
    many = [f"https://{s.split(',', 1)[0]}/p{i},{s.split(',', 1)[1]}" for i in range(12) for s in specs]
    store.add(many)
    helped = run_pass(store, lab_options(lab), retries=0, workers=2)
    with Store(f"sqlite:///{tmp_path / 'alone.db'}") as alone:
        alone.add(many)
        single = run_pass(alone, lab_options(lab), retries=0, workers=1)
        expected = {r["target"]: r for r in alone.status()}
    assert helped.checked == single.checked == len(many) and helped.verdicts == single.verdicts
    assert store.counts()["observations"] == len(many)
    for row in store.status():
        other = expected[row["target"]]
        assert (row["verdict"], row["findings"], row["rejected_by"], row["first_error"]) == (
            other["verdict"],
            other["findings"],
            other["rejected_by"],
            other["first_error"],
        ), row["target"]
    _, observations, _ = store.history(many[0])
    assert observations[0]["endpoints"][0]["chain"] and {c["accepts"] for c in observations[0]["clients"]} == {True}


# --- a server whose certificate is swapped ------------------------------------------------------------------------


@dataclass
class Swappable:
    """A TLS server on 127.0.0.1 serving whatever ``serve()`` last installed (or closing connections at once)."""

    server: RawServer
    tmp: Path
    ctx: ssl.SSLContext | None = None

    def serve(self, cert: Issued, chain: list[Issued]) -> None:
        pem = b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain])
        key = cert.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (self.tmp / "chain.pem").write_bytes(pem)
        (self.tmp / "key.pem").write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tmp / "chain.pem", self.tmp / "key.pem")
        self.ctx = ctx

    def refuse(self) -> None:
        self.ctx = None

    def handle(self, conn: socket.socket, stop: threading.Event) -> None:
        ctx = self.ctx
        if ctx is None:
            return  # closed without a word: no TLS
        with ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.settimeout(10)
            tls_conn.recv(1)


@pytest.fixture
def swappable(tmp_path: Path) -> Iterator[Swappable]:
    holder: list[Swappable] = []
    server = RawServer(lambda conn, stop: holder[0].handle(conn, stop))
    swap = Swappable(server, tmp_path)
    holder.append(swap)
    yield swap
    server.close()


NAME = "watch.certdoctor.test"


def test_events_of_a_server_whose_certificate_is_swapped(store: Store, swappable: Swappable, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ca = root("Watch Root")
    issuing = intermediate("Watch CA 1", ca)
    other_ca = intermediate("Watch CA 2", ca)
    key = ec_key("watch-leaf")
    first = leaf(NAME, issuing, key=key, not_before=now - timedelta(days=10), not_after=now + timedelta(days=80))
    expired = leaf(NAME, issuing, key=key, not_before=now - timedelta(days=100), not_after=now - timedelta(days=3))
    renewed = leaf(NAME, issuing, key=key, not_before=now - timedelta(days=1), not_after=now + timedelta(days=89))
    new_key = leaf(
        NAME,
        other_ca,
        key=ec_key("watch-leaf-2"),
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=90),
    )
    (tmp_path / "root.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    options = DiagnoseOptions(ca_files=(str(tmp_path / "root.pem"),), timeout=3, revocation=False)
    target = f"{NAME}:{swappable.server.port},addr=127.0.0.1"
    store.add([target], labels={"team": "payments"}, every=parse_duration("1h"))

    def check() -> list[tuple[str, dict[str, Any]]]:
        result = run_pass(store, options, everything=True, retries=0)
        assert result.checked == 1
        return result.results[0][2]

    swappable.serve(first, [issuing])
    assert check() == [("first-seen", {"verdict": "valid", "leaf_sha256": fingerprint(first.cert)})]
    assert check() == []  # nothing changed

    swappable.serve(expired, [issuing])  # an old certificate put back by mistake
    assert check() == [
        (
            "certificate-rotated",
            {
                "old_sha256": fingerprint(first.cert),
                "new_sha256": fingerprint(expired.cert),
                "old_issuer": "CN=Watch CA 1",
                "new_issuer": "CN=Watch CA 1",
                "issuer_changed": False,
                "same_key": True,
                "old_not_after": first.cert.not_valid_after_utc.isoformat(),
                "new_not_after": expired.cert.not_valid_after_utc.isoformat(),
            },
        ),
        ("finding-appeared", {"id": "expired", "severity": "error"}),
        *[("client-started-rejecting", {"client": c}) for c in _clients(store, target)],
    ]
    status = store.status()[0]
    assert (status["verdict"], status["first_error"]) == ("invalid", "expired")
    assert status["leaf_days_left"] == pytest.approx(-3, abs=0.1)

    swappable.serve(renewed, [issuing])  # renewed with the same key
    events = check()
    assert events[0][0] == "certificate-rotated" and events[0][1]["same_key"] is True
    assert events[1] == ("finding-resolved", {"id": "expired", "severity": "error"})
    assert {k for k, _ in events[2:]} == {"client-stopped-rejecting"}

    swappable.serve(new_key, [other_ca])  # a new key from another CA
    rotated = check()
    # the leaf now ends a day later: so does the forecast's first break (tests/test_watch_forecast.py)
    assert [k for k, _ in rotated] == ["certificate-rotated", "break-forecast"]
    assert rotated[0][1] | {"old_not_after": None, "new_not_after": None} == {
        "old_sha256": fingerprint(renewed.cert),
        "new_sha256": fingerprint(new_key.cert),
        "old_issuer": "CN=Watch CA 1",
        "new_issuer": "CN=Watch CA 2",
        "issuer_changed": True,
        "same_key": False,
        "old_not_after": None,
        "new_not_after": None,
    }

    swappable.refuse()  # the server stops speaking TLS
    down = check()
    assert [k for k, _ in down] == ["unreachable"] and down[0][1]["error"]
    assert store.status()[0]["verdict"] == "unreachable"
    assert check() == []  # still down: no new event
    swappable.serve(new_key, [other_ca])  # back, with the certificate it had
    assert check() == [("reachable-again", {"verdict": "valid"})]

    _, observations, events = store.history(target)
    assert [o["verdict"] for o in observations] == [
        "valid",
        "unreachable",
        "unreachable",
        "valid",
        "valid",
        "invalid",
        "valid",
        "valid",
    ]
    assert observations[1]["leaf_sha256"] is None and observations[1]["endpoints"][0]["ok"] is False
    assert events[0]["kind"] == "reachable-again" and events[-1]["kind"] == "first-seen"
    since = store.events(datetime.now(UTC) - timedelta(minutes=5))
    assert [e["kind"] for e in since] == [e["kind"] for e in reversed(events)]
    assert all(e["target"] == target for e in since)
    # every certificate stored once
    assert store.counts()["certificates"] == 6  # 4 leaves, 2 intermediates (the root is not presented)

    # retention: everything older than an hour, a day from now: all but the latest observation; events stay,
    # and the certificates only old observations referred to go
    deleted = store.prune(3600, at=datetime.now(UTC) + timedelta(days=1))
    assert deleted == {"observations": 7, "certificates": 4}
    counts = store.counts()
    assert counts["observations"] == 1 and counts["events"] == len(events) and counts["certificates"] == 2
    assert store.history(target)[1][0]["leaf_sha256"] == fingerprint(new_key.cert)


def _clients(store: Store, target: str) -> list[str]:
    """The client families of the latest observation, in their order (all of them reject an expired leaf)."""
    obs = store.history(target)[1][0]
    assert all(not c["accepts"] for c in obs["clients"])
    return [c["client"] for c in obs["clients"]]


# --- inventory ----------------------------------------------------------------------------------------------------


def test_import_is_idempotent_and_updates_labels(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "hosts.txt"
    src.write_text(
        "# inventory\nexample.com\napi.example.com:8443,addr=192.0.2.10\ntelnet://example.com\n\nexample.com\n",
        encoding="utf-8",
    )
    done, bad = store.import_file(src, {"env": "prod"})
    assert [(t.spec, added) for t, added in done] == [
        ("example.com", True),
        ("api.example.com:8443,addr=192.0.2.10", True),
        ("example.com", False),
    ]
    assert [(b.line, b.text) for b in bad] == [(4, "telnet://example.com")]
    done, _ = store.import_file(src, {"team": "web"})
    assert not any(added for _, added in done)
    targets = store.targets()
    assert len(targets) == 2 and targets[1].addresses == ("192.0.2.10",) and targets[1].port == 8443
    assert targets[0].labels == {"env": "prod", "team": "web"}
    assert [t.spec for t in store.targets({"team": "web", "env": "prod"})] == [
        "example.com",
        "api.example.com:8443,addr=192.0.2.10",
    ]
    assert store.targets({"team": "payments"}) == []
    removed, unknown = store.remove(["example.com", str(targets[1].id), "nope.example"])
    assert [t.spec for t in removed] == ["example.com", "api.example.com:8443,addr=192.0.2.10"] and unknown == [
        "nope.example"
    ]
    assert store.targets() == []
    with pytest.raises(InputError, match="unsupported scheme"):
        store.add(["telnet://example.com"])
    # added in chunks (a few statements per 500): a spec repeated in a later chunk is not added twice
    many = [f"h{i}.example:443" for i in range(1001)]
    done = store.add([*many, "h0.example:443"], {"bulk": "1"})
    assert [added for _, added in done] == [True] * 1001 + [False]
    assert done[-1][0].id == done[0][0].id and len(store.targets({"bulk": "1"})) == 1001


def test_durations() -> None:
    assert [parse_duration(x) for x in ("90s", "15m", "1h", "7d", "2w", "1.5h")] == [
        90,
        900,
        3600,
        604800,
        1209600,
        5400,
    ]
    for bad in ("10", "1h30m", "-5m", "0s", "soon"):
        with pytest.raises(InputError):
            parse_duration(bad)


def test_the_migrations_create_exactly_the_tables(watch_db: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    Store(watch_db).close()
    Store(watch_db).close()  # opening again migrates nothing
    engine = sa.create_engine(watch_db)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), watch_tables.metadata)
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert diff == [] and version == "0003"


def test_a_database_of_an_earlier_release_is_upgraded_in_place(watch_db: str) -> None:
    """A store made by the previous schema (0002) opens: migrated to the head, its rows kept."""
    from alembic import command
    from alembic.config import Config

    from certdoctor.watch.store import MIGRATIONS, head_revision

    engine = sa.create_engine(watch_db)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.execute(sa.text('INSERT INTO alert_policies (selector, expiry_days) VALUES (\'{"team": "web"}\', 9)'))
    engine.dispose()
    with Store(watch_db) as store, store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
        row = conn.execute(sa.select(watch_tables.alert_policies)).one()
        assert row.expiry_days == 9 and row.drift_grace_s is None and row.selector == {"team": "web"}


def test_head_revision_is_alembics_head() -> None:
    """`migrate` skips Alembic when the database is at the head read from the migrations' file names."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from certdoctor.watch.store import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert head_revision() == script.get_current_head()
    assert len(script.get_heads()) == 1


def test_default_database_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from certdoctor.watch import default_url

    monkeypatch.delenv("CERTDOCTOR_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_url() == f"sqlite:///{tmp_path / 'data' / 'certdoctor' / 'watch.db'}"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path / '.local' / 'share' / 'certdoctor' / 'watch.db'}"
    monkeypatch.setenv("CERTDOCTOR_DB", "postgresql+psycopg://watch@127.0.0.1/watch")
    assert default_url() == "postgresql+psycopg://watch@127.0.0.1/watch"


# --- the command line ---------------------------------------------------------------------------------------------


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    doc = jsonschemas.loads(capsys.readouterr().out)
    return code, doc


def test_cli(lab: Lab, watch_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", watch_db]
    code, doc = run_json(
        capsys, ["watch", "add", spec(lab, "good-rsa"), "--label", "team=payments", "--every", "15m", *db, "--json"]
    )
    assert code == 0 and doc["kind"] == "watch-list" and doc["targets"][0]["every_s"] == 900
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(f"{spec(lab, 'good-rsa')}\n{spec(lab, 'expired')}\n", encoding="utf-8")
    assert main(["watch", "import", str(hosts), *db]) == 0
    assert "1 added, 1 already watched, 0 bad lines skipped" in capsys.readouterr().out
    code, doc = run_json(capsys, ["watch", "list", "--label", "team=payments", *db, "--json"])
    assert [t["target"] for t in doc["targets"]] == [spec(lab, "good-rsa")]
    ca = ["--ca-file", str(lab.root_path), "--timeout", "3"]
    code, doc = run_json(capsys, ["watch", "run", *db, *ca, "--json"])
    assert code == 1 and doc["kind"] == "watch-run" and doc["verdicts"] == {"valid": 1, "invalid": 1}
    assert doc["events"] == {"first-seen": 2}
    code, doc = run_json(capsys, ["watch", "run", *db, *ca, "--json"])
    assert code == 0 and doc["checked"] == 0  # nothing due
    code, doc = run_json(capsys, ["watch", "status", *db, "--json"])
    assert [r["verdict"] for r in doc["targets"]] == ["invalid", "valid"]
    assert main(["watch", "status", *db]) == 0
    text = capsys.readouterr().out
    assert text.index(spec(lab, "expired")) < text.index(spec(lab, "good-rsa")) and "expired" in text
    code, doc = run_json(capsys, ["watch", "history", spec(lab, "expired"), *db, "--json"])
    assert doc["target"]["target"] == spec(lab, "expired") and doc["observations"][0]["verdict"] == "invalid"
    code, doc = run_json(capsys, ["watch", "events", "--since", "1h", *db, "--json"])
    assert [e["kind"] for e in doc["events"]] == ["first-seen", "first-seen"]
    code, doc = run_json(capsys, ["watch", "prune", "--keep", "30d", *db, "--json"])
    assert doc["deleted"] == {"observations": 0, "certificates": 0}
    code, doc = run_json(capsys, ["watch", "remove", "1", *db, "--json"])
    assert code == 0 and doc["targets"][0]["id"] == 1
    assert main(["watch", "remove", "no-such.example", *db]) == 2
    assert "no such target in the watch list: no-such.example" in capsys.readouterr().err
    assert main(["watch", "history", "no-such.example", *db]) == 2
    assert main(["watch", "add", "exa mple.com", *db]) == 2
    assert main(["watch", "events", "--since", "soon", *db]) == 2
    assert main(["watch", "add", "x.example", "--label", "novalue", *db]) == 2
    assert json.loads(json.dumps(doc))  # plain JSON


def test_cli_unreachable_exit_status(watch_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", watch_db]
    assert main(["watch", "add", f"refused.test:{free_port()},addr=127.0.0.1", *db]) == 0
    assert capsys.readouterr().out.startswith("added  #1  refused.test:")
    code, doc = run_json(capsys, ["watch", "run", "--retries", "0", *db, "--json"])
    assert code == 3 and doc["verdicts"] == {"unreachable": 1} and doc["events"] == {"first-seen": 1, "unreachable": 1}


def test_address_events_and_rotation_across_an_outage() -> None:
    """The comparisons a real server cannot easily stage: an address added behind a name, one removed, and a
    certificate changed while the target was down (compared with the last reachable observation)."""
    from certdoctor.watch.events import Endpoint, Snapshot, derive

    a, b = "a" * 64, "b" * 64
    one = Snapshot("valid", a, "CN=CA", "k1", endpoints=(Endpoint("192.0.2.1", True, None, (a,)),))
    two = Snapshot(
        "valid",
        a,
        "CN=CA",
        "k1",
        endpoints=(Endpoint("192.0.2.1", True, None, (a,)), Endpoint("192.0.2.2", True, None, (a,))),
    )
    assert derive(one, one, two) == [("address-appeared", {"address": "192.0.2.2"})]
    assert derive(two, two, one) == [("address-disappeared", {"address": "192.0.2.2"})]
    down = Snapshot("unreachable", error="connection refused")
    assert derive(two, two, down) == [("unreachable", {"error": "connection refused"})]
    back = Snapshot("valid", b, "CN=CA", "k1", endpoints=two.endpoints)
    events = derive(down, two, back)
    assert [k for k, _ in events] == ["reachable-again", "certificate-rotated"]
    assert events[1][1]["same_key"] is True and events[1][1]["issuer_changed"] is False
    unreadable = Snapshot("valid", b, "CN=CA", "", endpoints=two.endpoints)
    before = Snapshot("valid", a, "CN=CA", "", endpoints=two.endpoints)
    assert derive(before, before, unreadable)[0][1]["same_key"] is False  # keys that could not be read: unknown


def test_an_unusable_database_is_one_line_and_a_documented_exit_code(tmp_path: Path) -> None:
    """A database that does not answer is exit 3 (nothing could be checked), a path that cannot be one exit 2."""
    refused = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x"
    for db, code, said in [
        (refused, 3, "cannot open the watch database postgresql+psycopg://nobody@127.0.0.1"),
        (f"sqlite:///{tmp_path}/file/x.db", 2, "cannot create the watch database's folder"),
        ("not a url", 2, "not a database URL"),
    ]:
        if db.startswith("sqlite"):
            (tmp_path / "file").write_text("a file, not a folder")
        done = subprocess.run(
            [sys.executable, "-m", "certdoctor", "watch", "status", "--db", db],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == code, done.stderr
        assert said in done.stderr and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
