"""Tests of forecast/models/setups.py, builder.py and normalization.py.

Every setup x cell learns a seeded sine + trend + noise series well enough to beat the naive
forecast clearly, and saves/loads (`.keras`, safe_mode) with identical predictions.
"""

import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from forecast.data import WindowSpec, make_dataset  # noqa: E402
from forecast.errors import ConfigError  # noqa: E402
from forecast.models import CELLS, SETUPS, ModelOptions, build_model  # noqa: E402
from forecast.models.normalization import InstanceNorm  # noqa: E402
from forecast.models.setups import SyncedRollout  # noqa: E402

LOOKBACK, HORIZON = 48, 12
SPEC = WindowSpec(lookback=LOOKBACK, horizon=HORIZON, targets=("y",))


@pytest.fixture(scope="module")
def series():
    """600 hourly rows: daily sine + trend + noise; train on 480, test on the last 120."""
    n = 600
    t = np.arange(n)
    rng = np.random.default_rng(0)
    y = np.sin(2 * np.pi * t / 24) + 0.001 * t + 0.1 * rng.standard_normal(n)
    frame = pd.DataFrame({"y": y}, index=pd.date_range("2024-01-01", periods=n, freq="h"))
    test = make_dataset(frame.iloc[480 - LOOKBACK :], SPEC, batch_size=512)
    x_test, y_test = (t.numpy() for t in next(iter(test)))
    return frame.iloc[:480], x_test, y_test


def _sized(setup, spec) -> dict:
    """The segment setup needs a segment length dividing the lookback and the horizon."""
    return {"segment_length": math.gcd(spec.lookback, spec.horizon)} if setup == "segment" else {}


