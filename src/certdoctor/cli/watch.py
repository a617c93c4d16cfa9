"""``certdoctor watch``: the fleet monitor's inventory, one pass, status, history, events and retention
(a thin shell over :mod:`certdoctor.watch`)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from typing import Any

from . import watch_files, watch_renewal
from .common import (
    UsageError,
    add_client_cert_options,
    add_cluster_options,
    add_judgement_options,
    add_output_options,
    add_proxy_options,
    add_timeout_option,
    add_trust_options,
    check_cluster_options,
    console,
    diagnose_options,
    non_negative_int,
    positive_int,
)

NAME = "watch"
HELP = "monitor many servers: an inventory, checks stored over time, what changed"
DESCRIPTION = (
    "Keep a list of targets, check the ones that are due (`watch run`, from cron or a systemd timer), store every "
    "observation, and report what changed between two checks: a certificate rotated, a finding appeared or was "
    "resolved, a client started rejecting, an address appeared. The database is SQLite in "
    "$XDG_DATA_HOME/certdoctor/watch.db (~/.local/share/…) unless --db URL or CERTDOCTOR_DB names another "
    "(postgresql+psycopg://user@host/db with the `postgres` extra)."
)
EPILOG = """\
examples:
  certdoctor watch add example.com api.example.com:8443 --label team=payments --every 1h
  certdoctor watch import hosts.txt --label env=prod      # scan's input format; importing again adds nothing
  certdoctor watch run                                    # check the targets that are due (cron: every 5 min)
  certdoctor watch status                                 # broken now first, then soonest expiry
  certdoctor watch history example.com                    # observations and events of one target
  certdoctor watch events --since 7d --json | jq -r '.events[] | [.at, .target, .kind] | @tsv'
  certdoctor watch prune --keep 30d                       # drop old observations (events stay)
  certdoctor watch forecast --days 90                     # upcoming breaks per client, soonest first
  certdoctor watch discover /etc/nginx --dry-run          # TLS names and their certificate files, from the config
  certdoctor watch add-file /etc/ssl/api/fullchain.pem --serves api.example.com:443 --server-type nginx
  certdoctor watch metrics -o /var/lib/node_exporter/textfile/certdoctor.prom   # Prometheus exposition

durations: 90s, 15m, 1h, 7d, 2w. Targets: anything `certdoctor scan` reads (host, host:port, https:// URL,
,addr=IP ,sni=NAME ,name=NAME).

