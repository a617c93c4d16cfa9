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
    user: str | None = None  # the account to run it as (None: root)

    def __init__(self) -> None:
        self.dir = private_dir(self.name)
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}  # set by configure(), when the server starts

    def argv(self) -> list[str]:
        raise NotImplementedError

    def configure(self) -> None:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The server's environment (None: this process's)."""
        return None

    def __enter__(self) -> Daemon:
        self.configure()
        with open(self.dir / "stderr", "wb") as stderr:
            self.process = subprocess.Popen(
                self.argv(),
                stdout=stderr,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                user=self.user,
                group=self.user,
                env=self.environment(),
            )
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

    def configure(self) -> None:
        base = free_port_range(2, start=27000)  # when it starts: the ports of those started before are taken
        self.ports = {"ldap": base} if self.pair is None else {"ldap": base, "ldaps": base + 1}
        tls = "" if self.pair is None else f"TLSCertificateFile {self.pair[0]}\nTLSCertificateKeyFile {self.pair[1]}\n"
        (self.dir / "slapd.conf").write_text(
            f"include /etc/ldap/schema/core.schema\npidfile {self.dir}/slapd.pid\nargsfile {self.dir}/slapd.args\n"
            + tls,
            encoding="utf-8",
        )

    def argv(self) -> list[str]:
        urls = " ".join(f"{scheme}://127.0.0.1:{port}/" for scheme, port in self.ports.items())
        return [SLAPD, "-h", urls, "-f", str(self.dir / "slapd.conf"), "-d", "0"]


class Vsftpd(Daemon):
    """One vsftpd (``vsftpd FILE``, ``background=NO``) on ``ports["ftp"]``: with ``implicit`` TLS from the first
    byte (``implicit_ssl``, like 990), else AUTH TLS (like 21); with ``pair`` None no TLS at all (AUTH TLS is
    refused). vsftpd serves one certificate per process (``rsa_cert_file``, read as a chain file). Anonymous logins
    see an empty directory, so that curl completes a session."""

    name = "vsftpd"

    def __init__(self, pair: tuple[Path, Path] | None, *, implicit: bool = False) -> None:
        super().__init__()
        self.pair = None if pair is None else copy_pair(self.dir, "server", *pair)
        self.implicit = implicit

    def configure(self) -> None:
        self.ports = {"ftp": free_port_range(1, start=28000)}
        d = self.dir
        for sub in ("empty", "root"):
            (d / sub).mkdir()
            os.chmod(d / sub, 0o755)
        tls = "ssl_enable=NO\n"
        if self.pair is not None:
            tls = (
                f"ssl_enable=YES\nrsa_cert_file={self.pair[0]}\nrsa_private_key_file={self.pair[1]}\n"
                "ssl_ciphers=HIGH\nrequire_ssl_reuse=NO\nallow_anon_ssl=YES\nforce_anon_logins_ssl=NO\n"
                f"force_anon_data_ssl=NO\nimplicit_ssl={'YES' if self.implicit else 'NO'}\n"
            )
        (d / "vsftpd.conf").write_text(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\n"
            f"listen_port={self.ports['ftp']}\nbackground=NO\n{tls}"
            f"anonymous_enable=YES\nanon_root={d}/root\nlocal_enable=NO\nsecure_chroot_dir={d}/empty\n"
            f"seccomp_sandbox=NO\nxferlog_enable=NO\nvsftpd_log_file={d}/vsftpd.log\n"
            "pasv_enable=YES\npasv_address=127.0.0.1\nftpd_banner=certdoctor test FTP ready\n",
            encoding="utf-8",
        )

    def argv(self) -> list[str]:
        return [VSFTPD, str(self.dir / "vsftpd.conf")]


def start_all(servers: Mapping[str, Daemon]) -> dict[str, Daemon]:
    """Each of ``servers`` started (all stopped again if one fails to start); the caller exits each."""
    started: dict[str, Daemon] = {}
    try:
        for name, server in servers.items():
            started[name] = server.__enter__()
    except BaseException:
        for server in started.values():
            server.__exit__()
        for server in servers.values():
            if server not in started.values():
                shutil.rmtree(server.dir, ignore_errors=True)
        raise
    return started


class Prosody(Daemon):
    """One Prosody (``prosody --config FILE``, in the foreground, as the ``prosody`` account: it refuses to run as
    root) with a VirtualHost per chain of ``chains`` (host name → (chain PEM, key PEM); None: a host without a
    certificate and without mod_tls). The certificates are in its certificates directory as HOST.crt and HOST.key:
    Prosody's certmanager finds them there for STARTTLS (by the stream's 'to') and for direct TLS (by SNI), which
    looks nowhere else. Ports on 127.0.0.1: ``ports["xmpp"]`` (client STARTTLS, like 5222), ``ports["xmpps"]``
    (client direct TLS, like 5223, XEP-0368), ``ports["xmpp-server"]`` (like 5269), ``ports["xmpps-server"]``
    (like 5270)."""

    name = "prosody"
    user = "prosody"

    def __init__(self, chains: Mapping[str, tuple[Path, Path] | None]) -> None:
        super().__init__()
        self.hosts = list(chains)
        self.with_tls = {host for host, pair in chains.items() if pair is not None}
        (self.dir / "certs").mkdir()
        for host, pair in chains.items():  # certificates/HOST.crt and HOST.key: what Prosody looks up, SNI included
            if pair is not None:
                chain, _ = copy_pair(self.dir / "certs", host, *pair)
                chain.rename(chain.with_suffix(".crt"))

    def configure(self) -> None:
        base = free_port_range(4, start=29000)
        self.ports = {"xmpp": base, "xmpps": base + 1, "xmpp-server": base + 2, "xmpps-server": base + 3}
        d = self.dir
        (d / "data").mkdir()
        hosts = "".join(
            f'VirtualHost "{host}"\n' + ("" if host in self.with_tls else '  modules_disabled = { "tls" }\n')
            for host in self.hosts
        )
        p = self.ports
        (d / "prosody.cfg.lua").write_text(
            f"""pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ info = "{d}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {p["xmpp"]} }}
