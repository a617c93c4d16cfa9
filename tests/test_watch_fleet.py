"""The fleet index behind the watch dashboard (``certdoctor.watch.fleet``): rows, statuses, filters, sorting,
paging, incremental refresh, CSV, the calendar and the histograms — over a store filled by real ``watch run``
passes over lab scenarios, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import jsonschemas
from certdoctor.errors import InputError
from certdoctor.lab import Lab
from certdoctor.watch import Store, fleet, forecast_rows, run_pass
from certdoctor.watch import tables as watch_tables
from certdoctor.watch.fleet import (
    CSV_COLUMNS,
    HISTOGRAM_BINS,
    SORT_KEYS,
    STATUS_TEXT,
    FleetIndex,
    FleetQuery,
    FleetRow,
    calendar,
    cert_facts,
    csv_lines,
)
from certdoctor.watch.forecast_rows import ForecastRow
from netutil import free_port
from test_watch import ALERT_TABLES, BASE_TABLES, DEPLOYED_TABLES, lab_options, spec, store, watch_db  # noqa: F401

# scenario → labels; "refused" (nothing listens) and "never" (added after the pass) are not lab scenarios
LABELS = {
    "good-rsa": {"env": "prod", "team": "web"},
    "good-ecdsa": {"env": "prod", "team": "api"},
    "expired": {"env": "dev", "team": "web"},
    "expiring-soon": {"env": "prod", "team": "api"},
    "wrong-host": {"env": "dev"},
    "ed25519": {"env": "dev"},
    "refused": {"env": "prod"},
    "never": {"env": "dev"},
}
RSA_CA = "CN=certdoctor Lab RSA CA,O=certdoctor Lab"
ECDSA_CA = "CN=certdoctor Lab ECDSA CA,O=certdoctor Lab"


@dataclass
class Filled:
    store: Store
    index: FleetIndex
    ids: dict[str, int]  # name → target id
    at: datetime

    def names(self, rows: list[FleetRow] | tuple[FleetRow, ...]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[r.id] for r in rows]

    def match(self, **query: object) -> set[str]:
        return set(self.names(self.index.rows(FleetQuery(**query), self.at)))  # type: ignore[arg-type]


def _empty_postgres(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in (*DEPLOYED_TABLES, *ALERT_TABLES, *BASE_TABLES, "alembic_version"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    engine.dispose()
    return url


def _fill(db: Store, lab: Lab) -> dict[str, int]:
    specs = {n: spec(lab, n) for n in LABELS if n not in ("refused", "never")}
    specs["refused"] = f"refused.test:{free_port()},addr=127.0.0.1"
    for name, target in specs.items():
        db.add([target], labels=LABELS[name])
    run_pass(db, lab_options(lab), retries=0)
    specs["never"] = f"never.certdoctor.test:{free_port()},addr=127.0.0.1"
    db.add([specs["never"]], labels=LABELS["never"])
    return {name: db.target(target).id for name, target in specs.items()}  # type: ignore[union-attr]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request: pytest.FixtureRequest, lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    """One pass over the lab targets of :data:`LABELS`, then a target never checked; read-only for the tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fleet') / 'watch.db'}"
    else:
        try:
            url = _empty_postgres(request.getfixturevalue("postgres_url"))
        except pytest.FixtureLookupError:
            pytest.skip("no postgres_url fixture (a PostgreSQL cluster) in this test suite")
    with Store(url) as db:
        ids = _fill(db, lab)
        index = FleetIndex(db, max_age_s=3600)
        yield Filled(db, index, ids, datetime.now(UTC))


# --- rows and statuses -------------------------------------------------------------------------------------------


