"""The command line behaves like a Unix tool: one-line errors with documented exit codes, files never taken for
host names, output that survives pipes, one vocabulary across commands (issue 14)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from certdoctor.cli import COMMANDS, main

CERTDOCTOR = [sys.executable, "-m", "certdoctor.cli"]


def argv(lab, name: str, *extra: str) -> list[str]:
    return [*lab.endpoints[name].check_argv(lab.root_path), *extra]


def one_line_error(capsys, code: int, expected: int = 2) -> str:
    out, err = capsys.readouterr()
    assert code == expected, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def split_chain(lab, name: str, tmp_path: Path) -> tuple[Path, Path]:
    """The scenario's chain file as Apache's certificate file + chain file."""
    pem = lab.endpoints[name].chain_path.read_bytes()
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", pem, re.S)
    cert, chain = tmp_path / "cert.crt", tmp_path / "chain.crt"
    cert.write_bytes(blocks[0])
    chain.write_bytes(b"".join(blocks[1:]))
    return cert, chain


# --- tracebacks and bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("out_dir", ["/etc/passwd", "/proc/nope"])
def test_fix_into_an_unusable_output_dir_is_a_one_line_error(lab, tmp_path, capsys, out_dir):
    err = one_line_error(capsys, main(["fix", str(lab.endpoints["good-rsa"].chain_path), "-d", out_dir]))
    assert out_dir in err


def test_lab_port_base_out_of_range(capsys):
    err = one_line_error(capsys, main(["lab", "--port-base", "70000"]))
    assert "70000" in err and "65535" in err


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_timeouts_must_be_positive(capsys, value):
    one_line_error(capsys, main(["check", "example.invalid", "--timeout", value]))
    one_line_error(capsys, main(["scan", "-", "--revocation-timeout", value]))


def test_resolve_takes_ip_addresses_only(capsys):
    err = one_line_error(capsys, main(["check", "a.test:443", "--resolve", "a.test:443:999.1.1.1"]))
    assert "'999.1.1.1' is not an IP address" in err


def test_no_abbreviated_options(capsys):
    one_line_error(capsys, main(["scan", "-", "--json"]))  # was silently taken as --jsonl
    one_line_error(capsys, main(["check", "a.test", "--time", "3"]))


@pytest.mark.parametrize(
    "args",
    [["fix", "nope.crt"], ["inspect", "nope.pem"], ["check", "nope.pem"], ["check", "certs/site"], ["fix", "./x"]],
)
def test_a_missing_file_is_never_a_dns_query(capsys, args):
    err = one_line_error(capsys, main(args))
    assert "no such file" in err and "resolve" not in err


def test_internal_errors_are_one_line(monkeypatch, capsys):
    import certdoctor.cli.stores as stores

    monkeypatch.setattr(stores, "run", lambda ns: 1 / 0)
    err = one_line_error(capsys, main(["stores"]), expected=70)
    assert "internal error: ZeroDivisionError" in err


# --- exit codes ------------------------------------------------------------------------------------------


def test_exit_codes_problems_unchecked_and_fail_on(lab, capsys):
    assert main(argv(lab, "good-rsa", "-q")) == 0
    assert main(argv(lab, "expired", "-q")) == 1
    assert main(argv(lab, "wrong-order", "-q")) == 0  # a warning
    assert main(argv(lab, "wrong-order", "-q", "--fail-on", "warning")) == 1
    assert main(["check", "x.test:1", "--resolve", "x.test:1:127.0.0.1", "-q"]) == 3  # could not check
    capsys.readouterr()


def test_every_command_documents_its_exit_status():
    for name in COMMANDS:
        out = subprocess.run([*CERTDOCTOR, name, "--help"], capture_output=True, text=True, check=True).stdout
        assert "exit status" in out and "examples:" in out, name


@pytest.mark.parametrize(
    "args, prog", [(["watch", "run", "--bogus"], "certdoctor watch run"), (["scan", "x", "--bogus"], "certdoctor scan")]
)
def test_an_unknown_argument_is_reported_by_its_command(args, prog, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: unrecognized arguments: --bogus") and f"see {prog} --help" in err, err


def test_piped_help_is_not_wrapped_unless_columns_says_so():
    """--help to a pipe: each option's description stays on its own line, whole (grep finds it); COLUMNS, when
    set, is the width to wrap to, as on a terminal."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"}
    piped = subprocess.run([*CERTDOCTOR, "scan", "--help"], capture_output=True, text=True, check=True, env=env)
    line = next(x for x in piped.stdout.splitlines() if x.lstrip().startswith("--cluster ADDRESS"))
    assert "tcp://" in line and "local:N" in line, line
    assert piped.stdout.splitlines()[0].endswith("FILE"), "the usage is one line"
    narrow = subprocess.run(
        [*CERTDOCTOR, "scan", "--help"], capture_output=True, text=True, check=True, env=env | {"COLUMNS": "60"}
    )
    line = next(x for x in narrow.stdout.splitlines() if x.lstrip().startswith("--cluster ADDRESS"))
    assert "local:N" not in line and len(line) <= 60, line


