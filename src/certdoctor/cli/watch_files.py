"""``certdoctor watch add-file|files|remove-file|discover``: the deployed certificate files the watch list
compares with what its targets serve (see :mod:`certdoctor.watch.deployed`). Thin shells over the library;
:mod:`certdoctor.cli.watch` registers them."""

from __future__ import annotations

import argparse
from typing import Any

SUBCOMMANDS = {
    "add-file": "record a certificate file on disk and the targets that should serve it (drift: not reloaded…)",
    "files": "the recorded certificate files: what each held when last read, and the targets linked to it",
    "remove-file": "forget a recorded certificate file (its targets stay)",
    "discover": "read an nginx, Apache or HAProxy configuration: add its TLS names as targets, linked to their files",
}

SERVER_TYPE_HELP = (
    "which server reads the file, for the fix text: nginx, apache, haproxy, lb (a load balancer or CDN), other"
)


def add_arguments(parsers: dict[str, argparse.ArgumentParser], duration: Any) -> None:
    from ..model import SERVER_TYPES

    af = parsers["add-file"]
    af.add_argument(
        "path",
        metavar="PATH",
        help="the certificate file (PEM, DER, PKCS#7, PKCS#12, JKS) as the server reads it, or a glob (quoted): "
        "each certificate file it matches",
    )
    af.add_argument(
        "--serves",
        action="append",
        default=[],
        required=True,
        metavar="TARGET|ID",
        help="a target that should serve it (repeatable): a watched target's id, or a target as `certdoctor scan` "
        "reads a line (added to the watch list when it is not there)",
    )
    af.add_argument("--server-type", choices=SERVER_TYPES, metavar="TYPE", help=SERVER_TYPE_HELP)
    af.add_argument("--key", metavar="FILE", help="the private key file configured with it (compared with its leaf)")
    pw = af.add_mutually_exclusive_group()
    pw.add_argument(
        "--password-env", metavar="NAME", help="the PKCS#12/keystore password is in this environment variable"
    )
    pw.add_argument("--password-file", metavar="FILE", help="the PKCS#12/keystore password is in this file")
    af.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="labels of targets it adds")
    af.add_argument(
        "--every", type=duration, default=3600.0, metavar="DURATION", help="interval of targets it adds (1h)"
    )
    rf = parsers["remove-file"]
    rf.add_argument("path", metavar="PATH", help="the file as recorded")
    d = parsers["discover"]
    d.add_argument(
        "path", metavar="PATH", help="the configuration: /etc/nginx, /etc/apache2, /etc/haproxy, or its main file"
    )
    d.add_argument(
        "--server-type",
        choices=("nginx", "apache", "haproxy"),
        metavar="TYPE",
        help="nginx, apache or haproxy (default: recognised from PATH)",
    )
    d.add_argument("--dry-run", action="store_true", help="show what would be added; add nothing")
    d.add_argument(
        "--public",
        action="store_true",
        help="check the names as DNS resolves them, not on the listen addresses of this configuration's server",
    )
    d.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="labels of the targets it adds")
    d.add_argument(
        "--every", type=duration, default=3600.0, metavar="DURATION", help="interval of the targets it adds (1h)"
    )


def add_file(ns: argparse.Namespace, store: Any, emit: Any, console: Any) -> int:
    import sys

    from ..collect.deployed import expand_deployed, read_deployed_file
    from ..render.escape import clean
    from ..watch import parse_labels
    from ..watch.deployed import add_file as record

    paths = expand_deployed([ns.path])  # a glob: each file it matches (a path as is)
    if len(paths) > 1:  # of a glob's matches, key files are not certificate files (certbot's privkey.pem)
        keys = [p for p in paths if (f := read_deployed_file(p)).has_key and not f.certs]
        for p in keys:
            print(f"certdoctor watch add-file: {clean(p, 500)}: a key without a certificate, skipped", file=sys.stderr)
        paths = [p for p in paths if p not in keys]
    recorded = []
    specs: dict[int, str] = {}
    for path in paths:
        found, linked = record(
            store,
            path,
            serves=ns.serves,
            server_type=ns.server_type,
            key=ns.key,
            password_env=ns.password_env,
            password_file=ns.password_file,
            labels=parse_labels(ns.label),
            every=ns.every,
        )
        recorded.append(found)
        specs.update({t.id: t.spec for t in linked})
        ns.serves = [str(t.id) for t in linked]  # the targets exist now: the next files link to the same ones
    if emit(ns, "watch-files", {"files": [f.to_dict() for f in recorded]}):
        return 0
    out = console(ns)
    for found in recorded:
        _show(out, found, specs)
    return 0


