"""Real servers for tests: a throwaway PostgreSQL cluster and an ``mlflow server`` in front of it.

Both bind to 127.0.0.1 on free ports, write only under a temporary folder, and are stopped (the
whole process group) and removed when their ``with`` block ends, also after a failure::

    with postgres() as db, mlflow_server(db.url, artifacts) as server:
        os.environ["MLFLOW_TRACKING_URI"] = server.url

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user (its
folder is chowned to it and ``initdb``/``postgres`` run as that user with no supplementary
groups). ``postgres_unavailable()`` says why a cluster cannot be started here (no server
binaries, or root without a ``postgres`` user), for ``pytest.skip``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_USER = "mlflow"  # the cluster's superuser (trust authentication on 127.0.0.1 only)
PG_DATABASE = "mlflow"
PG_START_TIMEOUT = 60
MLFLOW_START_TIMEOUT = 180  # imports MLflow and runs every migration on the new database
BIN = Path(sys.executable).parent  # the venv's bin: mlflow, uvicorn, forecast


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, or None.

    ``$FORECAST_PG_BIN`` when set; else the newest ``/usr/lib/postgresql/<version>/bin``
    (Debian and Ubuntu); else the folder of ``initdb`` on ``PATH``.
    """
    candidates = []
    if os.environ.get("FORECAST_PG_BIN"):
        candidates.append(Path(os.environ["FORECAST_PG_BIN"]))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    candidates.extend(reversed(versions))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _server_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: ``postgres`` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("postgres")


def postgres_unavailable() -> str | None:
    """Why a PostgreSQL cluster cannot be started on this machine, or None when it can."""
    if postgres_bin_dir() is None:
        return ("PostgreSQL server binaries (initdb, postgres) not found in "
                "/usr/lib/postgresql/*/bin, $FORECAST_PG_BIN or on PATH "
                "(Debian/Ubuntu: apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return ("running as root and there is no 'postgres' user: PostgreSQL refuses to "
                    "run as root")
    return None


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stops ``process`` and its process group (``start_new_session=True``): ``sig``, then KILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def wait_until_up(process: subprocess.Popen, url: str, timeout: float, log: Path, *,
                  interval: float = 0.5) -> None:
    """Polls ``url`` until it answers 200.

    Raises:
        RuntimeError: the process exited, or ``url`` did not answer within ``timeout`` seconds
            (with the end of ``log``).
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer {url} in {timeout} s:\n{_tail(log)}")
        time.sleep(interval)


MODEL_SERVER_START_TIMEOUT = 180  # imports TensorFlow and loads the model: slow on 2 cores


@dataclass
class ModelServer:
    """A running model server: ``base`` is its ``http://127.0.0.1:PORT``."""

    base: str
    port: int
    process: subprocess.Popen
    log: Path


@contextlib.contextmanager
def model_server(command: list[str], log: Path, *, env: dict | None = None,
                 timeout: float = MODEL_SERVER_START_TIMEOUT) -> Iterator[ModelServer]:
    """A model scoring server (``forecast serve`` or ``mlflow models serve``) on a free port of
    127.0.0.1 for the block: ``--port PORT`` is added to ``command``; the block starts once
    ``/ping`` answers, and the whole process group is stopped after it, also after a failure.

    Raises:
        RuntimeError: the server exited or did not answer in ``timeout`` seconds (with the end
            of ``log``).
    """
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, f"{base}/ping", timeout, log, interval=1)
        yield ModelServer(base, port, process, log)
    finally:
        stop(process)


@dataclass
class Postgres:
    """A running cluster: ``url`` is the MLflow backend store URI of its ``mlflow`` database."""

    host: str
    port: int
    user: str
    database: str
    folder: Path
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A new PostgreSQL cluster on 127.0.0.1 with an empty ``mlflow`` database, for the block.

    The cluster lives in a fresh ``/tmp/forecast-pg-*`` folder (its unix socket too), listens on
    127.0.0.1 only, trusts local TCP connections, runs without fsync (test data only), and is
    shut down (fast mode) and deleted when the block ends.

    Yields:
        A ``Postgres``.

    Raises:
        RuntimeError: initdb failed or the server did not accept connections in time (with the
            end of its log).
    """
    import psycopg2

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError(postgres_unavailable())
    owner = _server_user()
    as_owner = {} if owner is None else {"user": owner.pw_uid, "group": owner.pw_gid,
                                         "extra_groups": []}
    # /tmp, not pytest's tmp_path: the postgres user cannot enter root's 0700 pytest folders
    folder = Path(tempfile.mkdtemp(prefix="forecast-pg-"))
    process = None
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        data, log = folder / "data", folder / "postgres.log"
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        init = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"],
            cwd=folder, env=env, capture_output=True, text=True, timeout=120, **as_owner)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stderr[-3000:]}")
        port = free_port()
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={folder}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=50"],
                cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True, **as_owner)
        deadline = time.monotonic() + PG_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited ({process.returncode}):\n{_tail(log)}")
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=port, user=PG_USER,
                                              dbname="postgres", connect_timeout=5)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept connections in "
                                       f"{PG_START_TIMEOUT} s:\n{_tail(log)}") from None
                time.sleep(0.2)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {PG_DATABASE}")
        finally:
            connection.close()
        yield Postgres("127.0.0.1", port, PG_USER, PG_DATABASE, folder, log)
    finally:
        if process is not None:
            stop(process, signal.SIGINT)  # SIGINT: fast shutdown (rolls back open transactions)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class MlflowServer:
    """A running ``mlflow server``: ``url`` is its tracking URI."""

    url: str
    port: int
    log: Path
    process: subprocess.Popen


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path, log: Path, *,
                  workers: int = 2) -> Iterator[MlflowServer]:
    """``mlflow server`` on 127.0.0.1 on ``backend_store_uri``, serving artifacts, for the block.

    Args:
        backend_store_uri: the database (``postgresql+psycopg2://...``).
        artifacts: the folder behind ``--artifacts-destination`` (clients upload through the
            server, ``mlflow-artifacts:/``).
        log: the server's stdout and stderr.
        workers: uvicorn worker processes.

    Yields:
        An ``MlflowServer`` once ``/health`` answers.

    Raises:
        RuntimeError: the server exited or did not answer in time (with the end of its log).
    """
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_store_uri,
             "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, f"{url}/health", MLFLOW_START_TIMEOUT, log)
        yield MlflowServer(url, port, log, process)
    finally:
        stop(process)
