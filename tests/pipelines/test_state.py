"""The typed state the pipeline steps hand to each other, and its JSON round trip."""

import dataclasses
import json
import subprocess
import sys

import mlflow
import pytest

from forecast.errors import ConfigError
from forecast.pipelines import steps
from forecast.pipelines.run import PipelineResult
from forecast.pipelines.state import StepState
from forecast.scheduling.airflow import read_header
from tests.pipelines.conftest import tiny_pipeline, write_pipeline

PIPELINE = tiny_pipeline("tiny-state")


def full_state() -> StepState:
    """A state with every field set, as after the last step of a registered pipeline."""
    return StepState(
        path="/pipelines/tiny.yaml", overrides=["window.horizon=48", "register=null"],
        skipped=False, message="pipeline tiny: run abc finished", name="tiny",
        experiment="forecast", digest="d" * 64, sha256="e" * 64, run_id="abc",
        steps={"validate": 0.25, "ingest": 0.5, "train": 3.0, "evaluate": 0.125},
        last_timestamp="2024-01-15 23:00:00", time_col="date",
        model_uri="runs:/abc/model", lookback=24,
        metrics={"model": {"mae": 0.5, "mase": 0.75}, "baselines": {"naive": {"mae": 1.0}}},
        backtest={"model": {"mae": 0.5}, "baselines": {}, "folds": [{"start": "2024-01-10"}]},
        version="3", promotion={"promoted": True, "decision": "champion"},
        forecast_path="/out/forecast.csv", forecast_rows=6, forecast_source="models:/tiny/3",
    )


def test_every_field_survives_the_json_round_trip():
    state = full_state()
    text = state.to_json()
    assert json.loads(text) == state.to_dict()
    back = StepState.from_json(text)
    assert back == state and back is not state
    assert {f.name for f in dataclasses.fields(StepState)} == set(state.to_dict())
    assert all(getattr(state, f.name) != f.default for f in dataclasses.fields(StepState)
               if f.default is not dataclasses.MISSING and f.name != "skipped")
    # a new state: defaults and only the path
    fresh = StepState(path="tiny.yaml")
    assert StepState.from_json(fresh.to_json()) == fresh
    assert StepState.from_dict({"path": "tiny.yaml"}) == fresh
    assert fresh.to_dict()["steps"] == {} and fresh.run_id is None


def test_the_dicts_are_copies_not_shared():
    state = full_state()
    data = state.to_dict()
    data["steps"]["train"] = 99.0
    data["metrics"]["model"]["mae"] = 99.0
    assert state.steps["train"] == 3.0 and state.metrics["model"]["mae"] == 0.5
    back = StepState.from_dict(data)
    data["overrides"].append("x=1")
    assert back.overrides == ["window.horizon=48", "register=null"]


def test_an_unknown_key_is_a_config_error_naming_it():
    data = {**StepState(path="tiny.yaml").to_dict(), "runid": "abc"}
    with pytest.raises(ConfigError, match="unknown key 'runid'") as info:
        StepState.from_dict(data)
    assert "run_id" in str(info.value)  # the message lists the keys there are
    with pytest.raises(ConfigError, match="unknown key 'force'.*'extra'"):
        StepState.from_json(json.dumps({"path": "tiny.yaml", "force": True, "extra": 1}))
    # at the public boundary of the steps too (an XCom from another version of the project)
    with pytest.raises(ConfigError, match="unknown key 'runid'"):
        steps.run_step("ingest", data)


@pytest.mark.parametrize(("data", "message"), [
    ({}, "'path' is missing"),
    ({"path": "tiny.yaml", "lookback": "24"}, r"lookback must be an int or None\. Received: '24'"),
    ({"path": "tiny.yaml", "skipped": 1}, "skipped must be a bool"),
    ({"path": "tiny.yaml", "overrides": "a=1"}, r"overrides must be a list\[str\]"),
    ({"path": "tiny.yaml", "steps": {"train": "fast"}}, r"steps must be a dict\[str, float\]"),
    (["path"], "expected a dict of the state's fields. Received: list"),
])
def test_a_value_of_the_wrong_type_is_a_config_error(data, message):
    with pytest.raises(ConfigError, match=message):
        StepState.from_dict(data)
    with pytest.raises(ConfigError, match="not valid JSON"):
        StepState.from_json("{path: tiny.yaml}")


def test_the_module_imports_neither_tensorflow_keras_nor_mlflow():
    code = ("import sys, forecast.pipelines.state; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_real_run_hands_a_step_state_through_json_between_steps(tmp_path):
    pipeline = write_pipeline(tmp_path, PIPELINE)
    state = steps.validate(pipeline)
    assert isinstance(state, StepState) and not state.skipped
    seen = [state]
    dag_steps = read_header(pipeline).steps  # the tasks of its Airflow DAG: no backtest, register
    assert dag_steps == ("validate", "ingest", "train", "forecast")
    for name in dag_steps[1:]:
        text = state.to_json()  # what a task hands to the next, as a new process reads it
        received = StepState.from_json(text)
        assert received == state and received.to_json() == text
        state = steps.run_step(name, received)
        assert isinstance(state, StepState) and state is not received
        assert received == StepState.from_json(text)  # the step changed a copy only
        seen.append(state)

    final = StepState.from_json(state.to_json())
    assert final == state
    (run,) = mlflow.search_runs(experiment_names=["forecast"], output_format="list")
    assert final.run_id == run.info.run_id and run.info.status == "FINISHED"
    assert final.model_uri and final.lookback == 24 and final.time_col == "date"
    assert final.last_timestamp == "2024-01-15 23:00:00"
    assert set(final.metrics["model"]) == {"mae", "mase"}
    assert final.backtest is None and final.version is None  # neither is configured
    assert final.forecast_rows == 6 and final.forecast_source == "the trained model"
    assert final.forecast_path == str(tmp_path / "out" / "forecast.csv")
    assert set(final.steps) == {"validate", "ingest", "train", "evaluate", "forecast"}
    assert [s.run_id for s in seen] == [None, None, final.run_id, final.run_id]

    result = PipelineResult.from_state(final)
    assert result.run_id == final.run_id and result.forecast_path == tmp_path / "out" / \
        "forecast.csv" and result.watermark.sha256 == final.sha256
    assert PipelineResult.from_state(final.to_dict()).to_dict() == result.to_dict()

    again = StepState.from_json(steps.validate(pipeline).to_json())
    assert again.skipped and again.run_id == final.run_id and "skipped" in again.message