exit status: 0 done (run: every target checked is valid), 1 run: an invalid target, 2 usage error (a bad
target, an unknown target to remove or show), 3 run: no invalid target but an unreachable one
"""

SUBCOMMANDS = {
    "add": "add targets (labels, interval); an existing one gets the new labels",
    "import": "add every target of a file in scan's input format (idempotent)",
    "remove": "remove targets (by id or as added) with their history",
    "list": "the targets, with labels and next check",
    "run": "check the targets that are due and store the observations",
    "status": "one line per target, most urgent first",
    "history": "a target's observations and events",
    "events": "what changed, across every target",
    "prune": "delete old observations (never a target's latest, never events)",
    "channel": "alert channels: add URL (Apprise URL, or https:// webhook) [--label], list, remove",
    "alerts": "the open alerts (--all: every alert)",
    "ack": "acknowledge a target's open alerts: no more repeats until resolved",
    "snooze": "send no alert for a target for a while",
    "policy": "alert thresholds for targets with labels (expiry days and percent of lifetime, repeats, damping)",
    "test-alert": "send a test message to every channel (or one)",
    "serve": "run as a daemon: check targets when due, serve a JSON API and /metrics",
    **watch_files.SUBCOMMANDS,
    **watch_renewal.SUBCOMMANDS,
    "forecast": "the fleet's upcoming breaks (when a client will first reject a served chain), in date order",
}


def _duration(text: str) -> float:
    from ..errors import InputError
    from ..watch import parse_duration

    try:
        return parse_duration(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy database URL (default: $CERTDOCTOR_DB, else SQLite in $XDG_DATA_HOME/certdoctor/watch.db)",
    )


def _label_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .common import Parser

    sub = p.add_subparsers(dest="watch_command", metavar="SUBCOMMAND", parser_class=Parser)
    sub.required = True
    parsers = {name: sub.add_parser(name, help=text, description=text) for name, text in SUBCOMMANDS.items()}
    a = parsers["add"]
    a.add_argument("targets", nargs="+", metavar="TARGET", help="as `certdoctor scan` reads a line")
    _label_option(a, "a label (repeatable): team=payments")
    a.add_argument("--every", type=_duration, default=3600.0, metavar="DURATION", help="check interval (default 1h)")
    i = parsers["import"]
    i.add_argument("file", metavar="FILE", help="targets, one per line or CSV, as `certdoctor scan` reads them")
    _label_option(i, "a label given to every target of FILE (repeatable)")
    i.add_argument("--every", type=_duration, default=3600.0, metavar="DURATION", help="check interval (default 1h)")
    r = parsers["remove"]
    r.add_argument("targets", nargs="+", metavar="TARGET|ID", help="the target as added, or its id")
    ls = parsers["list"]
    _label_option(ls, "only targets with this label (repeatable: all of them)")
    run = parsers["run"]
    run.add_argument("--all", action="store_true", help="check every enabled target, due or not")
    run.add_argument("--concurrency", type=positive_int, default=100, metavar="N", help="targets in flight (100)")
    run.add_argument(
        "-w",
        "--workers",
        type=positive_int,
        metavar="K",
        help="processes that diagnose, as scan's (default: up to one per core, added while cores are idle); "
        "this one alone writes the database",
    )
    run.add_argument(
        "--retries", type=non_negative_int, default=2, metavar="N", help="retries of transient failures (2)"
    )
    add_cluster_options(
        run,
        cluster_help="diagnose on a Dask cluster, as `certdoctor scan --cluster` (tcp://HOST:PORT or local:N; needs "
        "pip install 'certdoctor[cluster]'); this process alone writes the database",
        timeout_help="with --cluster: seconds to reach the scheduler, and without it mid-pass before giving up (10)",
    )
    _connection_options(run)
    add_trust_options(run)
    add_judgement_options(run, fail_on=False)
    st = parsers["status"]
    _label_option(st, "only targets with this label (repeatable)")
    h = parsers["history"]
    h.add_argument("target", metavar="TARGET|ID", help="the target as added, or its id")
    h.add_argument("--limit", type=positive_int, default=20, metavar="N", help="observations shown (20)")
    e = parsers["events"]
    e.add_argument("--since", type=_duration, default=7 * 86400.0, metavar="DURATION", help="how far back (7d)")
    pr = parsers["prune"]
    pr.add_argument("--keep", type=_duration, default=30 * 86400.0, metavar="DURATION", help="observations kept (30d)")
    _alert_arguments(parsers)
    _serve_arguments(parsers["serve"])
    _forecast_arguments(parsers["forecast"])
    watch_files.add_arguments(parsers, _duration)
    watch_renewal.add_arguments(parsers, _duration)
    for sp in parsers.values():
        _db(sp)
        add_output_options(sp, quiet=False)
    _add_metrics_parser(sub)


def run(ns: argparse.Namespace) -> int:
    from ..watch import Store

    with Store(ns.db) as store:
        return int(globals()[f"_{ns.watch_command.replace('-', '_')}"](ns, store))


def _add_file(ns: argparse.Namespace, store: Any) -> int:
    return watch_files.add_file(ns, store, _emit, console)


def _files(ns: argparse.Namespace, store: Any) -> int:
    return watch_files.files(ns, store, _emit, console)


def _remove_file(ns: argparse.Namespace, store: Any) -> int:
    return watch_files.remove_file(ns, store, _emit, console)


def _discover(ns: argparse.Namespace, store: Any) -> int:
    return watch_files.discover(ns, store, _emit, console)


def _hook(ns: argparse.Namespace, store: Any) -> int:
    return watch_renewal.hook(ns, store, _emit, console)


def _renewed(ns: argparse.Namespace, store: Any) -> int:
    return watch_renewal.renewed(ns, store, _emit, console, _send_alerts)


def _renewals(ns: argparse.Namespace, store: Any) -> int:
    return watch_renewal.renewals(ns, store, _emit, console)


def _emit(ns: argparse.Namespace, kind: str, body: dict[str, Any], rows: str | None = None) -> bool:
    """Write the ``kind`` document when --json was given; True if it was. ``rows``: the key of a fleet-sized
    list, written one row per line (render.json.dumps_rows)."""
    if not ns.json:
        return False
    from ..render import json as render_json

    doc = render_json.document(kind, body)
    sys.stdout.write((render_json.dumps(doc) if rows is None else render_json.dumps_rows(doc, rows)) + "\n")
    return True


def _labels(ns: argparse.Namespace) -> dict[str, str]:
    from ..watch import parse_labels

    return parse_labels(ns.label)


def _show_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _list_doc(targets: Any) -> dict[str, Any]:
    return {"targets": [t.to_dict() for t in targets]}


def _add(ns: argparse.Namespace, store: Any) -> int:
    done = store.add(ns.targets, _labels(ns), ns.every)
    if _emit(ns, "watch-list", _list_doc(t for t, _ in done), "targets"):
        return 0
    out = console(ns)
    for target, added in done:
        out.print(f"{'added' if added else 'updated'}  #{target.id}  {target.spec}  {_show_labels(target.labels)}")
    return 0


def _import(ns: argparse.Namespace, store: Any) -> int:
    from ..render.escape import clean

    done, bad = store.import_file(ns.file, _labels(ns), ns.every)
    for b in bad:
        print(f"certdoctor watch import: line {b.line}: {clean(b.reason, 200)} — skipped", file=sys.stderr)
    if _emit(ns, "watch-list", _list_doc(t for t, _ in done), "targets"):
        return 0
    added = sum(1 for _, a in done if a)
    console(ns).print(f"{added} added, {len(done) - added} already watched, {len(bad)} bad lines skipped")
    return 0


def _remove(ns: argparse.Namespace, store: Any) -> int:
    removed, unknown = store.remove(ns.targets)
    if not ns.json:
        for target in removed:
            console(ns).print(f"removed  #{target.id}  {target.spec}")
    _emit(ns, "watch-list", _list_doc(removed), "targets")
    if unknown:
        raise UsageError(f"no such target in the watch list: {', '.join(unknown)}")
    return 0


def _list(ns: argparse.Namespace, store: Any) -> int:
    targets = store.targets(_labels(ns))
    if _emit(ns, "watch-list", _list_doc(targets), "targets"):
        return 0
    from ..render.columns import aligned
    from ..watch import format_duration

    rows = (
        (t.id, t.spec, _show_labels(t.labels), format_duration(t.every_s), t.next_due.strftime("%Y-%m-%d %H:%M"))
        for t in targets
    )
    _print_lines(aligned(("id", "target", "labels", "every", "next check"), rows))
    return 0


def _run(ns: argparse.Namespace, store: Any) -> int:
    from dataclasses import replace

    from ..render.escape import clean
    from ..scan.driver import ClusterSpec
    from ..watch import run_pass

    check_cluster_options(ns)
    if ns.cluster is not None and ns.workers is not None:
        raise UsageError("--workers is for a pass on this machine: with --cluster, the cluster's workers check")
    # one handshake per address, as scan (a dual RSA/ECDSA server's other certificate costs a connection more)
    options = replace(diagnose_options(ns), all_key_types=False)
    result = run_pass(
        store,
        options,
        everything=ns.all,
        concurrency=ns.concurrency,
        retries=ns.retries,
        workers=ns.workers or os.cpu_count() or 1,
        adaptive=ns.workers is None,
        cluster=None if ns.cluster is None else ClusterSpec(ns.cluster, ns.task_targets, ns.cluster_timeout),
    )
    results, renewals = watch_renewal.after_pass(store, result.results, options)
    _send_alerts(store, results)
    if _emit(ns, "watch-run", {**result.to_dict(), "renewals": [r.to_dict() for r in renewals]}):
        return result.exit_code
    out = console(ns)
    verdicts = "  ".join(f"{n} {v}" for v, n in sorted(result.verdicts.items()))
    out.print(f"checked {result.checked} in {result.elapsed_s:.2f} s  {verdicts}".rstrip())
    # the events of the checks made after a renewal command too
    shown = [(target.spec, k, d) for target, _obs, events in results for k, d in events if k != "first-seen"]
    for spec, kind, text in _lines(shown):
        out.print(f"  {spec}  {kind}  {clean(text, 1000)}")
    for r in renewals:
        out.print(f"  {watch_renewal.line(store, r)}")
    return result.exit_code


def _lines(events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, str]]:
    """(prefix, kind, text) per line, from (prefix, kind, detail) per event: the client events of one moment and
    target (one per client family) on one line ("client-started-rejecting  chrome, firefox, …")."""
    out: list[tuple[str, str, str]] = []
    for prefix, kind, detail in events:
        text = _detail_text(kind, detail)
        if kind.startswith("client-") and out and out[-1][:2] == (prefix, kind):
            out[-1] = (prefix, kind, f"{out[-1][2]}, {text}")
        else:
            out.append((prefix, kind, text))
    return out


def _detail_text(kind: str, d: dict[str, Any]) -> str:
    if kind == "certificate-rotated":
        key = "same key" if d.get("same_key") else "new key"
        issuer = f", new issuer {d.get('new_issuer')}" if d.get("issuer_changed") else ""
        return f"{str(d.get('old_sha256'))[:12]} → {str(d.get('new_sha256'))[:12]} ({key}{issuer})"
    if kind in ("finding-appeared", "finding-resolved"):
        return f"{d.get('id')} ({d.get('severity')})"
    if kind.startswith("client-"):
        return str(d.get("client"))
    if kind.startswith("address-") and "address" in d:
        return str(d["address"])
    if kind == "addresses-disagree":
        return " ".join(f"{a}:{str(s)[:12]}" for a, s in (d.get("leaves") or {}).items())
    if kind == "unreachable":
        return str(d.get("error") or "")
    if kind == "first-seen":
        return f"{d.get('verdict')}, leaf {str(d.get('leaf_sha256') or '-')[:12]}"
    if kind == "break-forecast":
        old_at, new_at = str(d.get("old_first_break"))[:19], str(d.get("new_first_break"))[:19]
        return f"{old_at} → {new_at} ({d.get('change')}: {d.get('reason_id')}, {', '.join(d.get('clients') or ())})"
    return " ".join(f"{k}={v}" for k, v in d.items())


def _days(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _status(ns: argparse.Namespace, store: Any) -> int:
    from ..render.escape import clean

    rows = store.status(labels=_labels(ns))
    if _emit(ns, "watch-status", {"targets": rows}, "targets"):
        return 0
    from ..render.columns import aligned

    def line(r: dict[str, Any]) -> tuple[object, ...]:
        # why it is broken; for a valid target, its first warning (expiring-soon, …)
        problem = r["error"] if r["verdict"] == "unreachable" else (r["first_error"] or next(iter(r["findings"]), ""))
        return (
            r["target"],
            r["verdict"] or "not checked",
            _days(r["leaf_days_left"]),
            _days(r["chain_days_left"]),
            "" if r["verdict"] == "unreachable" else ",".join(r["rejected_by"]),
            (r["checked_at"] or "")[:16].replace("T", " "),
            clean(problem or "", 120),
            _show_labels(r["labels"]),
        )

    headers = ("target", "verdict", "leaf days", "chain days", "rejected by", "checked", "problem", "labels")
    _print_lines(aligned(headers, map(line, rows)))
    return 0


def _print_lines(lines: Any) -> None:
    """Write the lines to stdout in one go (a pipe reader sees whole lines; see render.columns)."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _history(ns: argparse.Namespace, store: Any) -> int:
    from ..render.escape import clean
    from ..watch import renewal

    target, observations, events = store.history(ns.target, limit=ns.limit)
    renewals = renewal.runs(store, target_ids=[target.id], limit=ns.limit)
    doc = {"target": target.to_dict(), "observations": observations, "events": events}
    if _emit(ns, "watch-history", {**doc, "renewals": [r.to_dict() for r in renewals]}):
        return 0
    out = console(ns)
    out.print(f"#{target.id}  {target.spec}  {_show_labels(target.labels)}")
    out.print("events")
    for at, kind, text in _lines([(e["at"][:19].replace("T", " "), e["kind"], e["detail"]) for e in events]):
        out.print(f"  {at}  {kind}  {clean(text, 1000)}")
    out.print("observations")
    for o in observations:
        ids = " ".join(f["id"] for f in o["findings"])
        leaf = (o["leaf_sha256"] or "")[:12]
        out.print(f"  {o['at'][:19].replace('T', ' ')}  {o['verdict']:<11}  {leaf:<12}  {clean(ids, 300)}")
    if renewals:
        out.print("renewals")
        for r in renewals:
            exit_code = "" if r.exit_code is None else f" exit {r.exit_code}"
            what = clean(r.command or r.trigger, 200)
            started = r.started.isoformat(sep=" ", timespec="seconds")[:19]
            out.print(f"  {started}  #{r.id}  {r.state}{exit_code}  {what}")
    return 0


