"""Tests of forecast/tracking/mlflow.py and run.py on a real temporary SQLite MLflow store."""

import json
import re
from datetime import datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import forecast
from forecast.cli import main
from forecast.data import load_csv
from forecast.errors import ModelError
from forecast.tracking import mlflow as tracking
from forecast.tracking.run import (
    backtest_tracked,
    comparison_table,
    headline,
    train_tracked,
)

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


def test_tracked_run_logs_everything_and_serves_the_champion(synthetic_csv, tmp_path, capsys):
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
    assert {"config.yaml", "comparison.json"} <= {
        a.path for a in client.list_artifacts(result.run_id)}
    # what the MLflow UI shows: a name that says what ran, the verdict as the description, the
    # headline metrics as columns, the comparison table, a model-training experiment
    assert re.fullmatch(r"lstm-y-h6-\d{4}-\d{4}", run.info.run_name)
    report = result.report.metrics
    best = min(report["baselines"], key=lambda name: report["baselines"][name]["mae"])
    best_mae, model_mae = report["baselines"][best]["mae"], report["model"]["mae"]
    assert tags["forecast.best_baseline"] == best
    note = tags["mlflow.note.content"]
    word = "better" if model_mae < best_mae else "worse"
    assert note.startswith(f"MAE {model_mae:.4g} vs {best} {best_mae:.4g}: "
                           f"{abs(1 - model_mae / best_mae) * 100:.1f} % {word}")
    assert metrics["test_mae"] == pytest.approx(model_mae, rel=1e-3)
    assert metrics["best_baseline_mae"] == pytest.approx(best_mae, rel=1e-3)
    assert metrics["skill_vs_best_baseline"] == pytest.approx(1 - model_mae / best_mae,
                                                              rel=1e-3, abs=1e-4)
    assert metrics["test_mase"] == pytest.approx(report["model"]["mase"], rel=1e-3)
    assert metrics["test.model.mae"] == model_mae  # the full-precision metrics stay
    table = mlflow.load_table("comparison.json", run_ids=[result.run_id])
    assert list(table.columns[:3]) == ["forecaster", "horizon_step", "mae"]
    overall = table[table.horizon_step == "all"].set_index("forecaster")
    assert list(overall.index) == ["model", "naive", "seasonal_naive", "linear"]
    assert overall.loc[best, "mae"] == pytest.approx(float(f"{best_mae:.4g}"), rel=1e-12)
    per_step = table[table.horizon_step != "all"]
    assert len(per_step) == 4 * 6  # every forecaster at each of the 6 steps
    assert per_step[per_step.forecaster == "model"].mae.tolist() == pytest.approx(
        [float(f"{v:.4g}") for v in result.report.per_step["mae"]], rel=1e-12)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
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
    # `forecast predict --plot` draws that forecast after the recent history
    recent = tmp_path / "recent.csv"
    raw.to_csv(recent, index=False)
    for plot, code in ((tmp_path / "future.txt", 2), (tmp_path / "plots" / "future.png", 0)):
        with pytest.raises(SystemExit) as exit_info:
            main(["predict", "--model", "models:/synthetic@champion", "--csv", str(recent),
                  "--plot", str(plot)])
        assert exit_info.value.code == code, capsys.readouterr().err
    assert "drew the forecast in" in capsys.readouterr().out
    assert (tmp_path / "plots" / "future.png").read_bytes()[:4] == b"\x89PNG"


def test_headline_verdict_and_comparison_table():
    metrics = {"model": {"mae": 1.2441, "rmse": 2.0, "mase": 0.81234},
               "baselines": {"naive": {"mae": 2.0, "mase": 1.3},
                             "linear": {"mae": 1.2789, "mase": 0.8351}}}
    summary = headline(metrics)
    assert summary["verdict"] == "MAE 1.244 vs linear 1.279: 2.7 % better"
    assert summary["best_baseline"] == "linear"
    assert summary["metrics"]["skill_vs_best_baseline"] == pytest.approx(1 - 1.2441 / 1.2789)
    assert summary["metrics"]["best_baseline_mase"] == 0.8351
    worse = headline({"model": {"mae": 2.2}, "baselines": {"naive": {"mae": 2.0}}})
    assert worse["verdict"] == "MAE 2.2 vs naive 2: 10.0 % worse"
    assert headline({"model": {"mae": 1.0}, "baselines": {}})["best_baseline"] is None
    table = comparison_table(metrics, {"model": {"mae": [1.0, 1.48888]},
                                       "linear": {"mae": [1.1, 1.5]}})
    assert table.to_dict("records")[0] == {"forecaster": "model", "horizon_step": "all",
                                           "mae": 1.244, "rmse": 2.0, "mape": None,
                                           "smape": None, "mase": 0.8123}
    assert table[["forecaster", "horizon_step"]].values.tolist() == [
        ["model", "all"], ["naive", "all"], ["linear", "all"],
        ["model", "1"], ["linear", "1"], ["model", "2"], ["linear", "2"]]
    assert table.mae.tolist()[-2:] == [1.489, 1.5]


