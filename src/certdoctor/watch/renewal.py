"""Renewal hooks: a command run when a watched certificate comes near its expiry, then a check that the server
really serves the renewed certificate.

A hook (``watch hook add``) belongs to one target or to the targets whose labels include its ``selector``. After
a pass (:func:`after_pass`), for each target checked whose leaf or built chain ends within the hook's
``threshold_days`` (or has ended), the command runs — unless a run of that hook for that target is still
``running`` or ``waiting``, or started less than :func:`retry_after` ago. Each run is a ``renewal_runs`` row:

- ``running`` while the command runs; a run left ``running`` past its timeout (certdoctor was stopped) becomes
  ``failed``;
- ``failed`` when it exits with a status other than 0, is killed at its timeout, or cannot start: the alert
  condition ``renewal-failed`` (critical) carries the exit code and the last 4 KB of its output, until a later
  run of the hook succeeds or the target serves another leaf;
- ``waiting`` when it exits 0: the target's addresses are checked again at once, then at every pass; once every
  address that answers serves a leaf other than the one served before the run, ``served``;
- ``not-served`` when the ``deadline`` (the run's end + the hook's ``window_s``) passes first: the alert
  condition ``renewal-not-served`` (critical) names the certificate files linked to the target (``watch
  add-file``) and the reload command of their server type; a later pass that sees the new leaf makes it
  ``served`` and resolves the alert.

``watch renewed`` is certbot's ``--deploy-hook`` (certbot runs it once per renewed certificate, with
``RENEWED_LINEAGE`` — the lineage's ``live/`` directory — and ``RENEWED_DOMAINS``, its names separated by spaces:
certbot's User Guide, "Renewing certificates"): :func:`certbot_renewed` records a ``waiting`` run (trigger
``certbot``, no hook) for each target linked to a file under that directory or named one of those names, and
checks them at once.

The command runs without a shell when it has no shell syntax (split as a POSIX shell would split words,
:func:`shlex.split`), else with ``/bin/sh -c``; standard input is /dev/null, standard output and error go to one
temporary file (memory stays bounded, whatever the command prints), and its environment is certdoctor's plus
``CERTDOCTOR_TARGET`` (the target as added), ``CERTDOCTOR_HOST``, ``CERTDOCTOR_PORT``, ``CERTDOCTOR_NAME`` (the
name checked), ``CERTDOCTOR_LEAF_SHA256`` (the leaf served now) and ``CERTDOCTOR_DAYS_LEFT``. At its timeout its
process group gets SIGTERM, then SIGKILL 5 s later. Commands run one after another (certbot itself allows one
instance at a time).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..errors import InputError
from . import tables as t
from .events import Event
from .store import Observation, Store, WatchedTarget, now, utc

DEFAULT_DAYS = 30.0
DEFAULT_WINDOW = 900  # seconds: how long a server may take to serve the renewed certificate
DEFAULT_TIMEOUT = 600  # seconds a command may run
RETRY_S = 3600  # a hook runs again for a target at most this often (or its window, if longer)
OUTPUT_TAIL = 4096  # bytes of output kept
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL at the timeout
STATES = ("running", "waiting", "served", "not-served", "failed")
PENDING = ("waiting", "not-served")  # runs a later check can still settle
SHELL_SYNTAX = set("|&;<>()$`*?[]{}~\n#=")  # any of these: the command is given to /bin/sh -c

Result = tuple[WatchedTarget, Observation, Sequence[Event]]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Hook:
    """One ``renewal_hooks`` row: for ``target_id``, or for the targets whose labels include ``selector``."""

    id: int
    selector: Mapping[str, str]
    target_id: int | None
    command: str
    threshold_days: float
    window_s: int
    timeout_s: int
    created: datetime
    target: str | None = None  # the target's spec, for display

    def applies(self, target: WatchedTarget) -> bool:
        if self.target_id is not None:
            return self.target_id == target.id
        return bool(self.selector) and all(target.labels.get(k) == v for k, v in self.selector.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "target_id": self.target_id,
            "target": self.target,
            "labels": dict(self.selector),
            "threshold_days": self.threshold_days,
            "window_s": self.window_s,
            "timeout_s": self.timeout_s,
            "created": self.created.isoformat(),
        }


@dataclass(frozen=True)
class Run:
    """One ``renewal_runs`` row (``hook_id`` None: a certbot deploy-hook notice)."""

    id: int
    hook_id: int | None
    target_id: int
    trigger: str  # "threshold" (a hook) or "certbot"
    started: datetime
    finished: datetime | None
    exit_code: int | None
    output_tail: str | None
    old_leaf_sha256: str | None
    new_leaf_sha256: str | None
    state: str
    deadline: datetime | None
    target: str | None = None
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hook_id": self.hook_id,
            "target_id": self.target_id,
            "target": self.target,
            "command": self.command,
            "trigger": self.trigger,
            "state": self.state,
            "started": self.started.isoformat(),
            "finished": _iso(self.finished),
            "deadline": _iso(self.deadline),
            "exit_code": self.exit_code,
            "output_tail": self.output_tail,
            "old_leaf_sha256": self.old_leaf_sha256,
            "new_leaf_sha256": self.new_leaf_sha256,
        }


def _hook(row: Any, spec: str | None = None) -> Hook:
    return Hook(
        row.id,
        dict(row.selector or {}),
        row.target_id,
        row.command,
        float(row.threshold_days),
        int(row.window_s),
        int(row.timeout_s),
        utc(row.created),  # type: ignore[arg-type]
        spec,
    )


def _run(row: Any) -> Run:
    m = row._mapping
    return Run(
        row.id,
        row.hook_id,
        row.target_id,
        row.trigger,
        utc(row.started),  # type: ignore[arg-type]
        utc(row.finished),
        row.exit_code,
        row.output_tail,
        row.old_leaf_sha256,
        row.new_leaf_sha256,
        row.state,
        utc(row.deadline),
        m.get("spec"),
        m.get("command"),
    )


def retry_after(hook: Hook) -> float:
    """Seconds before a hook runs again for the same target: :data:`RETRY_S`, or its window if longer."""
    return float(max(RETRY_S, hook.window_s))


# --- hooks --------------------------------------------------------------------------------------------------------


def add_hook(
    store: Store,
    command: str,
    *,
    target: str | int | None = None,
    selector: Mapping[str, str] | None = None,
    threshold_days: float = DEFAULT_DAYS,
    window_s: float = DEFAULT_WINDOW,
    timeout_s: float = DEFAULT_TIMEOUT,
) -> Hook:
    """Record a hook for one watched ``target`` (its id or spec) or for the targets whose labels include
    ``selector`` (exactly one of the two).

    Raises: InputError for an empty or unparsable command, both or neither of target and selector, an unknown
    target, a negative threshold or a window or timeout under one second.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise InputError(f"command {command!r}: {exc}") from None
    if not words:
        raise InputError("the renewal command is empty")
    if (target is None) == (not selector):
        raise InputError("a hook is for one target (--target) or for labels (--label k=v), not both nor neither")
    if threshold_days < 0:
        raise InputError(f"--days {threshold_days:g}: not negative")
    if window_s < 1 or timeout_s < 1:
        raise InputError("--window and --timeout: at least 1s")
    with store.engine.begin() as conn:
        target_id = None
        if target is not None:
            found = store.resolve(conn, target)
            if found is None:
                raise InputError(f"no such target in the watch list: {target}")
            target_id = found.id
        new_id = conn.execute(
            sa.insert(t.renewal_hooks).values(
                selector=dict(selector or {}),
                target_id=target_id,
                command=command,
                threshold_days=float(threshold_days),
                window_s=int(window_s),
                timeout_s=int(timeout_s),
                created=now(),
            )
        ).inserted_primary_key[0]
    return next(h for h in hooks(store) if h.id == new_id)


