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


def _stop(*tensors):
    return [tf.stop_gradient(t) for t in tensors]


# --------------------------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------------------------
# Measured on 2 CPU cores (see benchmarks/bench_lstm.py and the module docstring):
# - large matrix products are faster as plain TensorFlow ops (oneDNN) than inside XLA (Eigen), so
#   the projection, the gate recomputation and the weight gradients stay outside XLA;
# - an XLA loop wins while the per-step work is small (little per-op overhead) and loses when the
#   per-step product is large, so the loops are compiled only below _JIT_MAX_STEP_FLOPS;
# - writing the [B, 4H] gates every step is costly inside an XLA loop (a buffer update) but free
#   in a TensorFlow loop (a list of tensors): the XLA loop stores h and c only and the gates are
#   recomputed after it as one [T·B, H]×[H, 4H] product.

_JIT_MAX_STEP_FLOPS = 4e6  # B·H·4H multiply-adds per step above which the loops are not compiled


def _lstm_forward_loop(xp, h0, c0, U, keep_gates):
    """xp: [T, B, 4H]. Returns hs, cs [T, B, H] and, with keep_gates, the activated gates."""
    steps = tf.shape(xp)[0]
    units = tf.shape(h0)[1]
    hs = tf.TensorArray(xp.dtype, size=steps, element_shape=h0.shape)
    cs = tf.TensorArray(xp.dtype, size=steps, element_shape=c0.shape)
    gs = tf.TensorArray(xp.dtype, size=steps if keep_gates else 0,
                        element_shape=xp.shape[1:] if keep_gates else None)

    def body(t, h, c, hs, cs, gs):
        z = xp[t] + tf.matmul(h, U)  # [B, 4H]
        ifo = tf.sigmoid(z)
        g = tf.tanh(z[:, 2 * units : 3 * units])
        i, f, o = ifo[:, :units], ifo[:, units : 2 * units], ifo[:, 3 * units :]
        c = f * c + i * g
        h = o * tf.tanh(c)
        if keep_gates:
            gs = gs.write(t, tf.concat([i, f, g, o], axis=1))
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gs

    _, _, _, hs, cs, gs = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, hs, cs, gs),
        maximum_iterations=steps,
    )
    return (hs.stack(), cs.stack(), gs.stack()) if keep_gates else (hs.stack(), cs.stack())


def _lstm_backward_loop(dhs, dh_last, dc_last, gates, cs, c0, U):
    """Carries dh, dc back through time. Returns dZ [T, B, 4H], dh0, dc0.

    The gate derivatives are computed inside the loop on [B, ·] slices that stay in cache:
    precomputing them on whole [T, B, 4H] tensors was measured slower (memory-bound).
    """
    steps = tf.shape(gates)[0]
    units = tf.shape(c0)[1]
    u_t = tf.transpose(U)
    dzs = tf.TensorArray(gates.dtype, size=steps, element_shape=gates.shape[1:])

    def body(k, dh_next, dc_next, dzs):
        t = steps - 1 - k
        gt = gates[t]  # [B, 4H], activated i, f, c̃, o
        i, f = gt[:, :units], gt[:, units : 2 * units]
        g, o = gt[:, 2 * units : 3 * units], gt[:, 3 * units :]
        c_prev = tf.where(t > 0, cs[tf.maximum(t - 1, 0)], c0)
        tc = tf.tanh(cs[t])
        dh = dh_next if dhs is None else dh_next + dhs[t]
        dc = dc_next + dh * o * (1.0 - tc * tc)
        dz = tf.concat(  # [B, 4H], gates i, f, c, o
            [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g),
             dh * tc * o * (1.0 - o)],
            axis=1,
        )
        return k + 1, tf.matmul(dz, u_t), dc * f, dzs.write(t, dz)

    _, dh0, dc0, dzs = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh_last, dc_last, dzs),
        maximum_iterations=steps,
    )
    return dzs.stack(), dh0, dc0


_LOOPS = {}


def _loops(jit):
    if jit not in _LOOPS:
        wrap = tf.function(jit_compile=jit, reduce_retracing=True)
        _LOOPS[jit] = (
            wrap(lambda xp, h0, c0, U: _lstm_forward_loop(xp, h0, c0, U, keep_gates=not jit)),
            wrap(lambda *a: _lstm_backward_loop(None, *a)),
            wrap(_lstm_backward_loop),
        )
    return _LOOPS[jit]


_WHOLE = {}


