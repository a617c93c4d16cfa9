"""What a diagnosis concluded: every distinct chain with its path analysis and revocation status, the
addresses that could not be checked, and every finding. Built by :mod:`certdoctor.pipeline`; read by the
client predictions, the renderers and the commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import certinfo
from .ct import report_for
from .model import JSON_VERSION, Evidence, ExitCode, Finding, PresentedChain, Severity, Target, Verdict
from .paths import ChainAnalysis
from .revocation import CertRevocation


@dataclass(frozen=True)
class ChainReport:
    """One distinct chain and every source that presented it.

    ``sources``: the addresses (``"127.0.0.1:443"``) or files that presented exactly these certificates, in
    collection order. ``chain``: the certificates as presented (position 0 = what was sent first, normally the
    leaf; duplicates kept). ``analysis``: the paths built from them and the verdict per trust store.
    """

    sources: tuple[str, ...]
    chain: PresentedChain
    analysis: ChainAnalysis
    revocation: tuple[CertRevocation, ...] = ()  # one per certificate of the best path (trust anchor excluded)
    chain_findings: tuple[Finding, ...] = ()  # what the chain checks found on this chain


@dataclass(frozen=True, repr=False)
class Diagnosis:
    """What certdoctor concluded about one target (see :func:`certdoctor.diagnose`).

    ``reports``: one :class:`ChainReport` per distinct chain presented (several when the addresses behind a
    name differ). ``failures``: the addresses or files that gave no chain (connection, handshake or parse
    errors). ``findings``: every finding, errors first then warnings then info, each naming its sources and,
    where it is about one certificate, its position in the presented chain (0 = leaf). ``evidence``: everything
    collected, at ``evidence.at`` (UTC). ``clients``: the per-client predictions, computed on first use.
    """

    target: Target
    evidence: Evidence
    reports: tuple[ChainReport, ...]
    failures: tuple[PresentedChain, ...]
    findings: tuple[Finding, ...]
    elapsed: float = 0.0  # seconds, collection and judgement
    notes: tuple[str, ...] = field(default_factory=tuple)
    # computes the per-client predictions (certdoctor.clients.predict); attached by the pipeline so that this
    # module needs nothing above it
    predictor: Callable[[Diagnosis], Iterable[Any]] | None = field(default=None, compare=False)
    # the client family ids the verdict is about (empty: the findings' severities were not set by clients)
    verdict_clients: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the generated one is 100 KB (asyncio.run even calls it, twice)
        return f"<Diagnosis {self.target.label()} {self.exit_code} findings={self.ids()}>"

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity error (any one makes the target invalid)."""
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def reachable(self) -> bool:
        """At least one address (or file) gave a chain to judge."""
        return bool(self.reports)

    @property
    def valid(self) -> bool:
        return self.reachable and not self.errors

    @property
    def verdict(self) -> Verdict:
        """valid (reachable, no error), invalid (an error finding) or unreachable (no certificate obtained)."""
        if not self.reachable:
            return Verdict.UNREACHABLE
        return Verdict.INVALID if self.errors else Verdict.VALID

    @property
    def exit_code(self) -> int:
        """The command line's exit status for this diagnosis: 0 no error (warnings allowed), 1 problems found,
        3 no certificate could be obtained from a server, 2 none could be read from the files (see
        :func:`exit_code_for` for ``--fail-on warning``)."""
        return self.exit_code_for(Severity.ERROR)

    def exit_code_for(self, fail_on: Severity = Severity.ERROR) -> int:
        """The exit status when findings of ``fail_on`` severity or worse count as problems."""
        if not self.reachable:  # nothing to judge: files that cannot be read are unusable input
            return int(ExitCode.USAGE if self.target.is_files else ExitCode.UNCHECKED)
        worst = min((f.severity.rank for f in self.findings), default=None)
        return int(ExitCode.PROBLEMS if worst is not None and worst <= fail_on.rank else ExitCode.OK)

    @property
    def rejected_by(self) -> tuple[str, ...]:
        """The client family ids (of ``verdict_clients``) that refuse a chain of this target, from the error
        findings' ``rejected_by``, in the finding × client table's order of first mention."""
        return tuple(dict.fromkeys(c for f in self.errors for c in f.rejected_by))

    def ids(self) -> list[str]:
        return [f.id for f in self.findings]

    @cached_property
    def clients(self) -> tuple[Any, ...]:
        """Per-client predictions (:class:`certdoctor.clients.ClientVerdict`, one per client family), computed
        on first use by the predictor the pipeline attached; empty when none was."""
        return tuple(self.predictor(self)) if self.predictor is not None else ()

    def to_dict(self, fail_on: Severity = Severity.ERROR) -> dict[str, Any]:
        """The ``check --json`` document (see schemas/check.schema.json); ``exit_code`` as for ``fail_on``."""
        ev = self.evidence
        return {
            "certdoctor": JSON_VERSION,
            "kind": "check",
            "target": {
                "host": self.target.host,
                "name": self.target.name,
                "port": None if self.target.is_files else self.target.port,
                "sni": self.target.sni,
                "files": list(self.target.files),
                "starttls": self.target.starttls,
            },
            "checked_at": ev.at.isoformat(),
            "verdict": self.verdict.value,
            "rejected_by": list(self.rejected_by),
            "verdict_clients": list(self.verdict_clients),
            "exit_code": self.exit_code_for(fail_on),
            "stores": [{"name": s.name, "description": s.description, "roots": len(s.roots)} for s in ev.stores]
            + (
                [{"name": "custom", "description": "--ca-file", "roots": len(ev.extra_roots)}] if ev.extra_roots else []
            ),
            "endpoints": [
                {
                    "source": c.source,
                    "address": c.address,
                    "ok": c.ok,
                    "tls_version": c.tls_version,
                    "cipher": c.cipher,
                    "certificates_received": c.total_received,
                    "error": c.error,
                    "error_kind": c.error_kind,
                    "elapsed_ms": round(c.elapsed * 1000, 1),
                    "starttls": None if c.starttls is None else c.starttls.to_dict(),
                    "client_auth": None if c.client_auth is None else c.client_auth.to_dict(),
                    "proxy": c.proxy,
                    "key_type": c.key_type,
                    "key_type_only": c.key_type_only,
                }
                for c in ev.chains
            ],
            "chains": [_report_dict(r, ev) for r in self.reports],
            "aia": [
                {
                    "url": a.url,
                    "status": a.status,
                    "certificates": [certinfo.fingerprint(c) for c in a.certs],
                    "error": a.error,
                }
                for a in ev.aia.values()
            ],
            "findings": [f.to_dict() for f in self.findings],
            "clients": [v.to_dict() for v in self.clients] if ev.client_stores else [],
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "info": len(self.findings) - len(self.errors) - len(self.warnings),
            },
            "notes": list(self.notes),
            "elapsed_ms": round(self.elapsed * 1000, 1),
            "deployed": _deployed(ev),
            "caa": None if ev.caa is None else ev.caa.to_dict(),
        }


