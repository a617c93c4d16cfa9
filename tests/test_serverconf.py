"""Server-configuration discovery against real servers: what ``discover`` says a listener serves is what the
running nginx, Apache httpd and HAProxy serve, name by name; hostile configurations give notes, never a hang.

The mutation fuzzer at the end runs 300 derandomized examples per server type; for a longer random campaign:
``CERTDOCTOR_FUZZ_EXAMPLES=4000 python3 -m pytest tests/test_serverconf.py -k mutated`` (12,000 examples, ~50 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pki_builder as pki
from certdoctor.collect.handshake import fetch_chain
from certdoctor.collect.serverconf import Discovery, ServerConfError, TlsListener, discover
from certdoctor.errors import InputError
from netutil import free_port, start_nginx, wait_for_port


def _which(name: str) -> str | None:
    found = shutil.which(name) or f"/usr/sbin/{name}"
    return found if os.access(found, os.X_OK) else None


NGINX = _which("nginx")
APACHE = _which("apache2")
HAPROXY = _which("haproxy")
APACHE_MODULES = Path("/usr/lib/apache2/modules")

ROOT = pki.root("Serverconf Root")


@dataclass
class Issued:
    cert: Path
    key: Path
    sha256: str


def _write(directory: Path, label: str, sans: list[str], *, combined: bool = False) -> Issued:
    """A leaf for ``sans`` signed by ROOT: ``label.pem`` (leaf + root) and ``label.key``, or one combined PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    issued = pki.leaf(sans[0], ROOT, sans=sans)
    pem = issued.cert.public_bytes(serialization.Encoding.PEM) + ROOT.cert.public_bytes(serialization.Encoding.PEM)
    key = issued.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}.key"
    if combined:
        cert_path.write_bytes(pem + key)
    else:
        cert_path.write_bytes(pem)
        key_path.write_bytes(key)
    sha = hashlib.sha256(issued.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Issued(cert_path, key_path, sha)


def _served_sha256(port: int, sni: str | None) -> str:
    chain = asyncio.run(fetch_chain("127.0.0.1", port, sni, timeout=5))
    assert chain.ok, chain.error
    return hashlib.sha256(chain.certs[0].public_bytes(serialization.Encoding.DER)).hexdigest()


def _probe_names(listener: TlsListener) -> list[str]:
    """Every name a client could send to reach this listener: exact names, and one name under each wildcard."""
    return [("probe" + n[1:]) if n.startswith("*.") else n for n in listener.names]


def _assert_served_equals_discovered(found: Discovery, expected_probes: int) -> None:
    probes = 0
    for listener in found.listeners:
        for address in listener.addresses:
            for name in _probe_names(listener):
                source = listener.certificate_for(name)
                assert source is not None and source.leaf_sha256 is not None, (listener, name)
                served = _served_sha256(address.port, name)
                assert served == source.leaf_sha256, f"{name} on {address}: served ≠ {source.certificate}"
                probes += 1
    assert probes == expected_probes


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------------- nginx


@dataclass
class NginxSite:
    conf: Path
    ports: tuple[int, int]
    certs: dict[str, Issued]


@pytest.fixture(scope="session")
def nginx_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    prefix = tmp_path_factory.mktemp("nginx-conf")
    (prefix / "logs").mkdir()
    certs = {
        "a": _write(prefix / "certs", "a", ["a.test", "www.a.test"]),
        "b": _write(prefix / "certs", "b", ["b.test"]),
        "c": _write(prefix / "certs", "c", ["c.test", "wild.test", "*.wild.test"]),
        "legacy": _write(prefix / "certs", "legacy", ["legacy.test"]),
        "default": _write(prefix / "certs", "default", ["default.test"]),
    }
    p1, p2, p3 = free_port(), free_port(), free_port()
    (prefix / "sites").mkdir()
    (prefix / "sites" / "c.conf").write_text(
        textwrap.dedent(f"""\
        server {{
            listen 127.0.0.1:{p1} ssl;
            server_name c.test .wild.test ~^re[0-9]+\\.test$;
            ssl_certificate     {certs["c"].cert};
            ssl_certificate_key {certs["c"].key};
            return 200 "c\\n";
        }}
        """)
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        worker_processes 1;
        pid {prefix}/nginx.pid;
        error_log {prefix}/logs/error.log;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {prefix}/tmp;
            ssl_certificate     certs/default.pem;
            ssl_certificate_key certs/default.key;
            server {{
                listen 127.0.0.1:{p1} ssl default_server;
                server_name default.test;
                return 200 "default\\n";
            }}
            server {{
                listen 127.0.0.1:{p1} ssl http2;
                server_name a.test www.a.test;
                ssl_certificate     {certs["a"].cert};
                ssl_certificate_key {certs["a"].key};
                return 200 "a\\n";
            }}
            server {{
                listen 127.0.0.1:{p1} ssl;
                server_name b.test;
                ssl_certificate     certs/b.pem;
                ssl_certificate_key certs/b.key;
                return 200 "b\\n";
            }}
            include sites/*.conf;
            server {{
                listen 127.0.0.1:{p2};
                ssl on;
                server_name legacy.test;
                ssl_certificate     {certs["legacy"].cert};
                ssl_certificate_key {certs["legacy"].key};
                return 200 "legacy\\n";
            }}
            server {{
                listen 127.0.0.1:{p3};
                server_name plain.test;
                return 200 "not TLS\n";
            }}
        }}
        """)
    )
    proc = start_nginx(NGINX, prefix, conf)
    try:
        wait_for_port(p1)
        wait_for_port(p2)
        yield NginxSite(conf, (p1, p2), certs)
    finally:
        _stop(proc)


def test_nginx_discovery_matches_what_nginx_serves(nginx_site: NginxSite) -> None:
    found = discover(nginx_site.conf.parent)
    assert found.server_type == "nginx" and found.root == str(nginx_site.conf)
    p1, p2 = nginx_site.ports
    by_name = {(listener.names or ("",))[0]: listener for listener in found.listeners}
    assert list(by_name) == ["default.test", "a.test", "b.test", "c.test", "legacy.test"]
    assert by_name["default.test"].default_server and not by_name["a.test"].default_server
    assert by_name["a.test"].addresses[0].options == ("http2",)
    assert [str(a) for a in by_name["legacy.test"].addresses] == [f"127.0.0.1:{p2}"]
    # Inherited from the http context, relative to the prefix; the included file is named as the definition place.
    assert by_name["default.test"].certificate == str(nginx_site.certs["default"].cert)
    assert by_name["b.test"].key == str(nginx_site.certs["b"].key)
    assert by_name["c.test"].file.endswith("sites/c.conf") and by_name["c.test"].line == 1
    assert by_name["c.test"].names == ("c.test", "wild.test", "*.wild.test")
    assert by_name["c.test"].sni_names == ("c.test", "wild.test")
    for label, listener in (("a", "a.test"), ("b", "b.test"), ("c", "c.test"), ("legacy", "legacy.test")):
        assert by_name[listener].certificates[0].leaf_sha256 == nginx_site.certs[label].sha256
    messages = [n.message for n in found.notes]
    assert any("regular expression" in m for m in messages)
    assert any("legacy `ssl on;`" in m for m in messages)
    # 1 + 2 + 1 + 3 + 1 names, each handshaken with its name as SNI on its discovered port.
    _assert_served_equals_discovered(found, expected_probes=8)
    # Without SNI or with an unknown name, nginx serves its default_server's certificate: listener_for agrees.
    for sni in (None, "unknown.test"):
        assert found.listener_for(p1, sni) is by_name["default.test"]
        assert _served_sha256(p1, sni) == nginx_site.certs["default"].sha256
    assert found.listener_for(p1, "deep.probe.wild.test") is by_name["c.test"]
    assert _served_sha256(p1, "deep.probe.wild.test") == nginx_site.certs["c"].sha256
    assert found.listener_for(p2, None) is by_name["legacy.test"] and found.listener_for(p2 + 100000) is None


def test_nginx_missing_certificate_and_variables_are_notes(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp {\n server { listen 443 ssl; listen [::]:443 ssl; server_name x.test;\n"
        "  ssl_certificate /nonexistent/x.pem; ssl_certificate_key /nonexistent/x.key; }\n"
        " server { listen 8443 ssl; ssl_certificate /etc/ssl/$ssl_server_name.pem;\n"
        "  ssl_certificate_key /etc/ssl/$ssl_server_name.key; }\n}\n"
        "stream { server { listen 127.0.0.1:9443 ssl; ssl_certificate s.pem; ssl_certificate_key s.key; } }\n"
    )
    found = discover(conf)
    assert [[str(a) for a in listener.addresses] for listener in found.listeners] == [
        ["*:443", "[::]:443"],
        ["*:8443"],
        ["127.0.0.1:9443"],
    ]
    first, second, stream = found.listeners
    assert first.certificates[0].exists is False and second.certificates[0].exists is None
    assert stream.section == "stream server" and stream.certificate == str(tmp_path / "s.pem")
    text = "\n".join(str(n) for n in found.notes)
    assert f"{conf}:4: ssl_certificate /nonexistent/x.pem does not exist" in text
    assert "uses variables, resolved per handshake" in text


# --------------------------------------------------------------------------------------------------------- Apache


@dataclass
class ApacheSite:
    root: Path
    port: int
    certs: dict[str, Issued]


@pytest.fixture(scope="session")
def apache_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheSite]:
    if APACHE is None or not (APACHE_MODULES / "mod_ssl.so").exists():
        pytest.skip("Apache httpd is not installed (.ci/run installs Debian's apache2)")
    root = tmp_path_factory.mktemp("apache-conf")
    (root / "logs").mkdir()
    certdir = root / "tls"
    certs = {
        "a": _write(certdir, "a", ["a.test", "www.a.test", "alias-a.test"]),
        "b": _write(certdir, "b", ["b.test", "b2.test"]),
        "main": _write(certdir, "main", ["main.test", "c.test"]),
    }
    # b's leaf alone in SSLCertificateFile, the root in SSLCertificateChainFile.
    b_leaf = certs["b"].cert.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    (certdir / "b-leaf.pem").write_bytes(b_leaf)
    (certdir / "chain.pem").write_bytes(ROOT.cert.public_bytes(serialization.Encoding.PEM))
    port = free_port()
    (root / "sites").mkdir()
    (root / "sites" / "b.conf").write_text(
        textwrap.dedent(f"""\
        <VirtualHost 127.0.0.1:{port}>
            ServerName https://b.test:{port}
            ServerAlias b2.test
            SSLEngine on
            SSLCertificateFile "${{TLS}}/b-leaf.pem"
            SSLCertificateKeyFile ${{TLS}}/b.key
            SSLCertificateChainFile tls/chain.pem
        </VirtualHost>
        # inherits the main server's certificate
        <VirtualHost 127.0.0.1:{port}>
            ServerName c.test
            SSLEngine on
        </VirtualHost>
        """)
    )
    mods = "\n".join(
        f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so"
        for name in ("mpm_event", "authz_core", "socache_shmcb", "ssl")
    )
    conf = root / "httpd.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        ServerRoot "{root}"
        Define TLS {certdir}
        PidFile {root}/logs/httpd.pid
        ErrorLog {root}/logs/error.log
        LogLevel warn
        """)
        + mods
        + textwrap.dedent(f"""
        Listen 127.0.0.1:{port} https
        ServerName main.test
        <IfModule ssl_module>
            SSLSessionCache shmcb:{root}/logs/ssl_scache(512000)
            SSLCertificateFile ${{TLS}}/main.pem
            SSLCertificateKeyFile ${{TLS}}/main.key
        </IfModule>
        <VirtualHost 127.0.0.1:{port}>
            ServerName a.test
            ServerAlias www.a.test \\
                        alias-a.test
            SSLEngine On
            SSLCertificateFile ${{TLS}}/a.pem
            SSLCertificateKeyFile ${{TLS}}/a.key
        </VirtualHost>
        Include sites/*.conf
        IncludeOptional optional.d/*.conf
        """)
    )
    base = [APACHE, "-d", str(root), "-f", str(conf)]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([*base, "-DFOREGROUND"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield ApacheSite(root, port, certs)
    finally:
        _stop(proc)


def test_apache_discovery_matches_what_httpd_serves(apache_site: ApacheSite) -> None:
    found = discover(apache_site.root / "httpd.conf")
    assert found.server_type == "apache"
    names = [listener.names for listener in found.listeners]
    assert names == [("a.test", "www.a.test", "alias-a.test"), ("b.test", "b2.test"), ("c.test",)]
    a, b, c = found.listeners
    assert [str(x) for x in a.addresses] == [f"127.0.0.1:{apache_site.port}"]
    assert a.addresses[0].options == ("https",)
    assert a.conditions == () and b.file.endswith("sites/b.conf")
    tls = apache_site.root / "tls"
    assert b.certificate == str(tls / "b-leaf.pem") and b.chain == str(tls / "chain.pem")
    assert b.key == str(tls / "b.key")
    assert c.certificate == str(tls / "main.pem")  # inherited from the main server
    assert a.certificates[0].leaf_sha256 == apache_site.certs["a"].sha256
    assert c.certificates[0].leaf_sha256 == apache_site.certs["main"].sha256
    _assert_served_equals_discovered(found, expected_probes=6)
    # No SNI, or a name no vhost has: httpd's first vhost for the address (a.test) answers.
    for sni in (None, "unknown.test"):
        assert found.listener_for(apache_site.port, sni) is a
        assert _served_sha256(apache_site.port, sni) == apache_site.certs["a"].sha256


def test_apache_debian_layout_with_envvars(tmp_path: Path) -> None:
    etc = tmp_path / "apache2"
    (etc / "sites-enabled").mkdir(parents=True)
    (etc / "envvars").write_text("export APACHE_LOG_DIR=/var/log/apache2$SUFFIX\nexport APACHE_RUN_USER=www-data\n")
    (etc / "apache2.conf").write_text(
        "# comment\nErrorLog ${APACHE_LOG_DIR}/error.log\nInclude ports.conf\n"
        "IncludeOptional sites-enabled/*.conf\nInclude missing.conf\n"
    )
    (etc / "ports.conf").write_text("Listen 80\n<IfModule ssl_module>\n  Listen 443\n</IfModule>\n")
    (etc / "sites-enabled" / "x.conf").write_text(
        "<IfModule mod_ssl.c>\n<VirtualHost _default_:443 [::1]:443>\n  ServerAdmin ${UNKNOWN_VAR}\n"
        "  SSLEngine on\n  SSLCertificateFile /etc/ssl/certs/nope.pem\n</VirtualHost>\n</IfModule>\n"
    )
    found = discover(etc)
    (listener,) = found.listeners
    assert [str(a) for a in listener.addresses] == ["*:443", "[::1]:443"]
    assert listener.default_server and listener.conditions == ("<IfModule mod_ssl.c>",)
    text = "\n".join(str(n) for n in found.notes)
    assert "${UNKNOWN_VAR} is not defined here" in text
    assert "APACHE_LOG_DIR" not in text
    assert f"{etc}/apache2.conf:5: Include {etc}/missing.conf does not exist" in text
    assert "SSLCertificateFile /etc/ssl/certs/nope.pem does not exist" in text


# -------------------------------------------------------------------------------------------------------- HAProxy


@dataclass
class HaproxySite:
    conf: Path
    port: int
    certs: dict[str, Issued]


@pytest.fixture(scope="session")
def haproxy_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaproxySite]:
    if HAPROXY is None:
        pytest.skip("HAProxy is not installed (.ci/run installs Debian's haproxy)")
    root = tmp_path_factory.mktemp("haproxy-conf")
    crtdir = root / "crt.d"
    certs = {
        "1-first": _write(crtdir, "1-first", ["first.test", "www.first.test"], combined=True),
        "2-second": _write(crtdir, "2-second", ["second.test"], combined=True),
        "listed": _write(root / "listed", "listed", ["listed.test"], combined=True),
        "wild": _write(root / "listed", "wild", ["*.wild.test"], combined=True),
    }
    (crtdir / "2-second.key").write_text("not read: .key files in a crt directory are skipped\n")
    (root / "list.txt").write_text(
        "# certificate [options] filters\nlisted/listed.pem [alpn h2,http/1.1 ssl-min-ver TLSv1.2] listed.test\n"
        "listed/wild.pem *.wild.test !bad.wild.test\n"
    )
    port = free_port()
    conf = root / "haproxy.cfg"
    conf.write_text(
        textwrap.dedent(f"""\
        global
            crt-base {root}
            pidfile {root}/haproxy.pid

        defaults
            mode http
            timeout connect 5s
            timeout client 5s
            timeout server 5s

        frontend www
            bind 127.0.0.1:{port} ssl crt crt.d crt-list {root}/list.txt  # comment
            http-request return status 200 content-type text/plain string ok
        """)
    )
    check = subprocess.run([HAPROXY, "-c", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + check.stdout
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield HaproxySite(conf, port, certs)
    finally:
        _stop(proc)


def test_haproxy_discovery_matches_what_haproxy_serves(haproxy_site: HaproxySite) -> None:
    found = discover(haproxy_site.conf.parent)
    assert found.server_type == "haproxy"
    (listener,) = found.listeners
    assert listener.section == "frontend www"
    assert [str(a) for a in listener.addresses] == [f"127.0.0.1:{haproxy_site.port}"]
    assert listener.names == ("first.test", "www.first.test", "second.test", "listed.test", "*.wild.test")
    origins = [(Path(s.certificate).name, s.origin, s.key) for s in listener.certificates]
    assert origins == [
        ("1-first.pem", "crt", None),
        ("2-second.pem", "crt", None),
        ("listed.pem", "crt-list", None),
        ("wild.pem", "crt-list", None),
    ]
    for source in listener.certificates:
        assert source.leaf_sha256 == haproxy_site.certs[Path(source.certificate).stem].sha256
    _assert_served_equals_discovered(found, expected_probes=5)
    # No SNI: the first certificate of the bind line.
    assert _served_sha256(haproxy_site.port, None) == haproxy_site.certs["1-first"].sha256
    assert listener.certificate_for("unknown.test") is listener.certificates[0]
    # A negative crt-list filter: the wildcard certificate is not chosen for it, the default one is.
    assert listener.certificates[3].excluded_names == ("bad.wild.test",)
    assert listener.certificate_for("bad.wild.test") is listener.certificates[0]
    assert _served_sha256(haproxy_site.port, "bad.wild.test") == haproxy_site.certs["1-first"].sha256
    assert _served_sha256(haproxy_site.port, "ok.wild.test") == haproxy_site.certs["wild"].sha256


# ------------------------------------------------------------------------------------------------ hostile inputs


def test_include_loops_big_files_and_missing_includes_are_notes(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf;\n")
    (tmp_path / "b.conf").write_text("include a.conf;\n")
    big = tmp_path / "big.conf"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    (tmp_path / "self-link.conf").symlink_to(tmp_path / "self-link.conf")
    os.mkfifo(tmp_path / "fifo.conf")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp {\n include a.conf;\n include big.conf;\n include missing.conf;\n include self-link.conf;\n"
        " include fifo.conf;\n include nothing/*.conf;\n include /*/*/*/*/*/*/*/*/x.conf;\n}\n"
    )
    started = time.monotonic()
    found = discover(conf)
    text = "\n".join(str(n) for n in found.notes)
    assert found.listeners == ()
    assert "include loop" in text
    assert "big.conf is larger than 4194304 bytes: not read" in text
    assert f"{conf}:5: include {tmp_path}/missing.conf does not exist" in text
    assert "symlink loop" in text or "Too many levels of symbolic links" in text
    assert "fifo.conf: it is a FIFO" in text
    assert "/*/*/*/*/*/*/*/*/x.conf has wildcards in more than 3 path components: not followed" in text
    assert time.monotonic() - started < 20  # bounded: no hang (a generous bound, not a timing assertion)


