"""Registered checks, one module per family; `load_all()` (or the first run of the checks) registers them all."""

from __future__ import annotations

from .registry import (
    REGISTRY,
    ChainContext,
    CheckInfo,
    Hit,
    TargetContext,
    check,
    load_all,
    run_chain_checks,
    run_checks,
)

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