def _deployed(ev: Any) -> list[dict[str, Any]]:
    """The ``deployed`` files of --deployed, as read for this diagnosis ([] without)."""
    if not ev.deployed:
        return []
    from .collect.deployed import deployed_to_dict

    return [deployed_to_dict(f) for f in ev.deployed]


def _report_dict(r: ChainReport, ev: Evidence) -> dict[str, Any]:
    a = r.analysis
    best = a.best
    at = ev.at
    ct = report_for(ev, r.chain, a)
    return {
        "sources": list(r.sources),
        "presented": [dict(certinfo.summary(c, at), position=i) for i, c in enumerate(r.chain.certs)],
        "certificates_received": r.chain.total_received,
        "path": {
            "end": best.end,
            "anchored_in": list(best.anchored_in),
            "certificates": [
                {
                    "sha256": certinfo.fingerprint(n.cert),
                    "subject": certinfo.subject(n.cert),
                    "origin": n.origin,
                    "position": n.position,
                    "detail": n.detail,
                }
                for n in best.nodes
            ],
        },
        "revocation": [c.to_dict() for c in r.revocation],
        "trust": [
            {
                "store": v.store,
                "description": v.description,
                "valid": v.ok,
                "error": v.error,
                "valid_with_aia": v.ok_with_aia,
            }
            for v in a.verdicts
        ],
        "ct": None if ct is None else ct.to_dict(),
    }
