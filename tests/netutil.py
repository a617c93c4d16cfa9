"""Small loopback helpers shared by tests that start their own servers."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
