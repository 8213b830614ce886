"""Tests of forecast/data/windows.py: shapes, exact values, series boundaries, bad input."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from forecast.data import WindowSpec, make_dataset
from forecast.errors import ConfigError, DataError


def _frame(n=40, start="2024-01-01"):
    index = pd.date_range(start, periods=n, freq="h", name="date")
    frame = pd.DataFrame(
        {"y": np.arange(n, dtype=np.float64), "x": 1000.0 + np.arange(n), "cal": -np.arange(n)},
        index=index,
    )
    frame.attrs = {"freq": "h", "source": "test.csv"}
    return frame


def _long_frame(lengths=(30, 25)):
    pieces = []
    for k, n in enumerate(lengths):
        index = pd.MultiIndex.from_arrays(
            [[f"s{k}"] * n, pd.date_range("2024-01-01", periods=n, freq="D")],
            names=["id", "date"],
        )
        pieces.append(pd.DataFrame({"y": k * 1000.0 + np.arange(n)}, index=index))
    frame = pd.concat(pieces)
    frame.attrs = {"freq": "D", "id_col": "id", "source": "long.csv"}
    return frame


def _all(dataset):
    xs, ys = [], []
    for inputs, targets in dataset:
        xs.append(inputs)
        ys.append(targets.numpy())
    return xs, np.concatenate(ys)


def test_windows_hold_exact_rows_and_shapes():
    spec = WindowSpec(lookback=5, horizon=3, targets=("y",), past_covariates=("x",))
    xs, ys = _all(make_dataset(_frame(), spec, batch_size=8))
    x = np.concatenate([t.numpy() for t in xs])
    assert x.shape == (40 - 8 + 1, 5, 2) and ys.shape == (33, 3, 1)
    assert x.dtype == np.float32 and ys.dtype == np.float32
    np.testing.assert_array_equal(x[7, :, 0], [7, 8, 9, 10, 11])
    np.testing.assert_array_equal(x[7, :, 1], [1007, 1008, 1009, 1010, 1011])
    np.testing.assert_array_equal(ys[7, :, 0], [12, 13, 14])
    # the last window ends on the last row: nothing is dropped
    assert ys[-1, -1, 0] == 39


def test_future_covariates_come_as_a_second_input():
    spec = WindowSpec(4, 2, targets=("y",), future_covariates=("cal",))
    (past, future), targets = next(iter(make_dataset(_frame(), spec, batch_size=4)))
    assert past.shape == (4, 4, 2) and future.shape == (4, 2, 1) and targets.shape == (4, 2, 1)
    np.testing.assert_array_equal(past[1, :, 1], [-1, -2, -3, -4])  # the history of the covariate
    np.testing.assert_array_equal(future[1, :, 0], [-5, -6])  # its known future values
    np.testing.assert_array_equal(targets[1, :, 0], [5, 6])


def test_stride_and_drop_remainder():
    spec = WindowSpec(5, 3, targets=("y",), stride=4)
    starts = spec.window_starts(_frame())
    np.testing.assert_array_equal(starts, [0, 4, 8, 12, 16, 20, 24, 28, 32])
    _, ys = _all(make_dataset(_frame(), spec, batch_size=4, drop_remainder=True))
    assert ys.shape[0] == 8


def test_windows_never_cross_series():
    spec = WindowSpec(6, 4, targets=("y",))
    frame = _long_frame((30, 25))
    xs, ys = _all(make_dataset(frame, spec, batch_size=7))
    x = np.concatenate([t.numpy() for t in xs])
    assert len(x) == (30 - 10 + 1) + (25 - 10 + 1)
    series_of_input = x[:, :, 0] // 1000
    series_of_target = ys[:, :, 0] // 1000
    assert (series_of_input == series_of_input[:, :1]).all()
    assert (series_of_target == series_of_input[:, :1]).all()
    # the first window of the second series starts at its own first row
    np.testing.assert_array_equal(x[21, :, 0], 1000 + np.arange(6))


def test_series_too_short_is_named():
    with pytest.raises(DataError, match=r"series 's1' has 8 rows.*needs at least 10 rows"):
        make_dataset(_long_frame((30, 8)), WindowSpec(6, 4, targets=("y",)))


def test_shuffle_is_seeded_and_covers_every_window():
    spec = WindowSpec(5, 3, targets=("y",))
    first = _all(make_dataset(_frame(), spec, batch_size=5, shuffle=True, seed=3))[1]
    second = _all(make_dataset(_frame(), spec, batch_size=5, shuffle=True, seed=3))[1]
    np.testing.assert_array_equal(first, second)
    assert sorted(first[:, 0, 0].tolist()) == list(range(5, 38))
    assert first[:, 0, 0].tolist() != list(range(5, 38))


def test_window_as_frames_has_timestamps():
    spec = WindowSpec(4, 2, targets=("y",), future_covariates=("cal",))
    window = spec.frame(_frame(), 3)
    assert window.inputs.index[0] == pd.Timestamp("2024-01-01 03:00")
    assert window.inputs.index[-1] == pd.Timestamp("2024-01-01 06:00")
    assert window.targets.index[0] == pd.Timestamp("2024-01-01 07:00")
    assert list(window.inputs.columns) == ["y", "cal"]
    assert window.targets["y"].tolist() == [7.0, 8.0]
    assert window.future["cal"].tolist() == [-7.0, -8.0]
    with pytest.raises(DataError, match="window 99 does not exist: the frame has 35 windows"):
        spec.frame(_frame(), 99)


def test_too_few_rows_says_how_many_are_needed():
    with pytest.raises(DataError, match=r"test.csv: has 40 rows.*needs at least 120 rows "
                                        r"\(lookback 96 \+ horizon 24\)"):
        make_dataset(_frame(), WindowSpec(96, 24, targets=("y",)))


def test_missing_column_lists_the_columns():
    with pytest.raises(DataError, match=r"columns \['OT'\] are not in the data; it has"):
        make_dataset(_frame(), WindowSpec(4, 2, targets=("OT",)))


def test_non_finite_values_are_refused():
    frame = _frame()
    frame.iloc[10, 0] = np.inf
    with pytest.raises(DataError, match=r"column 'y' holds inf at 2024-01-01 10:00:00 \(row 10\)"):
        make_dataset(frame, WindowSpec(4, 2, targets=("y",)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lookback=0, horizon=2, targets=("y",)), "`lookback` must be a positive integer"),
        (dict(lookback=3, horizon=-1, targets=("y",)), "`horizon` must be a positive integer"),
        (dict(lookback=3, horizon=2, targets=("y",), stride=0), "`stride` must be a positive"),
        (dict(lookback=3, horizon=2, targets=()), "`targets` must name at least one column"),
        (dict(lookback=3, horizon=2, targets=("y",), past_covariates=("y",)), "more than once"),
        (dict(lookback=2.5, horizon=2, targets=("y",)), "Received: lookback=2.5"),
    ],
)
def test_bad_specs_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WindowSpec(**kwargs)


def test_bad_batch_size():
    with pytest.raises(ConfigError, match="`batch_size` must be a positive integer"):
        make_dataset(_frame(), WindowSpec(4, 2, targets=("y",)), batch_size=0)


def test_spec_round_trips_through_json_data():
    spec = WindowSpec(8, 4, targets=("a", "b"), future_covariates=("c",), stride=2)
    assert WindowSpec.from_dict(spec.to_dict()) == spec
    assert spec.input_columns == ("a", "b", "c") and spec.min_rows == 12


def test_batches_count_every_window_once():
    frame = _frame(400)
    spec = WindowSpec(50, 10, targets=("y",), past_covariates=("x", "cal"))
    dataset = make_dataset(frame, spec, batch_size=16)
    assert dataset.element_spec[0].shape.as_list() == [None, 50, 3]
    assert sum(int(t.shape[0]) for _, t in dataset) == 400 - 60 + 1
    assert tf.data.experimental.cardinality(dataset).numpy() == int(np.ceil(341 / 16))
