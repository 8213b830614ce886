"""Tests of forecast/models/segment.py: the segment recurrent setup (SegRNN).

Shapes for every cell, decoder, quantiles and channel layout; the size errors; the wiring
against a hand-written forward pass through the same layers; save/load with safe_mode; the
encoder's L/w steps on the fused kernel; and learning a noisy sine well past the naive forecast.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dataclasses import dataclass  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from forecast.errors import ConfigError  # noqa: E402
from forecast.layers import GRU, LSTM  # noqa: E402
from forecast.models.segment import (  # noqa: E402
    MergeSegments,
    RepeatRows,
    Segment,
    SegmentQueries,
    check_segment_sizes,
)

QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class Opts:
    """The option fields the setup reads (a stand-in for the owner's ModelOptions)."""

    cell: str = "lstm"
    units: int = 8
    dropout: float = 0.0
    quantiles: tuple[float, ...] | None = None
    seed: int | None = 0
    segment_length: int = 4
    segment_decoder: str = "parallel"


def _model(opts, lookback, horizon, n_targets, n_channels=1):
    keras.utils.set_random_seed(0)
    past = keras.Input((lookback, n_targets), name="past")
    y = Segment(opts, horizon, n_targets, n_channels=n_channels)(past)
    return keras.Model(past, y, name="segment")


def _perturb(model, scale=0.3, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(scale=scale, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])


def _inputs(batch, lookback, n_targets, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, lookback, n_targets)).astype("float32")


# -- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", ["parallel", "recurrent"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole"])
@pytest.mark.parametrize("quantiles", [None, QUANTILES])
@pytest.mark.parametrize("n_targets, n_channels", [(1, 1), (3, 1), (1, 2)])
def test_shapes(decoder, cell, quantiles, n_targets, n_channels):
    opts = Opts(cell=cell, quantiles=quantiles, segment_decoder=decoder, dropout=0.1)
    model = _model(opts, 16, 8, n_targets, n_channels)
    tail = () if quantiles is None else (3,)
    assert model.output.shape == (None, 8, n_targets, *tail)
    out = np.asarray(model(_inputs(4, 16, n_targets)))
    assert out.shape == (4, 8, n_targets, *tail)
    assert np.all(np.isfinite(out))
    if quantiles is not None:
        assert np.all(np.diff(out, axis=-1) > 0)  # ordered quantiles
    rnn = model.get_layer("recurrent")
    assert isinstance(rnn, GRU if cell == "gru" else LSTM)
    assert rnn.units == 8 and rnn.kernel_used == "fused"  # our layer, the fused CPU kernel


def test_weights_are_shared_and_counted():
    """One recurrent layer (SegRNN's), one segment embedding, d -> w head; PMF queries."""
    model = _model(Opts(units=8, segment_length=4), 16, 8, 1, n_channels=3)
    sizes = {w.path: int(np.prod(w.shape)) for w in model.weights}
    assert sizes == {
        "segment_embedding/kernel": 4 * 8, "segment_embedding/bias": 8,
        "recurrent/lstm_cell/kernel": 8 * 32, "recurrent/lstm_cell/recurrent_kernel": 8 * 32,
        "recurrent/lstm_cell/bias": 32,
        "segment_queries/position": 2 * 4, "segment_queries/channel": 3 * 4,
        "head/dense/kernel": 8 * 4, "head/dense/bias": 4,
    }, sizes


def test_one_series_has_no_channel_embedding():
    model = _model(Opts(units=7), 16, 8, 1)
    queries = model.get_layer("segment_queries")
    assert [tuple(w.shape) for w in queries.weights] == [(2, 7)]
    two = _model(Opts(units=7), 16, 8, 2)  # odd d: position 4 + channel 3
    assert [tuple(w.shape) for w in two.get_layer("segment_queries").weights] == [(2, 4), (2, 3)]


# -- the wiring, against a hand-written forward pass -------------------------------------------


def _encode(model, series, w):
    """The encoder on one batch of univariate series (N, L) through the model's own layers."""
    segs = series.reshape(series.shape[0], -1, w)  # [N, L] -> [N, L/w, w]
    out = model.get_layer("recurrent")(model.get_layer("segment_embedding")(segs))
    return out[0], list(out[1:])


