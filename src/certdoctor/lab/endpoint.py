"""Where a scenario is served, and the commands (``certdoctor check``, ``curl``) that reach it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..certinfo import is_ip
from .ctlog import LOG_LIST_NAME
from .scenarios import Scenario


def bracket(address: str) -> str:
    """``address`` as the host part of a URL or ``host:port`` (IPv6 addresses in brackets)."""
    return f"[{address}]" if ":" in address else address


@dataclass(frozen=True)
class Endpoint:
    """Where a scenario is served, and the files of the chain it serves.

    ``chain_path`` is the PEM a client gets when it connects as ``check_argv`` does (for no-sni: the
    no-SNI chain; the SNI one is ``no-sni@sni.pem``; for multi-address: the 127.0.0.1 one, the other is
    ``multi-address@127.0.0.2.pem``). It does not exist for the non-TLS scenarios (stall, garbage).
    """

    scenario: Scenario
    port: int
    addresses: tuple[str, ...]
    chain_path: Path
    key_path: Path

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def hostname(self) -> str:
        return self.scenario.hostname

    @property
    def connect_host(self) -> str:
        """The host part of the target: the scenario's hostname, or the address for IP scenarios."""
        return self.addresses[0] if is_ip(self.hostname) else self.hostname

    @property
    def target(self) -> str:
        return f"{bracket(self.connect_host)}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.target}/"

    @property
    def scan_line(self) -> str:
        """This scenario as a line of ``scan``/``watch import`` input: ``host:port,addr=A[,addr=B]`` (the
        target alone for IP scenarios). The no-SNI scenario's line sends SNI (a scan line cannot omit it)."""
        if is_ip(self.hostname):
            return self.target
        return self.target + "".join(f",addr={a}" for a in self.addresses)

    def resolve_arg(self, addresses: tuple[str, ...] | None = None) -> str:
        """curl-style ``host:port:addr[,addr...]``."""
        addrs = ",".join(bracket(a) for a in (addresses or self.addresses))
        return f"{self.hostname}:{self.port}:{addrs}"

    def check_argv(self, root_path: Path | str) -> list[str]:
        """``certdoctor`` arguments that check this scenario (multi-address: all addresses)."""
        argv = ["check", self.target]
        if not is_ip(self.hostname):
            argv += ["--resolve", self.resolve_arg()]
        log_list = Path(root_path).with_name(LOG_LIST_NAME)
        extra = [a.format(root=root_path, log_list=log_list) for a in self.scenario.check_args]
        return [*argv, "--ca-file", str(root_path), *extra]

    def curl_argv(self, root_path: Path | str) -> list[str]:
        """``curl`` arguments that fetch this scenario (multi-address: the first address only)."""
        argv = ["curl", "-sS", "--cacert", str(root_path)]
        if not is_ip(self.hostname):
            argv += ["--resolve", self.resolve_arg(self.addresses[:1])]
        return [*argv, self.url]
