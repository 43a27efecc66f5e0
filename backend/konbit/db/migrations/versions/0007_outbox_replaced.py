"""outbox: earlier signatures of a transaction re-signed for a higher fee

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


def downgrade() -> None:
    with op.batch_alter_table("outbox_tx") as batch:
        batch.drop_column("replaced_json")
