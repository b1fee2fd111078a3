"""The Scrapy glue: how a crawl runs and where its items go.

    settings.py    every Scrapy setting, derived from `crawl:` in config.yaml
    runner.py      one-off crawls and `sources check`, on one reactor
    fetchguard.py  downloader middlewares and resolver: only public http(s) destinations
    extensions.py  AutoThrottle that learns from 304s
    pipeline.py    the item pipeline: stores what the spider yields
    report.py      what a crawl did, per source
"""
