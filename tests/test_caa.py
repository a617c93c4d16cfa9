"""CAA (RFC 8659) against real authoritative DNS servers on loopback: NSD (Debian's nsd, run from a temporary
directory as `nsd -d -c FILE`), serving the `test.` zone with records on the lab's names, and the lab's real TLS
servers. Never the Internet.

Two servers, because the lab's names are all children of certdoctor.test: PER_NAME has CAA records on single
names (and none at certdoctor.test), PARENT only at certdoctor.test, so that every lab name there finds its
relevant record set by climbing the tree (RFC 8659 §3). The lab's CA ("certdoctor Lab") is in no table of known
CAs: the tests make it known with ``--caa-issuer "certdoctor Lab=lab.certdoctor.test"``, the option a user has
for a private CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jsonschemas
from certdoctor.checks.caa import issuer_domains
from certdoctor.cli import main
from certdoctor.collect.caa import CaaLookup, CaaRecord, collect_caa, parse_server
from certdoctor.errors import InputError
from certdoctor.lab import Lab
from netutil import free_port, wait_for_port

NSD = shutil.which("nsd") or shutil.which("/usr/sbin/nsd")
LAB_CA = "certdoctor Lab=lab.certdoctor.test"

# Records on the lab's names. expired.certdoctor.test is a zone of its own whose file does not exist: NSD answers
# SERVFAIL for it (a real server failure, not a simulation).
PER_NAME = """
good-rsa.certdoctor      CAA 0 issue "letsencrypt.org"
good-rsa.certdoctor      CAA 0 iodef "mailto:security@certdoctor.test"
good-ecdsa.certdoctor    CNAME caa-target.certdoctor
caa-target.certdoctor    CAA 0 issue "lab.certdoctor.test; validationmethods=dns-01"
wildcard.certdoctor      CAA 0 issue "lab.certdoctor.test"
wildcard.certdoctor      CAA 0 issuewild "letsencrypt.org"
wrong-order.certdoctor   CAA 128 tbs "unknown"
wrong-order.certdoctor   CAA 0 issue "lab.certdoctor.test"
"""
PARENT = """
certdoctor               CAA 0 issue "lab.certdoctor.test"
certdoctor               CAA 0 iodef "mailto:security@certdoctor.test"
"""


def _zone(records: str) -> str:
    return (
        "$ORIGIN test.\n$TTL 60\n@ SOA ns.certdoctor hostmaster.certdoctor 1 3600 600 86400 60\n@ NS ns.certdoctor\n"
        "ns.certdoctor A 127.0.0.1\n" + records
    )


def _conf(tmp: Path, port: int, extra_zones: str = "") -> str:
    return f"""server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{tmp}"
    pidfile: "{tmp}/nsd.pid"
    xfrdfile: "{tmp}/xfrd.state"
    zonelistfile: "{tmp}/zone.list"
    database: ""
    logfile: "{tmp}/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: "test"
    zonefile: "test.zone"
{extra_zones}"""


@contextlib.contextmanager
def nsd(tmp: Path, records: str, extra_zones: str = "") -> Iterator[str]:
    """An NSD serving ``test.`` with ``records``, on a free loopback port; yields "127.0.0.1:PORT"."""
    if NSD is None:
        pytest.skip("nsd is not installed (.ci/run installs Debian's nsd)")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "test.zone").write_text(_zone(records), encoding="utf-8")
    for _attempt in range(3):  # a port taken between free_port() and nsd's bind: try another
        port = free_port()
        (tmp / "nsd.conf").write_text(_conf(tmp, port, extra_zones), encoding="utf-8")
        argv = [NSD, "-d", "-c", str(tmp / "nsd.conf")]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port)
        except Exception:
            proc.kill()
            proc.wait()
            continue
        try:
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return
    raise RuntimeError(f"nsd did not start: {(tmp / 'nsd.log').read_text(errors='replace')}")


@pytest.fixture(scope="module")
def per_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    broken = 'zone:\n    name: "expired.certdoctor.test"\n    zonefile: "does-not-exist.zone"\n'
    with nsd(tmp_path_factory.mktemp("nsd-per-name"), PER_NAME, broken) as server:
        yield server


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nsd(tmp_path_factory.mktemp("nsd-parent"), PARENT) as server:
        yield server


@pytest.fixture
def silent() -> Iterator[str]:
    """A UDP and TCP port that accepts nothing and never answers: every query times out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{udp.getsockname()[1]}"


