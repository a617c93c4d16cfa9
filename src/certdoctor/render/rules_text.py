"""Text rendering of ``certdoctor rules``: a table on a terminal, tab-separated lines in a pipe."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def render_rules(rows: list[dict[str, Any]], out: Console, *, quiet: bool = False) -> None:
    """Every rule; ``quiet``: ids only. In a pipe, one ``id<TAB>severity<TAB>title<TAB>citation`` line each."""
    if quiet:
        for r in rows:
            out.print(r["id"])
        return
    if not out.is_terminal:  # written as is: rich would expand the tabs
        out.file.write("".join("\t".join((r["id"], r["severity"], r["title"], r["citation"])) + "\n" for r in rows))
        return
    table = Table(box=None, pad_edge=False)  # ids and severities are never cut; the prose wraps
    table.add_column("id", no_wrap=True, min_width=max(len(r["id"]) for r in rows))
    table.add_column("severity", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("citation", overflow="fold")
    for r in rows:
        table.add_row(r["id"], Text(r["severity"], style=SEVERITY_STYLE[r["severity"]]), r["title"], r["citation"])
    out.print(table)


def render_rule(r: dict[str, Any], out: Console) -> None:
    """Everything about one rule."""

    def field(key: str, value: str, style: str = "") -> None:
        label = f"{key:<14}" if len(key) < 14 else f"{key} "  # "not rejected by" is wider than the column
        out.print(Text(label, style="bold").append(value, style=style))

    field("id", r["id"])
    field("severity", r["severity"], SEVERITY_STYLE[r["severity"]])
    field("title", r["title"])
    field("means", r["description"])
    field("rule", r["citation"])
    field("applies to", "each distinct chain" if r["scope"] == "chain" else "the target (all its addresses)")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for c in r["clients"]:
        by_kind.setdefault(c.get("reaction") or ("rejects" if c["rejects"] else "accepts"), []).append(c)
    width = max((len(c["name"]) for c in r["clients"]), default=0) + 2
    for kind, heading in (("rejects", "rejected by"), ("depends", "depends"), ("accepts", "accepted by")):
        members = by_kind.get(kind, [])
        if not members:
            continue
        out.print(Text(heading, style="bold"))
        for c in members:
            if kind == "rejects":
                said = " | ".join(c["messages"]) or "(rejects; message not catalogued)"
                out.print(Text(f"  {c['name']:<{width}}").append(said))
            else:
                out.print(Text(f"  {c['name']:<{width}}").append(c.get("note") or "", style="dim"))
    if by_kind.get("unaffected"):
        field("clients", "not about what a client verifies: " + (by_kind["unaffected"][0].get("note") or ""), "dim")
    if r["lab_scenarios"]:
        field("see it", ", ".join(f"certdoctor lab scenario {s}" for s in r["lab_scenarios"]))
