"""The dashboard of ``certdoctor watch serve`` (certdoctor.web) over HTTP: a real daemon (a subprocess on a free
loopback port) watching lab scenarios, read with httpx — the fleet page and its filters, the CSV export, a
target page and its diagnosis fragment (finding, fix, each client's error text), the security headers, login,
CSRF and the read-only mode, and a hostile certificate subject shown as text."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from certdoctor.lab import Lab
from certdoctor.watch import Store
from netutil import free_port
from test_watch import spec
from test_watch_serve import PATIENCE, _argv, _env, wait_for

TOKEN = "web-test-token"
SCENARIOS = ["good-rsa", "expired", "expiring-soon", "incomplete-aia", "evil-fields", "multi-address", "garbage"]
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)


class Dashboard:
    """A running ``watch serve`` and its base URL."""

    def __init__(self, proc: subprocess.Popen[str], port: int, token: str | None) -> None:
        self.proc = proc
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def client(self) -> httpx.Client:
        """A fresh browser-like client (its own cookie jar), not following redirects."""
        return httpx.Client(base_url=self.base, timeout=PATIENCE, follow_redirects=False)

    def api(self, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.get(self.base + path, headers=headers, timeout=PATIENCE)

    @contextlib.contextmanager
    def logged_in(self) -> Iterator[httpx.Client]:
        """A client with the login cookie (POST /login with the token)."""
        with self.client() as c:
            answer = c.post("/login", data={"token": self.token, "next": "/"})
            assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
            yield c

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


def _start(lab: Lab, db: str, token: str | None) -> Dashboard:
    port = free_port()
    argv = _argv(db, port, "--ca-file", str(lab.root_path), "--timeout", "3", "--retries", "0", "--alert-every", "1s")
    env = _env(CERTDOCTOR_TOKEN=token) if token else _env()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = Dashboard(proc, port, token)

    def healthy() -> bool:
        try:
            return served.api("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("/healthz", healthy, proc)
    return served


def _ids(served: Dashboard) -> dict[str, int]:
    return {r["target"]: r["id"] for r in served.api("/api/targets").json()["targets"]}


@pytest.fixture(scope="module")
def dashboard(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A daemon with a token over :data:`SCENARIOS` (label env=lab; good-rsa also team=web), every target
    checked once and the alerts of that check raised."""
    db = f"sqlite:///{tmp_path_factory.mktemp('web') / 'watch.db'}"
    with Store(db) as store:
        store.add([spec(lab, n) for n in SCENARIOS], labels={"env": "lab"})
        store.add([spec(lab, "good-rsa")], labels={"team": "web"})
    served = _start(lab, db, TOKEN)
    try:
        wait_for(
            "every target checked",
            lambda: all(r["verdict"] for r in served.api("/api/targets").json()["targets"]),
            served.proc,
        )
        wait_for("the expired target's alert", lambda: 'data-state="open"' in _alerts_html(served), served.proc)
        # the fleet index refreshes at most every 2 s: wait until its rows show the checks
        wait_for("the fleet page up to date", lambda: "unchecked" not in _rows(_fleet_html(served)).values())
        yield served
    finally:
        served.stop()


def _fleet_html(served: Dashboard) -> str:
    with served.logged_in() as c:
        return c.get("/", params={"per_page": "500"}).text


def _alerts_html(served: Dashboard) -> str:
    with served.logged_in() as c:
        return c.get("/alerts").text


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def _rows(html: str) -> dict[int, str]:
    """target id → data-status of the fleet table's rows."""
    return {int(i): s for i, s in re.findall(r'<tr data-target-id="(\d+)" data-status="([a-z]+)"', html)}


# --- pages ---------------------------------------------------------------------------------------------------


