"""NSS's ``vfychain`` as a second oracle for certdoctor's Firefox prediction, on the lab's chain files.

For every lab scenario whose verdict depends on the chain alone, the chain file the lab serves is verified by
``vfychain -u 1`` (SSL server usage; Debian's libnss3-tools) against a temporary NSS database that trusts only
the lab root (``certutil -A -t C,,``), and the test asserts that certdoctor's Firefox prediction for the same
file (``diagnose(files=…)``, no name, no AIA fetching, no revocation) agrees on accept/reject.

vfychain runs NSS's classic verifier (``CERT_VerifyCertificate``), not Firefox's mozilla::pkix, so it is a
second opinion on trust, dates, key usage, basicConstraints and EKU, not on Firefox's error codes. NSS's own
policy still allows SHA-1 in certificate signatures; Firefox does not, so vfychain runs with
``NSS_HASH_ALG_SUPPORT=-SHA-1`` (NSS ``secoid.c``: the hash policy from the environment), under which it
rejects a SHA-1 signature with SEC_ERROR_CERT_SIGNATURE_ALGORITHM_DISABLED (-8016), as Firefox does.

Left out, because the server's behaviour decides them, not the chain: hostile scenarios, a second address
(multi-address), a different certificate without SNI (no-sni), stapling (good-stapled, stale-staple,
must-staple). Skipped with the reason when vfychain or certutil is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certdoctor import diagnose
from certdoctor.clients import predict
from certdoctor.lab import SCENARIOS, Lab, Scenario

SSL_SERVER_USAGE = "1"  # vfychain -u: 1 = certUsageSSLServer
NSS_ENV = {"NSS_HASH_ALG_SUPPORT": "-SHA-1"}  # Firefox's policy: no SHA-1 in certificate signatures


def chain_only(scenario: Scenario) -> bool:
    """True when a client's verdict on the scenario depends on its served chain file alone."""
    spec = scenario._spec
    return not (
        scenario.hostile
        or spec.kind != "tls"
        or spec.second_address is not None
        or spec.no_sni is not None
        or spec.staple is not None
        or spec.leaf.must_staple
    )


CHAIN_ONLY = [s.name for s in SCENARIOS if chain_only(s)]
# vfychain runs NSS's classic verifier (CERT_VerifyCertificate), not Firefox's mozilla::pkix. Where the two
# differ, real Firefox (tests/test_clients_real.py) decides the prediction, and vfychain's other answer is asserted.
CLASSIC_NSS_DIFFERS = {
    "intermediate-eku": "classic NSS does not chain the EKU through intermediates; mozilla::pkix does "
    "(real Firefox: SEC_ERROR_INADEQUATE_CERT_TYPE)",
    "aki-mismatch": "classic NSS looks the issuer up by the leaf's authorityKeyIdentifier; mozilla::pkix ignores "
    "it (real Firefox accepts)",
}

pytestmark = pytest.mark.skipif(
    shutil.which("vfychain") is None or shutil.which("certutil") is None,
    reason="vfychain/certutil not found (Debian package libnss3-tools)",
)


@pytest.fixture(scope="module")
def nss_db(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh NSS database (empty password) trusting only the lab root, for TLS servers (``C,,``)."""
    db = tmp_path_factory.mktemp("nssdb")
    for argv in (
        ["certutil", "-N", "--empty-password", "-d", f"sql:{db}"],
        ["certutil", "-A", "-n", "lab-root", "-t", "C,,", "-i", str(lab.root_path), "-d", f"sql:{db}"],
    ):
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return db


def vfychain(db: Path, chain_pem: Path, work: Path) -> tuple[bool, str]:
    """(accepted, vfychain's output) for the chain in ``chain_pem`` (leaf first), one DER file per certificate."""
    files = []
    for n, cert in enumerate(x509.load_pem_x509_certificates(chain_pem.read_bytes())):
        path = work / f"cert-{n}.der"
        path.write_bytes(cert.public_bytes(Encoding.DER))
        files.append(str(path))
    done = subprocess.run(
        ["vfychain", "-d", f"sql:{db}", "-u", SSL_SERVER_USAGE, *files],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **NSS_ENV},
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    if done.returncode not in (0, 1) or ("Chain is good!" in output) != (done.returncode == 0):
        pytest.fail(f"vfychain failed to run (status {done.returncode}): {output}")
    return done.returncode == 0, output


def test_chain_only_selection() -> None:
    assert {"good-rsa", "sha1", "issuer-not-ca", "expired-intermediate", "incomplete-aia"} <= set(CHAIN_ONLY)
    assert not {"multi-address", "no-sni", "must-staple", "stale-staple", "stall", "huge-chain"} & set(CHAIN_ONLY)


@pytest.mark.parametrize("name", CHAIN_ONLY)
def test_firefox_prediction_agrees_with_vfychain(name: str, lab: Lab, nss_db: Path, tmp_path: Path) -> None:
    chain_pem = lab.endpoints[name].chain_path
    accepted, output = vfychain(nss_db, chain_pem, tmp_path)
    d = diagnose(files=[str(chain_pem)], ca_files=[str(lab.root_path)], fetch_aia=False, revocation=False)
    firefox = next(v for v in predict(d) if v.client == "firefox")
    if name in CLASSIC_NSS_DIFFERS:
        assert firefox.accepts != accepted, f"{name}: vfychain now agrees with mozilla::pkix: {output}"
        return
    assert firefox.accepts == accepted, (
        f"{name}: certdoctor predicts Firefox {'accepts' if firefox.accepts else 'rejects: ' + str(firefox.error)}; "
        f"vfychain {'accepts' if accepted else 'rejects'}:\n{output}"
    )


def test_vfychain_rejects_sha1_like_firefox(lab: Lab, nss_db: Path, tmp_path: Path) -> None:
    """The SHA-1 policy is in force: -8016 is SEC_ERROR_CERT_SIGNATURE_ALGORITHM_DISABLED."""
    accepted, output = vfychain(nss_db, lab.endpoints["sha1"].chain_path, tmp_path)
    assert not accepted and "ERROR -8016" in output
