"""The watch dashboard in a real browser: Debian's Chromium under Playwright (tests/browser.py) against
``certdoctor watch serve --token`` as a subprocess on a free loopback port, watching every non-hostile lab
scenario, the hostile ``evil-fields`` one and a port where nothing listens.

Written against the dashboard's contract (routes and DOM hooks of issue 19): the fleet page lists every target
with its status (data-status and STATUS_TEXT), filters by status and free text through the htmx form, sorts by
days left both ways, pages; a target page shows its findings, client table, history and the diagnosis fragment;
acknowledging an alert needs a login and the form's CSRF field; a read-only daemon (no token) refuses it;
certificate fields carrying HTML render as text (no dialog, no CSP violation, no console error); axe-core finds
nothing serious or critical on any view; the keyboard reaches the filters and the sort headers. Screenshots of
each view go to ``$CERTDOCTOR_ARTIFACTS`` (default ``artifacts/dashboard/`` in the repository, git-ignored).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

import browser
import certdoctor
from certdoctor.lab import SCENARIOS, Lab
from certdoctor.watch import Store
from netutil import free_port

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("certdoctor.web") is None or importlib.util.find_spec("jinja2") is None,
    reason="the dashboard (certdoctor.web, Jinja2) is not installed",
)

SRC = str(Path(certdoctor.__file__).resolve().parents[1])
TOKEN = "browser-test-token-3f9a"
PATIENCE = 90.0  # seconds a wait gives the daemon before the test fails (not a timing assertion)
STATUS_TEXT = {"broken": "broken", "expiring": "breaks soon", "ok": "ok", "unreachable": "unreachable"}
STATUS_TEXT["unchecked"] = "never checked"
SORT_KEYS = ("urgency", "target", "status", "subject", "issuer", "key_type", "not_after", "days_left")
SORT_KEYS += ("rejected_by", "checked_at")
WATCHED = [s.name for s in SCENARIOS if not s.hostile] + ["evil-fields"]
DOWN = "down"  # the name of the target on a port where nothing listens
EVIL_TEXTS = ('"><img src=x onerror=alert(1)>', "<script>alert(2)</script>")  # evil-fields' SANs (lab/scenarios.py)
# Recorded before any page script runs (an init script is not subject to the page's CSP): calls to the dialog
# functions and CSP violations. A hostile field that became markup would show up in one of them.
TRAPS = """
window.__pwned = [];
window.__csp = [];
for (const name of ["alert", "confirm", "prompt"]) {
  const original = window[name];
  window[name] = function (...args) {
    window.__pwned.push(name + ":" + String(args[0]));
    return original.apply(window, args);
  };
}
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""
VIEWS = {  # view name -> path (the target view is the expired scenario's page)
    "fleet": "/",
    "target": None,
    "forecast": "/forecast?days=90",
    "alerts": "/alerts",
    "health": "/health",
}


def artifacts_dir() -> Path:
    """Where the screenshots go: ``$CERTDOCTOR_ARTIFACTS`` or ``artifacts/dashboard`` in the repository."""
    configured = os.environ.get("CERTDOCTOR_ARTIFACTS")
    root = Path(configured) if configured else Path(__file__).resolve().parent.parent / "artifacts"
    return root / "dashboard"


SCREENSHOTS: list[Path] = []  # written this session (conftest's terminal summary says where)


# --- the daemon ------------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CERTDOCTOR_TOKEN", "CERTDOCTOR_DB")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _spec(lab: Lab, name: str) -> str:
    ep = lab.endpoints[name]
    return f"{ep.hostname}:{ep.port}," + ",".join(f"addr={a}" for a in ep.addresses)


