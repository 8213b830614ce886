"""Tests of forecast/models/blend.py and ``train.blend_linear`` (``--blend-linear``).

The frozen layer reproduces the linear baseline; the weight is the validation-loss minimiser of
the grid (never worse than the network or the baseline alone on those windows); the blended
network saves and loads with ``safe_mode=True`` and predicts alike; the CLI reports the weight
and refuses the setting without validation windows, naming the flag.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from forecast.cli import main  # noqa: E402
from forecast.data import WindowSpec, chronological_split, make_dataset  # noqa: E402
from forecast.errors import ConfigError  # noqa: E402
from forecast.forecaster import Forecaster  # noqa: E402
from forecast.models import PinballLoss  # noqa: E402
from forecast.models.baselines import make_baseline  # noqa: E402
from forecast.models.blend import Blend, FrozenLinear, choose_weight  # noqa: E402

MSE = keras.losses.MeanSquaredError()


def _series(rows=400, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    values = 5 + np.sin(2 * np.pi * t / 24 + np.arange(channels)) + rng.normal(0, .2,
                                                                             (rows, channels))
    return pd.DataFrame(values, columns=[f"c{i}" for i in range(channels)],
                        index=pd.date_range("2024-01-01", periods=rows, freq="h"))


@pytest.mark.parametrize("per_channel", [False, True])
def test_frozen_layer_reproduces_the_linear_baseline(per_channel):
    spec = WindowSpec(lookback=24, horizon=6, targets=("c0", "c1"))
    dataset = make_dataset(_series(), spec, batch_size=64)
    baseline = make_baseline("linear", per_channel=per_channel).fit(dataset, spec)
    layer = FrozenLinear(24, 6, 2, groups=baseline.coef.shape[0])
    layer.build((None, 24, 2))
    layer.coef.assign(baseline.coef.astype("float32"))
    layer.intercept.assign(baseline.intercept.astype("float32"))
    x = np.concatenate([np.asarray(x) for x, _ in dataset])
    np.testing.assert_allclose(layer(x).numpy(), baseline.predict(x), atol=2e-4)
    assert not layer.trainable_weights  # frozen: training the network never moves it


def test_weight_is_the_validation_minimiser_and_ties_keep_the_network():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 6, 1))
    good, bad = y + rng.normal(0, .1, y.shape), y + rng.normal(0, 1., y.shape)
    assert choose_weight(y, good, bad, MSE, "mse").weight >= 0.95
    assert choose_weight(y, bad, good, MSE, "mse").weight <= 0.05
    # two independent errors of equal size: averaging halves the error variance
    other = y + rng.normal(0, .5, y.shape)
    half = choose_weight(y, y + rng.normal(0, .5, y.shape), other, MSE, "mse")
    assert 0.35 <= half.weight <= 0.65
    assert half.loss < 0.7 * min(half.network_loss, half.linear_loss)
    assert choose_weight(y, y, y, MSE, "mse").weight == 1.0  # a tie keeps the network


def test_quantile_forecasts_are_shifted_alike_and_keep_their_order():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 4, 1))
    quantiles = np.sort(rng.normal(size=(50, 4, 1, 3)), axis=-1).astype("float32")
    linear = rng.normal(size=(50, 4, 1)).astype("float32")
    out = Blend(0.6)([quantiles, linear]).numpy()
    np.testing.assert_allclose(out, 0.6 * quantiles + 0.4 * linear[..., None], rtol=1e-6)
    assert np.all(np.diff(out, axis=-1) >= 0)
    pinball = PinballLoss((0.1, 0.5, 0.9))  # what a quantile model trains on
    assert 0 <= choose_weight(y, quantiles, linear, pinball, "pinball").weight <= 1


CONFIG = {"horizon": 6, "lookback": 24, "model": {"units": 4}, "batch_size": 32,
          "train": {"epochs": 2, "verbose": 0, "seed": 7, "blend_linear": True}}


def test_forecaster_blends_saves_and_loads(frame, tmp_path):
    _, data = frame
    parts = chronological_split(data, val=0.15, test=0.15, lookback=24)
    forecaster = Forecaster(CONFIG).fit(parts.train, parts.val)
    choice = forecaster.blend
    # two epochs of four units lose to the ridge: the blend leans on it, and beats both on val
    assert 0 <= choice.weight < 1
    assert choice.loss <= min(choice.network_loss, choice.linear_loss)
    assert choice.metric == "mse"
    assert {layer.name for layer in forecaster.model.layers} >= {"linear_baseline", "blend"}
    y_true, y_pred = forecaster.predict_windows(parts.val)
    scaled = forecaster.scaler.transform_array
    val_mse = np.mean((scaled(y_pred, ["y"]) - scaled(y_true, ["y"])) ** 2)
    assert val_mse == pytest.approx(choice.loss, rel=1e-3)
    again = Forecaster.load(forecaster.save(tmp_path / "fc"))
    pd.testing.assert_frame_equal(again.predict(parts.test), forecaster.predict(parts.test))


def test_default_blends_with_validation_windows_and_keeps_the_network_without(frame):
    _, data = frame
    parts = chronological_split(data, val=0.15, test=0.15, lookback=24)
    default = {**CONFIG, "train": {**CONFIG["train"], "blend_linear": None}}
    assert Forecaster(default).fit(parts.train, parts.val).blend is not None
    alone = Forecaster(default).fit(parts.train, None)
    assert alone.blend is None and "blend" not in {layer.name for layer in alone.model.layers}
    never = {**CONFIG, "train": {**CONFIG["train"], "blend_linear": False}}
    assert Forecaster(never).fit(parts.train, parts.val).blend is None


def test_blend_without_validation_windows_is_refused_before_training(frame):
    _, data = frame
    parts = chronological_split(data, val=0.15, test=0.15, lookback=24)
    with pytest.raises(ConfigError, match="--blend-linear"):
        Forecaster(CONFIG).fit(parts.train, None)


def test_cli_reports_and_tracks_the_blend(frame, capsys):
    from mlflow import MlflowClient

    path, _ = frame
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(path), "--target", "y", "--horizon", "6", "--lookback", "24",
              "--units", "4", "--epochs", "2", "--seed", "7", "--blend-linear", "--json"])
    assert exit_info.value.code == 0
    result = json.loads(capsys.readouterr().out)
    blend = result["training"]["blend"]
    assert 0 <= blend["weight"] < 1 and blend["metric"] == "mse"
    assert blend["val_loss"] <= min(blend["val_loss_network"], blend["val_loss_linear"])
    assert blend["summary"].startswith(f"blend: {blend['weight']:g} × network")
    logged = MlflowClient().get_run(result["mlflow"]["run_id"]).data
    assert logged.metrics["blend.weight"] == blend["weight"]
    assert [value for key, value in logged.params.items()
            if key.endswith("blend_linear")] == ["True"], logged.params


def test_cli_refuses_the_blend_without_validation(frame, capsys):
    path, _ = frame
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(path), "--target", "y", "--horizon", "6", "--lookback", "24",
              "--units", "4", "--epochs", "1", "--val", "0", "--blend-linear", "--no-track"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 2, err
    assert "--blend-linear" in err and "--val" in err and "Traceback" not in err


def test_blend_metric_chooses_the_share_by_another_metric_than_the_loss(frame):
    _, data = frame
    parts = chronological_split(data, val=0.15, test=0.15, lookback=24)
    config = {**CONFIG, "train": {**CONFIG["train"], "loss": "mae", "blend_metric": "mse"}}
    forecaster = Forecaster(config).fit(parts.train, parts.val)
    choice = forecaster.blend
    assert choice.metric == "mse"  # trained on MAE, the share minimises the validation MSE
    assert choice.loss <= min(choice.network_loss, choice.linear_loss)
    y_true, y_pred = forecaster.predict_windows(parts.val)
    scaled = forecaster.scaler.transform_array
    val_mse = np.mean((scaled(y_pred, ["y"]) - scaled(y_true, ["y"])) ** 2)
    assert val_mse == pytest.approx(choice.loss, rel=1e-3)
    by_loss = Forecaster({**config, "train": {**config["train"], "blend_metric": "loss"}})
    assert by_loss.fit(parts.train, parts.val).blend.metric == "mae"


def test_blend_metric_needs_point_forecasts(frame):
    _, data = frame
    parts = chronological_split(data, val=0.15, test=0.15, lookback=24)
    config = {**CONFIG, "model": {"units": 4, "quantiles": [0.1, 0.5, 0.9]},
              "train": {**CONFIG["train"], "blend_metric": "mae"}}
    with pytest.raises(ConfigError, match="--blend-metric loss"):
        Forecaster(config).fit(parts.train, parts.val)


def test_cli_blend_metric(frame, capsys):
    path, _ = frame
    args = ["train", str(path), "--target", "y", "--horizon", "6", "--lookback", "24",
            "--units", "4", "--epochs", "1", "--seed", "7", "--no-track"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--blend-linear", "--blend-metric", "mae", "--json"])
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["training"]["blend"]["metric"] == "mae"
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--blend-metric", "rmse"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 2, err
    assert "train.blend_metric" in err and "Traceback" not in err
