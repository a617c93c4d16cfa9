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


def dumps_line(data: Any) -> str:
    """One line (JSON Lines)."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)