def test_fleet_page_lists_every_target_with_its_status(lab: Lab, dashboard: Dashboard) -> None:
    ids = _ids(dashboard)
    with dashboard.logged_in() as c:
        page = c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    rows = _rows(html)
    assert set(rows) == set(ids.values())
    by_name = {n: rows[ids[spec(lab, n)]] for n in SCENARIOS}
    assert by_name["good-rsa"] == "ok" and by_name["evil-fields"] == "ok"
    assert by_name["expired"] == "broken" and by_name["incomplete-aia"] == "broken"
    assert by_name["expiring-soon"] == "expiring"
    assert by_name["garbage"] == "unreachable"
    assert '<section id="summary"' in html and 'data-count="broken">' in html
    assert re.search(r'data-count="unreachable">1<', html)
    assert '<p id="result-count" role="status">7 targets</p>' in html
    assert 'th scope="col" data-sort="days_left"' in html and '<form id="filters"' in html
    assert "breaks soon" in html and "never checked" not in html.split('id="fleet"')[1]  # STATUS_TEXT, as text
    for href in ('href="/"', 'href="/forecast"', 'href="/alerts"', 'href="/health"'):
        assert href in html
    assert '<html lang="en">' in html and 'class="skip-link" href="#main"' in html
    assert "<svg" in html and "<title" in html  # the server-side plots


def test_filters_sorting_paging_and_the_htmx_partial(lab: Lab, dashboard: Dashboard) -> None:
    ids = _ids(dashboard)
    with dashboard.logged_in() as c:
        broken = _rows(c.get("/", params=[("status", "broken")]).text)
        assert set(broken.values()) == {"broken"} and ids[spec(lab, "expired")] in broken
        both = _rows(c.get("/", params=[("status", "broken"), ("status", "unreachable")]).text)
        assert set(both.values()) == {"broken", "unreachable"}
        team = _rows(c.get("/", params={"label": "team=web"}).text)
        assert list(team) == [ids[spec(lab, "good-rsa")]]
        expired = _rows(c.get("/", params={"days_max": "0"}).text)
        assert ids[spec(lab, "expired")] in expired and ids[spec(lab, "good-rsa")] not in expired

        partial = c.get("/fleet/rows", params={"status": "ok", "sort": "target", "order": "desc"})
        assert partial.status_code == 200 and "<html" not in partial.text and '<table id="fleet">' in partial.text
        assert partial.headers["hx-push-url"] == "/?status=ok&sort=target&order=desc"
        assert 'data-sort="target" aria-sort="descending"' in partial.text

        paged = c.get("/", params={"per_page": "2"}).text
        assert len(_rows(paged)) == 2 and 'rel="next"' in paged and 'rel="prev"' not in paged
        last = c.get("/", params={"per_page": "2", "page": "4"}).text
        assert len(_rows(last)) == 1 and 'rel="prev"' in last

        bad = c.get("/", params={"days_min": "soon"})
        assert bad.status_code == 400 and "days_min" in bad.text
        bad = c.get("/fleet/rows", params={"days_min": "9", "days_max": "1"})
        assert bad.status_code == 400 and 'id="result-count"' in bad.text and "days_min" in bad.text
        assert bad.headers["hx-push-url"] == "false"


def test_csv_export_of_the_current_filter(lab: Lab, dashboard: Dashboard) -> None:
    with dashboard.logged_in() as c:
        answer = c.get("/fleet.csv", params=[("status", "broken")])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(answer.text)))
    broken = {spec(lab, n) for n in ("expired", "incomplete-aia", "multi-address")}
    assert {r["target"] for r in table} == broken
    assert {r["status"] for r in table} == {"broken"}


def test_target_page_and_the_diagnosis_fragment_of_the_expired_scenario(lab: Lab, dashboard: Dashboard) -> None:
    ident = _ids(dashboard)[spec(lab, "expired")]
    with dashboard.logged_in() as c:
        html = c.get(f"/targets/{ident}").text
        assert f"<h1>{spec(lab, 'expired')}</h1>" in html
        assert '<li data-finding="expired"' in html
        assert re.search(r'<tr data-client="[a-z]+" data-accepts="false">', html)
        assert '<li data-event="first-seen">' in html
        assert 'id="chain"' in html and 'class="certificate"' in html and '<pre class="pem"' in html
        assert "-----BEGIN CERTIFICATE-----" in html
        assert f'hx-get="/targets/{ident}/diagnosis" hx-trigger="load"' in html
        for hook in ('id="forecast"', 'id="deployed"', 'id="history"'):
            assert hook in html

        fragment = c.get(f"/targets/{ident}/diagnosis").text
    assert "<html" not in fragment and "data-loaded" in fragment
    finding = re.search(r'<li data-finding="expired".*?</li>', fragment, re.S)
    assert finding, fragment
    assert "Fix:" in finding.group(0) and 'class="fix-text"' in finding.group(0)
    rejecting = r'<tr data-client="([a-z]+)" data-accepts="false">.*?<code class="client-error">(.*?)</code>'
    errors = re.findall(rejecting, fragment, re.S)
    assert errors and any("expired" in text.lower() for _client, text in errors), errors


