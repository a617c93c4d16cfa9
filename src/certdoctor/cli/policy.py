"""``certdoctor policy``: validate a policy file, or print a preset."""

from __future__ import annotations

import argparse
import sys

from .common import Parser, UsageError, add_output_options, console

NAME = "policy"
HELP = "validate a certificate policy file, or print a preset"
DESCRIPTION = (
    "A policy is a TOML file of rules (allowed issuers, key types and sizes, signature algorithms, maximum "
    "validity, renewal margins, names, EKU, stapling, revocation information) that check, scan, fix and watch apply "
    "with --policy FILE (or a preset name), reporting policy-* findings. `policy check` reads a file as --policy "
    "would and reports every problem with its line: unknown keys (with the closest rule), wrong types, bad values. "
    "`policy show` prints a preset to start from."
)
EPILOG = """\
examples:
  certdoctor policy show public-web > policy.toml      # start from a preset
  certdoctor policy check policy.toml                  # every problem, with its line
  certdoctor policy check policy.toml --json | jq -r '.problems[] | "\\(.line): \\(.message)"'
  certdoctor check example.com --policy policy.toml    # apply it (scan, fix, watch run: the same option)
  certdoctor policy show                               # the presets

exit status: 0 the policy is valid, 1 it has problems (each with its line), 2 usage error or unreadable file
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", parser_class=Parser)
    sub.required = True
    c = sub.add_parser("check", help="validate a policy file", description="validate a policy file")
    c.add_argument("file", metavar="FILE|PRESET", help="the policy file (or a preset name)")
    add_output_options(c, quiet="only the problems, one per line")
    s = sub.add_parser("show", help="print a preset's TOML", description="print a preset's TOML (no name: list them)")
    s.add_argument("preset", nargs="?", help="public-web or internal")


def run(ns: argparse.Namespace) -> int:
    if ns.policy_command == "show":
        return _show(ns)
    return _check(ns)


def _show(ns: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..policy import PRESETS, parse_policy, preset_text

    if not ns.preset:
        for name in PRESETS:
            policy, _ = parse_policy(preset_text(name), name)
            sys.stdout.write(f"{name}\t{policy.description if policy else ''}\n")
        return 0
    try:
        sys.stdout.write(preset_text(ns.preset))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return 0


def _check(ns: argparse.Namespace) -> int:
    from ..policy import parse_policy, read_policy
    from ..render import json as render_json

    name, text = read_policy(ns.file)
    policy, problems = parse_policy(text, name)
    code = 1 if problems or policy is None else 0
    if ns.json:
        body = {
            "file": name,
            "valid": code == 0,
            "problems": [p.to_dict() for p in problems],
            "policy": policy.to_dict() if policy is not None and code == 0 else None,
            "exit_code": code,
        }
        sys.stdout.write(render_json.dumps(render_json.document("policy-check", body)) + "\n")
        return code
    out = console(ns)
    for p in problems:
        out.print(p.text(name), markup=False, highlight=False)
    if ns.quiet:
        return code
    if code == 0 and policy is not None:
        rules = sum(len(s.rules) for s in (policy.top, *policy.labelled))
        labelled = ", ".join(s.label for s in policy.labelled)
        extra = f"; label sections: {labelled}" if labelled else ""
        out.print(f"{name}: valid, {rules} rule(s){extra}", markup=False, highlight=False)
    else:
        out.print(f"{name}: {len(problems)} problem(s); the policy would not be applied", markup=False, highlight=False)
    return code