def test_run_names_and_ui_links():
    when = datetime(2026, 11, 30, 9, 7)
    assert tracking.run_label("lstm", "OT", "h24", when=when) == "lstm-OT-h24-1130-0907"
    assert tracking.run_label("pipeline", "night ly", None, "", "gru", when=when) == \
        "pipeline-night_ly-gru-1130-0907"
    assert tracking.ui_url("http://127.0.0.1:5000/", "3", "abc") == (
        "http://127.0.0.1:5000/#/experiments/3/runs/abc?workflowType=machine_learning")
    assert tracking.ui_url("http://127.0.0.1:5000", "3") == (
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"
        "&viewStateShareKey=forecast")


def test_existing_experiments_become_model_training_ones():
    tracking.use_store()
    kept = mlflow.create_experiment("chosen", tags={tracking.EXPERIMENT_KIND_TAG:
                                                    "genai_development"})
    bare = mlflow.create_experiment("bare")
    assert tracking.configure("bare") == bare
    assert tracking.configure("chosen") == kept
    assert tracking.configure("fresh")
    client = MlflowClient()
    kinds = {name: client.get_experiment_by_name(name).tags.get(tracking.EXPERIMENT_KIND_TAG)
             for name in ("bare", "chosen", "fresh")}
    assert kinds == {"bare": "custom_model_development", "chosen": "genai_development",
                     "fresh": "custom_model_development"}
    view = json.loads(client.get_experiment(bare).tags["mlflow.sharedViewState.forecast"])
    assert view["selectedColumns"][:2] == ["metrics.`test_mae`", "metrics.`test_mase`"]


def test_backtest_logs_a_parent_run_with_a_nested_run_per_fold(synthetic_csv):
    frame = load_csv(synthetic_csv, targets=["y"])
    config = {"horizon": 6, "lookback": 24, "model": {"units": 4},
              "train": {"epochs": 1, "verbose": 0, "seed": 1}}
    report = backtest_tracked(frame, config, folds=2, fold_size=24, experiment="bt",
                              source=str(synthetic_csv))
    client = MlflowClient()
    parent = client.get_run(report["mlflow"]["run_id"])
    assert parent.info.status == "FINISHED"
    assert re.fullmatch(r"backtest-lstm-y-h6-\d{4}-\d{4}", parent.info.run_name)
    assert parent.data.params["backtest.folds"] == "2"
    assert parent.data.params["config.lookback"] == "24"
    metrics = parent.data.metrics
    assert metrics["backtest.model.mae"] == report["model"]["mae"]
    assert metrics["test_mae"] == pytest.approx(report["model"]["mae"], rel=1e-3)
    assert "best_baseline_mae" in metrics and "skill_vs_best_baseline" in metrics
    assert parent.data.tags["mlflow.note.content"].startswith("MAE ")
    children = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["attributes.run_name"])
    assert [c.info.run_name for c in children] == ["fold-0", "fold-1"]
    assert sorted(report["mlflow"]["fold_run_ids"]) == sorted(c.info.run_id for c in children)
    for child, fold in zip(children, report["folds"], strict=True):
        assert child.info.status == "FINISHED"
        assert child.data.params["origin"] == fold["origin"]
        assert child.data.params["test_rows"] == "24"
        assert child.data.metrics["model.mae"] == fold["model"]["mae"]
        assert child.data.metrics["linear.mae"] == fold["linear"]["mae"]
        assert child.data.metrics["test_mae"] == pytest.approx(fold["model"]["mae"], rel=1e-3)
    table = mlflow.load_table("comparison.json", run_ids=[parent.info.run_id])
    assert table[table.forecaster == "model"].fold.tolist() == ["0", "1", "mean"]
