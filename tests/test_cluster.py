"""`certdoctor scan` beyond one machine: --shards N --shard I, and --cluster on a real Dask scheduler and workers
(subprocesses on 127.0.0.1) or a LocalCluster — records compared with a local scan of the same lab targets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import certdoctor
from certdoctor.cli import main
from certdoctor.lab import Lab
from certdoctor.scan.cluster import shard_of
from netutil import free_port

if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    import distributed  # CI installs the extra (.ci/run): never skipped there
else:
    distributed = pytest.importorskip("distributed", reason="the cluster extra: pip install 'certdoctor[cluster]'")

CERTDOCTOR = [sys.executable, "-m", "certdoctor.cli"]
MIX = ["good-rsa", "good-ecdsa", "expired", "wrong-host", "incomplete-aia", "revoked-ocsp", "good-stapled"]
AT = "2026-12-01T00:00:00Z"  # one moment for both scans: days_left and checked_at agree
TIMING = {"elapsed_ms", "attempts"}  # what may differ between two scans of the same targets
SLOW = ("--timeout", "2", "--retries", "0")  # a stalled server costs 2 s
TASKS_OF_2 = ("--task-targets", "2", *SLOW)
SRC = str(Path(certdoctor.__file__).resolve().parents[1])


def _env() -> dict[str, str]:
    """The environment of the Dask processes: this checkout's certdoctor importable, no proxy."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    return env


def line_for(lab: Lab, name: str) -> str:
    ep = lab.endpoints[name]
    return f"{ep.hostname}:{ep.port},addr={ep.addresses[0]}"


def stall_line(lab: Lab, n: int) -> str:
    ep = lab.endpoints["stall"]
    return f"{ep.hostname}:{ep.port},addr=127.0.0.1,name=stall{n}.certdoctor.test"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def untimed(record: Any) -> Any:
    if isinstance(record, dict):
        return {k: untimed(v) for k, v in record.items() if k not in TIMING}
    if isinstance(record, list):
        return [untimed(x) for x in record]
    return record


