"""``certdoctor stores``: the trust stores certdoctor can judge against."""

from __future__ import annotations

import argparse
import sys

from .common import add_output_options, console

NAME = "stores"
HELP = "list the trust stores certdoctor can judge against"
DESCRIPTION = "The trust stores --trust-store accepts, whether each is available here, and which are the default."
EPILOG = """\
examples:
  certdoctor stores
  certdoctor stores --json | jq -r '.stores[] | select(.available) | .name'

exit status: 0
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_output_options(p, quiet="names only, one per line")


def run(ns: argparse.Namespace) -> int:
    from ..collect.stores import DEFAULT_STORES, list_stores
    from ..render import json as render_json

    rows = [
        {"name": n, "description": d, "available": ok, "default": n in DEFAULT_STORES} for n, d, ok in list_stores()
    ]
    if ns.json:
        sys.stdout.write(render_json.dumps(render_json.document("stores", {"stores": rows})) + "\n")
        return 0
    out = console(ns)
    if ns.quiet:
        for r in rows:
            out.print(r["name"])
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("available", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("description", overflow="fold")
    for r in rows:
        table.add_row(r["name"], "yes" if r["available"] else "no", "yes" if r["default"] else "", r["description"])
    out.print(table)
    return 0
