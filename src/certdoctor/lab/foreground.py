"""Foreground mode (``certdoctor lab``): run the lab until Ctrl-C, listing every scenario with
ready-to-paste commands (or as one JSON document)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..render import json as render_json
from ..render.escape import clean
from . import pki
from .endpoint import bracket
from .servers import Lab, LabStartError

if TYPE_CHECKING:
    from rich.console import Console


def _block_until_interrupted() -> None:
    while True:
        time.sleep(3600)


def _print_json_listing(lab: Lab) -> None:
    """One JSON document on one line of stdout (then flushed), for scripts that drive the lab."""
    import sys

    doc = render_json.document(
        "lab",
        {
            "root": str(lab.root_path),
            "aia": lab.aia_base_url,
            "ocsp": {slug: lab.ocsp_url(slug) for slug in pki.REVOCATION_SLUGS},
            "crl": {slug: lab.crl_url(slug) for slug in pki.REVOCATION_SLUGS},
            "scenarios": [
                {
                    "name": e.scenario.name,
                    "hostname": e.scenario.hostname,
                    "addresses": list(e.addresses),
                    "port": e.port,
                    "hostile": e.scenario.hostile,
                    "description": e.scenario.description,
                    "expected": sorted(e.scenario.expected),
                    "check_argv": ["certdoctor", *e.check_argv(lab.root_path)],
                    "curl_argv": e.curl_argv(lab.root_path),
                    "scan_line": e.scan_line,
                }
                for e in lab.endpoints.values()
            ],
        },
    )
    sys.stdout.write(render_json.dumps_line(doc) + "\n")
    sys.stdout.flush()


def serve_foreground(
    state_dir: Path | None,
    port_base: int,
    console: Console,
    *,
    json_output: bool = False,
    err: Console | None = None,
    targets_file: Path | None = None,
) -> int:
    """Run the lab until Ctrl-C, printing every scenario with ready-to-paste commands on ``console``.

    ``targets_file``: once the lab is up, the scenarios (hostile ones excepted) are written there as lines of
    ``scan``/``watch import`` input (replacing the file atomically).

    Returns 0 after a clean stop, 2 when the lab cannot start (e.g. a port is in use, or ``port_base`` is out
    of range, or ``targets_file`` cannot be written); the reason is then one line on ``err`` (default: standard
    error, coloured like ``console``).
    """
    from rich.console import Console as RichConsole
    from rich.text import Text

    if err is None:
        err = RichConsole(stderr=True, no_color=console.no_color, highlight=False, emoji=False, markup=False)
    try:
        lab = Lab(state_dir, port_base=port_base, include_hostile=True)
        lab.start()
    except LabStartError as exc:
        err.print(Text("error: ", style="red").append(clean(exc)), soft_wrap=True)
        return 2
    if targets_file is not None:
        lines = "".join(f"{e.scan_line}\n" for e in lab.endpoints.values() if not e.scenario.hostile)
        try:
            partial = targets_file.with_name(f".{targets_file.name}.partial")
            partial.write_text(lines, encoding="utf-8")
            partial.replace(targets_file)
        except OSError as exc:
            lab.stop()
            err.print(Text("error: ", style="red").append(clean(f"cannot write {targets_file}: {exc.strerror or exc}")))
            return 2
    if not lab.owns_state_dir:
        err.print(
            Text(
                clean(
                    f"note: another lab is using {lab.state_dir}; this one keeps its chain files in "
                    f"{lab.files_dir} (deleted when it stops). Use --state-dir for a lab of your own."
                ),
                style="dim",
            ),
            soft_wrap=True,
        )
    try:
        if json_output:
            _print_json_listing(lab)
            _block_until_interrupted()
            return 0
        # One block per scenario; commands on their own unwrapped lines so they can be copied whole.
        console.print(Text("certdoctor lab", style="bold"), Text(f"— {len(lab.endpoints)} scenarios", style="dim"))
        for endpoint in lab.endpoints.values():
            scenario = endpoint.scenario
            address = ",".join(bracket(a) for a in endpoint.addresses) + f":{endpoint.port}"
            head = Text(f"\n{scenario.name}", style="bold")
            head.append(f"  {address}", style="cyan")
            if scenario.hostile:
                head.append("  (hostile)", style="red")
            head.append(f"  {scenario.description}", style="dim")
            console.print(head)
            for argv in (["certdoctor", *endpoint.check_argv(lab.root_path)], endpoint.curl_argv(lab.root_path)):
                console.print(Text("  " + shlex.join(argv)), soft_wrap=True)
        console.print()
        root = shlex.quote(str(lab.root_path))
        console.print(f"Lab root certificate: {lab.root_path}", markup=False, highlight=False)
        console.print(
            f"Trust it explicitly: curl --cacert {root} ...  |  certdoctor check --ca-file {root} ...",
            markup=False,
            highlight=False,
        )
        console.print(
            f"OCSP responders: {lab.aia_base_url}/ocsp/<ca>  CRLs: {lab.aia_base_url}/crl/<ca>.crl  "
            f"(<ca>: {', '.join(pki.REVOCATION_SLUGS)})",
            markup=False,
            highlight=False,
        )
        console.print(
            f"AIA server: {lab.aia_base_url}/  (started in {lab.start_seconds or 0:.2f}s; Ctrl-C to stop)",
            markup=False,
            highlight=False,
        )
        _block_until_interrupted()
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
    return 0
