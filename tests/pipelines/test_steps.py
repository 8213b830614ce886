"""The pipeline steps run one at a time as the Airflow DAG runs them: each with nothing cached
(as in a fresh process) and the state passed through JSON (as through XCom)."""

import json
import os

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import forecast
from forecast.errors import ConfigError, DataError
from forecast.pipelines import steps
from forecast.pipelines.state import StepState
from forecast.scheduling.airflow import jsonable
from tests.conftest import synthetic_frame
from tests.pipelines.conftest import tiny_pipeline, write_pipeline

PIPELINE = tiny_pipeline(
    "tiny-steps",
    evaluate="{metrics: [mae, mase], backtest_folds: 2, backtest_epochs: 1}",
    register="{name: tiny-steps-model, promotion_folds: 2, promotion_epochs: 1}")


@pytest.fixture
def pipeline(tmp_path):
    return write_pipeline(tmp_path, PIPELINE)


def through_json(state: StepState) -> StepState:
    """What a task receives from the one before it (XCom holds strict JSON of ``to_dict()``)."""
    return StepState.from_dict(json.loads(json.dumps(jsonable(state.to_dict()), allow_nan=False)))


def run_separately(state: StepState, names) -> StepState:
    for name in names:
        state = through_json(steps.run_step(name, through_json(state).to_dict()))
    return state


def test_steps_in_separate_processes_add_to_one_run_and_reload_what_they_need(pipeline, tmp_path):
    state = through_json(steps.validate(pipeline))
    assert not state.skipped and len(state.sha256) == 64
    state = run_separately(state, steps.STEPS[1:])

    (run,) = MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("forecast").experiment_id])
    assert run.info.run_id == state.run_id and run.info.status == "FINISHED"
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["registry.version"] == state.version == "1"
    assert tags["watermark.sha256"] == state.sha256
    assert tags["watermark.last_timestamp"] == state.last_timestamp == "2024-01-15 23:00:00"
    for step in ("validate", "ingest", "train", "evaluate", "backtest", "register", "forecast"):
        assert metrics[f"step.{step}.seconds"] >= 0
    assert "backtest.model.mae" in metrics and "test.model.mase" in metrics
    assert len(state.backtest["folds"]) == 2 and set(state.metrics["model"]) == {
        "mae", "mase"}

    # the forecast step reloaded the run's model from MLflow: its numbers are the logged model's
    written = pd.read_csv(tmp_path / "out" / "forecast.csv", parse_dates=["date"])
    assert state.forecast_rows == len(written) == 6
    history = pd.read_csv(tmp_path / "data" / "series.csv", parse_dates=["date"])
    champion = state.promotion["champion_version"]
    if champion == state.version:  # the trained model won its promotion backtest
        expected = forecast.load(state.model_uri).predict(history)
        assert state.forecast_source == "models:/tiny-steps-model/1"
    else:  # a baseline beat it and serves
        assert state.promotion["decision"] == "baseline_champion" and champion == "2"
        expected = forecast.load("models:/tiny-steps-model@champion").predict(history)
        assert state.forecast_source == "models:/tiny-steps-model@champion (version 2)"
    np.testing.assert_allclose(written["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-5)

    again = steps.validate(pipeline)
    assert again.skipped and again.run_id == state.run_id


def test_the_watermark_waits_for_the_last_step_and_changed_data_fails_the_run(pipeline):
    state = through_json(steps.validate(pipeline, overrides=["evaluate.backtest_folds=null"]))
    state = run_separately(state, ["ingest", "train", "backtest"])
    assert state.backtest is None  # not configured: the step passes the state through
    # the run is FINISHED after train, but without a watermark it does not make a run skip
    assert MlflowClient().get_run(state.run_id).info.status == "FINISHED"
    assert not steps.validate(pipeline, overrides=["evaluate.backtest_folds=null"]).skipped

    # a retried register step reuses the version it registered
    first = run_separately(state, ["register"])
    second = run_separately(state, ["register"])
    assert first.version == second.version == "1"
    versions = MlflowClient().search_model_versions("name = 'tiny-steps-model'")
    assert [v.tags["forecast.kind"] for v in versions].count("network") == 1
    assert second.promotion["champion_version"] == first.promotion["champion_version"]
    assert len(versions) == (1 if first.promotion["champion_version"] == "1" else 2)

    csv = pipeline.parent / "data" / "series.csv"
    synthetic_frame(361).to_csv(csv, index=False)
    with pytest.raises(DataError, match="series.csv changed while the pipeline was running"):
        steps.forecast(through_json(first))
    run = MlflowClient().get_run(state.run_id)
    assert run.info.status == "FAILED" and "changed while" in run.data.tags["error"]
    assert "watermark.sha256" not in run.data.tags

    with pytest.raises(ConfigError, match="unknown pipeline step 'evaluate'"):
        steps.run_step("evaluate", state)


def test_the_airflow_module_imports_without_airflow_and_lists_the_same_steps():
    from forecast.scheduling import airflow

    assert airflow.STEPS == steps.STEPS
    assert airflow.jsonable({"a": [float("nan"), 1.5], "b": {"c": float("inf")}}) == {
        "a": [None, 1.5], "b": {"c": None}}


def test_an_airflow_task_enforces_its_timeout_in_the_step_process(monkeypatch):
    import time

    from forecast.scheduling.airflow import run_pipeline_step

    def slow_train(name, state, echo):
        if name == "train":
            time.sleep(5)
        return state

    monkeypatch.setattr(steps, "run_step", slow_train)
    started = time.monotonic()
    with pytest.raises(BaseException, match="the train step ran longer than its "
                                            "execution_timeout of 0.2 s") as info:
        run_pipeline_step("train", {"path": "tiny.yaml"}, timeout=0.2)
    assert type(info.value).__name__ == "StepTimeout"
    assert not isinstance(info.value, Exception)  # no `except Exception` swallows it
    assert time.monotonic() - started < 2
    # the task hands on strict JSON of StepState.to_dict(): NaN becomes None
    returned = run_pipeline_step("ingest", {"path": "tiny.yaml", "metrics": {"mae": float("nan")}},
                                 timeout=None)
    assert returned == {**StepState(path="tiny.yaml").to_dict(), "metrics": {"mae": None}}


def test_a_pipeline_refuses_multi_worker_training_and_records_nothing(pipeline):
    with pytest.raises(ConfigError, match="train.strategy: multi_worker") as info:
        steps.validate(pipeline, overrides=["train.strategy=multi_worker"])
    assert "--strategy multi_worker" in str(info.value) and "mirrored" in str(info.value)
    assert MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).search_experiments(
        filter_string="name = 'forecast'") == []


def test_a_pipeline_accepts_the_mirrored_strategy(pipeline):
    state = steps.validate(pipeline, overrides=["train.strategy=mirrored"])
    assert not state.skipped and state.overrides == ["train.strategy=mirrored"]
