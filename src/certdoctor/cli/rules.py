"""``certdoctor rules``: every finding id, or everything about one."""

from __future__ import annotations

import argparse
import sys

from .common import UsageError, add_output_options, console

NAME = "rules"
HELP = "list the checks (finding ids) or describe one"
DESCRIPTION = (
    "Every finding id certdoctor can report, with its severity, title and the rule it comes from; with an id: what "
    "it means, its evidence, which clients reject it and with which message, and the lab scenario that shows it."
)
EPILOG = """\
examples:
  certdoctor rules                       # a table on a terminal; id<TAB>severity<TAB>title<TAB>citation in a pipe
  certdoctor rules | grep revocation
  certdoctor rules missing-intermediate
  certdoctor rules --json | jq -r '.rules[].id'

exit status: 0, or 2 for an unknown id
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="?", help="a finding id")
    add_output_options(p, quiet="ids only, one per line")


def run(ns: argparse.Namespace) -> int:
    from ..render import json as render_json
    from ..render.rules_text import render_rule, render_rules
    from ..rules import rule_detail, rules

    infos = rules()
    if ns.id:
        detail = rule_detail(ns.id)
        if detail is None:
            raise UsageError(f"unknown rule {ns.id!r} (see `certdoctor rules`)")
        if ns.json:
            sys.stdout.write(render_json.dumps(render_json.document("rule", detail)) + "\n")
        else:
            render_rule(detail, console(ns))
        return 0
    if ns.json:
        sys.stdout.write(render_json.dumps(render_json.document("rules", {"rules": infos})) + "\n")
    else:
        render_rules(infos, console(ns), quiet=ns.quiet)
    return 0
