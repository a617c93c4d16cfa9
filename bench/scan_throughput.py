#!/usr/bin/env python3
"""certdoctor scan throughput benchmark: raw handshake probe vs `certdoctor scan` vs sslyze, in one run.

Starts the lab (for its PKI, chain files and AIA server), serves a mix of its scenarios from nginx on
loopback (or from the lab's own servers when nginx is absent), writes a target list that repeats those few
servers, then measures on the same targets, one after the other:

1. the raw reference probe (bench/_rawprobe.py: asyncio + pyOpenSSL memory BIOs, handshake + chain only)
   and ``certdoctor scan`` with full diagnosis (its defaults), alternating, in rounds (the best counts);
   every scan record is checked against the lab's expectations; then the raw probe in 2 processes;
2. both again on targets that each have a certificate and name of their own (issued for the run, served by
   the same nginx by SNI): nothing per target can come from a cache there;
3. the scan on a 100,000-target input, sampling the peak RSS of its process tree;
4. sslyze with only the certificate_info scan command (in its own venv, created on first use);
5. ``certdoctor check`` cold start for one target.

Prints a table with PASS/FAIL per target and writes a JSON summary (``--out``; ``--json`` prints it on
stdout instead of the table). Always exits 0 unless the harness itself broke (exit 2). See bench/README.md.

    python3 bench/scan_throughput.py            # default sizes, about 4 minutes on 2 cores
    python3 bench/scan_throughput.py --quick    # smaller sizes, under a minute
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RAWPROBE = BENCH / "_rawprobe.py"
COLLECTPROBE = BENCH / "_collectprobe.py"  # certdoctor's collector alone: the ceiling of any scan
SSLYZE_DRIVER = BENCH / "_sslyze_driver.py"
MAXRSS = BENCH / "_maxrss.py"

# The mix: correct and broken chains (RSA, ECDSA, two intermediates, expired, wrong name, incomplete with an
# AIA URL the scan has to follow, self-signed, private root, ...). All of them nginx can serve as they are.
DEFAULT_SCENARIOS = (
    "good-rsa",
    "good-ecdsa",
    "good-two-level",
    "wildcard",
    "expired",
    "expiring-soon",
    "wrong-host",
    "self-signed",
    "untrusted-root",
    "incomplete-aia",
    "wrong-order",
    "root-included",
)

# Targets from the issue.
TARGET_SCAN_VS_RAW = 0.90
TARGET_SCAN_VS_SSLYZE = 15.0
TARGET_RSS_MB = 300.0
TARGET_RSS_INPUT = 100_000
TARGET_COLD_START = 0.3
TARGET_DISTINCT_VS_RAW = 0.85  # every target its own certificate: the scan's rate against the raw probe's
FOREIGN_WARN = 0.10  # warn when other processes took more than this share of the machine during a run

_T0 = time.perf_counter()
_QUIET = False


class HarnessError(Exception):
    """The benchmark itself cannot go on (the lab or every server failed to start, ...)."""


def log(message: str) -> None:
    if not _QUIET:
        sys.stderr.write(f"[{time.perf_counter() - _T0:6.1f}s] {message}\n")
        sys.stderr.flush()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certdoctor-bench"


def installed_env() -> dict[str, str]:
    """The environment of measured runs: Python caches bytecode, as it does for any installed package (a
    checkout run with PYTHONDONTWRITEBYTECODE would recompile every module at every start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPYCACHEPREFIX": str(cache_dir() / "pycache")}


def certdoctor_argv() -> list[str]:
    """How to run the certdoctor CLI: the console script next to this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("certdoctor")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("certdoctor")
    if found:
        return [found]
    return [sys.executable, "-c", "from certdoctor.cli import entry; entry()"]


def fmt_int(value: float) -> str:
    return f"{round(value):,}"


def stop_process(proc: subprocess.Popen[Any] | None, name: str, *, group: bool = False) -> None:
    """SIGTERM (to its process group if it has its own), wait, then SIGKILL: only processes we started."""
    if proc is None or proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(timeout=10)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    log(f"stopped {name}")


# --------------------------------------------------------------------------------------------------- lab


@dataclass
class Scenario:
    name: str
    hostname: str
    port: int  # where the benchmark's server for it listens
    expected_ids: frozenset[str]
    expected_verdict: str
    chain_file: Path
    key_file: Path
    chain_len: int  # certificates in the chain file (what a client should receive)


@dataclass
class Lab:
    proc: subprocess.Popen[bytes]
    doc: dict[str, Any]
    root: Path
    log_path: Path


def start_lab(state_dir: Path, workdir: Path, timeout: float = 180.0) -> Lab:
    """``certdoctor lab --port-base 0 --json`` in the background; returns once its JSON line is read."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "lab.stderr"
    argv = [*certdoctor_argv(), "lab", "--port-base", "0", "--json", "--state-dir", str(state_dir)]
    log(f"starting the lab: {' '.join(argv[-6:])}")
    with log_path.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            stop_process(proc, "lab")
            tail = log_path.read_text(errors="replace")[-2000:]
            raise HarnessError(f"the lab did not start (exit {proc.returncode}): {tail.strip() or 'no output'}")
        ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 1.0))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 1 << 20)
            if not chunk and proc.poll() is not None:
                continue
            buffer += chunk
    doc = json.loads(buffer.split(b"\n", 1)[0])
    return Lab(proc=proc, doc=doc, root=Path(doc["root"]), log_path=log_path)


