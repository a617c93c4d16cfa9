"""What a scan reuses between servers presenting distinct leaves under the same intermediates (certdoctor.paths'
Tail: the search above a leaf's issuer, the AIA URLs still missing; StoreIndex.verifier_view: one verifier run
for stores whose anchors look the same to it) gives exactly the judgement computed afresh, and is never reused
where it would be wrong: another key behind the same issuer name, a leaf that could itself be an issuer, another
time. The reference is the same judgement with ``paths.SHORTCUTS`` off and a fresh index per chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

from certdoctor import certinfo, paths
from certdoctor.diagnosis import Diagnosis
from certdoctor.model import Evidence, PresentedChain, Target, TrustStore
from certdoctor.paths import StoreIndex, analyse, missing_issuer_urls
from certdoctor.pipeline import judge
from pki_builder import AT, ec_key, intermediate, issue, leaf, root

ROOT = root("Tail Root")
CA = intermediate("Tail CA", ROOT, aia_ca_issuers="http://aia.tail.test/root.cer")
OTHER_ROOT = root("Tail Other Root")
OTHER_CA = intermediate("Tail Other CA", OTHER_ROOT)
# the attacker's: a CA with the real intermediate's name and a key of its own, under a root nobody trusts
EVIL_ROOT = root("Tail Evil Root")
EVIL_CA = intermediate("Tail CA", EVIL_ROOT, key=ec_key("tail: the attacker's CA"))
STORES = (
    TrustStore("first", "unit store first", (ROOT.cert, OTHER_ROOT.cert)),
    TrustStore("second", "unit store second", (ROOT.cert,)),
)


def served(*certs: x509.Certificate) -> PresentedChain:
    return PresentedChain("192.0.2.7:443", "192.0.2.7", certs, len(certs), "TLSv1.3")


def evidence(name: str, *certs: x509.Certificate, at: datetime = AT) -> Evidence:
    return Evidence(Target(name, 443, name, ("192.0.2.7",)), at, (served(*certs),), STORES)


def snapshot(d: Diagnosis) -> dict[str, Any]:
    """Everything judged about a diagnosis, by fingerprints (no objects, no timings)."""
    fp = certinfo.fingerprint
    return {
        "findings": [
            (f.id, f.severity.value, f.detail, f.fix, f.sources, f.cert_position, f.cert_fingerprint, f.evidence)
            for f in d.findings
        ],
        "reports": [
            {
                "paths": [
                    ([(fp(n.cert), n.origin, n.position, n.detail) for n in p.nodes], p.end, p.anchored_in)
                    for p in r.analysis.paths
                ],
                "verdicts": [
                    (v.store, v.description, v.ok, [fp(c) for c in v.chain], v.error, v.ok_with_aia, v.error_with_aia)
                    for v in r.analysis.verdicts
                ],
                "revocation": [repr(x) for x in r.revocation],
            }
            for r in d.reports
        ],
        "clients": [(p.client, p.accepts, p.error) for p in d.clients] if hasattr(d, "clients") else None,
    }


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """judge(evidence) without any shortcut, on an index of its own."""

    def run(ev: Evidence) -> dict[str, Any]:
        monkeypatch.setattr(paths, "SHORTCUTS", False)
        try:
            return snapshot(judge(ev, index=StoreIndex(ev.stores)))
        finally:
            monkeypatch.setattr(paths, "SHORTCUTS", True)

    yield run


def test_leaves_under_one_intermediate_judge_as_without_the_cache(fresh: Any) -> None:
    index = StoreIndex(STORES)
    good = [leaf(f"h{i}.tail.test", CA) for i in range(3)]
    expired = issue("old.tail.test", issuer=CA, not_before=AT - timedelta(days=400), not_after=AT - timedelta(days=2))
    cases = [
        evidence("h0.tail.test", good[0].cert, CA.cert),
        evidence("h1.tail.test", good[1].cert, CA.cert),
        evidence("wrong.tail.test", good[2].cert, CA.cert),  # the name does not match
        evidence("old.tail.test", expired.cert, CA.cert),
        evidence("h0.tail.test", good[0].cert, CA.cert, ROOT.cert),  # another tail: the root sent too
    ]
    hits = []
    for ev in cases:
        before = index.tail_hits
        got = snapshot(judge(ev, index=index))
        hits.append(index.tail_hits - before)
        assert got == fresh(ev)
    assert hits[1] > 0 and hits[2] > 0 and hits[3] > 0  # the later leaves under CA reused its tail
    ids = [[f[0] for f in snapshot(judge(ev, index=index))["findings"]] for ev in cases]
    assert ids[0] == ids[1] == []
    assert "hostname-mismatch" in ids[2]
    assert "expired" in ids[3]
    assert "contains-root" in ids[4]
    # one verifier run served both stores (same anchors for this chain), and said the same as two runs
    report = judge(cases[0], index=index).reports[0]
    assert [v.store for v in report.analysis.verdicts] == ["first", "second"]
    assert all(v.ok for v in report.analysis.verdicts)


def test_same_issuer_name_other_key_is_not_the_cached_issuer(fresh: Any) -> None:
    """An attacker's leaf naming the real intermediate as its issuer, signed with another key: the real
    intermediate's cached paths must not carry it to the root; nor may a CA of the same name and another key."""
    index = StoreIndex(STORES)
    real = leaf("real.tail.test", CA)
    assert snapshot(judge(evidence("real.tail.test", real.cert, CA.cert), index=index)) == fresh(
        evidence("real.tail.test", real.cert, CA.cert)
    )
    forged = leaf("forged.tail.test", EVIL_CA)  # issuer name "Tail CA", EVIL_CA's key
    for chain in ((forged.cert, CA.cert), (forged.cert, EVIL_CA.cert), (forged.cert, CA.cert, EVIL_CA.cert)):
        ev = evidence("forged.tail.test", *chain)
        got = judge(ev, index=index)
        assert snapshot(got) == fresh(ev)
        analysis = got.reports[0].analysis
        assert not analysis.trusted
        assert all(
            certinfo.fingerprint(ROOT.cert) not in {certinfo.fingerprint(c) for c in p.certs()} for p in analysis.paths
        )
    # the real leaf's path through the real CA is still there, and still trusted
    again = judge(evidence("real.tail.test", real.cert, CA.cert, EVIL_CA.cert), index=index)
    assert again.reports[0].analysis.trusted


