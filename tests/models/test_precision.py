"""Tests of ``model.precision`` (``--precision``): networks computed in bfloat16.

The builder makes the recurrent core under Keras' ``mixed_bfloat16`` policy and keeps the
instance normalisation, the linear skip and the output in float32; the fused kernels run their
bfloat16 loops without XLA; cuDNN is not chosen for bfloat16; the policy survives save/load with
``safe_mode=True``; a bfloat16 model agrees with the same weights in float32 to bfloat16's
rounding, trains as well on a noisy sine, and the CLI takes the flag or names it on bad input.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from forecast.cli import main  # noqa: E402
from forecast.data import WindowSpec  # noqa: E402
from forecast.forecaster import Forecaster  # noqa: E402
from forecast.layers import GRU, LSTM, fused  # noqa: E402
from forecast.models import build_model  # noqa: E402
from forecast.options import ModelOptions  # noqa: E402

SPEC = WindowSpec(lookback=48, horizon=12, targets=("a", "b"))
SEGMENT = {"cell": "gru", "units": 16, "segment_length": 12, "channel_independent": True,
           "seed": 0}


def _inputs(batch=8, seed=1):
    rng = np.random.default_rng(seed)
    steps = np.arange(SPEC.lookback)[None, :, None]
    return (3.0 + np.sin(steps / 4.0 + rng.uniform(0, 6, size=(batch, 1, 2)))
            + 0.1 * rng.normal(size=(batch, SPEC.lookback, 2))).astype("float32")


def _policies(model):
    """Every layer's dtype policy, nested layers included (inputs are float32 anyway)."""
    return {layer.path: layer.dtype_policy.name for layer in model._flatten_layers()
            if not isinstance(layer, keras.layers.InputLayer | keras.Model)}


def test_float32_is_the_default_and_other_words_are_refused():
    assert ModelOptions().precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        ModelOptions(precision="float16")


def test_bfloat16_builds_the_core_in_bfloat16_and_the_ends_in_float32():
    model = build_model("segment", SPEC, precision="bfloat16", linear_skip=True, **SEGMENT)
    policies = _policies(model)
    assert policies["instance_norm"] == policies["instance_denorm"] == "float32"
    assert policies["linear_skip"] == "float32"
    recurrent_layers = [layer for layer in model.layers if isinstance(layer, GRU)]
    assert recurrent_layers and all(layer.compute_dtype == "bfloat16"
                                    for layer in recurrent_layers)
    recurrent = [w for w in model.weights if "recurrent_kernel" in w.path]
    assert recurrent and all(w.dtype == "float32" for w in recurrent)  # variables stay float32
    assert model(_inputs()).dtype == tf.float32
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_output_is_float32_without_instance_norm_or_skip():
    model = build_model("many_to_one", SPEC, precision="bfloat16", cell="lstm", units=8,
                        instance_norm="none", linear_skip=False, seed=0)
    assert model.layers[-1].name == "output_float32"
    assert model(_inputs()).dtype == tf.float32


@pytest.mark.parametrize("setup, options", [
    ("segment", SEGMENT),
    ("many_to_one", {"cell": "lstm", "units": 16, "seed": 0}),
    ("seq2seq", {"cell": "peephole", "units": 16, "seed": 0}),
])
def test_bfloat16_agrees_with_float32_to_its_rounding(setup, options):
    full = build_model(setup, SPEC, **options)
    half = build_model(setup, SPEC, precision="bfloat16", **options)
    half.set_weights(full.get_weights())
    x = _inputs(32)
    a, b = full(x).numpy(), half(x).numpy()
    spread = np.abs(a - x[:, -1:, :]).mean()  # the size of what the network adds
    gap = np.abs(a - b).mean()
    assert 0 < gap < 0.05 * spread, (gap, spread)  # really bfloat16, and only its rounding


@pytest.mark.parametrize("layer_cls", [GRU, LSTM])
def test_fused_kernel_gradients_in_bfloat16_match_float32(layer_cls):
    x = tf.random.stateless_normal((64, 10, 8), seed=(1, 2))
    grads = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.utils.set_random_seed(0)
        layer = layer_cls(16, implementation="fused", dtype=policy)
        layer(x)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(layer(x), tf.float32) ** 2)
        grads[policy] = [g.numpy() for g in tape.gradient(loss, layer.trainable_weights)]
        assert layer.kernel_used == "fused"
    for g32, g16 in zip(grads["float32"], grads["mixed_bfloat16"], strict=True):
        assert g16.dtype == np.float32
        rel = np.abs(g32 - g16).sum() / np.abs(g32).sum()
        assert 0 < rel < 0.03, rel
    assert any(key[2] for key in fused._COMPILED)  # a bfloat16 pair, compiled without XLA


def test_cudnn_is_not_chosen_for_bfloat16():
    layer = GRU(4, dtype="mixed_bfloat16")
    assert "compute dtype bfloat16" in layer._cudnn_blockers()
    assert "compute dtype bfloat16" not in GRU(4)._cudnn_blockers()


def test_save_and_load_keep_the_policies(tmp_path):
    model = build_model("segment", SPEC, precision="bfloat16", **SEGMENT)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert _policies(loaded) == _policies(model)
    x = _inputs()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def _sine_frame(rows=600):
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    y = 10 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, rows)
    return pd.DataFrame({"time": pd.date_range("2024-01-01", periods=rows, freq="h"), "y": y})


def test_cli_trains_in_bfloat16_and_beats_the_naive_forecast(tmp_path, capsys):
    csv = tmp_path / "sine.csv"
    _sine_frame().to_csv(csv, index=False)
    folder = tmp_path / "model"
    argv = ["train", str(csv), "--target", "y", "--horizon", "24", "--lookback", "48",
            "--setup", "segment", "--cell", "gru", "--units", "16", "--segment-length", "24",
            "--epochs", "15", "--seed", "3", "--precision", "bfloat16", "--no-track",
            "--save", str(folder), "--json"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"]["mae"] < 0.6 * result["baselines"]["naive"]["mae"], result
    loaded = Forecaster.load(folder)
    assert loaded.config.model.precision == "bfloat16"


def test_cli_names_the_flag_for_a_bad_precision(tmp_path, capsys):
    csv = tmp_path / "sine.csv"
    _sine_frame(200).to_csv(csv, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(csv), "--target", "y", "--horizon", "6", "--precision", "half",
              "--no-track"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 2
    assert "precision" in err and "bfloat16" in err and "Traceback" not in err
