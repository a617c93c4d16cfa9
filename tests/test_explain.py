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
    # the generic template for OpenSSL's other verify errors, filled in as OpenSSL's verifier would fill it
    example = {"{openssl}": "unable to get issuer certificate", "{node_code}": "UNABLE_TO_GET_ISSUER_CERT"}
    for profile in PROFILES:
        for problem, template in profile.messages.items():
            message = template
            for placeholder, value in example.items():
                message = message.replace(placeholder, value)
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


# --- issue 16: long logs, wrong answers, new messages, impossible causes, hosts ---------------------------------

_NOISE = "".join(
    f"2026-11-29T10:{i % 60:02d}:00Z INFO worker-{i % 7} processed request id={i * 7919:x} in {i % 300} ms\n"
    for i in range(15_000)
)  # ~1 MB of an application's log, nothing in it that looks like an error


def test_an_error_in_the_middle_of_a_megabyte_log_is_recognised() -> None:
    cut = _NOISE.index("\n", len(_NOISE) // 2) + 1
    half, rest = _NOISE[:cut], _NOISE[cut:]
    log = half + "Caused by: javax.net.ssl.SSLHandshakeException: PKIX path building failed\n" + rest
    assert len(log) > 1_000_000
    result = explain(log)
    assert result.best is not None and result.best.id == "java-pkix-build"
    # fuzzy matching reaches the middle too, through the lines that look like errors
    typo = explain(half + 'level=error msg="x509: certificate signed by unknown authoriy"\n' + rest)
    assert typo.best is not None and typo.best.id == "go-unknown-authority"


def test_a_megabyte_paste_takes_under_a_second_and_fuzzy_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import difflib
    import time

    from certdoctor.clients import explain as module

    compared = 0
    real = difflib.SequenceMatcher

    class Counting(real):  # type: ignore[valid-type,misc]
        def __init__(self, isjunk=None, a="", b="", autojunk=True):  # type: ignore[no-untyped-def]
            nonlocal compared
            compared += len(a) + len(b)
            super().__init__(isjunk, a, b, autojunk)

    monkeypatch.setattr(module.difflib, "SequenceMatcher", Counting)
    errorish = "".join(f"ERROR job {i} failed: the printer is on fire again\n" for i in range(25_000))
    best = float("inf")
    for _ in range(2):  # the best of two runs: the machine may be busy
        start = time.perf_counter()
        result = explain(errorish)
        best = min(best, time.perf_counter() - start)
    assert len(errorish) > 1_000_000 and not result.recognised
    examples = sum(len(e) + 1 for sig in SIGNATURES for e in sig.examples)
    per_run = module.MAX_FRAGMENTS * (module.MAX_FRAGMENT * len(EXAMPLES) + examples) * 2
    assert compared <= 2 * per_run  # fuzzy matching never sees more than a few short lines
    # wall clock only as a backstop against a quadratic blow-up (minutes); the work bound above is the real test
    assert best < 10.0, best
    start = time.perf_counter()
    assert explain(_NOISE).recognised is False
    assert time.perf_counter() - start < 10.0


def _max_repeat(tree) -> int:  # type: ignore[no-untyped-def]
    import re._constants as c  # type: ignore[import-not-found]

    worst = 0
    for op, av in tree:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            worst = max(worst, av[1] if av[1] != c.MAXREPEAT else 10**9, _max_repeat(av[2]))
        elif op is c.SUBPATTERN:
            worst = max(worst, _max_repeat(av[-1]))
        elif op is c.BRANCH:
            worst = max([worst, *(_max_repeat(b) for b in av[1])])
        elif op in (c.ASSERT, c.ASSERT_NOT):
            worst = max(worst, _max_repeat(av[1]))
    return worst


def test_every_pattern_is_linear() -> None:
    """The ReDoS guard: no unbounded repetition in any pattern, so each search is linear in the paste."""
    import re._parser as parser  # type: ignore[import-not-found]

    from certdoctor.clients import explain as module

    patterns = [sig.pattern for sig in SIGNATURES] + [p.pattern for p in module._HOST_PATTERNS]
    for pattern in patterns:
        assert _max_repeat(parser.parse(pattern)) <= module.MAX_REPEAT, pattern
    # and the inputs that made the unbounded ones quadratic stay fast
    import time

    for piece in ("hostname 'a", "Host: a", "x509: certificate is valid for a", "No name matching a", "host: 'a"):
        start = time.perf_counter()
        explain(piece * (1_000_000 // len(piece)))
        assert time.perf_counter() - start < 10.0, piece  # an unbounded pattern takes minutes here


KUBECTL = (
    'x509: certificate signed by unknown authority (possibly because of "crypto/rsa: verification error" while '
    'trying to verify candidate authority certificate "kubernetes")'
)


@pytest.mark.parametrize("text", [f"Unable to connect to the server: {KUBECTL}", KUBECTL])
def test_kubectl_candidate_authority_with_another_key(text: str) -> None:
    result = explain(text)
    assert result.best is not None and result.best.id == "go-candidate-other-key"
    assert result.causes[0].id == "kubeconfig-ca-mismatch"
    assert "context" in result.causes[0].title
    assert {c.id for c in result.causes}.isdisjoint({"unreachable", "weak-signature"})


def test_firefox_protocol_codes_have_their_own_meaning() -> None:
    overlap = explain("SSL_ERROR_NO_CYPHER_OVERLAP")
    assert overlap.best is not None and "RX_RECORD_TOO_LONG" not in overlap.best.meaning
    assert "cipher" in overlap.best.meaning and overlap.causes[0].id == "protocol-mismatch"
    assert "not-tls" not in [c.id for c in overlap.causes]
    too_long = explain("SSL_ERROR_RX_RECORD_TOO_LONG")
    assert too_long.best is not None and "plain HTTP" in too_long.best.meaning
    assert [c.id for c in too_long.causes] == ["not-tls"]


@pytest.mark.parametrize(
    ("text", "client"),
    [
        ("CERT_HAS_EXPIRED: certificate has expired", "Node.js"),
        (
            "Error: certificate has expired\n    at TLSSocket.onConnectSecure {\n  code: 'CERT_HAS_EXPIRED'\n}",
            "Node.js",
        ),
        ("DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate", "Node.js"),
        ("Error: self-signed certificate in certificate chain\n  code: 'SELF_SIGNED_CERT_IN_CHAIN'", "Node.js"),
        ("UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate", "Node.js"),
        ("Error: unsuitable certificate purpose\n  code: 'INVALID_PURPOSE'", "Node.js"),
        ("PATH_LENGTH_EXCEEDED: path length constraint exceeded", "Node.js"),
        ("curl: (60) SSL certificate problem: unable to get local issuer certificate", "OpenSSL"),
        ("curl: (60) SSL certificate problem: path length constraint exceeded", "OpenSSL"),
        ("curl: (60) SSL certificate problem: certificate has expired", "OpenSSL"),
        ("curl: (60) SSL certificate problem: self-signed certificate", "OpenSSL"),
        ("verify error:num=10:certificate has expired", "OpenSSL"),
    ],
)
def test_node_codes_are_attributed_to_node(text: str, client: str) -> None:
    result = explain(text)
    assert result.best is not None and result.best.client.startswith(client), result.best.client


@pytest.mark.parametrize(
    ("text", "sig_id", "cause"),
    [
        (
            "System.Net.WebException: The underlying connection was closed: Could not establish trust "
            "relationship for the SSL/TLS secure channel.",
            "dotnet-framework-trust",
            "private-ca",
        ),
        ("Unable to connect to the server: net/http: TLS handshake timeout", "go-tls-handshake-timeout", "not-tls"),
        (
            "Safari can’t open the page because Safari can’t establish a secure connection to the server "
            "“api.example.com”.",
            "safari-cannot-establish",
            "protocol-mismatch",
        ),
        (
            "40E7A1B9F67F0000:error:0A000152:SSL routines:final_renegotiate:unsafe legacy renegotiation "
            "disabled:../ssl/statem/extensions.c:922:",
            "openssl-unsafe-renegotiation",
            "legacy-renegotiation",
        ),
        (
            'Get "https://api.example.com/": tls: failed to parse certificate from server: x509: negative '
            "serial number",
            "go-negative-serial",
            "negative-serial",
        ),
        (
            "curl: (60) SSL certificate problem: authority and subject key identifier mismatch",
            "openssl-30",
            "ca-rekeyed",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: format error in certificate's notBefore "
            "field (_ssl.c:1006)",
            "openssl-13",
            "malformed-certificate",
        ),
    ],
)
def test_new_messages_are_recognised(text: str, sig_id: str, cause: str) -> None:
    result = explain(text)
    assert result.best is not None and result.best.id == sig_id, [m.signature.id for m in result.matches]
    assert result.best.meaning and result.causes[0].id == cause
    assert all(c.tell_apart and c.fix for c in result.causes)


@pytest.mark.parametrize(
    "text",
    [
        "curl: (60) SSL certificate problem: certificate is not yet valid",
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate is "
        "not yet valid (_ssl.c:1006)",
        "error:0A000086:SSL routines::certificate verify failed: CERT_NOT_YET_VALID",
    ],
)
def test_impossible_causes_are_not_listed(text: str) -> None:
    result = explain(text)
    assert [c.id for c in result.causes] == ["not-yet-valid", "client-clock"]


def test_wrappers_alone_keep_their_causes() -> None:
    result = explain("curl: (60) SSL certificate problem: unknown reason")
    assert result.causes[0].id == "missing-intermediate"


def test_git_cafile_none_means_no_bundle() -> None:
    result = explain(
        "fatal: unable to access 'https://git.example.com/repo.git/': server certificate verification failed. "
        "CAfile: none CRLfile: none"
    )
    assert result.best is not None and result.best.id == "gnutls-no-cafile"
    assert result.causes[0].id == "no-ca-bundle"
    assert "http.sslCAInfo" in result.causes[0].title + result.causes[0].fix
    assert "missing-intermediate" not in [c.id for c in result.causes]


@pytest.mark.parametrize(
    ("text", "host"),
    [
        (
            "requests.exceptions.SSLError: HTTPSConnectionPool(host='api.corp.example', port=8443): Max retries "
            "exceeded with url: /v1/ (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
            "CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate')))",
            "api.corp.example:8443",
        ),
        (
            "Error: unable to verify the first certificate\n    at TLSSocket.onConnectSecure (node:_tls_wrap:1674:34)"
            " {\n  code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',\n  host: 'api.example.com',\n}",
            "api.example.com",
        ),
        (
            "Your connection is not private\n\nAttackers might be trying to steal your information from "
            "api.example.com (for example, passwords, messages, or credit cards).\nNET::ERR_CERT_AUTHORITY_INVALID",
            "api.example.com",
        ),
        (
            "Warning: Potential Security Risk Ahead\nFirefox detected a potential security threat and did not "
            "continue to api.example.com. If you visit this site, attackers could try to steal information",
            "api.example.com",
        ),
        ("Your connection is not private … to api.example.com", "api.example.com"),
    ],
)
def test_hosts_are_picked_up_for_the_command(text: str, host: str) -> None:
    result = explain(text)
    assert result.recognised and result.host == host
    assert result.command() == f"certdoctor check {host}"


def test_python_mismatch_on_a_dotted_name_is_the_trailing_dot_and_the_command_keeps_it() -> None:
    text = (
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not valid "
        "for 'api.example.test.'. (_ssl.c:1006)"
    )
    result = explain(text)
    assert result.host == "api.example.test." and result.causes[0].id == "trailing-dot"
    assert "hostname-trailing-dot" in result.causes[0].tell_apart
    node = explain("Host: api.example.test. is not in the cert's altnames: DNS:www.example.test")
    assert node.host == "api.example.test" and node.causes[0].id != "trailing-dot"  # Node's sentence ends there


def test_firefox_ca_as_end_entity_points_at_leaf_is_ca() -> None:
    result = explain("MOZILLA_PKIX_ERROR_CA_CERT_USED_AS_END_ENTITY")
    assert result.causes[0].id == "leaf-is-ca" and "leaf-is-ca" in result.causes[0].tell_apart
