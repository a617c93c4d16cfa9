"""How many x509-limbo SERVER cases (without bettertls) certdoctor *notices*.

A case is noticed when certdoctor's judgement agrees with its expected result in the diagnostician's sense:
for an expected FAILURE, at least one finding of severity error or warning; for an expected SUCCESS, no
error finding (warnings are fine). Corpus: ``../shared/corpora/limbo-nobettertls.json.gz`` (198 SERVER
cases of 208). Prints the figure and every missed case id with its description.

    PYTHONPATH=src python bench/limbo_noticed.py [CORPUS] [--json]
"""

from __future__ import annotations

import dataclasses
import gzip
import ipaddress
import json
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certdoctor.api import judge
from certdoctor.model import Evidence, PresentedChain, Severity, Target
from certdoctor.paths import StoreIndex

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "limbo-nobettertls.json.gz"


def load_cases(path: Path = CORPUS) -> list[dict[str, Any]]:
    """The SERVER test cases of a limbo JSON (gzip) file."""
    with gzip.open(path) as fh:
        data = json.loads(fh.read())
    return [t for t in data["testcases"] if t["validation_kind"] == "SERVER"]


def _load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _extras(crls: tuple[tuple[str, bytes], ...], depth: int | None) -> dict[str, Any]:
    """The Evidence fields for the case's CRLs and maximum depth, where this certdoctor has them."""
    have = {f.name for f in dataclasses.fields(Evidence)}
    extras = {"crls": crls, "max_chain_depth": depth}
    return {k: v for k, v in extras.items() if k in have}


def case_inputs(tc: dict[str, Any]) -> tuple[list[x509.Certificate], list[x509.Certificate], str | None, datetime]:
    """(trusted roots, chain leaf first, the expected peer name or None, the validation time) of one limbo case;
    raises on an unparsable certificate."""
    trusted = [_load(p) for p in tc["trusted_certs"]]
    chain = [_load(tc["peer_certificate"]), *(_load(p) for p in tc["untrusted_intermediates"])]
    peer = tc["expected_peer_name"]
    name = None
    if peer:
        name = str(ipaddress.ip_address(peer["value"])) if peer["kind"] == "IP" else peer["value"]
    at = datetime.fromisoformat(tc["validation_time"]) if tc["validation_time"] else datetime.now().astimezone()
    return trusted, chain, name, at


def judge_case(tc: dict[str, Any]):
    """certdoctor's Diagnosis of one limbo case (in memory: trusted certs as extra roots, the case's time,
    peer name, CRLs and maximum chain depth); raises on an unparsable certificate."""
    trusted, chain, name, at = case_inputs(tc)
    crls = tuple(
        (f"crl-{i}.pem", x509.load_pem_x509_crl(p.encode()).public_bytes(Encoding.DER))
        for i, p in enumerate(tc.get("crls") or ())
    )
    evidence = Evidence(
        target=Target(name=name, files=("limbo",)),
        at=at,
        chains=(PresentedChain(source=tc["id"], certs=tuple(chain), total_received=len(chain)),),
        stores=(),
        extra_roots=tuple(trusted),
        **_extras(crls, tc.get("max_chain_depth")),
    )
    return judge(evidence, index=StoreIndex((), trusted))


def noticed(tc: dict[str, Any]) -> tuple[bool, list[str]]:
    """(noticed, the finding ids) for one case; an unparsable expected-FAILURE case counts as noticed."""
    try:
        d = judge_case(tc)
    except Exception as exc:  # certdoctor's readers refuse such input with an InputError
        return tc["expected_result"] == "FAILURE", [f"unparsable: {type(exc).__name__}"]
    ids = [f.id for f in d.findings]
    if tc["expected_result"] == "FAILURE":
        return any(f.severity in (Severity.ERROR, Severity.WARNING) for f in d.findings), ids
    return not d.errors, ids


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    cases = load_cases(Path(args[0]) if args else CORPUS)
    missed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tc in cases:
            ok, ids = noticed(tc)
            if not ok:
                missed.append(
                    {
                        "id": tc["id"],
                        "expected": tc["expected_result"],
                        "findings": ids,
                        "description": " ".join(tc["description"].split()),
                    }
                )
    if "--json" in argv:
        print(json.dumps({"noticed": len(cases) - len(missed), "total": len(cases), "missed": missed}, indent=2))
    else:
        for m in missed:
            print(f"{m['id']}  [{m['expected']}] {m['findings']}\n    {m['description'][:300]}")
        print(f"noticed {len(cases) - len(missed)} of {len(cases)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