# --- several files are one chain -------------------------------------------------------------------------


def test_certificate_file_plus_chain_file_is_one_chain(lab, tmp_path, capsys):
    cert, chain = split_chain(lab, "good-rsa", tmp_path)
    name = lab.endpoints["good-rsa"].hostname
    code = main(["check", "--file", str(cert), "--file", str(chain), "--name", name, "--ca-file", str(lab.root_path)])
    out = capsys.readouterr().out
    assert code == 0 and "VALID" in out
    assert main(["check", "--file", str(cert), "--file", str(chain), "--json", "--ca-file", str(lab.root_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["source"] for e in doc["endpoints"]] == [f"{cert} + {chain}"]
    assert [f["id"] for f in doc["findings"]] == []


def test_each_file_judges_files_side_by_side(lab, tmp_path, capsys):
    cert, chain = split_chain(lab, "good-rsa", tmp_path)
    code = main(["check", "--each-file", str(cert), "--each-file", str(chain), "--json", "--no-aia"])
    ids = {f["id"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert code == 1 and "endpoints-differ" in ids


def test_a_chain_file_given_as_target_is_checked_as_a_file(lab, capsys):
    path = str(lab.endpoints["good-rsa"].chain_path)
    assert main(["check", path, "--ca-file", str(lab.root_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"]["files"] == [path]


# --- output in a pipe --------------------------------------------------------------------------------------


def test_piped_output_is_neither_wrapped_nor_padded_nor_truncated(lab):
    run = subprocess.run(
        [*CERTDOCTOR, *argv(lab, "incomplete-no-aia")],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": ""},
    )
    lines = run.stdout.splitlines()
    assert not [line for line in lines if line != line.rstrip()], "trailing spaces"
    assert max(len(line) for line in lines) > 120, "long lines are not wrapped"
    dotnet = next(line for line in lines if ".NET (HttpClient)" in line)
    assert "System.Security.Authentication.AuthenticationException: The remote certificate is invalid" in dotnet
    assert not [line for line in lines if line.endswith("…")], "cut with an ellipsis"
    assert "\x1b[" not in run.stdout


def test_answer_first_then_details(lab):
    out = subprocess.run([*CERTDOCTOR, *argv(lab, "huge-chain", "--no-clients")], capture_output=True, text=True).stdout
    lines = out.splitlines()
    assert lines[1].startswith("✗ INVALID") or lines[1].startswith("✗ UNREACHABLE") or "VALID" in lines[1]
    assert lines.index("Details") > 2


def test_check_suggests_fix_for_chain_problems(lab, capsys):
    main(argv(lab, "wrong-order"))
    assert "certdoctor fix wrong-order.certdoctor.test:" in capsys.readouterr().out


def test_color_always_and_never(lab, capsys):
    main(argv(lab, "expired", "--color", "always", "-q"))
    assert "\x1b[" in capsys.readouterr().out
    main(argv(lab, "expired", "--color", "never", "-q"))
    assert "\x1b[" not in capsys.readouterr().out


# --- quiet ------------------------------------------------------------------------------------------------


def test_quiet_is_quiet(lab, tmp_path, capsys):
    main(argv(lab, "expired", "-q"))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✗ INVALID") and len(out) == 1 + 1  # the verdict and one line per finding
    assert main(["rules", "-q"]) == 0
    assert all(re.fullmatch(r"[a-z0-9-]+", line) for line in capsys.readouterr().out.splitlines())
    assert main(["stores", "-q"]) == 0 and "mozilla" in capsys.readouterr().out.split()
    assert main(["clients", "-q"]) == 0 and capsys.readouterr().out.split()[:2] == ["chrome", "firefox"]
    path = str(lab.endpoints["good-rsa"].chain_path)
    assert main(["inspect", path, "-q"]) == 0 and len(capsys.readouterr().out.splitlines()) == 2
    code = main(["fix", path, "-q", "-d", str(tmp_path / "o"), "--ca-file", str(lab.root_path)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0].startswith("fullchain.pem: ✓ VALID") and all(x.startswith("wrote ") for x in out[1:])


# --- what peer tools have ----------------------------------------------------------------------------------


def test_pem_prints_the_chain_as_served(lab, capsys):
    assert main(argv(lab, "good-rsa", "--pem")) == 0
    out = capsys.readouterr().out
    certs = x509.load_pem_x509_certificates(out.encode())
    assert len(certs) == 2 and out.startswith("-----BEGIN CERTIFICATE-----")
    ep = lab.endpoints["good-rsa"]
    assert main(["inspect", f"{ep.hostname}:{ep.port}", "--resolve", ep.resolve_arg(), "--pem"]) == 0
    assert capsys.readouterr().out == out


def test_ca_bundle_is_exactly_that_bundle(lab, tmp_path, capsys):
    import certifi

    assert main(argv(lab, "good-rsa", "--ca-bundle", str(lab.root_path), "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["stores"]][:1] == ["ca-bundle"]
    ep = lab.endpoints["good-rsa"]
    args = ["check", ep.target, "--resolve", ep.resolve_arg(), "--ca-bundle", certifi.where(), "--json"]
    assert main(args) == 1
    assert "untrusted-root" in {f["id"] for f in json.loads(capsys.readouterr().out)["findings"]}


def test_password_file(lab, tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization

    ep = lab.endpoints["good-rsa"]
    key = serialization.load_pem_private_key(ep.key_path.read_bytes(), None)
    enc = tmp_path / "enc.key"
    enc.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    pw = tmp_path / "pw.txt"
    pw.write_text("s3cret\n")
    assert main([*argv(lab, "good-rsa", "-q"), "--key", str(enc), "--password-file", str(pw)]) == 0
    pw.write_text("wrong\n")
    one_line_error(capsys, main([*argv(lab, "good-rsa", "-q"), "--key", str(enc), "--password-file", str(pw)]))


def test_at_takes_epoch_seconds(lab, capsys):
    assert main(argv(lab, "good-rsa", "--at", "4102444800", "--json")) == 1  # 2100-01-01
    doc = json.loads(capsys.readouterr().out)
    assert doc["checked_at"].startswith("2100-01-01") and "expired" in {f["id"] for f in doc["findings"]}


def test_rules_greppable_and_one_rule_in_full(capsys):
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line.split("\t")) == 4 for line in lines)
    assert main(["rules", "missing-intermediate"]) == 0
    out = capsys.readouterr().out
    assert "unable to get local issuer certificate" in out and "PKIX path building failed" in out
    assert "incomplete-no-aia" in out  # the lab scenario that shows it
    assert main(["rules", "missing-intermediate", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "rule" and any(c["client"] == "java" and c["rejects"] for c in doc["clients"])


def test_fix_writes_no_empty_chain_pem(tmp_path, capsys):
    """A leaf issued by the root itself: no chain.pem, and no configuration line that names one."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from pki_builder import leaf, root

    ca = root("Direct Root")
    site = leaf("direct.test", ca)
    (tmp_path / "site.pem").write_bytes(site.cert.public_bytes(Encoding.PEM))
    (tmp_path / "root.pem").write_bytes(ca.cert.public_bytes(Encoding.PEM))
    out = tmp_path / "out"
    code = main(["fix", str(tmp_path / "site.pem"), "-d", str(out), "--ca-file", str(tmp_path / "root.pem"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == ["cert.pem", "fullchain.pem"]
    config = {c["id"]: c["text"] for c in doc["config"]}
    assert "chain.pem" not in config["apache-legacy"] and "chain.pem" not in config["aws-acm"]
    assert code in (0, 1)


# --- small answers that must agree ---------------------------------------------------------------------------


def test_days_left_agree_between_check_inspect_and_scan(lab, capsys):
    path = str(lab.endpoints["good-rsa"].chain_path)
    main(["check", path, "--ca-file", str(lab.root_path), "--no-color", "--at", "2026-12-01T12:00:00"])
    check_days = re.search(r"#0 leaf.*?\((\d+) days left\)", capsys.readouterr().out, re.S).group(1)
    main(["inspect", path, "-q", "--at", "2026-12-01T12:00:00"])
    inspect_days = re.search(r"#0 leaf.*?(\d+) days left", capsys.readouterr().out).group(1)
    assert check_days == inspect_days


def test_inspect_takes_pkcs7_and_names_a_repeated_intermediate(lab, tmp_path, capsys):
    chain = lab.endpoints["good-rsa"].chain_path
    p7 = tmp_path / "chain.p7b"
    subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(chain), "-out", str(p7)], check=True)
    assert main(["inspect", str(p7), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pem_issues"] == [] and [c["role"] for c in doc["certificates"]] == ["leaf", "intermediate"]
    cert, rest = split_chain(lab, "good-rsa", tmp_path)
    twice = tmp_path / "twice.pem"
    twice.write_bytes(cert.read_bytes() + rest.read_bytes() * 2)
    assert main(["inspect", str(twice), "--json"]) == 0
    certs = json.loads(capsys.readouterr().out)["certificates"]
    assert [(c["role"], c["duplicate_of"]) for c in certs] == [
        ("leaf", None),
        ("intermediate", None),
        ("intermediate", 1),
    ]


def test_a_pfx_given_as_chain_file_says_what_it_is(lab, tmp_path, capsys):
    ep = lab.endpoints["good-rsa"]
    pfx = tmp_path / "site.pfx"
    export = ["openssl", "pkcs12", "-export", "-in", str(ep.chain_path), "-inkey", str(ep.key_path)]
    subprocess.run([*export, "-passout", "pass:x", "-out", str(pfx)], check=True)
    assert main(["check", "--file", str(pfx), "--json"]) == 2
    err = capsys.readouterr().err
    assert "PKCS#12" in err and "certdoctor fix" in err and "malformed DER" not in err


def test_client_section_is_not_repetitive(lab, capsys):
    main(["check", "x.test:1", "--resolve", "x.test:1:127.0.0.1", "--timeout", "2"])
    out = capsys.readouterr().out
    assert "every client fails to connect" in out and "Java (JSSE)" not in out  # one line, not nine
    ep = lab.endpoints["good-rsa"]
    main(["check", ep.target, "--resolve", ep.resolve_arg()])  # the lab root is unknown to every client
    out = capsys.readouterr().out
    assert out.count("To trust a private CA:") == 1 and out.count("NODE_EXTRA_CA_CERTS") == 1
    assert "verify ✗ mozilla (" in out  # the per-store verdict says why, apart from where the path ends


def test_sigterm_is_an_interruption(tmp_path):
    proc = subprocess.Popen(
        [*CERTDOCTOR, "explain", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    import time

    time.sleep(1.0)  # reading stdin
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and b"interrupted" in err and b"Traceback" not in err


# --- what a new user found (issue 14 review) -----------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("script"), reason="no `script` (util-linux) to give the scan a terminal")
def test_scan_on_a_terminal_shows_progress_and_writes_records(lab, tmp_path):
    ep = lab.endpoints["expired"]
    src = tmp_path / "hosts.txt"
    src.write_text(f"{ep.hostname}:{ep.port},addr=127.0.0.1\n" * 3)
    out = tmp_path / "out.jsonl"
    cmd = shlex.join([*CERTDOCTOR, "scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out)])
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "internal error" not in run.stdout, run.stdout[-2000:]
    assert "scanning" in run.stdout and len(out.read_text().splitlines()) == 3
    text = subprocess.run(
        ["script", "-qec", shlex.join([*CERTDOCTOR, "scan", str(src), "--ca-file", str(lab.root_path)]), "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert text.returncode == 1 and "✗ invalid" in text.stdout and "soonest expiry" in text.stdout


def test_scan_summary_is_not_cut_in_a_file(lab, tmp_path):
    ep = lab.endpoints["good-rsa"]
    src = tmp_path / "hosts.txt"
    src.write_text("".join(f"{ep.hostname}:{ep.port},addr=127.0.0.1,name={ep.hostname}\n" for _ in range(2)))
    run = subprocess.run(
        [*CERTDOCTOR, "scan", str(src), "--ca-file", str(lab.root_path), "-o", str(tmp_path / "o.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"addr=127.0.0.1,name={ep.hostname}" in run.stderr and "…" not in run.stderr


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"\x00" * 100])
def test_an_unreadable_chain_file_is_unusable_input(tmp_path, capsys, content):
    path = tmp_path / "chain.pem"
    path.write_bytes(content)
    assert main(["check", "--file", str(path), "-q"]) == 2
    assert capsys.readouterr().out.startswith("✗ UNREADABLE")


def test_fix_reads_a_download_folder(lab, tmp_path, capsys):
    cert, chain = split_chain(lab, "good-rsa", tmp_path)
    folder = tmp_path / "download"
    (folder / "sub").mkdir(parents=True)
    (folder / "site.crt").write_bytes(cert.read_bytes())
    (folder / "sub" / "ca.crt").write_bytes(chain.read_bytes())
    (folder / "README.txt").write_text("thank you for your order\n")
    (folder / "site.csr").write_text("-----BEGIN CERTIFICATE REQUEST-----\nMA==\n-----END CERTIFICATE REQUEST-----\n")
    args = ["fix", str(folder), "--no-aia", "-d", str(tmp_path / "out"), "--ca-file", str(lab.root_path), "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["plan"]["intermediates"]) == 1 and doc["plan"]["fetched"] == []
    assert sorted(Path(s.split(":")[0]).name for s in doc["skipped"]) == ["README.txt", "site.csr"]


def test_at_before_the_chain_existed(lab, capsys):
    path = str(lab.endpoints["good-rsa"].chain_path)
    assert main(["check", "--file", path, "--ca-file", str(lab.root_path), "--at", "100000000", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    ids = [f["id"] for f in doc["findings"]]
    assert "root-expired" not in ids and "not-yet-valid" in ids
    inter = next(f for f in doc["findings"] if f["id"] == "intermediate-expired")
    assert "even though the server certificate itself is in date" not in inter["detail"]


def test_explain_finds_the_error_at_the_end_of_a_long_log(capsys, monkeypatch):
    import io

    log = (
        "INFO some log line\n" * 1500
        + "Caused by: sun.security.validator.ValidatorException: PKIX path building failed"
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(log))
    assert main(["explain", "-", "-q"]) == 0


@pytest.mark.parametrize(
    "target", ["[::1", "gopher://x", "http://a.test:1", "-", "a b", "127.0.0.1:9741:5", "a" * 300, "x.test:99999"]
)
def test_bad_targets_are_usage_errors(capsys, target):
    err = one_line_error(capsys, main(["check", target, "-q"]))
    assert "resolve" not in err


def test_at_edge_cases(lab, capsys):
    one_line_error(capsys, main(["check", "--file", str(lab.endpoints["good-rsa"].chain_path), "--at", ""]))
    assert main(["check", "--file", str(lab.endpoints["good-rsa"].chain_path), "--at", "0", "-q"]) == 1
    capsys.readouterr()


def test_pem_is_not_combined_with_json(lab, capsys):
    one_line_error(capsys, main([*argv(lab, "good-rsa"), "--pem", "--json"]))


def test_library_resolve_takes_addresses(lab):
    from certdoctor import InputError, diagnose

    ep = lab.endpoints["good-rsa"]
    with pytest.raises(InputError, match="not an IP address"):
        diagnose(ep.target, resolve=[ep.resolve_arg()])
    d = diagnose(ep.target, resolve=["127.0.0.1"], ca_files=[str(lab.root_path)], clients=False)
    assert d.valid and d.to_dict()["target"]["host"] == ep.hostname
