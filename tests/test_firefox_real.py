"""Real Firefox ESR on two problems at once: which error code wins, against certdoctor's Firefox order.

Firefox shows one code per navigation. Each lab scenario below is visited under a name its certificate does
not cover (``zz.certdoctor.test``, sent to the scenario's address), so Firefox sees the scenario's own problem
*and* a wrong name. Real Firefox: trust errors and non-overridable errors (usage, SHA-1, an expired
intermediate, must-staple) win over the name, the name wins over the leaf's own dates
(SSLServerCertVerification.cpp DetermineCertOverrideErrors). The test asserts certdoctor predicts exactly the
code real Firefox printed. Skipped with the reason when Firefox cannot run here.
"""

from __future__ import annotations

import pytest

from certdoctor import diagnose
from certdoctor.clients import predict
from certdoctor.lab import Lab
from realclients import Outcome, Probe
from realclients.firefox import CLIENT, error_code

OTHER_NAME = "zz.certdoctor.test"
SCENARIOS = (
    "good-rsa",  # only the name is wrong
    "expired",  # the name beats the leaf's dates
    "not-yet-valid",
    "expired-intermediate",  # not overridable: beats the name
    "untrusted-root",  # trust beats the name
    "self-signed",
    "incomplete-aia",
    "issuer-not-ca",
    "client-auth-eku",
    "sha1",
    "must-staple",
)


def test_error_code_parsing() -> None:
    generated = "Error: NS_ERROR_GENERATE_FAILURE(NS_ERROR_MODULE_SECURITY, SEC_ERROR_UNKNOWN_ISSUER)"
    assert error_code(generated) == "SEC_ERROR_UNKNOWN_ISSUER"
    assert error_code("Error: NS_ERROR_CONNECTION_REFUSED") == "NS_ERROR_CONNECTION_REFUSED"
    assert error_code("about:neterror?e=nssFailure2&u=https%3A//x/") == "nssFailure2"
    assert error_code("  something else ") == "something else"


@pytest.fixture(scope="module")
def wrong_name_outcomes(lab: Lab) -> dict[str, Outcome]:
    reason = CLIENT.unavailable()
    if reason:
        pytest.skip(f"firefox: {reason}")
    probes = [Probe(n, OTHER_NAME, "127.0.0.1", lab.endpoints[n].port, str(lab.root_path)) for n in SCENARIOS]
    return dict(zip(SCENARIOS, CLIENT.run(probes), strict=True))


@pytest.mark.parametrize("name", SCENARIOS)
def test_firefox_reports_what_certdoctor_predicts_under_a_wrong_name(
    name: str, lab: Lab, wrong_name_outcomes: dict[str, Outcome]
) -> None:
    real = wrong_name_outcomes[name]
    d = diagnose(
        OTHER_NAME, port=lab.endpoints[name].port, resolve=["127.0.0.1"], ca_files=[str(lab.root_path)], timeout=3.0
    )
    firefox = next(v for v in predict(d) if v.client == "firefox")
    assert not real.accepted and not firefox.accepts
    assert firefox.error == real.error, f"{name}: predicted {firefox.error}, Firefox printed {real.error}"
    if name in ("good-rsa", "expired", "not-yet-valid"):
        assert real.error == "SSL_ERROR_BAD_CERT_DOMAIN"