def _parallel_reference(model, series, ids, w, m):
    """PMF by hand: per series row and output segment, one step over [position, channel]."""
    rnn, head = model.get_layer("recurrent"), model.get_layer("head")
    queries = model.get_layer("segment_queries")
    pos = np.asarray(queries.position)
    chan = np.asarray(queries.channel) if queries.channel_dim else None
    _, states = _encode(model, series, w)
    rows = []
    for r in range(series.shape[0]):
        segments = []
        for j in range(m):
            q = pos[j] if chan is None else np.concatenate([pos[j], chan[ids[r]]])
            start = [np.asarray(s)[r : r + 1] for s in states]
            h = rnn(q[None, None, :].astype("float32"), initial_state=start)[0]  # [1, d]
            segments.append(np.asarray(head(h))[0, :, 0])  # [w]
        rows.append(np.concatenate(segments))
    return np.stack(rows)  # [N, H]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parallel_decoder_matches_reference_channel_independent(cell):
    """Rows are (B·C) series: the channel of row r is r % C (the builder's ChannelsToBatch)."""
    w, lookback, horizon, c = 4, 12, 8, 3
    model = _model(Opts(cell=cell, units=6, segment_length=w), lookback, horizon, 1, c)
    _perturb(model)
    x = _inputs(6, lookback, 1)  # 2 samples x 3 channels
    out = np.asarray(model(x))[:, :, 0]
    expected = _parallel_reference(model, x[:, :, 0], [r % c for r in range(6)], w, 2)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_parallel_decoder_matches_reference_several_targets():
    """T > 1 targets: each channel is a series of its own (shared weights, its own embedding)."""
    w, lookback, horizon, t = 4, 8, 12, 2
    model = _model(Opts(cell="peephole", units=6, segment_length=w), lookback, horizon, t)
    _perturb(model)
    x = _inputs(3, lookback, t)
    out = np.asarray(model(x))  # [3, H, 2]
    for k in range(t):
        expected = _parallel_reference(model, x[:, :, k], [k] * 3, w, 3)
        np.testing.assert_allclose(out[:, :, k], expected, atol=1e-5)


def test_recurrent_decoder_feeds_its_segments_back():
    """RMF by hand: segment j read off the state; it is embedded and stepped into j + 1."""
    w, lookback, horizon = 4, 12, 12
    model = _model(Opts(cell="gru", units=5, segment_length=w, segment_decoder="recurrent"),
                   lookback, horizon, 1)
    _perturb(model)
    x = _inputs(3, lookback, 1)
    out = np.asarray(model(x))[:, :, 0]
    rnn, head = model.get_layer("recurrent"), model.get_layer("head")
    embed = model.get_layer("segment_embedding")
    h, states = _encode(model, x[:, :, 0], w)
    expected = []
    for _ in range(3):
        y = np.asarray(head(h))[:, :, 0]  # [N, w]
        expected.append(y)
        step = rnn(embed(y[:, None, :]), initial_state=states)
        h, states = step[0], list(step[1:])
    np.testing.assert_allclose(out, np.concatenate(expected, axis=1), atol=1e-5)


def test_recurrent_decoder_feeds_back_the_median():
    w = 4
    opts = Opts(units=5, segment_length=w, segment_decoder="recurrent", quantiles=QUANTILES)
    model = _model(opts, 8, 8, 1)
    _perturb(model)
    x = _inputs(2, 8, 1)
    out = np.asarray(model(x))  # [2, 8, 1, 3]
    rnn, head = model.get_layer("recurrent"), model.get_layer("head")
    h, states = _encode(model, x[:, :, 0], w)
    first = np.asarray(head(h))  # [N, w, 1, Q]
    np.testing.assert_allclose(out[:, :w], first, atol=1e-5)
    step = rnn(model.get_layer("segment_embedding")(first[:, None, :, 0, 1]), initial_state=states)
    np.testing.assert_allclose(out[:, w:], np.asarray(head(step[0])), atol=1e-5)


