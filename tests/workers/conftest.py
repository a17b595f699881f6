"""Real services for queued ingestion: a redis-server, a `chroma run` server, worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.container import Components
from appliance.settings import Settings
from ingest.job_store import Job
from ingest.jobs import IngestJobs, build_ingest_jobs
from tests.conftest import ROOT, free_port, settings_for

VENV_BIN = ROOT / ".venv" / "bin"


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout} s")


class RedisServer:
    """A redis-server of the test's own, with the append-only file on as in production."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        _wait_until(answers, 15, "redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


class ChromaServer:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "chroma"),
                "run",
                "--path",
                str(folder),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import httpx

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/api/v2/heartbeat").is_success
            except httpx.HTTPError:
                return False

        _wait_until(answers, 60, "chroma run")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


class PostgresServer:
    """A PostgreSQL cluster of the test's own (initdb runs as `postgres` when we are root)."""

    def __init__(self) -> None:
        import glob
        import shutil
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL is missing: scripts/setup.sh installs it")
        bindir = Path(found[-1]).parent
        # Not under pytest's tmp dir: that is private to root, and postgres must read it.
        self.folder = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
        self.folder.chmod(0o755)
        as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            as_postgres = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        data = self.folder / "data"
        self._stop = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.folder / "log"),
                "-w",
                "-o",
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def new_database(self) -> str:
        from sqlalchemy import create_engine, text

        name = f"appliance_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        import shutil

        subprocess.run(self._stop, capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma"))
    yield server
    server.stop()


@dataclass
class QueuedAppliance:
    """One data dir and collection, queued mode, and the worker processes serving it."""

    overrides: dict[str, str]
    data_dir: Path
    logs: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return settings_for(self.data_dir, **self.overrides)

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE")}
        return {**base, "APPLIANCE_DATA_DIR": str(self.data_dir), **self.overrides}

    def jobs(self) -> IngestJobs:
        return build_ingest_jobs(Components(self.settings), background=False)

    def start_worker(self, name: str, data_dir: Path | None = None) -> subprocess.Popen:
        """A worker process; another `data_dir` stands for a worker on another machine."""
        log = (self.logs / f"{name}.log").open("ab")
        env = self.env()
        if data_dir:
            env["APPLIANCE_DATA_DIR"] = str(data_dir)
        process = subprocess.Popen(
            [str(VENV_BIN / "appliance"), "worker", "--name", f"{name}@%h", "--concurrency", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so kill() reaches the pool processes too
        )
        self.workers.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(30)

    def wait_done(self, job_id: str, timeout: float = 240) -> Job:
        store = self.jobs().store
        _wait_until(lambda: store.get(job_id).status == "done", timeout, f"job {job_id}")
        return store.get(job_id)

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                self.kill(process, signal.SIGTERM)


@pytest.fixture
def queued(
    tmp_path: Path, redis_server: RedisServer, chroma_server: ChromaServer
) -> Iterator[QueuedAppliance]:
    overrides = {
        "APPLIANCE__INGEST__MODE": "celery",
        "APPLIANCE__VECTOR_STORE__MODE": "chroma_server",
        "APPLIANCE__VECTOR_STORE__PORT": str(chroma_server.port),
        "APPLIANCE__VECTOR_STORE__COLLECTION": f"test-{uuid.uuid4().hex[:12]}",
        "APPLIANCE_BROKER_URL": redis_server.url,
        # Short, so the kill test sees its task delivered again within seconds.
        "APPLIANCE__BROKER__VISIBILITY_TIMEOUT_S": "6",
        "APPLIANCE__BROKER__RESTORE_INTERVAL_S": "1",
        "APPLIANCE__INGEST__MAX_FILE_MB": "60",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    appliance = QueuedAppliance(overrides, tmp_path / "data", logs)
    # Each test gets an empty queue: a task left by another test must not reach this one.
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    yield appliance
    appliance.stop()
