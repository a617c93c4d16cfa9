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
from typing import Any

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


# --- HTTP CONNECT proxies: Debian's tinyproxy on loopback ---------------------------------------------------------

TINYPROXY = shutil.which("tinyproxy")


@dataclass
class Tinyproxy:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []


def _tinyproxy(directory: Path, allowed_ports: list[int], auth: str | None = None) -> tuple[Tinyproxy, Any]:
    assert TINYPROXY is not None
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "tinyproxy.log"
    conf = directory / "tinyproxy.conf"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 10",
        f'LogFile "{log}"',
        "LogLevel Info",
        f'PidFile "{directory}/tinyproxy.pid"',
        "MaxClients 20",
        "Allow 127.0.0.1",
        *(f"ConnectPort {p}" for p in allowed_ports),
    ]
    if auth:
        lines.append(f"BasicAuth {auth.replace(':', ' ')}")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([TINYPROXY, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return Tinyproxy(port, log), proc


@dataclass
class Proxies:
    open: Tinyproxy  # CONNECT to the lab's good-rsa and incomplete-no-aia ports only
    auth: Tinyproxy  # the same, with Basic authentication (user "certdoctor", password "s3cret")


@pytest.fixture(scope="module")
def proxies(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxies]:  # type: ignore[no-untyped-def]
    if TINYPROXY is None:
        pytest.skip("tinyproxy is not installed (.ci/run installs Debian's tinyproxy)")
    ports = [lab.endpoints[name].port for name in ("good-rsa", "incomplete-no-aia")]
    base = tmp_path_factory.mktemp("tinyproxy")
    first, p1 = _tinyproxy(base / "open", ports)
    second, p2 = _tinyproxy(base / "auth", ports, auth="certdoctor:s3cret")
    try:
        yield Proxies(first, second)
    finally:
        for proc in (p1, p2):
            proc.terminate()
            proc.wait(timeout=10)


def _lab_check(lab, name: str, **kw: Any) -> Any:  # type: ignore[no-untyped-def]
    ep = lab.endpoints[name]
    kw.setdefault("revocation", False)
    kw.setdefault("all_key_types", False)  # one CONNECT per check (the second key type has tests of its own)
    return diagnose(f"{ep.hostname}:{ep.port}", resolve=["127.0.0.1"], ca_files=[str(lab.root_path)], timeout=5, **kw)


def _lab_curl(lab, name: str, proxy: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    ep = lab.endpoints[name]
    authority = f"{ep.hostname}:{ep.port}"
    return subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "--proxy",
            proxy,
            "--cacert",
            str(lab.root_path),
            "--connect-to",
            f"{authority}:127.0.0.1:{ep.port}",
            f"https://{authority}/",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )


def _connects(proxy: Tinyproxy, port: int) -> int:
    return sum(f"CONNECT 127.0.0.1:{port} HTTP/1.1" in line for line in proxy.lines())


@pytest.mark.parametrize(
    ("scenario", "ids", "curl_rc"), [("good-rsa", [], 0), ("incomplete-no-aia", ["missing-intermediate"], 60)]
)
def test_the_handshake_goes_through_the_proxy(
    lab, proxies: Proxies, scenario: str, ids: list[str], curl_rc: int
) -> None:  # type: ignore[no-untyped-def]
    port = lab.endpoints[scenario].port
    before = _connects(proxies.open, port)
    d = _lab_check(lab, scenario, proxy=proxies.open.url)
    assert _connects(proxies.open, port) == before + 1  # tinyproxy's log shows our CONNECT
    assert [f.id for f in d.errors] == ids
    [endpoint] = d.to_dict()["endpoints"]
    assert endpoint["proxy"] == proxies.open.url and endpoint["ok"]
    # curl through the same proxy agrees on the verdict
    curl = _lab_curl(lab, scenario, proxies.open.url)
    assert curl.returncode == curl_rc, curl.stderr
    assert _connects(proxies.open, port) == before + 2


def test_basic_authentication_from_the_url(lab, proxies: Proxies) -> None:  # type: ignore[no-untyped-def]
    d = _lab_check(lab, "good-rsa", proxy=proxies.auth.url)
    assert d.ids() == ["proxy-failed"] and not d.reachable and d.exit_code == 3
    f = d.findings[0]
    assert "HTTP/1.0 407" in f.detail and "http://user:password@host:port" in f.detail
    assert f.evidence["proxy"] == proxies.auth.url
    assert _lab_curl(lab, "good-rsa", proxies.auth.url).returncode == 56  # curl: CONNECT tunnel failed, response 407

    with_password = f"http://certdoctor:s3cret@127.0.0.1:{proxies.auth.port}"
    d = _lab_check(lab, "good-rsa", proxy=with_password)
    assert d.valid and d.ids() == []
    # the password is never shown
    assert d.to_dict()["endpoints"][0]["proxy"] == f"http://certdoctor:***@127.0.0.1:{proxies.auth.port}"
    assert _lab_curl(lab, "good-rsa", with_password).returncode == 0

    d = _lab_check(lab, "good-rsa", proxy=f"http://certdoctor:wrong@127.0.0.1:{proxies.auth.port}")
    # (tinyproxy answers wrong credentials with 401, not 407)
    assert "HTTP/1.0 401 Unauthorized" in d.findings[0].detail and "refused the credentials" in d.findings[0].detail


def test_a_port_the_proxy_does_not_allow(lab, proxies: Proxies, capsys) -> None:  # type: ignore[no-untyped-def]
    ep = lab.endpoints["expired"]
    target = f"{ep.hostname}:{ep.port}"
    args = ["check", target, "--resolve", f"{target}:127.0.0.1", "--ca-file", str(lab.root_path), "--no-revocation"]
    assert main([*args, "--proxy", proxies.open.url, "-q"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"certdoctor check: 127.0.0.1:{ep.port}: the proxy {proxies.open.url} refused CONNECT 127.0.0.1:{ep.port}: "
        "HTTP/1.1 403 Access violation"
    ]
    assert _lab_curl(lab, "expired", proxies.open.url).returncode == 56
    # --noproxy: reached directly (and the expired certificate is what there is to say)
    assert main([*args, "--proxy", proxies.open.url, "--noproxy", "certdoctor.test", "-q"]) == 1
    assert "expired" in capsys.readouterr().out


def test_environment_proxy_and_no_proxy(lab, proxies: Proxies, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    port = lab.endpoints["good-rsa"].port
    before = _connects(proxies.open, port)
    monkeypatch.setenv("HTTPS_PROXY", proxies.open.url)
    assert _lab_check(lab, "good-rsa").valid
    assert _connects(proxies.open, port) == before + 1
    monkeypatch.setenv("NO_PROXY", "example.com, .certdoctor.test")
    assert _lab_check(lab, "good-rsa").valid
    assert _connects(proxies.open, port) == before + 1  # NO_PROXY: direct
    assert _lab_check(lab, "good-rsa", no_proxy="").valid  # --noproxy '' replaces NO_PROXY: through the proxy
    assert _connects(proxies.open, port) == before + 2
    assert _lab_check(lab, "good-rsa", proxy="").valid  # --proxy '': none at all
    assert _connects(proxies.open, port) == before + 2


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (None, "did not answer CONNECT within 1.0 s"),  # accepts, never answers
        (b"SSH-2.0-OpenSSH_9.2\r\n", "'SSH-2.0-OpenSSH_9.2', not an HTTP status line"),
        (
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * 40_000,
            "not a whole HTTP header: it sent a line longer than 16384 bytes",
        ),  # byte cap
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "refused CONNECT 127.0.0.1:443: HTTP/1.1 502 Bad Gateway"),
        (b"", "closed the connection before answering CONNECT"),
    ],
    ids=["silent", "ssh", "endless-header", "502", "closed"],
)
def test_broken_proxies_are_one_line_never_a_hang(reply: bytes | None, expected: str) -> None:
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            if reply is None:
                conn.recv(1)  # until the client gives up
                return
            conn.sendall(reply)
            if reply.startswith(b"HTTP/1.1 200"):
                conn.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        d = diagnose("127.0.0.1:443", proxy=f"http://127.0.0.1:{port}", timeout=1, revocation=False, fetch_aia=False)
    finally:
        server.close()
        thread.join(timeout=5)
    assert d.ids() == ["proxy-failed"]
    assert expected in d.failures[0].error and d.failures[0].error_kind == "proxy"


def test_aia_downloads_go_through_the_proxy_and_netguard_still_applies(lab, proxies: Proxies) -> None:  # type: ignore[no-untyped-def]
    aia = f"GET http://127.0.0.1:{lab.aia_port}/"
    before = sum(aia in line for line in proxies.open.lines())
    # incomplete-aia: the intermediate is fetched through the proxy (plain GET, not CONNECT)
    d = _lab_check(lab, "incomplete-aia", proxy=proxies.open.url, no_proxy="certdoctor.test")
    [fetch] = d.evidence.aia.values()
    assert fetch.error is None and len(fetch.certs) == 1
    assert sum(aia in line for line in proxies.open.lines()) == before + 1
    # service mode: the URL's host is vetted before the proxy is asked
    d = _lab_check(lab, "incomplete-aia", proxy=proxies.open.url, no_proxy="certdoctor.test", allow_private_fetch=False)
    assert "missing-intermediate" in d.ids()
    [fetch] = d.evidence.aia.values()
    assert fetch.error is not None and "loopback" in fetch.error and "--refuse-private-urls" in fetch.error
    assert sum(aia in line for line in proxies.open.lines()) == before + 1


def test_proxy_policy_follows_curls_rules() -> None:
    from certdoctor.collect.proxy import ProxyPolicy, parse_proxy
    from certdoctor.errors import InputError

    env = {"https_proxy": "http://p:3128", "HTTPS_PROXY": "http://other:1", "HTTP_PROXY": "http://cgi:1"}
    policy = ProxyPolicy(environ=env)
    assert policy.for_host("a.example").label == "http://p:3128"  # lower case first
    assert policy.for_url("http://aia.example/ca.cer") is None  # HTTP_PROXY (upper case) is never read
    assert ProxyPolicy(environ={"ALL_PROXY": "p:8080"}).for_url("http://x/").label == "http://p:8080"
    assert ProxyPolicy(environ={"all_proxy": "p"}).for_host("x").port == 1080  # curl's default port
    no = ProxyPolicy(environ={"https_proxy": "http://p:1", "NO_PROXY": "example.com,10.0.0.0/8, ::1,.corp"})
    assert no.for_host("example.com") is None and no.for_host("www.example.com") is None
    assert no.for_host("badexample.com") is not None
    assert no.for_host("10.1.2.3") is None and no.for_host("11.1.2.3") is not None
    assert no.for_host("[::1]") is None and no.for_host("a.corp.") is None and no.for_host("corp.example") is not None
    assert ProxyPolicy(proxy="http://p:1", no_proxy="*", environ={}).for_host("anything") is None
    assert ProxyPolicy(proxy="http://p:1", no_proxy="", environ={"NO_PROXY": "*"}).for_host("x") is not None
    assert parse_proxy("http://u%40x:p%3Aw@h:1").url == "http://u%40x:p%3Aw@h:1"
    with pytest.raises(InputError, match="only http:// proxies"):
        ProxyPolicy(proxy="socks5://h:1080", environ={})
    with pytest.raises(InputError, match="HTTPS_PROXY"):
        ProxyPolicy(environ={"HTTPS_PROXY": "https://h:1"})


def test_starttls_through_the_proxy(lab, postfix_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if TINYPROXY is None:
        pytest.skip("tinyproxy is not installed (.ci/run installs Debian's tinyproxy)")
    port = postfix_server.ports[("good-rsa", "starttls")]
    proxy, proc = _tinyproxy(tmp_path / "tinyproxy", [port])
    host = lab.endpoints["good-rsa"].hostname
    try:
        d = diagnose(
            f"smtp://{host}:{port}", resolve=["127.0.0.1"], ca_files=[str(lab.root_path)], proxy=proxy.url, timeout=5
        )
        assert d.valid and d.ids() == []
        [endpoint] = d.to_dict()["endpoints"]
        assert endpoint["proxy"] == proxy.url and endpoint["starttls"]["banner"].startswith("220 mail.certdoctor.test")
        assert _connects(proxy, port) == 2  # and the ECDSA-only handshake, which Postfix (one RSA certificate) refuses
        # curl speaks SMTP through the same tunnel (-p) and agrees
        curl = subprocess.run(
            ["curl", "-sS", "--ssl-reqd", "-p", "--proxy", proxy.url, "--cacert", str(lab.root_path),
             "--connect-to", f"{host}:{port}:127.0.0.1:{port}", "-X", "NOOP", f"smtp://{host}:{port}/"],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        assert curl.returncode == 0, curl.stderr
        assert _connects(proxy, port) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- servers with an RSA and an ECDSA certificate: nginx with two ssl_certificate lines ----------------------------

DUAL = "dual.certdoctor.test"


@dataclass
class Dual:
    ecdsa_broken: int  # TLS 1.2 and 1.3; the ECDSA certificate without its intermediate
    rsa_broken: int  # the RSA certificate without its intermediate
    ecdsa_broken_13: int  # TLS 1.3 only: the certificate is chosen by signature algorithms
    single: int  # one RSA certificate: no second chain


@pytest.fixture(scope="module")
def dual(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dual]:  # type: ignore[no-untyped-def]
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    d = tmp_path_factory.mktemp("dual")
    rsa_ca, ec_ca = lab.pki.issuers["lab-rsa-ca"].cert, lab.pki.issuers["lab-ecdsa-ca"].cert
    rsa, rsa_key = lab.pki.issue_leaf(key_name="dual-rsa", dns_names=(DUAL,), common_name=DUAL)
    ec, ec_key = lab.pki.issue_leaf(
        key_name="dual-ec", key_kind="ec256", issuer="lab-ecdsa-ca", dns_names=(DUAL,), common_name=DUAL
    )
    files = {
        "rsa-full.pem": cert_pem(rsa) + cert_pem(rsa_ca),
        "rsa-leaf.pem": cert_pem(rsa),
        "rsa.key": key_pem(rsa_key),
        "ec-full.pem": cert_pem(ec) + cert_pem(ec_ca),
        "ec-leaf.pem": cert_pem(ec),
        "ec.key": key_pem(ec_key),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    ports = Dual(free_port(), free_port(), free_port(), free_port())

    def server(port: int, rsa_file: str, ec_file: str | None, protocols: str = "TLSv1.2 TLSv1.3") -> str:
        second = f"ssl_certificate {d / ec_file}; ssl_certificate_key {d / 'ec.key'};" if ec_file else ""
        return f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {DUAL};
        ssl_protocols {protocols};
        ssl_certificate {d / rsa_file}; ssl_certificate_key {d / "rsa.key"};
        {second}
        location / {{ return 200 "dual\\n"; }}
    }}"""

    prefix = d / "nginx"
    conf = nginx_conf(
        prefix,
        server(ports.ecdsa_broken, "rsa-full.pem", "ec-leaf.pem")
        + server(ports.rsa_broken, "rsa-leaf.pem", "ec-full.pem")
        + server(ports.ecdsa_broken_13, "rsa-full.pem", "ec-leaf.pem", "TLSv1.3")
        + server(ports.single, "rsa-full.pem", None),
    )
    proc = start_nginx(NGINX, prefix, conf)
    try:
        for port in (ports.ecdsa_broken, ports.rsa_broken, ports.ecdsa_broken_13, ports.single):
            wait_for_port(port)
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _dual_check(lab, port: int, **kw: Any) -> Any:  # type: ignore[no-untyped-def]
    return diagnose(
        f"{DUAL}:{port}",
        resolve=["127.0.0.1"],
        ca_files=[str(lab.root_path)],
        revocation=False,
        fetch_aia=False,
        timeout=5,
        **kw,
    )


def _dual_curl(lab, port: int, *extra: str) -> int:  # type: ignore[no-untyped-def]
    return subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--cacert", str(lab.root_path), "--resolve",
         f"{DUAL}:{port}:127.0.0.1", *extra, f"https://{DUAL}:{port}/"],
        capture_output=True, text=True, timeout=20,
    ).returncode  # fmt: skip


RSA_ONLY = ("--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256")
ECDSA_ONLY = ("--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")


def _endpoint_types(d: Any) -> list[tuple[str, str | None, bool, int]]:
    return [
        (e["source"], e["key_type"], e["key_type_only"], e["certificates_received"]) for e in d.to_dict()["endpoints"]
    ]


def test_dual_server_with_a_broken_ecdsa_chain(lab, dual: Dual) -> None:  # type: ignore[no-untyped-def]
    port = dual.ecdsa_broken
    d = _dual_check(lab, port)
    src = f"127.0.0.1:{port}"
    assert _endpoint_types(d) == [(src, "ECDSA", False, 1), (f"{src} (RSA)", "RSA", True, 2)]
    assert [(f.id, f.severity.value, f.sources) for f in d.findings] == [
        ("missing-intermediate", "error", (src,)),
        ("key-types-differ", "warning", (src, f"{src} (RSA)")),
    ]
    f = d.findings[1]
    assert f.evidence == {
        "address": src,
        "default_key_type": "ECDSA",
        "other_key_type": "RSA",
        "broken_key_type": "ECDSA",
        "errors": {"ECDSA": ["missing-intermediate"], "RSA": []},
    }
    assert "works in one client and not in another" in f.detail
    assert "clients that offer ECDSA (every current browser" in f.detail
    assert not d.valid and d.findings[0].rejected_by == ("chrome", "firefox", "safari", "curl", "python", "node",
                                                         "java", "go", "dotnet")  # fmt: skip
    # curl agrees: refused by default and offering ECDSA, fine offering only RSA
    assert _dual_curl(lab, port) == 60
    assert _dual_curl(lab, port, *ECDSA_ONLY) == 60
    assert _dual_curl(lab, port, *RSA_ONLY) == 0


def test_dual_server_with_a_broken_rsa_chain(lab, dual: Dual) -> None:  # type: ignore[no-untyped-def]
    port = dual.rsa_broken
    d = _dual_check(lab, port)
    src = f"127.0.0.1:{port}"
    assert _endpoint_types(d) == [(src, "ECDSA", False, 2), (f"{src} (RSA)", "RSA", True, 1)]
    assert [(f.id, f.sources) for f in d.findings] == [
        ("missing-intermediate", (f"{src} (RSA)",)),
        ("key-types-differ", (src, f"{src} (RSA)")),
    ]
    f = d.findings[1]
    assert f.evidence["broken_key_type"] == "RSA" and "clients that offer only RSA" in f.detail
    assert _dual_curl(lab, port) == 0
    assert _dual_curl(lab, port, *RSA_ONLY) == 60
    assert _dual_curl(lab, port, *ECDSA_ONLY) == 0


def test_dual_server_speaking_only_tls13(lab, dual: Dual) -> None:  # type: ignore[no-untyped-def]
    # no TLS 1.2 cipher suite to choose by: the RSA certificate is asked for by signature algorithms
    d = _dual_check(lab, dual.ecdsa_broken_13)
    src = f"127.0.0.1:{dual.ecdsa_broken_13}"
    assert _endpoint_types(d) == [(src, "ECDSA", False, 1), (f"{src} (RSA)", "RSA", True, 2)]
    assert [e["tls_version"] for e in d.to_dict()["endpoints"]] == ["TLSv1.3", "TLSv1.3"]
    assert d.ids() == ["missing-intermediate", "key-types-differ"]
    # openssl s_client offering only RSA signature algorithms gets the RSA chain, and verifies it
    out = subprocess.run(
        [OPENSSL or "openssl", "s_client", "-connect", f"127.0.0.1:{dual.ecdsa_broken_13}", "-servername", DUAL,
         "-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256", "-CAfile", str(lab.root_path), "-verify_return_error"],
        input="", capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert (
        out.returncode == 0
        and "Verify return code: 0 (ok)" in out.stdout
        and "Peer signature type: RSA-PSS" in out.stdout
    )


def test_single_certificate_server_and_the_switch(lab, dual: Dual) -> None:  # type: ignore[no-untyped-def]
    d = _dual_check(lab, dual.single)
    assert _endpoint_types(d) == [(f"127.0.0.1:{dual.single}", None, False, 2)] and d.valid
    # --no-all-key-types (scan's default): one handshake, the default certificate only
    d = _dual_check(lab, dual.ecdsa_broken, all_key_types=False)
    assert _endpoint_types(d) == [(f"127.0.0.1:{dual.ecdsa_broken}", None, False, 1)]
    assert d.ids() == ["missing-intermediate"]


def test_scan_asks_for_both_key_types_only_when_told(lab, dual: Dual, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{DUAL}:{dual.ecdsa_broken},addr=127.0.0.1\n")
    common = ["scan", str(targets), "--ca-file", str(lab.root_path), "--no-revocation", "--no-aia", "--jsonl", "-q"]
    assert main(common) == 1
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(record["endpoints"]) == 1 and "key-types-differ" not in json.dumps(record["findings"])
    assert main([*common, "--all-key-types"]) == 1
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["source"] for e in record["endpoints"]] == [
        f"127.0.0.1:{dual.ecdsa_broken}",
        f"127.0.0.1:{dual.ecdsa_broken} (RSA)",
    ]
    assert "key-types-differ" in json.dumps(record["findings"])
    # check: on by default, --no-all-key-types turns it off
    target = f"{DUAL}:{dual.ecdsa_broken}"
    check = ["check", target, "--resolve", f"{target}:127.0.0.1", "--ca-file", str(lab.root_path), "--no-revocation"]
    assert main([*check, "--json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["endpoints"]) == 2
    assert main([*check, "--json", "--no-all-key-types"]) == 1
    assert len(json.loads(capsys.readouterr().out)["endpoints"]) == 1


# --- watch: the targets of `watch add` are reached as `watch run` / `watch serve` are told ------------------------


def test_watch_run_reaches_targets_through_the_proxy_with_the_client_certificate(  # type: ignore[no-untyped-def]
    lab, proxies: Proxies, pki: Pki, servers: Servers, tmp_path: Path, capsys, monkeypatch
) -> None:
    """`watch run --proxy URL` carries every handshake through the proxy (tinyproxy's log shows the CONNECT, and
    a port it does not allow is proxy-failed: unreachable), and `--cert FILE` is sent to a server that requires a
    client certificate, as check does."""
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "http_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    good, expired = lab.endpoints["good-rsa"], lab.endpoints["expired"]
    db = ["--db", f"sqlite:///{tmp_path / 'watch.db'}"]
    lines = [f"{ep.hostname}:{ep.port},addr=127.0.0.1" for ep in (good, expired)]
    assert main(["watch", "add", *lines, *db]) == 0
    capsys.readouterr()
    before = _connects(proxies.open, good.port)
    run = ["watch", "run", "--all", *db, "--ca-file", str(lab.root_path), "--no-revocation", "--json"]
    assert main([*run, "--proxy", proxies.open.url]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdicts"] == {"valid": 1, "unreachable": 1}, doc
    assert _connects(proxies.open, good.port) == before + 1  # through the proxy
    # without --proxy (and no proxy in the environment) both are reached directly
    assert main(run) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdicts"] == {"valid": 1, "invalid": 1} and _connects(proxies.open, good.port) == before + 1, doc

    # a server that requires a client certificate: refused without one, valid with --cert (curl agrees)
    mtls = ["--db", f"sqlite:///{tmp_path / 'mtls.db'}"]
    assert main(["watch", "add", f"{HOST}:{servers.strict13},addr=127.0.0.1", *mtls]) == 0
    capsys.readouterr()
    run = ["watch", "run", "--all", *mtls, "--ca-file", str(pki.root), "--no-revocation", "--json"]
    assert main(run) == 1
    assert json.loads(capsys.readouterr().out)["verdicts"] == {"invalid": 1}
    assert main([*run, "--cert", str(pki.client_combined)]) == 0
    assert json.loads(capsys.readouterr().out)["verdicts"] == {"valid": 1}
    assert _curl(pki, servers.strict13, "--cert", str(pki.client_combined)).returncode == 0