def finding_severities() -> dict[str, str]:
    out = subprocess.run([*certdoctor_argv(), "rules", "--json"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise HarnessError(f"certdoctor rules --json failed: {out.stderr.strip()[-500:]}")
    return {rule["id"]: rule.get("severity", "?") for rule in json.loads(out.stdout)["rules"]}


def pick_scenarios(lab: Lab, names: Sequence[str], severities: dict[str, str]) -> list[Scenario]:
    chains = lab.root.parent / "chains"
    by_name = {s["name"]: s for s in lab.doc["scenarios"]}
    picked: list[Scenario] = []
    for name in names:
        if name not in by_name:
            raise HarnessError(f"unknown lab scenario {name!r} (known: {', '.join(by_name)})")
        entry = by_name[name]
        expected = frozenset(entry["expected"])
        verdict = "invalid" if any(severities.get(i) == "error" for i in expected) else "valid"
        chain_file = chains / f"{name}.pem"
        picked.append(
            Scenario(
                name=name,
                hostname=entry["hostname"],
                port=int(entry["port"]),
                expected_ids=expected,
                expected_verdict=verdict,
                chain_file=chain_file,
                key_file=chains / f"{name}.key",
                chain_len=chain_file.read_text().count("-----BEGIN CERTIFICATE-----"),
            )
        )
    return picked


# ------------------------------------------------------------------------------------ distinct certificates

DISTINCT_DOMAIN = "distinct.certdoctor.test"


class Unavailable(Exception):
    """An optional part of the benchmark cannot run here (the message says why)."""


@dataclass
class DistinctCerts:
    """One certificate and name per target, like a real inventory: nothing per-target is cacheable."""

    scenario: Scenario  # what each of them must be judged as (hostname: the first name; port: nginx's)
    names: list[str]
    cert_files: list[Path]
    key_file: Path
    shape: str = "one-ca"  # "one-ca" (every leaf under good-rsa's issuer) or "many-ca" (DISTINCT_SHAPES)
    roots_file: Path | None = None  # the scan's --ca-file when the leaves chain to roots of their own


# The distinct-certificate shapes: (label, intermediates, roots). "one-ca": every leaf under the lab's good-rsa
# issuer (one CA chain, thousands of leaves); "many-ca": leaves round robin over a few dozen intermediates
# (RSA 2048 and EC P-256 alternating) under several roots, as a real inventory has several CAs.
DISTINCT_SHAPES = {"one-ca": (1, 1), "many-ca": (32, 8)}


def _copy_extensions(builder: Any, template: Any, key: Any, issuer_key: Any) -> Any:
    """``builder`` with ``template``'s extensions, the key identifiers recomputed for ``key`` and ``issuer_key``."""
    from cryptography import x509

    for ext in template.extensions:
        value = ext.value
        if isinstance(value, x509.SubjectKeyIdentifier):
            value = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        elif isinstance(value, x509.AuthorityKeyIdentifier):
            value = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(value, ext.critical)
    return builder


def _many_cas(root: Any, intermediate: Any, cas: int, roots: int) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """``roots`` roots like the lab's (RSA 2048) and ``cas`` intermediates like ``intermediate`` (round robin
    over the roots; RSA 2048 and EC P-256 alternating): (root certificates, [(intermediate, its key)])."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    def build(subject: str, key: Any, issuer: Any, issuer_key: Any, template: Any) -> Any:
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certdoctor bench"),
                x509.NameAttribute(NameOID.COMMON_NAME, subject),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name if issuer is None else issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(template.not_valid_before_utc)
            .not_valid_after(template.not_valid_after_utc)
        )
        return _copy_extensions(builder, template, key, issuer_key).sign(issuer_key, hashes.SHA256())

    root_certs, root_keys = [], []
    for i in range(roots):
        key = rsa.generate_private_key(65537, 2048)
        root_certs.append(build(f"certdoctor bench root {i}", key, None, key, root))
        root_keys.append(key)
    out = []
    for i in range(cas):
        key = rsa.generate_private_key(65537, 2048) if i % 2 == 0 else ec.generate_private_key(ec.SECP256R1())
        out.append(
            (build(f"certdoctor bench CA {i}", key, root_certs[i % roots], root_keys[i % roots], intermediate), key)
        )
    return root_certs, out


def make_distinct_certs(
    lab: Lab, template: Scenario, count: int, directory: Path, shape: str = "one-ca"
) -> DistinctCerts:
    """``count`` leaf certificates like ``template``'s (same key, validity and extensions), each for a name of
    its own; one chain file (leaf + intermediate) each. ``shape`` "one-ca": all signed with the lab's CA key
    (``template``'s issuer); "many-ca": round robin over the intermediates of DISTINCT_SHAPES (made here, with
    roots of their own, written with the lab's root to ``roots_file``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    certs = x509.load_pem_x509_certificates(template.chain_file.read_bytes())
    if len(certs) != 2:
        raise Unavailable(f"{template.name}'s chain file does not hold a leaf and one intermediate")
    leaf, intermediate = certs
    ca_key = None
    for candidate in sorted((lab.root.parent / "keys").glob("*.pem")):
        with contextlib.suppress(ValueError, TypeError):
            key = serialization.load_pem_private_key(candidate.read_bytes(), password=None)
            if key.public_key() == intermediate.public_key():
                ca_key = key
                break
    if ca_key is None:
        raise Unavailable(f"the private key of {template.name}'s issuer is not in the lab's state dir")
    directory.mkdir(parents=True, exist_ok=True)
    issuers: list[tuple[Any, Any]] = [(intermediate, ca_key)]
    roots_file = None
    if shape != "one-ca":
        cas, roots = DISTINCT_SHAPES[shape]
        root = x509.load_pem_x509_certificate(lab.root.read_bytes())
        root_certs, issuers = _many_cas(root, intermediate, cas, roots)
        roots_file = directory / "roots.pem"
        roots_file.write_bytes(
            lab.root.read_bytes() + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in root_certs)
        )
    tails = [issuer.public_bytes(serialization.Encoding.PEM) for issuer, _ in issuers]
    prefix = "h" if shape == "one-ca" else "m"
    names: list[str] = []
    files: list[Path] = []
    for index in range(count):
        name = f"{prefix}{index}.{DISTINCT_DOMAIN}"
        issuer, issuer_key = issuers[index % len(issuers)]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer.subject)
            .public_key(leaf.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(leaf.not_valid_before_utc)
            .not_valid_after(leaf.not_valid_after_utc)
        )
        for ext in leaf.extensions:
            value = ext.value
            if isinstance(value, x509.SubjectAlternativeName):
                value = x509.SubjectAlternativeName([x509.DNSName(name)])
            elif isinstance(value, x509.AuthorityKeyIdentifier) and shape != "one-ca":
                value = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
            builder = builder.add_extension(value, ext.critical)
        cert = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
        path = directory / f"{index}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + tails[index % len(tails)])
        names.append(name)
        files.append(path)
    scenario = Scenario(
        name=f"distinct-certs-{shape}",
        hostname=names[0],
        port=0,
        expected_ids=template.expected_ids,
        expected_verdict=template.expected_verdict,
        chain_file=files[0],
        key_file=template.key_file,
        chain_len=2,
    )
    return DistinctCerts(scenario, names, files, template.key_file, shape, roots_file)


# ------------------------------------------------------------------------------------------------- nginx


@dataclass
class Server:
    description: str
    proc: subprocess.Popen[bytes] | None = None
    error_log: Path | None = None


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now (held open together so they differ)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for_ports(ports: Sequence[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
                time.sleep(0.05)


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def start_nginx(
    nginx: str, scenarios: list[Scenario], workdir: Path, workers: str, distinct: Sequence[DistinctCerts] = ()
) -> Server:
    """One nginx (``daemon off``, own prefix) with one ``server`` per scenario on a fresh loopback port, plus
    one port where each distinct certificate (of every shape) has a ``server`` of its own, chosen by SNI."""
    prefix = workdir / "nginx"
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    ports = free_ports(len(scenarios) + 1)
    distinct_port = ports.pop()
    servers = []
    for scenario, port in zip(scenarios, ports, strict=True):
        servers.append(f"""
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        server_name {scenario.hostname};
        ssl_certificate     {scenario.chain_file};
        ssl_certificate_key {scenario.key_file};
        location / {{ return 200 "{scenario.name}\\n"; }}
    }}""")
    first = True
    for certs in distinct:
        for name, cert in zip(certs.names, certs.cert_files, strict=True):
            params = " default_server backlog=4096" if first else ""
            first = False
            servers.append(
                f"""
    server {{
        listen 127.0.0.1:{distinct_port} ssl{params};
        server_name {name};
        ssl_certificate {cert};
        ssl_certificate_key {certs.key_file};
    }}"""
            )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log error;
events {{ worker_connections {min(16384, nofile // 2)}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    server_names_hash_max_size 65536;
    server_names_hash_bucket_size 128;
{"".join(servers)}
}}
""")
    # -e: the error log from the start (not the compiled-in /var/log path, which non-root users cannot open)
    base = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs" / "error.log")]
    test = subprocess.run([*base, "-t"], capture_output=True, text=True)
    if test.returncode != 0:
        raise HarnessError(f"nginx -t failed: {test.stderr.strip()[-1500:]}")
    proc = subprocess.Popen(
        [*base, "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(prefix / "logs" / "stderr.log").open("wb"),
    )
    try:
        wait_for_ports([*ports, distinct_port] if distinct else ports, timeout=60)
    except TimeoutError as exc:
        stop_process(proc, "nginx")
        errors = (prefix / "logs" / "error.log").read_text(errors="replace")[-800:]
        raise HarnessError(f"nginx did not start: {exc}; {errors}") from None
    for scenario, port in zip(scenarios, ports, strict=True):
        scenario.port = port
    for certs in distinct:
        certs.scenario.port = distinct_port
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    version = version.rsplit("/", 1)[-1] if "/" in version else version
    label = "1 worker" if workers == "1" else f"worker_processes {workers}"
    return Server(f"nginx {version} ({label})", proc, prefix / "logs" / "error.log")


def check_served_chains(scenarios: list[Scenario]) -> None:
    """One handshake per scenario with the raw probe: the server must send exactly the chain file."""
    sys.path.insert(0, str(BENCH))
    import asyncio

    import _rawprobe

    async def probe_all() -> list[int | BaseException]:
        ctx = _rawprobe.client_context()
        return await asyncio.gather(
            *(_rawprobe.probe_one(ctx, _rawprobe.Target(s.hostname, s.port, "127.0.0.1"), 10.0) for s in scenarios),
            return_exceptions=True,
        )

    results = asyncio.run(probe_all())
    problems = [
        f"{s.name}: {r!r}" if isinstance(r, BaseException) else f"{s.name}: {r} certificates, file has {s.chain_len}"
        for s, r in zip(scenarios, results, strict=True)
        if isinstance(r, BaseException) or r != s.chain_len
    ]
    if problems:
        raise HarnessError("the servers do not send the lab's chains: " + "; ".join(problems))


# ----------------------------------------------------------------------------------------------- targets


def write_targets(path: Path, scenarios: list[Scenario], count: int) -> None:
    """``count`` lines cycling through the scenarios (line i -> scenarios[i % len])."""
    lines = [f"{s.hostname}:{s.port},addr=127.0.0.1\n" for s in scenarios]
    with path.open("w", encoding="utf-8") as handle:
        full, rest = divmod(count, len(lines))
        chunk = "".join(lines)
        for _ in range(full):
            handle.write(chunk)
        handle.write("".join(lines[:rest]))


def write_distinct_targets(path: Path, distinct: DistinctCerts) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for name in distinct.names:
            handle.write(f"{name}:{distinct.scenario.port},addr=127.0.0.1\n")


# ------------------------------------------------------------------------------------------- raw probe


def run_raw(
    targets: Path, count: int, concurrency: int, processes: int, timeout: float, probe: Path = RAWPROBE
) -> dict[str, Any]:
    """The raw probe (or ``probe``: another script with its command line and JSON, such as COLLECTPROBE) in
    ``processes`` processes (targets sharded, concurrency split); wall clock throughput."""
    per = max(1, concurrency // processes)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(probe), str(targets), "--concurrency", str(per), "--shard", f"{i}/{processes}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=installed_env(),
        )
        for i in range(processes)
    ]
    shards: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                errors.append(f"timed out after {timeout:.0f} s")
            if proc.returncode == 0 and out.strip():
                shards.append(json.loads(out.strip().splitlines()[-1]))
            elif proc.returncode != 0:
                errors.append(f"exit {proc.returncode}: {err.strip()[-500:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - started
    ok = sum(s["ok"] for s in shards)
    failed = count - ok
    chain_lengths: dict[str, Counter[int]] = {}
    probe_errors: Counter[str] = Counter()
    for shard in shards:
        for key, lengths in shard["chain_lengths"].items():
            chain_lengths.setdefault(key, Counter()).update({int(k): v for k, v in lengths.items()})
        probe_errors.update(shard["errors"])
    return {
        "processes": processes,
        "concurrency_per_process": per,
        "targets": count,
        "ok": ok,
        "failed": failed,
        "wall_seconds": wall,
        "rate": ok / wall if wall > 0 else 0.0,
        "inner_seconds": max((s["elapsed"] for s in shards), default=0.0),
        "errors": dict(probe_errors.most_common(5)) | ({"harness": errors} if errors else {}),
        "chain_lengths": {k: dict(v) for k, v in chain_lengths.items()},
    }


# ---------------------------------------------------------------------------------------------- the scan


@dataclass
class ScanSupport:
    available: bool
    reason: str = ""
    flags: set[str] = field(default_factory=set)
    help_text: str = ""


def scan_command(ns: argparse.Namespace) -> list[str]:
    """``certdoctor scan``, or the ``--scan-command`` stand-in (e.g. another build)."""
    return ns.scan_command.split() if ns.scan_command else [*certdoctor_argv(), "scan"]


def scan_support(ns: argparse.Namespace) -> ScanSupport:
    try:
        out = subprocess.run([*scan_command(ns), "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ScanSupport(False, f"certdoctor scan --help: {exc}")
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return ScanSupport(False, f"`certdoctor scan --help` exits {out.returncode}: {last}")
    return ScanSupport(True, flags=set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout)), help_text=out.stdout)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        with contextlib.suppress(OSError):
            kids.extend(int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return kids


def _tree(pid: int) -> Iterator[int]:
    stack = [pid]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(_children(current))


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu_seconds(pid: int | None) -> float:
    """user + system CPU seconds of a live process tree (the server), from /proc/<pid>/stat."""
    if pid is None:
        return 0.0
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _CLK_TCK


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat: user, nice, system, irq, softirq)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / _CLK_TCK
    return 0.0


def own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds over a block: our finished children (the measured client), the server, and everything
    else on the machine ("foreign": other people's processes disturb a benchmark on a 2-core machine)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.client = self.server = self.foreign = self.wall = 0.0

    def __enter__(self) -> CpuMeter:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._client0 = usage.ru_utime + usage.ru_stime
        self._server0 = tree_cpu_seconds(self.server_pid)
        self._busy0 = machine_busy_seconds()
        self._own0 = own_seconds()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall = time.perf_counter() - self._wall0
        self.client = usage.ru_utime + usage.ru_stime - self._client0
        self.server = tree_cpu_seconds(self.server_pid) - self._server0
        own = own_seconds() - self._own0
        self.foreign = max(0.0, machine_busy_seconds() - self._busy0 - self.client - self.server - own)

    def per_target(self, count: int) -> dict[str, float]:
        cores = os.cpu_count() or 1
        return {
            "client_cpu_seconds": self.client,
            "server_cpu_seconds": self.server,
            "client_cpu_ms_per_target": 1000 * self.client / count if count else 0.0,
            "server_cpu_ms_per_target": 1000 * self.server / count if count else 0.0,
            "foreign_cpu_share": self.foreign / (cores * self.wall) if self.wall > 0 else 0.0,
        }


class TreeSampler(threading.Thread):
    """Every ``interval`` s: the summed VmRSS of a process tree, its process count, and an output file's size."""

    def __init__(self, pid: int, output: Path, interval: float = 0.05, *, skip_root: bool = False) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.skip_root = skip_root  # the root is bench/_maxrss.py, not part of the measured tree
        self.output = output
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self.peak_processes = 0
        self.peak_single_kb = 0
        self.samples: list[tuple[float, int]] = []  # (seconds since start, output bytes)
        self.started = time.perf_counter()

    def run(self) -> None:
        while not self.stop_event.is_set():
            pids = list(_tree(self.pid))[1 if self.skip_root else 0 :]
            sizes = [_rss_kb(p) for p in pids]
            total = sum(sizes)
            if total > self.peak_kb:
                self.peak_kb = total
            self.peak_single_kb = max(self.peak_single_kb, max(sizes, default=0))
            self.peak_processes = max(self.peak_processes, sum(1 for s in sizes if s))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(p) for p in pids))
            with contextlib.suppress(OSError):
                self.samples.append((time.perf_counter() - self.started, self.output.stat().st_size))
            self.stop_event.wait(self.interval)


def steady_rate(samples: list[tuple[float, int]], records: int) -> tuple[float | None, float | None]:
    """(seconds until the first record was written, records/s between 10 % and 90 % of the output)."""
    if records <= 0 or not samples:
        return None, None
    final = samples[-1][1]
    if final <= 0:
        return None, None
    first = next((t for t, size in samples if size > 0), None)
    low = next((t for t, size in samples if size >= 0.1 * final), None)
    high = next((t for t, size in samples if size >= 0.9 * final), None)
    if low is None or high is None or high <= low:
        return first, None
    return first, 0.8 * records / (high - low)


def run_scan(
    support: ScanSupport,
    targets: Path,
    count: int,
    output: Path,
    workdir: Path,
    root: Path,
    ns: argparse.Namespace,
    label: str,
) -> dict[str, Any]:
    """Run ``certdoctor scan`` as a child, sampling RSS; wall clock from spawn to exit."""
    argv = [*scan_command(ns), str(targets)]
    wanted = [
        ("--jsonl", []),
        ("-o", [str(output)]),
        ("--concurrency", [str(ns.concurrency)]),
        ("--workers", [str(ns.workers)] if ns.workers else None),
        ("--ca-file", [str(root)]),
        ("--no-progress", []),
        ("--quiet", []),
    ]
    skipped: list[str] = []
    for flag, values in wanted:
        if values is None:
            continue
        if flag == "-o" or flag in support.flags:
            argv += [flag, *values]
        else:
            skipped.append(flag)
    argv += ns.scan_arg
    stderr_path = workdir / f"scan-{label}.stderr"
    log(f"certdoctor scan ({label}, {count:,} targets): {' '.join(argv[1:])}")
    if output.exists():
        output.unlink()
    report = workdir / f"scan-{label}.rusage.json"
    report.unlink(missing_ok=True)
    wrapped = [sys.executable, str(MAXRSS), str(report), "--", *argv]  # clean ru_maxrss: see _maxrss.py
    started = time.perf_counter()
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            wrapped,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            env=installed_env(),
        )
    sampler = TreeSampler(proc.pid, output, skip_root=True)
    sampler.start()
    limit = ns.step_timeout or (60 + count / 100)
    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(limit, kill_on_timeout)
    timer.start()
    try:
        _, status, _usage = os.wait4(proc.pid, 0)
    except BaseException:  # interrupted: the scan and its workers must not outlive us
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        sampler.stop_event.set()
        raise
    finally:
        timer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop_event.set()
    sampler.join()
    # Workers the scan did not reap itself (it should) must not outlive the step.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    stderr_tail = stderr_path.read_text(errors="replace")[-3000:]
    rusage: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        rusage = json.loads(report.read_text())
    if rusage.get("wall_seconds"):
        wall = float(rusage["wall_seconds"])  # the scan's own lifetime, without the wrapper's start-up (~30 ms)
    records = 0
    if output.exists():
        with output.open("rb") as handle:
            records = sum(1 for line in handle if line.strip())
    first_record, steady = steady_rate(sampler.samples, records)
    return {
        "label": label,
        "argv": argv[1:],
        "flags_not_supported": skipped,
        "exit_code": proc.returncode,
        "timed_out": timed_out.is_set(),
        "timeout_seconds": limit,
        "targets": count,
        "records": records,
        "wall_seconds": wall,
        "rate": records / wall if wall > 0 else 0.0,
        "first_record_seconds": first_record,
        "steady_rate": steady,
        "peak_rss_tree_mb": sampler.peak_kb / 1024,
        "peak_rss_single_process_mb": sampler.peak_single_kb / 1024,
        "peak_pss_tree_mb": sampler.peak_pss_kb / 1024,
        "peak_processes": sampler.peak_processes,
        # From bench/_maxrss.py: the largest single process of the scan (wait4 / RUSAGE_CHILDREN).
        "ru_maxrss_mb": rusage["ru_maxrss_kb"] / 1024 if "ru_maxrss_kb" in rusage else None,
        "ru_maxrss_children_mb": rusage["children_ru_maxrss_kb"] / 1024 if "children_ru_maxrss_kb" in rusage else None,
        "stderr_tail": stderr_tail,
    }


Expectation = Callable[[int], tuple[Scenario, str]]


def cycling(scenarios: list[Scenario]) -> Expectation:
    """Target i (0-based) is scenarios[i % n], connected to by its hostname (see write_targets)."""
    return lambda index: (scenarios[index % len(scenarios)], scenarios[index % len(scenarios)].hostname)


def distinct_key(kind: str, shape: str) -> str:
    """The results key of a distinct-certificate run: "raw_distinct"/"scan_distinct" for the one-CA shape,
    "raw_distinct_many"/"scan_distinct_many" for the many-CA one."""
    return f"{kind}_distinct" if shape == "one-ca" else f"{kind}_distinct_many"


def each_distinct(distinct: DistinctCerts) -> Expectation:
    """Target i is distinct.names[i] (see write_distinct_targets)."""
    return lambda index: (distinct.scenario, distinct.names[index])


def verify_scan(output: Path, count: int, expect: Expectation) -> dict[str, Any]:
    """One record per line, each with the verdict and exact finding ids the lab expects for its scenario."""
    by_line: dict[int, dict[str, Any]] = {}
    duplicates = 0
    unparsable = 0
    no_line = 0
    mismatches: dict[str, Counter[str]] = {}
    examples: dict[str, dict[str, Any]] = {}
    verdicts: Counter[str] = Counter()
    records: list[dict[str, Any]] = []
    if output.exists():
        with output.open(encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    unparsable += 1
                    continue
                if not isinstance(record, dict):
                    unparsable += 1
                    continue
                records.append(record)
    lines = [r.get("line") for r in records if isinstance(r.get("line"), int)]
    base = 0 if lines and min(lines) == 0 else 1  # the contract says "line"; 1-based expected
    for record in records:
        line = record.get("line")
        if not isinstance(line, int):
            no_line += 1
            continue
        if line in by_line:
            duplicates += 1
        by_line[line] = record
    matched = 0
    for line, record in by_line.items():
        index = line - base
        if not 0 <= index < count:
            key = "line out of range"
            mismatches.setdefault("?", Counter())[key] += 1
            continue
        scenario, hostname = expect(index)
        verdict = str(record.get("verdict"))
        verdicts[verdict] += 1
        findings = record.get("findings") or []
        ids = sorted({str(f.get("id")) for f in findings if isinstance(f, dict)})
        target = str(record.get("target", ""))
        problems = []
        if not target.startswith(f"{hostname}:{scenario.port}"):
            problems.append(f"target {target!r} is not line {line}'s")
        if verdict != scenario.expected_verdict:
            problems.append(f"verdict {verdict} (want {scenario.expected_verdict})")
        if set(ids) != scenario.expected_ids:
            problems.append(f"findings {ids} (want {sorted(scenario.expected_ids)})")
        if problems:
            key = "; ".join(problems)
            mismatches.setdefault(scenario.name, Counter())[key] += 1
            if scenario.name not in examples:
                examples[scenario.name] = {k: record.get(k) for k in ("line", "target", "verdict", "error")} | {
                    "finding_ids": ids
                }
        else:
            matched += 1
    missing = count - len([line for line in by_line if 0 <= line - base < count])
    return {
        "records": len(records),
        "expected_records": count,
        "missing": missing,
        "duplicates": duplicates,
        "unparsable": unparsable,
        "without_line": no_line,
        "matched": matched,
        "mismatched": sum(sum(c.values()) for c in mismatches.values()),
        "verdicts": dict(verdicts),
        "mismatches": {name: dict(c.most_common(5)) for name, c in mismatches.items()},
        "examples": examples,
        "ok": missing == 0 and duplicates == 0 and unparsable == 0 and no_line == 0 and not mismatches,
    }


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with every run's rate and, if any run's records were wrong, the worst verification."""
    best = dict(max(runs, key=lambda r: r.get("rate", 0.0)))
    best["round_rates"] = [r.get("rate", 0.0) for r in runs]
    verifications = [r["verification"] for r in runs if "verification" in r]
    if verifications:
        best["verification"] = max(verifications, key=lambda v: (not v["ok"], v["mismatched"] + v["missing"]))
    codes = [r.get("exit_code") for r in runs]
    if any(code not in (0, 1) for code in codes):
        best["exit_code"] = next(code for code in codes if code not in (0, 1))
    best["timed_out"] = any(r.get("timed_out") for r in runs)
    return best


# ------------------------------------------------------------------------------------------------ sslyze


def ensure_sslyze(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with sslyze importable (created/installed if needed), or None and why not."""
    python = venv / "bin" / "python"

    def version() -> str | None:
        if not python.exists():
            return None
        probe = subprocess.run(
            [str(python), "-c", "from importlib import metadata; print(metadata.version('sslyze'))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return probe.stdout.strip() if probe.returncode == 0 else None

    found = version()
    if found:
        return python, found
    log(f"creating sslyze's venv in {venv} (pip install sslyze; once)")
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300)
    if made.returncode != 0:
        return None, f"python3 -m venv failed: {(made.stderr or made.stdout).strip()[-300:]}"
    try:
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "sslyze"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return None, "pip install sslyze timed out after 600 s"
    if pip.returncode != 0:
        lines = [x for x in pip.stderr.splitlines() if "ERROR" in x] or pip.stderr.splitlines()[-3:]
        return None, "pip install sslyze failed: " + " | ".join(lines)[-400:]
    found = version()
    return (python, found) if found else (None, "sslyze installed but cannot be imported")


def run_sslyze(
    python: Path, targets: Path, count: int, root: Path, server_scans: int | None, timeout: float
) -> dict[str, Any]:
    argv = [str(python), str(SSLYZE_DRIVER), str(targets), "--count", str(count), "--ca-file", str(root)]
    if server_scans:
        argv += ["--server-scans", str(server_scans)]
    log(f"sslyze certificate_info on {count:,} targets (concurrent server scans: {server_scans or 'default'})")
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0 or not out.stdout.strip():
        return {"error": f"exit {out.returncode}: {out.stderr.strip()[-600:]}"}
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    doc["rate"] = doc["completed"] / doc["elapsed"] if doc["elapsed"] > 0 else 0.0
    return doc


# -------------------------------------------------------------------------------------------- cold start


def cold_start(scenario: Scenario, root: Path, runs: int) -> dict[str, Any]:
    """Median wall time of ``certdoctor check`` (and variants) as fresh processes, runs interleaved.

    Bytecode: this environment may set PYTHONDONTWRITEBYTECODE, and an editable install has no compiled
    .pyc for certdoctor's own modules; an installed package does (pip compiles at install). So the runs use
    a private PYTHONPYCACHEPREFIX, filled by the warm-up run, to measure what an installed tool costs.
    """
    target = f"{scenario.hostname}:{scenario.port}"
    base = [*certdoctor_argv(), "check", target, "--resolve", f"{target}:127.0.0.1", "--ca-file", str(root), "-q"]
    variants = {
        "default": base,
        "no_clients": [*base, "--no-clients"],
        "python_baseline": [sys.executable, "-c", "pass"],
        "import_cli": [sys.executable, "-c", "import certdoctor.cli"],
    }
    env = installed_env() | {"NO_COLOR": "1"}
    log(f"cold start: certdoctor check {target} ... (median of {runs} after a warm-up run, variants interleaved)")
    times: dict[str, list[float]] = {name: [] for name in variants}
    codes: dict[str, Counter[int]] = {name: Counter() for name in variants}
    errors: dict[str, str] = {}
    for attempt in range(runs + 1):
        for name, argv in variants.items():
            started = time.perf_counter()
            out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env)
            elapsed = time.perf_counter() - started
            if attempt == 0:
                continue  # warm-up: page cache, bytecode
            times[name].append(elapsed)
            codes[name][out.returncode] += 1
            if out.returncode != 0:
                errors[name] = (out.stderr or out.stdout).strip()[-400:]
    return {
        name: {
            "argv": argv,
            "median": statistics.median(times[name]),
            "min": min(times[name]),
            "max": max(times[name]),
            "runs": runs,
            "exit_codes": {str(k): v for k, v in codes[name].items()},
            "error": errors.get(name, ""),
        }
        for name, argv in variants.items()
    } | {"env": {"PYTHONPYCACHEPREFIX": env["PYTHONPYCACHEPREFIX"], "PYTHONDONTWRITEBYTECODE": "unset"}}


# --------------------------------------------------------------------------------------------- reporting


def rounds_note(run: dict[str, Any]) -> str:
    rates = run.get("round_rates") or []
    return "best of " + " / ".join(fmt_int(r) for r in rates) if len(rates) > 1 else ""


def verdict_mark(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[ok]


def render(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    res = summary["results"]
    checks = summary["checks"]
    workers = f"{cfg['workers']} workers" if cfg.get("workers") else "default workers"
    out = [
        f"certdoctor scan throughput — {cfg['cores']} cores ({cfg['cpu']}), server: {cfg['server']}, "
        f"{cfg['targets']:,} targets over {len(cfg['scenarios'])} scenarios, concurrency {cfg['concurrency']}"
    ]
    rows: list[tuple[str, str, str, str]] = []  # what, value, PASS/FAIL, note
    raw, raw2, scan = res.get("raw"), res.get("raw_2proc"), res.get("scan") or {}
    if raw:
        rows.append(
            (
                "raw probe (asyncio + pyOpenSSL, 1 process)",
                f"{fmt_int(raw['rate'])} targets/s",
                "",
                rounds_note(raw),
            )
        )
    if raw2:
        rows.append((f"raw probe ({raw2['processes']} processes)", f"{fmt_int(raw2['rate'])} targets/s", "info", ""))
    if "rate" in scan:
        check = checks["scan_vs_raw"]
        note = f"= {check['value'] * 100:.0f} % of raw" if check["value"] is not None else ""
        if raw2 and raw2["rate"]:
            note += f" ({scan['rate'] / raw2['rate'] * 100:.0f} % of the 2-process raw)"
        note += f"; {rounds_note(scan)}" if rounds_note(scan) else ""
        rows.append(
            (
                f"certdoctor scan (full diagnosis, {workers})",
                f"{fmt_int(scan['rate'])} targets/s",
                f"{verdict_mark(check['pass'])} (≥ {TARGET_SCAN_VS_RAW * 100:.0f} %)",
                note,
            )
        )
        if scan.get("steady_rate"):
            rows.append(
                (
                    "  steady state (10–90 % of the output)",
                    f"{fmt_int(scan['steady_rate'])} targets/s",
                    "info",
                    f"first record after {scan['first_record_seconds']:.2f} s",
                )
            )
        one = res.get("scan_1w") or {}
        if one.get("rate") and raw and raw["rate"]:
            rows.append(
                (
                    "  with 1 worker (as many processes as the raw probe)",
                    f"{fmt_int(one['rate'])} targets/s",
                    "info",
                    f"= {one['rate'] / raw['rate'] * 100:.0f} % of raw; {rounds_note(one)}".rstrip("; "),
                )
            )
    elif scan:
        rows.append(("certdoctor scan", "unavailable", "FAIL", scan.get("reason", "")))
    for shape, (cas, roots) in DISTINCT_SHAPES.items():
        dist, raw_dist = res.get(distinct_key("scan", shape)) or {}, res.get(distinct_key("raw", shape)) or {}
        what = "one CA chain" if cas == 1 else f"{cas} CAs under {roots} roots"
        if "rate" in dist:
            check = checks.get(distinct_key("scan", shape) + "_vs_raw") or {}
            note = ""
            if raw_dist.get("rate"):
                note = (
                    f"= {dist['rate'] / raw_dist['rate'] * 100:.0f} % of the raw probe on the same targets "
                    f"({fmt_int(raw_dist['rate'])}/s)"
                )
            note += f"; {rounds_note(dist)}" if rounds_note(dist) else ""
            rows.append(
                (
                    f"  every target its own certificate, {what} ({dist['targets']:,} targets)",
                    f"{fmt_int(dist['rate'])} targets/s",
                    f"{verdict_mark(check.get('pass'))} (≥ {TARGET_DISTINCT_VS_RAW * 100:.0f} %)",
                    note,
                )
            )
        elif dist:
            rows.append((f"  every target its own certificate, {what}", "not run", "", dist.get("reason", "")))
        ceiling = res.get(distinct_key("collect", shape)) or {}
        if ceiling.get("rate"):
            note = ""
            if raw_dist.get("rate"):
                note = f"= {ceiling['rate'] / raw_dist['rate'] * 100:.0f} % of the raw probe"
            note += "; no judgement: the ceiling of any scan here"
            rows.append(
                (
                    f"    certdoctor's collector alone ({ceiling['processes']} processes, handshakes only)",
                    f"{fmt_int(ceiling['rate'])} targets/s",
                    "info",
                    note,
                )
            )
    for key, name in (("sslyze", "sslyze"), ("sslyze_tuned", "sslyze, tuned")):
        s = res.get(key)
        if not s:
            continue
        if "rate" not in s:
            rows.append((name, "unavailable", "n/a", s.get("error", "")))
            continue
        check = checks[f"scan_vs_{key}"]
        note = f"scan = {check['value']:.0f}× sslyze" if check["value"] is not None else ""
        mark = f"{verdict_mark(check['pass'])} (≥ {TARGET_SCAN_VS_SSLYZE:.0f}×)"
        if key == "sslyze_tuned":
            mark = f"info: {verdict_mark(check['pass'])}"
        label = f"{name} {s.get('version', '')} (certificate_info, {s.get('concurrent_server_scans_limit')} at a time)"
        rows.append((label, f"{fmt_int(s['rate'])} targets/s", mark, note))
    for key in ("scan", "scan_rss"):
        r = res.get(key) or {}
        if "peak_rss_tree_mb" in r:
            rows.append(
                (
                    f"peak RSS of the scan ({r['targets']:,} targets)",
                    f"{r['peak_rss_tree_mb']:.0f} MB",
                    f"{verdict_mark(checks['rss']['pass'])} (< {TARGET_RSS_MB:.0f} MB)"
                    if key == "scan_rss"
                    else "info",
                    f"sum over {r['peak_processes']} processes (PSS {r['peak_pss_tree_mb']:.0f} MB), largest "
                    f"{r['peak_rss_single_process_mb']:.0f} MB (ru_maxrss {r.get('ru_maxrss_children_mb') or 0:.0f} MB)"
                    + (f"; {fmt_int(r['rate'])} targets/s in that run" if key == "scan_rss" else ""),
                )
            )
        elif key == "scan_rss" and r:
            rows.append((f"peak RSS of the scan ({TARGET_RSS_INPUT:,} targets)", "not run", "n/a", r.get("reason", "")))
    cold = res.get("cold_start")
    if cold:
        rows.append(
            (
                "certdoctor check cold start",
                f"{cold['default']['median']:.2f} s",
                f"{verdict_mark(checks['cold_start']['pass'])} (≤ {TARGET_COLD_START} s)",
                f"--no-clients {cold['no_clients']['median']:.2f} s; python alone "
                f"{cold['python_baseline']['median']:.2f} s, import certdoctor.cli "
                f"{cold['import_cli']['median']:.2f} s",
            )
        )
    width = max(len(r[0]) for r in rows) + 2
    value_width = max(len(r[1]) for r in rows)
    mark_width = max(len(r[2]) for r in rows)
    for name, value, mark, note in rows:
        out.append(f"  {name:<{width}}{value:>{value_width}}   {mark:<{mark_width}}   {note}".rstrip())
    cpu = [
        f"{label} {r['client_cpu_ms_per_target']:.2f} / {r['server_cpu_ms_per_target']:.2f}"
        for label, r in (
            ("raw", res.get("raw")),
            ("raw 2-proc", res.get("raw_2proc")),
            ("scan", res.get("scan")),
            ("scan 1 worker", res.get("scan_1w")),
            ("raw distinct", res.get("raw_distinct")),
            ("scan distinct", res.get("scan_distinct")),
            ("raw distinct many-CA", res.get("raw_distinct_many")),
            ("scan distinct many-CA", res.get("scan_distinct_many")),
            ("collector alone distinct", res.get("collect_distinct")),
            ("collector alone distinct many-CA", res.get("collect_distinct_many")),
            ("scan RSS run", res.get("scan_rss")),
        )
        if r and "client_cpu_ms_per_target" in r
    ]
    if cpu:
        out.append("  CPU ms per target, client / server: " + ", ".join(cpu))
    out.extend(correctness_lines(summary))
    out.append(f"total benchmark time {summary['elapsed_seconds']:.0f} s; JSON summary: {summary.get('out') or '-'}")
    return "\n".join(out)


def correctness_lines(summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    res = summary["results"]
    disturbed = [
        f"{key} {r['foreign_cpu_share'] * 100:.0f} %"
        for key, r in res.items()
        if isinstance(r, dict) and r.get("foreign_cpu_share", 0.0) > FOREIGN_WARN
    ]
    if disturbed:
        lines.append(
            "!! other processes used the CPU during: " + ", ".join(disturbed) + " (share of the machine): "
            "those numbers are low; rerun on a quiet machine"
        )
    for key in ("raw", "raw_2proc", "raw_distinct", "raw_distinct_many", "collect_distinct", "collect_distinct_many"):
        raw = res.get(key)
        if raw and raw["failed"]:
            lines.append(f"!! {key}: {raw['failed']:,} handshakes failed: {raw['errors']}")
    for key in ("scan", "scan_1w", "scan_distinct", "scan_distinct_many", "scan_rss"):
        scan = res.get(key)
        if not scan or "verification" not in scan:
            continue
        v = scan["verification"]
        state = "OK" if v["ok"] and scan["exit_code"] in (0, 1) and not scan["timed_out"] else "!! PROBLEMS"
        lines.append(
            f"{state} {key} ({scan['targets']:,} targets): {v['records']:,} records, {v['matched']:,} match the "
            f"lab's expected verdict + finding ids, {v['mismatched']:,} mismatched, {v['missing']:,} missing, "
            f"{v['duplicates']:,} duplicate; exit code {scan['exit_code']}; verdicts {v['verdicts']}"
        )
        if scan["timed_out"]:
            lines.append(f"!!   the scan was killed after {scan['timeout_seconds']:.0f} s")
        if scan["flags_not_supported"]:
            lines.append(f"!!   scan --help lacks these contract flags (not passed): {scan['flags_not_supported']}")
        for name, problems in v["mismatches"].items():
            for problem, n in problems.items():
                lines.append(f"!!   {name}: {n:,}× {problem}")
            if name in v["examples"]:
                lines.append(f"!!     e.g. {json.dumps(v['examples'][name])[:300]}")
        if not v["ok"] or scan["exit_code"] not in (0, 1):
            tail = scan["stderr_tail"].strip().splitlines()[-8:]
            lines.extend(f"!!   stderr: {x}" for x in tail)
    for key in ("sslyze", "sslyze_tuned"):
        s = res.get(key)
        if s and s.get("failed"):
            lines.append(f"!! {key}: {s['failed']} of {s['targets']} targets failed: {s['errors']}")
    cold = res.get("cold_start")
    if cold:
        for variant in ("default", "no_clients"):
            codes = cold[variant]["exit_codes"]
            if set(codes) != {"0"}:
                lines.append(f"!! cold start ({variant}): exit codes {codes} (want 0) {cold[variant]['error']}")
    return lines


def evaluate(summary: dict[str, Any]) -> None:
    res = summary["results"]
    raw = res.get("raw") or {}
    scan = res.get("scan") or {}
    checks: dict[str, dict[str, Any]] = {}

    def ratio(num: float | None, den: float | None) -> float | None:
        return num / den if num and den else None

    scan_ok = bool(scan.get("verification", {}).get("ok"))
    value = ratio(scan.get("rate"), raw.get("rate"))
    checks["scan_vs_raw"] = {
        "value": value,
        "target": TARGET_SCAN_VS_RAW,
        "pass": None if value is None else (value >= TARGET_SCAN_VS_RAW and scan_ok),
    }
    for key in ("sslyze", "sslyze_tuned"):
        value = ratio(scan.get("rate"), (res.get(key) or {}).get("rate"))
        checks[f"scan_vs_{key}"] = {
            "value": value,
            "target": TARGET_SCAN_VS_SSLYZE,
            "pass": None if value is None else (value >= TARGET_SCAN_VS_SSLYZE and scan_ok),
        }
    for shape in DISTINCT_SHAPES:
        dist, raw_dist = res.get(distinct_key("scan", shape)) or {}, res.get(distinct_key("raw", shape)) or {}
        value = ratio(dist.get("rate"), raw_dist.get("rate"))
        ok = bool(dist.get("verification", {}).get("ok"))
        checks[distinct_key("scan", shape) + "_vs_raw"] = {
            "value": value,
            "target": TARGET_DISTINCT_VS_RAW,
            "pass": None if value is None else (value >= TARGET_DISTINCT_VS_RAW and ok),
        }
    rss = res.get("scan_rss") or {}
    peak = rss.get("peak_rss_tree_mb")
    checks["rss"] = {
        "value": peak,
        "targets": rss.get("targets"),
        "target": TARGET_RSS_MB,
        "pass": None if peak is None else (peak < TARGET_RSS_MB and rss.get("records") == rss.get("targets")),
    }
    cold = (res.get("cold_start") or {}).get("default")
    cold_pass = None
    if cold:
        cold_pass = cold["median"] <= TARGET_COLD_START and cold["exit_codes"] == {"0": cold["runs"]}
    checks["cold_start"] = {"value": cold["median"] if cold else None, "target": TARGET_COLD_START, "pass": cold_pass}
    summary["checks"] = checks


# -------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="See bench/README.md for what each line means.",
    )
    p.add_argument("--targets", type=int, default=20_000, help="targets of the throughput runs (default 20,000)")
    p.add_argument("--rounds", type=int, default=5, help="raw/scan rounds on the mix; the best counts (default 5)")
    p.add_argument("--concurrency", type=int, default=200, help="concurrent handshakes, raw probe and scan (200)")
    p.add_argument("--workers", type=int, default=None, help="scan --workers (default: the scan's own default)")
    p.add_argument(
        "--rss-targets",
        type=int,
        default=TARGET_RSS_INPUT,
        help=f"targets of the peak-RSS scan run (default {TARGET_RSS_INPUT:,}; 0 skips it)",
    )
    p.add_argument(
        "--rss-max-seconds",
        type=float,
        default=240.0,
        help="skip the RSS run when the measured scan rate says it would take longer (default 240)",
    )
    p.add_argument(
        "--distinct-targets",
        type=int,
        default=5_000,
        help="targets of the run where every target has a certificate and name of its own (default 5,000; 0 skips)",
    )
    p.add_argument(
        "--distinct-shapes",
        default=",".join(DISTINCT_SHAPES),
        help="distinct-certificate shapes to run: one-ca (every leaf under one CA chain), many-ca (leaves over "
        "32 intermediates under 8 roots); default both",
    )
    p.add_argument(
        "--distinct-only",
        action="store_true",
        help="only the distinct-certificate runs (--rounds rounds of raw and scan per shape; no mix, RSS, "
        "sslyze or cold start)",
    )
    p.add_argument("--sslyze-targets", type=int, default=600, help="targets for sslyze (default 600; 0 skips)")
    p.add_argument(
        "--sslyze-tuned-scans",
        type=int,
        default=50,
        help="also run sslyze with this concurrent_server_scans_limit (default 50; 0 skips; sslyze's default is 10)",
    )
    p.add_argument("--sslyze-venv", type=Path, default=cache_dir() / "sslyze-venv", help="sslyze's venv")
    p.add_argument("--no-raw-2proc", action="store_true", help="skip the 2-process raw probe")
    p.add_argument(
        "--no-collector",
        action="store_true",
        help="skip the runs of certdoctor's collector alone on the distinct targets (bench/_collectprobe.py)",
    )
    p.add_argument("--cold-runs", type=int, default=9, help="cold start runs per variant (median; default 9)")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help="comma-separated lab scenarios")
    p.add_argument("--server", choices=("auto", "nginx", "lab"), default="auto", help="who serves the targets")
    p.add_argument("--nginx-workers", default="1", help="nginx worker_processes (default 1; 'auto' = one per core)")
    p.add_argument("--scan-arg", action="append", default=[], help="extra argument for certdoctor scan (repeatable)")
    p.add_argument("--scan-command", default=None, help="run this instead of `certdoctor scan` (e.g. another build)")
    p.add_argument("--step-timeout", type=float, default=None, help="kill a scan run after this many seconds")
    p.add_argument("--quick", action="store_true", help="small sizes: 5,000 targets, no RSS run, 200 for sslyze")
    p.add_argument("--json", action="store_true", help="print the JSON summary on stdout (the table goes to stderr)")
    p.add_argument("--out", type=Path, default=REPO / "artifacts" / "scan_throughput.json", help="JSON summary file")
    p.add_argument("--serve-only", action="store_true", help="only start the servers and write the targets, then wait")
    p.add_argument("--serve-seconds", type=float, default=0, help="with --serve-only: stop after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the work directory (targets, scan output, logs)")
    ns = p.parse_args(argv)
    if ns.quick:
        ns.targets = min(ns.targets, 5_000)
        ns.rss_targets = 0
        ns.rounds = 1
        ns.distinct_targets = min(ns.distinct_targets, 2_000)
        ns.sslyze_targets = min(ns.sslyze_targets, 200)
        ns.cold_runs = min(ns.cold_runs, 3)
    return ns


def machine() -> tuple[int, str]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return os.cpu_count() or 1, cpu


def serve_only(ns: argparse.Namespace, targets: Path, root: Path, workdir: Path) -> None:
    """--serve-only: say where the targets are and how to scan them (the caller then waits)."""
    command = [*scan_command(ns), str(targets), "--ca-file", str(root), "-o", str(workdir / "scan.jsonl")]
    sys.stderr.write(
        f"targets: {targets} ({ns.targets:,} lines)\nroot: {root}\ntry: {' '.join(command)}\n"
        f"serving until Ctrl-C{f' or {ns.serve_seconds:.0f} s' if ns.serve_seconds else ''}\n"
    )
    sys.stderr.flush()


def benchmark(ns: argparse.Namespace, workdir: Path, summary: dict[str, Any]) -> None:
    results: dict[str, Any] = summary["results"]
    cores, cpu = machine()
    names = [n.strip() for n in ns.scenarios.split(",") if n.strip()]
    lab = start_lab(cache_dir() / "lab-state", workdir)
    nginx_proc: Server | None = None
    try:
        severities = finding_severities()
        scenarios = pick_scenarios(lab, names, severities)
        nginx = find_nginx() if ns.server in ("auto", "nginx") else None
        if ns.server == "nginx" and nginx is None:
            raise HarnessError("--server nginx: nginx is not installed")
        distinct_sets: list[DistinctCerts] = []
        shapes = [x.strip() for x in ns.distinct_shapes.split(",") if x.strip()] if ns.distinct_targets > 0 else []
        for shape in shapes:
            if nginx is None:
                results[distinct_key("scan", shape)] = {"reason": "skipped: needs nginx (one certificate per SNI name)"}
                continue
            template = next((s for s in scenarios if s.name == "good-rsa"), None)
            try:
                if template is None:
                    raise Unavailable("needs the good-rsa scenario in --scenarios (its issuer signs them)")
                began = time.perf_counter()
                distinct_sets.append(
                    make_distinct_certs(lab, template, ns.distinct_targets, workdir / f"distinct-{shape}", shape)
                )
                log(
                    f"issued {ns.distinct_targets:,} distinct certificates ({shape}) in "
                    f"{time.perf_counter() - began:.1f} s"
                )
            except Unavailable as exc:
                results[distinct_key("scan", shape)] = {"reason": f"skipped: {exc}"}
        if nginx is not None:
            try:
                nginx_proc = start_nginx(nginx, scenarios, workdir, ns.nginx_workers, distinct_sets)
                server = nginx_proc.description
            except HarnessError as exc:
                if ns.server == "nginx":
                    raise
                log(f"nginx failed, falling back to the lab's servers: {exc}")
                for certs in distinct_sets:
                    results[distinct_key("scan", certs.shape)] = {
                        "reason": "skipped: needs nginx (one certificate per SNI name)"
                    }
                distinct_sets = []
                server = f"the lab's Python asyncio servers (nginx failed: {str(exc)[:120]})"
        elif ns.server == "lab":
            server = "the lab's Python asyncio servers (one thread; --server lab)"
        else:
            server = "the lab's Python asyncio servers (one thread; nginx not found)"
        log(f"server: {server}")
        check_served_chains(scenarios)
        for certs in distinct_sets:
            last = replace(certs.scenario, hostname=certs.names[-1], chain_file=certs.cert_files[-1])
            check_served_chains([certs.scenario, last])
        summary["config"] = {
            "cores": cores,
            "cpu": cpu,
            "python": platform.python_version(),
            "server": server,
            "targets": ns.targets,
            "concurrency": ns.concurrency,
            "workers": ns.workers,
            "scenarios": [
                {
                    "name": s.name,
                    "port": s.port,
                    "expected_verdict": s.expected_verdict,
                    "expected_ids": sorted(s.expected_ids),
                    "chain_len": s.chain_len,
                }
                for s in scenarios
            ],
            "rss_targets": ns.rss_targets,
            "sslyze_targets": ns.sslyze_targets,
        }
        targets = workdir / "targets.txt"
        write_targets(targets, scenarios, ns.targets)
        distinct_paths = {certs.shape: workdir / f"targets-distinct-{certs.shape}.txt" for certs in distinct_sets}
        for certs in distinct_sets:
            write_distinct_targets(distinct_paths[certs.shape], certs)
        if ns.serve_only:
            serve_only(ns, targets, lab.root, workdir)
            for certs in distinct_sets:
                sys.stderr.write(
                    f"every target its own certificate ({certs.shape}): {distinct_paths[certs.shape]}"
                    f"{f' (--ca-file {certs.roots_file})' if certs.roots_file else ''}\n"
                )
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(ns.serve_seconds or 10**9)
            return
        step_timeout = ns.step_timeout or (60 + ns.targets / 100)
        server_pid = nginx_proc.proc.pid if nginx_proc is not None and nginx_proc.proc else lab.proc.pid

        def raw(label: str, path: Path, count: int, processes: int, probe: Path = RAWPROBE) -> dict[str, Any]:
            what = "raw probe" if probe == RAWPROBE else "certdoctor's collector alone"
            log(f"{what} ({label}), {processes} process(es), {count:,} targets, concurrency {ns.concurrency}")
            with CpuMeter(server_pid) as cpu:
                result = run_raw(path, count, ns.concurrency, processes, step_timeout, probe)
            result |= cpu.per_target(count)
            log(f"  {fmt_int(result['rate'])} targets/s ({result['failed']} failed)")
            return result

        single_worker = (ns.workers or os.cpu_count() or 1) > 1

        def scan(
            label: str,
            path: Path,
            count: int,
            expect: Expectation,
            workers: int | None = None,
            root: Path | None = None,
        ) -> dict[str, Any]:
            output = workdir / f"scan-{label}.jsonl"
            options = ns if workers is None else argparse.Namespace(**{**vars(ns), "workers": workers})
            with CpuMeter(server_pid) as cpu:
                result = run_scan(support, path, count, output, workdir, root or lab.root, options, label)
            result |= cpu.per_target(count)
            result["verification"] = verify_scan(output, count, expect)
            log(
                f"  {fmt_int(result['rate'])} targets/s, exit {result['exit_code']}, peak RSS "
                f"{result['peak_rss_tree_mb']:.0f} MB, {result['verification']['mismatched']:,} mismatches"
            )
            if count > 20_000 and not ns.keep:
                with contextlib.suppress(OSError):
                    output.unlink()  # 100k records are ~150 MB: do not keep them around
            return result

        support = scan_support(ns)
        summary["scan_help"] = support.help_text
        if not support.available:
            log(f"certdoctor scan is not available: {support.reason}")
            results["scan"] = {"reason": support.reason}
        # Rounds alternate raw and scan on the same targets, so that drift of the machine hits both alike.
        warmup = workdir / "targets-warmup.txt"
        warm = min(1_000 if ns.distinct_only else 3_000, ns.targets)
        write_targets(warmup, scenarios, warm)
        log(f"warm-up: raw probe and scan on {warm:,} targets (not counted; fills the bytecode cache)")
        run_raw(warmup, warm, ns.concurrency, 1, step_timeout)
        if support.available:
            run_scan(support, warmup, warm, workdir / "scan-warmup.jsonl", workdir, lab.root, ns, "warmup")
        rounds: list[dict[str, Any]] = []
        for number in range(1, 0 if ns.distinct_only else ns.rounds + 1):
            log(f"round {number} of {ns.rounds}")
            one = {"raw": raw("mix", targets, ns.targets, 1)}
            if support.available:
                one["scan"] = scan("mix", targets, ns.targets, cycling(scenarios))
                if single_worker and "--workers" in support.flags:
                    # The same number of client processes as the raw probe: what certdoctor itself costs
                    # per handshake, without the second process competing with the server for the cores.
                    one["scan_1w"] = scan("mix-1-worker", targets, ns.targets, cycling(scenarios), workers=1)
            rounds.append(one)
        if rounds:
            results["raw"] = best_of([r["raw"] for r in rounds])
        if support.available and rounds:
            results["scan"] = best_of([r["scan"] for r in rounds])
            if any("scan_1w" in r for r in rounds):
                results["scan_1w"] = best_of([r["scan_1w"] for r in rounds if "scan_1w" in r])
        if not ns.no_raw_2proc and not ns.distinct_only:
            results["raw_2proc"] = raw("mix", targets, ns.targets, 2)

        if support.available:
            # the distinct shapes: raw and scan alternate, as on the mix (--rounds with --distinct-only, else 1)
            distinct_rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
            collected: dict[str, list[dict[str, Any]]] = {}
            # the collector alone in as many processes as the scan's default on this machine (the ceiling)
            collect_processes = max(1, min(ns.workers or os.cpu_count() or 1, 2))
            for number in range(1, (ns.rounds if ns.distinct_only else 1) + 1):
                for certs in distinct_sets:
                    count = len(certs.names)
                    path, label = distinct_paths[certs.shape], f"distinct-{certs.shape}"
                    if ns.distinct_only:
                        log(f"distinct round {number} ({certs.shape})")
                    got_raw = raw(f"distinct certificates, {certs.shape}", path, count, 1)
                    got_scan = scan(label, path, count, each_distinct(certs), root=certs.roots_file)
                    distinct_rounds.setdefault(certs.shape, []).append((got_raw, got_scan))
                    if not ns.no_collector:
                        got = raw(f"distinct certificates, {certs.shape}", path, count, collect_processes, COLLECTPROBE)
                        collected.setdefault(certs.shape, []).append(got)
            for shape, runs in distinct_rounds.items():
                results[distinct_key("raw", shape)] = best_of([r for r, _ in runs])
                results[distinct_key("scan", shape)] = best_of([s for _, s in runs])
            for shape, runs_ in collected.items():
                results[distinct_key("collect", shape)] = best_of(runs_)
            rate = (results.get("scan") or {}).get("rate", 0.0)
            if ns.rss_targets > 0 and not ns.distinct_only:
                estimate = 5 + ns.rss_targets / rate if rate > 0 else float("inf")
                if estimate <= ns.rss_max_seconds:
                    rss_path = workdir / "targets-rss.txt"
                    write_targets(rss_path, scenarios, ns.rss_targets)
                    results["scan_rss"] = scan("rss", rss_path, ns.rss_targets, cycling(scenarios))
                    results["scan_rss"]["estimate_seconds"] = estimate
                else:
                    results["scan_rss"] = {
                        "reason": f"skipped: ~{estimate:.0f} s at the measured rate > --rss-max-seconds "
                        f"{ns.rss_max_seconds:.0f}"
                    }
            else:
                results["scan_rss"] = {"reason": "skipped (--rss-targets 0 or --distinct-only)"}

        if ns.sslyze_targets > 0 and not ns.distinct_only:
            python, info = ensure_sslyze(ns.sslyze_venv)
            if python is None:
                results["sslyze"] = {"error": info}
            else:
                count = min(ns.sslyze_targets, ns.targets)
                results["sslyze"] = run_sslyze(python, targets, count, lab.root, None, 300)
                if ns.sslyze_tuned_scans:
                    results["sslyze_tuned"] = run_sslyze(python, targets, count, lab.root, ns.sslyze_tuned_scans, 300)

        if ns.cold_runs > 0 and not ns.distinct_only:
            good = next((s for s in scenarios if s.expected_verdict == "valid" and not s.expected_ids), scenarios[0])
            results["cold_start"] = cold_start(good, lab.root, ns.cold_runs)
        if nginx_proc is not None and nginx_proc.error_log is not None and nginx_proc.error_log.exists():
            errors = nginx_proc.error_log.read_text(errors="replace").strip().splitlines()
            summary["server_errors"] = {"count": len(errors), "last": errors[-5:]}
    finally:
        if nginx_proc is not None:
            stop_process(nginx_proc.proc, "nginx")
        stop_process(lab.proc, "lab")


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the finally blocks that stop the servers


def main(argv: Sequence[str] | None = None) -> int:
    global _QUIET
    ns = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="certdoctor-bench-"))
    summary: dict[str, Any] = {
        "benchmark": "certdoctor scan throughput",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "results": {},
        "config": {},
    }
    code = 0
    try:
        benchmark(ns, workdir, summary)
    except HarnessError as exc:
        summary["harness_error"] = str(exc)
        log(f"harness error: {exc}")
        code = 2
    except KeyboardInterrupt:
        summary["harness_error"] = "interrupted"
        code = 130
    finally:
        if ns.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    summary["elapsed_seconds"] = time.perf_counter() - _T0
    if ns.serve_only:
        return code
    if code == 0:
        evaluate(summary)
    if ns.out:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        summary["out"] = str(ns.out)
        ns.out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if code == 0:
        table = render(summary)
        (sys.stderr if ns.json else sys.stdout).write(table + "\n")
    if ns.json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
    _QUIET = True
    return code


if __name__ == "__main__":
    sys.exit(main())
