"""Run one real-client driver against a fresh lab and print what the client did, probe by probe.

Usage: ``python tests/realclients/_try.py go|java|node [scenario ...]``

Starts every lab scenario (hostile ones included) in a temporary directory, builds one probe per endpoint
address (both addresses for multi-address), runs them as a single batch and prints a table of
scenario, address, accepted, error. Nothing is filtered or rewritten: the error column is the client's text.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from certdoctor.lab import Lab  # noqa: E402
from realclients import Probe, RealClient  # noqa: E402


def load_client(name: str) -> RealClient:
    module = importlib.import_module(f"realclients.{name}")
    client: RealClient = module.CLIENT
    return client


def lab_probes(lab: Lab, only: set[str] | None = None) -> list[Probe]:
    ca_file = str(lab.root_path)
    return [
        Probe(scenario=ep.name, hostname=ep.hostname, address=address, port=ep.port, ca_file=ca_file)
        for ep in lab
        if only is None or ep.name in only
        for address in ep.addresses
    ]


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    client = load_client(argv[0])
    reason = client.unavailable()
    if reason is not None:
        print(f"{client.id}: unavailable: {reason}", file=sys.stderr)
        return 1
    only = set(argv[1:]) or None
    with tempfile.TemporaryDirectory(prefix="certdoctor-try-") as tmp, Lab(Path(tmp)) as lab:
        probes = lab_probes(lab, only)
        began = time.perf_counter()
        outcomes = client.run(probes)
        seconds = time.perf_counter() - began
    width = max((len(p.scenario) for p in probes), default=8)
    print(f"{client.id} {client.version()}: {len(probes)} probes in {seconds:.1f} s")
    print(f"{'scenario':<{width}}  {'address':<9}  {'accepted':<8}  error")
    for probe, outcome in zip(probes, outcomes, strict=True):
        print(f"{probe.scenario:<{width}}  {probe.address:<9}  {outcome.accepted!s:<8}  {outcome.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
