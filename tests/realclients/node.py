"""Node's tls module as a real client: ``probe.js``, run with the local ``node``.

Errors are Node's own ``${err.code}: ${err.message}``; see probe.js for the one text it defines itself
(the ``ETIMEDOUT`` idle timeout). Batch plumbing (RealClientError, run_program) is shared from .go.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import Outcome, Probe
from ._common import run_program

PROGRAM = Path(__file__).with_name("probe.js")
MIN_MAJOR = 16


class NodeClient:
    """Node ``tls.connect`` with ``ca`` = the probe's root only, via ``probe.js``."""

    id = "node"

    @functools.cache  # noqa: B019 - one module-level instance
    def unavailable(self) -> str | None:
        node = shutil.which("node")
        if node is None:
            return "node not installed"
        try:
            done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"node does not run: {exc}"
        text = done.stdout.strip()
        if done.returncode != 0 or not text.startswith("v"):
            return f"node does not run: {(done.stderr or done.stdout).strip()[:200]}"
        major = text[1:].split(".", 1)[0]
        if not major.isdigit() or int(major) < MIN_MAJOR:
            return f"node {text} is too old (need v{MIN_MAJOR}+)"
        return None

    @functools.cache  # noqa: B019
    def version(self) -> str:
        """``Node v20.x.y`` (from ``node --version``)."""
        done = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30, check=True)
        return f"Node {done.stdout.strip()}"

    def run(self, probes: Sequence[Probe]) -> list[Outcome]:
        return run_program(["node", str(PROGRAM)], probes, f"node ({PROGRAM.name})")


CLIENT = NodeClient()
