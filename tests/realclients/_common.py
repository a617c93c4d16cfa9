"""Running a one-file probe program: probes as JSON on stdin, one result per probe as JSON on stdout."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import Outcome, Probe

PROBE_TIMEOUT = 10.0  # seconds; enforced by each probe program itself
STARTUP_ALLOWANCE = 30.0  # seconds of slack per batch on top of the per-probe bound


class RealClientError(RuntimeError):
    """The probe program could not be built, crashed, timed out or printed something that is not a result list."""


def batch_timeout(count: int) -> float:
    return STARTUP_ALLOWANCE + (PROBE_TIMEOUT + 5.0) * count


def probes_json(probes: Sequence[Probe]) -> str:
    return json.dumps(
        [{"hostname": p.hostname, "address": p.address, "port": p.port, "ca_file": p.ca_file} for p in probes]
    )


def parse_outcomes(stdout: str, count: int, what: str) -> list[Outcome]:
    """The program's JSON result list as Outcomes (error text whitespace-trimmed, nothing else changed)."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise RealClientError(f"{what}: output is not JSON ({exc}): {stdout[:500]!r}") from exc
    if not isinstance(data, list) or len(data) != count:
        raise RealClientError(f"{what}: expected a JSON array of {count} results, got: {stdout[:500]!r}")
    outcomes: list[Outcome] = []
    for item in data:
        if not (isinstance(item, dict) and isinstance(item.get("accepted"), bool)):
            raise RealClientError(f"{what}: malformed result {item!r}")
        error = item.get("error") or ""
        if not isinstance(error, str):
            raise RealClientError(f"{what}: malformed result {item!r}")
        outcomes.append(Outcome(accepted=item["accepted"], error=error.strip()))
    return outcomes


def run_program(argv: Sequence[str], probes: Sequence[Probe], what: str) -> list[Outcome]:
    """Run one batch: probes as JSON on stdin, results as JSON on stdout; raise RealClientError on any failure."""
    if not probes:
        return []
    timeout = batch_timeout(len(probes))
    try:
        done = subprocess.run(
            list(argv),
            input=probes_json(probes),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RealClientError(f"{what}: no answer for {len(probes)} probes within {timeout:.0f} s") from exc
    except OSError as exc:
        raise RealClientError(f"{what}: cannot start {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip())[-2000:]
        raise RealClientError(f"{what}: exited with status {done.returncode}: {detail}")
    return parse_outcomes(done.stdout, len(probes), what)


def nss_db(db: Path, ca_files: Sequence[str]) -> None:
    """Create the NSS database ``db`` (empty password) trusting each of ``ca_files`` as a CA for TLS servers
    (``certutil -t C,,``), as Chromium and Firefox read it; raise RealClientError when certutil fails."""
    db.mkdir(parents=True, exist_ok=True)
    commands = [["certutil", "-N", "--empty-password", "-d", f"sql:{db}"]]
    commands += [
        ["certutil", "-A", "-n", f"lab-root-{n}", "-t", "C,,", "-i", ca_file, "-d", f"sql:{db}"]
        for n, ca_file in enumerate(ca_files, 1)
    ]
    for argv in commands:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RealClientError(f"{' '.join(argv)}: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise RealClientError(f"{' '.join(argv)} failed: {detail[-1] if detail else done.returncode}")
