"""`certdoctor fix`: from a pile of certificates to a correct, deployable chain.

Planning reuses the judgement layer (path building over the pile, AIA and the trust stores); writing is
atomic (temporary file + rename) and never overwrites without ``force``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import certinfo
from .errors import InputError
from .model import DEFAULT_AIA_TIMEOUT, JSON_VERSION, Evidence, PathEnd, PresentedChain, Target
from .names import match_hostname
from .paths import StoreIndex, dedupe
from .pipeline import collect_aia, judge, load_stores, parse_at


class FixError(InputError):
    """The inputs cannot be turned into a chain (no leaf, two leaves, unreadable files)."""


@dataclass
class FixPlan:
    leaf: x509.Certificate
    intermediates: list[x509.Certificate]
    root: x509.Certificate | None  # the anchor, when known (written only with include_root)
    include_root: bool
    complete: bool  # the path reaches a trust anchor or a self-signed root
    end: PathEnd
    fetched: list[tuple[x509.Certificate, str]] = field(default_factory=list)  # (cert, AIA URL)
    dropped: list[tuple[x509.Certificate, str]] = field(default_factory=list)  # (cert, reason)
    notes: list[str] = field(default_factory=list)
    key: Any = None  # the private key that belongs to the leaf, when one was given
    key_source: str | None = None

    @property
    def chain(self) -> list[x509.Certificate]:
        """What the server should send: leaf, intermediates (and the root only when asked)."""
        tail = [self.root] if self.include_root and self.root is not None else []
        return [self.leaf, *self.intermediates, *tail]

    def to_dict(self) -> dict[str, Any]:
        def brief(c: x509.Certificate) -> dict[str, str]:
            return {"subject": certinfo.subject(c), "sha256": certinfo.fingerprint(c)}

        return {
            "leaf": brief(self.leaf),
            "intermediates": [brief(c) for c in self.intermediates],
            "root": brief(self.root) if self.root is not None else None,
            "root_included": self.include_root and self.root is not None,
            "complete": self.complete,
            "fetched": [dict(brief(c), url=u) for c, u in self.fetched],
            "dropped": [dict(brief(c), reason=r) for c, r in self.dropped],
            "notes": self.notes,
            "key": None if self.key is None else {"source": self.key_source, "matches_leaf": True},
        }


def _choose_leaf(certs: Sequence[x509.Certificate], host: str | None) -> x509.Certificate:
    by_name = certinfo.IssuerIndex(certs)
    issuers = {certinfo.fingerprint(i) for c in certs for i in by_name.issuers_of(c)}
    leaves = [c for c in certs if not certinfo.is_ca(c) and certinfo.fingerprint(c) not in issuers]
    if host:
        matching = [c for c in leaves if match_hostname(c, host).matched]
        if not matching:
            names = "; ".join(f"{certinfo.display_name(c)}" for c in leaves) or "none"
            raise FixError(f"no server certificate in the input covers {host} (server certificates found: {names})")
        leaves = matching
    if not leaves:
        raise FixError("no server certificate in the input: only CA certificates were found")
    if len(leaves) > 1:
        names = ", ".join(f"{certinfo.display_name(c)} (SHA-256 {certinfo.short_fp(c)}…)" for c in leaves)
        raise FixError(f"{len(leaves)} candidate server certificates: {names}; choose one with --name NAME")
    return leaves[0]


async def plan_fix(
    certs: Sequence[x509.Certificate],
    *,
    pool: Sequence[x509.Certificate] = (),
    host: str | None = None,
    include_root: bool = False,
    ca_certs: Sequence[x509.Certificate] = (),
    trust_stores: Sequence[str] | None = None,
    fetch_aia: bool = True,
    at: Any = None,
    timeout: float = 10.0,
    aia_timeout: float = DEFAULT_AIA_TIMEOUT,
    allow_private_fetch: bool = True,
) -> FixPlan:
    """Order the pile into leaf → intermediates (→ root), completing it from ``pool`` (candidate intermediates,
    e.g. a CA's bundle directory) and through AIA when needed (each download within ``timeout`` seconds, all
    of them within ``aia_timeout``; ``allow_private_fetch`` False: from public addresses only)."""
    from .collect.aia import AiaFetcher
    from .collect.stores import DEFAULT_STORES

    unique = dedupe(certs)
    if not unique:
        raise FixError("no certificate in the input")
    leaf = _choose_leaf(unique, host)
    given = {certinfo.fingerprint(c) for c in unique}
    extra = [c for c in dedupe(pool) if certinfo.fingerprint(c) not in given]
    pile = [leaf, *(c for c in unique if c is not leaf), *extra]
    stores, notes = load_stores(trust_stores or DEFAULT_STORES, trust_stores is not None)
    index = StoreIndex(stores, ca_certs)
    chain = PresentedChain(source="input", certs=tuple(pile), total_received=len(pile))
    aia = {}
    if fetch_aia:
        async with AiaFetcher(timeout=timeout, refuse_private=not allow_private_fetch) as fetcher:
            aia, aia_notes = await collect_aia([chain], index, fetcher, budget=aia_timeout)
        notes.extend(aia_notes)
    evidence = Evidence(
        target=Target(name=host, files=("input",)),
        at=parse_at(at),
        chains=(chain,),
        stores=tuple(stores),
        aia=aia,
        extra_roots=tuple(ca_certs),
    )
    best = judge(evidence, index=index).reports[0].analysis.best
    nodes = list(best.nodes)
    root = None
    if best.end in ("anchor", "untrusted-root") and len(nodes) > 1 and certinfo.is_self_signed(nodes[-1].cert):
        root = nodes.pop().cert
    elif best.end == "anchor" and len(nodes) > 1 and nodes[-1].origin == "store":
        root = nodes.pop().cert  # a store anchor that is not self-signed (e.g. a trusted cross-sign)
    intermediates = [n.cert for n in nodes[1:]]
    plan = FixPlan(
        leaf=leaf,
        intermediates=intermediates,
        root=root,
        include_root=include_root,
        complete=best.end != "unknown-issuer",
        end=best.end,
        fetched=[(n.cert, n.detail) for n in nodes if n.origin == "aia"],
        notes=list(notes),
    )
    kept = {certinfo.fingerprint(c) for c in plan.chain}
    if root is not None:
        kept.add(certinfo.fingerprint(root))
    seen: set[str] = set()
    root_fp = certinfo.fingerprint(root) if root is not None else None
    for c in certs:
        fp = certinfo.fingerprint(c)
        if fp in seen:
            plan.dropped.append((c, "duplicate"))
        elif fp == root_fp:
            if not include_root:
                plan.dropped.append((c, "root (clients use their own copy; --include-root keeps it)"))
        elif fp not in kept:
            plan.dropped.append((c, "not part of this certificate's chain"))
        seen.add(fp)
    if not plan.complete:
        top = nodes[-1].cert
        plan.notes.append(
            f'the chain is incomplete: the issuer of {certinfo.display_name(top)} ("{certinfo.issuer(top)}") was '
            "not in the input, not downloadable via AIA and not a trusted root; add it (--ca-file for a private "
            "root, or include the intermediate in the input)"
        )
    return plan


def _same_key(cert: x509.Certificate, key: Any) -> bool:
    try:
        return bool(cert.public_key() == key.public_key())
    except Exception:
        return False


def attach_key(plan: FixPlan, keys: Sequence[tuple[Any, str]], certs: Sequence[x509.Certificate]) -> None:
    """Attach the key that belongs to the leaf, or explain precisely why none does (FixError)."""
    if not keys:
        return
    for key, source in keys:
        if _same_key(plan.leaf, key):
            plan.key, plan.key_source = key, source
            return
    explanations = []
    for key, source in keys:
        owner = next((c for c in certs if _same_key(c, key)), None)
        if owner is None:
            explanations.append(f"{source} belongs to none of the input certificates")
        else:
            explanations.append(
                f"{source} belongs to {certinfo.display_name(owner)} (serial {format(owner.serial_number, 'x')}, "
                f"valid until {certinfo.not_after(owner):%Y-%m-%d}) — often the previous certificate"
            )
    raise FixError(
        f"key-mismatch: no key given matches the server certificate {certinfo.display_name(plan.leaf)} "
        f"(SHA-256 {certinfo.short_fp(plan.leaf)}…): {'; '.join(explanations)}. A server configured with them fails "
        "to start ('key values mismatch'). Use the key generated with this certificate's CSR."
    )


def _pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def output_files(plan: FixPlan) -> dict[str, tuple[bytes, int]]:
    """File name -> (content, mode). Files holding the key are private (0600)."""
    from .collect.keys import key_pem

    files = {"fullchain.pem": (_pem(plan.chain), 0o644)}
    if plan.chain[1:]:  # no empty chain.pem when the leaf is issued by the root itself
        files["chain.pem"] = (_pem(plan.chain[1:]), 0o644)
    files["cert.pem"] = (_pem([plan.leaf]), 0o644)
    if plan.key is not None:
        key = key_pem(plan.key)
        files["privkey.pem"] = (key, 0o600)
        files["haproxy.pem"] = (_pem(plan.chain) + key, 0o600)
    return files


def write_outputs(files: dict[str, tuple[bytes, int]], out_dir: Path, *, force: bool) -> list[Path]:
    """Write every file atomically; refuse (before writing anything) to overwrite without ``force``.

    Raises FixError when ``out_dir`` is not a directory and cannot be created, or a file cannot be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FixError(f"output directory {out_dir} is a file, not a directory")
    try:
        _make_dirs(out_dir)
    except OSError as exc:
        raise FixError(f"cannot create the output directory {out_dir}: {exc.strerror or exc}") from None
    targets = {out_dir / name: data for name, data in files.items()}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise FixError(f"refusing to overwrite {', '.join(map(str, existing))} (use --force)")
    try:
        _write_all(targets, out_dir)
    except OSError as exc:
        raise FixError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    return list(targets)


