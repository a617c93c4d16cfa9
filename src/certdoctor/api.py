"""The public API: a thin facade over :mod:`certdoctor.pipeline`.

    >>> from certdoctor import diagnose
    >>> d = diagnose("example.com")            # or diagnose(files=["served.pem"], name="example.com")
    >>> d.valid, [f.id for f in d.findings]

``diagnose_async`` is the same as a coroutine, for callers that already run an event loop. To diagnose many
targets, open one :class:`Session` with a :class:`DiagnoseOptions` and call ``await session.diagnose(...)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509

from .diagnosis import ChainReport, Diagnosis
from .errors import CertdoctorError, CollectError, DiagnoseError, InputError
from .model import (
    DEFAULT_AIA_TIMEOUT,
    DEFAULT_REVOCATION_TIMEOUT,
    DEFAULT_TIMEOUT,
    DEFAULT_WARN_DAYS,
    DiagnoseOptions,
    Evidence,
    Finding,
    Severity,
    Target,
)
from .pipeline import UNSET, Session, judge, parse_at, parse_target

__all__ = [
    "CertdoctorError",
    "ChainReport",
    "CollectError",
    "DiagnoseError",
    "DiagnoseOptions",
    "Diagnosis",
    "Evidence",
    "Finding",
    "InputError",
    "Session",
    "Severity",
    "Target",
    "diagnose",
    "diagnose_async",
    "judge",
    "parse_at",
    "parse_target",
]


async def diagnose_async(
    target: str | None = None,
    *,
    port: int | None = None,
    files: Sequence[str] = (),
    name: str | None = UNSET,
    resolve: Sequence[str] = (),
    sni: str | None = UNSET,
    separate_files: bool = False,
    starttls: str | None = UNSET,
    options: DiagnoseOptions | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ca_files: Sequence[str] = (),
    ca_certs: Sequence[x509.Certificate] = (),
    ca_bundle: Sequence[str] = (),
    trust_stores: Sequence[str] | None = None,
    at: datetime | str | None = None,
    expect: str | None = None,
    warn_days: int = DEFAULT_WARN_DAYS,
    fetch_aia: bool = True,
    key: str | None = None,
    key_password: bytes | None = None,
    clients: bool = True,
    revocation: bool = True,
    revocation_timeout: float = DEFAULT_REVOCATION_TIMEOUT,
    aia_timeout: float = DEFAULT_AIA_TIMEOUT,
    allow_private_fetch: bool = True,
    verdict_clients: Sequence[str] | None = None,
    deployed: Sequence[str] = (),
    deployed_password: bytes | None = None,
    server_type: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    client_key_password: bytes | None = None,
    proxy: str | None = None,
    no_proxy: str | None = None,
    all_key_types: bool = True,
    aia_fetcher: Any = None,
    revocation_fetcher: Any = None,
) -> Diagnosis:
    """Diagnose a server or local chain files; returns a :class:`Diagnosis`.

    What to diagnose: ``target`` is ``"host"``, ``"host:port"``, ``"[v6]:port"`` or an ``https://`` URL (port
    443 by default, or ``port``); or ``files``, chain files read as *one* presented chain in the order given
    (leaf first, as a server sends it), or with ``separate_files`` each the chain of another server (several
    nodes' files, judged side by side as the addresses of one name are). ``name``: the name the certificate
    must match (default: the target's host; for files, no name check unless given). ``resolve``: IP addresses
    to connect to instead of resolving the host (curl's ``--resolve``). ``sni``: the server name to send
    (default: the host; None: no SNI). ``starttls``: the protocol to speak before TLS ("smtp", "imap", "pop3",
    "postgres", "postgres-direct", "mysql"; None or "none": TLS from the first byte); by default the URL scheme's
    (``smtp://host:587``, ``postgres://db``) or the well-known port's (25, 587, 143, 110, 5432, 3306) — see
    :func:`certdoctor.pipeline.starttls_for`.

    How: ``options`` (a :class:`DiagnoseOptions`), or its fields as keyword arguments (``timeout`` seconds per
    connection, ``ca_files``, ``ca_bundle``, ``trust_stores``, ``at`` (UTC), ``expect``, ``warn_days``,
    ``fetch_aia``, ``key``/``key_password``, ``clients``, ``revocation``, ``revocation_timeout`` seconds in
    all, ``aia_timeout`` seconds in all, ``allow_private_fetch``, ``verdict_clients``: the client family ids whose
    refusal makes the verdict INVALID, default all; ``deployed``: the certificate files or globs on the server's
    disk, compared with what is served, with ``deployed_password`` for PKCS#12/keystores and ``server_type`` for
    the fix text; ``client_cert``/``client_key``/``client_key_password``: the client certificate sent to servers
    that ask for one; ``proxy``/``no_proxy``: the HTTP proxy, by default the environment's, see
    :class:`DiagnoseOptions`; ``all_key_types``: also collect the other certificate of a server with an RSA and
    an ECDSA one); the keyword arguments are ignored when
    ``options`` is given. ``aia_fetcher`` and
    ``revocation_fetcher`` may be shared across calls to share their caches.

    Raises :class:`InputError` for unusable input (a bad target, date, file or key) and
    :class:`CollectError` when nothing could be collected (the name does not resolve). A server that refuses
    connections or handshakes is not an exception: it is a diagnosis with ``reachable`` False.
    """
    started = time.perf_counter()
    if options is None:
        options = DiagnoseOptions(
            timeout=timeout,
            ca_files=tuple(ca_files),
            ca_certs=tuple(ca_certs),
            ca_bundle=tuple(ca_bundle),
            trust_stores=None if trust_stores is None else tuple(trust_stores),
            at=at,
            expect=expect,
            warn_days=warn_days,
            fetch_aia=fetch_aia,
            key=key,
            key_password=key_password,
            clients=clients,
            revocation=revocation,
            revocation_timeout=revocation_timeout,
            aia_timeout=aia_timeout,
            allow_private_fetch=allow_private_fetch,
            verdict_clients=None if verdict_clients is None else tuple(verdict_clients),
            deployed=tuple(deployed),
            deployed_password=deployed_password,
            server_type=server_type,  # type: ignore[arg-type]  # checked by DiagnoseOptions
            client_cert=client_cert,
            client_key=client_key,
            client_key_password=client_key_password,
            proxy=proxy,
            no_proxy=no_proxy,
            all_key_types=all_key_types,
        )
    async with Session(options, aia_fetcher=aia_fetcher, revocation_fetcher=revocation_fetcher) as session:
        tgt, host = session.target_for(
            target,
            port=port,
            files=files,
            name=name,
            resolve=resolve,
            sni=sni,
            separate_files=separate_files,
            starttls=starttls,
        )
        chains = await session.collect_chains(tgt, host)
        return await session.judge_chains(tgt, chains, started=started)


def diagnose(target: str | None = None, **kwargs: Any) -> Diagnosis:
    """Synchronous form of :func:`diagnose_async` (same arguments); raises RuntimeError inside a running event
    loop (await :func:`diagnose_async` there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(diagnose_async(target, **kwargs))
    raise RuntimeError("diagnose() called from a running event loop: await diagnose_async() instead")
