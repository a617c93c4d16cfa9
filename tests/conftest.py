"""Shared fixtures: one lab (real TLS servers on loopback) and one PostgreSQL server for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import browser
from certdoctor.lab import Lab
from mailservers import Dovecot, Postfix
from mailservers import unavailable_reason as mail_unavailable
from pgserver import PostgresServer, chmod_boundary, unavailable_reason

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext


# Every server the tests talk to is on loopback: a proxy in the developer's environment (read as curl reads it,
# by certdoctor and by the real clients) must not stand between them. Tests of proxies set their own.
for _name in (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
):
    os.environ.pop(_name, None)


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Every lab scenario (hostile ones included), started once per test session."""
    with Lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


@pytest.fixture(scope="session")
def lab_root(lab: Lab) -> Path:
    """The lab root certificate (PEM): pass it as --ca-file / --cacert."""
    return lab.root_path


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL server of our own (tests/pgserver.py) on 127.0.0.1, started once per session.

    Skipped with the reason when PostgreSQL is not installed, except under CI=true, where that is a failure:
    CI must never silently skip the database tests (.ci/run installs Debian's postgresql)."""
    reason = unavailable_reason()
    if reason is not None:
        if _ci():
            pytest.fail(f"CI=true but the PostgreSQL tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    # When root, the search bit may be opened up to /tmp/pytest-of-root, never above.
    temp_root = chmod_boundary(tmp_path_factory.getbasetemp())
    with PostgresServer(tmp_path_factory.mktemp("postgres"), temp_root=temp_root) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of an empty database on that server: ``postgresql+psycopg://certdoctor@127.0.0.1:PORT/certdoctor_test``."""
    return postgres_server.url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (tests/browser.py), started once per test module.

    Not once per session: while Playwright's sync API is started it keeps an asyncio loop running in this
    thread, and code that refuses to run inside one (``diagnose()``) would fail in every later module. A module
    that uses it must not call such code (a session fixture such as ``lab`` is set up before it when a test
    names that fixture first).

    Skipped with the reason when Playwright or /usr/bin/chromium is missing, except under CI=true, where that is
    a failure (.ci/run installs both)."""
    reason = browser.unavailable_reason()
    if reason is not None:
        if _ci():
            pytest.fail(f"CI=true but the browser tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    with browser.launch() as running:
        yield running


@pytest.fixture
def new_context(chromium: Browser) -> Iterator[Any]:
    """``new_context(**options)``: a fresh browser context (own cookies, cache, storage) for this test, closed at
    its end; options as Playwright's ``Browser.new_context`` (e.g. ``bypass_csp=True`` for an axe-core run)."""
    opened: list[BrowserContext] = []

    def _new(**options: Any) -> BrowserContext:
        context = chromium.new_context(**options)
        context.set_default_timeout(30_000)
        opened.append(context)
        return context

    yield _new
    for context in opened:
        context.close()


# The lab chains the mail servers serve: a good one, one without its intermediate, an expired one.
MAIL_CHAINS = ("good-rsa", "incomplete-no-aia", "expired")


def _mail_server_or_skip(kind: str) -> None:
    """Skip (fail under CI=true, as for PostgreSQL) when ``kind`` cannot run here."""
    reason = mail_unavailable(kind)
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but the {kind} tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postfix_server(lab: Lab) -> Iterator[Postfix]:
    """A private Postfix (tests/mailservers.py) serving each of MAIL_CHAINS with STARTTLS and with implicit TLS."""
    _mail_server_or_skip("postfix")
    chains = {n: (lab.endpoints[n].chain_path, lab.endpoints[n].key_path) for n in MAIL_CHAINS}
    with Postfix(chains) as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_server(lab: Lab) -> Iterator[Dovecot]:
    """A private Dovecot (tests/mailservers.py): IMAP and POP3, STARTTLS and implicit TLS, the chain of each of
    MAIL_CHAINS chosen by SNI (its lab host name)."""
    _mail_server_or_skip("dovecot")
    chains = {
        n: (lab.endpoints[n].chain_path, lab.endpoints[n].key_path, lab.endpoints[n].hostname) for n in MAIL_CHAINS
    }
    with Dovecot(chains) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the real-client conformance matrix (written by test_clients_real) at the end of the run, and where
    the dashboard's screenshots went (test_dashboard_browser)."""
    import sys

    from test_clients_real import ARTIFACT, written_this_session

    if written_this_session() and ARTIFACT.exists():
        terminalreporter.section("client predictions vs real clients")
        terminalreporter.write(ARTIFACT.read_text(encoding="utf-8"))
    dashboard = sys.modules.get("test_dashboard_browser")
    if dashboard is not None and dashboard.SCREENSHOTS:
        terminalreporter.section("dashboard screenshots")
        terminalreporter.write_line(f"{len(dashboard.SCREENSHOTS)} written to {dashboard.artifacts_dir()}")
