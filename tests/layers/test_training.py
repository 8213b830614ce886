"""The layers train: digits read row by row, Model.fit, tf.function, MirroredStrategy."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from forecast.layers import GRU, LSTM


@pytest.fixture(scope="module")
def digits():
    """8×8 digit images as sequences: 8 steps (rows) of 8 features (pixels), scaled to [0, 1]."""
    data = load_digits()
    x = (data.images / 16.0).astype("float32")  # [N, 8, 8]
    return train_test_split(x, data.target, test_size=0.25, random_state=0, stratify=data.target)


@pytest.mark.parametrize("layer_cls", [LSTM, GRU])
def test_row_by_row_digits_classifier(digits, layer_cls):
    x_train, x_test, y_train, y_test = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8)), layer_cls(64), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 5
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.95, accuracy
    assert model.layers[0].kernel_used == "fused"


def test_fit_matches_keras_lstm_step_by_step():
    """Same weights, same data, same optimizer: the losses of a few fit epochs agree."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 12, 3)).astype("float32")
    y = rng.normal(size=(64, 4)).astype("float32")
    losses, start_weights = [], None
    for layer in (LSTM(8), keras.layers.LSTM(8)):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((12, 3)), layer, keras.layers.Dense(4)])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        if start_weights is None:
            start_weights = model.get_weights()
        model.set_weights(start_weights)
        history = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    assert losses[0][-1] < losses[0][0]


def test_fit_with_jit_compiled_model():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 10, 2)).astype("float32")
    y = x[:, -3:, 0]
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((10, 2)), LSTM(16), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", jit_compile=True)
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


_MIRRORED = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    import keras
    import numpy as np
    from forecast.layers import LSTM

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 12, 3)).astype("float32")
    y = np.stack([x[:, :, 0].mean(axis=1), x[:, -1, 1]], axis=1)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"replicas": strategy.num_replicas_in_sync}
    with strategy.scope():
        inputs = keras.Input((12, 3))
        outputs = keras.layers.Dense(2)(LSTM(16)(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    result["loss"] = history.history["loss"]
    result["kernels"] = [model.layers[1].kernel_used]
    print("RESULT " + json.dumps(result))
    """
)


def test_mirrored_strategy_on_two_logical_cpus():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300, env=env
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT ") :])
    assert result["replicas"] == 2
    assert result["kernels"] == ["fused"]
    assert np.all(np.isfinite(result["loss"]))
    assert result["loss"][-1] < 0.9 * result["loss"][0]
