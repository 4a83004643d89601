"""Datasets, their immutable versions (the sample library), and the versions runs read.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(32)
DOUBLE = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("created_at", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("created_at", DOUBLE, nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("parents", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_versions_dataset_id_datasets"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
    )
    op.create_index(
        "ix_dataset_versions_dataset_id_created_at",
        "dataset_versions",
        ["dataset_id", "created_at"],
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("split", sa.String(250), nullable=False),
        sa.Column("dataset", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "version_id", "split", name="pk_run_inputs"),
    )


def downgrade() -> None:
    op.drop_table("run_inputs")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