def files(ns: argparse.Namespace, store: Any, emit: Any, console: Any) -> int:
    from ..watch.deployed import files as recorded

    found = recorded(store)
    if emit(ns, "watch-files", {"files": [f.to_dict() for f in found]}):
        return 0
    specs = {t.id: t.spec for t in store.targets()}
    out = console(ns)
    for f in found:
        _show(out, f, specs)
    return 0


def remove_file(ns: argparse.Namespace, store: Any, emit: Any, console: Any) -> int:
    from ..watch.deployed import normalise_path
    from ..watch.deployed import remove_file as forget
    from .common import UsageError

    if not forget(store, ns.path):
        raise UsageError(f"no such file in the watch list: {normalise_path(ns.path)}")
    if not emit(ns, "watch-files", {"files": []}):
        console(ns).print(f"removed  {normalise_path(ns.path)}")
    return 0


def _show(out: Any, f: Any, specs: dict[int, str]) -> None:
    from ..render.escape import clean

    if f.error:
        state = f"error: {clean(f.error, 300)}"
    elif f.leaf_sha256 and f.leaf_not_after and f.mtime:
        state = f"leaf {f.leaf_sha256[:16]}…  notAfter {f.leaf_not_after:%Y-%m-%d}  mtime {f.mtime:%Y-%m-%d %H:%M:%S}Z"
    else:
        state = "no certificate read yet"
    kind = f" ({f.server_type})" if f.server_type else ""
    out.print(f"#{f.id}  {clean(f.path, 500)}{kind}  {state}")
    for target_id in f.targets:
        out.print(f"    serves #{target_id}  {clean(specs.get(target_id, '?'), 500)}")


def discover(ns: argparse.Namespace, store: Any, emit: Any, console: Any) -> int:
    from ..collect.serverconf import discover as read_configuration
    from ..render.escape import clean
    from ..watch import parse_labels
    from ..watch.deployed import apply_discovery, plan_discovery

    found = read_configuration(ns.path, server_type=ns.server_type)
    plan, notes = plan_discovery(found, public=ns.public)
    notes = [*(str(n) for n in found.notes), *notes]
    done = (
        [(link, None) for link in plan]
        if ns.dry_run
        else apply_discovery(store, plan, parse_labels(ns.label), ns.every)
    )
    body = {
        "server_type": found.server_type,
        "root": found.root,
        "dry_run": bool(ns.dry_run),
        "listeners": len(found.listeners),
        "links": [{**link.to_dict(), "new_target": new} for link, new in done],
        "notes": notes,
    }
    if emit(ns, "watch-discover", body):
        return 0
    out = console(ns)
    verb = "would watch" if ns.dry_run else "watching"
    out.print(f"{found.server_type} configuration {clean(found.root, 500)}: {len(found.listeners)} TLS listeners")
    for link, new in done:
        mark = "" if new is None else (" (new target)" if new else "")
        out.print(f"  {verb} {clean(link.spec, 500)}{mark}")
        out.print(f"      serves {clean(link.path, 500)}  ({clean(link.source, 500)})")
    for note in notes:
        out.print(f"  note: {clean(note, 1000)}")
    if ns.dry_run:
        out.print("nothing added (--dry-run)")
    return 0
