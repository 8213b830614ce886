"""Peephole LSTM (Gers & Schmidhuber 2000) against a NumPy reference of its equations."""

import numpy as np
import pytest
import tensorflow as tf

from forecast.errors import ConfigError
from forecast.layers import LSTM, loops

B, T, D, H = 3, 6, 4, 5


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_peephole_lstm(x, kernel, recurrent, bias, peep, h, c):
    """x [B, T, D]; returns (outputs [B, T, H], h, c). Gates i, f, c, o; peep rows i, f, o."""
    outs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=1)
        i = _sig(z_i + peep[0] * c)
        f = _sig(z_f + peep[1] * c)
        c = f * c + i * np.tanh(z_c)
        o = _sig(z_o + peep[2] * c)
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs, axis=1), h, c


def _layer_and_weights(seed, **kwargs):
    rng = np.random.default_rng(seed)
    layer = LSTM(H, peephole=True, return_sequences=True, return_state=True, **kwargs)
    layer.build((None, T, D))
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    return layer, weights, rng


@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_numpy_reference(go_backwards):
    layer, (kernel, recurrent, bias, peep), rng = _layer_and_weights(0, go_backwards=go_backwards)
    assert peep.shape == (3, H)
    x = rng.normal(size=(B, T, D)).astype("float32")
    h0, c0 = (rng.normal(size=(B, H)).astype("float32") for _ in range(2))
    out, h, c = layer(x, initial_state=[h0, c0])
    x_ref = x[:, ::-1] if go_backwards else x
    ref_out, ref_h, ref_c = numpy_peephole_lstm(x_ref, kernel, recurrent, bias, peep, h0, c0)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(h, ref_h, atol=1e-5)
    np.testing.assert_allclose(c, ref_c, atol=1e-5)
    assert layer.kernel_used == "fused"


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_fused_kernel_matches_autodiff_loop(rnn, return_sequences, go_backwards):
    """The fused kernel's hand-written peephole gradient against TensorFlow's autodiff loop.

    The same layer runs on the fused kernel, then on `loops.lstm_loop` (differentiated by
    TensorFlow), with and without a mask (holes and a leading masked step).
    """
    layer, _, rng = _layer_and_weights(4, go_backwards=go_backwards)
    layer.return_sequences = return_sequences
    x = rng.normal(size=(B, T, D)).astype("float32")
    states = [rng.normal(size=(B, H)).astype("float32") for _ in range(2)]
    holes = np.ones((B, T), dtype=bool)
    holes[0, :2] = holes[1, 3] = holes[2, 4:] = False
    for mask in (None, holes):
        fused_out, fused_grads = rnn.outputs_and_grads(layer, x, mask, initial_state=states)
        assert layer.kernel_used == "fused"
        loop_layer = _AutodiffLoop(layer)
        loop_out, loop_grads = rnn.outputs_and_grads(loop_layer, x, mask, initial_state=states)
        assert len(fused_grads) == 3 + 4  # x, h0, c0, kernel, recurrent, bias, peephole
        for a, b in zip(fused_out, loop_out, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
        for a, b in zip(fused_grads, loop_grads, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
        assert np.abs(fused_grads[-1]).max() > 1e-3  # the peephole weights do get a gradient


class _AutodiffLoop:
    """Calls a built peephole LSTM's weights through `loops.lstm_loop`, with Keras' outputs."""

    def __init__(self, layer):
        self.layer = layer
        self.trainable_weights = layer.trainable_weights

    def __call__(self, x, mask=None, initial_state=None):
        layer = self.layer
        x = tf.reverse(x, [1]) if layer.go_backwards else x
        x_tm = tf.transpose(x, [1, 0, 2])
        mask_tm = None
        if mask is not None:
            mask = tf.reverse(mask, [1]) if layer.go_backwards else mask
            mask_tm = tf.transpose(tf.cast(mask, tf.bool))
        cell = layer.cell
        outs, h, c = loops.lstm_loop(x_tm, mask_tm, *initial_state, cell.kernel,
                                     cell.recurrent_kernel, cell.bias,
                                     peephole=cell.peephole_kernel)
        out = tf.transpose(outs, [1, 0, 2]) if layer.return_sequences else outs[-1]
        return [out, h, c]


def test_gradient_matches_finite_differences():
    layer, weights, rng = _layer_and_weights(1)
    x = rng.normal(size=(B, T, D)).astype("float64")
    peep = tf.Variable(weights[3])
    with tf.GradientTape() as tape:
        out = layer(x)[0]
        loss = tf.reduce_sum(out * np.linspace(-1, 1, H))
    grad = tape.gradient(loss, layer.cell.peephole_kernel)

    def loss_at(p):
        return float(np.sum(numpy_peephole_lstm(x, *weights[:3], p, np.zeros((B, H)),
                                                np.zeros((B, H)))[0] * np.linspace(-1, 1, H)))

    eps = 1e-4
    numeric = np.zeros_like(weights[3], dtype="float64")
    for idx in np.ndindex(*numeric.shape):
        plus, minus = weights[3].astype("float64"), weights[3].astype("float64")
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (loss_at(plus) - loss_at(minus)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=2e-3)
    del peep


def test_peephole_refuses_cudnn():
    with pytest.raises(ConfigError, match="peephole"):
        LSTM(H, peephole=True, implementation="cudnn")


def test_roundtrip_keeps_the_peephole_weights(rnn, tmp_path):
    layer, weights, rng = _layer_and_weights(5)
    layer.return_state = False  # the round-trip helper compares one output
    x = rng.normal(size=(B, T, D)).astype("float32")
    loaded = rnn.roundtrip(layer, x, tmp_path)
    restored = loaded.layers[1]
    assert restored.get_config()["peephole"] is True
    np.testing.assert_array_equal(restored.cell.peephole_kernel.numpy(), weights[3])
