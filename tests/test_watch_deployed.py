"""``certdoctor watch add-file`` and ``watch discover``: certificate files on a real nginx's, Apache's and
HAProxy's disk linked to the targets that should serve them; each pass compares them. Renewed on disk but not
reloaded → ``not-reloaded`` in the observation at once, an alert (with the server's reload command) once it has
lasted the drift grace; reloaded → resolved. On every database backend (the ``watch_db`` fixture of test_watch.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import jsonschemas
import test_deployed
import test_deployed_haproxy
import test_serverconf
import test_watch
from certdoctor.checks.deployed import reload_fix
from certdoctor.cli import main
from certdoctor.collect.serverconf import discover
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store, run_pass
from certdoctor.watch import alerts as watch_alerts
from certdoctor.watch.deployed import add_file, apply_discovery, files, plan_discovery
from netutil import free_port
from test_deployed import HOST, deploy, fp, needs_nginx, wait_serving

# the fixtures of the neighbouring modules: a PKI with a certificate and its renewal, nginx, both databases
pki = test_deployed.pki
nginx_factory = test_deployed.nginx_factory
haproxy_factory = test_deployed_haproxy.haproxy_factory
watch_db = test_watch.watch_db


def _alerts(messages: list, target_id: int) -> list[tuple[str, str]]:
    return [(a["status"], a["condition"]) for m in messages if m.target["id"] == target_id for a in m.alerts]


@needs_nginx
def test_renewed_on_disk_not_reloaded_alerts_after_the_grace_and_resolves_on_reload(
    pki,
    nginx_factory,
    watch_db,
    tmp_path,
    capsys,
) -> None:
    port = free_port()
    chain, key = deploy(pki, pki.old, tmp_path / "live")
    server = nginx_factory("watch", "127.0.0.1", port, chain, key)
    wait_serving("127.0.0.1", port, fp(pki.old))
    spec = f"{HOST}:{port},addr=127.0.0.1"
    options = DiagnoseOptions(ca_files=(pki.root_path,), timeout=3, revocation=False)

    # the CLI records the file, adds the target it serves, and reads the file at once
    code = main(
        ["watch", "add-file", str(chain), "--serves", spec, "--server-type", "nginx", "--key", str(key),
         "--db", watch_db, "--json"]
    )  # fmt: skip
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert code == 0 and doc["kind"] == "watch-files"
    [recorded] = doc["files"]
    assert recorded["path"] == str(chain) and recorded["leaf_sha256"] == fp(pki.old) and recorded["format"] == "pem"
    assert recorded["server_type"] == "nginx" and recorded["key"] == str(key) and len(recorded["targets"]) == 1

    with Store(watch_db) as store:
        target = store.target(spec)
        assert target is not None and recorded["targets"] == [target.id]
        first = run_pass(store, options, retries=0)
        [(_, obs, _)] = first.results
        assert obs.verdict == "valid" and obs.findings == ()

        # the renewal client replaces the files; nobody reloads nginx
        deploy(pki, pki.new, tmp_path / "live")
        renewed = run_pass(store, options, everything=True, retries=0)
        [(_, obs, events)] = renewed.results
        assert [f for f, _ in obs.findings] == ["not-reloaded"] and obs.verdict == "invalid"
        assert ("finding-appeared", {"id": "not-reloaded", "severity": "error"}) in events
        [file_now] = files(store)
        assert file_now.leaf_sha256 == fp(pki.new)  # the pass read the file again
        detail = next(f for f in obs.finding_details if f["id"] == "not-reloaded")
        assert "nginx -s reload" in detail["fix"] and str(chain) in detail["detail"]

        # within the drift grace (1 h by default) a reload may still come: no alert
        moment = obs.at
        assert ("firing", "finding:not-reloaded") not in _alerts(
            watch_alerts.evaluate(store, renewed.results, at=moment), target.id
        )
        # still not reloaded two hours later: the alert fires, with the fix and since when
        later = run_pass(store, options, everything=True, retries=0)
        messages = watch_alerts.evaluate(store, later.results, at=moment + timedelta(hours=2))
        assert ("firing", "finding:not-reloaded") in _alerts(messages, target.id)
        alert = next(a for m in messages for a in m.alerts if a["condition"] == "finding:not-reloaded")
        assert "nginx -s reload" in alert["detail"]["finding"]["fix"]
        assert alert["detail"]["since"] == next(
            e["at"] for e in store.events(moment - timedelta(hours=1)) if e["kind"] == "finding-appeared"
        )

        # a policy with a shorter grace for these targets
        watch_alerts.set_policy(store, {}, drift_grace_s=60)
        assert watch_alerts.policy_for({}, watch_alerts.policies(store)).drift_grace_s == 60

        # nginx -s reload: the next pass sees the new certificate; the alert is resolved
        server.reload()
        wait_serving("127.0.0.1", port, fp(pki.new))
        fixed = run_pass(store, options, everything=True, retries=0)
        [(_, obs, events)] = fixed.results
        assert obs.findings == () and obs.verdict == "valid"
        assert ("finding-resolved", {"id": "not-reloaded", "severity": "error"}) in events
        assert ("resolved", "finding:not-reloaded") in _alerts(
            watch_alerts.evaluate(store, fixed.results, at=moment + timedelta(hours=3)), target.id
        )

    # files, and remove-file
    assert main(["watch", "files", "--db", watch_db]) == 0
    text = capsys.readouterr().out
    assert str(chain) in text and "(nginx)" in text and spec in text and fp(pki.new)[:16] in text
    assert main(["watch", "remove-file", str(chain), "--db", watch_db]) == 0
    assert capsys.readouterr().out == f"removed  {chain}\n"
    assert main(["watch", "files", "--db", watch_db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == []
    assert main(["watch", "remove-file", str(chain), "--db", watch_db]) == 2
    assert "no such file in the watch list" in capsys.readouterr().err


def test_add_file_of_a_glob_records_each_certificate_file(pki, watch_db, tmp_path, capsys) -> None:
    """A certbot lineage as a glob: cert.pem and fullchain.pem recorded, privkey.pem skipped (a key alone)."""
    live = tmp_path / "live" / "shop"
    chain, _ = deploy(pki, pki.old, live)
    (live / "cert.pem").write_bytes(test_deployed._pem(pki.old))
    spec = f"{HOST}:443,addr=127.0.0.1"
    assert main(["watch", "add-file", str(live / "*.pem"), "--serves", spec, "--db", watch_db, "--json"]) == 0
    out, err = capsys.readouterr()
    doc = jsonschemas.loads(out)
    assert [f["path"] for f in doc["files"]] == [str(live / "cert.pem"), str(chain)]
    assert len({tuple(f["targets"]) for f in doc["files"]}) == 1  # both linked to the one target
    assert "privkey.pem: a key without a certificate, skipped" in err


def test_add_file_errors_and_a_file_that_does_not_exist_yet(watch_db, tmp_path) -> None:
    from certdoctor.errors import InputError

    with Store(watch_db) as store:
        with pytest.raises(InputError, match="no such target"):
            add_file(store, str(tmp_path / "x.pem"), serves=[999])
        with pytest.raises(InputError, match="server type"):
            add_file(store, str(tmp_path / "x.pem"), serves=["a.example:443"], server_type="iis")
        f, linked = add_file(store, str(tmp_path / "later.pem"), serves=["a.example:443,addr=127.0.0.1"])
        assert (
            f.error
            and "later.pem" in f.error
            and f.leaf_sha256 is None
            and [t.spec for t in linked] == ["a.example:443,addr=127.0.0.1"]
        )
        again, _ = add_file(store, str(tmp_path / "later.pem"), serves=[linked[0].id], server_type="apache")
        assert again.id == f.id and again.server_type == "apache" and again.targets == (linked[0].id,)
        assert Path(again.path).is_absolute()


# --- watch discover ---------------------------------------------------------------------------------------------

nginx_site = test_serverconf.nginx_site


def test_discover_an_nginx_configuration_then_watch_what_it_serves(nginx_site, watch_db, tmp_path, capsys) -> None:
    """The configuration of test_serverconf's real nginx (several server blocks, SNI, an include, a legacy block):
    --dry-run shows the targets and files and adds nothing; then they are added, linked, and a pass finds each
    name serving its configured file (no drift)."""
    root = tmp_path / "root.pem"
    root.write_bytes(test_serverconf.ROOT.cert.public_bytes(serialization.Encoding.PEM))
    p1, p2 = nginx_site.ports
    expected = {
        f"default.test:{p1},addr=127.0.0.1": nginx_site.certs["default"].cert,
        f"a.test:{p1},addr=127.0.0.1": nginx_site.certs["a"].cert,
        f"www.a.test:{p1},addr=127.0.0.1": nginx_site.certs["a"].cert,
        f"b.test:{p1},addr=127.0.0.1": nginx_site.certs["b"].cert,
        f"c.test:{p1},addr=127.0.0.1": nginx_site.certs["c"].cert,
        f"wild.test:{p1},addr=127.0.0.1": nginx_site.certs["c"].cert,
        f"legacy.test:{p2},addr=127.0.0.1": nginx_site.certs["legacy"].cert,
    }
    conf = str(nginx_site.conf.parent)
    assert main(["watch", "discover", conf, "--dry-run", "--json", "--db", watch_db]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert doc["kind"] == "watch-discover" and doc["dry_run"] and doc["server_type"] == "nginx"
    assert {x["target"]: x["file"] for x in doc["links"]} == {k: str(v) for k, v in expected.items()}
    assert all(x["new_target"] is None and x["server_type"] == "nginx" for x in doc["links"])
    assert any("*.wild.test" in n and "wildcard" in n for n in doc["notes"])
    with Store(watch_db) as store:
        assert store.targets() == []  # a dry run adds nothing

    assert main(["watch", "discover", conf, "--label", "site=nginx", "--db", watch_db]) == 0
    text = capsys.readouterr().out
    assert f"watching a.test:{p1},addr=127.0.0.1 (new target)" in text and "c.conf:1" in text
    with Store(watch_db) as store:
        assert {t.spec for t in store.targets({"site": "nginx"})} == set(expected)
        linked = {f.path: f for f in files(store)}
        assert set(linked) == {str(p) for p in expected.values()}
        assert all(f.source.startswith("discover nginx ") and f.server_type == "nginx" for f in linked.values())
        result = run_pass(store, DiagnoseOptions(ca_files=(str(root),), timeout=3, revocation=False), retries=0)
        assert result.checked == len(expected)
        for target, obs, _ in result.results:
            assert not {f for f, _ in obs.findings} & watch_alerts.DRIFT_FINDINGS, (target.spec, obs.findings)
    # discovering again adds nothing new and keeps the targets' labels
    assert main(["watch", "discover", conf, "--json", "--db", watch_db]) == 0
    again = json.loads(capsys.readouterr().out)
    assert not any(x["new_target"] for x in again["links"])
    with Store(watch_db) as store:
        assert len(store.targets({"site": "nginx"})) == len(expected)


@test_deployed.needs_apache
def test_apache_discovered_renewed_not_reloaded_then_graceful(pki, watch_db, tmp_path) -> None:
    """A real Apache: discovered from its configuration, renewed on disk → not-reloaded with Apache's fix; a
    graceful restart → resolved."""
    port = free_port()
    chain, key = deploy(pki, pki.old, tmp_path / "certs")
    options = DiagnoseOptions(ca_files=(pki.root_path,), timeout=3, revocation=False)
    with test_deployed.apache_server(tmp_path, port, chain, key) as apache, Store(watch_db) as store:
        wait_serving("127.0.0.1", port, fp(pki.old))
        plan, _ = plan_discovery(discover(str(apache.conf)))
        assert [(x.spec, x.path, x.server_type) for x in plan] == [
            (f"{HOST}:{port},addr=127.0.0.1", str(chain), "apache")
        ]
        apply_discovery(store, plan)
        [(_, obs, _)] = run_pass(store, options, retries=0).results
        assert obs.findings == () and obs.verdict == "valid"

        deploy(pki, pki.new, tmp_path / "certs")
        [(_, obs, _)] = run_pass(store, options, everything=True, retries=0).results
        assert [f for f, _ in obs.findings] == ["not-reloaded"]
        assert "apachectl configtest && systemctl reload apache2" in obs.finding_details[0]["fix"]

        apache.graceful()
        wait_serving("127.0.0.1", port, fp(pki.new))
        [(_, obs, events)] = run_pass(store, options, everything=True, retries=0).results
        assert obs.findings == () and ("finding-resolved", {"id": "not-reloaded", "severity": "error"}) in events


@test_deployed_haproxy.needs_haproxy
def test_haproxy_discovered_renewed_not_reloaded_then_reloaded(
    pki, haproxy_factory, watch_db, tmp_path, capsys
) -> None:
    """A real HAProxy (master-worker): discovered from its configuration (a crt-list with another vhost's
    certificate first and the shop's selected by SNI), renewed on disk → not-reloaded with HAProxy's fix; the
    reload ``systemctl reload haproxy`` performs (configuration check, SIGUSR2 to the master) → resolved."""
    port = free_port()
    certs = tmp_path / "certs"
    other = test_deployed_haproxy.haproxy_pem(pki, pki.other, certs / "other.pem")
    site = test_deployed_haproxy.haproxy_pem(pki, pki.old, certs / "shop.pem")
    crt_list = certs / "list.txt"
    crt_list.write_text(f"{other}\n{site} {HOST}\n")
    server = haproxy_factory(port, f"crt-list {crt_list}")
    wait_serving("127.0.0.1", port, fp(pki.old))
    options = DiagnoseOptions(ca_files=(pki.root_path,), timeout=3, revocation=False)
    assert main(["watch", "discover", str(server.conf), "--dry-run", "--json", "--db", watch_db]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert doc["server_type"] == "haproxy" and doc["dry_run"]
    assert {x["target"]: x["file"] for x in doc["links"]} == {
        f"default.other.test:{port},addr=127.0.0.1": str(other),
        f"{HOST}:{port},addr=127.0.0.1": str(site),
    }
    with Store(watch_db) as store:
        assert store.targets() == []
        plan, notes = plan_discovery(discover(str(server.conf)))
        assert sorted((x.spec, x.path, x.server_type) for x in plan) == [
            (f"default.other.test:{port},addr=127.0.0.1", str(other), "haproxy"),
            (f"{HOST}:{port},addr=127.0.0.1", str(site), "haproxy"),
        ], notes
        apply_discovery(store, plan)
        shop = store.target(f"{HOST}:{port},addr=127.0.0.1")
        assert shop is not None
        first = run_pass(store, options, retries=0)
        assert first.checked == 2
        for target, obs, _ in first.results:
            assert obs.findings == () and obs.verdict == "valid", (target.spec, obs.findings)

        test_deployed_haproxy.haproxy_pem(pki, pki.new, site)  # renewed; nobody reloads HAProxy
        renewed = run_pass(store, options, everything=True, retries=0)
        by_target = {t.spec: (obs, events) for t, obs, events in renewed.results}
        obs, events = by_target[shop.spec]
        assert [f for f, _ in obs.findings] == ["not-reloaded"] and obs.verdict == "invalid"
        assert ("finding-appeared", {"id": "not-reloaded", "severity": "error"}) in events
        detail = obs.finding_details[0]
        assert detail["fix"] == reload_fix("haproxy", str(site))
        assert "systemctl reload haproxy" in detail["fix"] and f"commit ssl cert {site}" in detail["fix"]
        other_obs, _ = by_target[f"default.other.test:{port},addr=127.0.0.1"]
        assert other_obs.findings == ()  # the other vhost's file did not change

        server.reload()
        wait_serving("127.0.0.1", port, fp(pki.new))
        fixed = run_pass(store, options, everything=True, retries=0)
        obs, events = {t.spec: (o, e) for t, o, e in fixed.results}[shop.spec]
        assert obs.findings == () and obs.verdict == "valid"
        assert ("finding-resolved", {"id": "not-reloaded", "severity": "error"}) in events
