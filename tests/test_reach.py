"""Other ways clients reach servers: client certificates (mutual TLS) against a real nginx and OpenSSL's s_server,
each confirmed with curl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from certdoctor import diagnose
from certdoctor.cli import main
from certdoctor.collect.clientcert import ClientCertificateError, load_client_identity
from certdoctor.lab.pki import cert_pem, key_pem
from netutil import free_port, nginx_conf, start_nginx, wait_for_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
OPENSSL = shutil.which("openssl")
HOST = "mtls.certdoctor.test"
LAB_CA_NAMES = ("CN=certdoctor Lab Root CA,O=certdoctor Lab", "CN=certdoctor Lab RSA CA,O=certdoctor Lab")


@dataclass
class Pki:
    root: Path
    server: Path  # leaf + intermediate
    server_key: Path
    client: Path  # leaf + intermediate (curl's --cert file)
    client_key: Path
    client_combined: Path  # certificate, intermediate and key in one file
    stranger: Path  # a client certificate from a CA the servers do not accept
    stranger_key: Path
    client_cas: Path  # what the servers accept: the lab root and RSA CA


@pytest.fixture(scope="module")
def pki(lab, tmp_path_factory: pytest.TempPathFactory) -> Pki:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("mtls-pki")
    rsa_ca = lab.pki.issuers["lab-rsa-ca"].cert
    server, server_key = lab.pki.issue_leaf(key_name="mtls-server", dns_names=(HOST,), common_name=HOST)
    client, client_key = lab.pki.issue_leaf(
        key_name="mtls-client", dns_names=None, common_name="mtls client", ekus=(ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    stranger, stranger_key = lab.pki.issue_leaf(
        key_name="mtls-stranger",
        issuer="unrelated-ca",
        dns_names=None,
        common_name="stranger",
        ekus=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    )
    files = {
        "server.pem": cert_pem(server) + cert_pem(rsa_ca),
        "server.key": key_pem(server_key),
        "client.pem": cert_pem(client) + cert_pem(rsa_ca),
        "client.key": key_pem(client_key),
        "combined.pem": cert_pem(client) + cert_pem(rsa_ca) + key_pem(client_key),
        "stranger.pem": cert_pem(stranger),
        "stranger.key": key_pem(stranger_key),
        "client-cas.pem": lab.root_path.read_bytes() + cert_pem(rsa_ca),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
        if name.endswith((".key", "combined.pem")):
            (d / name).chmod(0o600)
    return Pki(
        lab.root_path,
        d / "server.pem",
        d / "server.key",
        d / "client.pem",
        d / "client.key",
        d / "combined.pem",
        d / "stranger.pem",
        d / "stranger.key",
        d / "client-cas.pem",
    )


@dataclass
class Servers:
    nginx: int  # ssl_verify_client on: the handshake completes, HTTP answers 400 without a certificate
    strict13: int  # s_server -Verify, TLS 1.3: refuses after the client's Finished (certificate_required)
    strict12: int  # s_server -Verify, TLS 1.2: aborts the handshake (handshake_failure)


def _s_server(pki: Pki, port: int, version: str) -> subprocess.Popen[bytes]:
    assert OPENSSL is not None
    return subprocess.Popen(
        [
            OPENSSL,
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            f"127.0.0.1:{port}",
            version,
            "-cert",
            str(pki.server),
            "-key",
            str(pki.server_key),
            "-CAfile",
            str(pki.client_cas),
            "-verify_return_error",
            "-Verify",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def servers(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if NGINX is None or OPENSSL is None:
        pytest.skip("nginx and openssl are needed (.ci/run installs Debian's nginx-light)")
    ports = Servers(free_port(), free_port(), free_port())
    prefix = tmp_path_factory.mktemp("mtls-nginx")
    conf = nginx_conf(
        prefix,
        f"""
    server {{
        listen 127.0.0.1:{ports.nginx} ssl;
        server_name {HOST};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate     {pki.server};
        ssl_certificate_key {pki.server_key};
        ssl_verify_client on;
        ssl_client_certificate {pki.client_cas};
        ssl_verify_depth 2;
        location / {{ return 200 "hello $ssl_client_s_dn\\n"; }}
    }}""",
    )
    procs = [
        start_nginx(NGINX, prefix, conf),
        _s_server(pki, ports.strict13, "-tls1_3"),
        _s_server(pki, ports.strict12, "-tls1_2"),
    ]
    try:
        for port in (ports.nginx, ports.strict13, ports.strict12):
            wait_for_port(port)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _curl(pki: Pki, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(pki.root),
            "--resolve",
            f"{HOST}:{port}:127.0.0.1",
            *extra,
            f"https://{HOST}:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )


def _check(pki: Pki, port: int, *extra: str) -> dict:  # type: ignore[type-arg]
    return diagnose(
        f"{HOST}:{port}",
        resolve=["127.0.0.1"],
        ca_files=[str(pki.root)],
        revocation=False,
        timeout=5,
        **dict(zip(extra[::2], extra[1::2], strict=True)),  # type: ignore[arg-type]
    ).to_dict()


def _ids(doc: dict) -> list[str]:  # type: ignore[type-arg]
    return [f["id"] for f in doc["findings"] if f["severity"] != "info"]


def test_nginx_that_asks_completes_the_handshake_and_refuses_in_http(pki: Pki, servers: Servers) -> None:
    without = _curl(pki, servers.nginx)
    assert without.returncode == 0 and "No required SSL certificate was sent" in without.stdout
    doc = _check(pki, servers.nginx)
    assert _ids(doc) == ["client-certificate-requested"]
    [f] = doc["findings"]
    assert f["severity"] == "warning" and "ssl_verify_client" in f["detail"]
    assert f["evidence"]["ca_names"] == list(LAB_CA_NAMES) and f["evidence"]["sent"] is False
    assert f["evidence"]["refused"] is None and f["evidence"]["tls_version"] == "TLSv1.3"
    [chain] = doc["endpoints"]
    assert chain["client_auth"] == {"ca_names": list(LAB_CA_NAMES), "sent": False, "refused": None}
    assert doc["verdict"] == "valid"

    with_cert = _curl(pki, servers.nginx, "--cert", str(pki.client), "--key", str(pki.client_key))
    assert with_cert.returncode == 0 and with_cert.stdout == "hello CN=mtls client\n"
    doc = _check(pki, servers.nginx, "client_cert", str(pki.client), "client_key", str(pki.client_key))
    assert _ids(doc) == [] and doc["verdict"] == "valid"
    assert doc["endpoints"][0]["client_auth"]["sent"] is True


@pytest.mark.parametrize("version", ["tls1.3", "tls1.2"])
def test_a_server_that_requires_a_certificate(pki: Pki, servers: Servers, version: str) -> None:
    port = servers.strict13 if version == "tls1.3" else servers.strict12
    without = _curl(pki, port)
    alert = "tlsv13 alert certificate required" if version == "tls1.3" else "alert handshake failure"
    assert without.returncode in (35, 56) and alert in without.stderr, without.stderr
    doc = _check(pki, port)
    assert _ids(doc) == ["client-certificate-required"] and doc["verdict"] == "invalid"
    [f] = [f for f in doc["findings"] if f["id"] == "client-certificate-required"]
    assert f["severity"] == "error" and f["rejected_by"] == ["chrome", "firefox", "safari", "curl", "python",
                                                              "node", "java", "go", "dotnet"]  # fmt: skip
    assert alert in f["evidence"]["refused"] and f["evidence"]["ca_names"] == list(LAB_CA_NAMES)
    assert "CN=certdoctor Lab RSA CA" in f["detail"] and "--cert" in f["fix"]
    # the chain, sent before the request, is collected and judged all the same
    assert doc["endpoints"][0]["ok"] and doc["endpoints"][0]["certificates_received"] >= 2

    # with the certificate (and its key in the same file, as curl --cert takes it) both agree
    assert _curl(pki, port, "--cert", str(pki.client_combined)).returncode == 0
    doc = _check(pki, port, "client_cert", str(pki.client_combined))
    assert _ids(doc) == [] and doc["verdict"] == "valid"


def test_a_certificate_the_server_does_not_accept(pki: Pki, servers: Servers) -> None:
    curl = _curl(pki, servers.strict13, "--cert", str(pki.stranger), "--key", str(pki.stranger_key))
    assert curl.returncode == 56 and "alert unknown ca" in curl.stderr, curl.stderr
    doc = _check(pki, servers.strict13, "client_cert", str(pki.stranger), "client_key", str(pki.stranger_key))
    assert _ids(doc) == ["client-certificate-rejected"] and doc["verdict"] == "invalid"
    [f] = [f for f in doc["findings"] if f["id"] == "client-certificate-rejected"]
    assert "unknown ca" in f["evidence"]["refused"] and f["evidence"]["sent"] is True


def test_cli_cert_and_key_as_curl_takes_them(pki: Pki, servers: Servers, capsys) -> None:  # type: ignore[no-untyped-def]
    target = f"{HOST}:{servers.strict12}"
    common = [target, "--resolve", f"{target}:127.0.0.1", "--ca-file", str(pki.root), "--no-revocation", "--json"]
    assert main(["check", *common]) == 1
    assert "client-certificate-required" in [f["id"] for f in json.loads(capsys.readouterr().out)["findings"]]
    # check's --key is the server's key, unless it belongs to the --cert certificate (curl's --cert/--key pair)
    assert main(["check", *common, "--cert", str(pki.client), "--key", str(pki.client_key)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "key-mismatch" not in [f["id"] for f in doc["findings"]]
    assert doc["endpoints"][0]["client_auth"]["sent"] is True
    assert main(["check", *common, "--client-cert", str(pki.client), "--client-key", str(pki.client_key)]) == 0
    capsys.readouterr()
    # inspect and scan take it too
    assert main(["inspect", target, "--resolve", f"{target}:127.0.0.1", "--cert", str(pki.client_combined), "-q"]) == 0
    capsys.readouterr()
    assert main(["check", *common, "--client-key", str(pki.client_key)]) == 2
    assert "--client-key goes with --cert" in capsys.readouterr().err


def test_unusable_client_certificates_are_usage_errors(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ClientCertificateError, match="no private key"):
        load_client_identity(str(pki.client))
    with pytest.raises(ClientCertificateError, match="does not belong"):
        load_client_identity(str(pki.client), str(pki.stranger_key))
    with pytest.raises(ClientCertificateError, match="no certificate"):
        load_client_identity(str(pki.client_key))
    identity = load_client_identity(str(pki.client_combined))
    assert len(identity.certs) == 2 and identity.cert.subject.rfc4514_string() == "CN=mtls client"
