"""``certdoctor scan``: options → :func:`certdoctor.scan.run_scan`, with a progress bar and a summary on stderr."""

from __future__ import annotations

import argparse
import functools
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from rich.text import Text

from ..collect.http import preload as preload_http
from ..model import Severity
from ..pipeline import Session
from ..render.escape import clean
from ..scan.driver import ClusterSpec, Summary, count_targets, done_records, repair_tail, run_scan
from ..scan.engine import MAX_CONCURRENCY, ScanOptions
from ..scan.records import csv_header
from ..scan.targets import BadLine
from ..scan.text import run_with_progress, summary_table, text_line
from .common import (
    UsageError,
    add_client_cert_options,
    add_cluster_options,
    add_judgement_options,
    add_key_types_option,
    add_output_options,
    add_proxy_options,
    add_starttls_option,
    add_timeout_option,
    add_trust_options,
    check_cluster_options,
    console,
    diagnose_options,
    fail_on,
    non_negative_int,
    positive_int,
)

NAME = "scan"
HELP = "diagnose many servers, streaming one record per target"
DESCRIPTION = (
    "Diagnose every target of FILE (or stdin) with the same checks as `check`, many at a time, writing one record "
    "per target as it completes. Progress and the summary go to stderr."
)
EPILOG = """\
input: one target per line (# comments), or CSV with a header (host,port,sni,name,addr):
  example.com
  example.com:8443
  https://example.com:8443/health
  example.com:443,sni=www.example.com       # another SNI
  example.com:443,name=api.example.com      # the name to verify (check's --name)
  example.com:443,addr=192.0.2.10           # connect here instead of resolving (repeatable)

examples:
  certdoctor scan hosts.txt > results.jsonl          # JSON Lines when stdout is not a terminal
  certdoctor scan hosts.txt --csv -o results.csv
  cut -d, -f1 inventory.csv | certdoctor scan - --concurrency 500 --rate 200
  certdoctor scan hosts.txt -o results.jsonl --resume results.jsonl   # continue after Ctrl-C
  jq -r 'select(.verdict != "valid") | [.target, (.findings | map(.id) | join(" "))] | @tsv' results.jsonl
  certdoctor scan hosts.txt --shards 4 --shard 0 -o part0.jsonl     # shard 0 of 4 (0..3), on this machine
  certdoctor scan hosts.txt --cluster tcp://10.0.0.1:8786 -o results.jsonl    # on a Dask cluster

records: the top-level "leaf" is the worst case among the addresses (the leaf expiring soonest; "leaf.address"
says whose); "endpoints" has every address with its own "leaf". --resume counts the records already in FILE in
the verdicts and the exit status.

exit status: 0 every target valid, 1 problems found (invalid, unreachable target, or bad input line; warnings
with --fail-on warning), 2 usage error, 130 interrupted; with --cluster also 3: the scheduler cannot be reached
or went away mid-scan (the output keeps complete records: --resume continues), and 2 when Dask is not installed
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="FILE", help="targets, one per line or CSV; '-' reads stdin")
    out = p.add_argument_group("records")
    fmt = out.add_mutually_exclusive_group()
    fmt.add_argument("--jsonl", action="store_true", help="JSON Lines (the default when stdout is not a terminal)")
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per target, with a header")
    out.add_argument("-o", "--output", metavar="FILE", help="write records to FILE instead of stdout")
    out.add_argument(
        "--resume", metavar="FILE", help="skip the targets already in FILE (an earlier -o, not the input) and append"
    )
    out.add_argument("--full", action="store_true", help="the whole `check --json` document per target")
    out.add_argument("--clients", action="store_true", help="add per-client predictions to each record")
    pace = p.add_argument_group("pace")
    pace.add_argument(
        "--concurrency",
        type=positive_int,
        default=100,
        metavar="N",
        help=f"targets in flight (100); never more than FILE has, nor {MAX_CONCURRENCY}: each one holds a socket, "
        "and a task made when the scan starts (stdin has no known count)",
    )
    pace.add_argument(
        "-w",
        "--workers",
        type=positive_int,
        metavar="K",
        help="processes, each with its own event loop (default: up to one per core, added while cores are idle)",
    )
    pace.add_argument("--rate", type=float, metavar="R", help="open at most R connections per second (no cap)")
    pace.add_argument(
        "--retries", type=non_negative_int, default=2, metavar="N", help="retries of transient failures (default 2)"
    )
    wide = p.add_argument_group("beyond one machine")
    wide.add_argument(
        "--shards",
        type=positive_int,
        metavar="N",
        help="split the input into N shards by a hash of each target line (stable across machines, runs and line "
        "order) and scan only --shard I: one machine (a cron job, a CI matrix entry) per shard, as ZMap does",
    )
    wide.add_argument(
        "--shard", type=non_negative_int, metavar="I", help="the shard to scan: 0 to N-1 (numbered from 0, as ZMap's)"
    )
    add_cluster_options(
        wide,
        cluster_help="scan on a Dask cluster: tcp://HOST:PORT of a running `dask scheduler`, or local:N for N worker "
        "processes on this machine (needs: pip install 'certdoctor[cluster]'); --concurrency is then per worker",
        timeout_help="with --cluster: seconds to reach the scheduler, and without it mid-scan before giving up (10)",
    )
    connection = p.add_argument_group("connection")
    add_starttls_option(connection)
    add_client_cert_options(connection)
    add_proxy_options(connection)
    add_key_types_option(connection, default=False)
    add_timeout_option(connection)
    add_trust_options(p)
    add_judgement_options(p, at_default="when the scan starts, one moment for every target")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_output_options(p, json=False, quiet="no progress and no summary on stderr")


SMALL_SCAN = 200  # fewer targets than this: one process (forking workers would cost more than it saves)


def _output(ns: argparse.Namespace) -> tuple[IO[str], bool]:
    """The output stream, and whether it is new (a CSV header is due)."""
    target = ns.output or ns.resume
    if not target:
        return sys.stdout, True
    path = Path(target)
    if ns.resume:  # -o, if given, is the same file (see _refuse_input_as_output)
        repair_tail(path)
        fresh = not path.exists() or path.stat().st_size == 0
        return path.open("a", encoding="utf-8"), fresh
    return path.open("w", encoding="utf-8"), True


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def _refuse_input_as_output(ns: argparse.Namespace) -> None:
    """The input must not be the output: -o would empty it before it is read, --resume (or stdout appending to
    it) would read its own records as targets and grow without end."""
    target = ns.resume or ns.output
    option = "--resume" if ns.resume else "-o"
    if target and ns.output and ns.resume and not _same_file(ns.output, ns.resume):
        raise UsageError("--resume appends to its own file: give -o the same FILE, or leave -o out")
    if target:
        same = _same_file(ns.input, target) if ns.input != "-" else _same_fd(0, target)
        where = f"{option} {target}"
    else:
        same = _same_fd(1, ns.input) if ns.input != "-" else _same_fd(1, 0)
        where = "stdout"
    if same:
        what = "the input (stdin)" if ns.input == "-" else f"the input {ns.input}"
        raise UsageError(f"{where} is {what}: write the records to another file")


def _same_fd(fd: int, other: str | int) -> bool:
    """Whether file descriptor ``fd`` is a regular file and ``other`` (a path or a descriptor) is that file."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False
        return os.path.samestat(st, os.fstat(other) if isinstance(other, int) else os.stat(other))
    except OSError:
        return False


