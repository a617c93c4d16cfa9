"""Reading a policy file: TOML (``tomllib``), validated, each rule with the line it is set on.

The accepted forms::

    description = "Payments team certificates"     # optional, free text
    max_validity_days = 90                         # a rule: key = value (see certdoctor.policy.rules)
    key_types = ["rsa", "ecdsa"]
    ec_curves = [                                  # arrays may span lines
        "P-256", "P-384",
    ]

    [severity]                                     # optional: another severity per rule of this table
    max_validity_days = "warning"

    [labels."team=payments"]                       # rules for targets with these labels (k=v, comma-separated
    max_validity_days = 30                         # for several: all must match); they replace the top-level
                                                   # value for those targets, in file order
    [labels."team=payments".severity]
    days_left_warning = "error"

Dotted keys (``severity.max_validity_days = "warning"``) are the same as the tables above. Refused with a clear
error: arrays of tables (``[[...]]``), inline tables (``{ ... }``) and multi-line strings (``\"\"\"``), whose keys
this reader cannot place on a line. ``tomllib`` gives no line numbers: :func:`key_lines` scans the text for each
table header and key, for these forms.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import Severity
from .rules import COMING, RULES, ValueProblem, normalise, suggest

__all__ = ["Policy", "Problem", "Rule", "Section", "key_lines", "parse_policy"]

Path = tuple[str, ...]
SEVERITIES = ("error", "warning", "info")
TOP_KEYS = {"description", "severity", "labels", *RULES}
SECTION_KEYS = {"severity", *RULES}


@dataclass(frozen=True)
class Problem:
    """Something wrong in a policy file: at ``line`` (1-based; 0 for the whole file), about ``key`` (the
    dotted path, "" for the file), ``message``, and a ``suggestion`` ("did you mean ...") when one is close."""

    line: int
    key: str
    message: str
    suggestion: str | None = None

    def text(self, name: str) -> str:
        where = f"{name}:{self.line}" if self.line else name
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{where}: {self.key + ': ' if self.key else ''}{self.message}{hint}"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "key": self.key, "message": self.message, "suggestion": self.suggestion}


@dataclass(frozen=True)
class Rule:
    """One rule as set in the file: its ``key``, the normalised ``value``, the ``line`` it is set on, and the
    severity the file gives it (None: the rule's default)."""

    key: str
    value: Any
    line: int
    severity: Severity | None = None


@dataclass(frozen=True)
class Section:
    """The top-level table (``selector`` empty) or one ``[labels."k=v"]`` table."""

    selector: tuple[tuple[str, str], ...]
    line: int
    rules: Mapping[str, Rule] = field(default_factory=dict)
    severities: Mapping[str, tuple[Severity, int]] = field(default_factory=dict)  # key → (severity, line)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector)

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.selector)


