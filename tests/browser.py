"""Real headless Chromium driven by Playwright for Python, for the dashboard's browser tests.

Debian's Chromium is used (``.ci/run`` installs the ``chromium`` package); Playwright's own browser builds are
never downloaded: the pip package brings only its driver, and :func:`launch` passes ``executable_path``. The
Debian launcher ``/usr/bin/chromium`` is a shell script that sources ``/etc/chromium.d`` (which adds
``--load-extension``, ``--enable-remote-extensions``, GPU rasterisation) and execs
``/usr/lib/chromium/chromium``; like tests/realclients/chromium.py we run that binary directly when it is there,
so that only the flags below apply.

:func:`unavailable_reason` says why the browser tests cannot run (``None`` when they can); the ``chromium``
fixture in conftest.py skips with it locally and fails under ``CI=true``. :func:`run_axe` runs the vendored
axe-core (tests/vendor/axe.min.js, see tests/vendor/README) on a page and returns its violations.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realclients.chromium import BASE_FLAGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LAUNCHER = "/usr/bin/chromium"  # what Debian's chromium package installs (and what CI checks for)
DEBIAN_BINARY = "/usr/lib/chromium/chromium"  # the launcher's exec target
# The flags the Chromium real-client probe starts with (no sandbox as root, no background network, no
# extensions…), less the two Playwright sets itself (headless mode, its own pipe), plus no QUIC.
ARGS = (
    *(f for f in BASE_FLAGS if f not in ("--headless=new", "--remote-debugging-pipe")),
    "--disable-quic",
)
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# axe-core's impact levels (axe-core doc/API.md, "Results Object"), least to most severe.
IMPACTS = ("minor", "moderate", "serious", "critical")


def executable() -> str:
    """The Chromium binary to launch: Debian's real binary when present, else the launcher."""
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else LAUNCHER


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here (a one-line reason), or ``None`` when Playwright and Chromium are
    both installed."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not os.access(LAUNCHER, os.X_OK):
        return f"{LAUNCHER} is not installed (Debian package chromium)"
    return None


@contextmanager
def launch() -> Iterator[Browser]:
    """A headless Chromium (Playwright :class:`Browser`), closed on exit.

    Its user data lives in a temporary directory Playwright creates per launch; HOME is a temporary directory
    too, so nothing from the user's own profile or NSS database is read."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="certdoctor-chromium-") as home, sync_playwright() as playwright:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHROMIUM_", "GOOGLE_"))}
        env["HOME"] = home
        browser = playwright.chromium.launch(
            executable_path=executable(), headless=True, args=list(ARGS), env=env, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


def run_axe(page: Page, *, context: str | None = None) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` as it is now: a list of ``{"id", "impact", "description", "help",
    "helpUrl", "nodes": [{"target", "html", "failureSummary", ...}], ...}`` (axe-core doc/API.md, "Results
    Object"); empty when axe finds nothing.

    The script is injected as ``<script src>`` content by Playwright (``page.add_script_tag(path=...)``). A
    page whose Content-Security-Policy forbids inline scripts blocks that: run axe in a context opened with
    ``bypass_csp=True`` (for the accessibility check only). ``context`` is an optional CSS selector to limit
    the run to. Raises RuntimeError when axe could not be loaded into the page."""
    from playwright.sync_api import Error as PlaywrightError

    if page.evaluate("typeof window.axe") != "object":
        try:
            page.add_script_tag(path=str(AXE))
        except PlaywrightError as exc:  # Playwright reports the blocked script as an error of its own
            raise RuntimeError(f"axe-core did not load: {exc.message.splitlines()[0]}") from exc
    if page.evaluate("typeof window.axe") != "object":
        raise RuntimeError("axe-core did not load (a Content-Security-Policy without bypass_csp blocks it)")
    results = page.evaluate(
        "async (context) => await window.axe.run(context || document, {resultTypes: ['violations']})",
        context,
    )
    return list(results["violations"])


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The violations whose impact is "serious" or "critical"."""
    return [v for v in violations if v.get("impact") in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    """A readable list of violations: one line per rule with its impact and help, then the offending nodes."""
    lines = []
    for v in violations:
        lines.append(f"{v.get('impact')}: {v['id']}: {v.get('help')} ({len(v.get('nodes', []))} nodes)")
        lines += [f"    {node.get('target')}: {node.get('html', '')[:160]}" for node in v.get("nodes", [])[:5]]
    return "\n".join(lines)
