"""`certdoctor scan`: input parsing, streaming records, resume, error records, limits — against the lab."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import jsonschemas
from certdoctor.api import DiagnoseOptions
from certdoctor.cli import main
from certdoctor.lab import Lab
from certdoctor.scan import BadLine, Engine, ScanOptions, ScanTarget, parse_line, read_targets
from certdoctor.scan.driver import done_keys

CERTDOCTOR = [sys.executable, "-m", "certdoctor.cli"]
MIX = ["good-rsa", "good-ecdsa", "expired", "wrong-host", "incomplete-aia", "revoked-ocsp", "good-stapled"]


def line_for(lab: Lab, name: str, **options: str) -> str:
    ep = lab.endpoints[name]
    extra = "".join(f",{k}={v}" for k, v in options.items())
    return f"{ep.hostname}:{ep.port},addr={ep.addresses[0]}{extra}"


def write_targets(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    return path


def records(text: str) -> list[dict[str, Any]]:
    return [jsonschemas.loads(x) for x in text.splitlines() if x.strip()]


# --- input ------------------------------------------------------------------------------------------------


def test_target_lines() -> None:
    t = parse_line(1, "example.com")
    assert isinstance(t, ScanTarget) and (t.host, t.port, t.sni, t.name, t.addresses) == (
        "example.com",
        443,
        "example.com",
        "example.com",
        (),
    )
    t = parse_line(2, "  https://api.example.com:8443/health  # prod")
    assert isinstance(t, ScanTarget) and (t.host, t.port, t.text) == (
        "api.example.com",
        8443,
        "https://api.example.com:8443/health",
    )
    t = parse_line(3, "example.com:443,sni=www.example.com,addr=192.0.2.1,addr=[2001:db8::1]")
    assert isinstance(t, ScanTarget)
    assert (t.sni, t.name, t.addresses) == ("www.example.com", "example.com", ("192.0.2.1", "2001:db8::1"))
    t = parse_line(4, "192.0.2.7:993,name=mail.example.com")
    assert isinstance(t, ScanTarget) and (t.host, t.port, t.sni, t.name) == (
        "192.0.2.7",
        993,
        "mail.example.com",
        "mail.example.com",
    )
    t = parse_line(5, "[2001:db8::5]:8443")
    assert isinstance(t, ScanTarget) and (t.host, t.port, t.sni) == ("2001:db8::5", 8443, None)
    assert parse_line(6, "   ") is None and parse_line(7, "# comment") is None
    for raw, reason in [
        ("example.com:99999", "invalid port"),
        ("exa mple.com", "not a target"),
        ("example.com,addr=not-an-ip", "is not an IP address"),
        ("example.com,color=blue", "unknown option 'color'"),
        ("example.com,sni", "expected key=value"),
        ("x" * 5000, "longer than 4096"),
    ]:
        bad = parse_line(9, raw)
        assert isinstance(bad, BadLine) and reason in bad.reason and bad.line == 9, (raw, bad)


def test_common_lines_read_like_the_general_parser() -> None:
    """The fast path for plain lines gives exactly what the general parser gives, and leaves it what it cannot
    vouch for."""
    from certdoctor.scan.targets import _parse_general

    lines = [
        "example.com",
        "example.com.",
        "Example.COM:8443",
        "under_score.example:443",
        "example.com:0443",
        "192.0.2.7",
        "192.0.2.7:993",
        "example.com:443,addr=127.0.0.1",
        "good.certdoctor.test:54679,addr=127.0.0.1",
        "192.0.2.7:443,addr=192.0.2.8",
        "example.com:0",
        "example.com:65536",
        "example.com:99999",
        "example.com,addr=999.1.1.1",
        "example.com,addr=1.2.3.4.5",
        "localhost",
        "-",
        "-a.example",
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5 + "test",
    ]
    for line in lines:
        assert parse_line(4, line) == _parse_general(4, line), line
    assert isinstance(parse_line(1, "example.com:65536"), BadLine)
    assert isinstance(parse_line(1, "example.com,addr=999.1.1.1"), BadLine)


def test_csv_input_with_header_and_bad_rows() -> None:
    lines = [
        "# exported from the CMDB",
        "host,port,sni,addr",
        "a.example,8443,,192.0.2.1|192.0.2.2",
        "b.example,,www.b.example,",
        ",443,,",
        "c.example,443,,,extra",
    ]
    got = list(read_targets(lines))
    a, b, empty, wide = got
    assert isinstance(a, ScanTarget) and (a.line, a.port, a.addresses) == (3, 8443, ("192.0.2.1", "192.0.2.2"))
    assert isinstance(b, ScanTarget) and (b.port, b.sni) == (443, "www.b.example")
    assert isinstance(empty, BadLine) and empty.line == 5 and "empty host" in empty.reason
    assert isinstance(wide, BadLine) and "the header has 4" in wide.reason


# --- streaming records against the lab ------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_scan_gives_each_target_the_same_findings_as_check(
    lab: Lab, tmp_path: Path, workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [line_for(lab, name) for name in MIX] * 3 + ["not a target", "# done"]
    src = write_targets(tmp_path / "targets.txt", lines)
    code = main(["scan", str(src), "--ca-file", str(lab.root_path), "--workers", workers, "--no-progress"])
    out, err = capsys.readouterr()
    got = records(out)
    assert code == 1  # some targets have problems
    assert len(got) == len(MIX) * 3 + 1 and sorted(r["line"] for r in got) == list(range(1, len(MIX) * 3 + 2))
    by_line = {r["line"]: r for r in got}
    bad = by_line[len(MIX) * 3 + 1]
    assert bad["verdict"] == "bad-input" and "not a target" in bad["error"]
    assert f"line {len(MIX) * 3 + 1}: not a target" in err
    for i, name in enumerate(MIX * 3, start=1):
        r = by_line[i]
        expected = set(lab.endpoints[name].scenario.expected)
        assert {f["id"] for f in r["findings"]} == expected, (name, r["findings"])
        assert r["verdict"] == ("valid" if not expected - {"stapling-absent"} else "invalid"), name
        assert r["target"] == lines[i - 1] and r["endpoints"][0]["ok"] is True
        assert r["leaf"]["subject"] == f"CN={lab.endpoints[name].hostname}" or name == "wrong-host"
    assert "certdoctor scan" in err and f"{len(MIX) * 3 + 1} in" in err


def test_default_workers_adapt_to_idle_cpu(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --workers, helper processes (forked in reserve before the event loop runs, where fork is the
    platform's safe start method) take targets only while this process is CPU-bound and cores are idle."""
    from certdoctor.scan import driver

    busy = _sample(process=0.9, wall=1.0, idle=10, total=100)  # 1 s: this process 90 % busy, 10 % idle
    assert driver.wants_helper(_sample(0, 0, 0, 0), _sample(0.9, 1.0, 60, 100), cores=2)  # 1.2 cores idle
    assert not driver.wants_helper(_sample(0, 0, 0, 0), busy, cores=2)  # the cores are busy (local servers)
    assert not driver.wants_helper(_sample(0, 0, 0, 0), _sample(0.3, 1.0, 60, 100), cores=2)  # waiting on I/O

    activations: list[int] = []
    original = driver._Pool._start

    def start(self: Any, count: int) -> None:
        original(self, count)
        activations.append(self.active)

    monkeypatch.setattr(driver._Pool, "_start", start)
    monkeypatch.setattr(driver._Pool, "CONTROL_SECONDS", 0.05)
    monkeypatch.setattr(driver, "wants_helper", lambda before, after, cores: True)
    lines = [line_for(lab, name) for name in MIX] * 40
    src = write_targets(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    code = main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "--no-progress", "--quiet"])
    got = records(out.read_text())
    assert code == 1 and sorted(r["line"] for r in got) == list(range(1, len(lines) + 1))
    for r in got:
        name = MIX[(r["line"] - 1) % len(MIX)]
        assert {f["id"] for f in r["findings"]} == set(lab.endpoints[name].scenario.expected), name
    cores = os.cpu_count() or 1
    if cores > 1:
        assert activations and activations[-1] <= cores - 1  # helpers joined, never more than cores - 1

    forked: list[tuple[str, int]] = []
    original_fork = driver._Pool._fork

    def fork(self: Any, count: int) -> None:
        original_fork(self, count)
        forked.append((self.ctx.get_start_method(), self.active))

    monkeypatch.setattr(driver._Pool, "_fork", fork)
    monkeypatch.setattr(driver, "wants_helper", lambda before, after, cores: False)
    activations.clear()
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "--no-progress", "-q"]) == 1
    assert activations == [] and len(records(out.read_text())) == len(lines)
    if cores > 1 and driver.START_METHOD == "fork":  # in reserve, never wanted: forked, no target taken
        assert forked == [("fork", 0)]


