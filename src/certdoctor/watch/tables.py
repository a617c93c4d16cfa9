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
- ``alert_policies``: thresholds per label ``selector`` (the most specific matching one wins).
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
)
