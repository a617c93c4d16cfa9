"""What each scenario serves: its certificates issued by the lab PKI, written as ``chains/<name>.pem|.key``,
and the TLS contexts (``ssl``, or pyOpenSSL for the stapling scenarios) that serve them."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from OpenSSL import SSL

from . import ctlog, pki
from .memtls import openssl_context
from .scenarios import LeafSpec, Scenario

STAPLE_REFRESH = 300.0  # seconds a stapling server keeps serving the same OCSP response


@dataclass
class Built:
    """The files and TLS contexts of one scenario."""

    chain_path: Path
    key_path: Path
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)  # address -> context
    openssl_context: SSL.Context | None = None  # stapling scenarios: served with pyOpenSSL on every address


def _leaf_args(scenario: Scenario, spec: LeafSpec, expand_url: Callable[[str], str]) -> dict[str, object]:
    dns = spec.dns_names if spec.dns_names is not None else (scenario.hostname,)
    return {
        "key_name": spec.key_name or f"leaf-{scenario.name}",
        "key_kind": spec.key,
        "issuer": spec.issuer,
        "dns_names": dns if spec.san else None,
        "common_name": spec.common_name if spec.common_name is not None else dns[0],
        "subject_extra": spec.subject_extra,
        "starts": spec.starts,
        "days": spec.days,
        "ekus": spec.ekus,
        "aia": spec.aia,
        "hash_name": spec.hash,
        "ocsp_url": expand_url(spec.ocsp_url) if spec.ocsp_url else None,
        "crl_url": expand_url(spec.crl_url) if spec.crl_url else None,
        "must_staple": spec.must_staple,
        "revoked": spec.revoked,
        "claims_ca": spec.claims_ca,
        "serial": spec.serial,
        "authority_key_id": spec.authority_key_id,
        "unknown_critical": spec.unknown_critical,
    }


def server_context(chain_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Security level 0, set before loading the chain, so SHA-1 and RSA-1024 certificates can be served.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(chain_path, key_path)
    return ctx


class ChainBuilder:
    """Issues each scenario's certificates, writes ``chains/<name>.pem|.key`` and makes SSL contexts."""

    def __init__(self, lab_pki: pki.LabPKI, chains_dir: Path) -> None:
        self.pki = lab_pki
        self.chains_dir = chains_dir

    def _write(self, stem: str, scenario: Scenario, spec: LeafSpec) -> tuple[Path, Path, x509.Certificate]:
        leaf, key = self.pki.issue_leaf(**_leaf_args(scenario, spec, self.pki.expand_url))  # type: ignore[arg-type]
        if spec.scts and spec.issuer is not None:
            leaf = ctlog.embed_scts(self.pki, leaf, self.pki.issuers[spec.issuer], spec.scts, spec.hash)
        serve = scenario._spec
        chain = [leaf, *(self.pki.issuers[slug].cert for slug in serve.chain)]
        if serve.filler:
            chain += pki.filler_certificates(serve.filler, label=scenario.name, now=self.pki.now)
        chain_path = self.chains_dir / f"{stem}.pem"
        key_path = self.chains_dir / f"{stem}.key"
        pki.write_atomic(chain_path, pki.certs_pem(chain))
        pki.write_atomic(key_path, pki.key_pem(key), private=True)
        return chain_path, key_path, leaf

    def _stapler(self, leaf: x509.Certificate, issuer: str, staple: Literal["good", "stale"]) -> Callable[[], bytes]:
        """What the server staples for ``leaf``: a response of ``issuer``'s responder, refreshed every
        STAPLE_REFRESH like a real server's stapling cache (so clients see the same bytes meanwhile)."""
        cached: list[tuple[float, bytes]] = []

        def build() -> bytes:
            if cached and time.monotonic() - cached[0][0] < STAPLE_REFRESH:
                return cached[0][1]
            now = pki.utcnow()
            if staple == "stale":
                der = self.pki.ocsp_response(
                    leaf, issuer, this_update=now - dt.timedelta(days=10), next_update=now - dt.timedelta(days=3)
                )
            else:
                der = self.pki.ocsp_response(leaf, issuer)
            cached[:] = [(time.monotonic(), der)]
            return der

        return build

    def build(self, scenario: Scenario, addresses: tuple[str, ...]) -> Built:
        serve = scenario._spec
        name = scenario.name
        if serve.kind != "tls":
            return Built(self.chains_dir / f"{name}.pem", self.chains_dir / f"{name}.key")
        if serve.staple is not None:
            issuer = serve.leaf.issuer
            if serve.no_sni is not None or serve.second_address is not None or issuer not in self.pki.responders:
                raise ValueError(f"{name}: a stapling scenario has one leaf, issued by a CA with an OCSP responder")
            chain_path, key_path, leaf = self._write(name, scenario, serve.leaf)
            stapler = self._stapler(leaf, issuer, serve.staple)
            return Built(chain_path, key_path, openssl_context=openssl_context(chain_path, key_path, stapler))
        if serve.alerts:
            if serve.no_sni is not None or serve.second_address is not None:
                raise ValueError(f"{name}: a scenario served with alerts has one leaf")
            chain_path, key_path, _ = self._write(name, scenario, serve.leaf)
            return Built(chain_path, key_path, openssl_context=openssl_context(chain_path, key_path, lambda: b""))
        if serve.no_sni is not None:
            chain_path, key_path, _ = self._write(name, scenario, serve.no_sni)
            sni_chain, sni_key, _ = self._write(f"{name}@sni", scenario, serve.leaf)
            default_ctx = server_context(chain_path, key_path)
            sni_ctx = server_context(sni_chain, sni_key)

            def switch(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
                if server_name is not None:
                    sslobj.context = sni_ctx

            default_ctx.sni_callback = switch  # type: ignore[assignment]
            return Built(chain_path, key_path, {a: default_ctx for a in addresses})
        chain_path, key_path, _ = self._write(name, scenario, serve.leaf)
        built = Built(chain_path, key_path, {addresses[0]: server_context(chain_path, key_path)})
        if serve.second_address is not None and len(addresses) > 1:
            other_chain, other_key, _ = self._write(f"{name}@{addresses[1]}", scenario, serve.second_address)
            built.contexts[addresses[1]] = server_context(other_chain, other_key)
        return built
