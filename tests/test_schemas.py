"""One JSON vocabulary: every --json document and scan record follows the schema its "kind" names
(schemas/<kind>.schema.json), and starts with "certdoctor": 1 and "kind". Real output, against the lab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import jsonschemas
from certdoctor.cli import main
from certdoctor.lab import Lab
from certdoctor.lab import foreground as lab_foreground
from netutil import free_port


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    out = capsys.readouterr().out
    doc = jsonschemas.loads(out)
    assert list(doc)[:2] == ["certdoctor", "kind"] and doc["certdoctor"] == 1
    return code, doc


def addr_line(lab: Lab, name: str) -> str:
    ep = lab.endpoints[name]
    return f"{ep.hostname}:{ep.port},addr={ep.addresses[0]}"


def test_every_kind_has_a_valid_schema() -> None:
    names = {p.name.removesuffix(".schema.json") for p in jsonschemas.SCHEMAS.glob("*.schema.json")}
    assert names == {*jsonschemas.KINDS, "common", "watch-common"}
    for kind in jsonschemas.KINDS:
        schema = json.loads((jsonschemas.SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["kind"] == {"const": kind} and {"certdoctor", "kind"} <= set(schema["required"])
        jsonschemas.validator(kind)  # checks the schema itself


@pytest.mark.parametrize(
    ("scenario", "verdict", "code"),
    [("good-rsa", "valid", 0), ("expired", "invalid", 1), ("revoked-ocsp", "invalid", 1)],
)
def test_check(lab: Lab, capsys: pytest.CaptureFixture[str], scenario: str, verdict: str, code: int) -> None:
    got, doc = run_json(capsys, [*lab.endpoints[scenario].check_argv(lab.root_path), "--json"])
    assert (got, doc["kind"], doc["verdict"], doc["exit_code"]) == (code, "check", verdict, code)


def test_check_unreachable_and_file(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:

    port = free_port()
    code, doc = run_json(
        capsys, ["check", f"refused.test:{port}", "--resolve", f"refused.test:{port}:127.0.0.1", "--json"]
    )
    assert (code, doc["verdict"], doc["exit_code"]) == (3, "unreachable", 3)
    chain = str(lab.endpoints["wrong-order"].chain_path)
    code, doc = run_json(capsys, ["check", "--file", chain, "--ca-file", str(lab.root_path), "--json"])
    assert doc["kind"] == "check" and doc["target"]["files"] == [chain] and doc["target"]["name"] is None


def test_scan_records(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:

    lines = [
        addr_line(lab, "good-rsa"),
        addr_line(lab, "expired"),
        f"refused.test:{free_port()},addr=127.0.0.1",
        "exa mple.com",
        addr_line(lab, "good-rsa"),  # the same evidence again: a spliced record
    ]
    src = tmp_path / "t.txt"
    src.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    for extra in ([], ["--clients"], ["--full"], ["--full", "--clients"]):
        main(["scan", str(src), "--ca-file", str(lab.root_path), "-q", *extra])
        out = capsys.readouterr().out
        records = {r["line"]: r for r in map(jsonschemas.loads, out.splitlines())}
        assert all(x.startswith('{"certdoctor":1,"kind":"scan-record","line":') for x in out.splitlines())
        assert [records[n]["verdict"] for n in range(1, 6)] == ["valid", "invalid", "unreachable", "bad-input", "valid"]
        assert records[3]["exit_code"] == 3
        if "--clients" in extra:
            assert records[1]["clients"]
        if "--full" in extra:
            assert records[1]["checked"]["port"] == lab.endpoints["good-rsa"].port and records[1]["chains"]


def test_scan_unresolvable_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.txt"
    src.write_text("no-such-host.invalid\n", encoding="utf-8")
    main(["scan", str(src), "-q", "--timeout", "2"])
    (record,) = map(jsonschemas.loads, capsys.readouterr().out.splitlines())
    assert record["verdict"] == "unreachable" and record["error_kind"] and record["exit_code"] == 3


def test_fix(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain = str(lab.endpoints["wrong-order"].chain_path)
    code, doc = run_json(capsys, ["fix", chain, "-d", str(tmp_path / "out"), "--ca-file", str(lab.root_path), "--json"])
    assert code == 0 and doc["kind"] == "fix" and doc["verification"]["kind"] == "check"


def test_inspect_file_and_server(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ep = lab.endpoints["extra-cert"]
    code, doc = run_json(capsys, ["inspect", str(ep.chain_path), "--ca-file", str(lab.root_path), "--json"])
    assert code == 0 and doc["kind"] == "inspect" and doc["certificates"][0]["ocsp_urls"] == []
    target = f"{ep.hostname}:{ep.port}"
    code, doc = run_json(capsys, ["inspect", target, "--resolve", f"{target}:{ep.addresses[0]}", "--json"])
    assert code == 0 and doc["certificates"][0]["role"] == "leaf"


def test_rules_stores_clients(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, ["rules", "--json"])[1]["kind"] == "rules"
    assert run_json(capsys, ["rules", "missing-intermediate", "--json"])[1]["id"] == "missing-intermediate"
    assert run_json(capsys, ["stores", "--json"])[1]["kind"] == "stores"
    clients = run_json(capsys, ["clients", "--json"])[1]["clients"]
    assert {c["client"] for c in clients} >= {"curl", "go", "chrome"}
    assert run_json(capsys, ["clients", "go", "--json"])[1]["clients"][0]["sha1_signatures"] == "reject"


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, ["explain", "--json", "PKIX path building failed"])[1]["recognised"] is True
    code, doc = run_json(capsys, ["explain", "--json", "nothing to see here"])
    assert code == 1 and doc["recognised"] is False and doc["matches"] == []


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, ["demo", "--scenario", "good-rsa", "--json"])
    assert code == 0 and [s["name"] for s in doc["scenarios"]] == ["good-rsa"]


def test_lab_listing(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab_foreground._print_json_listing(lab)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    doc = jsonschemas.loads(out)
    assert {s["name"] for s in doc["scenarios"]} == set(lab.endpoints)
    assert doc["scenarios"][0]["check_argv"][0] == "certdoctor"


def test_a_document_that_breaks_its_schema_is_caught(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = run_json(capsys, [*lab.endpoints["expired"].check_argv(lab.root_path), "--json"])
    for key, value in [("verdict", "ok"), ("certdoctor", 2), ("exit_code", "1")]:
        with pytest.raises(AssertionError, match="does not follow its schema"):
            jsonschemas.validate({**doc, key: value})
    with pytest.raises(AssertionError, match="not a certdoctor document"):
        jsonschemas.validate({"verdict": "valid"})