def test_rows_and_statuses(filled: Filled) -> None:
    index, ids = filled.index, filled.ids
    row = {name: index.row(tid, filled.at) for name, tid in ids.items()}
    assert all(r is not None for r in row.values())
    expired = row["expired"]
    assert expired is not None
    assert (expired.status, expired.verdict, expired.first_error) == ("broken", "invalid", "expired")
    assert expired.days_left == pytest.approx(-30, abs=0.5) and "chrome" in expired.rejected_by
    assert expired.issuer == RSA_CA and expired.key_type == "RSA 2048" and expired.labels == LABELS["expired"]
    assert expired.subject == "CN=expired.certdoctor.test" and expired.sans == ("expired.certdoctor.test",)
    assert expired.addresses == ("127.0.0.1",) and expired.findings == ("expired",)
    assert expired.leaf_sha256 and expired.checked_at is not None and expired.error is None

    good = row["good-rsa"]
    assert good is not None
    assert (good.status, good.verdict, good.first_error, good.rejected_by) == ("ok", "valid", None, ())
    assert good.days_left == pytest.approx(89, abs=1) and good.not_after == good.chain_not_after
    assert good.host == "good-rsa.certdoctor.test" and good.port == filled.store.target(ids["good-rsa"]).port  # type: ignore[union-attr]
    assert "chrome" in good.clients and set(good.clients) == set(good.families)

    ecdsa = row["good-ecdsa"]
    assert ecdsa is not None
    assert (ecdsa.status, ecdsa.key_type, ecdsa.issuer) == ("ok", "EC P-256", ECDSA_CA)
    soon = row["expiring-soon"]
    assert soon is not None
    assert (soon.status, soon.verdict, soon.findings) == ("expiring", "valid", ("expiring-soon",))
    assert soon.days_left == pytest.approx(9, abs=1)
    wrong = row["wrong-host"]
    assert wrong is not None
    assert (wrong.status, wrong.first_error) == ("broken", "hostname-mismatch")
    assert wrong.sans == ("other-host.certdoctor.test",)
    ed = row["ed25519"]
    assert ed is not None and ed.key_type == "Ed25519" and ed.verdict is not None
    refused = row["refused"]
    assert refused is not None
    assert (refused.status, refused.verdict) == ("unreachable", "unreachable")
    assert refused.subject is None and refused.days_left is None
    assert refused.error and "refused" in refused.error and refused.addresses == ("127.0.0.1",)
    never = row["never"]
    assert never is not None
    assert (never.status, never.verdict, never.checked_at, never.findings) == ("unchecked", None, None, ())
    assert STATUS_TEXT[never.status] == "never checked" and never.to_dict()["status_text"] == "never checked"

    d = expired.to_dict()
    assert d["not_after"] == expired.not_after.isoformat() and d["labels"] == LABELS["expired"]  # type: ignore[union-attr]
    assert d["addresses"] == ["127.0.0.1"] and d["status"] == "broken" and d["checked_at"].endswith("+00:00")
    assert index.row(10**6) is None


def test_summary_and_facets(filled: Filled) -> None:
    page = filled.index.query(FleetQuery(status=frozenset({"ok"})), filled.at)
    broken = {n for n in filled.ids if filled.index.row(filled.ids[n], filled.at).status == "broken"}  # type: ignore[union-attr]
    assert {"expired", "wrong-host"} <= broken
    summary = dict(page.summary)
    assert summary["total"] == len(LABELS) and summary["broken"] == len(broken)
    assert (summary["unreachable"], summary["unchecked"], summary["expiring"]) == (1, 1, 1)
    assert summary["ok"] == len(LABELS) - 3 - len(broken)
    assert (summary["expires_7d"], summary["expires_30d"]) == (0, 1)  # expiring-soon: 9 days
    assert page.total == summary["ok"]  # the summary is of the whole fleet, the total of the filter
    assert {RSA_CA, ECDSA_CA} <= set(page.facets["issuers"])
    assert {"RSA 2048", "EC P-256", "Ed25519"} <= set(page.facets["key_types"])
    assert set(page.facets["labels"]) == {f"{k}={v}" for labels in LABELS.values() for k, v in labels.items()}
    assert {"chrome", "firefox", "curl"} <= set(page.facets["clients"])
    assert page.refreshed_at is not None


# --- filters --------------------------------------------------------------------------------------------------------


