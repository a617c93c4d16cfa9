#!/usr/bin/env python3
"""certdoctor scan on a Dask cluster vs on this machine: the cost of --cluster, per worker and per task.

Reuses bench/scan_throughput.py's machinery: the lab's PKI, one certificate and name per target (issued for the
run, served by one nginx by SNI: nothing per target comes from a cache), the scan run as a child with its
process tree sampled, every record checked against the lab's expectations. Then, alternating, in rounds (the
best of each counts):

1. ``certdoctor scan --workers W`` (W processes on this machine: the reference);
2. ``certdoctor scan --cluster tcp://…`` on a ``dask scheduler`` and W ``dask worker`` processes (one thread each,
   started before the timing: a standing cluster);
3. ``certdoctor scan --cluster local:W`` (a LocalCluster started by the scan: its start-up is in the time);

and, on the standing cluster, a sweep of ``--task-targets`` (targets per task) and of the input's size, for the
cost model of bench/README.md ("Scanning on a cluster"). Prints a table and writes a JSON summary (``--out``).
Needs the cluster extra (pip install 'certdoctor[cluster]') and nginx.

    python3 bench/cluster_throughput.py            # 4,000 targets, 3 rounds: about 3 minutes on 2 cores
    python3 bench/cluster_throughput.py --quick    # 1,500 targets, 1 round, no sweep
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scan_throughput as st  # (the machinery: lab, certificates, nginx, scan runs, verification)

QUIET = ("--no-dashboard",)
WORKER = ("--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", *QUIET)
TARGET_OVERHEAD = 0.10  # the target: a cluster of W workers within 10 % of W local processes


def start_dask(workers: int, workdir: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A scheduler and ``workers`` workers (no nanny, one thread, no dashboard) on 127.0.0.1; waits for them."""
    import distributed

    port = st.free_ports(1)[0]
    address = f"tcp://127.0.0.1:{port}"
    env = st.installed_env()
    log = (workdir / "dask.log").open("ab")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *QUIET,
            ],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    ]
    for i in range(workers):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, *WORKER, "--name", f"bench{i}"],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
    with distributed.Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


