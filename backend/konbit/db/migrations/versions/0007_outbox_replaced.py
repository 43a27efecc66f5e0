"""outbox: earlier signatures of a transaction re-signed for a higher fee; blocks indexed

The reconciliation with the chain looks up the highest block the outbox recorded a receipt
in every few seconds: ``block_number`` gets an index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_tx") as batch:
        batch.add_column(sa.Column("replaced_json", sa.Text(), nullable=True))
    op.create_index("ix_outbox_tx_block_number", "outbox_tx", ["block_number"])


def downgrade() -> None:
    op.drop_index("ix_outbox_tx_block_number", table_name="outbox_tx")
    with op.batch_alter_table("outbox_tx") as batch:
        batch.drop_column("replaced_json")
