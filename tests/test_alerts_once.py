"""Every alert delivered once across a member's death and a database outage: a claim is a
lease its live owner renews, one left by a dead member is taken back within a minute, and an
outcome the database could not take is written once it is back (never sent again). One
source health change, seen by two members at once, queues one operator alert."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from alerts.channels.base import AlertMessage, Channel, DeliveryResult
from alerts.channels.email import EmailChannel
from alerts.channels.slack import SlackChannel
from alerts.dispatcher import Dispatcher, DispatchReport
from alerts.outbox import AlertPolicy
from crawler.config import parse_config
from crawler.daemon.watchdog import check_sources
from storage import repository as repo
from storage.db import engine_of, open_database
from storage.models import Alert
from tests import events
from tests.receivers import SlackReceiver, SmtpServer
from tests.services import OwnPostgres, own_postgres
from tests.test_alerts_flow import Clock, statuses, store

DESK = AlertPolicy(("desk",))


def with_source(db: sessionmaker[Session]) -> sessionmaker[Session]:
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("mss", "feed", "https://mss.example/f")])
    return db


@pytest.fixture
def outbox(db_url: str) -> sessionmaker[Session]:
    return with_source(open_database(db_url))


def desk(smtp: SmtpServer) -> dict[str, Channel]:
    return {"desk": EmailChannel(smtp.url(), "a@mediawatch.test", ["desk@mediawatch.test"],
                                 name="desk")}


def message_ids(smtp: SmtpServer) -> list[str]:
    return [str(m.message["Message-ID"]) for m in smtp.messages]


def test_a_dead_members_claim_is_taken_back_within_a_minute_and_sent_once(
        outbox: sessionmaker[Session], smtp_server: SmtpServer) -> None:
    clock = Clock()
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生", policy=DESK)
    dead = Dispatcher(outbox, desk(smtp_server), clock=clock)
    assert dead.claim(dead.due(10)[0])  # … and the member is SIGKILLed: nobody renews it

    survivor = Dispatcher(outbox, desk(smtp_server), clock=clock)  # the default lease
    assert survivor.deliver_due().sent == 0  # watched from now: it may still be sending
    clock.advance(seconds=30)
    assert survivor.deliver_due().sent == 0
    clock.advance(seconds=31)
    assert survivor.deliver_due().sent == 1
    assert survivor.deliver_due().sent == 0
    assert len(message_ids(smtp_server)) == 1
    assert statuses(outbox) == [("new", "sent", 1)]


def test_a_live_owners_claim_is_renewed_and_never_taken_back(
        outbox: sessionmaker[Session], slack_receiver: SlackReceiver) -> None:
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生")
    lease = timedelta(seconds=1)
    team = {"team": SlackChannel(slack_receiver.url, name="team", timeout=10)}
    owner = Dispatcher(outbox, team, sending_timeout=lease)
    other = Dispatcher(outbox, team, sending_timeout=lease)
    slack_receiver.hang(2.5)  # the owner's send lasts two and a half leases
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(owner.deliver_due)
        events.wait_for(lambda: slack_receiver.requests, "the owner sending", timeout=10)
        watching = time.monotonic() + 2
        while time.monotonic() < watching:
            assert other.deliver_due().sent == 0
            time.sleep(0.1)
        assert sending.result(timeout=10).sent == 1
    assert other.deliver_due().sent == 0
    assert len(slack_receiver.requests) == 1
    assert statuses(outbox) == [("new", "sent", 1)]


class ThenPostgresStops:
    """A real channel; PostgreSQL stops right after the channel accepted the message, before
    the dispatcher writes the outcome (the window of a database restart)."""

    def __init__(self, channel: Channel, postgres: OwnPostgres) -> None:
        self.channel, self.postgres = channel, postgres
        self.name, self.min_interval = channel.name, channel.min_interval

    def send(self, message: AlertMessage) -> DeliveryResult:
        result = self.channel.send(message)
        self.postgres.stop("immediate")
        return result

    def masked(self) -> str:
        return self.channel.masked()


def test_an_outcome_the_database_could_not_take_is_written_after_it_is_back_and_sent_once(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    with own_postgres(tmp_path) as postgres:
        db = with_source(open_database(postgres.url))
        store(db, "https://mss.example/1", "国家安全部提醒留学生", policy=DESK)
        lease = timedelta(seconds=1)
        owner = Dispatcher(db, {"desk": ThenPostgresStops(desk(smtp_server)["desk"], postgres)},
                           sending_timeout=lease)
        other = Dispatcher(db, desk(smtp_server), sending_timeout=lease)

        report = owner.deliver_due()  # sent; the outcome is kept, the database being down
        assert (report.sent, len(message_ids(smtp_server))) == (0, 1)
        with pytest.raises(OperationalError):
            other.deliver_due()
        time.sleep(1.5)  # the outage outlasts the lease
        postgres.start()
        assert other.deliver_due().sent == 0  # the owner's claim is watched afresh
        events.wait_for(lambda: statuses(db) == [("new", "sent", 1)], "the outcome written",
                        timeout=10)
        time.sleep(lease.total_seconds() * 1.2)
        assert (other.deliver_due().sent, owner.deliver_due().sent) == (0, 0)
        assert len(message_ids(smtp_server)) == 1
        engine_of(db).dispose()


def test_two_members_checking_one_health_change_at_once_tell_the_operator_once(
        db_url: str, slack_receiver: SlackReceiver) -> None:
    document = {"sources": [{"name": "mss", "kind": "feed", "url": "https://mss.example/f"}],
                "channels": {"team": {"type": "slack", "webhook": slack_receiver.url}},
                "operator_channels": ["team"]}
    config = parse_config(yaml.safe_dump(document), env={})
    member, other = with_source(open_database(db_url)), open_database(db_url)
    now = Clock().now
    with member.begin() as session:
        source = repo.source_by_name(session, "mss")
        source.last_polled_at, source.consecutive_failures = now, 3
    told: list[list[tuple[str, str, str]]] = []

    def meanwhile(state: ORMExecuteState) -> None:
        """Once `member` has read the source: the other member checks it, start to end."""
        if not told and "first_seen_at" in str(state.statement):
            told.append(check_sources(config, other, now + timedelta(seconds=1)))

    event.listen(member, "do_orm_execute", meanwhile)
    told.append(check_sources(config, member, now))
    assert told == [[("mss", "ok", "failing")], []]
    with member() as session:
        assert [(a.kind, a.channel) for a in session.scalars(select(Alert))] == \
            [("operator", "team")]
    engine_of(other).dispose()


def test_an_outcome_written_late_never_overwrites_an_alert_settled_meanwhile(
        outbox: sessionmaker[Session], smtp_server: SmtpServer) -> None:
    """(A commit whose answer the outage swallowed, replayed; or a claim taken back and sent
    by another member.) The late outcome is reported, not written; a refused statement (a
    bug, not an outage) is logged and dropped instead of blocking every later delivery."""
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生", policy=DESK)
    late = Dispatcher(outbox, desk(smtp_server))
    alert_id = late.due(10)[0]
    assert late.claim(alert_id)
    with outbox.begin() as session:  # settled elsewhere meanwhile
        session.get_one(Alert, alert_id).status = "sent"
    report = DispatchReport()
    assert late.settle(alert_id, lambda: late.record(
        alert_id, DeliveryResult.retry("timed out"), "t"), report)
    assert (report.superseded, report.retried) == (1, 0)
    assert statuses(outbox) == [("new", "sent", 0)]

    def refused() -> tuple[str, str]:
        raise IntegrityError("insert", {}, Exception("a constraint"))

    assert late.settle(alert_id, refused, DispatchReport())  # dropped, not kept
    assert not late.unwritten and late.write_unwritten(DispatchReport())
