"""Write order and quarantine: the time that set a run's status or a tag orders later
writes (newest wins, whatever order journals are replayed in); records the store refused
are kept aside with the reason. The params value index covers a value's first 100
characters: PostgreSQL's B-tree cannot hold a row of a long value (~2.7 kB at most).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(32)
DOUBLE = sa.Float(precision=53)
PREFIX = 100  # characters of a param value that its index holds


def upgrade() -> None:
    op.add_column("runs", sa.Column("status_time", DOUBLE, nullable=False, server_default="0"))
    op.execute("UPDATE runs SET status_time = COALESCE(end_time, start_time)")
    op.add_column("tags", sa.Column("updated_at", DOUBLE, nullable=False, server_default="0"))
    op.create_table(
        "quarantine",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record_time", DOUBLE, nullable=True),
        sa.Column("quarantined_at", DOUBLE, nullable=False),
        sa.Column("host", sa.String(250), nullable=True),
        sa.Column("segment", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )
    op.create_index("ix_quarantine_run_id", "quarantine", ["run_id"])
    op.drop_index("ix_params_key_value", table_name="params")
    op.create_index(
        "ix_params_key_value_prefix", "params", ["key", sa.text(f"substr(value, 1, {PREFIX})")]
    )


def downgrade() -> None:
    op.drop_index("ix_params_key_value_prefix", table_name="params")
    op.create_index("ix_params_key_value", "params", ["key", "value"])
    op.drop_index("ix_quarantine_run_id", table_name="quarantine")
    op.drop_table("quarantine")
    with op.batch_alter_table("tags") as batch:
        batch.drop_column("updated_at")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("status_time")
