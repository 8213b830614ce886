"""Fused CPU kernels for LSTM and GRU: XLA-compiled loops with a hand-written gradient.

The autodiff of a `tf.while_loop` keeps per-step accumulators and replays every op of the step
backwards, which is what makes `keras.layers.LSTM` slow on a CPU. Here, as in cuDNN:

- the forward loop (`tf.function(jit_compile=True)`) does one matrix product per step for all
  gates and for input and state together ([x_t, h]·[W; U] + b), and keeps the activated gates and
  the states entering every step;
- the backward loop carries only dh/dc; per step it forms the gate-input gradients dz and does
  two matrix products: dz·[W; U]ᵀ (dx_t and dh_{t-1} at once) and [x_t, h_prev]ᵀ·dz (summed into
  the weight gradients) while dz is in cache.

Inputs and outputs are batch-major ([B, T, ·]) as in Keras; the loops run time-major inside.
In bfloat16 (``precision="bfloat16"``) the same loops run as plain graphs, not XLA
(`_compiled` says why). Activations are the Keras defaults (sigmoid gates, tanh candidate),
with or without LSTM peepholes and masks; other activations and recurrent dropout go to
`loops.py`.
"""

import tensorflow as tf

__all__ = ["lstm_fused", "gru_fused"]


def _stop(*tensors):
    return [tf.stop_gradient(t) for t in tensors]


_COMPILED = {}


def _compiled(forward, backward, return_sequences, dtype=tf.float32):
    """The compiled (forward, backward) pair of a kernel, built once per return_sequences/dtype.

    float32 loops are XLA-compiled. bfloat16 loops (``precision="bfloat16"``) are plain graphs:
    XLA's CPU matrix product in bfloat16 does not use AMX, oneDNN's does (a [1792, 1024] x
    [1024, 1536] product here: XLA 221 GFLOPS in bfloat16, 236 in float32; oneDNN 1003 in
    bfloat16).
    """
    plain = dtype == tf.bfloat16
    key = (forward.__name__, return_sequences, plain)
    if key not in _COMPILED:
        compile_ = tf.function(jit_compile=not plain, reduce_retracing=True)
        _COMPILED[key] = (
            compile_(lambda *a: forward(*a, return_sequences)),
            compile_(lambda *a: backward(*a, return_sequences)),
        )
    return _COMPILED[key]


def _time_major_mask(mask):
    """[B, T] bool mask -> [T, B, 1] bool, one [B, 1] column per step (None stays None)."""
    return None if mask is None else tf.transpose(mask)[:, :, None]


def _seen(mask):
    """[B, T] bool: the step is at or after the sequence's first unmasked step.

    Keras semantics for a masked step: the states stay, the output repeats the previous output,
    which is zero before the first unmasked step. The carried h is that output from then on.
    """
    return tf.cumsum(tf.cast(mask, tf.int32), axis=1) > 0


def _masked_output(out, mask, return_sequences):
    """Zeros the outputs (or their gradients) before each sequence's first unmasked step."""
    if mask is None:
        return out
    seen = _seen(mask)
    seen = seen[:, :, None] if return_sequences else seen[:, -1:]
    return tf.where(seen, out, tf.zeros_like(out))


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


