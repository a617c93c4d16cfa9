"""Real TLS clients, driven against the lab, for the client-prediction conformance suite.

Each client module exposes ``CLIENT: RealClient``. ``RealClient.unavailable()`` returns None when the
client can run on this machine, else a one-line reason (the test is then skipped with that reason);
``RealClient.run(probes)`` connects to every probe and returns one :class:`Outcome` per probe, in order.

A probe says: connect to ``address:port``, ask for (SNI) and verify ``hostname`` (which may be an IP
address), trust only the root certificate in ``ca_file``, and report whether the TLS handshake and
certificate verification succeeded, and if not the exact error text the client produced (the message a
user would see, e.g. the Node error code plus message, Chromium's ``net::ERR_…``, curl's stderr line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Probe:
    scenario: str  # lab scenario name (informational)
    hostname: str  # name to send as SNI and to verify; an IP address for IP scenarios
    address: str  # IPv4 loopback address to connect to (127.0.0.1 or 127.0.0.2)
    port: int
    ca_file: str  # PEM file with the only trusted root

    @property
    def url(self) -> str:
        return f"https://{self.hostname}:{self.port}/"


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    error: str = ""  # the client's own error text when not accepted (one or a few lines)


class RealClient(Protocol):
    id: str  # certdoctor client id: "curl", "python", "node", "java", "go", "chrome"

    def unavailable(self) -> str | None: ...

    def version(self) -> str: ...

    def run(self, probes: Sequence[Probe]) -> list[Outcome]: ...
