"""cuDNN kernels: our Keras-layout weights converted to cuDNN's canonical layout.

cuDNN wants one flat parameter buffer: every gate's input weights, then every gate's recurrent
weights, each transposed to (out, in) and flattened, then the input biases, then the recurrent
biases. LSTM gate order is i, f, c, o for both Keras and cuDNN; our single bias becomes the
recurrent bias and the input bias is zero. GRU: Keras orders gates z, r, h and keeps the bias as
(2, 3H) = [input, recurrent]; cuDNN orders them r, z, h.

Inputs are time-major [T, B, D]. `sequence_lengths` ([B] int32) encodes a right-padded mask.
"""

import tensorflow as tf

__all__ = [
    "gpu_available",
    "lstm_cudnn_params",
    "gru_cudnn_params",
    "lstm_cudnn",
    "gru_cudnn",
    "right_padded_lengths",
]


def gpu_available():
    """True when TensorFlow sees a GPU and was built with CUDA (cuDNN)."""
    if not tf.test.is_built_with_cuda():
        return False
    return bool(tf.config.list_logical_devices("GPU"))


def _flatten(weights, biases):
    """Keras (in, out) blocks -> one flat cuDNN buffer: transposed weights, then biases."""
    flat = [tf.reshape(tf.transpose(w), [-1]) for w in weights]
    flat += [tf.reshape(b, [-1]) for b in biases]
    return tf.concat(flat, axis=0)


def lstm_cudnn_params(kernel, recurrent_kernel, bias):
    """Flat cuDNN LSTM parameters from Keras-layout weights (gate order i, f, c, o).

    Args:
        kernel: [D, 4H]. recurrent_kernel: [H, 4H]. bias: [4H].

    Returns:
        A 1-D tensor of 4H·D + 4H·H + 8H values.
    """
    weights = tf.split(kernel, 4, axis=1) + tf.split(recurrent_kernel, 4, axis=1)
    input_bias = tf.zeros_like(bias)  # cuDNN adds both biases; ours is all in the second
    biases = tf.split(input_bias, 4) + tf.split(bias, 4)
    return _flatten(weights, biases)


def gru_cudnn_params(kernel, recurrent_kernel, bias):
    """Flat cuDNN GRU parameters from `keras.layers.GRU(reset_after=True)` weights.

    Args:
        kernel: [D, 3H], recurrent_kernel: [H, 3H] (gates z, r, h); bias: [2, 3H].

    Returns:
        A 1-D tensor in cuDNN's gate order r, z, h.
    """
    w_z, w_r, w_h = tf.split(kernel, 3, axis=1)
    u_z, u_r, u_h = tf.split(recurrent_kernel, 3, axis=1)
    bi_z, bi_r, bi_h = tf.split(bias[0], 3)
    br_z, br_r, br_h = tf.split(bias[1], 3)
    return _flatten([w_r, w_z, w_h, u_r, u_z, u_h], [bi_r, bi_z, bi_h, br_r, br_z, br_h])


def right_padded_lengths(mask):
    """Sequence lengths [B] of a time-major [T, B] mask, asserting that it is right-padded.

    cuDNN skips the tail of each sequence; a mask with gaps, left padding or an empty sequence
    cannot be expressed that way, so it fails loudly instead of giving wrong numbers.
    """
    mask = tf.cast(mask, tf.bool)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=0)  # [B]
    expected = tf.transpose(tf.sequence_mask(lengths, maxlen=tf.shape(mask)[0]))  # [T, B]
    valid = tf.logical_and(tf.reduce_all(tf.equal(mask, expected)), tf.reduce_all(lengths > 0))
    check = tf.debugging.Assert(
        valid,
        [
            "cuDNN needs right-padded masks ([True, True, False, ...]) with at least one step "
            "per sequence; pass implementation='fused' for other masks."
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(lengths)


def _run(x, h0, c0, params, lengths, mode, go_backwards):
    """Calls CudnnRNNV3 time-major; returns (outputs [T, B, H], h [B, H], c [B, H])."""
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    if lengths is None:
        lengths = tf.fill([batch], steps)
    if go_backwards:
        # [1, 2, 3, pad] -> [3, 2, 1, pad]; outputs are mapped back below.
        x = tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)
    outputs, h, c, _, _ = tf.raw_ops.CudnnRNNV3(
        input=x,
        input_h=h0[None],
        input_c=c0[None] if c0 is not None else 0,
        params=params,
        sequence_lengths=lengths,
        rnn_mode=mode,
        input_mode="linear_input",
        direction="unidirectional",
        is_training=True,
        time_major=True,
    )
    if go_backwards:
        # Keras returns the outputs in processing order with the padding first.
        outputs = tf.reverse_sequence(outputs, lengths, seq_axis=0, batch_axis=1)
        outputs = tf.reverse(outputs, axis=[0])
    return outputs, h[0], (c[0] if c0 is not None else None)


def lstm_cudnn(x, h0, c0, kernel, recurrent_kernel, bias, lengths=None, go_backwards=False):
    """LSTM on cuDNN. x: [T, B, D]; returns (outputs [T, B, H], h_T, c_T).

    With `lengths`, outputs past a sequence's end are zeros (cuDNN's convention).
    """
    params = lstm_cudnn_params(kernel, recurrent_kernel, bias)
    return _run(x, h0, c0, params, lengths, "lstm", go_backwards)


def gru_cudnn(x, h0, kernel, recurrent_kernel, bias, lengths=None, go_backwards=False):
    """GRU (reset_after=True) on cuDNN. x: [T, B, D]; returns (outputs [T, B, H], h_T)."""
    params = gru_cudnn_params(kernel, recurrent_kernel, bias)
    outputs, h, _ = _run(x, h0, None, params, lengths, "gru", go_backwards)
    return outputs, h
