"""``certdoctor demo``: start the lab in-process, check every scenario exactly as a user would, compare."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from ..errors import CollectError
from . import check
from .common import Parser, UsageError, add_output_options, console

NAME = "demo"
HELP = "start the lab in-process and diagnose every scenario"
DESCRIPTION = (
    "Start the lab on free loopback ports, run `certdoctor check` on every scenario and compare the findings with "
    "what each scenario should produce."
)
EPILOG = """\
examples:
  certdoctor demo
  certdoctor demo --scenario expired --scenario wrong-order
  certdoctor demo --json

exit status: 0 every scenario gave exactly its expected findings, 1 one did not, 2 usage error, 3 the lab could
not start
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", help="where generated keys and certificates are cached")
    p.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    add_output_options(p, quiet="only the summary line")


@dataclass(frozen=True)
class DemoResult:
    scenario: str
    description: str
    command: str
    expected: tuple[str, ...]
    found: tuple[str, ...]
    exit_code: int
    elapsed: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and set(self.expected) == set(self.found)


async def check_endpoint(endpoint: Any, root_path: Path) -> DemoResult:
    """Run the scenario's `certdoctor check` command line through the same code path as the CLI."""
    from ..api import diagnose_async

    argv = endpoint.check_argv(root_path)
    scenario = endpoint.scenario
    started = time.perf_counter()
    try:
        parser = Parser(prog="certdoctor check")
        check.add_arguments(parser)
        ns = parser.parse_args(argv[1:])
        target, kwargs = check.request(ns)
        d = await diagnose_async(target, **kwargs)
    except Exception as exc:  # reported in the table, never a traceback
        return DemoResult(
            scenario.name,
            scenario.description,
            shlex.join(["certdoctor", *argv]),
            tuple(sorted(scenario.expected)),
            (),
            2,
            time.perf_counter() - started,
            f"{type(exc).__name__}: {exc}",
        )
    return DemoResult(
        scenario.name,
        scenario.description,
        shlex.join(["certdoctor", *argv]),
        tuple(sorted(scenario.expected)),
        tuple(dict.fromkeys(d.ids())),
        d.exit_code,
        time.perf_counter() - started,
    )


async def check_all(lab: Any, names: list[str] | None = None) -> list[DemoResult]:
    endpoints = [e for e in lab.endpoints.values() if not e.scenario.hostile]
    if names:
        endpoints = [e for e in endpoints if e.scenario.name in names]
    return list(await asyncio.gather(*(check_endpoint(e, lab.root_path) for e in endpoints)))


def run(ns: argparse.Namespace) -> int:
    from ..lab import Lab, LabStartError
    from ..render import clean
    from ..render import json as render_json

    out, err = console(ns), console(ns, stderr=True)

    started = time.perf_counter()
    lab = Lab(Path(ns.state_dir) if ns.state_dir else None, include_hostile=False)
    if not ns.json and not ns.quiet:
        err.print(Text("starting the lab (generated PKI + TLS servers on 127.0.0.1) …", style="dim"))
    try:
        lab.start()
    except LabStartError as exc:
        raise CollectError(f"the lab cannot start: {exc}") from None
    try:
        unknown = set(ns.scenario or ()) - set(lab.endpoints)
        if unknown:
            raise UsageError(f"unknown scenario(s): {', '.join(sorted(unknown))} (see certdoctor lab)")
        results = asyncio.run(check_all(lab, ns.scenario))
    finally:
        lab.stop()
    passed = sum(r.ok for r in results)
    if ns.json:
        print(
            render_json.dumps(
                render_json.document(
                    "demo",
                    {
                        "scenarios": [
                            {
                                "name": r.scenario,
                                "ok": r.ok,
                                "expected": list(r.expected),
                                "found": list(r.found),
                                "exit_code": r.exit_code,
                                "command": r.command,
                                "error": r.error,
                            }
                            for r in results
                        ],
                        "passed": passed,
                        "total": len(results),
                    },
                )
            )
        )
        return 0 if passed == len(results) else 1
    wide = out.width >= 140
    table = Table("scenario", *(["what it shows"] if wide else []), "findings", "exit", "", box=None, pad_edge=False)
    for r in results:
        found = ", ".join(r.found) or "—"
        if not r.ok:
            found += f"  (expected: {', '.join(r.expected) or 'none'})"
            if r.error:
                found += f"  {r.error}"
        cells = [Text(clean(r.description), style="dim")] if wide else []
        table.add_row(
            r.scenario,
            *cells,
            Text(clean(found), style="green" if r.ok else "bold red"),
            str(r.exit_code),
            Text("✓" if r.ok else "✗", style="green" if r.ok else "bold red"),
        )
    if not ns.quiet:
        out.print(table)
        out.print()
    summary = Text(
        f"{passed}/{len(results)} scenarios produced exactly the expected findings",
        style="bold green" if passed == len(results) else "bold red",
    )
    summary.append(f"  ({time.perf_counter() - started:.1f} s)", style="dim")
    out.print(summary)
    if ns.quiet:
        return 0 if passed == len(results) else 1
    out.print(
        Text("Try one yourself: ", style="dim").append("certdoctor lab   (then copy a command it prints)", style="bold")
    )
    return 0 if passed == len(results) else 1
