"""`certdoctor check` against the real TLS servers of the lab: exact findings and their evidence."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

import jsonschemas
from certdoctor import diagnose
from certdoctor.cli import main
from certdoctor.cli.demo import check_endpoint
from certdoctor.lab import SCENARIOS

DEMO_SCENARIOS = [s.name for s in SCENARIOS if not s.hostile]


def run(lab: Any, name: str):
    return asyncio.run(check_endpoint(lab.endpoints[name], lab.root_path))


def kwargs_for(lab: Any, name: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    ep = lab.endpoints[name]
    host = ep.scenario.hostname
    kw: dict[str, Any] = {"ca_files": [str(lab.root_path)], "timeout": 5.0}
    if host != "127.0.0.1":
        kw["resolve"] = list(ep.addresses)
    kw.update(extra)
    return f"{host}:{ep.port}", kw


def finding(d, fid: str):
    matches = [f for f in d.findings if f.id == fid]
    assert matches, f"no {fid} in {d.ids()}"
    return matches[0]


@pytest.mark.parametrize("name", DEMO_SCENARIOS)
def test_scenario_produces_exactly_its_findings(lab, name):
    result = run(lab, name)
    assert result.error is None
    assert set(result.found) == set(SCENARIOS[name].expected)
    errors_expected = bool(
        SCENARIOS[name].expected
        - {"expiring-soon", "validity-too-long", "contains-root", "wrong-order", "duplicate-cert", "extra-cert"}
        - {"stapling-absent", "ocsp-stale", "ocsp-invalid", "revocation-unknown"}
        - {"cross-signed-root", "negative-serial"}  # hostname-trailing-dot: an error, Python refuses it
    )
    assert result.exit_code == (1 if errors_expected else 0)


def test_good_chain_is_trusted_through_ca_file_only(lab):
    target, kw = kwargs_for(lab, "good-two-level")
    d = diagnose(target, **kw)
    assert d.valid and d.exit_code == 0 and not d.findings
    (report,) = d.reports
    assert report.analysis.best.end == "anchor"
    assert report.analysis.best.anchored_in == ("custom",)
    assert [n.position for n in report.analysis.best.nodes] == [0, 1, 2, None]
    assert all(v.ok for v in report.analysis.verdicts)
    # Without the lab root nothing trusts it, and the chain is explained as an unknown root.
    del kw["ca_files"]
    d = diagnose(target, **kw)
    assert d.ids() == ["untrusted-root"]
    assert not any(v.ok for v in d.reports[0].analysis.verdicts)


def test_expired_evidence(lab):
    target, kw = kwargs_for(lab, "expired")
    f = finding(diagnose(target, **kw), "expired")
    assert f.cert_position == 0 and f.cert_subject == "CN=expired.certdoctor.test"
    assert f.evidence["not_after"] < f.evidence["checked_at"]
    assert "expired on" in f.detail and f.fix


def test_hostname_mismatch_names_both_sides(lab):
    target, kw = kwargs_for(lab, "wrong-host")
    f = finding(diagnose(target, **kw), "hostname-mismatch")
    assert f.evidence["requested_name"] == "wrong-host.certdoctor.test"
    assert f.evidence["dns_names"] == ["other-host.certdoctor.test"]


def test_wildcard_apex_and_cn_only_and_ip(lab):
    target, kw = kwargs_for(lab, "wildcard-apex")
    f = finding(diagnose(target, **kw), "hostname-mismatch")
    assert "not wildcard-apex.certdoctor.test itself" in f.detail
    target, kw = kwargs_for(lab, "cn-only")
    f = finding(diagnose(target, **kw), "hostname-mismatch")
    assert f.evidence["has_subject_alt_name"] is False
    assert f.evidence["common_names"] == ["cn-only.certdoctor.test"]
    target, kw = kwargs_for(lab, "ip-no-san")
    f = finding(diagnose(target, **kw), "hostname-mismatch")
    assert f.evidence["requested_name"] == "127.0.0.1" and f.evidence["ip_addresses"] == []
    assert "IP subjectAltName" in f.detail


def test_missing_intermediate_fetched_via_aia_proves_the_fix(lab):
    target, kw = kwargs_for(lab, "incomplete-aia")
    d = diagnose(target, **kw)
    f = finding(d, "missing-intermediate")
    assert f.evidence["aia_urls"] == [f"{lab.aia_base_url}/rsa-ca.cer"] or f.evidence["aia_urls"][0].startswith(
        lab.aia_base_url
    )
    (report,) = d.reports
    assert [n.origin for n in report.analysis.best.nodes] == ["presented", "aia", "store"]
    assert f.evidence["fetched_sha256"] == [f.cert_fingerprint]
    assert all(not v.ok and v.ok_with_aia for v in report.analysis.verdicts)
    # Without AIA fetching the same chain is still explained, with no AIA proof.
    d = diagnose(target, fetch_aia=False, **kw)
    f = finding(d, "missing-intermediate")
    assert "not fetched" in f.detail


def test_missing_intermediate_without_aia_says_so(lab):
    target, kw = kwargs_for(lab, "incomplete-no-aia")
    f = finding(diagnose(target, **kw), "missing-intermediate")
    assert "no AIA caIssuers URL" in f.detail and f.evidence["aia_urls"] == []


def test_untrusted_root_found_via_aia(lab):
    target, kw = kwargs_for(lab, "untrusted-root")
    f = finding(diagnose(target, **kw), "untrusted-root")
    assert f.evidence["root_subject"].startswith("CN=certdoctor Untrusted Root")
    assert "downloaded from http://127.0.0.1" in f.detail


def test_chain_shape_findings(lab):
    target, kw = kwargs_for(lab, "wrong-order")
    f = finding(diagnose(target, **kw), "wrong-order")
    assert f.evidence["path_positions"] == [0, 2, 1]
    target, kw = kwargs_for(lab, "duplicate-cert")
    f = finding(diagnose(target, **kw), "duplicate-cert")
    assert f.evidence == {"count": 2, "positions": [1, 2]}
    target, kw = kwargs_for(lab, "extra-cert")
    f = finding(diagnose(target, **kw), "extra-cert")
    assert f.cert_position == 2 and "Unrelated CA" in f.evidence["unrelated"][0]
    target, kw = kwargs_for(lab, "root-included")
    f = finding(diagnose(target, **kw), "contains-root")
    assert f.cert_position == 2 and f.evidence["trusted_by"] == ["custom"]


def test_crypto_and_usage_findings(lab):
    target, kw = kwargs_for(lab, "sha1")
    f = finding(diagnose(target, **kw), "weak-signature")
    assert f.evidence["hash"] == "sha1" and f.cert_position == 0
    target, kw = kwargs_for(lab, "rsa-1024")
    f = finding(diagnose(target, **kw), "weak-key")
    assert f.evidence == {"key_type": "RSA", "key_bits": 1024}
    target, kw = kwargs_for(lab, "client-auth-eku")
    f = finding(diagnose(target, **kw), "missing-server-auth-eku")
    assert f.evidence["extended_key_usage"] == ["clientAuth"]
    target, kw = kwargs_for(lab, "issuer-not-ca")
    f = finding(diagnose(target, **kw), "issuer-not-ca")
    assert f.cert_position == 1 and f.evidence["basic_constraints"] == "CA:FALSE"
    target, kw = kwargs_for(lab, "expired-intermediate")
    f = finding(diagnose(target, **kw), "intermediate-expired")
    assert f.cert_position == 1 and f.evidence["origin"] == "presented"
    target, kw = kwargs_for(lab, "long-validity")
    f = finding(diagnose(target, **kw), "validity-too-long")
    assert f.severity.value == "warning" and f.evidence["validity_days"] >= 825
    assert "publicly trusted roots" in f.detail


def test_endpoints_differ_shows_each_address(lab):
    target, kw = kwargs_for(lab, "multi-address")
    d = diagnose(target, **kw)
    assert sorted(d.ids()) == ["endpoints-differ", "expired"]
    f = finding(d, "endpoints-differ")
    assert len(f.evidence["endpoints"]) == 2
    port = lab.endpoints["multi-address"].port
    assert set(f.sources) == {f"127.0.0.1:{port}", f"127.0.0.2:{port}"}
    assert finding(d, "expired").sources == (f"127.0.0.2:{port}",)


def test_sni_decides_the_certificate(lab):
    target, kw = kwargs_for(lab, "no-sni")
    assert diagnose(target, **kw).ids() == []
    d = diagnose(target, sni=None, **kw)
    f = finding(d, "hostname-mismatch")
    assert f.evidence["dns_names"] == ["default.certdoctor.test"]
    assert d.target.sni is None


def test_at_judges_another_moment(lab):
    target, kw = kwargs_for(lab, "good-rsa")
    leaf = diagnose(target, **kw).reports[0].chain.certs[0]
    after = (leaf.not_valid_after_utc + timedelta(days=1)).isoformat()
    assert diagnose(target, at=after, **kw).ids() == ["expired"]
    soon = (leaf.not_valid_after_utc - timedelta(days=5)).date().isoformat()
    assert diagnose(target, at=soon, **kw).ids() == ["expiring-soon"]
    d = diagnose(target, at="2000-01-01", **kw)
    assert "not-yet-valid" in d.ids()


def test_expect_detects_a_different_deployed_certificate(lab):
    target, kw = kwargs_for(lab, "good-rsa")
    own = lab.endpoints["good-rsa"].chain_path
    assert diagnose(target, expect=str(own), **kw).ids() == []
    other = lab.endpoints["good-ecdsa"].chain_path
    d = diagnose(target, expect=str(other), **kw)
    f = finding(d, "served-differs-from-expected")
    assert f.severity.value == "error"
    assert "not reloaded" in f.detail and "load balancer" in f.detail


def test_offline_file_check_matches_live(lab):
    for name in ("wrong-order", "duplicate-cert", "incomplete-no-aia", "good-ecdsa"):
        ep = lab.endpoints[name]
        d = diagnose(files=[str(ep.chain_path)], name=ep.scenario.hostname, ca_files=[str(lab.root_path)])
        assert set(d.ids()) == set(ep.scenario.expected), name
        assert d.reports[0].sources == (str(ep.chain_path),)


def test_cli_json_and_exit_codes(lab, capsys):
    ep = lab.endpoints["expired"]
    argv = [*ep.check_argv(lab.root_path), "--json"]
    assert main(argv) == 1
    out, _ = capsys.readouterr()
    doc = jsonschemas.loads(out)
    assert doc["verdict"] == "invalid" and doc["exit_code"] == 1
    assert [f["id"] for f in doc["findings"]] == ["expired"]
    f = doc["findings"][0]
    assert set(f) >= {"id", "severity", "title", "detail", "fix", "citation", "sources", "certificate", "evidence"}
    assert f["certificate"]["position"] == 0 and len(f["certificate"]["sha256"]) == 64
    chain = doc["chains"][0]
    assert chain["presented"][0]["dns_names"] == ["expired.certdoctor.test"]
    assert {t["store"] for t in chain["trust"]} >= {"mozilla"}
    assert doc["endpoints"][0]["tls_version"].startswith("TLS")
    ep = lab.endpoints["good-rsa"]
    assert main([*ep.check_argv(lab.root_path), "--quiet", "--no-color"]) == 0
    out, _ = capsys.readouterr()
    assert "VALID" in out


def test_cli_usage_errors_exit_2(lab, capsys):
    assert main(["check"]) == 2
    assert main(["check", "host:99999"]) == 2
    assert main(["check", "a.test:443", "--resolve", "b.test:443:127.0.0.1"]) == 2
    _, err = capsys.readouterr()
    assert "does not match" in err and "Traceback" not in err


def test_connection_refused_is_a_clean_error(capsys):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert main(["check", f"refused.test:{port}", "--resolve", f"refused.test:{port}:127.0.0.1"]) == 3
    _, err = capsys.readouterr()
    assert "refused" in err and "Traceback" not in err


def test_rules_lists_every_required_id(capsys):
    assert main(["rules", "--json"]) == 0
    ids = {r["id"] for r in jsonschemas.loads(capsys.readouterr().out)["rules"]}
    required = {
        "expired",
        "not-yet-valid",
        "expiring-soon",
        "hostname-mismatch",
        "self-signed",
        "untrusted-root",
        "missing-intermediate",
        "wrong-order",
        "extra-cert",
        "duplicate-cert",
        "contains-root",
        "intermediate-expired",
        "issuer-not-ca",
        "missing-server-auth-eku",
        "weak-signature",
        "weak-key",
        "validity-too-long",
        "endpoints-differ",
        "served-differs-from-expected",
        "no-certificate",
        "handshake-failed",
    }
    assert required <= ids
    assert main(["rules", "missing-intermediate"]) == 0
    assert "RFC" in capsys.readouterr().out
