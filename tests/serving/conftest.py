"""Shared fixtures of the serving tests: forecasters trained once, one MLflow store, one model.

The store is one SQLite database for the session (so the model is logged once); every test
still points ``MLFLOW_TRACKING_URI`` and ``mlflow.set_tracking_uri`` at it and undoes both.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

LOOKBACK = 24
HORIZON = 6
MODEL_NAME = "sales"


@contextlib.contextmanager
def tracking_store(uri: str):
    """Points MLflow (the variable and the global setting) at ``uri`` for the block."""
    import mlflow

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)  # unsets the variable; the patch then restores it


def _fit(frame, **model):
    from forecast.data import chronological_split
    from forecast.forecaster import Forecaster

    parts = chronological_split(frame, val=0.15, test=0.15, lookback=LOOKBACK)
    config = {"horizon": HORIZON, "lookback": LOOKBACK, "model": {"units": 8, **model},
              "train": {"epochs": 1, "verbose": 0, "seed": 7}}
    return Forecaster(config).fit(parts.train, parts.val)


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    """The raw synthetic series (date, y, x) and its CSV file."""
    from tests.conftest import synthetic_frame

    folder = tmp_path_factory.mktemp("serving-data")
    raw = synthetic_frame()
    path = folder / "synthetic.csv"
    raw.to_csv(path, index=False)
    return SimpleNamespace(raw=raw, csv=path)


@pytest.fixture(scope="session")
def trained(history):
    """A point forecaster of y with the past covariate x."""
    from forecast.data import load_csv

    frame = load_csv(history.csv, targets=["y"], covariates=["x"])
    return SimpleNamespace(frame=frame, forecaster=_fit(frame))


@pytest.fixture(scope="session")
def quantile_trained(history):
    """A quantile forecaster of y alone."""
    from forecast.data import load_csv

    frame = load_csv(history.csv, targets=["y"])
    return SimpleNamespace(frame=frame, forecaster=_fit(frame, quantiles=(0.1, 0.5, 0.9)))


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """One SQLite tracking store with an experiment whose artifacts live beside it."""
    import mlflow

    folder = tmp_path_factory.mktemp("serving-mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with tracking_store(uri):
        experiment = mlflow.create_experiment(
            "serving", artifact_location=(folder / "artifacts").as_uri())
    return SimpleNamespace(uri=uri, folder=folder, experiment_id=experiment)


@pytest.fixture(autouse=True)
def _use_store(store, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    mlflow.set_tracking_uri(store.uri)
    yield
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def logged(store, trained):
    """The point forecaster logged in a run, registered as ``sales`` with alias champion."""
    import mlflow
    from mlflow import MlflowClient

    from forecast.serving import log_forecaster

    with tracking_store(store.uri):
        with mlflow.start_run(experiment_id=store.experiment_id) as run:
            info = log_forecaster(trained.forecaster, time_col="date",
                                  input_example=trained.frame, registered_model_name=MODEL_NAME)
        version = info.registered_model_version
        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)
    return SimpleNamespace(run_id=run.info.run_id, info=info,
                           runs_uri=f"runs:/{run.info.run_id}/model",
                           champion_uri=f"models:/{MODEL_NAME}@champion")
