"""`certdoctor lab` as a user runs it: a foreground process on fixed ports, used by curl, stopped by Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import jsonschemas
from certdoctor.lab import SCENARIOS


def _free_base(span: int = 0) -> int:
    span = span or len(SCENARIOS) + 2  # the AIA server, every scenario, and a spare
    for base in range(20000, 60000, 97):
        try:
            socks = []
            for port in range(base, base + span):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def test_lab_foreground_serves_until_interrupted(tmp_path):
    base = _free_base()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "certdoctor.cli",
            "lab",
            "--json",
            "--port-base",
            str(base),
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        doc = jsonschemas.loads(line)
        assert doc["aia"] == f"http://127.0.0.1:{base}"
        scenarios = {s["name"]: s for s in doc["scenarios"]}
        good = scenarios["good-rsa"]
        assert good["port"] == base + 1 and good["expected"] == []
        ok = subprocess.run(good["curl_argv"], capture_output=True, text=True, timeout=20)
        assert ok.returncode == 0 and "good-rsa" in ok.stdout
        bad = subprocess.run(scenarios["expired"]["curl_argv"], capture_output=True, text=True, timeout=20)
        assert bad.returncode == 60 and "expired" in bad.stderr
        checked = subprocess.run(
            [sys.executable, "-m", "certdoctor.cli", *scenarios["expired"]["check_argv"][1:], "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checked.returncode == 1
        assert [f["id"] for f in jsonschemas.loads(checked.stdout)["findings"]] == ["expired"]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == 0
    assert "Traceback" not in proc.stderr.read()
