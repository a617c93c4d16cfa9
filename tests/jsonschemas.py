"""The published JSON Schemas (schemas/*.schema.json): ``validate(doc)`` checks any ``--json`` document or scan
record against the schema its ``kind`` names. Every test that reads certdoctor's JSON goes through it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
KINDS = (
    "check",
    "scan-record",
    "fix",
    "inspect",
    "rules",
    "rule",
    "stores",
    "clients",
    "explain",
    "demo",
    "lab",
    "watch-list",
    "watch-run",
    "watch-status",
    "watch-history",
    "watch-events",
    "watch-prune",
    "watch-alert",
    "watch-alerts",
    "watch-channels",
    "watch-health",
    "watch-api-error",
    "watch-files",
    "watch-discover",
    "watch-hooks",
    "watch-renewals",
    "watch-forecast",
    "watch-fleet",
    "policy-check",
)


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def validator(kind: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate(doc: Any) -> Any:
    """``doc`` (returned) if it is valid for the schema of its ``kind``; else an AssertionError naming each error."""
    assert isinstance(doc, dict) and doc.get("kind") in KINDS, f"not a certdoctor document: {str(doc)[:200]}"
    errors = sorted(validator(doc["kind"]).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, f"{doc['kind']} document does not follow its schema:\n" + "\n".join(
        f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]
    )
    return doc


def loads(text: str) -> Any:
    """``json.loads`` and :func:`validate`."""
    return validate(json.loads(text))
