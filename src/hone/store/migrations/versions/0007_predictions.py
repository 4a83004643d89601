"""Application data: every prediction a served model made (input inline or as a blob,
output, latency, model version), the labels given for them later (corrections kept), which
dataset version harvested each, and the lease that lets one feedback loop run per model.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(32)
KEY = sa.String(250)
DOUBLE = sa.Float(precision=53)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("request_id", ID, nullable=False),
        sa.Column("model", KEY, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", DOUBLE, nullable=False),
        sa.Column("input", sa.LargeBinary(), nullable=True),
        sa.Column("input_digest", sa.String(64), nullable=True),
        sa.Column("prediction", sa.Text(), nullable=False),
        sa.Column("probabilities", sa.LargeBinary(), nullable=True),
        sa.Column("latency_ms", DOUBLE, nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("labeled_at", DOUBLE, nullable=True),
        sa.PrimaryKeyConstraint("request_id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_model_at", "predictions", ["model", "at"])
    # Partial: rows are written with neither a label nor (mostly) a blob digest.
    labeled = sa.text("label IS NOT NULL")
    op.create_index(
        "ix_predictions_model_labeled_at",
        "predictions",
        ["model", "labeled_at"],
        sqlite_where=labeled,
        postgresql_where=labeled,
    )
    blob = sa.text("input_digest IS NOT NULL")
    op.create_index(
        "ix_predictions_input_digest",
        "predictions",
        ["input_digest"],
        sqlite_where=blob,
        postgresql_where=blob,
    )
    op.create_table(
        "prediction_feedback",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("at", DOUBLE, nullable=False),
        sa.Column("who", sa.String(250), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_feedback"),
    )
    op.create_index("ix_prediction_feedback_request_id", "prediction_feedback", ["request_id"])
    op.create_table(
        "prediction_harvests",
        sa.Column("request_id", ID, nullable=False),
        sa.Column("dataset_version", sa.String(64), nullable=False),
        sa.Column("sample_id", sa.BigInteger(), nullable=False),
        sa.Column("split", sa.String(100), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "dataset_version", name="pk_prediction_harvests"),
    )
    op.create_index(
        "ix_prediction_harvests_dataset_version", "prediction_harvests", ["dataset_version"]
    )
    op.create_table(
        "loop_leases",
        sa.Column("model", KEY, nullable=False),
        sa.Column("holder", ID, nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("who", sa.String(250), nullable=False),
        sa.Column("started_at", DOUBLE, nullable=False),
        sa.Column("renewed_at", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_loop_leases"),
    )


def downgrade() -> None:
    op.drop_table("loop_leases")
    op.drop_table("prediction_harvests")
    op.drop_table("prediction_feedback")
    op.drop_table("predictions")
