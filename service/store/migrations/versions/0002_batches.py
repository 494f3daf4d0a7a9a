"""The nightly batch: runs record their trigger, batch and input fingerprint; batches keep their report.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("trigger", sa.String(16), nullable=False, server_default="api"))
        batch.add_column(sa.Column("batch_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("inputs", sa.JSON, nullable=True))
    op.create_index("ix_runs_trigger", "runs", ["trigger"])
    op.create_index("ix_runs_batch_id", "runs", ["batch_id"])
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("batches")
    op.drop_index("ix_runs_batch_id", "runs")
    op.drop_index("ix_runs_trigger", "runs")
    with op.batch_alter_table("runs") as batch:
        for column in ("inputs", "fingerprint", "batch_id", "trigger"):
            batch.drop_column(column)
