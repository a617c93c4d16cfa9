"""Conformance: certdoctor's per-client predictions against the real clients, on every lab scenario.

Every lab endpoint (and each address of multi-address) is probed by each real client installed here —
curl, Python ssl, Node, Java, Go and headless Chromium — trusting only the lab root. certdoctor diagnoses the
same endpoint and predicts, per client, accept/reject, the error family and the error text. The test
asserts, for every row: same verdict; the real error text is recognised by ``certdoctor explain`` as the
predicted family; and, where the text is stable (no timestamps, hex ids or network detail), the predicted
text appears in what the client printed.

The scenario × client matrix (predicted vs real) is written to ``artifacts/client-matrix.md`` and printed
at the end of the pytest run. A client missing on this machine is skipped with the reason, never passed.
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from certdoctor import diagnose
from certdoctor.clients import ClientVerdict, predict
from certdoctor.clients.explain import classify
from certdoctor.lab import Lab
from realclients import Outcome, Probe, RealClient

CLIENT_MODULES = {
    "curl": "curl",
    "python": "python",
    "node": "node",
    "java": "java",
    "go": "go",
    "chrome": "chromium",
    "firefox": "firefox",
}
ARTIFACT = Path(__file__).resolve().parent.parent / "artifacts" / "client-matrix.md"
VOLATILE_FAMILIES = {"protocol", "network"}  # texts carry sizes, hex ids, socket detail
_written: list[Path] = []


def written_this_session() -> bool:
    return bool(_written)


@dataclass
class Row:
    probe: Probe
    predicted: ClientVerdict
    real: Outcome | None = None


@dataclass
class ClientRun:
    client: RealClient | None
    version: str = ""
    skipped: str | None = None
    error: str | None = None
    outcomes: list[Outcome] | None = None


def _probes(lab: Lab) -> list[Probe]:
    return [Probe(ep.name, ep.hostname, address, ep.port, str(lab.root_path)) for ep in lab for address in ep.addresses]


def _predict(lab: Lab, probe: Probe) -> dict[str, ClientVerdict]:
    host = probe.hostname
    d = diagnose(
        host if not host[0].isdigit() else probe.address,
        port=probe.port,
        resolve=[probe.address],
        ca_files=[str(lab.root_path)],
        timeout=3.0,
    )
    return {v.client: v for v in predict(d)}


def _run_client(module: str, probes: list[Probe]) -> ClientRun:
    client: RealClient = importlib.import_module(f"realclients.{module}").CLIENT
    reason = client.unavailable()
    if reason:
        return ClientRun(client, skipped=reason)
    try:
        return ClientRun(client, version=client.version(), outcomes=client.run(probes))
    except Exception as exc:  # reported as a test failure, not a skip
        return ClientRun(client, error=f"{type(exc).__name__}: {exc}")


@pytest.fixture(scope="session")
def conformance(lab: Lab) -> tuple[list[Probe], dict[tuple[str, str], dict[str, ClientVerdict]], dict[str, ClientRun]]:
    probes = _probes(lab)
    runs: dict[str, ClientRun] = {}

    def worker(cid: str, module: str) -> None:
        runs[cid] = _run_client(module, probes)

    threads = [threading.Thread(target=worker, args=item) for item in CLIENT_MODULES.items()]
    for t in threads:
        t.start()
    predictions = {(p.scenario, p.address): _predict(lab, p) for p in probes}
    for t in threads:
        t.join()
    _write_matrix(probes, predictions, runs)
    return probes, predictions, runs


def _norm(text: str) -> str:
    text = re.sub(r"\(_ssl\.c:\d+\)", "", text)
    return re.sub(r"\d", "#", text).strip()


def mismatch(cid: str, predicted: ClientVerdict, real: Outcome) -> str | None:
    """Why a prediction differs from what the real client did (None when it matches)."""
    if predicted.accepts != real.accepted:
        said = "accepted" if real.accepted else f"rejected: {real.error}"
        return f"predicted {'accept' if predicted.accepts else 'reject: ' + str(predicted.error)}; real {said}"
    if real.accepted:
        return None
    family = classify(real.error, cid)
    if family is None:
        return f"certdoctor explain does not recognise the real error {real.error!r}"
    expected = classify(predicted.error or "", cid)
    if family != expected:
        return f"family: predicted {expected} ({predicted.error!r}), real {family} ({real.error!r})"
    if predicted.family not in VOLATILE_FAMILIES and _norm(predicted.error or "") not in _norm(real.error):
        return f"text: predicted {predicted.error!r}, real {real.error!r}"
    return None


def _cell(v: ClientVerdict | None, o: Outcome | None) -> str:
    if v is None:
        return "–"
    pred = "accept" if v.accepts else f"reject ({classify(v.error or '', v.client)})"
    if o is None:
        return f"{pred} / not run"
    real = "accept" if o.accepted else f"reject ({classify(o.error, v.client) or '?'})"
    mark = "✓" if mismatch_safe(v, o) else "✗"
    return f"{mark} {pred} / {real}"


def mismatch_safe(v: ClientVerdict, o: Outcome) -> bool:
    return mismatch(v.client, v, o) is None


def _write_matrix(
    probes: list[Probe], predictions: dict[tuple[str, str], dict[str, ClientVerdict]], runs: dict[str, ClientRun]
) -> None:
    cids = list(CLIENT_MODULES)
    lines = [
        "# certdoctor client predictions vs real clients",
        "",
        "Each cell: match mark, predicted / real (error family). Clients: "
        + "; ".join(
            f"{cid}: {runs[cid].version or runs[cid].skipped or runs[cid].error}" for cid in cids if cid in runs
        ),
        "",
        "| scenario | address | " + " | ".join(cids) + " |",
        "|---|---|" + "---|" * len(cids),
    ]
    for i, p in enumerate(probes):
        cells = []
        for cid in cids:
            run = runs.get(cid)
            outcome = run.outcomes[i] if run and run.outcomes else None
            cells.append(_cell(predictions[(p.scenario, p.address)].get(cid), outcome))
        lines.append(f"| {p.scenario} | {p.address} | " + " | ".join(cells) + " |")
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _written.append(ARTIFACT)


@pytest.mark.parametrize("cid", list(CLIENT_MODULES))
def test_prediction_matches_real_client(cid: str, conformance) -> None:  # type: ignore[no-untyped-def]
    probes, predictions, runs = conformance
    run = runs[cid]
    if run.skipped:
        pytest.skip(f"{cid}: {run.skipped}")
    assert run.error is None, run.error
    assert run.outcomes is not None and len(run.outcomes) == len(probes)
    problems = []
    for probe, outcome in zip(probes, run.outcomes, strict=True):
        predicted = predictions[(probe.scenario, probe.address)][cid]
        why = mismatch(cid, predicted, outcome)
        if why:
            problems.append(f"{probe.scenario} @ {probe.address}: {why}")
    assert not problems, f"{cid} ({run.version}): " + "\n".join(problems)
    rejected = sum(1 for o in run.outcomes if not o.accepted)
    assert rejected >= 10, "the lab should make every client reject many scenarios"


def test_matrix_artifact_written(conformance) -> None:  # type: ignore[no-untyped-def]
    probes, _, _ = conformance
    text = ARTIFACT.read_text(encoding="utf-8")
    assert "| incomplete-aia | 127.0.0.1 |" in text
    assert text.count("\n| ") >= len(probes)
