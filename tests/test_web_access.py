"""The reading room's door: sign-in with web.token, CSRF on every POST, the headers every
response carries, and where it refuses to be served. In process, through the WSGI app."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from werkzeug.test import Client

from crawler.config.model import Config
from crawler.daemon.web import ReadingRoom
from storage.db import open_database

TOKEN = "a-long-enough-test-token"


@pytest.fixture
def room(tmp_path: Path):
    db = open_database(f"sqlite:///{tmp_path / 'web.db'}")
    config = {"value": Config.model_validate({"web": {"token": TOKEN},
                                              "topics": [{"name": "students",
                                                          "query": "student*"}]})}
    return Client(ReadingRoom(db, lambda: config["value"])), config


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def signed_in(client: Client) -> str:
    """Sign in; → the CSRF token of the signed-in pages."""
    response = client.post("/signin", data={"token": TOKEN, "next": "/sources"})
    assert response.status_code == 303
    return csrf_of(client.get("/").text)


def test_a_page_needs_sign_in_and_the_token_signs_in_with_a_strict_cookie(room) -> None:
    client, _ = room
    response = client.get("/?since=7d&topic=students")
    assert response.status_code == 303
    assert response.headers["Location"] == "/signin?next=%2F%3Fsince%3D7d%26topic%3Dstudents"
    assert 'value="/?since=7d&amp;topic=students"' in client.get(response.headers["Location"]).text
    wrong = client.post("/signin", data={"token": "not-the-token-at-all", "next": "/"})
    assert wrong.status_code == 403 and "That is not the token" in wrong.text
    right = client.post("/signin", data={"token": TOKEN, "next": "/?since=7d"})
    assert right.status_code == 303 and right.headers["Location"] == "/?since=7d"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert client.get("/").status_code == 200


def test_behind_an_https_proxy_named_by_base_url_cookies_are_secure_and_posts_pass(
        room) -> None:
    client, config = room
    spoofed = client.post("/signin", data={"token": TOKEN},
                          headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in spoofed.headers["Set-Cookie"]  # a client's header is not trusted
    config["value"] = config["value"].model_copy(update={"web": config["value"].web.model_copy(
        update={"base_url": "https://watch.example.org/room"})})
    response = client.post("/signin", data={"token": TOKEN})
    assert "Secure" in response.headers["Set-Cookie"]
    csrf = csrf_of(client.get("/").text)
    proxied = client.post("/signout", data={"csrf": csrf},
                          headers={"Origin": "https://watch.example.org"})
    assert proxied.status_code == 303


def test_a_session_ends_at_sign_out_and_after_thirty_days(room, monkeypatch) -> None:
    client, _ = room
    csrf = signed_in(client)
    kept = client.get_cookie("mediawatch_session").value
    assert client.post("/signout", data={"csrf": csrf}).status_code == 303
    client.set_cookie("mediawatch_session", kept)  # a copy of the cookie, replayed
    assert client.get("/").status_code == 303
    signed_in(client)
    later = time.time() + 31 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/").status_code == 303


def test_sign_in_goes_back_only_to_a_path_of_this_site(room) -> None:
    client, _ = room
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:1",
                   "/\t/evil.example", "/\n/x", "/\r//evil.example", " //evil.example"):
        response = client.post("/signin", data={"token": TOKEN, "next": target})
        assert response.headers["Location"] == "/", target


def test_a_forged_cookie_or_a_new_token_signs_out(room) -> None:
    client, config = room
    client.set_cookie("mediawatch_session", "nonce.0123456789abcdef")
    assert client.get("/").status_code == 303
    signed_in(client)
    assert client.get("/").status_code == 200
    config["value"] = config["value"].model_copy(
        update={"web": config["value"].web.model_copy(update={"token": "x" * 20})})
    assert client.get("/").status_code == 303


def test_every_post_needs_the_session_s_csrf_token(room) -> None:
    client, _ = room
    csrf = signed_in(client)
    assert client.post("/signout", data={}).status_code == 403
    assert client.post("/signout", data={"csrf": "é" * 64}).status_code == 403
    assert client.post("/signout", data={"csrf": csrf + "0"}).status_code == 403
    other_site = client.post("/signout", data={"csrf": csrf},
                             headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    assert client.post("/signout", data={"csrf": csrf}).status_code == 303
    assert client.get("/").status_code == 303  # signed out


def test_feeds_take_the_token_as_a_query_parameter_for_feed_readers(room) -> None:
    client, _ = room
    assert client.get("/topics/students.atom").status_code == 403
    assert client.get("/topics/students.json?token=wrong").status_code == 403
    reply = client.get(f"/topics/students.json?token={TOKEN}")
    assert reply.status_code == 200 and reply.json["topic"] == "students"


def test_every_response_carries_a_strict_policy(room) -> None:
    client, _ = room
    for response in (client.get("/"), client.get("/signin"), client.get("/nothing"),
                     client.get("/static/style.css")):
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_an_open_room_answers_only_loopback_names(tmp_path: Path) -> None:
    """A page whose own name was rebound to 127.0.0.1 cannot read an open room."""
    db = open_database(f"sqlite:///{tmp_path / 'web.db'}")
    client = Client(ReadingRoom(db, lambda: Config()))
    for host in ("127.0.0.1:8787", "localhost:8787", "[::1]:8787", "127.0.0.1"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    for path in ("/", "/sources", "/static/style.css", "/signin"):
        rebound = client.get(path, headers={"Host": "attacker.example:8787"})
        assert rebound.status_code == 403, path
        assert "mediawatch_session" not in rebound.headers.get("Set-Cookie", "")


def test_odd_requests_get_a_page_not_a_crash(room) -> None:
    client, _ = room
    signed_in(client)
    for path in ("/?since=99999999d", "/?since=1000000000000d", "/?page=0", "/?page=x"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert 'class="problem"' in response.text, path
    assert client.get("/?after=0001-01-01T00:00:00%2B14:00").status_code == 200
    client.set_cookie("mediawatch_session", "é.1.é")
    assert client.get("/").status_code == 303
    assert client.put("/sources").status_code == 405
    assert client.head("/sources").status_code in (200, 303)


def test_without_a_token_the_pages_are_open_and_posts_still_need_csrf(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'web.db'}")
    client = Client(ReadingRoom(db, lambda: Config()))
    page = client.get("/")
    assert page.status_code == 200 and "HttpOnly" in page.headers["Set-Cookie"]
    assert "Sign out" not in page.text
    assert client.post("/signout", data={}).status_code == 403


def test_web_refuses_to_listen_beyond_loopback_without_a_token(cli) -> None:
    cli.write_config({})
    result = cli("web", "--listen", "0.0.0.0:0")
    assert result.code == 2
    assert "without web.token" in result.err and "127.0.0.1" in result.err
    for command in ("web", "run"):
        wrong = cli(command, "--listen", "bogus")
        assert wrong.code == 2 and "invalid listen address 'bogus'" in wrong.err
