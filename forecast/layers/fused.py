"""Fused CPU kernels for LSTM and GRU: XLA-compiled loops with a hand-written gradient.

The autodiff of a `tf.while_loop` keeps per-step accumulators and replays every op of the step
backwards, which is what makes `keras.layers.LSTM` slow on a CPU. Here, as in cuDNN:

- the forward loop (`tf.function(jit_compile=True)`) does one matrix product per step for all
  gates and for input and state together ([x_t, h]·[W; U] + b), and keeps the activated gates and
  the states entering every step;
- the backward loop carries only dh/dc; per step it forms the gate-input gradients dz and does
  two matrix products: dz·[W; U]ᵀ (dx_t and dh_{t-1} at once) and [x_t, h_prev]ᵀ·dz (summed into
  the weight gradients) while dz is in cache.

All tensors here are time-major: [T, B, ·]. Activations are the Keras defaults (sigmoid gates,
tanh candidate); other activations, masks, peepholes and recurrent dropout go to `loops.py"""

import tensorflow as tf

__all__ = ["lstm_fused", "gru_fused"]


def _stop(*tensors):
    return [tf.stop_gradient(t) for t in tensors]


# --------------------------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------------------------
# Measured on 2 CPU cores (benchmarks/bench_lstm.py, B=256, T=96, H=128 unless said):
# - the cost is the 3·T matrix products of [B, H]x[H, 4H] (forward, dh, dU); XLA runs them
#   faster than TensorFlow's kernels here (0.33 vs 0.41 ms each), so both loops are compiled;
# - the backward loop computes the weight gradients (dU += h_prevᵀ·dz, dW += x_tᵀ·dz) and dx
#   step by step while dz is in cache, instead of stacking dZ and multiplying after the loop
#   (239 -> 209 ms per train step);
# - input and state share one product per step, halving the matrix-product calls: 209 -> 170 ms;
# - four separate activations beat one sigmoid over all gates with the candidate rescaled (69 vs
#   88 ms forward);
# - the saved tensors are six [T, B, H] arrays, not one [T, B, 4H] array of concatenated gates
#   plus two [T, B, H]: no concat in the forward step nor split in the backward step, and each
#   array stays under glibc's 32 MB mmap ceiling, so malloc reuses freed memory instead of
#   mapping (and page-faulting) fresh pages at every train step. Train step, ms, old -> new:
#   big 136 -> 112 (plain) and 142 -> 124 (jit), mid 19.0 -> 13.9 and 17.8 -> 13.2,
#   small 3.6 -> 3.1 and 3.5 -> 2.7.


_SAVED = ("i", "f", "g", "o", "h_prev", "c_prev")  # what the forward keeps per step, [T, B, H] each


def _lstm_forward(x, h0, c0, W, U, b, return_sequences):
    """Forward loop over batch-major x [B, T, D].

    Returns:
        (out, h_T, c_T, *saved): `saved` are the activated gates i, f, g, o and the h and c
        entering each step, six [T, B, H] tensors (see `_SAVED`).
    """
    xt = tf.transpose(x, [1, 0, 2])  # [B, T, D] -> [T, B, D]
    steps = tf.shape(xt)[0]
    arrays = [tf.TensorArray(x.dtype, size=steps, element_shape=h0.shape) for _ in _SAVED]
    WU = tf.concat([W, U], axis=0)  # [D + H, 4H]: one product per step for input and state

    def body(t, h, c, *arrays):
        z = tf.matmul(tf.concat([xt[t], h], axis=1), WU) + b  # [B, D + H]x[D + H, 4H]
        zi, zf, zg, zo = tf.split(z, 4, axis=1)  # [B, H] each, gate order i, f, c, o
        i, f, g, o = tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg), tf.sigmoid(zo)
        c_new = f * c + i * g
        h_new = o * tf.tanh(c_new)
        kept = zip(arrays, (i, f, g, o, h, c), strict=True)
        return (t + 1, h_new, c_new) + tuple(a.write(t, v) for a, v in kept)

    _, h, c, *arrays = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, *arrays),
        maximum_iterations=steps,
    )
    saved = [a.stack() for a in arrays]
    h_prev = saved[4]
    if return_sequences:
        out = tf.transpose(tf.concat([h_prev[1:], h[None]], axis=0), [1, 0, 2])  # [B, T, H]
    else:
        out = h
    return (out, h, c, *saved)


