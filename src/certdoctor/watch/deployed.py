"""Deployed certificate files in the watch list: the files on a server's disk that targets should serve.

``watch add-file PATH --serves TARGET`` (or ``watch discover``, which finds them in server configurations) records
a file and links it to targets; every check of a linked target reads the file again and compares it with what
each address serves — the ``--deployed`` checks of ``certdoctor check`` (``not-reloaded``,
``served-not-deployed``, ``partially-reloaded``, ``deployed-file-*``), with the fix for the file's server type.
A pass also refreshes each file's row (mtime, leaf, chain, error), so ``watch files`` shows what is on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..errors import InputError
from ..model import SERVER_TYPES, DeployedRef
from . import tables as t
from .store import DEFAULT_EVERY, Store, WatchedTarget, now, utc


@dataclass(frozen=True)
class WatchedFile:
    """One row of ``deployed_files`` with the ids of the targets linked to it (``discovered``: found in a server
    configuration rather than added by hand)."""

    id: int
    path: str
    server_type: str | None
    key_path: str | None
    password_env: str | None
    password_file: str | None
    source: str
    added: datetime
    read_at: datetime | None
    mtime: datetime | None
    format: str | None
    leaf_sha256: str | None
    leaf_not_before: datetime | None
    leaf_not_after: datetime | None
    chain: tuple[str, ...]
    error: str | None
    targets: tuple[int, ...] = ()

    def ref(self) -> DeployedRef:
        """How a check reads this file (see :class:`certdoctor.model.DeployedRef`)."""
        return DeployedRef(self.path, self.server_type, self.key_path, self.password_env, self.password_file)

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "path": self.path,
            "server_type": self.server_type,
            "key": self.key_path,
            "source": self.source,
            "added": iso(self.added),
            "read_at": iso(self.read_at),
            "mtime": iso(self.mtime),
            "format": self.format,
            "leaf_sha256": self.leaf_sha256,
            "leaf_not_before": iso(self.leaf_not_before),
            "leaf_not_after": iso(self.leaf_not_after),
            "chain": list(self.chain),
            "error": self.error,
            "targets": list(self.targets),
        }


def _file(row: Any, targets: Iterable[int] = ()) -> WatchedFile:
    return WatchedFile(
        row.id,
        row.path,
        row.server_type,
        row.key_path,
        row.password_env,
        row.password_file,
        row.source,
        utc(row.added),  # type: ignore[arg-type]
        utc(row.read_at),
        utc(row.mtime),
        row.format,
        row.leaf_sha256,
        utc(row.leaf_not_before),
        utc(row.leaf_not_after),
        tuple(row.chain or ()),
        row.error,
        tuple(sorted(targets)),
    )


def normalise_path(path: str) -> str:
    """An absolute path as the server configuration names it (symbolic links kept: certbot's ``live/`` links are
    what nginx reads, and what a renewal changes)."""
    return os.path.abspath(os.path.expanduser(path))


def add_file(
    store: Store,
    path: str,
    *,
    serves: Sequence[str | int] = (),
    server_type: str | None = None,
    key: str | None = None,
    password_env: str | None = None,
    password_file: str | None = None,
    source: str = "add-file",
    discovered: bool = False,
    labels: Mapping[str, str] | None = None,
    every: float = DEFAULT_EVERY,
) -> tuple[WatchedFile, list[WatchedTarget]]:
    """Record a deployed file (the same path again: its reading options are updated) and link it to the targets
    it should serve: ids of watched targets, or specs (added to the watch list with ``labels`` and ``every`` when
    not there yet). The file is read now (see :func:`refresh_files`); a file that cannot be read is recorded
    with its error (it may appear later: certbot's first issuance).

    Returns: the file as recorded, and the targets linked.
    Raises: InputError for an unknown server type, a target id not in the watch list, or a spec scan would not
    accept.
    """
    if server_type is not None and server_type not in SERVER_TYPES:
        raise InputError(f"server type {server_type!r}: one of {', '.join(SERVER_TYPES)}")
    full = normalise_path(path)
    linked: list[WatchedTarget] = []
    ids = [s for s in serves if isinstance(s, int) or str(s).isdigit()]
    specs = [str(s) for s in serves if s not in ids]
    for ref in ids:
        found = store.target(int(ref))
        if found is None:
            raise InputError(f"no such target in the watch list: {ref}")
        linked.append(found)
    if specs:
        linked.extend(target for target, _ in store.add(specs, labels, every))
    f = t.deployed_files
    values = {
        "server_type": server_type,
        "key_path": normalise_path(key) if key else None,
        "password_env": password_env,
        "password_file": normalise_path(password_file) if password_file else None,
        "source": source,
    }
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(f.c.id).where(f.c.path == full)).first()
        if row is None:
            file_id = conn.execute(
                sa.insert(f).values(path=full, added=now(), chain=[], **values)
            ).inserted_primary_key[0]
        else:
            file_id = row.id
            keep = {k: v for k, v in values.items() if v is not None}  # a discovery does not forget a password
            conn.execute(sa.update(f).where(f.c.id == file_id).values(**keep))
        _link(conn, file_id, [x.id for x in linked], discovered)
    refresh_files(store, [file_id])
    found_file = files(store, ids=[file_id])[0]
    return found_file, linked


def _link(conn: sa.Connection, file_id: int, target_ids: Sequence[int], discovered: bool) -> None:
    links = t.deployed_links
    have = set(conn.execute(sa.select(links.c.target_id).where(links.c.file_id == file_id)).scalars())
    new = [
        {"file_id": file_id, "target_id": i, "discovered": discovered}
        for i in dict.fromkeys(target_ids)
        if i not in have
    ]
    if new:
        conn.execute(sa.insert(links), new)


def remove_file(store: Store, path: str) -> bool:
    """Forget a deployed file and its links (the targets stay). Returns whether it was recorded."""
    full = normalise_path(path)
    f = t.deployed_files
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(f.c.id).where(f.c.path == full)).first()
        if row is None:
            return False
        conn.execute(sa.delete(t.deployed_links).where(t.deployed_links.c.file_id == row.id))
        conn.execute(sa.delete(f).where(f.c.id == row.id))
    return True


def files(
    store: Store, *, ids: Sequence[int] | None = None, target_ids: Sequence[int] | None = None
) -> list[WatchedFile]:
    """The recorded files (by path), or those of ``ids``, or those linked to ``target_ids``, each with its
    linked targets."""
    f, links = t.deployed_files, t.deployed_links
    query = sa.select(f).order_by(f.c.path)
    with store.engine.connect() as conn:
        if ids is not None:
            query = query.where(f.c.id.in_(list(ids)))
        if target_ids is not None:
            query = query.where(f.c.id.in_(sa.select(links.c.file_id).where(links.c.target_id.in_(list(target_ids)))))
        rows = conn.execute(query).all()
        by_file: dict[int, list[int]] = {}
        if rows:
            for r in conn.execute(
                sa.select(links.c.file_id, links.c.target_id).where(links.c.file_id.in_([r.id for r in rows]))
            ):
                by_file.setdefault(r.file_id, []).append(r.target_id)
    return [_file(r, by_file.get(r.id, ())) for r in rows]


def refs_by_target(store: Store, target_ids: Sequence[int]) -> dict[int, tuple[DeployedRef, ...]]:
    """Per target among ``target_ids`` that has linked files: how a check reads each of them (one query per 500
    targets)."""
    f, links = t.deployed_files, t.deployed_links
    out: dict[int, list[DeployedRef]] = {}
    ids = list(target_ids)
    with store.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = (
                sa.select(
                    links.c.target_id, f.c.path, f.c.server_type, f.c.key_path, f.c.password_env, f.c.password_file
                )
                .select_from(links.join(f, f.c.id == links.c.file_id))
                .where(links.c.target_id.in_(ids[start : start + 500]))
                .order_by(links.c.target_id, f.c.path)
            )
            for r in conn.execute(query):
                out.setdefault(r.target_id, []).append(
                    DeployedRef(r.path, r.server_type, r.key_path, r.password_env, r.password_file)
                )
    return {k: tuple(v) for k, v in out.items()}


def refresh_files(store: Store, ids: Sequence[int] | None = None) -> list[WatchedFile]:
    """Read the recorded files (all, or ``ids``) as they are on disk now and store what was read: mtime, format,
    the leaf's SHA-256 and validity, the chain as SHA-256s in file order, or the error. Returns them."""
    from .. import certinfo
    from ..pipeline import read_deployed

    found = files(store, ids=ids)
    if not found:
        return []
    read = read_deployed([x.ref() for x in found])
    moment = now()
    updates = []
    for row, d in zip(found, read, strict=True):
        leaf = d.leaf if d.ok else None
        updates.append(
            {
                "fid": row.id,
                "read_at": moment,
                "mtime": d.mtime,
                "format": d.format,
                "leaf_sha256": certinfo.fingerprint(leaf) if leaf is not None else None,
                "leaf_not_before": certinfo.not_before(leaf) if leaf is not None else None,
                "leaf_not_after": certinfo.not_after(leaf) if leaf is not None else None,
                "chain": [certinfo.fingerprint(c) for c in d.certs],
                "error": d.error,
            }
        )
    f = t.deployed_files
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(f)
            .where(f.c.id == sa.bindparam("fid"))
            .values(
                read_at=sa.bindparam("read_at"),
                mtime=sa.bindparam("mtime"),
                format=sa.bindparam("format"),
                leaf_sha256=sa.bindparam("leaf_sha256"),
                leaf_not_before=sa.bindparam("leaf_not_before"),
                leaf_not_after=sa.bindparam("leaf_not_after"),
                chain=sa.bindparam("chain"),
                error=sa.bindparam("error"),
            ),
            updates,
        )
    return files(store, ids=[x.id for x in found])


