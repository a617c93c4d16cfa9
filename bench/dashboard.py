#!/usr/bin/env python3
"""certdoctor watch dashboard benchmark: the fleet page in real Chromium with 10,000 targets in the store.

1. **Seed**: starts the lab (in this process, loopback only) and checks a handful of its scenarios for real
   (``watch run``'s pass, :func:`certdoctor.watch.runner.run_pass`, on a throwaway store), keeping each
   observation whole (endpoints, chain, findings, clients, forecast).
2. **Fill**: adds N targets (10,000 by default) to the measured store — the seed scenarios' servers under
   distinct names (``name=tN.SCENARIO.bench``), labels ``team=`` (20 values) and ``env=`` (prod/staging) — and
   records one copy of a seed observation per target with :meth:`certdoctor.watch.store.Store.record_many`, each
   with a leaf certificate of its own (the seed's, reissued: see :class:`Reissuer`; ``--shared-leaves``: the
   seed's own), each next check a day away, so that the daemon checks nothing meanwhile.
3. **Serve**: ``certdoctor watch serve`` on that store, on a free loopback port, read-only (no token).
4. **Measure** in Debian's Chromium under Playwright (tests/browser.py: no browser download): the fleet page's
   first contentful paint (``performance.getEntriesByType('paint')``, relative to the navigation's start, so
   the server's answer is included), each load in a fresh browser context (nothing cached): the first load of
   the daemon (its fleet index built) on its own, then the median of ``--loads`` (5); and each filter request:
   ``GET /fleet/rows?…`` as the page's htmx form sends it (header ``HX-Request``), timed by the browser's
   Resource Timing (``responseEnd - startTime``), ``--repeats`` (10) per filter over several filters, median
   per filter.

Prints the figures and PASS/FAIL against the issue's targets (first paint < 1 s, each filter request
< 200 ms, medians); exits 1 on FAIL, 2 when the harness itself broke (the lab, the daemon, the browser).

    python3 bench/dashboard.py                 # 10,000 targets, SQLite in a temp dir
    python3 bench/dashboard.py --targets 2000  # smaller
    python3 bench/dashboard.py --db postgresql+psycopg://…   # an empty database of your own
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/browser.py: the Chromium launch the browser tests use

import browser  # noqa: E402
from certdoctor.lab import Lab  # noqa: E402
from certdoctor.model import DiagnoseOptions  # noqa: E402
from certdoctor.watch import Store  # noqa: E402
from certdoctor.watch.runner import _describe, run_pass  # noqa: E402
from certdoctor.watch.store import Observation, now  # noqa: E402

SEEDS = (  # lab scenarios checked for real; their observations are copied to the fleet, in this rotation
    "good-rsa",
    "good-ecdsa",
    "good-two-level",
    "wildcard",
    "expired",
    "expiring-soon",
    "wrong-host",
    "self-signed",
    "incomplete-aia",
    "expired-intermediate",
    "evil-fields",
)
FIRST_PAINT_LIMIT_S = 1.0  # issue 19: the fleet page's first paint with 10,000 targets
FILTER_LIMIT_S = 0.200  # issue 19: each filter request
RECORD_CHUNK = 500  # observations per record_many call
FILTERS: tuple[tuple[str, list[tuple[str, str]]], ...] = (
    ("status=broken", [("status", "broken")]),
    ("status=ok", [("status", "ok")]),
    ("status=expiring+broken", [("status", "expiring"), ("status", "broken")]),
    ("q=good-rsa", [("q", "good-rsa")]),
    ("q=t123", [("q", "t123")]),
    ("label=team=t7", [("label", "team=t7")]),
    ("issuer=Lab RSA", [("issuer", "Lab RSA")]),
    ("days_max=30", [("days_max", "30")]),
    ("sort=days_left desc", [("sort", "days_left"), ("order", "desc")]),
    ("page=20", [("page", "20")]),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spec(lab: Lab, name: str, suffix: str | None = None) -> str:
    ep = lab.endpoints[name]
    text = f"{ep.hostname}:{ep.port}," + ",".join(f"addr={a}" for a in ep.addresses)
    return text if suffix is None else f"{text},name={suffix}"


def seed(lab: Lab, workdir: Path) -> dict[str, Observation]:
    """One real observation per seed scenario (a pass over a throwaway store)."""
    got: dict[int, Observation] = {}
    with Store(f"sqlite:///{workdir / 'seed.db'}") as store:
        added = {t.id: name for name, [(t, _)] in ((n, store.add([spec(lab, n)])) for n in SEEDS)}
        options = DiagnoseOptions(ca_files=(str(lab.root_path),), timeout=5)
        run_pass(store, options, everything=True, concurrency=len(SEEDS), retries=1,
                 on_result=lambda target, obs, _events: got.__setitem__(target.id, obs))  # fmt: skip
    missing = [added[i] for i in added if i not in got]
    if missing:
        raise RuntimeError(f"the seed pass did not check {missing}")
    return {added[i]: obs for i, obs in got.items()}


class Reissuer:
    """Gives a copy of a seed observation a leaf certificate of its own: the seed leaf's subject, issuer name,
    key, validity and extensions, its SANs with the target's own name first and a serial of its own, signed by a
    bench key (nothing verifies it: the store and the fleet index only describe it). 10,000 targets then mean
    10,000 certificates for the index to parse, as in a real inventory."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = ec.generate_private_key(ec.SECP256R1())
        self.leaves: dict[str, Any] = {}  # seed leaf SHA-256 -> parsed certificate

    def __call__(self, obs: Observation, n: int, name: str) -> Observation:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        old = next((c for c in obs.certificates if c.sha256 == obs.leaf_sha256), None)
        if old is None:  # unreachable: nothing to reissue
            return obs
        seed = self.leaves.get(old.sha256)
        if seed is None:
            seed = self.leaves[old.sha256] = x509.load_der_x509_certificate(old.der)
        builder = (
            x509.CertificateBuilder()
            .subject_name(seed.subject)
            .issuer_name(seed.issuer)
            .public_key(seed.public_key())
            .serial_number(n + 1)
            .not_valid_before(seed.not_valid_before_utc)
            .not_valid_after(seed.not_valid_after_utc)
        )
        for ext in seed.extensions:
            value = ext.value
            if isinstance(value, x509.SubjectAlternativeName):
                value = x509.SubjectAlternativeName([x509.DNSName(name), *value])
            builder = builder.add_extension(value, ext.critical)
        row = _describe(builder.sign(self.key, hashes.SHA256()))
        endpoints = tuple(
            replace(e, chain=tuple(row.sha256 if c == old.sha256 else c for c in e.chain)) for e in obs.endpoints
        )
        others = tuple(c for c in obs.certificates if c.sha256 != old.sha256)
        return replace(obs, leaf_sha256=row.sha256, certificates=(row, *others), endpoints=endpoints)


