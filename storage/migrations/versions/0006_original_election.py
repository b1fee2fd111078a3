"""the original of a story is elected: sources marked official, and the title key and
outlet that pair a news-search item with the outlet's own article

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 18:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('official', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('outlet', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_articles_title_key', ['title_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_title_key')
        batch_op.drop_column('outlet')
        batch_op.drop_column('title_key')
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_column('official')
