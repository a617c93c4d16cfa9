"""Renewal hooks of ``certdoctor watch`` against a real nginx (loopback): a fake renewal command — no ACME, no
network — rewrites the certificate files nginx reads, with or without reloading nginx, or fails; the monitor
checks the server again and alerts when the renewal succeeded but the served certificate did not change within
the window, or when the command failed. Also certbot's deploy hook (``watch renewed``). Time moves through the
``at`` clock the functions take (the windows are one second, passed by moving ``at``), never by sleeping; both
database backends."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import jsonschemas
from certdoctor.cli import main
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store, renewal, run_pass
from certdoctor.watch import alerts as watch_alerts
from certdoctor.watch.deployed import add_file
from certdoctor.watch.store import now
from netutil import free_port
from test_deployed import HOST, Pki, deploy, fp, needs_nginx, nginx_factory, pki, wait_serving  # noqa: F401
from test_watch import store, watch_db  # noqa: F401 (fixtures)

# A renewal client without ACME: copies the "issued" files from a staging directory over the live ones (atomic
# renames, as certbot and lego do), then optionally reloads nginx the way `nginx -s reload` does (SIGHUP to the
# master named in its pid file), waiting until the old worker has gone.
RENEW_SCRIPT = r"""
import os, shutil, signal, sys, time
staging, live = sys.argv[1], sys.argv[2]
print("renewing", os.environ["CERTDOCTOR_TARGET"], "leaf", os.environ["CERTDOCTOR_LEAF_SHA256"][:12],
      "days left", os.environ["CERTDOCTOR_DAYS_LEFT"])
for name in ("fullchain.pem", "privkey.pem"):
    shutil.copyfile(os.path.join(staging, name), os.path.join(live, name + ".new"))
    os.replace(os.path.join(live, name + ".new"), os.path.join(live, name))
if len(sys.argv) > 3:
    pid = int(open(sys.argv[3]).read())
    kids = lambda: set(open(f"/proc/{pid}/task/{pid}/children").read().split())
    before = kids()
    os.kill(pid, signal.SIGHUP)
    for _ in range(600):
        now = kids()
        if now and not now & before:
            break
        time.sleep(0.05)
    print("reloaded nginx", pid)
