"""article MinHash sketches for near-duplicate detection

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 23:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sketch', sa.LargeBinary(), nullable=True))
        batch_op.create_index('ix_articles_first_seen_at', ['first_seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_first_seen_at')
        batch_op.drop_column('sketch')
