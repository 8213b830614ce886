"""Per-window and per-channel transforms wrapped around a setup.

- `InstanceNorm` / `InstanceDenorm`: reversible per-window normalisation of the target
  channels. ``"revin"`` subtracts each window's mean and divides by its std, then applies a
  learnable affine (RevIN, Kim et al. 2022); ``"last"`` subtracts the window's last value
  (NLinear). The norm layer returns the effective location and scale, with the affine folded
  in, so the weightless `InstanceDenorm` undoes it exactly: ``y * scale + loc``.
  Covariate channels pass through unchanged (they are already scaled by the data pipeline, and
  the future covariates of the second input must stay on the same scale).
- `ChannelsToBatch` / `BatchToChannels`: channel independence, (B, L, C) <-> (B·C, L, 1).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from forecast.errors import ConfigError


@keras.saving.register_keras_serializable(package="forecast")
class InstanceNorm(keras.layers.Layer):
    """Normalises each window's target channels; returns what `InstanceDenorm` needs.

    Args:
        mode: ``"revin"`` or ``"last"``.
        n_targets: the first `n_targets` channels are normalised, the others pass through.
        affine: learnable per-target scale and shift (``"revin"`` only).
        epsilon: added to the variance.

    Call arguments:
        inputs: (batch, lookback, features).

    Returns:
        [normalised (B, L, F), loc (B, 1, T), scale (B, 1, T)] with
        ``normalised[..., :T] = (inputs[..., :T] - loc) / scale``.

    >>> x, loc, scale = InstanceNorm("revin", 1)(tf.ones((2, 48, 3)))
    >>> x.shape, loc.shape, scale.shape
    (TensorShape([2, 48, 3]), TensorShape([2, 1, 1]), TensorShape([2, 1, 1]))
    """

    def __init__(self, mode="revin", n_targets=1, affine=True, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("revin", "last"):
            raise ConfigError(
                f"InstanceNorm `mode` must be 'revin' or 'last'. Received: mode={mode!r}"
            )
        self.mode = mode
        self.n_targets = int(n_targets)
        self.affine = bool(affine)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if self.mode == "revin" and self.affine:
            self.gamma = self.add_weight(shape=(self.n_targets,), initializer="ones",
                                         name="gamma")
            self.beta = self.add_weight(shape=(self.n_targets,), initializer="zeros",
                                        name="beta")
        self.built = True

    def call(self, inputs):
        t = self.n_targets
        series, rest = inputs[:, :, :t], inputs[:, :, t:]  # [B, L, T], [B, L, F-T]
        if self.mode == "last":
            loc = series[:, -1:, :]  # [B, 1, T]
            scale = tf.ones_like(loc)  # [B, 1, T]
        else:
            mean, var = tf.nn.moments(series, axes=[1], keepdims=True)  # [B, 1, T] each
            std = tf.sqrt(var + self.epsilon)
            loc, scale = mean, std
            if self.affine:
                # (x - mean) / std * gamma + beta == (x - loc') / scale'. |gamma| keeps the
                # scale positive, so the inverse keeps quantile forecasts in order.
                gamma = tf.abs(self.gamma) + self.epsilon * self.epsilon  # [T]
                scale = std / gamma
                loc = mean - self.beta * scale
        normed = (series - loc) / scale  # [B, L, T]
        return [tf.concat([normed, rest], axis=-1), loc, scale]  # [B, L, F]

    def compute_output_shape(self, input_shape):
        stat = (input_shape[0], 1, self.n_targets)
        return [tuple(input_shape), stat, stat]

    def get_config(self):
        own = {"mode": self.mode, "n_targets": self.n_targets, "affine": self.affine,
               "epsilon": self.epsilon}
        return {**super().get_config(), **own}


@keras.saving.register_keras_serializable(package="forecast")
class InstanceDenorm(keras.layers.Layer):
    """Undoes `InstanceNorm` on a forecast: ``y * scale + loc``.

    Call arguments:
        inputs: [forecast (B, H, T) or (B, H, T, Q), loc (B, 1, T), scale (B, 1, T)].
    """

    def call(self, inputs):
        y, loc, scale = inputs
        if len(y.shape) == 4:
            loc, scale = loc[..., None], scale[..., None]  # [B, 1, T] -> [B, 1, T, 1]
        return y * scale + loc  # scale > 0 keeps the quantiles in order

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="forecast")
class ChannelsToBatch(keras.layers.Layer):
    """(B, L, C) -> (B·C, L, 1): each channel becomes a univariate series of its own."""

    def call(self, inputs):
        steps = inputs.shape[1]
        x = tf.transpose(inputs, [0, 2, 1])  # [B, L, C] -> [B, C, L]
        return tf.reshape(x, [-1, steps, 1])  # [B, C, L] -> [B·C, L, 1]

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] * input_shape[2]
        return (batch, input_shape[1], 1)


@keras.saving.register_keras_serializable(package="forecast")
class BatchToChannels(keras.layers.Layer):
    """(B·C, H, 1[, Q]) -> (B, H, C[, Q]): the inverse of `ChannelsToBatch` on forecasts.

    Args:
        n_channels: C.
    """

    def __init__(self, n_channels, **kwargs):
        super().__init__(**kwargs)
        self.n_channels = int(n_channels)

    def call(self, inputs):
        c = self.n_channels
        steps = inputs.shape[1]
        if len(inputs.shape) == 4:
            q = inputs.shape[3]
            x = tf.reshape(inputs, [-1, c, steps, q])  # [B·C, H, 1, Q] -> [B, C, H, Q]
            return tf.transpose(x, [0, 2, 1, 3])  # [B, C, H, Q] -> [B, H, C, Q]
        x = tf.reshape(inputs, [-1, c, steps])  # [B·C, H, 1] -> [B, C, H]
        return tf.transpose(x, [0, 2, 1])  # [B, C, H] -> [B, H, C]

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.n_channels
        return (batch, input_shape[1], self.n_channels, *input_shape[3:])

    def get_config(self):
        return {**super().get_config(), "n_channels": self.n_channels}
