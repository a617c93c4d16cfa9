"""CPU that one helper process of a scan costs to start: the scan's default (adaptive) pool, told to start its
helper at once.

    PYTHONPATH=CHECKOUT/src python3 bench/helper_startup.py [TARGETS] [--runs N]

Scans TARGETS lines (default 800) that cost little each (``hN.test:443,addr=192.0.2.1``, timeout 0.5 s, no
retries) with ``wants_helper`` forced true and a 0.05 s control interval, and prints, per run, the CPU seconds
of this process, of its children (the helper, and a spawn context's resource tracker) and their sum. Compare two
checkouts through PYTHONPATH: the difference of the sums is the difference in helper start-up (plus noise from
how many targets each helper took)."""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time


def one_run(targets: int) -> tuple[float, float]:
    """(this process's CPU seconds, its children's) for one scan; children's are cumulative, so run each scan in
    its own process (see main)."""
    from certdoctor.cli import main
    from certdoctor.scan import driver

    driver.wants_helper = lambda *a, **k: True  # type: ignore[assignment]
    driver._Pool.CONTROL_SECONDS = 0.05
    work = tempfile.mkdtemp(prefix="helper-startup-")
    src = os.path.join(work, "targets.txt")
    with open(src, "w") as fh:
        for i in range(targets):
            fh.write(f"h{i}.test:443,addr=192.0.2.1\n")
    started = time.process_time()
    argv = ["scan", src, "-o", os.path.join(work, "out.jsonl"), "--no-progress", "--quiet", "--timeout", "0.5"]
    main([*argv, "--retries", "0"])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() - started, children.ru_utime + children.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("targets", type=int, nargs="?", default=800)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ns = p.parse_args()
    if ns.one:
        own, children = one_run(ns.targets)
        print(f"{own:.3f} {children:.3f}")
        return
    import subprocess
    import sys

    for _ in range(ns.runs):
        out = subprocess.run(
            [sys.executable, __file__, str(ns.targets), "--one"], capture_output=True, text=True, check=True
        ).stdout.split()
        own, children = float(out[-2]), float(out[-1])
        print(f"scan process {own:.3f} s, children {children:.3f} s, total {own + children:.3f} s")


if __name__ == "__main__":
    main()