def test_filters(filled: Filled) -> None:
    m = filled.match
    broken = m(status=frozenset({"broken"}))
    assert {"expired", "wrong-host"} <= broken <= {"expired", "wrong-host", "ed25519"}
    assert m(status=frozenset({"unreachable", "unchecked"})) == {"refused", "never"}
    assert m(status=frozenset({"expiring"})) == {"expiring-soon"}
    assert m(labels={"env": "prod"}) == {"good-rsa", "good-ecdsa", "expiring-soon", "refused"}
    assert m(labels={"env": "prod", "team": "api"}) == {"good-ecdsa", "expiring-soon"}
    assert m(labels={"env": "nowhere"}) == set()
    assert m(issuer="lab ecdsa") == {"good-ecdsa"}  # case-insensitive substring
    assert m(issuer="LAB RSA CA") == {"good-rsa", "expired", "expiring-soon", "wrong-host"}
    assert m(key_type="EC P-256") == {"good-ecdsa"} and m(key_type="Ed25519") == {"ed25519"}
    assert m(key_type="ec p-256") == set()  # exact
    assert m(days_max=15) == {"expiring-soon", "expired"}
    assert m(days_min=0, days_max=15) == {"expiring-soon"}
    assert m(days_min=-40, days_max=-20) == {"expired"}
    assert m(days_min=60) == {"good-rsa", "good-ecdsa", "wrong-host", "ed25519"}  # whatever their status
    assert m(text="OTHER-HOST") == {"wrong-host"}  # a SAN only
    assert m(text="ecdsa ca") == {"good-ecdsa"}  # the issuer
    assert m(text="api") == {"good-ecdsa", "expiring-soon"}  # a label value
    assert m(text="refused.test") == {"refused"}  # the target
    assert m(text="127.0.0.1") == set(LABELS)  # the addresses (in every spec here too)
    rejecting = {n for n in filled.ids if "chrome" in filled.index.row(filled.ids[n]).rejected_by}  # type: ignore[union-attr]
    assert {"expired", "wrong-host"} <= rejecting
    assert m(client="chrome") == rejecting
    assert m(client="no-such-client") == set()
    assert m(status=frozenset({"broken"}), labels={"team": "web"}, issuer="rsa", text="expired") == {"expired"}


# --- sorting and paging ---------------------------------------------------------------------------------------------


def _value(row: FleetRow, key: str) -> object:
    return {
        "target": row.target,
        "subject": None if row.subject is None else row.subject.lower(),
        "issuer": None if row.issuer is None else row.issuer.lower(),
        "key_type": row.key_type,
        "not_after": row.not_after,
        "days_left": row.days_left,
        "rejected_by": None if row.verdict is None else (len(row.rejected_by), ",".join(sorted(row.rejected_by))),
        "checked_at": row.checked_at,
        "status": ["unreachable", "broken", "expiring", "ok", "unchecked"].index(row.status),
    }[key]


@pytest.mark.parametrize("key", SORT_KEYS)
def test_sorting(filled: Filled, key: str) -> None:
    for descending in (False, True):
        rows = filled.index.rows(FleetQuery(sort=key, descending=descending), filled.at)
        assert len(rows) == len(LABELS)
        if key == "urgency":
            continue
        values = [_value(r, key) for r in rows]
        present = [v for v in values if v is not None]
        assert values[: len(present)] == present, "rows without a value come last"
        assert present == sorted(present, reverse=descending)  # type: ignore[type-var]
    up = filled.names(filled.index.rows(FleetQuery(sort=key), filled.at))
    down = filled.names(filled.index.rows(FleetQuery(sort=key, descending=True), filled.at))
    if key == "target":
        assert down == up[::-1]
    if key == "days_left":
        assert up[:2] == ["expired", "expiring-soon"] and up[-2:] in (["refused", "never"], ["never", "refused"])
        assert down[0] != "expired" and down[-3] == "expired"


def test_urgency_order(filled: Filled) -> None:
    order = filled.names(filled.index.rows(FleetQuery(), filled.at))
    broken = [n for n in order if filled.index.row(filled.ids[n]).status == "broken"]  # type: ignore[union-attr]
    # unreachable, broken (the soonest expiry first: expired 30 days ago), breaks soon, ok, never checked
    assert order[0] == "refused" and order[1] == "expired" and broken[0] == "expired"
    assert order[1 : 1 + len(broken)] == broken
    assert order[1 + len(broken)] == "expiring-soon" and order[-1] == "never"
    down = filled.names(filled.index.rows(FleetQuery(descending=True), filled.at))
    assert down[0] == "never" and down[-2:] == ["expired", "refused"] and down[1 : 1 + len(broken)] != broken