def test_diagnosis_of_a_target_checked_before_this_daemon_is_checked_now(lab: Lab, tmp_path: Path) -> None:
    """A daemon that has not checked a target itself (the store has it from an earlier run) checks it now, through
    the scheduler's path: the fragment shows the new check and the observation is recorded."""
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        [(target, _)] = store.add([spec(lab, "expired")], every=86400)
    served = _start(lab, db, None)
    try:
        wait_for("the first check", lambda: served.api(f"/api/targets/{target.id}").json()["observations"], served.proc)
        before = len(served.api(f"/api/targets/{target.id}").json()["observations"])
        served.stop()  # a new daemon: nothing in memory
        served = _start(lab, db, None)
        with served.client() as c:
            fragment = c.get(f"/targets/{target.id}/diagnosis").text
        assert "Checked just now" in fragment and '<li data-finding="expired"' in fragment
        assert len(served.api(f"/api/targets/{target.id}").json()["observations"]) == before + 1
    finally:
        served.stop()


def test_security_headers_on_pages_static_files_and_the_api(dashboard: Dashboard) -> None:
    with dashboard.logged_in() as c:
        for path in ("/", "/alerts", "/health", "/forecast", "/static/app.js", "/api/targets", "/login"):
            answer = c.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-security-policy"] == CSP, path
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
        htmx = c.get("/static/htmx.min.js")
        assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
        page = c.get("/alerts").text
    assert "<script>" not in page and " style=" not in page  # nothing inline: the CSP allows none


def test_forecast_alerts_and_health_pages(lab: Lab, dashboard: Dashboard) -> None:
    with dashboard.logged_in() as c:
        forecast = c.get("/forecast", params=[("days", "90"), ("label", "env=lab")])
        assert forecast.status_code == 200 and 'id="calendar"' in forecast.text
        assert spec(lab, "expiring-soon") in forecast.text  # expires within 90 days
        assert c.get("/forecast", params={"days": "x"}).status_code == 400
        alerts = c.get("/alerts").text
        assert re.search(r'<tr data-alert-id="\d+" data-state="open">', alerts)
        assert 'button type="submit" data-action="ack"' in alerts and 'id="events"' in alerts
        health = c.get("/health").text
        assert 'data-health="database">ok' in health and 'data-health="last_check"' in health


# --- auth, CSRF, writes --------------------------------------------------------------------------------------


def test_with_a_token_pages_redirect_to_login_and_the_api_still_answers_401(dashboard: Dashboard) -> None:
    with dashboard.client() as c:
        answer = c.get("/alerts?x=1")
        assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2Falerts%3Fx%3D1"
        assert c.get("/api/targets").status_code == 401
        assert c.get("/login").status_code == 200 and c.get("/static/app.css").status_code == 200
        wrong = c.post("/login", data={"token": "nope"})
        assert wrong.status_code == 401 and "not the access token" in wrong.text
        assert "certdoctor_session" not in c.cookies
        good = c.post("/login", data={"token": TOKEN, "next": "//evil.example/"})
        assert good.status_code == 303 and good.headers["location"] == "/"  # no open redirect
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
        assert c.get("/alerts").status_code == 200
        c.post("/logout", data={"csrf": _csrf(c.get("/").text)})
        c.cookies.clear()
        assert c.get("/").status_code == 303