def check_json(capsys: pytest.CaptureFixture[str], lab: Lab, scenario: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main([*lab.endpoints[scenario].check_argv(lab.root_path), "--json", "--no-clients", *extra])
    return code, jsonschemas.loads(capsys.readouterr().out)


def check_text(capsys: pytest.CaptureFixture[str], lab: Lab, scenario: str, *extra: str) -> tuple[int, str]:
    code = main([*lab.endpoints[scenario].check_argv(lab.root_path), "--no-clients", *extra])
    return code, capsys.readouterr().out


def by_id(doc: dict[str, Any], fid: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"] == fid]


# --- pieces ------------------------------------------------------------------------------------------------------


def test_parse_server() -> None:
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("::1") == ("::1", 53)
    for bad in ("dns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1]x"):
        with pytest.raises(InputError):
            parse_server(bad)


def test_wildcard_uses_issuewild_else_issue() -> None:
    issue, wild = CaaRecord(0, "issue", "a.example; x=y"), CaaRecord(0, "issuewild", "b.example")
    both = CaaLookup("*.d.example", "d.example", True, records=(issue, wild))
    assert both.properties() == (wild,) and issue.issuer_domain == "a.example"
    assert CaaLookup("*.d.example", "d.example", True, records=(issue,)).properties() == (issue,)
    assert CaaLookup("d.example", "d.example", False, records=(issue, wild)).properties() == (issue,)
    assert CaaRecord(0, "issue", ";").issuer_domain == ""


def test_known_issuer_table() -> None:
    assert issuer_domains("Let's Encrypt") == ("let's encrypt", ("letsencrypt.org",))
    assert issuer_domains("Google Trust Services LLC")[1] == ("pki.goog",)  # type: ignore[index]
    assert issuer_domains("certdoctor Lab") is None
    assert issuer_domains("certdoctor lab", [("certdoctor Lab", ("lab.certdoctor.test",))]) == (
        "certdoctor Lab",
        ("lab.certdoctor.test",),
    )


# --- collection (RFC 8659 §3) ------------------------------------------------------------------------------------


def test_relevant_sets(per_name: str, parent: str) -> None:
    names = [
        "good-rsa.certdoctor.test",
        "good-ecdsa.certdoctor.test",
        "*.wildcard.certdoctor.test",
        "expired.certdoctor.test",
        "nothing.certdoctor.test",
    ]
    got = {lu.name: lu for lu in asyncio.run(collect_caa(names, server=per_name)).lookups}
    rsa = got["good-rsa.certdoctor.test"]
    assert rsa.relevant == "good-rsa.certdoctor.test" and [r.tag for r in rsa.records] == ["issue", "iodef"]
    cname = got["good-ecdsa.certdoctor.test"]  # a CNAME: the target's set, found at the name itself
    assert (cname.relevant, cname.alias) == ("good-ecdsa.certdoctor.test", "caa-target.certdoctor.test")
    assert cname.records[0].issuer_domain == "lab.certdoctor.test"
    wild = got["*.wildcard.certdoctor.test"]
    assert (wild.domain, wild.wildcard, wild.relevant) == ("wildcard.certdoctor.test", True, "wildcard.certdoctor.test")
    assert [r.value for r in wild.properties()] == ["letsencrypt.org"]
    failed = got["expired.certdoctor.test"]
    assert (failed.error_kind, failed.records, failed.relevant) == ("servfail", (), None)
    none = got["nothing.certdoctor.test"]  # no such name, no CAA above it: climbs to (not including) the root
    assert none.queried == ("nothing.certdoctor.test", "certdoctor.test", "test")
    assert (none.relevant, none.records, none.error) == (None, (), None)
    climbed = asyncio.run(collect_caa(["good-rsa.certdoctor.test"], server=parent)).lookups[0]
    assert climbed.queried == ("good-rsa.certdoctor.test", "certdoctor.test")
    assert climbed.relevant == "certdoctor.test" and climbed.records[0].value == "lab.certdoctor.test"


def test_timeout_is_a_failure_within_budget(silent: str) -> None:
    ev = asyncio.run(collect_caa(["a.certdoctor.test", "b.certdoctor.test"], server=silent, timeout=1.0))
    assert [lu.error_kind for lu in ev.lookups] == ["timeout", "timeout"]
    assert ev.elapsed < 10  # bounded by the budget, not by the number of names and retries


def test_internal_names_not_asked_of_the_system_resolver() -> None:
    ev = asyncio.run(collect_caa(["good-rsa.certdoctor.test", "localhost"], timeout=1.0))
    assert ev.resolver == "system resolver" and all(lu.skipped for lu in ev.lookups)


# --- judgement through `check` -----------------------------------------------------------------------------------


def test_unknown_issuer_not_compared(capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str) -> None:
    code, doc = check_json(capsys, lab, "good-rsa", "--dns-server", per_name)
    assert code == 0 and doc["verdict"] == "valid" and not [f for f in doc["findings"] if f["id"].startswith("caa")]
    lookup = doc["caa"]["lookups"][0]
    assert doc["caa"]["resolver"] == per_name and lookup["relevant"] == "good-rsa.certdoctor.test"
    assert {"flags": 0, "tag": "iodef", "value": "mailto:security@certdoctor.test", "critical": False} in lookup[
        "records"
    ]
    code, text = check_text(capsys, lab, "good-rsa", "--dns-server", per_name)
    assert "issuer certdoctor Lab: CAA domain unknown, not compared" in text
    assert '0 iodef "mailto:security@certdoctor.test"' in text


def test_issuer_not_authorized_is_info(capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str) -> None:
    code, doc = check_json(capsys, lab, "good-rsa", "--dns-server", per_name, "--caa-issuer", LAB_CA)
    (f,) = by_id(doc, "caa-issuer-not-authorized")
    assert f["severity"] == "info" and code == 0 and doc["verdict"] == "valid" and doc["rejected_by"] == []
    assert f["evidence"]["authorized"] == ["letsencrypt.org"] and f["evidence"]["issuer_domains"] == [
        "lab.certdoctor.test"
    ]
    assert "no client looks CAA up" in f["detail"] and doc["caa"]["issuers"] == [
        {"organization": "certdoctor Lab", "domains": ["lab.certdoctor.test"]}
    ]


def test_issuewild_and_cname(capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str) -> None:
    _, doc = check_json(capsys, lab, "wildcard", "--dns-server", per_name, "--caa-issuer", LAB_CA)
    (f,) = by_id(doc, "caa-issuer-not-authorized")  # issue names the lab, but issuewild decides for *.wildcard
    assert (f["evidence"]["tag"], f["evidence"]["name"]) == ("issuewild", "*.wildcard.certdoctor.test")
    _, doc = check_json(capsys, lab, "good-ecdsa", "--dns-server", per_name, "--caa-issuer", LAB_CA)
    assert not by_id(doc, "caa-issuer-not-authorized")  # authorised through the alias
    assert doc["caa"]["lookups"][0]["alias"] == "caa-target.certdoctor.test"


def test_climbing_authorizes(capsys: pytest.CaptureFixture[str], lab: Lab, parent: str) -> None:
    _, doc = check_json(capsys, lab, "good-rsa", "--dns-server", parent, "--caa-issuer", LAB_CA)
    assert not by_id(doc, "caa-issuer-not-authorized") and doc["caa"]["lookups"][0]["relevant"] == "certdoctor.test"


def test_lookup_failures(capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str, silent: str) -> None:
    code, doc = check_json(capsys, lab, "expired", "--dns-server", per_name)
    (f,) = by_id(doc, "caa-lookup-failed")
    assert f["severity"] == "info" and f["evidence"]["error_kind"] == "servfail"
    code, doc = check_json(capsys, lab, "good-rsa", "--dns-server", silent, "--caa-timeout", "1")
    (f,) = by_id(doc, "caa-lookup-failed")
    assert f["evidence"]["error_kind"] == "timeout" and code == 0 and doc["verdict"] == "valid"


def test_critical_unknown_tag(capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str) -> None:
    _, doc = check_json(capsys, lab, "wrong-order", "--dns-server", per_name, "--caa-issuer", LAB_CA)
    (f,) = by_id(doc, "caa-critical-unknown")
    assert f["severity"] == "info" and f["evidence"]["records"][0]["tag"] == "tbs"
    assert not by_id(doc, "caa-issuer-not-authorized")


def test_no_caa_and_defaults(capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str) -> None:
    _, doc = check_json(capsys, lab, "good-rsa", "--dns-server", per_name, "--no-caa")
    assert doc["caa"] is None
    _, doc = check_json(capsys, lab, "good-rsa")  # on by default; the lab's .test names are not asked of the system
    assert doc["caa"]["resolver"] == "system resolver" and doc["caa"]["lookups"][0]["skipped"]
    _, text = check_text(capsys, lab, "good-two-level", "--dns-server", per_name)
    assert "no CAA records: any CA may issue" in text
    chain = str(lab.endpoints["good-rsa"].chain_path)
    main(["check", "--file", chain, "--ca-file", str(lab.root_path), "--json"])
    assert jsonschemas.loads(capsys.readouterr().out)["caa"] is None  # files: only with --caa


# --- policy: caa_required ----------------------------------------------------------------------------------------


def test_policy_caa_required(
    capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str, parent: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("# CAA\ncaa_required = true\n", encoding="utf-8")
    assert main(["policy", "check", str(policy)]) == 0
    capsys.readouterr()
    code, doc = check_json(capsys, lab, "good-two-level", "--dns-server", per_name, "--policy", str(policy))
    (f,) = by_id(doc, "policy-caa-missing")
    assert code == 1 and f["severity"] == "error" and f["evidence"]["location"].endswith("policy.toml:2")
    assert f["evidence"]["names"] == ["good-two-level.certdoctor.test"]
    for scenario, server in (("good-rsa", per_name), ("good-two-level", parent)):  # on the name; inherited
        code, doc = check_json(capsys, lab, scenario, "--dns-server", server, "--policy", str(policy))
        assert not by_id(doc, "policy-caa-missing") and code == 0
    # the policy looks CAA up even where it is off by default (a chain file, with a resolver to ask)
    chain = str(lab.endpoints["good-two-level"].chain_path)
    argv = ["check", "--file", chain, "--ca-file", str(lab.root_path), "--json", "--no-clients"]
    main([*argv, "--dns-server", per_name, "--policy", str(policy)])
    assert by_id(jsonschemas.loads(capsys.readouterr().out), "policy-caa-missing")


def test_a_real_client_accepts_what_caa_disallows(lab: Lab) -> None:
    """curl connects to the lab server whose CAA records (test_issuer_not_authorized) do not name its CA: no
    client consults CAA."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(lab.endpoints["good-rsa"].curl_argv(lab.root_path), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_scan_looks_caa_up_only_when_asked(
    capsys: pytest.CaptureFixture[str], lab: Lab, per_name: str, tmp_path: Path
) -> None:
    ep = lab.endpoints["good-rsa"]
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{ep.hostname}:{ep.port},addr={ep.addresses[0]}\n", encoding="utf-8")
    argv = ["scan", str(targets), "--ca-file", str(lab.root_path), "--no-revocation", "-q", "--dns-server", per_name]
    for extra, expected in (((), False), (("--caa", "--caa-issuer", LAB_CA), True)):
        main([*argv, *extra])
        (record,) = map(jsonschemas.loads, capsys.readouterr().out.splitlines())
        ids = [f["id"] if isinstance(f, dict) else f for f in record["findings"]]
        assert ("caa-issuer-not-authorized" in ids) is expected
