"""Concurrent runs on the default SQLite store: all succeed, or fail clearly; never a broken store.

Four quickstart pipeline runs start at once as processes on a brand-new SQLite file (the case
where MLflow's table creation and migrations used to race). Each must either finish or stop
with the ``TrackingStoreError`` that says to use a tracking server; afterwards the file passes
SQLite's integrity check, opens in MLflow, and holds every run that reported success, FINISHED,
with its metrics and model version. The unit tests below check the error translation and the
store-opening guard without training anything.
"""

from __future__ import annotations

import os
import sqlite3

import pytest
import sqlalchemy.exc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecast.errors import ForecastError, TrackingStoreError
from forecast.tracking import mlflow as tracking
from tests.tracking.conftest import run_at_once

CLEAR_ERROR = "Use a tracking server for concurrent runs"


def test_four_pipeline_runs_at_once_on_a_new_sqlite_store(tmp_path, etth1_head):
    database = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{database}"

    processes = run_at_once(4, uri, etth1_head, tmp_path)

    succeeded = [p for p in processes if p.returncode == 0]
    for process in processes:
        if process.returncode != 0:  # the only acceptable failure: the clear one, exit code 2
            assert process.returncode == 2 and CLEAR_ERROR in process.stderr, process.describe()
            assert uri in process.stderr and "mlflow server" in process.stderr
    assert succeeded, "no run finished: " + "\n".join(p.describe() for p in processes)

    with sqlite3.connect(database) as connection:  # never a corrupt store
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    client = MlflowClient(uri)  # opens: the schema is complete and current
    experiment = client.get_experiment_by_name("forecast")
    runs = {run.info.run_id: run for run in client.search_runs([experiment.experiment_id])}
    results = [process.result for process in succeeded]
    finished = {run_id for run_id, run in runs.items() if run.info.status == "FINISHED"}
    assert finished == {result["run_id"] for result in results}
    every = client.search_model_versions("name = 'etth1-ot'")
    # each run's model (a baseline that promotion registered from the run is another kind)
    versions = {v.run_id: v for v in every if v.tags.get("forecast.kind") == "network"}
    maes = []
    for result in results:
        metrics = runs[result["run_id"]].data.metrics
        assert metrics["test.model.mae"] == pytest.approx(result["metrics"]["model"]["mae"],
                                                          rel=1e-9)
        assert metrics["step.forecast.seconds"] >= 0
        assert str(versions[result["run_id"]].version) == result["version"]
        maes.append(metrics["test.model.mae"])
    assert maes == pytest.approx([maes[0]] * len(maes), rel=1e-6)  # same seed, same model
    registered = client.get_registered_model("etth1-ot")
    assert str(registered.aliases["champion"]) in {str(v.version) for v in every}
    assert len(succeeded) == 4, "\n".join(p.describe() for p in processes if p.returncode)


def test_sqlite_path_reads_only_sqlite_files(tmp_path):
    assert tracking.sqlite_path(f"sqlite:///{tmp_path}/m.db") == tmp_path / "m.db"
    assert tracking.sqlite_path("sqlite:///relative/m.db?mode=ro").as_posix() == "relative/m.db"
    assert tracking.sqlite_path("sqlite:///:memory:") is None
    assert tracking.sqlite_path("http://127.0.0.1:5000") is None
    assert tracking.sqlite_path("postgresql+psycopg2://mlflow@127.0.0.1:5432/mlflow") is None


def _locked_error() -> MlflowException:
    """What MLflow raises when SQLite stays busy past its timeout (the DBAPI error as cause)."""
    cause = sqlalchemy.exc.OperationalError(
        "INSERT INTO metrics ...", {}, sqlite3.OperationalError("database is locked"))
    error = MlflowException(f"(sqlite3.OperationalError) {cause.orig}",
                            error_code="TEMPORARILY_UNAVAILABLE")
    error.__cause__ = cause
    return error


def test_a_locked_sqlite_store_becomes_a_clear_tracking_store_error(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(TrackingStoreError) as caught, tracking.store_errors(uri):
        raise _locked_error()
    message = str(caught.value)
    assert isinstance(caught.value, ForecastError)
    assert message.startswith(f"the MLflow tracking store {uri} is a SQLite file")
    assert CLEAR_ERROR in message and "`mlflow server --backend-store-uri" in message
    assert "(sqlite3.OperationalError) database is locked" in message  # what SQLite said

    # the cause alone is enough (MLflow's message may be generic) ...
    hidden = MlflowException("the store is unavailable", error_code="TEMPORARILY_UNAVAILABLE")
    hidden.__cause__ = sqlite3.OperationalError("database is locked")
    with pytest.raises(TrackingStoreError), tracking.store_errors(uri):
        raise hidden
    # ... while other errors, and any error of a server store, pass through unchanged
    with pytest.raises(MlflowException, match="no such run"), tracking.store_errors(uri):
        raise MlflowException("no such run")
    with pytest.raises(MlflowException, match="locked"), tracking.store_errors(
            "http://127.0.0.1:5000"):
        raise _locked_error()


def test_tracked_run_reports_a_locked_store_and_marks_the_run_failed():
    with pytest.raises(TrackingStoreError), tracking.tracked_run("locked", experiment="busy"):
        raise _locked_error()
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("busy").experiment_id])
    assert [run.info.status for run in runs] == ["FAILED"]
    assert runs[0].data.tags["error.type"] == "TrackingStoreError"
    assert CLEAR_ERROR in runs[0].data.tags["error"]


def test_sqlite_stores_are_opened_under_a_file_lock(tmp_path):
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    assert tracking.guard_sqlite_stores() is True and tracking.guard_sqlite_stores() is True
    for registry in (tracking_utils._tracking_store_registry,
                     registry_utils._get_store_registry()):
        builder = registry.get_store_builder("sqlite:///x.db")
        assert builder._forecast_locked and not hasattr(builder.__wrapped__, "__wrapped__")

    from filelock import FileLock

    uri = f"sqlite:///{tmp_path}/fresh.db"
    with FileLock(f"{tmp_path}/fresh.db.lock"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracking, "SQLITE_INIT_TIMEOUT", 0.2)
        with pytest.raises(TrackingStoreError, match="waited 0 s for .*fresh.db.lock"):
            MlflowClient(uri).search_experiments()  # another process is initialising it
    assert not (tmp_path / "fresh.db").exists()
    assert [e.name for e in MlflowClient(uri).search_experiments()] == ["Default"]


def test_telemetry_is_switched_off_only_for_servers_and_only_when_unset(monkeypatch):
    import mlflow.telemetry.client as telemetry

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    assert tracking.quiet_telemetry("sqlite:////tmp/mlflow.db") is False
    assert "MLFLOW_DISABLE_TELEMETRY" not in os.environ
    assert tracking.quiet_telemetry("http://127.0.0.1:5000") is True
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert telemetry.get_telemetry_client() is None
    assert "_MLFLOW_TELEMETRY_SESSION_ID" not in os.environ  # nothing left for a thread to pop
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")  # the user's choice stands
    assert tracking.quiet_telemetry("https://mlflow.example.com") is False
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"