def _events(ns: argparse.Namespace, store: Any) -> int:
    from ..render.escape import clean
    from ..watch.store import now

    since = now() - timedelta(seconds=ns.since)
    events = store.events(since)
    if _emit(ns, "watch-events", {"since": since.isoformat(), "events": events}, "events"):
        return 0
    out = console(ns)
    shown = [(f"{e['at'][:19].replace('T', ' ')}  {e['target']}", e["kind"], e["detail"]) for e in events]
    for prefix, kind, text in _lines(shown):
        out.print(f"{prefix}  {kind}  {clean(text, 1000)}")
    return 0


def _prune(ns: argparse.Namespace, store: Any) -> int:
    deleted = store.prune(ns.keep)
    if _emit(ns, "watch-prune", {"deleted": deleted}):
        return 0
    console(ns).print(f"deleted {deleted['observations']} observations, {deleted['certificates']} certificates")
    return 0


METRICS_HELP = "the Prometheus exposition of every target's latest check (for node_exporter's textfile collector)"


def _add_metrics_parser(sub: Any) -> None:
    m = sub.add_parser("metrics", help=METRICS_HELP, description=METRICS_HELP)
    m.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write FILE atomically (a temporary file renamed over it, as the textfile collector needs) "
        "instead of stdout",
    )
    _db(m)


