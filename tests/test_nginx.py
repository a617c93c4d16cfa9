"""The produced fullchain.pem + privkey.pem, served by a real nginx, are accepted by curl and by certdoctor."""

from __future__ import annotations

import os
import shutil

import pytest

from certdoctor import diagnose
from certdoctor.cli import main
from netutil import curl_https, free_port, nginx_conf, start_nginx, wait_for_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs Debian's nginx-light)")


def test_fixed_chain_works_in_real_nginx(lab, tmp_path, capsys):
    # A server that sends its chain in the wrong order: repair it from the live server, with its key.
    ep = lab.endpoints["wrong-order"]
    host = ep.scenario.hostname
    target = f"{host}:{ep.port}"
    out = tmp_path / "out"
    assert (
        main(
            [
                "fix",
                target,
                "--resolve",
                f"{target}:127.0.0.1",
                "--key",
                str(ep.key_path),
                "-d",
                str(out),
                "--ca-file",
                str(lab.root_path),
            ]
        )
        == 0
    )
    capsys.readouterr()
    port = free_port()
    prefix = tmp_path / "nginx"
    conf = nginx_conf(
        prefix,
        f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {host};
        ssl_certificate     {out}/fullchain.pem;
        ssl_certificate_key {out}/privkey.pem;
        location / {{ return 200 "served by nginx\\n"; }}
    }}""",
    )
    proc = start_nginx(NGINX, prefix, conf)
    try:
        wait_for_port(port)
        curl = curl_https(lab.root_path, host, port)
        assert curl.returncode == 0, curl.stderr
        assert curl.stdout == "served by nginx\n"
        d = diagnose(f"{host}:{port}", resolve=["127.0.0.1"], ca_files=[str(lab.root_path)], timeout=5)
        assert d.valid and d.ids() == []
        assert len(d.reports[0].chain.certs) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
