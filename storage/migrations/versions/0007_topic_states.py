"""topic_states: the topics whose stored articles were matched, with a hash of what each
matched (a topic added or changed is matched against the past once)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'topic_states',
        sa.Column('topic', sa.String(length=64), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('matched_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('topic', name=op.f('pk_topic_states')),
    )


def downgrade() -> None:
    op.drop_table('topic_states')
