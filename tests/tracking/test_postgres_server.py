"""The quickstart pipeline against a team tracking server: ``mlflow server`` on PostgreSQL.

One run in this process (``run_pipeline``), then four runs started at once as processes; the
server's answers (``MlflowClient``) and the PostgreSQL tables are checked for every run, metric,
model version and the ``champion`` alias. The server and the database are started once for the
session (``team_server`` in conftest.py) and skipped only where PostgreSQL cannot run.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from forecast.pipelines import run_pipeline
from tests.tracking.conftest import QUICK, QUICKSTART, run_at_once

#: the naive baseline's test metrics on ETTh1 rows [2400, 2800) (lookback 24, horizon 24):
#: a property of the data alone, so any store must return exactly these.
NAIVE = {"mae": 1.6644337647725702, "rmse": 2.212842944978077, "mase": 0.7386639489529169}
DECISIONS = {"promoted", "kept_challenger", "baseline_champion"}


@pytest.fixture
def on_server(team_server, monkeypatch):
    """This process tracks to the team server for the test (and forgets it afterwards)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)  # configure sets it: undone
    yield team_server
    mlflow.set_tracking_uri(None)  # the global URI run_pipeline set; the variable is restored


def _rows(backend: str, query: str, *args) -> list[tuple]:
    """Rows of ``query`` on the server's PostgreSQL database (what MLflow really stored)."""
    import psycopg2

    url = backend.removeprefix("postgresql+psycopg2://")
    user, rest = url.split("@", 1)
    host_port, database = rest.split("/", 1)
    host, port = host_port.split(":")
    connection = psycopg2.connect(host=host, port=int(port), user=user, dbname=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, args)
            return cursor.fetchall()
    finally:
        connection.close()


def test_quickstart_pipeline_runs_against_mlflow_server_on_postgres(on_server, tmp_path):
    forecast_path = tmp_path / "quickstart-forecast.csv"
    overrides = [*QUICK, "split.borders=[2000, 2400, 2800]", "experiment=team-quickstart",
                 "register.name=etth1-ot-team", f"forecast.path={forecast_path}"]

    result = run_pipeline(QUICKSTART, overrides=overrides, force=True)

    client = MlflowClient(on_server.url)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["pipeline.name"] == "quickstart" and tags["registry.version"] == "1"
    assert tags["watermark.last_timestamp"] == "2018-06-26 19:00:00"  # the whole file was read
    for name, value in NAIVE.items():
        assert metrics[f"test.naive.{name}"] == pytest.approx(value, rel=1e-9)
        assert result.metrics["baselines"]["naive"][name] == pytest.approx(value, rel=1e-9)
    for name, value in result.metrics["model"].items():
        assert metrics[f"test.model.{name}"] == pytest.approx(value, rel=1e-9)
    assert 0 < metrics["test.model.mae"] < 5  # oil temperature in °C, one epoch of 4 units
    for step in ("validate", "ingest", "train", "evaluate", "register", "forecast"):
        assert metrics[f"step.{step}.seconds"] >= 0
    assert [m.step for m in client.get_metric_history(result.run_id, "loss")] == [1]

    version = client.get_model_version("etth1-ot-team", "1")
    assert version.run_id == result.run_id and version.status == "READY"
    aliases = client.get_registered_model("etth1-ot-team").aliases
    # the first version is backtested beside the baselines too: it or the best baseline serves
    champion = result.promotion["champion_version"]
    assert result.promotion["decision"] in ("promoted", "baseline_champion")
    assert str(aliases["champion"]) == champion
    if result.promotion["decision"] == "baseline_champion":
        assert champion == "2" and str(aliases["challenger"]) == "1"

    # artifacts went through the server to its --artifacts-destination
    assert [a.path for a in client.list_artifacts(result.run_id, "forecast")] == [
        "forecast/quickstart-forecast.csv"]
    stored = list(on_server.artifacts.rglob("quickstart-forecast.csv"))
    assert len(stored) == 1
    assert pd.read_csv(stored[0]).equals(pd.read_csv(forecast_path))
    assert len(pd.read_csv(forecast_path)) == 24

    # ... and the run, its metrics and the version are rows of the PostgreSQL database
    assert _rows(on_server.backend, "SELECT status FROM runs WHERE run_uuid = %s",
                 result.run_id) == [("FINISHED",)]
    stored_mae = _rows(on_server.backend, "SELECT value FROM latest_metrics WHERE run_uuid = %s "
                       "AND key = 'test.naive.mae'", result.run_id)
    assert stored_mae[0][0] == pytest.approx(NAIVE["mae"], rel=1e-9)
    rows = _rows(on_server.backend, "SELECT version, run_id FROM model_versions WHERE name = %s",
                 "etth1-ot-team")  # the model, and a baseline if one became champion
    assert sorted(rows)[0] == (1, result.run_id) and {run for _, run in rows} == {result.run_id}


def test_four_pipeline_runs_at_once_are_all_recorded_on_the_server(team_server, tmp_path,
                                                                   etth1_head):
    processes = run_at_once(4, team_server.url, etth1_head, tmp_path,
                            extra=("experiment=team-concurrent",
                                   "register.name=etth1-ot-concurrent"))

    for process in processes:
        assert process.returncode == 0, process.describe()
    results = [process.result for process in processes]
    run_ids = {result["run_id"] for result in results}
    assert len(run_ids) == 4

    client = MlflowClient(team_server.url)
    experiment = client.get_experiment_by_name("team-concurrent")
    runs = client.search_runs([experiment.experiment_id])
    assert {run.info.run_id for run in runs} == run_ids
    assert [run.info.status for run in runs] == ["FINISHED"] * 4
    maes = []
    for run, result in zip(sorted(runs, key=lambda r: r.info.run_id),
                           sorted(results, key=lambda r: r["run_id"]), strict=True):
        metrics = run.data.metrics
        assert metrics["test.model.mae"] == pytest.approx(result["metrics"]["model"]["mae"],
                                                          rel=1e-9)
        assert metrics["step.forecast.seconds"] >= 0 and metrics["step.register.seconds"] > 0
        assert run.data.tags["registry.version"] == result["version"]
        maes.append(metrics["test.model.mae"])
    # same data, seed and deterministic ops: four identical models, four identical records
    assert maes == pytest.approx([maes[0]] * 4, rel=1e-6)

    every = client.search_model_versions("name = 'etth1-ot-concurrent'")
    # each run's model; promotion may also register a baseline from a run (another kind)
    versions = [v for v in every if v.tags.get("forecast.kind") == "network"]
    assert len(versions) == 4 and {v.run_id for v in versions} == run_ids  # none lost
    assert {result["version"] for result in results} == {str(v.version) for v in versions}
    assert {result["promotion"]["decision"] for result in results} <= DECISIONS
    champion = client.get_registered_model("etth1-ot-concurrent").aliases["champion"]
    assert str(champion) in {str(v.version) for v in every}

    forecasts = [pd.read_csv(tmp_path / f"forecast-{index}.csv") for index in range(4)]
    assert [len(frame) for frame in forecasts] == [24] * 4
    assert list(forecasts[0].columns) == ["date", "OT", "OT_lo_80", "OT_hi_80", "OT_lo_95",
                                          "OT_hi_95"]  # the quickstart's evaluate.intervals
    assert forecasts[0]["date"].iloc[0] == "2016-08-20 00:00:00"  # the hour after row 1,200
    for frame in forecasts[1:]:
        pd.testing.assert_frame_equal(frame, forecasts[0], rtol=1e-6)
