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
}

SERVER_TYPE_HELP = (
    "which server reads the file, for the fix text: nginx, apache, haproxy, lb (a load balancer or CDN), other"
)


def add_arguments(parsers: dict[str, argparse.ArgumentParser], duration: Any) -> None:
    from ..model import SERVER_TYPES

    af = parsers["add-file"]
    af.add_argument(
        "path", metavar="PATH", help="the certificate file (PEM, DER, PKCS#7, PKCS#12, JKS) as the server reads it"
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


def add_file(ns: argparse.Namespace, store: Any, emit: Any, console: Any) -> int:
    from ..watch import parse_labels
    from ..watch.deployed import add_file as record

    found, linked = record(
        store,
        ns.path,
        serves=ns.serves,
        server_type=ns.server_type,
        key=ns.key,
        password_env=ns.password_env,
        password_file=ns.password_file,
        labels=parse_labels(ns.label),
        every=ns.every,
    )
    if emit(ns, "watch-files", {"files": [found.to_dict()]}):
        return 0
    out = console(ns)
    _show(out, found, {t.id: t.spec for t in linked})
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