def _lstm_backward(d_out, d_h, d_c, x, W, U, b, i, f, g, o, h_prev, c_prev, return_sequences):
    """Backward loop: carries dh, dc back through time and sums the weight gradients.

    Args:
        d_out, d_h, d_c: gradients of the outputs of `_lstm_forward`.
        x, W, U, b: its inputs.
        i, f, g, o, h_prev, c_prev: its saved tensors, [T, B, H] each.
    """
    xt = tf.transpose(x, [1, 0, 2])  # [T, B, D]
    steps = tf.shape(xt)[0]
    dhs = tf.transpose(d_out, [1, 0, 2]) if return_sequences else None  # [T, B, H]
    dh_last = d_h if return_sequences else d_h + d_out
    n_in = tf.shape(W)[0]
    wu_t = tf.transpose(tf.concat([W, U], axis=0))  # [4H, D + H]
    dxs = tf.TensorArray(x.dtype, size=steps, element_shape=[x.shape[0], x.shape[2]])

    def body(k, dh_next, dc_next, dWU, db, dxs):
        t = steps - 1 - k
        i_t, f_t, g_t, o_t, c_before = i[t], f[t], g[t], o[t], c_prev[t]  # [B, H] each
        tc = tf.tanh(f_t * c_before + i_t * g_t)  # tanh(c_t)
        dh = dh_next if dhs is None else dh_next + dhs[t]
        dc = dc_next + dh * o_t * (1.0 - tc * tc)
        dz = tf.concat(  # [B, 4H]: gradients of the gate pre-activations
            [dc * g_t * i_t * (1.0 - i_t), dc * c_before * f_t * (1.0 - f_t),
             dc * i_t * (1.0 - g_t * g_t), dh * tc * o_t * (1.0 - o_t)],
            axis=1,
        )
        dxh = tf.matmul(dz, wu_t)  # [B, 4H]x[4H, D + H]: dx_t and dh_{t-1} at once
        inputs = tf.concat([xt[t], h_prev[t]], axis=1)  # [B, D + H]
        dh_prev = dxh[:, n_in:]  # dh_{t-1}
        dh_prev.set_shape(dh_next.shape)
        return (
            k + 1,
            dh_prev,
            dc * f_t,  # dc_{t-1}
            dWU + tf.matmul(inputs, dz, transpose_a=True),  # [D + H, 4H]
            db + tf.reduce_sum(dz, axis=0),
            dxs.write(t, dxh[:, :n_in]),  # dx_t, [B, D]
        )

    _, dh0, dc0, dWU, db, dxs = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh_last, d_c, tf.zeros_like(tf.concat([W, U], axis=0)),
         tf.zeros_like(b), dxs),
        maximum_iterations=steps,
    )
    return tf.transpose(dxs.stack(), [1, 0, 2]), dh0, dc0, dWU[:n_in], dWU[n_in:], db


_LSTM_FUNCTIONS = {}


def _lstm_functions(return_sequences):
    if return_sequences not in _LSTM_FUNCTIONS:
        compile_ = tf.function(jit_compile=True, reduce_retracing=True)
        _LSTM_FUNCTIONS[return_sequences] = (
            compile_(lambda *a: _lstm_forward(*a, return_sequences)),
            compile_(lambda *a: _lstm_backward(*a, return_sequences)),
        )
    return _LSTM_FUNCTIONS[return_sequences]


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
    if bias is None:
        bias = tf.zeros([4 * units], dtype=kernel.dtype)
    forward, backward = _lstm_functions(bool(return_sequences))

    @tf.custom_gradient
    def core(x, h0, c0, W, U, b):
        # stop_gradient: the tape must not record (and differentiate) the kernel itself.
        out, h, c, *saved = forward(*_stop(x, h0, c0, W, U, b))

        def grad(d_out, d_h, d_c):
            d_out = tf.zeros_like(out) if d_out is None else d_out
            d_h = tf.zeros_like(h) if d_h is None else d_h
            d_c = tf.zeros_like(c) if d_c is None else d_c
            return backward(*_stop(d_out, d_h, d_c, x, W, U, b, *saved))

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