c2s_direct_tls_ports = {{ {p["xmpps"]} }}
s2s_ports = {{ {p["xmpp-server"]} }}
s2s_direct_tls_ports = {{ {p["xmpps-server"]} }}
modules_enabled = {{ "tls", "saslauth", "disco", "dialback" }}
c2s_require_encryption = true
s2s_require_encryption = true
authentication = "internal_hashed"
{hosts}""",
            encoding="utf-8",
        )
        for path in d.rglob("*"):
            shutil.chown(path, user="prosody", group="prosody")
        shutil.chown(d, user="prosody", group="prosody")

    def argv(self) -> list[str]:
        return [PROSODY, "--config", str(self.dir / "prosody.cfg.lua")]


DOVECOT = "/usr/sbin/dovecot"
MANAGESIEVE = "/usr/lib/dovecot/managesieve-login"
PACKAGES[MANAGESIEVE] = "dovecot-managesieved"


class ManageSieve(Daemon):
    """One Dovecot (``dovecot -F -c FILE``, as tests/mailservers.py runs it) serving only ManageSieve (Pigeonhole's
    managesieve-login, RFC 5804) on ``ports["sieve"]`` (like 4190), the chain chosen by SNI (``local_name``) among
    ``chains`` (name → (chain PEM, key PEM, host name)), the first one without SNI; with ``chains`` empty, no TLS
    at all (``ssl = no``: STARTTLS is not listed)."""

    name = "managesieve"

    def __init__(self, chains: Mapping[str, tuple[Path, Path, str]]) -> None:
        super().__init__()
        self.chains = {name: (*copy_pair(self.dir, name, c, k), host) for name, (c, k, host) in chains.items()}

    def configure(self) -> None:
        port = free_port_range(1, start=30000)
        self.ports = {"sieve": port}
        d = self.dir
        for sub in ("run", "state", "home"):
            (d / sub).mkdir()
        shutil.chown(d / "home", user="nobody", group="nogroup")
        if self.chains:
            first_chain, first_key, _ = next(iter(self.chains.values()))
            tls = f"ssl = yes\nssl_cert = <{first_chain}\nssl_key = <{first_key}\n" + "".join(
                f"local_name {host} {{\n  ssl_cert = <{chain}\n  ssl_key = <{key}\n}}\n"
                for chain, key, host in self.chains.values()
            )
        else:
            tls = "ssl = no\n"
        (d / "dovecot.conf").write_text(
            f"""base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = certdoctor-sieve-{port}
