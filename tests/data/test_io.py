"""Tests of forecast.data.io: load_csv and validate_frame, on small CSVs written to tmp_path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast.data.io import DEFAULT_MAX_GAP, load_csv, validate_frame
from forecast.errors import ConfigError, DataError

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def hourly(n: int, start: str = "2024-01-01 00:00", value=lambda i: float(i)) -> str:
    times = pd.date_range(start, periods=n, freq="h")
    return "date,y\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{value(i)}\n" for i, t in enumerate(times))


def fails(kind, call, *fragments):
    """Runs ``call``; asserts it raises ``kind`` whose message contains every fragment."""
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


# --------------------------------------------------------------------------- happy paths


def test_etth1_loads_hourly_with_all_columns():
    frame = load_csv(DATASETS / "ETTh1.csv")
    assert frame.shape == (17420, 7)
    assert list(frame.columns) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert frame.attrs["freq"] == "h"
    assert frame.index.freqstr == "h"
    assert frame.index.name == "date"
    assert frame.index[0] == pd.Timestamp("2016-07-01 00:00:00")
    assert frame.index[-1] == pd.Timestamp("2018-06-26 19:00:00")
    assert frame["HUFL"].iloc[0] == pytest.approx(5.827)
    assert (frame.dtypes == np.float64).all()
    assert frame.attrs == {
        "freq": "h", "time_col": "date", "targets": list(frame.columns), "covariates": [],
        "id_col": None, "source": str(DATASETS / "ETTh1.csv"),
        "reading": {"sep": ",", "decimal": ".", "time_col": "date", "date_format": None,
                    "dayfirst": None, "tz": None},
    }


def test_co2_weekly_with_empty_weeks_is_filled():
    raw = pd.read_csv(DATASETS / "co2.csv")
    assert raw["co2"].isna().sum() == 59
    frame = load_csv(DATASETS / "co2.csv")
    assert frame.shape == (2284, 1)
    assert frame.attrs["freq"] == "W-SAT"
    assert frame.index[0] == pd.Timestamp("1958-03-29")
    assert frame.index[-1] == pd.Timestamp("2001-12-29")
    assert not frame["co2"].isna().any()
    # line 8 (1958-05-10) is empty between 316.9 (05-03) and 317.5 (05-17)
    assert frame.loc["1958-05-10", "co2"] == pytest.approx(317.2)
    # lines 11-15 (05-31 to 06-28) are empty between 317.9 (05-24) and 315.8 (07-05)
    expected = [317.9 + k * (315.8 - 317.9) / 6 for k in range(1, 6)]
    assert frame.loc["1958-05-31":"1958-06-28", "co2"].tolist() == pytest.approx(expected)
    fails(DataError, lambda: load_csv(DATASETS / "co2.csv", max_gap=4),
          "co2.csv", "'co2'", "--max-gap 4 steps", "pass --max-gap 5",
          "`data.max_gap`")


def test_targets_and_covariates_are_ordered_and_others_dropped(tmp_path):
    path = write(tmp_path, "date,a,b,c,label\n2024-01-01,1,2,3,x\n2024-01-02,4,5,6,y\n")
    frame = load_csv(path, targets="c", covariates=["a"])
    assert list(frame.columns) == ["c", "a"]
    assert frame.attrs["targets"] == ["c"] and frame.attrs["covariates"] == ["a"]
    assert frame["c"].tolist() == [3.0, 6.0]
    assert frame.attrs["freq"] == "D"
    # default targets: every numeric column; the text column is dropped
    assert list(load_csv(path).columns) == ["a", "b", "c"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_semicolon_tab_and_pipe_delimiters(tmp_path, delimiter):
    text = hourly(4).replace(",", delimiter)
    frame = load_csv(write(tmp_path, text))
    assert frame["y"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert frame.attrs["freq"] == "h"


def test_semicolon_file_with_decimal_commas(tmp_path):
    path = write(tmp_path, "datum;wert\n2024-01-01;1,5\n2024-01-02;2,25\n2024-01-03;-3\n")
    assert load_csv(path, time_col="datum")["wert"].tolist() == [1.5, 2.25, -3.0]


def test_single_value_column_and_crlf_and_blank_lines(tmp_path):
    path = write(tmp_path, b"ds,y\r\n2024-01-01,1\r\n\r\n2024-01-02,2\r\n2024-01-03,3\r\n")
    frame = load_csv(path)
    assert frame["y"].tolist() == [1.0, 2.0, 3.0]
    assert frame.index.name == "ds"


def test_utf8_bom_is_skipped(tmp_path):
    path = write(tmp_path, "\ufeff".encode() + hourly(3).encode())
    frame = load_csv(path)
    assert frame.index.name == "date"
    assert frame["y"].tolist() == [0.0, 1.0, 2.0]


def test_utf16_with_bom_and_explicit_latin1(tmp_path):
    path = write(tmp_path, hourly(3).encode("utf-16"))
    assert load_csv(path)["y"].tolist() == [0.0, 1.0, 2.0]
    path = write(tmp_path, "date,temp°\n2024-01-01,1\n2024-01-02,2\n".encode("latin-1"))
    assert list(load_csv(path, encoding="latin-1").columns) == ["temp°"]


def test_tz_aware_timestamps_stay_tz_aware(tmp_path):
    text = "time,y\n2024-01-01T00:00:00+01:00,1\n2024-01-01T01:00:00+01:00,2\n" \
           "2024-01-01T03:00:00+01:00,4\n"
    frame = load_csv(write(tmp_path, text))
    assert str(frame.index.tz) == "UTC+01:00"
    assert frame.index[0] == pd.Timestamp("2024-01-01 00:00", tz="Europe/Paris")
    assert frame["y"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_mixed_utc_offsets_are_converted_to_utc(tmp_path):
    # Paris around the daylight-saving change of 2024-03-31: +01:00 then +02:00
    text = ("time,y\n2024-03-31T01:00:00+01:00,1\n2024-03-31T03:00:00+02:00,2\n"
            "2024-03-31T04:00:00+02:00,3\n")
    frame = load_csv(write(tmp_path, text))
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-03-31 00:00", tz="UTC")
    assert frame.attrs["freq"] == "h" and len(frame) == 3


def test_interpolation_fills_two_missing_steps_linearly(tmp_path):
    text = "date,y,x\n2024-01-01 00:00,1,10\n2024-01-01 01:00,2,20\n2024-01-01 04:00,8,50\n"
    frame = load_csv(write(tmp_path, text))
    assert len(frame) == 5 and frame.index.freqstr == "h"
    assert frame["y"].tolist() == pytest.approx([1, 2, 4, 6, 8])
    assert frame["x"].tolist() == pytest.approx([10, 20, 30, 40, 50])


def test_empty_cells_are_gaps_and_ffill_and_zero_policies(tmp_path):
    text = "date,y\n2024-01-01,1\n2024-01-02,\n2024-01-03,NA\n2024-01-04,7\n"
    path = write(tmp_path, text)
    assert load_csv(path)["y"].tolist() == pytest.approx([1, 3, 5, 7])
    assert load_csv(path, fill="ffill")["y"].tolist() == [1, 1, 1, 7]
    assert load_csv(path, fill="zero")["y"].tolist() == [1, 0, 0, 7]


@pytest.mark.parametrize(("policy", "expected"), [
    ("first", [1.0, 10.0, 4.0]), ("last", [1.0, 30.0, 4.0]), ("mean", [1.0, 20.0, 4.0]),
])
def test_duplicate_policies_give_exact_values(tmp_path, policy, expected):
    text = "date,y\n2024-01-01,1\n2024-01-02,10\n2024-01-02,20\n2024-01-02,30\n2024-01-03,4\n"
    frame = load_csv(write(tmp_path, text), duplicates=policy)
    assert frame["y"].tolist() == expected
    assert len(frame) == 3


def test_unsorted_input_is_sorted_with_one_warning(tmp_path, caplog):
    text = "date,y\n2024-01-03,3\n2024-01-01,1\n2024-01-04,4\n2024-01-02,2\n"
    with caplog.at_level(logging.WARNING, logger="forecast.data.io"):
        frame = load_csv(write(tmp_path, text))
    assert frame["y"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert frame.index.is_monotonic_increasing
    assert len([r for r in caplog.records if "not in time order" in r.message]) == 1


def test_constant_target_loads_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="forecast.data.io"):
        frame = load_csv(write(tmp_path, hourly(5, value=lambda i: 2.5)))
    assert frame["y"].tolist() == [2.5] * 5
    assert any("'y' is constant" in r.message for r in caplog.records)


def test_long_format_two_series(tmp_path):
    text = ("store,date,sales\n"
            "A,2024-01-01,1\nB,2024-01-01,10\nA,2024-01-02,2\nB,2024-01-03,30\nA,2024-01-03,3\n")
    frame = load_csv(write(tmp_path, text), id_col="store")
    assert frame.index.names == ["store", "date"]
    assert frame.loc["A", "sales"].tolist() == [1.0, 2.0, 3.0]
    assert frame.loc["B", "sales"].tolist() == [10.0, 20.0, 30.0]  # B's gap interpolated
    assert frame.attrs["id_col"] == "store" and frame.attrs["freq"] == "D"
    assert frame.attrs["targets"] == ["sales"]


def test_explicit_freq_moves_irregular_timestamps_onto_the_grid(tmp_path):
    text = "date,y\n2024-01-01 00:00,0\n2024-01-01 01:10,1\n2024-01-01 02:00,2\n" \
           "2024-01-01 04:05,4\n"
    frame = load_csv(write(tmp_path, text), freq="h")
    assert frame.index.freqstr == "h"
    assert frame["y"].tolist() == pytest.approx([0, 1, 2, 3, 4])


def test_monthly_with_a_missing_month(tmp_path):
    text = "month_date,y\n2024-01-01,1\n2024-02-01,2\n2024-03-01,3\n2024-05-01,5\n2024-06-01,6\n"
    frame = load_csv(write(tmp_path, text))
    assert frame.attrs["freq"] == "MS"
    assert frame.loc["2024-04-01", "y"] == pytest.approx(3 + 2 * 31 / 61)  # linear in time


def test_validate_frame_accepts_datetimes_index_and_round_trip():
    raw = pd.DataFrame({"ds": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"]),
                        "y": [1, 3, 2], "flag": [True, False, True]})
    frame = validate_frame(raw, source="history")
    assert frame["y"].tolist() == [1.0, 2.0, 3.0]
    assert list(frame.columns) == ["y"] and frame.attrs["source"] == "history"
    again = validate_frame(frame)
    pd.testing.assert_frame_equal(again, frame)
    long = load_csv_like_long()
    assert validate_frame(long, id_col="id").loc["b", "v"].tolist() == [5.0, 6.0]


def load_csv_like_long() -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "a", "b", "b"],
                         "time": ["2024-01-01 00:00", "2024-01-01 01:00"] * 2,
                         "v": [1, 2, 5, 6]})


def test_min_rows_is_met(tmp_path):
    assert len(load_csv(write(tmp_path, hourly(10)), min_rows=10)) == 10


# --------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    fails(DataError, lambda: load_csv(tmp_path / "nope.csv"), "nope.csv", "file not found",
          "Check the path")


def test_directory(tmp_path):
    fails(DataError, lambda: load_csv(tmp_path), str(tmp_path), "is a directory",
          "path of a .csv file")


def test_empty_file(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, b"")), "data.csv", "empty (0 bytes)")


def test_whitespace_only_file(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, "\n \n")), "data.csv", "only whitespace")


def test_header_only(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, "date,y\n")), "data.csv", "no data rows",
          "Add rows")


def test_binary_png(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00")),
          "data.csv", "not a text CSV", "PNG")


def test_binary_nul_bytes(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, b"date,y\n2024\x00\x01,1\n")),
          "data.csv", "not a text CSV", "NUL byte", "line 2")


def test_excel_workbook(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, b"PK\x03\x04rest", "book.xlsx")),
          "book.xlsx", "not a text CSV", "save it from Excel as CSV")


def test_wrong_encoding(tmp_path):
    path = write(tmp_path, "date,temp\n2024-01-01,1\n2024-01-02,caf\xe9\n".encode("latin-1"))
    fails(DataError, lambda: load_csv(path), "data.csv", "not valid utf-8", "0xe9",
          "line 3", "Re-save the file as UTF-8", "encoding=")


def test_unknown_encoding_option(tmp_path):
    fails(ConfigError, lambda: load_csv(write(tmp_path, hourly(3)), encoding="klingon"),
          "`encoding`", "klingon")


def test_ragged_row(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, "date,y\n2024-01-01,1\n2024-01-02,2,9\n")),
          "data.csv", "line 3 has 3 field(s)", "header (line 1) has 2")


def test_duplicate_column_names(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, "date,y,y\n2024-01-01,1,2\n")),
          "data.csv", "'y'", "more than once")


# --------------------------------------------------------------------------- bad columns


def test_no_time_column(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, "a,b\n1,2\n3,4\n")), "data.csv",
          "no time column", "'a', 'b'", "--time-col", "`data.time_col`")


def test_two_time_like_columns(tmp_path):
    text = "date,updated,y\n2024-01-01,2024-02-01 10:00,1\n2024-01-02,2024-02-02 10:00,2\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'date', 'updated'",
          "--time-col date", "`data.time_col: date`")
    assert len(load_csv(write(tmp_path, text), time_col="date")) == 2


def test_time_col_missing(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, hourly(3)), time_col="Date"),
          "data.csv", "'Date'", "did you mean 'date'", "The columns are: 'date', 'y'")


def test_unparseable_timestamp_names_line_and_value(tmp_path):
    text = hourly(5).replace("2024-01-01 03:00:00", "2024-13-45 03:00")
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'date'",
          "'2024-13-45 03:00'", "line 5", "line 1 is the header", "ISO 8601")


def test_empty_timestamp(tmp_path):
    text = "date,y\n2024-01-01,1\n,2\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'date'",
          "empty on line 3", "fill it in or remove the row")


def test_number_in_time_column(tmp_path):
    text = "time,y\n0,1\n1.5,2\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'time'",
          "is a number, not a timestamp", "line 2")


def test_timestamps_with_and_without_time_zone(tmp_path):
    text = "date,y\n2024-01-01 00:00+00:00,1\n2024-01-01 01:00,2\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "mixes timestamps",
          "line 3", "'2024-01-01 01:00'")


def test_text_in_numeric_column_names_line_and_value(tmp_path):
    text = hourly(20).replace(",15.0\n", ",15.O\n")
    message = fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'y'",
                    "line 17", "'15.O'", "line 1 is the header", "Fix or remove")
    assert "more" not in message


def test_text_in_named_target(tmp_path):
    text = "date,y\n2024-01-01,high\n2024-01-02,low\n2024-01-03,3\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text), targets="y"), "data.csv",
          "'y' must hold numbers", "line 2", "'high'", "1 more")


def test_no_numeric_column(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, "date,name\n2024-01-01,a\n")),
          "data.csv", "no numeric column", "'date', 'name'", "--target", "`data.targets`")


def test_target_column_missing(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, hourly(3)), targets=["y", "OT"]),
          "data.csv", "--target (YAML `data.targets`)", "'OT'", "The columns are: 'date', 'y'")


def test_covariate_column_missing(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, hourly(3)), covariates="temp"),
          "data.csv", "--covariate (YAML `data.covariates`)", "'temp'", "'date', 'y'")


def test_inf_in_target(tmp_path):
    text = hourly(4).replace(",2.0\n", ",inf\n")
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'y'",
          "infinite", "line 4", "finite number")


def test_duplicate_timestamps_error(tmp_path):
    text = "date,y\n2024-01-01,1\n2024-01-02,2\n2024-01-02,3\n2024-01-03,4\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv",
          "2024-01-02 00:00:00", "lines 3, 4", "--duplicates first, last or mean",
          "`data.duplicates`", "--id-col COLUMN (YAML `data.id_col`)")


def test_irregular_timestamps(tmp_path):
    text = ("date,y\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01 02:30,3\n"
            "2024-01-01 03:00,4\n2024-01-01 04:00,5\n2024-01-01 05:00,6\n")
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "irregular",
          "line 4", "0 days 01:00:00", "--freq (YAML `data.freq`)")


def test_single_row_needs_freq(tmp_path):
    path = write(tmp_path, "date,y\n2024-01-01,1\n")
    fails(DataError, lambda: load_csv(path), "data.csv", "single timestamp", "--freq h")
    assert load_csv(path, freq="D")["y"].tolist() == [1.0]


def test_gap_longer_than_max_gap(tmp_path):
    text = "date,y\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-02 06:00,3\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv",
          "28 consecutive timestamp(s) are missing", "2024-01-01 02:00:00",
          "2024-01-02 05:00:00", "between line 3 and line 4",
          f"--max-gap {DEFAULT_MAX_GAP} steps", "pass --max-gap 28", "`data.max_gap`")
    assert len(load_csv(write(tmp_path, text), max_gap=28)) == 31


def test_empty_cells_beyond_max_gap(tmp_path):
    text = "date,y\n2024-01-01,1\n2024-01-02,\n2024-01-03,\n2024-01-04,\n2024-01-05,5\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text), max_gap=2), "data.csv",
          "'y' is missing 3 consecutive value(s)", "2024-01-02", "2024-01-04",
          "empty on lines 3 to 5", "pass --max-gap 3")


def test_fill_error_refuses_any_gap(tmp_path):
    text = "date,y\n2024-01-01,1\n2024-01-02,\n2024-01-03,3\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text), fill="error"), "data.csv",
          "'y'", "empty on line 3", "--fill error (YAML `data.fill: error`) refuses gaps",
          "--fill interpolate")


def test_leading_nan_cannot_be_interpolated(tmp_path):
    text = "date,y,x\n2024-01-01,,1\n2024-01-02,,2\n2024-01-03,3,3\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'y'",
          "at the start", "empty on lines 2 to 3", "no value before them", "--fill zero")


def test_trailing_nan_cannot_be_interpolated(tmp_path):
    text = "date,y\n2024-01-01,1\n2024-01-02,2\n2024-01-03,\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text)), "data.csv", "'y'", "at the end",
          "empty on line 4")
    assert load_csv(write(tmp_path, text), fill="ffill")["y"].tolist() == [1.0, 2.0, 2.0]


def test_all_empty_target(tmp_path):
    text = "date,y,x\n2024-01-01,,1\n2024-01-02,,2\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text), targets="y"), "data.csv", "'y'",
          "no values at all")


def test_fewer_rows_than_min_rows(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, hourly(50)), min_rows=120,
                                      min_rows_reason="lookback 96 + horizon 24"),
          "data.csv", "has 50 row(s)", "needs at least 120 rows (lookback 96 + horizon 24)")


def test_long_format_series_too_short(tmp_path):
    text = "id,date,y\n" + "".join(f"a,2024-01-{d:02d},{d}\n" for d in range(1, 11)) + \
           "b,2024-01-01,1\nb,2024-01-02,2\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text), id_col="id", min_rows=5),
          "data.csv", "series 'b'", "has 2 row(s)", "at least 5 rows")


def test_long_format_mixed_frequencies(tmp_path):
    text = ("id,date,y\n" + "".join(f"a,2024-01-01 {h:02d}:00,{h}\n" for h in range(6))
            + "".join(f"b,2024-01-0{d},{d}\n" for d in range(1, 4)))
    fails(DataError, lambda: load_csv(write(tmp_path, text), id_col="id"), "data.csv",
          "one frequency", "series 'b'", "'D'", "'h'", "--freq")


def test_long_format_duplicates_name_the_series(tmp_path):
    text = "id,date,y\na,2024-01-01,1\na,2024-01-01,2\nb,2024-01-01,1\n"
    fails(DataError, lambda: load_csv(write(tmp_path, text), id_col="id"), "data.csv",
          "series 'a'", "lines 2, 3")


def test_id_column_missing(tmp_path):
    fails(DataError, lambda: load_csv(write(tmp_path, hourly(3)), id_col="store"),
          "data.csv", "--id-col (YAML `data.id_col`)", "'store'", "'date', 'y'")


# --------------------------------------------------------------------------- bad options


@pytest.mark.parametrize(("kwargs", "fragments"), [
    ({"duplicates": "bogus"}, ["`duplicates`", "'error', 'first', 'last', 'mean'", "bogus"]),
    ({"fill": "none"}, ["`fill`", "'interpolate', 'ffill', 'zero', 'error'", "'none'"]),
    ({"freq": "H"}, ["`freq`", "freq='H'", "Did you mean 'h'?"]),
    ({"max_gap": -1}, ["`max_gap`", "max_gap=-1"]),
    ({"min_rows": 0}, ["`min_rows`", "min_rows=0"]),
    ({"targets": []}, ["`targets`", "at least one"]),
    ({"targets": [1]}, ["`targets`", "[1]"]),
    ({"time_col": "date", "targets": "date"}, ["`targets`", "time or id column"]),
    ({"targets": "y", "covariates": "y"}, ["both a target and a covariate"]),
    ({"time_col": "date", "id_col": "date"}, ["`time_col` and `id_col`"]),
])
def test_bad_option_values(tmp_path, kwargs, fragments):
    fails(ConfigError, lambda: load_csv(write(tmp_path, hourly(3)), **kwargs), *fragments)


def test_bad_path_type():
    fails(ConfigError, lambda: load_csv(42), "`path`", "path=42")


def test_validate_frame_bad_inputs():
    fails(DataError, lambda: validate_frame([1, 2]), "'<frame>'", "received list")
    fails(DataError, lambda: validate_frame(pd.DataFrame({"ds": [], "y": []})), "'<frame>'",
          "no data rows")
    raw = pd.DataFrame({"ds": ["2024-01-01", "2024-01-02", "nope"], "y": [1, 2, 3]})
    fails(DataError, lambda: validate_frame(raw, source="request"), "'request'", "'nope'",
          "row 3", "row 1 is the first data row")
    raw = pd.DataFrame({"ds": ["2024-01-01", "2024-01-02"], "y": [1.0, np.inf]})
    fails(DataError, lambda: validate_frame(raw), "infinite", "row 2")


@pytest.mark.parametrize(("cells", "first"), [
    (["12/02/2024", "13/02/2024", "14/02/2024"], "2024-02-12"),  # day first: 13 is no month
    (["02/12/2024", "02/13/2024", "02/14/2024"], "2024-02-12"),  # month first
    (["Feb 12 2024", "Feb 13 2024", "Feb 14 2024"], "2024-02-12"),
])
def test_non_iso_timestamps_use_one_layout(tmp_path, cells, first):
    path = write(tmp_path, "when,y\n" + "".join(f"{c},{i}\n" for i, c in enumerate(cells)))
    frame = load_csv(path)  # found by value: 'when' is not a time-like name
    assert frame.index[0] == pd.Timestamp(first)
    assert frame.attrs["freq"] == "D" and frame.attrs["time_col"] == "when"


def test_time_index_frame_and_dst_zone_keep_their_zone():
    index = pd.date_range("2024-03-30", periods=72, freq="h", tz="Europe/Paris")
    frame = validate_frame(pd.DataFrame({"v": np.arange(72.0)}, index=index))
    assert str(frame.index.tz) == "Europe/Paris" and len(frame) == 72
    assert frame.attrs["freq"] == "h" and frame.attrs["time_col"] == "time"


def test_empty_datetime_cell_in_frame():
    raw = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None]), "v": [1, 2]})
    fails(DataError, lambda: validate_frame(raw, source="history"), "'history'",
          "'t' is empty on row 2", "remove the row")


def test_long_format_single_timestamps_need_freq(tmp_path):
    path = write(tmp_path, "k,date,v\na,2024-01-01,1\nb,2024-01-02,2\n")
    fails(DataError, lambda: load_csv(path, id_col="k"), "data.csv", "series 'a'",
          "single timestamp", "--freq")
    frame = load_csv(path, id_col="k", freq="D")
    assert frame.loc["b", "v"].tolist() == [2.0]
