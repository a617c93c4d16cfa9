"""Protocol upgrades before the TLS handshake (STARTTLS and its kin): one small module per protocol.

Each protocol module has ``NAME`` and ``async negotiate(channel, nudge_after)``, which talks plaintext through a
:class:`~.channel.Channel` until the server agrees to start TLS (then returns) or does not (then raises
:class:`~.channel.UpgradeFailed`). The handshake (:func:`certdoctor.collect.handshake.fetch_chain`) runs it on the
connection it then hands to TLS, within the same timeout and under the channel's byte caps.

:data:`PROTOCOLS` is the registry: the protocol name (as in ``--starttls`` and URL schemes) → its default port,
the other ports it is served on with STARTTLS, and its implicit-TLS scheme and port (a port that speaks TLS from
the first byte, e.g. SMTP submission on 465, RFC 8314 §3.3). Nothing here imports OpenSSL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import ftp, imap, irc, ldap, mysql, nntp, pop3, postgres, sieve, smtp, xmpp
from .channel import MAX_BYTES, MAX_LINE, Channel, UpgradeFailed, printable

__all__ = [
    "IMPLICIT_PORTS",
    "MAX_BYTES",
    "MAX_LINE",
    "PROTOCOLS",
    "STARTTLS_PORTS",
    "Channel",
    "Upgrade",
    "UpgradeFailed",
    "for_port",
    "printable",
]


@dataclass(frozen=True)
class Upgrade:
    """One protocol's upgrade to TLS.

    ``ports``: the ports it is served on with an upgrade, the first the default (SMTP: 25 for relay, 587 for
    submission, RFC 6409 §3.1). ``implicit_scheme``/``implicit_port``: the same service over TLS from the first
    byte (RFC 8314 §3.3 for submissions on 465, §3.2 for IMAP on 993 and POP3 on 995). ``negotiate``: the
    plaintext exchange (see the module docstring). ``command``: what the client sends to upgrade. ``rfc``: the
    specification of the exchange.
    """

    name: str
    title: str
    ports: tuple[int, ...]
    implicit_scheme: str | None
    implicit_port: int | None
    negotiate: Callable[[Channel, float], Awaitable[None]]
    command: str
    rfc: str
    # The ALPN protocols the ClientHello offers (PostgreSQL 17's direct TLS requires "postgresql").
    alpn: tuple[bytes, ...] = ()
    # The client speaks first (PostgreSQL's SSLRequest, or TLS at once): no greeting to wait for.
    client_first: bool = False

    @property
    def port(self) -> int:
        return self.ports[0]


PROTOCOLS: dict[str, Upgrade] = {
    "smtp": Upgrade("smtp", "SMTP", (25, 587), "smtps", 465, smtp.negotiate, "STARTTLS", "RFC 3207"),
    "imap": Upgrade("imap", "IMAP", (143,), "imaps", 993, imap.negotiate, "STARTTLS", "RFC 3501 §6.2.1"),
    "pop3": Upgrade("pop3", "POP3", (110,), "pop3s", 995, pop3.negotiate, "STLS", "RFC 2595 §4"),
    # Databases: no implicit-TLS port of their own. PostgreSQL 17's direct TLS is on the same port (5432) and is
    # only asked for by name (--starttls postgres-direct, or sslnegotiation=direct in a postgres:// URL).
    "postgres": Upgrade(
        "postgres", "PostgreSQL", (5432,), None, None, postgres.negotiate, "SSLRequest",
        "PostgreSQL protocol §53.2.10", alpn=postgres.ALPN, client_first=True,
    ),
    "postgres-direct": Upgrade(
        "postgres-direct", "PostgreSQL", (), None, None, postgres.direct, "direct TLS",
        "PostgreSQL protocol §53.2.10 (direct SSL, PostgreSQL 17)", alpn=postgres.ALPN, client_first=True,
    ),
    "mysql": Upgrade(
        "mysql", "MySQL", (3306,), None, None, mysql.negotiate, "SSLRequest", "MySQL protocol: Protocol::SSLRequest"
    ),
    # RFC 4511 §4.14; ldaps:// on 636 is not in RFC 4511 but what every directory serves (RFC 8314 has no LDAP).
    "ldap": Upgrade(
        "ldap", "LDAP", (389,), "ldaps", 636, ldap.negotiate, "StartTLS", "RFC 4511 §4.14", client_first=True
    ),
    # RFC 4217 §4; ftps:// on 990 (implicit TLS) is the older convention RFC 4217 §1 mentions, still served.
    "ftp": Upgrade("ftp", "FTP", (21,), "ftps", 990, ftp.negotiate, "AUTH TLS", "RFC 4217 §4"),
    # RFC 6120 §5 (client 5222, server-to-server 5269, §14.7 and §14.8); direct TLS on 5223 and 5270 (XEP-0368).
    "xmpp": Upgrade(
        "xmpp", "XMPP", (5222,), "xmpps", 5223, xmpp.negotiate, "STARTTLS", "RFC 6120 §5", client_first=True
    ),
    "xmpp-server": Upgrade(
        "xmpp-server", "XMPP server-to-server", (5269,), "xmpps-server", 5270, xmpp.negotiate_server, "STARTTLS",
        "RFC 6120 §5", client_first=True,
    ),
    # RFC 5804 §2.2 (ManageSieve, 4190 by §1.8); no implicit-TLS port is defined.
    "sieve": Upgrade("sieve", "ManageSieve", (4190,), None, None, sieve.negotiate, "STARTTLS", "RFC 5804 §2.2"),
    # RFC 4642 §2 (119, RFC 3977 §3.1); nntps:// on 563 (RFC 8143 §1).
    "nntp": Upgrade("nntp", "NNTP", (119,), "nntps", 563, nntp.negotiate, "STARTTLS", "RFC 4642 §2"),
    # The IRCv3 "tls" extension on the plaintext port (6667); ircs:// on 6697 (RFC 7194 §2).
    "irc": Upgrade("irc", "IRC", (6667,), "ircs", 6697, irc.negotiate, "STARTTLS", "IRCv3 tls", client_first=True),
}  # fmt: skip

# A well-known port given without a scheme or --starttls: the protocol to upgrade with...
STARTTLS_PORTS: dict[int, str] = {port: p.name for p in PROTOCOLS.values() for port in p.ports}
# ...and the ports that speak TLS from the first byte (nothing to upgrade), by their scheme.
IMPLICIT_PORTS: dict[int, str] = {
    p.implicit_port: p.implicit_scheme for p in PROTOCOLS.values() if p.implicit_port and p.implicit_scheme
}


def for_port(port: int) -> str | None:
    """The protocol a well-known STARTTLS port implies (25 and 587: smtp, 143: imap, 110: pop3, 5432: postgres,
    3306: mysql, 389: ldap, 21: ftp, 5222: xmpp...), else None."""
    return STARTTLS_PORTS.get(port)
