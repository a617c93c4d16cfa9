"""Hostile AIA/OCSP/CRL URLs (issue 15): slow responders stay within one time budget, redirects carry no
credentials to another origin and no POST through a 307/308 to another origin, redirect loops end, and
--refuse-private-urls keeps every fetch off loopback and private addresses."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import jsonschemas
import pki_builder as pb
from certdoctor import diagnose
from certdoctor.cli import main
from certdoctor.collect.http import BoundedHttp
from certdoctor.collect.netguard import classify
from certdoctor.collect.revocation import RevocationFetcher

# --- a tiny HTTP server whose every answer the test decides ---------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body; or None: never answer


@dataclass
class Server:
    answer: Callable[[Seen], Answer | None]
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[Seen], Answer | None]], Server]]:
    started: list[tuple[ThreadingHTTPServer, Server]] = []

    def start(answer: Callable[[Seen], Answer | None]) -> Server:
        server = Server(answer)

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, self.headers.get("Authorization"), self.rfile.read(length))
                server.seen.append(seen)
                got = server.answer(seen)
                if got is None:  # stall until the test ends
                    server.stop.wait(30)
                    return
                status, headers, body = got
                try:
                    self.send_response(status)
                    for name, value in {**headers, "Content-Length": str(len(body))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (as it should)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.handle_error = lambda *args: None  # type: ignore[method-assign]
        server.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append((httpd, server))
        return server

    yield start
    for httpd, server in started:
        server.stop.set()
        httpd.shutdown()
        httpd.server_close()


def redirect(status: int, location: str) -> Answer:
    return status, {"Location": location}, b""


def der(issued: pb.Issued) -> Answer:
    return 200, {"Content-Type": "application/pkix-cert"}, issued.cert.public_bytes(Encoding.DER)


def fetch(method: str, url: str, **kw: Any) -> Any:
    async def go() -> Any:
        async with BoundedHttp(timeout=5.0) as http:
            return await http.request(method, url, **kw)

    return asyncio.run(go())


# --- one time budget for every AIA level -------------------------------------------------------------------


def _three_levels(base: str, tmp_path: Path) -> tuple[dict[str, pb.Issued], Path, Path]:
    """root ← i3 ← i2 ← i1 ← leaf; each certificate's AIA points at its issuer on ``base``; only the leaf is
    in the chain file (every intermediate must come through AIA, one level after the other)."""
    root = pb.root("Budget Root")
    i3 = pb.intermediate("Budget I3", root)
    i2 = pb.intermediate("Budget I2", i3, aia_ca_issuers=f"{base}/i3.cer")
    i1 = pb.intermediate("Budget I1", i2, aia_ca_issuers=f"{base}/i2.cer")
    leaf = pb.leaf("budget.test", i1, aia_ca_issuers=f"{base}/i1.cer")
    chain, anchor = tmp_path / "leaf.pem", tmp_path / "root.pem"
    chain.write_bytes(leaf.cert.public_bytes(Encoding.PEM))
    anchor.write_bytes(root.cert.public_bytes(Encoding.PEM))
    return {"/i1.cer": i1, "/i2.cer": i2, "/i3.cer": i3}, chain, anchor


def test_slow_aia_levels_share_one_budget_with_default_options(http_server, tmp_path) -> None:
    """Each level answers after 2 s: one after another, three levels took 6 s; the default 5 s budget stops at
    5 s and names the URL that did not answer in time. (2 s, not more: the third request must start with time
    left, which a whole second leaves even on a loaded machine.)"""
    certs: dict[str, pb.Issued] = {}

    def slow(seen: Seen) -> Answer:
        time.sleep(2.0)
        return der(certs[seen.path])

    server = http_server(slow)
    built, chain, anchor = _three_levels(server.base, tmp_path)
    certs.update(built)
    started = time.perf_counter()
    d = diagnose(files=[str(chain)], ca_bundle=[str(anchor)], at=pb.AT, revocation=False, clients=False)
    elapsed = time.perf_counter() - started
    assert 4.5 < elapsed < 6.3, elapsed
    assert [s.path for s in server.seen] == ["/i1.cer", "/i2.cer", "/i3.cer"]
    late = f"{server.base}/i3.cer"
    assert d.evidence.aia[f"{server.base}/i1.cer"].certs and d.evidence.aia[f"{server.base}/i2.cer"].certs
    assert d.evidence.aia[late].error == "timed out: not answered within the 5 s AIA time budget"
    (finding,) = [f for f in d.findings if f.id == "missing-intermediate"]
    assert f"{late} failed: timed out: not answered within the 5 s AIA time budget" in finding.detail
    assert f"AIA downloads stopped after 5 s; not answered in time: {late}" in d.notes


def test_stalled_aia_returns_within_aia_timeout(http_server, tmp_path, capsys) -> None:
    server = http_server(lambda seen: None)  # never answers
    _, chain, anchor = _three_levels(server.base, tmp_path)
    started = time.perf_counter()
    argv = ["check", "--file", str(chain), "--ca-bundle", str(anchor), "--at", pb.AT.isoformat(), "--no-clients"]
    code = main([*argv, "--no-revocation", "--aia-timeout", "1", "--json"])
    assert time.perf_counter() - started < 3.0
    assert code == 1
    doc = jsonschemas.loads(capsys.readouterr().out)
    (finding,) = [f for f in doc["findings"] if f["id"] == "missing-intermediate"]
    assert finding["evidence"]["aia_results"] == [
        f"{server.base}/i1.cer failed: timed out: not answered within the 1 s AIA time budget"
    ]
    assert doc["notes"] == [f"AIA downloads stopped after 1 s; not answered in time: {server.base}/i1.cer"]


# --- redirects ------------------------------------------------------------------------------------------------


def test_credentials_stay_with_their_origin(http_server) -> None:
    """A user:pass@ URL's Basic credentials follow a redirect within the origin, never to another one."""
    other = http_server(lambda seen: (200, {}, b"there"))
    first = http_server(
        lambda seen: redirect(302, f"{other.base}/end") if seen.path == "/away" else
        redirect(302, "/end") if seen.path == "/near" else (200, {}, b"here")
    )  # fmt: skip
    url = f"http://user:secret@127.0.0.1:{first.port}"
    assert fetch("GET", f"{url}/away").body == b"there"
    assert fetch("GET", f"{url}/near").body == b"here"
    basic = "Basic dXNlcjpzZWNyZXQ="
    assert [(s.path, s.authorization) for s in first.seen] == [("/away", basic), ("/near", basic), ("/end", basic)]
    assert [(s.path, s.authorization) for s in other.seen] == [("/end", None)]


