"""``check --deployed FILE --server-type haproxy`` on a real HAProxy (Debian's 2.6 here; loopback only): a ``crt``
file renewed on disk without a reload is ``not-reloaded``, and both ways out that the fix gives work — a reload
(what ``systemctl reload haproxy`` does: check the configuration, SIGUSR2 to the master) and the runtime API
(``set ssl cert`` + ``commit ssl cert`` over the stats socket), the fix's own command run as written. Also what
the fix text guards against, observed on this HAProxy: a payload without the key (the key in ``FILE.key``) is
refused at commit, and an empty line in the payload ends it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import test_deployed
from certdoctor.checks.deployed import reload_fix, who_answers_fix
from netutil import free_port
from pki_builder import Issued
from test_deployed import HOST, Pki, _key_pem, _pem, by_id, check_json, children, fp, served_fp, wait_serving

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
SOCAT = shutil.which("socat")
DEBIAN_SOCKET = "/run/haproxy/admin.sock"  # the stats socket of Debian's /etc/haproxy/haproxy.cfg, as the fix names

needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (.ci/run installs it)")
pytestmark = needs_haproxy
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat is not installed (.ci/run installs it)")

pki = test_deployed.pki  # the module fixture: cert A (old), its renewal B (new), another vhost's


def haproxy_pem(pki: Pki, cert: Issued, path: Path, *, key_file: bool = False, blank_lines: bool = False) -> Path:
    """Write ``path`` as HAProxy loads a ``crt``: the certificate, its chain and the key in one PEM file, or the
    key in ``path.key`` (``key_file``; HAProxy 2.2+ ``ssl-load-extra-files`` default). ``blank_lines``: an empty
    line between the PEM blocks (as ``cat`` of files ending with one makes). Replaced atomically, as a renewal
    client does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [_pem(cert), _pem(pki.ca)] + ([] if key_file else [_key_pem(cert)])
    files = {path: (b"\n" if blank_lines else b"").join(blocks)}
    if key_file:
        files[Path(f"{path}.key")] = _key_pem(cert)
    for target, data in files.items():
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return path


