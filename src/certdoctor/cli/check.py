"""``certdoctor check``: diagnose a server or chain files."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .common import (
    EXIT_CODES_HELP,
    UsageError,
    add_connection_options,
    add_judgement_options,
    add_key_options,
    add_name_option,
    add_output_options,
    add_trust_options,
    console,
    diagnose_options,
    fail_on,
    key_password,
    label_pairs,
    looks_like_file,
    parse_resolve,
    reach_fields,
    starttls_kwargs,
)

NAME = "check"
HELP = "diagnose a server or a chain file"
DESCRIPTION = (
    "Collect the chain a server presents (on every address) and report every reason a client would reject it, "
    "with evidence and the fix."
)
EPILOG = f"""\
examples:
  certdoctor check api.example.com                  # port 443, every A/AAAA address
  certdoctor check https://api.example.com:8443/health
  certdoctor check smtp://mail.example.com:587          # STARTTLS first (also imap://, pop3://, --starttls)
  certdoctor check api.example.com --resolve api.example.com:443:10.0.0.5,10.0.0.6
  certdoctor check internal.corp:443 --ca-file corp-root.pem
  certdoctor check api.internal:8443 --cert client.pem --key client.key   # mutual TLS, as curl takes them
  certdoctor check api.example.com --proxy http://proxy.corp:3128        # or https_proxy / NO_PROXY
  certdoctor check api.example.com --at 2027-01-01      # will it still work then?
  certdoctor check api.example.com --for java,go        # INVALID only if Java or Go refuses it
  certdoctor check api.example.com --expect /etc/nginx/certs/fullchain.pem
  certdoctor check api.example.com --deployed /etc/nginx/certs/fullchain.pem --server-type nginx
  certdoctor check api.example.com --deployed 'certs/*.p12' --password-file p12.pass --server-type lb
  certdoctor check --file cert.crt --file chain.crt --name api.example.com   # offline, one chain
  certdoctor check --each-file node1.pem --each-file node2.pem --name api.example.com
  certdoctor check api.example.com --pem > served.pem   # the chain as served, as PEM
  certdoctor check api.example.com --json | jq '.findings[].id'
  certdoctor check --file chain.pem --name api.example.com --crl ca.crl --no-revocation   # revoked? offline

{EXIT_CODES_HELP}
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target",
        nargs="?",
        help="HOST, HOST:PORT, [IPv6]:PORT or a URL: https://, smtp://, imap://, pop3:// (STARTTLS), smtps://, "
        "imaps://, pop3s://, ldaps:// (port 443 by default)",
    )
    files = p.add_argument_group("files instead of a server")
    files.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="a chain file (PEM/DER/PKCS#7); several --file are ONE chain in the order given, as a server "
        "configured with them sends it (certificate file + chain file)",
    )
    files.add_argument(
        "--each-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a chain file of another server: each is judged as one node behind the name, side by side",
    )
    add_name_option(p, "the name the certificate must match (default: the target's host; for files: none)")
    add_connection_options(p)
    add_trust_options(p)
    add_judgement_options(p, caa_default=None)
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='a label of this target, for the policy\'s [labels."KEY=VALUE"] sections (repeatable)',
    )
    p.add_argument("--expect", metavar="FILE", help="the certificate (or chain) you believe is deployed")
    p.add_argument(
        "--deployed",
        action="append",
        default=[],
        metavar="FILE",
        help="a certificate file as deployed on the server (PEM, DER, PKCS#7, PKCS#12, JKS/JCEKS; a glob in "
        "quotes for several): reports not-reloaded, served-not-deployed, partially-reloaded and problems of the "
        "file itself (repeatable; PKCS#12/keystore password: --password-file or --password-env)",
    )
    p.add_argument(
        "--server-type",
        choices=("nginx", "apache", "haproxy", "lb", "other"),
        help="what serves the deployed files, for the fix text (lb: a load balancer or CDN with its own upload)",
    )
    p.add_argument(
        "--crl",
        action="append",
        default=[],
        metavar="FILE",
        help="a CRL (PEM or DER) to judge revocation with, offline: verified against the issuing CA of the chain "
        "(issuer, signature, cRLSign, dates) and looked up for each certificate that CA issued (repeatable)",
    )
    p.add_argument(
        "--max-chain-depth",
        type=int,
        metavar="N",
        help="report max-chain-depth-exceeded when the path has more than N intermediates (a client's verify "
        "depth, e.g. nginx ssl_verify_depth; default: no limit)",
    )
    add_key_options(
        p, what="the private key the server uses: reports key-mismatch if it does not belong to the certificate"
    )
    p.add_argument("--no-clients", action="store_true", help="skip the per-client predictions (Chrome, curl, Java…)")
    p.add_argument(
        "--forecast-days",
        type=_days,
        default=None,
        metavar="N",
        help="look N days ahead for the first instant each client will reject the chain served today "
        '("First break" line, "forecast" in --json; default 825, the longest leaf validity a client '
        "accepts; 0: no forecast; never with -q, --pem or --no-clients)",
    )
    add_output_options(p)
    p.add_argument("--pem", action="store_true", help="print the chain as presented, as PEM, instead of a report")


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 0 <= value <= 36500:
        raise argparse.ArgumentTypeError(f"give 0 to 36500 days, not {value}")
    return value


