"""Rolling-origin backtest: fold layout, no leakage, metrics, per-fold scalers."""

import numpy as np
import pandas as pd
import pytest

from forecast.data.scaling import Scaler
from forecast.data.windows import WindowSpec
from forecast.errors import ConfigError, DataError
from forecast.evaluation.backtest import BaselineEstimator, backtest, window_targets
from forecast.evaluation.metrics import compute_metrics

SPEC = WindowSpec(lookback=6, horizon=3, targets=("y",), past_covariates=("c",))
N = 100


def make_frame(n=N):
    rng = np.random.default_rng(0)
    t = np.arange(n)
    frame = pd.DataFrame(
        {
            "y": 10 + 0.1 * t + np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n),
            "c": rng.standard_normal(n),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="h", name="date"),
    )
    frame.attrs.update({"freq": "h", "source": "synthetic.csv", "targets": ["y"]})
    return frame


def naive_by_hand(frame, start, end, spec):
    """The naive forecast of every window whose targets lie in rows [start, end)."""
    y = frame["y"].to_numpy()
    origins = np.arange(start, end - spec.horizon + 1)  # first forecast row of each window
    actual = np.stack([y[o : o + spec.horizon] for o in origins])[..., None]
    forecast = np.repeat(y[origins - 1][:, None], spec.horizon, axis=1)[..., None]
    return actual, forecast


@pytest.mark.parametrize("mode", ["expanding", "sliding"])
def test_folds_layout_no_leakage_and_metrics(mode):
    frame = make_frame()
    result = backtest(frame, SPEC, lambda: BaselineEstimator("naive", SPEC), folds=3,
                      fold_size=10, mode=mode, val_fraction=0.1)
    idx = frame.index
    assert [f.index for f in result.folds] == [0, 1, 2]
    # test ranges go backwards from the end, 10 rows each, no overlap
    assert [f.rows["test"] for f in result.folds] == [(70, 80), (80, 90), (90, 100)]
    assert result.folds[-1].test_end == idx[-1]
    for fold in result.folds:
        a, b = fold.rows["test"]
        assert (fold.test_start, fold.test_end) == (idx[a], idx[b - 1])
        # no fold saw data from after its forecast origin
        assert fold.fit_end == fold.origin == idx[a - 1] < fold.test_start
        assert fold.n_windows == 10 - 3 + 1
    for older, newer in zip(result.folds, result.folds[1:], strict=False):
        assert older.test_end < newer.test_start
    starts = [f.rows["fit"][0] for f in result.folds]
    if mode == "expanding":
        assert starts == [0, 0, 0]
        assert [f.fit_start for f in result.folds] == [idx[0]] * 3
    else:
        assert starts == [0, 10, 20]  # every fold trains on the oldest fold's 70 rows
        assert result.settings["train_size"] == 70
    # val part: the last 10% of the fit rows, before the origin
    first = result.folds[0]
    assert first.rows["val"] == (63, 70) and first.val_start == idx[63]

    for fold in result.folds:
        a, b = fold.rows["test"]
        actual, forecast = naive_by_hand(frame, a, b, SPEC)
        fit_a, fit_b = fold.rows["fit"]
        train_end = fold.rows["val"][0]
        expected = compute_metrics(actual, forecast,
                                   insample=frame["y"].to_numpy()[fit_a:train_end, None],
                                   season=24)
        for name in ("mae", "rmse", "mape", "smape", "mase"):
            assert fold.metrics[name] == pytest.approx(expected[name], rel=1e-5)
        np.testing.assert_allclose(fold.metrics["per_step"]["mae"], expected["per_step"]["mae"],
                                   rtol=1e-5)
        # the scaler of each fold equals one fitted on that fold's train rows only
        scaler = fold.estimator.scaler
        own = Scaler("standard", columns=["y", "c"]).fit(frame.iloc[fit_a:train_end])
        assert scaler.params == own.params
        leaky = Scaler("standard", columns=["y", "c"]).fit(frame.iloc[fit_a:b])
        assert scaler.params != leaky.params
    assert result.mean["mae"] == pytest.approx(np.mean([f.metrics["mae"] for f in result.folds]))
    assert len(result.mean["per_step"]["mae"]) == 3
    assert result.settings["season"] == 24  # hourly
    table = result.to_frame()
    assert list(table.index) == [0, 1, 2] and "mae" in table.columns


def test_estimator_only_sees_rows_before_the_origin():
    frame = make_frame()
    seen = []

    class Spy(BaselineEstimator):
        def fit(self, train_frame, val_frame=None):
            seen.append((train_frame.index.max(), None if val_frame is None else
                         val_frame.index.max()))
            return super().fit(train_frame, val_frame)

    result = backtest(frame, SPEC, lambda: Spy("naive", SPEC), folds=3, fold_size=10)
    for (train_max, val_max), fold in zip(seen, result.folds, strict=True):
        assert train_max < fold.test_start and val_max < fold.test_start


def test_default_fold_size_and_no_validation():
    frame = make_frame()
    result = backtest(frame, SPEC, lambda: BaselineEstimator("linear", SPEC), folds=2,
                      val_fraction=0.0, season=1)
    assert result.settings["fold_size"] == 10  # max(horizon, rows // 10)
    assert all(f.rows["val"] is None and f.val_start is None for f in result.folds)
    assert result.settings["season"] == 1
    assert result.mean["mae"] < 1.0


def test_window_targets_match_the_rows():
    frame = make_frame(20)
    actual = window_targets(frame, SPEC)
    assert actual.shape == (20 - 9 + 1, 3, 1)
    np.testing.assert_array_equal(actual[0, :, 0], frame["y"].to_numpy()[6:9])


def test_bad_settings_say_what_is_needed():
    frame = make_frame()
    factory = lambda: BaselineEstimator("naive", SPEC)  # noqa: E731
    with pytest.raises(DataError, match=r"needs at least 109 rows \(10 x 10 \+ 9"):
        backtest(frame, SPEC, factory, folds=10, fold_size=10, val_fraction=0.0)
    with pytest.raises(ConfigError, match="folds"):
        backtest(frame, SPEC, factory, folds=0)
    with pytest.raises(ConfigError, match="horizon"):
        backtest(frame, SPEC, factory, fold_size=2)
    with pytest.raises(ConfigError, match="mode"):
        backtest(frame, SPEC, factory, mode="rolling")
    with pytest.raises(ConfigError, match="train_size"):
        backtest(frame, SPEC, factory, mode="sliding", train_size=5)
