"""the reading room's indexes (issue 17, bench/web.py): each replaces a narrower one whose
leading column it keeps, so the writes stay as cheap and the reads it served still use it.

- articles (first_seen_at, story_id, source_id, language), for ix_articles_first_seen_at:
  a window of articles read from the index alone (a topic's stories and hits per day, by
  source or language; new articles per source and day)
- articles (duplicate_of, first_seen_at), for ix_articles_duplicate_of: `duplicate_of IS
  NULL` (the originals) newest first without a sort — SQLite, with no statistics, takes
  this index for any `IS NULL` test, so it had better be the right one
- articles (story_id, duplicate_of, first_seen_at), for ix_articles_story_id: a story's
  originals and its latest one without reading every member
- topic_matches (topic, article_id), for ix_topic_matches_topic: a topic's articles from
  the index alone

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:00:00
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# (table, new name, its columns, the name it replaces, that one's columns)
INDEXES = (
    ('articles', 'ix_articles_window', ['first_seen_at', 'story_id', 'source_id', 'language'],
     'ix_articles_first_seen_at', ['first_seen_at']),
    ('articles', 'ix_articles_original_seen', ['duplicate_of', 'first_seen_at'],
     'ix_articles_duplicate_of', ['duplicate_of']),
    ('articles', 'ix_articles_story_original', ['story_id', 'duplicate_of', 'first_seen_at'],
     'ix_articles_story_id', ['story_id']),
    ('topic_matches', 'ix_topic_matches_topic_article', ['topic', 'article_id'],
     'ix_topic_matches_topic', ['topic']),
)


def upgrade() -> None:
    for table, name, columns, former, _ in INDEXES:
        op.create_index(name, table, columns, unique=False)
        op.drop_index(former, table_name=table)


def downgrade() -> None:
    for table, name, _, former, columns in reversed(INDEXES):
        op.create_index(former, table, columns, unique=False)
        op.drop_index(name, table_name=table)
