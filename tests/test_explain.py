"""`certdoctor explain`: every catalogued real error string is recognised as its own signature."""

from __future__ import annotations

import pytest

import jsonschemas
from certdoctor.cli import main
from certdoctor.clients import PROFILES
from certdoctor.clients.catalog import CAUSES, SIGNATURES
from certdoctor.clients.explain import classify, explain

EXAMPLES = [(sig.id, example) for sig in SIGNATURES for example in sig.examples]


def test_catalogue_is_large_and_consistent() -> None:
    assert len({example for _, example in EXAMPLES}) >= 60
    assert len({sig.id for sig in SIGNATURES}) == len(SIGNATURES)
    for sig in SIGNATURES:
        assert sig.examples, sig.id
        assert sig.causes and all(c in CAUSES for c in sig.causes), sig.id


@pytest.mark.parametrize(("sig_id", "text"), EXAMPLES, ids=[f"{s}:{i}" for i, (s, _) in enumerate(EXAMPLES)])
def test_every_example_is_recognised_as_its_signature(sig_id: str, text: str) -> None:
    result = explain(text)
    assert result.recognised
    assert result.best is not None and result.best.id == sig_id, [m.signature.id for m in result.matches]
    assert result.causes


def test_every_predicted_message_is_recognised() -> None:
    """What `check` says a client will print, `explain` must understand (with the same client)."""
    for profile in PROFILES:
        for problem, message in profile.messages.items():
            assert classify(message, profile.id) is not None, (profile.id, problem, message)


@pytest.mark.parametrize(
    ("text", "sig_id", "host"),
    [
        # partial lines, users' own names and paths, wrapped in other tools' output
        ("Error: unable to verify the first certificate\n    at TLSSocket.onConnectSecure", "openssl-21", None),
        (
            "requests.exceptions.SSLError: HTTPSConnectionPool(host='api.corp.example', port=443): Max retries "
            "exceeded with url: / (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
            "certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)')))",
            "openssl-20",
            None,
        ),
        (
            "Unable to connect to the server: x509: certificate signed by unknown authority",
            "go-unknown-authority",
            None,
        ),
        (
            "curl: (60) SSL: no alternative certificate subject name matches target host name 'shop.example.org'",
            "curl-no-alt-name",
            "shop.example.org",
        ),
        ("Caused by: javax.net.ssl.SSLHandshakeException: PKIX path building failed", "java-pkix-build", None),
        ("pkix PATH building FAILED", "java-pkix-build", None),  # case
        ("x509: certificate signed by unknown authoriy", "go-unknown-authority", None),  # a typo: fuzzy
        ("NET::ERR_CERT_DATE_INVALID  Your connection is not private", "chrome-date-invalid", None),
        ("Secure Connection Failed  SEC_ERROR_UNKNOWN_ISSUER", "firefox-unknown-issuer", None),
        (
            'Get "https://registry.example.com:5000/v2/": x509: certificate has expired or is not yet valid: '
            "current time 2026-01-01T00:00:00Z is after 2025-12-01T00:00:00Z",
            "go-expired",
            "registry.example.com:5000",
        ),
    ],
)
def test_fuzzy_and_partial_pastes(text: str, sig_id: str, host: str | None) -> None:
    result = explain(text)
    assert result.best is not None and result.best.id == sig_id, [m.signature.id for m in result.matches]
    if host:
        assert result.host == host
        assert result.command() == f"certdoctor check {host}"


def test_causes_are_ranked_for_missing_intermediate() -> None:
    result = explain("UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate")
    assert result.causes[0].id == "missing-intermediate"
    assert "AIA" in result.causes[0].tell_apart


def test_unrecognised_text() -> None:
    result = explain("the printer is on fire")
    assert not result.recognised and not result.causes


def test_cli_text_json_stdin_and_exit_codes(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert main(["explain", "curl:", "(60)", "SSL", "certificate", "problem:", "self-signed", "certificate"]) == 0
    out = capsys.readouterr().out
    assert "self-signed" in out and "certdoctor check" in out

    assert main(["explain", "--json", "PKIX path building failed"]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert doc["recognised"] and doc["matches"][0]["id"] == "java-pkix-build"
    assert doc["causes"][0]["id"] == "missing-intermediate"

    assert main(["explain", "nothing to see here"]) == 1
    assert "not recognised" in capsys.readouterr().out

    import io

    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(
            "tls: failed to verify certificate: x509: certificate relies on "
            "legacy Common Name field, use SANs instead\n"
        ),
    )
    assert main(["explain", "--json", "-"]) == 0
    assert jsonschemas.loads(capsys.readouterr().out)["matches"][0]["id"] == "go-legacy-cn"


def test_pasted_escape_sequences_are_neutralised(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "explain",
                "--no-color",
                "curl: (60) SSL: no alternative certificate subject name matches target host name '\x1b[2Jevil'",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "\x1b" not in out
