"""A network cut to the leader: the leader of a deployment runs in a network namespace of its
own (tests/services.py), joined to this host by a veth pair, over which it reaches its
PostgreSQL, Redis and the fixture web (all listening on this host's end of the pair); two
members run on this host. The cut sets the pair down: no packet crosses, and no connection is
closed — as when a machine drops off the network. PostgreSQL's keepalives on the lock
connection (crawler.daemon.deployment.LOCK_CONNECT_ARGS) must free the lock so that another
member leads within 15 s and every source is polled again; once the network is back, the old
leader has stepped down (one leader, never two)."""
from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests import webserver
from tests.conftest import cli_for, web_config
from tests.receivers import free_port
from tests.services import Namespace, network_namespace, own_postgres, own_redis
from tests.test_daemon import Running, daemon

FEEDS = ("statements.xml", "coverage.atom", "dates.xml")
FAILOVER = 15.0  # seconds: the bound for a new leader


def role(address: str) -> str | None:
    try:
        return requests.get(f"http://{address}/healthz", timeout=2).json().get("role")
    except (requests.RequestException, ValueError):
        return None


def _print_tail(name: str, running: Running) -> None:
    """(Shown when the test fails.)"""
    print(f"--- {name}, last lines:", *running.lines[-20:], sep="\n")


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    with network_namespace() as made:
        yield made


@pytest.mark.long(30)
def test_a_leader_cut_from_the_network_is_replaced_within_15_s(
        tmp_path: Path, namespace: Namespace) -> None:
    with ExitStack() as stack:
        host = namespace.host_ip
        postgres = stack.enter_context(own_postgres(tmp_path, host))
        redis = stack.enter_context(own_redis(tmp_path, host))
        shutil.copytree(webserver.ROOT, tmp_path / "web")
        web, server = webserver.start(tmp_path / "web", host=host)
        stack.callback(server.shutdown)
        cli = cli_for(tmp_path, postgres.url)
        config = web_config(web, *({"name": feed.split(".")[0], "kind": "feed", "every": "1s",
                                    "url": f"/feeds/{feed}", "follow": False} for feed in FEEDS),
                            backfill="36500d")
        cli.write_config(config | {"queue": redis.url, "daemon": {"startup_spread": "1s"}})

        leader_at = f"{namespace.inside_ip}:{free_port()}"
        leader = stack.enter_context(daemon(cli, "--listen", leader_at, prefix=namespace.prefix))
        stack.callback(_print_tail, "the leader cut off", leader)
        leader.wait_for(lambda: role(leader_at) == "leader", "the member in the namespace to lead")
        members: dict[str, Running] = {}
        for _ in range(2):
            address = f"127.0.0.1:{free_port()}"
            members[address] = stack.enter_context(daemon(cli, "--listen", address))
            stack.callback(_print_tail, f"member {address}", members[address])
        for address, member in members.items():
            member.wait_for(lambda a=address: role(a) == "member", "a member on this host")

        namespace.cut()
        cut = time.monotonic()
        survivor = next(iter(members.values()))
        survivor.wait_for(lambda: any(role(a) == "leader" for a in members), "a new leader",
                          timeout=FAILOVER + 5)
        took = time.monotonic() - cut
        print(f"a new leader {took:.1f} s after the cut")
        assert took <= FAILOVER

        engine = create_engine(postgres.url)
        stack.callback(engine.dispose)
        since = time.time()

        def polled_since() -> set[str]:
            with engine.connect() as connection:
                return set(connection.scalars(text(
                    "select distinct s.name from crawl_runs r join sources s on "
                    "s.id = r.source_id where extract(epoch from r.started_at) > :t "
                    "and r.finished_at is not null"), {"t": since}))

        survivor.wait_for(lambda: polled_since() == {f.split(".")[0] for f in FEEDS},
                          "every source polled under the new leader", timeout=30)
        namespace.mend()
        leader.wait_for(lambda: role(leader_at) == "member", "the old leader, stepped down")
        assert [role(a) for a in members].count("leader") == 1
        assert all(count <= 1 for count in web.peak.values()), f"two polls at once: {web.peak}"
