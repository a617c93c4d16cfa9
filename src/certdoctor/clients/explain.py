"""``certdoctor explain``: from a pasted client error to its likely causes and the command that confirms one.

Pure functions over the catalogue in :mod:`certdoctor.clients.catalog`. Matching is forgiving: users paste
partial lines with their own host names, paths, hex error ids and timestamps in them, sometimes re-typed.
Each signature is a regular expression tried case-insensitively against the whole paste; when none
matches, a fuzzy comparison against every signature's example text finds the nearest ones.

The whole paste is scanned, however long (a 1 MB log with the error in its middle), in linear time: every
pattern here and in the catalogue has bounded repetitions only (``.{0,200}``, never ``.*``; a test checks it),
so each of the ~130 searches costs a constant per character, and they run case-sensitively on the lowered
text (much faster than ``re.IGNORECASE``). Fuzzy matching is quadratic, so it only sees short fragments: the
whole paste when it is short, else a few lines that look like errors.
"""

from __future__ import annotations

import difflib
import re
import re._constants as _sre  # type: ignore[import-not-found]
import re._parser as _sre_parse  # type: ignore[import-not-found]
from dataclasses import dataclass
from typing import Any

from .catalog import CAUSES, SIGNATURES, Cause, Signature

MIN_FUZZY = 0.62
MAX_FUZZY = 1_000  # fuzzy matching is for short fragments; it is quadratic in the text length
MAX_FRAGMENT = 240  # in a long paste, fuzzy matching sees at most MAX_FRAGMENTS error-looking lines this long
MAX_FRAGMENTS = 6
MAX_REPEAT = 500  # the longest repetition a pattern may have (the ReDoS guard: no unbounded * or +)
_ERRORISH = re.compile(
    r"error|fail|exception|ssl|tls|x509|certif|verif|handshake|unable|trust|refused|timed? ?out|denied|invalid"
)

_H = r"[^\s]{1,255}"  # a host name or address, bounded (see MAX_REPEAT)
_DNS = r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,10}"  # a dotted name, without a trailing dot
_HOST_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"target host name '([^']{1,255})'",
        r"not valid for '([^']{1,255})'",
        r"Host: ([^\s,]{1,255}?)\.? is not",
        r"IP: ([^\s,]{1,255}) is not",
        rf"matching (?:IP address )?({_H}) found",
        r", not ([^\s\"]{1,255})",
        rf"validate certificate for ({_H}) because",
        r"wanted to match ([^\s\"]{1,255})",
        r"HTTPS?ConnectionPool\(host='([^']{1,255})', port=(\d{1,5})\)",
        r"https?://([^/\s:'\"]{1,255}(?::\d{1,5})?)",
        rf"[Cc]ould not resolve host: ({_H})",
        r"connection to ([^\s:]{1,255}):(\d{1,5})",
        rf"cannot verify ({_H})'s certificate",
        r"hostname '([^']{1,255})' doesn't match",
        rf"Hostname ({_H}) not verified",
        # Node's error object: { code: ..., host: 'api.example.com', port: 8443, ... }
        r"\bhost: '([^']{1,255})',?(?:\s{0,20}port: (\d{1,5}))?",
        r"with authority '([^']{1,255})'",
        r"secure connection to the server '([^']{1,255})'",
        r"impersonating '([^']{1,255})'",
        # browser page text: "Your connection is not private … steal your information from api.example.com"
        r"(?i:not private|Potential Security|security threat|Secure Connection Failed)[\s\S]{0,400}?"
        rf"\b(?:to|from) ({_DNS})\b",
    )
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


