"""`certdoctor inspect` on lab files and a live lab server: roles, links, fields, escaping, bad input."""

from __future__ import annotations

import jsonschemas
from certdoctor.cli import main


def inspect_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["inspect", *argv, "--json"])
    return code, jsonschemas.loads(capsys.readouterr().out)


def test_roles_links_and_fields_from_files(lab, capsys):
    chain = str(lab.endpoints["extra-cert"].chain_path)
    code, doc = inspect_json(capsys, chain, "--ca-file", str(lab.root_path))
    assert code == 0
    certs = doc["certificates"]
    assert [c["role"] for c in certs] == ["leaf", "intermediate", "unrelated"]
    assert certs[0]["issued_by"] == [1] and certs[0]["dns_names"] == ["extra-cert.certdoctor.test"]
    assert certs[1]["issuer_in_stores"] == ["custom"]
    assert certs[2]["self_signed"] and certs[2]["issuer_in_stores"] == []
    leaf = certs[0]
    assert leaf["ca_issuers"] == [f"{lab.aia_base_url}/lab-rsa-ca.cer"]
    assert leaf["extended_key_usage"] == ["serverAuth"] and leaf["basic_constraints"] == "CA:FALSE"
    assert len(leaf["sha256"]) == 64 and len(leaf["sha1"]) == 40 and leaf["validity_days"] == 90.0


def test_duplicates_and_not_a_ca_issuer(lab, capsys):
    code, doc = inspect_json(
        capsys, str(lab.endpoints["duplicate-cert"].chain_path), str(lab.endpoints["issuer-not-ca"].chain_path)
    )
    assert code == 0
    certs = doc["certificates"]
    assert certs[2]["duplicate_of"] == 1
    assert certs[3]["issued_by"] == [4]
    assert certs[4]["role"] == "intermediate" and certs[4]["basic_constraints"] == "CA:FALSE"
    assert certs[4]["issued_by"] == [1]  # the first occurrence of the duplicated CA


def test_live_server_chain_as_presented(lab, capsys):
    ep = lab.endpoints["wrong-order"]
    target = f"{ep.scenario.hostname}:{ep.port}"
    code, doc = inspect_json(capsys, target, "--resolve", f"{target}:127.0.0.1")
    assert code == 0
    certs = doc["certificates"]
    assert certs[0]["source"] == f"127.0.0.1:{ep.port}"
    assert certs[0]["issued_by"] == [2] and certs[2]["issued_by"] == [1]
    main(["inspect", target, "--resolve", f"{target}:127.0.0.1", "--no-color"])
    out = capsys.readouterr().out
    assert "#0 leaf" in out and "issued by #2" in out


def test_hostile_text_is_escaped(lab, capsys):
    assert main(["inspect", str(lab.endpoints["evil-fields"].chain_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"this is not a certificate\n")
    assert main(["inspect", str(junk)]) == 2
    assert "junk.pem" in capsys.readouterr().err
    assert main(["inspect", str(junk), "no-such-file.pem"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_pem_problems_are_shown(lab, tmp_path, capsys):
    crlf = tmp_path / "crlf.pem"
    crlf.write_bytes(lab.endpoints["good-rsa"].chain_path.read_bytes().replace(b"\n", b"\r\n"))
    code, doc = inspect_json(capsys, str(crlf))
    assert code == 0 and [i["problem"] for i in doc["pem_issues"]] == ["crlf"]
    assert main(["inspect", str(crlf)]) == 0
    assert "pem-format" in capsys.readouterr().out
