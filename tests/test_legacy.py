"""Collection must work against legacy servers (TLS 1.0, old ciphers): we judge, we do not refuse."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from certdoctor import diagnose
from certdoctor.collect.handshake import fetch_chain
from netutil import free_port, wait_for_port


@pytest.fixture
def tls10_server(lab):
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed")
    ep = lab.endpoints["good-rsa"]
    port = free_port()
    proc = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(ep.chain_path),
            "-key",
            str(ep.key_path),
            "-cert_chain",
            str(ep.chain_path),
            "-tls1",
            "-cipher",
            "ALL:@SECLEVEL=0",
            "-quiet",
            "-naccept",
            "3",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_port(port)
    # the probe connection above used one of the accepts
    yield ep, port
    proc.kill()
    proc.wait()


def test_tls10_server_chain_is_collected_and_judged(lab, tls10_server):
    ep, port = tls10_server
    chain = asyncio.run(fetch_chain("127.0.0.1", port, ep.scenario.hostname, 5.0))
    assert chain.error is None, chain.error
    assert chain.tls_version == "TLSv1"
    d = diagnose(f"{ep.scenario.hostname}:{port}", resolve=["127.0.0.1"], ca_files=[str(lab.root_path)], timeout=5)
    assert d.valid, d.ids()
