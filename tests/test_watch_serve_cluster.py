"""``certdoctor watch serve --cluster``: the daemon's due targets checked by a real Dask scheduler and two workers
(subprocesses on 127.0.0.1) and stored by the daemon — the same verdicts and findings as a local `watch run`, the
dashboard's "check now" through the cluster, a lost scheduler reported by /healthz while the HTTP side keeps
answering and reconnected to when it returns, SIGTERM exiting 0, an unreachable scheduler at start exiting 3."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import test_cluster
import test_watch_serve
from certdoctor.cli import main
from certdoctor.lab import Lab
from certdoctor.watch import Store
from certdoctor.watch import tables as wt
from netutil import free_port
from test_cluster import DaskProcesses
from test_watch import spec
from test_watch_serve import Served, _argv, _env, wait_for

start = test_watch_serve.start  # the fixture: a daemon on a free port over the lab's root

NAMES = ["good-rsa", "expired", "wrong-host", "revoked-ocsp", "incomplete-aia"]


@pytest.fixture(scope="module")
def dask_pair() -> Iterator[DaskProcesses]:
    cluster = DaskProcesses(workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


def _env_cluster() -> dict[str, str]:
    """The daemon's environment: the serve tests' one, without a proxy (the scheduler is on loopback)."""
    return {k: v for k, v in _env().items() if "proxy" not in k.lower()}


def _status(db: str, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, list[str]]]:
    capsys.readouterr()
    main(["watch", "status", "--db", db, "--json"])
    status = json.loads(capsys.readouterr().out)
    return {t["target"]: (t["verdict"], sorted(t.get("findings") or [])) for t in status["targets"]}


def _disable(db: str, target_id: int) -> None:
    with Store(db) as store, store.engine.begin() as conn:
        conn.execute(sa.update(wt.targets).where(wt.targets.c.id == target_id).values(enabled=False))


def test_serve_on_a_cluster_stores_what_a_local_run_does(
    lab: Lab, dask_pair: DaskProcesses, tmp_path: Path, start, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [spec(lab, n) for n in NAMES]
    local = f"sqlite:///{tmp_path / 'local.db'}"
    with Store(local) as store:
        store.add(specs)
    assert main(["watch", "run", "--db", local, "--ca-file", str(lab.root_path), "--timeout", "3", "--json"]) == 1

    db = f"sqlite:///{tmp_path / 'cluster.db'}"
    with Store(db) as store:
        store.add(specs)
        ((later, _),) = store.add([spec(lab, "good-ecdsa")])
    _disable(db, later.id)  # never due: checked only when asked
    served: Served = start(
        db, "--allow-private-fetch", "--cluster", dask_pair.address, "--task-targets", "2", env=_env_cluster()
    )
    wait_for("every target checked", lambda: served.doc("/healthz")["checks"] >= len(NAMES), served.proc)
    got = _status(db, capsys)
    assert {s: got[s] for s in specs} == _status(local, capsys)
    assert got[spec(lab, "good-rsa")][0] == "valid"
    assert "expired" in got[spec(lab, "expired")][1] and "revoked" in got[spec(lab, "revoked-ocsp")][1]
    health = served.doc("/healthz")
    cluster = health["cluster"]
    assert health["status"] == "ok" and cluster["status"] == "ok" and cluster["error"] is None
    assert cluster["address"] == dask_pair.address and cluster["workers"] == 2
    assert cluster["tasks_submitted"] == 3 and cluster["tasks_failed"] == 0  # 5 targets in tasks of 2
    assert health["checks"] == len(NAMES) and health["in_flight"] == 0
    assert "judgement_cache" not in health  # the workers judge: this process has no count of its own to give

    # the latest diagnosis (the check --json document the worker made) is kept: no new task
    expired_id = next(r["id"] for r in served.doc("/api/targets")["targets"] if r["target"] == spec(lab, "expired"))
    code, page, _ = served.get(f"/targets/{expired_id}/diagnosis")
    assert code == 200 and "expired" in page
    assert served.doc("/healthz")["cluster"]["tasks_submitted"] == 3

    # "check now" of a target never checked: a task of one on the cluster, awaited, stored here
    code, page, _ = served.get(f"/targets/{later.id}/diagnosis")
    assert code == 200, page
    assert "no daemon" not in page and "could not be stored" not in page
    health = served.doc("/healthz")
    assert health["cluster"]["tasks_submitted"] == 4 and health["checks"] == len(NAMES) + 1
    history = served.doc(f"/api/targets/{later.id}")
    assert [o["verdict"] for o in history["observations"]] == ["valid"]

    code, err = served.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err and "stopped after" in err
    assert f"checks on the Dask cluster {dask_pair.address}" in err


def test_a_worker_killed_mid_task_costs_no_observation_and_duplicates_none(
    lab: Lab, dask_pair: DaskProcesses, tmp_path: Path, start
) -> None:
    """A third worker joins and is killed with SIGKILL while it runs a task of servers that never answer (one
    --timeout each): the scheduler runs that task again on another worker; every target gets one observation."""
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    lines = []
    for i in range(4):
        lines += [test_cluster.stall_line(lab, i), spec(lab, NAMES[i])]
    with Store(db) as store:
        store.add(lines)  # checked once (due again in a day)
    victim = dask_pair.add_worker("victim")
    try:
        with dask_pair.client() as client:
            client.wait_for_workers(3, timeout=60)
            address = next(a for a, w in client.scheduler_info()["workers"].items() if w.get("name") == "victim")
            served: Served = start(
                db, "--cluster", dask_pair.address, "--task-targets", "1", "--timeout", "2", env=_env_cluster()
            )
            wait_for("a task on the new worker", lambda: client.processing(workers=[address]).get(address))
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
        wait_for("every target checked", lambda: served.doc("/healthz")["checks"] >= len(lines), served.proc)
        code, err = served.stop(signal.SIGTERM)
    finally:
        dask_pair.workers.pop("victim", None)
    assert code == 0 and "Traceback" not in err, err
    o = wt.observations
    with Store(db) as store, store.engine.connect() as conn:
        rows = conn.execute(sa.select(o.c.target_id, o.c.verdict)).all()
        ids = [t.id for t in store.targets()]
        stalled = {t.id for t in store.targets() if "name=stall" in t.spec}
    assert len(ids) == len(lines) and sorted(r.target_id for r in rows) == sorted(ids)  # exactly one each
    assert {r.target_id for r in rows if r.verdict == "unreachable"} == stalled  # timed out, not given up


def test_a_lost_scheduler_is_reported_and_reconnected_to(lab: Lab, tmp_path: Path, start) -> None:
    own = DaskProcesses(workers=1)
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        store.add([spec(lab, "good-rsa")], every=1)
    try:
        served: Served = start(db, "--cluster", own.address, "--task-targets", "5", env=_env_cluster())
        wait_for("a check", lambda: served.doc("/healthz")["checks"] >= 1, served.proc)
        own.scheduler.send_signal(signal.SIGKILL)
        own.scheduler.wait(timeout=30)

        def lost() -> dict[str, Any] | None:
            health = served.doc("/healthz")
            return health if health["cluster"]["status"] == "unreachable" else None

        health = wait_for("the scheduler reported lost", lost, served.proc)
        assert health["status"] == "error" and "Dask scheduler" in health["cluster"]["error"]
        assert health["cluster"]["workers"] == 0
        assert served.doc("/api/targets")["targets"][0]["verdict"] == "valid"  # the HTTP side keeps answering
        code, page, _ = served.get("/health")  # the dashboard's health page says so too
        assert code == 200 and 'data-health="cluster"' in page and "unreachable" in page
        target_id = served.doc("/api/targets")["targets"][0]["id"]
        code, page, _ = served.get(f"/targets/{target_id}/diagnosis")  # kept from before: shown, no check needed
        assert code == 200 and "cannot check targets now" not in page

        # the scheduler comes back on the same address, a worker joins it (one without a nanny does not
        # outlive its scheduler), and the checks carry on
        own.scheduler = own._start(
            "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(own.port), "--no-dashboard"
        )
        own.add_worker("w-again")
        checks = health["checks"]
        wait_for(
            "checks on the returned scheduler",
            lambda: (h := served.doc("/healthz"))["cluster"]["status"] == "ok" and h["checks"] > checks + 1,
            served.proc,
        )
        code, err = served.stop(signal.SIGTERM)
    finally:
        own.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("lost the connection to the Dask scheduler") == 1, err
    assert err.count("connected to the Dask scheduler") >= 1, err


def test_a_scheduler_without_workers_is_an_error_and_check_now_answers_at_once(lab: Lab, tmp_path: Path, start) -> None:
    """A scheduler that answers but has no worker checks nothing: /healthz says so (``no-workers``, top-level
    ``error``) and the dashboard's "check now" says why at once instead of waiting for a worker forever; a
    worker that joins makes it ``ok`` and the due target is checked."""
    own = DaskProcesses(workers=0)
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        store.add([spec(lab, "good-rsa")])
        target_id = store.targets()[0].id
    try:
        served: Served = start(db, "--cluster", own.address, env=_env_cluster())
        health = served.doc("/healthz")
        assert health["status"] == "error" and health["cluster"]["status"] == "no-workers", health
        assert "has no worker" in health["cluster"]["error"] and health["cluster"]["workers"] == 0
        code, page, _ = served.get(f"/targets/{target_id}/diagnosis")
        assert code == 200 and f"the Dask scheduler at {own.address} has no worker" in page
        own.add_worker("late")
        wait_for("a check by the late worker", lambda: served.doc("/healthz")["checks"] >= 1, served.proc)
        health = served.doc("/healthz")
        assert health["status"] == "ok" and health["cluster"]["status"] == "ok" and health["cluster"]["error"] is None
        code, err = served.stop(signal.SIGTERM)
    finally:
        own.stop()
    assert code == 0 and "Traceback" not in err, err


def test_an_unreachable_scheduler_at_start_is_one_line_and_exit_3(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        store.add(["example.com"])
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    argv = _argv(db, free_port(), "--cluster", address, "--cluster-timeout", "1")
    proc = subprocess.run(argv, env=_env_cluster(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith(f"certdoctor watch: cannot reach the Dask scheduler at {address} within 1 s")
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_cluster_options_are_checked_and_dask_stays_unimported_without_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    bad = (["--cluster", "nowhere"], ["--cluster", "local:0"], ["--cluster", "local:1", "--cluster-timeout", "0"])
    for extra in bad:
        assert main(["watch", "serve", "--db", db, "--listen", f"127.0.0.1:{free_port()}", *extra]) == 2
    code = (
        "import sys\n"
        "import certdoctor.cli.watch, certdoctor.watch.daemon, certdoctor.web\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=test_cluster._env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_the_workers_judge_at_the_daemons_check_time_moved_to_now(
    lab: Lab, dask_pair: DaskProcesses, tmp_path: Path
) -> None:
    """In process: the daemon's check time goes with each task, and is moved to now once ``judgement_ttl`` old
    (here at each look), so that a long-running daemon's workers never judge at its start time forever."""
    import asyncio

    from certdoctor.model import DiagnoseOptions
    from certdoctor.watch.daemon import Daemon, ServeConfig
    from certdoctor.watch.remote import ClusterLink

    db = f"sqlite:///{tmp_path / 'watch.db'}"
    with Store(db) as store:
        ((target, _),) = store.add([spec(lab, "good-rsa")])
        _disable(db, target.id)
        config = ServeConfig(cluster=dask_pair.address, judgement_ttl=0.0, poll=0.1)
        daemon = Daemon(store, DiagnoseOptions(ca_files=(str(lab.root_path),), timeout=3), config)

        async def twice() -> list[dict[str, Any]]:
            daemon.remote = ClusterLink(dask_pair.address, 10.0, 1)
            await daemon.remote.open()
            scheduler = asyncio.ensure_future(daemon.schedule())
            try:
                docs = []
                for _ in range(2):
                    while not daemon._checking:
                        await asyncio.sleep(0.05)
                    first = daemon.at
                    doc = await daemon.check_now(target.id)
                    assert doc is not None and doc["verdict"] == "valid"
                    docs.append({**doc, "sent_at": first})
                    await asyncio.sleep(0.3)  # a look or two of the scheduler: the check time moves on
                return docs
            finally:
                daemon.stop()
                await scheduler
                await daemon.remote.close()

        docs = asyncio.run(twice())
    times = [d["checked_at"] for d in docs]
    assert times[0] < times[1], times  # judged at two check times, not the first one again
    assert all(d["checked_at"] == d["sent_at"].isoformat() for d in docs)  # the worker judged at the daemon's time
    assert daemon.state.checks == 2 and daemon.remote is not None
