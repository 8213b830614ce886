"""Airflow tests: a throw-away AIRFLOW_HOME with a SQLite metadata database, set before Airflow is
imported; an MLflow SQLite store per test; the pipeline steps run in the project's .venv.

Run with `make test-airflow` (its own virtual environment, .venv-airflow).
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# before anything imports airflow: it reads its configuration once, at import
HOME = Path(tempfile.mkdtemp(prefix="forecast-airflow-home-"))
DAGS = HOME / "dags"
DAGS.mkdir()
os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "2",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    "TF_CPP_MIN_LOG_LEVEL": "2",
})
os.environ.pop("FORECAST_PIPELINES_DIR", None)

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
name: {name}
description: a tiny pipeline for the Airflow tests
data:
  path: data/series.csv
  time_col: date
  targets: [y]
window: {{lookback: 24, horizon: 6}}
model: {{units: 4, linear_skip: true}}
train: {{epochs: 1, batch_size: 64, verbose: 0, seed: 1}}
evaluate: {{metrics: [mae, mase]}}
register: {{name: {name}-model, promotion_folds: 2, promotion_epochs: 1}}
forecast: {{path: out/{name}.csv}}
schedule: {{cron: "30 3 * * 1-5", timezone: Europe/Paris}}
"""


def write_series(path: Path, rows: int = 360) -> None:
    """An hourly sine + trend series (no numpy in Airflow's environment), deterministic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["date,y"]
    for t in range(rows):
        day, hour = divmod(t, 24)
        value = 10 + 3 * math.sin(2 * math.pi * t / 24) + 0.01 * t + 0.3 * math.sin(7.1 * t)
        lines.append(f"2024-01-{day + 1:02d} {hour:02d}:00:00,{value:.6f}")
    path.write_text("\n".join(lines) + "\n")


def install_dag_file(folder: Path) -> Path:
    """The drop-in DAG file, copied as a user copies it into a dags folder."""
    return Path(shutil.copy(ROOT / "pipelines" / "airflow_dags.py", folder / "airflow_dags.py"))


@pytest.fixture(scope="session")
def airflow_db():
    """`airflow db migrate` on the SQLite file of this session's AIRFLOW_HOME."""
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True,
                          env=os.environ, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return HOME / "airflow.db"


@pytest.fixture(scope="session")
def dags_folder(airflow_db):
    """Airflow's dags folder: the drop-in file beside two pipelines, one of them invalid."""
    write_series(DAGS / "data" / "series.csv")
    (DAGS / "tiny.yaml").write_text(TINY.format(name="tiny-airflow"))
    (DAGS / "invalid.yaml").write_text(
        TINY.format(name="invalid-airflow").replace("horizon: 6", "horizn: 6"))
    install_dag_file(DAGS)
    return DAGS


@pytest.fixture(autouse=True)
def mlflow_store(tmp_path, monkeypatch):
    """Each test's own MLflow store; the step processes inherit the variable."""
    store = tmp_path / "mlflow-store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def mlflow_runs(experiment: str = "forecast") -> list[dict]:
    """The runs of ``experiment``, read with MLflow in the project's .venv (not installed here)."""
    from forecast.scheduling.airflow import pipeline_python

    code = (
        "import json, mlflow\n"
        f"runs = mlflow.search_runs(experiment_names=[{experiment!r}], output_format='list')\n"
        "print(json.dumps([{'run_id': r.info.run_id, 'status': r.info.status,\n"
        "                   'tags': r.data.tags, 'metrics': r.data.metrics} for r in runs]))\n"
    )
    done = subprocess.run([pipeline_python(), "-c", code], capture_output=True, text=True,
                          env=os.environ, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def pytest_configure(config):
    # Airflow's in-process execution API imports starlette's test client
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


def pytest_unconfigure(config):
    shutil.rmtree(HOME, ignore_errors=True)
