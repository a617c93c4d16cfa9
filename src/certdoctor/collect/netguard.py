"""Refuse fetches to loopback, link-local, private, CGNAT and other non-public addresses (``--refuse-private-urls``).

The URLs of AIA, OCSP and CRL fetches come from certificates a server sent: a certdoctor running next to
private services (a monitor, a web form) would otherwise fetch whatever internal URL a hostile certificate
names. The check is made on the address actually connected to, after resolution, not on the URL's host: a
name that resolves to a public address for the URL check and to 127.0.0.1 for the connection (DNS
rebinding) is still refused, because the connection goes to the very address that was vetted (the Host
header and TLS SNI keep the URL's name). Redirect targets go through the same connect and are vetted too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["AddressRefused", "classify", "guarded_transport", "vet_host"]

_RANGES = tuple(
    (ipaddress.ip_network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", "an unspecified address"),  # "this network" (RFC 1122); 0.0.0.0 reaches the host itself
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "an RFC 1918 private address"),
        ("172.16.0.0/12", "an RFC 1918 private address"),
        ("192.168.0.0/16", "an RFC 1918 private address"),
        ("100.64.0.0/10", "an RFC 6598 shared (CGNAT) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),  # with 255.255.255.255, the broadcast address
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fe80::/10", "a link-local address"),
        ("fc00::/7", "an RFC 4193 unique local address"),
        ("ff00::/8", "a multicast address"),
    )
)


def classify(address: str) -> str | None:
    """What makes ``address`` (an IP address, IPv6 possibly with a ``%scope``) non-public, as "a loopback
    address", "an RFC 1918 private address", ...; None for a public address. IPv4-mapped IPv6 addresses
    (``::ffff:127.0.0.1``) are judged by their IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for net, kind in _RANGES:
        if ip.version == net.version and ip in net:
            return kind
    return None


class AddressRefused(Exception):
    """A connection refused because every address of the host is non-public (the message says which and why)."""


def _vet(host: str, addresses: Iterable[str]) -> tuple[list[str], str | None]:
    """The public addresses, in order, and the reason the first refused one was refused."""
    allowed: list[str] = []
    reason: str | None = None
    literal = _is_ip(host)
    for address in addresses:
        kind = classify(address)
        if kind is None:
            allowed.append(address)
        elif reason is None:
            reason = f"{address} is {kind}" if literal else f"{host} resolves to {address}, {kind}"
    return allowed, reason


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


async def vet_host(host: str, port: int, timeout: float = 5.0) -> None:
    """Resolve ``host`` and raise :class:`AddressRefused` unless it has an address and every one is public (for a
    download through a proxy, which connects on certdoctor's behalf: see :class:`certdoctor.collect.http.BoundedHttp`).
    A name that does not resolve here is refused too: the proxy would reach something certdoctor cannot vet."""
    name = host.strip("[]")
    if _is_ip(name):
        addresses = [name]
    else:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise AddressRefused(f"{name} cannot be resolved here to be vetted ({exc})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    allowed, reason = _vet(name, addresses)
    if reason is not None or not allowed:
        raise AddressRefused(reason or f"{name} has no address")


def _backend() -> Any:
    """An httpcore network backend that resolves, vets and connects to a vetted address only."""
    import httpcore

    class GuardedBackend(httpcore.AsyncNetworkBackend):
        def __init__(self) -> None:
            self._inner = httpcore.AnyIOBackend()

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.AsyncNetworkStream:
            name = host.strip("[]")
            try:
                infos = await asyncio.wait_for(
                    asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM), timeout
                )
            except socket.gaierror as exc:
                raise httpcore.ConnectError(f"cannot resolve {name}: {exc.strerror or exc}") from exc
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"resolving {name} timed out") from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            allowed, reason = _vet(name, addresses)
            if not allowed:
                raise AddressRefused(reason or f"{name} has no address")
            error: Exception | None = None
            for address in allowed:  # each vetted address in turn: the connection goes to what was checked
                try:
                    return await self._inner.connect_tcp(
                        address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                    )
                except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                    error = exc
            assert error is not None
            raise error

        async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
            raise AddressRefused("a Unix socket is not a public address")

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    return GuardedBackend()


def guarded_transport() -> httpx.AsyncHTTPTransport:
    """An httpx transport (TLS unverified, as every evidence download) whose connections go only to public
    addresses; a refused connection raises :class:`AddressRefused` out of the request. Proxies from the
    environment are not used with it: a proxy would resolve and connect on certdoctor's behalf, unvetted."""
    import httpx

    transport = httpx.AsyncHTTPTransport(verify=False, trust_env=False)
    # httpx takes no network backend: its (still empty) pool gets the vetting one.
    transport._pool._network_backend = _backend()
    return transport