def break_forecast(ns: argparse.Namespace, d: Any) -> Any:
    """The break forecast of ``d`` (:class:`certdoctor.forecast.Forecast`), or None when it is not wanted: -q,
    --pem, --no-clients, --forecast-days 0, or no certificate obtained."""
    from ..forecast import DEFAULT_HORIZON_DAYS, forecast

    days = DEFAULT_HORIZON_DAYS if ns.forecast_days is None else ns.forecast_days
    if ns.quiet or ns.pem or ns.no_clients or not days or not d.reachable:
        return None
    return forecast(d, horizon_days=days)


def request(ns: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """The target and :func:`certdoctor.api.diagnose` arguments of parsed ``check`` options."""
    from ..pipeline import parse_target

    if ns.server_type and not ns.deployed:
        raise UsageError("--server-type goes with --deployed FILE")
    client = reach_fields(ns)  # before the server key: a --key of the --cert certificate is the client's
    password = key_password(ns, prompt_for=ns.key) if ns.key else None
    if ns.deployed and password is None:
        password = key_password(ns)
    options = diagnose_options(
        ns,
        expect=ns.expect,
        deployed=tuple(ns.deployed),
        deployed_password=password if ns.deployed else None,
        server_type=ns.server_type,
        crl_files=tuple(ns.crl),
        max_chain_depth=ns.max_chain_depth,
        key=ns.key,
        key_password=password if ns.key else None,
        clients=not ns.no_clients and not ns.pem,
        labels=label_pairs(ns.label),
        **client,
    )
    kwargs: dict[str, Any] = {"options": options}
    if ns.name:
        kwargs["name"] = ns.name
    if ns.file or ns.each_file:
        if ns.file and ns.each_file:
            raise UsageError("give --file (one chain) or --each-file (one chain per file), not both")
        if ns.target:
            raise UsageError("give either a server or --file, not both")
        kwargs["files"] = ns.file or ns.each_file
        kwargs["separate_files"] = bool(ns.each_file)
        return None, kwargs
    if not ns.target:
        raise UsageError("no target: give HOST[:PORT], a URL, or --file FILE")
    if looks_like_file(ns.target):  # `check fullchain.pem`: a file, never a DNS query
        if not os.path.lexists(ns.target):
            raise UsageError(f"no such file: {ns.target} (a server is HOST[:PORT] or a URL)")
        kwargs["files"] = [ns.target]
        return None, kwargs
    host, port = parse_target(ns.target)
    if ns.no_sni:
        kwargs["sni"] = None
    elif ns.sni:
        kwargs["sni"] = ns.sni
    kwargs["resolve"] = parse_resolve(ns.resolve, host, port)
    kwargs.update(starttls_kwargs(ns))
    return ns.target, kwargs


def run(ns: argparse.Namespace) -> int:
    from ..api import diagnose
    from ..render import json as render_json
    from ..render.text import render

    if ns.pem and (ns.json or ns.quiet):
        raise UsageError("--pem prints the chain itself: give it without --json or -q")
    target, kwargs = request(ns)
    err = console(ns, stderr=True)
    if err.is_terminal and not ns.json and not ns.quiet and not ns.pem:
        from ..render import clean

        with err.status(f"checking {clean(target or ', '.join(kwargs['files']))} …"):
            d = diagnose(target, **kwargs)
    else:
        d = diagnose(target, **kwargs)
    code = d.exit_code_for(fail_on(ns))
    ahead = break_forecast(ns, d)
    if ns.pem:
        from ..render.pem import chains_pem

        sys.stdout.write(chains_pem(d))
    elif ns.json:
        doc = d.to_dict(fail_on=fail_on(ns))
        doc["forecast"] = ahead.to_list() if ahead is not None else []
        sys.stdout.write(render_json.dumps(doc) + "\n")
    else:
        from ..forecast import first_break_line

        line = first_break_line(ahead, d.verdict_clients or None) if ahead is not None else None
        render(d, console(ns), quiet=ns.quiet, forecast=line)
    if not d.reachable:
        from ..render import clean

        for c in d.evidence.chains:
            why = c.error or "no certificate"
            where = "" if why.startswith(c.source) else f"{clean(c.source)}: "
            print(f"certdoctor check: {where}{clean(why)}", file=sys.stderr)
    return code
