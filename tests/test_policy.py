"""Certificate policy as code (``--policy``, ``certdoctor policy``): each rule passes on one lab scenario and fails
on another (real handshakes with the session's lab), the presets, ``policy check`` on broken files, label
sections, and the findings in check, scan records, fix and watch observations and alerts."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import jsonschemas
from certdoctor.checks import REGISTRY, load_all
from certdoctor.cli import main
from certdoctor.lab import Lab
from certdoctor.policy import RULES, finding_ids, load_policy, parse_policy, preset_text
from certdoctor.watch import Store
from pki_builder import leaf, root
from test_watch import spec as watch_spec
from test_watch_serve import start, wait_for  # noqa: F401 (fixture)


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def check(lab: Lab, capsys: pytest.CaptureFixture[str], scenario: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main([*lab.endpoints[scenario].check_argv(lab.root_path), "--no-revocation", "--json", *extra])
    return code, jsonschemas.loads(capsys.readouterr().out)


def policy_findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"].startswith("policy-")]


def lab_ca(lab: Lab, scenario: str) -> x509.Certificate:
    """The intermediate the scenario's server sends after its leaf."""
    return x509.load_pem_x509_certificates(lab.endpoints[scenario].chain_path.read_bytes())[1]


# --- each rule: a passing and a failing lab scenario ----------------------------------------------------------------

# (the rule's line, a scenario it passes, a scenario it fails, the finding, the value seen on the failing one)
RULE_CASES = [
    ('issuers = ["certdoctor Lab RSA CA"]', "good-rsa", "good-ecdsa", "policy-issuer-not-allowed", None),
    ('key_types = ["rsa"]', "good-rsa", "good-ecdsa", "policy-key-type-not-allowed", "ecdsa"),
    ("rsa_min_bits = 2048", "good-rsa", "rsa-1024", "policy-key-too-small", 1024),
    ('ec_curves = ["P-256"]', "good-ecdsa", "ed25519", None, None),  # Ed25519 is no EC curve: nothing to say
    ('ec_curves = ["P-384"]', "good-rsa", "good-ecdsa", "policy-ec-curve-not-allowed", "secp256r1"),
    (
        'signature_algorithms = ["sha256WithRSAEncryption", "ecdsa-with-SHA256"]',
        "good-rsa",
        "sha1",
        "policy-signature-algorithm-not-allowed",
        "sha1WithRSAEncryption",
    ),
    ("max_validity_days = 398", "good-rsa", "long-validity", "policy-validity-too-long", 825.000012),
    ("days_left_warning = 30", "good-rsa", "expiring-soon", "policy-expiring-soon", 10.0),
    ("san_required = true", "good-rsa", "cn-only", "policy-san-missing", None),
    ("wildcards_allowed = false", "good-rsa", "wildcard", "policy-san-wildcard", ["*.wildcard.certdoctor.test"]),
    ('san_domains = ["good-rsa.certdoctor.test"]', "good-rsa", "good-ecdsa", "policy-san-outside-domains", None),
    ('san_forbidden = ["sha1.*"]', "good-rsa", "sha1", "policy-san-forbidden", ["sha1.certdoctor.test"]),
    ('san_must_include = ["good-rsa.*"]', "good-rsa", "good-ecdsa", "policy-san-required-missing", None),
    ('eku_required = ["serverAuth"]', "good-rsa", "client-auth-eku", "policy-eku-missing", ["clientAuth"]),
    ("ocsp_stapling_required = true", "good-stapled", "good-rsa", "policy-ocsp-staple-missing", False),
    ("must_staple_required = true", "must-staple", "good-rsa", "policy-must-staple-missing", False),
    ("revocation_info_required = true", "good-stapled", "good-rsa", "policy-revocation-info-missing", False),
    ("min_sct_count = 2", "ct-ok", "ct-too-few", "policy-sct-count", 1),
]


@pytest.mark.parametrize(("rule", "passes", "fails", "finding", "seen"), RULE_CASES)
def test_each_rule_passes_and_fails_on_lab_scenarios(
    lab: Lab,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rule: str,
    passes: str,
    fails: str,
    finding: str | None,
    seen: Any,
) -> None:
    policy = write(tmp_path, f"# one rule\n{rule}\n")
    _, doc = check(lab, capsys, passes, "--policy", str(policy), "--no-clients")
    assert policy_findings(doc) == []
    _, doc = check(lab, capsys, fails, "--policy", str(policy), "--no-clients")
    got = policy_findings(doc)
    if finding is None:
        assert got == []
        return
    assert {f["id"] for f in got} == {finding}
    f = got[0]
    key = rule.split(" =")[0]
    assert f["evidence"]["rule"] == key and f["evidence"]["location"] == f"{policy}:2"
    assert f"{policy}:2" in f["detail"] and f["severity"] == RULES[key].severity.value
    if seen is not None:
        assert f["evidence"]["seen"] == seen
    assert f["evidence"]["required"] is not None


