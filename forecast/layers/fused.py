"""Fused CPU kernels for LSTM and GRU: hoisted input projection, XLA loops, hand-written gradient.

The autodiff of a `tf.while_loop` keeps per-step accumulators and replays every op of the step
backwards, which is what makes `keras.layers.LSTM` slow on a CPU. Here, as in cuDNN:

- the caller computes the input projection of all time steps as one matrix product (`x·W + b`,
  differentiated by TensorFlow as one matrix product too);
- the forward loop (`tf.function(jit_compile=True)`) does one matrix product per step for all gates
  and keeps the gate activations and cell states of every step;
- the backward loop carries only dh/dc and writes the per-step gate gradients dZ; everything
  that does not depend on the recurrence is computed before the loop on whole [T, B, ·] tensors;
- the recurrent weight gradient is one large matrix product after the loop: dU = H_prevᵀ·dZ.

All tensors here are time-major: [T, B, ·]. Activations are the Keras defaults (sigmoid gates,
tanh candidate); other activations, masks, peepholes and recurrent dropout go to `loops.py`.
"""

import tensorflow as tf

__all__ = ["lstm_fused", "gru_fused"]


# --------------------------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------------------------


@tf.function(jit_compile=True, reduce_retracing=True)
def _lstm_forward(xp, h0, c0, U):
    """Forward loop. xp: [T, B, 4H] projected inputs (bias included)."""
    steps = tf.shape(xp)[0]
    units = tf.shape(h0)[1]
    hs = tf.TensorArray(xp.dtype, size=steps, element_shape=h0.shape)
    cs = tf.TensorArray(xp.dtype, size=steps, element_shape=c0.shape)
    gs = tf.TensorArray(xp.dtype, size=steps, element_shape=xp.shape[1:])

    def body(t, h, c, hs, cs, gs):
        z = xp[t] + tf.matmul(h, U)  # [B, 4H]
        ifo = tf.sigmoid(z)
        g = tf.tanh(z[:, 2 * units : 3 * units])
        i = ifo[:, :units]
        f = ifo[:, units : 2 * units]
        o = ifo[:, 3 * units :]
        c = f * c + i * g
        h = o * tf.tanh(c)
        gates = tf.concat([i, f, g, o], axis=1)  # [B, 4H], activated
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gs.write(t, gates)

    _, h, c, hs, cs, gs = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, hs, cs, gs),
        maximum_iterations=steps,
    )
    return hs.stack(), cs.stack(), gs.stack()


@tf.function(jit_compile=True, reduce_retracing=True)
def _lstm_backward(dhs, dh_last, dc_last, h0, c0, hs, cs, gates, U):
    """Backward loop. Returns dxp [T, B, 4H], dh0, dc0, dU."""
    steps = tf.shape(gates)[0]
    i, f, g, o = tf.split(gates, 4, axis=2)  # each [T, B, H]
    c_prev = tf.concat([c0[None], cs[:-1]], axis=0)
    tc = tf.tanh(cs)
    dc_from_dh = o * (1.0 - tc * tc)  # dc += dh * dc_from_dh
    # dZ = [dc, dc, dc, dh] * factors, gate order i, f, c, o.
    factors = tf.concat(
        [g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g), tc * o * (1.0 - o)], axis=2
    )
    u_t = tf.transpose(U)
    dzs = tf.TensorArray(gates.dtype, size=steps, element_shape=gates.shape[1:])

    def body(k, dh_next, dc_next, dzs):
        t = steps - 1 - k
        dh = dh_next + dhs[t]
        dc = dc_next + dh * dc_from_dh[t]
        dz = tf.concat([dc, dc, dc, dh], axis=1) * factors[t]  # [B, 4H]
        return k + 1, tf.matmul(dz, u_t), dc * f[t], dzs.write(t, dz)

    _, dh0, dc0, dzs = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh_last, dc_last, dzs),
        maximum_iterations=steps,
    )
    dz = dzs.stack()  # [T, B, 4H]
    h_prev = tf.concat([h0[None], hs[:-1]], axis=0)  # [T, B, H]
    d_u = tf.matmul(
        tf.reshape(h_prev, [-1, tf.shape(h0)[1]]),
        tf.reshape(dz, [-1, tf.shape(dz)[2]]),
        transpose_a=True,
    )
    return dz, dh0, dc0, d_u


@tf.custom_gradient
def _lstm_core(xp, h0, c0, U):
    hs, cs, gates = _lstm_forward(xp, h0, c0, U)

    def grad(d_hs, d_h, d_c):
        d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
        d_h = tf.zeros_like(h0) if d_h is None else d_h
        d_c = tf.zeros_like(c0) if d_c is None else d_c
        return _lstm_backward(d_hs, d_h, d_c, h0, c0, hs, cs, gates, U)

    return (hs, hs[-1], cs[-1]), grad


def lstm_fused(x, h0, c0, kernel, recurrent_kernel, bias):
    """Runs an LSTM over a time-major sequence with the fused CPU kernel.

    Args:
        x: inputs, [T, B, D].
        h0, c0: initial states, [B, H].
        kernel: [D, 4H]; recurrent_kernel: [H, 4H]; bias: [4H] or None. Gate order i, f, c, o.

    Returns:
        (hs [T, B, H], h_T [B, H], c_T [B, H]).

    >>> hs, h, c = lstm_fused(tf.zeros([5, 2, 3]), tf.zeros([2, 4]), tf.zeros([2, 4]),
    ...                       tf.zeros([3, 16]), tf.zeros([4, 16]), tf.zeros([16]))
    >>> hs.shape, h.shape
    (TensorShape([5, 2, 4]), TensorShape([2, 4]))
    """
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    xp = tf.matmul(tf.reshape(x, [-1, tf.shape(x)[2]]), kernel)  # [T*B, D] -> [T*B, 4H]
    if bias is not None:
        xp = xp + bias
    xp = tf.reshape(xp, tf.stack([steps, batch, tf.shape(kernel)[1]]))  # -> [T, B, 4H]
    return _lstm_core(xp, h0, c0, recurrent_kernel)


