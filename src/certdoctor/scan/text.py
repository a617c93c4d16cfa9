"""How a scan looks on a terminal: one line per record, the progress bar and the summary table (stderr).

Every string from a target or a server goes through :func:`certdoctor.render.clean`.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import certinfo
from ..render.escape import clean
from .driver import Summary
from .engine import Meta

MARK = {"valid": "✓", "invalid": "✗", "unreachable": "✗", "bad-input": "?"}


def text_line(meta: Meta) -> str:
    mark = MARK.get(meta.verdict, "?")
    head = f"{mark} {meta.verdict:<11} {clean(meta.target, 8192)}"
    if meta.error:
        return f"{head}  {clean(meta.error, 2000)}\n"
    parts = [", ".join(meta.ids)] if meta.ids else []
    if meta.days_left is not None:
        parts.append(f"({certinfo.days_phrase(meta.days_left)})")
    return f"{head}  {'  '.join(parts)}\n"


def summary_table(summary: Summary) -> Table:
    table = Table(title="certdoctor scan", title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True, min_width=len("soonest expiry"))
    table.add_column(overflow="fold")  # a long target wraps on a terminal; never cut
    v = summary.verdicts
    table.add_row(
        "targets",
        f"{summary.done} in {summary.to_dict()['elapsed_s']} s ({summary.rate:.0f}/s)"
        + (f", {summary.earlier} from the earlier run (--resume)" if summary.earlier else "")
        + (
            f", {summary.skipped - summary.earlier} already done (--resume)"
            if summary.skipped > summary.earlier
            else ""
        )
        + ("  — interrupted" if summary.interrupted else ""),
    )
    table.add_row(
        "verdicts",
        Text(f"{v['valid']} valid", style="green")
        + Text(f"  {v['invalid']} invalid", style="red" if v["invalid"] else "")
        + Text(f"  {v['unreachable']} unreachable", style="red" if v["unreachable"] else "")
        + Text(f"  {v['bad-input']} bad input lines", style="yellow" if v["bad-input"] else "")
        + (
            Text(f"  ({summary.warned} valid with warnings)", style="yellow" if summary.fail_on_warning else "")
            if summary.warned
            else Text("")
        ),
    )
    if summary.findings:
        table.add_row("findings", "\n".join(f"{n:>6}  {fid}" for fid, n in summary.findings.most_common(15)))
    if summary.errors:
        table.add_row(
            "errors", "\n".join(f"{n:>6}  {clean(reason, 2000)}" for reason, n in summary.errors.most_common(5))
        )
    if summary.soonest:
        rows = sorted(summary.soonest, reverse=True)
        table.add_row(
            "soonest expiry",
            "\n".join(f"{-d:>6.0f} d  {na[:10]}  {clean(t, 8192)}" for d, na, t in rows),
        )
    return table


def run_with_progress(scan: Any, fmt: str, summary: Summary, err: Console, skipped: int) -> None:
    """Run ``scan(on_record=..., text_line=...)`` under a progress bar on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.0f}/s  {task.fields[problems]} with problems"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        auto_refresh=False,  # no refresh thread: worker processes are forked, and forking with threads is unsafe
    )
    total = None if summary.total is None else max(0, summary.total - skipped)
    task = progress.add_task("scan", total=total, rate=0.0, problems=0)

    last = [0.0]

    def on_record(meta: Meta) -> None:
        progress.update(task, advance=1, rate=summary.rate, problems=summary.problems)
        now = time.monotonic()
        if now - last[0] > 0.1:
            last[0] = now
            progress.refresh()

    line = text_line
    if fmt == "text":  # records and the bar share the terminal: print records through the progress console

        def line(meta: Meta) -> str:
            progress.console.print(Text(text_line(meta).rstrip("\n")), highlight=False)
            return ""

    with progress:
        scan(on_record=on_record, text_line=line)
