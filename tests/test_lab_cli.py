"""`certdoctor lab` as a user runs it: a foreground process on fixed ports, used by curl, stopped by Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import jsonschemas
from certdoctor.lab import SCENARIOS
from netutil import free_port_range


def _free_base(span: int = 0) -> int:
    """A port base with ``span`` free ports above it (default: what a lab with every scenario needs)."""
    return free_port_range(span or len(SCENARIOS) + 2, start=20000)


def _start_foreground_lab(tmp_path):
    """A `certdoctor lab --json` process and its first line; another port range when one was taken meanwhile
    (other tests start servers on free ports concurrently)."""
    for _ in range(5):
        base = _free_base()
        argv = [sys.executable, "-m", "certdoctor.cli", "lab", "--json", "--port-base", str(base)]
        proc = subprocess.Popen(
            [*argv, "--state-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = proc.stdout.readline()
        if line:
            return proc, base, line
        err = proc.communicate(timeout=20)[1]
        assert "in use" in err, err
    raise RuntimeError("no free port range for the lab")


def test_lab_foreground_serves_until_interrupted(tmp_path):
    proc, base, line = _start_foreground_lab(tmp_path)
    try:
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


def test_lab_targets_file_feeds_watch(tmp_path):
    """`lab --targets FILE` writes every non-hostile scenario as a scan line once the lab is up; `watch import`
    takes the file as written and `watch run` judges each as its scenario expects (the README's dashboard
    quick start)."""
    targets = tmp_path / "lab-targets.txt"
    extra = ["--state-dir", str(tmp_path / "state"), "--targets", str(targets)]
    for _ in range(5):
        base = _free_base()
        proc = subprocess.Popen(
            [sys.executable, "-m", "certdoctor.cli", "lab", "--json", "--port-base", str(base), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = proc.stdout.readline()
        if line:
            break
        assert "in use" in proc.communicate(timeout=20)[1]
    try:
        doc = jsonschemas.loads(line)
        benign = [s for s in doc["scenarios"] if not s["hostile"]]
        lines = targets.read_text().splitlines()
        assert lines == [s["scan_line"] for s in benign]
        assert f"expired.certdoctor.test:{base + 4},addr=127.0.0.1" in lines
        db = f"sqlite:///{tmp_path / 'watch.db'}"
        cli = [sys.executable, "-m", "certdoctor.cli", "watch"]
        imported = subprocess.run([*cli, "import", str(targets), "--db", db], capture_output=True, text=True)
        assert imported.returncode == 0 and f"{len(benign)} added" in imported.stdout, imported.stderr
        root = doc["root"]
        ran = subprocess.run(
            [*cli, "run", "--db", db, "--ca-file", root, "--json", "--no-revocation"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 1, ran.stderr  # some scenarios are invalid
        status = jsonschemas.loads(
            subprocess.run([*cli, "status", "--db", db, "--json"], capture_output=True, text=True).stdout
        )
        verdicts = {row["target"].split(".")[0]: row["verdict"] for row in status["targets"]}
        assert verdicts["good-rsa"] == "valid" and verdicts["expired"] == "invalid"
        assert verdicts["wrong-host"] == "invalid"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == 0
