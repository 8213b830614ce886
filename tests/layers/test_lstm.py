"""forecast.layers.LSTM against keras.layers.LSTM with the same weights, and its API."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from forecast.errors import ConfigError
from forecast.layers import LSTM, LSTMCell
from forecast.layers import cudnn as cudnn_mod

B, T, D, H = 4, 7, 3, 5


def _x(seed=0, shape=(B, T, D)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _pair(rnn, x, **kwargs):
    """Our layer and keras' with identical (perturbed) weights."""
    return rnn.paired(LSTM(H, **kwargs), keras.layers.LSTM(H, **kwargs), x)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_parity_with_keras(rnn, return_sequences, go_backwards):
    x = _x()
    ours, ref = _pair(
        rnn, x, return_sequences=return_sequences, go_backwards=go_backwards, return_state=True
    )
    rng = np.random.default_rng(1)
    h0, c0 = (rng.normal(size=(B, H)).astype("float32") for _ in range(2))
    rnn.assert_parity(ours, ref, x, initial_state=[h0, c0])
    assert ours.kernel_used == "fused"


def test_parity_with_a_single_unit(rnn):
    """units=1: the fused loops keep static shapes (a (B, 1) state stays (B, 1))."""
    x = _x(3)
    ours, ref = rnn.paired(LSTM(1, return_sequences=True),
                           keras.layers.LSTM(1, return_sequences=True), x)
    rnn.assert_parity(ours, ref, x)


def test_parity_default_outputs_no_state(rnn):
    x = _x(2)
    ours, ref = _pair(rnn, x)
    rnn.assert_parity(ours, ref, x)


#: right-padded (lengths 7, 5, 1, 3), and left-padded / with holes / fully masked rows
MASKS = {
    "right_padded": np.arange(T)[None, :] < np.array([7, 5, 1, 3])[:, None],
    "left_padded_and_holes": np.array(
        [[0, 0, 1, 1, 1, 1, 1], [1, 0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0] * 7], dtype=bool
    ),
}


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("layout", sorted(MASKS))
@pytest.mark.parametrize("kernel", ["fused", "loop"])
def test_parity_with_mask(rnn, go_backwards, return_sequences, layout, kernel):
    """Keras semantics: masked steps keep the states and repeat the last output (zeros first)."""
    x = _x(3)
    kwargs = {} if kernel == "fused" else {"recurrent_activation": "hard_sigmoid"}
    ours, ref = _pair(rnn, x, return_sequences=return_sequences, go_backwards=go_backwards,
                      return_state=True, **kwargs)
    states = [_x(20 + k, (B, H)) for k in range(2)]  # non-zero: leading masked steps keep them
    rnn.assert_parity(ours, ref, x, mask=MASKS[layout], initial_state=states)
    assert ours.kernel_used == kernel


def test_parity_with_masking_layer(rnn):
    x = _x(4)
    x[1, 4:] = 0.0
    x[3, 2:] = 0.0

    def model(layer):
        inputs = keras.Input((T, D))
        return keras.Model(inputs, layer(keras.layers.Masking(0.0)(inputs)))

    ours, ref = _pair(rnn, x, return_sequences=True)
    np.testing.assert_allclose(model(ours)(x), model(ref)(x), atol=1e-5)


def test_parity_stateful(rnn):
    x1, x2 = _x(5), _x(6)
    kw = {"stateful": True, "return_sequences": True}
    ours, ref = LSTM(H, **kw), keras.layers.LSTM(H, **kw)
    for layer in (ours, ref):
        layer.build((B, T, D))
    weights = rnn.perturbed_weights(ref)
    ref.set_weights(weights)
    ours.set_weights(weights)
    assert len(ours.get_weights()) == 3  # states are not weights, as in keras
    for x in (x1, x2):  # the second call starts from the states left by the first
        np.testing.assert_allclose(ours(x), ref(x), atol=1e-5)
    np.testing.assert_allclose(ours.states[1].numpy(), ref.states[1].numpy(), atol=1e-5)
    assert np.abs(ours.states[0].numpy()).max() > 0
    ours.reset_state()
    ref.reset_state()
    np.testing.assert_allclose(ours(x1), ref(x1), atol=1e-5)


def test_parity_under_tf_function(rnn):
    x = _x(7)
    ours, ref = _pair(rnn, x, return_sequences=True)
    np.testing.assert_allclose(tf.function(ours)(x), ref(x), atol=1e-5)
    jitted = tf.function(lambda v: ours(v), jit_compile=True)
    np.testing.assert_allclose(jitted(x), ref(x), atol=1e-5)


@pytest.mark.parametrize("activation", ["relu"])
def test_parity_other_activation_and_no_bias(rnn, activation):
    x = _x(8)
    ours, ref = _pair(rnn, x, activation=activation, use_bias=False, return_state=True)
    rnn.assert_parity(ours, ref, x)
    assert ours.kernel_used == "loop"


