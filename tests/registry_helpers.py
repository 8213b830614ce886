"""Shared by the registry and promotion tests: three tiny forecasters and a fresh MLflow store.

Three tiny forecasters (units 8, lookback 24, horizon 6) are trained once per module and
logged with ``log_forecaster`` into each test's own SQLite store.
"""

import shutil

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.tracking._tracking_service import utils as tracking_utils

from forecast.cli import main
from forecast.data import load_csv
from forecast.forecaster import Forecaster
from forecast.serving import log_forecaster

BASE = {"horizon": 6, "lookback": 24, "batch_size": 32}
# Stored with 1 epoch (cheap to fit here); the promotion backtests override the epochs to
# EPOCHS for both versions, so the learning rate and the size decide: poor (2 units, a rate
# that barely moves the weights) < fair < good (measured: MASE about 6.9, 5.3, 3.3). Not
# blended with the linear baseline (train.blend_linear: false): these are networks that lose
# to it, to test the gate.
CONFIGS = {
    "fair": {**BASE, "model": {"units": 8},
             "train": {"epochs": 1, "learning_rate": 3e-3, "verbose": 0, "seed": 0,
                       "blend_linear": False}},
    "poor": {**BASE, "model": {"units": 2},
             "train": {"epochs": 1, "learning_rate": 1e-5, "verbose": 0, "seed": 0,
                       "blend_linear": False}},
    "good": {**BASE, "model": {"units": 8},
             "train": {"epochs": 1, "learning_rate": 1e-2, "verbose": 0, "seed": 0,
                       "blend_linear": False}},
}
EPOCHS = 2
FOLDS, FOLD_SIZE = 2, 24


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    from tests.conftest import synthetic_frame

    path = tmp_path_factory.mktemp("registry-data") / "synthetic.csv"
    synthetic_frame().to_csv(path, index=False)
    return load_csv(path, targets=["y"])


@pytest.fixture(scope="module")
def forecasters(frame):
    """The three forecasters, fitted once (on all but the last day)."""
    train = frame.iloc[:-24]
    return {name: Forecaster(config).fit(train) for name, config in CONFIGS.items()}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An MLflow SQLite database with its tables made once (the migrations take seconds)."""
    path = tmp_path_factory.mktemp("registry-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, monkeypatch, empty_store):
    """This test's own SQLite store, artifacts under tmp_path."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    before = tracking_utils._tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment(
        "registry", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield uri
    mlflow.set_tracking_uri(before)


def log_model(forecaster) -> tuple[str, str]:
    with mlflow.start_run() as run:
        info = log_forecaster(forecaster, time_col="date")
    return info.model_uri, run.info.run_id


def aliases(name) -> dict:
    return {alias: int(v) for alias, v in MlflowClient().get_registered_model(name).aliases.items()}


def cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


