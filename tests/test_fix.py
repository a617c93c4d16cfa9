"""`certdoctor fix` on piles made from the lab's real PKI, proven with openssl verify and a real TLS server + curl."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import jsonschemas
from certdoctor.cli import main
from certdoctor.collect.files import load_chain_file
from netutil import curl_https


def subjects(path: Path) -> list[str]:
    return [
        c.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value for c in load_chain_file(path).certs
    ]


def fix_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["fix", *argv, "--json"])
    out = capsys.readouterr().out
    return code, jsonschemas.loads(out) if out.strip() else {}


@pytest.fixture
def pile(lab, tmp_path) -> Path:
    """The wrong-order chain split over two files, reversed, with the root, a duplicate and an unrelated CA."""
    certs = load_chain_file(lab.endpoints["wrong-order"].chain_path).certs
    unrelated = load_chain_file(lab.endpoints["extra-cert"].chain_path).certs[2]
    d = tmp_path / "pile"
    d.mkdir()
    pem = [c.public_bytes(Encoding.PEM) for c in certs]
    (d / "a-intermediates.crt").write_bytes(pem[2] + pem[1] + pem[2])
    (d / "b-server.pem").write_bytes(lab.root_path.read_bytes() + pem[0].replace(b"\n", b"\r\n"))
    (d / "c-other.pem").write_bytes(unrelated.public_bytes(Encoding.PEM))
    return d


def test_pile_becomes_an_ordered_verifiable_chain(lab, pile, tmp_path, capsys):
    out = tmp_path / "out"
    code, doc = fix_json(capsys, str(pile), "-d", str(out), "--ca-file", str(lab.root_path))
    assert code == 0, doc
    assert subjects(out / "fullchain.pem") == [
        "wrong-order.certdoctor.test",
        "certdoctor Lab Issuing CA 2",
        "certdoctor Lab Policy CA",
    ]
    assert subjects(out / "chain.pem") == ["certdoctor Lab Issuing CA 2", "certdoctor Lab Policy CA"]
    assert subjects(out / "cert.pem") == ["wrong-order.certdoctor.test"]
    reasons = sorted(r["reason"].split(" ")[0] for r in doc["plan"]["dropped"])
    assert reasons == ["duplicate", "not", "root"]
    assert any("CRLF" in r for r in doc["repaired"])
    assert doc["verification"]["verdict"] == "valid"
    assert load_chain_file(out / "fullchain.pem").pem_issues == ()
    proc = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(lab.root_path),
            "-untrusted",
            str(out / "chain.pem"),
            str(out / "cert.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and ": OK" in proc.stdout


def test_missing_intermediate_is_downloaded_via_aia(lab, tmp_path, capsys):
    leaf = lab.endpoints["incomplete-aia"].chain_path
    code, doc = fix_json(capsys, str(leaf), "-d", str(tmp_path), "--ca-file", str(lab.root_path))
    assert code == 0
    assert subjects(tmp_path / "fullchain.pem") == ["incomplete-aia.certdoctor.test", "certdoctor Lab RSA CA"]
    assert doc["plan"]["fetched"][0]["url"] == f"{lab.aia_base_url}/lab-rsa-ca.cer"
    clients = doc["verification"]["clients"]  # once fullchain.pem is served, every client family accepts it
    assert len(clients) == 9 and all(c["accepts"] for c in clients)


def test_incomplete_without_aia_is_written_but_reported(lab, tmp_path, capsys):
    leaf = lab.endpoints["incomplete-no-aia"].chain_path
    code, doc = fix_json(capsys, str(leaf), "-d", str(tmp_path), "--ca-file", str(lab.root_path))
    assert code == 1
    assert not doc["plan"]["complete"] and "incomplete" in doc["plan"]["notes"][0]
    assert [f["id"] for f in doc["verification"]["findings"]] == ["missing-intermediate"]
    still = {c["client"] for c in doc["verification"]["clients"] if not c["accepts"]}
    assert still == {"chrome", "firefox", "safari", "curl", "python", "node", "java", "go", "dotnet"}


def test_include_root_and_refusal_to_overwrite(lab, pile, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fix", str(pile), "-d", str(out), "--ca-file", str(lab.root_path), "--include-root"]) == 0
    assert subjects(out / "fullchain.pem")[-1] == "certdoctor Lab Root CA"
    before = (out / "fullchain.pem").read_bytes()
    capsys.readouterr()
    assert main(["fix", str(pile), "-d", str(out), "--ca-file", str(lab.root_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (out / "fullchain.pem").read_bytes() == before
    assert main(["fix", str(pile), "-d", str(out), "--ca-file", str(lab.root_path), "--force"]) == 0
    assert len(subjects(out / "fullchain.pem")) == 3


def test_der_and_pkcs7_inputs(lab, tmp_path, capsys):
    chain = lab.endpoints["good-two-level"].chain_path
    der = tmp_path / "leaf.cer"
    p7b = tmp_path / "bundle.p7b"
    subprocess.run(["openssl", "x509", "-in", str(chain), "-outform", "DER", "-out", str(der)], check=True)
    subprocess.run(
        ["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(chain), "-outform", "DER", "-out", str(p7b)], check=True
    )
    code, _ = fix_json(capsys, str(p7b), str(der), "-d", str(tmp_path / "out"), "--ca-file", str(lab.root_path))
    assert code == 0
    assert subjects(tmp_path / "out" / "fullchain.pem")[0] == "good-two-level.certdoctor.test"
    assert len(subjects(tmp_path / "out" / "fullchain.pem")) == 3


def test_ambiguous_and_bad_input(lab, tmp_path, capsys):
    two = tmp_path / "two.pem"
    two.write_bytes(
        lab.endpoints["good-rsa"].chain_path.read_bytes() + lab.endpoints["good-ecdsa"].chain_path.read_bytes()
    )
    assert main(["fix", str(two), "-d", str(tmp_path / "o1")]) == 2
    assert "candidate server certificates" in capsys.readouterr().err
    code, _ = fix_json(
        capsys,
        str(two),
        "--host",
        "good-ecdsa.certdoctor.test",
        "-d",
        str(tmp_path / "o2"),
        "--ca-file",
        str(lab.root_path),
    )
    assert code == 0 and subjects(tmp_path / "o2" / "cert.pem") == ["good-ecdsa.certdoctor.test"]
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    assert main(["fix", str(junk), "-d", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert "junk.txt" in err and "Traceback" not in err
    assert not (tmp_path / "o3" / "fullchain.pem").exists()


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_fixed_chain_served_by_a_real_tls_server_satisfies_curl(lab, pile, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fix", str(pile), "-d", str(out), "--ca-file", str(lab.root_path)]) == 0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(out / "fullchain.pem", lab.endpoints["wrong-order"].key_path)  # as nginx loads it
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    def serve() -> None:
        conn, _ = sock.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfixed")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    host = "wrong-order.certdoctor.test"
    proc = curl_https(lab.root_path, host, port)
    t.join(5)
    sock.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "fixed"


def _encrypted_copy(key_path: Path, dest: Path, password: bytes) -> Path:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    dest.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return dest


def test_key_is_checked_written_private_and_served(lab, pile, tmp_path, capsys):
    out = tmp_path / "out"
    key = lab.endpoints["wrong-order"].key_path
    code, doc = fix_json(capsys, str(pile), "--key", str(key), "-d", str(out), "--ca-file", str(lab.root_path))
    assert code == 0 and doc["plan"]["key"] == {"source": str(key), "matches_leaf": True}
    assert (out / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert (out / "haproxy.pem").stat().st_mode & 0o777 == 0o600
    assert (out / "fullchain.pem").stat().st_mode & 0o777 == 0o644
    haproxy = (out / "haproxy.pem").read_bytes()
    assert haproxy.count(b"BEGIN CERTIFICATE") == 3 and b"BEGIN PRIVATE KEY" in haproxy
    assert f"ssl_certificate_key {out.resolve()}/privkey.pem;" in {c["id"]: c["text"] for c in doc["config"]}["nginx"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(out / "fullchain.pem", out / "privkey.pem")  # loads only if the key matches


def test_encrypted_key_needs_the_right_password(lab, pile, tmp_path, capsys):
    enc = _encrypted_copy(lab.endpoints["wrong-order"].key_path, tmp_path / "enc.key", b"s3cret")
    base = [str(pile), "--key", str(enc), "--ca-file", str(lab.root_path)]
    assert main(["fix", *base, "-d", str(tmp_path / "a")]) == 2
    assert "encrypted" in capsys.readouterr().err
    assert main(["fix", *base, "--password", "wrong", "-d", str(tmp_path / "b")]) == 2
    assert "wrong password" in capsys.readouterr().err
    assert main(["fix", *base, "--password", "s3cret", "-d", str(tmp_path / "c")]) == 0
    assert b"ENCRYPTED" not in (tmp_path / "c" / "privkey.pem").read_bytes()


def test_key_of_another_certificate_is_refused(lab, pile, tmp_path, capsys):
    other = lab.endpoints["extra-cert"]
    pile_with_owner = tmp_path / "owner.pem"
    pile_with_owner.write_bytes(other.chain_path.read_bytes())
    argv = [
        "fix",
        str(pile),
        str(pile_with_owner),
        "--host",
        "wrong-order.certdoctor.test",
        "--key",
        str(other.key_path),
        "-d",
        str(tmp_path / "out"),
        "--ca-file",
        str(lab.root_path),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "key-mismatch" in err and "belongs to extra-cert.certdoctor.test" in err
    assert not (tmp_path / "out" / "fullchain.pem").exists()
    argv = ["fix", str(pile), "--key", str(lab.endpoints["good-ecdsa"].key_path), "-d", str(tmp_path / "o2")]
    assert main(argv) == 2
    assert "belongs to none of the input certificates" in capsys.readouterr().err


def test_key_found_inside_the_pile(lab, pile, tmp_path, capsys):
    (pile / "d-key.pem").write_bytes(lab.endpoints["wrong-order"].key_path.read_bytes())
    code, doc = fix_json(capsys, str(pile), "-d", str(tmp_path / "out"), "--ca-file", str(lab.root_path))
    assert code == 0 and doc["plan"]["key"]["source"].endswith("d-key.pem")


def test_pkcs12_in_and_out(lab, tmp_path, capsys):
    ep = lab.endpoints["good-two-level"]
    pfx = tmp_path / "from-ca.bin"  # no telling extension: recognised by content
    subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-export",
            "-in",
            str(ep.chain_path),
            "-inkey",
            str(ep.key_path),
            "-passout",
            "pass:pfxpw",
            "-out",
            str(pfx),
        ],
        check=True,
    )
    base = ["fix", str(pfx), "--ca-file", str(lab.root_path)]
    assert main([*base, "-d", str(tmp_path / "a")]) == 2
    assert "give its password" in capsys.readouterr().err
    assert main([*base, "--password", "nope", "-d", str(tmp_path / "b")]) == 2
    assert "wrong password" in capsys.readouterr().err
    out = tmp_path / "c"
    code, doc = fix_json(
        capsys, *base[1:], "--password", "pfxpw", "--pkcs12", "--pkcs12-password", "outpw", "-d", str(out)
    )
    assert code == 0 and doc["plan"]["key"]["source"] == str(pfx)
    assert len(subjects(out / "fullchain.pem")) == 3
    assert (out / "bundle.p12").stat().st_mode & 0o777 == 0o600
    proc = subprocess.run(
        ["openssl", "pkcs12", "-in", str(out / "bundle.p12"), "-passin", "pass:outpw", "-nokeys"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stdout.count("BEGIN CERTIFICATE") == 3
    assert main(["fix", str(ep.chain_path), "--pkcs12", "-d", str(tmp_path / "d")]) == 2
    assert "needs the private key" in capsys.readouterr().err


@pytest.mark.parametrize("scenario", ["wrong-order", "incomplete-aia", "duplicate-cert", "root-included"])
def test_fix_from_a_live_server(lab, tmp_path, capsys, scenario):
    ep = lab.endpoints[scenario]
    target = f"{ep.scenario.hostname}:{ep.port}"
    code, doc = fix_json(
        capsys, target, "--resolve", f"{target}:127.0.0.1", "-d", str(tmp_path), "--ca-file", str(lab.root_path)
    )
    assert code == 0, doc
    assert doc["verification"]["findings"] == []
    written = subjects(tmp_path / "fullchain.pem")
    assert written[0] == ep.scenario.hostname and "certdoctor Lab Root CA" not in written
    assert len(written) == len(set(written))


def test_fix_from_an_unreachable_server(tmp_path, capsys):
    assert main(["fix", "refused.test:1", "--resolve", "refused.test:1:127.0.0.1", "-d", str(tmp_path)]) == 3
    assert "no certificate obtained" in capsys.readouterr().err


def test_configuration_for_every_kind_of_server(lab, pile, tmp_path, capsys):
    out = tmp_path / "out"
    key = lab.endpoints["wrong-order"].key_path
    code, doc = fix_json(
        capsys,
        str(pile),
        "--key",
        str(key),
        "--pkcs12",
        "--password",
        "pw",
        "-d",
        str(out),
        "--ca-file",
        str(lab.root_path),
    )
    assert code == 0
    d = out.resolve()
    config = {c["id"]: c["text"] for c in doc["config"]}  # keyed by stable ids, labels beside them
    assert list(config) == [
        "nginx",
        "apache",
        "apache-legacy",
        "haproxy",
        "caddy",
        "traefik",
        "kubernetes",
        "java-keystore",
        "aws-acm",
        "appliance",
    ]
    assert {c["label"] for c in doc["config"]} >= {"Apache < 2.4.8", "Traefik (dynamic configuration)"}
    assert config["caddy"] == f"tls {d}/fullchain.pem {d}/privkey.pem"
    assert f"--cert={d}/fullchain.pem --key={d}/privkey.pem" in config["kubernetes"]
    assert f"-srckeystore {d}/bundle.p12" in config["java-keystore"]
    assert f"--certificate-chain fileb://{d}/chain.pem" in config["aws-acm"]
    assert config["haproxy"] == f"bind :443 ssl crt {d}/haproxy.pem"


@pytest.mark.skipif(not shutil.which("keytool"), reason="no JDK (keytool) on this machine")
def test_bundle_p12_imports_into_a_java_keystore(lab, pile, tmp_path, capsys):
    out = tmp_path / "out"
    key = lab.endpoints["wrong-order"].key_path
    assert (
        main(
            [
                "fix",
                str(pile),
                "--key",
                str(key),
                "--pkcs12",
                "--pkcs12-password",
                "changeit",
                "-d",
                str(out),
                "--ca-file",
                str(lab.root_path),
            ]
        )
        == 0
    )
    ks = tmp_path / "keystore.p12"
    subprocess.run(
        [
            "keytool",
            "-importkeystore",
            "-srckeystore",
            str(out / "bundle.p12"),
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            "changeit",
            "-destkeystore",
            str(ks),
            "-deststoretype",
            "PKCS12",
            "-deststorepass",
            "changeit",
            "-noprompt",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    listing = subprocess.run(
        ["keytool", "-list", "-v", "-keystore", str(ks), "-storepass", "changeit"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "PrivateKeyEntry" in listing and "Certificate chain length: 3" in listing


def _ca(name: str, key, issuer_name: str, issuer_key, *, ca: bool = True) -> x509.Certificate:
    import datetime

    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def test_cross_signed_cycle_terminates_with_an_explanation(tmp_path, capsys):
    from cryptography.hazmat.primitives.asymmetric import ec

    ka, kb, kl = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    a_by_b = _ca("Cycle CA A", ka, "Cycle CA B", kb)
    b_by_a = _ca("Cycle CA B", kb, "Cycle CA A", ka)
    leaf = _ca("cycle.example.test", kl, "Cycle CA A", ka, ca=False)
    pile = tmp_path / "cycle.pem"
    pile.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (b_by_a, leaf, a_by_b)))
    code, doc = fix_json(capsys, str(pile), "-d", str(tmp_path / "out"), "--no-aia")
    assert code == 1
    assert not doc["plan"]["complete"] and "incomplete" in doc["plan"]["notes"][0]
    assert subjects(tmp_path / "out" / "fullchain.pem")[0] == "cycle.example.test"
    assert len(subjects(tmp_path / "out" / "fullchain.pem")) == 3  # leaf, A (by B), B (by A); no repetition


def test_ten_thousand_certificates_are_refused_clearly(lab, tmp_path, capsys):
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    one = _ca("filler", key, "filler", key).public_bytes(Encoding.PEM)
    big = tmp_path / "bundle.pem"
    big.write_bytes(one * 10_000)
    assert main(["fix", str(big), "-d", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "10000 certificates" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_intermediates_directory_completes_the_chain_without_aia(lab, tmp_path, capsys):
    leaf = lab.endpoints["incomplete-no-aia"].chain_path  # no AIA: only a local bundle can help
    bundle = tmp_path / "ca-bundle"
    bundle.mkdir()
    for name in ("good-rsa", "good-ecdsa", "good-two-level"):
        (bundle / f"{name}.pem").write_bytes(lab.endpoints[name].chain_path.read_bytes())
    code, doc = fix_json(
        capsys, str(leaf), "--intermediates", str(bundle), "-d", str(tmp_path / "out"), "--ca-file", str(lab.root_path)
    )
    assert code == 0, doc
    assert subjects(tmp_path / "out" / "fullchain.pem") == [
        "incomplete-no-aia.certdoctor.test",
        "certdoctor Lab RSA CA",
    ]
    assert doc["plan"]["dropped"] == []  # unused pool certificates are not "left out" of the input
