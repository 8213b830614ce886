"""forecast.layers.GRU against keras.layers.GRU(reset_after=True) with the same weights."""

import keras
import numpy as np
import pytest

from forecast.layers import GRU, GRUCell
from forecast.layers import cudnn as cudnn_mod

B, T, D, H = 4, 7, 3, 5


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(B, T, D)).astype("float32")


def _pair(rnn, x, **kwargs):
    return rnn.paired(GRU(H, **kwargs), keras.layers.GRU(H, reset_after=True, **kwargs), x)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_parity_with_keras(rnn, return_sequences, go_backwards):
    x = _x()
    ours, ref = _pair(
        rnn, x, return_sequences=return_sequences, go_backwards=go_backwards, return_state=True
    )
    h0 = np.random.default_rng(1).normal(size=(B, H)).astype("float32")
    rnn.assert_parity(ours, ref, x, initial_state=[h0])
    assert ours.kernel_used == "fused"


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("kernel", ["fused", "loop"])
def test_parity_with_masks(rnn, go_backwards, return_sequences, kernel):
    """A right-padded mask and one with leading masked steps, holes and a fully masked row."""
    x = _x(3)
    kwargs = {} if kernel == "fused" else {"recurrent_activation": "hard_sigmoid"}
    ours, ref = _pair(rnn, x, return_sequences=return_sequences, go_backwards=go_backwards,
                      return_state=True, **kwargs)
    h0 = np.random.default_rng(4).normal(size=(B, H)).astype("float32")
    right_padded = np.arange(T)[None, :] < np.array([7, 5, 1, 3])[:, None]
    holes = np.array([[0, 0, 1, 1, 1, 1, 1], [1, 0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1],
                      [0] * 7], dtype=bool)
    for mask in (right_padded, holes):
        rnn.assert_parity(ours, ref, x, mask=mask, initial_state=[h0])
        assert ours.kernel_used == kernel


def test_parity_stateful(rnn):
    kw = {"stateful": True, "return_sequences": True}
    ours, ref = GRU(H, **kw), keras.layers.GRU(H, **kw)
    for layer in (ours, ref):
        layer.build((B, T, D))
    weights = rnn.perturbed_weights(ref)
    ref.set_weights(weights)
    ours.set_weights(weights)
    for seed in (5, 6):
        np.testing.assert_allclose(ours(_x(seed)), ref(_x(seed)), atol=1e-5)
    np.testing.assert_allclose(ours.states[0].numpy(), ref.states[0].numpy(), atol=1e-5)


def test_parity_no_bias_and_other_activation(rnn):
    x = _x(4)
    ours, ref = _pair(rnn, x, use_bias=False, return_state=True)
    rnn.assert_parity(ours, ref, x)
    assert ours.kernel_used == "fused"
    ours, ref = _pair(rnn, x, recurrent_activation="hard_sigmoid", return_sequences=True)
    rnn.assert_parity(ours, ref, x)
    assert ours.kernel_used == "loop"


def test_cell_matches_numpy_equations():
    rng = np.random.default_rng(8)
    cell = GRUCell(H)
    cell.build((None, D))
    kernel, recurrent, bias = (rng.normal(size=w.shape).astype("float32") for w in cell.weights)
    cell.set_weights([kernel, recurrent, bias])
    x = rng.normal(size=(B, D)).astype("float32")
    h_prev = rng.normal(size=(B, H)).astype("float32")

    def sig(v):
        return 1 / (1 + np.exp(-v))

    xp = x @ kernel + bias[0]
    inner = h_prev @ recurrent + bias[1]
    z = sig(xp[:, :H] + inner[:, :H])
    r = sig(xp[:, H : 2 * H] + inner[:, H : 2 * H])
    hh = np.tanh(xp[:, 2 * H :] + r * inner[:, 2 * H :])
    expected = z * h_prev + (1 - z) * hh
    h, (state,) = cell(x, [h_prev])
    np.testing.assert_allclose(h, expected, atol=1e-5)
    np.testing.assert_allclose(state, expected, atol=1e-5)


def test_roundtrip(rnn, tmp_path):
    rnn.roundtrip(GRU(H, return_sequences=True, recurrent_dropout=0.1, seed=2), _x(10), tmp_path)


def test_reset_after_false_is_refused():
    with pytest.raises(ValueError, match="reset_after=False"):
        GRU(H, reset_after=False)


def test_weights_layout():
    layer = GRU(H)
    layer.build((None, T, D))
    assert [tuple(w.shape) for w in layer.weights] == [(D, 3 * H), (H, 3 * H), (2, 3 * H)]


def test_cudnn_params_gate_order():
    """cuDNN wants r, z, h; keras stores z, r, h. Biases: the input row, then the recurrent."""
    rng = np.random.default_rng(11)
    kernel = rng.normal(size=(D, 3 * H)).astype("float32")
    recurrent = rng.normal(size=(H, 3 * H)).astype("float32")
    bias = rng.normal(size=(2, 3 * H)).astype("float32")
    params = cudnn_mod.gru_cudnn_params(kernel, recurrent, bias).numpy()
    assert params.shape == (3 * H * D + 3 * H * H + 6 * H,)
    order = [1, 0, 2]  # cuDNN block k holds keras gate order[k]
    pos = 0
    for mat, size in ((kernel, H * D), (recurrent, H * H)):
        for g in order:
            block = mat[:, g * H : (g + 1) * H].T.ravel()
            np.testing.assert_array_equal(params[pos : pos + size], block)
            pos += size
    for row in (0, 1):
        for g in order:
            np.testing.assert_array_equal(params[pos : pos + H], bias[row, g * H : (g + 1) * H])
            pos += H
