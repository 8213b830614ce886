"""One global model over a long-format file of several series (issue 15)."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from forecast.cli import main
from forecast.data import WindowSpec, load_csv
from forecast.errors import DataError
from forecast.forecaster import Forecaster, forecaster_files
from forecast.workflow import train_and_evaluate

CONFIG = {"horizon": 6, "lookback": 24, "model": {"units": 4},
          "train": {"epochs": 2, "seed": 3, "verbose": 0}}


def _long_csv(tmp_path, *, short: bool = False):
    """Three hourly series of different lengths, start dates and levels (10, 100, 1000),
    plus, with ``short``, a series too short for one training window."""
    rng = np.random.default_rng(0)
    rows = []
    layout = [("A", "2024-01-01", 300, 10.0), ("B", "2024-01-03 05:00", 240, 100.0),
              ("C", "2023-12-20", 360, 1000.0)]
    if short:
        layout.append(("D", "2024-01-02", 30, 50.0))
    for key, start, n, level in layout:
        t = np.arange(n)
        values = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24)) + rng.normal(0, level / 50, n)
        for when, value in zip(pd.date_range(start, periods=n, freq="h"), values, strict=True):
            rows.append((key, when, value))
    path = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=["store", "time", "y"]).to_csv(path, index=False)
    return path


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_windows_never_cross_series(tmp_path):
    frame = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    spec = WindowSpec(24, 6, ("y",))
    starts, series = spec.window_starts(frame), spec.window_series(frame)
    ids = frame.index.get_level_values(0).astype(str)
    assert len(starts) == (300 - 29) + (240 - 29) + (360 - 29)
    # the first and the last row of every window belong to the window's own series
    assert (ids[starts] == series).all() and (ids[starts + 29] == series).all()
    assert list(dict.fromkeys(series)) == ["A", "B", "C"]


def test_cli_trains_one_model_with_a_per_series_table(tmp_path, capsys, caplog):
    path = _long_csv(tmp_path, short=True)
    with caplog.at_level(logging.WARNING):
        code, out, err = _run(
            ["train", str(path), "--id-col", "store", "--target", "y", "--horizon", "6",
             "--lookback", "24", "--units", "4", "--epochs", "2", "--seed", "3", "--no-track",
             "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["settings"]["n_series"] == 3  # D was left out
    assert result["skipped_series"] == {"D": 21}  # 30 rows - 3 val - 6 test
    assert any("'D' (21 rows)" in r.getMessage() for r in caplog.records)
    per_series = {row["series"]: row for row in result["per_series"]}
    assert set(per_series) == {"A", "B", "C"}
    assert result["worst_series"] == result["per_series"][0]["series"]
    # test windows: 20% of each series, minus horizon - 1
    assert {k: v["windows"] for k, v in per_series.items()} == {"A": 55, "B": 43, "C": 67}
    # per-series scaling: every series' errors are on its own level (MASE of order 1)
    for row in result["per_series"]:
        assert row["best_baseline"] in ("naive", "seasonal_naive", "linear")
        assert 0 < row["baseline"]["mase"] < 2 and np.isfinite(row["model"]["mase"])
    # per-series scaling: relative to its level (10, 100, 1000) every series' error is alike
    relative = [per_series[k]["model"]["mae"] / level
                for k, level in (("A", 10), ("B", 100), ("C", 1000))]
    assert max(relative) < 3 * min(relative), relative
    # the human table
    code, out, err = _run(
        ["train", str(path), "--id-col", "store", "--target", "y", "--horizon", "6",
         "--lookback", "24", "--units", "4", "--epochs", "1", "--no-track"], capsys)
    assert code == 0, err
    assert "per series (3 series)" in out and "skipped (too short): D" in out


def test_cli_global_intervals_scale_with_each_series(tmp_path, capsys):
    """Conformal intervals of a global model: one calibration over every series' validation
    windows in scaled units, each series' band its own scale (levels 10, 100, 1000)."""
    path = _long_csv(tmp_path)
    folder = tmp_path / "model"
    code, out, err = _run(
        ["train", str(path), "--id-col", "store", "--target", "y", "--horizon", "6",
         "--lookback", "24", "--units", "4", "--epochs", "2", "--seed", "3", "--no-track",
         "--interval", "0.8", "--interval", "0.95", "--save", str(folder), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    intervals = result["intervals"]
    # each series' own coverage: the pooled one is their mean weighted by windows
    rows = result["per_series"]
    for label in ("80", "95"):
        mean = sum(r["model"][f"coverage_{label}"] * r["windows"] for r in rows) / sum(
            r["windows"] for r in rows)
        assert mean == pytest.approx(intervals["model"][label]["coverage"], abs=1e-9)
    # validation windows of the three series: 10 % of each, minus horizon - 1
    assert intervals["n_calibration"] == (30 - 5) + (24 - 5) + (36 - 5)
    assert intervals["levels"] == ["80", "95"]
    for who in [intervals["model"], *intervals["baselines"].values()]:
        # pooled test coverage near the nominal level, wider band at the higher level
        assert 0.6 < who["80"]["coverage"] <= 1 and who["95"]["coverage"] >= who["80"]["coverage"]
        assert 0 < who["80"]["width"] < who["95"]["width"]
    state = json.loads((forecaster_files(folder) / "forecaster.json").read_text())
    assert state["intervals"]["model"]["scaled"] is True
    # each series' scale: the in-sample MAE of its seasonal naive forecast (season 24)
    scales = {key: value[0] for key, value in
              state["intervals"]["model"]["series_scales"].items()}
    rows = pd.read_csv(path)
    for key in "ABC":  # the training part: all but the last 10 % + 20 % of the rows
        y = rows[rows.store == key].y.to_numpy()
        y = y[: len(y) - round(len(y) * 0.1) - round(len(y) * 0.2)]
        assert scales[key] == pytest.approx(np.mean(np.abs(y[24:] - y[:-24])), rel=1e-9)

    history = pd.read_csv(path).groupby("store").tail(48)
    recent = tmp_path / "recent.csv"
    history.to_csv(recent, index=False)
    out_csv = tmp_path / "forecast.csv"
    code, _, err = _run(["predict", "--model", str(folder), "--csv", str(recent),
                         "--out", str(out_csv)], capsys)
    assert code == 0, err
    forecast = pd.read_csv(out_csv)
    assert len(forecast) == 3 * 6
    assert ((forecast.y_lo_95 <= forecast.y_lo_80) & (forecast.y_lo_80 <= forecast.y)
            & (forecast.y <= forecast.y_hi_80) & (forecast.y_hi_80 <= forecast.y_hi_95)).all()
    # the same scaled half-widths times each series' own scale: B's band is 10x A's
    width = (forecast.y_hi_80 - forecast.y_lo_80).groupby(forecast.store).mean()
    np.testing.assert_allclose(width["B"] / width["A"], scales["B"] / scales["A"], rtol=1e-6)
    np.testing.assert_allclose(width["C"] / width["A"], scales["C"] / scales["A"], rtol=1e-6)
    assert 5 < width["B"] / width["A"] < 20 and 50 < width["C"] / width["A"] < 200
    # a series the model never saw (served: instance normalisation allows it): its scale is
    # read off the history sent, 1000x A's values here
    import mlflow.pyfunc

    a = history[history.store == "A"]
    stranger = a.assign(store="Z", y=a.y * 1000 + 5)
    served = mlflow.pyfunc.load_model(str(folder)).predict(pd.concat([history, stranger]))
    z = served[served.store == "Z"]
    sent = a.y.to_numpy() * 1000 + 5
    np.testing.assert_allclose(
        (z.y_hi_80 - z.y_lo_80).mean() / width["A"],
        np.mean(np.abs(sent[24:] - sent[:-24])) / scales["A"], rtol=1e-6)


def test_every_series_too_short_names_the_flags(tmp_path):
    frame = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    with pytest.raises(DataError, match="--lookback"):
        train_and_evaluate(frame, {**CONFIG, "lookback": 300})


def test_fit_skips_a_short_series_and_round_trips(tmp_path, caplog):
    frame = load_csv(_long_csv(tmp_path, short=True), id_col="store", targets=["y"])
    with caplog.at_level(logging.WARNING):
        forecaster = Forecaster({**CONFIG, "lookback": 28}).fit(frame)  # D: 30 < 28 + 6
    assert forecaster.skipped == {"D": 30} and forecaster.ids == ["A", "B", "C", "D"]
    assert any("'D' (30 rows)" in r.getMessage() for r in caplog.records)
    # predict: long format in, long format out, one batch for every series
    history = frame.groupby(level=0).tail(48)
    forecast = forecaster.predict(history)
    assert list(forecast.columns) == ["store", "time", "y"] and len(forecast) == 4 * 6
    first = forecast[forecast.store == "B"].time.iloc[0]
    assert first == frame.xs("B").index[-1] + pd.Timedelta("1h")
    means = forecast.groupby("store").y.mean()  # each series forecast at its own level
    assert 5 < means["A"] < 15 and 50 < means["B"] < 150 and 500 < means["C"] < 1500
    # save and load: the same forecasts
    forecaster.save(tmp_path / "model")
    state = json.loads((forecaster_files(tmp_path / "model") / "forecaster.json").read_text())
    assert state["ids"] == ["A", "B", "C", "D"] and set(state["scaler"]["params"]) == set("ABCD")
    loaded = Forecaster.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.predict(history), forecast)
    test = frame.groupby(level=0).tail(60)
    np.testing.assert_array_equal(loaded.predict_windows(test)[1],
                                  forecaster.predict_windows(test)[1])
    with pytest.raises(DataError, match="'Z'"):
        forecaster.predict(history.rename(index={"A": "Z"}, level=0))


def test_global_models_resolve_their_own_defaults(tmp_path):
    """With an id column the segment setup and the global training defaults are used (chosen
    on M4 Hourly validation); one series keeps the single-series defaults."""
    from forecast.models.global_defaults import GLOBAL_DEFAULTS
    from forecast.options import ForecasterConfig

    frame = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    tiny = {"horizon": 6, "model": {"units": 4}, "train": {"epochs": 1, "seed": 3, "verbose": 0}}
    forecaster = Forecaster(tiny).fit(frame)
    config = forecaster.resolved.config
    assert config.setup == "segment" and config.calendar is False
    assert config.batch_size == GLOBAL_DEFAULTS["batch_size"]
    assert config.model.units == 4  # what the user set is kept
    # the lookback from the frequency: a quarter of the median series (300 rows) = 75,
    # rounded down to whole segments of 6 (the largest divisor of the horizon <= 24)
    assert (config.lookback, config.model.segment_length) == (72, 6)
    assert "rounded down to 72" in forecaster.resolved.lookback_reason
    for key, value in GLOBAL_DEFAULTS["train"].items():
        assert getattr(config.train, key) == value
    for key, value in GLOBAL_DEFAULTS["model"].items():
        if key != "units":
            assert getattr(config.model, key) == value
    # the settings are resolved before training, as check_before_training reads them
    def resolve(config, data=frame):
        probe = Forecaster(config)
        probe._describe(data)
        return probe.config

    # a given lookback is kept; the segment length divides it and the horizon
    given = resolve({**tiny, "lookback": 28})
    assert (given.lookback, given.model.segment_length) == (28, 2)
    # a setup the user gives is kept, the single-series default itself included
    assert resolve({**tiny, "setup": "seq2seq"}).setup == "seq2seq"
    assert resolve({**tiny, "setup": "many_to_one"}).setup == "many_to_one"
    assert resolve({**tiny, "batch_size": 32}).batch_size == 32
    # one series: the single-series defaults, unchanged
    one = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    path = tmp_path / "one.csv"
    one.xs("A").reset_index().to_csv(path, index=False)
    single = resolve(tiny, load_csv(path, time_col="time", targets=["y"]))
    defaults = ForecasterConfig(horizon=6)
    assert (single.setup, single.batch_size, single.calendar) == ("many_to_one", 32, True)
    assert single.lookback == 75  # a quarter of its 300 rows, not rounded to segments
    assert single.train == defaults.train.model_copy(update={"epochs": 1, "seed": 3,
                                                             "verbose": 0})
    assert single.model == defaults.model.model_copy(update={"units": 4})


@pytest.mark.parametrize("flags, setup, units", [
    ([], "segment", 64),  # nothing given: the global defaults
    (["--setup", "many_to_one", "--units", "32"], "many_to_one", 32),  # given = the defaults
])
def test_the_cli_counts_only_the_flags_given(tmp_path, capsys, flags, setup, units):
    path = _long_csv(tmp_path)
    code, out, err = _run(["train", str(path), "--id-col", "store", "--target", "y",
                           "--horizon", "6", "--epochs", "1", "--no-track", "--json", *flags],
                          capsys)
    assert code == 0, err
    settings = json.loads(out)["settings"]
    assert (settings["setup"], settings["model"]["units"]) == (setup, units)
    assert settings["batch_size"] == 128  # not given either way: the global default


def test_a_pipeline_sets_only_the_keys_its_yaml_holds(tmp_path):
    from forecast.pipelines.spec import load_pipeline

    path = tmp_path / "p.yaml"
    base = (f"name: p\ndata: {{path: {_long_csv(tmp_path)}, id_col: store, targets: [y]}}\n"
            "window: {horizon: 6}\n")
    path.write_text(base + "model: {units: 8}\n")
    config = load_pipeline(path).forecaster_config()
    assert "setup" not in config.model_fields_set
    assert config.model.model_fields_set == {"units"} and config.train.model_fields_set == set()
    path.write_text(base + "model: {setup: many_to_one}\ntrain: {batch_size: 32}\n")
    config = load_pipeline(path).forecaster_config()
    assert {"setup", "batch_size"} <= config.model_fields_set


def test_balanced_sampling_caps_the_windows_of_each_series(tmp_path, capsys):
    frame = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    spec = WindowSpec(24, 6, ("y",))
    every = spec.window_starts(frame)
    series = spec.window_series(frame)
    counts = {key: int((series == key).sum()) for key in ("A", "B", "C")}
    assert counts == {"A": 271, "B": 211, "C": 331}
    starts = spec.balanced_starts(frame, 20)
    assert len(starts) == 60  # 20 of each series, whatever its length
    kept = series[np.searchsorted(every, starts)]
    assert {key: int((kept == key).sum()) for key in ("A", "B", "C")} == {
        "A": 20, "B": 20, "C": 20}
    # evenly spaced over each series: its first and last (most recent) windows included
    for key in ("A", "B", "C"):
        own = every[series == key]
        mine = starts[kept == key]
        assert mine[0] == own[0] and mine[-1] == own[-1]
    assert len(spec.balanced_starts(frame, 1000)) == len(every)  # fewer windows: all kept
    # through the CLI: the setting is used (and logged), and a bad value exits 2
    code, out, err = _run(["train", str(_long_csv(tmp_path)), "--id-col", "store", "--target",
                           "y", "--horizon", "6", "--epochs", "1", "--no-track", "--json",
                           "--windows-per-series", "20"], capsys)
    assert code == 0, err
    assert json.loads(out)["settings"]["train"]["windows_per_series"] == 20
    code, _, err = _run(["train", str(_long_csv(tmp_path)), "--id-col", "store", "--target",
                         "y", "--horizon", "6", "--windows-per-series", "0", "--no-track"],
                        capsys)
    assert code == 2 and "windows_per_series" in err and "Traceback" not in err


def test_history_ends_per_series_in_input_order():
    from forecast.forecaster import _history_ends

    # rows of series 0 and 1 interleaved; series 1 ends with two future rows (targets empty),
    # series 2 has no target at all
    codes = np.array([0, 1, 0, 1, 1, 1, 0, 2])
    empty = np.array([False, False, False, False, True, True, False, True])
    order = np.argsort(codes, kind="stable")  # [0, 2, 6, 1, 3, 4, 5, 7]
    bounds = np.searchsorted(codes[order], np.arange(4))
    ends = _history_ends(empty, codes, order, bounds)
    assert ends.tolist() == [3, 5, 7]  # series 0: all 3 rows; series 1: 2 of 4; series 2: none
    assert order[bounds[1]:ends[1]].tolist() == [1, 3]
    assert order[ends[1]:bounds[2]].tolist() == [4, 5]


def test_global_quantile_model_gets_conformalized_quantile_intervals(tmp_path):
    frame = load_csv(_long_csv(tmp_path), id_col="store", targets=["y"])
    config = {**CONFIG, "model": {"units": 4, "quantiles": [0.1, 0.5, 0.9]}}
    report = train_and_evaluate(frame, config, intervals=(0.8,))
    assert report.intervals["method"] == "cqr" and report.intervals["n_calibration"] == 75
    assert 0.5 < report.intervals["model"]["80"]["coverage"] <= 1
    forecast = report.forecaster.predict(frame.groupby(level=0).tail(30))
    # the band of the outermost quantiles, moved by each series' scaled conformal quantile,
    # never past the median
    assert (forecast.y_lo_80 <= forecast.y).all() and (forecast.y <= forecast.y_hi_80).all()
    shift = (forecast["y_q0.1"] - forecast.y_lo_80).groupby(forecast.store).mean()
    scales = {key: value[0] for key, value in
              report.forecaster.intervals.series_scales.items()}
    # the same scaled amount times each series' scale
    assert abs(shift["A"]) > 1e-6
    np.testing.assert_allclose(shift["C"] / shift["A"], scales["C"] / scales["A"], rtol=1e-4)


def test_cli_global_backtest_scores_each_folds_intervals(tmp_path, capsys):
    path = _long_csv(tmp_path)
    code, out, err = _run(
        ["backtest", str(path), "--id-col", "store", "--target", "y", "--horizon", "6",
         "--lookback", "24", "--units", "4", "--epochs", "1", "--seed", "3", "--folds", "2",
         "--interval", "0.8", "--no-track", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    for fold in report["folds"]:  # every series' validation windows, pooled
        assert fold["intervals"]["n_calibration"] > 3 * 10
        assert 0.5 < fold["intervals"]["model"]["80"]["coverage"] <= 1
    assert report["intervals"]["folds"] == 2
    assert set(report["intervals"]["baselines"]) == {"naive", "seasonal_naive", "linear"}