def fill(url: str, lab: Lab, seeds: dict[str, Observation], count: int, distinct: bool = True) -> dict[str, Any]:
    """Add ``count`` targets and record a copy of a seed observation for each (with a leaf of its own when
    ``distinct``); returns timings and counts."""
    began = time.perf_counter()
    names = list(seeds)
    specs = [spec(lab, names[i % len(names)], f"t{i}.{names[i % len(names)]}.bench") for i in range(count)]
    groups: dict[tuple[str, str], list[int]] = {}  # labels (team, env) -> indexes of the targets that have them
    for i in range(count):
        groups.setdefault((f"t{i % 20}", "prod" if i % 3 else "staging"), []).append(i)
    with Store(url) as store:
        ids: list[tuple[int, int]] = []  # (target id, index of its spec)
        for (team, env), members in groups.items():
            added = store.add([specs[i] for i in members], labels={"team": team, "env": env})
            ids += [(target.id, i) for i, (target, _) in zip(members, added, strict=True)]
        added_s = time.perf_counter() - began
        moment = now()
        later = moment + timedelta(days=1)
        reissue = Reissuer() if distinct else None
        for start in range(0, count, RECORD_CHUNK):
            batch = []
            for tid, i in ids[start : start + RECORD_CHUNK]:
                name = names[i % len(names)]
                obs = replace(seeds[name], target_id=tid, at=moment)
                batch.append((obs if reissue is None else reissue(obs, i, f"t{i}.{name}.bench"), later))
            store.record_many(batch)
        counts = store.counts()
    return {"targets": count, "add_s": added_s, "fill_s": time.perf_counter() - began, "counts": counts}


