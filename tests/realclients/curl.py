"""curl (with the distribution's OpenSSL) as a real client: one process per probe."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from certdoctor.certinfo import is_ip

from . import Outcome, Probe

TIMEOUT = 8


class Curl:
    id = "curl"

    def unavailable(self) -> str | None:
        return None if shutil.which("curl") else "curl is not installed"

    def version(self) -> str:
        out = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10).stdout
        return " ".join(out.split()[:5])

    def run(self, probes: Sequence[Probe]) -> list[Outcome]:
        return [self._one(p) for p in probes]

    def _one(self, probe: Probe) -> Outcome:
        argv = ["curl", "-sS", "-o", "/dev/null", "--max-time", str(TIMEOUT), "--cacert", probe.ca_file]
        if not is_ip(probe.hostname):
            argv += ["--resolve", f"{probe.hostname}:{probe.port}:{probe.address}"]
        proc = subprocess.run([*argv, probe.url], capture_output=True, text=True, timeout=TIMEOUT + 10)
        if proc.returncode == 0:
            return Outcome(True)
        lines = [line for line in proc.stderr.splitlines() if line.startswith("curl:")]
        return Outcome(False, lines[0] if lines else proc.stderr.strip() or f"exit {proc.returncode}")


CLIENT = Curl()
