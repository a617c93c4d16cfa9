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
    client family, from the finding × client table :mod:`certdoctor.clients.reactions`: its ``reaction``
    ("rejects", "accepts", "depends" or "unaffected"), ``rejects`` (True when it refuses whenever the finding
    applies), the message it then prints with {host}-style placeholders, and ``note``: the documented behaviour
    behind an accept or a "depends") and ``lab_scenarios`` (the ``certdoctor lab`` scenarios whose check reports
    it)."""
    from .clients.profiles import PROFILES
    from .clients.reactions import REACTIONS
    from .lab.scenarios import SCENARIOS

    info = next((r for r in rules() if r["id"] == rule_id), None)
    if info is None:
        return None
    row = REACTIONS.get(rule_id, {})
    clients = []
    for profile in PROFILES:
        r = row.get(profile.id)
        message = profile.messages.get(r.problem) if r is not None and r.problem else None
        clients.append(
            {
                "client": profile.id,
                "name": profile.name,
                "reaction": r.kind if r is not None else "depends",
                "rejects": r is not None and r.kind == "rejects",
                "messages": [message] if message else [],
                "note": (r.why or None) if r is not None else "no entry in the finding × client table",
            }
        )
    scenarios = [s.name for s in SCENARIOS if rule_id in s.expected]
    return {**info, "clients": clients, "lab_scenarios": scenarios}
