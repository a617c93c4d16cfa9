"""``certdoctor fix``: from a pile of certificate files (or a live server) to a correct fullchain.pem."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import (
    UsageError,
    add_aia_options,
    add_connection_options,
    add_key_options,
    add_name_option,
    add_output_options,
    add_policy_option,
    add_trust_options,
    console,
    error,
    key_password,
    load_policy_option,
    looks_like_file,
    parse_resolve,
    reach_fields,
)

NAME = "fix"
HELP = "turn a pile of certificate files into a correct fullchain.pem"
DESCRIPTION = (
    "Find the server certificate among the inputs (PEM, DER, PKCS#7, PKCS#12, in any order; directories too), "
    "order its chain leaf → intermediates, download missing intermediates via AIA, leave out the root, unrelated "
    "and duplicate certificates, write fullchain.pem / chain.pem / cert.pem, re-verify the result and print the "
    "server configuration lines."
)
EPILOG = """\
examples:
  certdoctor fix cert.crt ca-bundle.crt -d /etc/ssl/example
  certdoctor fix downloads/ --name www.example.com -d out
  certdoctor fix server.p7b --include-root --json
  certdoctor fix cert.crt bundle.crt --key site.key --password-file pass.txt -d out
  certdoctor fix api.example.com:443 -d repaired   # the chain the server should be sending

exit status: 0 the written chain verifies, 1 written but problems remain, 2 unusable input (nothing written),
3 the server given could not be reached
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE|DIR|HOST[:PORT]",
        help="certificate files or directories of them, or one server to start from",
    )
    p.add_argument("-d", "--output-dir", default=".", metavar="DIR", help="where to write (default: .)")
    add_name_option(p, "pick the server certificate for NAME and verify the name")
    add_key_options(p, what="the private key (PEM or DER; PKCS#1, PKCS#8, SEC1)")
    p.add_argument(
        "--pkcs12",
        action="store_true",
        help="also write bundle.p12 (key + chain, for Windows/IIS, Java, appliances); needs a key",
    )
    p.add_argument("--pkcs12-password", metavar="PASS", help="password for bundle.p12 (default: the key's)")
    p.add_argument(
        "--intermediates",
        action="append",
        default=[],
        metavar="DIR|FILE",
        help="where to look for missing intermediates before AIA (e.g. your CA's bundle); repeatable",
    )
    p.add_argument("--include-root", action="store_true", help="append the root to fullchain.pem")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_trust_options(p, bundle=False)
    add_aia_options(p)
    add_policy_option(p.add_argument_group("policy"))
    add_connection_options(p, sni=False)
    add_output_options(p, quiet="only the verdict and the files written")


def _ask(path: str) -> bytes | None:
    if sys.stdin is None or not sys.stdin.isatty():
        return None
    import getpass

    return getpass.getpass(f"password for {path}: ").encode()


def _warn_if_readable(path: str) -> None:
    """One line on stderr when the private key file can be read by its group or by everyone."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    who = " and ".join(w for bit, w in ((0o040, "its group"), (0o004, "everyone")) if mode & bit)
    if who:
        error(NAME, f"warning: the private key {path} is readable by {who} (mode {mode & 0o777:04o}); chmod 600 {path}")


def run(ns: argparse.Namespace) -> int:
    from ..collect.keys import load_private_key
    from ..fixer import fix, input_files, read_inputs, read_server
    from ..pipeline import parse_target
    from ..render import json as render_json
    from ..render.fix_text import render_fix

    client = reach_fields(ns)  # a --key of the --cert certificate is the client's, not the server's
    password = key_password(ns, prompt_for=ns.key)
    first = ns.inputs[0]
    if len(ns.inputs) == 1 and not looks_like_file(first) and not os.path.isdir(first):
        host, port = parse_target(first)
        ns.name = ns.name or host
        inputs = read_server(
            first,
            resolve=parse_resolve(ns.resolve, host, port),
            timeout=ns.timeout,
            starttls=ns.starttls,
            client=client,
        )
    else:
        missing = [p for p in ns.inputs if not os.path.lexists(p)]
        if missing:
            raise UsageError(f"no such file or directory: {', '.join(missing)}")
        files = input_files(ns.inputs)
        given = {os.path.normpath(p) for p in ns.inputs}
        optional = frozenset(p for p in files if os.path.normpath(p) not in given)
        inputs = read_inputs(files, password=password, ask_password=_ask, optional=optional)
    if ns.key:
        inputs.keys.insert(0, (load_private_key(ns.key, password), ns.key))
        _warn_if_readable(ns.key)
    result = fix(
        inputs,
        Path(ns.output_dir),
        pool_paths=ns.intermediates,
        host=ns.name,
        include_root=ns.include_root,
        ca_files=ns.ca_file,
        trust_stores=ns.trust_store,
        fetch_aia=not ns.no_aia,
        timeout=ns.timeout,
        aia_timeout=ns.aia_timeout,
        allow_private_fetch=not ns.refuse_private_urls,
        force=ns.force,
        pkcs12=ns.pkcs12,
        pkcs12_password=ns.pkcs12_password.encode() if ns.pkcs12_password is not None else None,
        policy=load_policy_option(ns),
    )
    if ns.json:
        print(render_json.dumps(result.to_dict()))
    else:
        render_fix(result, console(ns), quiet=ns.quiet)
    return result.exit_code