# --------------------------------------------------------------------------------------------
# GRU (reset_after=True: r multiplies the recurrent projection, which has its own bias)
# --------------------------------------------------------------------------------------------


@tf.function(jit_compile=True, reduce_retracing=True)
def _gru_forward(xp, h0, U, b_rec):
    """Forward loop. xp: [T, B, 3H] (input bias included); b_rec: [3H]."""
    steps = tf.shape(xp)[0]
    units = tf.shape(h0)[1]
    hs = tf.TensorArray(xp.dtype, size=steps, element_shape=h0.shape)
    gs = tf.TensorArray(xp.dtype, size=steps, element_shape=xp.shape[1:])

    def body(t, h, hs, gs):
        x_t = xp[t]
        inner = tf.matmul(h, U) + b_rec  # [B, 3H]
        zr = tf.sigmoid(x_t[:, : 2 * units] + inner[:, : 2 * units])
        z = zr[:, :units]
        r = zr[:, units:]
        rh = inner[:, 2 * units :]
        hh = tf.tanh(x_t[:, 2 * units :] + r * rh)
        h_new = z * h + (1.0 - z) * hh
        return t + 1, h_new, hs.write(t, h_new), gs.write(t, tf.concat([z, r, hh, rh], axis=1))

    _, h, hs, gs = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, hs, gs),
        maximum_iterations=steps,
    )
    return hs.stack(), gs.stack()  # [T, B, H], [T, B, 4H] (z, r, hh, recurrent part of h)


@tf.function(jit_compile=True, reduce_retracing=True)
def _gru_backward(dhs, dh_last, h0, hs, gates, U):
    """Backward loop. Returns dxp [T, B, 3H], dh0, dU, db_rec."""
    steps = tf.shape(gates)[0]
    z, r, hh, rh = tf.split(gates, 4, axis=2)  # each [T, B, H]
    h_prev = tf.concat([h0[None], hs[:-1]], axis=0)  # [T, B, H]
    f_z = (h_prev - hh) * z * (1.0 - z)  # da_z = dh * f_z
    f_h = (1.0 - z) * (1.0 - hh * hh)  # da_h = dh * f_h
    f_r = rh * r * (1.0 - r)  # da_r = da_h * f_r
    u_t = tf.transpose(U)
    width = None if gates.shape[2] is None else gates.shape[2] // 4 * 3
    dxs = tf.TensorArray(gates.dtype, size=steps, element_shape=[gates.shape[1], width])

    def body(k, dh_next, dxs):
        t = steps - 1 - k
        dh = dh_next + dhs[t]
        da_h = dh * f_h[t]
        dx = tf.concat([dh * f_z[t], da_h * f_r[t], da_h], axis=1)  # grads of x-projection
        d_inner = tf.concat([dx[:, : 2 * tf.shape(dh)[1]], da_h * r[t]], axis=1)
        return k + 1, dh * z[t] + tf.matmul(d_inner, u_t), dxs.write(t, dx)

    _, dh0, dxs = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh_last, dxs),
        maximum_iterations=steps,
    )
    dx = dxs.stack()  # [T, B, 3H]
    units = tf.shape(h0)[1]
    d_inner = tf.concat([dx[:, :, : 2 * units], dx[:, :, 2 * units :] * r], axis=2)
    d_inner2 = tf.reshape(d_inner, [-1, 3 * units])
    d_u = tf.matmul(tf.reshape(h_prev, [-1, units]), d_inner2, transpose_a=True)
    return dx, dh0, d_u, tf.reduce_sum(d_inner2, axis=0)


@tf.custom_gradient
def _gru_core(xp, h0, U, b_rec):
    hs, gates = _gru_forward(xp, h0, U, b_rec)

    def grad(d_hs, d_h):
        d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
        d_h = tf.zeros_like(h0) if d_h is None else d_h
        return _gru_backward(d_hs, d_h, h0, hs, gates, U)

    return (hs, hs[-1]), grad


def gru_fused(x, h0, kernel, recurrent_kernel, bias):
    """Runs a GRU (reset_after=True) over a time-major sequence with the fused CPU kernel.

    Args:
        x: inputs, [T, B, D]. h0: initial state, [B, H].
        kernel: [D, 3H]; recurrent_kernel: [H, 3H]; bias: [2, 3H] (input, recurrent) or None.
            Gate order z, r, h as in `keras.layers.GRU`.

    Returns:
        (hs [T, B, H], h_T [B, H]).

    >>> hs, h = gru_fused(tf.zeros([5, 2, 3]), tf.zeros([2, 4]), tf.zeros([3, 12]),
    ...                   tf.zeros([4, 12]), tf.zeros([2, 12]))
    >>> hs.shape
    TensorShape([5, 2, 4])
    """
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    width = tf.shape(kernel)[1]
    xp = tf.matmul(tf.reshape(x, [-1, tf.shape(x)[2]]), kernel)  # [T*B, D] -> [T*B, 3H]
    if bias is not None:
        xp = xp + bias[0]
        b_rec = bias[1]
    else:
        b_rec = tf.zeros([width], dtype=x.dtype)
    xp = tf.reshape(xp, tf.stack([steps, batch, width]))  # -> [T, B, 3H]
    return _gru_core(xp, h0, recurrent_kernel, b_rec)
