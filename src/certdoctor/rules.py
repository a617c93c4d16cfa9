"""The rule book: every registered check with what a user needs to act on it — what it means, the evidence it
reports, which client families reject such a chain and with which message, and the lab scenarios that show it."""

from __future__ import annotations

from typing import Any


def rules() -> list[dict[str, Any]]:
    """Every registered check, in registration order: id, severity, title, citation, scope, description."""
    from .checks import REGISTRY, load_all

    load_all()
    return [
        {
            "id": c.id,
            "severity": c.severity.value,
            "title": c.title,
            "citation": c.citation,
            "scope": c.scope,
            "description": c.description,
        }
        for c in sorted(REGISTRY.values(), key=lambda c: c.order)
    ]


def rule_detail(rule_id: str) -> dict[str, Any] | None:
    """Everything about one rule (None for an unknown id): the fields of :func:`rules`, plus ``clients`` (per
    client family: whether it rejects a chain with this problem and the message it prints, with {host}-style
    placeholders) and ``lab_scenarios`` (the ``certdoctor lab`` scenarios whose check reports it)."""
    from .clients.profiles import PROBLEMS, PROFILES
    from .lab.scenarios import SCENARIOS

    info = next((r for r in rules() if r["id"] == rule_id), None)
    if info is None:
        return None
    problems = [p for p, ids in PROBLEMS.items() if rule_id in ids]
    clients = []
    for profile in PROFILES:
        rejecting = [p for p in problems if p in profile.order or p in ("too-large", "too-many-certs")]
        note = None
        if rule_id == "missing-intermediate" and profile.aia:
            note = "fetches the missing intermediate through AIA when the certificate names one (so it may accept)"
        clients.append(
            {
                "client": profile.id,
                "name": profile.name,
                "rejects": bool(rejecting),
                "messages": list(dict.fromkeys(profile.messages[p] for p in rejecting if p in profile.messages)),
                "note": note,
            }
        )
    scenarios = [s.name for s in SCENARIOS if rule_id in s.expected]
    return {**info, "clients": clients, "lab_scenarios": scenarios}