@dataclass
class Haproxy:
    """A private HAProxy in master-worker mode (``-W``) kept in the foreground (``-db``): ``proc`` is the master,
    ``socket`` its stats socket at admin level."""

    conf: Path
    socket: Path
    proc: subprocess.Popen[bytes]

    def reload(self) -> None:
        """What Debian's ``systemctl reload haproxy`` does (its unit's ExecReload): check the configuration with
        ``haproxy -c``, then SIGUSR2 to the master, which re-reads it and starts a new worker; then wait until the
        old worker has exited (until then it may still take connections and serve the old certificate)."""
        assert HAPROXY is not None
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(self.conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        before = set(children(self.proc.pid))
        os.kill(self.proc.pid, signal.SIGUSR2)
        wait_workers_replaced(self.proc.pid, before)

    def api(self, command: str) -> str:
        """One runtime API command over the stats socket (what ``socat stdio SOCKET`` sends)."""
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(command.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()


def wait_workers_replaced(pid: int, before: set[int], attempts: int = 600) -> None:
    """Poll until none of the worker processes ``before`` of master ``pid`` is left and a new one runs."""
    for _ in range(attempts):
        now = set(children(pid))
        if now and not now & before:
            return
        time.sleep(0.05)
    raise AssertionError(f"the old workers of {pid} did not exit after the reload")


@pytest.fixture
def haproxy_factory(tmp_path: Path) -> Iterator[Callable[..., Haproxy]]:
    started: list[Haproxy] = []

    def start(port: int, bind: str, *, address: str = "127.0.0.1") -> Haproxy:
        """``bind`` is what follows ``bind ADDRESS:PORT ssl`` (``crt FILE``, ``crt-list FILE``)."""
        assert HAPROXY is not None
        d = tmp_path / f"haproxy-{port}"
        d.mkdir()
        conf = d / "haproxy.cfg"
        sock = d / "admin.sock"
        conf.write_text(f"""
global
    pidfile {d}/haproxy.pid
    stats socket {sock} level admin

defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s

frontend shop
    bind {address}:{port} ssl {bind}
    http-request return status 200 content-type text/plain string ok
""")
        log = d / "haproxy.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([HAPROXY, "-W", "-db", "-f", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        h = Haproxy(conf, sock, proc)
        started.append(h)
        for _ in range(200):
            if served_fp(address, port) is not None and sock.exists():
                return h
            if proc.poll() is not None:
                raise AssertionError(f"haproxy did not start: {log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"haproxy did not answer on {address}:{port}")

    yield start
    for h in started:
        h.proc.terminate()  # the master stops its workers
        try:
            h.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            h.proc.kill()
            h.proc.wait(timeout=10)


def runtime_api_commands(fix: str, socket: Path) -> list[str]:
    """The two shell commands of the runtime API way in HAProxy's reload fix, aimed at ``socket`` instead of
    Debian's socket."""
    commands = re.findall(r"`(echo [^`]*\| socat stdio [^`]*)`", fix)
    assert len(commands) == 2, fix
    return [c.replace(DEBIAN_SOCKET, str(socket)) for c in commands]


def test_renewed_crt_not_reloaded_then_reloaded(pki, haproxy_factory, tmp_path, capsys):
    """cert+chain+key in one ``crt`` file: renewed on disk → not-reloaded with HAProxy's fix; the reload that
    ``systemctl reload haproxy`` performs → no drift finding."""
    port = free_port()
    site = haproxy_pem(pki, pki.old, tmp_path / "certs" / "site.pem")
    server = haproxy_factory(port, f"crt {site}")
    wait_serving("127.0.0.1", port, fp(pki.old))

    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(site), "--server-type", "haproxy", capsys=capsys)
    assert [f["id"] for f in doc["findings"]] == [] and doc["verdict"] == "valid"
    assert doc["deployed"][0]["has_key"] is True and doc["deployed"][0]["key_matches"] is True

    haproxy_pem(pki, pki.new, site)  # renewed; nobody reloads HAProxy
    assert served_fp("127.0.0.1", port) == fp(pki.old)
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(site), "--server-type", "haproxy", capsys=capsys)
    assert [f["id"] for f in doc["findings"]] == ["not-reloaded"] and doc["verdict"] == "invalid"
    [f] = by_id(doc, "not-reloaded")
    ev = f["evidence"]
    assert (ev["served_sha256"], ev["deployed_sha256"]) == (fp(pki.old), fp(pki.new))
    assert ev["deployed_path"] == str(site) and ev["server_type"] == "haproxy" and ev["stale"] == "leaf"
    assert f["fix"] == reload_fix("haproxy", str(site))  # the key is in the file: the payload is the file alone
    assert "`haproxy -c -f /etc/haproxy/haproxy.cfg && systemctl reload haproxy`" in f["fix"]
    assert f"$(grep -hv '^[[:space:]]*$' {site})\\n\" | socat stdio {DEBIAN_SOCKET}`" in f["fix"]
    assert f'`echo "commit ssl cert {site}" | socat stdio {DEBIAN_SOCKET}`' in f["fix"]

    server.reload()
    wait_serving("127.0.0.1", port, fp(pki.new))
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(site), "--server-type", "haproxy", capsys=capsys)
    assert [f["id"] for f in doc["findings"]] == [] and doc["verdict"] == "valid"


