"""``check --deployed``: the certificate on the server's disk against the one served, on real nginx and Apache
servers (loopback only), and deployed files in every format, hostile ones included."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certdoctor.cli import main
from certdoctor.collect.deployed import expand_deployed, read_deployed_file
from jsonschemas import validate
from netutil import free_port, nginx_conf, start_nginx, wait_for_port
from pki_builder import Issued, ec_key, intermediate, leaf, root

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
APACHE = "/usr/sbin/apache2" if os.path.exists("/usr/sbin/apache2") else shutil.which("apache2")
APACHE_MODULES = Path("/usr/lib/apache2/modules")
HOST = "shop.deployed.test"
NOW = datetime.now(UTC).replace(microsecond=0)

needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs nginx-light)")
needs_apache = pytest.mark.skipif(
    APACHE is None or not (APACHE_MODULES / "mod_ssl.so").exists(),
    reason="apache2 is not installed (.ci/run installs it)",
)


@dataclass
class Pki:
    root: Issued
    ca: Issued
    old: Issued  # cert A: the one first deployed
    new: Issued  # cert B: the renewal (same names, later notBefore)
    other: Issued  # another virtual host's certificate, deployed nowhere we look
    dir: Path

    @property
    def root_path(self) -> str:
        return str(self.dir / "root.pem")


def _pem(*issued: Issued) -> bytes:
    return b"".join(i.cert.public_bytes(serialization.Encoding.PEM) for i in issued)


def _key_pem(i: Issued) -> bytes:
    return i.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("deployed-pki")
    r = root("Deployed Test Root", not_before=NOW - timedelta(days=400), not_after=NOW + timedelta(days=3000))
    ca = intermediate("Deployed Test CA", r, not_before=NOW - timedelta(days=400), not_after=NOW + timedelta(days=2000))
    old = leaf(
        HOST, ca, key=ec_key("deployed-old"), not_before=NOW - timedelta(days=50), not_after=NOW + timedelta(days=40)
    )
    new = leaf(
        HOST, ca, key=ec_key("deployed-new"), not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=89)
    )
    other = leaf(
        "default.other.test",
        ca,
        key=ec_key("deployed-other"),
        not_before=NOW - timedelta(days=2),
        not_after=NOW + timedelta(days=88),
    )
    (d / "root.pem").write_bytes(_pem(r))
    return Pki(r, ca, old, new, other, d)


def deploy(pki: Pki, cert: Issued, directory: Path) -> tuple[Path, Path]:
    """Write fullchain.pem + privkey.pem for ``cert`` (replacing what is there, as a renewal client does)."""
    directory.mkdir(parents=True, exist_ok=True)
    chain, key = directory / "fullchain.pem", directory / "privkey.pem"
    for path, data in ((chain, _pem(cert, pki.ca)), (key, _key_pem(cert))):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return chain, key


def check_json(pki: Pki, port: int, addresses: list[str], *extra: str, capsys: pytest.CaptureFixture[str]) -> dict:
    code = main(
        [
            "check",
            f"{HOST}:{port}",
            "--resolve",
            f"{HOST}:{port}:{','.join(addresses)}",
            "--ca-file",
            pki.root_path,
            "--no-revocation",
            "--no-aia",
            "--json",
            *extra,
        ]
    )
    doc = validate(json.loads(capsys.readouterr().out))
    assert doc["exit_code"] == code
    return doc


def by_id(doc: dict, fid: str) -> list[dict]:
    return [f for f in doc["findings"] if f["id"] == fid]


def fp(i: Issued) -> str:
    return i.cert.fingerprint(hashes.SHA256()).hex()


def served_fp(address: str, port: int) -> str | None:
    """The SHA-256 of the leaf ``address:port`` serves for HOST (None when nothing answers yet)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, port), timeout=2) as raw,
            ctx.wrap_socket(raw, server_hostname=HOST) as s,
        ):
            der = s.getpeercert(binary_form=True)
    except OSError:
        return None
    from cryptography import x509

    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex()


def wait_serving(address: str, port: int, want: str, attempts: int = 200) -> None:
    """Poll until ``address:port`` serves the leaf ``want`` (a reload replaces workers asynchronously)."""
    for _ in range(attempts):
        if served_fp(address, port) == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"{address}:{port} never served {want[:16]}")


# --- nginx ---------------------------------------------------------------------------------------------------


