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
