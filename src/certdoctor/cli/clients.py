"""``certdoctor clients``: the client families ``check`` predicts, and what each one models."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import UsageError, add_output_options, console

NAME = "clients"
HELP = "list the client families certdoctor predicts, and what each one models"
DESCRIPTION = (
    "Every client family `check` predicts (Chrome, Firefox, Safari, curl, Python, Node, Java, Go, .NET): its trust "
    "store, whether it fetches intermediates via AIA, what it does about revocation, its limits and messages."
)
EPILOG = """\
examples:
  certdoctor clients
  certdoctor clients java --json

exit status: 0, or 2 for an unknown client
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="?", help="one client id (chrome, firefox, safari, curl, python, node, ...)")
    add_output_options(p, quiet="ids only, one per line")


def run(ns: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..clients import PROFILES
    from ..render import json as render_json
    from ..render.explain_text import render_profiles

    profiles = [p for p in PROFILES if ns.id is None or p.id == ns.id]
    if not profiles:
        raise UsageError(f"unknown client {ns.id!r} (known: {', '.join(p.id for p in PROFILES)})")
    if ns.json:
        body = {"clients": [_profile_dict(asdict(p)) for p in profiles]}
        sys.stdout.write(render_json.dumps(render_json.document("clients", body)) + "\n")
    elif ns.quiet:
        out = console(ns)
        for p in profiles:
            out.print(p.id)
    else:
        render_profiles(profiles, console(ns))
    return 0


# JSON names shared with the other documents: a client is "client" (as in check's and scan's "clients"), and
# "sha1" there is a certificate fingerprint, so the SHA-1 signature policy is "sha1_signatures".
_RENAMED = {"id": "client", "sha1": "sha1_signatures"}


def _profile_dict(fields: dict[str, Any]) -> dict[str, Any]:
    return {_RENAMED.get(k, k): v for k, v in fields.items()}
