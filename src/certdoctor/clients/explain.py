"""``certdoctor explain``: from a pasted client error to its likely causes and the command that confirms one.

Pure functions over the catalogue in :mod:`certdoctor.clients.catalog`. Matching is forgiving: users paste
partial lines with their own host names, paths, hex error ids and timestamps in them, sometimes re-typed.
Each signature is a regular expression tried case-insensitively against the whole paste; when none
matches, a fuzzy comparison against every signature's example text finds the nearest ones.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from .catalog import CAUSES, SIGNATURES, Cause, Signature

MIN_FUZZY = 0.62
MAX_INPUT = 20_000
MAX_FUZZY = 1_000  # fuzzy matching is for short fragments; it is quadratic in the text length

_HOST_PATTERNS = (
    r"target host name '([^']+)'",
    r"not valid for '([^']+)'",
    r"Host: ([^\s,]+?)\.? is not",
    r"IP: ([^\s,]+) is not",
    r"matching (?:IP address )?([^\s]+) found",
    r", not ([^\s\"]+)",
    r"validate certificate for ([^\s]+) because",
    r"wanted to match ([^\s\"]+)",
    r"https?://([^/\s:'\"]+(?::\d+)?)",
    r"[Cc]ould not resolve host: ([^\s]+)",
    r"connection to ([^\s:]+):(\d+)",
    r"cannot verify ([^\s]+)'s certificate",
    r"hostname '([^']+)' doesn't match",
    r"Hostname ([^\s]+) not verified",
)


@dataclass(frozen=True)
class Match:
    """One catalogued error message recognised in the pasted text."""

    signature: Signature
    score: float  # 1.0 for a pattern match, the fuzzy ratio otherwise
    matched_text: str


@dataclass(frozen=True)
class Explanation:
    """What a pasted error means: the messages recognised (best first), their likely causes (most likely first)
    and the host name found in the text, if any."""

    text: str
    matches: tuple[Match, ...]
    causes: tuple[Cause, ...]
    host: str | None

    @property
    def recognised(self) -> bool:
        return bool(self.matches)

    @property
    def best(self) -> Signature | None:
        return self.matches[0].signature if self.matches else None

    def command(self) -> str:
        target = self.host or "HOST[:PORT]"
        return f"certdoctor check {target}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "recognised": self.recognised,
            "matches": [
                {
                    "id": m.signature.id,
                    "client": m.signature.client,
                    "meaning": m.signature.meaning,
                    "score": round(m.score, 3),
                    "matched_text": m.matched_text,
                }
                for m in self.matches
            ],
            "causes": [{"id": c.id, "title": c.title, "tell_apart": c.tell_apart, "fix": c.fix} for c in self.causes],
            "host": self.host,
            "command": self.command(),
        }


def _normalise(text: str) -> str:
    if len(text) > MAX_INPUT:  # a long log: the error is at its start (the first failure) or its end (Caused by)
        text = text[: MAX_INPUT // 2] + "\n" + text[-MAX_INPUT // 2 :]
    text = re.sub(r"[\u2018\u2019\u201c\u201d]", "'", text)  # curly quotes from chat tools and macOS
    return re.sub(r"[ \t]+", " ", text)


def _host(text: str) -> str | None:
    for pattern in _HOST_PATTERNS:
        m = re.search(pattern, text)
        if m:
            host = m.group(1).strip(".'\"")
            if len(m.groups()) > 1 and m.group(2):
                host = f"{host}:{m.group(2)}"
            if re.fullmatch(r"[A-Za-z0-9.\-:\[\]*]+", host) and not host.startswith("*"):
                return host
    return None


def _fuzzy(text: str) -> list[Match]:
    lowered = text.lower()
    words = [w for w in re.split(r"[^a-z0-9_]+", lowered) if len(w) > 2]
    if not words:
        return []
    scored: list[Match] = []
    for sig in SIGNATURES:
        for example in sig.examples:
            ex = example.lower()
            ratio = difflib.SequenceMatcher(None, lowered, ex).ratio()
            # A fragment of a long message: compare with the best window of the example.
            if len(lowered) < len(ex):
                window = difflib.SequenceMatcher(None, ex, lowered).find_longest_match(0, len(ex), 0, len(lowered))
                cover = window.size / max(len(lowered), 1)
                ratio = max(ratio, cover if window.size >= 12 else 0.0)
            if ratio >= MIN_FUZZY:
                scored.append(Match(sig, ratio, example))
                break
    scored.sort(key=lambda m: -m.score)
    return scored


def explain(text: str) -> Explanation:
    """Recognise a pasted error; rank its causes."""
    clean = _normalise(text)
    found: list[Match] = []
    seen: set[str] = set()
    for sig in SIGNATURES:
        m = sig.regex.search(clean)
        if m and sig.id not in seen:
            seen.add(sig.id)
            found.append(Match(sig, 1.0 + sig.specificity + min(len(m.group(0)), 200) / 10_000, m.group(0)))
    if not found:
        found = _fuzzy(clean[:MAX_FUZZY])[:3]
    found.sort(key=lambda m: -m.score)
    causes: list[Cause] = []
    for match in found:
        for cause_id in match.signature.causes:
            cause = CAUSES[cause_id]
            if cause not in causes:
                causes.append(cause)
    return Explanation(text=clean, matches=tuple(found), causes=tuple(causes), host=_host(clean))


def classify(text: str, client: str | None = None) -> str | None:
    """The error family (see profiles.FAMILIES values) of a client's error text, or None if unknown.

    Used by the conformance suite to compare real clients with predictions without relying on volatile
    details (timestamps, hex error ids).
    """
    result = explain(text)
    for match in result.matches:
        if client is None or client in match.signature.clients:
            return match.signature.family
    return result.matches[0].signature.family if result.matches else None
