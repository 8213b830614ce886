"""The DAG of a tiny pipeline run for real with `dag.test()`: every step as its own task in the
project's Python, the state through XCom, one MLflow run, the watermark skip, forced reruns."""

import csv
import socket
from datetime import timedelta

from conftest import mlflow_runs

from forecast.scheduling.airflow import build_dags


def task_states(dag_run) -> dict:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def forecast_rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_dag_file_loads_a_dag_per_pipeline_file(dags_folder):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"tiny-airflow", "invalid-airflow"}
    assert bag.get_dag("tiny-airflow").fileloc.endswith("airflow_dags.py")


def test_a_dag_run_trains_registers_forecasts_then_skips_unchanged_data(dags_folder):
    dag = build_dags(dags_folder, retries=0)["tiny-airflow"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "validate", "ingest", "train", "register", "forecast"]

    first = dag.test()
    assert task_states(first) == dict.fromkeys(
        ("validate", "ingest", "train", "register", "forecast"), "success")
    assert str(first.state) == "success"
    (run,) = mlflow_runs()
    assert run["status"] == "FINISHED"
    tags, metrics = run["tags"], run["metrics"]
    assert tags["pipeline.name"] == "tiny-airflow" and tags["registry.version"] == "1"
    assert len(tags["watermark.sha256"]) == 64
    assert tags["watermark.last_timestamp"] == "2024-01-15 23:00:00"
    assert metrics["test.model.mae"] > 0 and metrics["step.train.seconds"] > 0
    for step in ("validate", "ingest", "evaluate", "register", "forecast"):
        assert metrics[f"step.{step}.seconds"] >= 0
    rows = forecast_rows(dags_folder / "out" / "tiny-airflow.csv")
    assert len(rows) == 6 and rows[0]["date"] == "2024-01-16 00:00:00"
    final = first.get_task_instance("forecast").xcom_pull(task_ids="forecast")
    assert final["run_id"] == run["run_id"] and final["forecast_rows"] == 6

    # unchanged data and settings: validate is skipped and so is everything after it
    second = dag.test()
    assert str(second.state) == "success"
    assert set(task_states(second).values()) == {"skipped"}
    assert len(mlflow_runs()) == 1

    # the params force a run and override settings (register=null: the register task passes)
    third = dag.test(run_conf={"force": True,
                               "overrides": ["window.horizon=4", "register=null"]})
    assert set(task_states(third).values()) == {"success"}
    runs = mlflow_runs()
    assert len(runs) == 2 and {r["status"] for r in runs} == {"FINISHED"}
    assert len(forecast_rows(dags_folder / "out" / "tiny-airflow.csv")) == 4


def test_an_invalid_pipeline_fails_its_validate_task_and_records_nothing(dags_folder):
    dag = build_dags(dags_folder, retries=0)["invalid-airflow"]
    run = dag.test()
    states = task_states(run)
    assert str(run.state) == "failed" and states["validate"] == "failed"
    assert {states[t] for t in ("ingest", "train", "register", "forecast")} == {
        "upstream_failed"}
    assert mlflow_runs() == []


def test_a_step_hung_on_the_tracking_server_is_stopped_at_its_execution_timeout(
        dags_folder, monkeypatch):
    # a tracking server that accepts connections and never answers: MLflow would wait 120 s
    # per request (and retry); Airflow's own timer stops only the task process, which then
    # waits for the step's process. The step's process stops itself at the deadline.
    server = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.getsockname()[1]}")
    with server:
        dag = build_dags(dags_folder, retries=0,
                         execution_timeout=timedelta(seconds=15))["tiny-airflow"]
        run = dag.test()
    validate = run.get_task_instance("validate")
    assert str(run.state) == "failed" and str(validate.state) == "failed"
    assert validate.duration < 60