@needs_socat
def test_runtime_api_fix_replaces_the_certificate_without_a_reload(pki, haproxy_factory, tmp_path, capsys):
    """The key in ``site.pem.key`` (HAProxy loads it beside the crt) and the renewal written with empty lines
    between its blocks: the fix's runtime API commands, run as written (bash, socat), make the running worker
    serve the renewal — no new process. The command without the key (``$(cat FILE)``, HAProxy's manual example)
    is refused at commit by this HAProxy; an empty line in the payload ends it and the rest runs as commands."""
    port = free_port()
    site = haproxy_pem(pki, pki.old, tmp_path / "certs" / "site.pem", key_file=True)
    server = haproxy_factory(port, f"crt {site}")
    wait_serving("127.0.0.1", port, fp(pki.old))
    workers = set(children(server.proc.pid))
    assert workers and f"Filename: {site}" in server.api(f"show ssl cert {site}")

    haproxy_pem(pki, pki.new, site, key_file=True, blank_lines=True)
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(site), "--server-type", "haproxy", capsys=capsys)
    [f] = by_id(doc, "not-reloaded")
    assert doc["deployed"][0]["has_key"] is False
    assert f["fix"] == reload_fix("haproxy", str(site), f"{site}.key")
    assert f"$(grep -hv '^[[:space:]]*$' {site} {site}.key)" in f["fix"]

    # what the fix guards against: the certificate without its key is refused at commit (the payload replaces the
    # whole entry), and the open transaction has to be aborted
    out = server.api(f"set ssl cert {site} <<\n{_pem(pki.new, pki.ca).decode()}\n")
    assert "Transaction created" in out
    out = server.api(f"commit ssl cert {site}")
    assert "must contain at least a certificate and a private key" in out and "Can't commit" in out
    assert "Transaction aborted" in server.api(f"abort ssl cert {site}")
    # an empty line ends the payload: what follows it is read as commands
    naive = f'echo -e "set ssl cert {site} <<\\n$(cat {site} {site}.key)\\n" | socat stdio {server.socket}'
    out = subprocess.run(["bash", "-c", naive], capture_output=True, text=True, timeout=30).stdout
    assert "Unknown command" in out
    assert "Transaction aborted" in server.api(f"abort ssl cert {site}")
    assert served_fp("127.0.0.1", port) == fp(pki.old)

    # the fix's commands, as written
    set_cmd, commit_cmd = runtime_api_commands(f["fix"], server.socket)
    out = subprocess.run(["bash", "-c", set_cmd], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == f"Transaction created for certificate {site}!", out
    out = subprocess.run(["bash", "-c", commit_cmd], capture_output=True, text=True, timeout=30)
    assert "Success!" in out.stdout, out
    wait_serving("127.0.0.1", port, fp(pki.new))
    assert set(children(server.proc.pid)) == workers  # the same worker, no reload
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(site), "--server-type", "haproxy", capsys=capsys)
    assert [f["id"] for f in doc["findings"]] == [] and doc["verdict"] == "valid"


@needs_socat
def test_crt_list_sni_entry_served_not_deployed_and_renewed(pki, haproxy_factory, tmp_path, capsys):
    """A ``crt-list``: another vhost's certificate first (the default, served for names no entry filters), the
    shop's selected by SNI. Checking the shop name with the other vhost's file deployed → served-not-deployed with
    HAProxy's way to see what it holds (the command works against the real socket); the shop's file renewed →
    not-reloaded; the runtime API fix → current."""
    port = free_port()
    certs = tmp_path / "certs"
    other = haproxy_pem(pki, pki.other, certs / "other.pem")
    site = haproxy_pem(pki, pki.old, certs / "shop.pem")
    crt_list = certs / "list.txt"
    crt_list.write_text(f"{other}\n{site} {HOST}\n")
    server = haproxy_factory(port, f"crt-list {crt_list}")
    wait_serving("127.0.0.1", port, fp(pki.old))  # SNI shop.deployed.test selects its entry

    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(other), "--server-type", "haproxy", capsys=capsys)
    [f] = by_id(doc, "served-not-deployed")
    assert f["evidence"]["served_sha256"] == fp(pki.old) and f["evidence"]["deployed_sha256"] == fp(pki.other)
    assert f["fix"] == who_answers_fix("haproxy")
    [show] = re.findall(r"`(echo 'show ssl cert' \| socat stdio [^`]*)`", f["fix"])
    listed = subprocess.run(
        ["bash", "-c", show.replace(DEBIAN_SOCKET, str(server.socket))], capture_output=True, text=True, timeout=30
    ).stdout
    assert {str(other), str(site)} <= set(listed.split())

    haproxy_pem(pki, pki.new, site)
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(site), "--server-type", "haproxy", capsys=capsys)
    [f] = by_id(doc, "not-reloaded")
    assert f["evidence"]["served_sha256"] == fp(pki.old) and not by_id(doc, "served-not-deployed")
    for command in runtime_api_commands(f["fix"], server.socket):
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert "Transaction created" in out.stdout or "Success!" in out.stdout, out
    wait_serving("127.0.0.1", port, fp(pki.new))
    doc = check_json(pki, port, ["127.0.0.1"], "--deployed", str(site), "--server-type", "haproxy", capsys=capsys)
    assert [f["id"] for f in doc["findings"]] == []
    assert served_fp("127.0.0.1", port) == fp(pki.new)
