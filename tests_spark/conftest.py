"""Spark tests (`make test-spark`, its own venv .venv-spark with pyspark and Java 17).

One ``local[2]`` SparkSession for the whole session, started and stopped here; an MLflow store
in a temporary folder (nothing reaches the project's mlflow/); two tiny models trained once
through the CLI (``forecast train ... --save``): one of one series, one global over every
series of a long-format file of a few hundred short synthetic series.

Not collected by `pytest -q` from the repository root (pyproject's testpaths is ``tests``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
STORE = Path(tempfile.mkdtemp(prefix="forecast-spark-store-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{STORE / 'mlflow.db'}"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

#: a few hundred short series: enough groups for several Spark tasks, small enough to be quick
N_SERIES, LOOKBACK, HORIZON = 240, 12, 6
ID, TIME = "series", "date"


def long_frame(n_series: int = N_SERIES, seed: int = 0) -> pd.DataFrame:
    """Hourly series of 40–64 rows, different starts and levels, as a long-format CSV holds them."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n_series):
        n = int(rng.integers(40, 65))
        level = float(rng.uniform(5, 50))
        t = np.arange(n)
        y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24 + k)) + rng.normal(0, level / 50, n)
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(rng.integers(0, 48)))
        parts.append(pd.DataFrame({
            ID: f"s{k:04d}",
            TIME: pd.date_range(start, periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
            "y": np.round(y, 6),
        }))
    return pd.concat(parts, ignore_index=True)


def train_cli(csv: Path, save: Path, *extra: str) -> None:
    """``forecast train CSV ... --save SAVE`` in this process (tiny model, one epoch)."""
    from forecast.cli import main

    with pytest.raises(SystemExit) as done:
        main(["train", str(csv), "--time-col", TIME, "--target", "y", "--horizon",
              str(HORIZON), "--lookback", str(LOOKBACK), "--units", "4", "--epochs", "1",
              "--seed", "3", "--no-track", "--save", str(save), *extra])
    assert done.value.code == 0, f"forecast train failed for {csv}"


@pytest.fixture(scope="session")
def spark():
    """A local[2] SparkSession (forecast's own settings), stopped at the end."""
    from forecast.serving.spark import spark_session

    session = spark_session("local[2]", app_name="forecast-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """The long-format table as a CSV and as Parquet, and one of its series alone."""
    folder = tmp_path_factory.mktemp("spark-data")
    frame = long_frame()
    csv = folder / "long.csv"
    frame.to_csv(csv, index=False)
    parquet = folder / "long.parquet"
    frame.to_parquet(parquet, index=False)
    one = folder / "one.csv"
    frame[frame[ID] == "s0000"].drop(columns=ID).to_csv(one, index=False)
    return SimpleNamespace(folder=folder, frame=frame, csv=csv, parquet=parquet, one=one)


@pytest.fixture(scope="session")
def single_model(data):
    """A model of one series (s0000), saved as an MLflow model folder."""
    path = data.folder / "single-model"
    train_cli(data.one, path)
    return path


@pytest.fixture(scope="session")
def global_model(data):
    """One global model over every series of the table, saved as an MLflow model folder."""
    path = data.folder / "global-model"
    train_cli(data.csv, path, "--id-col", ID)
    return path


def read_out(folder: Path) -> pd.DataFrame:
    """The part files Spark wrote (CSV or Parquet), sorted by series and time."""
    parts = sorted(folder.glob("part-*"))
    if parts and parts[0].suffix == ".csv":
        frame = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    else:
        frame = pd.read_parquet(folder)
    frame[TIME] = pd.to_datetime(frame[TIME])
    return frame.sort_values([ID, TIME]).reset_index(drop=True)


def pytest_configure(config):
    # pyspark 4.3 warns on every pandas UDF that it "does not yet fully support pandas >= 3.0.0";
    # the project runs on pandas 3, and these tests are what checks that scoring still works
    config.addinivalue_line("filterwarnings",
                            "ignore:PySpark does not yet fully support pandas:FutureWarning")


def pytest_unconfigure(config):
    shutil.rmtree(STORE, ignore_errors=True)