@dataclass
class Nginx:
    prefix: Path
    conf: Path
    proc: subprocess.Popen[bytes]

    def reload(self) -> None:
        """``nginx -s reload`` (SIGHUP to the master), then wait until the old worker has exited: until then it
        may still take connections and serve the old certificate."""
        assert NGINX is not None
        before = set(children(self.proc.pid))
        out = subprocess.run(
            [NGINX, "-p", str(self.prefix), "-c", str(self.conf), "-s", "reload"], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        wait_children_replaced(self.proc.pid, before)


def wait_children_replaced(pid: int, before: set[int], attempts: int = 600) -> None:
    """Poll until none of the child processes ``before`` of ``pid`` is left and a new one runs (after a reload,
    the old workers finish and exit; until then they may still take connections with the old certificate)."""
    for _ in range(attempts):
        now = set(children(pid))
        if now and not now & before:
            return
        time.sleep(0.05)
    raise AssertionError(f"the old workers of {pid} did not exit after the reload")


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator:
    started: list[Nginx] = []

    def start(name: str, address: str, port: int, chain: Path, key: Path) -> Nginx:
        assert NGINX is not None
        prefix = tmp_path / f"nginx-{name}"
        conf = nginx_conf(
            prefix,
            f"""
    server {{
        listen {address}:{port} ssl;
        server_name {HOST};
        ssl_certificate     {chain};
        ssl_certificate_key {key};
        location / {{ return 200 "ok\\n"; }}
    }}""",
        )
        proc = start_nginx(NGINX, prefix, conf, check=False)
        n = Nginx(prefix, conf, proc)
        started.append(n)
        for _ in range(200):
            if served_fp(address, port) is not None:
                break
            time.sleep(0.05)
        return n

    yield start
    for n in started:
        n.proc.terminate()
        n.proc.wait(timeout=10)


@needs_nginx
def test_nginx_renewed_on_disk_not_reloaded_then_reloaded(pki, nginx_factory, tmp_path, capsys):
    port = free_port()
    chain, key = deploy(pki, pki.old, tmp_path / "certs")
    server = nginx_factory("one", "127.0.0.1", port, chain, key)
    wait_serving("127.0.0.1", port, fp(pki.old))

    # in sync: no drift finding, and the chain's verdict
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(chain), "--server-type", "nginx", capsys=capsys)
    assert doc["verdict"] == "valid", doc["findings"]
    assert [f["id"] for f in doc["findings"]] == []
    assert doc["deployed"][0]["path"] == str(chain) and doc["deployed"][0]["format"] == "pem"

    # the renewal client replaces the files; nobody reloads nginx
    deploy(pki, pki.new, tmp_path / "certs")
    doc = check_json(
        pki, port, ["127.0.0.1"], "--deployed", str(chain), "--key", str(key), "--server-type", "nginx", capsys=capsys
    )
    [f] = by_id(doc, "not-reloaded")
    assert f["severity"] == "error" and doc["verdict"] == "invalid"
    assert "nginx -t && nginx -s reload" in f["fix"]
    ev = f["evidence"]
    assert ev["served_sha256"] == fp(pki.old) and ev["deployed_sha256"] == fp(pki.new)
    assert ev["deployed_path"] == str(chain) and ev["addresses"] == [f"127.0.0.1:{port}"]
    assert ev["served_not_before"] < ev["deployed_not_before"]
    assert datetime.fromisoformat(ev["deployed_mtime"]).tzinfo is not None
    assert ev["server_type"] == "nginx" and ev["stale"] == "leaf"
    assert f["rejected_by"] == []
    assert [x["id"] for x in doc["findings"]] == ["not-reloaded"]  # the key is the deployed one: no key-mismatch
    assert doc["deployed"][0]["key_matches"] is True

    # the text report says it, with the fix
    code = main(
        ["check", f"{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1", "--ca-file", pki.root_path,
         "--no-revocation", "--deployed", str(chain), "--server-type", "nginx"]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 1
    assert "not-reloaded" in text and "nginx -s reload" in text and str(chain) in text

    # nginx -s reload (SIGHUP to the master): the drift is gone, the verdict is the chain's
    server.reload()
    wait_serving("127.0.0.1", port, fp(pki.new))
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(chain), "--server-type", "nginx", capsys=capsys)
    assert [f["id"] for f in doc["findings"]] == [] and doc["verdict"] == "valid"