def _wait(what: str, condition: Callable[[], Any], proc: subprocess.Popen[bytes] | None = None) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) waiting for {what}")
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Daemon:
    """A running ``watch serve``: its base URL, token (None: read-only) and process."""

    url: str
    token: str | None
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> int:
        return self.fetch(path)[0]

    def fetch(self, path: str) -> tuple[int, str]:
        """(status, body text) of ``GET path`` with the Bearer token when there is one."""
        request = urllib.request.Request(self.url + path)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_daemon(db: str, lab: Lab, log: Path, token: str | None) -> Daemon:
    """``watch serve`` over ``db`` on a free loopback port (alert rounds every second), up when /healthz answers."""
    port = free_port()
    argv = [sys.executable, "-m", "certdoctor", "watch", "serve", "--db", db, "--listen", f"127.0.0.1:{port}"]
    argv += ["--ca-file", str(lab.root_path), "--timeout", "3", "--retries", "0", "--allow-private-fetch"]
    argv += ["--alert-every", "1s"] + (["--token", token] if token else [])
    with log.open("ab") as sink:  # a file, not a pipe: a chatty daemon must never block on a full pipe
        proc = subprocess.Popen(argv, env=_env(), stdout=sink, stderr=sink)
    daemon = Daemon(f"http://127.0.0.1:{port}", token, proc, log)

    def healthy() -> bool:
        try:
            return daemon.get("/healthz") == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    try:
        _wait("/healthz", healthy, proc)
    except AssertionError as exc:
        daemon.stop()
        raise AssertionError(f"{exc}; its log:\n{log.read_text(errors='replace')[-4000:]}") from None
    return daemon


@dataclass
class Fleet:
    """The watched fleet: the daemon with a token, the store's URL, scenario name → target id."""

    daemon: Daemon
    db: str
    ids: dict[str, int]
    specs: dict[str, str]
    tmp: Path
    state: dict[str, Any] = field(default_factory=dict)  # the logged-in storage state (cookies), once made

    @property
    def url(self) -> str:
        return self.daemon.url

    def expected_rows(self) -> dict[int, Any]:
        """Target id → the data layer's FleetRow right now (certdoctor.watch.fleet, read from the same store)."""
        from certdoctor.watch.fleet import FleetIndex, FleetQuery

        with Store(self.db) as store:
            return {row.id: row for row in FleetIndex(store).rows(FleetQuery())}

    def open_alerts(self) -> list[dict[str, Any]]:
        from certdoctor.watch.alerts import alerts

        with Store(self.db) as store:
            return alerts(store)

    def alert(self, alert_id: int) -> dict[str, Any]:
        from certdoctor.watch.alerts import alerts

        with Store(self.db) as store:
            return next(a for a in alerts(store, everything=True) if a["id"] == alert_id)


@pytest.fixture(scope="session")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The lab watched by ``watch serve --token``, every target checked once and the alerts raised."""
    tmp = tmp_path_factory.mktemp("dashboard")
    db = f"sqlite:///{tmp / 'watch.db'}"
    specs = {name: _spec(lab, name) for name in WATCHED}
    specs[DOWN] = f"down.certdoctor.test:{free_port()},addr=127.0.0.1"  # nothing listens there
    ids: dict[str, int] = {}
    with Store(db) as store:
        for name, text in specs.items():
            scenario = SCENARIOS[name] if name != DOWN else None
            group = "down" if scenario is None else "hostile" if scenario.hostile else "defect"
            group = "clean" if scenario is not None and not scenario.hostile and not scenario.expected else group
            [(target, _)] = store.add([text], labels={"env": "lab", "group": group})
            ids[name] = target.id
    daemon = start_daemon(db, lab, tmp / "serve.log", TOKEN)
    try:

        def checked() -> bool:
            with Store(db) as store:
                return all(r["verdict"] is not None for r in store.status())

        _wait("every target checked", checked, daemon.proc)
        fleet = Fleet(daemon, db, ids, specs, tmp)
        _wait("an open alert", fleet.open_alerts, daemon.proc)

        def shown() -> bool:  # the dashboard's index refreshes every few seconds: until it has every check
            status, body = daemon.fetch("/fleet/rows?per_page=500")
            return status == 200 and body.count("data-target-id=") >= len(ids) and 'data-status="unchecked"' not in body

        _wait("the dashboard showing every target checked", shown, daemon.proc)
        yield fleet
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def logged_in(fleet: Fleet, chromium: Any) -> dict[str, Any]:
    """The storage state (the login cookie) of a browser that logged in through the login form."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        login(page, fleet, "/")
        return context.storage_state()
    finally:
        context.close()


