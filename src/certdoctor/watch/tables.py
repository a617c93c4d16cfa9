"""The monitor's tables (SQLAlchemy Core): the inventory, certificates stored once, observations, events.

The migrations in ``migrations/versions`` create exactly these; a test compares the two. Times are UTC
(``DateTime(timezone=True)``: ``timestamptz`` on PostgreSQL; SQLite keeps them as text without an offset, read
back as UTC by :func:`certdoctor.watch.store.utc`).

- ``targets``: one per monitored endpoint, ``spec`` as ``certdoctor scan`` accepts it (unique), its parsed parts,
  free ``labels`` (a JSON object of strings), ``every_s`` (seconds between checks), ``next_due`` and
  ``last_observation_id`` (the latest observation, so that status reads one row per target).
- ``certificates``: every certificate ever seen, once, by the SHA-256 of its DER.
- ``observations``: one per check of a target: verdict, exit code, finding ids and severities, per-client
  verdicts, the leaf's and the built chain's earliest notAfter, and ``error`` (why nothing was judged).
- ``observation_endpoints``: per address of an observation, whether it presented a chain, the error, and the
  chain as SHA-256s in the order presented.
- ``events``: what changed between two observations of a target (see :mod:`certdoctor.watch.events`); kept
  forever by ``prune``; alerts read them by ``id`` (monotonic) or ``at``.
- ``alerts`` (migration 0002, see :mod:`certdoctor.watch.alerts`): one row per alert — at most one ``open`` per
  (target, condition), ``resolved`` once the condition cleared, ``notice`` for one-shot notices (certificate
  changed); when it was last notified, acknowledged, and its latest ``detail``.
- ``alert_snoozes``: a target (optionally one condition) silenced until ``until``.
- ``alert_channels``: where alerts go — an Apprise URL or a signed JSON webhook (``http(s)://``, ``secret``),
  routed by ``labels`` (a selector: every key=value must be among the target's labels; empty: every target).
- ``alert_policies``: thresholds per label ``selector`` (the most specific matching one wins); ``drift_grace_s``
  and ``forecast_days`` from migration 0003.
- ``deployed_files`` (migration 0003): certificate files on disk (``watch add-file``, ``watch discover``): path,
  how to read it (server type, key file, password source), where it came from (``source``), and as last read:
  mtime, format, leaf SHA-256 and validity, the chain as SHA-256s in file order, or the error.
- ``deployed_links``: which targets should serve which files (``discovered``: found in a server configuration).
- ``renewal_hooks``: a command run when a target (``target_id``) or targets with labels (``selector``) come within
  ``threshold_days`` of expiry; ``window_s``: how long after a successful run the served certificate may take to
  change; ``timeout_s``: the command's limit.
- ``renewal_runs``: each run of a hook (or a certbot deploy-hook notice, ``trigger``): exit code, output tail, the
  leaf served before and after, ``state`` (running, waiting, served, not-served, failed) and its ``deadline``.
- ``forecasts``: per target, the break forecast of the chain it served at ``computed_at`` (``chain_key``: what it
  was computed for; ``breaks``: per client, when and why it first rejects; ``first_break``: the earliest).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# 64-bit ids, except on SQLite, where only INTEGER PRIMARY KEY is the rowid (and autoincrements)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)
Sha = sa.String(64)

targets = sa.Table(
    "targets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("spec", sa.Text, nullable=False, unique=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("sni", sa.Text),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("addresses", sa.JSON, nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("every_s", sa.Integer, nullable=False),
    sa.Column("next_due", Time, nullable=False),
    sa.Column("created", Time, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("last_observation_id", BigId),
    sa.Index("ix_targets_next_due", "next_due"),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("sha256", Sha, primary_key=True),
    sa.Column("der", sa.LargeBinary, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("issuer", sa.Text, nullable=False),
    sa.Column("not_before", Time, nullable=False),
    sa.Column("not_after", Time, nullable=False),
    sa.Column("spki_sha256", Sha, nullable=False),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("rejected_by", sa.JSON, nullable=False),
    sa.Column("leaf_sha256", Sha, sa.ForeignKey("certificates.sha256")),
    sa.Column("leaf_not_after", Time),
    sa.Column("chain_not_after", Time),
    sa.Column("findings", sa.JSON, nullable=False),
    sa.Column("clients", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_observations_target_at", "target_id", "at"),
    sa.Index("ix_observations_at", "at"),
)

observation_endpoints = sa.Table(
    "observation_endpoints",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "observation_id", BigId, sa.ForeignKey("observations.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("chain", sa.JSON, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("observation_id", BigId),
    sa.Column("at", Time, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("ix_events_at", "at"),
    sa.Index("ix_events_target_at", "target_id", "at"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("condition", sa.String(120), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("opened_at", Time, nullable=False),
    sa.Column("resolved_at", Time),
    sa.Column("last_notified_at", Time),
    sa.Column("notified", sa.Integer, nullable=False),
    sa.Column("acked_at", Time),
    sa.Index("ix_alerts_target_condition_state", "target_id", "condition", "state"),
)

alert_snoozes = sa.Table(
    "alert_snoozes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("condition", sa.String(120)),
    sa.Column("until", Time, nullable=False),
    sa.Index("ix_alert_snoozes_target", "target_id"),
)

alert_channels = sa.Table(
    "alert_channels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("secret", sa.Text),
    sa.Column("created", Time, nullable=False),
)

alert_policies = sa.Table(
    "alert_policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("selector", sa.JSON, nullable=False),
    sa.Column("expiry_days", sa.Float),
    sa.Column("expiry_percent", sa.Float),
    sa.Column("renotify_s", sa.Integer),
    sa.Column("after", sa.Integer),
    sa.Column("drift_grace_s", sa.Integer),
    sa.Column("forecast_days", sa.Float),
)


deployed_files = sa.Table(
    "deployed_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("server_type", sa.String(16)),
    sa.Column("key_path", sa.Text),
    sa.Column("password_env", sa.Text),
    sa.Column("password_file", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("added", Time, nullable=False),
    sa.Column("read_at", Time),
    sa.Column("mtime", Time),
    sa.Column("format", sa.String(16)),
    sa.Column("leaf_sha256", Sha),
    sa.Column("leaf_not_before", Time),
    sa.Column("leaf_not_after", Time),
    sa.Column("chain", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
)

deployed_links = sa.Table(
    "deployed_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_id", sa.Integer, sa.ForeignKey("deployed_files.id", ondelete="CASCADE"), nullable=False),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("discovered", sa.Boolean, nullable=False),
    sa.UniqueConstraint("file_id", "target_id", name="uq_deployed_links_file_target"),
    sa.Index("ix_deployed_links_target", "target_id"),
)

renewal_hooks = sa.Table(
    "renewal_hooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("selector", sa.JSON, nullable=False),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE")),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("threshold_days", sa.Float, nullable=False),
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("timeout_s", sa.Integer, nullable=False),
    sa.Column("created", Time, nullable=False),
)

renewal_runs = sa.Table(
    "renewal_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("hook_id", sa.Integer, sa.ForeignKey("renewal_hooks.id", ondelete="CASCADE")),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("started", Time, nullable=False),
    sa.Column("finished", Time),
    sa.Column("exit_code", sa.Integer),
    sa.Column("output_tail", sa.Text),
    sa.Column("old_leaf_sha256", Sha),
    sa.Column("new_leaf_sha256", Sha),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("deadline", Time),
    sa.Index("ix_renewal_runs_target_started", "target_id", "started"),
)

forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("computed_at", Time, nullable=False),
    sa.Column("chain_key", Sha, nullable=False),
    sa.Column("until", Time, nullable=False),
    sa.Column("first_break", Time),
    sa.Column("breaks", sa.JSON, nullable=False),
    sa.Index("ix_forecasts_first_break", "first_break"),
)