@needs_nginx
def test_nginx_serving_a_certificate_deployed_nowhere(pki, nginx_factory, tmp_path, capsys):
    port = free_port()
    served_chain, served_key = deploy(pki, pki.other, tmp_path / "other-vhost")
    deployed, _ = deploy(pki, pki.new, tmp_path / "mine")
    nginx_factory("foreign", "127.0.0.1", port, served_chain, served_key)
    wait_serving("127.0.0.1", port, fp(pki.other))
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(deployed), "--server-type", "lb", capsys=capsys)
    [f] = by_id(doc, "served-not-deployed")
    assert f["evidence"]["served_sha256"] == fp(pki.other)
    assert f["evidence"]["deployed_sha256"] == fp(pki.new)
    assert "load balancer" in f["fix"] and "re-upload" in f["fix"]
    assert not by_id(doc, "not-reloaded")
    assert by_id(doc, "hostname-mismatch")  # the served chain's own finding: why clients reject it
    assert f["rejected_by"] == []


@needs_nginx
def test_two_listeners_one_reloaded_is_partially_reloaded(pki, nginx_factory, tmp_path, capsys):
    port = free_port()
    chain, key = deploy(pki, pki.old, tmp_path / "certs")
    a = nginx_factory("a", "127.0.0.1", port, chain, key)
    nginx_factory("b", "127.0.0.2", port, chain, key)
    deploy(pki, pki.new, tmp_path / "certs")
    a.reload()
    wait_serving("127.0.0.1", port, fp(pki.new))
    assert served_fp("127.0.0.2", port) == fp(pki.old)
    doc = check_json(
        pki, port, ["127.0.0.1", "127.0.0.2"], "--deployed", str(tmp_path / "certs" / "*.pem"), capsys=capsys
    )
    [f] = by_id(doc, "partially-reloaded")
    assert f["sources"] == [f"127.0.0.2:{port}"]
    assert f["evidence"]["reloaded_addresses"] == [f"127.0.0.1:{port}"]
    assert f["evidence"]["served_sha256"] == fp(pki.old) and f["evidence"]["deployed_sha256"] == fp(pki.new)
    assert not by_id(doc, "not-reloaded") and not by_id(doc, "served-not-deployed")
    assert "endpoints-differ" in [x["id"] for x in doc["findings"]]
    # the glob matched the key file too: read, not a certificate file, reported as unreadable
    assert {d["path"] for d in doc["deployed"]} == {
        str(tmp_path / "certs" / n) for n in ("fullchain.pem", "privkey.pem")
    }


# --- Apache httpd --------------------------------------------------------------------------------------------


@dataclass
class Apache:
    """A private Apache httpd on loopback serving HOST with ``chain``/``key`` (``graceful()``: what
    ``apachectl -k graceful`` does, SIGUSR1 to the parent, then wait for the old children to exit)."""

    conf: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    def graceful(self) -> None:
        assert APACHE is not None
        before = set(children(self.proc.pid))
        done = subprocess.run([APACHE, "-f", str(self.conf), "-k", "graceful"], env=self.env, capture_output=True)
        assert done.returncode == 0, done.stderr
        wait_children_replaced(self.proc.pid, before)  # an old child may still answer until it has exited


@contextlib.contextmanager
def apache_server(directory: Path, port: int, chain: Path, key: Path) -> Iterator[Apache]:
    root = directory / "apache"
    (root / "logs").mkdir(parents=True)
    conf = root / "httpd.conf"
    mods = APACHE_MODULES
    conf.write_text(f"""
ServerRoot {root}
PidFile {root}/httpd.pid
ErrorLog {root}/logs/error.log
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule ssl_module {mods}/mod_ssl.so
Listen 127.0.0.1:{port}
ServerName {HOST}
Mutex file:{root}
DefaultRuntimeDir {root}
<VirtualHost 127.0.0.1:{port}>
    ServerName {HOST}
    SSLEngine on
    SSLCertificateFile {chain}
    SSLCertificateKeyFile {key}
</VirtualHost>
""")
    assert APACHE is not None
    env = {**os.environ, "APACHE_RUN_DIR": str(root), "APACHE_LOCK_DIR": str(root), "APACHE_LOG_DIR": str(root)}
    proc = subprocess.Popen([APACHE, "-f", str(conf), "-DFOREGROUND"], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield Apache(conf, env, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


@needs_apache
def test_apache_not_reloaded_then_graceful(pki, tmp_path, capsys):
    port = free_port()
    chain, key = deploy(pki, pki.old, tmp_path / "certs")
    with apache_server(tmp_path, port, chain, key) as apache:
        wait_serving("127.0.0.1", port, fp(pki.old))
        deploy(pki, pki.new, tmp_path / "certs")
        doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(chain), "--server-type", "apache", capsys=capsys)
        [f] = by_id(doc, "not-reloaded")
        assert "apachectl configtest && systemctl reload apache2" in f["fix"]
        assert f["evidence"]["served_sha256"] == fp(pki.old)
        apache.graceful()
        wait_serving("127.0.0.1", port, fp(pki.new))
        doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(chain), "--server-type", "apache", capsys=capsys)
        assert [f["id"] for f in doc["findings"]] == [] and doc["verdict"] == "valid"


