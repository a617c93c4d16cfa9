#!/usr/bin/env python3
"""certdoctor watch benchmark: ``watch run`` (with its database writes) against ``certdoctor scan``, in one run.

Reuses bench/scan_throughput.py's machinery (the lab, nginx serving a mix of lab scenarios on loopback, the
target lists, the RSS sampler and the CPU meter), then on the same N targets, interleaved in rounds:

1. ``certdoctor scan`` (its defaults: full diagnosis, workers up to one per core);
2. ``certdoctor watch run --all`` on a SQLite store in a temp file (``watch import`` of the same target file
   first, timed on its own): the pass includes every observation, endpoint, certificate and event write;
   round 1 is the first pass over an empty store, later rounds pass over the filled store (previous
   observations compared, events derived: the hourly steady state);
3. the same on PostgreSQL with ``--postgres`` (a throwaway cluster started as tests/pgserver.py does).

Then ``watch status --json`` on the filled store (wall clock of the whole command, Python start included),
and the database size per 1,000 observations. Prints the ratios (watch run rate as % of scan's, target
>= 80 %), peak RSS of the watch process tree (target < 300 MB), status time (target < 1 s) and CPU-ms per
target (client process user+sys) for scan and watch. Writes a JSON summary (``--out``).

    python3 bench/watch_throughput.py --quick             # 2,000 targets, SQLite
    python3 bench/watch_throughput.py --postgres          # 10,000 targets, SQLite and PostgreSQL
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import scan_throughput as st  # noqa: E402  (the shared servers/targets/measuring machinery)

TARGET_RATIO = 0.80
TARGET_RSS_MB = 300.0
TARGET_STATUS_S = 1.0


def load_pgserver() -> Any:
    """tests/pgserver.py, imported by path (it is not a package module)."""
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))  # pgserver imports its neighbour netutil
    spec = importlib.util.spec_from_file_location("certdoctor_bench_pgserver", REPO / "tests" / "pgserver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_measured(argv: list[str], label: str, workdir: Path, watch_file: Path, timeout: float) -> dict[str, Any]:
    """Run ``argv`` through bench/_maxrss.py (clean ru_maxrss), sampling the RSS of its process tree every
    50 ms; returns exit code, wall seconds (the command's own lifetime), peak RSS (tree sum, PSS, largest
    process) and the stdout text."""
    report = workdir / f"{label}.rusage.json"
    report.unlink(missing_ok=True)
    stdout_path, stderr_path = workdir / f"{label}.stdout", workdir / f"{label}.stderr"
    st.log(f"{label}: {' '.join(argv[1:])}")
    started = time.perf_counter()
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(st.MAXRSS), str(report), "--", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            env=st.installed_env(),
        )
    sampler = st.TreeSampler(proc.pid, watch_file, skip_root=True)
    sampler.start()
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, _ = os.wait4(proc.pid, 0)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        timer.cancel()
        sampler.stop_event.set()
    sampler.join()
    wall = time.perf_counter() - started
    rusage: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        rusage = json.loads(report.read_text())
    return {
        "label": label,
        "argv": argv[1:],
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_seconds": float(rusage.get("wall_seconds") or wall),
        "peak_rss_tree_mb": sampler.peak_kb / 1024,
        "peak_pss_tree_mb": sampler.peak_pss_kb / 1024,
        "peak_rss_single_process_mb": sampler.peak_single_kb / 1024,
        "stdout": stdout_path.read_text(errors="replace"),
        "stderr_tail": stderr_path.read_text(errors="replace")[-2000:],
    }


def db_size_bytes(url: str, sqlite_file: Path | None) -> int:
    """Bytes the store takes: the SQLite file with its WAL, or pg_database_size of the PostgreSQL database."""
    if sqlite_file is not None:
        return sum(p.stat().st_size for p in sqlite_file.parent.glob(sqlite_file.name + "*"))
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def row_counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
                for name in ("targets", "observations", "observation_endpoints", "certificates", "events")
            }
    finally:
        engine.dispose()


def write_url_targets(path: Path, scenarios: list[st.Scenario], count: int) -> None:
    """``count`` targets cycling through the scenarios, each a distinct spec (an https URL with a path of its own:
    ``watch import`` keeps one target per spec, and scan's per-line record cache, keyed by the spec, never
    hits): line i is ``https://HOST:PORT/tI,addr=127.0.0.1`` for scenarios[i % n]."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            s = scenarios[i % len(scenarios)]
            handle.write(f"https://{s.hostname}:{s.port}/t{i},addr=127.0.0.1\n")


