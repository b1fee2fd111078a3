"""TLS certificates are verified (crawler.engine.tls): against the CA store the process
trusts (here a test CA, through SSL_CERT_FILE), with the problem named; `verify_tls: false`
on a source is the escape hatch for its host only, warned by `config check` and `sources
list`; `crawl.verify_tls: false` turns verification off everywhere."""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import webserver
from tests.certificates import certificate, pem, server_context
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

FEED = "/feeds/statements.xml"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Verification does not depend on the database: SQLite only."""
    return f"sqlite:///{tmp_path / 'mediawatch.db'}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The fixture web over https, once per kind of certificate; "ca" is the trusted CA's
    PEM file."""
    directory = tmp_path_factory.mktemp("tls")
    ca = certificate("mediawatch test CA", ca=True)
    stranger = certificate("an unknown CA", ca=True)
    leaves = {
        "trusted": (certificate("fixture web", ca), [ca[0]]),
        "self-signed": (certificate("fixture web"), []),
        "expired": (certificate("fixture web", ca, days=(-30, -2)), [ca[0]]),
        "unknown-issuer": (certificate("fixture web", stranger), [stranger[0]]),
        "wrong-host": (certificate("fixture web", ca, names=["other.example"]), [ca[0]]),
        "common-name-only": (certificate("127.0.0.1", ca, names=[]), [ca[0]]),
    }
    started = {kind: webserver.start(tls=server_context(directory, kind, leaf, chain))
               for kind, (leaf, chain) in leaves.items()}
    (directory / "ca.pem").write_bytes(pem(ca[0]))
    yield {kind: web for kind, (web, _) in started.items()} | {"ca": directory / "ca.pem"}
    with ThreadPoolExecutor() as pool:
        pool.map(lambda started: started[1].shutdown(), started.values())


@pytest.fixture
def tls_cli(cli: Cli, servers: dict[str, Any]) -> Cli:
    """The CLI trusting the test CA only (as the system's CA store)."""
    cli.env["SSL_CERT_FILE"] = str(servers["ca"])
    for web in servers.values():
        if isinstance(web, FixtureWeb):
            web.log.clear()
    return cli


def source(name: str, web: FixtureWeb, host: str = "127.0.0.1", **extra: Any) -> dict[str, Any]:
    url = web.url(FEED).replace("127.0.0.1", host)
    return {"name": name, "kind": "feed", "url": url, "follow": False, **extra}


def crawl(cli: Cli, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cli.write_config(config)
    result = cli("crawl", "--json", "--no-alerts")
    assert "Traceback" not in result.err, result.err
    return {s["source"]: s for s in result.json()["sources"]}


def test_certificates_are_verified_and_the_problem_is_named(
        tls_cli: Cli, web: FixtureWeb, servers: dict[str, Any]) -> None:
    kinds = ["trusted", "self-signed", "expired", "unknown-issuer", "wrong-host",
             "common-name-only"]
    report = crawl(tls_cli, web_config(web, *[source(k, servers[k]) for k in kinds],
                                       obey_robots=False))

    assert report["trusted"]["status"] == "ok" and report["trusted"]["new"] == 3
    problems = {"self-signed": "rejected: self-signed",
                "expired": "rejected: expired on ",
                "unknown-issuer": "rejected: its chain is incomplete or its issuer "
                                  "(CN=an unknown CA) is not trusted",
                "wrong-host": "rejected: wrong host: it is for other.example, not 127.0.0.1",
                "common-name-only": "rejected: wrong host: it names no host "
                                    "(CN=127.0.0.1: no subjectAltName)"}
    for kind, problem in problems.items():
        assert report[kind]["status"] == "failed", kind
        assert report[kind]["message"].startswith(f"TLS certificate of 127.0.0.1 {problem}"), \
            report[kind]["message"]
        assert servers[kind].log == [], f"{kind}: a request was sent over a rejected connection"
        assert report[kind]["requests"] == 1, f"{kind}: a rejection is not retried"


def test_verify_tls_false_on_a_source_unchecks_its_host_only_and_is_warned(
        tls_cli: Cli, web: FixtureWeb, servers: dict[str, Any]) -> None:
    broken = servers["self-signed"]
    config = web_config(web, source("broken-official", broken, "localhost", verify_tls=False),
                        source("same-server-other-host", broken),
                        source("trusted", servers["trusted"]))
    report = crawl(tls_cli, config)

    assert report["broken-official"]["status"] == "ok"
    assert report["trusted"]["status"] == "ok"
    assert "self-signed" in report["same-server-other-host"]["message"]
    assert [h.path for h in broken.log] == ["/robots.txt", FEED], "robots.txt is unchecked too"

    check = tls_cli("config", "check")
    assert check.code == 0
    assert "warning: " in check.out and "sources[0].verify_tls: false: the TLS certificate of " \
        "localhost is not checked" in " ".join(check.out.split())
    listed = tls_cli("sources", "list")
    assert "warning: broken-official: verify_tls is false" in " ".join(listed.out.split())
    assert {s["name"]: s["verify_tls"] for s in tls_cli("sources", "list", "--json").json()} \
        == {"broken-official": False, "same-server-other-host": True, "trusted": True}


def test_crawl_verify_tls_false_checks_no_certificate(
        tls_cli: Cli, web: FixtureWeb, servers: dict[str, Any]) -> None:
    report = crawl(tls_cli, web_config(web, source("expired", servers["expired"]),
                                       verify_tls=False))
    assert report["expired"]["status"] == "ok"
    assert "crawl.verify_tls: false: no TLS certificate is checked" in \
        " ".join(tls_cli("config", "check").out.split())
