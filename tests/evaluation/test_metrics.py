"""Metrics against hand-computed values."""

import logging

import numpy as np
import pytest

from forecast.data.scaling import Scaler
from forecast.errors import DataError
from forecast.evaluation.metrics import (
    compute_metrics,
    coverage,
    evaluate_predictions,
    mae,
    mape,
    mase,
    pinball,
    rmse,
    seasonal_naive_scale,
    smape,
)

# two windows, horizon 2, one target
Y = np.array([[[1.0], [2.0]], [[4.0], [0.0]]])
P = np.array([[[2.0], [2.0]], [[1.0], [1.0]]])
# errors |e|: [[1, 0], [3, 1]]


def test_mae_rmse():
    assert mae(Y, P) == pytest.approx(5 / 4)
    assert rmse(Y, P) == pytest.approx(np.sqrt((1 + 0 + 9 + 1) / 4))
    assert mae(Y, P, axis=1) == pytest.approx([2.0, 0.5])  # step 1: (1+3)/2, step 2: (0+1)/2
    assert rmse(Y, P, axis=1) == pytest.approx([np.sqrt(5), np.sqrt(0.5)])
    assert mae([[1.0, 2.0]], [[2.0, 4.0]]) == 1.5  # 2-D is one target


def test_mape_skips_zero_actuals_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="forecast.evaluation.metrics"):
        value, skipped = mape(Y, P, return_skipped=True)
    # non-zero actuals: 1 -> 1/1, 2 -> 0/2, 4 -> 3/4 ; the 0 is skipped
    assert value == pytest.approx(100 * (1 + 0 + 0.75) / 3)
    assert skipped == 1
    assert "skipped 1 zero" in caplog.text
    assert mape(Y, P, axis=1) == pytest.approx([100 * (1 + 0.75) / 2, 0.0])
    assert np.isnan(mape([[0.0, 0.0]], [[1.0, 2.0]]))


def test_smape():
    # terms 2|e|/(|y|+|p|): 2/3, 0, 6/5, 2/1
    assert smape(Y, P) == pytest.approx(100 * (2 / 3 + 0 + 6 / 5 + 2) / 4)
    assert smape([[0.0]], [[0.0]]) == 0.0
    assert smape([[1.0, 0.0]], [[3.0, 0.0]]) == 50.0


def test_mase_with_known_insample():
    insample = np.array([1.0, 3.0, 2.0, 6.0])
    # season 1: |3-1|, |2-3|, |6-2| -> mean 7/3 ; season 2: |2-1|, |6-3| -> mean 2
    assert seasonal_naive_scale(insample, 1) == pytest.approx([7 / 3])
    assert seasonal_naive_scale(insample, 2) == pytest.approx([2.0])
    assert mase(Y, P, insample, season=1) == pytest.approx((5 / 4) / (7 / 3))
    assert mase(Y, P, insample, season=2) == pytest.approx((5 / 4) / 2)
    assert mase(Y, P, insample, season=2, axis=1) == pytest.approx([1.0, 0.25])


def test_mase_scales_each_channel_by_its_own_series():
    y = np.zeros((1, 1, 2))
    p = np.array([[[1.0, 1.0]]])
    insample = np.array([[0.0, 0.0], [1.0, 4.0]])  # scales 1 and 4
    assert mase(y, p, insample, 1) == pytest.approx((1 / 1 + 1 / 4) / 2)


def test_mase_bad_insample():
    with pytest.raises(DataError, match="longer than the season"):
        mase(Y, P, [1.0, 2.0], season=2)
    assert np.isnan(mase(Y, P, [1.0, 1.0, 1.0], season=1))


Q = [0.1, 0.5, 0.9]
# one window, horizon 2, one target; quantile forecasts per step
YQ = np.array([[[1.0], [5.0]]])
PQ = np.array([[[[0.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]]]])


