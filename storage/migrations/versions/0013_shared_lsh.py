"""the shared near-duplicate index: LSH band keys of recent articles (used on PostgreSQL);
filled for the articles already stored by the first crawler process that needs them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lsh_bands',
        sa.Column('band_key', sa.BigInteger(), nullable=False),
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['articles.id'],
                                name=op.f('fk_lsh_bands_article_id_articles'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('band_key', 'article_id', name=op.f('pk_lsh_bands')))
    with op.batch_alter_table('lsh_bands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lsh_bands_article_id'), ['article_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lsh_bands_first_seen_at'), ['first_seen_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lsh_bands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lsh_bands_first_seen_at'))
        batch_op.drop_index(batch_op.f('ix_lsh_bands_article_id'))
    op.drop_table('lsh_bands')
