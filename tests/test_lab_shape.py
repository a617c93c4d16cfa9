"""The lab's shape (issue 14): no import cycle inside the package, the port range checked before any work,
start errors on stderr, and a running lab owning its state directory."""

from __future__ import annotations

import ast
import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import certdoctor.lab
from certdoctor.lab import SCENARIOS, Lab, LabStartError, serve_foreground

LAB_PACKAGE = Path(certdoctor.lab.__file__).parent


def _free_base(span: int = 0) -> int:
    """A port base with ``span`` free ports above it (default: what a lab with every scenario needs)."""
    span = span or len(SCENARIOS) + 2
    for base in range(21000, 60000, 89):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + span):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


# --- 1. no import cycle among the lab's modules ---------------------------------------------------------


def _lab_imports() -> dict[str, set[str]]:
    """Module -> the lab modules it imports, statically: every import statement, TYPE_CHECKING ones too."""
    modules = {p.stem for p in LAB_PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        tree = ast.parse((LAB_PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    if node.module is None:  # from . import a, b
                        targets = [alias.name for alias in node.names]
                    else:  # from .a import x / from .a.b import x
                        targets = [node.module.split(".")[0]]
                elif node.level == 0 and (node.module or "").startswith("certdoctor.lab."):
                    targets = [node.module.split(".")[2]]  # type: ignore[union-attr]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[2] for a in node.names if a.name.startswith("certdoctor.lab.")]
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_lab_modules_import_each_other_without_a_cycle() -> None:
    graph = _lab_imports()
    assert {"pki", "revocation", "servers", "scenarios"} <= set(graph)
    assert "revocation" in graph["pki"]  # the checker does see the lab's imports
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or ())


def test_cycle_checker_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# --- 2. the port range is checked before anything is generated ------------------------------------------


def test_port_base_above_the_port_range_is_refused_up_front(tmp_path: Path) -> None:
    state = tmp_path / "state"
    last = 70000 + len(SCENARIOS)
    with pytest.raises(LabStartError) as info:
        Lab(state, port_base=70000)
    assert str(info.value) == f"lab: port base 70000: the lab needs ports 70000-{last}, above 65535"
    assert not state.exists()


@pytest.mark.parametrize("base", [65536 - len(SCENARIOS), 65535, 65536, -1, -8440])
def test_port_bases_outside_the_range_are_refused(tmp_path: Path, base: int) -> None:
    with pytest.raises(LabStartError, match=rf"^lab: port base {base}: ") as info:
        Lab(tmp_path / "state", port_base=base)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "state").exists()


def test_the_highest_port_base_fits(tmp_path: Path) -> None:
    lab = Lab(tmp_path, port_base=65535 - len(SCENARIOS))
    assert max(lab._port_for(s) for s in lab.scenarios) == 65535
    Lab(tmp_path, port_base=0)  # free ports
    Lab(tmp_path, port_base=1)


def test_foreground_with_a_bad_port_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_foreground(tmp_path / "state", 70000, Console()) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert "port base 70000" in err and "above 65535" in err
    assert not (tmp_path / "state").exists()


def test_cli_lab_with_a_bad_port_base(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "certdoctor.cli", "lab", "--port-base", "70000", "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr
    assert result.stderr.count("\n") == 1 and "port base 70000" in result.stderr
    assert not (tmp_path / "s").exists()


# --- 3. serve_foreground reports start errors on stderr, escaped ----------------------------------------


def test_foreground_busy_port_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _free_base()
    with Lab(tmp_path / "a", port_base=base, include_hostile=False):
        # Same positional signature as the CLI's call; the default error console writes to sys.stderr.
        code = serve_foreground(tmp_path / "b", base, Console(), json_output=False)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert f"127.0.0.1:{base}" in err and "already in use" in err


def test_foreground_busy_port_with_an_error_console(tmp_path: Path) -> None:
    base = _free_base()
    out, err = io.StringIO(), io.StringIO()
    with Lab(tmp_path / "a", port_base=base, include_hostile=False):
        code = serve_foreground(
            tmp_path / "b", base, Console(file=out, width=40), json_output=True, err=Console(file=err, width=40)
        )
    assert code == 2
    assert out.getvalue() == ""
    # One line even on a narrow console: an error is never wrapped.
    assert err.getvalue().count("\n") == 1 and "already in use" in err.getvalue()


def test_foreground_error_text_is_escaped(tmp_path: Path) -> None:
    blocker = tmp_path / "evil\x1b]8;;x\x07name\x1b[2J"
    blocker.write_text("a file, not a directory\n")
    out, err = io.StringIO(), io.StringIO()
    code = serve_foreground(blocker / "state", 0, Console(file=out), err=Console(file=err))
    assert code == 2
    assert out.getvalue() == ""
    text = err.getvalue()
    assert text.count("\n") == 1
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b]8;;x\\x07name\\x1b[2J" in text
    assert "--state-dir" in text
