"""Tests of mlflow/MLproject: its entry points as MLflow reads them, and a real `mlflow run`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipelines.conftest import tiny_pipeline, write_pipeline

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "mlflow"
BIN = Path(sys.executable).parent


def test_mlproject_entry_points_and_parameter_types():
    from mlflow.projects._project_spec import load_project

    project = load_project(str(PROJECT))
    assert project.name == "forecast"
    assert project.env_type == "python_env"
    assert Path(project.env_config_path).name == "python_env.yaml"
    assert not (PROJECT / "__init__.py").exists()  # never shadows the real mlflow library
    types = {name: {key: p.type for key, p in project.get_entry_point(name).parameters.items()}
             for name in ("pipeline", "train", "tune", "backtest")}
    assert types["pipeline"] == {"pipeline": "path", "force": "string", "set": "string"}
    for name in ("train", "tune", "backtest"):
        assert types[name]["csv"] == "path" and types[name]["target"] == "string"
        assert types[name]["horizon"] == "float"
    assert types["tune"]["trials"] == "float" and types["tune"]["timeout"] == "float"
    assert types["train"]["units"] == "float" and types["backtest"]["folds"] == "float"
    # required parameters have no default; optional ones are "" (forecast's default applies)
    train = project.get_entry_point("train").parameters
    assert train["csv"].default is None and train["target"].default is None
    assert train["units"].default == "" and train["epochs"].default == ""

    command = project.get_entry_point("tune").compute_command(
        {"csv": str(ROOT / "datasets" / "ETTh1.csv"), "target": "OT", "horizon": "24",
         "trials": "3"}, storage_dir=None)
    assert f"forecast tune {ROOT / 'datasets' / 'ETTh1.csv'} --target OT" in command
    assert 'TRIALS=3' in command and "${TIMEOUT:+--timeout \"$TIMEOUT\"}" in command
    # a value is shell-quoted: it cannot run code
    command = project.get_entry_point("pipeline").compute_command(
        {"pipeline": "p.yaml", "set": "x=1; rm -rf /"}, storage_dir=None)
    assert "SET='x=1; rm -rf /'" in command


def test_mlflow_run_pipeline_entry_point_trains_into_its_run(tmp_path):
    import mlflow

    pipeline = write_pipeline(tmp_path, tiny_pipeline("tiny-mlproject"))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        env.pop(name, None)  # an earlier test's run must not steer `mlflow run`
    uri = env["MLFLOW_TRACKING_URI"]  # the test's own store (tests/conftest.py)
    assert str(tmp_path) in uri
    # an experiment of our own: MLflow's Default one keeps artifacts in ./mlruns of the folder
    # that created the store, which would be the project root
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    client.create_experiment("mlproject", artifact_location=(tmp_path / "artifacts").as_uri())
    # the documented command, from the project root, with the pipeline path relative to it
    relative = os.path.relpath(pipeline, ROOT)
    done = subprocess.run(
        [str(BIN / "mlflow"), "run", "mlflow", "-e", "pipeline", "-P", f"pipeline={relative}",
         "--env-manager", "local", "--experiment-name", "mlproject"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.entryPoint"] == "pipeline"
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert client.get_experiment(run.info.experiment_id).name == "mlproject"
    assert run.data.params["pipeline"] == relative  # as given; the command got it absolute
    # forecast trained into the project's run: its settings, metrics and model are there
    assert run.data.params["config.train.epochs"] == "1"
    assert run.data.params["config.model.units"] == "4"
    assert "best_baseline_mae" in run.data.metrics and "step.train.seconds" in run.data.metrics
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [m.source_run_id for m in models] == [run.info.run_id]
    assert str(tmp_path / "artifacts") in models[0].artifact_location
    assert (tmp_path / "out" / "forecast.csv").is_file()


@pytest.mark.parametrize("name", ["MLproject", "python_env.yaml", "README.md"])
def test_project_files_are_tracked_by_git(name):
    """The mlflow/ folder is the local store (git-ignored parts) and the project's files."""
    done = subprocess.run(["git", "check-ignore", "-q", f"mlflow/{name}"], cwd=ROOT,
                          capture_output=True)
    assert done.returncode == 1  # not ignored