def _lstm_forward(x, h0, c0, W, U, b, P, mask, return_sequences):
    """Forward loop over batch-major x [B, T, D].

    P: None or [3, H] peephole weights (i, f, o). mask: None or [B, T] bool; a masked step keeps
    the states (Keras semantics, see `_seen`).

    Returns:
        (out, h_T, c_T, *saved): `saved` are the activated gates i, f, g, o and the h and c
        entering each step, six [T, B, H] tensors (see `_SAVED`).
    """
    xt = tf.transpose(x, [1, 0, 2])  # [B, T, D] -> [T, B, D]
    steps = tf.shape(xt)[0]
    arrays = [tf.TensorArray(x.dtype, size=steps, element_shape=h0.shape) for _ in _SAVED]
    WU = tf.concat([W, U], axis=0)  # [D + H, 4H]: one product per step for input and state
    ms = _time_major_mask(mask)

    def body(t, h, c, *arrays):
        z = tf.matmul(tf.concat([xt[t], h], axis=1), WU) + b  # [B, D + H]x[D + H, 4H]
        zi, zf, zg, zo = tf.split(z, 4, axis=1)  # [B, H] each, gate order i, f, c, o
        if P is not None:  # i and f see the previous cell, o the new one
            zi, zf = zi + P[0] * c, zf + P[1] * c
        i, f, g = tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg)
        c_new = f * c + i * g
        o = tf.sigmoid(zo if P is None else zo + P[2] * c_new)
        h_new = o * tf.tanh(c_new)
        if ms is not None:
            h_new, c_new = tf.where(ms[t], h_new, h), tf.where(ms[t], c_new, c)
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
    return (_masked_output(out, mask, return_sequences), h, c, *saved)


def _lstm_backward(d_out, d_h, d_c, x, W, U, b, P, mask, i, f, g, o, h_prev, c_prev,
                   return_sequences):
    """Backward loop: carries dh, dc back through time and sums the weight gradients.

    Args:
        d_out, d_h, d_c: gradients of the outputs of `_lstm_forward`.
        x, W, U, b, P, mask: its inputs (P None without peepholes, mask None without one).
        i, f, g, o, h_prev, c_prev: its saved tensors, [T, B, H] each.

    Returns:
        The gradients of x, h0, c0, W, U, b and, with peepholes, P.
    """
    xt = tf.transpose(x, [1, 0, 2])  # [T, B, D]
    steps = tf.shape(xt)[0]
    d_out = _masked_output(d_out, mask, return_sequences)
    dhs = tf.transpose(d_out, [1, 0, 2]) if return_sequences else None  # [T, B, H]
    dh_last = d_h if return_sequences else d_h + d_out
    n_in = tf.shape(W)[0]
    wu_t = tf.transpose(tf.concat([W, U], axis=0))  # [4H, D + H]
    ms = _time_major_mask(mask)
    dxs = tf.TensorArray(x.dtype, size=steps, element_shape=[x.shape[0], x.shape[2]])
    dP0 = tf.zeros_like(b[:3] if P is None else P)  # a dummy [3] carry without peepholes

    def body(k, dh_next, dc_next, dWU, db, dP, dxs):
        t = steps - 1 - k
        i_t, f_t, g_t, o_t, c_before = i[t], f[t], g[t], o[t], c_prev[t]  # [B, H] each
        c_t = f_t * c_before + i_t * g_t
        tc = tf.tanh(c_t)
        dh = dh_next if dhs is None else dh_next + dhs[t]
        dz_o = dh * tc * o_t * (1.0 - o_t)
        dc = dc_next + dh * o_t * (1.0 - tc * tc)
        if P is not None:
            dc = dc + dz_o * P[2]
        dz_i = dc * g_t * i_t * (1.0 - i_t)
        dz_f = dc * c_before * f_t * (1.0 - f_t)
        dz_g = dc * i_t * (1.0 - g_t * g_t)
        if ms is not None:  # a masked step changed nothing: no gate gradients
            dz_i, dz_f, dz_g, dz_o = (tf.where(ms[t], d, tf.zeros_like(d))
                                      for d in (dz_i, dz_f, dz_g, dz_o))
        dz = tf.concat([dz_i, dz_f, dz_g, dz_o], axis=1)  # [B, 4H]
        dxh = tf.matmul(dz, wu_t)  # [B, 4H]x[4H, D + H]: dx_t and dh_{t-1} at once
        inputs = tf.concat([xt[t], h_prev[t]], axis=1)  # [B, D + H]
        dh_prev = dxh[:, n_in:]  # dh_{t-1}
        dh_prev.set_shape(dh_next.shape)
        dc_prev = dc * f_t
        if P is not None:
            dc_prev = dc_prev + dz_i * P[0] + dz_f * P[1]
            dP = dP + tf.stack([tf.reduce_sum(dz_i * c_before, axis=0),
                                tf.reduce_sum(dz_f * c_before, axis=0),
                                tf.reduce_sum(dz_o * c_t, axis=0)])
        if ms is not None:  # ... and passed the state gradients through
            dh_prev = tf.where(ms[t], dh_prev, dh)
            dc_prev = tf.where(ms[t], dc_prev, dc_next)
        return (
            k + 1,
            dh_prev,
            dc_prev,
            dWU + tf.matmul(inputs, dz, transpose_a=True),  # [D + H, 4H]
            db + tf.reduce_sum(dz, axis=0),
            dP,
            dxs.write(t, dxh[:, :n_in]),  # dx_t, [B, D]
        )

    _, dh0, dc0, dWU, db, dP, dxs = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh_last, d_c, tf.zeros_like(tf.concat([W, U], axis=0)),
         tf.zeros_like(b), dP0, dxs),
        maximum_iterations=steps,
    )
    grads = (tf.transpose(dxs.stack(), [1, 0, 2]), dh0, dc0, dWU[:n_in], dWU[n_in:], db)
    return grads if P is None else (*grads, dP)


