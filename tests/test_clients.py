"""Per-client predictions in `certdoctor check` (text and JSON) and the `clients` command, on the lab."""

from __future__ import annotations

import pytest

import jsonschemas
from certdoctor.cli import main
from certdoctor.clients import PROFILES

CLIENT_IDS = {"chrome", "firefox", "safari", "curl", "python", "node", "java", "go", "dotnet"}


def check_json(lab, name: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[no-untyped-def]
    main([*lab.endpoints[name].check_argv(lab.root_path), "--json", *extra])
    return jsonschemas.loads(capsys.readouterr().out)


def by_client(doc: dict) -> dict[str, dict]:
    return {c["client"]: c for c in doc["clients"]}


def test_profiles_cover_every_required_family() -> None:
    assert {p.id for p in PROFILES} == CLIENT_IDS
    for p in PROFILES:
        assert p.describes and p.trust_howto and p.store_label and p.revocation


def test_missing_intermediate_splits_browsers_from_libraries(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    clients = by_client(check_json(lab, "incomplete-aia", capsys))
    assert set(clients) == CLIENT_IDS
    for cid in ("chrome", "safari", "dotnet"):  # they fetch the intermediate via AIA
        assert clients[cid]["accepts"] is True, cid
        assert "AIA" in clients[cid]["note"]
    assert clients["curl"] == clients["curl"] | {
        "accepts": False,
        "error": "curl: (60) SSL certificate problem: unable to get local issuer certificate",
        "because": ["missing-intermediate"],
        "family": "untrusted",
    }
    assert clients["node"]["error"] == "UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate"
    assert clients["java"]["error"].startswith("javax.net.ssl.SSLHandshakeException: PKIX path building failed")
    assert clients["go"]["error"] == "x509: certificate signed by unknown authority"
    assert clients["firefox"]["error"] == "SEC_ERROR_UNKNOWN_ISSUER"


def test_cn_only_differs_per_client(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    clients = by_client(check_json(lab, "cn-only", capsys))
    assert {c for c, v in clients.items() if v["accepts"]} == {"curl", "python", "node", "java", "dotnet"}
    assert clients["go"]["error"] == "x509: certificate relies on legacy Common Name field, use SANs instead"
    assert clients["chrome"]["error"] == "net::ERR_CERT_COMMON_NAME_INVALID"
    assert "Common Name" in clients["curl"]["note"]


def test_hostname_messages_carry_the_names(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    clients = by_client(check_json(lab, "wrong-host", capsys))
    assert clients["go"]["error"] == (
        "x509: certificate is valid for other-host.certdoctor.test, not wrong-host.certdoctor.test"
    )
    assert clients["node"]["error"].endswith(
        "Host: wrong-host.certdoctor.test. is not in the cert's altnames: DNS:other-host.certdoctor.test"
    )
    assert clients["java"]["because"] == ["hostname-mismatch"]


def test_multi_address_reports_which_address_fails(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    clients = by_client(check_json(lab, "multi-address", capsys))
    curl = clients["curl"]
    assert curl["accepts"] is False
    assert curl["error"] == "curl: (60) SSL certificate problem: certificate has expired"
    assert "127.0.0.2" in curl["note"]
    assert {tuple(v["sources"]) for v in curl["per_source"]} == {
        (f"127.0.0.1:{lab.endpoints['multi-address'].port}",),
        (f"127.0.0.2:{lab.endpoints['multi-address'].port}",),
    }


def test_java_sha1_and_chain_length_rules(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    sha1 = by_client(check_json(lab, "sha1", capsys))
    assert sha1["java"]["accepts"] is True  # SHA-1 is only disabled under JDK cacerts roots
    assert sha1["go"]["error"].endswith('candidate authority certificate "certdoctor Lab RSA CA")')
    many = by_client(check_json(lab, "many-certs", capsys))
    assert many["java"]["error"].endswith("The certificate chain length (11) exceeds the maximum allowed length (10)")
    assert many["curl"]["accepts"] is True


def test_connection_failures_are_predicted_too(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    clients = by_client(check_json(lab, "garbage", capsys, "--timeout", "3"))
    assert clients["go"]["error"] == "tls: first record does not look like a TLS handshake"
    assert clients["chrome"]["error"] == "net::ERR_SSL_PROTOCOL_ERROR"


def test_text_output_has_a_clients_section_and_no_clients_hides_it(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    argv = [*lab.endpoints["incomplete-no-aia"].check_argv(lab.root_path), "--no-color"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "Clients" in out and "Chrome / Edge" in out and "net::ERR_CERT_AUTHORITY_INVALID" in out
    assert main([*argv, "--no-clients"]) == 1
    out = capsys.readouterr().out
    assert "Clients" not in out
    assert main([*argv, "--no-clients", "--json"]) == 1
    assert jsonschemas.loads(capsys.readouterr().out)["clients"] == []


def test_unknown_private_root_shows_how_to_trust_it(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    ep = lab.endpoints["good-rsa"]
    argv = ["check", ep.target, "--resolve", ep.resolve_arg(), "--no-color"]  # no --ca-file: lab root unknown
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "NODE_EXTRA_CA_CERTS" in out and "keytool -importcert" in out


def test_clients_command(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["clients", "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "Java (JSSE)" in out and "AIA fetching" in out
    assert main(["clients", "go", "--json"]) == 0
    (go,) = jsonschemas.loads(capsys.readouterr().out)["clients"]
    assert go["client"] == "go" and go["cn_fallback"] is False
    assert main(["clients", "lynx"]) == 2


def test_stall_is_predicted_as_a_handshake_timeout(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    """The server accepts TCP and says nothing: each client's handshake-timeout wording, not a connect timeout."""
    clients = by_client(check_json(lab, "stall", capsys, "--timeout", "1"))
    assert {c["problem"] for c in clients.values()} == {"handshake-timeout"}
    assert clients["python"]["error"] == "TimeoutError: _ssl.c:989: The handshake operation timed out"
    assert clients["java"]["error"] == "java.net.SocketTimeoutException: Read timed out"
    assert clients["curl"]["error"].startswith("curl: (28) Connection timed out after ")
    assert clients["chrome"]["error"] == "net::ERR_TIMED_OUT"


def test_path_rules_per_client(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    """The facts the conformance suite cannot see (Firefox, Safari, .NET are not run here) and the finding ids."""
    eku = by_client(check_json(lab, "intermediate-eku", capsys))
    assert eku["java"]["accepts"] is True
    assert eku["firefox"]["error"] == "SEC_ERROR_INADEQUATE_CERT_TYPE"
    assert eku["curl"]["because"] == ["missing-server-auth-eku"] and eku["curl"]["problem"] == "ca-eku"
    ca_leaf = by_client(check_json(lab, "leaf-ca-true", capsys))
    assert [c for c, v in ca_leaf.items() if not v["accepts"]] == ["firefox"]
    assert ca_leaf["firefox"]["error"] == "MOZILLA_PKIX_ERROR_CA_CERT_USED_AS_END_ENTITY"
    partial = by_client(check_json(lab, "partial-wildcard", capsys))
    assert sorted(c for c, v in partial.items() if v["accepts"]) == ["java", "node"]
    assert partial["node"]["note"] == "accepts the partial wildcard partial*.certdoctor.test"
    ed = by_client(check_json(lab, "ed25519", capsys))
    assert sorted(c for c, v in ed.items() if not v["accepts"]) == ["chrome", "dotnet", "firefox", "safari"]
    assert ed["chrome"]["because"] == ["ed25519-key"]
    nc = by_client(check_json(lab, "name-constraints", capsys))
    assert nc["go"]["error"].endswith('DNS name "name-constraints.certdoctor.test" is not permitted by any constraint')
    assert nc["firefox"]["error"] == "SEC_ERROR_CERT_NOT_IN_NAME_SPACE"
    dot = by_client(check_json(lab, "trailing-dot", capsys))
    assert [c for c, v in dot.items() if not v["accepts"]] == ["python"]
    assert "not valid for 'trailing-dot.certdoctor.test.'" in dot["python"]["error"]
    cross = by_client(check_json(lab, "expired-cross-root", capsys))
    assert all(v["accepts"] for v in cross.values())  # every client uses its own copy of the root


# What each client prints for the critical-extension scenario: curl, Python, Node, Java, Go, Chromium and Firefox
# as observed here (tests/test_clients_real.py checks them against the real clients); Safari and .NET from their
# documentation (SecPolicyServer's CriticalExtensions check; X509ChainStatusFlags.HasNotSupportedCriticalExtension).
CRITICAL_EXTENSION_TEXTS = {
    "curl": "curl: (60) SSL certificate problem: unhandled critical extension",
    "python": "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unhandled critical extension (_ssl.c:1006)",
    "node": "UNSPECIFIED: unhandled critical extension",
    "java": "javax.net.ssl.SSLHandshakeException: PKIX path validation failed: "
    "java.security.cert.CertPathValidatorException: unrecognized critical extension(s)",
    "go": "x509: unhandled critical extension",
    "chrome": "net::ERR_CERT_INVALID",
    "firefox": "SEC_ERROR_UNKNOWN_CRITICAL_EXTENSION",
    "safari": "The certificate for this server is invalid. You might be connecting to a server that is pretending "
    "to be “critical-extension.certdoctor.test” which could put your confidential information at risk.",
    "dotnet": "System.Security.Authentication.AuthenticationException: The remote certificate is invalid because of "
    "errors in the certificate chain: HasNotSupportedCriticalExtension",
}


def test_unknown_critical_extension_is_refused_by_every_client(lab, capsys) -> None:  # type: ignore[no-untyped-def]
    """RFC 5280 §4.2: every client refuses a certificate with a critical extension it does not recognise."""
    doc = check_json(lab, "critical-extension", capsys)
    assert {f["id"] for f in doc["findings"]} == {"unknown-critical-extension"}
    clients = by_client(doc)
    for cid, text in CRITICAL_EXTENSION_TEXTS.items():
        got = clients[cid]
        assert (got["accepts"], got["problem"], got["family"]) == (False, "critical-extension", "usage"), cid
        assert got["because"] == ["unknown-critical-extension"] and got["error"] == text, (cid, got["error"])


def test_unknown_critical_extension_without_openssl_library(lab, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No OpenSSL 3 libcrypto: the declarative model finds the extension for curl, Python and Node too."""
    from certdoctor.clients import openssl

    monkeypatch.setattr(openssl, "_LIB", None)
    clients = by_client(check_json(lab, "critical-extension", capsys))
    for cid in ("curl", "python", "node"):
        assert clients[cid]["problem"] == "critical-extension", cid
        assert clients[cid]["error"] == CRITICAL_EXTENSION_TEXTS[cid], cid


def test_the_sessions_prediction_memo_gives_the_verdicts_a_fresh_prediction_does(lab) -> None:  # type: ignore[no-untyped-def]
    """A scan session reuses the client verdicts of a chain presented the same way (watch predicts every client
    for every target); each reused verdict is the one predict() makes afresh for that diagnosis."""
    import asyncio

    from certdoctor.clients import predict
    from certdoctor.model import DiagnoseOptions
    from certdoctor.scan import Engine, ScanOptions, parse_line

    names = ["good-rsa", "incomplete-no-aia", "expired", "multi-address", "wrong-host", "sha1"]
    specs = []
    for n in names:
        ep = lab.endpoints[n]
        specs.append(f"{ep.hostname}:{ep.port}," + ",".join(f"addr={a}" for a in ep.addresses))
    targets = [parse_line(i + 1, s) for i, s in enumerate(specs * 3)]
    seen: list = []
    options = ScanOptions(
        concurrency=4, clients=True, diagnose=DiagnoseOptions(ca_files=(str(lab.root_path),), clients=True)
    )
    engine = Engine(options, lambda *_: None, observe=lambda target, record, d: seen.append((target, record, d)))
    asyncio.run(engine.run(targets))
    assert len(seen) == len(targets) and all(d is not None for _, _, d in seen)
    memo = engine.session.predicted
    assert memo.hits >= len(names) * 2 * 9 // 2  # the repeats are (mostly) reused
    for target, record, d in seen:
        fresh = [v.to_dict() for v in predict(d)]
        assert [v.to_dict() for v in d.clients] == fresh, target.text
        assert [c["accepts"] for c in record["clients"]] == [v["accepts"] for v in fresh]
