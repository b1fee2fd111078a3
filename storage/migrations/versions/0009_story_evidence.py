"""story_links: the evidence that joined a report to its story (the earlier report it was
compared with, what they share, how strongly)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'story_links',
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('linked_article_id', sa.Integer(), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['articles.id'],
                                name=op.f('fk_story_links_article_id_articles')),
        sa.ForeignKeyConstraint(['linked_article_id'], ['articles.id'],
                                name=op.f('fk_story_links_linked_article_id_articles')),
        sa.PrimaryKeyConstraint('article_id', name=op.f('pk_story_links')),
    )
    op.create_index(op.f('ix_story_links_linked_article_id'), 'story_links',
                    ['linked_article_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_story_links_linked_article_id'), table_name='story_links')
    op.drop_table('story_links')
