"""``certdoctor watch hook|renewed|renewals``: renewal hooks — a command run near expiry, then a check that the
server serves the renewed certificate — and certbot's deploy hook (see :mod:`certdoctor.watch.renewal`). Thin
shells over the library; :mod:`certdoctor.cli.watch` registers them and calls :func:`after_pass` after each
``watch run`` pass."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import (
    UsageError,
    add_judgement_options,
    add_timeout_option,
    add_trust_options,
    diagnose_options,
    positive_int,
)

SUBCOMMANDS = {
    "hook": "renewal hooks: add COMMAND (--target or --label) run near expiry, list, remove ID",
    "renewed": "certbot --deploy-hook: check at once the targets of $RENEWED_LINEAGE / $RENEWED_DOMAINS",
    "renewals": "the latest runs of the renewal hooks and certbot notices",
}


def _labels(ns: argparse.Namespace) -> dict[str, str]:
    from ..watch import parse_labels

    return parse_labels(ns.label)


def _show_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def add_arguments(parsers: dict[str, argparse.ArgumentParser], duration: Any) -> None:
    from ..watch import renewal

    hk = parsers["hook"]
    hk.epilog = (
        "The command runs without a shell unless it has shell syntax (then /bin/sh -c), with CERTDOCTOR_TARGET, "
        "CERTDOCTOR_HOST, CERTDOCTOR_PORT, CERTDOCTOR_NAME, CERTDOCTOR_LEAF_SHA256 and CERTDOCTOR_DAYS_LEFT in its "
        "environment, after a `watch run` pass that finds the target within --days of expiry."
    )
    hk.add_argument("action", choices=("add", "list", "remove"))
    hk.add_argument(
        "arg",
        nargs="?",
        metavar="COMMAND|ID",
        help="add: the command (quoted: 'certbot renew --cert-name X'); remove: the hook's id",
    )
    hk.add_argument("--target", metavar="TARGET|ID", help="add: for this watched target")
    hk.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add: for the targets with this label (repeatable: all of them)",
    )
    hk.add_argument(
        "--days", type=float, default=renewal.DEFAULT_DAYS, metavar="DAYS", help="run within DAYS of expiry (30)"
    )
    hk.add_argument(
        "--window",
        type=duration,
        default=float(renewal.DEFAULT_WINDOW),
        metavar="DURATION",
        help="how long after the command succeeds the server may take to serve the new certificate (15m)",
    )
    hk.add_argument(
        "--timeout",
        type=duration,
        default=float(renewal.DEFAULT_TIMEOUT),
        metavar="DURATION",
        help="stop the command after (10m)",
    )
    rd = parsers["renewed"]
    rd.epilog = (
        'certbot renew --deploy-hook "certdoctor watch renewed" — certbot sets RENEWED_LINEAGE (the lineage\'s live/ '
        "directory) and RENEWED_DOMAINS; the targets linked to a file under that directory (watch add-file) or "
        "named one of the domains are checked at once. Exit 0 even when a server still serves the old "
        "certificate: another hook may reload it; the next passes decide (renewal-not-served after --window)."
    )
    rd.add_argument(
        "--window",
        type=duration,
        default=float(renewal.DEFAULT_WINDOW),
        metavar="DURATION",
        help="how long the servers may take to serve the new certificate (15m)",
    )
    add_timeout_option(rd.add_argument_group("connection"))
    add_trust_options(rd)
    add_judgement_options(rd, fail_on=False)
    rs = parsers["renewals"]
    rs.add_argument("--target", metavar="TARGET|ID", help="only this target's runs")
    rs.add_argument("--limit", type=positive_int, default=50, metavar="N", help="runs shown (50)")


def after_pass(store: Any, results: Any, options: Any) -> tuple[Any, Any]:
    """The renewal hooks after a pass (see certdoctor.watch.renewal.after_pass): the results to alert on."""
    from ..watch import renewal

    return renewal.after_pass(store, results, options)


def line(store: Any, r: Any) -> str:
    from ..render.escape import clean

    spec = r.target or (store.target(r.target_id).spec if store.target(r.target_id) else f"#{r.target_id}")
    exit_code = "" if r.exit_code is None else f" exit {r.exit_code}"
    return f"{spec}  renewal #{r.id}  {r.state}{exit_code}  {clean(r.command or r.trigger, 200)}"


def hook(ns: argparse.Namespace, store: Any, emit: Any, console: Any) -> int:
    from ..errors import InputError
    from ..watch import renewal

    try:
        if ns.action == "add":
            if not ns.arg:
                raise UsageError("watch hook add: a COMMAND is required")
            renewal.add_hook(
                store,
                ns.arg,
                target=ns.target,
                selector=_labels(ns),
                threshold_days=ns.days,
                window_s=ns.window,
                timeout_s=ns.timeout,
            )
        elif ns.action == "remove":
            removed = bool(ns.arg and ns.arg.isdigit() and renewal.remove_hook(store, int(ns.arg)))
            if not removed:
                raise UsageError(f"no such hook: {ns.arg}")
    except InputError as exc:
        raise UsageError(str(exc)) from None
    found = [h.to_dict() for h in renewal.hooks(store)]
    if emit(ns, "watch-hooks", {"hooks": found}):
        return 0
    from ..render.escape import clean
    from ..watch import format_duration

    out = console(ns)
    if not found:
        out.print("no renewal hook (add one: certdoctor watch hook add COMMAND --target T | --label k=v)")
    for h in found:
        who = h["target"] if h["target"] else _show_labels(h["labels"])
        out.print(
            f"#{h['id']}  {who}  within {h['threshold_days']:g} days  window {format_duration(h['window_s'])}  "
            f"timeout {format_duration(h['timeout_s'])}  {clean(h['command'], 300)}"
        )
    return 0


def renewed(ns: argparse.Namespace, store: Any, emit: Any, console: Any, send_alerts: Any) -> int:
    from ..watch import renewal

    lineage = os.environ.get("RENEWED_LINEAGE", "").strip()
    domains = os.environ.get("RENEWED_DOMAINS", "").split()
    if not lineage or not domains:
        raise UsageError(
            "watch renewed: RENEWED_LINEAGE and RENEWED_DOMAINS are not set — run it as certbot's "
            '--deploy-hook "certdoctor watch renewed"'
        )
    results, runs = renewal.certbot_renewed(store, lineage, domains, diagnose_options(ns), window_s=ns.window)
    send_alerts(store, results)
    if emit(ns, "watch-renewals", {"runs": [r.to_dict() for r in runs]}):
        return 0
    out = console(ns)
    if not runs:
        out.print(f"no watched target serves {lineage} ({' '.join(domains)})")
    for r in runs:
        out.print(line(store, r))
    return 0


def renewals(ns: argparse.Namespace, store: Any, emit: Any, console: Any) -> int:
    from ..watch import renewal

    ids = None
    if ns.target:
        found = store.target(ns.target)
        if found is None:
            raise UsageError(f"no such target in the watch list: {ns.target}")
        ids = [found.id]
    runs = renewal.runs(store, target_ids=ids, limit=ns.limit)
    if emit(ns, "watch-renewals", {"runs": [r.to_dict() for r in runs]}):
        return 0
    out = console(ns)
    for r in runs:
        out.print(f"{r.started.isoformat(timespec='seconds')}  {line(store, r)}")
    return 0
