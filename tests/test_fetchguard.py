"""Loopback and private destinations are refused unless `crawl.allow_private` is true."""
from __future__ import annotations

import pytest

from crawler.fetchguard import is_public
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb


@pytest.mark.parametrize("address, public", [
    ("93.184.215.14", True), ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("fe80::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False), ("224.0.0.1", False),
])
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_private_destinations_are_refused_by_default(cli: Cli, web: FixtureWeb, host: str) -> None:
    port = web.base.rsplit(":", 1)[1]
    config = web_config(web, {"name": "local", "kind": "feed",
                              "url": f"http://{host}:{port}/feeds/statements.xml"})
    config["crawl"]["allow_private"] = False
    cli.write_config(config)
    result = cli("crawl", "--json")
    assert result.code == 1
    assert result.json()["sources"][0]["status"] == "failed"
    assert web.log == [], "a refused destination was contacted"


def test_other_schemes_are_refused_even_when_private_is_allowed(cli: Cli, web: FixtureWeb,
                                                                tmp_path) -> None:
    feed = web.root / "feeds" / "_file_link.xml"
    feed.write_text('<rss version="2.0"><channel><title>f</title><item><title>x</title>'
                    f'<link>file://{tmp_path}/secret.html</link></item></channel></rss>')
    (tmp_path / "secret.html").write_text("<p>SECRET-CONTENT</p>")
    try:
        cli.write_config(web_config(web, {"name": "f", "kind": "feed", "url": "/feeds/_file_link.xml"}))
        result = cli("crawl", "--json")
        assert "refused file: URL" in result.json()["sources"][0]["message"]
        assert "SECRET-CONTENT" not in cli("articles", "list", "--json").out
    finally:
        feed.unlink()
