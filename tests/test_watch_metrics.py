"""``certdoctor watch`` metrics: the Prometheus exposition of lab targets stored by a real pass (SQLite and
PostgreSQL), parsed by prometheus_client's own parser and accepted by ``promtool check metrics``; the example
alerting rules accepted by ``promtool check rules`` and their unit tests passed by ``promtool test rules``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from certdoctor.cli import main
from certdoctor.lab import Lab
from certdoctor.watch import Store, run_pass
from certdoctor.watch.metrics import CONTENT_TYPE, PassInfo, render_metrics
from netutil import free_port
from test_watch import lab_options, spec, watch_db  # noqa: F401  (watch_db: the SQLite/PostgreSQL fixture)

RULES = Path(__file__).resolve().parent.parent / "contrib" / "prometheus"
NAMES = ["good-rsa", "expiring-soon", "expired", "expired-intermediate"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: bytes) -> Samples:
    """(metric name, labels) → value, through prometheus_client's text parser (it raises on a malformed line)."""
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not installed (Debian's package prometheus; .ci/run installs it)")
    return subprocess.run([exe, *args], input=stdin, capture_output=True, timeout=60, check=False)


@pytest.fixture
def watched(lab: Lab, watch_db: str) -> Iterator[tuple[Store, str]]:  # noqa: F811
    """A store holding one real pass over four lab scenarios and a refused port; and the refused target."""
    refused = f"refused.test:{free_port()},addr=127.0.0.1"
    with Store(watch_db) as store:
        store.add([spec(lab, n) for n in NAMES] + [refused], every=900)
        result = run_pass(store, lab_options(lab), retries=0)
        assert result.checked == 5 and dict(result.verdicts) == {"valid": 2, "invalid": 2, "unreachable": 1}
        yield store, refused


def test_exposition_of_a_pass_over_the_lab(lab: Lab, watched: tuple[Store, str]) -> None:
    store, refused = watched
    before = datetime.now(UTC)
    body = render_metrics(store)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    s = parse(body)
    now = before.timestamp()
    day = 86400.0
    expired, inter = spec(lab, "expired"), spec(lab, "expired-intermediate")
    good, soon = spec(lab, "good-rsa"), spec(lab, "expiring-soon")

    # the expired scenario: judged (reachable), invalid, its leaf's notAfter 30 days ago, every client rejects
    assert value(s, "certdoctor_target_reachable", target=expired) == 1
    assert value(s, "certdoctor_target_valid", target=expired) == 0
    assert value(s, "certdoctor_cert_not_after_seconds", target=expired) == pytest.approx(now - 30 * day, abs=day / 5)
    assert value(s, "certdoctor_client_accepts", target=expired, client="curl") == 0
    assert value(s, "certdoctor_client_accepts", target=expired, client="chrome") == 0
    assert value(s, "certdoctor_finding", target=expired, finding="expired", severity="error") == 1
    # an intermediate that expired 10 days ago: the leaf is fine, the chain's earliest notAfter is past
    assert value(s, "certdoctor_cert_not_after_seconds", target=inter) > now  # type: ignore[operator]
    assert value(s, "certdoctor_chain_earliest_not_after_seconds", target=inter) == pytest.approx(
        now - 10 * day, abs=day / 5
    )
    assert value(s, "certdoctor_finding", target=inter, finding="intermediate-expired", severity="error") == 1
    # valid ones: every client family accepts; expiring-soon is valid with its warning
    assert value(s, "certdoctor_target_valid", target=good) == 1
    clients = {dict(k[1])["client"]: v for k, v in s.items() if k[0] == "certdoctor_client_accepts"}
    assert {"curl", "python", "chrome", "java", "go"} <= set(clients)
    assert all(v == 1 for (n, lb), v in s.items() if n == "certdoctor_client_accepts" and ("target", good) in lb)
    assert value(s, "certdoctor_target_valid", target=soon) == 1
    assert value(s, "certdoctor_finding", target=soon, finding="expiring-soon", severity="warning") == 1
    soon_left = value(s, "certdoctor_chain_earliest_not_after_seconds", target=soon) - now  # type: ignore[operator]
    assert 0 < soon_left < 30 * day
    assert not [k for k in s if k[0] == "certdoctor_finding" and ("target", good) in k[1]]
    # unreachable: reachable 0 and no verdict, notAfter or client series (down is not invalid), its finding
    assert value(s, "certdoctor_target_reachable", target=refused) == 0
    assert value(s, "certdoctor_finding", target=refused, finding="connection-failed", severity="error") == 1
    assert [k[0] for k in s if ("target", refused) in k[1]] == [
        "certdoctor_target_reachable",
        "certdoctor_finding",
        "certdoctor_last_check_timestamp_seconds",
        "certdoctor_check_duration_seconds",
        "certdoctor_check_interval_seconds",
    ]
    # the check's time is the stored observation's; the interval is --every
    _, observations, _ = store.history(expired)
    checked_at = datetime.fromisoformat(observations[0]["at"]).timestamp()
    assert value(s, "certdoctor_last_check_timestamp_seconds", target=expired) == pytest.approx(checked_at)
    assert value(s, "certdoctor_check_duration_seconds", target=expired) == pytest.approx(
        observations[0]["duration_ms"] / 1000
    )
    assert value(s, "certdoctor_check_interval_seconds", target=expired) == 900
    # the store's health
    assert value(s, "certdoctor_store_up") == 1
    assert value(s, "certdoctor_targets") == 5 and value(s, "certdoctor_targets_due") == 0
    assert value(s, "certdoctor_targets_unchecked") == 0 and value(s, "certdoctor_targets_invalid") == 2
    assert value(s, "certdoctor_targets_unreachable") == 1
    newest = max(v for k, v in s.items() if k[0] == "certdoctor_last_check_timestamp_seconds")
    assert value(s, "certdoctor_last_observation_timestamp_seconds") == newest
    assert not [k for k in s if k[0].startswith("certdoctor_last_pass_")]  # no pass run by this process

    check = promtool("check", "metrics", stdin=body)
    assert check.returncode == 0, check.stdout + check.stderr

    # a pass this process ran; targets that become due
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    s = parse(render_metrics(store, PassInfo(at, 1.5, 5)))
    assert value(s, "certdoctor_last_pass_timestamp_seconds") == at.timestamp()
    assert value(s, "certdoctor_last_pass_duration_seconds") == 1.5
    assert value(s, "certdoctor_last_pass_checked_targets") == 5
    again = run_pass(store, lab_options(lab), retries=0)  # nothing due: a pass that checked nothing
    s = parse(render_metrics(store, PassInfo.of(again, at)))
    assert value(s, "certdoctor_last_pass_checked_targets") == 0
    assert value(s, "certdoctor_last_pass_timestamp_seconds") == at.timestamp()
    store.add(["new.example"], every=900)
    s = parse(render_metrics(store))
    assert value(s, "certdoctor_targets") == 6 and value(s, "certdoctor_targets_due") == 1
    assert value(s, "certdoctor_targets_unchecked") == 1
    assert [k[0] for k in s if ("target", "new.example") in k[1]] == ["certdoctor_check_interval_seconds"]


def test_cli_prints_and_writes_the_exposition(
    lab: Lab,
    watched: tuple[Store, str],
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    store, _ = watched
    db = ["--db", store.url]
    assert main(["watch", "metrics", *db]) == 0
    printed = parse(capsysbinary.readouterr().out)
    assert value(printed, "certdoctor_target_valid", target=spec(lab, "expired")) == 0
    out = tmp_path / "textfile" / "certdoctor.prom"
    out.parent.mkdir()
    assert main(["watch", "metrics", "-o", str(out), *db]) == 0
    assert capsysbinary.readouterr().out == b""
    written = parse(out.read_bytes())
    assert list(out.parent.iterdir()) == [out]  # the temporary file was renamed over it
    read_time = "certdoctor_metrics_read_duration_seconds"
    assert {k: v for k, v in written.items() if k[0] != read_time} == {
        k: v for k, v in printed.items() if k[0] != read_time
    }
    assert main(["watch", "metrics", "-o", str(tmp_path / "missing" / "x.prom"), *db]) == 2
    assert "--output" in capsysbinary.readouterr().err.decode()


def test_a_database_that_cannot_be_read_is_store_up_0(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.add(["example.com"])
        store.engine.dispose()
        store.engine = sa.create_engine(f"sqlite:///file:{tmp_path / 'missing' / 'w.db'}?mode=ro&uri=true")
        s = parse(render_metrics(store))
    assert s == {("certdoctor_store_up", frozenset()): 0}


def test_promtool_accepts_the_example_rules_and_their_unit_tests() -> None:
    check = promtool("check", "rules", str(RULES / "certdoctor-rules.yml"))
    assert check.returncode == 0 and b"SUCCESS: 6 rules found" in check.stdout, check.stdout + check.stderr
    # the expiring alert fires after its `for:` on a chain with 10 days left, not on 100 days or an expired one
    test = promtool("test", "rules", str(RULES / "certdoctor-rules.test.yml"))
    assert test.returncode == 0, test.stdout + test.stderr


def test_the_expiry_threshold_is_what_the_rule_says(tmp_path: Path) -> None:
    """The rules' unit test really evaluates: the same series with 20 days left makes it fail."""
    test = (RULES / "certdoctor-rules.test.yml").read_text(encoding="utf-8")
    assert "'864000x180'" in test
    (tmp_path / "certdoctor-rules.yml").write_bytes((RULES / "certdoctor-rules.yml").read_bytes())
    (tmp_path / "t.yml").write_text(test.replace("'864000x180'", f"'{20 * 86400}x180'"), encoding="utf-8")
    result = promtool("test", "rules", str(tmp_path / "t.yml"))
    assert result.returncode != 0 and b"CertdoctorCertificateExpiringSoon" in result.stdout + result.stderr