def lstm_fused(x, h0, c0, kernel, recurrent_kernel, bias, return_sequences=True,
               peephole=None, mask=None):
    """Runs an LSTM over a batch-major sequence with the fused CPU kernel.

    Args:
        x: inputs, [B, T, D] (reverse it first for go_backwards).
        h0, c0: initial states, [B, H].
        kernel: [D, 4H]; recurrent_kernel: [H, 4H]; bias: [4H] or None. Gate order i, f, c, o.
        return_sequences: output every step's h ([B, T, H]) or only the last ([B, H]).
        peephole: None or [3, H] diagonal peephole weights for the i, f and o gates.
        mask: None or [B, T] bool (reversed with x for go_backwards); Keras semantics: a masked
            step keeps the states and repeats the previous output (zeros before the first
            unmasked step).

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
    mask = None if mask is None else tf.cast(mask, tf.bool)
    forward, backward = _compiled(_lstm_forward, _lstm_backward, bool(return_sequences), x.dtype)

    @tf.custom_gradient
    def core(x, h0, c0, W, U, b, *P):
        # stop_gradient: the tape must not record (and differentiate) the kernel itself.
        P = _stop(*P)[0] if P else None
        out, h, c, *saved = forward(*_stop(x, h0, c0, W, U, b), P, mask)

        def grad(d_out, d_h, d_c):
            d_out = tf.zeros_like(out) if d_out is None else d_out
            d_h = tf.zeros_like(h) if d_h is None else d_h
            d_c = tf.zeros_like(c) if d_c is None else d_c
            return backward(*_stop(d_out, d_h, d_c, x, W, U, b), P, mask, *_stop(*saved))

        return (out, h, c), grad

    extra = () if peephole is None else (peephole,)
    return core(x, h0, c0, kernel, recurrent_kernel, bias, *extra)


# --------------------------------------------------------------------------------------------
# GRU (reset_after=True: r multiplies the recurrent projection, which has its own bias)
# --------------------------------------------------------------------------------------------
# One product per step as for the LSTM: [x_t, h]·M with M = [[W_z, W_r, W_h, 0], [U_z, U_r, 0, U_h]]
# gives the summed z and r pre-activations, x·W_h and h·U_h (kept apart, as r multiplies only
# the latter). The zero blocks cost a third more multiply-adds than two products per step but
# save one call. The saved tensors are five [T, B, H] arrays (see the LSTM notes). Train step ms
# (benchmarks/bench_lstm.py --layer gru), plain / jit, before -> after this layout (the input
# projection hoisted out of the loop, one [T, B, 4H] array of gates, the backward's per-step
# factors precomputed on whole [T, B, H] tensors): big 192 / 175 -> 102 / 110 (keras 142 / 119),
# mid 13.7 / 13.7 -> 13.7 / 12.2, small 3.5 / 3.2 -> 3.1 / 2.8.


def _gru_matrix(W, U):
    """[D + H, 4H] = [[W_z, W_r, W_h, 0], [U_z, U_r, 0, U_h]] from Keras' kernel and recurrent."""
    units = U.shape[0] if U.shape[0] is not None else tf.shape(U)[0]
    w_zr, w_h = W[:, : 2 * units], W[:, 2 * units :]
    u_zr, u_h = U[:, : 2 * units], U[:, 2 * units :]
    top = tf.concat([w_zr, w_h, tf.zeros_like(w_h)], axis=1)
    bottom = tf.concat([u_zr, tf.zeros_like(u_h), u_h], axis=1)
    return tf.concat([top, bottom], axis=0)


