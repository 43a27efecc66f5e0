"""custodial_account: the vault's sealed secp256k1 keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custodial_account",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("key_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("key_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_data_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("address", name="uq_custodial_account_address"),
    )
    op.create_index("ix_custodial_account_key_version", "custodial_account", ["key_version"])


def downgrade() -> None:
    op.drop_index("ix_custodial_account_key_version", table_name="custodial_account")
    op.drop_table("custodial_account")
