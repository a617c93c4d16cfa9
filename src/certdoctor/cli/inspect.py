"""``certdoctor inspect``: every certificate in files or in what a server sends, described."""

from __future__ import annotations

import argparse
import os
import sys

from .common import (
    UsageError,
    add_ca_file_option,
    add_connection_options,
    add_output_options,
    console,
    error,
    looks_like_file,
    parse_resolve,
    reach_fields,
)

NAME = "inspect"
HELP = "describe every certificate in files or a server's chain"
DESCRIPTION = (
    "A readable `openssl x509 -text`: every certificate with its role, validity, names, key, signature, AIA/OCSP/"
    "CRL URLs, fingerprints, and which certificate issued which."
)
EPILOG = """\
examples:
  certdoctor inspect fullchain.pem
  certdoctor inspect cert.pem chain.pem --json
  certdoctor inspect example.com:443
  certdoctor inspect example.com --pem > served.pem     # the served chain as PEM

exit status: 0 every input was read, 2 an input could not be read (the reason on stderr), 3 the server could not
be reached
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="FILE|HOST[:PORT]", help="files, or one server")
    add_connection_options(p)
    p.add_argument("--at", metavar="DATE", help="compute days left as of this moment (default: now)")
    add_ca_file_option(p)
    p.add_argument("--pem", action="store_true", help="print the certificates as PEM instead of describing them")
    add_output_options(p, quiet="one line per certificate: position, role, subject, days left")


def run(ns: argparse.Namespace) -> int:
    from ..errors import CollectError
    from ..inspection import inspect_files, inspect_server
    from ..model import ExitCode
    from ..pipeline import parse_at, parse_target
    from ..render import json as render_json
    from ..render.inspect_text import render_inspect, render_pem_issues

    if ns.pem and (ns.json or ns.quiet):
        raise UsageError("--pem prints the certificates themselves: give it without --json or -q")
    at = parse_at(ns.at)
    if any(looks_like_file(p) for p in ns.inputs):
        missing = [p for p in ns.inputs if not os.path.lexists(p)]  # the others: read_capped says what is wrong
        if missing:
            raise UsageError(f"no such file: {', '.join(missing)} (give files, or one server)")
        result = inspect_files(ns.inputs, at=at, ca_files=ns.ca_file)
    else:
        if len(ns.inputs) != 1:
            raise UsageError("give files, or exactly one server")
        host, port = parse_target(ns.inputs[0])
        sni = None if ns.no_sni else ns.sni
        result = inspect_server(
            ns.inputs[0],
            at=at,
            resolve=parse_resolve(ns.resolve, host, port),
            sni=sni,
            timeout=ns.timeout,
            ca_files=ns.ca_file,
            starttls=ns.starttls,
            client=reach_fields(ns),
        )
        if result.empty:
            raise CollectError(f"no certificate obtained from {ns.inputs[0]}: {'; '.join(result.errors)}")
    if ns.pem:
        from ..render.pem import groups_pem

        sys.stdout.write(groups_pem(result.chains))
    elif ns.json:
        print(render_json.dumps(result.to_dict()))
    else:
        out = console(ns)
        render_inspect(result.groups, out, quiet=ns.quiet)
        render_pem_issues(result.pem_issues, out)
    for err in result.errors:
        error(NAME, err)
    return int(ExitCode.USAGE if result.errors or result.empty else ExitCode.OK)
