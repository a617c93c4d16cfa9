"""A private MariaDB server on loopback for the database STARTTLS tests (PostgreSQL: tests/pgserver.py).

``MariaDB(chain)`` runs Debian's ``mariadbd`` from a temporary directory of its own (``mariadb-install-db
--no-defaults --datadir=DIR``, then ``mariadbd --no-defaults`` with every path under it: no /etc/mysql, no system
socket, no system data directory), on a free port of 127.0.0.1. With ``chain`` (chain PEM, key PEM) it serves TLS
with them (``--ssl-cert``/``--ssl-key``); without, it has no TLS (MariaDB before 11.4 generates no certificate of
its own) and its greeting lacks CLIENT_SSL. ``root`` logs in without a password
(``--auth-root-authentication-method=normal``); with ``--skip-name-resolve`` a TCP client is known by its address
only, so that once :meth:`MariaDB.sql` has dropped the accounts of 127.0.0.1 the server greets it with ERR 1130
"Host '127.0.0.1' is not allowed to connect". The server runs as root only when the tests do (``--user=root``;
mariadbd refuses root otherwise).

:func:`in_hosts_namespace` runs a real client with a private /etc/hosts (a mount namespace of its own,
``unshare --mount`` and a bind mount: the system's file is untouched) so that it connects to a lab host name and
verifies the certificate against it, as the MySQL clients have no ``--resolve``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from netutil import free_port, wait_for_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"


def unavailable_reason() -> str | None:
    """Why MariaDB cannot be started here, or None."""
    for binary, package in ((MARIADBD, "mariadb-server"), (INSTALL_DB, "mariadb-server"), (CLIENT, "mariadb-client")):
        if not os.path.exists(binary):
            return f"{binary} is not installed (Debian: apt-get install {package}; .ci/run does)"
    return None


def hosts_namespace_reason() -> str | None:
    """Why :func:`in_hosts_namespace` cannot work here (not root, no unshare), or None."""
    if os.geteuid() != 0:
        return "a private /etc/hosts needs a mount namespace: root only"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    return None


def in_hosts_namespace(
    hosts: dict[str, str], argv: Sequence[str], workdir: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` where /etc/hosts is ``hosts`` (name → address) plus localhost; stdout and stderr as text."""
    path = workdir / "hosts"
    path.write_text("127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in hosts.items()), encoding="ascii")
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, str(path), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class MariaDB:
    """One private mariadbd; ``port`` (on 127.0.0.1 and 127.0.0.2), ``dir``, ``log`` once entered."""

    def __init__(self, chain: tuple[Path, Path] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="certdoctor-mariadb-"))
        os.chmod(self.dir, 0o700)
        self.chain = chain
        self.port = 0
        self.log = self.dir / "error.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MariaDB:
        user = ["--user=root"] if os.geteuid() == 0 else []
        data = self.dir / "data"
        done = subprocess.run(
            [INSTALL_DB, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", *user],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError(f"mariadb-install-db failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        tls: list[str] = []
        if self.chain is not None:
            for suffix, source in zip(("pem", "key"), self.chain, strict=True):
                shutil.copyfile(source, self.dir / f"server.{suffix}")
            tls = [f"--ssl-cert={self.dir / 'server.pem'}", f"--ssl-key={self.dir / 'server.key'}"]
        for attempt in range(3):
            self.port = free_port()
            with open(self.dir / "stdout", "ab") as out:
                self.process = subprocess.Popen(
                    [MARIADBD, "--no-defaults", f"--datadir={data}", f"--socket={self.dir / 'sock'}",
                     f"--pid-file={self.dir / 'pid'}", f"--tmpdir={self.dir}", f"--log-error={self.log}",
                     f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
                     "--innodb-buffer-pool-size=16M", "--performance-schema=OFF", "--max-connections=30", *user,
                     *tls],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            try:
                self._wait_ready()
                return self
            except RuntimeError:
                said = self.log_tail()
                self._stop()
                if attempt == 2 or "in use" not in said:
                    shutil.rmtree(self.dir, ignore_errors=True)
                    raise
        raise AssertionError("unreachable")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while "ready for connections" not in self.log_tail(200):
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        wait_for_port(self.port, 20)

    def sql(self, statement: str) -> str:
        """Run ``statement`` as root over the server's unix socket (not TCP); its output. Raises on failure."""
        done = subprocess.run(
            [CLIENT, "--no-defaults", f"--socket={self.dir / 'sock'}", "-u", "root", "-N", "-e", statement],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{statement!r} failed: {done.stderr}")
        return done.stdout

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: mariadbd's normal shutdown
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)

    def __exit__(self, *exc: object) -> None:
        self._stop()
        shutil.rmtree(self.dir, ignore_errors=True)