@pytest.mark.parametrize("status", [307, 308])
def test_ocsp_post_is_not_resent_to_another_origin(http_server, status) -> None:
    other = http_server(lambda seen: (404, {}, b"not here"))
    first = http_server(lambda seen: redirect(status, f"{other.base}{seen.path}"))
    ca = pb.root("Redirect Root")
    leaf = pb.leaf("redirect.test", ca)

    async def go() -> Any:
        async with RevocationFetcher(timeout=5.0) as fetcher:
            return await fetcher.ocsp(f"{first.base}/ocsp", leaf.cert, ca.cert)

    got = asyncio.run(go())
    assert got.data is None
    assert f"POST: refused to re-send the POST to another origin ({other.base}) through an HTTP {status}" in got.error
    assert "POST" not in [s.method for s in other.seen]  # the GET fallback may follow the redirect: it has no body
    assert [s.method for s in first.seen] == ["POST", "GET"]


def test_post_follows_a_307_within_its_origin(http_server) -> None:
    server = http_server(
        lambda seen: redirect(307, "/moved") if seen.path == "/ocsp" else (200, {}, b"answer:" + seen.body)
    )
    got = fetch("POST", f"{server.base}/ocsp", content=b"request", headers={"Content-Type": "application/ocsp-request"})
    assert got.body == b"answer:request"
    assert [(s.method, s.path) for s in server.seen] == [("POST", "/ocsp"), ("POST", "/moved")]


def test_redirect_loop_stops_after_three_redirects(http_server) -> None:
    server = http_server(lambda seen: redirect(302, seen.path))
    got = fetch("GET", f"{server.base}/loop")
    assert got.error == "more than 3 redirects" and got.status == 302
    assert len(server.seen) == 4  # the request and three redirects


def test_redirect_to_another_scheme_is_an_error(http_server) -> None:
    server = http_server(lambda seen: redirect(302, "file:///etc/passwd"))
    assert fetch("GET", f"{server.base}/x").error == "unsupported URL scheme (after a redirect)"


# --- --refuse-private-urls -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.8.8", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.1.2.3", "an RFC 1918 private address"),
        ("172.31.255.255", "an RFC 1918 private address"),
        ("192.168.0.1", "an RFC 1918 private address"),
        ("fd12:3456::1", "an RFC 4193 unique local address"),
        ("100.64.0.1", "an RFC 6598 shared (CGNAT) address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1%1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("8.8.8.8", None),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address: str, kind: str | None) -> None:
    assert classify(address) == kind


def test_a_name_is_judged_by_the_address_it_resolves_to(http_server) -> None:
    """The check is made at connect time on the resolved address, not on the URL's host."""
    server = http_server(lambda seen: (200, {}, b"secret"))

    async def go() -> Any:
        async with BoundedHttp(timeout=5.0, refuse_private=True) as http:
            return await http.request("GET", f"http://localhost:{server.port}/admin")

    got = asyncio.run(go())
    assert got.body is None
    assert got.error in (
        "refused: localhost resolves to 127.0.0.1, a loopback address (--refuse-private-urls)",
        "refused: localhost resolves to ::1, a loopback address (--refuse-private-urls)",
    )
    assert server.seen == []


@pytest.fixture
def lab_requests(lab, monkeypatch) -> list[str]:
    """The paths of every request the lab's AIA/OCSP/CRL server answers during the test."""
    seen: list[str] = []
    dispatch = lab.router.dispatch

    async def counting(request: Any) -> Any:
        seen.append(request.path)
        return await dispatch(request)

    monkeypatch.setattr(lab.router, "dispatch", counting)
    return seen


def _check_json(lab, name: str, capsys, *extra: str) -> dict[str, Any]:
    main([*lab.endpoints[name].check_argv(lab.root_path), "--no-clients", "--json", *extra])
    return jsonschemas.loads(capsys.readouterr().out)


REFUSED = "refused: 127.0.0.1 is a loopback address (--refuse-private-urls)"


def test_refuse_private_urls_keeps_aia_off_the_lab(lab, lab_requests, capsys) -> None:
    doc = _check_json(lab, "incomplete-aia", capsys, "--refuse-private-urls")
    assert lab_requests == []
    (finding,) = [f for f in doc["findings"] if f["id"] == "missing-intermediate"]
    assert REFUSED in finding["detail"]
    _check_json(lab, "incomplete-aia", capsys)  # the default: the lab's AIA server is asked
    assert lab_requests != []


def test_refuse_private_urls_keeps_revocation_off_the_lab(lab, lab_requests, capsys) -> None:
    doc = _check_json(lab, "revoked-ocsp", capsys, "--refuse-private-urls")
    assert lab_requests == []
    unknown = [f for f in doc["findings"] if f["id"] == "revocation-unknown"]
    assert unknown and all(REFUSED in f["detail"] for f in unknown)
    assert "revoked" not in [f["id"] for f in doc["findings"]]