# --- the deployed file itself --------------------------------------------------------------------------------


@needs_nginx
def test_deployed_file_in_the_wrong_order_with_a_foreign_key(pki, nginx_factory, tmp_path, capsys):
    port = free_port()
    chain, key = deploy(pki, pki.new, tmp_path / "certs")
    nginx_factory("order", "127.0.0.1", port, chain, key)
    wait_serving("127.0.0.1", port, fp(pki.new))
    broken = tmp_path / "next" / "fullchain.pem"
    broken.parent.mkdir()
    broken.write_bytes(_pem(pki.new, pki.root, pki.ca))  # root before the intermediate
    wrong_key = tmp_path / "next" / "privkey.pem"
    wrong_key.write_bytes(_key_pem(pki.other))
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(broken), "--key", str(wrong_key), capsys=capsys)
    problems = {f["evidence"]["problem"]: f for f in by_id(doc, "deployed-file-problem")}
    assert set(problems) == {"wrong-order", "key-mismatch"}, problems
    assert problems["key-mismatch"]["severity"] == "error" and problems["wrong-order"]["severity"] == "warning"
    assert problems["wrong-order"]["sources"] == [str(broken)]
    assert doc["deployed"][0]["leaf_index"] == 0 and doc["deployed"][0]["key_matches"] is False
    # the leaf served is the deployed one, but the chain differs: the chain file was changed, not reloaded
    [f] = by_id(doc, "not-reloaded")
    assert f["evidence"]["stale"] == "chain"
    assert not by_id(doc, "served-not-deployed") and not by_id(doc, "partially-reloaded")

    # the intermediate first: the server would send it as its own certificate
    broken.write_bytes(_pem(pki.ca, pki.new))
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(broken), capsys=capsys)
    problems = {f["evidence"]["problem"]: f for f in by_id(doc, "deployed-file-problem")}
    assert set(problems) == {"leaf-not-first"}, problems
    assert problems["leaf-not-first"]["severity"] == "error"
    assert doc["deployed"][0]["leaf_index"] == 1


def _formats(pki: Pki, d: Path) -> dict[str, Path]:
    chain = [pki.new.cert, pki.ca.cert]
    out = {
        "der": d / "leaf.der",
        "p7b": d / "chain.p7b",
        "p12": d / "bundle.p12",
    }
    out["der"].write_bytes(pki.new.cert.public_bytes(serialization.Encoding.DER))
    out["p7b"].write_bytes(pkcs7.serialize_certificates(chain, serialization.Encoding.DER))
    out["p12"].write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"shop", pki.new.key, pki.new.cert, [pki.ca.cert], serialization.BestAvailableEncryption(b"s3cret pw")
        )
    )
    return out


def test_formats_der_pkcs7_pkcs12(pki, tmp_path):
    files = _formats(pki, tmp_path)
    der = read_deployed_file(str(files["der"]))
    assert (der.format, len(der.certs), der.leaf_index, der.has_key) == ("der", 1, 0, False)
    p7 = read_deployed_file(str(files["p7b"]))
    assert p7.format == "pkcs7" and len(p7.certs) == 2 and p7.leaf == pki.new.cert
    p12 = read_deployed_file(str(files["p12"]), password=b"s3cret pw")
    assert (p12.format, p12.has_key, p12.key_matches) == ("pkcs12", True, True)
    assert p12.leaf == pki.new.cert and p12.mtime is not None and p12.size == files["p12"].stat().st_size
    wrong = read_deployed_file(str(files["p12"]), password=b"nope")
    assert wrong.error_kind == "password" and "wrong password" in (wrong.error or "")