@dataclass(frozen=True)
class Policy:
    """A loaded policy: ``name`` (the file as given, or ``preset:NAME``) used in findings' locations, its
    ``description``, the ``top`` section and the ``labelled`` sections in file order."""

    name: str
    top: Section
    labelled: tuple[Section, ...] = ()
    description: str = ""
    # rules_for's answers by label set: the checks ask once per rule and target, a scan for thousands of targets
    _cache: dict[tuple[tuple[str, str], ...], dict[str, Rule]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def rules_for(self, labels: Mapping[str, str] | None = None) -> dict[str, Rule]:
        """The rules that apply to a target with ``labels``: the top level's, each replaced by the value of the
        last matching label section that sets it; a severity comes from the last matching ``severity`` table
        that names the rule, else the rule's default."""
        labels = labels or {}
        key = tuple(sorted(labels.items()))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        sections = [self.top, *(s for s in self.labelled if s.matches(labels))]
        rules: dict[str, Rule] = {}
        severity: dict[str, Severity] = {}
        for section in sections:
            rules.update(section.rules)
            severity.update({k: sev for k, (sev, _) in section.severities.items()})
        found = {k: Rule(r.key, r.value, r.line, severity.get(k)) for k, r in rules.items()}
        if len(self._cache) < 1024:
            self._cache[key] = found
        return found

    def location(self, rule: Rule) -> str:
        return f"{self.name}:{rule.line}"

    def to_dict(self) -> dict[str, Any]:
        def section(s: Section) -> dict[str, Any]:
            return {
                "labels": dict(s.selector),
                "line": s.line,
                "rules": {k: {"value": _plain(r.value), "line": r.line} for k, r in s.rules.items()},
                "severity": {k: sev.value for k, (sev, _) in s.severities.items()},
            }

        return {
            "name": self.name,
            "description": self.description,
            "sections": [section(self.top), *(section(s) for s in self.labelled)],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# --- where each key is -------------------------------------------------------------------------------------------


class _Scan:
    """A small scanner over one line of TOML: quoted keys, strings and comments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def space(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1

    def key_part(self) -> str | None:
        """A bare or quoted key at the position, or None."""
        self.space()
        t, i = self.text, self.i
        if i < len(t) and t[i] in "\"'":
            quote = t[i]
            j = i + 1
            out = []
            while j < len(t) and t[j] != quote:
                if quote == '"' and t[j] == "\\" and j + 1 < len(t):
                    out.append(t[j : j + 2].encode().decode("unicode_escape"))
                    j += 2
                    continue
                out.append(t[j])
                j += 1
            if j >= len(t):
                return None
            self.i = j + 1
            return "".join(out)
        j = i
        while j < len(t) and (t[j].isalnum() or t[j] in "_-"):
            j += 1
        if j == i:
            return None
        self.i = j
        return t[i:j]

    def dotted_key(self) -> list[str] | None:
        parts = []
        while True:
            part = self.key_part()
            if part is None:
                return None
            parts.append(part)
            self.space()
            if self.i < len(self.text) and self.text[self.i] == ".":
                self.i += 1
                continue
            return parts


def _value_depth(text: str, depth: int) -> tuple[int, str | None]:
    """The bracket depth after ``text`` (a value, or a continuation line of one), starting at ``depth``;
    and what refuses the line ("inline table", "multi-line string") or None."""
    i = 0
    while i < len(text):
        c = text[i]
        if text.startswith('"""', i) or text.startswith("'''", i):
            return depth, "multi-line string"
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if (c == '"' and text[j] == "\\") else 1
            i = j + 1
            continue
        if c == "#":
            break
        if c == "{":
            return depth, "inline table"
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        i += 1
    return depth, None


def key_lines(text: str) -> tuple[dict[Path, int], list[Problem]]:
    """The line (1-based) of every table header and key in ``text`` (by its full dotted path), and the
    problems of the forms this reader refuses (arrays of tables, inline tables, multi-line strings)."""
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    table: Path = ()
    depth = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if depth > 0:
            depth, refused = _value_depth(raw, depth)
            if refused:
                problems.append(Problem(number, "", f"a {refused} is not accepted in a policy file"))
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            scan = _Scan(stripped)
            scan.i = 2
            parts = scan.dotted_key()
            if parts:
                lines.setdefault(tuple(parts), number)
            problems.append(Problem(number, "", "arrays of tables ([[...]]) are not accepted in a policy file"))
            table = ("[[",)
            continue
        scan = _Scan(stripped)
        if stripped.startswith("["):
            scan.i = 1
            parts = scan.dotted_key()
            scan.space()
            if parts is None or scan.i >= len(stripped) or stripped[scan.i] != "]":
                continue  # tomllib reports the syntax error
            table = tuple(parts)
            lines.setdefault(table, number)
            continue
        parts = scan.dotted_key()
        scan.space()
        if parts is None or scan.i >= len(stripped) or stripped[scan.i] != "=":
            continue
        path = (*table, *parts)
        for n in range(len(table) + 1, len(path)):
            lines.setdefault(path[:n], number)
        lines.setdefault(path, number)
        depth, refused = _value_depth(stripped[scan.i + 1 :], 0)
        if refused:
            problems.append(
                Problem(number, dotted(path), f"a {refused} is not accepted in a policy file (write a [table])")
            )
            depth = 0
    return lines, problems


# --- validation ----------------------------------------------------------------------------------------------------


def dotted(path: Path) -> str:
    """A key path as TOML writes it: ``labels."team=payments".max_validity_days``."""
    return ".".join(p if p and all(c.isalnum() or c in "_-" for c in p) else f'"{p}"' for p in path)


def _selector(text: str) -> tuple[tuple[str, str], ...] | None:
    pairs = []
    for item in text.split(","):
        k, sep, v = item.strip().partition("=")
        if not sep or not k.strip() or not v.strip() or any(c.isspace() for c in k.strip() + v.strip()):
            return None
        pairs.append((k.strip(), v.strip()))
    return tuple(pairs)


class _Reader:
    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def line(self, path: Path) -> int:
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 0

    def problem(self, path: Path, message: str, suggestion: str | None = None) -> None:
        self.problems.append(Problem(self.line(path), dotted(path), message, suggestion))

    def unknown(self, path: Path, allowed: set[str]) -> None:
        key = path[-1]
        if key in COMING:
            self.problem(path, f"not evaluated yet: {COMING[key]} rules come in a later version; remove the key")
        else:
            self.problem(path, "unknown key", suggest(key, allowed))

    def section(self, table: Mapping[str, Any], prefix: Path, allowed: set[str]) -> tuple[dict, dict]:
        rules: dict[str, Rule] = {}
        severities: dict[str, tuple[Severity, int]] = {}
        for key, value in table.items():
            path = (*prefix, key)
            if key not in allowed:
                self.unknown(path, allowed)
            elif key == "severity":
                if not isinstance(value, dict):
                    self.problem(path, 'expected a table: [severity] with rule = "error" | "warning" | "info"')
                    continue
                for rule, sev in value.items():
                    where = (*path, rule)
                    if rule not in RULES:
                        self.unknown(where, set(RULES))
                    elif not isinstance(sev, str) or sev.lower() not in SEVERITIES:
                        self.problem(where, f"expected one of {', '.join(SEVERITIES)}", suggest(str(sev), SEVERITIES))
                    else:
                        severities[rule] = (Severity(sev.lower()), self.line(where))
            elif key in RULES:
                if self.line(path) == 0 or (isinstance(value, dict)):
                    self.problem(path, "expected a value on a line of its own (key = value)")
                    continue
                try:
                    rules[key] = Rule(key, normalise(RULES[key], value), self.line(path))
                except ValueProblem as exc:
                    self.problem(path, str(exc), exc.suggestion)
        if "days_left_warning" in rules and "days_left_error" in rules:
            warn, err = rules["days_left_warning"], rules["days_left_error"]
            if err.value > warn.value:
                self.problem(
                    (*prefix, "days_left_error"),
                    f"days_left_error ({err.value}) is more than days_left_warning ({warn.value}): the warning "
                    "would never be seen",
                )
        return rules, severities


def parse_policy(text: str, name: str) -> tuple[Policy | None, list[Problem]]:
    """Read a policy from ``text`` (the file's contents; ``name`` is how findings locate it). Returns the
    policy (None when the TOML cannot be read at all) and every problem found, in line order: unknown keys
    (with a close match), wrong types, bad values, refused forms. A policy with problems is never applied:
    see :func:`certdoctor.policy.load_policy`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_of(str(exc))
        return None, [Problem(line, "", f"not valid TOML: {exc}")]
    lines, refused = key_lines(text)
    reader = _Reader(lines)
    reader.problems.extend(refused)
    description = data.get("description", "")
    if not isinstance(description, str):
        reader.problem(("description",), "expected a string")
        description = ""
    rules, severities = reader.section(
        {k: v for k, v in data.items() if k not in ("labels", "description")}, (), TOP_KEYS
    )
    top = Section((), 0, rules, severities)
    labelled: list[Section] = []
    labels = data.get("labels", {})
    if not isinstance(labels, dict):
        reader.problem(("labels",), 'expected tables: [labels."team=payments"]')
        labels = {}
    for selector_text, table in labels.items():
        path = ("labels", selector_text)
        selector = _selector(selector_text)
        if selector is None:
            reader.problem(path, 'expected labels as key=value, comma-separated: [labels."team=payments,env=prod"]')
            continue
        if not isinstance(table, dict):
            reader.problem(path, f'expected a table: [labels."{selector_text}"]')
            continue
        rules, severities = reader.section(table, path, SECTION_KEYS)
        labelled.append(Section(selector, reader.line(path), rules, severities))
    problems = sorted(dict.fromkeys(reader.problems), key=lambda p: (p.line, p.key))
    return Policy(name, top, tuple(labelled), description), problems


def _line_of(message: str) -> int:
    """The line number in a tomllib error message ("... (at line 3, column 5)"), or 0."""
    marker = "at line "
    if marker in message:
        digits = message.split(marker, 1)[1].split(",")[0].split(")")[0]
        return int(digits) if digits.isdigit() else 0
    return 0
