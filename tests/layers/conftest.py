"""Shared helpers for the recurrent-layer tests: seeded data, gradients, the round trip."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


def perturbed_weights(layer, seed=0, scale=0.3):
    """The layer's weights plus seeded noise, so biases and gates are not at their defaults."""
    rng = np.random.default_rng(seed)
    return [w + rng.normal(scale=scale, size=w.shape).astype(w.dtype) for w in layer.get_weights()]


def outputs_and_grads(layer, x, mask=None, initial_state=None):
    """Calls layer(x) under a tape; returns (outputs, grads w.r.t. x, initial states, weights).

    The loss weighs every output unit differently so that a wrong gate order cannot cancel.
    """
    x = tf.constant(x)
    states = None if initial_state is None else [tf.constant(s) for s in initial_state]
    with tf.GradientTape() as tape:
        tape.watch(x)
        if states is not None:
            for s in states:
                tape.watch(s)
        kwargs = {}
        if mask is not None:
            kwargs["mask"] = tf.constant(mask)
        if states is not None:
            kwargs["initial_state"] = states
        outs = layer(x, **kwargs)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        loss = 0.0
        for k, o in enumerate(outs):
            w = np.linspace(-1.0, 1.0 + k, o.shape[-1]).astype("float32")
            loss += tf.reduce_sum(o * w) + 0.1 * tf.reduce_sum(o * o)
    sources = [x] + (states or []) + list(layer.trainable_weights)
    grads = tape.gradient(loss, sources)
    return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]


def assert_parity(ours, ref, x, mask=None, initial_state=None, out_tol=1e-5, grad_tol=1e-4):
    """Same weights in both layers, then outputs within out_tol and gradients within grad_tol."""
    ours_out, ours_grads = outputs_and_grads(ours, x, mask, initial_state)
    ref_out, ref_grads = outputs_and_grads(ref, x, mask, initial_state)
    assert len(ours_out) == len(ref_out)
    for a, b in zip(ours_out, ref_out, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=out_tol, rtol=0)
    assert len(ours_grads) == len(ref_grads)
    for a, b in zip(ours_grads, ref_grads, strict=True):
        np.testing.assert_allclose(a, b, atol=grad_tol, rtol=0)


def roundtrip(layer, x, tmp_path, **call_kwargs):
    """Build and call, get_config -> from_config, save -> load (safe_mode=True); same outputs."""
    inputs = keras.Input(shape=x.shape[1:])
    outputs = layer(inputs, **call_kwargs)
    model = keras.Model(inputs, outputs)
    expected = model.predict(x, verbose=0)

    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    cloned = keras.Model(inputs2 := keras.Input(shape=x.shape[1:]), clone(inputs2, **call_kwargs))
    cloned.set_weights(model.get_weights())
    np.testing.assert_allclose(cloned.predict(x, verbose=0), expected, atol=1e-6)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.layers[1]) is type(layer)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    return loaded


def paired(ours, ref, x, seed=0):
    """Builds both layers on ``x`` and gives them the same (perturbed) weights of ``ref``."""
    ref(x)
    ours(x)
    weights = perturbed_weights(ref, seed)
    ref.set_weights(weights)
    ours.set_weights(weights)
    return ours, ref


class _Helpers:
    paired = staticmethod(paired)
    perturbed_weights = staticmethod(perturbed_weights)
    outputs_and_grads = staticmethod(outputs_and_grads)
    assert_parity = staticmethod(assert_parity)
    roundtrip = staticmethod(roundtrip)


@pytest.fixture
def rnn():
    """The helpers above, as a fixture (test modules cannot import a conftest by name)."""
    return _Helpers
