"""Run a command and report its ``ru_maxrss`` without the benchmark's own memory in it.

Linux records a process's peak RSS across ``exec``, and a child forked from a big parent starts with the
parent's pages counted: ``ru_maxrss`` of a command started straight from the benchmark (which holds thousands
of certificates) reads the benchmark's size, not the command's. Started from this small process instead,
the numbers are the command's own::

    python3 bench/_maxrss.py REPORT.json -- COMMAND [ARG...]

REPORT.json gets ``{"exit_code", "wall_seconds", "ru_maxrss_kb", "children_ru_maxrss_kb"}``: the command's
lifetime (start to exit: this wrapper's own start-up is not the command's), its peak RSS (with its waited-for
descendants, as ``wait4`` reports it) and the largest of all the processes it waited for. Exits
with the command's exit code.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write(__doc__ or "")
        return 2
    report, command = Path(argv[0]), argv[2:]
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    report.write_text(
        json.dumps(
            {
                "exit_code": code,
                "wall_seconds": wall,
                "ru_maxrss_kb": usage.ru_maxrss,
                "children_ru_maxrss_kb": children.ru_maxrss,
            }
        )
    )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
