"""Fixtures of the team-tracking tests: PostgreSQL + ``mlflow server``, and quick quickstart runs.

``team_server`` (session-scoped) starts a PostgreSQL cluster and an ``mlflow server`` on it
(``tests/servers.py``) once for the tests that need it and stops both at the end, also after a
failure; it skips, with the reason, only where PostgreSQL cannot be started (no server binaries;
root without a ``postgres`` user).

``run_at_once`` starts several ``forecast pipeline run pipelines/quickstart.yaml --force`` at the
same moment as separate processes (the way a scheduler or several people start them) with the
``QUICK`` overrides, which keep the real quickstart pipeline but make each run a few seconds of
training on 2 cores: the first 1,200 rows of the bundled ETTh1 (50 days), a 24-hour lookback,
4 units, one seeded epoch, and a one-fold, one-epoch promotion backtest.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.servers import BIN, mlflow_server, postgres, postgres_unavailable

PROJECT = Path(__file__).resolve().parents[2]
QUICKSTART = PROJECT / "pipelines" / "quickstart.yaml"
ETTH1 = PROJECT / "datasets" / "ETTh1.csv"
HEAD_ROWS = 1200
RUN_TIMEOUT = 400  # four TensorFlow trainings sharing 2 cores

#: the quickstart pipeline, made quick (``data.path`` and ``forecast.path`` are added per run).
QUICK = ("window.lookback=24", "model.units=4", "train.epochs=1", "train.verbose=0",
         "register.promotion_folds=1",
         "register.promotion_epochs=1")


@pytest.fixture(scope="session")
def etth1_head(tmp_path_factory) -> Path:
    """The first ``HEAD_ROWS`` rows of ETTh1 (the header kept), as a CSV."""
    path = tmp_path_factory.mktemp("etth1") / "ETTh1_head.csv"
    with open(ETTH1) as source:
        lines = [next(source) for _ in range(HEAD_ROWS + 1)]
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="session")
def team_server(tmp_path_factory):
    """``mlflow server`` on PostgreSQL, both on 127.0.0.1, for the session.

    Yields:
        ``SimpleNamespace(url, backend, artifacts)``: the tracking URI, the backend store URI
        and the artifact folder.
    """
    reason = postgres_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL cannot be started here: {reason}")
    folder = tmp_path_factory.mktemp("team-server")
    with postgres() as db, mlflow_server(db.url, folder / "artifacts",
                                         folder / "mlflow-server.log") as server:
        yield SimpleNamespace(url=server.url, backend=db.url, artifacts=folder / "artifacts")


@dataclass
class PipelineProcess:
    """One finished ``forecast pipeline run`` process."""

    index: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict:
        """The ``--json`` result (the last stdout line)."""
        return json.loads(self.stdout.strip().splitlines()[-1])

    def describe(self) -> str:
        return f"run {self.index} exited {self.returncode}:\n{self.stderr[-3000:]}"


def run_at_once(count: int, tracking_uri: str, data: Path, folder: Path,
                extra: tuple[str, ...] = ()) -> list[PipelineProcess]:
    """Starts ``count`` quickstart pipeline runs at once as processes and waits for all.

    Args:
        count: how many processes.
        tracking_uri: their ``MLFLOW_TRACKING_URI``.
        data: the CSV (``data.path``).
        folder: their working directory (a SQLite store's default artifact root is
            ``./mlruns`` there); run ``i`` writes its forecast to ``forecast-i.csv`` there.
        extra: more ``--set`` overrides.

    Returns:
        One ``PipelineProcess`` per run, in start order.
    """
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTEST_CURRENT_TEST", None)  # MLflow checks read-only sessions when it is set
    processes = []
    for index in range(count):
        overrides = (*QUICK, f"data.path={data}", f"forecast.path={folder}/forecast-{index}.csv",
                     *extra)
        command = [str(BIN / "forecast"), "pipeline", "run", str(QUICKSTART), "--force",
                   "--json"]
        for override in overrides:
            command += ["--set", override]
        processes.append(subprocess.Popen(command, cwd=folder, env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    deadline = time.monotonic() + RUN_TIMEOUT
    finished = []
    try:
        for index, process in enumerate(processes):
            stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 1))
            finished.append(PipelineProcess(index, process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return finished