def test_paging(filled: Filled) -> None:
    index = filled.index
    pages = [index.query(FleetQuery(per_page=3, page=p), filled.at) for p in (1, 2, 3)]
    assert [(p.total, p.pages, p.page, len(p.rows)) for p in pages] == [(8, 3, 1, 3), (8, 3, 2, 3), (8, 3, 3, 2)]
    assert [r.id for p in pages for r in p.rows] == [r.id for r in index.rows(FleetQuery(), filled.at)]
    past = index.query(FleetQuery(per_page=3, page=99), filled.at)
    assert (past.page, [r.id for r in past.rows]) == (3, [r.id for r in pages[2].rows])  # the last page
    none = index.query(FleetQuery(labels={"env": "nowhere"}), filled.at)
    assert (none.total, none.pages, none.page, none.rows) == (0, 1, 1, ())
    one = index.query(FleetQuery(per_page=1, page=2, sort="target"), filled.at)
    assert one.pages == 8 and one.rows[0].id == index.rows(FleetQuery(sort="target"), filled.at)[1].id


# --- histograms and the calendar ----------------------------------------------------------------------------------


def test_histograms(filled: Filled) -> None:
    bins = dict(filled.index.days_left_histogram(filled.at))
    assert list(bins) == list(HISTOGRAM_BINS)
    assert bins["expired"] >= 1 and bins["<7"] == 0 and bins["7-30"] == 1 and bins["unknown"] == 2
    assert sum(bins.values()) == len(LABELS)
    web = dict(filled.index.days_left_histogram(filled.at, FleetQuery(labels={"team": "web"})))
    assert web["expired"] == 1 and web["30-90"] == 1 and sum(web.values()) == 2

    weeks = filled.index.expiries_per_week(13, filled.at)
    assert len(weeks) == 13 and weeks[0][0].weekday() == 0 and weeks[0][0] <= filled.at.date()
    assert all(b[0] - a[0] == timedelta(days=7) for a, b in itertools.pairwise(weeks))
    soon = filled.index.row(filled.ids["expiring-soon"]).chain_not_after  # type: ignore[union-attr]
    slot = (soon.date() - weeks[0][0]).days // 7  # type: ignore[union-attr]
    assert weeks[slot][1] >= 1
    api = filled.index.expiries_per_week(14, filled.at, FleetQuery(labels={"team": "api"}))
    assert sum(n for _, n in api) == 2  # expiring-soon (9 days) and good-ecdsa (89 days)
    assert dict(api)[weeks[slot][0]] == 1
    with pytest.raises(InputError):
        filled.index.expiries_per_week(0)


def test_calendar(filled: Filled) -> None:
    items = calendar(filled.store, filled.index, days=90, at=filled.at)
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    expiries = {(i["target_id"], i["kind"]): i for i in items if i["kind"] == "expiry"}
    soon = expiries[(filled.ids["expiring-soon"], "expiry")]
    row = filled.index.row(filled.ids["expiring-soon"])
    assert row is not None and soon["at"] == row.not_after.isoformat()  # type: ignore[union-attr]
    assert soon["date"] == soon["at"][:10] and soon["labels"] == LABELS["expiring-soon"]
    assert soon["subject"] == "CN=expiring-soon.certdoctor.test" and "chrome" in soon["clients"]
    assert soon["reason"] == "the leaf certificate expires"
    assert (filled.ids["expired"], "expiry") not in expiries  # already past
    api = calendar(filled.store, filled.index, days=30, labels={"team": "api"}, at=filled.at)
    assert {i["target_id"] for i in api} == {filled.ids["expiring-soon"]}
    assert all(i["kind"] in ("expiry", "break") for i in items)
    for item in items:
        assert set(item) == {"at", "date", "kind", "target_id", "target", "labels", "clients", "reason", "subject"}
    with pytest.raises(InputError):
        calendar(filled.store, filled.index, days=0)


# --- incremental refresh ------------------------------------------------------------------------------------------