def start_serve(url: str, lab: Lab, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", "certdoctor", "watch", "serve", "--db", url, "--listen", f"127.0.0.1:{port}"]
    argv += ["--ca-file", str(lab.root_path), "--alert-every", "1h"]
    env = {k: v for k, v in os.environ.items() if k not in ("CERTDOCTOR_TOKEN", "CERTDOCTOR_DB")}
    with log.open("ab") as sink:
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"watch serve exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=10) as answer:
                if answer.status == 200:
                    return proc, base
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("watch serve did not answer /healthz within 120 s")


def first_paint(chromium: Any, url: str) -> tuple[float, int]:
    """(first contentful paint in seconds, rows shown) of one load of ``url`` in a fresh context."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        answer = page.goto(url, wait_until="load", timeout=120_000)
        if answer is None or answer.status != 200:
            raise RuntimeError(f"GET {url}: {answer.status if answer else 'no answer'}")
        fcp = None
        deadline = time.monotonic() + 30
        while fcp is None and time.monotonic() < deadline:  # polled: wait_for_function evals, which the CSP forbids
            fcp = page.evaluate(
                "performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint')?.startTime"
            )
            if fcp is None:
                time.sleep(0.05)
        if fcp is None:
            raise RuntimeError(f"no first-contentful-paint entry for {url}")
        shown = page.locator("#fleet tbody tr[data-target-id]").count()
        return float(fcp) / 1000, shown
    finally:
        context.close()


def filter_times(chromium: Any, base: str, repeats: int) -> dict[str, dict[str, Any]]:
    """Per filter: the Resource Timing duration (s) of each ``GET /fleet/rows?…`` sent from the fleet page as
    htmx sends it, and the count it reported."""
    context = chromium.new_context()
    out: dict[str, dict[str, Any]] = {}
    try:
        page = context.new_page()
        page.goto(base + "/", wait_until="load", timeout=120_000)
        for label, params in FILTERS:
            path = "/fleet/rows?" + urlencode(params)
            times: list[float] = []
            count = ""
            for _ in range(repeats):
                page.evaluate("performance.clearResourceTimings()")
                count = page.evaluate(
                    """async (path) => {
                        const r = await fetch(path, {headers: {"HX-Request": "true", "HX-Current-URL": location.href}});
                        const text = await r.text();
                        if (!r.ok) throw new Error(path + ": " + r.status);
                        const m = text.match(/id="result-count"[^>]*>([^<]*)</);
                        return m ? m[1].trim() : "?";
                    }""",
                    path,
                )
                entry = page.evaluate(
                    """(path) => { const e = performance.getEntriesByType('resource').filter(
                           x => x.name.endsWith(path)).pop(); return e ? e.responseEnd - e.startTime : null; }""",
                    path,
                )
                if entry is None:
                    raise RuntimeError(f"no resource timing for {path}")
                times.append(float(entry) / 1000)
            out[label] = {"median_s": statistics.median(times), "max_s": max(times), "result": count}
    finally:
        context.close()
    return out


def run(ns: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"targets": ns.targets}
    url = ns.db or f"sqlite:///{workdir / 'watch.db'}"
    with Lab(workdir / "lab") as lab:
        began = time.perf_counter()
        seeds = seed(lab, workdir)
        summary["seed_s"] = time.perf_counter() - began
        summary["seed_verdicts"] = {name: obs.verdict for name, obs in seeds.items()}
        summary["fill"] = fill(url, lab, seeds, ns.targets, distinct=not ns.shared_leaves)
        proc, base = start_serve(url, lab, workdir / "serve.log")
        try:
            with browser.launch() as chromium:
                cold, shown = first_paint(chromium, base + "/")
                summary["first_paint_cold_s"] = cold
                warm = [first_paint(chromium, base + "/")[0] for _ in range(ns.loads)]
                summary["first_paint_s"] = warm
                summary["first_paint_median_s"] = statistics.median(warm)
                summary["rows_shown"] = shown
                summary["filters"] = filter_times(chromium, base, ns.repeats)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    return summary


def render(s: dict[str, Any]) -> tuple[str, bool]:
    fill_ = s["fill"]
    paint_ok = s["first_paint_median_s"] < FIRST_PAINT_LIMIT_S
    filters_ok = all(f["median_s"] < FILTER_LIMIT_S for f in s["filters"].values())
    lines = [
        f"certdoctor watch dashboard — {s['targets']:,} targets ({os.cpu_count()} cores), Chromium "
        f"{browser.executable()}",
        f"  seed: {len(s['seed_verdicts'])} lab scenarios checked in {s['seed_s']:.1f} s "
        f"({', '.join(f'{k}={v}' for k, v in s['seed_verdicts'].items())})",
        f"  fill: {fill_['targets']:,} targets added in {fill_['add_s']:.1f} s, observations recorded, "
        f"{fill_['fill_s']:.1f} s in all; store: "
        + ", ".join(f"{k} {fill_['counts'].get(k, 0):,}" for k in ("targets", "observations", "certificates")),
        f"  fleet page first contentful paint: median {s['first_paint_median_s'] * 1000:.0f} ms of "
        f"{len(s['first_paint_s'])} loads ({', '.join(f'{t * 1000:.0f}' for t in s['first_paint_s'])} ms); "
        f"the daemon's first load {s['first_paint_cold_s'] * 1000:.0f} ms; {s['rows_shown']} rows shown"
        f"  [{'PASS' if paint_ok else 'FAIL'} < {FIRST_PAINT_LIMIT_S * 1000:.0f} ms]",
        "  filter requests (GET /fleet/rows, median / max of the repeats):",
    ]
    for label, f in s["filters"].items():
        verdict = "PASS" if f["median_s"] < FILTER_LIMIT_S else "FAIL"
        lines.append(
            f"    {label:<24} {f['median_s'] * 1000:6.1f} / {f['max_s'] * 1000:6.1f} ms  {f['result']:<14} [{verdict}]"
        )
    overall = statistics.median(f["median_s"] for f in s["filters"].values())
    lines.append(
        f"  filters overall: median {overall * 1000:.1f} ms  [{'PASS' if filters_ok else 'FAIL'} each "
        f"< {FILTER_LIMIT_S * 1000:.0f} ms]"
    )
    ok = paint_ok and filters_ok
    lines.append("PASS" if ok else "FAIL")
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=10_000, help="targets in the store (10,000)")
    p.add_argument("--loads", type=int, default=5, help="fleet page loads measured (5)")
    p.add_argument("--repeats", type=int, default=10, help="requests per filter (10)")
    p.add_argument(
        "--shared-leaves", action="store_true", help="every copy keeps its seed's leaf (default: a leaf of its own)"
    )
    p.add_argument("--db", help="an empty database URL to fill (default: SQLite in a temp dir)")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    ns = p.parse_args(argv)
    reason = browser.unavailable_reason()
    if reason is not None:
        print(f"bench/dashboard.py: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="certdoctor-dashboard-bench-") as tmp:
        try:
            summary = run(ns, Path(tmp))
        except Exception as exc:  # the harness broke: say where, exit 2
            print(f"bench/dashboard.py: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    text, ok = render(summary)
    print(text)
    if ns.out is not None:
        ns.out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
