"""Private mail servers on loopback for the STARTTLS tests: Debian's Postfix and Dovecot, each run from a temporary
directory with its own configuration (``postfix -c DIR``, ``dovecot -c FILE``) and lab certificates. Nothing
system-wide is read or written: no /etc/postfix, no /etc/dovecot, no syslog (each logs to a file of its own).

Both need root (Postfix's master and Dovecot's master start as root and drop to their accounts, ``postfix`` and
``dovenull``/``dovecot``, which Debian's packages create). :func:`unavailable_reason` says why they cannot run here.

Each runs in a private directory of its own under the system's temporary directory (``tempfile.mkdtemp``, search
permission for the servers' accounts, removed when the server stops), with copies of the chain and key files:
not under pytest's ``/tmp/pytest-of-USER``, which every pytest process that starts resets to mode 0700 — and the
servers' unprivileged processes keep walking their directories for as long as they run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from netutil import free_port_range, wait_for_port

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"


def unavailable_reason(kind: str) -> str | None:
    """Why ``kind`` ("postfix" or "dovecot") cannot be started here, or None."""
    binary = POSTFIX if kind == "postfix" else DOVECOT
    if not os.path.exists(binary):
        package = "postfix" if kind == "postfix" else "dovecot-imapd and dovecot-pop3d"
        return f"{binary} is not installed (Debian: apt-get install {package}; .ci/run does)"
    if os.geteuid() != 0:
        return f"{kind} runs its master process as root: these tests need root"
    return None


def private_dir(kind: str) -> Path:
    """A new directory for one server: only root lists it, everyone may pass through it (the servers' accounts
    reach their sockets and queues inside)."""
    path = Path(tempfile.mkdtemp(prefix=f"certdoctor-{kind}-"))
    os.chmod(path, 0o711)
    return path


def copy_pair(directory: Path, name: str, chain: Path, key: Path) -> tuple[Path, Path]:
    """Copies of a chain and its key in ``directory`` (the key readable by root only: both servers read it
    before they drop their privileges)."""
    chain_copy, key_copy = directory / f"{name}.pem", directory / f"{name}.key"
    shutil.copyfile(chain, chain_copy)
    shutil.copyfile(key, key_copy)
    os.chmod(key_copy, 0o600)
    return chain_copy, key_copy


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Postfix:
    """One Postfix under ``base_dir`` with, for each chain of ``chains`` (name → (chain PEM, key PEM)), an smtpd
    listener with STARTTLS (like 587 / 25) and one with implicit TLS (like 465): ``ports[(name, "starttls")]`` and
    ``ports[(name, "implicit")]``, all on 127.0.0.1. The greeting is ``220 mail.certdoctor.test ESMTP …``."""

    def __init__(self, chains: Mapping[str, tuple[Path, Path]]) -> None:
        self.dir = private_dir("postfix")
        self.chains = {name: copy_pair(self.dir, name, *pair) for name, pair in chains.items()}
        self.log = self.dir / "maillog"
        base = free_port_range(2 * len(chains), start=25000)
        self.ports: dict[tuple[str, str], int] = {}
        for i, name in enumerate(self.chains):
            self.ports[(name, "starttls")] = base + 2 * i
            self.ports[(name, "implicit")] = base + 2 * i + 1

    def _configure(self) -> None:
        d = self.dir
        (d / "queue").mkdir()
        (d / "data").mkdir()
        first_chain, first_key = next(iter(self.chains.values()))
        (d / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
maillog_file = {self.log}
maillog_file_prefixes = {d}
myhostname = mail.certdoctor.test
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_banner = $myhostname ESMTP certdoctor test
smtpd_tls_security_level = may
smtpd_tls_chain_files = {first_key}, {first_chain}
smtpd_tls_loglevel = 1
""",
            encoding="utf-8",
        )
        lines = []
        for name, (chain, key) in self.chains.items():
            files = f"-o smtpd_tls_chain_files={key},{chain}"
            lines.append(f"127.0.0.1:{self.ports[(name, 'starttls')]} inet n - n - - smtpd {files}")
            lines.append(
                f"127.0.0.1:{self.ports[(name, 'implicit')]} inet n - n - - smtpd {files} "
                "-o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt"
            )
        lines += [
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "anvil unix - - n - 1 anvil",
            "proxymap unix - - n - - proxymap",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        (d / "master.cf").write_text("\n".join(lines) + "\n", encoding="utf-8")
        shutil.chown(d / "data", user="postfix")

    def __enter__(self) -> Postfix:
        self._configure()
        done = subprocess.run([POSTFIX, "-c", str(self.dir), "start"], capture_output=True, text=True, timeout=60)
        try:
            if done.returncode != 0:
                raise RuntimeError(f"postfix start failed ({done.returncode}): {done.stderr}\n{_log_tail(self.log)}")
            for port in self.ports.values():
                wait_for_port(port, 20)
        except (TimeoutError, RuntimeError) as exc:
            said = _log_tail(self.log)
            self.__exit__()
            raise RuntimeError(f"postfix: {exc}\n{said}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        pid_file = self.dir / "queue" / "pid" / "master.pid"
        subprocess.run([POSTFIX, "-c", str(self.dir), "stop"], capture_output=True, timeout=60)
        deadline = time.monotonic() + 15
        while pid_file.exists() and time.monotonic() < deadline:  # the master removes it when it is gone
            time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


class Dovecot:
    """One Dovecot under ``base_dir`` serving IMAP and POP3, each with STARTTLS (like 143 / 110) and implicit TLS
    (like 993 / 995): ``ports["imap"]``, ``ports["imaps"]``, ``ports["pop3"]``, ``ports["pop3s"]`` on 127.0.0.1.
    The chain is chosen by SNI (``local_name``): each chain of ``chains`` (name → (chain PEM, key PEM, host name))
    for its host name, the first one without SNI or for another name. Any user name logs in without a password
    (static passdb), with an empty Maildir, so that real clients can complete a session."""

    def __init__(self, chains: Mapping[str, tuple[Path, Path, str]]) -> None:
        self.dir = private_dir("dovecot")
        self.chains = {
            name: (*copy_pair(self.dir, name, chain, key), host) for name, (chain, key, host) in chains.items()
        }
        self.log = self.dir / "dovecot.log"
        self.conf = self.dir / "dovecot.conf"
        base = free_port_range(4, start=21000)
        self.ports = {"imap": base, "imaps": base + 1, "pop3": base + 2, "pop3s": base + 3}
        self.process: subprocess.Popen[bytes] | None = None

    def _configure(self) -> None:
        d = self.dir
        for sub in ("run", "state", "home"):
            (d / sub).mkdir()
        shutil.chown(d / "home", user="nobody", group="nogroup")
        first_chain, first_key, _ = next(iter(self.chains.values()))
        by_name = "".join(
            f"local_name {host} {{\n  ssl_cert = <{chain}\n  ssl_key = <{key}\n}}\n"
            for chain, key, host in self.chains.values()
        )
        p = self.ports
        self.conf.write_text(
            f"""base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log}
instance_name = certdoctor-test-{p["imap"]}
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{first_chain}
ssl_key = <{first_key}
{by_name}disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
mail_location = maildir:~/Maildir
login_greeting = certdoctor test mail ready
service imap-login {{
  inet_listener imap {{
    port = {p["imap"]}
  }}
  inet_listener imaps {{
    port = {p["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {p["pop3"]}
  }}
  inet_listener pop3s {{
    port = {p["pop3s"]}
    ssl = yes
  }}
}}
""",
            encoding="utf-8",
        )

    def __enter__(self) -> Dovecot:
        self._configure()
        with open(self.dir / "stderr", "wb") as stderr:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            for port in self.ports.values():
                wait_for_port(port, 20)
        except TimeoutError as exc:
            said = (self.dir / "stderr").read_text(errors="replace") + "\n" + _log_tail(self.log)
            self.__exit__()
            raise RuntimeError(f"dovecot does not listen: {exc}\n{said}") from None
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