def test_unbalanced_braces_and_deep_includes(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("http { server { listen 443 ssl; \n")
    found = discover(conf)
    assert found.listeners == ()
    assert any("nginx syntax: unexpected end of file" in n.message for n in found.notes)
    deep = tmp_path / "deep"
    deep.mkdir()
    for i in range(40):
        (deep / f"{i}.conf").write_text(f"include {i + 1}.conf;\n")
    (deep / "nginx.conf").write_text("include 0.conf;\n")
    found = discover(deep / "nginx.conf")
    assert any("nested deeper than" in n.message for n in found.notes)
    assert len(found.files) <= 20


def test_apache_hostile(tmp_path: Path) -> None:
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        "Include httpd.conf\n<VirtualHost *:443>\nSSLEngine on\n<Directory />\n</VirtualHost>\n"
        "</IfModule>\nInclude big.conf\n"
    )
    with open(tmp_path / "big.conf", "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    found = discover(conf)
    text = "\n".join(str(n) for n in found.notes)
    assert "include loop" in text
    assert "</virtualhost> closes <Directory> (line 4) too" in text
    assert "</ifmodule> closes no open section" in text
    assert "big.conf is larger than" in text


def test_haproxy_hostile(tmp_path: Path) -> None:
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(
        'frontend x\n bind "${ADDR}:443" ssl crt "$CERTS/site.pem"\n bind unix@/run/x.sock ssl crt x.pem\n'
        " bind :8443,:::9443 ssl crt /nonexistent crt-list /nonexistent.list\n bind :80\n"
        "backend b\n bind :1 ssl crt /x.pem\nlisten l\n bind ipv4@127.0.0.1:7443-7444 ssl crt /x.pem\n"
    )
    found = discover(conf)
    listener, listen = found.listeners
    assert [str(a) for a in listener.addresses] == ["*:8443", "[::]:9443"]
    assert listen.section == "listen l" and [str(a) for a in listen.addresses] == ["127.0.0.1:7443", "127.0.0.1:7444"]
    text = "\n".join(str(n) for n in found.notes)
    assert "an environment variable of the HAProxy process" in text
    assert "unix@/run/x.sock: not a TCP address" in text
    assert "crt /nonexistent does not exist" in text
    assert "cannot read /nonexistent.list" in text


def test_unusable_paths_are_one_line_input_errors(tmp_path: Path) -> None:
    with pytest.raises(ServerConfError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(ServerConfError, match="holds no server configuration"):
        discover(tmp_path)
    big = tmp_path / "nginx.conf"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(InputError, match="larger than"):
        discover(big)
    with pytest.raises(ServerConfError, match="unknown server type"):
        discover(big, server_type="iis")


# --------------------------------------------------------------------------------------- distributions' own layouts


@pytest.mark.skipif(not Path("/etc/nginx/nginx.conf").is_file(), reason="Debian's nginx configuration is absent")
def test_debian_nginx_configuration_reads_cleanly() -> None:
    found = discover("/etc/nginx")
    # Debian's default site serves plain HTTP only; every file of the layout is read, nothing to note.
    assert found.listeners == () and found.notes == ()
    assert "/etc/nginx/mime.types" in found.files and "/etc/nginx/sites-enabled/default" in found.files


@pytest.mark.skipif(not Path("/etc/apache2/apache2.conf").is_file(), reason="Debian's apache2 configuration is absent")
def test_debian_apache_layout_with_default_ssl_enabled(tmp_path: Path) -> None:
    # What `a2enmod ssl && a2ensite default-ssl` does, in a copy.
    etc = tmp_path / "apache2"
    shutil.copytree("/etc/apache2", etc, symlinks=True)
    for name in ("ssl.load", "ssl.conf", "socache_shmcb.load"):
        if not (etc / "mods-enabled" / name).exists():
            (etc / "mods-enabled" / name).symlink_to(f"../mods-available/{name}")
    (etc / "sites-enabled" / "default-ssl.conf").symlink_to("../sites-available/default-ssl.conf")
    found = discover(etc)
    (listener,) = found.listeners
    assert listener.file == str(etc / "sites-enabled" / "default-ssl.conf")
    assert [str(a) for a in listener.addresses] == ["*:443"]
    assert listener.certificate == "/etc/ssl/certs/ssl-cert-snakeoil.pem"
    assert listener.key == "/etc/ssl/private/ssl-cert-snakeoil.key"
    # ${APACHE_LOG_DIR} and friends come from envvars: nothing unresolved; only the snakeoil files may be missing.
    assert not any("not defined" in n.message for n in found.notes)
    assert all("snakeoil" in n.message for n in found.notes), found.notes


def test_apache_vhost_without_port_and_without_servername(tmp_path: Path) -> None:
    conf = tmp_path / "httpd.conf"
    cert = _write(tmp_path, "x", ["main.test"])
    conf.write_text(
        f"Listen 8443\nListen 127.0.0.1:9443\nServerName https://main.test:8443\nSSLEngine on\n"
        f"SSLCertificateFile {cert.cert}\nSSLCertificateKeyFile x.key\n"
        "<VirtualHost *>\n  ServerAlias *.main.test\n</VirtualHost>\n"
        "<VirtualHost *:80>\n  SSLEngine off\n</VirtualHost>\n"
    )
    found = discover(conf)
    (listener,) = found.listeners
    assert [str(a) for a in listener.addresses] == ["*:8443", "*:9443"]
    assert listener.names == ("main.test", "*.main.test") and listener.sni_names == ("main.test",)
    assert listener.key == str(tmp_path / "x.key")
    assert listener.certificates[0].leaf_sha256 == cert.sha256
    assert listener.certificates[0].leaf_names == ("main.test",)
    data = json.loads(json.dumps(found.as_dict()))
    assert data["listeners"][0]["sni_names"] == ["main.test"]
    assert data["listeners"][0]["addresses"][0] == {
        "host": None,
        "port": 8443,
        "options": [],
        "connect_host": "127.0.0.1",
    }
    assert data["listeners"][0]["certificates"][0]["leaf_sha256"] == cert.sha256
    assert data["notes"][0]["text"] == str(found.notes[0])
    assert any("takes the main server's (main.test)" in n.message for n in found.notes)


# ------------------------------------------------------------------------------------------------ mutation fuzzing

_SEEDS = {
    "nginx": (
        "events {}\nhttp {\n ssl_certificate c.pem; ssl_certificate_key c.key;\n include inc.conf;\n"
        " server { listen [::]:443 ssl default_server; listen 127.0.0.1:8443 ssl http2; ssl on;\n"
        "  server_name .a.test ~^x$ 'q.test' \"$host\"; ssl_certificate $ssl_server_name.pem; }\n}\n"
        "stream { server { listen 9443 ssl; } }\n"
    ),
    "apache": (
        "ServerRoot .\nDefine D ${D}x\nListen [::1]:443 https\n<IfModule ssl_module>\nSSLEngine on\n</IfModule>\n"
        "Include inc.conf\n<VirtualHost *:443 _default_:8443 [::1]>\n ServerName https://a.test:443\n"
        ' ServerAlias *.a.test \\\n  b.test\n SSLCertificateFile "${D}/c.pem"\n <Directory />\n </Directory>\n'
        "</VirtualHost>\n"
    ),
    "haproxy": (
        "global\n crt-base .\nfrontend f\n bind :443,ipv6@:::8443,127.0.0.1:1-3 ssl crt c.pem crt-list inc.conf\n"
        '.if defined(X)\nlisten l\n bind "${A}:1" ssl crt . # x\n.endif\n'
    ),
}
_NOISE = st.sampled_from([*"{};\\\"'#$<>/:*[]!.\n \t\x1b", "${", "include ", "Include ", "</", "ssl ", "crt "])


@st.composite
def _mutated(draw: st.DrawFn, seed: str) -> str:
    text = seed
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(_NOISE) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
    return text


@pytest.mark.parametrize("kind", sorted(_SEEDS))
def test_mutated_configurations_give_notes_not_exceptions(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp(f"fuzz-{kind}")
    main = directory / "main.conf"
    inc = directory / "inc.conf"

    @settings(
        max_examples=int(os.environ.get("CERTDOCTOR_FUZZ_EXAMPLES", "300")),
        derandomize="CERTDOCTOR_FUZZ_EXAMPLES" not in os.environ,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(text=_mutated(_SEEDS[kind]), included=_mutated(_SEEDS[kind]))
    def run(text: str, included: str) -> None:
        main.write_text(text)
        inc.write_text(included + "\ninclude main.conf;\nInclude main.conf\n")
        found = discover(main, server_type=kind)
        json.dumps(found.as_dict())
        for note in found.notes:  # one terminal-safe line each
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in str(note)), note

    run()


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_conflicting_server_names_are_noted_as_nginx_warns(tmp_path: Path) -> None:
    first, second = _write(tmp_path, "first", ["dup.test"]), _write(tmp_path, "second", ["dup.test"])
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n"
        f" server {{ listen 127.0.0.1:8443 ssl; server_name dup.test;"
        f" ssl_certificate {first.cert}; ssl_certificate_key {first.key}; }}\n"
        f" server {{ listen 127.0.0.1:8443 ssl; server_name dup.test other.test;"
        f" ssl_certificate {second.cert}; ssl_certificate_key {second.key}; }}\n}}\n"
    )
    check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert 'conflicting server name "dup.test" on 127.0.0.1:8443, ignored' in check.stderr
    found = discover(conf)
    assert [str(n) for n in found.notes] == [
        f"{conf}:6: dup.test on 127.0.0.1:8443 is also defined at {conf}:5, which wins: this block never serves it"
    ]


@pytest.mark.skipif(APACHE is None or not (APACHE_MODULES / "mod_ssl.so").exists(), reason="httpd is not installed")
def test_apache_main_server_serves_tls_on_unclaimed_ports(tmp_path: Path) -> None:
    main_cert, vhost_cert = _write(tmp_path, "main", ["main.test"]), _write(tmp_path, "vhost", ["vhost.test"])
    main_port, vhost_port = free_port(), free_port()
    mods = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in ("mpm_event", "authz_core", "ssl"))
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        f"ServerRoot {tmp_path}\nPidFile {tmp_path}/httpd.pid\nErrorLog {tmp_path}/error.log\n{mods}"
        f"Listen 127.0.0.1:{main_port}\nListen 127.0.0.1:{vhost_port}\nServerName main.test\n"
        f"SSLEngine on\nSSLCertificateFile main.pem\nSSLCertificateKeyFile main.key\n"
        f"<VirtualHost 127.0.0.1:{vhost_port}>\n ServerName vhost.test\n SSLCertificateFile vhost.pem\n"
        f" SSLCertificateKeyFile vhost.key\n</VirtualHost>\n"
    )
    found = discover(conf)
    assert [(x.section, [str(a) for a in x.addresses], x.names) for x in found.listeners] == [
        ("main server", [f"127.0.0.1:{main_port}"], ("main.test",)),
        (f"VirtualHost 127.0.0.1:{vhost_port}", [f"127.0.0.1:{vhost_port}"], ("vhost.test",)),
    ]
    assert found.listeners[0].line == 10 and found.notes == ()
    (tmp_path / "logs").mkdir()
    base = [APACHE, "-d", str(tmp_path), "-f", str(conf)]
    proc = subprocess.Popen([*base, "-DFOREGROUND"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(main_port)
        wait_for_port(vhost_port)
        _assert_served_equals_discovered(found, expected_probes=2)
        assert found.listeners[0].certificates[0].leaf_sha256 == main_cert.sha256
        assert found.listeners[1].certificates[0].leaf_sha256 == vhost_cert.sha256
    finally:
        _stop(proc)


@pytest.mark.skipif(HAPROXY is None, reason="HAProxy is not installed")
def test_haproxy_crt_base_applies_to_crt_and_crt_list_entries_not_to_the_list_file(tmp_path: Path) -> None:
    base = tmp_path / "base"
    cert = _write(base, "site", ["site.test"], combined=True)
    (base / "list.txt").write_text("site.pem site.test\n")  # would be found only if crt-base applied to the list
    (tmp_path / "list.txt").write_text("site.pem other.test\n")
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(
        f"global\n crt-base {base}\nfrontend f\n mode http\n bind 127.0.0.1:1 ssl crt site.pem crt-list list.txt\n"
    )
    # HAProxy reads list.txt from its working directory: run it from tmp_path, where discovery reads it too.
    check = subprocess.run([HAPROXY, "-c", "-f", str(conf)], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stderr + check.stdout
    (listener,) = discover(conf).listeners
    assert [(s.certificate, s.origin, s.names) for s in listener.certificates] == [
        (str(cert.cert), "crt", ("site.test",)),
        (str(cert.cert), "crt-list", ("other.test",)),
    ]