def hooks(store: Store) -> list[Hook]:
    """Every hook, by id, with its target's spec."""
    h = t.renewal_hooks
    query = sa.select(h, t.targets.c.spec).select_from(h.outerjoin(t.targets, t.targets.c.id == h.c.target_id))
    with store.engine.connect() as conn:
        return [_hook(r, r.spec) for r in conn.execute(query.order_by(h.c.id))]


def remove_hook(store: Store, hook_id: int) -> bool:
    """Forget a hook and its runs. Returns whether it existed."""
    with store.engine.begin() as conn:
        conn.execute(sa.delete(t.renewal_runs).where(t.renewal_runs.c.hook_id == hook_id))
        return bool(conn.execute(sa.delete(t.renewal_hooks).where(t.renewal_hooks.c.id == hook_id)).rowcount)


def runs(store: Store, *, target_ids: Sequence[int] | None = None, limit: int = 50) -> list[Run]:
    """The latest ``limit`` runs (of ``target_ids``), newest first, with the target's spec and the command."""
    r, h = t.renewal_runs, t.renewal_hooks
    query = (
        sa.select(r, t.targets.c.spec, h.c.command)
        .select_from(r.join(t.targets, t.targets.c.id == r.c.target_id).outerjoin(h, h.c.id == r.c.hook_id))
        .order_by(r.c.id.desc())
        .limit(limit)
    )
    if target_ids is not None:
        query = query.where(r.c.target_id.in_(list(target_ids)))
    with store.engine.connect() as conn:
        return [_run(x) for x in conn.execute(query)]


