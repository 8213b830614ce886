"""The served model reads history the way training read the file (ReadOptions in serving.json),
and refuses history that would give a wrong forecast (another frequency, overflowing values)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from forecast.cli import main
from forecast.errors import DataError
from forecast.serving.pyfunc import ServingInfo, forecast_history


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, " ".join(captured.err.split())


def test_serving_info_reads_older_json_without_reading_settings():
    old = {"time_col": "date", "targets": ["y"], "covariates": ["x"], "freq": "h",
           "fill": "interpolate", "max_gap": None, "format": 1}
    info = ServingInfo.from_dict(old)
    assert info.reading is None and info.read_options.sep is None
    new = ServingInfo.from_dict({**old, "reading": {"sep": ";", "decimal": ",",
                                                    "time_col": "date", "dayfirst": True}})
    assert new.read_options.decimal == "," and new.read_options.dayfirst is True
    assert ServingInfo.from_dict(json.loads(json.dumps(new.to_dict()))) == new


def test_daily_history_sent_to_the_hourly_model_is_refused(logged, history, tmp_path, capsys):
    daily = history.raw.iloc[:40].copy()
    daily["date"] = pd.date_range("2024-01-01", periods=40, freq="D")
    path = tmp_path / "daily.csv"
    daily.to_csv(path, index=False)
    code, _, err = _run(["predict", "--model", logged.runs_uri, "--csv", str(path)], capsys)
    assert code == 2 and "Traceback" not in err
    assert "daily.csv" in err and "history is daily (D) but the model forecasts hourly (h) " \
        "steps; send hourly history" in err


def test_history_beyond_float32_is_refused(trained, history):
    info = ServingInfo.for_forecaster(trained.forecaster, time_col="date")
    raw = history.raw.iloc[:40].copy()
    raw.loc[raw.index[10], "y"] = 1e308
    with pytest.raises(DataError, match=r"column 'y' holds 1e\+308 on row 11 .*float32"):
        forecast_history(trained.forecaster, info, raw)
    raw = history.raw.iloc[:40].copy()
    raw.loc[raw.index[39], "x"] = 3.3e38  # finite in float32, not once scaled
    with pytest.raises(DataError, match=r"column 'x' .* scales to .*float32"):
        forecast_history(trained.forecaster, info, raw)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_predict_refuses_a_fifo(logged, tmp_path, capsys):
    fifo = tmp_path / "recent.csv"
    os.mkfifo(fifo)
    code, _, err = _run(["predict", "--model", logged.runs_uri, "--csv", str(fifo)], capsys)
    assert code == 2 and "recent.csv" in err and "FIFO" in err


def _semicolon(frame: pd.DataFrame, path):
    """The frame as a European spreadsheet writes it: ';' between fields, decimal commas,
    day-first dates."""
    lines = ["date;y;x"] + [
        f"{t:%d/%m/%Y %H:%M};{y:.6f};{x:.6f}".replace(".", ",")
        for t, y, x in zip(frame["date"], frame["y"], frame["x"], strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_semicolon_decimal_comma_file_trains_and_predicts_like_the_comma_file(history, tmp_path,
                                                                             capsys):
    raw = history.raw.copy()
    raw[["y", "x"]] = raw[["y", "x"]].round(6)
    semi = _semicolon(raw, tmp_path / "semi.csv")
    code, out, err = _run(["train", str(semi), "--target", "y", "--covariate", "x",
                           "--horizon", "6", "--lookback", "24", "--units", "4", "--epochs", "1",
                           "--json"], capsys)
    assert code == 0, err
    model_uri = json.loads(out)["mlflow"]["model_uri"]

    recent_semi = _semicolon(raw.iloc[150:200], tmp_path / "recent_semi.csv")
    recent_comma = tmp_path / "recent_comma.csv"
    raw.iloc[150:200].to_csv(recent_comma, index=False)
    outputs = {}
    for name, path in (("semi", recent_semi), ("comma", recent_comma)):
        target = tmp_path / f"{name}_forecast.csv"
        code, _, err = _run(["predict", "--model", model_uri, "--csv", str(path), "--out",
                             str(target)], capsys)
        assert code == 0, err
        outputs[name] = pd.read_csv(target, parse_dates=["date"])
    semi_out, comma_out = outputs["semi"], outputs["comma"]
    assert len(semi_out) == 6
    assert list(semi_out["date"]) == list(pd.date_range(raw["date"].iloc[200], periods=6,
                                                        freq="h"))
    assert list(semi_out["date"]) == list(comma_out["date"])
    assert_allclose(semi_out["y"].to_numpy(), comma_out["y"].to_numpy(), rtol=0, atol=1e-9)
    assert np.isfinite(semi_out["y"]).all()
