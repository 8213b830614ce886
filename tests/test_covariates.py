"""Covariates the user supplies (issue 15): future covariates (known ahead, read over the
horizon; their values given as the rows after the history whose targets are empty) and static
covariates of a global model (constant per series, embedded; plus an id embedding)."""

import json

import numpy as np
import pandas as pd
import pytest

from forecast.cli import main
from forecast.data import load_csv
from forecast.data.io import add_static, static_values
from forecast.errors import ConfigError, DataError
from forecast.forecaster import Forecaster, forecaster_files

HORIZON, LOOKBACK = 6, 24
TINY = {"horizon": HORIZON, "lookback": LOOKBACK, "model": {"units": 8},
        "train": {"epochs": 8, "seed": 1, "verbose": 0, "learning_rate": 0.01}}


def _promo_frame(n: int = 600, seed: int = 0, level: float = 10.0) -> pd.DataFrame:
    """A daily cycle lifted by 3 at every step with a promotion (15 % of the steps, random):
    the lift at a horizon step is known only from that step's promotion flag."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    promo = (rng.random(n) < 0.15).astype(float)
    y = level + np.sin(2 * np.pi * t / 24) + 3 * promo + rng.normal(0, 0.1, n)
    return pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"), "y": y,
                         "promo": promo})


def _with_future_rows(raw: pd.DataFrame, history: int, horizon: int = HORIZON) -> pd.DataFrame:
    """The first ``history`` rows, then ``horizon`` rows whose targets are empty."""
    ahead = raw.iloc[history:history + horizon].copy()
    ahead["y"] = np.nan
    return pd.concat([raw.iloc[:history], ahead], ignore_index=True)


@pytest.fixture(scope="module")
def promo_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("promo") / "promo.csv"
    _promo_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def promo_model(promo_csv):
    frame = load_csv(promo_csv, targets=["y"], covariates=["promo"])
    return Forecaster({**TINY, "future_covariates": ["promo"]}).fit(frame.iloc[:480])


# -- future covariates: they help, and predict reads them from the rows after the history ------


def test_a_future_covariate_beats_the_same_model_without_it(promo_csv, promo_model):
    frame = load_csv(promo_csv, targets=["y"], covariates=["promo"])
    test = frame.iloc[480 - LOOKBACK:]
    without = Forecaster(TINY).fit(frame.iloc[:480])  # promo read as a past covariate only
    assert without.spec.past_covariates == ("promo",)
    assert promo_model.spec.past_covariates == ()
    assert promo_model.spec.future_covariates[0] == "promo"  # then the calendar features
    errors = {}
    for name, forecaster in (("with", promo_model), ("without", without)):
        y_true, y_pred = forecaster.predict_windows(test)
        errors[name] = float(np.abs(y_true - y_pred).mean())
    # measured: 0.205 with the future covariate, 0.611 without (the promotion lift of 3 at
    # 15 % of the steps is unpredictable from the past alone)
    assert errors["with"] == pytest.approx(0.205, abs=0.03)
    assert errors["without"] == pytest.approx(0.611, abs=0.05)
    assert errors["with"] < errors["without"] / 2


def test_predict_reads_the_future_rows_of_the_same_file_layout(tmp_path, promo_model):
    raw = _promo_frame()
    path = tmp_path / "recent.csv"
    _with_future_rows(raw, 500).to_csv(path, index=False)
    # fill=ffill would fill empty target cells at the end: the future rows are kept out of it
    history = load_csv(path, targets=["y"], covariates=["promo"], future_rows=True, fill="ffill")
    assert len(history) == 506 and history["y"].iloc[-HORIZON:].isna().all()
    forecast = promo_model.predict(history)
    truth = raw.iloc[500:506].set_index("date")
    assert list(forecast.index) == list(truth.index)
    promo = truth["promo"].to_numpy() == 1
    assert promo.any() and (~promo).any()
    # the lift follows the given promotions: within 0.5 of the truth at every step
    assert np.abs(forecast["y"].to_numpy() - truth["y"].to_numpy()).max() < 0.5
    assert forecast["y"][promo].mean() - forecast["y"][~promo].mean() > 2


def test_missing_future_values_name_the_timestamps(tmp_path, promo_model):
    raw = _promo_frame()
    history = load_csv(_csv(tmp_path, raw.iloc[:500]), targets=["y"], covariates=["promo"],
                       future_rows=True)
    with pytest.raises(DataError) as info:
        promo_model.predict(history)
    message = str(info.value)
    assert "no future values of ['promo']" in message
    assert "2024-01-21 20:00:00 to 2024-01-22 01:00:00" in message
    assert "--future-covariate" in message and "\n" not in message
    # too few rows: the missing horizon timestamps are named
    short = _with_future_rows(raw, 500, horizon=4)
    with pytest.raises(DataError, match=r"lack 2 of the 6 horizon timestamps \(2024-01-22 "
                                        r"00:00:00, 2024-01-22 01:00:00\)"):
        promo_model.predict(load_csv(_csv(tmp_path, short), targets=["y"],
                                     covariates=["promo"], future_rows=True))
    # too many rows
    long = _with_future_rows(raw, 500, horizon=8)
    with pytest.raises(DataError, match=r"8 future row\(s\) follow the history .* at "
                                        r"2024-01-22 02:00:00, 2024-01-22 03:00:00"):
        promo_model.predict(load_csv(_csv(tmp_path, long), targets=["y"],
                                     covariates=["promo"], future_rows=True))
    # an empty covariate cell in a future row
    gap = _with_future_rows(raw, 500)
    gap.loc[502, "promo"] = np.nan
    with pytest.raises(DataError, match=r"future covariate\(s\) \['promo'\] have no value at "
                                        r"2024-01-21 22:00:00"):
        promo_model.predict(load_csv(_csv(tmp_path, gap), targets=["y"], covariates=["promo"],
                                     future_rows=True))


def _csv(tmp_path, frame: pd.DataFrame, name: str = "data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_model_without_future_covariates_ignores_future_rows(tmp_path, promo_csv):
    frame = load_csv(promo_csv, targets=["y"])
    plain = Forecaster({**TINY, "train": {**TINY["train"], "epochs": 1}}).fit(frame.iloc[:200])
    raw = _promo_frame()[["date", "y"]]
    history = load_csv(_csv(tmp_path, raw.iloc[:300]), targets=["y"])
    with_rows = load_csv(_csv(tmp_path, _with_future_rows(raw, 300), "f.csv"), targets=["y"],
                         future_rows=True)
    assert np.array_equal(plain.predict(history).to_numpy(), plain.predict(with_rows).to_numpy())


def test_future_covariate_settings_are_checked(promo_csv):
    frame = load_csv(promo_csv, targets=["y"], covariates=["promo"])
    with pytest.raises(DataError, match=r"future covariate column\(s\) \['price'\] are not in "
                                        r"the data.*--future-covariate"):
        Forecaster({**TINY, "future_covariates": ["price"]}).fit(frame.iloc[:200])
    with pytest.raises(ConfigError, match="`future_covariates` names"):
        Forecaster({**TINY, "future_covariates": ["promo", "promo"]})


def test_segment_reads_future_covariates_per_output_segment(promo_csv):
    frame = load_csv(promo_csv, targets=["y"], covariates=["promo"])
    config = {**TINY, "setup": "segment", "future_covariates": ["promo"],
              "model": {"units": 8, "segment_length": 6}}
    forecaster = Forecaster(config).fit(frame.iloc[:480])
    assert forecaster.config.calendar is False  # off by default for segment, as before
    assert forecaster.spec.future_covariates == ("promo",)
    y_true, y_pred = forecaster.predict_windows(frame.iloc[480 - LOOKBACK:])
    # measured 0.434 (the same segment model on the targets alone: 0.669): the segment's
    # covariates reach the decoder
    assert float(np.abs(y_true - y_pred).mean()) == pytest.approx(0.434, abs=0.05)


# -- static covariates and the id embedding (global models) ------------------------------------


def _stores_csv(tmp_path, *, region_b="south"):
    rows = []
    for k, (key, region, size, level) in enumerate(
            [("A", "north", 1.0, 10.0), ("B", region_b, 2.0, 20.0), ("C", "north", 3.0, 30.0)]):
        raw = _promo_frame(200, seed=k, level=level)
        raw.insert(0, "store", key)
        raw["region"], raw["size"] = region, size
        rows.append(raw)
    frame = pd.concat(rows, ignore_index=True)
    return _csv(tmp_path, frame, "stores.csv"), frame


def test_static_columns_must_be_constant_per_series(tmp_path):
    path, raw = _stores_csv(tmp_path)
    raw.loc[raw.index[250], "region"] = "east"  # a row of B (rows 200..399)
    bad = _csv(tmp_path, raw, "bad.csv")
    frame = load_csv(bad, id_col="store", targets=["y"], covariates=["promo"])
    with pytest.raises(DataError) as info:
        add_static(frame, bad, ["region"])
    message = str(info.value)
    assert "series 'B'" in message and "'region'" in message
    assert "'south' (line 202)" in message and "'east' (line 252)" in message
    assert "--static" in message
    values = static_values(pd.read_csv(path), id_col="store", columns=["region", "size"])
    assert values == {"region": {"A": "north", "B": "south", "C": "north"},
                      "size": {"A": "1.0", "B": "2.0", "C": "3.0"}}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    path, raw = _stores_csv(tmp_path_factory.mktemp("stores"))
    frame = add_static(load_csv(path, id_col="store", targets=["y"], covariates=["promo"]),
                       path, ["region", "size"])
    config = {**TINY, "future_covariates": ["promo"], "static": ["region", "size"],
              "model": {"units": 4, "id_embedding": 2},
              "train": {**TINY["train"], "epochs": 2}}
    return path, raw, Forecaster(config).fit(frame)


def test_a_global_model_embeds_static_covariates_and_the_id(tmp_path, stores):
    _, raw, forecaster = stores
    spec = forecaster.spec
    assert spec.static_covariates == ("region", "size", "__series_id__")
    assert spec.static_sizes == (2, 0, 3) and spec.static_dims == (1, 1, 2)
    statics = forecaster.statics
    assert statics.vocabularies["region"] == ["north", "south"]
    assert statics.centers["size"] == pytest.approx(2.0)
    assert list(statics.encode("B")) == pytest.approx([1.0, 0.0, 1.0])
    assert forecaster.model.get_layer("static_embedding").count_params() == 2 * 1 + 3 * 2
    history = raw.groupby("store").head(150)
    ahead = raw.groupby("store").nth(list(range(150, 156))).assign(y=np.nan)
    recent = _csv(tmp_path, pd.concat([history, ahead]).sort_values(["store", "date"]))
    frame = load_csv(recent, id_col="store", targets=["y"], covariates=["promo"],
                     future_rows=True)
    forecast = forecaster.predict(frame)
    assert forecast.shape == (18, 3) and list(forecast["store"].unique()) == ["A", "B", "C"]
    assert np.isfinite(forecast["y"]).all()
    # one series without its future rows: the error names it and its horizon
    lacking = pd.concat([history, ahead[ahead["store"] != "B"]]).sort_values(["store", "date"])
    with pytest.raises(DataError, match=r"series 'B': no future values of \['promo'\] after "
                                        r"the last history row \(2024-01-07 05:00:00\)"):
        forecaster.predict(load_csv(_csv(tmp_path, lacking, "lacking.csv"), id_col="store",
                                    targets=["y"], covariates=["promo"], future_rows=True))
    # a category never trained on, sent with the history: one clear error
    add_static(frame, _csv(tmp_path, pd.concat([history, ahead]).assign(
        region=lambda d: np.where(d["store"] == "C", "west", d["region"])), "west.csv"),
        ["region"])
    with pytest.raises(DataError, match=r"series 'C': the static column 'region' holds 'west', "
                                        r"a category the model was not trained on"):
        forecaster.predict(frame)


def test_save_and_load_keep_every_covariate(tmp_path, stores):
    _, raw, forecaster = stores
    recent = pd.concat([raw.groupby("store").head(150),
                        raw.groupby("store").nth(list(range(150, 156))).assign(y=np.nan)])
    frame = load_csv(_csv(tmp_path, recent.sort_values(["store", "date"])), id_col="store",
                     targets=["y"], covariates=["promo"], future_rows=True)
    before = forecaster.predict(frame)
    forecaster.save(tmp_path / "model")
    state = json.loads((forecaster_files(tmp_path / "model") / "forecaster.json").read_text())
    assert state["static"]["vocabularies"]["region"] == ["north", "south"]
    assert state["config"]["future_covariates"] == ["promo"]
    loaded = Forecaster.load(tmp_path / "model")  # Keras safe_mode=True
    after = loaded.predict(frame)
    assert np.abs(after["y"].to_numpy() - before["y"].to_numpy()).max() <= 1e-6


def test_the_served_model_reads_future_rows_from_one_frame(tmp_path, promo_model):
    import mlflow.pyfunc

    promo_model.save(tmp_path / "served", time_col="date")
    raw = _with_future_rows(_promo_frame(), 500)
    served = mlflow.pyfunc.load_model(str(tmp_path / "served")).predict(
        raw.assign(date=raw["date"].astype(str)))
    direct = promo_model.predict(load_csv(_csv(tmp_path, raw), targets=["y"],
                                          covariates=["promo"], future_rows=True))
    assert np.abs(served["y"].to_numpy() - direct["y"].to_numpy()).max() <= 1e-6
    with pytest.raises(DataError, match="no future values of"):
        mlflow.pyfunc.load_model(str(tmp_path / "served")).predict(
            raw.iloc[:500].assign(date=raw["date"].iloc[:500].astype(str)))


def test_static_covariates_need_a_global_model_and_a_setup_that_reads_them(stores, promo_csv):
    path, _, _ = stores
    frame = load_csv(promo_csv, targets=["y"], covariates=["promo"])
    with pytest.raises(ConfigError, match=r"an id embedding \(--id-embedding"):
        Forecaster({**TINY, "model": {"id_embedding": 2}}).fit(frame.iloc[:200])
    stores_frame = add_static(load_csv(path, id_col="store", targets=["y"]), path, ["region"])
    with pytest.raises(ConfigError, match="setup 'segment' reads the targets alone"):
        Forecaster({**TINY, "setup": "segment", "static": ["region"],
                    "model": {"segment_length": 6}}).fit(stores_frame)


# -- the command line ---------------------------------------------------------------------------


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


CLI = ["--target", "y", "--horizon", "6", "--lookback", "24", "--units", "4", "--epochs", "1",
       "--seed", "3", "--no-track"]


def test_cli_trains_with_future_covariates_and_predicts_from_one_csv(tmp_path, promo_csv,
                                                                     capsys):
    code, out, err = _run(["train", str(promo_csv), *CLI, "--future-covariate", "promo",
                           "--save", str(tmp_path / "m"), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["settings"]["future_covariates"][0] == "promo"
    recent = _csv(tmp_path, _with_future_rows(_promo_frame(), 500), "recent.csv")
    code, out, err = _run(["predict", "--model", str(tmp_path / "m"), "--csv", str(recent),
                           "--out", str(tmp_path / "f.csv")], capsys)
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "f.csv")["date"]) == [
        str(t) for t in pd.date_range("2024-01-21 20:00", periods=6, freq="h")]
    # the same CSV without the future rows: exit 2, one line naming the timestamps
    code, out, err = _run(["predict", "--model", str(tmp_path / "m"), "--csv",
                           str(_csv(tmp_path, _promo_frame().iloc[:500], "old.csv"))], capsys)
    message = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert "no future values of ['promo']" in message and "2024-01-21 20:00:00" in message


@pytest.mark.parametrize("flags, words", [
    (["--future-covariate", "price"], ["--future-covariate", "'price'"]),
    (["--covariate", "promo", "--future-covariate", "promo"], ["--covariate and "
                                                               "--future-covariate"]),
    (["--static", "promo"], ["--static promo", "--id-col"]),
    (["--id-embedding", "-1"], ["id_embedding"]),
])
def test_cli_refuses_bad_covariate_flags_in_one_line(promo_csv, capsys, flags, words):
    code, out, err = _run(["train", str(promo_csv), *CLI, *flags], capsys)
    message = " ".join(err.split())
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Epoch" not in out + err
    for word in words:
        assert word in message, (word, message)


def test_cli_backtests_with_a_future_covariate(promo_csv, capsys):
    code, out, err = _run(["backtest", str(promo_csv), "--target", "y", "--horizon", "6",
                           "--lookback", "24", "--units", "4", "--epochs", "1", "--seed", "3",
                           "--folds", "2", "--no-track", "--json", "--future-covariate",
                           "promo"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert len(report["folds"]) == 2 and np.isfinite(report["model"]["mae"])


def test_pipeline_yaml_declares_the_covariate_keys(tmp_path, promo_csv):
    from forecast.pipelines.spec import load_pipeline

    path = tmp_path / "p.yaml"
    path.write_text(f"name: promo\ndata:\n  path: {promo_csv}\n  targets: y\n"
                    "  future_covariates: [promo]\nwindow:\n  horizon: 6\n"
                    "model:\n  id_embedding: 0\n")
    spec = load_pipeline(path)
    assert spec.forecaster_config().future_covariates == ["promo"]
    assert spec.data.input_covariates() == ["promo"]
    path.write_text(path.read_text().replace("  future_covariates: [promo]\n",
                                             "  future_covariates: [promo]\n  static: [r]\n"))
    with pytest.raises(ConfigError, match=r"line 2: data: static \['r'\]: static covariates "
                                          "describe each series of a long-format file; set "
                                          "data.id_col"):
        load_pipeline(path)


def test_a_pipeline_trains_a_global_model_with_future_and_static_covariates(tmp_path):
    from mlflow import MlflowClient

    from forecast.pipelines import run_pipeline

    _, raw = _stores_csv(tmp_path)
    # the same file carries the future rows: the last 6 hours of each store, targets empty
    raw.loc[raw.groupby("store").cumcount(ascending=False) < HORIZON, "y"] = np.nan
    path = _csv(tmp_path, raw, "stores_ahead.csv")
    spec = tmp_path / "stores.yaml"
    spec.write_text("\n".join([
        "name: stores-covariates",
        f"data: {{path: {path}, time_col: date, id_col: store, targets: [y],",
        "       future_covariates: [promo], static: [region, size]}",
        "window: {lookback: 24, horizon: 6}",
        "model: {units: 4, id_embedding: 2}",
        "train: {epochs: 1, verbose: 0, seed: 1}",
        "evaluate: {metrics: [mae, mase]}",
        f"forecast: {{path: {tmp_path / 'forecast.csv'}}}"]) + "\n")
    result = run_pipeline(spec)
    run = MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["data.id_col"] == "store"
    # the YAML's setup is unset: many_to_one (covariates keep the single-series defaults)
    assert params["config.setup"] == "many_to_one"
    assert "promo" in params["config.future_covariates"]
    assert "region" in params["config.static"] and params["config.model.id_embedding"] == "2"
    assert np.isfinite(run.data.metrics["test.model.mase"])
    # trained on the history alone; forecast over the 6 future rows of each store
    assert run.data.tags["watermark.last_timestamp"] == "2024-01-09 01:00:00"
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert forecast.groupby("store").size().to_dict() == {"A": 6, "B": 6, "C": 6}
    assert forecast["date"].iloc[0] == "2024-01-09 02:00:00"
    assert np.isfinite(forecast["y"]).all()