def _latest(conn: sa.Connection, states: Sequence[str] | None = None) -> dict[tuple[int | None, int], Run]:
    """The newest run per (hook, target) — a hook's earlier runs no longer count — optionally only those in
    ``states``; one query (the table holds a few rows per hook and target)."""
    r, h = t.renewal_runs, t.renewal_hooks
    newest = sa.select(sa.func.max(r.c.id)).group_by(r.c.hook_id, r.c.target_id)
    query = sa.select(r, h.c.command).select_from(r.outerjoin(h, h.c.id == r.c.hook_id)).where(r.c.id.in_(newest))
    if states is not None:
        query = query.where(r.c.state.in_(list(states)))
    return {(x.hook_id, x.target_id): _run(x) for x in conn.execute(query)}


# --- running a command --------------------------------------------------------------------------------------------


def argv(command: str) -> list[str]:
    """How ``command`` is executed: its words (:func:`shlex.split`), or ``/bin/sh -c command`` when it has
    shell syntax (pipes, redirections, variables, globs, ``;``, ``&&``, assignments…)."""
    if SHELL_SYNTAX & set(command):
        return ["/bin/sh", "-c", command]
    return shlex.split(command)


def execute(command: str, env: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """Run ``command`` (see :func:`argv`) with ``env`` added to certdoctor's environment.

    Returns: (exit status — negative: killed by that signal; 127: not found, 126: not executable, as a shell
    says — and the last :data:`OUTPUT_TAIL` bytes of its standard output and error, decoded as UTF-8 with
    replacements, with a line saying so when it timed out or could not start). Never raises for the command's
    failures."""
    environment = {**os.environ, **env}
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                argv(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,  # its own process group: the timeout stops its children too
            )
        except FileNotFoundError as exc:
            return 127, f"[certdoctor: command not found: {exc.filename or command}]"
        except PermissionError as exc:
            return 126, f"[certdoctor: not executable: {exc.filename or command}]"
        except OSError as exc:
            return 126, f"[certdoctor: cannot run the command: {exc.strerror or exc}]"
        note = ""
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            note = f"\n[certdoctor: timed out after {timeout:g} s, stopped]"
            _kill_group(proc)
            code = proc.returncode
        size = out.seek(0, os.SEEK_END)
        out.seek(max(0, size - OUTPUT_TAIL))
        tail = out.read().decode("utf-8", "replace")
    return code, tail + note


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _environment(target: WatchedTarget, obs: Observation, days_left: float) -> dict[str, str]:
    return {
        "CERTDOCTOR_TARGET": target.spec,
        "CERTDOCTOR_HOST": target.host,
        "CERTDOCTOR_PORT": str(target.port),
        "CERTDOCTOR_NAME": target.name,
        "CERTDOCTOR_LEAF_SHA256": obs.leaf_sha256 or "",
        "CERTDOCTOR_DAYS_LEFT": f"{days_left:.2f}",
    }


def _days_left(obs: Observation, at: datetime) -> float | None:
    """Days until the earliest notAfter of the leaf and of the built chain (None: nothing was served)."""
    if obs.verdict == "unreachable" or obs.leaf_sha256 is None:
        return None
    ends = [x for x in (obs.leaf_not_after, obs.chain_not_after) if x is not None]
    if not ends:
        return None
    return (min(ends) - at).total_seconds() / 86400


# --- after a pass -------------------------------------------------------------------------------------------------


def run_due(store: Store, results: Iterable[Result], at: datetime | None = None) -> list[Run]:
    """Run every hook that a checked target's days left call for (see the module docstring) and record each run.
    Returns the runs made (``waiting``: exit 0; ``failed``)."""
    moment = at or now()
    found = hooks(store)
    if not found:
        return []
    r = t.renewal_runs
    made: list[Run] = []
    with store.engine.connect() as conn:
        latest = _latest(conn)
    for target, obs, _events in results:
        left = _days_left(obs, moment)
        if left is None:
            continue
        for hook in found:
            if not hook.applies(target) or left > hook.threshold_days:
                continue
            last = latest.get((hook.id, target.id))
            if last is not None and (
                last.state in ("running", "waiting") or (moment - last.started).total_seconds() < retry_after(hook)
            ):
                continue
            with store.engine.begin() as conn:
                run_id = conn.execute(
                    sa.insert(r).values(
                        hook_id=hook.id,
                        target_id=target.id,
                        trigger="threshold",
                        started=moment,
                        old_leaf_sha256=obs.leaf_sha256,
                        state="running",
                    )
                ).inserted_primary_key[0]
            clock = time.monotonic()
            code, tail = execute(hook.command, _environment(target, obs, left), hook.timeout_s)
            finished = moment + timedelta(seconds=time.monotonic() - clock)
            state = "waiting" if code == 0 else "failed"
            values: dict[str, Any] = {"finished": finished, "exit_code": code, "output_tail": tail, "state": state}
            if state == "waiting":
                values["deadline"] = finished + timedelta(seconds=hook.window_s)
            with store.engine.begin() as conn:
                conn.execute(sa.update(r).where(r.c.id == run_id).values(**values))
                row = conn.execute(sa.select(r).where(r.c.id == run_id)).one()
            run = _run(row)
            made.append(replace(run, target=target.spec, command=hook.command))
            latest[(hook.id, target.id)] = run
    return made


def _served(conn: sa.Connection, target_ids: Sequence[int]) -> dict[int, dict[str, str | None]]:
    """Per target: address → the leaf SHA-256 its latest observation saw there (None: nothing presented)."""
    o, e = t.targets, t.observation_endpoints
    out: dict[int, dict[str, str | None]] = {i: {} for i in target_ids}
    ids = list(target_ids)
    for start in range(0, len(ids), 500):
        query = (
            sa.select(o.c.id, e.c.address, e.c.chain)
            .select_from(o.join(e, e.c.observation_id == o.c.last_observation_id))
            .where(o.c.id.in_(ids[start : start + 500]))
        )
        for row in conn.execute(query):
            chain = list(row.chain or ())
            out[row.id][row.address] = chain[0] if chain else None
    return out


def settle(store: Store, target_ids: Iterable[int], at: datetime | None = None) -> list[Run]:
    """Judge the pending runs (the newest ``waiting`` or ``not-served`` run per hook) of ``target_ids`` by each
    target's latest observation: ``served`` when every address that presented a chain serves a leaf other than
    the run's old one; else ``not-served`` once the deadline has passed. Runs left ``running`` past their
    timeout (and a minute) become ``failed``. Returns the runs whose state changed."""
    moment = at or now()
    wanted = set(target_ids)
    r = t.renewal_runs
    changed: list[Run] = []
    with store.engine.begin() as conn:
        latest = _latest(conn, ("running", *PENDING))
        timeouts = {h.id: h.timeout_s for h in (_hook(x) for x in conn.execute(sa.select(t.renewal_hooks)))}
        pending = [x for x in latest.values() if x.target_id in wanted and x.state in PENDING]
        served = _served(conn, sorted({x.target_id for x in pending}))
        for run in latest.values():
            limit = timeouts.get(run.hook_id or -1, DEFAULT_TIMEOUT) + 60
            if run.state == "running" and (moment - run.started).total_seconds() > limit:
                values: dict[str, Any] = {
                    "state": "failed",
                    "finished": moment,
                    "output_tail": (run.output_tail or "") + "[certdoctor: stopped while the command ran]",
                }
                conn.execute(sa.update(r).where(r.c.id == run.id).values(**values))
                changed.append(replace(run, **values))
        for run in pending:
            leaves = {a: s for a, s in served.get(run.target_id, {}).items() if s is not None}
            renewed = bool(leaves) and all(s != run.old_leaf_sha256 for s in leaves.values())
            values = {}
            if renewed:
                values = {"state": "served", "new_leaf_sha256": next(iter(sorted(leaves.values())))}
            elif run.state == "waiting" and run.deadline is not None and moment >= run.deadline:
                values = {"state": "not-served"}
            if values:
                conn.execute(sa.update(r).where(r.c.id == run.id).values(**values))
                changed.append(replace(run, **values))
    return changed


def _overdue(store: Store, at: datetime) -> list[int]:
    """Targets with a ``waiting`` run whose deadline has passed (checked again before they are judged)."""
    with store.engine.connect() as conn:
        return sorted(
            {x.target_id for x in _latest(conn, ("waiting",)).values() if x.deadline is not None and x.deadline <= at}
        )


def merge(first: Sequence[Result], again: Sequence[Result]) -> list[Result]:
    """A pass's results with the later checks of some of their targets: one entry per target (the later
    observation, the events of both), since :func:`certdoctor.watch.alerts.evaluate` takes each target once."""
    out: dict[int, Result] = {}
    for target, obs, events in [*first, *again]:
        before = out.get(target.id)
        out[target.id] = (target, obs, [*(before[2] if before else ()), *events])
    return list(out.values())


def recheck(store: Store, target_ids: Sequence[int], diagnose: Any = None) -> list[Result]:
    """Check these targets now (one pass of exactly them); returns their results."""
    from .runner import run_pass

    todo = [x for x in (store.target(i) for i in target_ids) if x is not None]
    if not todo:
        return []
    return list(run_pass(store, diagnose, targets=todo, concurrency=20, workers=1).results)


def after_pass(
    store: Store, results: Sequence[Result], diagnose: Any = None, at: datetime | None = None
) -> tuple[list[Result], list[Run]]:
    """What ``watch run`` (and ``watch serve``) does after checking targets: run the hooks due (see
    :func:`run_due`), check again at once the targets whose command succeeded and those whose window has
    passed, and settle the pending runs of every target checked (:func:`settle`).

    ``diagnose``: the pass's judgement options, for the checks made here.
    Returns: the results with those later checks merged (:func:`merge`; give these to alerts.evaluate), and
    the runs made or changed.
    """
    moment = at or now()
    made = run_due(store, results, moment)
    checked = {target.id for target, _obs, _events in results}
    again = sorted({x.target_id for x in made if x.state == "waiting"} | (set(_overdue(store, moment)) - checked))
    # merged even without re-checks: a target checked twice (serve's alert rounds) is given to evaluate once
    merged = merge(results, recheck(store, again, diagnose) if again else [])
    changed = settle(store, [target.id for target, _obs, _events in merged], moment)
    return merged, [*made, *changed]


# --- certbot's deploy hook ----------------------------------------------------------------------------------------


def lineage_targets(store: Store, lineage: str, domains: Iterable[str]) -> tuple[list[WatchedTarget], set[str]]:
    """The watched targets a certbot lineage serves: those linked to a deployed file under the ``lineage``
    directory (its path as recorded, symbolic links kept, as certbot's ``live/NAME/`` is named in server
    configurations), and those whose name or host is one of ``domains``; and the leaf SHA-256s those files hold
    now (read again here)."""
    from .deployed import normalise_path, refresh_files

    prefix = normalise_path(lineage).rstrip("/") + "/"
    names = {d.strip().lower().rstrip(".") for d in domains if d.strip()}
    f, links = t.deployed_files, t.deployed_links
    with store.engine.connect() as conn:
        under = list(
            conn.execute(sa.select(f.c.id).where(sa.func.substr(f.c.path, 1, len(prefix)) == prefix)).scalars()
        )
        linked = set(conn.execute(sa.select(links.c.target_id).where(links.c.file_id.in_(under))).scalars())
    leaves = {x.leaf_sha256 for x in refresh_files(store, under) if x.leaf_sha256} if under else set()
    targets = [
        x
        for x in store.targets()
        if x.enabled and (x.id in linked or x.name.lower() in names or x.host.lower() in names)
    ]
    return targets, leaves


def certbot_renewed(
    store: Store,
    lineage: str,
    domains: Iterable[str],
    diagnose: Any = None,
    *,
    window_s: float = DEFAULT_WINDOW,
    at: datetime | None = None,
) -> tuple[list[Result], list[Run]]:
    """certbot renewed the certificate of ``lineage``: record a ``waiting`` run (trigger ``certbot``, deadline
    ``window_s`` from now, the leaf each target served at its latest check as the old one) for each of its
    targets (:func:`lineage_targets`), check them at once and settle the runs.

    A target whose latest check already saw a leaf the lineage's files hold has no old leaf recorded: any leaf
    it serves now is the renewed one (certbot's other deploy hooks may have reloaded the server, and a pass
    seen it, before this one ran).

    Returns: the results of those checks and the runs recorded (after settling: ``served`` for a server
    already serving the new certificate, else still ``waiting``)."""
    moment = at or now()
    targets, renewed = lineage_targets(store, lineage, domains)
    if not targets:
        return [], []
    r, o = t.renewal_runs, t.observations
    with store.engine.begin() as conn:
        last = {
            row.id: row.leaf_sha256
            for row in conn.execute(
                sa.select(t.targets.c.id, o.c.leaf_sha256)
                .select_from(t.targets.outerjoin(o, o.c.id == t.targets.c.last_observation_id))
                .where(t.targets.c.id.in_([x.id for x in targets]))
            )
        }
        first = conn.execute(sa.select(sa.func.max(r.c.id))).scalar() or 0
        conn.execute(
            sa.insert(r),
            [
                {
                    "hook_id": None,
                    "target_id": x.id,
                    "trigger": "certbot",
                    "started": moment,
                    "finished": moment,
                    "exit_code": 0,
                    "output_tail": f"RENEWED_LINEAGE={lineage}",
                    "old_leaf_sha256": None if last.get(x.id) in renewed else last.get(x.id),
                    "state": "waiting",
                    "deadline": moment + timedelta(seconds=window_s),
                }
                for x in targets
            ],
        )
    results = recheck(store, [x.id for x in targets], diagnose)
    settle(store, [x.id for x in targets], moment)
    made = runs(store, target_ids=[x.id for x in targets], limit=len(targets) * 4)
    return results, [x for x in made if x.id > first and x.trigger == "certbot"]


# --- alert conditions ---------------------------------------------------------------------------------------------


def conditions(conn: sa.Connection, leaves: Mapping[int, str | None]) -> dict[int, list[Any]]:
    """The renewal conditions of the targets in ``leaves`` (target id → the leaf its newest observation saw;
    None: unreachable), from the newest run per hook and target — one query for the runs, one for the files of
    the targets not serving their renewal (called by :func:`certdoctor.watch.alerts.evaluate`):

    - ``renewal-failed`` (critical): the newest run failed and the target still serves the leaf it served
      then; detail: command, exit_code, output_tail, run_id, started, trigger;
    - ``renewal-not-served`` (critical): the window passed without every address serving another leaf; detail:
      command, run_id, trigger, old_sha256, deadline, files (the linked deployed files' paths, server types and
      the leaf each holds now) and fix (the reload command per server type, :func:`certdoctor.checks.deployed.
      reload_fix`).

    Returns: target id → conditions (only targets that have any)."""
    from .condition import Condition

    found = [
        x
        for x in _latest(conn, ("failed", "not-served")).values()
        if x.target_id in leaves
        and not (x.state == "failed" and leaves[x.target_id] is not None and leaves[x.target_id] != x.old_leaf_sha256)
    ]
    if not found:
        return {}
    files = _files(conn, sorted({x.target_id for x in found if x.state == "not-served"}))
    out: dict[int, dict[str, Condition]] = {}
    for run in sorted(found, key=lambda x: x.id):  # the newest run of a target wins
        what = run.command or "certbot (deploy hook)"
        if run.state == "failed":
            cond = Condition(
                "renewal-failed",
                "critical",
                f"renewal command failed (exit {run.exit_code})",
                {
                    "command": what,
                    "exit_code": run.exit_code,
                    "output_tail": run.output_tail or "",
                    "run_id": run.id,
                    "started": run.started.isoformat(),
                    "trigger": run.trigger,
                },
            )
        else:
            deployed = files.get(run.target_id, [])
            cond = Condition(
                "renewal-not-served",
                "critical",
                "renewed, but the server still serves the old certificate: not deployed or not reloaded",
                {
                    "command": what,
                    "run_id": run.id,
                    "trigger": run.trigger,
                    "old_sha256": run.old_leaf_sha256,
                    "deadline": _iso(run.deadline),
                    "files": deployed,
                    "fix": _fix(deployed),
                },
            )
        out.setdefault(run.target_id, {})[cond.key] = cond
    return {k: list(v.values()) for k, v in out.items()}


def _files(conn: sa.Connection, target_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    if not target_ids:
        return {}
    f, links = t.deployed_files, t.deployed_links
    out: dict[int, list[dict[str, Any]]] = {}
    query = (
        sa.select(links.c.target_id, f.c.path, f.c.server_type, f.c.leaf_sha256)
        .select_from(links.join(f, f.c.id == links.c.file_id))
        .where(links.c.target_id.in_(list(target_ids)))
        .order_by(links.c.target_id, f.c.path)
    )
    for row in conn.execute(query):
        out.setdefault(row.target_id, []).append(
            {"path": row.path, "server_type": row.server_type, "leaf_sha256": row.leaf_sha256}
        )
    return out


def _fix(files: Sequence[Mapping[str, Any]]) -> str:
    """The reload command per server type of the linked files (a server of unknown type without files)."""
    from ..checks.deployed import reload_fix

    fixes = [reload_fix(f["server_type"], f["path"]) for f in files] or [reload_fix(None)]
    return " ".join(dict.fromkeys(fixes))
