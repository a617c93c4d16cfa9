"""JSON output. ensure_ascii keeps every non-ASCII (and so every C1 control) character escaped."""

from __future__ import annotations

import json
from typing import Any


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=True, default=str)
