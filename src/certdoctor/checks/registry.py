"""The check registry: one small registered unit per finding id, with its metadata.

A check is a function decorated with :func:`check`. Chain checks receive a :class:`ChainContext` (one
distinct presented chain and its path analysis); target checks receive a :class:`TargetContext` (all
addresses of a target). Both yield :class:`Hit` objects; the runner turns them into findings carrying the
registered id, title, severity and citation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509

from .. import certinfo
from ..model import Evidence, Finding, PresentedChain, Severity
from ..paths import ChainAnalysis
from ..revocation import CertRevocation

Scope = Literal["chain", "target"]
# When a check runs within its scope: "main" checks run in registration order, then the "final" ones (checks
# that read the findings of every other check of their scope, such as the verification-failed safety net).
Phase = Literal["main", "final"]
PHASES: tuple[Phase, ...] = ("main", "final")

# The check families (modules of this package), imported by load_all(). Their order is the registration
# order, which is the order in which findings of one phase are produced and `certdoctor rules` lists them.
_FAMILIES = (
    "validity",
    "names",
    "chain",
    "constraints",
    "crypto",
    "usage",
    "profile",
    "revocation",
    "verdict",
    "endpoints",
    "starttls",
    "clientauth",
    "proxy",
    "keytypes",
    "pem",
    "deployed",
    "ct",
    "policy",
    "caa",
)


def load_all() -> None:
    """Import every check family (idempotent)."""
    for family in _FAMILIES:
        importlib.import_module(f"{__package__}.{family}")


@dataclass(frozen=True)
class Hit:
    """One occurrence of a problem, as a check reports it."""

    detail: str
    fix: str
    cert: x509.Certificate | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # overrides the registered default
    sources: tuple[str, ...] | None = None  # overrides the chain's sources


@dataclass
class ChainContext:
    evidence: Evidence
    chain: PresentedChain  # representative chain (identical for every source)
    sources: tuple[str, ...]  # addresses or files that presented it
    analysis: ChainAnalysis
    revocation: list[CertRevocation] = field(default_factory=list)  # per certificate of the best path
    findings: list[Finding] = field(default_factory=list)  # findings so far for this chain

    @property
    def at(self):
        return self.evidence.at

    @property
    def name(self) -> str | None:
        return self.evidence.target.name

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain.certs[0]


@dataclass
class TargetContext:
    evidence: Evidence
    chains: list[ChainContext]
    failures: list[PresentedChain]
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class CheckInfo:
    id: str
    title: str
    severity: Severity
    citation: str
    scope: Scope
    func: Callable[[Any], Iterable[Hit]]
    order: int  # registration order
    phase: Phase = "main"

    @property
    def description(self) -> str:
        return (self.func.__doc__ or "").strip()

    @property
    def run_key(self) -> tuple[int, int]:
        """Where the runners put this check: by phase, then by registration order."""
        return (PHASES.index(self.phase), self.order)


REGISTRY: dict[str, CheckInfo] = {}


def check(
    id: str,
    *,
    title: str,
    severity: Severity,
    citation: str,
    scope: Scope = "chain",
    phase: Phase = "main",
) -> Callable[[Callable[[Any], Iterable[Hit]]], Callable[[Any], Iterable[Hit]]]:
    """Register a check. ``phase="final"``: run after every "main" check of the same scope, whatever the
    order in which the families were imported (for checks that read ``ctx.findings``)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r} for check {id} (one of {', '.join(PHASES)})")

    def register(func: Callable[[Any], Iterable[Hit]]) -> Callable[[Any], Iterable[Hit]]:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        REGISTRY[id] = CheckInfo(id, title, severity, citation, scope, func, len(REGISTRY), phase)
        return func

    return register


def make_finding(info: CheckInfo, hit: Hit, sources: tuple[str, ...], chain: PresentedChain | None) -> Finding:
    position = None
    fp = subject = None
    if hit.cert is not None:
        fp = certinfo.fingerprint(hit.cert)
        subject = certinfo.subject(hit.cert)
        if chain is not None:
            for i, c in enumerate(chain.certs):
                if certinfo.fingerprint(c) == fp:
                    position = i
                    break
    return Finding(
        id=info.id,
        severity=hit.severity or info.severity,
        title=info.title,
        detail=hit.detail,
        fix=hit.fix,
        citation=info.citation,
        sources=hit.sources if hit.sources is not None else sources,
        cert_position=position,
        cert_fingerprint=fp,
        cert_subject=subject,
        evidence=dict(hit.evidence),
    )


def _run(info: CheckInfo, ctx: Any) -> list[Hit]:
    """Run one check; a check that raises on malformed input becomes a finding instead of a crash."""
    try:
        return list(info.func(ctx))
    except Exception as exc:
        return [
            Hit(
                f"certdoctor could not evaluate the {info.id!r} check on this chain "
                f"({type(exc).__name__}: {exc}); a certificate is probably malformed.",
                "Please report this chain to certdoctor.",
                severity=Severity.WARNING,
                evidence={"check": info.id, "exception": f"{type(exc).__name__}: {exc}"},
            )
        ]


_SORTED: list[CheckInfo] = []
# The chain and target checks of _SORTED, in its order: (the _SORTED list they were taken from, chain, target).
_SCOPED: list[tuple[list[CheckInfo], tuple[CheckInfo, ...], tuple[CheckInfo, ...]]] = []


def _sorted_checks() -> list[CheckInfo]:
    """Every registered check in running order: by phase, then registration order (loaded on first use)."""
    if len(_SORTED) != len(REGISTRY) or not _SORTED:
        load_all()
        _SORTED[:] = sorted(REGISTRY.values(), key=lambda c: c.run_key)
    return _SORTED


def _scoped_checks() -> tuple[tuple[CheckInfo, ...], tuple[CheckInfo, ...]]:
    """(chain checks, target checks), each in running order: :func:`_sorted_checks` split once, not filtered
    again for every chain (redone whenever that list changes, as when a test registers a check)."""
    ordered = _sorted_checks()
    if not _SCOPED or _SCOPED[0][0] is not ordered or sum(map(len, _SCOPED[0][1:])) != len(ordered):
        chain = tuple(c for c in ordered if c.scope == "chain")
        target = tuple(c for c in ordered if c.scope == "target")
        _SCOPED[:] = [(ordered, chain, target)]
    return _SCOPED[0][1], _SCOPED[0][2]


def run_chain_checks(ctx: ChainContext) -> list[Finding]:
    """Every chain check on one distinct chain (the results also go to ``ctx.findings``)."""
    findings = ctx.findings
    sources, chain = ctx.sources, ctx.chain
    for info in _scoped_checks()[0]:
        for hit in _run(info, ctx):
            findings.append(make_finding(info, hit, sources, chain))
    return findings


def run_checks(target_ctx: TargetContext, *, chains_done: bool = False) -> list[Finding]:
    """Run every chain check on every distinct chain, then every target check.

    ``chains_done``: the chain contexts already hold their findings (e.g. from a cache); only the target
    checks run.
    """
    findings: list[Finding] = []
    for ctx in target_ctx.chains:
        findings.extend(ctx.findings if chains_done else run_chain_checks(ctx))
    target_ctx.findings = list(findings)
    for info in _scoped_checks()[1]:
        for hit in _run(info, target_ctx):
            # locate the certificate's position in the chain presented by the hit's sources
            chain = next((c.chain for c in target_ctx.chains if set(hit.sources or ()) & set(c.sources)), None)
            findings.append(make_finding(info, hit, hit.sources or (), chain))
    findings.sort(key=lambda f: f.severity.rank)
    return findings
