"""JSON output: one vocabulary for every ``--json`` document and scan record.

Every document is an object that starts with ``"certdoctor": VERSION`` (the vocabulary's version, raised only
when a field changes meaning or disappears) and ``"kind"`` (which schema it follows: ``schemas/<kind>.schema.json``
in the repository). ``ensure_ascii`` keeps every non-ASCII (and so every C1 control) character escaped.
"""

from __future__ import annotations

import json
from typing import Any

from ..model import JSON_VERSION


def document(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as a ``kind`` document: the version and kind keys first."""
    return {"certdoctor": JSON_VERSION, "kind": kind, **body}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=True, default=str)


def dumps_rows(data: dict[str, Any], key: str) -> str:
    """``data`` as :func:`dumps` writes it, except the list under ``key`` (a fleet's targets: 10,000 rows and
    more), whose rows are written one per line, each on one line. The same JSON; 4 times faster (the C encoder
    does not indent: 0.03 s instead of 0.13 s for 10,000 ``watch status`` rows), and one row per line for grep.
    """
    parts = []
    for name, value in data.items():
        if name == key and isinstance(value, list) and value:
            rows = ",\n".join(f"    {json.dumps(row, ensure_ascii=True, default=str)}" for row in value)
            text = f"[\n{rows}\n  ]"
        else:
            text = dumps(value).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(name, ensure_ascii=True)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"


def dumps_line(data: Any) -> str:
    """One line (JSON Lines)."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)