def _sample(process: float, wall: float, idle: int, total: int) -> Any:
    from certdoctor.scan.driver import _CpuSample

    return _CpuSample(process, wall, idle, total)


def test_csv_output_and_output_file(lab: Lab, tmp_path: Path) -> None:
    src = write_targets(tmp_path / "t.txt", [line_for(lab, "expired"), line_for(lab, "good-rsa")])
    out = tmp_path / "out.csv"
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "--csv", "-o", str(out), "-q"]) == 1
    import csv

    rows = list(csv.DictReader(out.open()))
    assert [r["line"] for r in sorted(rows, key=lambda r: r["line"])] == ["1", "2"]
    row = {r["line"]: r for r in rows}
    assert row["1"]["verdict"] == "invalid" and row["1"]["findings"] == "expired" and float(row["1"]["days_left"]) < 0
    assert row["2"]["verdict"] == "valid" and row["2"]["errors"] == "0"


def test_full_records_are_check_json_documents(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_targets(tmp_path / "t.txt", [line_for(lab, "revoked-crl")])
    main(["scan", str(src), "--ca-file", str(lab.root_path), "--full", "--clients", "-q"])
    (r,) = records(capsys.readouterr().out)
    assert r["line"] == 1 and r["target"] == line_for(lab, "revoked-crl") and r["checked"]["port"]
    assert r["chains"][0]["revocation"][0]["status"] == "revoked" and {c["client"] for c in r["clients"]} >= {"curl"}


# --- faults -----------------------------------------------------------------------------------------------


class _OneShot:
    """Reads what the client sends, answers ``reply`` and closes (a thread; loopback only)."""

    reply = b""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(self.reply)


class _CloseMidHandshake(_OneShot):
    """A server dying mid-handshake: the start of a ServerHello, then nothing."""

    reply = b"\x16\x03\x03\x00\x40\x02\x00\x00\x3c"


class _PlainHttp(_OneShot):
    """An HTTP server on the port the client thinks is TLS."""

    reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def test_faults_become_error_records_and_the_scan_finishes(lab: Lab, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
    mid = _CloseMidHandshake()
    http = _PlainHttp()
    lines = [
        "does-not-exist.invalid:443",
        f"127.0.0.1:{closed.getsockname()[1]}",
        f"{lab.endpoints['stall'].hostname}:{lab.endpoints['stall'].port},addr=127.0.0.1",
        f"{lab.endpoints['garbage'].hostname}:{lab.endpoints['garbage'].port},addr=127.0.0.1",
        f"127.0.0.1:{http.port}",  # plain HTTP on the "TLS" port
        f"127.0.0.1:{mid.port}",
        line_for(lab, "good-rsa"),
    ]
    src = write_targets(tmp_path / "faults.txt", lines)
    started = time.monotonic()
    proc = subprocess.run(
        [*CERTDOCTOR, "scan", str(src), "--ca-file", str(lab.root_path), "--timeout", "2", "--retries", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    closed.close()
    mid.sock.close()
    http.sock.close()
    assert proc.returncode == 1, proc.stderr
    by_line = {r["line"]: r for r in records(proc.stdout)}
    assert sorted(by_line) == list(range(1, len(lines) + 1))
    assert by_line[1]["verdict"] == "unreachable" and by_line[1]["error_kind"] == "resolve"
    kinds = {n: by_line[n]["endpoints"][0]["error_kind"] for n in (2, 3, 4, 5, 6)}
    assert kinds == {2: "connect", 3: "timeout", 4: "not-tls", 5: "not-tls", 6: "handshake"}, kinds
    assert "connection refused" in by_line[2]["endpoints"][0]["error"]
    assert all(by_line[n]["verdict"] == "unreachable" for n in range(1, 7))
    assert by_line[7]["verdict"] == "valid"
    assert elapsed < 20  # the stalled server costs one --timeout (no retry: a handshake timeout is not transient)
    assert "unreachable" in proc.stderr


def test_transient_failures_are_retried_with_backoff(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    seen: list[float] = []

    def serve() -> None:  # accept and close at once: "closed the connection without answering"
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            seen.append(time.monotonic())
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    got: list[str] = []
    target = parse_line(1, f"127.0.0.1:{port}")
    assert isinstance(target, ScanTarget)
    asyncio.run(Engine(ScanOptions(retries=2), lambda line, meta: got.append(line)).run([target]))
    sock.close()
    (record,) = records("".join(got))
    # Each attempt is two connections: the common ClientHello, then the legacy one (a silent close may be a
    # server that shares no cipher suite with the first).
    assert record["attempts"] == 3 and len(seen) == 6
    assert seen[1] - seen[0] < 0.2 and seen[3] - seen[2] < 0.2 and seen[5] - seen[4] < 0.2
    assert seen[2] - seen[1] >= 0.2 and seen[4] - seen[3] >= 0.4  # jittered 0.5 s, then 1 s


# --- limits -----------------------------------------------------------------------------------------------


class _CountingServer:
    """Holds each connection 0.3 s, counting how many are open at once and when each arrived."""

    def __init__(self) -> None:
        self.open = 0
        self.peak = 0
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.open += 1
                self.peak = max(self.peak, self.open)
                self.arrivals.append(time.monotonic())
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        time.sleep(0.3)
        with self.lock:
            self.open -= 1
        conn.close()


def test_concurrency_and_rate_limits_are_obeyed() -> None:
    server = _CountingServer()
    targets = [t for t in read_targets([f"127.0.0.1:{server.port}"] * 20) if isinstance(t, ScanTarget)]
    got: list[str] = []
    asyncio.run(Engine(ScanOptions(concurrency=4, retries=0), lambda line, meta: got.append(line)).run(targets))
    assert len(got) == 20 and server.peak == 4
    server.arrivals.clear()
    server.peak = 0
    asyncio.run(
        Engine(ScanOptions(concurrency=50, rate=20, retries=0), lambda line, meta: got.append(line)).run(targets)
    )
    server.sock.close()
    arrivals = sorted(server.arrivals)
    # Each target is two connections (the server closes without answering: the legacy ClientHello follows),
    # and the cap counts both. A bucket of 20 tokens refilled at 20/s: a burst of 20, then one every 50 ms, so
    # at most 30 (+1) in the first half second, and the 40 take at least ~1 s.
    assert len(arrivals) == 40
    assert len([b for b in arrivals if b - arrivals[0] < 0.5]) <= 31
    assert arrivals[-1] - arrivals[0] >= 0.9


def test_identical_chains_are_judged_once_and_responders_asked_once(lab: Lab) -> None:
    lines = [line_for(lab, "revoked-ocsp")] * 30 + [line_for(lab, "revoked-crl")] * 30
    targets = [t for t in read_targets(lines) if isinstance(t, ScanTarget)]
    got: list[str] = []
    engine = Engine(
        ScanOptions(concurrency=20, diagnose=DiagnoseOptions(ca_files=(str(lab.root_path),))),
        lambda x, m: got.append(x),
    )
    asyncio.run(engine.run(targets))
    assert len(got) == 60 and all(r["verdict"] == "invalid" for r in records("".join(got)))
    session = engine.session
    assert session is not None
    # each chain judged once; the other 58 targets reuse that judgement (or the whole record, for a target
    # presenting exactly the same evidence as an earlier one)
    assert session.chain_misses == 2 and session.chain_hits + engine.record_hits == 58
    stats = session.revocation_fetcher_stats
    # revoked-ocsp: leaf + intermediate by OCSP; revoked-crl: leaf by CRL (its intermediate shares the OCSP answer)
    assert stats["ocsp_queries"] == 2 and stats["crl_downloads"] == 1


# --- resume and Ctrl-C ------------------------------------------------------------------------------------


def test_resume_skips_finished_targets_and_repairs_a_torn_line(lab: Lab, tmp_path: Path) -> None:
    lines = [line_for(lab, name) for name in MIX]
    src = write_targets(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "-q"]) == 1
    full = out.read_text().splitlines(keepends=True)
    kept = [x for x in full if json.loads(x)["line"] in (2, 4, 6)]
    out.write_text("".join(kept) + full[0][:25])  # killed mid-write: a torn last line
    assert done_keys(out) == {(n, lines[n - 1]) for n in (2, 4, 6)}
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "--resume", str(out), "-q"]) == 1
    final = records(out.read_text())
    assert sorted(r["line"] for r in final) == list(range(1, len(MIX) + 1))
    assert Counter(r["line"] for r in final).most_common(1)[0][1] == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_writes_what_is_done_and_exits_cleanly(lab: Lab, tmp_path: Path, workers: str) -> None:
    stall = f"{lab.endpoints['stall'].hostname}:{lab.endpoints['stall'].port},addr=127.0.0.1"
    lines = [line_for(lab, "good-rsa")] * 4 + [stall] * 4
    src = write_targets(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [
            *CERTDOCTOR,
            "scan",
            str(src),
            "--ca-file",
            str(lab.root_path),
            "--timeout",
            "60",
            "-o",
            str(out),
            "-w",
            workers,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    done = records(out.read_text())
    assert len(done) == 4 and all(r["verdict"] == "valid" for r in done)
    assert "interrupted" in err and "Traceback" not in err


def test_every_record_reaches_a_pipe_before_the_fast_exit(lab: Lab, tmp_path: Path) -> None:
    """The console script skips the interpreter's teardown after a scan (os._exit): what is buffered on stdout
    and stderr is flushed first."""
    src = write_targets(tmp_path / "many.txt", [line_for(lab, "good-rsa")] * 600)
    proc = subprocess.run(
        [*CERTDOCTOR, "scan", str(src), "--ca-file", str(lab.root_path), "--jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = records(proc.stdout)
    assert sorted(r["line"] for r in got) == list(range(1, 601))
    assert all(r["verdict"] == "valid" for r in got)
    assert "600 in" in proc.stderr  # the summary table, written to stderr last


def test_help_has_examples() -> None:
    proc = subprocess.run([*CERTDOCTOR, "scan", "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "--resume" in proc.stdout and "addr=192.0.2.10" in proc.stdout


@pytest.mark.skipif(shutil.which("certdoctor") is None and os.environ.get("CI") is None, reason="not installed")
def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([*CERTDOCTOR, "scan", str(tmp_path / "missing.txt")], capture_output=True, text=True)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    src = write_targets(tmp_path / "t.txt", ["example.com"])
    proc = subprocess.run([*CERTDOCTOR, "scan", str(src), "--concurrency", "0"], capture_output=True, text=True)
    assert proc.returncode == 2


# --- several addresses, schemes, resume counting, empty input, --fail-on ------------------------------------


def test_records_carry_every_address_and_the_worst_leaf_on_top(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """multi-address: 127.0.0.2 serves a leaf that expired 30 days ago; the first address's leaf has 89 days."""
    ep = lab.endpoints["multi-address"]
    line = f"{ep.hostname}:{ep.port},addr=127.0.0.1,addr=127.0.0.2"
    src = write_targets(tmp_path / "t.txt", [line, line_for(lab, "good-rsa")])
    out = tmp_path / "out.jsonl"
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    r = {r["line"]: r for r in records(out.read_text())}[1]
    assert r["verdict"] == "invalid"
    first, second = r["endpoints"]
    assert (first["address"], second["address"]) == ("127.0.0.1", "127.0.0.2")
    assert first["leaf"]["days_left"] > 80 and second["leaf"]["days_left"] < -29
    assert first["leaf"]["sha256"] != second["leaf"]["sha256"] and first["error"] is None
    assert r["leaf"]["days_left"] == second["leaf"]["days_left"] and r["leaf"]["sha256"] == second["leaf"]["sha256"]
    assert r["leaf"]["not_after"] == second["leaf"]["not_after"] and r["leaf"]["address"] == "127.0.0.2"
    assert r["leaf"]["subject"] == f"CN={ep.hostname}"
    soonest = err[err.index("soonest expiry") :]
    assert "-30 d" in soonest  # the expired address's leaf counts in the summary

    # the single-address record names its leaf's address too, per endpoint and on top
    single = {r["line"]: r for r in records(out.read_text())}[2]
    assert (
        single["leaf"]["address"] == "127.0.0.1"
        and single["endpoints"][0]["leaf"]["sha256"] == single["leaf"]["sha256"]
    )

    csv_out = tmp_path / "out.csv"
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "--csv", "-o", str(csv_out), "-q"]) == 1
    import csv

    row = {r["line"]: r for r in csv.DictReader(csv_out.open())}["1"]
    assert float(row["days_left"]) < -29 and row["leaf_address"] == "127.0.0.2"
    assert row["not_after"] == second["leaf"]["not_after"]

    # repeated lines are spliced from the first record: the same per-address content
    src = write_targets(tmp_path / "t2.txt", [line] * 5)
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "-q"]) == 1
    got = records(out.read_text())
    assert len(got) == 5 and all(g["leaf"]["address"] == "127.0.0.2" and len(g["endpoints"]) == 2 for g in got)


def test_schemes_other_than_tls_ones_are_bad_input() -> None:
    for raw in (
        "telnet://example.com/",
        "http://example.com",
        "gopher://example.com:70/",
        "telnet://example.com,addr=192.0.2.1",
    ):
        bad = parse_line(1, raw)
        assert isinstance(bad, BadLine) and "scheme" in bad.reason and "https" in bad.reason, raw
    for raw, port in (
        ("https://example.com/x", 443),
        ("HTTPS://example.com", 443),
        ("ldaps://example.com", 636),
        ("imaps://example.com", 993),
        ("smtps://example.com", 465),
        ("pop3s://example.com", 995),
    ):
        t = parse_line(1, raw)
        assert isinstance(t, ScanTarget) and t.port == port, raw
    (row,) = read_targets(["host,port", "telnet://example.com,23"])
    assert isinstance(row, BadLine) and "scheme" in row.reason


def test_resume_counts_the_earlier_verdicts(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [line_for(lab, "expired"), line_for(lab, "good-rsa"), "not a target"]
    src = write_targets(tmp_path / "t.txt", lines)
    for fmt in ("--jsonl", "--csv"):
        out = tmp_path / f"out{fmt}"
        assert main(["scan", str(src), "--ca-file", str(lab.root_path), fmt, "-o", str(out), "--no-progress"]) == 1
        capsys.readouterr()
        # everything is already done: the earlier records still decide the exit status and the verdicts
        code = main(["scan", str(src), "--ca-file", str(lab.root_path), fmt, "--resume", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert "1 valid" in err and "1 invalid" in err and "1 bad input" in err, err
        assert "3 from the earlier run" in err, err


def test_empty_input_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_targets(tmp_path / "t.txt", ["# nothing here", "", "   "])
    out = tmp_path / "out.jsonl"
    assert main(["scan", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nothing to scan" in err and len(err.strip().splitlines()) == 1, err
    proc = subprocess.run([*CERTDOCTOR, "scan", "-"], input="# none\n\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nothing to scan" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    csv_only = write_targets(tmp_path / "h.csv", ["host,port,sni"])
    assert main(["scan", str(csv_only), "-q"]) == 2


def test_fail_on_warning_counts_warnings_as_problems(lab: Lab, tmp_path: Path) -> None:
    src = write_targets(tmp_path / "t.txt", [line_for(lab, "expiring-soon"), line_for(lab, "good-rsa")])
    out = tmp_path / "out.jsonl"
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "-q"]) == 0
    r = {r["line"]: r for r in records(out.read_text())}[1]
    assert r["verdict"] == "valid" and r["summary"]["warnings"] >= 1
    args = ["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "-q", "--fail-on", "warning"]
    assert main(args) == 1
    assert main([*args[:-2], "--fail-on", "error"]) == 0
    # and the warnings of an earlier run count on --resume
    assert main([*args[:4], "--resume", str(out), "-q", "--fail-on", "warning"]) == 1


def test_help_states_the_exit_status_contract() -> None:
    proc = subprocess.run([*CERTDOCTOR, "scan", "--help"], capture_output=True, text=True, timeout=30)
    text = " ".join(proc.stdout.split())
    assert (
        "exit status: 0 every target valid, 1 problems found (invalid, unreachable target, or bad input line; "
        "warnings with --fail-on warning), 2 usage error, 130 interrupted" in text
    ), proc.stdout
