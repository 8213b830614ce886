"""GPU check of the cuDNN path: kernel choice, cuDNN vs fused numbers, timings against Keras.

On a machine with a CUDA GPU this asserts that `implementation="auto"` takes cuDNN for LSTM and
GRU, that cuDNN and the fused kernel agree within 1e-4 (outputs, final states, gradients), also
with a right-padded mask and go_backwards, that the segment setup's layers run on cuDNN, and
prints train-step times of ours vs
`keras.layers.LSTM` (which uses cuDNN there) at the three benchmark shapes.

Without a GPU it says so and exits with status 0 (nothing to check), so it can run anywhere.

    python benchmarks/gpu_check.py
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.bench_lstm import SHAPES, keras_step, time_round_robin  # noqa: E402
from forecast.layers import GRU, LSTM  # noqa: E402
from forecast.layers.cudnn import gpu_available  # noqa: E402


def _compare(layer_cls, **kwargs):
    """Runs the same weights through auto (cuDNN) and fused; returns the largest difference."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(16, 20, 5)).astype("float32"))
    mask = kwargs.pop("mask", None)
    layers = [layer_cls(32, return_sequences=True, return_state=True, implementation=impl,
                        **kwargs) for impl in ("auto", "fused")]
    for layer in layers:
        layer(x)
    layers[1].set_weights([w + rng.normal(scale=0.1, size=w.shape).astype("float32")
                           for w in layers[0].get_weights()])
    layers[0].set_weights(layers[1].get_weights())
    results = []
    for layer in layers:
        with tf.GradientTape() as tape:
            tape.watch(x)
            outs = layer(x, mask=mask)
            loss = sum(tf.reduce_sum(o * np.linspace(-1, 1, 32)) for o in outs)
        grads = tape.gradient(loss, [x] + layer.trainable_weights)
        results.append([np.asarray(t) for t in list(outs) + grads])
    assert layers[0].kernel_used == "cudnn", (layers[0].kernel_used, layers[0].kernel_reason)
    assert layers[1].kernel_used in ("fused", "loop")
    return max(float(np.abs(a - b).max()) for a, b in zip(*results, strict=True))


def _segment_kernels(cell: str) -> list[str]:
    """The kernels the segment setup's recurrent layers ran (encoder and batched decoder)."""
    from forecast.data import WindowSpec
    from forecast.models import build_model

    spec = WindowSpec(lookback=96, horizon=48, targets=("a", "b"))
    model = build_model("segment", spec, cell=cell, units=32, segment_length=24,
                        channel_independent=True, seed=0)
    model(np.random.default_rng(0).normal(size=(8, 96, 2)).astype("float32"))
    return [str(layer.kernel_used) for layer in model._flatten_layers()
            if isinstance(layer, LSTM | GRU)]


def main():
    if not gpu_available():
        print("gpu_check: no CUDA GPU visible to TensorFlow "
              f"(devices: {[d.name for d in tf.config.list_logical_devices()]}); "
              "nothing to check. Run it on a GPU machine with `pip install -e .[gpu]`.")
        return 0
    lengths = np.array([20, 17, 5, 1] * 4)
    mask = tf.constant(np.arange(20)[None, :] < lengths[:, None])
    for layer_cls in (LSTM, GRU):
        for kwargs in ({}, {"go_backwards": True}, {"mask": mask},
                       {"mask": mask, "go_backwards": True}):
            diff = _compare(layer_cls, **dict(kwargs))
            label = ", ".join(k for k in kwargs) or "plain"
            print(f"{layer_cls.__name__:<5} cuDNN vs fused ({label}): max |diff| = {diff:.2e}")
            assert diff < 1e-4, diff
    for cell in ("lstm", "gru"):  # the segment setup is an ordinary use of the layers
        kernels = _segment_kernels(cell)
        print(f"segment setup ({cell}): recurrent kernels {kernels}")
        assert set(kernels) == {"cudnn"}, kernels
    print("train_on_batch ms/step (median) on the GPU")
    print(f"{'shape':<28}{'ours (cuDNN)':>14}{'keras (cuDNN)':>15}{'ratio':>8}")
    for name, shape in SHAPES.items():
        units = shape[3]
        ms = time_round_robin(
            {"ours": keras_step(LSTM(units), shape),
             "keras": keras_step(keras.layers.LSTM(units), shape)},
            repeats=20, warmup=5,
        )
        print(f"{name + ' ' + str(shape):<28}{ms['ours']:>14.2f}{ms['keras']:>15.2f}"
              f"{ms['keras'] / ms['ours']:>7.2f}x")
    print("gpu_check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
