"""The model registry: registered models, their immutable versions, aliases and every move
of one (audited), and each version's exported files.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.String(32)
KEY = sa.String(250)
DOUBLE = sa.Float(precision=53)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", KEY, nullable=False),
        sa.Column("created_at", DOUBLE, nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_registered_models"),
    )
    op.create_table(
        "model_versions",
        sa.Column("model", KEY, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("weights", sa.String(64), nullable=False),
        sa.Column("dataset_version", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", DOUBLE, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name="pk_model_versions"),
    )
    op.create_index("ix_model_versions_weights", "model_versions", ["weights"])
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_aliases",
        sa.Column("model", KEY, nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("model", "alias", name="pk_model_aliases"),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("model", KEY, nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("at", DOUBLE, nullable=False),
        sa.Column("who", sa.String(250), nullable=False),
        sa.Column("why", sa.Text(), nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alias_events"),
    )
    op.create_index("ix_alias_events_model_id", "alias_events", ["model", "id"])
    op.create_table(
        "model_exports",
        sa.Column("model", KEY, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "format", name="pk_model_exports"),
    )
    op.create_index("ix_model_exports_digest", "model_exports", ["digest"])


def downgrade() -> None:
    op.drop_table("model_exports")
    op.drop_table("alias_events")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
    op.drop_table("registered_models")
