"""Command line: argument parsing and exit codes only. Heavy modules are imported inside the commands so that
``certdoctor --help`` stays fast."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

CHECK_EXAMPLES = """\
examples:
  certdoctor check api.example.com                  # port 443, every A/AAAA address
  certdoctor check https://api.example.com:8443/health
  certdoctor check api.example.com --resolve api.example.com:443:10.0.0.5,10.0.0.6
  certdoctor check internal.corp:443 --ca-file corp-root.pem
  certdoctor check api.example.com --at 2027-01-01      # will it still work then?
  certdoctor check api.example.com --expect /etc/nginx/certs/fullchain.pem
  certdoctor check --file fullchain.pem --host api.example.com   # offline, as a server would send it
  certdoctor check api.example.com --json | jq '.findings[].id'

exit status: 0 no errors, 1 problems found, 2 usage or connection error
"""

SCAN_EXAMPLES = """\
input: one target per line (# comments), or CSV with a header (host,port,sni,name,addr):
  example.com
  example.com:8443
  https://example.com:8443/health
  example.com:443,sni=www.example.com       # another SNI
  example.com:443,addr=192.0.2.10           # connect here instead of resolving (repeatable)

examples:
  certdoctor scan hosts.txt > results.jsonl          # JSON Lines when stdout is not a terminal
  certdoctor scan hosts.txt --csv -o results.csv
  cut -d, -f1 inventory.csv | certdoctor scan - --concurrency 500 --rate 200
  certdoctor scan hosts.txt -o results.jsonl --resume results.jsonl   # continue after Ctrl-C
  jq -r 'select(.verdict != "valid") | [.target, (.findings | map(.id) | join(" "))] | @tsv' results.jsonl

exit status: 0 every target valid, 1 problems found, 2 usage error, 130 interrupted (what was done is written)
"""

MAIN_EXAMPLES = """\
examples:
  certdoctor demo                      # start the local lab and diagnose every scenario
  certdoctor check example.com         # diagnose a server
  certdoctor scan hosts.txt > out.jsonl   # many servers, streaming one JSON line per target
  certdoctor lab                       # run the lab in the foreground to test your own clients
  certdoctor inspect fullchain.pem     # every certificate in a file, with roles and links
  certdoctor fix cert.crt bundle.crt   # write a correct fullchain.pem from a pile of files
  certdoctor rules                     # every finding id certdoctor can report
  certdoctor explain 'PKIX path building failed'   # what a client's error means
  certdoctor clients                   # the client families predicted by check
"""


class UsageError(Exception):
    pass


def _add_check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", help="HOST, HOST:PORT or https:// URL (port 443 by default)")
    p.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="check a chain file instead of a server (PEM/DER/PKCS#7, in the order a server sends it)",
    )
    p.add_argument("--host", metavar="NAME", help="name the certificate must match (default: the target host)")
    p.add_argument("-p", "--port", type=int, help="port (default 443, or the one in TARGET)")
    _add_resolve_option(p)
    sni = p.add_mutually_exclusive_group()
    sni.add_argument("--sni", metavar="NAME", help="server name to send in the TLS ClientHello (default: the host)")
    sni.add_argument("--no-sni", action="store_true", help="send no SNI (what very old clients do)")
    _add_judgement_options(p, at_default="now")
    p.add_argument("--expect", metavar="FILE", help="the certificate (or chain) you believe is deployed")
    p.add_argument(
        "--key",
        metavar="FILE",
        help="the private key the server uses: reports key-mismatch if it does not belong to the served certificate",
    )
    p.add_argument("--password", metavar="PASS", help="password of an encrypted --key (or CERTDOCTOR_KEY_PASSWORD)")
    p.add_argument("--no-clients", action="store_true", help="skip the per-client predictions (Chrome, curl, Java, …)")
    _add_output_options(p)


def _add_judgement_options(p: argparse.ArgumentParser, *, at_default: str) -> None:
    """Options `check` and `scan` share: connection timeout, trust, the moment, AIA and revocation."""
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per-connection timeout (default 10)")
    p.add_argument(
        "--ca-file",
        action="append",
        default=[],
        metavar="FILE",
        help="extra trusted root(s), e.g. your private CA; added to every store (repeatable)",
    )
    p.add_argument(
        "--trust-store",
        action="append",
        metavar="NAME",
        help="store(s) to judge against: mozilla, system, chrome, microsoft, java "
        "(repeatable; default: mozilla and system)",
    )
    p.add_argument(
        "--at", metavar="DATE", help=f"judge as of this date/time (YYYY-MM-DD or ISO 8601, UTC; default: {at_default})"
    )
    p.add_argument(
        "--warn-days",
        type=int,
        default=30,
        metavar="N",
        help="warn when the certificate expires within N days (default 30)",
    )
    p.add_argument("--no-aia", action="store_true", help="do not download missing intermediates via AIA")
    p.add_argument(
        "--no-revocation",
        action="store_true",
        help="do not query OCSP responders or CRLs (a stapled OCSP response is still checked)",
    )
    p.add_argument(
        "--revocation-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="time budget for all OCSP/CRL lookups of one target (default 5)",
    )


def judgement_kwargs(ns: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`_add_judgement_options` as diagnose()/Session() arguments."""
    return {
        "timeout": ns.timeout,
        "ca_files": ns.ca_file,
        "trust_stores": ns.trust_store,
        "at": ns.at,
        "warn_days": ns.warn_days,
        "fetch_aia": not ns.no_aia,
        "revocation": not ns.no_revocation,
        "revocation_timeout": ns.revocation_timeout,
    }


def _add_scan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="FILE", help="targets, one per line or CSV; '-' reads stdin")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--jsonl", action="store_true", help="JSON Lines (the default when stdout is not a terminal)")
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per target, with a header")
    p.add_argument("-o", "--output", metavar="FILE", help="write records to FILE instead of stdout")
    p.add_argument("--resume", metavar="FILE", help="skip the targets already in FILE (an earlier -o) and append")
    p.add_argument("--concurrency", type=int, default=100, metavar="N", help="targets in flight (default 100)")
    p.add_argument(
        "-w",
        "--workers",
        type=int,
        metavar="K",
        help="processes, each with its own event loop (default: up to one per core, added while cores are idle)",
    )
    p.add_argument("--rate", type=float, metavar="R", help="open at most R connections per second (default: no cap)")
    p.add_argument(
        "--retries", type=int, default=2, metavar="N", help="retries of transient connection failures (default 2)"
    )
    p.add_argument("--full", action="store_true", help="the whole `check --json` document per target")
    p.add_argument("--clients", action="store_true", help="add per-client predictions to each record")
    _add_judgement_options(p, at_default="when the scan starts, one moment for every target")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--no-color", action="store_true", help="no colours (also honoured: NO_COLOR)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary on stderr")


