"""A model whose loss stays finite but ends far above forecasts that learn nothing has diverged:
the run fails with the epoch, the losses and the learning rate, and nothing is registered or
saved (issue 18)."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from forecast.cli import main
from forecast.data import load_csv
from forecast.errors import ModelError
from forecast.training import fit, resolve_loss
from forecast.training.fit import DIVERGENCE_FACTOR, reference_losses
from forecast.workflow import train_and_evaluate

ROOT = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_reference_losses_are_window_weighted_means():
    past = np.array([[1, 2, 3], [0, 0, 6], [2, 2, 2]], "float32")[..., None]  # [3, L=3, 1]
    targets = np.array([[4, 5], [6, 6], [2, 2]], "float32")[..., None]  # [3, H=2, 1]
    dataset = tf.data.Dataset.from_tensor_slices((past, targets)).batch(2)  # batches of 2, 1
    losses = reference_losses(dataset, keras.losses.MeanSquaredError(), n_targets=1)
    # naive: 3 -> (1 + 4) / 2, 6 -> 0, 2 -> 0; lookback mean 2, 2, 2: (4 + 9) / 2, 16, 0;
    # training mean 0: (16 + 25) / 2, 36, 4
    assert losses["naive"] == pytest.approx(2.5 / 3)
    assert losses["lookback mean"] == pytest.approx((6.5 + 16) / 3)
    assert losses["training mean"] == pytest.approx((20.5 + 36 + 4) / 3)
    assert reference_losses(dataset.take(0), keras.losses.MeanSquaredError(), 1) == {}


def test_reference_losses_of_a_quantile_model():
    past = np.array([[1, 2, 3]], "float32")[..., None]
    targets = np.array([[4, 5]], "float32")[..., None]
    dataset = tf.data.Dataset.from_tensor_slices((past, targets)).batch(1)
    config = {"loss": "pinball", "quantiles": (0.1, 0.5, 0.9)}
    from forecast.training import as_config

    loss = resolve_loss(as_config(config))
    losses = reference_losses(dataset, loss, 1, quantiles=(0.1, 0.5, 0.9))
    # naive 3 under errors 1 and 2: pinball max(q·e, (q - 1)·e) = q·e, mean over q = 0.5·e
    assert losses["naive"] == pytest.approx(0.5 * 1.5)


def _tiny_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4, 1)).astype("float32")
    y = x[:, -2:, :] * 0.5
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 1))
    out = keras.layers.Reshape((2, 1))(keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    return keras.Model(inputs, out), dataset


@pytest.mark.parametrize("patience", [None, 1])
def test_fit_fails_far_above_the_references(patience):
    model, dataset = _tiny_regression()
    config = {"epochs": 2, "verbose": 0, "seed": 0, "patience": patience,
              "learning_rate": 0.01}
    with pytest.raises(ModelError) as info:
        fit(model, dataset, dataset, config, reference_losses={"naive": 1e-6, "zero": 2e-6})
    message = str(info.value)
    assert "epoch" in message and "learning rate (now 0.01" in message
    assert "--learning-rate" in message and "train.learning_rate" in message
    assert f"{DIVERGENCE_FACTOR:g}x" in message and "naive 1e-06" in message


def test_fit_accepts_a_loss_near_the_references():
    model, dataset = _tiny_regression()
    result = fit(model, dataset, None, {"epochs": 1, "verbose": 0, "seed": 0},
                 reference_losses={"naive": 1.0})
    assert result.monitor == "loss" and result.epochs_run == 1
    # a constant series (references 0): nothing to compare with, no error
    fit(model, dataset, None, {"epochs": 1, "verbose": 0, "seed": 0},
        reference_losses={"naive": 0.0})


def test_learning_rate_1e6_fails_the_run_and_registers_nothing(synthetic_csv, tmp_path, capsys):
    from mlflow import MlflowClient

    save = tmp_path / "model"
    code, out, err = _run(
        ["train", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback", "24",
         "--units", "4", "--epochs", "2", "--seed", "1", "--learning-rate", "1e6",
         "--register", "diverged", "--save", str(save), "--json"], capsys)
    assert code == 2, out
    message = " ".join(err.split())
    assert "training diverged" in message and "Traceback" not in err
    assert "at epoch" in message and "naive" in message
    assert "now 1e+06" in message and "--learning-rate" in message
    assert "train.learning_rate" in message
    assert out == ""
    assert not save.exists()
    client = MlflowClient()
    assert client.search_registered_models() == []
    experiment = client.get_experiment_by_name("forecast")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert "training diverged" in run.data.tags["error"]


@pytest.mark.parametrize("setup", ["many_to_one", "seq2seq", "synced"])
def test_an_undertrained_model_is_not_called_diverged(synthetic_csv, setup):
    frame = load_csv(synthetic_csv, targets=["y"])
    config = {"horizon": 6, "lookback": 24, "setup": setup, "model": {"units": 4},
              "train": {"epochs": 1, "verbose": 0, "seed": 1}}
    report = train_and_evaluate(frame, config)
    assert report.forecaster.fit_result.epochs_run == 1


def test_an_undertrained_model_on_etth1_is_not_called_diverged():
    frame = load_csv(ROOT / "datasets" / "ETTh1.csv", targets=["OT"])
    config = {"horizon": 24, "lookback": 96, "model": {"units": 4},
              "train": {"epochs": 1, "verbose": 0, "seed": 1}}
    report = train_and_evaluate(frame.iloc[:4000], config)
    assert report.forecaster.fit_result.best_value < 1.0
