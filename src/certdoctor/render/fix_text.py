"""Text rendering of ``certdoctor fix`` (every string from a certificate or a file goes through clean())."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from .. import certinfo
from .escape import clean
from .text import clients_table, verdict_line

PRIVATE = ("privkey.pem", "haproxy.pem", "bundle.p12")


def render_fix(result: Any, out: Console, *, quiet: bool = False) -> None:
    """A :class:`certdoctor.fixer.FixResult`: the chain written, what was left out or downloaded, the files,
    the re-verification and per-client verdicts, then the configuration lines. ``quiet``: the verdict and the
    files written only."""
    plan, d = result.plan, result.verification
    if quiet:
        out.print(Text("fullchain.pem: ").append(verdict_line(d)))
        for p in result.written:
            out.print(Text(f"wrote {clean(str(p))}"))
        return
    out.print(Text("Chain written (what the server must send, in this order):", style="bold"))
    for i, c in enumerate(plan.chain):
        role = "leaf" if i == 0 else ("root" if c is plan.root else "intermediate")
        out.print(Text(f"  #{i} {role:<13}").append(clean(certinfo.subject(c))))
    for c, url in plan.fetched:
        out.print(
            Text(f"  downloaded {clean(certinfo.display_name(c))} from {clean(certinfo.short_url(url))}", style="cyan")
        )
    for c, reason in plan.dropped:
        out.print(Text(f"  left out {clean(certinfo.display_name(c))}: {reason}", style="yellow"))
    for line in result.repaired:
        out.print(Text(f"  repaired {clean(line)}", style="cyan"))
    for line in result.skipped:
        out.print(Text(f"  skipped {clean(line)}", style="dim"))
    for note in plan.notes:
        out.print(Text(f"  note: {clean(note)}", style="red"))
    if plan.key is not None:
        out.print(Text(f"  the key from {clean(plan.key_source)} matches the server certificate", style="green"))
    if not plan.chain[1:]:
        out.print(Text("  no chain.pem: the certificate is issued directly by the root", style="dim"))
    for p in result.written:
        private = " (mode 0600: it holds the private key)" if p.name in PRIVATE else ""
        out.print(Text(f"  wrote {clean(str(p))}{private}", style="dim"))
    out.print()
    out.print(Text("Re-verified fullchain.pem: ", style="bold").append(verdict_line(d)))
    for f in d.findings:
        out.print(Text(f"  {f.severity.value}: {f.id} — {clean(f.detail, 300)}"))
    if d.clients:
        out.print()
        out.print(Text("Clients, once the server sends fullchain.pem:", style="bold"))
        out.print(clients_table(d.clients, verbose=False))
    out.print()
    for _id, label, lines in result.config:
        out.print(Text(f"{label}:", style="bold"))
        for line in lines.split("\n"):
            out.print(Text("    " + clean(line, 10_000)), soft_wrap=True)