def _add_resolve_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR[,ADDR...]",
        help="connect to these addresses instead of resolving HOST (like curl); SNI and name stay HOST",
    )


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--no-color", action="store_true", help="no colours (also honoured: NO_COLOR)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the verdict and one line per finding")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certdoctor",
        description="Explain why TLS clients reject a server's certificate chain, and how to fix it.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="diagnose a server or a chain file",
        epilog=CHECK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Collect the chain a server presents (every address) and report every "
        "reason a client would reject it, with evidence and the fix.",
    )
    _add_check_options(check)

    lab = sub.add_parser(
        "lab",
        help="run the local lab of misconfigured TLS servers (foreground)",
        description="Serve one TLS endpoint per misconfiguration on 127.0.0.1, plus the AIA "
        "endpoint; prints a ready certdoctor and curl command for each.",
        epilog="example:\n  certdoctor lab --port-base 9440\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lab.add_argument("--port-base", type=int, default=8440, help="first port (AIA server); scenarios follow")
    lab.add_argument("--state-dir", help="where generated keys and certificates are cached")
    lab.add_argument("--json", action="store_true", help="print the scenarios as one JSON line, then serve")
    lab.add_argument("--no-color", action="store_true", help="no colours (also honoured: NO_COLOR)")

    demo = sub.add_parser(
        "demo",
        help="start the lab in-process and diagnose every scenario",
        description="Start the lab on free loopback ports, run `certdoctor check` on every "
        "scenario and compare the findings with what each scenario should produce.",
        epilog="example:\n  certdoctor demo\n  certdoctor demo --json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--state-dir", help="where generated keys and certificates are cached")
    demo.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    _add_output_options(demo)

    inspect = sub.add_parser(
        "inspect",
        help="describe every certificate in files or a server's chain",
        description="A readable `openssl x509 -text`: every certificate with its role, validity, names, key, "
        "signature, AIA/OCSP/CRL URLs, fingerprints, and which certificate issued which.",
        epilog="examples:\n  certdoctor inspect fullchain.pem\n  certdoctor inspect cert.pem chain.pem --json\n"
        "  certdoctor inspect example.com:443\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("inputs", nargs="+", metavar="FILE|HOST[:PORT]", help="files, or one server")
    _add_resolve_option(inspect)
    inspect.add_argument("--sni", metavar="NAME", help="server name to send (default: the host)")
    inspect.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    inspect.add_argument("--at", metavar="DATE", help="compute days left as of this date")
    inspect.add_argument("--ca-file", action="append", default=[], metavar="FILE", help="extra trusted root(s)")
    _add_output_options(inspect)

    fix = sub.add_parser(
        "fix",
        help="turn a pile of certificate files into a correct fullchain.pem",
        description="Find the server certificate among the inputs (PEM, DER, PKCS#7, in any order; directories "
        "too), order its chain leaf → intermediates, download missing intermediates via AIA, leave out the root, "
        "unrelated and duplicate certificates, write fullchain.pem / chain.pem / cert.pem, re-verify the result "
        "and print the server configuration lines.",
        epilog="examples:\n  certdoctor fix cert.crt ca-bundle.crt -o /etc/ssl/example\n"
        "  certdoctor fix downloads/ --host www.example.com -o out\n"
        "  certdoctor fix server.p7b --include-root --json\n"
        "  certdoctor fix api.example.com:443 -o repaired   # the chain the server should be sending\n\n"
        "exit status: 0 the written chain verifies, 1 written but problems remain, 2 bad input\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fix.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE|DIR|HOST[:PORT]",
        help="certificate files or directories of them, or one server to start from",
    )
    _add_resolve_option(fix)
    fix.add_argument("-o", "--output-dir", default=".", metavar="DIR", help="where to write (default: .)")
    fix.add_argument("--host", metavar="NAME", help="pick the server certificate for NAME and verify the name")
    fix.add_argument("--key", metavar="FILE", help="the private key (PEM or DER; PKCS#1, PKCS#8, SEC1)")
    fix.add_argument(
        "--password",
        metavar="PASS",
        help="password of an encrypted key (or set CERTDOCTOR_KEY_PASSWORD; prompted on a terminal)",
    )
    fix.add_argument(
        "--pkcs12",
        action="store_true",
        help="also write bundle.p12 (key + chain, for Windows/IIS, Java, appliances); needs a key",
    )
    fix.add_argument(
        "--pkcs12-password", metavar="PASS", help="password for bundle.p12 (default: --password; keytool needs one)"
    )
    fix.add_argument(
        "--intermediates",
        action="append",
        default=[],
        metavar="DIR|FILE",
        help="where to look for missing intermediates before AIA (e.g. your CA's bundle); repeatable",
    )
    fix.add_argument("--include-root", action="store_true", help="append the root to fullchain.pem")
    fix.add_argument("--force", action="store_true", help="overwrite existing output files")
    fix.add_argument("--ca-file", action="append", default=[], metavar="FILE", help="extra trusted root(s)")
    fix.add_argument("--trust-store", action="append", metavar="NAME", help="store(s) to verify against")
    fix.add_argument("--no-aia", action="store_true", help="do not download missing intermediates")
    fix.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    _add_output_options(fix)

    rules = sub.add_parser(
        "rules",
        help="list the checks (finding ids) or describe one",
        epilog="examples:\n  certdoctor rules\n  certdoctor rules missing-intermediate\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rules.add_argument("id", nargs="?", help="a finding id")
    _add_output_options(rules)

    stores = sub.add_parser("stores", help="list the trust stores certdoctor can judge against")
    _add_output_options(stores)

    explain = sub.add_parser(
        "explain",
        help="paste a client's TLS error: which client said it, the likely causes, what to run",
        description="Recognise an error message from curl/OpenSSL, Python, Node/Postman, Java, Go, .NET, "
        "Chrome/Edge, Firefox, Safari, wget or git, and rank its likely causes with how to tell them apart.",
        epilog="examples:\n"
        "  certdoctor explain 'curl: (60) SSL certificate problem: unable to get local issuer certificate'\n"
        "  certdoctor explain PKIX path building failed\n"
        "  kubectl get pods 2>&1 | certdoctor explain -\n"
        "  certdoctor explain --json 'NET::ERR_CERT_AUTHORITY_INVALID'\n\n"
        "exit status: 0 recognised, 1 not recognised, 2 usage error\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("text", nargs="*", help="the error text (words are joined); '-' or nothing: read stdin")
    _add_output_options(explain)

    scan = sub.add_parser(
        "scan",
        help="diagnose many servers, streaming one record per target",
        epilog=SCAN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Diagnose every target of FILE (or stdin) with the same checks as `check`, many at a time, "
        "writing one record per target as it completes. Progress and the summary go to stderr.",
    )
    _add_scan_options(scan)

    clients = sub.add_parser(
        "clients",
        help="list the client families certdoctor predicts, and what each one models",
        epilog="examples:\n  certdoctor clients\n  certdoctor clients java --json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    clients.add_argument("id", nargs="?", help="one client id (chrome, firefox, safari, curl, python, node, ...)")
    _add_output_options(clients)
    return parser


def _console(ns: argparse.Namespace, stderr: bool = False) -> Any:
    from rich.console import Console

    no_color = getattr(ns, "no_color", False) or "NO_COLOR" in os.environ
    return Console(stderr=stderr, no_color=no_color, highlight=False, emoji=False, markup=False, soft_wrap=False)


def _parse_resolve(entries: Sequence[str], host: str, port: int) -> list[str]:
    addresses: list[str] = []
    for entry in entries:
        # HOST:PORT:ADDR[,ADDR...]; IPv6 addresses may be bracketed
        parts = entry.split(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            raise UsageError(f"--resolve {entry!r}: expected HOST:PORT:ADDR[,ADDR...]")
        r_host, r_port, addrs = parts
        if r_host.lower().rstrip(".") != host.lower().rstrip(".") or int(r_port) != port:
            raise UsageError(f"--resolve {entry!r} does not match the target {host}:{port}")
        addresses.extend(a.strip().strip("[]") for a in addrs.split(",") if a.strip())
    return addresses


def check_kwargs(ns: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """Translate parsed `check` options into diagnose() arguments."""
    from .api import parse_target

    kwargs: dict[str, Any] = {
        **judgement_kwargs(ns),
        "expect": ns.expect,
        "key": ns.key,
        "key_password": _key_password(ns) if ns.key else None,
        "clients": not getattr(ns, "no_clients", False),
    }
    if ns.file:
        if ns.target:
            raise UsageError("give either a server or --file, not both")
        kwargs["files"] = ns.file
        if ns.host:
            kwargs["name"] = ns.host
        return None, kwargs
    if not ns.target:
        raise UsageError("no target: give HOST[:PORT], a URL, or --file FILE")
    host, port = parse_target(ns.target)
    if ns.port:
        port = ns.port
    kwargs["port"] = port
    if ns.host:
        kwargs["name"] = ns.host
    if ns.no_sni:
        kwargs["sni"] = None
    elif ns.sni:
        kwargs["sni"] = ns.sni
    kwargs["resolve"] = _parse_resolve(ns.resolve, host, port)
    return ns.target, kwargs


def cmd_check(ns: argparse.Namespace) -> int:
    from .api import diagnose
    from .render import json as render_json
    from .render.text import render

    target, kwargs = check_kwargs(ns)
    err = _console(ns, stderr=True)
    if err.is_terminal and not ns.json and not ns.quiet:
        with err.status(f"checking {target or ', '.join(ns.file)} …"):
            d = diagnose(target, **kwargs)
    else:
        d = diagnose(target, **kwargs)
    if ns.json:
        sys.stdout.write(render_json.dumps(d.to_dict()) + "\n")
    else:
        render(d, _console(ns), quiet=ns.quiet)
    if not d.reachable:
        from .render import clean

        for c in d.evidence.chains:
            print(f"certdoctor: {clean(c.source)}: {clean(c.error or 'no certificate')}", file=sys.stderr)
    return d.exit_code


def cmd_inspect(ns: argparse.Namespace) -> int:
    from .api import _load_stores, _parse_at, diagnose, parse_target
    from .collect.files import CertificateParseError, load_certificate_files, load_chain_file
    from .collect.stores import DEFAULT_STORES
    from .inspection import Entry, describe
    from .paths import StoreIndex
    from .render import json as render_json
    from .render.inspect_text import render_inspect

    at = _parse_at(ns.at)
    files = [p for p in ns.inputs if os.path.exists(p)]
    groups: list[tuple[str, list]] = []  # (source label, certificates)
    errors: list[str] = []
    lint: list[dict] = []  # PEM formatting problems of the files
    if files:
        if len(files) != len(ns.inputs):
            missing = [p for p in ns.inputs if p not in files]
            raise UsageError(f"no such file: {', '.join(missing)} (give files, or one server)")
        for path in files:
            chain = load_chain_file(path, max_certs=1000)
            lint.extend({"file": path, "problem": i.code, "line": i.line, "detail": i.detail} for i in chain.pem_issues)
            if chain.error:
                errors.append(f"{path}: {chain.error}")
            else:
                groups.append((path, list(chain.certs)))
    else:
        if len(ns.inputs) != 1:
            raise UsageError("give files, or exactly one server")
        host, port = parse_target(ns.inputs[0])
        kwargs = {
            "timeout": ns.timeout,
            "fetch_aia": False,
            "revocation": False,
            "resolve": _parse_resolve(ns.resolve, host, port),
        }
        if ns.sni:
            kwargs["sni"] = ns.sni
        d = diagnose(ns.inputs[0], **kwargs)
        errors.extend(f"{c.source}: {c.error}" for c in d.failures)
        groups.extend((", ".join(r.sources), list(r.chain.certs)) for r in d.reports)
    stores, _ = _load_stores(DEFAULT_STORES, explicit=False)
    try:
        index = StoreIndex(stores, load_certificate_files(ns.ca_file))
    except CertificateParseError as exc:
        raise UsageError(str(exc)) from exc
    entries, n = [], 0
    for source, certs in groups:
        for pos, cert in enumerate(certs):
            entries.append(Entry(n, source, pos, cert))
            n += 1
    described = describe(entries, at, index)
    by_source = [(src, [d for d in described if d["source"] == src]) for src, _ in groups]
    if ns.json:
        print(render_json.dumps({"certificates": described, "pem_issues": lint, "errors": errors}))
    else:
        console = _console(ns)
        render_inspect(by_source, console)
        from rich.text import Text

        from .render import clean

        for item in lint:
            where = f":{item['line']}" if item["line"] else ""
            console.print(
                Text(
                    f"pem-format {item['file']}{where}: {item['detail']} (see certdoctor check --file)", style="yellow"
                )
            )
    from .render import clean

    for err in errors:
        print(f"certdoctor inspect: {clean(err)}", file=sys.stderr)
    return EXIT_USAGE if errors or not entries else EXIT_OK


MAX_FIX_CERTS = 500  # per input file: enough for a CA bundle used as a pool of intermediates


def _input_files(inputs: Sequence[str]) -> list[str]:
    files: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            files.extend(sorted(e.path for e in os.scandir(item) if e.is_file() and not e.name.startswith(".")))
        elif os.path.exists(item):
            files.append(item)
        else:
            raise UsageError(f"no such file or directory: {item}")
    if not files:
        raise UsageError("no input files")
    return files


def _key_password(ns: argparse.Namespace) -> bytes | None:
    if ns.password is not None:
        return ns.password.encode()
    env = os.environ.get("CERTDOCTOR_KEY_PASSWORD")
    if env is not None:
        return env.encode()
    if ns.key and sys.stdin.isatty():
        from .collect.keys import KeyLoadError, load_private_key

        try:
            load_private_key(ns.key, None)
        except KeyLoadError as exc:
            if "give its password" in str(exc):
                import getpass

                return getpass.getpass(f"password for {ns.key}: ").encode()
    return None


def cmd_fix(ns: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from rich.text import Text

    from . import certinfo
    from .api import diagnose, parse_target
    from .collect.files import (
        CertificateParseError,
        chain_from_bytes,
        load_certificate_files,
        load_chain_file,
        read_capped,
    )
    from .collect.keys import (
        KeyLoadError,
        keys_in,
        load_pkcs12,
        load_private_key,
        looks_like_pkcs12,
        pkcs12_bytes,
    )
    from .fixer import attach_key, output_files, plan_fix, server_config, write_outputs
    from .render import clean
    from .render import json as render_json
    from .render.text import verdict_line

    password = _key_password(ns)
    certs, repaired, keys = [], [], []
    from_server = len(ns.inputs) == 1 and not os.path.exists(ns.inputs[0])
    try:
        if ns.key:
            keys.append((load_private_key(ns.key, password), ns.key))
        if from_server:
            host, port = parse_target(ns.inputs[0])
            ns.host = ns.host or host
            live = diagnose(
                ns.inputs[0],
                fetch_aia=False,
                revocation=False,
                timeout=ns.timeout,
                resolve=_parse_resolve(ns.resolve, host, port),
            )
            if not live.reports:
                errors = "; ".join(f"{c.source}: {c.error}" for c in live.failures)
                raise UsageError(f"no certificate obtained from {ns.inputs[0]}: {errors}")
            certs.extend(live.reports[0].chain.certs)
            repaired.extend(
                f"{', '.join(r.sources)} presents a different chain; used {live.reports[0].sources[0]}'s"
                for r in live.reports[1:]
            )
        for path in [] if from_server else _input_files(ns.inputs):
            data = read_capped(path)
            if looks_like_pkcs12(path, data[:64]):
                try:
                    bundle_key, bundle_certs = load_pkcs12(path, password, data)
                except KeyLoadError as exc:
                    if password is not None or "give its password" not in str(exc) or not sys.stdin.isatty():
                        raise
                    import getpass

                    password = getpass.getpass(f"password for {path}: ").encode()
                    bundle_key, bundle_certs = load_pkcs12(path, password)
                certs.extend(bundle_certs)
                if bundle_key is not None:
                    keys.append((bundle_key, path))
                continue
            chain = chain_from_bytes(data, path, max_certs=MAX_FIX_CERTS)
            if chain.total_received > MAX_FIX_CERTS:
                raise UsageError(
                    f"{path} holds {chain.total_received} certificates; certdoctor fix reads at most {MAX_FIX_CERTS} "
                    "(a server chain has 2 to 4; is this a whole CA bundle or trust store?)"
                )
            file_keys = list(keys_in(data, path, password))
            keys.extend((k, path) for k in file_keys)
            if chain.error and not file_keys:
                raise UsageError(chain.error if path in chain.error else f"{path}: {chain.error}")
            certs.extend(chain.certs)
            repaired.extend(f"{path}: {i.detail}" for i in chain.pem_issues if i.code != "private-key")
    except (KeyLoadError, CertificateParseError) as exc:
        raise UsageError(str(exc)) from exc
    pool = []
    for path in _input_files(ns.intermediates) if ns.intermediates else []:
        chain = load_chain_file(path, max_certs=MAX_FIX_CERTS)
        pool.extend(chain.certs)  # unreadable files in a pool directory are simply not candidates
    try:
        extra = load_certificate_files(ns.ca_file)
    except CertificateParseError as exc:
        raise UsageError(str(exc)) from exc
    plan = asyncio.run(
        plan_fix(
            certs,
            pool=pool,
            host=ns.host,
            include_root=ns.include_root,
            ca_certs=extra,
            trust_stores=ns.trust_store,
            fetch_aia=not ns.no_aia,
            timeout=ns.timeout,
        )
    )
    attach_key(plan, keys, certs)
    out_dir = Path(ns.output_dir)
    files = output_files(plan)
    if ns.pkcs12:
        if plan.key is None:
            raise UsageError("--pkcs12 needs the private key (--key, or a key among the inputs)")
        p12_password = ns.pkcs12_password.encode() if ns.pkcs12_password is not None else password
        files["bundle.p12"] = (pkcs12_bytes(plan.key, plan.chain, p12_password), 0o600)
    written = write_outputs(files, out_dir, force=ns.force)
    d = diagnose(
        files=[str(out_dir / "fullchain.pem")],
        name=ns.host,
        ca_certs=extra,
        trust_stores=ns.trust_store,
        fetch_aia=False,
    )
    config = server_config(out_dir, with_key=plan.key is not None, with_pkcs12=ns.pkcs12)
    code = 0 if d.valid else 1
    if ns.json:
        print(
            render_json.dumps(
                {
                    "plan": plan.to_dict(),
                    "written": [str(p) for p in written],
                    "repaired": repaired,
                    "verification": d.to_dict(),
                    "config": dict(config),
                    "exit_code": code,
                }
            )
        )
        return code
    out = _console(ns)
    out.print(Text("Chain written (what the server must send, in this order):", style="bold"))
    for i, c in enumerate(plan.chain):
        role = "leaf" if i == 0 else ("root" if c is plan.root else "intermediate")
        out.print(Text(f"  #{i} {role:<13}").append(clean(certinfo.subject(c))))
    for c, url in plan.fetched:
        out.print(Text(f"  downloaded {clean(certinfo.display_name(c))} from {clean(url)}", style="cyan"))
    for c, reason in plan.dropped:
        out.print(Text(f"  left out {clean(certinfo.display_name(c))}: {reason}", style="yellow"))
    for line in repaired:
        out.print(Text(f"  repaired {clean(line)}", style="cyan"))
    for note in plan.notes:
        out.print(Text(f"  note: {clean(note)}", style="red"))
    if plan.key is not None:
        out.print(Text(f"  the key from {clean(plan.key_source)} matches the server certificate", style="green"))
    for p in written:
        private = (
            " (mode 0600: it holds the private key)" if p.name in ("privkey.pem", "haproxy.pem", "bundle.p12") else ""
        )
        out.print(Text(f"  wrote {p}{private}", style="dim"))
    out.print()
    out.print(Text("Re-verified fullchain.pem: ", style="bold").append(verdict_line(d)))
    for f in d.findings:
        out.print(Text(f"  {f.severity.value}: {f.id} — {clean(f.detail, 300)}"))
    if d.clients:
        from .render.text import clients_table

        out.print()
        out.print(Text("Clients, once the server sends fullchain.pem:", style="bold"))
        out.print(clients_table(d.clients, verbose=False))
    out.print()
    for name, lines in config:
        out.print(Text(f"{name}:", style="bold"))
        out.print(Text("    " + lines.replace("\n", "\n    ")), soft_wrap=True)
    return code


def cmd_rules(ns: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from .checks import REGISTRY, load_all
    from .render import json as render_json

    load_all()
    infos = sorted(REGISTRY.values(), key=lambda c: c.order)
    if ns.id:
        infos = [c for c in infos if c.id == ns.id]
        if not infos:
            print(f"certdoctor: unknown rule {ns.id!r} (see `certdoctor rules`)", file=sys.stderr)
            return EXIT_USAGE
    rows = [
        {
            "id": c.id,
            "severity": c.severity.value,
            "title": c.title,
            "citation": c.citation,
            "scope": c.scope,
            "description": c.description,
        }
        for c in infos
    ]
    if ns.json:
        print(render_json.dumps(rows if not ns.id else rows[0]))
        return EXIT_OK
    console = _console(ns)
    if ns.id:
        r = rows[0]
        for key in ("id", "severity", "title", "description", "citation", "scope"):
            console.print(Text(f"{key:<12}", style="bold").append(str(r[key])))
        return EXIT_OK
    table = Table("id", "severity", "title", "citation", box=None, pad_edge=False)
    for r in rows:
        table.add_row(r["id"], r["severity"], r["title"], r["citation"])
    console.print(table)
    return EXIT_OK


def cmd_stores(ns: argparse.Namespace) -> int:
    from rich.table import Table

    from .collect.stores import DEFAULT_STORES, list_stores
    from .render import json as render_json

    rows = [
        {"name": n, "description": d, "available": ok, "default": n in DEFAULT_STORES} for n, d, ok in list_stores()
    ]
    if ns.json:
        print(render_json.dumps(rows))
        return EXIT_OK
    table = Table("name", "available", "default", "description", box=None, pad_edge=False)
    for r in rows:
        table.add_row(r["name"], "yes" if r["available"] else "no", "yes" if r["default"] else "", r["description"])
    _console(ns).print(table)
    return EXIT_OK


def cmd_lab(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from .lab import serve_foreground

    return serve_foreground(
        Path(ns.state_dir) if ns.state_dir else None, ns.port_base, _console(ns), json_output=ns.json
    )


def cmd_demo(ns: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(ns, _console(ns), _console(ns, stderr=True))


MAX_EXPLAIN_INPUT = 1_000_000


def cmd_explain(ns: argparse.Namespace) -> int:
    from .clients.explain import explain
    from .render import json as render_json
    from .render.explain_text import render_explanation

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
        sys.stdout.write(render_json.dumps(result.to_dict()) + "\n")
    else:
        render_explanation(result, _console(ns), quiet=ns.quiet)
    return EXIT_OK if result.recognised else EXIT_PROBLEMS


def cmd_clients(ns: argparse.Namespace) -> int:
    from .clients import PROFILES
    from .render import json as render_json
    from .render.explain_text import render_profiles

    profiles = [p for p in PROFILES if ns.id is None or p.id == ns.id]
    if not profiles:
        raise UsageError(f"unknown client {ns.id!r} (known: {', '.join(p.id for p in PROFILES)})")
    if ns.json:
        from dataclasses import asdict

        sys.stdout.write(render_json.dumps([asdict(p) for p in profiles]) + "\n")
    else:
        render_profiles(profiles, _console(ns))
    return EXIT_OK


def cmd_scan(ns: argparse.Namespace) -> int:
    from .scan.command import run

    return run(ns, _console(ns, stderr=True))


COMMANDS = {
    "check": cmd_check,
    "scan": cmd_scan,
    "explain": cmd_explain,
    "clients": cmd_clients,
    "inspect": cmd_inspect,
    "fix": cmd_fix,
    "rules": cmd_rules,
    "stores": cmd_stores,
    "lab": cmd_lab,
    "demo": cmd_demo,
}


def _quiet_library_warnings() -> None:
    """Certificates with RFC violations make cryptography warn; they are findings, not console noise."""
    import warnings

    warnings.filterwarnings("ignore", module=r"certdoctor\..*")
    warnings.filterwarnings("ignore", message=r".*(serial number|RFC 5280).*")


# Commands whose work is over when they return: what they write is closed (files) or flushed below (stdout,
# stderr), and no thread, child process or temporary file outlives them. After these the console script skips
# the interpreter's teardown, which frees every object of the trust stores and caches one by one (30-50 ms, a
# sixth of a `check`).
FAST_EXIT = frozenset({"check", "scan", "explain", "clients", "inspect", "rules", "stores"})


def entry() -> None:
    """The ``certdoctor`` console script: :func:`main`, then exit."""
    command, code = _run(None)
    if command in FAST_EXIT:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: what was not written is lost either way
                stream.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    return _run(argv)[1]


def _run(argv: Sequence[str] | None) -> tuple[str | None, int]:
    """The command given (None without one) and its exit status."""
    _quiet_library_warnings()
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not ns.command:
        parser.print_help()
        return None, EXIT_USAGE
    return ns.command, _dispatch(ns)


def _dispatch(ns: argparse.Namespace) -> int:
    try:
        return COMMANDS[ns.command](ns)
    except UsageError as exc:
        print(f"certdoctor {ns.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("certdoctor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        from .api import DiagnoseError

        if isinstance(exc, DiagnoseError):
            print(f"certdoctor {ns.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    entry()
