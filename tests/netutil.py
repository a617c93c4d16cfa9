"""Small loopback helpers shared by tests that start their own servers."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(span: int, start: int = 20000) -> int:
    """A port base with ``span`` consecutive ports free on 127.0.0.1 right now (a lab needs one per scenario)."""
    for base in range(start, 60000, 97):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + span):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port (or raise after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.05)


def curl_https(root: object, host: str, port: int) -> subprocess.CompletedProcess[str]:
    """GET https://host:port/ with real curl, trusting only ``root`` and resolving host to 127.0.0.1."""
    return subprocess.run(
        ["curl", "-sS", "--cacert", str(root), "--resolve", f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/"],
        capture_output=True,
        text=True,
        timeout=20,
    )


def nginx_conf(prefix: Path, http: str) -> Path:
    """``prefix/nginx.conf``: one worker, pid, logs and temp files under ``prefix``, and ``http`` (server blocks,
    directives) inside ``http {}``. For a private nginx started by :func:`start_nginx`."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {prefix}/tmp;\n"
        f"{http}\n}}\n"
    )
    return conf


def start_nginx(nginx: str, prefix: Path, conf: Path, *, check: bool = True) -> subprocess.Popen[bytes]:
    """``nginx -t`` (asserted to pass when ``check``), then nginx in the foreground (``daemon off``) with ``prefix``."""
    if check:
        tested = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
        assert tested.returncode == 0, tested.stderr
    return subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
