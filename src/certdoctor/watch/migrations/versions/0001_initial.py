"""The monitor's first schema: targets, certificates, observations, observation_endpoints, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "targets",
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
    )
    op.create_index("ix_targets_next_due", "targets", ["next_due"])
    op.create_table(
        "certificates",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("not_before", Time, nullable=False),
        sa.Column("not_after", Time, nullable=False),
        sa.Column("spki_sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "observations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=False),
        sa.Column("rejected_by", sa.JSON, nullable=False),
        sa.Column("leaf_sha256", sa.String(64), sa.ForeignKey("certificates.sha256")),
        sa.Column("leaf_not_after", Time),
        sa.Column("chain_not_after", Time),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("clients", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_observations_target_at", "observations", ["target_id", "at"])
    op.create_index("ix_observations_at", "observations", ["at"])
    op.create_table(
        "observation_endpoints",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("observation_id", BigId, sa.ForeignKey("observations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("chain", sa.JSON, nullable=False),
    )
    op.create_index("ix_observation_endpoints_observation_id", "observation_endpoints", ["observation_id"])
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("observation_id", BigId),
        sa.Column("at", Time, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_target_at", "events", ["target_id", "at"])


def downgrade() -> None:
    for table in ("events", "observation_endpoints", "observations", "certificates", "targets"):
        op.drop_table(table)
