"""Hostile and broken servers: findings or clean errors, never hangs, tracebacks or terminal injection."""

from __future__ import annotations

import time

import jsonschemas
from certdoctor import diagnose
from certdoctor.cli import main


def argv(lab, name: str, *extra: str) -> list[str]:
    return [*lab.endpoints[name].check_argv(lab.root_path), *extra]


def test_stalling_server_times_out(lab, capsys):
    started = time.monotonic()
    assert main(argv(lab, "stall", "--timeout", "1")) == 3
    assert time.monotonic() - started < 5
    _, err = capsys.readouterr()
    assert "within 1" in err and "Traceback" not in err


def test_garbage_server_is_a_handshake_error(lab, capsys):
    assert main(argv(lab, "garbage", "--timeout", "3", "--json")) == 3
    out, err = capsys.readouterr()
    doc = jsonschemas.loads(out)
    assert doc["verdict"] == "unreachable"
    assert [f["id"] for f in doc["findings"]] == ["handshake-failed"]
    assert doc["endpoints"][0]["error_kind"] == "not-tls"
    assert "Traceback" not in err


def test_ten_thousand_certificates_are_refused_cleanly(lab, capsys):
    assert main(argv(lab, "huge-chain", "--timeout", "10")) == 3
    _, err = capsys.readouterr()
    assert "excessive message size" in err.lower() or "too large" in err.lower() or "more than" in err.lower()


def test_many_certificates_are_capped(lab):
    ep = lab.endpoints["many-certs"]
    d = diagnose(f"{ep.scenario.hostname}:{ep.port}", resolve=list(ep.addresses), ca_files=[str(lab.root_path)])
    assert set(d.ids()) == {"extra-cert", "chain-truncated"}
    (report,) = d.reports
    assert report.chain.total_received == 52 and len(report.chain.certs) == 32
    assert report.analysis.trusted


def test_escape_sequences_and_markup_in_certificates_are_neutralised(lab, capsys):
    assert main(argv(lab, "evil-fields")) == 0
    out, _ = capsys.readouterr()
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b" in out  # shown, visibly escaped
    assert "[bold red]markup[/bold red]" in out  # printed literally, not interpreted
    assert main(argv(lab, "evil-fields", "--json")) == 0
    out, _ = capsys.readouterr()
    assert "\x1b" not in out
    presented = jsonschemas.loads(out)["chains"][0]["presented"][0]
    assert "\x1b[2J" in presented["subject"]  # JSON keeps the real value, escaped by the encoder
    # the HTML-hostile SANs come after the scenario's own name, which keeps the chain valid (exit 0 above)
    assert presented["dns_names"][1:] == ['"><img src=x onerror=alert(1)>', "<script>alert(2)</script>"]