@needs_nginx
def test_pkcs12_password_file_and_env_on_a_real_server(pki, nginx_factory, tmp_path, capsys, monkeypatch):
    port = free_port()
    chain, key = deploy(pki, pki.old, tmp_path / "certs")
    nginx_factory("p12", "127.0.0.1", port, chain, key)
    wait_serving("127.0.0.1", port, fp(pki.old))
    p12 = _formats(pki, tmp_path)["p12"]  # the renewal, exported for the load balancer
    pw = tmp_path / "p12.pass"
    pw.write_text("s3cret pw\n")
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(p12), "--password-file", str(pw), capsys=capsys)
    [f] = by_id(doc, "not-reloaded")
    assert f["evidence"]["deployed_sha256"] == fp(pki.new)
    assert doc["deployed"][0]["format"] == "pkcs12" and doc["deployed"][0]["has_key"] is True
    monkeypatch.setenv("DEPLOYED_P12_PASS", "s3cret pw")
    doc = check_json(
        pki, port, ["127.0.0.1"], "--deployed", str(p12), "--password-env", "DEPLOYED_P12_PASS", capsys=capsys
    )
    assert by_id(doc, "not-reloaded")
    # a wrong password: one line, exit 2, no traceback
    monkeypatch.setenv("DEPLOYED_P12_PASS", "wrong")
    code = main(["check", f"{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1", "--deployed", str(p12),
                 "--password-env", "DEPLOYED_P12_PASS", "--no-revocation"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "wrong password" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _keytool() -> str | None:
    return shutil.which("keytool")


@pytest.mark.skipif(_keytool() is None, reason="keytool (the JDK of the Java client tests) is not installed")
@pytest.mark.parametrize("store_type", ["JKS", "JCEKS"])
def test_java_keystore_made_by_keytool(pki, tmp_path, store_type):
    pytest.importorskip("jks")
    p12 = _formats(pki, tmp_path)["p12"]
    store = tmp_path / f"server.{store_type.lower()}"
    out = subprocess.run(
        [_keytool(), "-importkeystore", "-srckeystore", str(p12), "-srcstoretype", "PKCS12", "-srcstorepass",
         "s3cret pw", "-destkeystore", str(store), "-deststoretype", store_type, "-deststorepass", "s3cret pw",
         "-noprompt"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    f = read_deployed_file(str(store), password=b"s3cret pw")
    assert f.format == store_type.lower() and f.error is None
    assert f.leaf == pki.new.cert and [c for c in f.certs] == [pki.new.cert, pki.ca.cert]
    assert f.has_key and f.key_matches is True
    bad = read_deployed_file(str(store), password=b"wrong")
    assert bad.error_kind == "password"
    nopw = read_deployed_file(str(store))  # certificates are readable without the password; the key is not
    assert nopw.leaf == pki.new.cert and nopw.key_matches is None and nopw.problems


def test_missing_pyjks_is_one_line(pki, tmp_path, monkeypatch, capsys):
    import builtins

    store = tmp_path / "x.jks"
    store.write_bytes(b"\xfe\xed\xfe\xed" + b"\x00" * 60)
    real = builtins.__import__

    def no_jks(name, *a, **kw):
        if name == "jks":
            raise ImportError("no jks")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_jks)
    f = read_deployed_file(str(store))
    assert f.error_kind == "library" and "pip install 'certdoctor[jks]'" in (f.error or "")
    assert "\n" not in (f.error or "")
    good = tmp_path / "good.pem"
    good.write_bytes(_pem(pki.new, pki.ca))
    code = main(["check", "--file", str(good), "--name", HOST, "--no-revocation", "--deployed", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and "pyjks" in err and len(err.strip().splitlines()) == 1, err


# --- hostile files -------------------------------------------------------------------------------------------


def test_hostile_deployed_files(pki, tmp_path):
    full = _pem(pki.new, pki.ca)
    truncated = tmp_path / "truncated.pem"
    truncated.write_bytes(full[: len(full) - 200])
    t = read_deployed_file(str(truncated))
    assert t.ok and len(t.certs) == 1 and "truncated" in t.problems[0]
    cut = tmp_path / "cut.pem"
    cut.write_bytes(full[:300])
    c = read_deployed_file(str(cut))
    assert c.error_kind == "parse" and "truncated" in (c.error or "")
    big = tmp_path / "big.pem"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    b = read_deployed_file(str(big))
    assert b.error_kind == "too-large" and "larger than 16 MiB" in (b.error or "")
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"\x30\x82\x01\x00\x02\x01\x03" + os.urandom(200))
    j = read_deployed_file(str(junk), password=b"x")
    assert j.error is not None and "\n" not in j.error
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    assert read_deployed_file(str(fifo)).error_kind == "unreadable"
    jks_junk = tmp_path / "junk.jks"
    jks_junk.write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02\xff\xff\xff\xff" + os.urandom(64))
    if shutil.which("keytool") or True:
        try:
            import jks  # noqa: F401

            assert read_deployed_file(str(jks_junk), password=b"x").error_kind in ("parse", "password")
        except ImportError:
            pass
    assert expand_deployed([str(tmp_path / "*.nothing")]) == [str(tmp_path / "*.nothing")]
    assert read_deployed_file(str(tmp_path / "*.nothing")).error_kind == "no-match"


def test_hostile_files_through_check_are_findings(pki, tmp_path, capsys):
    big = tmp_path / "big.pem"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    truncated = tmp_path / "truncated.pem"
    truncated.write_bytes(_pem(pki.new)[:300])
    good = tmp_path / "good.pem"
    good.write_bytes(_pem(pki.new, pki.ca))
    code = main(
        ["check", "--file", str(good), "--name", HOST, "--ca-file", pki.root_path, "--no-revocation", "--json",
         "--deployed", str(big), "--deployed", str(truncated), "--deployed", str(good)]
    )  # fmt: skip
    doc = validate(json.loads(capsys.readouterr().out))
    unreadable = {f["sources"][0]: f for f in by_id(doc, "deployed-file-unreadable")}
    assert set(unreadable) == {str(big), str(truncated)}
    assert unreadable[str(big)]["evidence"]["error_kind"] == "too-large"
    assert code == 1


def test_key_derivation_iteration_caps(pki, tmp_path, monkeypatch):
    """A PKCS#12 file or JCEKS key asking for more key-derivation iterations than the cap is refused before any
    key is derived (the cap is lowered here so that an ordinary file is over it)."""
    import certdoctor.collect.deployed as deployed_module
    import certdoctor.collect.keys as keys_module

    p12 = _formats(pki, tmp_path)["p12"]
    monkeypatch.setattr(keys_module, "MAX_PKCS12_ITERATIONS", 100)
    f = read_deployed_file(str(p12), password=b"s3cret pw")
    assert f.error_kind == "parse" and "iteration count" in (f.error or "") and "above certdoctor's limit" in f.error
    if shutil.which("keytool") is None:
        return
    pytest.importorskip("jks")
    store = tmp_path / "server.jceks"
    out = subprocess.run(
        [shutil.which("keytool"), "-importkeystore", "-srckeystore", str(p12), "-srcstoretype", "PKCS12",
         "-srcstorepass", "s3cret pw", "-destkeystore", str(store), "-deststoretype", "JCEKS", "-deststorepass",
         "s3cret pw", "-noprompt"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    monkeypatch.setattr(deployed_module, "MAX_PKCS12_ITERATIONS", 100)
    f = read_deployed_file(str(store), password=b"s3cret pw")
    assert f.leaf == pki.new.cert and f.key_matches is None
    assert any("key-derivation iterations" in p for p in f.problems), f.problems


def test_usage_errors_are_one_line(pki, tmp_path, capsys, monkeypatch):
    good = tmp_path / "good.pem"
    good.write_bytes(_pem(pki.new, pki.ca))
    monkeypatch.delenv("NO_SUCH_PASSWORD_VARIABLE", raising=False)
    for argv, says in (
        (["--deployed", str(good), "--password-env", "NO_SUCH_PASSWORD_VARIABLE"], "no such environment variable"),
        (["--server-type", "nginx"], "--server-type goes with --deployed"),
    ):
        code = main(["check", "--file", str(good), "--name", HOST, "--no-revocation", *argv])
        err = capsys.readouterr().err
        assert code == 2 and says in err and "Traceback" not in err, err


def test_library_call_with_deployed(pki, tmp_path):
    """certdoctor.diagnose(..., deployed=[...], server_type=...): the same judgement as the command line."""
    from certdoctor import diagnose

    served = tmp_path / "served.pem"
    served.write_bytes(_pem(pki.old, pki.ca))
    on_disk = tmp_path / "renewed.pem"
    on_disk.write_bytes(_pem(pki.new, pki.ca))
    d = diagnose(
        files=[str(served)], name=HOST, ca_files=[pki.root_path], revocation=False, clients=False,
        deployed=[str(on_disk)], server_type="haproxy",
    )  # fmt: skip
    [f] = [f for f in d.findings if f.id == "not-reloaded"]
    assert f.sources == (str(served),) and f"set ssl cert {on_disk}" in f.fix
    assert d.evidence.deployed[0].leaf == pki.new.cert and d.evidence.server_type == "haproxy"
