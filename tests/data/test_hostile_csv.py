"""Inputs that used to give a wrong answer silently: each is now a one-line error (exit 2 via the
CLI) naming the file, column, line, value and the flag that fixes it, or a correct answer."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest

from forecast.cli import main
from forecast.data.dataset import describe
from forecast.data.io import load_csv, validate_frame
from forecast.data.reading import ReadOptions
from forecast.data.scaling import Scaler
from forecast.errors import ConfigError, DataError


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, " ".join(captured.err.split())


def _refused(argv, capsys, *words):
    code, _, err = _run(argv, capsys)
    assert code == 2, err
    assert err.startswith("error:") and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    return err


def _daily(tmp_path, n=40, name="daily.csv"):
    path = tmp_path / name
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="D"),
                  "y": np.arange(n, dtype=float)}).to_csv(path, index=False)
    return path


def _local_hours(tmp_path, start, name):
    """72 hours of Berlin wall-clock time written without offsets (as a local logger would)."""
    index = pd.date_range(start, periods=72, freq="h", tz="Europe/Berlin")
    path = tmp_path / name
    pd.DataFrame({"date": index.tz_localize(None).strftime("%Y-%m-%d %H:%M:%S"),
                  "y": np.arange(72, dtype=float)}).to_csv(path, index=False)
    return path


# -- 1. frequency mismatch ---------------------------------------------------------------------


def test_daily_file_with_an_hourly_freq_is_refused_not_interpolated(tmp_path, capsys):
    path = _daily(tmp_path)
    _refused(["inspect", str(path), "--freq", "h"], capsys,
             "daily.csv", "daily (D)", "hourly (h)", "--freq D")
    _refused(["train", str(path), "--freq", "h", "--no-track"], capsys, "daily (D)", "--freq")


def test_daily_history_for_an_hourly_model_names_both_frequencies():
    raw = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=40, freq="D").astype(str),
                        "y": np.arange(40.0)})
    with pytest.raises(DataError) as info:
        validate_frame(raw, source="recent.csv", freq="h", freq_owner="the model")
    assert str(info.value) == (
        "'recent.csv': history is daily (D) but the model forecasts hourly (h) steps; send "
        "hourly history (one row per 'h' step, gaps are filled up to its max_gap).")


def test_hourly_data_with_missing_hours_is_still_filled_on_its_grid():
    times = pd.date_range("2024-01-01", periods=48, freq="h").delete([5, 6, 30])
    raw = pd.DataFrame({"date": times, "y": np.arange(48.0)[np.isin(np.arange(48),
                                                                   [5, 6, 30], invert=True)]})
    frame = validate_frame(raw, freq="h", freq_owner="the model")
    assert len(frame) == 48 and describe(frame).freq == "h"
    assert frame["y"].tolist() == pytest.approx(np.arange(48.0).tolist())


def test_weekly_anchors_count_as_the_same_frequency():
    raw = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=10, freq="W-MON"),
                        "y": np.arange(10.0)})
    assert len(validate_frame(raw, freq="W-SUN")) == 10  # moved onto Sundays, not refused


# -- 2. values float32 cannot hold ------------------------------------------------------------


def test_a_value_beyond_float32_names_column_line_and_value(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    path.write_text("date,y\n2024-01-01,1\n2024-01-02,2\n2024-01-03,1e308\n2024-01-04,4\n")
    _refused(["inspect", str(path)], capsys, "huge.csv", "'y'", "line 4", "1e+308", "float32")


def test_a_frame_value_beyond_float32_names_the_row():
    raw = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=5, freq="D"),
                        "y": [1.0, 2.0, -4e38, 4.0, 5.0]})
    with pytest.raises(DataError, match=r"column 'y' holds -4e\+38 on row 3 .*float32"):
        validate_frame(raw)


def test_a_scaled_value_beyond_float32_names_the_column():
    index = pd.date_range("2024-01-01", periods=20, freq="h", name="date")
    train = pd.DataFrame({"y": np.linspace(0, 0.3, 20)}, index=index)  # scale about 0.1
    scaler = Scaler("standard", columns=["y"]).fit(train)
    later = pd.DataFrame({"y": [3e38] * 3}, index=index[:3])  # in float32 range, scaled not
    with pytest.raises(DataError, match=r"column 'y' at 2024-01-01 00:00:00 scales to .*float32"):
        scaler.transform(later)


# -- 3. day/month order ------------------------------------------------------------------------


def _ambiguous(tmp_path):
    path = tmp_path / "dayfirst.csv"
    path.write_text("date,y\n" + "".join(f"{d:02d}/01/2024,{d}\n" for d in range(1, 13)))
    return path


def test_ambiguous_day_month_dates_are_refused(tmp_path, capsys):
    path = _ambiguous(tmp_path)
    _refused(["inspect", str(path)], capsys, "dayfirst.csv", "'date'", "'01/01/2024'",
             "ambiguous", "--dayfirst", "--monthfirst", "--date-format")
    _refused(["train", str(path), "--no-track"], capsys, "ambiguous", "--dayfirst")


@pytest.mark.parametrize(("flags", "freq", "last", "words"), [
    (["--dayfirst"], "D", "2024-01-12", "dates day-first"),
    (["--monthfirst"], "MS", "2024-12-01", "dates month-first"),
    (["--date-format", "%d/%m/%Y"], "D", "2024-01-12", "date format '%d/%m/%Y'"),
])
def test_ambiguous_dates_read_as_told(tmp_path, capsys, flags, freq, last, words):
    path = _ambiguous(tmp_path)
    code, out, err = _run(["inspect", str(path), *flags], capsys)
    assert code == 0, err
    assert f"frequency   │ {freq}" in out and last in out and words in out


def test_the_one_regular_reading_is_used_and_reported(tmp_path, caplog, capsys):
    path = tmp_path / "hours.csv"
    path.write_text("date,y\n" + "".join(f"{d:02d}/02/2024 {h:02d}:00,{d * 24 + h}\n"
                                         for d in range(1, 4) for h in range(24)))
    with caplog.at_level(logging.WARNING, logger="forecast.data.io"):
        frame = load_csv(path)
    assert frame.index[0] == pd.Timestamp("2024-02-01") and describe(frame).freq == "h"
    assert describe(frame).reading.dayfirst is True
    assert "read it day-first" in caplog.text and "--dayfirst" in caplog.text
    code, out, _ = _run(["inspect", str(path)], capsys)
    assert code == 0 and "dates day-first" in out


def test_day_first_dates_that_only_fit_one_way_are_not_ambiguous(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("date,y\n" + "".join(f"{d:02d}/01/2024,{d}\n" for d in range(1, 20)))
    frame = load_csv(path)
    assert describe(frame).freq == "D" and describe(frame).reading.dayfirst is True


# -- 4. separator and decimal mark -------------------------------------------------------------


def _comma_and_semicolon(tmp_path):
    rng = np.random.default_rng(1)
    values = np.round(10 + rng.normal(size=30), 4)
    dates = pd.date_range("2024-01-01", periods=30, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    comma = tmp_path / "comma.csv"
    comma.write_text("date,y\n" + "".join(f"{d},{v:.4f}\n"
                                         for d, v in zip(dates, values, strict=True)))
    semi = tmp_path / "semi.csv"
    semi.write_text("date;y\n" + "".join(f"{d};{v:.4f}\n".replace(".", ",")
                                         for d, v in zip(dates, values, strict=True)))
    return comma, semi


def test_semicolon_file_with_decimal_commas_reads_like_the_comma_file(tmp_path, capsys):
    comma, semi = _comma_and_semicolon(tmp_path)
    a, b = load_csv(comma), load_csv(semi)
    pd.testing.assert_frame_equal(a, b)
    assert describe(b).reading == ReadOptions(sep=";", decimal=",", time_col="date")
    assert describe(a).reading == ReadOptions(sep=",", decimal=".", time_col="date")
    code, out, _ = _run(["inspect", str(semi)], capsys)
    assert code == 0 and "sep ';', decimal ','" in out


def test_a_decimal_comma_read_with_a_point_says_which_flag(tmp_path, capsys):
    _, semi = _comma_and_semicolon(tmp_path)
    _refused(["inspect", str(semi), "--decimal", "."], capsys, "semi.csv", "'y'", "line 2",
             "--decimal ','")


def test_reading_settings_are_checked():
    with pytest.raises(ConfigError, match="decimal"):
        ReadOptions(decimal=";")
    with pytest.raises(ConfigError, match="--tz"):
        ReadOptions(tz="Mars/Olympus")
    assert ReadOptions.from_dict({"sep": ";", "new_key": 1}) == ReadOptions(sep=";")


# -- 5. daylight saving ------------------------------------------------------------------------


def test_spring_forward_gap_in_naive_local_time_suggests_tz(tmp_path, capsys):
    path = _local_hours(tmp_path, "2024-03-30", "spring.csv")
    _refused(["inspect", str(path)], capsys, "spring.csv", "2024-03-31 02:00:00", "line 27",
             "daylight-saving", "--tz Europe/Berlin")
    code, out, err = _run(["inspect", str(path), "--tz", "Europe/Berlin"], capsys)
    assert code == 0, err
    frame = load_csv(path, reading=ReadOptions(tz="Europe/Berlin"))
    assert len(frame) == 72 and str(frame.index.tz) == "UTC"  # no invented hour
    assert frame["y"].tolist() == list(np.arange(72.0))


def test_fall_back_repeated_hour_suggests_tz(tmp_path, capsys):
    path = _local_hours(tmp_path, "2024-10-26", "autumn.csv")
    _refused(["inspect", str(path)], capsys, "autumn.csv", "2024-10-27 02:00:00",
             "appears 2 times", "--tz Europe/Berlin")
    frame = load_csv(path, reading=ReadOptions(tz="Europe/Berlin"))
    assert len(frame) == 72 and frame.index.is_unique
    assert frame["y"].tolist() == list(np.arange(72.0))  # both 02:00 rows kept, in order


def test_a_time_that_does_not_exist_in_the_zone_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,y\n2024-03-31 01:00,1\n2024-03-31 02:00,2\n2024-03-31 03:00,3\n")
    with pytest.raises(DataError, match=r"'2024-03-31 02:00' on line 3.*does not exist in "
                                        r"Europe/Berlin"):
        load_csv(path, reading=ReadOptions(tz="Europe/Berlin"))


def test_utc_data_missing_an_ordinary_hour_is_filled(tmp_path):
    times = pd.date_range("2024-01-10", periods=30, freq="h").delete(4)
    path = tmp_path / "utc.csv"
    pd.DataFrame({"date": times, "y": np.arange(29.0)}).to_csv(path, index=False)
    assert len(load_csv(path)) == 30


# -- 6. paths that are not regular files -------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_hanging(tmp_path, capsys):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    _refused(["inspect", str(fifo)], capsys, "pipe.csv", "FIFO", "not a regular CSV file")
    _refused(["train", str(fifo), "--no-track"], capsys, "pipe.csv", "FIFO")


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "character device"),
                                            ("/tmp", "directory")])
def test_devices_and_directories_are_refused(path, kind, capsys):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    _refused(["inspect", path], capsys, path, kind)
