"""The browser harness itself (tests/browser.py, the ``chromium``/``new_context`` fixtures): Debian's Chromium
starts under Playwright and loads a page from a server of our own on 127.0.0.1; the vendored axe-core loads and
reports a known violation; a Content-Security-Policy without 'unsafe-inline' blocks the injected axe script
unless the context bypasses CSP (which only the accessibility run may do); and the dialog/console listeners
the hostile-fields test relies on do see a script that runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import browser

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"

PAGES = {
    # A labelled form and a table with headers; one image without alt text (axe: image-alt, critical).
    "/": b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>harness</title></head>
<body><main><h1>Harness</h1>
<form id="f"><label for="q">Search</label><input id="q" name="q"></form>
<img src="/pixel.png">
<table><thead><tr><th scope="col">a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>
</main></body></html>""",
    # A page whose external script (allowed by the CSP: 'self') alerts, logs an error and sets a flag.
    "/alerting": b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>alerting</title>
<script src="/alert.js"></script></head><body><main><h1>alerting</h1></main></body></html>""",
    # An inline script (forbidden by the CSP) that would set the flag.
    "/inline": b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>inline</title>
<script>window.__pwned = 1</script></head><body><main><h1>inline</h1></main></body></html>""",
}
SCRIPTS = {"/alert.js": b"window.__pwned = 1; console.error('pwned'); alert('pwned');"}
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a9a40000000049454e44ae426082"
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path in PAGES:
            body, kind = PAGES[path], "text/html; charset=utf-8"
        elif path in SCRIPTS:
            body, kind = SCRIPTS[path], "text/javascript"
        elif path == "/pixel.png":
            body, kind = PIXEL, "image/png"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """Base URL of a tiny server on 127.0.0.1 serving :data:`PAGES` with the dashboard's kind of CSP."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_chromium_loads_a_loopback_page(new_context: Any, site: str) -> None:
    page = new_context().new_page()
    answer = page.goto(site + "/")
    assert answer is not None and answer.status == 200
    assert answer.headers["content-security-policy"] == CSP
    assert page.locator("h1").text_content() == "Harness"
    assert page.evaluate("navigator.userAgent").find("Chrome/") > 0


def test_axe_is_blocked_by_csp_and_runs_when_bypassed(new_context: Any, site: str) -> None:
    strict = new_context().new_page()
    strict.goto(site + "/")
    with pytest.raises(RuntimeError, match=r"^axe-core did not load"):
        browser.run_axe(strict)

    page = new_context(bypass_csp=True).new_page()
    page.goto(site + "/")
    violations = browser.run_axe(page)
    ids = {v["id"]: v["impact"] for v in violations}
    assert ids.get("image-alt") == "critical", browser.describe(violations)
    assert [v["id"] for v in browser.serious(violations)] == ["image-alt"], browser.describe(violations)
    assert "label" not in ids  # the search field has its label


def test_dialog_and_console_listeners_see_a_script_that_runs(new_context: Any, site: str) -> None:
    page = new_context().new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(site + "/alerting")
    assert page.evaluate("window.__pwned") == 1
    assert dialogs == ["pwned"]
    assert "pwned" in errors


def test_csp_blocks_an_inline_script(new_context: Any, site: str) -> None:
    page = new_context().new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(site + "/inline")
    assert page.evaluate("window.__pwned") is None
    assert any("Content Security Policy" in e for e in errors), errors