def test_acknowledging_needs_login_and_the_csrf_token(dashboard: Dashboard) -> None:
    with dashboard.logged_in() as c:
        html = c.get("/alerts").text
    alert_id = int(re.search(r'<tr data-alert-id="(\d+)" data-state="open">', html).group(1))
    token = _csrf(html)

    with dashboard.client() as anonymous:  # no login: refused
        answer = anonymous.post(f"/alerts/{alert_id}/ack", data={"csrf": token})
        assert answer.status_code in (401, 403)
    with dashboard.logged_in() as c:
        assert c.post(f"/alerts/{alert_id}/ack", data={}).status_code == 403  # no CSRF field
        assert c.post(f"/alerts/{alert_id}/ack", data={"csrf": token}).status_code == 403  # another session's
        mine = _csrf(c.get("/alerts").text)
        other_site = c.post(f"/alerts/{alert_id}/ack", data={"csrf": mine}, headers={"Origin": "http://evil.example"})
        assert other_site.status_code == 403
        assert f'data-alert-id="{alert_id}" data-state="open"' in c.get("/alerts").text
        done = c.post(f"/alerts/{alert_id}/ack", data={"csrf": mine})
        assert done.status_code == 303 and done.headers["location"] == "/alerts"
        assert f'data-alert-id="{alert_id}" data-state="acked"' in c.get("/alerts").text


def test_adding_snoozing_and_removing_a_target(lab: Lab, dashboard: Dashboard) -> None:
    with dashboard.logged_in() as c:
        fleet = c.get("/").text
        token = _csrf(fleet)
        assert '<form method="post" action="/targets"' in fleet and 'data-action="add"' in fleet
        added = c.post("/targets", data={"csrf": token, "target": spec(lab, "good-ecdsa"), "labels": "team=new"})
        assert added.status_code == 303
        path = added.headers["location"]
        ident = int(path.rsplit("/", 1)[1])
        assert c.get(path).status_code == 200
        assert c.post(f"/targets/{ident}/snooze", data={"csrf": token, "for": "2h"}).status_code == 303
        assert c.post(f"/targets/{ident}/snooze", data={"csrf": token, "for": "soon"}).status_code == 400
        assert c.post("/targets", data={"csrf": token, "target": "not a target:99999"}).status_code == 400
        assert c.post(f"/targets/{ident}/delete", data={"csrf": token}).status_code == 303
        assert c.get(path).status_code == 404


