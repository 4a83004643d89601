"""Checkpoints: the parameter library's index. A run's saved training states, each two
blobs (weights as safetensors; optimizer, scheduler, RNG and position as a tensor file
that loads without unpickling objects) and the metrics at that step.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(32)
DOUBLE = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("weights", sa.String(64), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("created_at", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step", name="pk_checkpoints"),
    )
    op.create_index("ix_checkpoints_weights", "checkpoints", ["weights"])
    op.create_index("ix_checkpoints_state", "checkpoints", ["state"])


def downgrade() -> None:
    op.drop_index("ix_checkpoints_state", table_name="checkpoints")
    op.drop_index("ix_checkpoints_weights", table_name="checkpoints")
    op.drop_table("checkpoints")
