"""Shared fixtures: one lab (real TLS servers on loopback) for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from certdoctor.lab import Lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Every lab scenario (hostile ones included), started once per test session."""
    with Lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


@pytest.fixture(scope="session")
def lab_root(lab: Lab) -> Path:
    """The lab root certificate (PEM): pass it as --ca-file / --cacert."""
    return lab.root_path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the real-client conformance matrix (written by test_clients_real) at the end of the run."""
    from test_clients_real import ARTIFACT, written_this_session

    if written_this_session() and ARTIFACT.exists():
        terminalreporter.section("client predictions vs real clients")
        terminalreporter.write(ARTIFACT.read_text(encoding="utf-8"))