def _whole(jit, return_sequences, units):
    """Forward and backward of the whole layer as two functions, XLA-compiled when jit."""
    key = (jit, return_sequences, units)
    if key in _WHOLE:
        return _WHOLE[key]
    forward_loop, backward_last, backward_seq = _loops(jit)

    def forward(x, h0, c0, W, U, b):
        xt = tf.transpose(x, [1, 0, 2])  # [B, T, D] -> [T, B, D]
        shape = tf.shape(xt)
        xp = tf.matmul(tf.reshape(xt, [-1, shape[2]]), W) + b  # [T*B, D] -> [T*B, 4H]
        xp = tf.reshape(xp, [shape[0], shape[1], 4 * units])  # -> [T, B, 4H]
        saved = forward_loop(xp, h0, c0, U)
        hs, cs = saved[0], saved[1]
        gates = saved[2] if len(saved) > 2 else tf.zeros([0], dtype=x.dtype)
        h, c = hs[-1], cs[-1]
        out = tf.transpose(hs, [1, 0, 2]) if return_sequences else h
        return out, h, c, hs, cs, gates

    def backward(d_out, d_h, d_c, x, h0, c0, W, U, b, hs, cs, gates):
        xt = tf.transpose(x, [1, 0, 2])  # [T, B, D]
        shape = tf.shape(xt)
        x2 = tf.reshape(xt, [-1, shape[2]])  # [T*B, D]
        h_prev = tf.concat([h0[None], hs[:-1]], axis=0)  # [T, B, H]
        h_prev2 = tf.reshape(h_prev, [-1, units])  # [T*B, H]
        if jit:  # the XLA loop kept no gates: recompute them all as one product
            z = tf.matmul(x2, W) + b + tf.matmul(h_prev2, U)  # [T*B, 4H]
            gates = tf.concat(
                [tf.sigmoid(z[:, : 2 * units]), tf.tanh(z[:, 2 * units : 3 * units]),
                 tf.sigmoid(z[:, 3 * units :])],
                axis=1,
            )
            gates = tf.reshape(gates, [shape[0], shape[1], 4 * units])  # [T, B, 4H]
        if return_sequences:
            dhs = tf.transpose(d_out, [1, 0, 2])  # [T, B, H]
            dz, dh0, dc0 = backward_seq(dhs, d_h, d_c, gates, cs, c0, U)
        else:
            dz, dh0, dc0 = backward_last(d_h + d_out, d_c, gates, cs, c0, U)
        dz = tf.reshape(dz, [-1, 4 * units])  # [T*B, 4H]
        d_w = tf.matmul(x2, dz, transpose_a=True)  # [D, 4H]
        d_u = tf.matmul(h_prev2, dz, transpose_a=True)  # [H, 4H]
        d_b = tf.reduce_sum(dz, axis=0)
        dx = tf.reshape(tf.matmul(dz, W, transpose_b=True), shape)  # [T, B, D]
        return tf.transpose(dx, [1, 0, 2]), dh0, dc0, d_w, d_u, d_b

    wrap = tf.function(jit_compile=jit, reduce_retracing=True)
    _WHOLE[key] = (wrap(forward), wrap(backward))
    return _WHOLE[key]


def lstm_fused(x, h0, c0, kernel, recurrent_kernel, bias, return_sequences=True):
    """Runs an LSTM over a batch-major sequence with the fused CPU kernel.

    Args:
        x: inputs, [B, T, D] (reverse it first for go_backwards).
        h0, c0: initial states, [B, H].
        kernel: [D, 4H]; recurrent_kernel: [H, 4H]; bias: [4H] or None. Gate order i, f, c, o.
        return_sequences: output every step's h ([B, T, H]) or only the last ([B, H]).

    Returns:
        (output, h_T [B, H], c_T [B, H]).

    >>> out, h, c = lstm_fused(tf.zeros([2, 5, 3]), tf.zeros([2, 4]), tf.zeros([2, 4]),
    ...                        tf.zeros([3, 16]), tf.zeros([4, 16]), tf.zeros([16]))
    >>> out.shape, h.shape
    (TensorShape([2, 5, 4]), TensorShape([2, 4]))
    """
    units = recurrent_kernel.shape[0]
    batch = x.shape[0]
    jit = batch is None or batch * units * 4 * units <= _JIT_MAX_STEP_FLOPS
    if bias is None:
        bias = tf.zeros([4 * units], dtype=kernel.dtype)

    forward, backward = _whole(jit, bool(return_sequences), units)

    @tf.custom_gradient
    def core(x, h0, c0, W, U, b):
        # stop_gradient: the tape must not record (and differentiate) the kernel itself.
        out, h, c, hs, cs, gates = forward(*_stop(x, h0, c0, W, U, b))

        def grad(d_out, d_h, d_c):
            d_out = tf.zeros_like(out) if d_out is None else d_out
            d_h = tf.zeros_like(h) if d_h is None else d_h
            d_c = tf.zeros_like(c) if d_c is None else d_c
            return backward(*_stop(d_out, d_h, d_c, x, h0, c0, W, U, b, hs, cs, gates))

        return (out, h, c), grad

    return core(x, h0, c0, kernel, recurrent_kernel, bias)


# --------------------------------------------------------------------------------------------
# GRU (reset_after=True: r multiplies the recurrent projection, which has its own bias)
# --------------------------------------------------------------------------------------------


@tf.function(jit_compile=True, reduce_retracing=True)
def _gru_forward(xp, h0, U, b_rec):
    """Forward loop. xp: [T, B, 3H] (input bias included); b_rec: [3H]."""
    steps = tf.shape(xp)[0]
    units = tf.shape(h0)[1]
    hs = tf.TensorArray(xp.dtype, size=steps, element_shape=h0.shape)
    width = None if xp.shape[2] is None else xp.shape[2] // 3 * 4
    gs = tf.TensorArray(xp.dtype, size=steps, element_shape=[xp.shape[1], width])

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
    hs, gates = _gru_forward(*_stop(xp, h0, U, b_rec))

    def grad(d_hs, d_h):
        d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
        d_h = tf.zeros_like(h0) if d_h is None else d_h
        return _gru_backward(*_stop(d_hs, d_h, h0, hs, gates, U))

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
