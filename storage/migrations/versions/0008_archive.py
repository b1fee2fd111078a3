"""captures: the exact bytes each article was read from (page or feed), compressed, with
headers, fetch time and SHA-256; articles.capture_id points to its capture

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'captures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('headers', sa.JSON(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_captures')),
        sa.UniqueConstraint('sha256', 'url', name=op.f('uq_captures_sha256_url')),
    )
    op.create_index('ix_captures_fetched_at', 'captures', ['fetched_at'], unique=False)
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capture_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_articles_capture_id', ['capture_id'], unique=False)
        batch_op.create_foreign_key('fk_articles_capture_id_captures', 'captures',
                                    ['capture_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_constraint('fk_articles_capture_id_captures', type_='foreignkey')
        batch_op.drop_index('ix_articles_capture_id')
        batch_op.drop_column('capture_id')
    op.drop_index('ix_captures_fetched_at', table_name='captures')
    op.drop_table('captures')