def test_read_in_bulk_and_in_chunks_alike(filled: Filled, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first build reads through the targets table (bulk); with one id per IN list, the same rows."""
    monkeypatch.setattr(fleet, "CHUNK", 1)
    bulk = FleetIndex(filled.store)
    assert [r.to_dict() for r in bulk.rows(FleetQuery(), filled.at)] == [
        r.to_dict() for r in filled.index.rows(FleetQuery(), filled.at)
    ]
    assert bulk.reads == len(LABELS) - 1
    chunked = FleetIndex(filled.store)
    monkeypatch.setattr(fleet, "CHUNK", 10**6)  # no bulk read: every id in one IN list
    assert [r.to_dict() for r in chunked.rows(FleetQuery(), filled.at)] == [
        r.to_dict() for r in filled.index.rows(FleetQuery(), filled.at)
    ]


def test_incremental_refresh(lab: Lab, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(fleet, "CHUNK", 1)  # many IN lists of one id
    store.add([spec(lab, "good-rsa"), spec(lab, "expired")], labels={"env": "lab"})
    run_pass(store, lab_options(lab), retries=0)
    index = FleetIndex(store, max_age_s=3600)
    first = index.query(FleetQuery())
    assert first.total == 2 and index.reads == 2
    index.refresh()
    assert index.reads == 2  # nothing changed: nothing read again

    store.add([spec(lab, "good-ecdsa")], labels={"env": "new"})
    assert index.query(FleetQuery()).total == 2  # max_age_s: not refreshed yet
    index.refresh()
    ecdsa = store.target(spec(lab, "good-ecdsa"))
    assert ecdsa is not None and index.row(ecdsa.id).status == "unchecked"  # type: ignore[union-attr]
    assert run_pass(store, lab_options(lab), retries=0).checked == 1  # only the new one is due
    index.refresh()
    assert index.reads == 3 and index.row(ecdsa.id).status == "ok"  # type: ignore[union-attr]
    assert index.row(ecdsa.id).key_type == "EC P-256"  # type: ignore[union-attr]

    good = store.target(spec(lab, "good-rsa"))
    assert good is not None
    before = index.row(good.id)
    run_pass(store, lab_options(lab), retries=0, everything=True)
    index.refresh()
    after = index.row(good.id)
    assert index.reads == 6 and after.checked_at > before.checked_at  # type: ignore[union-attr,operator]

    store.add([spec(lab, "good-rsa")], labels={"team": "web"})  # labels only: no observation read
    index.refresh()
    assert index.reads == 6 and index.row(good.id).labels == {"env": "lab", "team": "web"}  # type: ignore[union-attr]
    assert [r.id for r in index.rows(FleetQuery(text="team"))] == [good.id]

    expired = store.target(spec(lab, "expired"))
    assert expired is not None
    store.remove([expired.id])
    index.refresh()
    assert index.row(expired.id) is None and index.query(FleetQuery()).summary["total"] == 2
    assert index.query(FleetQuery(status=frozenset({"broken"}))).total == 0


def test_an_unparsable_certificate_gives_empty_fields(lab: Lab, store: Store) -> None:  # noqa: F811
    store.add([spec(lab, "good-rsa")])
    run_pass(store, lab_options(lab), retries=0)
    c = watch_tables.certificates
    with store.engine.begin() as conn:
        conn.execute(sa.update(c).values(der=b"\x30\x03\x02\x01\x00"))  # not a certificate
    index = FleetIndex(store)
    (row,) = index.rows(FleetQuery())
    assert (row.subject, row.issuer, row.sans, row.key_type) == (None, None, (), None)
    assert row.status == "ok" and row.not_after is not None  # the stored observation still counts
    assert cert_facts(b"") == cert_facts(b"garbage") == cert_facts(None)


def test_concurrent_queries_and_refreshes(lab: Lab, store: Store) -> None:  # noqa: F811
    store.add([spec(lab, "good-rsa"), spec(lab, "expired")])
    run_pass(store, lab_options(lab), retries=0)
    index = FleetIndex(store, max_age_s=0)  # every query refreshes
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert index.query(FleetQuery(sort="days_left")).total == 2
                index.refresh()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and index.reads == 2


# --- query parameters and CSV -------------------------------------------------------------------------------------


def test_from_params_and_to_params() -> None:
    from starlette.datastructures import QueryParams

    params = QueryParams(
        "status=broken&status=expiring&label=env%3Dprod&label=team%3Dapi&issuer=Lab&key_type=EC+P-256&client=chrome"
        "&days_min=-5&days_max=30.5&q=pay&sort=issuer&order=desc&page=3&per_page=100&unknown=1"
    )
    q = FleetQuery.from_params(params)
    assert q == FleetQuery(
        status=frozenset({"broken", "expiring"}),
        labels={"env": "prod", "team": "api"},
        issuer="Lab",
        key_type="EC P-256",
        client="chrome",
        days_min=-5.0,
        days_max=30.5,
        text="pay",
        sort="issuer",
        descending=True,
        page=3,
        per_page=100,
    )
    assert FleetQuery.from_params(QueryParams(str(QueryParams(q.to_params())))) == q
    assert q.to_params(page=1, sort="urgency", descending=False)[:2] == [("status", "broken"), ("status", "expiring")]
    assert ("page", "1") not in q.to_params(page=1) and ("page", "4") in q.to_params(page=4)
    assert FleetQuery().to_params() == []
    assert FleetQuery.from_params({"status": ["ok"], "q": "", "page": "", "days_max": "7"}) == FleetQuery(
        status=frozenset({"ok"}), days_max=7.0
    )  # empty form fields are no filter
    assert FleetQuery(days_max=7.0).to_params() == [("days_max", "7")]
    for bad, message in [
        ({"sort": "colour"}, "sort: not one of"),
        ({"page": "0"}, "page: must be at least 1"),
        ({"page": "two"}, "page: not a positive integer"),
        ({"page": "-1"}, "page: not a positive integer"),
        ({"per_page": "501"}, "per_page: must be 1..500"),
        ({"per_page": "0"}, "per_page: must be 1..500"),
        ({"status": "fine"}, "status: not one of"),
        ({"order": "up"}, "order: not asc or desc"),
        ({"label": "novalue"}, "label: not key=value"),
        ({"days_min": "soon"}, "days_min: not a number"),
        ({"days_max": "nan"}, "days_max: not a finite number"),
        ({"days_min": "9", "days_max": "1"}, "days_min (9) is above days_max (1)"),
    ]:
        with pytest.raises(InputError, match="^" + message.replace("(", r"\(").replace(")", r"\)")) as caught:
            FleetQuery.from_params(bad)
        assert "\n" not in str(caught.value)
    with pytest.raises(InputError):
        q.to_params(sort="nope")


def _row(**changes: object) -> FleetRow:
    base = {
        "id": 7,
        "target": "pay.example.com:443",
        "host": "pay.example.com",
        "port": 443,
        "addresses": ("192.0.2.1", "192.0.2.2"),
        "labels": {"team": "pay"},
        "status": "broken",
        "verdict": "invalid",
        "subject": "CN=pay.example.com",
        "sans": ("pay.example.com",),
        "issuer": "CN=Example CA,O=Example",
        "key_type": "RSA 2048",
        "not_after": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "chain_not_after": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "days_left": -3.14159,
        "rejected_by": ("chrome", "curl"),
        "first_error": "expired",
        "findings": ("expired",),
        "checked_at": datetime(2026, 1, 5, tzinfo=UTC),
        "error": None,
        "first_break": None,
    }
    base.update(changes)
    return FleetRow(**base)  # type: ignore[arg-type]


def test_csv_lines_quote_and_defuse_formulas() -> None:
    rows = [
        _row(),
        _row(
            id=8,
            subject="=cmd()",
            issuer="+SUM(1)",
            labels={"note": "@here", "a": "b,c"},
            target='x.example:443,name="q"',
            error="\tTAB",
            first_error="-1",
        ),
    ]
    lines = list(csv_lines(rows))
    assert len(lines) == 3 and all(line.endswith("\r\n") for line in lines)
    parsed = list(csv.reader(io.StringIO("".join(lines))))
    assert parsed[0] == list(CSV_COLUMNS)
    first = dict(zip(CSV_COLUMNS, parsed[1], strict=True))
    assert first["addresses"] == "192.0.2.1 192.0.2.2" and first["rejected_by"] == "chrome curl"
    assert first["days_left"] == "-3.14" and first["not_after"] == "2026-01-02T03:04:05+00:00"  # a number: as is
    assert first["issuer"] == "CN=Example CA,O=Example" and first["error"] == "" and first["labels"] == "team=pay"
    assert '"CN=Example CA,O=Example"' in lines[1]  # a comma: quoted
    second = dict(zip(CSV_COLUMNS, parsed[2], strict=True))
    assert second["subject"] == "'=cmd()" and second["issuer"] == "'+SUM(1)" and second["error"] == "'\tTAB"
    assert second["first_error"] == "'-1" and second["labels"] == "a=b,c note=@here"
    assert second["target"] == 'x.example:443,name="q"' and '"x.example:443,name=""q"""' in lines[2]


def test_days_left_is_relative_to_at(filled: Filled) -> None:
    later = filled.at + timedelta(days=20)
    row = filled.index.row(filled.ids["expiring-soon"], later)
    assert row is not None and row.status == "broken" and row.days_left == pytest.approx(-11, abs=1)
    good = filled.index.row(filled.ids["good-rsa"], filled.at + timedelta(days=70))
    assert good is not None and good.status == "expiring"
    assert math.isclose(
        filled.index.row(filled.ids["good-rsa"], filled.at).days_left - good.days_left,  # type: ignore[union-attr,operator]
        70,
        abs_tol=1e-6,
    )
    assert isinstance(filled.index.expiries_per_week(1, later)[0][0], date)


# --- GET /api/fleet -------------------------------------------------------------------------------------------------


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread: its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def get(url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, jsonschemas.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, jsonschemas.loads(exc.read())


def test_api_fleet(filled: Filled) -> None:
    from certdoctor.watch.httpapi import make_app

    broken = filled.match(status=frozenset({"broken"}))
    with serving(make_app(filled.store, fleet_index=filled.index)) as base:
        code, doc = get(f"{base}/api/fleet?status=broken&sort=target&order=desc&per_page=1&page=2")
        assert code == 200 and doc["kind"] == "watch-fleet"
        assert (doc["total"], doc["page"], doc["per_page"], doc["pages"]) == (len(broken), 2, 1, len(broken))
        expected = filled.index.rows(FleetQuery(status=frozenset({"broken"}), sort="target", descending=True))
        assert [r["id"] for r in doc["rows"]] == [expected[1].id]
        assert doc["query"]["status"] == ["broken"] and doc["query"]["order"] == "desc"
        assert doc["summary"]["total"] == len(LABELS) and doc["summary"]["broken"] == len(broken)
        code, doc = get(f"{base}/api/fleet?label=team%3Dweb&q=expired")
        (row,) = doc["rows"]
        assert row["id"] == filled.ids["expired"] and row["status"] == "broken" and row["first_error"] == "expired"
        assert row["labels"] == LABELS["expired"] and row["not_after"].endswith("+00:00")
        code, doc = get(f"{base}/api/fleet?sort=colour")
        assert code == 400 and doc["kind"] == "watch-api-error" and doc["error"].startswith("sort: not one of")
        assert get(f"{base}/api/fleet?page=0")[0] == 400
    with serving(make_app(filled.store, token="s3cret")) as base:  # an index of its own, made at first use
        assert get(f"{base}/api/fleet")[0] == 401
        code, doc = get(f"{base}/api/fleet?per_page=500", token="s3cret")
        assert code == 200 and doc["total"] == len(LABELS) and len(doc["rows"]) == len(LABELS)


def test_calendar_groups_a_targets_breaks_and_leaves_out_its_expiry(lab: Lab, store: Store) -> None:  # noqa: F811
    """Breaks of one target within a second of each other are one item (with every client); a break at the
    chain's own expiry is that expiry's item, not a second one."""
    store.add([spec(lab, "good-rsa")], labels={"env": "lab"})
    run_pass(store, lab_options(lab), retries=0)
    index = FleetIndex(store)
    at = datetime.now(UTC)
    (row,) = index.rows(FleetQuery(), at)
    assert row.not_after is not None
    cross = (at + timedelta(days=20)).replace(microsecond=0)
    cert = {"subject": "CN=Cross", "role": "intermediate"}

    def brk(client: str, when: datetime) -> dict[str, object]:
        return {
            "client": client,
            "name": client.title(),
            "at": when.isoformat(),
            "reason_id": "intermediate-expiry",
            "reason": "the cross-certificate expires",
            "certificate": cert,
        }

    breaks = (
        brk("curl", cross),
        brk("chrome", cross + timedelta(seconds=1)),
        brk("java", cross + timedelta(seconds=1)),
        brk("curl", row.not_after),
        brk("firefox", row.not_after + timedelta(seconds=1)),
    )
    forecast = ForecastRow("k" * 64, at, at + timedelta(days=400), cross, breaks)
    with store.engine.begin() as conn:
        forecast_rows.upsert(conn, {row.id: forecast})
    items = calendar(store, index, days=120, at=at)
    assert [(i["kind"], i["at"], i["clients"]) for i in items] == [
        ("break", cross.isoformat(), ["curl", "chrome", "java"]),
        ("expiry", row.not_after.isoformat(), list(row.clients)),
    ]
    assert items[0]["reason"] == "the cross-certificate expires" and items[0]["subject"] == "CN=Cross"
    assert items[0]["labels"] == {"env": "lab"} and items[0]["date"] == cross.date().isoformat()
    assert calendar(store, index, days=10, at=at) == []
    assert [i["kind"] for i in calendar(store, index, days=30, at=at)] == ["break"]