OUTPUT_DIR_MODE = 0o755  # directories fix creates; the files holding the key are 0600 (see output_files)


def _make_dirs(out_dir: Path) -> None:
    """Create ``out_dir`` and its missing parents with :data:`OUTPUT_DIR_MODE` at most (under umask 000 a plain
    mkdir makes them world-writable, and anyone could swap the chain served)."""
    missing = []
    for d in (out_dir, *out_dir.parents):
        if d.is_dir():
            break
        missing.append(d)
    for d in reversed(missing):
        try:
            d.mkdir(mode=OUTPUT_DIR_MODE)  # the umask can only take permissions away from it
        except FileExistsError:
            if not d.is_dir():
                raise


def _write_all(targets: dict[Path, tuple[bytes, int]], out_dir: Path) -> None:
    for path, (data, mode) in targets.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=out_dir)  # created 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def server_config(
    out_dir: Path, *, with_key: bool = False, with_pkcs12: bool = False, with_chain: bool = True
) -> list[tuple[str, str, str]]:
    """Ready-to-paste configuration for the files written to ``out_dir``: (id, label, text) per server kind,
    the id a stable key (nginx, apache, apache-legacy, haproxy, caddy, traefik, kubernetes, java-keystore,
    aws-acm, appliance). ``with_chain``: chain.pem was written (the leaf has intermediates)."""
    d = out_dir.resolve()
    key = f"{d}/privkey.pem" if with_key else "/path/to/privkey.pem"
    haproxy = (
        f"bind :443 ssl crt {d}/haproxy.pem"
        if with_key
        else f"cat {d}/fullchain.pem {key} > /etc/haproxy/certs/site.pem\nbind :443 ssl crt /etc/haproxy/certs/site.pem"
    )
    chain_file = f"\nSSLCertificateChainFile {d}/chain.pem" if with_chain else ""
    acm_chain = f" --certificate-chain fileb://{d}/chain.pem" if with_chain else ""
    bundle = f"intermediate/CA bundle: {d}/chain.pem   " if with_chain else "intermediate/CA bundle: (none needed)   "
    return [
        ("nginx", "nginx", f"ssl_certificate     {d}/fullchain.pem;\nssl_certificate_key {key};"),
        ("apache", "Apache 2.4.8+", f"SSLCertificateFile    {d}/fullchain.pem\nSSLCertificateKeyFile {key}"),
        (
            "apache-legacy",
            "Apache < 2.4.8",
            f"SSLCertificateFile      {d}/cert.pem{chain_file}\nSSLCertificateKeyFile   {key}",
        ),
        ("haproxy", "HAProxy", haproxy),
        ("caddy", "Caddy", f"tls {d}/fullchain.pem {key}"),
        (
            "traefik",
            "Traefik (dynamic configuration)",
            f"tls:\n  certificates:\n    - certFile: {d}/fullchain.pem\n      keyFile: {key}",
        ),
        (
            "kubernetes",
            "Kubernetes TLS secret",
            f"kubectl create secret tls my-tls --cert={d}/fullchain.pem --key={key}",
        ),
        (
            "java-keystore",
            "Java keystore",
            (
                f"keytool -importkeystore -srckeystore {d}/bundle.p12 -srcstoretype PKCS12 "
                "-destkeystore keystore.p12 -deststoretype PKCS12"
            )
            if with_pkcs12
            else "run certdoctor fix again with --key and --pkcs12, then:\n"
            f"keytool -importkeystore -srckeystore {d}/bundle.p12 -srcstoretype PKCS12 -destkeystore keystore.p12",
        ),
        (
            "aws-acm",
            "AWS ACM",
            f"aws acm import-certificate --certificate fileb://{d}/cert.pem{acm_chain} --private-key fileb://{key}",
        ),
        (
            "appliance",
            "Appliance / control panel upload",
            f"certificate: {d}/cert.pem   {bundle}private key: {key}\n"
            f"(if there is a single certificate field, paste {d}/fullchain.pem)",
        ),
    ]


