"""Registered checks, one module per family. Importing this package registers them all."""

from __future__ import annotations

from .registry import REGISTRY, ChainContext, CheckInfo, Hit, TargetContext, check, run_chain_checks, run_checks

_FAMILIES = (
    "validity",
    "names",
    "chain",
    "constraints",
    "crypto",
    "usage",
    "revocation",
    "verdict",
    "endpoints",
    "pem",
)


def load_all() -> None:
    """Import every check family (idempotent)."""
    import importlib

    for family in _FAMILIES:
        importlib.import_module(f"{__name__}.{family}")


__all__ = [
    "REGISTRY",
    "ChainContext",
    "CheckInfo",
    "Hit",
    "TargetContext",
    "check",
    "load_all",
    "run_chain_checks",
    "run_checks",
]
