"""Hostile files (issue 15): PKCS#12 key-derivation work, many certificates sharing one name, FIFOs and symlink
loops, file names on the terminal, CSV cells a spreadsheet would run, and the permissions of what fix writes."""

from __future__ import annotations

import datetime
import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certdoctor import certinfo
from certdoctor.cli import main

NOW = datetime.datetime.now(datetime.UTC)


# --- item 5a: PKCS#12 iteration counts are read before any key derivation runs --------------------------------


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = (
        bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8)
    )
    return bytes([tag]) + length + content


def _pfx_with_mac_iterations(count: int) -> bytes:
    """A minimal PFX: version 3, an empty data AuthenticatedSafe, and MacData asking for ``count`` iterations."""
    data_oid = _der(0x06, bytes.fromhex("2a864886f70d010701"))
    auth_safe = _der(0x30, data_oid + _der(0xA0, _der(0x04, _der(0x30, b""))))
    digest_info = _der(
        0x30, _der(0x30, _der(0x06, bytes.fromhex("608648016503040201")) + b"\x05\x00") + _der(0x04, bytes(32))
    )
    mac = _der(0x30, digest_info + _der(0x04, bytes(8)) + _der(0x02, count.to_bytes((count.bit_length() + 8) // 8)))
    return _der(0x30, _der(0x02, b"\x03") + auth_safe + mac)


def _key_and_cert(name: str = "p12.certdoctor.test") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture
def no_kdf(monkeypatch):
    """Fails the test if cryptography is asked to open a PKCS#12 file (that is where the KDF runs)."""
    calls: list[bytes] = []

    def refuse(data, password, *args, **kwargs):
        calls.append(data)
        raise AssertionError("load_pkcs12 called: the key derivation would run")

    monkeypatch.setattr(pkcs12, "load_pkcs12", refuse)
    return calls


def test_pkcs12_named_cert_pem_with_a_huge_iteration_count_is_refused_before_the_kdf(tmp_path, capsys, no_kdf):
    key, cert = _key_and_cert()
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(65536)  # INTEGER 01 00 00: patched below to 7f ff ff, the same length
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(b"pw")
    )
    data = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, encryption)
    assert data.count(b"\x02\x03\x01\x00\x00") >= 2  # the MAC's and the PBKDF2 parameters' counts
    pile = tmp_path / "pile"
    pile.mkdir()
    (pile / "cert.pem").write_bytes(data.replace(b"\x02\x03\x01\x00\x00", b"\x02\x03\x7f\xff\xff"))
    assert main(["fix", str(pile), "--password", "pw", "--no-aia", "-d", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "iteration count 8,388,607 above certdoctor's limit of 1,000,000" in err
    assert err.count("\n") == 1 and no_kdf == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("count", [2**28, 2**31 - 1, 2**80])
def test_pkcs12_mac_iteration_count_is_read_from_the_der(tmp_path, count, no_kdf):
    from certdoctor.collect.keys import KeyLoadError, load_pkcs12
    from certdoctor.collect.pem import pkcs12_iteration_counts

    data = _pfx_with_mac_iterations(count)
    assert pkcs12_iteration_counts(data) == [min(count, 2**64)]
    with pytest.raises(KeyLoadError, match="above certdoctor's limit of 1,000,000"):
        load_pkcs12(tmp_path / "x.p12", None, data)
    assert no_kdf == []


def test_ordinary_pkcs12_exports_are_within_the_limit():
    from certdoctor.collect.keys import MAX_PKCS12_ITERATIONS
    from certdoctor.collect.pem import pkcs12_iteration_counts

    key, cert = _key_and_cert()
    for encryption in (serialization.BestAvailableEncryption(b"pw"), serialization.NoEncryption()):
        counts = pkcs12_iteration_counts(pkcs12.serialize_key_and_certificates(b"x", key, cert, None, encryption))
        assert counts and max(counts) <= MAX_PKCS12_ITERATIONS


def _encrypted_pkcs8(count: int) -> bytes:
    """An EncryptedPrivateKeyInfo (PBES2: PBKDF2 asking for ``count`` iterations, AES-256-CBC) over junk."""
    pbkdf2 = _der(
        0x30,
        _der(0x06, bytes.fromhex("2a864886f70d01050c"))
        + _der(0x30, _der(0x04, bytes(8)) + _der(0x02, count.to_bytes((count.bit_length() + 8) // 8))),
    )
    aes = _der(0x30, _der(0x06, bytes.fromhex("60864801650304012a")) + _der(0x04, bytes(16)))
    pbes2 = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d01050d")) + _der(0x30, pbkdf2 + aes))
    return _der(0x30, pbes2 + _der(0x04, bytes(48)))


@pytest.mark.parametrize("pem", [False, True])
def test_encrypted_key_with_a_huge_iteration_count_is_refused_before_the_kdf(tmp_path, monkeypatch, capsys, pem):
    """fix gives the password of a PKCS#12 input to every input file: a key file in the pile asking for 2^31
    PBKDF2 iterations must be refused before cryptography derives anything."""
    from certdoctor.collect.keys import KeyLoadError, keys_in

    def refuse(*args, **kwargs):
        raise AssertionError("the key derivation would run")

    monkeypatch.setattr(serialization, "load_der_private_key", refuse)
    monkeypatch.setattr(serialization, "load_pem_private_key", refuse)
    der = _encrypted_pkcs8(2**31 - 1)
    data = pem_armour(der) if pem else der
    with pytest.raises(KeyLoadError, match="iteration count 2,147,483,647 above certdoctor's limit of 1,000,000"):
        list(keys_in(data, "key.pem", b"pw"))
    (tmp_path / "key.pem").write_bytes(data)
    assert main(["fix", str(tmp_path / "key.pem"), "--password", "pw", "--no-aia", "-d", str(tmp_path / "o")]) == 2
    assert "iteration count 2,147,483,647" in capsys.readouterr().err


def pem_armour(der: bytes) -> bytes:
    import base64

    return (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + base64.encodebytes(der) + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )


# --- item 5b: issuer matching does linear work however many certificates share a name -------------------------


def _same_name_pile(n: int, *, ca: bool, leaf: bool = False) -> bytes:
    """``n`` certificates named CN=same, issued by CN=same, each with its own key, signed by a key none of them
    holds: every pair is a same-name candidate, no signature verifies."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "same")])
    signer = ec.generate_private_key(ec.SECP256R1())
    out = []
    if leaf:
        host = "leaf.certdoctor.test"
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(name)
            .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
            .serial_number(10**6)
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        )
        out.append(builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    for i in range(n):
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
            .serial_number(i + 1)
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
        )
        if ca:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        out.append(builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return b"".join(out)


def test_inspect_of_a_thousand_certificates_sharing_one_name_does_linear_work(tmp_path, capsys):
    pile = tmp_path / "same.pem"
    pile.write_bytes(_same_name_pile(1000, ca=False))
    before = certinfo.signature_checks()
    assert main(["inspect", str(pile), "-q"]) == 0
    checks = certinfo.signature_checks() - before
    assert len(capsys.readouterr().out.splitlines()) == 1000
    # Quadratic matching verified each of the 999,000 same-name pairs; now at most MAX_ISSUER_KEYS keys per
    # certificate and one self-signature check each.
    assert checks <= 1000 * (certinfo.MAX_ISSUER_KEYS + 1)


def test_fix_of_a_pile_of_same_name_intermediates_does_linear_work(tmp_path, capsys):
    pile = tmp_path / "pile.pem"
    pile.write_bytes(_same_name_pile(400, ca=True, leaf=True))
    before = certinfo.signature_checks()
    assert main(["fix", str(pile), "--no-aia", "-q", "-d", str(tmp_path / "out")]) == 1  # written, incomplete
    assert certinfo.signature_checks() - before <= 401 * (certinfo.MAX_ISSUER_KEYS + 2)
    assert (tmp_path / "out" / "fullchain.pem").exists()


def test_certificates_sharing_one_key_share_one_verification():
    signer = ec.generate_private_key(ec.SECP256R1())
    shared = ec.generate_private_key(ec.SECP256R1()).public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shared-key")])
    certs = [
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(shared)
        .serial_number(i + 1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .sign(signer, hashes.SHA256())
        for i in range(300)
    ]
    index = certinfo.IssuerIndex(certs)
    before = certinfo.signature_checks()
    assert all(index.issuers_of(c) == [] for c in certs)
    assert certinfo.signature_checks() - before <= len(certs)  # one (certificate, key) pair each


# --- item 7: FIFOs are refused, symlink loops are files ---------------------------------------------------------


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "chain.pem"
    os.mkfifo(path)
    return path


def _offline(lab) -> list[str]:
    return ["--ca-file", str(lab.root_path), "--no-aia", "--no-revocation", "--no-clients"]


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--file", "{fifo}", "--no-aia", "--no-revocation"],
        ["check", "{fifo}", "--no-aia", "--no-revocation"],
        ["inspect", "{fifo}"],
        ["fix", "{fifo}", "--no-aia", "-d", "{out}"],
        ["fix", "{chain}", "--key", "{fifo}", "--no-aia", "-d", "{out}"],
        ["check", "--file", "{chain}", "--ca-file", "{fifo}", "--no-aia", "--no-revocation"],
        ["check", "--file", "{chain}", "--expect", "{fifo}", "--no-aia", "--no-revocation"],
        ["check", "--file", "{chain}", "--key", "{fifo}", "--no-aia", "--no-revocation"],
    ],
    ids=["check-file", "check-target", "inspect", "fix", "fix-key", "ca-file", "expect", "key"],
)
def test_a_fifo_is_refused_in_one_line_not_read(lab, fifo, tmp_path, argv):
    values = {"fifo": str(fifo), "out": str(tmp_path / "out"), "chain": str(lab.endpoints["wrong-order"].chain_path)}
    cmd = [sys.executable, "-m", "certdoctor", *(a.format(**values) for a in argv)]
    # A subprocess with a timeout: before the fix, opening the FIFO waited for a writer forever.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith("it is a FIFO (named pipe), not a regular file")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_read_capped_refuses_devices_and_directories(tmp_path):
    from certdoctor.collect.files import NotARegularFile, read_capped

    with pytest.raises(NotARegularFile, match="character device"):
        read_capped("/dev/zero")
    with pytest.raises(NotARegularFile, match="a directory"):
        read_capped(tmp_path)


@pytest.mark.parametrize("command", ["check", "inspect", "fix"])
def test_a_symlink_loop_or_dangling_symlink_is_a_file_never_a_host(tmp_path, monkeypatch, capsys, command):
    from certdoctor.cli.common import looks_like_file

    monkeypatch.chdir(tmp_path)
    os.symlink("loopb", "loopa")
    os.symlink("loopa", "loopb")
    os.symlink("nowhere", "dangling")
    assert looks_like_file("loopa") and looks_like_file("dangling")
    extra = ["-d", "out"] if command == "fix" else []
    for name in ("loopa", "dangling"):
        code = main([command, name, *extra])
        err = capsys.readouterr().err
        assert code in (2, 3) and "resolve" not in err and name in err, err


# --- item 8: file names are escaped on the terminal; CSV cells are not formulas ---------------------------------

EVIL = "x\x1b]0;PWNED\x07\x1b[31m"


def test_check_progress_line_escapes_the_file_name(lab, tmp_path, monkeypatch, capsys):
    from rich.console import Console

    import certdoctor.cli.check as check_cli

    evil = tmp_path / f"{EVIL}.pem"
    evil.write_bytes(lab.endpoints["wrong-order"].chain_path.read_bytes())
    spinner = io.StringIO()
    real = check_cli.console

    def terminal_stderr(ns=None, *, stderr=False):
        if stderr:
            return Console(file=spinner, force_terminal=True, markup=False, highlight=False, emoji=False)
        return real(ns)

    monkeypatch.setattr(check_cli, "console", terminal_stderr)
    main(["check", "--file", str(evil), *_offline(lab)])
    shown = spinner.getvalue()
    assert "checking" in shown
    assert "\x1b]0;PWNED" not in shown and "\\x1b]0;PWNED" in shown


def test_fix_escapes_file_names_in_errors_lines_and_written_paths(lab, tmp_path, capsys):
    pile = tmp_path / "pile"
    pile.mkdir()
    chain = lab.endpoints["wrong-order"].chain_path.read_bytes()
    (pile / f"a{EVIL}.pem").write_bytes(chain.replace(b"\n", b"\r\n"))  # a repair line names the file
    (pile / f"b{EVIL}.pem").write_bytes(b"junk\n")  # in a directory: skipped, and its name listed
    assert main(["fix", str(pile), "--no-aia", "-d", str(tmp_path / "o1")]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "skipped" in out and "\\x1b]0;PWNED" in out
    assert main(["fix", str(pile / f"b{EVIL}.pem"), "--no-aia", "-d", str(tmp_path / "o1")]) == 2  # given by name
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\\x1b]0;PWNED" in err
    (pile / f"b{EVIL}.pem").unlink()
    for quiet in ([], ["-q"]):
        dest = tmp_path / f"o{EVIL}{len(quiet)}"
        assert main(["fix", str(pile), "--ca-file", str(lab.root_path), "--no-aia", *quiet, "-d", str(dest)]) == 0
        out, err = capsys.readouterr()
        assert "\x1b" not in out + err and "\\x1b]0;PWNED" in out


def test_inspect_pem_issue_lines_escape_the_file_name(lab, tmp_path, capsys):
    evil = tmp_path / f"{EVIL}.pem"
    evil.write_bytes(lab.endpoints["wrong-order"].chain_path.read_bytes().replace(b"\n", b"\r\n"))
    assert main(["inspect", str(evil)]) == 0
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("pem-format")]
    assert lines and all("\\x1b]0;PWNED" in line for line in lines)
    assert "\x1b" not in out + err


def test_scan_csv_cells_that_start_a_formula_are_quoted():
    import csv

    from certdoctor.scan.records import _csv_cell, to_csv_row

    record = {
        "line": 7,
        "target": '=HYPERLINK("http://evil")',
        "verdict": "invalid",
        "leaf": {"subject": "@SUM(A1)", "issuer": "+1", "days_left": -3, "not_after": "-", "address": "\tx"},
        "endpoints": [{"source": "-cmd", "error": "-boom"}],
        "elapsed_ms": 1.5,
    }
    (row,) = csv.reader(io.StringIO(to_csv_row(record)))
    assert row[1] == '\'=HYPERLINK("http://evil")'
    assert row[6:11] == ["'@SUM(A1)", "'+1", "'-", "-3", "'\tx"]  # a negative number stays a number
    assert row[11] == "'-cmd" and row[12] == "'-boom"
    assert row[0] == "7" and row[-1] == "1.5"
    assert _csv_cell("\rx") == "'\rx" and _csv_cell(-3) == -3 and _csv_cell(None) == ""


# --- item 9: what fix creates is not world-writable; an exposed key is pointed out ------------------------------


def test_fix_creates_its_directories_0755_under_umask_000_and_warns_about_a_readable_key(lab, tmp_path, capsys):
    ep = lab.endpoints["wrong-order"]
    key = tmp_path / "site.key"
    key.write_bytes(ep.key_path.read_bytes())
    key.chmod(0o644)
    out = tmp_path / "new" / "out"
    old = os.umask(0)
    try:
        code = main(
            ["fix", str(ep.chain_path), "--key", str(key), "--ca-file", str(lab.root_path), "--no-aia", "-d", str(out)]
        )
    finally:
        os.umask(old)
    assert code == 0
    for d in (tmp_path / "new", out):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755, d
    assert stat.S_IMODE((out / "privkey.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "fullchain.pem").stat().st_mode) == 0o644
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("certdoctor fix: warning: the private key") and "readable by its group and everyone" in line
    key.chmod(0o600)
    assert main(["fix", str(ep.chain_path), "--key", str(key), "--ca-file", str(lab.root_path), "--no-aia",
                 "-d", str(tmp_path / "o2")]) == 0  # fmt: skip
    assert "warning" not in capsys.readouterr().err