protocols = sieve
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
managesieve_implementation_string = certdoctor test sieve
service managesieve-login {{
  inet_listener sieve {{
    port = {port}
  }}
}}
""",
            encoding="utf-8",
        )

    def argv(self) -> list[str]:
        return [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")]


NNRPD = "/usr/lib/news/bin/nnrpd"
MAKEHISTORY = "/usr/lib/news/bin/makehistory"
PACKAGES[NNRPD] = "inn2"


class Nnrpd(Daemon):
    """INN's news reader server, ``nnrpd`` (INN 2.7), standalone (``-D -f``: a daemon in the foreground that forks
    one process per connection, no innd) as the ``news`` account, on ``ports["nntp"]`` (STARTTLS, RFC 4642, like
    119) or with ``implicit`` on ``ports["nntps"]`` (``-S``: TLS from the first byte, like 563). Everything it
    reads is in its private directory: its inn.conf is named by the ``INNCONF`` variable and puts every path
    (``pathdb``, ``pathetc``, ``pathrun``, ``pathspool``, ``pathoverview``...) there; one newsgroup, an empty
    spool and the empty tradindexed overview that ``makehistory -O`` builds (nnrpd answers "400 NNTP server
    unavailable" without one). nnrpd serves one certificate (inn.conf's ``tlscertfile``, read as a chain file, and
    ``tlskeyfile``); with ``pair`` None it has none, and STARTTLS is not listed in CAPABILITIES."""

    name = "nnrpd"
    user = "news"

    def __init__(self, pair: tuple[Path, Path] | None, *, implicit: bool = False) -> None:
        super().__init__()
        self.pair = None if pair is None else copy_pair(self.dir, "server", *pair)
        self.implicit = implicit

    def environment(self) -> dict[str, str]:
        return {**os.environ, "INNCONF": str(self.dir / "inn.conf")}

    def configure(self) -> None:
        self.ports = {"nntps" if self.implicit else "nntp": free_port_range(1, start=31000)}
        d = self.dir
        for sub in ("db", "etc", "run", "spool", "tmp", "log", "overview"):
            (d / sub).mkdir()
        tls = "" if self.pair is None else f"tlscertfile: {self.pair[0]}\ntlskeyfile: {self.pair[1]}\n"
        paths = "".join(
            f"path{name}: {d / sub}\n"
            for name, sub in [
                ("db", "db"),
                ("etc", "etc"),
                ("run", "run"),
                ("spool", "spool"),
                ("articles", "spool"),
                ("incoming", "spool"),
                ("outgoing", "spool"),
                ("tmp", "tmp"),
                ("log", "log"),
                ("http", "tmp"),
                ("overview", "overview"),
            ]
        )
        (d / "inn.conf").write_text(
            'mta: "/bin/true %s"\novmethod: tradindexed\nhismethod: hisv6\nenableoverview: true\n'
            "pathhost: news.certdoctor.test\ndomain: certdoctor.test\npathnews: /usr/lib/news\n"
            f"pathfilter: /etc/news/filter\npathcontrol: /etc/news/control\n{paths}{tls}",
            encoding="utf-8",
        )
        (d / "etc" / "readers.conf").write_text(
            'auth "everyone" {\n  hosts: "*"\n  default: "<reader>"\n}\n'
            'access "everyone" {\n  users: "*"\n  newsgroups: "*"\n  access: R\n}\n',
            encoding="utf-8",
        )
        (d / "etc" / "storage.conf").write_text(
            "method tradspool {\n  newsgroups: *\n  class: 0\n}\n", encoding="utf-8"
        )
        (d / "db" / "active").write_text("certdoctor.test 0000000000 0000000001 y\n", encoding="utf-8")
        (d / "db" / "newsgroups").write_text("certdoctor.test\tcertdoctor's test group\n", encoding="utf-8")
        for path in [d, *d.rglob("*")]:
            shutil.chown(path, user="news", group="news")
        built = subprocess.run(
            [MAKEHISTORY, "-O", "-x", "-F"],
            env=self.environment(),
            user="news",
            group="news",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if not (d / "overview" / "group.index").exists():
            raise RuntimeError(f"makehistory built no overview: {built.returncode} {built.stderr}")

    def argv(self) -> list[str]:
        [port] = self.ports.values()
        return [NNRPD, "-D", "-f", "-p", str(port), "-b", "127.0.0.1", *(["-S"] if self.implicit else [])]


INSPIRCD = "/usr/sbin/inspircd"
PACKAGES[INSPIRCD] = "inspircd"


class InspIRCd(Daemon):
    """InspIRCd 3 (``inspircd --nofork --config FILE``, as the ``irc`` account: it refuses to run as root) on
    ``ports["irc"]`` (plaintext, like 6667; with the ``starttls`` module the IRCv3 "tls" capability and STARTTLS,
    670) and ``ports["ircs"]`` (TLS from the first byte, like 6697), TLS by its ``ssl_gnutls`` module with one
    ``<sslprofile>`` (one certificate per server: ``certfile`` read as a chain file). With ``pair`` None: no TLS
    module, no "tls" capability, no ircs port. Host name lookups are off (``resolvehostnames="no"``): with them the
    server sends a NOTICE ("*** Looking up your hostname...") at once, before the client speaks, and ``openssl
    s_client -starttls irc`` gives up at the first line that is not a numeric reply (apps/s_client.c)."""

    name = "inspircd"
    user = "irc"

    def __init__(self, pair: tuple[Path, Path] | None) -> None:
        super().__init__()
        self.pair = None if pair is None else copy_pair(self.dir, "server", *pair)

    def configure(self) -> None:
        base = free_port_range(2, start=32000)
        self.ports = {"irc": base} if self.pair is None else {"irc": base, "ircs": base + 1}
        d = self.dir
        tls = ""
        if self.pair is not None:
            tls = (
                '<module name="ssl_gnutls">\n<module name="starttls">\n'
                f'<sslprofile name="lab" provider="gnutls" certfile="{self.pair[0]}" keyfile="{self.pair[1]}">\n'
                f'<starttls provider="lab">\n<bind address="127.0.0.1" port="{base + 1}" type="clients" '
                'sslprofile="lab">\n'
            )
        (d / "motd").write_text("certdoctor test IRC server\n", encoding="utf-8")
        (d / "inspircd.conf").write_text(
            '<server name="irc.certdoctor.test" description="certdoctor test" network="certdoctor">\n'
            '<admin name="test" nick="test" email="test@irc.certdoctor.test">\n<module name="cap">\n'
            f'{tls}<bind address="127.0.0.1" port="{base}" type="clients">\n'
            '<connect allow="*" timeout="60" localmax="1000" globalmax="1000" useident="no" '
            'resolvehostnames="no">\n'
            f'<dns server="127.0.0.1" timeout="1">\n<pid file="{d}/inspircd.pid">\n<files motd="{d}/motd">\n'
            f'<log method="file" type="*" level="default" target="{d}/inspircd.log">\n',
            encoding="utf-8",
        )
        for path in [d, *d.rglob("*")]:
            shutil.chown(path, user="irc", group="irc")

    def argv(self) -> list[str]:
        return [INSPIRCD, "--nofork", "--config", str(self.dir / "inspircd.conf")]