def test_pinball_by_hand():
    # step 1, y=1: e = [1, 0, -1] -> [0.1*1, 0, (0.9-1)*-1=0.1] mean 0.2/3
    # step 2, y=5: e = [5, 4, 3]  -> [0.5, 2.0, 2.7] mean 5.2/3
    assert pinball(YQ, PQ, Q, axis=1) == pytest.approx([0.2 / 3, 5.2 / 3])
    assert pinball(YQ, PQ, Q) == pytest.approx((0.2 / 3 + 5.2 / 3) / 2)
    assert pinball([[[1.0]]], [[[[0.0, 0.0]]]], quantiles=[0.1, 0.9]) == pytest.approx(0.5)
    assert pinball([[[1.0]]], [[[[0.0, 2.0]]]], quantiles=[0.1, 0.9]) == pytest.approx(0.1)


def test_coverage_by_hand():
    assert coverage(YQ, PQ, Q) == 0.5  # 1 in [0, 2], 5 not
    assert coverage(YQ, PQ, Q, axis=1) == pytest.approx([1.0, 0.0])
    assert coverage(YQ, PQ, Q, lower=0.5, upper=0.9) == 0.5  # 1 in [1, 2]


def test_compute_metrics_point():
    m = compute_metrics(Y, P, insample=[1.0, 3.0, 2.0, 6.0], season=2)
    assert m["mae"] == pytest.approx(1.25)
    assert m["rmse"] == pytest.approx(np.sqrt(11 / 4))
    assert m["mape"] == pytest.approx(175 / 3) and m["mape_skipped"] == 1
    assert m["mase"] == pytest.approx(0.625)
    assert m["n_windows"] == 2
    assert m["per_step"]["mae"] == pytest.approx([2.0, 0.5])
    assert m["per_step"]["mase"] == pytest.approx([1.0, 0.25])
    assert set(m["per_step"]) == {"mae", "rmse", "mape", "smape", "mase"}
    assert "pinball" not in m
    assert "mase" not in compute_metrics(Y, P)


def test_compute_metrics_quantiles_uses_median():
    m = compute_metrics(YQ, PQ, quantiles=Q)
    assert m["mae"] == pytest.approx((0 + 4) / 2)  # median forecast 1 vs actuals 1 and 5
    assert m["pinball"] == pytest.approx(5.4 / 6)
    assert m["coverage"] == 0.5 and m["coverage_nominal"] == pytest.approx(0.8)
    assert m["per_step"]["coverage"] == [1.0, 0.0]
    with pytest.raises(DataError, match="quantiles"):
        compute_metrics(YQ, PQ)


def test_shape_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="same shape"):
        mae(Y, P[:, :1])


def test_evaluate_predictions_original_and_scaled_units():
    import pandas as pd

    train = pd.DataFrame({"a": [0.0, 2.0, 4.0, 6.0]})  # mean 3, std sqrt(5)
    scaler = Scaler("standard", ["a"]).fit(train)
    s = np.sqrt(5.0)
    y_orig = np.array([[[3.0], [5.0]]])
    p_orig = np.array([[[4.0], [5.0]]])
    y_scaled, p_scaled = (y_orig - 3) / s, (p_orig - 3) / s
    out = evaluate_predictions(y_scaled, p_scaled, scaler=scaler, columns=["a"],
                               insample=train[["a"]].to_numpy(), season=1)
    assert out["original"]["mae"] == pytest.approx(0.5)
    assert out["scaled"]["mae"] == pytest.approx(0.5 / s)
    assert out["original"]["mase"] == pytest.approx(0.5 / 2)  # naive scale 2
    assert out["scaled"]["mase"] == pytest.approx(out["original"]["mase"])  # scale-free


def test_evaluate_predictions_quantiles_inverse_each_level():
    import pandas as pd

    scaler = Scaler("standard", ["a"]).fit(pd.DataFrame({"a": [0.0, 2.0]}))  # mean 1, std 1
    y = np.array([[[0.0]]])  # original 1
    q = np.array([[[[-1.0, 0.0, 1.0]]]])  # original 0, 1, 2
    out = evaluate_predictions(y, q, scaler=scaler, columns=["a"], quantiles=Q)
    assert out["original"]["mae"] == 0.0
    assert out["original"]["coverage"] == 1.0
    assert out["original"]["pinball"] == pytest.approx((0.1 + 0 + 0.1) / 3)
