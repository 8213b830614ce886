"""Output heads: features → forecasts of shape (batch, horizon, targets[, quantiles]).

- `PointHead`: one value per step and target.
- `QuantileHead`: one value per step, target and quantile, kept in increasing order by
  construction: the quantile nearest 0.5 (the anchor) is a free linear output; the others are
  the anchor plus (above) or minus (below) cumulative sums of softplus-positive increments.
- `LinearSkip`: a linear shortcut from the lookback to the horizon (one Dense over the time
  axis, shared by the channels), added to a head's output.
- `PinballLoss` / `pinball_loss(quantiles)`: the loss for training quantile heads.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from forecast.errors import ConfigError
from forecast.options import check_quantiles


def anchor_index(quantiles) -> int:
    """Index of the quantile nearest the median (the one fed back by autoregressive setups)."""
    return int(np.argmin([abs(q - 0.5) for q in quantiles]))


class _Head(keras.layers.Layer):
    """Shared part of the heads: a Dense whose outputs are reshaped per step and target."""

    def __init__(self, n_targets, horizon=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n_targets, bool) or not isinstance(n_targets, int) or n_targets < 1:
            raise ConfigError(f"`n_targets` must be a positive integer. Received: {n_targets!r}")
        if horizon is not None and (not isinstance(horizon, int) or horizon < 1):
            raise ConfigError(f"`horizon` must be a positive integer. Received: {horizon!r}")
        self.n_targets = n_targets
        self.horizon = horizon
        steps = 1 if horizon is None else horizon
        self.dense = keras.layers.Dense(steps * n_targets * (self._per_target() or 1),
                                        name="dense", dtype=self.dtype_policy)

    def _per_target(self):
        """Outputs per target and step: None for a point head (no quantile axis)."""
        return None

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def _trailing_shape(self):
        shape = [] if self.horizon is None else [self.horizon]
        shape.append(self.n_targets)
        if self._per_target() is not None:
            shape.append(self._per_target())
        return shape

    def _raw(self, features):
        out = self.dense(features)  # [..., F] -> [..., (H·)T(·Q)]
        lead = tf.shape(out)[:-1]
        return tf.reshape(out, tf.concat([lead, self._trailing_shape()], axis=0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + tuple(self._trailing_shape())

    def get_config(self):
        return {**super().get_config(), "n_targets": self.n_targets, "horizon": self.horizon}


@keras.saving.register_keras_serializable(package="forecast")
class PointHead(_Head):
    """Point forecasts from features.

    Args:
        n_targets: targets per step.
        horizon: when given, the input is one vector per sample, (batch, features), mapped to
            all steps at once, (batch, horizon, targets); when None, the head is applied per
            step: (..., features) -> (..., targets).

    >>> PointHead(2, horizon=12)(tf.zeros((4, 16))).shape
    TensorShape([4, 12, 2])
    >>> PointHead(2)(tf.zeros((4, 12, 16))).shape
    TensorShape([4, 12, 2])
    """

    def call(self, features):
        return self._raw(features)  # [..., F] -> [..., (H,) T]


@keras.saving.register_keras_serializable(package="forecast")
class QuantileHead(_Head):
    """Quantile forecasts from features, in increasing order along the last axis.

    Args:
        n_targets: targets per step.
        quantiles: strictly increasing levels in (0, 1), e.g. (0.1, 0.5, 0.9).
        horizon: as in `PointHead`.

    >>> QuantileHead(1, (0.1, 0.5, 0.9), horizon=12)(tf.zeros((4, 16))).shape
    TensorShape([4, 12, 1, 3])
    """

    def __init__(self, n_targets, quantiles=(0.1, 0.5, 0.9), horizon=None, **kwargs):
        self.quantiles = check_quantiles(quantiles)
        super().__init__(n_targets, horizon=horizon, **kwargs)
        self.anchor = anchor_index(self.quantiles)

    def _per_target(self):
        return len(self.quantiles)

    def call(self, features):
        raw = self._raw(features)  # [..., F] -> [..., (H,) T, Q]
        a = self.anchor
        median = raw[..., a : a + 1]  # [..., T, 1]
        steps = tf.math.softplus(raw) + 1e-6  # strictly positive gaps
        up = median + tf.cumsum(steps[..., a + 1 :], axis=-1)  # [..., T, Q-a-1]
        down = median - tf.cumsum(steps[..., :a], axis=-1, reverse=True)  # [..., T, a]
        return tf.concat([down, median, up], axis=-1)  # [..., T, Q], increasing

    def get_config(self):
        return {**super().get_config(), "quantiles": list(self.quantiles)}


def make_head(n_targets, quantiles=None, horizon=None, name="head"):
    """A `PointHead` (quantiles None) or a `QuantileHead`."""
    if quantiles is None:
        return PointHead(n_targets, horizon=horizon, name=name)
    return QuantileHead(n_targets, quantiles=quantiles, horizon=horizon, name=name)


@keras.saving.register_keras_serializable(package="forecast")
class LinearSkip(keras.layers.Layer):
    """Adds a linear map of the targets' lookback to a forecast (NLinear-style shortcut).

    One Dense over the time axis, lookback -> horizon, shared by all target channels, its
    kernel starting at zero (the shortcut adds nothing until trained). Quantile forecasts get
    the same shift on every quantile, so their order is kept.

    Args:
        horizon: forecast steps.
        n_targets: the first `n_targets` channels of the history are the targets.

    Call arguments:
        inputs: [forecast (B, H, T) or (B, H, T, Q), history (B, L, F)].
    """

    def __init__(self, horizon, n_targets, **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)
        self.n_targets = int(n_targets)
        self.dense = keras.layers.Dense(self.horizon, kernel_initializer="zeros", name="dense",
                                        dtype=self.dtype_policy)  # this layer's precision

    def build(self, input_shape):
        history_shape = input_shape[1]
        self.dense.build((None, history_shape[1]))
        self.built = True

    def call(self, inputs):
        forecast, history = inputs
        t = self.n_targets
        series = tf.transpose(history[:, :, :t], [0, 2, 1])  # [B, L, T] -> [B, T, L]
        skip = tf.transpose(self.dense(series), [0, 2, 1])  # [B, T, L] -> [B, T, H] -> [B, H, T]
        if len(forecast.shape) == 4:
            skip = skip[..., None]  # [B, H, T] -> [B, H, T, 1]
        return forecast + skip

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "horizon": self.horizon, "n_targets": self.n_targets}


@keras.saving.register_keras_serializable(package="forecast")
class PinballLoss(keras.losses.Loss):
    """Pinball (quantile) loss, averaged over the quantiles, steps, targets and batch.

    For a level q and error e = y - ŷ_q: max(q·e, (q - 1)·e).

    Args:
        quantiles: the levels of the last axis of the predictions, e.g. (0.1, 0.5, 0.9).

    Call arguments:
        y_true: (batch, horizon, targets).
        y_pred: (batch, horizon, targets, quantiles).
    """

    def __init__(self, quantiles=(0.1, 0.5, 0.9), name="pinball", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.quantiles = check_quantiles(quantiles)

    def call(self, y_true, y_pred):
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.cast(y_true, y_pred.dtype)[..., None]  # [B, H, T] -> [B, H, T, 1]
        q = tf.constant(self.quantiles, dtype=y_pred.dtype)  # [Q]
        err = y_true - y_pred  # [B, H, T, Q]
        loss = tf.maximum(q * err, (q - 1.0) * err)
        return tf.reduce_mean(loss, axis=[1, 2, 3])  # [B]

    def get_config(self):
        return {**super().get_config(), "quantiles": list(self.quantiles)}


def pinball_loss(quantiles=(0.1, 0.5, 0.9)) -> PinballLoss:
    """The pinball loss for `quantiles`, a serializable Keras loss for `model.compile`.

    Example:
        >>> model.compile(optimizer="adam", loss=pinball_loss((0.1, 0.5, 0.9)))
    """
    return PinballLoss(quantiles)
