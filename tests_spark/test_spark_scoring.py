"""Scoring on Spark (issue 15): the same MLflow pyfunc, grouped by series, equals predict.

Every test runs a real ``local[2]`` Spark job over the table of ``conftest.long_frame`` (a few
hundred short hourly series) and compares, series by series and step by step, with what
``forecast predict`` returns for the same rows.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast.cli import main
from forecast.errors import DataError
from forecast.serving.spark import score_table
from tests_spark.conftest import HORIZON, ID, LOOKBACK, N_SERIES, TIME, read_out

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-6


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> float:
    """Same series, same future timestamps, forecasts within TOLERANCE; returns the largest gap."""
    expected = expected.copy()
    expected[ID] = expected[ID].astype(str)
    expected[TIME] = pd.to_datetime(expected[TIME])
    got = got.copy()
    got[ID] = got[ID].astype(str)
    merged = got.merge(expected, on=[ID, TIME], how="outer", suffixes=("_spark", "_cli"),
                       indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    gap = float(np.max(np.abs(merged["y_spark"] - merged["y_cli"])))
    assert gap <= TOLERANCE, gap
    print(f"{got[ID].nunique()} series, {len(got)} rows: max |spark - predict| = {gap:.3g}")
    return gap


def _expected_per_series(model_folder: Path, csv: Path) -> pd.DataFrame:
    """What `forecast predict --model M --csv <one series' rows>` returns, for every series:
    the CSV's text cells (``read_history``), each series' rows through the same pyfunc."""
    from forecast.cli.serve_commands import read_history
    from forecast.serving import load_model

    model = load_model(str(model_folder))
    history = read_history(csv)
    parts = []
    for key, rows in history.groupby(ID, sort=False):
        out = model.predict(rows[[TIME, "y"]].reset_index(drop=True),
                            params={"source": f"{csv} ({key})"})
        out.insert(0, ID, key)
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def test_single_series_model_scores_every_series_like_forecast_predict(
        spark, data, single_model, tmp_path, capsys):
    out = tmp_path / "forecast"
    result = score_table(str(single_model), data.csv, fmt="csv", id_col=ID, out=out,
                         spark=spark)
    assert (result.series, result.rows, result.failed) == (N_SERIES, N_SERIES * HORIZON, 0)
    got = read_out(out)
    assert list(got.columns) == [ID, TIME, "y"]
    assert got.groupby(ID).size().eq(HORIZON).all()
    _assert_same(got, _expected_per_series(single_model, data.csv))
    # and the CLI itself on one series' own file gives those very numbers
    code, _, err = _cli(["predict", "--model", str(single_model), "--csv", str(data.one),
                         "--out", str(tmp_path / "one.csv")], capsys)
    assert code == 0, err
    one = pd.read_csv(tmp_path / "one.csv")
    one.insert(0, ID, "s0000")
    _assert_same(got[got[ID] == "s0000"], one)


def test_global_model_on_spark_equals_forecast_predict(spark, data, global_model, tmp_path,
                                                       capsys):
    expected_csv = tmp_path / "expected.csv"
    code, _, err = _cli(["predict", "--model", str(global_model), "--csv", str(data.csv),
                         "--id-col", ID, "--out", str(expected_csv)], capsys)
    assert code == 0, err
    expected = pd.read_csv(expected_csv)
    assert expected[ID].nunique() == N_SERIES
    # Parquet in and out, from Python; several batches of series (buckets) per task
    out = tmp_path / "forecast.parquet"
    result = score_table(str(global_model), data.parquet, fmt="parquet", id_col=ID, out=out,
                         spark=spark, buckets=7)
    assert (result.series, result.rows) == (N_SERIES, N_SERIES * HORIZON)
    _assert_same(read_out(out), expected)
    # CSV in and out through `forecast predict --spark` (the model's own id column)
    cli_out = tmp_path / "cli-forecast"
    code, stdout, err = _cli(["predict", "--spark", "--model", str(global_model), "--csv",
                              str(data.csv), "--out", str(cli_out)], capsys)
    assert code == 0, err
    assert f"wrote {N_SERIES * HORIZON} forecast rows of {N_SERIES} series" in stdout
    _assert_same(read_out(cli_out), expected)


def _with_short_series(data, folder: Path) -> Path:
    """The table plus a series with fewer rows than the lookback, in the middle of the file."""
    frame = data.frame
    short = frame[frame[ID] == "s0001"].head(LOOKBACK - 7).assign(**{ID: "too-short"})
    table = pd.concat([frame.iloc[:500], short, frame.iloc[500:]], ignore_index=True)
    path = folder / "with-short.csv"
    table.to_csv(path, index=False)
    return path


def test_a_series_too_short_is_named_or_skipped(spark, data, global_model, tmp_path, capsys):
    path = _with_short_series(data, tmp_path)
    # the first series that cannot be forecast stops the job: exit code 2, one line naming it
    code, _, err = _cli(["predict", "--spark", "--model", str(global_model), "--csv", str(path),
                         "--id-col", ID, "--out", str(tmp_path / "cli-fails")], capsys)
    assert code == 2 and "Traceback" not in err and "<<forecast-error" not in err, err
    assert "'too-short'" in err and f"at least {LOOKBACK} rows" in err, err
    # --skip-errors: every other series is forecast; the short one is listed with its message
    out = tmp_path / "skipped"
    code, stdout, err = _cli(["predict", "--spark", "--model", str(global_model), "--csv",
                              str(path), "--id-col", ID, "--out", str(out), "--skip-errors"],
                             capsys)
    assert code == 0, err
    assert f"of {N_SERIES} series" in stdout and "skipped 1 series" in stdout, stdout
    got = read_out(out)
    assert got[ID].nunique() == N_SERIES and "too-short" not in set(got[ID])
    errors = pd.concat(pd.read_csv(p) for p in sorted((tmp_path / "skipped.errors")
                                                       .glob("part-*.csv")))
    assert list(errors[ID]) == ["too-short"]
    assert f"at least {LOOKBACK} rows" in errors["error"].iloc[0]


def test_single_series_model_names_the_short_series(spark, data, single_model, tmp_path):
    path = _with_short_series(data, tmp_path)
    with pytest.raises(DataError) as failed:
        score_table(str(single_model), path, fmt="csv", id_col=ID, out=tmp_path / "fails",
                    spark=spark)
    assert "(series 'too-short')" in str(failed.value), str(failed.value)


def test_bad_flags_fail_before_spark_starts(data, single_model, tmp_path, capsys):
    exists = tmp_path / "exists"
    exists.mkdir()
    cases = [
        (["--csv", str(data.csv), "--parquet", str(data.parquet), "--id-col", ID, "--out",
          str(tmp_path / "o")], "not both"),
        (["--csv", str(data.csv), "--id-col", ID], "--out FOLDER"),
        (["--csv", str(data.csv), "--id-col", ID, "--out", str(exists)], "already exists"),
        (["--csv", str(data.csv), "--out", str(tmp_path / "o")], "--id-col COLUMN"),
    ]
    for flags, words in cases:
        code, _, err = _cli(["predict", "--spark", "--model", str(single_model), *flags], capsys)
        assert code == 2 and words in err, (flags, err)


def test_cli_without_pyspark_says_how_to_install_it(data, single_model, tmp_path):
    """The main venv (.venv, no pyspark): `forecast predict --spark` is one clear line."""
    forecast = ROOT / ".venv" / "bin" / "forecast"
    if not forecast.exists():
        pytest.skip("no .venv here (make install builds it)")
    has_spark = subprocess.run([str(forecast.with_name("python")), "-c", "import pyspark"],
                               capture_output=True).returncode == 0
    if has_spark:
        pytest.skip(".venv has pyspark installed")
    done = subprocess.run([str(forecast), "predict", "--spark", "--model", str(single_model),
                           "--csv", str(data.csv), "--id-col", ID, "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{forecast.parent}:{os.environ['PATH']}"})
    assert done.returncode == 2, done.stderr
    assert "pip install 'forecast[spark]'" in done.stderr and "make test-spark" in done.stderr
    assert "Traceback" not in done.stderr