def _metrics(ns: argparse.Namespace, store: Any) -> int:
    from ..watch.metrics import render_metrics

    body = render_metrics(store)
    if not ns.output:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
    import os
    import tempfile
    from pathlib import Path

    path = Path(ns.output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"--output {ns.output}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return 0


# --- alerts -------------------------------------------------------------------------------------------------------


def _alert_arguments(parsers: dict[str, argparse.ArgumentParser]) -> None:
    ch = parsers["channel"]
    ch.add_argument("action", choices=("add", "list", "remove"))
    ch.add_argument("url", nargs="?", metavar="URL|ID", help="add: the URL; remove: the channel's id or URL")
    _label_option(ch, "add: only targets with this label (repeatable: all of them)")
    ch.add_argument("--secret", metavar="TEXT", help="add: HMAC key of a webhook's X-Certdoctor-Signature")
    al = parsers["alerts"]
    al.add_argument("--all", action="store_true", help="resolved alerts and notices too")
    for name in ("ack", "snooze"):
        sp = parsers[name]
        sp.add_argument("target", metavar="TARGET|ID", help="the target as added, or its id")
        if name == "snooze":
            sp.add_argument("duration", type=_duration, metavar="DURATION", help="how long: 2h, 2d")
        sp.add_argument("--condition", metavar="COND", help="only this condition (finding:expired, unreachable, …)")
    po = parsers["policy"]
    _label_option(po, "targets with this label (repeatable; none: every target)")
    po.add_argument("--expiry-days", type=float, metavar="DAYS", help="alert this many days before notAfter (30)")
    po.add_argument("--expiry-percent", type=float, metavar="PCT", help="… or this %% of the lifetime, if less (33)")
    po.add_argument("--renotify", type=_duration, metavar="DURATION", help="repeat an open alert every (24h)")
    po.add_argument("--after", type=positive_int, metavar="N", help="unreachable: after N consecutive checks (3)")
    po.add_argument(
        "--drift-grace",
        type=_duration,
        metavar="DURATION",
        help="a deployed file differing from what is served (not-reloaded…) alerts after this long (1h)",
    )
    po.add_argument(
        "--forecast-days", type=float, metavar="DAYS", help="alert on a forecast break this many days ahead (30)"
    )
    ta = parsers["test-alert"]
    ta.add_argument("--channel", metavar="ID|URL", help="only this channel")


def _send_alerts(store: Any, results: Any) -> None:
    """Evaluate the alerts of a pass and send them; a failed delivery is reported on stderr."""
    from ..render.escape import clean
    from ..watch import alerts, channels

    messages = alerts.evaluate(store, results)
    if not messages:
        return
    for d in channels.deliver(messages, channels.channels(store)):
        if not d.ok:
            print(
                f"certdoctor watch: alert to channel {d.channel} failed: {clean(d.error or '', 300)}", file=sys.stderr
            )


def _channel(ns: argparse.Namespace, store: Any) -> int:
    from ..watch import channels

    if ns.action == "add":
        if not ns.url:
            raise UsageError("watch channel add: a URL is required")
        channels.add_channel(store, ns.url, _labels(ns), ns.secret)
    elif ns.action == "remove" and (not ns.url or not channels.remove_channel(store, ns.url)):
        raise UsageError(f"no such channel: {ns.url}")
    found = [c.to_dict() for c in channels.channels(store)]
    if _emit(ns, "watch-channels", {"channels": found}):
        return 0
    out = console(ns)
    for c in found:
        signed = " signed" if c["signed"] else ""
        out.print(f"#{c['id']}  {c['kind']}{signed}  {c['url']}  {_show_labels(c['labels'])}")
    return 0


def _alerts(ns: argparse.Namespace, store: Any) -> int:
    from ..render.escape import clean
    from ..watch import alerts

    rows = alerts.alerts(store, everything=ns.all)
    if _emit(ns, "watch-alerts", {"alerts": rows}):
        return 0
    out = console(ns)
    for r in rows:
        acked = " acked" if r["acked"] else ""
        out.print(f"#{r['id']}  {r['status']}{acked}  {r['target']}  {r['condition']}  {clean(r['summary'], 200)}")
    return 0


def _ack(ns: argparse.Namespace, store: Any) -> int:
    from ..watch import alerts

    n = alerts.ack(store, ns.target, ns.condition)
    console(ns).print(f"acknowledged {n} alerts")
    return 0


def _snooze(ns: argparse.Namespace, store: Any) -> int:
    from ..watch import alerts

    until = alerts.snooze(store, ns.target, ns.duration, ns.condition)
    console(ns).print(f"snoozed until {until.isoformat(timespec='minutes')}")
    return 0


def _policy(ns: argparse.Namespace, store: Any) -> int:
    from ..watch import alerts

    if any(
        v is not None
        for v in (ns.expiry_days, ns.expiry_percent, ns.renotify, ns.after, ns.drift_grace, ns.forecast_days)
    ):
        alerts.set_policy(
            store,
            _labels(ns),
            expiry_days=ns.expiry_days,
            expiry_percent=ns.expiry_percent,
            renotify_s=None if ns.renotify is None else int(ns.renotify),
            after=ns.after,
            drift_grace_s=None if ns.drift_grace is None else int(ns.drift_grace),
            forecast_days=ns.forecast_days,
        )
    out = console(ns)
    for p in alerts.policies(store):
        values = " ".join(f"{k}={p[k]}" for k in alerts.POLICY_KEYS if p.get(k) is not None)
        out.print(f"{_show_labels(p['selector']) or '(every target)'}  {values}")
    return 0


def _test_alert(ns: argparse.Namespace, store: Any) -> int:
    from ..render.escape import clean
    from ..watch import channels

    found = channels.channels(store)
    if not found:
        raise UsageError("no alert channel: add one with `certdoctor watch channel add URL`")
    sent = channels.deliver([channels.sample_message()], found, only=ns.channel)
    if not sent:
        raise UsageError(f"no such channel: {ns.channel}")
    out = console(ns)
    for d in sent:
        out.print(f"channel {d.channel}: {'sent' if d.ok else 'failed: ' + clean(d.error or '', 300)}")
    return 0 if all(d.ok for d in sent) else 1


# --- forecast ------------------------------------------------------------------------------------------------


def _forecast_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=float, default=90.0, metavar="N", help="breaks within this many days from now (90)")
    _label_option(p, "only targets with this label (repeatable: all of them)")
    p.add_argument(
        "--client", action="append", default=[], metavar="ID", help="only this client family (repeatable): java, go, …"
    )


