"""General recurrent loops (TensorFlow autodiff) and the single-step equations they share.

This path covers what the fused kernel does not: recurrent dropout and any activation (with
masks and LSTM peepholes too). It still hoists the input projection out of
the loop; the loop itself is a `tf.while_loop` over TensorArrays, differentiated by TensorFlow.
Correctness over speed.

Tensors are time-major: x [T, B, D], mask [T, B] (bool) or None.
"""

import tensorflow as tf

__all__ = ["lstm_step", "gru_step", "lstm_loop", "gru_loop"]


def lstm_step(z, c_prev, activation, recurrent_activation, peephole=None):
    """One LSTM step from the pre-activations z = x·W + h·U + b ([B, 4H], gates i, f, c, o).

    Args:
        z: [B, 4H] pre-activations.
        c_prev: [B, H] previous cell state.
        activation, recurrent_activation: callables (tanh and sigmoid by default).
        peephole: None or [3, H] diagonal peephole weights for the i, f and o gates.

    Returns:
        (h, c), each [B, H].
    """
    z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
    if peephole is not None:
        z_i = z_i + peephole[0] * c_prev  # i and f see the previous cell
        z_f = z_f + peephole[1] * c_prev
    i = recurrent_activation(z_i)
    f = recurrent_activation(z_f)
    c = f * c_prev + i * activation(z_c)
    if peephole is not None:
        z_o = z_o + peephole[2] * c  # o sees the new cell
    o = recurrent_activation(z_o)
    return o * activation(c), c


def gru_step(x_proj, inner, h_prev, activation, recurrent_activation):
    """One GRU step (reset_after=True).

    Args:
        x_proj: [B, 3H] = x·W + b_input, gates z, r, h.
        inner: [B, 3H] = h_prev·U + b_recurrent.
        h_prev: [B, H].

    Returns:
        h: [B, H].
    """
    x_z, x_r, x_h = tf.split(x_proj, 3, axis=-1)
    r_z, r_r, r_h = tf.split(inner, 3, axis=-1)
    z = recurrent_activation(x_z + r_z)
    r = recurrent_activation(x_r + r_r)
    hh = activation(x_h + r * r_h)
    return z * h_prev + (1.0 - z) * hh


def _project(x, kernel, bias):
    """[T, B, D] · [D, G] + [G] -> [T, B, G] as one matrix product."""
    shape = tf.shape(x)
    xp = tf.matmul(tf.reshape(x, [-1, shape[2]]), kernel)
    if bias is not None:
        xp = xp + bias
    return tf.reshape(xp, tf.stack([shape[0], shape[1], tf.shape(kernel)[1]]))


def _run(step_fn, xp, mask, states):
    """Loops step_fn(x_t, states) -> (output, new_states) with Keras masking semantics.

    A masked step keeps the previous states and repeats the previous output (zeros before the
    first unmasked step), as `keras.layers.RNN` does.
    """
    steps = tf.shape(xp)[0]
    xs = tf.TensorArray(xp.dtype, size=steps).unstack(xp)
    ms = None if mask is None else tf.TensorArray(tf.bool, size=steps).unstack(mask)
    outs = tf.TensorArray(xp.dtype, size=steps, element_shape=states[0].shape)
    prev_out = tf.zeros_like(states[0])

    def body(t, outs, prev_out, *states):
        out, new_states = step_fn(xs.read(t), list(states))
        if ms is not None:
            m = ms.read(t)[:, None]  # [B, 1]
            out = tf.where(m, out, prev_out)
            new_states = [tf.where(m, n, s) for n, s in zip(new_states, states, strict=True)]
        return (t + 1, outs.write(t, out), out, *new_states)

    result = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), outs, prev_out, *states),
        maximum_iterations=steps,
    )
    outs = result[1].stack()
    return outs, list(result[3:])


def lstm_loop(
    x,
    mask,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    bias,
    activation=tf.tanh,
    recurrent_activation=tf.sigmoid,
    peephole=None,
    recurrent_mask=None,
):
    """LSTM over a time-major sequence with TensorFlow autodiff.

    Args:
        x: [T, B, D]. mask: [T, B] bool or None. h0, c0: [B, H].
        kernel: [D, 4H], recurrent_kernel: [H, 4H], bias: [4H] or None (gates i, f, c, o).
        peephole: None or [3, H] (i, f, o). recurrent_mask: None or [B, H] dropout mask on h.

    Returns:
        (outputs [T, B, H], h_T, c_T).
    """
    xp = _project(x, kernel, bias)  # [T, B, 4H]

    def step(x_t, states):
        h, c = states
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = x_t + tf.matmul(h_in, recurrent_kernel)
        h_new, c_new = lstm_step(z, c, activation, recurrent_activation, peephole)
        return h_new, [h_new, c_new]

    outs, (h, c) = _run(step, xp, mask, [h0, c0])
    return outs, h, c


def gru_loop(
    x,
    mask,
    h0,
    kernel,
    recurrent_kernel,
    bias,
    activation=tf.tanh,
    recurrent_activation=tf.sigmoid,
    recurrent_mask=None,
):
    """GRU (reset_after=True) over a time-major sequence with TensorFlow autodiff.

    Args:
        x: [T, B, D]. mask: [T, B] bool or None. h0: [B, H].
        kernel: [D, 3H], recurrent_kernel: [H, 3H], bias: [2, 3H] or None (gates z, r, h).
        recurrent_mask: None or [B, H] dropout mask on h.

    Returns:
        (outputs [T, B, H], h_T).
    """
    xp = _project(x, kernel, None if bias is None else bias[0])  # [T, B, 3H]

    def step(x_t, states):
        (h,) = states
        h_in = h if recurrent_mask is None else h * recurrent_mask
        inner = tf.matmul(h_in, recurrent_kernel)
        if bias is not None:
            inner = inner + bias[1]
        h_new = gru_step(x_t, inner, h, activation, recurrent_activation)
        return h_new, [h_new]

    outs, (h,) = _run(step, xp, mask, [h0])
    return outs, h
