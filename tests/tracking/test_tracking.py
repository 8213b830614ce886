"""Tests of forecast/tracking/mlflow.py and run.py on a real temporary SQLite MLflow store."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import forecast
from forecast.data import load_csv
from forecast.errors import ModelError
from forecast.tracking import mlflow as tracking
from forecast.tracking.run import train_tracked

CONFIG = {"horizon": 6, "lookback": 24, "model": {"units": 8},
          "train": {"epochs": 2, "verbose": 0, "seed": 3}}


def test_store_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////somewhere/else.db")
    assert tracking.resolve_tracking_uri() == ("sqlite:////somewhere/else.db",
                                               "file:///somewhere/artifacts")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_tracking_uri() == ("http://127.0.0.1:5000", None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tracking.PROJECT_ROOT)
    uri, artifacts = tracking.resolve_tracking_uri()
    assert uri == f"sqlite:///{tracking.PROJECT_ROOT / 'mlflow' / 'mlflow.db'}"
    assert artifacts.endswith("/mlflow/artifacts")
    monkeypatch.chdir(tmp_path)  # outside the checkout: MLflow's own default, never ./mlruns
    uri, artifacts = tracking.resolve_tracking_uri()
    assert artifacts is None and not uri.startswith("file:") and "mlruns" not in uri


def test_flatten_nested_settings():
    flat = tracking.flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}})
    assert flat == {"a": "1", "b.c": "[1, 2]", "b.d.e": "None"}


def test_a_failing_run_is_failed_with_the_message(synthetic_csv):
    frame = load_csv(synthetic_csv, targets=["y"])
    bad = {**CONFIG, "train": {"epochs": 3, "verbose": 0, "learning_rate": 1e25}}
    with pytest.raises(ModelError) as error:
        train_tracked(frame, bad, source=str(synthetic_csv), experiment="failing")
    runs = mlflow.search_runs(experiment_names=["failing"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FAILED"
    assert str(error.value)[:100] in run.data.tags["error"]
    assert run.data.tags["error.type"] == "ModelError"


def test_tracked_run_logs_everything_and_serves_the_champion(synthetic_csv):
    frame = load_csv(synthetic_csv, targets=["y"])
    result = train_tracked(frame, CONFIG, source=str(synthetic_csv), register="synthetic",
                           experiment="e2e")
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["config.horizon"] == "6" and params["config.model.units"] == "8"
    assert params["data.source"] == str(synthetic_csv)
    metrics = run.data.metrics
    for key in ("test.model.mae", "test.model.mase", "test.naive.mae", "test.linear.mae",
                "test.seasonal_naive.mase", "test_scaled.model.mse"):
        assert metrics[key] > 0, key
    by_step = client.get_metric_history(result.run_id, "test.model.mae_by_step")
    assert [m.step for m in by_step] == [1, 2, 3, 4, 5, 6]
    assert len(client.get_metric_history(result.run_id, "val_loss")) >= 1
    tags = run.data.tags
    assert tags["forecast.kernel"] and tags["tensorflow.version"] and tags["keras.version"]
    assert len(tags["data.sha256"]) == 64
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert artifacts == {"plots/training_curves.png", "plots/error_by_step.png",
                         "plots/forecast_vs_actual.png"}
    assert "config.yaml" in {a.path for a in client.list_artifacts(result.run_id)}
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == Path(synthetic_csv).name
    # registered and backtested beside the baselines; the champion (the model, or the best
    # baseline when it beats the model) serves forecasts from raw history
    assert result.version == "1"
    champion = client.get_model_version_by_alias("synthetic", "champion")
    kind = result.promotion["champion_kind"]
    assert str(champion.version) == result.promotion["champion_version"]
    assert champion.tags["forecast.kind"] == kind
    assert (kind == "network") == (result.promotion["decision"] == "promoted")
    raw = pd.read_csv(synthetic_csv).iloc[-100:]
    served = forecast.load("models:/synthetic@champion").predict(raw)
    forecaster = result.report.forecaster
    if kind != "network":
        forecaster = forecaster.as_baseline(kind)
    expected = forecaster.predict(frame.iloc[-100:])
    assert list(pd.to_datetime(served["date"])) == list(expected.index)
    np.testing.assert_allclose(served["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-6)
