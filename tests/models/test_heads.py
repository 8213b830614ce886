"""Tests of forecast/models/heads.py: head shapes, quantile order, pinball loss, linear skip."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from forecast.data import WindowSpec  # noqa: E402
from forecast.errors import ConfigError  # noqa: E402
from forecast.models import build_model, pinball_loss  # noqa: E402
from forecast.models.heads import (  # noqa: E402
    LinearSkip,
    PinballLoss,
    PointHead,
    QuantileHead,
    check_quantiles,
)

Q = (0.1, 0.5, 0.9)


def _numpy_pinball(y, q_pred, quantiles):
    err = y[..., None] - q_pred  # [B, H, T, Q]
    q = np.asarray(quantiles)
    return np.mean(np.maximum(q * err, (q - 1) * err))


def _perturb(model_or_layer, scale=2.0, seed=0):
    rng = np.random.default_rng(seed)
    model_or_layer.set_weights(
        [w + rng.normal(scale=scale, size=w.shape).astype(w.dtype)
         for w in model_or_layer.get_weights()]
    )


def test_point_head_shapes():
    x = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    assert PointHead(2, horizon=12)(x).shape == (4, 12, 2)  # one vector -> all steps
    assert PointHead(2)(np.zeros((4, 12, 16), "float32")).shape == (4, 12, 2)  # per step
    assert PointHead(3)(x).shape == (4, 3)  # one step


@pytest.mark.parametrize("quantiles", [Q, (0.05, 0.25, 0.5, 0.75, 0.95), (0.2, 0.3), (0.5,)])
def test_quantile_head_keeps_the_quantiles_in_order(quantiles):
    rng = np.random.default_rng(1)
    head = QuantileHead(2, quantiles, horizon=6)
    x = rng.normal(scale=3.0, size=(64, 8)).astype("float32")
    assert np.all(np.diff(np.asarray(head(x)), axis=-1) > 0)  # strictly, at initialisation
    _perturb(head, scale=3.0)  # large raw outputs of either sign
    out = np.asarray(head(x))
    assert out.shape == (64, 6, 2, len(quantiles))
    # Never crossing; a softplus gap of ~1e-6 can round to 0 next to values of ~10 in float32.
    assert np.all(np.diff(out, axis=-1) >= 0)
    # The quantile nearest 0.5 is the Dense output itself; the others are offsets from it.
    raw = np.asarray(head.dense(x)).reshape(64, 6, 2, len(quantiles))
    a = int(np.argmin(np.abs(np.asarray(quantiles) - 0.5)))
    np.testing.assert_allclose(out[..., a], raw[..., a], atol=1e-6)


def test_quantile_model_output_shape_and_order():
    spec = WindowSpec(lookback=24, horizon=6, targets=("a", "b"))
    model = build_model("many_to_one", spec, cell="gru", units=8, quantiles=Q,
                        instance_norm="revin", linear_skip=True, seed=0)
    _perturb(model, scale=1.0)
    x = np.random.default_rng(2).normal(scale=2.0, size=(32, 24, 2)).astype("float32")
    out = np.asarray(model(x))
    assert out.shape == (32, 6, 2, 3)
    assert np.all(np.diff(out, axis=-1) >= 0)


def test_pinball_loss_matches_numpy():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(5, 4, 2)).astype("float32")
    q_pred = rng.normal(size=(5, 4, 2, 3)).astype("float32")
    expected = _numpy_pinball(y, q_pred, Q)
    assert float(pinball_loss(Q)(y, q_pred)) == pytest.approx(expected, rel=1e-5)
    # By hand: y = 1, predictions 0 -> errors 1: (0.1 + 0.5 + 0.9) / 3 = 0.5.
    assert float(pinball_loss(Q)(np.ones((1, 1, 1)), np.zeros((1, 1, 1, 3)))) == pytest.approx(0.5)
    # Over-prediction by 2: (0.9 + 0.5 + 0.1) * 2 / 3 = 1.0.
    assert float(pinball_loss(Q)(np.zeros((1, 1, 1)), 2 * np.ones((1, 1, 1, 3)))) == (
        pytest.approx(1.0)
    )


def test_pinball_loss_serializes():
    loss = pinball_loss((0.2, 0.8))
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, PinballLoss) and again.quantiles == (0.2, 0.8)
    assert again.get_config()["quantiles"] == [0.2, 0.8]


def test_compiled_quantile_model_saves_with_its_loss(tmp_path):
    spec = WindowSpec(lookback=12, horizon=3, targets=("y",))
    model = build_model("many_to_one", spec, units=4, quantiles=Q, seed=0)
    model.compile(optimizer="adam", loss=pinball_loss(Q))
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "q.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.loss, PinballLoss) and loaded.loss.quantiles == Q


def test_linear_skip_starts_at_zero_and_adds_a_linear_map():
    rng = np.random.default_rng(4)
    forecast = rng.normal(size=(3, 4, 2)).astype("float32")
    history = rng.normal(size=(3, 10, 5)).astype("float32")  # 2 targets + 3 covariates
    skip = LinearSkip(horizon=4, n_targets=2)
    np.testing.assert_allclose(skip([forecast, history]), forecast, atol=0)  # zero kernel
    kernel = np.zeros((10, 4), "float32")
    kernel[-1, :] = 1.0  # every step copies the last value
    skip.dense.set_weights([kernel, np.full(4, 0.5, "float32")])
    expected = forecast + history[:, -1:, :2] + 0.5
    np.testing.assert_allclose(skip([forecast, history]), expected, atol=1e-6)
    quantile_forecast = rng.normal(size=(3, 4, 2, 3)).astype("float32")
    out = skip([quantile_forecast, history])  # the same shift for every quantile
    np.testing.assert_allclose(out, quantile_forecast + expected[..., None] - forecast[..., None],
                               atol=1e-5)


@pytest.mark.parametrize(
    "bad, match",
    [((0.9, 0.1), "strictly increasing"), ((0.5, 0.5), "strictly increasing"),
     ((0.0, 0.5), "between 0 and 1"), ((0.5, 1.2), "between 0 and 1"), ((), "at least one"),
     (("a",), "numbers"), (0.5, "numbers")],
)
def test_bad_quantiles(bad, match):
    with pytest.raises(ConfigError, match=match):
        check_quantiles(bad)
    with pytest.raises(ConfigError, match=match):
        pinball_loss(bad)