@dataclass(frozen=True)
class PlannedLink:
    """What ``watch discover`` adds for one TLS listener name: the target (``spec``, as scan reads a line) and the
    certificate file that should be served there, with where the configuration says so (``source``)."""

    spec: str
    path: str
    key: str | None
    server_type: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.spec,
            "file": self.path,
            "key": self.key,
            "server_type": self.server_type,
            "source": self.source,
        }


def plan_discovery(found: Any, *, public: bool = False) -> tuple[list[PlannedLink], list[str]]:
    """From a :class:`certdoctor.collect.serverconf.Discovery`: one target per (listener address, server name)
    and the certificate file the server serves for that name, and notes for what cannot be watched as found (a
    wildcard or regular-expression name, a listener without a name, a certificate file that does not exist).

    Targets connect to the listener's own address (``addr=``; a wildcard listen address is reached on loopback),
    so that they measure this server rather than whatever the name resolves to; ``public``: by the name only
    (DNS), for a configuration read on another machine than the one that runs the checks.
    """
    plan: dict[tuple[str, str], PlannedLink] = {}
    notes: list[str] = []
    for listener in found.listeners:
        where = f"{listener.file}:{listener.line}"
        skipped = [n for n in listener.names if n not in listener.sni_names]
        for name in skipped:
            notes.append(f"{where}: {name}: not a name a client sends (wildcard or pattern); add a concrete one")
        if not listener.sni_names:
            notes.append(f"{where}: {listener.section}: no server name to check")
            continue
        for address in listener.addresses:
            for name in listener.sni_names:
                source = listener.certificate_for(name)
                if source is None:
                    notes.append(f"{where}: {name}: no certificate file configured")
                    continue
                if source.exists is False:
                    notes.append(f"{source.file}:{source.line}: {source.certificate} does not exist (recorded anyway)")
                spec = f"{name}:{address.port}" if public else f"{name}:{address.port},addr={address.connect_host}"
                plan.setdefault(
                    (spec, source.certificate),
                    PlannedLink(
                        spec,
                        source.certificate,
                        source.key,
                        listener.server_type,
                        f"discover {listener.server_type} {source.file}:{source.line}",
                    ),
                )
    return list(plan.values()), notes


def apply_discovery(
    store: Store, plan: Sequence[PlannedLink], labels: Mapping[str, str] | None = None, every: float = DEFAULT_EVERY
) -> list[tuple[PlannedLink, bool]]:
    """Add the planned targets (labels and interval for new ones) and record their files, linked as discovered.
    Returns each link with whether its target was new to the watch list."""
    existing = {t.spec: t.id for t in store.targets()}  # by id: an existing target keeps its labels and interval
    out = []
    for link in plan:
        known = existing.get(link.spec)
        _, linked = add_file(
            store,
            link.path,
            serves=[link.spec if known is None else known],
            server_type=link.server_type if link.server_type in SERVER_TYPES else None,
            key=link.key,
            source=link.source,
            discovered=True,
            labels=labels,
            every=every,
        )
        out.append((link, known is None))
        existing[link.spec] = linked[0].id
    return out
