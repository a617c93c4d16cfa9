"""Go's crypto/tls as a real client: ``probe.go``, built once per process with the local go toolchain.

The build is offline (``GO111MODULE=off``, ``GOPROXY=off``, stdlib only, ``CGO_ENABLED=0``) into a private
temporary directory that is removed at exit; the binary is reused for every :meth:`GoClient.run`.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from . import Outcome, Probe
from ._common import RealClientError, run_program

PROGRAM = Path(__file__).with_name("probe.go")
BUILD_TIMEOUT = 300.0


def _go_cache_dir() -> Path:
    """GOCACHE: the caller's, else ~/.cache/certdoctor/go-build, else one under the system temp dir."""
    if os.environ.get("GOCACHE"):
        return Path(os.environ["GOCACHE"])
    for base in (Path.home() / ".cache", Path(tempfile.gettempdir())):
        candidate = base / "certdoctor" / "go-build"
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    return Path(tempfile.mkdtemp(prefix="certdoctor-go-cache-"))


class GoClient:
    """Go crypto/tls (``tls.DialWithDialer``), via ``probe.go``."""

    id = "go"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._binary: Path | None = None

    @functools.cache  # noqa: B019 - one module-level instance
    def unavailable(self) -> str | None:
        go = shutil.which("go")
        if go is None:
            return "go not installed"
        try:
            done = subprocess.run([go, "version"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"go does not run: {exc}"
        if done.returncode != 0 or not done.stdout.startswith("go version "):
            return f"go does not run: {(done.stderr or done.stdout).strip()[:200]}"
        return None

    @functools.cache  # noqa: B019
    def version(self) -> str:
        """``go1.19.8`` (from ``go version``)."""
        done = subprocess.run(["go", "version"], capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.split()[2]

    def binary(self) -> Path:
        """The built probe program (built on first use, then reused until the process exits)."""
        with self._lock:
            if self._binary is None:
                self._binary = self._build()
            return self._binary

    def _build(self) -> Path:
        workdir = Path(tempfile.mkdtemp(prefix="certdoctor-go-probe-"))
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        output = workdir / "probe"
        env = {
            **os.environ,
            "GOCACHE": str(_go_cache_dir()),
            "GOPATH": str(workdir / "gopath"),
            "GO111MODULE": "off",
            "GOPROXY": "off",
            "GOFLAGS": "",
            "CGO_ENABLED": "0",
        }
        try:
            done = subprocess.run(
                ["go", "build", "-o", str(output), str(PROGRAM)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RealClientError(f"go build of {PROGRAM.name} took over {BUILD_TIMEOUT:.0f} s") from exc
        if done.returncode != 0:
            raise RealClientError(f"go build of {PROGRAM.name} failed: {(done.stderr or done.stdout).strip()}")
        return output

    def run(self, probes: Sequence[Probe]) -> list[Outcome]:
        if not probes:
            return []
        return run_program([str(self.binary())], probes, f"go ({PROGRAM.name})")


CLIENT = GoClient()
