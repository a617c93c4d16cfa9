"""Neutralise attacker-controlled text before it reaches a terminal.

Certificates can carry any Unicode in their names. Control characters (ANSI escape sequences, OSC 8
hyperlinks, bells, backspaces), bidirectional overrides and zero-width characters are replaced by visible
``\\xNN`` / ``\\uNNNN`` escapes; text is shown through rich ``Text`` objects, never parsed as markup.
"""

from __future__ import annotations

import re
import unicodedata

_FORMAT = {
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\ufeff",
}
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object, limit: int = 1000) -> str:
    """A single-line, printable rendering of ``value``, cut at ``limit`` characters."""
    text = str(value)
    if _UNSAFE.search(text):
        text = _UNSAFE.sub(_escape, text)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and c not in _FORMAT for c in text if ord(c) > 0x9F):
        text = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") else c for c in text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
