"""The pure stages of the flow, in its order: text in, decisions out. Neither Scrapy nor
SQLAlchemy is imported here (but by `placement`, which reads what storage remembers).

    extract.py    page bytes → decoded HTML → text, title, date, language, canonical link
    normalize.py  the URL an article is known by; the fingerprint of its text
    dedupe.py     MinHash sketches and the near-duplicate index; material change of a page
    stories.py    the language-neutral evidence a report states, and the story index that
                  threads reports in any language (lexicon.txt: its bilingual concepts)
    placement.py  where a new article goes: under its original, into a story, or alone
    recheck.py    when a statement is fetched again; gone or edited, and the diff
"""
