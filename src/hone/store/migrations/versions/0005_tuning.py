"""Tuning: studies (hone's record beside Optuna's: the study's run, its configuration, the
trial budget and how much of it is claimed, the result), Optuna's journal of each study,
and the processes working on one (seen every few seconds).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(32)
KEY = sa.String(250)
DOUBLE = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "tune_studies",
        sa.Column("name", KEY, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("created_at", DOUBLE, nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_tune_studies"),
    )
    op.create_table(
        "tune_journal",
        sa.Column("study", KEY, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("study", "seq", name="pk_tune_journal"),
    )
    op.create_table(
        "tune_workers",
        sa.Column("study", KEY, nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("host", sa.String(250), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", DOUBLE, nullable=False),
        sa.Column("seen_at", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("study", "worker", name="pk_tune_workers"),
    )


def downgrade() -> None:
    op.drop_table("tune_workers")
    op.drop_table("tune_journal")
    op.drop_table("tune_studies")
