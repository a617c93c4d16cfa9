"""``certdoctor watch add-file``: a certificate file on a real nginx's disk linked to the target it should serve;
each pass compares them. Renewed on disk but not reloaded → ``not-reloaded`` in the observation at once, an alert
(with nginx's reload command) once it has lasted the drift grace; reloaded → resolved. On every database
backend (the ``watch_db`` fixture of test_watch.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import jsonschemas
import test_deployed
import test_watch
from certdoctor.cli import main
from certdoctor.model import DiagnoseOptions
from certdoctor.watch import Store, run_pass
from certdoctor.watch import alerts as watch_alerts
from certdoctor.watch.deployed import add_file, files
from netutil import free_port
from test_deployed import HOST, deploy, fp, needs_nginx, wait_serving

# the fixtures of the neighbouring modules: a PKI with a certificate and its renewal, nginx, both databases
pki = test_deployed.pki
nginx_factory = test_deployed.nginx_factory
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
