"""Run sslyze's certificate_info scan command (and nothing else) on a target list; print one JSON object.

Runs inside sslyze's own virtual environment (the benchmark creates it: sslyze pins an older cryptography
than certdoctor), so it imports nothing from certdoctor::

    VENV/bin/python bench/_sslyze_driver.py TARGETS --count N --ca-file ROOT [--server-scans 10]

TARGETS holds ``host:port,addr=IP`` lines; the host is sent as SNI, the address is connected to. The
elapsed time runs from queueing the scans to the last result (sslyze's import time is left out, which
favours sslyze). sslyze first runs its connectivity test (several handshakes: it probes TLS versions), then
certificate_info (a handshake per certificate deployment it looks for); that is its cost, reported as is.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from collections import Counter
from importlib import metadata
from pathlib import Path

from _targetlines import target_lines


def read_targets(path: Path, count: int) -> list[tuple[str, int, str]]:
    return list(itertools.islice(((host, port, addr) for _, host, port, addr in target_lines(path)), count))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", type=Path)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--server-scans", type=int, default=None, help="concurrent_server_scans_limit (sslyze: 10)")
    parser.add_argument("--per-server", type=int, default=None, help="per_server_concurrent_connections_limit (5)")
    ns = parser.parse_args(argv)

    warnings.simplefilter("ignore")  # sslyze's bundled trust stores trigger cryptography deprecation warnings
    from sslyze import (
        CertificateInfoExtraArgument,
        ScanCommand,
        ScanCommandAttemptStatusEnum,
        ScanCommandsExtraArguments,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )

    extra = ScanCommandsExtraArguments(certificate_info=CertificateInfoExtraArgument(custom_ca_file=ns.ca_file))
    requests = [
        ServerScanRequest(
            server_location=ServerNetworkLocation(hostname=host, port=port, ip_address=addr),
            scan_commands={ScanCommand.CERTIFICATE_INFO},
            scan_commands_extra_arguments=extra,
        )
        for host, port, addr in read_targets(ns.targets, ns.count)
    ]
    scanner = Scanner(
        per_server_concurrent_connections_limit=ns.per_server,
        concurrent_server_scans_limit=ns.server_scans,
    )
    started = time.perf_counter()
    scanner.queue_scans(requests)
    completed = 0
    errors: Counter[str] = Counter()
    chain_lengths: Counter[int] = Counter()
    for result in scanner.get_results():
        if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
            trace = result.connectivity_error_trace
            errors[f"connectivity: {trace.exc_type.__name__ if trace else result.connectivity_status}"] += 1
            continue
        attempt = result.scan_result.certificate_info
        if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED or attempt.result is None:
            errors[f"certificate_info: {attempt.error_reason}"] += 1
            continue
        completed += 1
        for deployment in attempt.result.certificate_deployments:
            chain_lengths[len(deployment.received_certificate_chain)] += 1
    elapsed = time.perf_counter() - started
    doc = {
        "version": metadata.version("sslyze"),
        "targets": len(requests),
        "completed": completed,
        "failed": len(requests) - completed,
        "errors": dict(errors.most_common(10)),
        "elapsed": elapsed,
        "chain_lengths": {str(k): v for k, v in chain_lengths.items()},
        "concurrent_server_scans_limit": scanner._concurrent_server_scans_count,
        "per_server_concurrent_connections_limit": scanner._per_server_concurrent_connections_count,
    }
    sys.stdout.write(json.dumps(doc) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