def test_without_a_token_the_dashboard_is_read_only(lab: Lab, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        store.add([spec(lab, "good-rsa")])
    served = _start(lab, db, None)
    try:
        with served.client() as c:
            page = c.get("/")
            assert page.status_code == 200 and "read-only" in page.text
            assert c.post("/login", data={"token": "anything"}).status_code == 403
            for path in ("/alerts/1/ack", "/targets/1/snooze", "/targets/1/delete", "/targets"):
                assert c.post(path, data={"csrf": "x", "target": "a.example:443"}).status_code == 403, path
            assert len(served.api("/api/targets").json()["targets"]) == 1
    finally:
        served.stop()


# --- hostile fields --------------------------------------------------------------------------------------------


def test_a_hostile_subject_is_shown_as_text(lab: Lab, dashboard: Dashboard) -> None:
    ident = _ids(dashboard)[spec(lab, "evil-fields")]
    with dashboard.logged_in() as c:
        pages = [
            c.get("/").text,
            c.get("/", params={"q": "EVIL"}).text,
            c.get(f"/targets/{ident}").text,
            c.get(f"/targets/{ident}/diagnosis").text,
        ]
    for html in pages:
        assert "<script>alert" not in html and "\x1b" not in html and "\x07" not in html
    # RFC 4514 escapes < and > with a backslash in the subject; the page escapes them again for HTML
    for html in (pages[0], pages[2]):
        assert re.search(r"\\?&lt;script\\?&gt;alert\(1\)", html), html
    assert "\\x1b[31mEVIL" in pages[2]  # terminal escapes made visible
    assert len(_rows(pages[1])) == 1


# --- the pieces ------------------------------------------------------------------------------------------------


def test_login_cookie_csrf_token_and_origin_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.datastructures import Headers

    from certdoctor.web import auth

    sessions = auth.Sessions("s3cret")
    assert sessions.check_token("s3cret") and not sessions.check_token("s3cret ") and not sessions.check_token("")
    cookie = sessions.new_cookie()
    sid = sessions.session_of(cookie)
    assert sid is not None and sessions.csrf_ok(sid, sessions.csrf(sid))
    assert not sessions.csrf_ok(sid, "") and not sessions.csrf_ok(None, sessions.csrf(sid))
    issued, rand, mac = cookie.split(".")
    for forged in (f"{issued}.{rand}.{'0' * 64}", f"{int(issued) + 1}.{rand}.{mac}", f"{issued}.{rand}", "", "x.y.z"):
        assert sessions.session_of(forged) is None, forged
    assert auth.Sessions("s3cret").session_of(cookie) is None  # another process's key: logged out by a restart
    assert auth.Sessions(None).session_of(cookie) is None and not auth.Sessions(None).writable
    later = float(issued) + auth.SESSION_LIFETIME + 1
    monkeypatch.setattr(auth.time, "time", lambda: later)
    assert sessions.session_of(cookie) is None  # expired
    monkeypatch.undo()
    sessions.logout(sid)
    assert sessions.session_of(cookie) is None

    scope = {"scheme": "http"}

    def same(**headers: str) -> bool:
        return auth.same_origin(scope, Headers({"host": "127.0.0.1:8427", **headers}))

    assert same() and same(origin="http://127.0.0.1:8427") and same(origin="null", **{"sec-fetch-site": "same-origin"})
    assert not same(origin="http://evil.example") and not same(origin="https://127.0.0.1:8427")
    assert not same(**{"sec-fetch-site": "cross-site"}) and not same(origin="null", **{"sec-fetch-site": "cross-site"})
    for wanted, given in [("/", None), ("/", "//evil.example/"), ("/", "https://evil.example/"), ("/", "\\\\evil")]:
        assert auth.safe_next(given) == wanted
    assert auth.safe_next("/targets/3?x=1") == "/targets/3?x=1"


def test_the_daemon_keeps_a_bounded_memory_of_latest_diagnoses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from certdoctor.watch import daemon as watch_daemon

    monkeypatch.setattr(watch_daemon, "DIAGNOSES_KEPT", 3)
    with Store(f"sqlite:///{tmp_path / 'watch.db'}") as store:
        d = watch_daemon.Daemon(store, None, watch_daemon.ServeConfig())
        for ident in range(1, 5):
            record = {"kind": "scan-record", "verdict": "unreachable", "error": f"refused {ident}", "findings": []}
            d._remember(ident, record, None, None)  # type: ignore[arg-type]
        assert d.latest_diagnosis(1) is None  # the least recently used is forgotten
        assert d.latest_diagnosis(2) == {**record, "error": "refused 2"}
        d._remember(5, {"verdict": "valid"}, None, None)  # type: ignore[arg-type]
        assert d.latest_diagnosis(2) is not None and d.latest_diagnosis(3) is None  # 2 was read: kept


def test_svg_bars_escape_their_labels() -> None:
    from certdoctor.web.plots import bar_chart

    svg = str(bar_chart("c", "<b>title</b>", [("<script>x</script>", 3), ("ok", 0)]))
    assert svg.startswith("<svg") and "<script>" not in svg and "&lt;script&gt;x&lt;/script&gt;: 3</title>" in svg
    assert '<title id="c-title">&lt;b&gt;title&lt;/b&gt;</title>' in svg and " style=" not in svg


def test_the_alerts_page_names_the_channels_each_alert_is_routed_to(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from certdoctor.watch import tables as wt
    from certdoctor.watch.channels import add_channel
    from certdoctor.web import views

    with Store(f"sqlite:///{tmp_path / 'watch.db'}") as store:
        [(payments, _)] = store.add(["pay.example.test:443"], labels={"team": "payments", "env": "prod"})
        [(web, _)] = store.add(["www.example.test:443"], labels={"team": "web"})
        everyone = add_channel(store, "https://hooks.example.test/all")
        pay = add_channel(store, "https://hooks.example.test/pay", labels={"team": "payments"})
        moment = datetime.now(UTC)
        with store.engine.begin() as conn:
            for target in (payments, web):
                conn.execute(
                    sa.insert(wt.alerts).values(
                        target_id=target.id,
                        condition="expiring",
                        state="open",
                        severity="warning",
                        summary="expires soon",
                        detail={},
                        opened_at=moment,
                        notified=0,
                    )
                )
        page = views.alerts_page(store)
    routed = {a["target"]: [c["id"] for c in a["channels"]] for a in page["alerts"]}
    assert routed == {"pay.example.test:443": [everyone.id, pay.id], "www.example.test:443": [everyone.id]}
    assert {a["state"] for a in page["alerts"]} == {"open"}