def _forecast(ns: argparse.Namespace, store: Any) -> int:
    """The stored forecasts' breaks within --days, soonest first; in text, the clients breaking at one instant
    for one reason on one line."""
    from ..render.escape import clean
    from ..watch.forecasting import fleet
    from ..watch.store import now

    if ns.days < 0:
        raise UsageError(f"--days: must be >= 0, not {ns.days:g}")
    body = fleet(store, ns.days, labels=_labels(ns), clients=ns.client, at=now())
    if _emit(ns, "watch-forecast", body):
        return 0
    from ..render.columns import aligned

    rows: list[list[Any]] = []
    for e in body["breaks"]:
        b = e["break"]
        cert = b["certificate"] or {}
        key = (e["target"], b["at"], b["reason_id"], cert.get("sha256"))
        if rows and rows[-1][0] == key:
            rows[-1][1]["clients"].append(e["name"])
            continue
        rows.append([key, {"entry": e, "clients": [e["name"]]}])
    if not rows:
        console(ns).print(f"no break forecast within {ns.days:g} days ({body['forecast_targets']} targets forecast)")
        return 0
    lines = []
    for _key, row in rows:
        e, b = row["entry"], row["entry"]["break"]
        cert = b["certificate"]
        lines.append(
            (
                b["at"][:19].replace("T", " "),
                f"{e['days_left']:g}",
                e["target"],
                ", ".join(row["clients"]),
                clean(b["reason_id"], 40),
                "" if cert is None else f"{cert['role']} {clean(cert['subject'], 120)}",
            )
        )
    _print_lines(aligned(("date (UTC)", "days", "target", "clients", "reason", "certificate"), lines))
    return 0


