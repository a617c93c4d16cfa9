"""Deployment drift: is the certificate on the server's disk (``--deployed FILE``) the one it serves?

The headline question — "my client says the certificate is invalid though I uploaded the right one" — is most
often not about the certificate at all: the right file is on disk and something else is served. Why that
happens is how servers read certificate files:

* nginx reads ``ssl_certificate``/``ssl_certificate_key`` files when it starts and when its master process
  re-reads the configuration (SIGHUP, ``nginx -s reload``); a reload whose new configuration fails (a key that
  does not match its certificate, an unreadable file) is rolled back and the old certificate stays in service
  (nginx documentation, "Controlling nginx", *Changing Configuration*).
* Apache httpd's mod_ssl loads ``SSLCertificateFile``/``SSLCertificateKeyFile`` while reading the configuration:
  at start and on a (graceful) restart (httpd documentation, "Stopping and Restarting": ``apachectl -k graceful``
  re-reads the configuration files).
* HAProxy loads ``crt`` files at start and on reload (``systemctl reload haproxy``: Debian's unit checks the
  configuration, then sends SIGUSR2 to the master, which starts new workers; the old ones finish their
  connections), or replaces one in the running process through its runtime API, ``set ssl cert <file> <payload>``
  then ``commit ssl cert <file>`` (HAProxy 2.1+, management guide §9.3). As observed on HAProxy 2.6: the payload
  replaces the whole entry, so it must hold the key too (a key kept in ``<file>.key``, loaded at start by the
  ``ssl-load-extra-files`` default, is dropped: the commit fails with "The transaction must contain at least a
  certificate and a private key"); and it ends at the first empty line (management guide §9.2, payloads), so a PEM
  file with a blank line between its blocks is cut and its remaining lines are run as commands.
* A load balancer or CDN that terminates TLS serves its own uploaded copy, whatever is on the origin's disk.

So the checks compare the served leaf of each address with the leaves of the deployed files:
``not-reloaded`` (an older certificate for the same names is served: renewed on disk, not reloaded),
``served-not-deployed`` (what is served is in no deployed file: another vhost or listener answers, or a load
balancer terminates TLS), ``partially-reloaded`` (some addresses serve the deployed leaf, others an old one),
and the deployed file itself judged as the chain the server will send once reloaded (``deployed-file-problem``,
``deployed-file-unreadable``). Findings are about the deployment, not about what a client verifies: the served
chain's own findings say whether clients reject it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509

from .. import certinfo
from ..model import DeployedFile, Evidence, PresentedChain, Severity, Target
from ..names import match_hostname
from ._text import label, when
from .registry import ChainContext, Hit, TargetContext, check, run_checks

__all__ = [
    "DRIFT_IDS",
    "FILE_IDS",
    "REUSED_FILE_CHECKS",
    "Drift",
    "classify",
    "relevant_files",
    "reload_fix",
    "who_answers_fix",
]

DRIFT_IDS = ("not-reloaded", "served-not-deployed", "partially-reloaded")
FILE_IDS = ("deployed-file-unreadable", "deployed-file-problem")

# The existing checks run on each deployed file as the chain its server will send once (re)loaded; the findings
# kept are those about how the file is put together (what the deployment can get wrong), reported as
# deployed-file-problem with ``evidence.problem`` = the id below.
REUSED_FILE_CHECKS = (
    "pem-format",
    "wrong-order",
    "missing-intermediate",
    "duplicate-cert",
    "extra-cert",
    "self-signed",
    "untrusted-root",
    "hostname-mismatch",
    "expired",
    "not-yet-valid",
    "intermediate-expired",
)

_RELOAD = {
    "nginx": "Reload nginx so that it reads the file again: `nginx -t && nginx -s reload` (or `systemctl reload "
    "nginx`). nginx reads certificate files only when it starts or reloads, and keeps the old certificate when "
    "the new configuration fails its test (`nginx -t` says why: a key that does not match, a file it cannot read).",
    "apache": "Gracefully restart Apache so that it reads the file again: `apachectl configtest && systemctl reload "
    "apache2` (or `apachectl -k graceful`; `systemctl reload httpd` on Red Hat). mod_ssl reads certificate files "
    "only at start and on a restart.",
    "haproxy": "Make HAProxy load the file again: `haproxy -c -f /etc/haproxy/haproxy.cfg && systemctl reload "
    "haproxy` (the master starts new workers with the file; the old ones finish their connections), or without a "
    "reload through the runtime API: `echo -e \"set ssl cert FILE <<\\n$(grep -hv '^[[:space:]]*$' PAYLOAD)\\n\" | "
    'socat stdio /run/haproxy/admin.sock` then `echo "commit ssl cert FILE" | socat stdio '
    "/run/haproxy/admin.sock` (the path as the bind line's `crt` and `show ssl cert` name it; the payload is "
    "the certificate, its chain and its key, without empty lines, which end it; after a failed commit, `abort ssl "
    "cert FILE`). HAProxy reads crt files only at start, on reload, or through the runtime API.",
    "lb": "Re-upload the certificate with its chain (and key) to the load balancer/CDN that terminates TLS for this "
    "name and select it on the listener: what is on the origin server's disk is not what the load balancer "
    "serves.",
    "other": "Reload or restart the process that terminates TLS: servers read certificate files only at start or "
    "reload (nginx: `nginx -t && nginx -s reload`; Apache: `apachectl configtest && systemctl reload apache2`; "
    "HAProxy: `systemctl reload haproxy`). If a load balancer/CDN terminates TLS, re-upload the certificate "
    "there.",
}

_WHO_ANSWERS = {
    "nginx": "List which server block uses which file with `nginx -T | grep -nE 'listen|server_name|ssl_certificate'` "
    "(the block answering is the one whose listen and server_name match, else the default_server of that "
    "address:port), point it at the deployed file, then `nginx -t && nginx -s reload`.",
    "apache": "List the virtual hosts with `apachectl -S` (the first vhost of an address:port answers names no "
    "ServerName/ServerAlias matches), point the one for this name at the deployed file, then `apachectl "
    "configtest && systemctl reload apache2`.",
    "haproxy": "List the certificates HAProxy holds with `echo 'show ssl cert' | socat stdio "
    "/run/haproxy/admin.sock` and check the `crt`/`crt-list` of the bind line for this address, then "
    "`systemctl reload haproxy`.",
    "lb": "A load balancer/CDN terminates TLS with its own copy: re-upload the deployed certificate with its chain "
    "there and select it on the listener (and on every region/listener that serves this name).",
    "other": "Find what answers on this address: another virtual host or server block (SNI), another listener or "
    "port, an old server still in DNS, or a load balancer/CDN/ingress in front that has its own copy (re-upload "
    "the certificate there). Then reload that server.",
}


def reload_fix(server_type: str | None, path: str | None = None, key: str | None = None) -> str:
    """The fix for a server that serves an older certificate than its deployed file: the reload command of
    ``server_type`` (``nginx``, ``apache``, ``haproxy``, ``lb``, ``other``/None). For HAProxy, ``path`` is the
    ``crt`` file the runtime API commands name, and ``key`` the separate key file (None: the key is in ``path``)
    whose lines the ``set ssl cert`` payload must carry too (HAProxy 2.6 drops the entry's old key otherwise)."""
    text = _RELOAD.get(server_type or "other", _RELOAD["other"])
    if not path:
        return text
    words = {"FILE": path, "PAYLOAD": f"{path} {key}" if key else path}
    return re.sub(r"\b(FILE|PAYLOAD)\b", lambda m: words[m.group(1)], text)


def _key_file(f: DeployedFile) -> str | None:
    """The key file the HAProxy runtime API payload needs beside ``f``: None when ``f`` holds its key; the --key
    file when one was given; else ``<path>.key``, where HAProxy looks for it (``ssl-load-extra-files`` default,
    configuration manual §3.1)."""
    if f.has_key:
        return None
    return f.key_source or f"{f.path}.key"


def who_answers_fix(server_type: str | None) -> str:
    """The fix when what is served is in no deployed file: how to find what answers, by server type."""
    return _WHO_ANSWERS.get(server_type or "other", _WHO_ANSWERS["other"])


@dataclass(frozen=True)
class Drift:
    """How one served chain (``sources``: its addresses) relates to the deployed files.

    ``state``: ``"current"`` (its leaf and chain are a deployed file's), ``"stale-chain"`` (the deployed leaf,
    but not the chain of its file: the chain file was changed and not reloaded), ``"older"`` (a deployed file
    has a later certificate for the same names: not reloaded) or ``"foreign"`` (in no deployed file, and no
    deployed leaf for its names is newer). ``file``: the deployed file it is compared with (None when no
    deployed file is about this name)."""

    sources: tuple[str, ...]
    served: x509.Certificate
    served_chain: tuple[x509.Certificate, ...]
    state: str
    file: DeployedFile | None


def _names(cert: x509.Certificate) -> set[str]:
    names = {n.lower().rstrip(".") for n in certinfo.dns_names(cert)}
    names.update(certinfo.ip_addresses(cert))
    if not names:
        names.update(n.lower() for n in certinfo.common_names(cert))
    return names


def relevant_files(evidence: Evidence, served: Sequence[x509.Certificate] = ()) -> list[DeployedFile]:
    """The readable deployed files that are about this target: whose leaf covers the target name or shares a
    name with a served leaf (a glob over a directory of vhosts' certificates brings others); all of them when
    none is."""
    ok = [f for f in evidence.deployed if f.ok]
    if not ok:
        return ok  # nothing deployed (every scan target without --deployed): no names to compare
    name = evidence.target.name
    served_names = set().union(*(_names(c) for c in served)) if served else set()
    out = []
    for f in ok:
        leaf = f.leaf
        assert leaf is not None
        if (name and match_hostname(leaf, name).matched) or (_names(leaf) & served_names):
            out.append(f)
    return out or ok


def classify(evidence: Evidence, chains: Sequence[tuple[tuple[str, ...], PresentedChain]]) -> list[Drift]:
    """The :class:`Drift` of each distinct served chain (``(sources, chain)`` pairs, as
    :func:`certdoctor.pipeline.group_chains` gives them) against ``evidence.deployed``; [] without a readable
    deployed file."""
    files = relevant_files(evidence, [c.certs[0] for _, c in chains if c.certs])
    if not files:
        return []
    everything = {certinfo.fingerprint(c) for f in evidence.deployed for c in f.certs}
    out: list[Drift] = []
    for sources, chain in chains:
        if not chain.certs:
            continue
        leaf = chain.certs[0]
        fp = certinfo.fingerprint(leaf)
        same = [f for f in files if f.leaf is not None and certinfo.fingerprint(f.leaf) == fp]
        if same:
            sent = [certinfo.fingerprint(c) for c in chain.certs]
            exact = next((f for f in same if [certinfo.fingerprint(c) for c in f.certs] == sent), None)
            out.append(Drift(sources, leaf, chain.certs, "current" if exact else "stale-chain", exact or same[0]))
            continue
        mine = _names(leaf)
        newer = [
            f
            for f in files
            if f.leaf is not None
            and _names(f.leaf) & mine
            and certinfo.not_before(f.leaf) > certinfo.not_before(leaf)
            and fp not in everything
        ]
        if newer:
            best = max(newer, key=lambda f: certinfo.not_before(f.leaf))  # type: ignore[arg-type]
            out.append(Drift(sources, leaf, chain.certs, "older", best))
            continue
        about = [f for f in files if f.leaf is not None and _names(f.leaf) & mine] or files
        out.append(Drift(sources, leaf, chain.certs, "foreign" if fp not in everything else "current", about[0]))
    return out


def _groups(ctx: TargetContext) -> list[tuple[tuple[str, ...], PresentedChain]]:
    return [(c.sources, c.chain) for c in ctx.chains]


def _evidence(ctx: TargetContext, drifts: Sequence[Drift], file: DeployedFile | None) -> dict[str, Any]:
    """The machine-readable facts of a drift finding (see the README's --deployed section)."""
    leaf = file.leaf if file is not None else None
    first = drifts[0]
    return {
        "server_type": ctx.evidence.server_type,
        "addresses": [s for d in drifts for s in d.sources],
        "served_sha256": certinfo.fingerprint(first.served),
        "served_not_before": certinfo.not_before(first.served).isoformat(),
        "served_not_after": certinfo.not_after(first.served).isoformat(),
        "served": [
            {
                "addresses": list(d.sources),
                "sha256": certinfo.fingerprint(d.served),
                "subject": certinfo.subject(d.served),
                "not_before": certinfo.not_before(d.served).isoformat(),
                "not_after": certinfo.not_after(d.served).isoformat(),
            }
            for d in drifts
        ],
        "deployed_path": file.path if file is not None else None,
        "deployed_mtime": file.mtime.isoformat() if file is not None and file.mtime is not None else None,
        "deployed_sha256": certinfo.fingerprint(leaf) if leaf is not None else None,
        "deployed_not_before": certinfo.not_before(leaf).isoformat() if leaf is not None else None,
        "deployed_not_after": certinfo.not_after(leaf).isoformat() if leaf is not None else None,
    }


def _file_phrase(f: DeployedFile) -> str:
    leaf = f.leaf
    assert leaf is not None
    changed = f" (modified {when(f.mtime)})" if f.mtime is not None else ""
    return f"{f.path}{changed} holds {label(leaf)}, valid from {when(certinfo.not_before(leaf))}"


def _served_phrase(d: Drift) -> str:
    return (
        f"{', '.join(d.sources)} serves {label(d.served)}, valid from {when(certinfo.not_before(d.served))} until "
        f"{when(certinfo.not_after(d.served))}"
    )


@check(
    "not-reloaded",
    title="The server still serves an older certificate than the one deployed on its disk",
    severity=Severity.ERROR,
    citation="nginx: Controlling nginx (reload re-reads certificate files); Apache httpd: Stopping and Restarting; "
    "HAProxy management guide §9.3 (set/commit ssl cert)",
    scope="target",
)
def not_reloaded(ctx: TargetContext) -> Iterator[Hit]:
    """With --deployed: every address whose served leaf is not deployed serves an older certificate (earlier
    notBefore) for the same names than a deployed file holds — renewed on disk, the server not reloaded. Also
    the deployed leaf served with another chain than its file's (the chain file changed, not reloaded)."""
    drifts = classify(ctx.evidence, _groups(ctx))
    if any(d.state == "current" for d in drifts):
        return  # some addresses are up to date: partially-reloaded
    for d in drifts:
        if d.state not in ("older", "stale-chain") or d.file is None:
            continue
        if d.state == "older":
            detail = (
                f"{_served_phrase(d)}; but {_file_phrase(d.file)}, issued later for the same names. The "
                "certificate was renewed on disk and the server still serves the old one from memory: it has not "
                "been reloaded since (or its reload failed)."
            )
        else:
            detail = (
                f"{', '.join(d.sources)} serves the deployed certificate {label(d.served)} with {len(d.served_chain)} "
                f"certificate(s), but {d.file.path} now holds a different chain ({len(d.file.certs)} "
                "certificate(s)): the chain file was changed and the server not reloaded since."
            )
        yield Hit(
            detail,
            reload_fix(ctx.evidence.server_type, d.file.path, _key_file(d.file)),
            cert=d.served,
            sources=d.sources,
            evidence={**_evidence(ctx, [d], d.file), "stale": "chain" if d.state == "stale-chain" else "leaf"},
        )


@check(
    "partially-reloaded",
    title="Some addresses serve the deployed certificate, others an older one",
    severity=Severity.ERROR,
    citation="nginx: Controlling nginx; Apache httpd: Stopping and Restarting; operational practice (load-balanced "
    "nodes)",
    scope="target",
)
def partially_reloaded(ctx: TargetContext) -> Iterator[Hit]:
    """With --deployed: at least one address serves a deployed file's leaf and chain, and others serve an older
    certificate for the same names (or the deployed leaf with an older chain) — some nodes or listeners were
    reloaded, the others not."""
    drifts = classify(ctx.evidence, _groups(ctx))
    current = [d for d in drifts if d.state == "current"]
    old = [d for d in drifts if d.state in ("older", "stale-chain")]
    if not current or not old:
        return
    f = old[0].file or current[0].file
    assert f is not None
    reloaded = [s for d in current for s in d.sources]
    stale = [s for d in old for s in d.sources]
    yield Hit(
        f"{', '.join(reloaded)} serve{'s' if len(reloaded) == 1 else ''} the deployed certificate "
        f"{label(current[0].served)} from {f.path}, but "
        + "; ".join(_served_phrase(d) for d in old)
        + ". Those were not reloaded (another node behind the name, another listener, or a server instance that "
        "was left out); clients get the old certificate depending on the address they reach.",
        reload_fix(ctx.evidence.server_type, f.path, _key_file(f))
        + f" Do it on every node/instance serving {', '.join(stale)}, then check each with --resolve.",
        cert=old[0].served,
        sources=tuple(stale),
        evidence={**_evidence(ctx, old, f), "reloaded_addresses": reloaded},
    )


@check(
    "served-not-deployed",
    title="The served certificate is in none of the deployed files",
    severity=Severity.ERROR,
    citation="RFC 6066 §3 (SNI selects the virtual host); operational practice (TLS terminated in front)",
    scope="target",
)
def served_not_deployed(ctx: TargetContext) -> Iterator[Hit]:
    """With --deployed: an address serves a certificate that no deployed file holds, and no deployed file has a
    later one for its names — another virtual host or listener answers, or a load balancer/CDN terminates TLS
    with its own copy."""
    for d in classify(ctx.evidence, _groups(ctx)):
        if d.state != "foreign":
            continue
        files = [f.path for f in ctx.evidence.deployed if f.ok]
        about = f" The deployed file for this name is {_file_phrase(d.file)}." if d.file is not None else ""
        yield Hit(
            f"{_served_phrase(d)}, which is in none of the deployed files ({', '.join(files)}).{about} Something "
            "else answers on this address: another virtual host or server block (SNI), another listener, an old "
            "server still in DNS, or a load balancer/CDN that terminates TLS with its own copy.",
            who_answers_fix(ctx.evidence.server_type),
            cert=d.served,
            sources=d.sources,
            evidence=_evidence(ctx, [d], d.file),
        )


@check(
    "deployed-file-unreadable",
    title="A deployed certificate file cannot be read",
    severity=Severity.ERROR,
    citation="RFC 7468; RFC 7292 (PKCS#12); the server refuses to (re)load a file it cannot read",
    scope="target",
)
def deployed_file_unreadable(ctx: TargetContext) -> Iterator[Hit]:
    """With --deployed: a deployed file is missing, too large, truncated beyond use or holds no certificate (a
    glob matching nothing too); the server would fail to load it on its next reload or restart."""
    for f in ctx.evidence.deployed:
        if f.error is None:
            continue
        yield Hit(
            f.error or f"{f.path}: no certificate",
            "Copy the certificate file again, completely (leaf first, then the intermediates), check the path the "
            "server configuration names, and test the configuration before reloading (`nginx -t`, `apachectl "
            "configtest`, `haproxy -c -f /etc/haproxy/haproxy.cfg`).",
            sources=(f.path,),
            evidence={"file": f.path, "error": f.error, "error_kind": f.error_kind, "size": f.size},
        )


@check(
    "deployed-file-problem",
    title="The deployed certificate file is not what the server should send",
    severity=Severity.WARNING,
    citation="RFC 8446 §4.4.2 (the certificate list: leaf first, each certifying the one before); RFC 7468",
    scope="target",
)
def deployed_file_problem(ctx: TargetContext) -> Iterator[Hit]:
    """With --deployed: each deployed file about this name, judged by the existing checks as the chain its server
    will send once (re)loaded (:data:`REUSED_FILE_CHECKS`: wrong order, missing intermediate, PEM format...),
    plus a private key (in the file, or --key) that does not belong to its leaf (an error: nginx and Apache
    refuse to load the pair, so a reload fails and the old certificate stays served) and what could not be read
    (a truncated block), and a file whose server certificate is not its first (``leaf-not-first``, an error). A
    file whose exact chain is already served is judged by the served chain's own findings
    (only its file facts are added here)."""
    ev = ctx.evidence
    if not ev.deployed:
        return
    served = {tuple(certinfo.fingerprint(c) for c in x.chain.certs) for x in ctx.chains}
    files = relevant_files(ev, [x.chain.certs[0] for x in ctx.chains])
    # Files with the same leaf (cert.pem and fullchain.pem of a certbot directory): the chain checks judge the
    # fullest one only, the file a server is configured with to send the chain.
    fullest: dict[str, DeployedFile] = {}
    for f in files:
        key = certinfo.fingerprint(f.leaf)  # type: ignore[arg-type]
        if key not in fullest or len(f.certs) > len(fullest[key].certs):
            fullest[key] = f
    for f in files:
        leaf = f.leaf
        assert leaf is not None
        base = {"file": f.path, "format": f.format, "mtime": f.mtime.isoformat() if f.mtime else None}
        if f.key_matches is False:
            yield Hit(
                f"{f.path}: the private key {'in the file' if f.key_source == f.path else f'in {f.key_source}'} "
                f"does not belong to its certificate {label(leaf)}. The server refuses this pair: a reload fails "
                "(and nginx/Apache keep serving the old certificate), a restart does not come up.",
                "Deploy the key that was used for this certificate's request (compare `openssl x509 -noout "
                "-pubkey -in CERT` with `openssl pkey -pubout -in KEY`), or the certificate issued for this key.",
                cert=leaf,
                severity=Severity.ERROR,
                sources=(f.path,),
                evidence={**base, "problem": "key-mismatch", "key_source": f.key_source},
            )
        for problem in f.problems:
            if problem.startswith("a private key"):  # a key not compared (no password): listed, not a problem
                continue
            yield Hit(
                f"{f.path}: {problem}.",
                "Copy the file again, completely, from the CA's download or the renewal client's output.",
                sources=(f.path,),
                evidence={**base, "problem": "unreadable-part", "detail": problem},
            )
        if f.leaf_index:
            first = f.certs[0]
            yield Hit(
                f"{f.path}: the server certificate {label(leaf)} is certificate {f.leaf_index + 1} of the file, "
                f"after {label(first)}. Servers send the first certificate of the file as theirs: nginx and "
                "Apache refuse to load it with its key (key values mismatch), or clients get the wrong certificate.",
                "Put the server certificate first, then the intermediates in order (leaf → intermediate → ...): "
                "`cat cert.pem intermediate.pem > fullchain.pem`, or let `certdoctor fix FILE -d out` write it.",
                cert=leaf,
                severity=Severity.ERROR,
                sources=(f.path,),
                evidence={**base, "problem": "leaf-not-first", "leaf_index": f.leaf_index},
            )
        if fullest[certinfo.fingerprint(leaf)] is not f:
            continue
        is_served = tuple(certinfo.fingerprint(c) for c in f.certs) in served
        for finding in _file_findings(ev, f):
            if is_served and finding.id != "pem-format":
                continue
            yield Hit(
                f"{f.path}, as the chain the server will send: {finding.detail}",
                finding.fix,
                sources=(f.path,),
                evidence={**base, "problem": finding.id, "problem_severity": finding.severity.value},
            )


def _file_findings(ev: Evidence, f: DeployedFile) -> list[Any]:
    """The findings of :data:`REUSED_FILE_CHECKS` on deployed file ``f`` read as one presented chain (as
    ``check --file FILE --name NAME`` would judge it): its leaf first, the other certificates in file order."""
    from ..paths import StoreIndex, analyse

    # the leaf first (a file that does not start with it is reported as leaf-not-first), the rest in file order
    certs = (
        f.certs
        if not f.leaf_index
        else (f.certs[f.leaf_index], *(c for i, c in enumerate(f.certs) if i != f.leaf_index))
    )
    chain = PresentedChain(source=f.path, certs=certs, total_received=len(certs), pem_issues=f.pem_issues)
    sub = replace(
        ev,
        target=Target(ev.target.name, port=0, files=(f.path,)),
        chains=(chain,),
        deployed=(),
        expected=None,
        key_public=None,
        revocation={},
        revocation_checked=False,
        client_stores=(),
    )
    index = StoreIndex.shared(ev.stores, ev.extra_roots)
    ctx = ChainContext(sub, chain, (f.path,), analyse(chain, sub, index))
    findings = run_checks(TargetContext(sub, [ctx], []))
    return [x for x in findings if x.id in REUSED_FILE_CHECKS]