def login(page: Page, fleet: Fleet, after: str) -> None:
    """Log in through ``GET /login``'s form (field ``token``), then land on ``after``."""
    page.goto(f"{fleet.url}/login?next={after}")
    form = page.locator('form[action="/login"]')
    form.locator('input[name="token"]').fill(TOKEN)
    with page.expect_navigation():
        form.locator('[type="submit"]').click()
    assert urlsplit(page.url).path != "/login", page.url
    if urlsplit(page.url).path != after:
        page.goto(fleet.url + after)


@dataclass
class Watched:
    """A page with its dialog, console-error and failed-response listeners."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.errors == [], self.errors
        assert self.page.evaluate("window.__pwned") == [], self.page.evaluate("window.__pwned")
        assert self.page.evaluate("window.__csp") == [], self.page.evaluate("window.__csp")


def watched(context: BrowserContext) -> Watched:
    page = context.new_page()
    out = Watched(page)
    page.add_init_script(TRAPS)

    def on_dialog(dialog: Any) -> None:
        out.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message: Any) -> None:
        where = (message.location or {}).get("url", "")
        # the browser's own request for /favicon.ico (no page asks for it) is not the page's error
        if message.type == "error" and urlsplit(where).path != "/favicon.ico":
            out.errors.append(f"{message.text} ({where})")

    page.on("dialog", on_dialog)
    page.on("console", lambda m: on_console(m))
    page.on("pageerror", lambda exc: out.errors.append(f"uncaught: {exc}"))
    page.on("response", lambda r: out.failures.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    return out


@pytest.fixture
def view(fleet: Fleet, logged_in: dict[str, Any], new_context: Any) -> Watched:
    """A logged-in page in a fresh context (the page's own CSP in force), with its listeners."""
    return watched(new_context(storage_state=logged_in))


def rows(page: Page) -> list[tuple[int, str]]:
    """(target id, data-status) of the fleet table's body rows, in order."""
    cells = page.locator("#fleet tbody tr[data-target-id]")
    return [(int(r.get_attribute("data-target-id") or 0), r.get_attribute("data-status") or "") for r in cells.all()]


def expect() -> Any:
    from playwright.sync_api import expect as _expect

    return _expect


# --- the fleet page ----------------------------------------------------------------------------------------------


def test_the_fleet_page_lists_every_target_with_its_status(fleet: Fleet, view: Watched) -> None:
    page = view.page
    answer = page.goto(fleet.url + "/?per_page=500")
    assert answer is not None and answer.status == 200
    headers = answer.headers
    assert (
        "script-src 'self'" in headers["content-security-policy"]
        and "unsafe-inline" not in headers["content-security-policy"]
    )
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    for href in ("/", "/forecast", "/alerts", "/health"):
        assert page.locator(f'nav a[href="{href}"]').count() >= 1, href

    listed = dict(rows(page))
    assert sorted(listed) == sorted(fleet.ids.values())
    status = {name: listed[fleet.ids[name]] for name in fleet.ids}
    assert status["expired"] == "broken"
    assert status["expired-intermediate"] == "broken"
    assert status["good-rsa"] == "ok" and status["good-ecdsa"] == "ok"
    assert status["expiring-soon"] == "expiring"
    assert status["evil-fields"] == "ok"
    assert status[DOWN] == "unreachable"
    expected = fleet.expected_rows()
    assert {i: expected[i].status for i in listed} == listed  # what the data layer says of each target

    for target_id, st in listed.items():
        row = page.locator(f'#fleet tbody tr[data-target-id="{target_id}"]')
        assert STATUS_TEXT[st] in row.locator('td[data-col="status"]').inner_text()  # text, not colour alone
        assert expected[target_id].target in row.locator('td[data-col="target"]').inner_text()
    columns = ("target", "status", "subject", "issuer", "not_after", "days_left", "rejected_by", "checked_at", "labels")
    for column in columns:
        assert page.locator(f'#fleet tbody tr[data-target-id] td[data-col="{column}"]').count() == len(listed), column
    sort_keys = page.locator('#fleet thead th[scope="col"][data-sort]').evaluate_all(
        "all => all.map(th => th.getAttribute('data-sort'))"
    )
    assert {"target", "status", "days_left"} <= set(sort_keys) <= set(SORT_KEYS), sort_keys
    assert page.locator("#result-count").inner_text().strip() == f"{len(fleet.ids)} targets"
    counts = {k: int(page.locator(f'#summary [data-count="{k}"]').inner_text()) for k in STATUS_TEXT}
    assert counts == {k: sum(1 for s in listed.values() if s == k) for k in STATUS_TEXT}
    csv_link = page.locator('a#csv[href^="/fleet.csv"]')
    assert csv_link.count() == 1
    export = page.request.get(fleet.url + (csv_link.get_attribute("href") or ""))
    assert export.status == 200 and export.headers["content-type"].startswith("text/csv")
    records = list(csv.reader(io.StringIO(export.text())))
    assert len(records) == 1 + len(fleet.ids)  # a header, then every target of the filter (all pages)
    view.assert_clean()


def test_the_pager_moves_between_pages(fleet: Fleet, view: Watched) -> None:
    page = view.page
    page.goto(fleet.url + "/?per_page=25")
    first = [i for i, _ in rows(page)]
    assert len(first) == 25 and page.locator("#pager a[rel=prev]").count() == 0
    with page.expect_response(lambda r: "/fleet/rows" in r.url or urlsplit(r.url).path == "/") as answer:
        page.locator("#pager a[rel=next]").click()
    assert answer.value.status == 200
    expect()(page.locator("#pager a[rel=prev]")).to_have_count(1)
    second = [i for i, _ in rows(page)]
    assert len(second) == 25 and not set(first) & set(second)
    assert parse_qs(urlsplit(page.url).query).get("page") == ["2"]  # the address bar keeps the page
    view.assert_clean()


def _set_status(page: Page, wanted: set[str]) -> None:
    """Tick exactly ``wanted`` among the filter form's status controls (checkboxes or a multiple select)."""
    controls = page.locator('#filters [name="status"]')
    if controls.first.evaluate("e => e.tagName") == "SELECT":
        controls.first.select_option(sorted(wanted))
        return
    for box in controls.all():
        box.set_checked(box.get_attribute("value") in wanted)


def _submit(page: Page) -> None:
    """Submit the filter form as a user does (its submit button, else Enter in the search field), waiting for
    the htmx request of the rows."""
    form = page.locator("#filters")
    with page.expect_response(lambda r: urlsplit(r.url).path == "/fleet/rows") as answer:
        button = form.locator('button[type="submit"], input[type="submit"]')
        if button.count():
            button.first.click()
        else:
            form.locator('[name="q"]').press("Enter")
    assert answer.value.status == 200, answer.value.url


def test_filter_by_status_and_by_free_text(fleet: Fleet, view: Watched) -> None:
    page = view.page
    page.goto(fleet.url + "/?per_page=500")
    everything = dict(rows(page))
    broken = sorted(i for i, s in everything.items() if s == "broken")
    assert len(broken) >= 2

    _set_status(page, {"broken"})
    _submit(page)
    expect()(page.locator("#result-count")).to_have_text(re.compile(rf"^\s*{len(broken)} targets\s*$"))
    assert sorted(i for i, _ in rows(page)) == broken
    assert {s for _, s in rows(page)} == {"broken"}
    assert parse_qs(urlsplit(page.url).query).get("status") == ["broken"]  # hx-push-url: the URL keeps the filter
    page.reload()  # the pushed URL renders the same filter server-side
    assert sorted(i for i, _ in rows(page)) == broken
    page.locator("#filters").wait_for()

    _set_status(page, set())
    page.locator('#filters [name="q"]').fill("EVIL-fields")  # case-insensitive substring of the target
    _submit(page)
    expect()(page.locator("#result-count")).to_have_text(re.compile(r"^\s*1 targets?\s*$"))
    assert rows(page) == [(fleet.ids["evil-fields"], "ok")]
    assert parse_qs(urlsplit(page.url).query).get("q") == ["EVIL-fields"]

    page.locator('#filters [name="q"]').fill("no target is called this")
    _submit(page)
    expect()(page.locator("#result-count")).to_have_text(re.compile(r"^\s*0 targets\s*$"))
    assert rows(page) == []
    view.assert_clean()


def test_sort_by_days_left_both_ways(fleet: Fleet, view: Watched) -> None:
    page = view.page
    page.goto(fleet.url + "/?per_page=500")
    expected = fleet.expected_rows()
    header = page.locator('#fleet th[scope="col"][data-sort="days_left"]')

    def days(order: list[int]) -> list[float]:
        return [d for d in (expected[i].days_left for i in order) if d is not None]

    seen: list[str] = []
    for _ in range(2):  # the first click sorts one way (either), the second the other
        with page.expect_response(lambda r: urlsplit(r.url).path in ("/fleet/rows", "/")) as answer:
            page.locator('#fleet th[data-sort="days_left"] a').click()
        assert answer.value.status == 200
        expect()(header).to_have_attribute("aria-sort", re.compile(r"^(ascending|descending)$"))
        expect()(header).not_to_have_attribute("aria-sort", seen[-1] if seen else "none")
        direction = header.get_attribute("aria-sort") or ""
        seen.append(direction)
        order = [i for i, _ in rows(page)]
        assert sorted(order) == sorted(fleet.ids.values())
        got = days(order)
        assert got == sorted(got, reverse=direction == "descending"), (direction, order, got)
        assert len(got) >= len(order) - 1  # only the unreachable target has no days left
        query = parse_qs(urlsplit(page.url).query)
        assert query.get("sort") == ["days_left"], page.url
        assert query.get("order", ["asc"]) == (["desc"] if direction == "descending" else ["asc"]), page.url
    assert sorted(seen) == ["ascending", "descending"]
    assert page.locator("#fleet th[aria-sort]").count() == 1
    view.assert_clean()


# --- a target ----------------------------------------------------------------------------------------------------


def test_a_target_page_shows_findings_clients_history_and_the_diagnosis(fleet: Fleet, view: Watched) -> None:
    page = view.page
    target_id = fleet.ids["expired"]
    answer = page.goto(f"{fleet.url}/targets/{target_id}")
    assert answer is not None and answer.status == 200
    assert "expired.certdoctor.test" in page.locator("h1").inner_text()
    assert page.locator("#findings li[data-finding=expired]").count() == 1
    clients = page.locator("table#clients tr[data-client]")
    assert clients.count() >= 5
    assert {c.get_attribute("data-accepts") for c in clients.all()} == {"false"}  # every client rejects it
    assert page.locator("#chain .certificate").count() >= 2
    pem = page.locator("#chain pre.pem").first.text_content() or ""  # may sit in a closed <details>
    assert pem.strip().startswith("-----BEGIN CERTIFICATE-----"), pem[:200]
    assert page.locator("#history li[data-event]").count() >= 1
    assert page.locator("#forecast").count() == 1 and page.locator("#deployed").count() == 1
    diagnosis = page.locator("#diagnosis[data-loaded]")
    diagnosis.wait_for(timeout=60_000)
    text = diagnosis.inner_text()
    assert "expired" in text.lower(), text[:500]

    good = fleet.ids["good-rsa"]
    page.goto(f"{fleet.url}/targets/{good}")
    assert page.locator("#findings li[data-finding=expired]").count() == 0
    assert {c.get_attribute("data-accepts") for c in page.locator("table#clients tr[data-client]").all()} == {"true"}
    page.locator("#diagnosis[data-loaded]").wait_for(timeout=60_000)
    assert page.goto(f"{fleet.url}/targets/999999").status == 404  # type: ignore[union-attr]
    view.errors[:] = [e for e in view.errors if "404" not in e]  # the browser logs the 404 it was asked for
    view.assert_clean()


def test_the_forecast_lists_upcoming_expiries_of_the_label_asked_for(fleet: Fleet, view: Watched) -> None:
    """Every lab leaf expires within 90 days (90-day certificates): the clean group's are listed, the expired
    scenario (group=defect, already expired) is not."""
    page = view.page
    answer = page.goto(fleet.url + "/forecast?days=90&label=group=clean")
    assert answer is not None and answer.status == 200
    text = page.locator("main").inner_text()
    assert "good-rsa.certdoctor.test" in text and "good-ecdsa.certdoctor.test" in text
    assert "expired.certdoctor.test" not in text and "evil-fields.certdoctor.test" not in text
    view.assert_clean()


# --- alerts: writes need the login and the CSRF field ----------------------------------------------------------


def _open_alert(fleet: Fleet) -> dict[str, Any]:
    for alert in fleet.open_alerts():
        if not alert["acked"] and alert["target"] == fleet.specs["expired"]:
            return alert
    return next(a for a in fleet.open_alerts() if not a["acked"])


def test_acknowledging_an_alert_needs_the_login_and_the_csrf_field(fleet: Fleet, new_context: Any) -> None:
    alert = _open_alert(fleet)
    ack = f"{fleet.url}/alerts/{alert['id']}/ack"

    anonymous = watched(new_context())
    anonymous.page.goto(fleet.url + "/alerts")
    assert urlsplit(anonymous.page.url).path == "/login"  # with a token, pages need the login
    refused = anonymous.page.request.post(ack, form={"csrf": "forged"}, max_redirects=0)
    assert refused.status in (401, 403), (refused.status, refused.text()[:200])
    assert fleet.alert(alert["id"])["acked"] is False

    context = new_context()
    user = watched(context)
    page = user.page
    login(page, fleet, "/alerts")
    row = page.locator(f'table#alerts tr[data-alert-id="{alert["id"]}"]')
    assert row.get_attribute("data-state") == "open"
    no_csrf = page.request.post(ack, form={}, max_redirects=0)
    assert no_csrf.status == 403, (no_csrf.status, no_csrf.text()[:200])
    wrong_csrf = page.request.post(ack, form={"csrf": "0" * 64}, max_redirects=0)
    assert wrong_csrf.status == 403, (wrong_csrf.status, wrong_csrf.text()[:200])
    assert fleet.alert(alert["id"])["acked"] is False
    page.reload()
    assert row.get_attribute("data-state") == "open"

    with page.expect_response(lambda r: urlsplit(r.url).path == f"/alerts/{alert['id']}/ack") as answer:
        row.locator("button[data-action=ack]").click()
    assert answer.value.status in (200, 204, 303), answer.value.status
    page.wait_for_load_state()
    page.goto(fleet.url + "/alerts")
    expect()(page.locator(f'table#alerts tr[data-alert-id="{alert["id"]}"]')).to_have_attribute("data-state", "acked")
    assert fleet.alert(alert["id"])["acked"] is True
    assert page.locator(f'table#alerts tr[data-alert-id="{alert["id"]}"] button[data-action=ack]').count() == 0
    user.assert_clean()


def test_a_read_only_dashboard_refuses_to_acknowledge(fleet: Fleet, lab: Lab, new_context: Any) -> None:
    """``watch serve`` without a token over the same store: pages open to all, every write refused (403)."""
    readonly = start_daemon(fleet.db, lab, fleet.tmp / "serve-readonly.log", None)
    try:
        alert = next(a for a in fleet.open_alerts() if not a["acked"])
        user = watched(new_context())
        page = user.page
        assert page.goto(readonly.url + "/alerts").status == 200  # type: ignore[union-attr]
        row = page.locator(f'table#alerts tr[data-alert-id="{alert["id"]}"]')
        assert row.get_attribute("data-state") == "open"
        assert row.locator("button[data-action=ack]").count() == 0
        refused = page.request.post(f"{readonly.url}/alerts/{alert['id']}/ack", form={"csrf": ""}, max_redirects=0)
        assert refused.status == 403, (refused.status, refused.text()[:200])
        assert fleet.alert(alert["id"])["acked"] is False
        user.assert_clean()
    finally:
        readonly.stop()


# --- hostile certificate fields ----------------------------------------------------------------------------------


def test_hostile_certificate_fields_render_as_text(fleet: Fleet, view: Watched) -> None:
    """evil-fields' subject carries ``<script>`` and terminal escapes, its SANs an attribute break-out and a
    script element: on the fleet row, the target page and the diagnosis they are text; no script of theirs runs
    (no dialog, no call to alert, no CSP violation, no console error), no element of theirs exists."""
    page = view.page
    target_id = fleet.ids["evil-fields"]
    page.goto(fleet.url + "/?q=evil-fields")
    assert rows(page) == [(target_id, "ok")]
    cell = page.locator(f'#fleet tr[data-target-id="{target_id}"]')
    shown = cell.inner_text()
    for text in EVIL_TEXTS:
        assert text in shown, shown

    page.goto(f"{fleet.url}/targets/{target_id}")
    page.locator("#diagnosis[data-loaded]").wait_for(timeout=60_000)
    body = page.locator("body").inner_text()
    for text in EVIL_TEXTS:
        assert text in body
    assert "alert(1)" in page.locator("#chain").inner_text()  # the subject's script element, as text
    for where in ("/?q=evil-fields", f"/targets/{target_id}"):
        if where != f"/targets/{target_id}":
            page.goto(fleet.url + where)
        assert page.locator('img[src="x"], img[onerror], [onerror]').count() == 0
        sources = page.locator("script").evaluate_all("all => all.map(s => s.getAttribute('src'))")
        assert all(src and src.startswith("/static/") for src in sources), sources
    view.assert_clean()


# --- screenshots and accessibility ------------------------------------------------------------------------------


def _view_url(fleet: Fleet, name: str) -> str:
    path = VIEWS[name] or f"/targets/{fleet.ids['expired']}"
    return fleet.url + path


@pytest.mark.parametrize("name", list(VIEWS))
def test_each_view_has_a_screenshot_and_no_serious_accessibility_violation(
    fleet: Fleet, logged_in: dict[str, Any], new_context: Any, name: str
) -> None:
    # the page's own CSP in force for the screenshot; a CSP-bypassing context only for axe-core's script
    shot = watched(new_context(storage_state=logged_in, viewport={"width": 1280, "height": 900}))
    answer = shot.page.goto(_view_url(fleet, name))
    assert answer is not None and answer.status == 200
    if name == "target":
        shot.page.locator("#diagnosis[data-loaded]").wait_for(timeout=60_000)
    out = artifacts_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    shot.page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.append(path)
    assert path.stat().st_size > 1000
    shot.assert_clean()

    checked = new_context(storage_state=logged_in, bypass_csp=True).new_page()
    checked.goto(_view_url(fleet, name))
    if name == "target":
        checked.locator("#diagnosis[data-loaded]").wait_for(timeout=60_000)
    violations = browser.run_axe(checked)
    bad = browser.serious(violations)
    assert bad == [], f"axe-core on {name}:\n{browser.describe(bad)}"


def test_the_keyboard_reaches_the_filters_and_the_sort_headers(fleet: Fleet, view: Watched) -> None:
    page = view.page
    page.goto(fleet.url + "/")
    first_control = page.locator(
        "#filters input:not([type=hidden]), #filters select, #filters textarea, #filters button"
    ).first
    first_sort = page.locator("#fleet th[data-sort] a").first
    first_control.evaluate("e => { window.__firstControl = e; }")
    first_sort.evaluate("e => { window.__firstSort = e; }")
    reached: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement === window.__firstControl"):
            reached.append("control")
        if page.evaluate("document.activeElement === window.__firstSort"):
            reached.append("sort")
            break
    assert reached == ["control", "sort"], reached
    key = page.locator("#fleet th[data-sort]").first.get_attribute("data-sort")
    with page.expect_response(lambda r: urlsplit(r.url).path in ("/fleet/rows", "/")):
        page.keyboard.press("Enter")  # the focused sort header works from the keyboard too
    expect()(page.locator(f'#fleet th[data-sort="{key}"]')).to_have_attribute("aria-sort", re.compile("ascending|desc"))
    view.assert_clean()