def test_encoder_runs_lookback_over_w_steps(monkeypatch):
    """The recurrent layer reads L/w segment steps (encoder), then 1 step (parallel decoder)."""
    steps = []
    original = LSTM._run_fused

    def spy(self, x, states, training, mask):
        steps.append(tuple(x.shape))
        return original(self, x, states, training, mask)

    monkeypatch.setattr(LSTM, "_run_fused", spy)
    model = _model(Opts(units=8, segment_length=24), 96, 48, 1)
    assert model.get_layer("segments").output.shape == (None, 4, 24)  # [B, L/w, w]
    assert model.get_layer("segment_embedding").output.shape == (None, 4, 8)  # [B, L/w, d]
    model(_inputs(5, 96, 1))
    assert steps == [(5, 4, 8), (10, 1, 8)]  # [B, L/w, d]; [B·m, 1, d]
    assert model.get_layer("recurrent").kernel_used == "fused"


# -- errors -------------------------------------------------------------------------------------


def test_lookback_not_a_multiple_of_w():
    with pytest.raises(ConfigError) as err:
        _model(Opts(segment_length=24), 100, 24, 1)
    msg = str(err.value)
    assert msg.startswith("lookback 100 is not a multiple of segment_length 24")
    assert "lookback of 96 or 120" in msg
    assert "e.g. 1, 2 or 4" in msg  # segment lengths dividing 100 and 24, nearest 24


def test_horizon_not_a_multiple_of_w():
    with pytest.raises(ConfigError) as err:
        check_segment_sizes(96, 30, 24)
    msg = str(err.value)
    assert msg.startswith("horizon 30 is not a multiple of segment_length 24")
    assert "horizon of 24 or 48" in msg and "e.g. 2, 3 or 6" in msg
    with pytest.raises(ConfigError, match="horizon 12 is not a multiple .* horizon of 24"):
        check_segment_sizes(96, 12, 24)  # shorter than one segment: only the next multiple
    check_segment_sizes(96, 48, 24)


@pytest.mark.parametrize("field, value, match", [
    ("segment_decoder", "paralel", "unknown segment_decoder 'paralel'.*Did you mean 'parallel'"),
    ("cell", "lstn", "unknown cell 'lstn'.*Did you mean 'lstm'"),
    ("segment_length", 0, "`segment_length` must be a positive integer. Received: "
                          "segment_length=0"),
    ("units", 2.5, "`units` must be a positive integer"),
])
def test_bad_options(field, value, match):
    with pytest.raises(ConfigError, match=match):
        Segment(Opts(**{field: value}), 24, 1)


def test_past_covariates_are_refused_future_ones_read():
    with pytest.raises(ConfigError, match="target channels only: the past input has 3 channels"):
        Segment(Opts(), 8, 1)(keras.Input((16, 3)))
    assert Segment.SUPPORTS_PAST_COVARIATES is False
    assert Segment.SUPPORTS_FUTURE_COVARIATES is True and Segment.NAME == "segment"
    assert Segment.READS_CALENDAR is False and Segment.SUPPORTS_STATIC_COVARIATES is False
    # two targets and one future covariate (its lookback channel last): both decoders
    for decoder in ("parallel", "recurrent"):
        past, future = keras.Input((16, 3)), keras.Input((8, 1))
        out = Segment(Opts(segment_decoder=decoder), 8, 2)(past, future)
        assert out.shape == (None, 8, 2)


def test_future_covariates_move_the_forecast_of_their_own_segment():
    from forecast.models.segment import SegmentCovariates, TakeSlice

    keras.utils.set_random_seed(0)
    past, future = keras.Input((16, 2)), keras.Input((8, 1))
    model = keras.Model([past, future], Segment(Opts(), 8, 1)(past, future))
    x = np.random.default_rng(0).normal(size=(1, 16, 2)).astype("float32")
    base = np.zeros((1, 8, 1), "float32")
    lifted = base.copy()
    lifted[0, 4:] = 1.0  # the second segment (w=4) only
    a, b = np.asarray(model([x, base])), np.asarray(model([x, lifted]))
    assert np.abs(a[0, :4] - b[0, :4]).max() < 1e-6  # the first segment does not see it
    assert np.abs(a[0, 4:] - b[0, 4:]).max() > 1e-3
    # the layers round-trip through their config
    for layer in (SegmentCovariates(2, 8, repeats=3, flat=False), TakeSlice(-1, 1, 3)):
        copy = type(layer).from_config(layer.get_config())
        assert copy.get_config() == layer.get_config()
    assert SegmentCovariates(2, 8, repeats=3)(np.zeros((4, 8, 2), "float32")).shape == (24, 1, 8)


