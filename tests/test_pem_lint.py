"""PEM mistakes in chain files (made from the lab's real chains) become precise findings with a fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from certdoctor import diagnose


@pytest.fixture
def good(lab) -> tuple[bytes, bytes, str]:
    ep = lab.endpoints["good-rsa"]
    return ep.chain_path.read_bytes(), ep.key_path.read_bytes(), ep.scenario.hostname


def check_file(lab, path: Path, host: str):
    return diagnose(files=[str(path)], name=host, ca_files=[str(lab.root_path)])


def pem_findings(d) -> dict[str, str]:
    return {f.evidence["problem"]: f.severity.value for f in d.findings if f.id == "pem-format"}


def test_clean_file_has_no_pem_findings(lab, good):
    d = diagnose(files=[str(lab.endpoints["good-rsa"].chain_path)], name=good[2], ca_files=[str(lab.root_path)])
    assert d.ids() == []


@pytest.mark.parametrize(
    ("name", "mangle", "problem", "severity"),
    [
        (
            "glued",
            lambda b: b.replace(b"-----END CERTIFICATE-----\n-----BEGIN", b"-----END CERTIFICATE----------BEGIN", 1),
            "glued",
            "error",
        ),
        ("crlf", lambda b: b.replace(b"\n", b"\r\n"), "crlf", "warning"),
        ("no-newline", lambda b: b.rstrip(b"\n"), "no-final-newline", "warning"),
        ("spaces", lambda b: b.replace(b"\nMII", b"\nMI I", 1), "whitespace", "warning"),
        (
            "trusted",
            lambda b: b.replace(b"BEGIN CERTIFICATE", b"BEGIN TRUSTED CERTIFICATE", 1).replace(
                b"END CERTIFICATE", b"END TRUSTED CERTIFICATE", 1
            ),
            "armour",
            "warning",
        ),
    ],
)
def test_each_pem_mistake_is_reported(lab, good, tmp_path, name, mangle, problem, severity):
    chain, _, host = good
    path = tmp_path / f"{name}.pem"
    path.write_bytes(mangle(chain))
    d = check_file(lab, path, host)
    assert pem_findings(d) == {problem: severity}, d.ids()
    f = next(f for f in d.findings if f.id == "pem-format")
    assert f.sources == (str(path),)
    assert str(path) in f.fix  # the repair command names the file
    # the certificates themselves are still read and judged
    assert len(d.reports[0].chain.certs) == 2 and d.reports[0].analysis.trusted
    # and `certdoctor fix` writes the same chain back as clean PEM
    from certdoctor.cli import main
    from certdoctor.collect.files import load_chain_file

    out = tmp_path / "fixed"
    assert main(["fix", str(path), "-d", str(out), "--ca-file", str(lab.root_path)]) == 0
    fixed = load_chain_file(out / "fullchain.pem")
    assert fixed.pem_issues == () and fixed.certs == d.reports[0].chain.certs


def test_glued_file_really_breaks_openssl(lab, good, tmp_path):
    chain, _, host = good
    path = tmp_path / "glued.pem"
    path.write_bytes(chain.replace(b"-----END CERTIFICATE-----\n-----BEGIN", b"-----END CERTIFICATE----------BEGIN", 1))
    proc = subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "bad end line" in proc.stderr
    f = next(f for f in check_file(lab, path, host).findings if f.id == "pem-format")
    assert f.evidence["line"] and "bad end line" in f.detail


def test_key_in_certificate_file(lab, good, tmp_path):
    chain, key, host = good
    path = tmp_path / "with-key.pem"
    path.write_bytes(chain + key)
    d = check_file(lab, path, host)
    assert d.ids() == ["key-in-cert-file"]
    assert "chmod 600" in d.findings[0].fix


def test_der_and_pkcs7_files(lab, good, tmp_path):
    chain, _, host = good
    pem = tmp_path / "chain.pem"
    pem.write_bytes(chain)
    der = tmp_path / "leaf.der"
    subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "DER", "-out", str(der)], check=True)
    d = check_file(lab, der, host)
    assert pem_findings(d) == {"der": "error"}
    assert "missing-intermediate" in d.ids()  # a lone leaf: judged as well
    p7b = tmp_path / "chain.p7b"
    subprocess.run(
        ["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(pem), "-outform", "DER", "-out", str(p7b)], check=True
    )
    d = check_file(lab, p7b, host)
    assert pem_findings(d) == {"pkcs7": "error"}
    assert "openssl pkcs7 -print_certs" in next(f.fix for f in d.findings if f.id == "pem-format")


def test_key_mismatch_on_files_and_servers(lab, good, capsys):
    from certdoctor.cli import main

    ep = lab.endpoints["good-rsa"]
    own, other = ep.key_path, lab.endpoints["good-ecdsa"].key_path
    d = diagnose(files=[str(ep.chain_path)], name=good[2], ca_files=[str(lab.root_path)], key=str(own))
    assert d.ids() == []
    d = diagnose(files=[str(ep.chain_path)], name=good[2], ca_files=[str(lab.root_path)], key=str(other))
    assert d.ids() == ["key-mismatch"] and d.exit_code == 1
    f = d.findings[0]
    assert f.severity.value == "error" and f.cert_position == 0 and "key values mismatch" in f.detail
    argv = [*ep.check_argv(lab.root_path), "--key", str(other), "--json"]
    assert main(argv) == 1
    doc = __import__("json").loads(capsys.readouterr().out)
    assert [x["id"] for x in doc["findings"]] == ["key-mismatch"]
    assert doc["findings"][0]["sources"] == [f"127.0.0.1:{ep.port}"]


def test_truncated_file(lab, good, tmp_path, capsys):
    from certdoctor.cli import main

    chain, _, host = good
    cut = tmp_path / "truncated.pem"
    cut.write_bytes(chain[: len(chain) - 200])  # the upload stopped inside the intermediate
    d = check_file(lab, cut, host)
    assert d.ids() == ["unreadable-file"] and d.exit_code == 2
    assert "block 2 is truncated" in d.findings[0].detail
    assert main(["fix", str(cut), "-d", str(tmp_path / "out"), "--ca-file", str(lab.root_path)]) == 2
    err = capsys.readouterr().err
    assert "truncated.pem" in err and "truncated" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "fullchain.pem").exists()