def verify_records(output: Path, count: int, scenarios: list[st.Scenario]) -> dict[str, Any]:
    """Scan records against the lab's expectations (verdict and exact finding ids per line's scenario)."""
    matched = mismatched = 0
    seen: set[int] = set()
    with contextlib.suppress(OSError), output.open(encoding="utf-8") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            record = json.loads(raw)
            line = int(record["line"])
            seen.add(line)
            s = scenarios[(line - 1) % len(scenarios)]
            ids = {f["id"] for f in record.get("findings") or ()}
            if record.get("verdict") == s.expected_verdict and ids == s.expected_ids:
                matched += 1
            else:
                mismatched += 1
    missing = count - len(seen)
    return {
        "expected_records": count,
        "matched": matched,
        "mismatched": mismatched,
        "missing": missing,
        "ok": mismatched == 0 and missing == 0,
    }


class Backend:
    """One store under test: its URL, its file (SQLite) and its measured runs."""

    def __init__(self, name: str, url: str, sqlite_file: Path | None) -> None:
        self.name = name
        self.url = url
        self.sqlite_file = sqlite_file
        self.result: dict[str, Any] = {"url": url.split("@")[-1], "runs": []}


def benchmark(ns: argparse.Namespace, workdir: Path, summary: dict[str, Any]) -> None:
    results: dict[str, Any] = summary["results"]
    cores, cpu = st.machine()
    names = [n.strip() for n in ns.scenarios.split(",") if n.strip()]
    lab = st.start_lab(st.cache_dir() / "lab-state", workdir)
    nginx_proc: st.Server | None = None
    pg_ctx: Any = None
    try:
        scenarios = st.pick_scenarios(lab, names, st.finding_severities())
        nginx = st.find_nginx() if ns.server in ("auto", "nginx") else None
        if ns.server == "nginx" and nginx is None:
            raise st.HarnessError("--server nginx: nginx is not installed")
        if nginx is not None:
            nginx_proc = st.start_nginx(nginx, scenarios, workdir, ns.nginx_workers)
            server = nginx_proc.description
        else:
            server = "the lab's Python asyncio servers (one thread)"
        st.log(f"server: {server}")
        st.check_served_chains(scenarios)
        server_pid = nginx_proc.proc.pid if nginx_proc is not None and nginx_proc.proc else lab.proc.pid
        targets = workdir / "targets.txt"
        write_url_targets(targets, scenarios, ns.targets)
        summary["config"] = {
            "cores": cores,
            "cpu": cpu,
            "server": server,
            "targets": ns.targets,
            "concurrency": ns.concurrency,
            "rounds": ns.rounds,
            "scenarios": [s.name for s in scenarios],
        }
        backends = [Backend("sqlite", f"sqlite:///{workdir / 'watch.db'}", workdir / "watch.db")]
        if ns.postgres:
            pgserver = load_pgserver()
            reason = pgserver.unavailable_reason()
            if reason:
                results["postgres"] = {"reason": f"skipped: {reason}"}
            else:
                base = workdir / "pg"
                base.mkdir()
                pg_ctx = pgserver.PostgresServer(base)
                pg_ctx.__enter__()
                st.log(f"PostgreSQL on 127.0.0.1:{pg_ctx.port} (started in {pg_ctx.startup_seconds:.1f} s)")
                backends.append(Backend("postgres", pg_ctx.url, None))
        cd = st.certdoctor_argv()
        limit = ns.step_timeout or (120 + ns.targets / 20)
        scan_ns = argparse.Namespace(
            scan_command=None, concurrency=ns.concurrency, workers=ns.workers, step_timeout=limit, scan_arg=[]
        )
        support = st.scan_support(scan_ns)
        if not support.available:
            raise st.HarnessError(f"certdoctor scan is not available: {support.reason}")

        # warm-up (not counted): the bytecode cache, the lab's AIA server, the page cache
        warm = workdir / "targets-warmup.txt"
        write_url_targets(warm, scenarios, min(500, ns.targets))
        st.run_scan(support, warm, min(500, ns.targets), workdir / "warm.jsonl", workdir, lab.root, scan_ns, "warmup")
        warm_db = f"sqlite:///{workdir / 'warm.db'}"
        subprocess.run(
            [*cd, "watch", "import", str(warm), "--db", warm_db],
            env=st.installed_env(),
            check=False,
            capture_output=True,
        )
        subprocess.run(
            [*cd, "watch", "run", "--all", "--db", warm_db, "--ca-file", str(lab.root), "--json"],
            env=st.installed_env(),
            check=False,
            capture_output=True,
        )

        for backend in backends:
            began = time.perf_counter()
            out = subprocess.run(
                [*cd, "watch", "import", str(targets), "--db", backend.url, "--json"],
                env=st.installed_env(),
                capture_output=True,
                text=True,
                timeout=limit,
            )
            backend.result["import_seconds"] = time.perf_counter() - began
            backend.result["import_exit_code"] = out.returncode
            st.log(f"watch import ({backend.name}): {backend.result['import_seconds']:.1f} s, exit {out.returncode}")

        scans: list[dict[str, Any]] = []
        for number in range(1, ns.rounds + 1):
            st.log(f"round {number} of {ns.rounds}")
            output = workdir / f"scan-{number}.jsonl"
            with st.CpuMeter(server_pid) as meter:
                scan = st.run_scan(support, targets, ns.targets, output, workdir, lab.root, scan_ns, f"scan-{number}")
            scan |= meter.per_target(ns.targets)
            scan["verification"] = verify_records(output, ns.targets, scenarios)
            scan.pop("stderr_tail", None)
            st.log(
                f"  scan: {st.fmt_int(scan['rate'])} targets/s, {scan['client_cpu_ms_per_target']:.2f} CPU-ms/target, "
                f"{scan['verification']['mismatched']} mismatches"
            )
            scans.append(scan)
            for backend in backends:
                argv = [*cd, "watch", "run", "--all", "--db", backend.url, "--ca-file", str(lab.root)]
                argv += ["--concurrency", str(ns.concurrency), "--json"]
                watched = backend.sqlite_file or workdir / "none"
                with st.CpuMeter(server_pid) as meter:
                    run = run_measured(argv, f"watch-{backend.name}-{number}", workdir, watched, limit)
                run |= meter.per_target(ns.targets)
                doc: dict[str, Any] = {}
                with contextlib.suppress(ValueError):
                    doc = json.loads(run.pop("stdout"))
                run["pass"] = doc
                run["checked"] = int(doc.get("checked", 0))
                run["rate"] = run["checked"] / run["wall_seconds"] if run["wall_seconds"] > 0 else 0.0
                run["ratio_to_scan"] = run["rate"] / scan["rate"] if scan["rate"] else 0.0
                run["pass_kind"] = "first pass (empty store)" if number == 1 else "pass over the filled store"
                st.log(
                    f"  watch run ({backend.name}): {st.fmt_int(run['rate'])} targets/s "
                    f"({100 * run['ratio_to_scan']:.0f} % of scan), "
                    f"{run['client_cpu_ms_per_target']:.2f} CPU-ms/target, "
                    f"peak RSS {run['peak_rss_tree_mb']:.0f} MB, exit {run['exit_code']}, "
                    f"verdicts {doc.get('verdicts')}"
                )
                backend.result["runs"].append(run)
        results["scan"] = {"runs": scans}

        for backend in backends:
            times = []
            for index in range(ns.status_runs):
                began = time.perf_counter()
                out = subprocess.run(
                    [*cd, "watch", "status", "--db", backend.url, "--json"],
                    env=st.installed_env(),
                    capture_output=True,
                    timeout=120,
                )
                times.append(time.perf_counter() - began)
                if index == 0:
                    backend.result["status_exit_code"] = out.returncode
                    backend.result["status_bytes"] = len(out.stdout)
            backend.result["status_seconds"] = sorted(times)[len(times) // 2]
            backend.result["status_all_seconds"] = times
            counts = row_counts(backend.url)
            size = db_size_bytes(backend.url, backend.sqlite_file)
            backend.result["rows"] = counts
            backend.result["db_bytes"] = size
            backend.result["db_kb_per_1000_observations"] = (
                size / 1024 / counts["observations"] * 1000 if counts["observations"] else None
            )
            st.log(
                f"watch status ({backend.name}): {backend.result['status_seconds']:.2f} s "
                f"(median of {ns.status_runs}); "
                f"db {size / 1e6:.1f} MB for {counts['observations']:,} observations"
            )
            results[backend.name] = backend.result
    finally:
        if pg_ctx is not None:
            pg_ctx.__exit__(None, None, None)
            st.log("stopped PostgreSQL")
        if nginx_proc is not None:
            st.stop_process(nginx_proc.proc, "nginx")
        st.stop_process(lab.proc, "lab")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def render(summary: dict[str, Any]) -> str:
    cfg, res = summary["config"], summary["results"]
    lines = [
        f"certdoctor watch benchmark — {cfg['cores']} cores ({cfg['cpu']}), server: {cfg['server']}, "
        f"{cfg['targets']:,} targets over {len(cfg['scenarios'])} scenarios, concurrency {cfg['concurrency']}, "
        f"{cfg['rounds']} round(s) interleaved"
    ]
    scans = res["scan"]["runs"]
    for number, scan in enumerate(scans, 1):
        v = scan["verification"]
        lines.append(
            f"  round {number}: certdoctor scan          {st.fmt_int(scan['rate']):>7} targets/s   "
            f"{scan['client_cpu_ms_per_target']:6.2f} CPU-ms/target  peak RSS {scan['peak_rss_tree_mb']:4.0f} MB  "
            f"records {'OK' if v['ok'] else 'WRONG'} ({v['matched']:,}/{v['expected_records']:,})  "
            f"foreign CPU {100 * scan['foreign_cpu_share']:.0f} %"
        )
        for name in ("sqlite", "postgres"):
            backend = res.get(name)
            if not backend or "runs" not in backend:
                continue
            run = backend["runs"][number - 1]
            lines.append(
                f"           watch run ({name:8}) {st.fmt_int(run['rate']):>7} targets/s   "
                f"{run['client_cpu_ms_per_target']:6.2f} CPU-ms/target  peak RSS {run['peak_rss_tree_mb']:4.0f} MB  "
                f"{100 * run['ratio_to_scan']:4.0f} % of scan  "
                f"[{verdict(run['ratio_to_scan'] >= TARGET_RATIO)} >= 80 %, "
                f"RSS {verdict(run['peak_rss_tree_mb'] < TARGET_RSS_MB)} < 300 MB]  {run['pass_kind']}, "
                f"checked {run['checked']:,}, exit {run['exit_code']}"
            )
    for name in ("sqlite", "postgres"):
        backend = res.get(name)
        if not backend:
            continue
        if "runs" not in backend:
            lines.append(f"  {name}: {backend.get('reason')}")
            continue
        rows = backend["rows"]
        per = backend["db_kb_per_1000_observations"]
        lines.append(
            f"  {name}: watch import {backend['import_seconds']:.1f} s; watch status {backend['status_seconds']:.2f} s "
            f"[{verdict(backend['status_seconds'] < TARGET_STATUS_S)} < 1 s] on {rows['targets']:,} targets; "
            f"db {backend['db_bytes'] / 1e6:.1f} MB = {per:.0f} KB per 1,000 observations "
            f"({rows['observations']:,} observations, {rows['certificates']:,} certificates, {rows['events']:,} events)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=int, default=10_000, help="targets (default 10,000)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of scan then watch run (default 2)")
    p.add_argument("--concurrency", type=int, default=100, help="targets in flight, scan and watch (default 100)")
    p.add_argument("--workers", type=int, default=None, help="certdoctor scan --workers (default: scan's)")
    p.add_argument("--status-runs", type=int, default=5, help="watch status runs (median; default 5)")
    p.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL cluster")
    p.add_argument("--scenarios", default=",".join(st.DEFAULT_SCENARIOS), help="comma-separated lab scenarios")
    p.add_argument("--server", choices=("auto", "nginx", "lab"), default="auto", help="who serves the targets")
    p.add_argument("--nginx-workers", default="1", help="nginx worker_processes (default 1)")
    p.add_argument("--step-timeout", type=float, default=None, help="kill a run after this many seconds")
    p.add_argument("--quick", action="store_true", help="2,000 targets")
    p.add_argument("--out", type=Path, default=REPO / "artifacts" / "watch_throughput.json", help="JSON summary")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    ns = p.parse_args(argv)
    if ns.quick:
        ns.targets = min(ns.targets, 2_000)
        ns.status_runs = min(ns.status_runs, 3)
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    signal.signal(signal.SIGTERM, st._terminate)
    signal.signal(signal.SIGINT, st._terminate)
    workdir = Path(tempfile.mkdtemp(prefix="certdoctor-watchbench-"))
    summary: dict[str, Any] = {
        "benchmark": "certdoctor watch throughput",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv[1:] if argv is None else argv,
        "results": {},
        "config": {},
    }
    code = 0
    try:
        benchmark(ns, workdir, summary)
    except st.HarnessError as exc:
        summary["harness_error"] = str(exc)
        st.log(f"harness error: {exc}")
        code = 2
    except KeyboardInterrupt:
        code = 130
    finally:
        if ns.keep:
            st.log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if ns.out:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if code == 0:
        sys.stdout.write(render(summary) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