# --- serve ---------------------------------------------------------------------------------------------------

SERVE_EPILOG = """\
The dashboard: http://HOST:PORT/ (read-only without --token; with one, log in at /login to acknowledge alerts,
snooze, add or remove targets). The API: GET /healthz, /api/targets[?label=K=V], /api/targets/ID[?limit=N],
/api/events[?since=7d][&after=ID], /metrics (Prometheus). Off loopback every request needs `Authorization:
Bearer TOKEN` (or the dashboard's login). AIA, OCSP and CRL downloads from loopback, link-local and private
addresses are refused (a finding names the refusal) unless --allow-private-fetch. SIGTERM or SIGINT: targets in
flight get --grace seconds, then the daemon exits 0; a target abandoned (or a daemon killed) is checked again at
the next start. With --cluster the targets that fall due are checked by the cluster's workers, in tasks of up
to --task-targets (a dashboard "check now" is a task of one), and stored here: a scheduler unreachable at start
exits 3; lost later, /healthz says so ("cluster"), its targets stay due, and the daemon connects again.
"""


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:8427, [::1]:8427)")
    return host.strip("[]"), int(port)


def _seconds(text: str) -> float:
    return _duration(text)


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = SERVE_EPILOG
    g = p.add_argument_group("service")
    g.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 8427),
        metavar="HOST:PORT",
        help="where the API listens (default 127.0.0.1:8427); another address than loopback requires --token",
    )
    g.add_argument(
        "--token",
        metavar="TOKEN",
        help="Bearer token every request must carry (default: $CERTDOCTOR_TOKEN)",
    )
    g.add_argument("--concurrency", type=positive_int, default=20, metavar="N", help="targets in flight (20)")
    g.add_argument("--retries", type=non_negative_int, default=2, metavar="N", help="retries of transient failures (2)")
    g.add_argument(
        "--grace",
        type=_seconds,
        default=10.0,
        metavar="DURATION",
        help="on SIGTERM, how long targets in flight may finish (10s)",
    )
    g.add_argument(
        "--keep",
        type=_seconds,
        default=30 * 86400.0,
        metavar="DURATION",
        help="retention: delete observations older than this every hour, never a target's latest nor events (30d)",
    )
    g.add_argument("--keep-all", action="store_true", help="no retention: keep every observation")
    g.add_argument(
        "--alert-every",
        type=_seconds,
        default=30.0,
        metavar="DURATION",
        help="how often the checks made meanwhile become alerts sent to the channels (30s; see watch channel)",
    )
    g.add_argument(
        "--max-backoff",
        type=_seconds,
        default=86400.0,
        metavar="DURATION",
        help="an unreachable target's interval doubles per failed check up to this (1d)",
    )
    g.add_argument(
        "--allow-private-fetch",
        action="store_true",
        help="allow AIA, OCSP and CRL downloads from loopback, link-local and private addresses (refused by "
        "default in serve: a monitored server's certificate chooses those URLs)",
    )
    c = p.add_argument_group("cluster")
    add_cluster_options(
        c,
        cluster_help="check the targets that fall due on a Dask cluster: tcp://HOST:PORT of a running `dask "
        "scheduler`, or local:N for N worker processes on this machine (needs pip install 'certdoctor[cluster]'); "
        "this process alone writes the database; --concurrency is then per worker thread",
        task_help="with --cluster: due targets sent in one task at most (200)",
        timeout_help="with --cluster: seconds to reach the scheduler at start, else exit 3 (10); once running, a "
        "lost scheduler is reconnected to for as long as it takes",
        timeout_metavar="SECONDS",
    )
    _connection_options(p)
    add_trust_options(p)
    add_judgement_options(p, fail_on=False)