def _gru_forward(x, h0, W, U, b, mask, return_sequences):
    """Forward loop over batch-major x [B, T, D]; b is [2, 3H] (input, recurrent); mask as LSTM.

    Returns:
        (out, h_T, z, r, hh, rh, h_prev): the update and reset gates, the candidate, the
        recurrent part of the candidate's pre-activation (h·U_h + b) and the h entering each
        step, five [T, B, H] tensors.
    """
    xt = tf.transpose(x, [1, 0, 2])  # [T, B, D]
    steps = tf.shape(xt)[0]
    units = h0.shape[1] if h0.shape[1] is not None else tf.shape(h0)[1]
    M = _gru_matrix(W, U)
    bias = tf.concat([b[0, : 2 * units] + b[1, : 2 * units], b[0, 2 * units :],
                      b[1, 2 * units :]], axis=0)  # [4H], matching M's columns
    arrays = [tf.TensorArray(x.dtype, size=steps, element_shape=h0.shape) for _ in range(5)]
    ms = _time_major_mask(mask)

    def body(t, h, *arrays):
        a = tf.matmul(tf.concat([xt[t], h], axis=1), M) + bias  # [B, 4H]
        z = tf.sigmoid(a[:, :units])
        r = tf.sigmoid(a[:, units : 2 * units])
        rh = a[:, 3 * units :]
        hh = tf.tanh(a[:, 2 * units : 3 * units] + r * rh)
        h_new = z * h + (1.0 - z) * hh
        if ms is not None:
            h_new = tf.where(ms[t], h_new, h)
        kept = zip(arrays, (z, r, hh, rh, h), strict=True)
        return (t + 1, h_new) + tuple(arr.write(t, v) for arr, v in kept)

    _, h, *arrays = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, *arrays),
        maximum_iterations=steps,
    )
    saved = [arr.stack() for arr in arrays]
    if return_sequences:
        out = tf.transpose(tf.concat([saved[4][1:], h[None]], axis=0), [1, 0, 2])  # [B, T, H]
    else:
        out = h
    return (_masked_output(out, mask, return_sequences), h, *saved)