def _shard_option(ns: argparse.Namespace) -> Any:
    """The shard predicate of --shards N --shard I (both or neither), or None."""
    if ns.shards is None and ns.shard is None:
        return None
    if ns.shards is None or ns.shard is None:
        raise UsageError("--shards N and --shard I go together (I from 0 to N-1)")
    from ..scan.cluster import shard_filter

    return shard_filter(ns.shards, ns.shard)


def _count_selected(path: str, select: Any) -> int | None:
    """Targets and bad lines of the shard (for the progress bar and the empty-shard check); None for stdin."""
    if path == "-" or not os.path.isfile(path):
        return None
    from ..scan.targets import lines_of, read_targets

    with open(path, encoding="utf-8", errors="replace") as fh:
        return sum(1 for item in read_targets(lines_of(fh)) if select(item))


def run(ns: argparse.Namespace) -> int:
    err = console(ns, stderr=True)
    if ns.rate is not None and not ns.rate > 0:
        raise UsageError("--rate must be more than 0")
    if ns.input != "-" and not os.path.isfile(ns.input):
        raise UsageError(f"no such file: {ns.input}")
    _refuse_input_as_output(ns)
    select = _shard_option(ns)
    check_cluster_options(ns)
    if ns.cluster is not None and ns.workers is not None:
        raise UsageError("--workers is for a scan on this machine: with --cluster, the cluster's workers scan")
    total = count_targets(ns.input) if select is None else _count_selected(ns.input, select)
    if total == 0:  # before the trust stores load and -o FILE is opened (and emptied)
        if select is not None:
            raise UsageError(f"nothing to scan: shard {ns.shard} of {ns.shards} of {ns.input} has no target line")
        raise UsageError(f"nothing to scan: {ns.input} has no target line")
    # one moment for the whole scan (and every worker); the options are validated and the trust stores loaded
    # once, before workers fork
    diagnose = diagnose_options(ns, clients=False)
    from ..pipeline import parse_at

    diagnose = replace(diagnose, at=parse_at(diagnose.at))
    Session(replace(diagnose, clients=ns.clients), cache=True)
    if diagnose.fetch_aia or diagnose.revocation:
        preload_http()  # once, before the scan starts and workers fork; see preload()
    options = ScanOptions(
        concurrency=max(1, min(ns.concurrency, MAX_CONCURRENCY, total or MAX_CONCURRENCY)),
        rate=ns.rate,
        retries=ns.retries,
        full=ns.full,
        clients=ns.clients,
        diagnose=diagnose,
        starttls=ns.starttls,
    )
    out, fresh = _output(ns)
    fmt = "csv" if ns.csv else ("jsonl" if ns.jsonl or ns.output or ns.resume or not out.isatty() else "text")
    resume = done_records(Path(ns.resume)) if ns.resume else {}
    workers = ns.workers or (1 if total is not None and total < SMALL_SCAN else (os.cpu_count() or 1))
    if fmt == "csv" and fresh:
        out.write(csv_header())
    summary = Summary(total=total, fail_on_warning=fail_on(ns) == Severity.WARNING)
    show_progress = err.is_terminal and not ns.no_progress and not ns.quiet

    def on_bad(bad: BadLine) -> None:
        if not show_progress and not ns.quiet:
            err.print(Text(f"line {bad.line}: {clean(bad.reason, 200)} — skipped", style="yellow"))

    code = 0
    try:
        scan = functools.partial(
            run_scan,
            ns.input,
            options,
            out,
            fmt=fmt,
            workers=workers,
            adaptive=ns.workers is None,
            resume=resume,
            summary=summary,
            on_bad=on_bad,
            select=select,
            cluster=None if ns.cluster is None else ClusterSpec(ns.cluster, ns.task_targets, ns.cluster_timeout),
        )
        if show_progress:
            run_with_progress(scan, fmt, summary, err, len(resume))
        else:
            scan(text_line=text_line)
    except KeyboardInterrupt:
        summary.interrupted = True
        code = 130
    finally:
        if out is not sys.stdout:
            out.close()
    if not code and summary.done == 0 and summary.skipped == 0:
        # only comments and blank lines (or a CSV header): stdin, or a file whose lines count_targets took for some
        raise UsageError(f"nothing to scan: {'the input' if ns.input == '-' else ns.input} has no target line")
    if not ns.quiet:
        err.print(summary_table(summary))
    if code:
        return code
    return 0 if summary.problems == 0 else 1
