"""Property tests of forecast.data.io: malformed input gives a valid frame or a ForecastError.

Hypothesis writes random CSVs (random bytes, random text, and structured files with shuffled rows,
duplicated and missing timestamps, missing cells, junk cells and junk lines). The loader must
either return a valid frame (a unique, increasing DatetimeIndex, float columns, no NaN or inf)
or raise DataError / ConfigError — never a raw pandas/NumPy exception, and never the internal
safety net's "unexpected internal error".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecast.data.io import load_csv, validate_frame
from forecast.errors import ConfigError, DataError

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

NAMES = ["date", "time", "ds", "y", "x", "OT", "value", "", "date2", "note", "zeit", "Y"]
JUNK = ["", "NA", "nan", "inf", "-inf", "abc", "1e400", "1,5", "--", '"', "'", "2024-13-01",
        "NaT", "None", "  ", "0x10", "1_000", "\u00e9", "2024-01-01", "12:00", "+01:00", "Z"]
DELIMITERS = [",", ";", "\t", "|"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("io_props")


def check(call) -> pd.DataFrame | None:
    """Runs the loader; asserts the result is a valid frame or a clean ForecastError."""
    try:
        frame = call()
    except (DataError, ConfigError) as exc:
        message = str(exc)
        assert "unexpected internal error" not in message, message
        assert message
        return None
    assert isinstance(frame, pd.DataFrame)
    times = frame.index
    if isinstance(times, pd.MultiIndex):
        for key in times.get_level_values(0).unique():
            _check_times(frame.xs(key, level=0).index)
    else:
        _check_times(times)
    assert len(frame) >= 1 and frame.shape[1] >= 1
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert np.isfinite(frame.to_numpy()).all()
    assert set(frame.attrs) == {"freq", "time_col", "targets", "covariates", "id_col", "source",
                                "reading"}
    assert list(frame.columns) == frame.attrs["targets"] + frame.attrs["covariates"]
    return frame


def _check_times(times) -> None:
    assert isinstance(times, pd.DatetimeIndex)
    assert times.is_monotonic_increasing and times.is_unique


@st.composite
def timestamps(draw, n: int) -> list[str]:
    freq = draw(st.sampled_from(["h", "D", "15min", "W-SUN", "MS"]))
    grid = pd.date_range("2024-01-07", periods=n * 3, freq=freq)
    picks = sorted(draw(st.lists(st.integers(0, n * 3 - 1), min_size=n, max_size=n)))
    layout = draw(st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S+01:00",
                                   "%d/%m/%Y %H:%M", "%Y%m%d", "%Y-%m-%d"]))
    out = [grid[p].strftime(layout) for p in picks]
    if draw(st.booleans()):
        out = draw(st.permutations(out))
    return out


@st.composite
def structured_csv(draw) -> str:
    n = draw(st.integers(1, 30))
    width = draw(st.integers(1, 4))
    header = ["date"] + draw(st.lists(st.sampled_from(NAMES), min_size=width - 1,
                                      max_size=width - 1))
    times = draw(timestamps(n))
    cell = st.one_of(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.3f}"),
                     st.integers(-100, 100).map(str), st.sampled_from(JUNK))
    clean = draw(st.booleans())  # half the files have only numbers and a few empty cells
    if clean:
        cell = st.one_of(st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: f"{v:.2f}"),
                         st.just(""))
    rows = []
    for t in times:
        cells = [t] + [draw(cell) for _ in range(width - 1)]
        if not clean and draw(st.integers(0, 20)) == 0:
            cells = cells[: draw(st.integers(0, len(cells)))]  # a short row
        rows.append(cells)
    if not clean and draw(st.booleans()):
        rows.insert(draw(st.integers(0, len(rows))), [draw(st.sampled_from(JUNK))])
    delimiter = draw(st.sampled_from(DELIMITERS))
    text = "\n".join(delimiter.join(r) for r in [header, *rows]) + "\n"
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


OPTIONS = st.fixed_dictionaries({}, optional={
    "fill": st.sampled_from(["interpolate", "ffill", "zero", "error", "bogus"]),
    "duplicates": st.sampled_from(["error", "first", "last", "mean"]),
    "max_gap": st.sampled_from([0, 1, 3, 24, None, -2]),
    "freq": st.sampled_from([None, "h", "D", "MS", "not-a-freq"]),
    "targets": st.sampled_from([None, "y", ["x", "y"], "date"]),
    "min_rows": st.sampled_from([None, 1, 5]),
})


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(folder, data):
    path = folder / "bytes.csv"
    path.write_bytes(data)
    check(lambda: load_csv(path))


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("date,y;\t\n0123456789-: .Tx\"NA+eZ")),
                    max_size=200))
def test_random_text(folder, text):
    path = folder / "text.csv"
    path.write_text(text, encoding="utf-8")
    check(lambda: load_csv(path))


@SETTINGS
@given(text=structured_csv(), options=OPTIONS)
def test_structured_malformed_csv(folder, text, options):
    path = folder / "structured.csv"
    path.write_text(text, encoding="utf-8")
    frame = check(lambda: load_csv(path, **options))
    if frame is not None:
        assert frame.index.name == "date"


@SETTINGS
@given(text=structured_csv(), ids=st.lists(st.sampled_from(["a", "b", ""]), min_size=40,
                                           max_size=40))
def test_long_format(folder, text, ids):
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        return
    delimiter = next((d for d in DELIMITERS if d in lines[0]), ",")
    rows = [f"id{delimiter}{lines[0]}"] + [f"{k}{delimiter}{line}"
                                           for k, line in zip(ids, lines[1:], strict=False)]
    path = folder / "long.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    check(lambda: load_csv(path, id_col="id", duplicates="mean"))


@SETTINGS
@given(values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(),
                                 st.text(max_size=3)), min_size=1, max_size=20),
       stamps=st.lists(st.datetimes(min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
                                    max_value=pd.Timestamp("1990-03-01").to_pydatetime()),
                       min_size=20, max_size=20))
def test_validate_frame_random(values, stamps):
    frame = pd.DataFrame({"ds": stamps[: len(values)], "y": pd.Series(values, dtype=object)})
    check(lambda: validate_frame(frame, freq="D", duplicates="mean", max_gap=60))
