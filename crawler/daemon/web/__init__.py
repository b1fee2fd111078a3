"""The reading room: server-rendered pages over the database (`run --listen`, `mediawatch
web`). One WSGI application (`ReadingRoom`), served by the daemon's Twisted site in the
reactor's thread pool; `access` says who may see it and how."""
from crawler.daemon.web.access import is_loopback
from crawler.daemon.web.app import ReadingRoom

__all__ = ["ReadingRoom", "is_loopback"]
