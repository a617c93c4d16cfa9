"""Addresses and stores: IPv6 sources, every address of a name, and trust-store selection."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from certdoctor import diagnose
from certdoctor.cli import main


@pytest.fixture
def ipv6_server(lab):
    """The good-rsa chain served on [::1] by a plain stdlib TLS server."""
    try:
        sock = socket.socket(socket.AF_INET6)
        sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    sock.listen(8)
    ep = lab.endpoints["good-rsa"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ep.chain_path, ep.key_path)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(1)
                    tls.recv(1)
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield ep, sock.getsockname()[1]
    stop.set()
    t.join(2)
    sock.close()


def test_ipv6_address_is_checked_and_labelled(lab, ipv6_server):
    ep, port = ipv6_server
    host = ep.scenario.hostname
    d = diagnose(f"{host}:{port}", resolve=["::1"], ca_files=[str(lab.root_path)], timeout=5)
    assert d.valid, d.ids()
    assert [c.source for c in d.evidence.chains] == [f"[::1]:{port}"]
    # An IPv6 literal target: its name is the address, which the certificate does not list.
    d = diagnose(f"[::1]:{port}", ca_files=[str(lab.root_path)], timeout=5)
    assert d.ids() == ["hostname-mismatch"] and d.target.sni is None


def test_every_address_of_a_name_is_checked(lab):
    ep = lab.endpoints["multi-address"]
    d = diagnose(f"{ep.scenario.hostname}:{ep.port}", resolve=list(ep.addresses), ca_files=[str(lab.root_path)])
    assert [c.address for c in d.evidence.chains] == ["127.0.0.1", "127.0.0.2"]
    assert len(d.reports) == 2


def test_trust_store_selection(lab, capsys):
    ep = lab.endpoints["good-ecdsa"]
    target = f"{ep.scenario.hostname}:{ep.port}"
    d = diagnose(
        target, resolve=list(ep.addresses), ca_files=[str(lab.root_path)], trust_stores=["chrome", "microsoft"]
    )
    assert [v.store for v in d.reports[0].analysis.verdicts] == ["chrome", "microsoft"]
    assert d.valid
    d = diagnose(target, resolve=list(ep.addresses), trust_stores=["chrome"])
    f = d.findings[0]
    assert d.ids() == ["untrusted-root"] and "chrome" in f.evidence["stores"]
    argv = [*ep.check_argv(lab.root_path), "--trust-store", "nonesuch"]
    assert main(argv) == 2
    assert "nonesuch" in capsys.readouterr().err
