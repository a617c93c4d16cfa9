"""What the STARTTLS tests expect of the lab chains their real servers serve, and the `check` call they make
(tests/test_starttls.py, test_starttls_db.py, test_starttls_dir.py)."""

from __future__ import annotations

from typing import Any

import pytest

import jsonschemas
from certdoctor.cli import main
from certdoctor.lab import Lab

# Per lab chain the servers serve (conftest.MAIL_CHAINS): the error findings and whether every client accepts.
EXPECTED = {"good-rsa": (), "incomplete-no-aia": ("missing-intermediate",), "expired": ("expired",)}
ACCEPTED = {"good-rsa": True, "incomplete-no-aia": False, "expired": False}


def check_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    """`certdoctor ARGV --json` in this process: (exit code, the validated JSON document)."""
    code = main([*argv, "--json"])
    return code, jsonschemas.loads(capsys.readouterr().out)


def ids(doc: dict[str, Any]) -> tuple[str, ...]:
    """The error findings' ids, sorted."""
    return tuple(sorted(f["id"] for f in doc["findings"] if f["severity"] == "error"))


def lab_argv(lab: Lab, scheme: str, name: str, port: int, *extra: str) -> list[str]:
    """`check SCHEME://HOST:PORT` for lab chain ``name`` served on 127.0.0.1:``port``, trusting the lab root."""
    host = lab.endpoints[name].hostname
    return [
        "check",
        f"{scheme}://{host}:{port}",
        "--resolve",
        f"{host}:{port}:127.0.0.1",
        "--ca-file",
        str(lab.root_path),
        "--no-revocation",
        *extra,
    ]


def assert_verdict(doc: dict[str, Any], code: int, name: str, protocol: str | None) -> None:
    """The document of a check of lab chain ``name`` has its expected findings, verdict, exit code and protocol."""
    assert ids(doc) == EXPECTED[name], doc["findings"]
    assert doc["verdict"] == ("valid" if ACCEPTED[name] else "invalid") and code == (0 if ACCEPTED[name] else 1)
    assert doc["target"]["starttls"] == protocol
    [endpoint] = doc["endpoints"]
    assert endpoint["ok"] and endpoint["error_kind"] is None
    if protocol is None:
        assert endpoint["starttls"] is None
    else:
        assert endpoint["starttls"]["protocol"] == protocol and endpoint["starttls"]["stage"] is None