def _roundtrip(model, inputs, expected, tmp_path):
    """Save as .keras, load with safe_mode=True: the same predictions as `expected`."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), expected, atol=1e-6, rtol=0)
    return loaded


def _perturb(model, scale=0.3, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(scale=scale, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("setup", list(SETUPS))
def test_setup_beats_naive_and_round_trips(setup, cell, series, tmp_path):
    train_frame, x_test, y_test = series
    model = build_model(setup, SPEC, cell=cell, units=16, seed=0,  # sets the global seeds
                        **_sized(setup, SPEC))
    train = make_dataset(train_frame, SPEC, batch_size=32, shuffle=True, seed=0)
    assert model.name == setup
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(train, epochs=5, verbose=0)  # the first epoch (tracing) costs the most
    pred = model.predict(x_test, verbose=0)
    assert pred.shape == y_test.shape == (109, HORIZON, 1)
    naive = np.abs(x_test[:, -1:, :1] - y_test).mean()  # repeat the last observed value
    mae = np.abs(pred - y_test).mean()
    assert mae < 0.7 * naive, f"{setup}/{cell}: MAE {mae:.3f} vs naive {naive:.3f}"
    _roundtrip(model, x_test, pred, tmp_path)


@pytest.mark.parametrize(
    "setup, cell", [("many_to_one", "lstm"), ("one_to_many", "peephole"), ("seq2seq", "gru"),
                    ("synced", "lstm")],
)
def test_covariates_quantiles_and_options(setup, cell, tmp_path):
    """Past and future covariates, 2 targets, 2 layers, dropout, RevIN, skip, quantiles."""
    spec = WindowSpec(lookback=16, horizon=5, targets=("a", "b"), past_covariates=("p",),
                      future_covariates=("f1", "f2"))
    model = build_model(setup, spec, cell=cell, units=6, layers=2, dropout=0.1,
                        quantiles=(0.1, 0.5, 0.9), instance_norm="revin", linear_skip=True,
                        seed=0)
    assert [t.name for t in model.inputs] == ["past", "future"]
    assert model.inputs[0].shape == (None, 16, 5) and model.inputs[1].shape == (None, 5, 2)
    rng = np.random.default_rng(0)
    past = rng.normal(size=(8, 16, 5)).astype("float32")
    future = rng.normal(size=(8, 5, 2)).astype("float32")
    out = model.predict((past, future), verbose=0)
    assert out.shape == (8, 5, 2, 3)
    assert np.all(np.diff(out, axis=-1) >= 0)
    # The future covariates are read: changing them changes the forecast.
    assert not np.allclose(model.predict((past, future + 1.0), verbose=0), out)
    _roundtrip(model, (past, future), out, tmp_path)


def test_synced_feeds_its_predictions_back():
    """The model equals a hand-written rollout through the same layer and cell."""
    spec = WindowSpec(lookback=10, horizon=4, targets=("y",))
    model = build_model("synced", spec, cell="gru", units=5, seed=0, instance_norm="none",
                        linear_skip=False)  # the bare setup, without the default wrappers
    _perturb(model)
    x = np.random.default_rng(1).normal(size=(3, 10, 1)).astype("float32")
    out = np.asarray(model(x))
    layer = model.get_layer("synced_rollout")
    assert isinstance(layer, SyncedRollout)
    rnn, head = layer.rnns[0], layer.head
    seq, h = rnn(x)[:2]
    y = head(seq[:, -1])
    expected = [np.asarray(y)]
    states = [h]
    for _ in range(3):  # each step reads the previous prediction
        h, states = rnn.cell(y, states)
        y = head(h)
        expected.append(np.asarray(y))
    np.testing.assert_allclose(out, np.stack(expected, axis=1), atol=1e-5)


@pytest.mark.parametrize("mode", ["last", "revin"])
@pytest.mark.parametrize("setup", list(SETUPS))
def test_instance_norm_is_reversible(setup, mode):
    """f(x + c) == f(x) + c: the normalisation removes the level and adds it back exactly."""
    spec = WindowSpec(lookback=12, horizon=4, targets=("a", "b"))
    model = build_model(setup, spec, units=4, instance_norm=mode, linear_skip=True, seed=0,
                        **_sized(setup, spec))
    _perturb(model)  # RevIN affine and linear skip away from their initial values
    if mode == "revin":
        assert not np.allclose(model.get_layer("instance_norm").get_weights()[0], 1.0)
    x = np.random.default_rng(2).normal(size=(4, 12, 2)).astype("float32")
    shift = np.array([5.0, -3.0], "float32")  # a different constant per target
    base = np.asarray(model(x))
    np.testing.assert_allclose(np.asarray(model(x + shift)), base + shift, atol=1e-4)
    if mode == "revin":  # and a positive scale multiplies the forecast
        np.testing.assert_allclose(np.asarray(model(3.0 * x)), 3.0 * base, atol=1e-4)


def test_instance_norm_values():
    x = np.random.default_rng(3).normal(size=(2, 6, 3)).astype("float32")
    normed, loc, scale = (np.asarray(t) for t in InstanceNorm("revin", 2)(x))
    mean, std = x[:, :, :2].mean(1, keepdims=True), np.sqrt(x[:, :, :2].var(1, keepdims=True)
                                                             + 1e-5)
    np.testing.assert_allclose(loc, mean, atol=1e-6)
    np.testing.assert_allclose(scale, std, atol=1e-6)
    np.testing.assert_allclose(normed[:, :, :2], (x[:, :, :2] - mean) / std, atol=1e-5)
    np.testing.assert_allclose(normed[:, :, 2], x[:, :, 2])  # covariates untouched
    normed, loc, _ = (np.asarray(t) for t in InstanceNorm("last", 2)(x))
    np.testing.assert_allclose(normed[:, -1, :2], 0.0, atol=0)


@pytest.mark.parametrize("setup", ["many_to_one", "synced"])
def test_channel_independence(setup):
    spec = WindowSpec(lookback=12, horizon=4, targets=("a", "b", "c"))
    model = build_model(setup, spec, units=4, channel_independent=True, instance_norm="last",
                        linear_skip=True, seed=0)
    _perturb(model)
    x = np.random.default_rng(4).normal(size=(5, 12, 3)).astype("float32")
    x2 = x.copy()
    x2[:, :, 0] += np.random.default_rng(5).normal(size=(5, 12))  # perturb channel 0 only
    y, y2 = np.asarray(model(x)), np.asarray(model(x2))
    assert y.shape == (5, 4, 3)
    assert np.abs(y2[..., 0] - y[..., 0]).max() > 1e-3
    np.testing.assert_array_equal(y2[..., 1:], y[..., 1:])
    # Shared weights: channel j of the output is the univariate model applied to channel j.
    uni = build_model(setup, WindowSpec(12, 4, ("a",)), units=4, instance_norm="last",
                      linear_skip=True, seed=0)
    assert uni.count_params() == model.count_params()
    uni.set_weights(model.get_weights())
    for j in range(3):
        np.testing.assert_allclose(np.asarray(uni(x[:, :, j : j + 1]))[..., 0], y[..., j],
                                   atol=1e-5)


def test_channel_independence_needs_targets_only():
    spec = WindowSpec(lookback=12, horizon=4, targets=("a", "b"), past_covariates=("x",))
    with pytest.raises(ConfigError, match=r"channel_independent.*\['x'\]"):
        build_model("many_to_one", spec, channel_independent=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"setup": "seq2sq"}, r"unknown setup 'seq2sq'.*'synced'.*Did you mean 'seq2seq'\?"),
        ({"setup": "autoregressive"}, r"unknown setup 'autoregressive'; choose one of"),
        ({"cell": "lstn"}, r"unknown cell 'lstn'.*'peephole'.*Did you mean 'lstm'\?"),
        ({"instance_norm": "revn"}, r"Did you mean 'revin'\?"),
        ({"quantiles": (0.9, 0.1)}, "strictly increasing"),
        ({"quantiles": (0.0, 0.5)}, "between 0 and 1"),
        ({"quantiles": (0.5, 1.0)}, "between 0 and 1"),
        ({"units": 0}, r"`units` must be a positive integer. Received: units=0"),
        ({"units": -4}, "units=-4"),
        ({"units": 8.5}, "units=8.5"),
        ({"layers": 0}, "layers=0"),
        ({"dropout": 1.0}, r"dropout=1.0"),
        ({"channel_independent": "yes"}, "True or False"),
        ({"unitz": 8}, r"unknown model option 'unitz'.*Did you mean 'units'"),
    ],
)
def test_bad_config(kwargs, match):
    setup = kwargs.pop("setup", "many_to_one")
    with pytest.raises(ConfigError, match=match):
        build_model(setup, SPEC, **kwargs)


def test_options_round_trip_through_json():
    options = ModelOptions(cell="gru", units=8, layers=2, dropout=0.2, quantiles=[0.1, 0.5, 0.9],
                           instance_norm="revin", channel_independent=True, linear_skip=True,
                           seed=7)
    assert options.quantiles == (0.1, 0.5, 0.9)
    again = ModelOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert again == options
    with pytest.raises(ConfigError, match=r"unknown model option 'unit'.*Did you mean 'units'"):
        ModelOptions.from_dict({"unit": 3})
    # Options object plus keyword overrides.
    model = build_model("one_to_many", SPEC, ModelOptions(units=4), cell="gru")
    assert model.get_layer("encoder_0").__class__.__name__ == "GRU"
    assert model.get_layer("encoder_0").units == 4


def test_every_setup_is_built_from_forecast_layers():
    import forecast.layers as ours

    for setup in SETUPS:
        model = build_model(setup, SPEC, cell="peephole", units=4, layers=2,
                            **_sized(setup, SPEC))
        recurrent = [layer for layer in model._flatten_layers()
                     if "LSTM" in type(layer).__name__ or "GRU" in type(layer).__name__]
        assert recurrent, setup
        assert all(type(layer).__module__.startswith("forecast.layers") for layer in recurrent)
        assert all(layer.cell.peephole for layer in recurrent if isinstance(layer, ours.LSTM))
