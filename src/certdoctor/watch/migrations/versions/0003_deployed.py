"""Deployed certificates, renewal hooks and break forecasts: deployed_files, deployed_links, renewal_hooks,
renewal_runs, forecasts; alert_policies gains drift_grace_s and forecast_days (see certdoctor.watch.tables).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)
Sha = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "deployed_files",
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
    op.create_table(
        "deployed_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("deployed_files.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("discovered", sa.Boolean, nullable=False),
        sa.UniqueConstraint("file_id", "target_id", name="uq_deployed_links_file_target"),
    )
    op.create_index("ix_deployed_links_target", "deployed_links", ["target_id"])
    op.create_table(
        "renewal_hooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("selector", sa.JSON, nullable=False),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE")),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("threshold_days", sa.Float, nullable=False),
        sa.Column("window_s", sa.Integer, nullable=False),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        sa.Column("created", Time, nullable=False),
    )
    op.create_table(
        "renewal_runs",
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
    )
    op.create_index("ix_renewal_runs_target_started", "renewal_runs", ["target_id", "started"])
    op.create_table(
        "forecasts",
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("computed_at", Time, nullable=False),
        sa.Column("chain_key", Sha, nullable=False),
        sa.Column("until", Time, nullable=False),
        sa.Column("first_break", Time),
        sa.Column("breaks", sa.JSON, nullable=False),
    )
    op.create_index("ix_forecasts_first_break", "forecasts", ["first_break"])
    with op.batch_alter_table("alert_policies") as batch:
        batch.add_column(sa.Column("drift_grace_s", sa.Integer))
        batch.add_column(sa.Column("forecast_days", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("alert_policies") as batch:
        batch.drop_column("forecast_days")
        batch.drop_column("drift_grace_s")
    op.drop_index("ix_forecasts_first_break", "forecasts")
    op.drop_table("forecasts")
    op.drop_index("ix_renewal_runs_target_started", "renewal_runs")
    op.drop_table("renewal_runs")
    op.drop_table("renewal_hooks")
    op.drop_index("ix_deployed_links_target", "deployed_links")
    op.drop_table("deployed_links")
    op.drop_table("deployed_files")
