"""The break forecast in ``certdoctor watch``: computed in the pass only when needed, stored per target, listed by
``watch forecast``, alerted on (``break``) and turned into ``break-forecast`` events — on the lab's
real servers and a server of our own whose chain is swapped, against SQLite and PostgreSQL."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import jsonschemas
from certdoctor import certinfo, diagnose
from certdoctor.cli import main
from certdoctor.clients import PROFILES
from certdoctor.forecast import forecast
from certdoctor.lab import Lab
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store, forecasting, run_pass
from certdoctor.watch import alerts as watch_alerts
from certdoctor.watch import tables as watch_tables
from certdoctor.watch.runner import observe_target
from certdoctor.watch.store import utc
from pki_builder import ec_key, intermediate, leaf, root
from test_watch import NAME, lab_options, spec, store, swappable, watch_db  # noqa: F401  (fixtures)

SECOND = timedelta(seconds=1)
ALL = tuple(p.id for p in PROFILES)
OPENSSL = ("curl", "python", "node")  # OpenSSL counts the notAfter second itself as expired


def expected_instants(cert: x509.Certificate, clients: tuple[str, ...] = ALL) -> dict[str, str]:
    """Per client, the first instant it rejects once ``cert`` expires (ISO text, as stored)."""
    end = certinfo.not_after(cert)
    return {c: (end if c in OPENSSL else end + SECOND).isoformat() for c in clients}


def served(lab: Lab, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(lab.endpoints[name].chain_path.read_bytes())


def stored(db: Store) -> dict[str, Any]:
    """Target spec → its forecasts row."""
    f, tg = watch_tables.forecasts, watch_tables.targets
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(tg.c.spec, f).join(tg, tg.c.id == f.c.target_id)).all()
    return {r.spec: r for r in rows}


def forecast_json(capsys: pytest.CaptureFixture[str], db: str, *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["watch", "forecast", "--db", db, "--json", *extra]) == 0
    return jsonschemas.loads(capsys.readouterr().out)


def test_a_pass_stores_forecasts_once_and_the_cli_lists_them(
    lab: Lab,
    store: Store,  # noqa: F811
    watch_db: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["intermediate-expires-first", "expiring-soon", "good-rsa"]
    store.add([spec(lab, n) for n in names], labels={"env": "lab"})
    store.add([f"{spec(lab, 'intermediate-expires-first')},name={lab.endpoints['good-rsa'].hostname}"])  # invalid
    forecasting._MEMO.clear()  # a fresh process's state
    before = forecasting.COMPUTED[0]
    first = run_pass(store, lab_options(lab), retries=0)
    assert first.checked == 4 and forecasting.COMPUTED[0] - before == 4
    rows = stored(store)
    assert len(rows) == 4
    inter = rows[spec(lab, "intermediate-expires-first")]
    _, ca = served(lab, "intermediate-expires-first")
    assert {b["client"]: b["at"] for b in inter.breaks} == expected_instants(ca)
    assert {b["reason_id"] for b in inter.breaks} == {"intermediate-expiry"}
    assert utc(inter.first_break) == certinfo.not_after(ca)  # OpenSSL's clients first
    # the same dates as forecast() on a fresh diagnosis of the server
    ep = lab.endpoints["intermediate-expires-first"]
    d = diagnose(f"{ep.hostname}:{ep.port}", resolve=list(ep.addresses), ca_files=[str(lab.root_path)], timeout=5.0)
    assert [(b["client"], b["at"]) for b in inter.breaks] == [(b.client, b.at.isoformat()) for b in forecast(d).breaks]
    mismatch = rows[f"{spec(lab, 'intermediate-expires-first')},name={lab.endpoints['good-rsa'].hostname}"]
    assert mismatch.breaks == [] and mismatch.first_break is None  # every client rejects today: no break

    # the next pass: the same chains, forecasts younger than 24 h — none computed, none rewritten
    again = run_pass(store, lab_options(lab), everything=True, retries=0)
    assert again.checked == 4 and forecasting.COMPUTED[0] - before == 4
    assert all(obs.forecast is None for _, obs, _ in again.results)
    assert {k: r.computed_at for k, r in stored(store).items()} == {k: r.computed_at for k, r in rows.items()}
    assert sum(again.events.values()) == 0

    # 25 hours later (moved back in the table): computed again, same breaks, no event (the date did not move)
    f = watch_tables.forecasts
    with store.engine.begin() as conn:
        conn.execute(sa.update(f).values(computed_at=datetime.now(UTC) - timedelta(hours=25)))
    forecasting._MEMO.clear()
    later = run_pass(store, lab_options(lab), everything=True, retries=0)
    assert forecasting.COMPUTED[0] - before == 8 and sum(later.events.values()) == 0
    refreshed = stored(store)
    assert all(datetime.now(UTC) - utc(r.computed_at) < timedelta(minutes=5) for r in refreshed.values())
    assert refreshed[spec(lab, "intermediate-expires-first")].breaks == inter.breaks

    # watch forecast: within 40 days, the leaf of expiring-soon (10 days), then the intermediate (30 days)
    doc = forecast_json(capsys, watch_db, "--days", "40")
    got = [(e["target"], e["client"], e["break"]["at"]) for e in doc["breaks"]]
    soon_leaf = served(lab, "expiring-soon")[0]
    expected = sorted(
        [(spec(lab, "expiring-soon"), c, at) for c, at in expected_instants(soon_leaf).items()]
        + [(spec(lab, "intermediate-expires-first"), c, at) for c, at in expected_instants(ca).items()],
        key=lambda x: (x[2], x[0], ALL.index(x[1])),
    )
    assert got == expected
    assert doc["forecast_targets"] == 4 and doc["days"] == 40
    by = {(e["target"], e["client"]): e for e in doc["breaks"]}
    java = by[(spec(lab, "intermediate-expires-first"), "java")]
    assert java["name"] == "Java (JSSE)" and java["labels"] == {"env": "lab"}
    assert 29 < java["days_left"] <= 30
    assert java["break"]["certificate"]["role"] == "intermediate"
    assert java["break"]["certificate"]["subject"] == "CN=certdoctor Lab Expiring CA,O=certdoctor Lab"
    assert [e["days_left"] for e in doc["breaks"]] == sorted(e["days_left"] for e in doc["breaks"])
    # filters: one client, a label, a shorter window
    only = forecast_json(capsys, watch_db, "--days", "40", "--client", "java", "--client", "go")
    assert [(e["target"], e["client"]) for e in only["breaks"]] == [
        (spec(lab, "expiring-soon"), "java"),
        (spec(lab, "expiring-soon"), "go"),
        (spec(lab, "intermediate-expires-first"), "java"),
        (spec(lab, "intermediate-expires-first"), "go"),
    ]
    assert forecast_json(capsys, watch_db, "--days", "40", "--label", "env=prod")["breaks"] == []
    assert {e["target"] for e in forecast_json(capsys, watch_db, "--days", "20")["breaks"]} == {
        spec(lab, "expiring-soon")
    }
    # the text: one line per target, instant and reason
    assert main(["watch", "forecast", "--db", watch_db, "--days", "40"]) == 0
    text = capsys.readouterr().out
    assert "intermediate-expiry" in text and "leaf-expiry" in text and "CN=certdoctor Lab Expiring CA" in text
    assert main(["watch", "forecast", "--db", watch_db, "--days", "1"]) == 0
    assert "no break forecast within 1 days (4 targets forecast)" in capsys.readouterr().out
    assert main(["watch", "forecast", "--db", watch_db, "--days", "-1"]) == 2


def test_break_alerts_within_forecast_days(
    lab: Lab,
    store: Store,  # noqa: F811
    watch_db: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One ``break`` alert per target, naming every client that breaks then — only for a break the expiry alert
    does not already say: the 2021 class (clients that trust only the old root depend on a cross-certificate
    expiring in 40 days, while the chain's own certificates last longer). An intermediate expiring in 30 days
    is the chain's earliest notAfter: ``expiring`` covers it, and no ``break`` repeats it."""
    old = tmp_path / "old-root.pem"
    old.write_bytes(lab.pki.issuers["lab-old-root"].cert.public_bytes(serialization.Encoding.PEM))
    store.add([spec(lab, "intermediate-expires-first")], labels={"env": "lab"})
    store.add([spec(lab, "cross-expires-first")], labels={"env": "legacy"})
    options = DiagnoseOptions(ca_files=(str(lab.root_path), str(old)), timeout=3)
    inter = run_pass(store, options, targets=[store.target(spec(lab, "intermediate-expires-first"))], retries=0)
    only_old = DiagnoseOptions(ca_files=(str(old),), timeout=3)  # the legacy clients' view: the expired old root
    legacy = run_pass(store, only_old, targets=[store.target(spec(lab, "cross-expires-first"))], retries=0)
    results = [*inter.results, *legacy.results]
    now = datetime.now(UTC)
    cross = next(c for c in served(lab, "cross-expires-first") if "Old Root" in certinfo.issuer(c))
    breaking = [b for b in stored(store)[spec(lab, "cross-expires-first")].breaks]
    assert {b["client"] for b in breaking} == {"chrome", "java"}  # the others reject now (expired old root)
    assert {b["at"] for b in breaking} == {(certinfo.not_after(cross) + SECOND).isoformat()}

    watch_alerts.evaluate(store, results, at=now)
    open_ = {(a["target"], a["condition"]): a for a in watch_alerts.alerts(store)}
    # the cross-certificate's end is 40 days out: outside the default 30
    assert not {c for _, c in open_ if c == "break"}
    assert main(["watch", "policy", "--forecast-days", "45", "--db", watch_db]) == 0
    assert "forecast_days=45" in capsys.readouterr().out
    messages = watch_alerts.evaluate(store, results, at=now)
    open_ = {(a["target"], a["condition"]): a for a in watch_alerts.alerts(store)}
    assert [c for t, c in open_ if c == "break"] == ["break"]  # one alert, not one per client
    alert = open_[(spec(lab, "cross-expires-first"), "break")]
    assert alert["severity"] == "warning" and alert["detail"]["clients"] == ["chrome", "java"]
    when = datetime.fromisoformat(alert["detail"]["at"])
    assert when == certinfo.not_after(cross) + SECOND and alert["detail"]["certificate"]
    assert alert["summary"].startswith(
        f"Chrome / Edge, Java (JSSE) will reject the chain from {when:%Y-%m-%d %H:%M:%S} UTC"
    )
    assert any(a["condition"] == "break" and a["status"] == "firing" for m in messages for a in m.alerts)
    # the intermediate's end (30 days, within 45) is the chain's own: `expiring` says it (when within its
    # threshold: 33 % of the leaf's lifetime, so not yet), no `break` repeats it
    assert (spec(lab, "intermediate-expires-first"), "break") not in open_
    # an hour later nothing is sent again (the text names the instant, not the days left: not rewritten either)
    assert watch_alerts.evaluate(store, results, at=now + timedelta(hours=1)) == []
    # 35 days later the break is 5 days away: critical, in the message body
    later = watch_alerts.evaluate(store, results, at=now + timedelta(days=35))
    body = next(m for m in later if m.target["target"] == spec(lab, "cross-expires-first")).body()
    assert "threshold days: 45" in body and "critical" in body


