"""``certdoctor lab``: the local lab of misconfigured TLS servers, in the foreground."""

from __future__ import annotations

import argparse

from .common import add_output_options, console, port_number


def port_base(text: str) -> int:
    """A port number, or 0 (free ports)."""
    return 0 if text.strip() == "0" else port_number(text)


NAME = "lab"
HELP = "run the local lab of misconfigured TLS servers (foreground)"
DESCRIPTION = (
    "Serve one TLS endpoint per misconfiguration on 127.0.0.1 (and 127.0.0.2), plus the AIA/OCSP/CRL endpoint; "
    "prints a ready certdoctor and curl command for each. Ctrl-C stops it."
)
EPILOG = """\
examples:
  certdoctor lab
  certdoctor lab --port-base 9440
  certdoctor lab --json | head -1 | jq '.scenarios[].name'
  certdoctor lab --targets lab-targets.txt     # then: certdoctor watch import lab-targets.txt

exit status: 0 after Ctrl-C, 2 usage error, 3 the lab cannot start (e.g. a port is in use)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port-base",
        type=port_base,
        default=8440,
        help="first port (AIA server); scenarios follow (default 8440; 0: free ports chosen by the system)",
    )
    p.add_argument("--state-dir", help="where generated keys and certificates are kept (~/.cache/certdoctor/lab)")
    p.add_argument(
        "--targets",
        metavar="FILE",
        help="once the lab is up, write its scenarios (hostile ones excepted) to FILE as scan/watch import lines",
    )
    add_output_options(p, quiet=False)


def run(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from ..lab import serve_foreground

    code = serve_foreground(
        Path(ns.state_dir) if ns.state_dir else None,
        ns.port_base,
        console(ns),
        json_output=ns.json,
        targets_file=Path(ns.targets) if ns.targets else None,
    )
    return 3 if code == 2 else code
