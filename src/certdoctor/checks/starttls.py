"""The plaintext phase before TLS (STARTTLS, STLS): did the server upgrade the connection?

A server reached with a ``starttls`` protocol (``smtp://``, ``--starttls imap``, port 587...) has to speak that
protocol and agree to the upgrade before any certificate is sent. When it does not, no chain exists to judge and
these findings say why, with what the server said (its greeting, the reply code, the extensions it listed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..collect.starttls import PROTOCOLS
from ..model import PresentedChain, Severity
from .registry import Hit, TargetContext, check

_CITATIONS = (
    "RFC 3207 §4 (SMTP), RFC 3501 §6.2.1 (IMAP), RFC 2595 §4 (POP3), PostgreSQL protocol §53.2.10 (SSLRequest), "
    "MySQL protocol (Protocol::SSLRequest), RFC 4511 §4.14 (LDAP), RFC 4217 §4 (FTP), RFC 6120 §5 (XMPP), "
    "RFC 5804 §2.2 (ManageSieve), RFC 4642 §2 (NNTP), IRCv3 tls (IRC)"
)


# Databases: who stops, and the fix (PostgreSQL docs "Secure TCP/IP Connections with SSL" and libpq's sslmode;
# MariaDB "Securing Connections for Client and Server", MySQL "Configuring MySQL to Use Encrypted Connections").
_DATABASES = {
    name: (
        f"Clients that require TLS ({clients}) stop here; others may carry on without encryption.",
        fix,
    )
    for names, clients, fix in (
        (
            ("postgres", "postgres-direct"),
            "libpq's sslmode=require, verify-ca or verify-full: psql, psycopg; JDBC ssl=true; Npgsql SSL Mode=Require",
            "Turn TLS on: ssl = on in postgresql.conf, with ssl_cert_file (the chain, leaf first) and ssl_key_file "
            "(mode 0600, owned by the server's account), then reload (pg_ctl reload or SELECT pg_reload_conf()); its "
            "log says why when the files cannot be read.",
        ),
        (
            ("mysql",),
            "mysql --ssl-mode=REQUIRED or VERIFY_IDENTITY, mariadb --ssl-verify-server-cert, Connector/J sslMode",
            "Give the server a certificate: ssl_cert (the chain, leaf first) and ssl_key in the [mysqld] section "
            "(MySQL 5.7 and 8 generate a self-signed one; MariaDB before 11.4 has none until configured), then restart "
            "it (MySQL 8: ALTER INSTANCE RELOAD TLS). An error greeting such as 1130 'Host … is not allowed to "
            "connect' is about accounts, not TLS: grant access from the client's address.",
        ),
    )
    for name in names
}


# How to turn the upgrade on in common servers of the protocols beyond mail (their documentation's directives).
_ENABLE = {
    "ldap": "OpenLDAP slapd: TLSCertificateFile and TLSCertificateKeyFile, olcTLSCertificateFile and "
    "olcTLSCertificateKeyFile in cn=config; Active Directory: a server certificate in the NTDS store",
    "ftp": "vsftpd: ssl_enable=YES with rsa_cert_file and rsa_private_key_file; ProFTPD: TLSEngine on with "
    "TLSRSACertificateFile; Pure-FTPd: --tls=1",
    "xmpp": "Prosody: a certificate for the VirtualHost (certificates/HOST.crt and HOST.key, or ssl = {...}) and "
    "mod_tls; ejabberd: certfiles and starttls: true on the listener",
    "xmpp-server": "Prosody: a certificate for the VirtualHost and mod_tls; ejabberd: certfiles and "
    "s2s_use_starttls: required",
    "sieve": "Dovecot Pigeonhole: ssl = yes with ssl_cert and ssl_key (the managesieve-login service shares them)",
    "nntp": "INN: tlscapath, tlscertfile and tlskeyfile in inn.conf (nnrpd offers STARTTLS then)",
    "irc": "most IRC servers no longer offer STARTTLS (IRCv3 deprecated its tls extension): serve TLS on 6697 "
    "(ircs://) instead",
}


# The real clients that stop at a refused upgrade, per protocol (each run against a refusing real server in
# tests/test_starttls*.py; curl speaks none of XMPP, ManageSieve, NNTP and IRC, and LDAP without StartTLS).
_OPENSSL = "`openssl s_client -starttls {}`"
_REAL_CLIENTS = {
    **{p: f"`curl --ssl-reqd`, {_OPENSSL.format(p)}" for p in ("smtp", "imap", "pop3", "ftp")},
    "ldap": f"`ldapsearch -ZZ`, python-ldap's start_tls_s(), JNDI's StartTlsRequest, {_OPENSSL.format('ldap')}",
    "xmpp": _OPENSSL.format("xmpp"),
    "xmpp-server": _OPENSSL.format("xmpp-server"),
    "sieve": _OPENSSL.format("sieve"),
    "nntp": f"Python's nntplib starttls(), {_OPENSSL.format('nntp')}",
    "irc": _OPENSSL.format("irc"),
}


def _refused_fix(protocol: str) -> str:
    """What to do about a refused upgrade of ``protocol``."""
    if protocol in _ENABLE:
        upgrade = PROTOCOLS.get(protocol)
        implicit = ""
        if upgrade is not None and upgrade.implicit_scheme:
            implicit = f" Or connect to the implicit-TLS port ({upgrade.implicit_scheme}:// on {upgrade.implicit_port})"
            implicit += " if the server offers one."
        return (
            f"Enable TLS in the server's configuration for this listener ({_ENABLE[protocol]}) and reload it; when it "
            f"is enabled and still refused, its certificate or key files are usually unreadable: its log says "
            f"which.{implicit}"
        )
    return (
        "Enable TLS in the server's configuration for this listener (Postfix: smtpd_tls_security_level = may "
        "and smtpd_tls_chain_files; Dovecot: ssl = yes with ssl_cert/ssl_key) and reload it; if it says TLS is "
        "temporarily unavailable (454), its certificate or key files are usually unreadable: its log says "
        "which. Or connect to the implicit-TLS port (465, 993, 995) if the server offers one."
    )


def _where(name: str) -> str:
    """Where ``name`` (a protocol of the registry) is served: "IMAP with STARTTLS on 143 (imap://), with TLS from
    the first byte on 993 (imaps://)"; the databases' own wording (they have no implicit-TLS port)."""
    if name in ("postgres", "postgres-direct"):
        return (
            "PostgreSQL on 5432 (postgres://; PostgreSQL 17 also takes TLS from the first byte there: --starttls "
            "postgres-direct)"
        )
    if name == "mysql":
        return "MySQL and MariaDB on 3306 (mysql://)"
    p = PROTOCOLS[name]
    ports = " or ".join(str(x) for x in p.ports)
    scheme = "smtp://, the submission port 587 or the relay port 25" if name == "smtp" else f"{name}://"
    where = f"{p.title} with {p.command} on {ports} ({scheme})"
    if p.implicit_scheme:
        where += f", with TLS from the first byte on {p.implicit_port} ({p.implicit_scheme}://)"
    return where


# What answered instead, as the negotiators word it (collect.starttls.channel.who_answered), and where that is
# served.
_ANSWERED = {
    "an IMAP server": "imap",
    "a POP3 server": "pop3",
    "an HTTP server": "https:// on 443 (HTTP over TLS, RFC 9110 §4.2.2)",
    "an SSH server": "no TLS at all (SSH, usually on 22)",
}


def _wrong_protocol_fix(chain: PresentedChain) -> str:
    """The fix for a port that does not speak the protocol it was reached with: where that protocol is served,
    and where what answered is (when it said what it is)."""
    info = chain.starttls
    name = info.protocol if info is not None and (info.protocol in PROTOCOLS) else "smtp"
    text = f"Check the port: {_where(name)}."
    error = chain.error or ""
    upgrade = PROTOCOLS[name]
    if "TLS from the first byte" in error and upgrade.implicit_scheme:
        text += f" This port speaks TLS from the first byte: check it as {upgrade.implicit_scheme}://."
    else:
        for said, where in _ANSWERED.items():
            if f"({said};" in error or f"; {said};" in error:
                text += f" What answered is {said}: " + (f"{_where(where)}." if where in PROTOCOLS else f"{where}.")
                break
    if name in _DATABASES:
        return text + " A connection pooler or proxy in front may speak something else."
    return (
        text + " Give the scheme or --starttls that matches what the port speaks (--starttls none for TLS from the "
        "first byte)."
    )


def _evidence(chain: PresentedChain) -> dict[str, Any]:
    info = chain.starttls
    base: dict[str, Any] = {"error_kind": chain.error_kind, "error": chain.error}
    if info is not None:
        base.update(info.to_dict())
    return base


def _failures(ctx: TargetContext, kind: str) -> Iterator[PresentedChain]:
    return (c for c in ctx.failures if c.error_kind == kind)


@check(
    "starttls-refused",
    title="The server does not offer, or refuses, the upgrade to TLS (STARTTLS)",
    severity=Severity.ERROR,
    citation=_CITATIONS,
    scope="target",
)
def starttls_refused(ctx: TargetContext) -> Iterator[Hit]:
    """The server speaks the protocol (a valid greeting) but does not list STARTTLS (SMTP EHLO keywords, IMAP
    CAPABILITY, POP3 CAPA "STLS"), answers the upgrade command with an error (SMTP 454, IMAP NO/BAD, POP3 -ERR,
    an LDAP resultCode other than 0, FTP 5xx to AUTH TLS, XMPP <failure/>), refuses the session in its greeting
    (SMTP 554, IMAP BYE or PREAUTH, POP3 -ERR, FTP 421, an XMPP <stream:error>), or hangs up."""
    for chain in _failures(ctx, "starttls-refused"):
        info = chain.starttls
        protocol = info.protocol.upper() if info is not None else "the protocol"
        banner = f" Its greeting: {info.banner!r}." if info is not None and info.banner else ""
        database = _DATABASES.get(info.protocol) if info is not None else None
        if database is not None:
            yield Hit(
                f"{chain.source}: {chain.error}.{banner} {database[0]}",
                database[1],
                sources=(chain.source,),
                evidence=_evidence(chain),
            )
            continue
        tools = _REAL_CLIENTS.get(info.protocol if info is not None else "", "`openssl s_client -starttls`")
        yield Hit(
            f"{chain.source}: {chain.error}.{banner} Clients that require TLS ({protocol} clients set to require "
            f"STARTTLS, {tools}) stop here; others may carry on without encryption.",
            _refused_fix(info.protocol if info is not None else ""),
            sources=(chain.source,),
            evidence=_evidence(chain),
        )


@check(
    "starttls-wrong-protocol",
    title="The server does not speak the protocol it was reached with",
    severity=Severity.ERROR,
    citation="RFC 5321 §4.2 (SMTP replies), RFC 3501 §7.1 (IMAP greeting), RFC 1939 §3 (POP3 responses), "
    "RFC 4511 §5.1 (LDAP messages), RFC 959 §4.2 (FTP replies), RFC 6120 §4 (XMPP streams), RFC 5804 §1.7 "
    "(ManageSieve greeting), RFC 3977 §3.2 (NNTP responses), RFC 2812 §2.3 (IRC messages)",
    scope="target",
)
def starttls_wrong_protocol(ctx: TargetContext) -> Iterator[Hit]:
    """What came back is not the protocol's greeting or reply: an HTTP or SSH server, a TLS record (the port
    speaks TLS from the first byte), an over-long line, or a close before any greeting."""
    for chain in _failures(ctx, "starttls-protocol"):
        yield Hit(
            f"{chain.source}: {chain.error}.",
            _wrong_protocol_fix(chain),
            sources=(chain.source,),
            evidence=_evidence(chain),
        )


@check(
    "starttls-timeout",
    title="The server did not finish the plaintext phase before TLS in time",
    severity=Severity.ERROR,
    citation=_CITATIONS,
    scope="target",
)
def starttls_timeout(ctx: TargetContext) -> Iterator[Hit]:
    """The greeting or a reply of the plaintext phase did not arrive (completely) within the timeout: a server
    that sends nothing, or drips its banner byte by byte. The evidence holds what had arrived."""
    for chain in _failures(ctx, "starttls-timeout"):
        upgrade = PROTOCOLS.get(chain.starttls.protocol) if chain.starttls is not None else None
        implicit = (
            f"{upgrade.implicit_scheme}:// or --starttls none"
            if upgrade is not None and upgrade.implicit_scheme
            else "--starttls none"
        )
        yield Hit(
            f"{chain.source}: {chain.error}.",
            "Check that the server is not overloaded or tar-pitting this client (greeting delays, postscreen), and "
            f"that this port speaks the protocol in plaintext first (not TLS from the first byte: then use "
            f"{implicit}). A longer --timeout shows whether it is only slow.",
            sources=(chain.source,),
            evidence=_evidence(chain),
        )