DASK: list[subprocess.Popen[bytes]] = []  # the standing cluster's processes (their CPU counts in every run)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scan_once(
    support: Any,
    targets: Path,
    count: int,
    workdir: Path,
    root: Path,
    ns: argparse.Namespace,
    label: str,
    extra: list[str],
    expect: Any,
) -> dict[str, Any]:
    # the same targets in flight in total: a local scan's --concurrency is split among its processes, a cluster
    # scan's is per worker thread
    per_process = "--cluster" in extra
    run_ns = argparse.Namespace(
        scan_command=None,
        concurrency=max(1, ns.concurrency // ns.workers) if per_process else ns.concurrency,
        workers=None,
        scan_arg=extra,
        step_timeout=None,
    )
    client_before = _children_cpu()
    dask_before = [st.tree_cpu_seconds(p.pid) for p in DASK]
    run = st.run_scan(support, targets, count, workdir / f"{label}.jsonl", workdir, root, run_ns, label)
    # CPU seconds of every process of the scan: the scan and its children (local helpers, a LocalCluster's
    # processes: waited for, so counted in RUSAGE_CHILDREN), plus the standing scheduler and workers
    client = _children_cpu() - client_before
    dask = [st.tree_cpu_seconds(p.pid) - b for p, b in zip(DASK, dask_before, strict=True)]
    run["cpu_seconds"] = client + sum(dask)
    if "--cluster" in extra and not extra[1].startswith("local:"):
        # the scanning process alone (reads, dispatches, writes), and the scheduler: what more workers don't
        # divide
        run["client_cpu_ms_per_record"] = 1000 * client / max(1, run["records"])
        run["scheduler_cpu_ms_per_record"] = 1000 * dask[0] / max(1, run["records"])
    run["cpu_ms_per_record"] = 1000 * run["cpu_seconds"] / max(1, run["records"])
    run["verification"] = st.verify_scan(workdir / f"{label}.jsonl", count, expect)
    v = run["verification"]
    st.log(
        f"  {label}: {run['rate']:,.0f} records/s in {run['wall_seconds']:.2f} s"
        f" (steady {run['steady_rate'] or 0:,.0f}/s), {run['cpu_ms_per_record']:.2f} CPU ms per record,"
        f" records {'ok' if v['ok'] else 'WRONG'}"
    )
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=int, default=4000, help="distinct-certificate targets (4,000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of local / cluster / local:W; the best counts (3)")
    p.add_argument("--workers", type=int, default=2, help="W: local processes, Dask workers (2)")
    p.add_argument("--concurrency", type=int, default=200, help="targets in flight in all, as scan's (200)")
    p.add_argument("--quick", action="store_true", help="1,500 targets, 1 round, no sweep")
    p.add_argument("--no-sweep", action="store_true", help="no task-size and input-size sweep")
    p.add_argument("--out", type=Path, default=Path("cluster-bench.json"), help="JSON summary (cluster-bench.json)")
    ns = p.parse_args(argv)
    if ns.quick:
        ns.targets, ns.rounds, ns.no_sweep = 1500, 1, True
    nginx = st.find_nginx()
    if nginx is None:
        raise SystemExit("nginx is needed (apt-get install nginx-light)")
    W = ns.workers
    summary: dict[str, Any] = {"targets": ns.targets, "workers": W, "concurrency_total": ns.concurrency}
    with tempfile.TemporaryDirectory(prefix="certdoctor-cluster-bench-") as tmp:
        work = Path(tmp)
        lab = st.start_lab(work / "lab-state", work)
        server = None
        dask_procs: list[subprocess.Popen[bytes]] = []
        try:
            severities = st.finding_severities()
            template = st.pick_scenarios(lab, ["good-rsa"], severities)[0]
            distinct = st.make_distinct_certs(lab, template, ns.targets, work / "distinct")
            server = st.start_nginx(nginx, [template], work, "1", [distinct])
            targets = work / "targets.txt"
            st.write_distinct_targets(targets, distinct)
            expect = st.each_distinct(distinct)
            support = st.scan_support(argparse.Namespace(scan_command=None))
            address, dask_procs = start_dask(W, work)
            DASK[:] = dask_procs
            summary["server"] = server.description
            modes = {
                "local": ["--workers", str(W)],
                "cluster": ["--cluster", address],
                "local-cluster": ["--cluster", f"local:{W}"],
            }
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for r in range(ns.rounds):
                st.log(f"round {r + 1} of {ns.rounds}")
                for mode, extra in modes.items():
                    runs[mode].append(
                        scan_once(support, targets, ns.targets, work, lab.root, ns, f"{mode}-{r}", extra, expect)
                    )
            best = {m: st.best_of(rs) for m, rs in runs.items()}
            for m, b in best.items():
                summary[m] = {
                    "wall_seconds": round(b["wall_seconds"], 3),
                    "rate": round(b["rate"], 1),
                    "steady_rate": round(b["steady_rate"] or 0, 1),
                    "round_rates": [round(x, 1) for x in b["round_rates"]],
                    "records_ok": b["verification"]["ok"],
                    "per_worker_rate": round(b["rate"] / W, 1),
                    "first_record_seconds": round(b["first_record_seconds"] or 0, 2),
                    # the median run's CPU per record (CPU time is what another job on the machine cannot take)
                    "cpu_ms_per_record": round(sorted(r["cpu_ms_per_record"] for r in runs[m])[len(runs[m]) // 2], 3),
                }
                for part in ("client_cpu_ms_per_record", "scheduler_cpu_ms_per_record"):
                    if part in b:
                        summary[m][part] = round(sorted(r[part] for r in runs[m])[len(runs[m]) // 2], 3)
            local_wall = best["local"]["wall_seconds"]
            for m in ("cluster", "local-cluster"):
                summary[m]["overhead_vs_local"] = round(best[m]["wall_seconds"] / local_wall - 1, 4)
                summary[m]["cpu_overhead_vs_local"] = round(
                    summary[m]["cpu_ms_per_record"] / summary["local"]["cpu_ms_per_record"] - 1, 4
                )
            if not ns.no_sweep:
                sweep: list[dict[str, Any]] = []
                for size in (25, 100, 200, 1000):
                    run = scan_once(
                        support,
                        targets,
                        ns.targets,
                        work,
                        lab.root,
                        ns,
                        f"tasks-{size}",
                        ["--cluster", address, "--task-targets", str(size)],
                        expect,
                    )
                    sweep.append(
                        {
                            "task_targets": size,
                            "targets": ns.targets,
                            "wall_seconds": round(run["wall_seconds"], 3),
                            "cpu_ms_per_record": round(run["cpu_ms_per_record"], 3),
                        }
                    )
                half = work / "half.txt"
                half.write_text("".join(targets.read_text().splitlines(keepends=True)[: ns.targets // 2]))
                run = scan_once(
                    support, half, ns.targets // 2, work, lab.root, ns, "half", ["--cluster", address], expect
                )
                sweep.append(
                    {
                        "task_targets": 200,
                        "targets": ns.targets // 2,
                        "wall_seconds": round(run["wall_seconds"], 3),
                        "cpu_ms_per_record": round(run["cpu_ms_per_record"], 3),
                    }
                )
                summary["sweep"] = sweep
                summary["model"] = model(summary, W)
        finally:
            for proc in reversed(dask_procs):
                st.stop_process(proc, "dask", group=True)
            if server is not None:
                st.stop_process(server.proc, "nginx")
            st.stop_process(lab.proc, "lab")
    ns.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(render(summary))
    return 0


def model(summary: dict[str, Any], workers: int) -> dict[str, Any]:
    """A 10-million-target scan from the standing cluster's measured CPU per record (CPU time: what other jobs
    on a shared machine cannot change). A worker with a core of its own diagnoses 1000 / (worker CPU ms per
    record) targets a second; the scanning process and the scheduler do a fixed amount per record however many
    workers there are, which caps the whole cluster at 1000 / (their CPU ms per record); the start is the
    standing cluster's time to its first record."""
    c = summary["cluster"]
    fixed = c.get("client_cpu_ms_per_record", 0.0) + c.get("scheduler_cpu_ms_per_record", 0.0)
    worker_ms = max(1e-6, c["cpu_ms_per_record"] - fixed)
    per_worker = 1000 / worker_ms
    ceiling = 1000 / max(1e-6, max(c.get("client_cpu_ms_per_record", 0.0), c.get("scheduler_cpu_ms_per_record", 0.0)))
    start = c.get("first_record_seconds") or 0.0
    n = 10_000_000

    def hours(w: int) -> float:
        return round((n / min(w * per_worker, ceiling) + start) / 3600, 2)

    return {
        "worker_cpu_ms_per_record": round(worker_ms, 3),
        "per_worker_rate_on_own_core": round(per_worker, 1),
        "ceiling_rate_client_or_scheduler": round(ceiling, 1),
        "workers_to_reach_ceiling": round(ceiling / per_worker, 1),
        "start_seconds": round(start, 2),
        "ten_million_worker_core_hours": round(n * worker_ms / 1000 / 3600, 1),
        "ten_million_hours_with": {w: hours(w) for w in (2, 8, 16, 32, 64)},
    }


def render(s: dict[str, Any]) -> str:
    lines = [
        f"certdoctor scan on a cluster: {s['targets']:,} targets, each its own certificate; {s['workers']} workers",
        f"{'mode':<16}{'wall s':>9}{'records/s':>11}{'per worker':>12}{'overhead':>10}{'CPU ms/rec':>12}"
        f"{'CPU overhead':>14}  records",
    ]
    for m in ("local", "cluster", "local-cluster"):
        r = s[m]
        over = r.get("overhead_vs_local")
        lines.append(
            f"{m:<16}{r['wall_seconds']:>9.2f}{r['rate']:>11,.0f}{r['per_worker_rate']:>12,.0f}"
            f"{'' if over is None else f'{over:+.1%}':>10}{r['cpu_ms_per_record']:>12.2f}"
            f"{'' if over is None else format(r['cpu_overhead_vs_local'], '+.1%'):>14}"
            f"  {'ok' if r['records_ok'] else 'WRONG'}"
        )
    if "sweep" in s:
        lines.append(
            "sweep (standing cluster): "
            + ", ".join(
                f"{x['targets']:,} targets in tasks of {x['task_targets']}: {x['wall_seconds']:.2f} s"
                for x in s["sweep"]
            )
        )
        lines.append("model: " + json.dumps(s["model"]))
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
