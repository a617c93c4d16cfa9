"""``certdoctor explain``: a pasted client error → which client said it, the likely causes, what to run."""

from __future__ import annotations

import argparse
import sys

from .common import UsageError, add_output_options, console

NAME = "explain"
HELP = "paste a client's TLS error: which client said it, the likely causes, what to run"
DESCRIPTION = (
    "Recognise an error message from curl/OpenSSL, Python, Node/Postman, Java, Go, .NET, Chrome/Edge, Firefox, "
    "Safari, wget or git, and rank its likely causes with how to tell them apart."
)
EPILOG = """\
examples:
  certdoctor explain 'curl: (60) SSL certificate problem: unable to get local issuer certificate'
  certdoctor explain PKIX path building failed
  kubectl get pods 2>&1 | certdoctor explain -
  certdoctor explain --json 'NET::ERR_CERT_AUTHORITY_INVALID'

exit status: 0 recognised, 1 not recognised, 2 usage error
"""

MAX_EXPLAIN_INPUT = 1_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="*", help="the error text (words are joined); '-' or nothing: read stdin")
    add_output_options(p, quiet="the client and the causes' titles only")


def run(ns: argparse.Namespace) -> int:
    from ..clients.explain import explain
    from ..render import json as render_json
    from ..render.explain_text import render_explanation

    if not ns.text or ns.text == ["-"]:
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("paste the error text as arguments, or pipe it in with '-'")
        text = sys.stdin.read(MAX_EXPLAIN_INPUT)
    else:
        text = " ".join(ns.text)
    if not text.strip():
        raise UsageError("empty error text")
    result = explain(text)
    if ns.json:
        sys.stdout.write(render_json.dumps(render_json.document("explain", result.to_dict())) + "\n")
    else:
        render_explanation(result, console(ns), quiet=ns.quiet)
    return 0 if result.recognised else 1
