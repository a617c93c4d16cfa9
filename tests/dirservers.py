"""Private directory, file-transfer and chat servers on loopback for tests/test_starttls_dir.py: Debian's slapd
(LDAP), vsftpd (FTP) and Prosody (XMPP), each run in the foreground from a private temporary directory with its own
configuration and copies of lab chains. Nothing system-wide is read or written (no /etc/ldap/slapd.d, no
/etc/vsftpd.conf, no /etc/prosody; logs go to files of their own), and each is stopped at the end.

As tests/mailservers.py explains, the directories are made with ``tempfile.mkdtemp`` (not under pytest's
``/tmp/pytest-of-USER``, which every pytest that starts resets to mode 0700).

:func:`with_hosts` runs a real client that cannot be told where a name resolves (``ldapsearch``, unlike curl's
``--resolve``) in a mount namespace of its own where a private file is bind-mounted on /etc/hosts: the lab's host
names resolve to 127.0.0.1 for that process only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mailservers import copy_pair, private_dir
from netutil import free_port_range, wait_for_port

SLAPD = "/usr/sbin/slapd"
LDAPSEARCH = "/usr/bin/ldapsearch"
VSFTPD = "/usr/sbin/vsftpd"
PROSODY = "/usr/bin/prosody"
PACKAGES = {SLAPD: "slapd", LDAPSEARCH: "ldap-utils", VSFTPD: "vsftpd", PROSODY: "prosody"}


def unavailable_reason(*binaries: str) -> str | None:
    """Why these servers or clients cannot run here, or None."""
    for binary in binaries:
        if not os.path.exists(binary):
            return f"{binary} is not installed (Debian: apt-get install {PACKAGES.get(binary, binary)}; .ci/run does)"
    if os.geteuid() != 0:
        return "these servers start as root (and the real clients run in a mount namespace): the tests need root"
    return None


def with_hosts(argv: Sequence[str], names: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``argv`` run with ``names`` resolving to 127.0.0.1 (a private /etc/hosts in a mount namespace of its own,
    ``unshare --mount``); keyword arguments as for :func:`subprocess.run` (text, output captured)."""
    hosts = Path(tempfile.mkstemp(prefix="certdoctor-hosts-")[1])
    try:
        hosts.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {n}\n" for n in names), encoding="utf-8")
        os.chmod(hosts, 0o644)
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        return subprocess.run(
            ["unshare", "--mount", "sh", "-c", script, str(hosts), *argv],
            capture_output=True,
            text=True,
            **kwargs,  # type: ignore[arg-type]
        )
    finally:
        hosts.unlink(missing_ok=True)


class Daemon:
    """A server process in the foreground, logging to ``dir/stderr``; stopped (SIGTERM, then SIGKILL) on exit and
    its directory removed."""

    name = "server"

    def __init__(self) -> None:
        self.dir = private_dir(self.name)
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}

    def argv(self) -> list[str]:
        raise NotImplementedError

    def configure(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Daemon:
        self.configure()
        with open(self.dir / "stderr", "wb") as stderr:
            self.process = subprocess.Popen(self.argv(), stdout=stderr, stderr=stderr, stdin=subprocess.DEVNULL)
        try:
            for port in self.ports.values():
                wait_for_port(port, 20)
        except TimeoutError as exc:
            said = (self.dir / "stderr").read_text(errors="replace")[-3000:]
            self.__exit__()
            raise RuntimeError(f"{self.name} does not listen: {exc}\n{said}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Slapd(Daemon):
    """One OpenLDAP slapd serving one chain (slapd has one certificate per process: ``TLSCertificateFile``) on
    ``ports["ldap"]`` (StartTLS, like 389) and ``ports["ldaps"]`` (TLS from the first byte, like 636), on
    127.0.0.1, from a private slapd.conf (``slapd -f``, no cn=config) with no database: the root DSE is enough for
    StartTLS and for ``ldapsearch -b "" -s base``. ``pair`` None: no TLS at all (StartTLS is answered
    protocolError, "unsupported extended operation"), and no ldaps port."""

    name = "slapd"

    def __init__(self, pair: tuple[Path, Path] | None) -> None:
        super().__init__()
        self.pair = None if pair is None else copy_pair(self.dir, "server", *pair)
        base = free_port_range(2, start=27000)
        self.ports = {"ldap": base} if pair is None else {"ldap": base, "ldaps": base + 1}

    def configure(self) -> None:
        tls = "" if self.pair is None else f"TLSCertificateFile {self.pair[0]}\nTLSCertificateKeyFile {self.pair[1]}\n"
        (self.dir / "slapd.conf").write_text(
            f"include /etc/ldap/schema/core.schema\npidfile {self.dir}/slapd.pid\nargsfile {self.dir}/slapd.args\n"
            + tls,
            encoding="utf-8",
        )

    def argv(self) -> list[str]:
        urls = " ".join(f"{scheme}://127.0.0.1:{port}/" for scheme, port in self.ports.items())
        return [SLAPD, "-h", urls, "-f", str(self.dir / "slapd.conf"), "-d", "0"]


def slapds(chains: Mapping[str, tuple[Path, Path] | None]) -> dict[str, Slapd]:
    """One started :class:`Slapd` per chain name (the caller exits each)."""
    started: dict[str, Slapd] = {}
    try:
        for name, pair in chains.items():
            started[name] = Slapd(pair).__enter__()  # type: ignore[assignment]
    except BaseException:
        for server in started.values():
            server.__exit__()
        raise
    return started
