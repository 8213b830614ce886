"""A global model (issue 15) tracked in MLflow, backtested, registered behind the baseline gate
and run from a pipeline YAML. Tiny models (4 units, 1 epoch) on three short hourly series."""

import json
import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from forecast.data import WindowSpec, load_csv
from forecast.evaluation.backtest import global_folds
from forecast.forecaster import Forecaster
from tests.test_global import _long_csv as _three_series
from tests.test_global import _run

# a global network that loses to the baselines (not blended with the linear one), to test the
# per-series tables and the baseline gate
TRAIN = ["--target", "y", "--horizon", "6", "--lookback", "24", "--setup", "many_to_one",
         "--units", "4", "--epochs", "1", "--seed", "3", "--no-blend-linear"]


def _long_csv(folder, name="long.csv"):
    """The three hourly series of ``tests/test_global.py`` (lengths 300/240/360, levels
    10/100/1000), written to ``folder / name``."""
    return _three_series(folder).rename(folder / name)


def _artifacts(run_id, path=""):
    client = MlflowClient()
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(run_id, item.path) if item.is_dir else [item.path]
    return found


def test_tracked_train_logs_the_per_series_table_worst_series_and_plots(tmp_path, capsys):
    path = _long_csv(tmp_path)
    code, out, err = _run(["train", str(path), "--id-col", "store", *TRAIN,
                           "--experiment", "global", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    run = MlflowClient().get_run(result["mlflow"]["run_id"])
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("lstm-y-h6-3series-")
    assert params["data.id_col"] == "store" and params["config.n_series"] == "3"
    # pooled metrics beside the baselines, as for one series
    assert metrics["test.model.mase"] == pytest.approx(result["model"]["mase"])
    assert metrics["test.linear.mase"] == pytest.approx(0.71266, rel=1e-3)  # deterministic fit
    assert metrics["test.seasonal_naive.mase"] == pytest.approx(1.0201, rel=1e-3)
    assert tags["forecast.best_baseline"] == "linear" and tags["forecast.global"] == "true"
    # the per-series table: every series, its rows and windows, beside its best baseline
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                artifact_path="per_series.csv",
                                                dst_path=str(tmp_path / "dl"))
    table = pd.read_csv(local).set_index("series")
    assert table["rows"].to_dict() == {"A": 300, "B": 240, "C": 360}
    assert table["windows"].to_dict() == {"A": 55, "B": 43, "C": 67}
    assert set(table["best_baseline"]) == {"linear"}
    assert table.loc["C", "best_baseline_mase"] == pytest.approx(0.59365, rel=1e-3)
    assert table["mase"].idxmax() == result["worst_series"] == tags["forecast.worst_series"]
    assert metrics["test.worst_series.mase"] == pytest.approx(table["mase"].max(), rel=1e-4)
    assert metrics["test.series_count"] == 3
    assert metrics["test.series_beating_best_baseline"] == int(
        (table["mase"] < table["best_baseline_mase"]).sum())
    files = _artifacts(run.info.run_id)
    assert {"per_series.csv", "per_series.json", "comparison.json",
            "plots/forecast_vs_actual.png", "plots/series_best_median_worst.png",
            "plots/error_by_step.png"} <= set(files)


def test_global_folds_cut_every_series_at_the_same_rows_from_its_end(tmp_path):
    frame = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    spec = WindowSpec(24, 6, ("y",))
    folds, settings, skipped = global_folds(frame, spec, folds=2)
    assert settings["fold_size"] == 30 and settings["series"] == 3 and skipped == {}
    for k, fold in enumerate(folds):
        for key, n in (("A", 300), ("B", 240), ("C", 360)):
            times = frame.xs(key).index
            origin = n - (2 - k) * 30 - 1  # the last row before the fold's first forecast
            assert fold.ranges[key]["origin"] == times[origin]
            assert fold.ranges[key]["test_end"] == times[origin + 30]
            test = fold.test.xs(key)
            assert len(test) == 24 + 30 and test.index[23] == times[origin]
            # the fit part ends before the test rows; validation is its last tenth
            n_val = int(round((origin + 1) * 0.1))
            assert fold.train.xs(key).index[-1] == times[origin - n_val]
            assert fold.val.xs(key).index[-1] == times[origin]
    # a series too short for the folds is left out; none long enough is an error
    _, _, skipped = global_folds(frame, spec, folds=2, fold_size=120)
    assert skipped == {"B": 240}


def test_backtest_id_col_scores_one_model_per_fold_beside_the_baselines(tmp_path, capsys):
    path = _long_csv(tmp_path)
    code, out, err = _run(["backtest", str(path), "--id-col", "store", *TRAIN, "--folds", "2",
                           "--no-track", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["settings"]["series"] == 3 and report["settings"]["fold_size"] == 30
    assert [f["n_windows"] for f in report["folds"]] == [75, 75]  # 3 series x (30 - 6 + 1)
    # the latest origin over the series: A's (it ends last, 2024-01-13 11:00), 60 and 30 h
    # before its end
    assert [f["origin"] for f in report["folds"]] == ["2024-01-10 23:00:00",
                                                      "2024-01-12 05:00:00"]
    # the baselines are fitted inside each fold on its training rows: deterministic numbers
    assert report["baselines"]["seasonal_naive"]["mase"] == pytest.approx(1.00645, rel=1e-3)
    assert report["baselines"]["linear"]["mase"] == pytest.approx(0.70950, rel=1e-3)
    assert np.isfinite(report["model"]["mase"]) and report["model"]["mase"] > 0.70950
    per_series = {row["series"]: row for row in report["per_series"]}
    assert {k: v["windows"] for k, v in per_series.items()} == {"A": 50, "B": 50, "C": 50}
    assert per_series["B"]["baselines"]["linear"]["mase"] == pytest.approx(0.73670, rel=1e-3)
    assert report["worst_series"] == report["per_series"][0]["series"]
    # tracked: a parent run with the per-series table, one nested run per fold
    code, out, err = _run(["backtest", str(path), "--id-col", "store", *TRAIN, "--folds", "2",
                           "--experiment", "global-bt"], capsys)
    assert code == 0, err
    assert "per series (3 series)" in out
    parent = mlflow.search_runs(experiment_names=["global-bt"],
                                filter_string="tags.`forecast.command` = 'backtest'")
    top = parent[parent["tags.mlflow.parentRunId"].isna()].iloc[0]
    assert top["metrics.backtest.series_count"] == 3
    assert top["tags.forecast.worst_series"] in {"A", "B", "C"}
    assert "per_series.csv" in _artifacts(top["run_id"])
    assert len(parent) == 3  # the parent and two folds


def test_as_baseline_of_a_global_model_forecasts_each_series_and_round_trips(tmp_path):
    frame = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    forecaster = Forecaster({"horizon": 6, "lookback": 24, "setup": "many_to_one",
                             "model": {"units": 4},
                             "train": {"epochs": 1, "seed": 3, "verbose": 0}}).fit(frame)
    history = frame.groupby(level=0).tail(48)
    for name in ("naive", "seasonal_naive", "linear"):
        baseline = forecaster.as_baseline(name)
        assert baseline.is_global and baseline.kind == name
        forecast = baseline.predict(history)
        assert list(forecast.columns) == ["store", "time", "y"] and len(forecast) == 18
        for key in ("A", "B", "C"):
            mine = forecast[forecast.store == key].y.to_numpy()
            past = history.xs(key).y.to_numpy()
            if name == "naive":  # the last value of the series' own history
                np.testing.assert_allclose(mine, past[-1], rtol=1e-6)
            elif name == "seasonal_naive":  # the same hours one season (24 h) before
                np.testing.assert_allclose(mine, past[-24:-18], rtol=1e-6)
        baseline.save(tmp_path / name)
        again = Forecaster.load(tmp_path / name)
        assert again.kind == name and again.is_global
        pd.testing.assert_frame_equal(again.predict(history), forecast)


def test_register_twice_crowns_the_baseline_that_beats_a_global_model(tmp_path, capsys):
    path = _long_csv(tmp_path)
    args = ["train", str(path), "--id-col", "store", *TRAIN, "--experiment", "global",
            "--register", "stores", "--promote-folds", "2", "--json"]
    code, out, err = _run(args, capsys)
    assert code == 0, err
    first = json.loads(out)["mlflow"]["promotion"]
    assert first["version"] == "1" and first["decision"] == "baseline_champion"
    assert first["champion_kind"] == "linear" and first["champion_version"] == "2"
    assert first["baselines"]["linear"] == pytest.approx(0.70950, rel=1e-3)
    # one line; the network's word follows the setup the global defaults chose
    assert re.fullmatch(
        r"linear beats the (segment )?LSTM on the backtest \(MASE 0\.7095 vs [0-9.]+, the "
        r"(segment )?LSTM \+[0-9.]+%\): champion is the linear baseline \(version 2\); the "
        r"(segment )?LSTM is version 1, alias challenger\.", first["reason"]), first["reason"]
    # the champion: the linear baseline, served in long format for every series
    model = mlflow.pyfunc.load_model("models:/stores@champion")
    history = pd.read_csv(path).groupby("store").tail(48)
    forecast = model.predict(history)
    assert len(forecast) == 18 and set(forecast["store"]) == {"A", "B", "C"}
    client = MlflowClient()
    assert client.get_model_version("stores", "2").tags["forecast.kind"] == "linear"

    # a second version that loses too: the baseline champion stays
    code, out, err = _run(args[:-1], capsys)
    assert code == 0, err
    assert re.search(r"registered stores version 3: linear beats the (segment )?LSTM on the "
                     r"backtest \(MASE 0\.7095 vs [0-9.]+\), but the champion \(version 2, "
                     r"the linear baseline\) 0\.7095 is at least as good: version 2 stays "
                     r"champion", out), out
    assert str(client.get_model_version_by_alias("stores", "champion").version) == "2"


def test_a_pipeline_with_data_id_col_trains_tracks_registers_and_forecasts(tmp_path):
    from forecast.pipelines import run_pipeline

    (tmp_path / "data").mkdir()
    _long_csv(tmp_path / "data", "stores.csv")
    path = tmp_path / "stores.yaml"
    path.write_text("\n".join([
        "name: stores",
        "data: {path: data/stores.csv, time_col: time, id_col: store, targets: [y]}",
        "window: {lookback: 24, horizon: 6}",
        "model: {units: 4}",
        "train: {epochs: 1, verbose: 0, seed: 3, blend_linear: false}",
        "evaluate: {metrics: [mae, mase], backtest_folds: 2}",
        "register: {name: stores-pipe, promotion_folds: 2, promotion_epochs: 1}",
        "forecast: {path: out/forecast.csv}"]) + "\n")
    result = run_pipeline(path)
    assert result.version == "1" and result.promotion["decision"] == "baseline_champion"
    run = MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["data.id_col"] == "store"
    assert run.data.metrics["backtest.series_count"] == 3
    assert {"per_series.csv", "backtest.json"} <= set(_artifacts(result.run_id))
    # the champion (a baseline) forecasts every series, long format
    forecast = pd.read_csv(tmp_path / "out" / "forecast.csv")
    assert list(forecast.columns) == ["store", "time", "y"] and len(forecast) == 18
    assert forecast.groupby("store").size().to_dict() == {"A": 6, "B": 6, "C": 6}
    assert forecast.time.iloc[0] == "2024-01-13 12:00:00"  # A ends at 11:00: its next hour


@pytest.mark.parametrize("extra, words", [
    (["train", "--interval", "0.9", "--val", "0", "--no-track"], "--val"),
    (["backtest", "--folds", "40", "--no-track"], "--folds"),
    (["backtest", "--fold-size", "3", "--no-track"], "--fold-size"),
])
def test_bad_global_input_exits_2_with_one_line(tmp_path, capsys, extra, words):
    path = _long_csv(tmp_path)
    code, out, err = _run([extra[0], str(path), "--id-col", "store", *TRAIN, *extra[1:]], capsys)
    assert code == 2 and words in err and "Traceback" not in err


def test_evaluate_needs_the_id_col_of_a_global_model(tmp_path, capsys):
    path = _long_csv(tmp_path)
    code, _, err = _run(["train", str(path), "--id-col", "store", *TRAIN, "--no-track",
                         "--save", str(tmp_path / "model")], capsys)
    assert code == 0, err
    code, _, err = _run(["evaluate", "--model", str(tmp_path / "model"), "--csv", str(path)],
                        capsys)
    assert code == 2 and "--id-col" in err and "Traceback" not in err
    code, out, err = _run(["evaluate", "--model", str(tmp_path / "model"), "--csv", str(path),
                           "--id-col", "store", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert {row["series"] for row in result["per_series"]} == {"A", "B", "C"}
    assert result["baselines"]["linear"]["mase"] > 0
