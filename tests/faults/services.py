"""Private, throw-away PostgreSQL and Redis servers for the fault suite, which stops, kills and
restarts them: never the machine's shared servers. `tests/faults/run.py` starts them and passes
their whereabouts to pytest in FAULTS_* variables; the tests use the functions below."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def _pg_bin() -> Path:
    """The newest Debian PostgreSQL server binaries (initdb, pg_ctl), unless FAULTS_PG_BIN says."""
    if os.environ.get("FAULTS_PG_BIN"):
        return Path(os.environ["FAULTS_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


def free_port(start: int) -> int:
    for port in range(start, start + 100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port from {start}")


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root (CI runs as root): run its tools as the postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PrivatePostgres:
    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.data = base / "pgdata"
        self.socket_dir = base / "pgsocket"
        self.log = base / "postgres.log"

    def init(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        cmd = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"]
        cmd += ["--encoding=UTF8", "--locale=C"]
        subprocess.run(_as_postgres(cmd), check=True, stdout=subprocess.DEVNULL)

    def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60"]
        cmd += args
        subprocess.run(_as_postgres(cmd), check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every open connection is cut, as in a failover or an upgrade."""
        self._ctl("restart", "-m", "fast")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"


class PrivateRedis:
    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.pidfile = base / "redis.pid"
        self.log = base / "redis.log"

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--pidfile", str(self.pidfile), "--logfile", str(self.log),
                "--dir", str(self.base),
            ],
            check=True,
        )  # fmt: skip
        if not _wait(lambda: port_open(self.port), 15):
            raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        """Stopped outright (SIGKILL): clients see refused connections, nothing is saved."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            return
        _wait(lambda: not port_open(self.port), 15)
        self.pidfile.unlink(missing_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


def from_environment() -> tuple[PrivatePostgres, PrivateRedis]:
    base = Path(os.environ["FAULTS_DIR"])
    return (
        PrivatePostgres(base, int(os.environ["FAULTS_PG_PORT"])),
        PrivateRedis(base, int(os.environ["FAULTS_REDIS_PORT"])),
    )
