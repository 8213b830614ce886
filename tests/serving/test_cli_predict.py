"""`forecast predict --model URI --csv FILE`: the served model driven from the command line."""

from __future__ import annotations

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from forecast.cli import main
from tests.serving.conftest import HORIZON


@pytest.fixture
def recent_csv(history, tmp_path):
    path = tmp_path / "recent.csv"
    history.raw.iloc[150:200].to_csv(path, index=False)
    return path


def _run(argv) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


def test_predict_writes_the_forecast_csv(logged, trained, recent_csv, tmp_path):
    out = tmp_path / "out" / "forecast.csv"

    code = _run(["predict", "--model", logged.champion_uri, "--csv", str(recent_csv),
                 "--out", str(out)])

    assert code == 0
    frame = pd.read_csv(out, parse_dates=["date"])
    expected = trained.forecaster.predict(trained.frame.iloc[150:200])
    assert list(frame.columns) == ["date", "y"] and len(frame) == HORIZON
    assert list(frame["date"]) == list(expected.index)
    assert_allclose(frame["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-6)


def test_predict_prints_a_table(logged, history, recent_csv, capsys):
    assert _run(["predict", "--model", logged.runs_uri, "--csv", str(recent_csv)]) == 0
    printed = capsys.readouterr().out
    first = history.raw["date"].iloc[200]
    assert "date" in printed and str(first) in printed


def test_predict_with_a_missing_model_exits_2_with_one_message(recent_csv, capsys):
    code = _run(["predict", "--model", "models:/no-such-model@champion", "--csv",
                 str(recent_csv)])
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and "models:/no-such-model@champion" in err
    assert "Traceback" not in err


def test_predict_with_too_short_a_history_names_the_file(logged, history, tmp_path, capsys):
    path = tmp_path / "short.csv"
    history.raw.iloc[:10].to_csv(path, index=False)
    code = _run(["predict", "--model", logged.runs_uri, "--csv", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "short.csv" in err and "at least 24 rows" in err and "Traceback" not in err


def test_predict_points_at_a_bad_cell(logged, history, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    bad = history.raw.iloc[:40].astype({"y": object})
    bad.loc[bad.index[30], "y"] = "n.a.?"
    bad.to_csv(path, index=False)
    code = _run(["predict", "--model", logged.runs_uri, "--csv", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.csv" in err and "'y'" in err and "row 31" in err and "Traceback" not in err
