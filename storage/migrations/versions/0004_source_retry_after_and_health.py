"""sources: when a server asked to be polled again (Retry-After), the health last reported
to the operator

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 23:55:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reported_health', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_column('reported_health')
        batch_op.drop_column('not_before')