class DaskProcesses:
    """A `dask scheduler` and `dask worker` processes (one thread each, no nanny, no dashboard) on 127.0.0.1."""

    def __init__(self, workers: int) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = self._start(
            "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"
        )
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        for i in range(workers):
            self.add_worker(f"w{i}")
        with self.client() as client:
            if workers:
                client.wait_for_workers(workers, timeout=60)

    def _start(self, module: str, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def add_worker(self, name: str) -> subprocess.Popen[bytes]:
        proc = self._start(
            "distributed.cli.dask_worker",
            self.address,
            "--nthreads",
            "1",
            "--no-nanny",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            "--name",
            name,
            "--death-timeout",
            "30",
        )
        self.workers[name] = proc
        return proc

    def client(self) -> Any:
        return distributed.Client(self.address, timeout=30)

    def stop(self) -> None:
        """SIGTERM to every process, SIGKILL to those still there after 3 s (a worker waiting for a scheduler
        already gone would wait for its --death-timeout)."""
        procs = [*self.workers.values(), self.scheduler]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 3
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[DaskProcesses]:
    cluster = DaskProcesses(workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


def argv(src: Path, lab: Lab, out: Path, *extra: str, output: str = "-o") -> list[str]:
    """`certdoctor scan` of ``src``'s lab targets at AT into ``out`` (``output``: "-o" or "--resume")."""
    return ["scan", str(src), "--ca-file", str(lab.root_path), "--at", AT, output, str(out), "-q", *extra]


def scan(src: Path, lab: Lab, out: Path, *extra: str) -> int:
    return main(argv(src, lab, out, *extra))


# --- shards -----------------------------------------------------------------------------------------------


def test_shards_partition_the_input_by_the_line_not_its_position(lab: Lab, tmp_path: Path) -> None:
    lines = [f"{line_for(lab, name)},sni=host{i}.certdoctor.test" for i, name in enumerate(MIX * 3)]
    lines += ["not a target", "# a comment", "ftp://example.com"]
    src = write(tmp_path / "t.txt", lines)
    assert scan(src, lab, tmp_path / "all.jsonl") == 1
    everything = Counter(r["target"] for r in records(tmp_path / "all.jsonl"))
    assert len(everything) == len(lines) - 1 and set(everything.values()) == {1}
    shards: list[set[str]] = []
    for i in range(3):
        out = tmp_path / f"shard{i}.jsonl"
        scan(src, lab, out, "--shards", "3", "--shard", str(i))
        got = [r["target"] for r in records(out)]
        assert len(got) == len(set(got))
        shards.append(set(got))
        assert all(shard_of(t, 3) == i for t in got)
    assert shards[0] | shards[1] | shards[2] == set(everything)  # the union: every target
    assert sum(map(len, shards)) == len(everything)  # no overlap
    assert all(shards)  # 24 lines into 3 shards: none empty (for these lines)
    # Reordered, the same lines fall in the same shards; records of a shard agree with the unsharded ones
    reordered = write(tmp_path / "r.txt", list(reversed(lines)))
    out = tmp_path / "r1.jsonl"
    scan(reordered, lab, out, "--shards", "3", "--shard", "1")
    assert {r["target"] for r in records(out)} == shards[1]
    # the hash is fixed: the same line falls in the same shard on every machine, run and version
    assert [shard_of("example.com", 1000), shard_of("example.com:8443", 7), shard_of("ü.example:443", 2)] == [710, 6, 0]


def test_shard_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "t.txt", ["example.com"])
    assert main(["scan", str(src), "--shards", "3", "--shard", "3"]) == 2
    assert "0 … 2" in capsys.readouterr().err
    assert main(["scan", str(src), "--shards", "3"]) == 2
    assert "go together" in capsys.readouterr().err
    assert main(["scan", str(src), "--cluster", "nowhere"]) == 2
    assert "tcp://HOST:PORT" in capsys.readouterr().err
    assert main(["scan", str(src), "--cluster", "local:2", "--workers", "2"]) == 2
    capsys.readouterr()


def test_a_cluster_timeout_must_be_a_finite_number_of_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--cluster-timeout inf`` (or nan, or 0) is a usage error before anything is reached, for scan, watch run
    and watch serve alike — not an internal error from Dask's timeout parsing."""
    src = write(tmp_path / "t.txt", ["example.com"])
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there: never reached
    commands = (
        ["scan", str(src)],
        ["watch", "run", "--db", db],
        ["watch", "serve", "--db", db, "--listen", f"127.0.0.1:{free_port()}"],
    )
    for command in commands:
        for value in ("inf", "nan", "0", "-1"):
            assert main([*command, "--cluster", address, "--cluster-timeout", value]) == 2, (command, value)
            err = capsys.readouterr().err
            assert "--cluster-timeout must be" in err and "internal error" not in err, err


# --- a scheduler and two workers --------------------------------------------------------------------------


def test_cluster_records_are_the_local_scans(lab: Lab, dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    lines = [line_for(lab, name) for name in MIX] * 6 + ["not a target"]
    src = write(tmp_path / "t.txt", lines)
    assert scan(src, lab, tmp_path / "local.jsonl") == 1
    assert scan(src, lab, tmp_path / "cluster.jsonl", "--cluster", dask_cluster.address, "--task-targets", "5") == 1
    local = {r["line"]: untimed(r) for r in records(tmp_path / "local.jsonl")}
    remote = records(tmp_path / "cluster.jsonl")
    assert sorted(r["line"] for r in remote) == list(range(1, len(lines) + 1))  # one record per target
    assert {r["line"]: untimed(r) for r in remote} == local
    by_name = {r["target"]: {f["id"] for f in r["findings"]} for r in remote}
    assert by_name[line_for(lab, "expired")] >= {"expired"}
    assert by_name[line_for(lab, "revoked-ocsp")] >= {"revoked"}
    # both workers scanned (their sessions are kept between tasks, in each worker process)
    with dask_cluster.client() as client:
        kept = client.run(lambda: len(__import__("certdoctor.scan.cluster").scan.cluster._WORKER.get("sessions", ())))
    assert sorted(kept.values()) == [1, 1]


def test_resume_on_a_cluster_completes_a_torn_output(lab: Lab, dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    lines = [line_for(lab, name) for name in MIX] * 4
    src = write(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    assert scan(src, lab, out) == 1
    kept = out.read_text(encoding="utf-8").splitlines(keepends=True)[:9]
    out.write_text("".join(kept) + '{"certdoctor":1,"kind":"scan-rec', encoding="utf-8")  # killed mid-write
    code = main(argv(src, lab, out, "--cluster", dask_cluster.address, "--task-targets", "4", output="--resume"))
    assert code == 1
    got = records(out)
    assert sorted(r["line"] for r in got) == list(range(1, len(lines) + 1))


def test_a_worker_killed_mid_scan_loses_no_target_and_duplicates_none(
    lab: Lab, dask_cluster: DaskProcesses, tmp_path: Path
) -> None:
    """A third worker joins, takes tasks of slow targets (servers that never answer: one --timeout each), and
    is killed with SIGKILL while it runs one: the scheduler runs that task again on another worker."""
    lines = []
    for i in range(8):
        lines += [stall_line(lab, i), line_for(lab, MIX[i % len(MIX)])]
    src = write(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    victim = dask_cluster.add_worker("victim")
    with dask_cluster.client() as client:
        client.wait_for_workers(3, timeout=60)
        address = next(a for a, w in client.scheduler_info()["workers"].items() if w.get("name") == "victim")
        scan_proc = subprocess.Popen(
            [*CERTDOCTOR, *argv(src, lab, out, "--cluster", dask_cluster.address, *TASKS_OF_2)],
            env=_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not client.processing(workers=[address]).get(address):
            time.sleep(0.02)
        assert client.processing(workers=[address]).get(address), "the new worker never got a task"
        time.sleep(0.3)  # in the middle of its task (a stalled server takes 2 s)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    _, err = scan_proc.communicate(timeout=120)
    assert scan_proc.returncode == 1, err  # stalled servers are unreachable
    got = records(out)
    assert Counter(r["line"] for r in got) == Counter(range(1, len(lines) + 1))  # exactly one record each
    for r in got:
        stalled = r["line"] % 2 == 1
        assert r["verdict"] == ("unreachable" if stalled else r["verdict"])
        assert "error_kind" not in r or r["error_kind"] != "internal", r  # rescheduled, not given up
        if stalled:
            assert r["endpoints"][0]["error_kind"] == "timeout"
    del dask_cluster.workers["victim"]


# --- errors -----------------------------------------------------------------------------------------------


def test_an_unreachable_scheduler_is_one_line_and_exit_3(tmp_path: Path) -> None:
    src = write(tmp_path / "t.txt", ["example.com"])
    out = tmp_path / "out.jsonl"
    port = free_port()  # nobody listens there
    proc = subprocess.run(
        [
            *CERTDOCTOR,
            "scan",
            str(src),
            "-o",
            str(out),
            "-q",
            "--cluster",
            f"tcp://127.0.0.1:{port}",
            "--cluster-timeout",
            "1",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot reach the Dask scheduler" in proc.stderr, proc.stderr


def test_watch_run_takes_the_cluster_timeout_and_exits_3_without_a_scheduler(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'watch.db'}"]
    assert main(["watch", "add", "example.com", *db]) == 0
    proc = subprocess.run(
        [*CERTDOCTOR, "watch", "run", *db, "--cluster", f"tcp://127.0.0.1:{free_port()}", "--cluster-timeout", "1"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert "cannot reach the Dask scheduler" in proc.stderr and "within 1 s" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_scheduler_without_workers_is_one_line_and_exit_3(tmp_path: Path) -> None:
    empty = DaskProcesses(workers=0)
    try:
        src = write(tmp_path / "t.txt", ["example.com"])
        proc = subprocess.run(
            [*CERTDOCTOR, "scan", str(src), "-q", "--cluster", empty.address, "--cluster-timeout", "1"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        empty.stop()
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == f"certdoctor scan: the Dask scheduler at {empty.address} has no worker (waited 1 s)\n"


def test_without_dask_installed_the_option_says_how_to_get_it(tmp_path: Path) -> None:
    src = write(tmp_path / "t.txt", ["example.com"])
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('distributed', 'dask'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from certdoctor.cli import main\n"
        f"sys.exit(main(['scan', {str(src)!r}, '-q', '--cluster', 'local:1']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'certdoctor[cluster]'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_scan_without_cluster_imports_nothing_of_dask(lab: Lab, tmp_path: Path) -> None:
    src = write(tmp_path / "t.txt", [line_for(lab, "good-rsa")])
    code = (
        "import sys\n"
        "from certdoctor.cli import main\n"
        f"main(['scan', {str(src)!r}, '--ca-file', {str(lab.root_path)!r}, '-q', '--shards', '1', '--shard', '0'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
    assert '"verdict":"valid"' in proc.stdout


def test_a_local_cluster_of_two_workers(lab: Lab, tmp_path: Path) -> None:
    lines = [line_for(lab, name) for name in MIX] * 3
    src = write(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [*CERTDOCTOR, *argv(src, lab, out, "--cluster", "local:2", "--task-targets", "3")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""  # no log lines from Dask
    assert scan(src, lab, tmp_path / "local.jsonl") == 1
    local = {r["line"]: untimed(r) for r in records(tmp_path / "local.jsonl")}
    assert {r["line"]: untimed(r) for r in records(out)} == local


def test_ctrl_c_at_a_terminal_stops_a_local_cluster_scan_without_tracebacks(lab: Lab, tmp_path: Path) -> None:
    """Ctrl-C at a terminal sends SIGINT to the whole foreground process group, the LocalCluster's worker
    processes included: the scan exits 130 with the records done, and no worker prints a KeyboardInterrupt
    traceback (they are stopped by the scan, not by the terminal's signal); no process of the group is left."""
    lines = []
    for i in range(4):
        lines += [line_for(lab, MIX[i % len(MIX)]), stall_line(lab, i)]
    src = write(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [*CERTDOCTOR, *argv(src, lab, out, "--cluster", "local:1", "--task-targets", "1", *SLOW)],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert records(out)  # what was done is written
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("processes of the scan's group outlived it")


def test_local_cluster_workers_are_forked_with_what_this_process_loaded(tmp_path: Path) -> None:
    """``connect(local:N, fork=True)`` (what ``scan`` and ``watch run`` use): the workers start with this process's
    judging modules and trust stores, not as fresh interpreters, and with SIGTERM's default action (not this
    process's handler); ``fork=False`` (Dask's default): spawned."""
    code = (
        "import os, signal, sys\n"
        "from certdoctor.collect import stores\n"
        "from certdoctor.scan.cluster import connect\n"
        "stores.load_store('mozilla')\n"
        "signal.signal(signal.SIGTERM, lambda *_: None)  # as the command line's handler\n"
        "def probe():\n"
        "    import os, signal, sys\n"
        "    from certdoctor.collect import stores\n"
        "    loaded = 'certdoctor.clients.verdict' in sys.modules, sorted(stores._cache)\n"
        "    return *loaded, os.getppid() == PARENT, signal.getsignal(signal.SIGTERM) == signal.SIG_DFL\n"
        "PARENT = os.getpid()\n"
        "for fork in (True, False):\n"
        "    with connect('local:2', 30, fork=fork) as client:\n"
        "        client.wait_for_workers(2, timeout=30)\n"
        "        print(fork, sorted(client.run(probe).values()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    forked, spawned = proc.stdout.splitlines()[-2:]
    # a forked worker's SIGTERM is back to its default action (as a spawned one's), not this process's handler
    assert forked == "True [(True, ['mozilla'], True, True), (True, ['mozilla'], True, True)]"
    assert spawned == "False [(False, [], True, True), (False, [], True, True)]"  # children of this process too


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc")
def test_a_forked_local_worker_killed_mid_scan_loses_no_target_and_duplicates_none(lab: Lab, tmp_path: Path) -> None:
    """``--cluster local:2``: a worker (forked from the scan's process) is killed with SIGKILL while
    tasks of slow targets are out; its nanny starts another and the scheduler runs its tasks again."""
    lines = []
    for i in range(8):
        lines += [stall_line(lab, i), line_for(lab, MIX[i % len(MIX)])]
    src = write(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    scan_proc = subprocess.Popen(
        [*CERTDOCTOR, *argv(src, lab, out, "--cluster", "local:2", *TASKS_OF_2)],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 2):
        time.sleep(0.02)
    workers = _children(scan_proc.pid)
    assert len(workers) == 2, workers
    # forked, not spawned (a spawned worker runs `python -c 'from multiprocessing.spawn import spawn_main; …'`)
    assert not any(b"spawn_main" in Path(f"/proc/{w}/cmdline").read_bytes() for w in workers)
    os.kill(workers[0], signal.SIGKILL)
    _, err = scan_proc.communicate(timeout=120)
    assert scan_proc.returncode == 1, err  # stalled servers are unreachable
    assert err == ""
    got = records(out)
    assert Counter(r["line"] for r in got) == Counter(range(1, len(lines) + 1))  # exactly one record each
    for r in got:
        assert "error_kind" not in r or r["error_kind"] != "internal", r  # rescheduled, not given up
        if r["line"] % 2 == 1:
            assert r["verdict"] == "unreachable" and r["endpoints"][0]["error_kind"] == "timeout"


def test_a_scheduler_gone_mid_scan_ends_it_with_a_resumable_output(lab: Lab, tmp_path: Path) -> None:
    own = DaskProcesses(workers=1)
    lines = []
    for i in range(6):
        lines += [stall_line(lab, i), line_for(lab, MIX[i % len(MIX)])]
    src = write(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    try:
        proc = subprocess.Popen(
            [*CERTDOCTOR, *argv(src, lab, out, "--cluster", own.address, "--cluster-timeout", "2", *TASKS_OF_2)],
            env=_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
            time.sleep(0.05)
        own.scheduler.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        own.stop()
    assert proc.returncode == 3, err
    assert "lost the Dask scheduler" in err and "--resume" in err and "Traceback" not in err
    text = out.read_text(encoding="utf-8")
    assert text.endswith("\n")
    done = records(out)
    assert 2 <= len(done) < len(lines) and len({r["line"] for r in done}) == len(done)
    # --resume (here on this machine) scans the rest only
    code = main(
        ["scan", str(src), "--ca-file", str(lab.root_path), "--at", AT, "--resume", str(out), "-q", "--timeout", "2"]
    )
    assert code == 1
    assert Counter(r["line"] for r in records(out)) == Counter(range(1, len(lines) + 1))


def test_watch_run_checks_on_the_cluster_and_stores_here(
    lab: Lab, dask_cluster: DaskProcesses, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["good-rsa", "expired", "wrong-host", "revoked-ocsp"]
    hosts = write(tmp_path / "hosts.txt", [line_for(lab, name) for name in names])
    ca = ["--ca-file", str(lab.root_path), "--timeout", "3"]
    got = {}
    for where in ("local", "cluster"):
        db = ["--db", f"sqlite:///{tmp_path / where}.db"]
        assert main(["watch", "import", str(hosts), *db]) == 0
        capsys.readouterr()
        extra = ["--cluster", dask_cluster.address, "--task-targets", "1"] if where == "cluster" else []
        assert main(["watch", "run", *db, *ca, *extra, "--json"]) == 1
        run = json.loads(capsys.readouterr().out)
        assert run["checked"] == len(names) and run["events"]["first-seen"] == len(names)
        main(["watch", "status", *db, "--json"])
        status = json.loads(capsys.readouterr().out)
        got[where] = {t["target"]: (t["verdict"], sorted(t.get("findings") or [])) for t in status["targets"]}
    assert got["cluster"] == got["local"]
    assert got["cluster"][line_for(lab, "good-rsa")][0] == "valid"
    assert got["cluster"][line_for(lab, "expired")][0] == "invalid"


def test_ctrl_c_on_a_cluster_scan_writes_what_is_done_and_exits_130(
    lab: Lab, dask_cluster: DaskProcesses, tmp_path: Path
) -> None:
    lines = [line_for(lab, "good-rsa")] * 4 + [stall_line(lab, i) for i in range(4)]
    src = write(tmp_path / "t.txt", lines)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [*CERTDOCTOR, *argv(src, lab, out, "--cluster", dask_cluster.address, "--task-targets", "1", "--timeout", "5")],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "WARNING" not in err
    done = records(out)
    assert len(done) == 4 and all(r["verdict"] == "valid" for r in done)
