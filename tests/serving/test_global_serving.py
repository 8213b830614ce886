"""Serving a global model (issue 15): one MLflow pyfunc over many series, long format in and out.

Two tiny global models over three short synthetic series (stores A, B, C on levels 10, 100 and
1000): one trained and saved by ``forecast train --id-col store --save`` (instance
normalisation ``last``, the default: it can forecast series it has never seen), one trained in
Python without instance normalisation and logged and registered with ``log_forecaster`` (it
refuses unseen series). Both are checked against ``Forecaster.predict`` on the same history.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from forecast.cli import main
from forecast.errors import DataError
from tests.servers import model_server
from tests.serving.conftest import tracking_store

LOOKBACK, HORIZON = 12, 4
LEVELS = {"A": 10.0, "B": 100.0, "C": 1000.0}
REGISTERED = "stores"


def _long_frame(n: int = 120) -> pd.DataFrame:
    """Three hourly series of different starts and levels, as a long-format CSV holds them."""
    rng = np.random.default_rng(5)
    parts = []
    for k, (key, level) in enumerate(LEVELS.items()):
        t = np.arange(n)
        y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24)) + rng.normal(0, level / 50, n)
        x = np.cos(2 * np.pi * t / 24) + rng.normal(0, 0.1, n)
        times = pd.date_range(pd.Timestamp("2024-01-01") + pd.Timedelta(hours=7 * k),
                              periods=n, freq="h")
        parts.append(pd.DataFrame({"store": key, "time": times.strftime("%Y-%m-%d %H:%M:%S"),
                                   "y": y, "x": x}))
    return pd.concat(parts, ignore_index=True)


def _run(argv) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text, as a JSON client or ``forecast predict`` sends it."""
    return frame.astype(str).reset_index(drop=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("global-serving")
    raw = _long_frame()
    path = folder / "long.csv"
    raw.to_csv(path, index=False)
    recent = raw.groupby("store", sort=False).tail(40)  # recent history: 40 rows per series
    recent_csv = folder / "recent.csv"
    recent.to_csv(recent_csv, index=False)
    return SimpleNamespace(folder=folder, raw=raw, csv=path, recent=recent.reset_index(drop=True),
                           recent_csv=recent_csv)


def _expected(forecaster, frame: pd.DataFrame) -> pd.DataFrame:
    """``Forecaster.predict`` on the frame read as ``load_csv`` reads the CSV."""
    from forecast.data import validate_frame

    history = validate_frame(frame, time_col="time", id_col="store", targets=["y"],
                             covariates=["x"])
    return forecaster.predict(history)


@pytest.fixture(scope="module")
def saved(data):
    """``forecast train --id-col store --save DIR`` (instance_norm last), and its forecaster."""
    from forecast.forecaster import Forecaster

    folder = data.folder / "model"
    code = _run(["train", str(data.csv), "--id-col", "store", "--time-col", "time",
                 "--target", "y", "--covariate", "x", "--horizon", str(HORIZON), "--lookback",
                 str(LOOKBACK), "--units", "4", "--epochs", "1", "--seed", "3", "--no-track",
                 "--save", str(folder), "--json"])
    assert code in (0, None)
    return SimpleNamespace(folder=folder, forecaster=Forecaster.load(folder))


@pytest.fixture(scope="module")
def registered(data, store):
    """A global model without instance normalisation, logged and registered
    (``models:/stores@champion``) with ``log_forecaster``."""
    import mlflow
    from mlflow import MlflowClient

    from forecast.data import chronological_split, load_csv
    from forecast.forecaster import Forecaster
    from forecast.serving import log_forecaster

    frame = load_csv(data.csv, id_col="store", targets=["y"], covariates=["x"])
    parts = chronological_split(frame, val=0.15, test=0.15, lookback=LOOKBACK)
    config = {"horizon": HORIZON, "lookback": LOOKBACK,
              "model": {"units": 4, "instance_norm": "none"},
              "train": {"epochs": 1, "verbose": 0, "seed": 11}}
    forecaster = Forecaster(config).fit(parts.train, parts.val)
    with tracking_store(store.uri):
        with mlflow.start_run(experiment_id=store.experiment_id):
            info = log_forecaster(forecaster, time_col="time", input_example=frame,
                                  registered_model_name=REGISTERED)
        MlflowClient().set_registered_model_alias(REGISTERED, "champion",
                                                  info.registered_model_version)
    return SimpleNamespace(forecaster=forecaster, info=info,
                           uri=f"models:/{REGISTERED}@champion")


def test_saved_global_model_is_an_mlflow_pyfunc_equal_to_the_forecaster(saved, data):
    import mlflow.pyfunc
    import yaml

    mlmodel = yaml.safe_load((saved.folder / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == \
        "mlflow.pyfunc.loaders.code_model"
    serving = json.loads((saved.folder / "artifacts" / "forecaster" / "serving.json").read_text())
    assert serving["id_col"] == "store" and serving["time_col"] == "time"
    model = mlflow.pyfunc.load_model(str(saved.folder))
    assert model.metadata.get_input_schema().input_names() == ["store", "time", "y", "x"]
    example = pd.read_json(saved.folder / "input_example.json", orient="split")
    assert example["store"].nunique() == 3 and len(example) == 3 * LOOKBACK

    forecast = model.predict(_text(data.recent))

    expected = _expected(saved.forecaster, data.recent)
    assert list(forecast.columns) == ["store", "time", "y"]
    assert forecast["store"].tolist() == [k for k in LEVELS for _ in range(HORIZON)]
    last = data.recent.groupby("store")["time"].last()
    for key in LEVELS:  # horizon hourly steps after each series' own last timestamp
        times = forecast.loc[forecast["store"] == key, "time"]
        assert list(times) == list(pd.date_range(pd.Timestamp(last[key]), periods=HORIZON + 1,
                                                 freq="h")[1:])
    assert_allclose(forecast["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-9)
    # per-series scaling: every forecast is on its own series' level
    means = forecast.groupby("store")["y"].mean()
    for key, level in LEVELS.items():
        assert 0.5 * level < means[key] < 1.5 * level


def test_any_subset_of_series_in_any_order(saved, data):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(saved.folder))
    full = model.predict(_text(data.recent))
    subset = data.recent[data.recent["store"].isin(["C", "B"])]
    subset = pd.concat([subset[subset["store"] == "C"], subset[subset["store"] == "B"]])

    forecast = model.predict(_text(subset))

    assert forecast["store"].tolist() == ["C"] * HORIZON + ["B"] * HORIZON
    for key in ("B", "C"):
        assert_allclose(forecast.loc[forecast["store"] == key, "y"].to_numpy(),
                        full.loc[full["store"] == key, "y"].to_numpy(), rtol=0, atol=1e-9)
    one = model.predict(_text(data.recent[data.recent["store"] == "A"].iloc[-LOOKBACK:]))
    assert_allclose(one["y"].to_numpy(), full.loc[full["store"] == "A", "y"].to_numpy(),
                    rtol=0, atol=1e-9)
    # a frame indexed by (id, time), as load_csv(..., id_col=...) returns it, works too
    from forecast.data import validate_frame

    indexed = validate_frame(data.recent, time_col="time", id_col="store", targets=["y"],
                             covariates=["x"])
    assert_allclose(model.predict(indexed)["y"].to_numpy(), full["y"].to_numpy(), rtol=0,
                    atol=1e-9)


def test_unseen_series_are_refused_by_name_without_instance_normalisation(registered, data):
    from forecast.serving import load_model

    model = load_model(registered.uri)
    strangers = data.recent[data.recent["store"] == "A"].assign(store="Z")

    with pytest.raises(DataError) as error:
        model.predict(_text(pd.concat([data.recent, strangers])))

    message = str(error.value)
    assert "'Z'" in message and "not known" in message and "instance" in message
    assert "'A'" not in message and "\n" not in message


def test_unseen_series_forecast_the_same_in_any_units_with_instance_normalisation(saved, data):
    """instance_norm last: an unseen series' scaler is fitted on the history sent, so a series
    in other units (x1000 + 5) gets the same forecast in those units."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(saved.folder))
    a = data.recent[data.recent["store"] == "A"]
    same = a.assign(store="Y")
    scaled = a.assign(store="Z", y=a["y"] * 1000 + 5, x=a["x"] * 1000 + 5)

    forecast = model.predict(_text(pd.concat([data.recent, same, scaled])))

    assert forecast["store"].tolist()[-2 * HORIZON:] == ["Y"] * HORIZON + ["Z"] * HORIZON
    y = forecast.loc[forecast["store"] == "Y", "y"].to_numpy()
    z = forecast.loc[forecast["store"] == "Z", "y"].to_numpy()
    assert_allclose(z, y * 1000 + 5, rtol=1e-5)
    known = model.predict(_text(data.recent))
    assert_allclose(forecast["y"].to_numpy()[:3 * HORIZON], known["y"].to_numpy(),
                    rtol=0, atol=1e-9)  # the known series are untouched by the strangers
    assert model.unwrap_python_model().forecaster.ids == ["A", "B", "C"]


def test_errors_name_the_series_at_fault(saved, data):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(saved.folder))
    recent = data.recent
    short = pd.concat([recent[recent["store"] != "B"],
                       recent[recent["store"] == "B"].iloc[-5:]])
    with pytest.raises(DataError, match=r"series 'B'.*at least 12 rows.*lookback"):
        model.predict(_text(short))

    bad = _text(recent)
    row = bad.index[(bad["store"] == "C")][10]
    bad.loc[row, "time"] = "not a time"
    with pytest.raises(DataError) as error:
        model.predict(bad)
    assert "'time'" in str(error.value) and f"row {row + 1}" in str(error.value)

    with pytest.raises(DataError, match=r"lacks the column\(s\) 'store'.*id column 'store'"):
        model.predict(_text(recent.drop(columns="store")))


def test_cli_predict_writes_long_format(saved, data, tmp_path):
    out = tmp_path / "forecast.csv"

    code = _run(["predict", "--model", str(saved.folder), "--csv", str(data.recent_csv),
                 "--id-col", "store", "--out", str(out)])

    assert code in (0, None)
    frame = pd.read_csv(out, dtype={"store": str}, parse_dates=["time"])
    expected = _expected(saved.forecaster, data.recent)
    assert list(frame.columns) == ["store", "time", "y"] and len(frame) == 3 * HORIZON
    assert list(frame["time"]) == list(expected["time"])
    assert_allclose(frame["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-9)


def test_cli_predict_from_the_registry_with_another_id_column_name(registered, data, tmp_path,
                                                                   capsys):
    renamed = tmp_path / "shops.csv"
    data.recent.rename(columns={"store": "shop"}).to_csv(renamed, index=False)

    code = _run(["predict", "--model", registered.uri, "--csv", str(renamed),
                 "--id-col", "shop"])

    assert code in (0, None)
    printed = capsys.readouterr().out
    expected = _expected(registered.forecaster, data.recent)
    assert "store" in printed and "time" in printed
    for value in expected["y"].iloc[[0, HORIZON, 2 * HORIZON]]:
        assert f"{value:.4f}" in printed


@pytest.mark.parametrize("case", ["unknown series", "no id column", "short series"])
def test_cli_predict_bad_input_exits_2_with_one_line(registered, data, tmp_path, capsys, case):
    path = tmp_path / "bad.csv"
    recent = data.recent
    if case == "unknown series":
        frame, expected = recent.replace({"store": {"C": "Q"}}), ["'Q'", "bad.csv"]
    elif case == "no id column":
        frame, expected = recent.drop(columns="store"), ["--id-col", "bad.csv"]
    else:
        frame, expected = recent.iloc[: 40 + 3], ["series 'B'", "bad.csv"]
    frame.to_csv(path, index=False)

    code = _run(["predict", "--model", registered.uri, "--csv", str(path)])

    err = capsys.readouterr().err
    assert code == 2
    assert all(word in err for word in expected) and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_predict_plots_a_panel_per_series(registered, data, tmp_path, capsys):
    from tests.evaluation.test_plots import assert_png

    plot = tmp_path / "plot.png"
    code = _run(["predict", "--model", registered.uri, "--csv", str(data.recent_csv),
                 "--plot", str(plot)])

    assert code in (0, None)
    assert f"drew the 3 series in {plot}" in capsys.readouterr().out
    assert_png(plot)
    # the series to draw, chosen by name
    code = _run(["predict", "--model", registered.uri, "--csv", str(data.recent_csv),
                 "--plot", str(plot), "--plot-series", "C", "--plot-series", "A"])
    assert code in (0, None)
    assert f"drew 2 of 3 series in {plot}" in capsys.readouterr().out


@pytest.mark.parametrize("extra, words", [
    (["--plot-series", "Q"], ["--plot-series Q", "no such series", "A, B, C"]),
    (["--plot-series", "A"], ["--plot-series", "add --plot"]),
])
def test_cli_predict_plot_series_bad_input_in_one_line(registered, data, tmp_path, capsys,
                                                       extra, words):
    plot = ["--plot", str(tmp_path / "plot.png")] if "Q" in extra else []
    code = _run(["predict", "--model", registered.uri, "--csv", str(data.recent_csv), *plot,
                 *extra])
    err = capsys.readouterr().err
    assert code == 2 and all(word in err for word in words), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_predict_refuses_id_col_for_a_model_of_one_series(logged, history, tmp_path,
                                                              capsys):
    path = tmp_path / "recent.csv"
    history.raw.iloc[150:200].to_csv(path, index=False)

    code = _run(["predict", "--model", logged.runs_uri, "--csv", str(path), "--id-col", "y"])

    err = capsys.readouterr().err
    assert code == 2 and "--id-col y" in err and "one series" in err
    assert len(err.strip().splitlines()) == 1


def _post(base: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/invocations", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _split(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(frame.columns),
                                           "data": frame.to_numpy().tolist()}}).encode()


def test_forecast_serve_answers_one_request_for_two_series(saved, data, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [str(Path(sys.executable).parent / "forecast"), "serve", str(saved.folder),
               "--max-body-mb", "0.05"]
    with model_server(command, tmp_path / "server.log", env=env) as running:
        base = running.base
        two = data.recent[data.recent["store"].isin(["A", "C"])]

        status, answer = _post(base, _split(_text(two)))

        assert status == 200, answer
        frame = pd.DataFrame(answer["predictions"])
        expected = _expected(saved.forecaster, two)
        assert list(frame.columns) == ["store", "time", "y"]
        assert frame["store"].tolist() == ["A"] * HORIZON + ["C"] * HORIZON
        assert list(pd.to_datetime(frame["time"])) == list(expected["time"])
        assert_allclose(frame["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-9)

        short = pd.concat([two[two["store"] == "A"], two[two["store"] == "C"].iloc[-3:]])
        status, answer = _post(base, _split(_text(short)))
        assert status == 400 and "series 'C'" in answer["message"]

        big = pd.concat([_text(data.recent)] * 20)  # about 60 KB: over --max-body-mb 0.05
        status, answer = _post(base, _split(big))
        assert status == 413, answer
        status, _ = _post(base, _split(_text(two)))
        assert status == 200  # still up
