"""`certdoctor scan` against hostile input and hostile circumstances (issue 15): malformed lines, lines too long,
an output that is also the input, torn results files, SIGTERM and SIGHUP, absurd concurrency."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from certdoctor.cli import main
from certdoctor.lab import Lab
from certdoctor.scan import BadLine, ScanOptions, ScanTarget, driver, read_targets
from test_scan import CERTDOCTOR, line_for, records, write_targets

# --- item 2: one bad line is one bad-input record ------------------------------------------------------


def test_unreadable_lines_are_bad_input_records_and_the_scan_goes_on(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = line_for(lab, "good-rsa")
    bad = {
        "https://[::1/": "Invalid IPv6 URL",
        "https://[example.com]/": "does not appear to be an IPv4 or IPv6 address",
        "[::1:bad": "no closing ']'",
        "[::1": "no closing ']'",
        "[example.com]:443": "is not an IPv6 address",
        "[::1]443": "expected ':PORT'",
        "x" * 200_000: "line too long (200000 characters",
    }
    src = write_targets(tmp_path / "t.txt", [*bad, good])
    out = tmp_path / "out.jsonl"
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    got = {r["line"]: r for r in records(out.read_text())}
    assert sorted(got) == list(range(1, len(bad) + 2)), err
    for n, (text, reason) in enumerate(bad.items(), start=1):
        assert got[n]["verdict"] == "bad-input" and reason in got[n]["error"], (text[:40], got[n])
    assert got[7]["target"] == "x" * 80 + "…"  # a long line is not copied whole into its record
    assert got[len(bad) + 1]["verdict"] == "valid"
    assert "Traceback" not in err and "internal error" not in err


def test_a_first_line_longer_than_the_csv_field_limit_is_one_bad_line(lab: Lab, tmp_path: Path) -> None:
    """A first line is read as a possible CSV header; one longer than csv's 131,072-character field limit made
    the whole scan fail. Now it is a bad line, and CSV rows that long are too."""
    good = line_for(lab, "good-rsa")
    ep = lab.endpoints["good-rsa"]
    for lines in (
        ["h" * 140_000 + ",port", good],  # not a header: a bad line, then plain lines
        ["host,port,addr", "y" * 140_000 + ",443,", f"{ep.hostname},{ep.port},{ep.addresses[0]}"],
    ):
        src = write_targets(tmp_path / "t.csv", lines)
        out = tmp_path / "out.jsonl"
        assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "-q"]) == 1
        got = {r["line"]: r for r in records(out.read_text())}
        long = len(lines) - 1
        assert sorted(got) == [long, long + 1]
        assert got[long]["verdict"] == "bad-input" and got[long + 1]["verdict"] == "valid"
        assert got[long]["error"].startswith(f"line too long ({len(lines[long - 1])} characters")


def test_any_exception_while_reading_a_line_is_that_line_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from certdoctor.scan import targets

    real = targets.parse_target

    def fragile(spec: str) -> Any:
        if "boom" in spec:
            raise RuntimeError("a bug in the parser")
        return real(spec)

    monkeypatch.setattr(targets, "parse_target", fragile)
    got = list(read_targets(["https://boom.example/", "example.com:8443,sni=x", "host,port", "https://ok.example/"]))
    assert [type(x) for x in got] == [BadLine, ScanTarget, BadLine, ScanTarget]
    assert got[0].line == 1 and "RuntimeError: a bug in the parser" in got[0].reason  # type: ignore[union-attr]


def test_a_huge_line_is_never_held_whole_in_memory() -> None:
    from certdoctor.scan.targets import MAX_LINE, lines_of

    stream = io.StringIO("a.example\n" + "z" * 3_000_000 + "\nb.example:444\n")
    lines = list(lines_of(stream))
    assert [len(x) for x in lines] == [10, MAX_LINE + 2, 14]  # the beginning of the long one, and its length:
    assert lines[1].length == 3_000_000  # type: ignore[attr-defined]
    a, long, b = read_targets(lines)
    assert isinstance(long, BadLine) and long.reason == f"line too long (3000000 characters, longer than {MAX_LINE})"
    assert isinstance(a, ScanTarget) and isinstance(b, ScanTarget) and (b.line, b.port) == (3, 444)


# --- item 3: resume never destroys results --------------------------------------------------------------


def test_the_input_cannot_be_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_targets(tmp_path / "t.txt", ["example.com", "example.org"])
    before = src.read_bytes()
    (tmp_path / "link.txt").symlink_to(src)
    os.link(src, tmp_path / "hard.txt")
    for args in (
        ["--resume", str(src)],
        ["-o", str(src)],
        ["-o", str(tmp_path / "link.txt")],
        ["--resume", str(tmp_path / "hard.txt")],
        ["-o", str(tmp_path / ".." / tmp_path.name / "t.txt"), "--resume", str(src)],
    ):
        assert main(["scan", str(src), *args, "--timeout", "1"]) == 2, args
        err = capsys.readouterr().err
        assert "is the input" in err and len(err.strip().splitlines()) == 1, (args, err)
        assert src.read_bytes() == before, args
    # the same through stdin, and stdout appending to the input
    with src.open("rb") as stdin:
        proc = subprocess.run([*CERTDOCTOR, "scan", "-", "-o", str(src)], stdin=stdin, capture_output=True, timeout=60)
    assert proc.returncode == 2 and b"is the input (stdin)" in proc.stderr, proc.stderr
    with src.open("ab") as stdout:
        proc = subprocess.run([*CERTDOCTOR, "scan", str(src)], stdout=stdout, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 2 and b"stdout is the input" in proc.stderr, proc.stderr
    assert src.read_bytes() == before


def test_repair_tail_cuts_only_the_bytes_after_the_last_newline(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    complete = b'{"line":1}\n' + b'{"line":2,"pad":"' + b"p" * (3 << 20) + b'"}\n'
    for torn in (b"", b'{"li', *(b"t" * n for n in ((1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20))):
        path.write_bytes(complete + torn)
        driver.repair_tail(path)
        assert path.read_bytes() == complete, len(torn)
    path.write_bytes(b"t" * (2 << 20))  # no newline at all: all of it is the torn line
    driver.repair_tail(path)
    assert path.read_bytes() == b""


def test_resume_after_a_torn_record_over_a_mebibyte_keeps_the_earlier_records(lab: Lab, tmp_path: Path) -> None:
    lines = [line_for(lab, name) for name in ("good-rsa", "expired", "wrong-host", "good-ecdsa")]
    src = write_targets(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "-q"]) == 1
    kept = [x for x in out.read_text().splitlines(keepends=True) if json.loads(x)["line"] in (1, 3)]
    out.write_text("".join(kept) + '{"certdoctor":1,"kind":"scan-record","line":2,"full":"' + "f" * (2 << 20))
    assert main(["scan", str(src), "--ca-file", str(lab.root_path), "--resume", str(out), "-q"]) == 1
    text = out.read_text()
    assert text.startswith("".join(kept))
    assert sorted(r["line"] for r in records(text)) == [1, 2, 3, 4]


# --- item 4: SIGTERM and SIGHUP stop every process of the scan ------------------------------------------


def _group(pgid: int) -> list[int]:
    """The processes in process group ``pgid`` (from /proc: psutil is not a dependency)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _start_scan(lab: Lab, tmp_path: Path) -> tuple[subprocess.Popen[str], Path, int]:
    """A scan of a few hundred lab targets with three processes, in a process group of its own; it is well
    under way (helpers running, records written) when this returns."""
    stall = f"{lab.endpoints['stall'].hostname}:{lab.endpoints['stall'].port},addr=127.0.0.1"
    lines = [*(line_for(lab, name) for name in ("good-rsa", "expired", "wrong-host")), stall] * 100
    src = write_targets(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    argv = [*CERTDOCTOR, "scan", str(src), "--ca-file", str(lab.root_path), "--timeout", "60", "-o", str(out)]
    proc = subprocess.Popen(
        [*argv, "--workers", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(_group(proc.pid)) < 3 or not out.exists() or not out.stat().st_size):
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None and len(_group(proc.pid)) >= 3  # the scan and its two helpers
    return proc, out, len(lines)


def _gone(pgid: int, seconds: float = 5) -> list[int]:
    deadline = time.monotonic() + seconds
    while _group(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _group(pgid)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGTERM repeated", "SIGHUP"])
def test_sigterm_stops_the_helpers_writes_what_is_done_and_exits_130(lab: Lab, tmp_path: Path, how: str) -> None:
    proc, out, total = _start_scan(lab, tmp_path)
    try:
        proc.send_signal(signal.SIGHUP if how == "SIGHUP" else signal.SIGTERM)
        if how == "SIGTERM repeated":  # an impatient supervisor: again and again while the scan is stopping
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.003)
                proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert _gone(proc.pid) == []
        text = out.read_text()
        assert text.endswith("\n")
        done = [json.loads(x) for x in text.splitlines()]  # complete JSON lines only
        assert 0 < len(done) < total
        assert len({r["line"] for r in done}) == len(done)
        assert not any("helper process" in (r.get("error") or "") for r in done)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _group(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_helpers_exit_when_the_scan_is_killed(lab: Lab, tmp_path: Path) -> None:
    """SIGKILL cannot be handled: the helpers notice they are orphans and exit by themselves."""
    proc, _, _ = _start_scan(lab, tmp_path)
    try:
        proc.kill()
        proc.wait(timeout=10)
        assert _gone(proc.pid) == []
    finally:
        for pid in _group(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_helpers_are_stopped_when_interrupted_while_they_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal can arrive while the helpers are being forked, before the scan proper starts."""
    started: list[Any] = []
    real_start = driver._Pool._start

    def start_then_interrupt(self: Any, count: int) -> None:
        real_start(self, count)
        started.extend(self.procs)
        raise KeyboardInterrupt

    monkeypatch.setattr(driver._Pool, "_start", start_then_interrupt)
    src = write_targets(tmp_path / "t.txt", ["192.0.2.1"] * 10)
    with pytest.raises(KeyboardInterrupt), open(os.devnull, "w") as sink:
        driver.run_scan(str(src), ScanOptions(), sink, fmt="jsonl", workers=3)
    assert len(started) == 2
    assert not any(p.is_alive() for p in started)


# --- item 5: concurrency is bounded by the targets ------------------------------------------------------


def _peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (of its current program: unlike ru_maxrss, not the forked parent's)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_absurd_concurrency_costs_nothing_for_one_target(lab: Lab, tmp_path: Path, source: str) -> None:
    src = write_targets(tmp_path / "one.txt", [line_for(lab, "good-rsa")])
    args = [*CERTDOCTOR, "scan", str(src) if source == "file" else "-", "--ca-file", str(lab.root_path)]
    with src.open("rb") as stdin:
        proc = subprocess.Popen(
            [*args, "--concurrency", "1000000", "--jsonl"], stdin=stdin, stdout=subprocess.PIPE, text=True
        )
        peak = 0
        while True:
            peak = max(peak, _peak_rss_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0
    assert [r["verdict"] for r in records(out)] == ["valid"]
    assert peak < 300_000, peak  # KiB: a million tasks took over 1 GB ...
    assert usage.ru_utime + usage.ru_stime < 5, usage  # ... and 18 s