MAX_FIX_CERTS = 500  # per input file: enough for a CA bundle used as a pool of intermediates


MAX_DIR_FILES = 1000  # files read from the directories given (a CA's download folder holds a handful)
MAX_DIR_DEPTH = 4


def input_files(inputs: Sequence[str]) -> list[str]:
    """The files of ``inputs``: files as given, directories walked (sub-directories too, up to 4 levels and
    1,000 files; hidden entries skipped). Raises FixError for a missing input or when nothing is left."""
    files: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            files.extend(_walk(item))
        elif os.path.lexists(item):  # a dangling symlink or a loop: read_capped says what is wrong with it
            files.append(item)
        else:
            raise FixError(f"no such file or directory: {item}")
    if not files:
        raise FixError("no input files")
    return files


def _walk(top: str) -> list[str]:
    found: list[str] = []
    base = top.rstrip(os.sep).count(os.sep)
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if root.count(os.sep) - base < MAX_DIR_DEPTH else []
        for name in sorted(names):
            path = os.path.join(root, name)
            if not name.startswith(".") and os.path.isfile(path):
                found.append(path)
                if len(found) >= MAX_DIR_FILES:
                    raise FixError(f"{top} holds more than {MAX_DIR_FILES} files: give the certificate files instead")
    return found


@dataclass
class FixInputs:
    """What the inputs hold: certificates (in input order), keys with their source, and the repairs made while
    reading (CRLF, glued blocks, DER...) as one line each."""

    certs: list[x509.Certificate] = field(default_factory=list)
    keys: list[tuple[Any, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    password: bytes | None = None  # the password that opened a PKCS#12 input (reused for bundle.p12)
    skipped: list[str] = field(default_factory=list)  # files of a directory holding no certificate or key, why


def read_inputs(
    paths: Sequence[str],
    *,
    password: bytes | None = None,
    ask_password: Callable[[str], bytes | None] | None = None,
    optional: frozenset[str] = frozenset(),
) -> FixInputs:
    """Read certificates and keys from files (PEM, DER, PKCS#7, PKCS#12 by content). ``ask_password(path)`` is
    called for a PKCS#12 file that needs a password none was given for. Raises FixError (or KeyLoadError) for a
    file that holds neither, or more than :data:`MAX_FIX_CERTS` certificates — except the ``optional`` ones (found
    in a directory), which are listed in ``skipped`` instead."""
    from .collect.files import chain_from_bytes, read_capped
    from .collect.keys import KeyLoadError, keys_in, load_pkcs12
    from .collect.pem import looks_like_pkcs12

    got = FixInputs(password=password)
    for path in paths:
        data = read_capped(path)
        if looks_like_pkcs12(path, data[:64]):
            try:
                bundle_key, bundle_certs = load_pkcs12(path, got.password, data)
            except KeyLoadError as exc:
                asked = ask_password(path) if ask_password and "give its password" in str(exc) else None
                if asked is None or got.password is not None:
                    raise
                got.password = asked
                bundle_key, bundle_certs = load_pkcs12(path, got.password, data)
            got.certs.extend(bundle_certs)
            if bundle_key is not None:
                got.keys.append((bundle_key, path))
            continue
        chain = chain_from_bytes(data, path, max_certs=MAX_FIX_CERTS)
        if chain.total_received > MAX_FIX_CERTS:
            raise FixError(
                f"{path} holds {chain.total_received} certificates; certdoctor fix reads at most {MAX_FIX_CERTS} "
                "(a server chain has 2 to 4; is this a whole CA bundle or trust store?)"
            )
        file_keys = list(keys_in(data, path, got.password))
        got.keys.extend((k, path) for k in file_keys)
        if chain.error and not file_keys:
            if path in optional:  # found in a directory: a README, a CSR... is not what we look for
                got.skipped.append(f"{path}: {chain.error}")
                continue
            raise FixError(chain.error if path in chain.error else f"{path}: {chain.error}")
        got.certs.extend(chain.certs)
        got.repaired.extend(f"{path}: {i.detail}" for i in chain.pem_issues if i.code != "private-key")
    return got


def read_server(
    target: str,
    *,
    resolve: Sequence[str] = (),
    timeout: float = 10.0,
    starttls: str | None = None,
    client: dict[str, Any] | None = None,
) -> FixInputs:
    """The certificates a live server sends (its first distinct chain); raises CollectError when none came.
    ``client``: more :func:`certdoctor.api.diagnose` arguments (the client certificate, the proxy)."""
    from .api import diagnose
    from .errors import CollectError

    upgrade: dict[str, Any] = {} if starttls is None else {"starttls": starttls}
    upgrade.update(client or {})
    live = diagnose(
        target, fetch_aia=False, revocation=False, clients=False, timeout=timeout, resolve=resolve, **upgrade
    )
    if not live.reports:
        errors = "; ".join(f"{c.source}: {c.error}" for c in live.failures)
        raise CollectError(f"no certificate obtained from {target}: {errors}")
    got = FixInputs(certs=list(live.reports[0].chain.certs))
    got.repaired.extend(
        f"{', '.join(r.sources)} presents a different chain; used {live.reports[0].sources[0]}'s"
        for r in live.reports[1:]
    )
    return got


@dataclass
class FixResult:
    """A written fix: the plan, the files written, the repairs, the re-verification of fullchain.pem as a
    server would send it (a :class:`certdoctor.diagnosis.Diagnosis`), and the server configuration."""

    plan: FixPlan
    written: list[Path]
    repaired: list[str]
    verification: Any
    config: list[tuple[str, str, str]]
    skipped: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.verification.valid else 1

    def to_dict(self) -> dict[str, Any]:
        """The ``fix --json`` document (see schemas/fix.schema.json)."""
        return {
            "certdoctor": JSON_VERSION,
            "kind": "fix",
            "plan": self.plan.to_dict(),
            "written": [str(p) for p in self.written],
            "repaired": self.repaired,
            "skipped": self.skipped,
            "verification": self.verification.to_dict(),
            "config": [{"id": i, "label": label, "text": text} for i, label, text in self.config],
            "exit_code": self.exit_code,
        }


def fix(
    inputs: FixInputs,
    out_dir: Path,
    *,
    pool_paths: Sequence[str] = (),
    host: str | None = None,
    include_root: bool = False,
    ca_files: Sequence[str] = (),
    trust_stores: Sequence[str] | None = None,
    fetch_aia: bool = True,
    timeout: float = 10.0,
    aia_timeout: float = DEFAULT_AIA_TIMEOUT,
    allow_private_fetch: bool = True,
    force: bool = False,
    pkcs12: bool = False,
    pkcs12_password: bytes | None = None,
    policy: Any = None,
) -> FixResult:
    """Plan the chain from ``inputs`` (completed from the ``pool_paths`` files and AIA), check the key, write
    fullchain.pem, cert.pem, chain.pem (when there are intermediates), privkey.pem and haproxy.pem (with a
    key), bundle.p12 (``pkcs12``) into ``out_dir``, and re-verify what was written. Raises FixError (nothing
    written) for unusable inputs, a key that does not match, or outputs that exist without ``force``. ``policy``:
    a :class:`certdoctor.policy.Policy` applied to the written chain (its ``policy-*`` findings are part of the
    re-verification, and its errors count in the exit status)."""
    import asyncio

    from .collect.files import load_certificate_files, load_chain_file
    from .collect.keys import pkcs12_bytes

    pool: list[x509.Certificate] = []
    for path in input_files(pool_paths) if pool_paths else []:
        pool.extend(load_chain_file(path, max_certs=MAX_FIX_CERTS).certs)  # unreadable pool files: no candidates
    extra = load_certificate_files(ca_files)
    plan = asyncio.run(
        plan_fix(
            inputs.certs,
            pool=pool,
            host=host,
            include_root=include_root,
            ca_certs=extra,
            trust_stores=trust_stores,
            fetch_aia=fetch_aia,
            timeout=timeout,
            aia_timeout=aia_timeout,
            allow_private_fetch=allow_private_fetch,
        )
    )
    attach_key(plan, inputs.keys, inputs.certs)
    files = output_files(plan)
    if pkcs12:
        if plan.key is None:
            raise FixError("--pkcs12 needs the private key (--key, or a key among the inputs)")
        password = pkcs12_password if pkcs12_password is not None else inputs.password
        files["bundle.p12"] = (pkcs12_bytes(plan.key, plan.chain, password), 0o600)
    written = write_outputs(files, out_dir, force=force)
    from .api import diagnose
    from .model import DiagnoseOptions

    verification = diagnose(
        files=[str(out_dir / "fullchain.pem")],
        name=host,
        options=DiagnoseOptions(
            ca_certs=tuple(extra),
            trust_stores=None if trust_stores is None else tuple(trust_stores),
            fetch_aia=False,
            allow_private_fetch=allow_private_fetch,
            policy=policy,
        ),
    )
    config = server_config(out_dir, with_key=plan.key is not None, with_pkcs12=pkcs12, with_chain="chain.pem" in files)
    return FixResult(plan, written, inputs.repaired, verification, config, inputs.skipped)