def test_a_leaf_that_could_issue_its_tail_is_searched_without_the_cache(fresh: Any) -> None:
    """A CA certificate presented as the leaf, with the subject that a certificate above it names as issuer:
    it takes part in the search above it, so the tail's cached search does not apply."""
    index = StoreIndex(STORES)
    ok = leaf("a.tail.test", CA)
    judge(evidence("a.tail.test", ok.cert, CA.cert), index=index)  # fill CA's tail
    # "Tail Root" with another key, as the leaf, in front of CA (whose issuer is named "Tail Root")
    posing = issue("Tail Root", issuer=OTHER_CA, ca=True, key=ec_key("tail: posing as the root"))
    tail = index.tail([CA.cert])
    assert not tail.apart(posing.cert)
    ev = evidence("a.tail.test", posing.cert, CA.cert)
    assert snapshot(judge(ev, index=index)) == fresh(ev)
    self_issued = issue("Tail Self", ca=True)
    assert not index.tail([CA.cert]).apart(self_issued.cert)


def test_the_time_is_never_cached(fresh: Any) -> None:
    """The same intermediate judged at two times through one index: each time its own validity findings."""
    index = StoreIndex(STORES)
    late = datetime(2037, 6, 1, tzinfo=UTC)  # CA expired (2036-01-01), the leaf below still valid
    now_leaf = leaf("now.tail.test", CA)
    long_leaf = issue("long.tail.test", issuer=CA, not_before=AT, not_after=datetime(2040, 1, 1, tzinfo=UTC))
    first = judge(evidence("now.tail.test", now_leaf.cert, CA.cert), index=index)
    assert first.ids() == []
    ev = evidence("long.tail.test", long_leaf.cert, CA.cert, at=late)
    second = judge(ev, index=index)
    assert snapshot(second) == fresh(ev)
    assert "intermediate-expired" in second.ids()
    assert not second.reports[0].analysis.trusted
    back = evidence("long.tail.test", long_leaf.cert, CA.cert)
    assert snapshot(judge(back, index=index)) == fresh(back)
    again = judge(back, index=index)
    assert "intermediate-expired" not in again.ids() and again.reports[0].analysis.trusted


def test_several_cas_and_missing_issuers(fresh: Any) -> None:
    """Leaves round robin over two CAs, one sent without its intermediate (the AIA URL is what is missing)."""
    index = StoreIndex(STORES)
    for i in range(6):
        ca = CA if i % 2 else OTHER_CA
        cert = leaf(f"r{i}.tail.test", ca, aia_ca_issuers="http://aia.tail.test/ca.cer").cert
        for chain in ((cert, ca.cert), (cert,)):
            ev = evidence(f"r{i}.tail.test", *chain)
            assert snapshot(judge(ev, index=index)) == fresh(ev)
            known = list(chain)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(paths, "SHORTCUTS", False)
                want = missing_issuer_urls(known, known, StoreIndex(STORES))
            assert missing_issuer_urls(known, list(known), index) == want


def test_stores_that_differ_each_get_their_own_verdict() -> None:
    """OTHER_ROOT is only in the first store: a chain to it is trusted there and not in the second."""
    index = StoreIndex(STORES)
    cert = leaf("o.tail.test", OTHER_CA).cert
    analysis = analyse(served(cert, OTHER_CA.cert), evidence("o.tail.test", cert, OTHER_CA.cert), index)
    assert [(v.store, v.ok) for v in analysis.verdicts] == [("first", True), ("second", False)]
    assert index.verifier_view("first", [cert, OTHER_CA.cert]) != index.verifier_view("second", [cert, OTHER_CA.cert])
    # two anchors with one name: the verifier's order among them is not known, so no view
    twin = root("Tail Root", key=ec_key("tail: twin root"))  # same name as ROOT, another key
    both = StoreIndex((TrustStore("twins", "twins", (ROOT.cert, twin.cert)),))
    assert both.verifier_view("twins", [CA.cert]) is None