def _gru_backward(d_out, d_h, x, W, U, b, mask, z, r, hh, rh, h_prev, return_sequences):
    """Backward loop: carries dh back through time and sums the weight gradients."""
    xt = tf.transpose(x, [1, 0, 2])  # [T, B, D]
    steps = tf.shape(xt)[0]
    units = tf.shape(U)[0]
    n_in = tf.shape(W)[0]
    d_out = _masked_output(d_out, mask, return_sequences)
    ms = _time_major_mask(mask)
    dhs = tf.transpose(d_out, [1, 0, 2]) if return_sequences else None
    dh_last = d_h if return_sequences else d_h + d_out
    m_t = tf.transpose(_gru_matrix(W, U))  # [4H, D + H]
    dxs = tf.TensorArray(x.dtype, size=steps, element_shape=[x.shape[0], x.shape[2]])

    def body(k, dh_next, dM, db, dxs):
        t = steps - 1 - k
        z_t, r_t, hh_t, rh_t, h_t = z[t], r[t], hh[t], rh[t], h_prev[t]
        dh = dh_next if dhs is None else dh_next + dhs[t]
        d_hh = dh * (1.0 - z_t) * (1.0 - hh_t * hh_t)  # gradient of the candidate's input
        da = tf.concat(  # [B, 4H], the gradient of the product's columns
            [dh * (h_t - hh_t) * z_t * (1.0 - z_t), d_hh * rh_t * r_t * (1.0 - r_t), d_hh,
             d_hh * r_t],
            axis=1,
        )
        if ms is not None:  # a masked step changed nothing: no gate gradients
            da = tf.where(ms[t], da, tf.zeros_like(da))
        dxh = tf.matmul(da, m_t)  # [B, D + H]: dx_t and h's share of dh_{t-1}
        inputs = tf.concat([xt[t], h_t], axis=1)
        dh_prev = dh * z_t + dxh[:, n_in:]
        if ms is not None:  # ... and passed dh through
            dh_prev = tf.where(ms[t], dh_prev, dh)
        dh_prev.set_shape(dh_next.shape)
        return (
            k + 1,
            dh_prev,
            dM + tf.matmul(inputs, da, transpose_a=True),  # [D + H, 4H]
            db + tf.reduce_sum(da, axis=0),
            dxs.write(t, dxh[:, :n_in]),
        )

    _, dh0, dM, db, dxs = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh_last, tf.zeros_like(_gru_matrix(W, U)), tf.zeros([4 * units], x.dtype),
         dxs),
        maximum_iterations=steps,
    )
    dW = tf.concat([dM[:n_in, : 2 * units], dM[:n_in, 2 * units : 3 * units]], axis=1)
    dU = tf.concat([dM[n_in:, : 2 * units], dM[n_in:, 3 * units :]], axis=1)
    d_b = tf.stack([db[: 3 * units], tf.concat([db[: 2 * units], db[3 * units :]], axis=0)])
    return tf.transpose(dxs.stack(), [1, 0, 2]), dh0, dW, dU, d_b


def gru_fused(x, h0, kernel, recurrent_kernel, bias, return_sequences=True, mask=None):
    """Runs a GRU (reset_after=True) over a batch-major sequence with the fused CPU kernel.

    Args:
        x: inputs, [B, T, D] (reverse it first for go_backwards). h0: initial state, [B, H].
        kernel: [D, 3H]; recurrent_kernel: [H, 3H]; bias: [2, 3H] (input, recurrent) or None.
            Gate order z, r, h as in `keras.layers.GRU`.
        return_sequences: output every step's h ([B, T, H]) or only the last ([B, H]).
        mask: None or [B, T] bool, as for `lstm_fused`.

    Returns:
        (output, h_T [B, H]).

    >>> out, h = gru_fused(tf.zeros([2, 5, 3]), tf.zeros([2, 4]), tf.zeros([3, 12]),
    ...                    tf.zeros([4, 12]), tf.zeros([2, 12]))
    >>> out.shape, h.shape
    (TensorShape([2, 5, 4]), TensorShape([2, 4]))
    """
    if bias is None:
        bias = tf.zeros([2, recurrent_kernel.shape[1]], dtype=kernel.dtype)
    mask = None if mask is None else tf.cast(mask, tf.bool)
    forward, backward = _compiled(_gru_forward, _gru_backward, bool(return_sequences), x.dtype)

    @tf.custom_gradient
    def core(x, h0, W, U, b):
        out, h, *saved = forward(*_stop(x, h0, W, U, b), mask)

        def grad(d_out, d_h):
            d_out = tf.zeros_like(out) if d_out is None else d_out
            d_h = tf.zeros_like(h) if d_h is None else d_h
            return backward(*_stop(d_out, d_h, x, W, U, b), mask, *_stop(*saved))

        return (out, h), grad

    return core(x, h0, kernel, recurrent_kernel, bias)
