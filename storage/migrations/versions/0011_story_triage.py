"""story triage: an analyst marks a story reviewed or dismissed (the reading room), when, and
the highest id of its originals then (a follow-up after the review has a higher one)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('triage', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('triaged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('triage_watermark', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_column('triage_watermark')
        batch_op.drop_column('triaged_at')
        batch_op.drop_column('triage')