def test_a_changed_chain_is_forecast_again_and_the_break_moves(
    store: Store,  # noqa: F811
    swappable: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    ca = root("Forecast Root")
    short = intermediate("Forecast CA short", ca, not_after=now + timedelta(days=20))
    long = intermediate("Forecast CA long", ca)
    key = ec_key("forecast-leaf")
    first = leaf(NAME, short, key=key, not_before=now - timedelta(days=1), not_after=now + timedelta(days=80))
    renewed = leaf(NAME, long, key=key, not_before=now - timedelta(hours=1), not_after=now + timedelta(days=90))
    (tmp_path / "root.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    options = DiagnoseOptions(ca_files=(str(tmp_path / "root.pem"),), timeout=3, revocation=False)
    target = f"{NAME}:{swappable.server.port},addr=127.0.0.1"
    store.add([target])

    def check() -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        result = run_pass(store, options, everything=True, retries=0)
        watch_alerts.evaluate(store, result.results)
        return result.results[0][1], result.results[0][2]

    swappable.serve(first, [short])
    obs, events = check()
    assert obs.forecast is not None and obs.forecast.first_break == certinfo.not_after(short.cert)
    assert [k for k, _ in events] == ["first-seen"]
    # the intermediate is the chain's earliest notAfter: `expiring` says it, no `break` repeats it
    assert {a["condition"] for a in watch_alerts.alerts(store)} == {"expiring"}
    obs, events = check()
    assert obs.forecast is None and events == []  # the same chain: not computed again

    swappable.serve(renewed, [long])  # a new intermediate: the break moves to the leaf's end, 90 days out
    obs, events = check()
    assert obs.forecast is not None and obs.forecast.first_break == certinfo.not_after(renewed.cert)
    moved = dict(events)["break-forecast"]
    assert moved == {
        "old_first_break": certinfo.not_after(short.cert).isoformat(),
        "new_first_break": certinfo.not_after(renewed.cert).isoformat(),
        "change": "later",
        "days": pytest.approx(70, abs=0.1),
        "clients": list(OPENSSL),
        "reason_id": "leaf-expiry",
        "reason": moved["reason"],
        "certificate": f"CN={NAME}",
    }
    assert [k for k, _ in events] == ["certificate-rotated", "break-forecast"]
    assert watch_alerts.alerts(store) == []  # expiring resolved
    stored_row = stored(store)[target]
    assert {b["reason_id"] for b in stored_row.breaks} == {"leaf-expiry"}

    swappable.serve(first, [short])  # the old chain back: the break comes nearer again
    _, events = check()
    assert dict(events)["break-forecast"]["change"] == "earlier"
    from certdoctor.cli.watch import _detail_text

    text = _detail_text("break-forecast", dict(events)["break-forecast"])
    assert text == (
        f"{certinfo.not_after(renewed.cert):%Y-%m-%dT%H:%M:%S} → {certinfo.not_after(short.cert):%Y-%m-%dT%H:%M:%S}"
        " (earlier: intermediate-expiry, curl, python, node)"
    )
    jsonschemas.validate(
        {"certdoctor": 1, "kind": "watch-events", "since": now.isoformat(), "events": store.events(now)}
    )


def test_cross_signature_breaks_only_the_clients_that_use_it(
    lab: Lab,
    store: Store,  # noqa: F811
    watch_db: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The lab's cross-certificate (by an expired old root) expires in 40 days: with only the old root, Chrome
    and Java accept today and break then; the others reject today (no break)."""
    old = tmp_path / "old-root.pem"
    old.write_bytes(lab.pki.issuers["lab-old-root"].cert.public_bytes(serialization.Encoding.PEM))
    store.add([spec(lab, "cross-expires-first")])
    run_pass(store, DiagnoseOptions(ca_files=(str(old),), timeout=3), retries=0)
    doc = forecast_json(capsys, watch_db, "--days", "45")
    cross = served(lab, "cross-expires-first")[2]
    assert {e["client"]: e["break"]["at"] for e in doc["breaks"]} == expected_instants(cross, ("chrome", "java"))
    assert {e["break"]["certificate"]["sha256"] for e in doc["breaks"]} == {certinfo.fingerprint(cross)}


def test_helpers_get_the_stored_forecasts(lab: Lab, store: Store) -> None:  # noqa: F811
    """Forked helpers diagnose and forecast; what they need (the stored keys) travels in a partial that
    pickles (helpers started with "spawn" unpickle it)."""
    base = spec(lab, "intermediate-expires-first")
    host, rest = base.split(",", 1)
    many = [f"https://{host}/p{i},{rest}" for i in range(8)]
    store.add(many)
    run_pass(store, lab_options(lab), retries=0, workers=2)
    rows = stored(store)
    assert len(rows) == 8 and len({tuple(b["at"] for b in r.breaks) for r in rows.values()}) == 1
    known = forecasting.known(store, datetime.now(UTC))
    assert pickle.loads(pickle.dumps(forecasting_partial(known))).keywords["known"] == known
    again = run_pass(store, lab_options(lab), everything=True, retries=0, workers=2)
    assert all(obs.forecast is None for _, obs, _ in again.results)


def forecasting_partial(known: Any) -> Any:
    import functools

    return functools.partial(observe_target, known=known)


def test_forecasts_over_the_cpu_budget_wait_for_a_later_pass(
    lab: Lab,
    store: Store,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.add([spec(lab, "good-ecdsa"), spec(lab, "intermediate-expires-first")])
    forecasting._MEMO.clear()
    monkeypatch.setattr(forecasting, "FREE_CPU_S", -1.0)  # spent already
    monkeypatch.setattr(forecasting, "BUDGET_SHARE", 0.0)
    starved = run_pass(store, lab_options(lab), retries=0)
    assert starved.checked == 2 and all(obs.forecast is None for _, obs, _ in starved.results)
    assert stored(store) == {}
    monkeypatch.setattr(forecasting, "FREE_CPU_S", 2.0)  # budget again: the next pass makes them
    fed = run_pass(store, lab_options(lab), everything=True, retries=0)
    assert all(obs.forecast is not None for _, obs, _ in fed.results) and len(stored(store)) == 2


def test_serve_keeps_the_forecasts_too(lab: Lab, store: Store) -> None:  # noqa: F811
    """The daemon (in this process, one check) stores a forecast as a pass does, and not again while it holds."""
    import asyncio

    from certdoctor.watch.daemon import Daemon, ServeConfig

    store.add([spec(lab, "intermediate-expires-first")])

    def one_check() -> None:
        daemon = Daemon(store, lab_options(lab), ServeConfig(poll=0.2, retries=0))

        async def once() -> None:
            task = asyncio.ensure_future(daemon.schedule())
            while daemon.state.checks < 1 and not task.done():
                await asyncio.sleep(0.05)
            daemon.stop()
            await task

        asyncio.run(once())

    one_check()
    (row,) = stored(store).values()
    _, ca = served(lab, "intermediate-expires-first")
    assert {b["client"]: b["at"] for b in row.breaks} == expected_instants(ca)
    with store.engine.begin() as conn:  # due again now
        conn.execute(sa.update(watch_tables.targets).values(next_due=datetime.now(UTC) - SECOND))
    one_check()
    assert stored(store)[spec(lab, "intermediate-expires-first")].computed_at == row.computed_at
    assert store.counts()["observations"] == 2
