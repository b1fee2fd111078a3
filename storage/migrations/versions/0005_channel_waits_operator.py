"""channel_waits: a channel held until the time its Retry-After named; operator alerts in the
outbox (alerts.article_id nullable, alerts.details)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 18:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_waits',
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_channel_waits'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.alter_column('article_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('details', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM alerts WHERE article_id IS NULL")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('details')
        batch_op.alter_column('article_id', existing_type=sa.Integer(), nullable=False)
    op.drop_table('channel_waits')
