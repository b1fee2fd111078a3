"""outbox batches, snoozes, claim time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:00:34.012355
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('snoozes',
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('topic', name=op.f('pk_snoozes'))
    )
    op.create_table('alert_articles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_articles_alert_id_alerts')),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_alert_articles_article_id_articles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_articles')),
    sa.UniqueConstraint('alert_id', 'article_id', name=op.f('uq_alert_articles_alert_id'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='new'))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index(batch_op.f('ix_alerts_status'))
        batch_op.create_index('ix_alerts_due', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_due')
        batch_op.create_index(batch_op.f('ix_alerts_status'), ['status'], unique=False)
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('kind')

    op.drop_table('alert_articles')
    op.drop_table('snoozes')