def test_issuers_by_fingerprint_and_spki(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = lab_ca(lab, "good-rsa")
    fp = ca.fingerprint(hashes()).hex()
    spki = hashlib.sha256(
        ca.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).hexdigest()
    colons = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    for entry in (f"sha256:{colons}", f"spki:{spki}"):
        policy = write(tmp_path, f'issuers = ["{entry}"]\n')
        assert policy_findings(check(lab, capsys, "good-rsa", "--policy", str(policy), "--no-clients")[1]) == []
        got = policy_findings(check(lab, capsys, "good-ecdsa", "--policy", str(policy), "--no-clients")[1])
        assert [f["id"] for f in got] == ["policy-issuer-not-allowed"]
    # the root a client ends at counts too: a policy pinning the lab root accepts every lab chain
    root_fp = x509.load_pem_x509_certificate(lab.root_path.read_bytes()).fingerprint(hashes()).hex()
    policy = write(tmp_path, f'issuers = ["sha256:{root_fp}"]\n')
    assert policy_findings(check(lab, capsys, "good-ecdsa", "--policy", str(policy), "--no-clients")[1]) == []


def hashes() -> Any:
    from cryptography.hazmat.primitives import hashes as h

    return h.SHA256()


def test_days_left_error_and_warning(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "days_left_warning = 30\ndays_left_error = 15\n")
    code, doc = check(lab, capsys, "expiring-soon", "--policy", str(policy))
    (f,) = policy_findings(doc)
    assert (f["id"], f["severity"], f["evidence"]["rule"], f["evidence"]["required"]) == (
        "policy-expiring-soon",
        "error",
        "days_left_error",
        15,
    )
    assert code == 1 and doc["verdict"] == "invalid"  # a policy error is an error, whatever the clients say


def test_internal_names(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "internal_names_allowed = false\n")
    (f,) = policy_findings(check(lab, capsys, "good-rsa", "--policy", str(policy), "--no-clients")[1])
    assert f["id"] == "policy-san-internal" and f["evidence"]["seen"] == ["good-rsa.certdoctor.test"]
    # every lab name is under .test (RFC 6761): the passing case is a chain file with public names
    ca = root("Policy Unit Root")
    public = leaf("www.example.com", ca, sans=["www.example.com", "api.example.org"])
    chain = tmp_path / "public.pem"
    chain.write_bytes(public.cert.public_bytes(serialization.Encoding.PEM))
    anchor = tmp_path / "root.pem"
    anchor.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    argv = ["check", "--file", str(chain), "--ca-file", str(anchor), "--at", "2026-01-01", "--json", "--no-clients"]
    main([*argv, "--policy", str(policy)])
    assert policy_findings(jsonschemas.loads(capsys.readouterr().out)) == []


def test_severity_override_and_label_sections(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(
        tmp_path,
        """description = "validity by team"
max_validity_days = 900

[labels."team=payments"]
max_validity_days = 398

[labels."team=payments".severity]
max_validity_days = "warning"
""",
    )
    assert policy_findings(check(lab, capsys, "long-validity", "--policy", str(policy))[1]) == []
    _, doc = check(lab, capsys, "long-validity", "--policy", str(policy), "--label", "team=payments")
    (f,) = policy_findings(doc)
    assert (f["id"], f["severity"], f["evidence"]["location"], f["evidence"]["required"]) == (
        "policy-validity-too-long",
        "warning",
        f"{policy}:5",
        398,
    )
    assert f["detail"].endswith(f"(policy {policy}:5: max_validity_days = 398).")
    _, doc = check(lab, capsys, "long-validity", "--policy", str(policy), "--label", "team=other")
    assert policy_findings(doc) == []


def test_policy_from_the_environment(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTDOCTOR_POLICY", str(write(tmp_path, "rsa_min_bits = 4096\n")))
    got = policy_findings(check(lab, capsys, "good-rsa", "--no-clients")[1])
    assert [(f["id"], f["evidence"]["seen"]) for f in got] == [("policy-key-too-small", 2048)] * 2  # leaf and CA
    assert policy_findings(check(lab, capsys, "good-rsa", "--no-clients", "--policy", "")[1]) == []


def test_no_policy_no_policy_findings(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy_findings(check(lab, capsys, "sha1")[1]) == []


# --- presets --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "scenario", "expected"),
    [
        # every lab name is under .test and no lab leaf but the revocation ones carries an OCSP or CRL URL
        ("public-web", "good-rsa", {"policy-san-internal", "policy-revocation-info-missing"}),
        ("public-web", "good-stapled", {"policy-san-internal"}),
        ("public-web", "good-ecdsa", {"policy-san-internal", "policy-revocation-info-missing"}),
        (
            "public-web",
            "sha1",
            {"policy-san-internal", "policy-revocation-info-missing", "policy-signature-algorithm-not-allowed"},
        ),
        ("public-web", "rsa-1024", {"policy-san-internal", "policy-revocation-info-missing", "policy-key-too-small"}),
        (
            "public-web",
            "long-validity",
            {"policy-san-internal", "policy-revocation-info-missing", "policy-validity-too-long"},
        ),
        (
            "public-web",
            "client-auth-eku",
            {"policy-san-internal", "policy-revocation-info-missing", "policy-eku-missing"},
        ),
        ("public-web", "cn-only", {"policy-revocation-info-missing", "policy-san-missing"}),  # no SAN: no name
        (
            "public-web",
            "ed25519",
            {
                "policy-san-internal",
                "policy-revocation-info-missing",
                "policy-key-type-not-allowed",
                "policy-signature-algorithm-not-allowed",
            },
        ),
        ("public-web", "ct-ok", {"policy-san-internal", "policy-revocation-info-missing"}),
        ("internal", "good-rsa", set()),
        ("internal", "ed25519", set()),
        ("internal", "wildcard", set()),
        ("internal", "rsa-1024", {"policy-key-too-small"}),
        ("internal", "sha1", {"policy-signature-algorithm-not-allowed"}),
        ("internal", "expiring-soon", {"policy-expiring-soon"}),
        ("internal", "long-validity", {"policy-validity-too-long"}),  # 825 days and 1 s: BR counts inclusively
    ],
)
def test_presets(lab: Lab, capsys: pytest.CaptureFixture[str], preset: str, scenario: str, expected: set[str]) -> None:
    _, doc = check(lab, capsys, scenario, "--policy", preset, "--no-clients")
    got = policy_findings(doc)
    if preset == "public-web" and scenario != "ct-ok":  # min_sct_count = 2: only the CT scenarios' leaves have SCTs
        expected = expected | {"policy-sct-count"}
    assert {f["id"] for f in got} == expected
    assert all(f["evidence"]["location"].startswith(f"preset:{preset}:") for f in got)


def test_public_web_validity_follows_the_cabf_schedule(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from certdoctor.policy import cabf_max_validity_days

    assert [cabf_max_validity_days(datetime(y, m, d, tzinfo=UTC)) for y, m, d in [
        (2020, 8, 31), (2020, 9, 1), (2026, 3, 14), (2026, 3, 15), (2027, 3, 15), (2029, 3, 15)
    ]] == [825, 398, 398, 200, 100, 47]  # fmt: skip
    _, doc = check(lab, capsys, "long-validity", "--policy", "public-web", "--no-clients")
    (f,) = [f for f in policy_findings(doc) if f["id"] == "policy-validity-too-long"]
    assert f["evidence"]["required"] == 200  # the lab issues now: SC-081's 200 days (from 2026-03-15)
    assert "CA/B Forum limit" in f["detail"]


def test_policy_show_prints_presets_that_load(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "show", "public-web"]) == 0
    out = capsys.readouterr().out
    assert out == preset_text("public-web") and 'max_validity_days = "cabf-br"' in out
    assert main(["policy", "show"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["public-web", "internal"]
    assert main(["policy", "show", "nope"]) == 2
    for name in ("public-web", "internal"):
        assert load_policy(name).name == f"preset:{name}"


# --- policy check ---------------------------------------------------------------------------------------------------


def test_policy_check_reports_typos_with_line_and_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(
        tmp_path,
        """# our policy
max_valdity_days = 90
key_types = ["rsa", "ecsda"]
min_sct_count = 200

[severity]
rsa_min_bits = "fatal"

[labels."team=payments"]
wildcards_allowed = "no"
san_forbidden = ["bad pattern"]

[labels."oops"]
rsa_min_bits = 2048
""",
    )
    assert main(["policy", "check", str(policy)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{policy}:2: max_valdity_days: unknown key (did you mean 'max_validity_days'?)"
    assert lines[1] == f"{policy}:3: key_types: unknown key type 'ecsda' (did you mean 'ecdsa'?)"
    assert lines[2] == f"{policy}:4: min_sct_count: expected 0 to 100 SCTs, got 200"
    assert lines[3].startswith(f"{policy}:7: severity.rsa_min_bits: expected one of error, warning, info")
    assert (
        lines[4]
        == f"{policy}:10: labels.\"team=payments\".wildcards_allowed: expected true or false, got a string ('no')"
    )
    assert lines[5].startswith(
        f"{policy}:11: labels.\"team=payments\".san_forbidden: 'bad pattern' is not a SAN pattern"
    )
    assert lines[6].startswith(f"{policy}:13: labels.oops: expected labels as key=value")
    assert lines[7] == f"{policy}: 7 problem(s); the policy would not be applied"
    assert main(["policy", "check", str(policy), "--json"]) == 1
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert doc["kind"] == "policy-check" and doc["valid"] is False and doc["policy"] is None
    assert doc["problems"][0] == {
        "line": 2,
        "key": "max_valdity_days",
        "message": "unknown key",
        "suggestion": "max_validity_days",
    }
    # a policy with a problem is never applied: check refuses it (exit 2) rather than drop the rule
    assert main(["check", "--file", str(policy), "--policy", str(policy)]) == 2
    assert "max_valdity_days: unknown key" in capsys.readouterr().err


def test_policy_check_accepts_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]  # the README's complete example
    policy = write(tmp_path, example)
    assert main(["policy", "check", str(policy)]) == 0
    assert capsys.readouterr().out.startswith(f"{policy}: valid, ")
    assert main(["policy", "check", str(policy), "--json"]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["exit_code"] == 0 and doc["problems"] == []
    keys = {k for s in doc["policy"]["sections"] for k in s["rules"]}
    assert keys == set(RULES)  # the example sets every rule
    assert main(["policy", "check", "public-web"]) == 0
    capsys.readouterr()


def test_policy_check_refuses_what_it_cannot_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "[[labels]]\nx = 1\n": (1, "arrays of tables"),
        'severity = { rsa_min_bits = "warning" }\n': (1, "inline table"),
        'description = """two\nlines"""\n': (1, "multi-line string"),
        "rsa_min_bits = 2048\nrsa_min_bits = 4096\n": (2, "not valid TOML"),
        "key_types = [\n  'rsa',\n": (0, "not valid TOML"),
    }
    for text, (line, message) in cases.items():
        _, problems = parse_policy(text, "p.toml")
        assert problems and problems[0].line == line and message in problems[0].message, (text, problems)
    assert main(["policy", "check", str(tmp_path / "missing.toml")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_dotted_keys_and_multiline_arrays_get_their_lines() -> None:
    policy, problems = parse_policy(
        'ec_curves = [\n  "P-256",  # comment ] [\n  "P-384",\n]\n'
        'severity.ec_curves = "warning"\nrsa_min_bits = 3072\n',
        "p.toml",
    )
    assert problems == [] and policy is not None
    rules = policy.rules_for({})
    assert (rules["ec_curves"].line, rules["rsa_min_bits"].line) == (1, 6)
    assert policy.top.severities["ec_curves"][1] == 5


# --- everywhere findings go: registry, scan records, fix, watch -----------------------------------------------------


def test_every_policy_finding_is_a_registered_target_check() -> None:
    load_all()
    ids = {c.id for c in REGISTRY.values() if c.id.startswith("policy-")}
    assert ids == set(finding_ids()) and all(REGISTRY[i].scope == "target" for i in ids)
    covered = {case[3] for case in RULE_CASES if case[3]} | {"policy-san-internal"}  # test_internal_names
    covered |= {"policy-caa-missing"}  # tests/test_caa.py (a DNS server on loopback): test_policy_caa_required
    assert covered == ids  # each finding has its passing and failing lab case above


def test_scan_records_carry_policy_findings_by_label(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(tmp_path, 'max_validity_days = 900\n[labels."team=payments"]\nmax_validity_days = 90\n')
    ep = lab.endpoints["long-validity"]
    line = f"{ep.hostname}:{ep.port},addr={ep.addresses[0]}"
    src = write(tmp_path, f"{line}\n{line},label=team=payments\n{line},label=oops\n", "targets.txt")
    code = main(["scan", str(src), "--ca-file", str(lab.root_path), "--no-revocation", "-q", "--policy", str(policy)])
    records = {r["line"]: r for r in map(jsonschemas.loads, capsys.readouterr().out.splitlines())}
    assert code == 1 and records[3]["verdict"] == "bad-input" and "label=" in json.dumps(records[3])
    assert "policy-validity-too-long" not in json.dumps(records[1])
    ids = [f["id"] if isinstance(f, dict) else f for f in records[2]["findings"]]
    assert "policy-validity-too-long" in ids


def test_fix_applies_the_policy_to_the_chain_it_writes(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = str(lab.endpoints["long-validity"].chain_path)
    out = tmp_path / "out"
    argv = ["fix", chain, "-d", str(out), "--ca-file", str(lab.root_path), "--no-aia", "--json"]
    assert main([*argv, "--policy", write(tmp_path, "max_validity_days = 398\n").as_posix()]) == 1
    doc = jsonschemas.loads(capsys.readouterr().out)
    ids = [f["id"] for f in doc["verification"]["findings"]]
    assert "policy-validity-too-long" in ids and (out / "fullchain.pem").exists()
    assert main([*argv, "--force", "--policy", write(tmp_path, "max_validity_days = 900\n", "ok.toml").as_posix()]) == 0
    capsys.readouterr()


def test_watch_stores_policy_findings_and_alerts_on_them(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'watch.db'}"]
    # good-rsa's leaf is valid 90 days (and 1 s, counted inclusively); long-validity's 825
    policy = write(tmp_path, 'rsa_min_bits = 2048\n[labels."team=payments"]\nmax_validity_days = 100\n')
    ep = lab.endpoints["long-validity"]
    spec = f"{ep.hostname}:{ep.port},addr={ep.addresses[0]}"
    good = lab.endpoints["good-rsa"]
    other = f"{good.hostname}:{good.port},addr={good.addresses[0]}"
    assert main(["watch", "add", spec, "--label", "team=payments", *db]) == 0
    assert main(["watch", "add", other, "--label", "team=payments", *db]) == 0
    capsys.readouterr()
    run = ["watch", "run", *db, "--ca-file", str(lab.root_path), "--no-revocation", "--policy", str(policy), "--json"]
    assert main(run) == 1
    assert jsonschemas.loads(capsys.readouterr().out)["verdicts"] == {"invalid": 1, "valid": 1}
    assert main(["watch", "history", spec, *db, "--json"]) == 0
    history = jsonschemas.loads(capsys.readouterr().out)
    assert "policy-validity-too-long" in json.dumps(history["observations"][0])
    assert main(["watch", "alerts", *db, "--json"]) == 0
    alerts = jsonschemas.loads(capsys.readouterr().out)["alerts"]
    assert {a["status"] for a in alerts} == {"open"}
    assert [(a["condition"], a["target"]["target"] if isinstance(a["target"], dict) else a["target"]) for a in alerts
            if a["condition"].startswith("finding:policy")] == [("finding:policy-validity-too-long", spec)]  # fmt: skip


def test_the_dashboard_shows_policy_findings(lab: Lab, tmp_path: Path, start: Any) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    target = watch_spec(lab, "long-validity")
    with Store(db) as store:
        store.add([target], labels={"team": "payments"})
    policy = write(tmp_path, '[labels."team=payments"]\nmax_validity_days = 398\n')
    served = start(db, "--policy", str(policy), "--no-revocation")

    def checked() -> dict[str, Any] | None:
        rows = served.get("/api/targets")[1]["targets"]
        return rows[0] if rows and rows[0]["verdict"] else None

    row = wait_for("the target checked", checked, served.proc)
    assert row["verdict"] == "invalid"
    status, html, _ = served.get(f"/targets/{row['id']}")
    assert status == 200 and '<li data-finding="policy-validity-too-long"' in html
    assert f"{policy}:2" in html


def test_a_fifo_as_policy_is_refused_without_waiting_for_a_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "policy.toml"
    os.mkfifo(fifo)
    assert main(["policy", "check", str(fifo)]) == 2
    assert f"policy {fifo}: not a regular file" in capsys.readouterr().err
    assert main(["check", "127.0.0.1:1", "--policy", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err
