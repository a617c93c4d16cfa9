"""The lab's shape (issue 14): no import cycle inside the package, the port range checked before any work,
start errors on stderr, and a running lab owning its state directory."""

from __future__ import annotations

import ast
import hashlib
import io
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from rich.console import Console

import certdoctor.lab
from certdoctor.lab import SCENARIOS, Lab, LabStartError, serve_foreground
from certdoctor.lab.pki import LabPKI
from netutil import free_port_range

LAB_PACKAGE = Path(certdoctor.lab.__file__).parent


def _free_base(span: int = 0) -> int:
    """A port base with ``span`` free ports above it (default: what a lab with every scenario needs)."""
    return free_port_range(span or len(SCENARIOS) + 2, start=21000)


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


@pytest.mark.parametrize("base", [70000, 65500])
def test_cli_lab_with_a_bad_port_base(tmp_path: Path, base: int) -> None:
    # 70000 may also be refused by the argument parser (not a port); 65500 is a port, but the lab's do not fit.
    state = tmp_path / "s"
    result = subprocess.run(
        [sys.executable, "-m", "certdoctor.cli", "lab", "--port-base", str(base), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr
    assert not state.exists()
    if base == 65500:
        assert result.stderr.count("\n") == 1 and "port base 65500" in result.stderr


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


# --- 4. a running lab owns its state directory ----------------------------------------------------------


def _snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _verified_leaf(lab: Lab, name: str) -> x509.Certificate:
    """The leaf ``lab`` serves for scenario ``name``, after ``ssl`` verified the chain against the lab's root file."""
    endpoint = lab.endpoints[name]
    ctx = ssl.create_default_context(cafile=str(lab.root_path))
    with (
        socket.create_connection((endpoint.addresses[0], endpoint.port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=endpoint.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _served_leaf(lab: Lab, name: str) -> x509.Certificate:
    endpoint = lab.endpoints[name]
    return x509.load_pem_x509_certificates(endpoint.chain_path.read_bytes())[0]


def _openssl_verify(lab: Lab, name: str) -> subprocess.CompletedProcess[str]:
    endpoint = lab.endpoints[name]
    return subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"{endpoint.addresses[0]}:{endpoint.port}",
            "-servername",
            endpoint.hostname,
            "-verify_hostname",
            endpoint.hostname,
            "-CAfile",
            str(lab.root_path),
            "-verify_return_error",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_second_lab_on_the_same_state_dir_leaves_the_running_one_alone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Lab(state, include_hostile=False) as first:
        assert first.owns_state_dir
        before = _snapshot(state)
        assert "lab-root.pem" in before and "chains/good-rsa.pem" in before and "chains/good-rsa.key" in before
        served_before = _served_leaf(first, "good-rsa")

        # The second lab has more scenarios (hostile ones: keys the first never made) and runs a while.
        second = Lab(state, include_hostile=True)
        with second:
            assert not second.owns_state_dir
            assert second.root_path == first.root_path  # the same trusted root, not rewritten
            for endpoint in second.endpoints.values():
                assert not endpoint.chain_path.is_relative_to(state)
            assert second.root == first.root
            second_leaf = _verified_leaf(second, "good-rsa")
            assert second_leaf != served_before and second_leaf == _served_leaf(second, "good-rsa")  # its own files
            private = second.endpoints["good-rsa"].chain_path.parent
            assert private.is_dir()
        assert not private.exists()  # removed on stop

        assert _snapshot(state) == before
        assert _verified_leaf(first, "good-rsa") == served_before == _served_leaf(first, "good-rsa")
        assert first.root.fingerprint(hashes.SHA256()) == x509.load_pem_x509_certificate(
            first.root_path.read_bytes()
        ).fingerprint(hashes.SHA256())
        verified = _openssl_verify(first, "good-two-level")
        assert "Verify return code: 0 (ok)" in verified.stdout, verified.stdout + verified.stderr

    # Stopped: the state directory is free again, and the next lab owns it (and rewrites its chains).
    with Lab(state, include_hostile=False) as third:
        assert third.owns_state_dir
        assert third.endpoints["good-rsa"].chain_path == state / "chains" / "good-rsa.pem"
        assert third.root == first.root
        assert _verified_leaf(third, "good-rsa") == _served_leaf(third, "good-rsa")


def test_the_lock_is_released_when_start_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no PKI today")

    with monkeypatch.context() as patch:
        patch.setattr(LabPKI, "__init__", fail)
        lab = Lab(tmp_path, include_hostile=False)
        with pytest.raises(RuntimeError, match="no PKI today"):
            lab.start()
        assert not lab.owns_state_dir
    with Lab(tmp_path, include_hostile=False) as again:
        assert again.owns_state_dir


def test_read_only_pki_writes_nothing(tmp_path: Path) -> None:
    pki = LabPKI(tmp_path, "http://127.0.0.1:1", write=False)
    leaf, _ = pki.issue_leaf(key_name="leaf-x", dns_names=["x.certdoctor.test"], common_name="x.certdoctor.test")
    assert leaf.issuer == pki.issuers["lab-rsa-ca"].cert.subject
    assert not pki.root_reused
    assert list(tmp_path.iterdir()) == []
    # ... but it reads (and reuses) what a writing PKI cached.
    LabPKI(tmp_path, "http://127.0.0.1:2")
    before = _snapshot(tmp_path)
    again = LabPKI(tmp_path, "http://127.0.0.1:3", write=False)
    assert again.root_reused and again.keys.generated == 0
    assert _snapshot(tmp_path) == before


def test_foreground_on_a_state_dir_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules[serve_foreground.__module__], "_block_until_interrupted", interrupt)
    state = tmp_path / "state"
    with Lab(state, include_hostile=False) as running:
        before = _snapshot(state)
        assert serve_foreground(state, 0, Console(width=400)) == 0
        assert _snapshot(state) == before
        assert _verified_leaf(running, "good-rsa") == _served_leaf(running, "good-rsa")
    out, err = capsys.readouterr()
    assert f"Lab root certificate: {running.root_path}" in out  # the shared root: users trust one file
    assert err.count("\n") == 1 and "another lab is using" in err and "--state-dir" in err


# --- 5. servers.py split along its seams ----------------------------------------------------------------


def test_the_lab_package_api_survives_the_split() -> None:
    import importlib

    from certdoctor.lab import Endpoint, Scenario

    lab_modules = {
        name: importlib.import_module(f"certdoctor.lab.{name}")
        for name in ("httpd", "memtls", "endpoint", "chains", "aia", "listeners", "servers", "foreground")
    }
    assert certdoctor.lab.__all__ == ["SCENARIOS", "Endpoint", "Lab", "LabStartError", "Scenario", "serve_foreground"]
    assert Endpoint is lab_modules["endpoint"].Endpoint and Scenario is certdoctor.lab.scenarios.Scenario
    assert serve_foreground is lab_modules["foreground"].serve_foreground
    assert Lab is lab_modules["servers"].Lab and LabStartError is lab_modules["servers"].LabStartError
    # Names other code imports from servers keep working.
    assert lab_modules["servers"].HttpResponse is lab_modules["httpd"].HttpResponse
    assert lab_modules["servers"].Endpoint is Endpoint
    # Each seam is its own module: Lab only assembles (no event loop, no OpenSSL, no printing in servers.py).
    source = (LAB_PACKAGE / "servers.py").read_text(encoding="utf-8")
    for absent in ("import asyncio", "from OpenSSL", "rich", "def serve_foreground", "class MemoryTLS"):
        assert absent not in source
    assert lab_modules["listeners"].ServerThread and lab_modules["chains"].ChainBuilder
    assert lab_modules["aia"].add_revocation_routes and lab_modules["httpd"].Router
