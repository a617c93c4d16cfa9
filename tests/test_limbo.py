"""x509-limbo as an outside oracle for the judgement layer.

For every SERVER test case where cryptography's own verifier agrees with the expected result: an expected
success gets no error finding, and an expected failure gets an error — or, when every client accepts the chain
(the verdict is the clients', see certdoctor.clients.verdict), a warning that names the non-conformance; never a
silent "valid". Checks run on in-memory evidence, so this exercises the whole judgement
layer — path building, every check and the safety net — on ~9,800 adversarial chains.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from certdoctor.api import judge
from certdoctor.clients.reactions import CLIENT_IDS
from certdoctor.model import Evidence, PresentedChain, Target
from certdoctor.paths import CUSTOM, StoreIndex, verify

PATH_VALIDATORS = tuple(c for c in CLIENT_IDS if c != "java")
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "limbo.json.gz"
ARTIFACTS = Path(os.environ.get("CERTDOCTOR_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))


def _bench_module() -> Any:
    """bench/limbo_noticed.py, which reads a limbo case and judges it as certdoctor does (one reader for both)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "limbo_noticed", Path(__file__).parents[1] / "bench" / "limbo_noticed.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench_module()
_case_inputs = BENCH.case_inputs


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    if not CORPUS.exists():
        pytest.skip(f"x509-limbo corpus not found at {CORPUS}")
    with gzip.open(CORPUS) as fh:
        data = json.loads(fh.read())
    return [t for t in data["testcases"] if t["validation_kind"] == "SERVER"]


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_verdicts_match_limbo(cases):
    stats: collections.Counter[str] = collections.Counter()
    explained: collections.Counter[str] = collections.Counter()
    mismatches: list[str] = []
    for tc in cases:
        if tc.get("max_chain_depth") is not None:
            stats["skipped: max_chain_depth"] += 1
            continue
        try:
            trusted, chain, name, at = _case_inputs(tc)
        except Exception:
            stats["skipped: unparsable"] += 1
            continue
        expected_ok = tc["expected_result"] == "SUCCESS"
        index = StoreIndex((), trusted)
        ref_ok, _, _ = verify(chain[0], chain[1:], index.verifier_store(CUSTOM, trusted), at, name)
        if ref_ok != expected_ok:
            stats["skipped: cryptography disagrees with limbo"] += 1
            continue
        evidence = Evidence(
            target=Target(name=name, files=("limbo",)),
            at=at,
            chains=(PresentedChain(source=tc["id"], certs=tuple(chain), total_received=len(chain)),),
            stores=(),
            extra_roots=tuple(trusted),
        )
        # limbo models a path validator: Java's cap on the certificates in a TLS Certificate message
        # (jdk.tls.maxCertificateChainLength) is a transport limit it does not know, so Java is left out here
        d = judge(evidence, index=index, clients=PATH_VALIDATORS)
        stats["checked"] += 1
        if expected_ok and not d.valid:
            mismatches.append(f"{tc['id']}: expected SUCCESS, got errors {[f.id for f in d.errors]}")
        elif not expected_ok and d.valid:
            # a rejection every client accepts is a warning by design (the verdict is the clients'), but it
            # must be named: never a silent "valid"
            if not d.warnings:
                mismatches.append(f"{tc['id']}: expected FAILURE, got no error or warning: {d.ids()}")
            stats["failure named as a warning only (every client accepts)"] += 1
        if not expected_ok:
            for fid in {f.id for f in d.errors}:
                explained[fid] += 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "limbo-report.json").write_text(
        json.dumps(
            {"stats": stats, "rejections_explained_by": explained.most_common(), "mismatches": mismatches}, indent=2
        )
    )
    assert stats["checked"] > 9000
    assert not mismatches, "\n".join(mismatches[:40])
    # Ratchet: rejections that only the safety net explains (29 of ~8,800 when this was written).
    assert explained["verification-failed"] <= 40, explained
    assert explained["name-constraints-violated"] > 2000


NOTICED_CORPUS = CORPUS.with_name("limbo-nobettertls.json.gz")


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_noticed_without_bettertls():
    """The 198 SERVER cases without bettertls, judged as bench/limbo_noticed.py does (CRLs and maximum depth
    included): an expected FAILURE must carry an error or warning, an expected SUCCESS no error."""
    if not NOTICED_CORPUS.exists():
        pytest.skip(f"x509-limbo corpus not found at {NOTICED_CORPUS}")
    bench = BENCH
    cases = bench.load_cases(NOTICED_CORPUS)
    assert len(cases) == 198
    missed = [tc["id"] for tc in cases if not bench.noticed(tc)[0]]
    assert len(cases) - len(missed) >= 190, missed
    # an expected SUCCESS that now gets an error only from the lints would show here
    assert "crl::revoked-certificate-with-crl" not in missed and "pathlen::max-chain-depth-0-exhausted" not in missed
