"""statements re-checked for edits and deletions: article_versions, and per article when
it is fetched again, its page's validators and when it went away

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'article_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sha', sa.String(length=64), nullable=False),
        sa.Column('capture_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['article_id'], ['articles.id'],
                                name=op.f('fk_article_versions_article_id_articles')),
        sa.ForeignKeyConstraint(['capture_id'], ['captures.id'],
                                name=op.f('fk_article_versions_capture_id_captures')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_article_versions')),
        sa.UniqueConstraint('article_id', 'version', name=op.f('uq_article_versions_article_id')),
    )
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('etag', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('last_modified', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('gone_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_articles_next_check_at', ['next_check_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_next_check_at')
        batch_op.drop_column('gone_at')
        batch_op.drop_column('removed_at')
        batch_op.drop_column('last_modified')
        batch_op.drop_column('etag')
        batch_op.drop_column('next_check_at')
    op.drop_table('article_versions')
