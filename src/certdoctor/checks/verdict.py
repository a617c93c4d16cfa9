"""The safety net: never call a chain valid that the reference verifier rejects."""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Severity
from .registry import ChainContext, Hit, check

# Findings that explain the reference verifier's rejection although they are not errors: cryptography's
# web-PKI policy is stricter than the real clients there (it refuses negative serial numbers, which OpenSSL,
# Java, Go before 1.23 and Chrome accept).
EXPLAINS_VERIFIER = frozenset({"negative-serial", "serial-number-invalid"})


@check(
    "verification-failed",
    title="The chain fails verification for a reason no other check explains",
    severity=Severity.ERROR,
    citation="RFC 5280 §6.1; CA/B Forum BR (as implemented by cryptography's x509.verification)",
    phase="final",  # it reads ctx.findings: every other chain check must have run
)
def verification_failed(ctx: ChainContext) -> Iterator[Hit]:
    """The web-PKI verifier rejects the chain for every store while no error finding explains it."""
    if ctx.analysis.trusted or any(f.severity is Severity.ERROR or f.id in EXPLAINS_VERIFIER for f in ctx.findings):
        return
    errors = {v.store: v.error for v in ctx.analysis.verdicts}
    yield Hit(
        "The reference path validator (cryptography's web-PKI verifier) rejects this chain for every trust "
        "store consulted, but none of certdoctor's checks identified the cause. Validator said: "
        + "; ".join(f"{k}: {v}" for k, v in errors.items()),
        "Inspect the certificates' extensions (name constraints, policy constraints, critical extensions "
        "clients do not understand, key usage) — and please report this chain to certdoctor so a check can "
        "explain it.",
        evidence={"validator_errors": errors},
    )