def test_options_without_segment_fields_use_defaults():
    @dataclass(frozen=True)
    class Old:  # today's ModelOptions fields only
        cell: str = "gru"
        units: int = 4
        dropout: float = 0.0
        quantiles: tuple | None = None
        seed: int | None = 0

    setup = Segment(Old(), 48, 1)
    assert (setup.segment_length, setup.decoder) == (24, "parallel")
    assert setup(keras.Input((96, 1))).shape == (None, 48, 1)


def test_helper_layers():
    x = np.arange(6, dtype="float32").reshape(3, 2)
    np.testing.assert_array_equal(np.asarray(RepeatRows(2)(x))[:, 0], [0, 0, 2, 2, 4, 4])
    y = np.arange(24, dtype="float32").reshape(6, 4, 1)  # 3 series x 2 segments of 4
    merged = np.asarray(MergeSegments(2)(y))
    assert merged.shape == (3, 8, 1)
    np.testing.assert_array_equal(merged[1, :, 0], np.arange(8, 16))
    q = SegmentQueries(2, 4, channels=3)
    out = np.asarray(q(np.zeros((6, 1))))[:, 0]  # rows (series r, segment j): r·2 + j
    pos, chan = np.asarray(q.position), np.asarray(q.channel)
    np.testing.assert_array_equal(out[2 * 4 + 1], np.concatenate([pos[1], chan[4 % 3]]))
    for layer in (RepeatRows(2), MergeSegments(2), SegmentQueries(2, 4, channels=3)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


# -- save / load ---------------------------------------------------------------------------------


@pytest.mark.parametrize("opts, n_targets, n_channels", [
    (Opts(cell="lstm", dropout=0.2, quantiles=QUANTILES), 1, 3),
    (Opts(cell="gru", dropout=0.1, segment_decoder="recurrent"), 2, 1),
    (Opts(cell="peephole", segment_decoder="recurrent", quantiles=QUANTILES), 1, 1),
])
def test_save_load_safe_mode(opts, n_targets, n_channels, tmp_path):
    model = _model(opts, 16, 8, n_targets, n_channels)
    _perturb(model)
    x = _inputs(6, 16, n_targets)
    expected = model.predict(x, verbose=0)
    path = tmp_path / "segment.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]


# -- it learns -----------------------------------------------------------------------------------


def _windows(series, lookback, horizon, start, stop):
    idx = np.arange(start, stop - lookback - horizon + 1)
    x = np.stack([series[i : i + lookback] for i in idx])[..., None]
    y = np.stack([series[i + lookback : i + lookback + horizon] for i in idx])[..., None]
    return x.astype("float32"), y.astype("float32")


@pytest.mark.parametrize("decoder", ["parallel", "recurrent"])
def test_learns_a_noisy_sine(decoder):
    """Period 24, L=96, H=24, w=24, d=16: 8 epochs of Adam beat the naive forecast 20 times
    over on held-out windows (naive MSE is about 1, the noise floor 0.01; both decoders reach
    about 0.009 here)."""
    lookback, horizon = 96, 24
    rng = np.random.default_rng(0)
    t = np.arange(900)
    series = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(t.size)
    x_train, y_train = _windows(series, lookback, horizon, 0, 700)
    x_test, y_test = _windows(series, lookback, horizon, 700 - lookback, 900)
    model = _model(Opts(units=16, segment_length=24, segment_decoder=decoder), lookback,
                   horizon, 1)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x_train, y_train, batch_size=32, epochs=8, shuffle=True, verbose=0)
    mse = float(np.mean((model.predict(x_test, verbose=0) - y_test) ** 2))
    naive = float(np.mean((x_test[:, -1:, :] - y_test) ** 2))
    assert naive > 0.8
    assert mse < 0.05 * naive, f"{decoder}: MSE {mse:.4f} vs naive {naive:.4f}"