def test_classic_rnn_is_the_gated_special_case():
    """With f = 0, i = 1, o = 1 forced, the cell is h = tanh(tanh(x·W + h·U + b))."""
    rng = np.random.default_rng(9)
    cell = LSTMCell(H)
    cell.build((None, D))
    kernel = rng.normal(size=(D, 4 * H)).astype("float32")
    recurrent = rng.normal(size=(H, 4 * H)).astype("float32")
    bias = rng.normal(size=(4 * H,)).astype("float32")
    sl = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("ifco")}
    for g, value in (("i", 1e4), ("f", -1e4), ("o", 1e4)):  # saturate the gates
        kernel[:, sl[g]] = 0.0
        recurrent[:, sl[g]] = 0.0
        bias[sl[g]] = value
    cell.set_weights([kernel, recurrent, bias])
    w, u, b = kernel[:, sl["c"]], recurrent[:, sl["c"]], bias[sl["c"]]
    x = rng.normal(size=(T, B, D)).astype("float32")
    h = c = np.zeros((B, H), "float32")
    h_rnn = np.zeros((B, H), "float32")
    for t in range(T):
        h, (h, c) = cell(x[t], [h, c])
        h_rnn = np.tanh(np.tanh(x[t] @ w + h_rnn @ u + b))
        np.testing.assert_allclose(h, h_rnn, atol=1e-5)
    # and the whole layer (fused kernel) agrees
    layer = LSTM(H, return_sequences=True)
    layer.build((B, T, D))
    layer.set_weights([kernel, recurrent, bias])
    seq = np.asarray(layer(np.transpose(x, (1, 0, 2))))
    np.testing.assert_allclose(seq[:, -1], h_rnn, atol=1e-5)


def test_roundtrip(rnn, tmp_path):
    x = _x(10)
    layer = LSTM(H, return_sequences=True, go_backwards=True, dropout=0.1, seed=3,
                 kernel_regularizer="l2")
    loaded = rnn.roundtrip(layer, x, tmp_path)
    assert loaded.layers[1].get_config()["implementation"] == "auto"


def test_config_matches_keras_keys():
    ours = set(LSTM(H).get_config())
    ref = set(keras.layers.LSTM(H).get_config())
    assert ref - ours <= {"unroll", "use_cudnn", "zero_output_for_mask", "activity_regularizer"}
    assert {"peephole", "implementation"} <= ours


def test_weights_layout_and_unit_forget_bias():
    layer = LSTM(H)
    layer.build((None, T, D))
    names = [w.name for w in layer.weights]
    assert names == ["kernel", "recurrent_kernel", "bias"]
    assert [tuple(w.shape) for w in layer.weights] == [(D, 4 * H), (H, 4 * H), (4 * H,)]
    np.testing.assert_array_equal(layer.cell.bias.numpy(), [0] * H + [1] * H + [0] * 2 * H)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"units": 0}, "`units` must be a positive integer. Received: units=0"),
        ({"units": 4, "dropout": 1.5}, "Received: dropout=1.5"),
        ({"units": 4, "recurrent_dropout": -0.1}, "Received: recurrent_dropout=-0.1"),
        ({"units": 4, "implementation": "gpu"}, "Received: implementation='gpu'"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTM(**kwargs)


def test_cudnn_impossible_configurations_raise_config_error():
    with pytest.raises(ConfigError, match="peephole=True"):
        LSTM(H, peephole=True, implementation="cudnn")
    with pytest.raises(ConfigError, match="recurrent_dropout"):
        LSTM(H, recurrent_dropout=0.2, implementation="cudnn")


@pytest.mark.skipif(cudnn_mod.gpu_available(), reason="checks the no-GPU message")
def test_cudnn_without_gpu_says_so():
    with pytest.raises(ConfigError, match="no GPU"):
        LSTM(H, implementation="cudnn")(_x())
    layer = LSTM(H)
    layer(_x())
    assert layer.kernel_used == "fused"
    assert "no GPU" in layer.kernel_reason


def test_cudnn_params_layout():
    """The flat cuDNN buffer: W_i..W_o transposed, U_i..U_o transposed, zero input bias, bias."""
    rng = np.random.default_rng(11)
    kernel = rng.normal(size=(D, 4 * H)).astype("float32")
    recurrent = rng.normal(size=(H, 4 * H)).astype("float32")
    bias = rng.normal(size=(4 * H,)).astype("float32")
    params = cudnn_mod.lstm_cudnn_params(kernel, recurrent, bias).numpy()
    assert params.shape == (4 * H * D + 4 * H * H + 8 * H,)
    blocks, pos = [], 0
    for size in [H * D] * 4 + [H * H] * 4 + [H] * 8:
        blocks.append(params[pos : pos + size])
        pos += size
    for g in range(4):
        np.testing.assert_array_equal(blocks[g], kernel[:, g * H : (g + 1) * H].T.ravel())
        np.testing.assert_array_equal(blocks[4 + g], recurrent[:, g * H : (g + 1) * H].T.ravel())
        np.testing.assert_array_equal(blocks[8 + g], np.zeros(H))
        np.testing.assert_array_equal(blocks[12 + g], bias[g * H : (g + 1) * H])


def test_dropout_changes_training_outputs_only():
    x = _x(12)
    layer = LSTM(H, dropout=0.5, seed=1)
    inference = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(layer(x, training=False), inference, atol=0)
    assert np.abs(np.asarray(layer(x, training=True)) - inference).max() > 1e-3
    assert layer.kernel_used == "fused"
    rec = LSTM(H, recurrent_dropout=0.5, seed=1)
    rec(x, training=True)
    assert rec.kernel_used == "loop"
