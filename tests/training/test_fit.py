"""fit(): seeds, early stopping, resuming from a backup, divergence, losses and config."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from forecast.errors import ConfigError, ModelError
from forecast.training import FitResult, PinballLoss, TrainConfig, fit, set_seed

L, H, T = 8, 3, 1


def tiny_model(seed=0, quantiles=0):
    set_seed(seed)
    out = H * T * max(quantiles, 1)
    inputs = keras.Input((L, T))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(out)(x)
    shape = (H, T, quantiles) if quantiles else (H, T)
    return keras.Model(inputs, keras.layers.Reshape(shape)(x))


def sine_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n + L + H)
    series = np.sin(t / 3.0) + 0.05 * rng.standard_normal(len(t))
    x = np.stack([series[i : i + L] for i in range(n)])[..., None].astype("float32")
    y = np.stack([series[i + L : i + L + H] for i in range(n)])[..., None].astype("float32")
    return x, y


def datasets(batch=16, shuffle=True):
    x, y = sine_data()
    train = tf.data.Dataset.from_tensor_slices((x[:48], y[:48]))
    if shuffle:
        train = train.shuffle(48, seed=1)
    return train.batch(batch), tf.data.Dataset.from_tensor_slices((x[48:], y[48:])).batch(batch)


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch + 1)


class Interrupt(Exception):
    pass


class InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Interrupt(f"killed after epoch {self.epoch}")


def test_same_seed_gives_identical_weights():
    config = TrainConfig(epochs=3, seed=7, verbose=0, patience=None, learning_rate=0.01)
    weights = []
    for _ in range(2):
        model = tiny_model(seed=7)
        train, val = datasets()
        fit(model, train, val, config)
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))
    # and training changed them
    assert not np.array_equal(weights[0][0], tiny_model(seed=7).get_weights()[0])


def test_history_and_result_fields():
    train, val = datasets()
    result = fit(tiny_model(), train, val, {"epochs": 4, "verbose": 0, "learning_rate": 0.01})
    assert isinstance(result, FitResult)
    assert result.epochs_run == 4 and result.epochs == [1, 2, 3, 4]
    assert len(result.history["loss"]) == 4 and len(result.history["val_loss"]) == 4
    assert result.monitor == "val_loss"
    assert result.best_value == min(result.history["val_loss"])
    assert result.history["val_loss"][result.best_epoch - 1] == result.best_value
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert not result.stopped_early and result.initial_epoch == 0


def test_early_stopping_stops_and_restores_best_weights():
    # Validation targets the model cannot fit: val_loss rises as training fits the train part,
    # so the best epoch is early and training stops `patience` epochs later.
    x, y = sine_data()
    train = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[48:], -y[48:] + 5.0)).batch(16)
    model = tiny_model()
    snapshots = {}

    class Snap(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots[epoch + 1] = [w.copy() for w in self.model.get_weights()]

    config = TrainConfig(epochs=50, patience=3, verbose=0, learning_rate=0.05,
                         lr_schedule="constant")
    result = fit(model, train, val, config, callbacks=[Snap()])
    assert result.stopped_early
    assert result.epochs_run == result.best_epoch + 3 < 50
    best = snapshots[result.best_epoch]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), best, strict=True))
    assert result.best_value == min(result.history["val_loss"])


def test_resume_after_interruption_continues_at_next_epoch(tmp_path):
    config = TrainConfig(epochs=6, verbose=0, checkpoint_dir=tmp_path / "run", patience=None,
                         learning_rate=0.01)
    model = tiny_model()
    train, val = datasets()
    first = EpochRecorder()
    with pytest.raises(Interrupt):
        fit(model, train, val, config, callbacks=[first, InterruptAfter(3)])
    assert first.seen == [1, 2, 3]
    backup = tmp_path / "run" / "backup"
    assert backup.exists() and any(backup.iterdir())
    weights_after_3 = model.get_weights()

    # A new process would build a fresh model: its weights come from the backup.
    fresh = tiny_model(seed=123)
    second = EpochRecorder()
    restored = {}

    class Peek(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            restored.setdefault("w", [w.copy() for w in self.model.get_weights()])

    result = fit(fresh, train, val, config, callbacks=[second, Peek()])
    assert second.seen == [4, 5, 6]
    assert result.initial_epoch == 3 and result.resumed
    assert result.epochs == [4, 5, 6] and result.epochs_run == 3
    assert all(np.allclose(a, b) for a, b in zip(restored["w"], weights_after_3, strict=True))
    assert not backup.exists()  # deleted by keras after the successful run
    assert (tmp_path / "run" / "best.keras").exists()
    loaded = keras.saving.load_model(result.checkpoint_path)
    assert loaded.output_shape == (None, H, T)


def test_nan_divergence_raises_model_error_with_epoch():
    x, y = sine_data()
    y = y.copy()
    y[40] = np.inf  # the loss becomes inf in the first epoch
    train = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)
    with pytest.raises(ModelError, match=r"epoch 1.*learning_rate.*clipnorm"):
        fit(tiny_model(), train, None, TrainConfig(epochs=5, verbose=0))


def test_huge_learning_rate_diverges():
    """Adam moves each weight by about the learning rate per step: 1e25 overflows float32."""
    train, val = datasets()
    with pytest.raises(ModelError, match=r"diverged.*at epoch \d+"):
        fit(tiny_model(), train, val, TrainConfig(epochs=30, verbose=0, learning_rate=1e25,
                                                  lr_schedule="constant", patience=None))


@pytest.mark.parametrize(
    "schedule, loss",
    [("plateau", "mse"), ("cosine", "mse"), ("decay", "mse"), ("constant", "mse"),
     ("plateau", "mae"), ("plateau", "huber")],
)
def test_losses_and_schedules_train(schedule, loss):
    train, val = datasets()
    config = TrainConfig(epochs=3, verbose=0, lr_schedule=schedule, loss=loss,
                         learning_rate=0.01, clipnorm=1.0)
    result = fit(tiny_model(), train, val, config)
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_cosine_schedule_decays_to_zero():
    train, val = datasets()
    model = tiny_model()
    fit(model, train, val, TrainConfig(epochs=2, verbose=0, lr_schedule="cosine"))
    steps = 2 * 3  # 48 windows / 16 per batch
    schedule = model.optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(steps)) == pytest.approx(0.0, abs=1e-9)


def test_decay_schedule_keeps_four_epochs_then_multiplies_by_0_9():
    """LTSF's type3: epochs 0-3 at the initial rate, then 0.9 times the previous epoch's."""
    train, val = datasets()
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: rates.append(logs["learning_rate"]))
    fit(tiny_model(), train, val, TrainConfig(epochs=7, verbose=0, lr_schedule="decay",
                                              learning_rate=0.01, patience=None),
        callbacks=[record])
    assert rates == pytest.approx([0.01] * 4 + [0.009, 0.0081, 0.00729], rel=1e-5)


def test_pinball_loss_trains_a_quantile_model():
    train, val = datasets()
    config = TrainConfig(epochs=3, verbose=0, loss="pinball", quantiles=[0.1, 0.5, 0.9],
                         learning_rate=0.01)
    model = tiny_model(quantiles=3)
    result = fit(model, train, val, config)
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_pinball_loss_values():
    loss = PinballLoss([0.1, 0.9])
    y_true = np.array([[[1.0]]])  # (1, 1, 1)
    y_pred = np.array([[[[0.0, 0.0]]]])  # (1, 1, 1, 2): error 1 -> 0.1 and 0.9, mean 0.5
    assert float(loss(y_true, y_pred)) == pytest.approx(0.5)
    y_pred = np.array([[[[2.0, 2.0]]]])  # error -1 -> 0.9 and 0.1, mean 0.5
    assert float(loss(y_true, y_pred)) == pytest.approx(0.5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.quantiles == (0.1, 0.9)


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ConfigError, match="epochs"):
        fit(tiny_model(), *datasets(), {"epochs": 0})
    with pytest.raises(ConfigError, match="learning_rte"):
        fit(tiny_model(), *datasets(), {"learning_rte": 0.1})
    with pytest.raises(ValueError, match="quantiles"):
        TrainConfig(loss="pinball")
    with pytest.raises(ValueError, match="increasing"):
        TrainConfig(loss="pinball", quantiles=[0.9, 0.1])
    with pytest.raises(ValueError, match='blend_metric="loss"'):  # quantiles: no point metric
        TrainConfig(loss="pinball", quantiles=[0.1, 0.9], blend_metric="mse")


def test_shape_mismatch_is_a_model_error():
    x, y = sine_data()
    train = tf.data.Dataset.from_tensor_slices((x, y[:, :2])).batch(16)  # horizon 2, model 3
    with pytest.raises(ModelError, match="shapes"):
        fit(tiny_model(), train, None, TrainConfig(epochs=1, verbose=0))


def test_strategy_scope_compiles_and_trains():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = tiny_model()
    train, val = datasets()
    result = fit(model, train, val, TrainConfig(epochs=2, verbose=0), strategy=strategy)
    assert result.epochs_run == 2


def test_pinball_comes_from_the_quantile_head_module():
    from forecast.models import heads
    from forecast.training import resolve_loss

    loss = resolve_loss(TrainConfig(loss="pinball", quantiles=[0.2, 0.8]))
    assert isinstance(loss, heads.PinballLoss) and loss.quantiles == (0.2, 0.8)
