"""Certificate policy as code: a TOML file of rules that ``check``, ``scan``, ``fix`` and ``watch`` apply.

A policy (see :mod:`certdoctor.policy.parse` for the file's syntax, :mod:`certdoctor.policy.rules` for the
rules) is loaded once per run and carried in :class:`certdoctor.model.DiagnoseOptions` ``policy``; the
``policy`` check family (:mod:`certdoctor.checks.policy`) applies the rules that match each target's labels and
reports ``policy-*`` findings. Presets ship with the package (``public-web``, ``internal``): ``--policy NAME``
selects one; ``certdoctor policy show NAME`` prints it.
"""

from __future__ import annotations

import os
import stat
from importlib import resources

from ..errors import InputError
from .parse import Policy, Problem, Rule, Section, key_lines, parse_policy
from .rules import COMING, RULES, RuleSpec, cabf_max_validity_days, finding_ids

__all__ = [
    "COMING",
    "ENV",
    "MAX_POLICY_BYTES",
    "PRESETS",
    "RULES",
    "Policy",
    "Problem",
    "Rule",
    "RuleSpec",
    "Section",
    "cabf_max_validity_days",
    "finding_ids",
    "key_lines",
    "load_policy",
    "parse_policy",
    "preset_text",
    "read_policy",
]

ENV = "CERTDOCTOR_POLICY"  # the default for --policy
PRESETS = ("public-web", "internal")
MAX_POLICY_BYTES = 1 << 20  # a policy file is a page of rules, never a megabyte


def preset_text(name: str) -> str:
    """The TOML text of the preset ``name`` (one of :data:`PRESETS`). Raises InputError for another name."""
    if name not in PRESETS:
        raise InputError(f"unknown policy preset {name!r} (presets: {', '.join(PRESETS)})")
    return resources.files(__package__).joinpath("presets", f"{name}.toml").read_text(encoding="utf-8")


def read_policy(spec: str) -> tuple[str, str]:
    """``(name, text)`` of the policy ``spec``: a preset name (``public-web``, named ``preset:public-web``) or a
    file path (named as given). Raises InputError for a file that cannot be read or is over 1 MiB."""
    if spec in PRESETS and not os.path.exists(spec):
        return f"preset:{spec}", preset_text(spec)
    try:
        # O_NONBLOCK and a regular file only, as collect.files.read_capped: a FIFO must not block for ever
        fd = os.open(spec, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InputError(f"policy {spec}: not a regular file")
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        hint = f" (presets: {', '.join(PRESETS)})" if os.sep not in spec and "." not in spec else ""
        raise InputError(f"policy {spec}: {exc.strerror or exc}{hint}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise InputError(f"policy {spec}: larger than {MAX_POLICY_BYTES // 1024} KiB; not a policy file")
    try:
        return spec, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"policy {spec}: not UTF-8 text (byte {exc.start})") from None


def load_policy(spec: str) -> Policy:
    """The policy ``spec`` (a preset name or a file), validated. Raises InputError naming the first problems
    (path:line: key: message) when the file has any: a policy with a typo is never applied with a rule
    silently missing."""
    name, text = read_policy(spec)
    policy, problems = parse_policy(text, name)
    if problems or policy is None:
        shown = "; ".join(p.text(name) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(f"policy {shown}{more}; see `certdoctor policy check {spec}`")
    return policy
