"""Terminal output for ``certdoctor explain`` and ``certdoctor clients``.

The pasted text is the user's, but it may come from a hostile server's error message (host names,
certificate fields): everything shown goes through :func:`clean`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..clients.explain import Explanation
from ..clients.profiles import ClientProfile
from .escape import clean


def render_explanation(result: Explanation, console: Console, *, quiet: bool = False) -> None:
    if not result.recognised:
        console.print(Text("✗ not recognised as a TLS certificate error.", style="bold yellow"))
        console.print(Text(f"Run `{result.command()}` to see what the server presents and what each client will do."))
        return
    best = result.matches[0]
    head = Text("✓ ", style="bold green").append(clean(best.signature.client), style="bold")
    if best.score < 1.0:
        head.append(f"  (closest match, {best.score:.0%})", style="dim")
    console.print(head)
    console.print(Padding(Text(clean(best.signature.meaning)), (0, 0, 0, 2), expand=False))
    if len(result.matches) > 1 and not quiet:
        also = ", ".join(dict.fromkeys(clean(m.signature.client) for m in result.matches[1:]))
        console.print(Padding(Text(f"also matches: {also}", style="dim"), (0, 0, 0, 2), expand=False))
    console.print()
    console.print(Text("Likely causes, most likely first", style="bold underline"))
    for n, cause in enumerate(result.causes, 1):
        console.print(Text(f"{n}. ", style="bold").append(clean(cause.title), style="bold"))
        if not quiet:
            console.print(
                Padding(Text("How to tell: ", style="cyan").append(clean(cause.tell_apart)), (0, 0, 0, 3), expand=False)
            )
            console.print(Padding(Text("Fix: ", style="green").append(clean(cause.fix)), (0, 0, 0, 3), expand=False))
    console.print()
    console.print(Text("Next: ", style="bold").append(clean(result.command()), style="bold cyan"))
    if not result.host:
        console.print(Text("(replace HOST[:PORT] with the server the client was talking to)", style="dim"))


def render_profiles(profiles: Sequence[ClientProfile], console: Console) -> None:
    for p in profiles:
        console.print(Text(p.name, style="bold").append(f"  [{p.id}]", style="dim"))
        rows = [
            ("describes", p.describes),
            ("also", p.covers),
            ("trust store", p.store_label),
            ("private CA", p.trust_howto),
            ("AIA fetching", "yes: fetches missing intermediates" if p.aia else "no"),
            ("CN fallback", "yes, when there is no subjectAltName" if p.cn_fallback else "no"),
            (
                "SHA-1",
                {"reject": "rejected", "accept": "accepted", "private-only": "accepted under private roots only"}[
                    p.sha1
                ],
            ),
            ("RSA minimum", f"{p.min_rsa_leaf} bits (leaf), {p.min_rsa_ca} bits (CA)" if p.min_rsa_leaf else "none"),
            ("revocation", p.revocation),
            (
                "public-only rules",
                "398-day validity, CT, its own root store"
                if p.public_only_rules
                else ("CT (Mozilla's CT policy)" if p.enforces_ct else "none"),
            ),
        ]
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="cyan")
        grid.add_column()
        for key, value in rows:
            grid.add_row(Text(key), Text(clean(value)))
        console.print(Padding(grid, (0, 0, 0, 2), expand=False))
        for note in p.notes:
            console.print(Padding(Text(f"note: {clean(note)}", style="dim"), (0, 0, 0, 2), expand=False))
        console.print()