def _lowered_pattern(pattern: str) -> str:
    """The pattern for lowered text: literal letters lowered, escapes (``\\S``, ``\\B``, ``\\(``) kept."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            out.append(pattern[i : i + 2])
            i += 2
        else:
            out.append(pattern[i].lower())
            i += 1
    return "".join(out)


def _leads(items: Any) -> list[str]:
    """Literal texts one of which every match of the parsed pattern starts with ("" when one need not)."""
    prefix = ""
    for op, av in items:
        if op in (_sre.ASSERT, _sre.ASSERT_NOT) and not prefix:
            continue  # a look-around consumes nothing
        if op is _sre.LITERAL:
            prefix += chr(av)
            continue
        if op is _sre.BRANCH:
            return [prefix + lead for branch in av[1] for lead in _leads(branch)]
        if op is _sre.SUBPATTERN:
            return [prefix + lead for lead in _leads(av[-1])]
        break
    return [prefix]


def _prefixes(pattern: str) -> tuple[str, ...]:
    """The texts a match must start with; a pattern that may start anywhere gets ("",), always searched."""
    return tuple(dict.fromkeys(_leads(_sre_parse.parse(pattern))))


# Searching lowered text case-sensitively is several times faster than re.IGNORECASE (whose searches cannot
# skip ahead to a literal prefix); the catalogue's patterns stay the reference (Signature.regex). Before the
# regex, a substring test of the literal texts a match must start with skips most signatures in a long log.
_LOWERED: tuple[tuple[Signature, re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (sig, re.compile(_lowered_pattern(sig.pattern)), _prefixes(_lowered_pattern(sig.pattern))) for sig in SIGNATURES
)


def _normalise(text: str) -> str:
    text = re.sub(r"[\u2018\u2019\u201c\u201d]", "'", text)  # curly quotes from chat tools and macOS
    return re.sub(r"[ \t]+", " ", text)


def _host(text: str) -> str | None:
    for pattern in _HOST_PATTERNS:
        m = pattern.search(text)
        if m:
            quoted = text[m.end(1) : m.end(1) + 1] == "'"  # 'api.example.com.': the dot is the client's
            host = m.group(1).strip("'\"")
            host = host.lstrip(".") if quoted else host.strip(".")
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


def _fragments(text: str) -> list[str]:
    """What fuzzy matching may look at: the paste when short, else a few error-looking lines of it."""
    if len(text) <= MAX_FUZZY:
        return [text]
    half = MAX_FRAGMENTS // 2
    first: list[str] = []  # the first failure and the last ("Caused by") are the likeliest
    last: dict[str, None] = {}
    for line in text.splitlines():
        line = line.strip()[:MAX_FRAGMENT]
        if len(line) < 12 or line in first or not _ERRORISH.search(line.lower()):
            continue
        if len(first) < half:
            first.append(line)
            continue
        last.pop(line, None)
        last[line] = None
        if len(last) > half:
            del last[next(iter(last))]
    return first + list(last)


def _fuzzy_fragments(text: str) -> list[Match]:
    best: dict[str, Match] = {}
    for fragment in _fragments(text):
        for match in _fuzzy(fragment):
            if match.signature.id not in best or match.score > best[match.signature.id].score:
                best[match.signature.id] = match
    return sorted(best.values(), key=lambda m: -m.score)


def _causes(found: list[Match]) -> tuple[Cause, ...]:
    """The causes of the recognised messages, most likely first. A wrapper (curl (60), CERTIFICATE_VERIFY_FAILED,
    a browser's page title: negative specificity) lists every cause it may wrap; when the paste also says what it
    wraps, only the specific messages' causes are possible ("not yet valid" cannot be a missing intermediate)."""
    specific = [m for m in found if m.signature.specificity >= 0]
    causes: list[Cause] = []
    for match in specific or found:
        for cause_id in match.signature.causes:
            cause = CAUSES[cause_id]
            if cause not in causes:
                causes.append(cause)
    return tuple(causes)


def explain(text: str) -> Explanation:
    """Recognise a pasted error; rank its causes."""
    clean = _normalise(text)
    lowered = clean.lower()
    same_length = len(lowered) == len(clean)  # str.lower() lengthens a few characters (U+0130)
    found: list[Match] = []
    seen: set[str] = set()
    for sig, regex, prefixes in _LOWERED:
        if prefixes and not any(prefix in lowered for prefix in prefixes):
            continue
        m = regex.search(lowered)
        if m and sig.id not in seen:
            seen.add(sig.id)
            matched = clean[m.start() : m.end()] if same_length else m.group(0)
            found.append(Match(sig, 1.0 + sig.specificity + min(len(matched), 200) / 10_000, matched))
    if not found:
        found = _fuzzy_fragments(clean)[:3]
    found.sort(key=lambda m: -m.score)
    host = _host(clean)
    causes = _causes(found)
    if host and host.endswith(".") and any(m.signature.family == "hostname" for m in found):
        # "not valid for 'api.example.com.'": the client asked for the absolute name (Python compares it literally)
        causes = (CAUSES["trailing-dot"], *(c for c in causes if c.id != "trailing-dot"))
    return Explanation(text=clean, matches=tuple(found), causes=causes, host=host)


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