def _connection_options(p: argparse.ArgumentParser) -> None:
    """--timeout, and how every target is reached, as check takes them: --cert/--client-key (a client
    certificate for the servers that ask for one) and --proxy/--noproxy (else the environment's proxy)."""
    g = p.add_argument_group("connection")
    add_timeout_option(g)
    add_client_cert_options(g)
    add_proxy_options(g)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _dashboard() -> Any:
    """The web dashboard's app factory (it mounts the JSON API); None without Jinja2 (the JSON API alone)."""
    import importlib.util

    if importlib.util.find_spec("jinja2") is None:
        return None
    from ..web import make_app

    return make_app


def _serve(ns: argparse.Namespace, store: Any) -> int:
    import asyncio
    import importlib.util
    import os
    import time
    from dataclasses import replace

    host, port = ns.listen
    token = ns.token if ns.token is not None else os.environ.get("CERTDOCTOR_TOKEN")
    if token is not None and not token.strip():
        raise UsageError("--token: empty")
    if not _is_loopback(host) and not token:
        raise UsageError(f"listening on {host} (not loopback) requires --token or CERTDOCTOR_TOKEN")
    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise UsageError("watch serve needs Starlette and uvicorn: pip install 'certdoctor[serve]'")
    options = diagnose_options(ns)
    if options.at is not None:
        raise UsageError("--at: serve judges every target at the time it is checked")
    options = replace(
        options, allow_private_fetch=ns.allow_private_fetch and not ns.refuse_private_urls, all_key_types=False
    )
    check_cluster_options(ns)
    from ..watch.daemon import ServeConfig, bind, serve

    config = ServeConfig(
        host=host,
        port=port,
        token=token,
        concurrency=ns.concurrency,
        retries=ns.retries,
        grace=ns.grace,
        max_backoff=ns.max_backoff,
        alert_every=ns.alert_every,
        keep=None if ns.keep_all else ns.keep,
        cluster=ns.cluster,
        task_targets=ns.task_targets,
        cluster_timeout=ns.cluster_timeout,
    )
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    started = time.monotonic()
    shown = f"[{host}]" if ":" in host else host
    fetch = "private fetches allowed" if options.allow_private_fetch else "private fetches refused"
    where = "" if ns.cluster is None else f", checks on the Dask cluster {ns.cluster}"
    count = len(store.targets())

    def ready() -> None:  # once the cluster answers: a scheduler unreachable at start is the one line said
        print(
            f"certdoctor watch serve: listening on http://{shown}:{sock.getsockname()[1]} "
            f"({count} targets, {fetch}{where})",
            file=sys.stderr,
            flush=True,
        )

    try:
        asyncio.run(serve(store, options, config, sock, app=_dashboard(), ready=ready))
    finally:
        sock.close()
    print(f"certdoctor watch serve: stopped after {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0
