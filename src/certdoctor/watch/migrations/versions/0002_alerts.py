"""Alerts: alerts, alert_snoozes, alert_channels, alert_policies (see certdoctor.watch.tables).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
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
    )
    op.create_index("ix_alerts_target_condition_state", "alerts", ["target_id", "condition", "state"])
    op.create_table(
        "alert_snoozes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("condition", sa.String(120)),
        sa.Column("until", Time, nullable=False),
    )
    op.create_index("ix_alert_snoozes_target", "alert_snoozes", ["target_id"])
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False, unique=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("created", Time, nullable=False),
    )
    op.create_table(
        "alert_policies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("selector", sa.JSON, nullable=False),
        sa.Column("expiry_days", sa.Float),
        sa.Column("expiry_percent", sa.Float),
        sa.Column("renotify_s", sa.Integer),
        sa.Column("after", sa.Integer),
    )


def downgrade() -> None:
    for table in ("alert_policies", "alert_channels", "alert_snoozes", "alerts"):
        op.drop_table(table)
