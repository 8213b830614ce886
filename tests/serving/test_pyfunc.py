"""The logged forecaster as an MLflow pyfunc model: same numbers, clear errors, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import forecast
from forecast.errors import ConfigError, DataError, ModelError
from tests.serving.conftest import HORIZON, LOOKBACK, tracking_store


def _raw_slice(raw: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    """Rows of the CSV as a client sends them: timestamps as text."""
    part = raw.iloc[start:stop].copy()
    part["date"] = part["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return part.reset_index(drop=True)


@pytest.fixture(scope="module")
def served(store, logged):
    with tracking_store(store.uri):
        return forecast.load(logged.runs_uri)


def test_loaded_model_forecasts_like_the_forecaster(served, history, trained):
    recent = _raw_slice(history.raw, 100, 200)  # more than lookback rows: the last are used

    out = served.predict(recent)

    expected = trained.forecaster.predict(trained.frame.iloc[100:200])
    assert list(out.columns) == ["date", "y"]
    last = history.raw["date"].iloc[199]
    assert list(out["date"]) == list(pd.date_range(last, periods=HORIZON + 1, freq="h")[1:])
    assert_allclose(out["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-6)
    # A time-indexed frame (as load_csv returns) gives the same forecast.
    again = served.predict(trained.frame.iloc[176:200])
    assert_allclose(again["y"].to_numpy(), out["y"].to_numpy(), rtol=0, atol=1e-6)
    # Integer columns are numbers too (MLflow's own check would refuse int64 for double).
    counts = recent.assign(y=recent["y"].round().astype("int64"))
    assert len(served.predict(counts)) == HORIZON


def test_champion_alias_loads_the_registered_model(logged, history):
    model = forecast.load(logged.champion_uri)
    out = model.predict(_raw_slice(history.raw, 0, LOOKBACK))
    assert len(out) == HORIZON and out["date"].iloc[0] == history.raw["date"].iloc[LOOKBACK]


def test_quantile_model_returns_quantile_columns(store, quantile_trained, history):
    import mlflow

    from forecast.serving import log_forecaster

    with mlflow.start_run(experiment_id=store.experiment_id):
        info = log_forecaster(quantile_trained.forecaster, time_col="date",
                              input_example=quantile_trained.frame, name="quantiles")
    model = forecast.load(info.model_uri)
    out = model.predict(_raw_slice(history.raw[["date", "y"]], 300, 340))

    expected = quantile_trained.forecaster.predict(quantile_trained.frame.iloc[300:340])
    assert list(out.columns) == ["date", "y", "y_q0.1", "y_q0.5", "y_q0.9"]
    assert list(out["date"]) == list(expected.index)
    assert_allclose(out.drop(columns="date").to_numpy(), expected.to_numpy(), rtol=0, atol=1e-6)


def _drop_rows(frame, start, stop):
    return pd.concat([frame.iloc[:start], frame.iloc[stop:]]).reset_index(drop=True)


@pytest.mark.parametrize("case, make, pattern", [
    ("missing column", lambda raw: raw.drop(columns=["x"]), r"lacks the column\(s\) 'x'"),
    ("too few rows", lambda raw: raw.iloc[-10:], r"10 row\(s\).*at least 24 rows.*lookback"),
    ("gap too long", lambda raw: _drop_rows(raw, 40, 70),
     r"30 consecutive timestamp\(s\) are missing"),
])
def test_bad_input_is_a_data_error(served, history, case, make, pattern):
    bad = make(_raw_slice(history.raw, 0, 100))
    with pytest.raises(DataError, match=pattern) as caught:
        served.predict(bad)
    assert "'model input'" in str(caught.value)


def _is_pickle(path: Path) -> bool:
    head = path.read_bytes()[:2]
    return len(head) == 2 and head[0] == 0x80 and head[1] in range(2, 6)


def test_logged_model_has_no_pickle_a_signature_and_an_input_example(logged, tmp_path):
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(logged.runs_uri, dst_path=str(tmp_path)))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}

    assert {"MLmodel", "model_code.py", "input_example.json", "requirements.txt",
            "artifacts/forecaster/model.keras", "artifacts/forecaster/forecaster.json",
            "artifacts/forecaster/serving.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle"))]
    assert not [f for f in files if _is_pickle(local / f)]
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in (local / "MLmodel").read_text()
    serving = json.loads((local / "artifacts/forecaster/serving.json").read_text())
    assert serving["time_col"] == "date" and serving["covariates"] == ["x"]

    model_info = mlflow.models.get_model_info(logged.runs_uri)
    assert model_info.signature is not None
    assert model_info.signature.inputs.input_names() == ["date", "y", "x"]
    assert model_info.signature.outputs.input_names() == ["date", "y"]
    example = mlflow.models.Model.load(str(local)).load_input_example(str(local))
    assert list(example.columns) == ["date", "y", "x"] and len(example) == LOOKBACK
    assert isinstance(example["date"].iloc[0], str)
    assert "forecast==" in (local / "requirements.txt").read_text()


def test_default_input_example_is_made_from_the_forecaster(trained):
    from forecast.serving.log import example_history
    from forecast.serving.pyfunc import ServingInfo, forecast_history

    info = ServingInfo.for_forecaster(trained.forecaster, time_col="date")
    example = example_history(trained.forecaster, info)
    assert list(example.columns) == ["date", "y", "x"] and len(example) == LOOKBACK
    assert example["date"].iloc[0] == "2000-01-01T00:00:00"
    out = forecast_history(trained.forecaster, info, example)
    assert len(out) == HORIZON and np.isfinite(out["y"]).all()


@pytest.mark.parametrize("uri", ["runs:/0123456789abcdef0123456789abcdef/model",
                                 "models:/no-such-model@champion", "/no/such/model/folder"])
def test_loading_a_missing_model_is_a_model_error(uri):
    with pytest.raises(ModelError, match="no loadable MLflow model at") as caught:
        forecast.load(uri)
    assert repr(uri) in str(caught.value)


def test_log_forecaster_checks_its_arguments(trained):
    from forecast.forecaster import Forecaster
    from forecast.serving import log_forecaster

    with pytest.raises(ModelError, match="not fitted"):
        log_forecaster(Forecaster({"horizon": 3}), time_col="date")
    with pytest.raises(ConfigError, match="time_col"):
        log_forecaster(trained.forecaster, time_col="y")
    with pytest.raises(ConfigError, match="fill"):
        log_forecaster(trained.forecaster, time_col="date", fill="guess")