print("done")
"""


class Site:
    """nginx serving the old certificate from ``live/``; the renewed one waits in ``staging/``."""

    def __init__(self, pki: Pki, factory: Any, tmp: Path, store: Store) -> None:  # noqa: F811
        self.pki, self.store = pki, store
        self.port = free_port()
        self.live = tmp / "live" / HOST
        self.chain, self.key = deploy(pki, pki.old, self.live)
        self.staging = tmp / "staging"
        deploy(pki, pki.new, self.staging)
        self.server = factory("renewal", "127.0.0.1", self.port, self.chain, self.key)
        wait_serving("127.0.0.1", self.port, fp(pki.old))
        self.spec = f"{HOST}:{self.port},addr=127.0.0.1"
        _, [self.target] = add_file(store, str(self.chain), serves=[self.spec], server_type="nginx", key=str(self.key))
        self.options = DiagnoseOptions(ca_files=(pki.root_path,), timeout=3, revocation=False, fetch_aia=False)
        self.script = tmp / "renew.py"
        self.script.write_text(RENEW_SCRIPT)

    def command(self, reload: bool = False) -> str:
        words = [sys.executable, str(self.script), str(self.staging), str(self.live)]
        if reload:
            words.append(str(self.server.prefix / "nginx.pid"))
        return " ".join(shlex.quote(w) for w in words)

    def cycle(self, at: Any) -> tuple[list[watch_alerts.Message], list[renewal.Run]]:
        """What `watch run --all` does: a pass, the renewal hooks, the alerts (at the clock ``at``)."""
        result = run_pass(self.store, self.options, everything=True)
        merged, changed = renewal.after_pass(self.store, result.results, self.options, at=at)
        return watch_alerts.evaluate(self.store, merged, at=at), changed

    def runs(self) -> list[renewal.Run]:
        return renewal.runs(self.store, target_ids=[self.target.id])


@pytest.fixture
def site(pki: Pki, nginx_factory: Any, tmp_path: Path, store: Store) -> Site:  # noqa: F811
    return Site(pki, nginx_factory, tmp_path, store)


def alerts_of(messages: list[watch_alerts.Message], condition: str) -> list[dict[str, Any]]:
    return [a for m in messages for a in m.alerts if a["condition"] == condition]


@needs_nginx
def test_renewed_on_disk_not_reloaded_alerts_then_reload_resolves(site: Site, pki: Pki) -> None:  # noqa: F811
    hook = renewal.add_hook(site.store, site.command(), target=site.spec, threshold_days=45, window_s=1)
    assert hook.target_id == site.target.id
    t0 = now()

    # pass 1: 40 days left ≤ 45 → the command runs (exit 0), rewrites the files, does not reload; the target is
    # checked again at once: still the old leaf → waiting, and the deployed-file check says not-reloaded
    messages, changed = site.cycle(t0)
    [run] = site.runs()
    assert [r.id for r in changed] == [run.id]
    assert run.state == "waiting" and run.exit_code == 0 and run.trigger == "threshold"
    assert run.old_leaf_sha256 == fp(pki.old) and run.new_leaf_sha256 is None
    assert run.deadline is not None and run.deadline >= t0 + timedelta(seconds=1)
    assert f"renewing {site.spec} leaf {fp(pki.old)[:12]}" in (run.output_tail or "")
    assert "done" in (run.output_tail or "")
    _, observations, _ = site.store.history(site.target.id, limit=1)
    assert "not-reloaded" in [f["id"] for f in observations[0]["findings"]]  # the deployed-file comparison
    assert not alerts_of(messages, "finding:not-reloaded")  # … alerts only after its drift grace (1 h)
    assert not alerts_of(messages, "renewal-not-served")

    # pass 2, after the window: still the old leaf → not-served, alert with the file and nginx's reload command
    t1 = t0 + timedelta(seconds=5)
    messages, changed = site.cycle(t1)
    [run] = site.runs()  # the hook did not run again: its run was waiting
    assert run.state == "not-served" and [r.state for r in changed] == ["not-served"]
    [alert] = alerts_of(messages, "renewal-not-served")  # the renewal's window, not the drift grace
    assert alert["status"] == "firing" and alert["severity"] == "critical"
    assert not alerts_of(messages, "finding:not-reloaded")
    d = alert["detail"]
    assert d["run_id"] == run.id and d["old_sha256"] == fp(pki.old) and d["trigger"] == "threshold"
    assert d["files"] == [{"path": str(site.chain), "server_type": "nginx", "leaf_sha256": fp(pki.new)}]
    assert "nginx -t && nginx -s reload" in d["fix"]
    [message] = [m for m in messages if alerts_of([m], "renewal-not-served")]
    jsonschemas.validate(message.payload(t1))
    body = message.body()
    assert "renewal-not-served" in body and str(site.chain) in body and "nginx -s reload" in body
    assert f"still served: {fp(pki.old)}" in body

    # a pass before anything changes sends nothing new about it
    messages, changed = site.cycle(t1 + timedelta(seconds=5))
    assert not alerts_of(messages, "renewal-not-served") and not changed

    # nginx reloaded: the next pass sees the new leaf → served, alert resolved; no new run (89 days left)
    site.server.reload()
    wait_serving("127.0.0.1", site.port, fp(pki.new))
    t2 = t1 + timedelta(seconds=60)
    messages, changed = site.cycle(t2)
    [run] = site.runs()
    assert run.state == "served" and run.new_leaf_sha256 == fp(pki.new)
    assert [(r.id, r.state) for r in changed] == [(run.id, "served")]
    [resolved] = alerts_of(messages, "renewal-not-served")
    assert resolved["status"] == "resolved"
    assert not [a for a in watch_alerts.alerts(site.store) if a["condition"].startswith("renewal-")]


@needs_nginx
def test_renewal_that_reloads_is_served_at_once_without_alert(site: Site, pki: Pki) -> None:  # noqa: F811
    renewal.add_hook(site.store, site.command(reload=True), selector={"team": "web"}, threshold_days=45, window_s=1)
    site.store.add([site.spec], {"team": "web"})
    messages, changed = site.cycle(now())
    [run] = site.runs()
    # the check made right after the command already sees the new leaf on every address
    assert run.state == "served" and run.exit_code == 0
    assert run.old_leaf_sha256 == fp(pki.old) and run.new_leaf_sha256 == fp(pki.new)
    assert "reloaded nginx" in (run.output_tail or "")
    assert [r.state for r in changed] == ["waiting", "served"]
    assert not [a for m in messages for a in m.alerts if a["condition"].startswith(("renewal-", "finding:"))]
    assert [a["condition"] for m in messages for a in m.alerts] == ["certificate-changed"]
    # later passes: nothing due (89 days left), nothing pending
    messages, changed = site.cycle(now() + timedelta(seconds=10))
    assert not changed and len(site.runs()) == 1


@needs_nginx
def test_failing_renewal_command_alerts_with_exit_code_and_output(site: Site, pki: Pki, capsys: Any) -> None:  # noqa: F811
    command = "echo 'Attempting to renew cert'; echo 'Error: too many certificates already issued' >&2; exit 3"
    assert renewal.argv(command)[:2] == ["/bin/sh", "-c"]
    renewal.add_hook(site.store, command, target=site.target.id, threshold_days=45, timeout_s=30)
    t0 = now()
    messages, changed = site.cycle(t0)
    [run] = site.runs()
    assert [r.id for r in changed] == [run.id]
    assert run.state == "failed" and run.exit_code == 3 and run.deadline is None
    assert run.output_tail == "Attempting to renew cert\nError: too many certificates already issued\n"
    [alert] = alerts_of(messages, "renewal-failed")
    assert alert["status"] == "firing" and alert["severity"] == "critical"
    assert alert["summary"] == "renewal command failed (exit 3)"
    assert alert["detail"]["exit_code"] == 3 and alert["detail"]["command"] == command
    assert "too many certificates" in alert["detail"]["output_tail"]
    body = next(m for m in messages if alerts_of([m], "renewal-failed")).body()
    assert "exit code: 3" in body and "    Error: too many certificates already issued" in body
    # the next pass does not run it again within the retry interval; the alert stays open, not re-sent
    messages, _ = site.cycle(t0 + timedelta(seconds=30))
    assert len(site.runs()) == 1 and not alerts_of(messages, "renewal-failed")
    # after the retry interval it runs again (and fails again: same open alert)
    messages, _ = site.cycle(t0 + timedelta(seconds=renewal.RETRY_S + 1))
    assert [r.state for r in site.runs()] == ["failed", "failed"]
    assert [a["condition"] for a in watch_alerts.alerts(site.store) if a["condition"].startswith("renewal")] == [
        "renewal-failed"
    ]
    # the certificate renewed some other way (the files replaced, nginx reloaded): resolved
    deploy(pki, pki.new, site.live)
    site.server.reload()
    wait_serving("127.0.0.1", site.port, fp(pki.new))
    messages, _ = site.cycle(t0 + timedelta(seconds=renewal.RETRY_S + 60))
    assert [a["status"] for a in alerts_of(messages, "renewal-failed")] == ["resolved"]

    # the CLI lists the runs, and the target's history has them
    url = site.store.engine.url.render_as_string(False)
    assert main(["watch", "renewals", "--db", url, "--json"]) == 0
    doc = jsonschemas.validate(json.loads(capsys.readouterr().out))
    assert [(r["state"], r["exit_code"], r["command"]) for r in doc["runs"]] == [("failed", 3, command)] * 2
    assert main(["watch", "history", str(site.target.id), "--db", url, "--json"]) == 0
    doc = jsonschemas.validate(json.loads(capsys.readouterr().out))
    assert [r["state"] for r in doc["renewals"]] == ["failed", "failed"]
    assert main(["watch", "history", str(site.target.id), "--db", url]) == 0
    assert "renewals\n" in capsys.readouterr().out


@needs_nginx
def test_certbot_deploy_hook_checks_the_lineage_targets_at_once(
    site: Site,
    pki: Pki,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    url = site.store.engine.url.render_as_string(False)
    trust = ["--ca-file", pki.root_path, "--no-revocation", "--no-aia"]
    assert main(["watch", "run", "--all", "--db", url, *trust]) == 0
    capsys.readouterr()
    monkeypatch.delenv("RENEWED_LINEAGE", raising=False)
    assert main(["watch", "renewed", "--db", url]) == 2
    assert "RENEWED_LINEAGE" in capsys.readouterr().err

    # certbot renewed the lineage (the files in live/ replaced) and runs its deploy hooks; nginx not yet reloaded
    deploy(pki, pki.new, site.live)
    monkeypatch.setenv("RENEWED_LINEAGE", str(site.live))
    monkeypatch.setenv("RENEWED_DOMAINS", f"{HOST} www.{HOST}")
    assert main(["watch", "renewed", "--db", url, "--window", "1s", *trust, "--json"]) == 0
    doc = jsonschemas.validate(json.loads(capsys.readouterr().out))
    [run] = doc["runs"]
    assert run["trigger"] == "certbot" and run["hook_id"] is None and run["target_id"] == site.target.id
    assert run["state"] == "waiting" and run["old_leaf_sha256"] == fp(pki.old)
    # the check was made at once: the target's latest observation is after the notice, and says not-reloaded
    _, observations, _ = site.store.history(site.target.id, limit=1)
    assert observations[0]["at"] >= run["started"]
    assert "not-reloaded" in [f["id"] for f in observations[0]["findings"]]

    # the window passes unreloaded: the next `watch run` says renewal-not-served
    with site.store.engine.connect() as conn:
        conds = renewal.conditions(conn, {site.target.id: fp(pki.old)})
    assert conds == {}  # still waiting: not judged yet
    result = run_pass(site.store, site.options, everything=True)
    merged, changed = renewal.after_pass(site.store, result.results, site.options, at=now() + timedelta(seconds=5))
    assert [(r.id, r.state) for r in changed] == [(run["id"], "not-served")]
    messages = watch_alerts.evaluate(site.store, merged)
    [alert] = alerts_of(messages, "renewal-not-served")
    assert alert["detail"]["command"] == "certbot (deploy hook)" and "nginx -s reload" in alert["detail"]["fix"]

    # reloaded: `watch renewed` again (certbot's next renewal, or the reload hook ran it) sees it served at once
    site.server.reload()
    wait_serving("127.0.0.1", site.port, fp(pki.new))
    assert main(["watch", "renewed", "--db", url, *trust]) == 0
    [line] = capsys.readouterr().out.splitlines()  # the run just recorded
    assert line.startswith(f"{site.spec}  renewal #") and line.endswith("served exit 0  certbot")
    states = [r.state for r in site.runs()]
    assert states[0] == "served"

    # a lineage nobody watches
    monkeypatch.setenv("RENEWED_LINEAGE", "/etc/letsencrypt/live/elsewhere.example")
    monkeypatch.setenv("RENEWED_DOMAINS", "elsewhere.example")
    assert main(["watch", "renewed", "--db", url, *trust]) == 0
    assert "no watched target serves" in capsys.readouterr().out


def test_hook_cli_add_list_remove(store: Store, capsys: Any) -> None:  # noqa: F811
    url = store.engine.url.render_as_string(False)
    store.add(["shop.example.test:443"], {"team": "web"})
    assert main(["watch", "hook", "add", "certbot renew --cert-name shop", "--target", "shop.example.test:443",
                 "--db", url, "--days", "20", "--window", "5m", "--json"]) == 0  # fmt: skip
    doc = jsonschemas.validate(json.loads(capsys.readouterr().out))
    [h] = doc["hooks"]
    assert (h["command"], h["target"], h["threshold_days"], h["window_s"], h["timeout_s"]) == (
        "certbot renew --cert-name shop",
        "shop.example.test:443",
        20,
        300,
        600,
    )
    assert main(["watch", "hook", "add", "lego renew", "--label", "team=web", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "team=web  within 30 days  window 15m" in out and "lego renew" in out
    # neither target nor label, both, an unknown target, no command: usage errors
    for bad in (
        ["lego renew"],
        ["lego renew", "--target", "1", "--label", "a=b"],
        ["lego renew", "--target", "nope.example:443"],
        ["", "--target", "1"],
    ):
        assert main(["watch", "hook", "add", *bad, "--db", url]) == 2
    assert main(["watch", "hook", "remove", str(h["id"]), "--db", url, "--json"]) == 0
    assert [x["command"] for x in json.loads(capsys.readouterr().out)["hooks"]] == ["lego renew"]
    assert main(["watch", "hook", "remove", "99", "--db", url]) == 2


def test_execute_is_bounded(tmp_path: Path) -> None:
    """The command's limits: a timeout stops it (and its children), output is cut to its last 4 KB, a missing
    program is exit 127 as in a shell — never an exception."""
    code, tail = renewal.execute("sleep 30; echo never", {}, timeout=0.5)
    assert code == -15 and "timed out after 0.5 s" in tail and "never" not in tail
    code, tail = renewal.execute(f'{shlex.quote(sys.executable)} -c \'print("x" * 10000 + "END")\'', {}, 10)
    assert code == 0 and tail.endswith("xEND\n") and len(tail) == renewal.OUTPUT_TAIL
    code, tail = renewal.execute("/nonexistent/certbot renew", {}, 10)
    assert code == 127 and "not found" in tail
    code, tail = renewal.execute("printenv CERTDOCTOR_TARGET", {"CERTDOCTOR_TARGET": "a.example:443"}, 10)
    assert (code, tail) == (0, "a.example:443\n")
    assert renewal.argv("certbot renew --cert-name 'my site'") == ["certbot", "renew", "--cert-name", "my site"]


@needs_nginx
def test_serve_runs_the_hooks_and_settles_the_runs(site: Site, pki: Pki) -> None:  # noqa: F811
    """`watch serve` does after its checks what `watch run` does after a pass: the hook runs (here reloading
    nginx), the target is checked again, the run is served."""
    import subprocess

    from test_watch_serve import _argv, _env, wait_for

    renewal.add_hook(site.store, site.command(reload=True), target=site.target.id, threshold_days=45, window_s=60)
    url = site.store.engine.url.render_as_string(False)
    argv = _argv(url, free_port(), "--ca-file", pki.root_path, "--no-revocation", "--no-aia", "--alert-every", "1s")
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        served = wait_for("a served renewal", lambda: [r for r in site.runs() if r.state == "served"], proc)
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=60)
    [run] = served
    assert run.old_leaf_sha256 == fp(pki.old) and run.new_leaf_sha256 == fp(pki.new), err
    assert "reloaded nginx" in (run.output_tail or "")


def test_merge_gives_each_target_once_with_its_latest_observation_and_every_event() -> None:
    from types import SimpleNamespace

    a, b = SimpleNamespace(id=1), SimpleNamespace(id=2)
    merged = renewal.merge(
        [(a, "a1", [("first-seen", {})]), (b, "b1", []), (a, "a2", [("certificate-rotated", {})])],  # type: ignore[list-item]
        [(a, "a3", [("finding-appeared", {})])],  # type: ignore[list-item]
    )
    assert [(t.id, obs, [k for k, _ in ev]) for t, obs, ev in merged] == [
        (1, "a3", ["first-seen", "certificate-rotated", "finding-appeared"]),
        (2, "b1", []),
    ]
