"""Own instances of PostgreSQL and Redis, for tests (and benchmarks) that stop, restart or load
a service: the shared ones on 5432 / 6379 serve every test running in parallel and must never
be stopped, flushed or reconfigured.

    own_redis(folder)     redis-server on a free loopback port, nothing persisted; stop() and
                          start() again on the same port (a Redis outage)
    own_postgres(folder)  initdb in a scratch folder, postgres on a free loopback port with its
                          socket in that folder, one database `mediawatch`; restart(), stop(),
                          start()
    network_namespace()   a network namespace joined to this host by a veth pair: a process
                          run in it (`prefix`) reaches this host's end of the pair only, until
                          `cut()` sets the pair down (a network cut) and `mend()` up again

Both servers also listen on `host` when given (this host's end of a veth pair, say), and
their URLs name it.

PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user
(`runuser -u postgres --`) in a folder of /tmp that user owns (a pytest tmp_path sits in a
folder only root may enter, and a socket path must stay under ~100 bytes). Both are stopped
and their folders removed when the context ends, also on a failure.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.receivers import free_port

START_TIMEOUT = 30.0  # seconds for a server to answer after its start


def _answers(port: int, ask: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(ask)
            return conn.recv(64).startswith(expect)
    except OSError:
        return False


class OwnRedis:
    """A redis-server of one test: in-memory only (`--save "" --appendonly no`)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder, self.host = folder, host
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def up(self) -> bool:
        return _answers(self.port, b"PING\r\n", b"+PONG")

    def start(self) -> None:
        """Start it (again, on the same port) and return once PING answers."""
        assert self.process is None, "already running"
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 — the child keeps it
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", *{"127.0.0.1", self.host},
             "--protected-mode", "no", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.up():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}:\n"
                                   + (self.folder / "redis.log").read_text(errors="replace"))
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it at once (SIGKILL: an outage, not a shutdown that saves anything)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None


@contextmanager
def own_redis(folder: Path, host: str = "127.0.0.1") -> Iterator[OwnRedis]:
    redis = OwnRedis(folder / "redis", host)
    try:
        redis.start()
        yield redis
    finally:
        redis.stop()


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class OwnPostgres:
    """A PostgreSQL cluster of one test, trust-authenticated, durable only as far as the OS
    cache (fsync off: a restart keeps every commit, a power cut is not simulated)."""

    DATABASE = "mediawatch"

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder, self.host = folder, host
        self.data = folder / "data"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{self.DATABASE}"

    def _ctl(self, *args: str) -> None:
        listen = ",".join(sorted({"127.0.0.1", self.host}))
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses={listen} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(self.data), "-o", options,
                                     "-l", str(self.folder / "postgres.log"), "-w",
                                     "-t", str(int(START_TIMEOUT)), *args]),
                       check=True, capture_output=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def create(self) -> None:
        subprocess.run(_as_postgres(["initdb", "-D", str(self.data), "-U", "postgres",
                                     "-A", "trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)
        if self.host != "127.0.0.1":  # clients on `host`'s network (a veth pair's) too
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")
        self.start()
        self.psql(f'CREATE DATABASE "{self.DATABASE}"')

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: sessions are ended, then a clean shutdown; `immediate`: as a crash."""
        self._ctl("-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def up(self) -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                              check=False).returncode == 0


@contextmanager
def own_postgres(folder: Path | None = None, host: str = "127.0.0.1") -> Iterator[OwnPostgres]:
    """The cluster lives in a short folder of /tmp that the server's user may enter; its log
    is copied to `folder` at the end (for a failing test's post-mortem)."""
    scratch = Path(tempfile.mkdtemp(prefix="mw-pg-"))
    if os.geteuid() == 0:
        os.chown(scratch, pwd.getpwnam("postgres").pw_uid, -1)
    postgres = OwnPostgres(scratch, host)
    try:
        postgres.create()
        yield postgres
    finally:
        if postgres.up() or (postgres.data / "postmaster.pid").exists():
            subprocess.run(_as_postgres(["pg_ctl", "-D", str(postgres.data), "-m", "immediate",
                                         "-w", "stop"]), check=False, capture_output=True)
        if folder is not None and (scratch / "postgres.log").exists():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(scratch / "postgres.log", folder / "postgres.log")
        shutil.rmtree(scratch, ignore_errors=True)


class Namespace:
    """A network namespace and the veth pair that joins it to this host (a /30 of its own)."""

    def __init__(self, tag: int) -> None:
        self.name, subnet = f"mw{os.getpid()}x{tag}", f"10.{200 + tag % 50}.{os.getpid() % 250}"
        self.host_ip, self.inside_ip = f"{subnet}.1", f"{subnet}.2"
        self.outer, self.inner = f"vh{os.getpid()}x{tag}"[:15], f"vn{os.getpid()}x{tag}"[:15]

    @property
    def prefix(self) -> list[str]:
        """Put before a command to run it in the namespace."""
        return ["ip", "netns", "exec", self.name]

    def create(self) -> None:
        for command in (["ip", "netns", "add", self.name],
                        ["ip", "link", "add", self.outer, "type", "veth", "peer", "name",
                         self.inner],
                        ["ip", "link", "set", self.inner, "netns", self.name],
                        ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.outer],
                        ["ip", "link", "set", self.outer, "up"],
                        [*self.prefix, "ip", "addr", "add", f"{self.inside_ip}/30", "dev",
                         self.inner],
                        [*self.prefix, "ip", "link", "set", self.inner, "up"],
                        [*self.prefix, "ip", "link", "set", "lo", "up"]):
            subprocess.run(command, check=True, capture_output=True)

    def cut(self) -> None:
        """Packets stop crossing the pair both ways; connections are not closed."""
        subprocess.run(["ip", "link", "set", self.outer, "down"], check=True)

    def mend(self) -> None:
        subprocess.run(["ip", "link", "set", self.outer, "up"], check=True)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.outer], check=False, capture_output=True)


@contextmanager
def network_namespace() -> Iterator[Namespace]:
    namespace = Namespace(int(time.time() * 1000) % 10_000)
    try:
        namespace.create()
        yield namespace
    finally:
        namespace.delete()
