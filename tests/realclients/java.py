"""Java's JSSE as a real client: ``Probe.java``, run with the local ``java`` as a single-file source program.

No build step: ``java Probe.java`` compiles in memory on every batch (about a second on top of JVM start).
Default JVM security settings: no AIA fetching, no revocation checking. Batch plumbing (RealClientError,
run_program) is shared from .go.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import Outcome, Probe
from ._common import run_program

PROGRAM = Path(__file__).with_name("Probe.java")
MIN_FEATURE = 17  # Probe.java uses switch expressions and readAllBytes; single-file launch needs 11+

_VERSION_LINE = re.compile(r'^(?P<name>\S+) version "(?P<version>[^"]+)"')


def _java_version_line() -> str:
    """First line of ``java -version`` (printed on stderr), e.g. ``openjdk version "17.0.15" 2025-04-15``."""
    done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError((done.stderr or done.stdout).strip()[:200] or f"exit status {done.returncode}")
    return (done.stderr or done.stdout).strip().splitlines()[0]


def _feature(version: str) -> int:
    """The feature release of a Java version string: ``17.0.15`` -> 17, ``1.8.0_392`` -> 8."""
    parts = version.split(".")
    head = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
    digits = re.match(r"\d+", head)
    return int(digits.group()) if digits else 0


class JavaClient:
    """Java ``SSLSocket`` (PKIX trust manager over a KeyStore holding only the probe's root), via Probe.java."""

    id = "java"

    @functools.cache  # noqa: B019 - one module-level instance
    def unavailable(self) -> str | None:
        if shutil.which("java") is None:
            return "java not installed"
        try:
            line = _java_version_line()
        except (OSError, subprocess.TimeoutExpired, RuntimeError) as exc:
            return f"java does not run: {exc}"
        match = _VERSION_LINE.match(line)
        if match is None:
            return f"java: unrecognised version line: {line[:200]}"
        if _feature(match["version"]) < MIN_FEATURE:
            return f"java {match['version']} is too old (need {MIN_FEATURE}+)"
        return None

    @functools.cache  # noqa: B019
    def version(self) -> str:
        """``OpenJDK 17.0.15`` (from ``java -version``; ``Java 17.0.x`` for Oracle builds)."""
        line = _java_version_line()
        match = _VERSION_LINE.match(line)
        if match is None:
            return line
        name = {"openjdk": "OpenJDK", "java": "Java"}.get(match["name"], match["name"])
        return f"{name} {match['version']}"

    def run(self, probes: Sequence[Probe]) -> list[Outcome]:
        return run_program(["java", str(PROGRAM)], probes, f"java ({PROGRAM.name})")


CLIENT = JavaClient()
