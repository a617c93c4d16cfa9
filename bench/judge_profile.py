"""In-process cost of judging distinct leaf certificates: no sockets, no server, only certdoctor's judgement.

    python3 bench/judge_profile.py                    # 2,000 leaves, one CA chain, then 40 CAs under 8 roots
    python3 bench/judge_profile.py --shape one-ca --leaves 3000 --profile out.prof   # cProfile of the run

Each leaf is a certificate of its own (its own name and serial; the key is shared, as in scan_throughput's
distinct run: a key is not what the judgement looks at twice). The chains are judged by a caching
:class:`certdoctor.pipeline.Session` with the scan's defaults (two trust stores, every check, client verdicts,
the leaf's issuer root given as ``--ca-file``), exactly as ``certdoctor scan`` does after the handshake: parse
(DER → certificate, as the collector does), ``judge_chains``, the record, its JSON. Reports the process's
CPU milliseconds per leaf for each stage (``time.process_time``), so the figure does not depend on what other
processes do on the machine. ``--shape many-ca``: the leaves spread over ``--cas`` intermediates under
``--roots`` roots, round robin (a real inventory has several CAs).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import pickle
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certdoctor bench"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _ca(subject: str, key, issuer_name: x509.Name | None, issuer_key, now: dt.datetime, path_len: int | None):
    issuer_name = issuer_name or _name(subject)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf(name: str, key, issuer: x509.Certificate, issuer_key, now: dt.datetime) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def make_pki(leaves: int, cas: int, roots: int) -> tuple[list[x509.Certificate], list[tuple[str, bytes, bytes]]]:
    """``roots`` self-signed roots, ``cas`` intermediates (round robin over the roots, RSA and EC P-256
    alternating), ``leaves`` leaves (round robin over the intermediates). Returns the roots and, per leaf,
    (name, leaf DER, intermediate DER)."""
    now = dt.datetime.now(dt.UTC)
    root_certs, root_keys = [], []
    for i in range(roots):
        key = rsa.generate_private_key(65537, 2048)
        root_keys.append(key)
        root_certs.append(_ca(f"Bench Root {i}", key, None, key, now, None))
    inters = []
    for i in range(cas):
        key = rsa.generate_private_key(65537, 2048) if i % 2 == 0 else ec.generate_private_key(ec.SECP256R1())
        r = i % roots
        cert = _ca(f"Bench Issuing CA {i}", key, root_certs[r].subject, root_keys[r], now, 0)
        inters.append((cert, key))
    leaf_key = rsa.generate_private_key(65537, 2048)
    out = []
    for i in range(leaves):
        inter, inter_key = inters[i % cas]
        name = f"h{i}.distinct.certdoctor.test"
        leaf = _leaf(name, leaf_key, inter, inter_key, now)
        out.append(
            (name, leaf.public_bytes(serialization.Encoding.DER), inter.public_bytes(serialization.Encoding.DER))
        )
    return root_certs, out


async def judge_all(items: list[tuple[str, bytes, bytes]], root_file: Path, clients: bool) -> dict[str, float]:
    from certdoctor.collect.pem import load_der_certificate
    from certdoctor.model import DiagnoseOptions, PresentedChain, Target
    from certdoctor.pipeline import Session
    from certdoctor.scan.records import diagnosis_record, serialise
    from certdoctor.scan.targets import ScanTarget

    times = {"parse": 0.0, "judge": 0.0, "record": 0.0, "json": 0.0}
    parsed_inters: dict[bytes, x509.Certificate] = {}  # the collector parses each distinct certificate once
    async with Session(DiagnoseOptions(ca_files=(str(root_file),), clients=clients), cache=True) as session:
        for line, (name, leaf_der, inter_der) in enumerate(items, 1):
            t0 = time.process_time()
            leaf = load_der_certificate(leaf_der)
            inter = parsed_inters.get(inter_der)
            if inter is None:
                inter = parsed_inters[inter_der] = load_der_certificate(inter_der)
            chain = PresentedChain("127.0.0.1:443", "127.0.0.1", (leaf, inter), 2, "TLSv1.3", "TLS_AES_128_GCM_SHA256")
            t1 = time.process_time()
            target = ScanTarget(line, f"{name}:443,addr=127.0.0.1", name, 443, name, name, ("127.0.0.1",))
            tgt = Target(name, 443, name, ("127.0.0.1",), host=name)
            d = await session.judge_chains(tgt, [chain])
            t2 = time.process_time()
            record = diagnosis_record(target, d, attempts=1, elapsed=0.01, full=False, clients=clients)
            t3 = time.process_time()
            serialise("jsonl", record)
            t4 = time.process_time()
            times["parse"] += t1 - t0
            times["judge"] += t2 - t1
            times["record"] += t3 - t2
            times["json"] += t4 - t3
            if line == 1:
                first = record
    times["verdict"] = first["verdict"]  # type: ignore[assignment]
    times["ids"] = [f["id"] for f in first.get("findings") or []]  # type: ignore[assignment]
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=2000)
    parser.add_argument("--shape", choices=("one-ca", "many-ca", "both"), default="both")
    parser.add_argument("--cas", type=int, default=40, help="intermediates of the many-ca shape (40)")
    parser.add_argument("--roots", type=int, default=8, help="roots of the many-ca shape (8)")
    parser.add_argument("--clients", action="store_true", help="per-client predictions in each record (scan --clients)")
    parser.add_argument("--profile", help="write a cProfile of the judgement here (pstats format)")
    parser.add_argument(
        "--pki",
        type=Path,
        help="read the certificates from this file when it exists, else write them there (for instruction counts "
        "under valgrind --tool=callgrind, where issuing them would take minutes)",
    )
    ns = parser.parse_args(argv)
    shapes = ["one-ca", "many-ca"] if ns.shape == "both" else [ns.shape]
    for shape in shapes:
        cas, roots = (1, 1) if shape == "one-ca" else (ns.cas, ns.roots)
        began = time.perf_counter()
        saved = ns.pki.with_suffix(f".{shape}.pickle") if ns.pki else None
        if saved is not None and saved.exists():
            roots_der, items = pickle.loads(saved.read_bytes())
            root_certs = [x509.load_der_x509_certificate(der) for der in roots_der]
            items = items[: ns.leaves]
        else:
            root_certs, items = make_pki(ns.leaves, cas, roots)
            if saved is not None:
                roots_der = [c.public_bytes(serialization.Encoding.DER) for c in root_certs]
                saved.write_bytes(pickle.dumps((roots_der, items)))
        sys.stderr.write(
            f"{shape}: issued {ns.leaves:,} leaves under {cas} CA(s), {roots} root(s) "
            f"in {time.perf_counter() - began:.1f} s\n"
        )
        with tempfile.TemporaryDirectory() as tmp:
            root_file = Path(tmp) / "roots.pem"
            root_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in root_certs))
            profiler = cProfile.Profile() if ns.profile else None
            if profiler:
                profiler.enable()
            times = asyncio.run(judge_all(items, root_file, ns.clients))
            if profiler:
                profiler.disable()
                profiler.dump_stats(ns.profile if len(shapes) == 1 else f"{ns.profile}.{shape}")
        n = ns.leaves
        stages = ("parse", "judge", "record", "json")
        total = sum(times[k] for k in stages)
        parts = ", ".join(f"{k} {1000 * times[k] / n:.3f}" for k in stages)
        print(f"{shape:8s} CPU ms per leaf: {1000 * total / n:.3f} ({parts}); first: {times['verdict']} {times['ids']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
