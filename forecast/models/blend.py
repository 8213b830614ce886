"""Blending a trained network with the linear baseline (``train.blend_linear``).

A forecast combination: ``y = a · network + (1 − a) · linear``, where ``linear`` is the
NLinear-style ridge baseline (`forecast.models.baselines.LinearForecaster`) fitted on the same
training windows, and the weight ``a`` is chosen on the validation windows, from a grid of
``0, 0.05, …, 1``, by the training loss (or the point metric ``train.blend_metric`` names, when
the forecasts are judged by another one). ``a = 1`` keeps the network alone and ``a = 0`` keeps
the baseline, so the blend is never worse than either on the validation windows.

The blend is part of the saved Keras model: the ridge coefficients are the frozen weights of a
`FrozenLinear` layer (stored with the other weights, no pickle), and `Blend` holds ``a`` in its
config. Both run in float32 whatever the network's precision.

::

    past [B, L, F] -> network -> [B, H, T(, Q)] ──┐
              └──> FrozenLinear -> [B, H, T] ─────┴─> Blend(a) -> [B, H, T(, Q)]

With quantile outputs, the linear forecast shifts every quantile alike, so their order is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

#: the weights tried for the network's share, from the linear baseline alone to the network alone
GRID = tuple(round(0.05 * i, 2) for i in range(21))


@keras.saving.register_keras_serializable(package="forecast")
class FrozenLinear(keras.layers.Layer):
    """The NLinear ridge baseline as a frozen Keras layer.

    Per target channel c: ``y[h] = last + intercept[c, h] + sum_l coef[c, h, l] · (x[l] − last)``
    with ``last = x[L − 1]``, exactly `LinearForecaster`'s forecast.

    Args:
        lookback: L.
        horizon: H.
        n_targets: T; the first T channels of the history are the targets.
        groups: 1 (weights shared by the channels) or T (one set per channel).

    Call arguments:
        history: [B, L, F], F ≥ T.

    Returns:
        [B, H, T].
    """

    def __init__(self, lookback, horizon, n_targets, groups=1, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.lookback, self.horizon = int(lookback), int(horizon)
        self.n_targets, self.groups = int(n_targets), int(groups)
        self.coef = self.add_weight(shape=(self.groups, self.horizon, self.lookback),
                                    initializer="zeros", trainable=False, name="coef")
        self.intercept = self.add_weight(shape=(self.groups, self.horizon), initializer="zeros",
                                         trainable=False, name="intercept")

    def call(self, history):
        x = history[:, :, : self.n_targets]  # [B, L, T]
        last = x[:, -1:, :]  # [B, 1, T]
        coef, intercept = self.coef, self.intercept
        if self.groups == 1 and self.n_targets > 1:
            coef = tf.repeat(coef, self.n_targets, axis=0)  # [T, H, L]
            intercept = tf.repeat(intercept, self.n_targets, axis=0)  # [T, H]
        out = tf.einsum("blt,thl->bht", x - last, coef)  # [B, H, T]
        return out + tf.transpose(intercept)[None] + last

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, self.n_targets)

    def get_config(self):
        return {**super().get_config(), "lookback": self.lookback, "horizon": self.horizon,
                "n_targets": self.n_targets, "groups": self.groups}


@keras.saving.register_keras_serializable(package="forecast")
class Blend(keras.layers.Layer):
    """``weight · network + (1 − weight) · linear``, the linear part broadcast over quantiles.

    Args:
        weight: the network's share, in [0, 1].

    Call arguments:
        inputs: [network forecast (B, H, T) or (B, H, T, Q), linear forecast (B, H, T)].
    """

    def __init__(self, weight, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs):
        network, linear = inputs
        if len(network.shape) == 4:
            linear = linear[..., None]  # [B, H, T] -> [B, H, T, 1]
        return self.weight * network + (1.0 - self.weight) * linear

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


@dataclass(frozen=True)
class BlendChoice:
    """The weight chosen on the validation windows, with the losses that chose it.

    Attributes:
        weight: the network's share a (1: the network alone; 0: the linear baseline alone).
        loss: the validation loss of the blend at that weight.
        network_loss: the network's alone (a = 1).
        linear_loss: the linear baseline's alone (a = 0).
        metric: the loss's name (the training loss).
    """

    weight: float
    loss: float
    network_loss: float
    linear_loss: float
    metric: str

    def to_dict(self) -> dict:
        """JSON-ready values, rounded for reports."""
        return {"weight": self.weight, "metric": self.metric, "val_loss": round(self.loss, 6),
                "val_loss_network": round(self.network_loss, 6),
                "val_loss_linear": round(self.linear_loss, 6), "summary": self.describe()}

    def describe(self) -> str:
        """One line for the train summary.

        Example:
            >>> BlendChoice(0.7, 0.52, 0.53, 0.55, "mae").describe()
            'blend: 0.7 × network + 0.3 × linear baseline, chosen on validation (val mae 0.52 vs network 0.53, linear 0.55)'
        """  # noqa: E501
        return (f"blend: {self.weight:g} × network + {round(1 - self.weight, 2):g} × linear "
                f"baseline, chosen on validation (val {self.metric} {self.loss:.4g} vs network "
                f"{self.network_loss:.4g}, linear {self.linear_loss:.4g})")


def choose_weight(y_true: np.ndarray, network: np.ndarray, linear: np.ndarray, loss,
                  metric: str) -> BlendChoice:
    """The network's share in ``GRID`` with the lowest ``loss`` on the given windows.

    Args:
        y_true: [N, H, T] targets.
        network: [N, H, T] or [N, H, T, Q] network forecasts.
        linear: [N, H, T] linear-baseline forecasts.
        loss: a Keras loss (the training loss), called as ``loss(y_true, y_pred)``.
        metric: its name, for reports.

    Returns:
        The `BlendChoice`; ties go to the larger share of the network.
    """
    lin = linear[..., None] if network.ndim == 4 else linear
    losses = {}
    for weight in GRID:
        blended = weight * network + (1.0 - weight) * lin
        losses[weight] = float(keras.ops.convert_to_numpy(
            loss(y_true.astype("float32"), blended.astype("float32"))))
    best = min(reversed(GRID), key=lambda w: losses[w])  # reversed: ties keep the network
    return BlendChoice(weight=best, loss=losses[best], network_loss=losses[1.0],
                       linear_loss=losses[0.0], metric=metric)


def blended_model(model: keras.Model, coef: np.ndarray, intercept: np.ndarray,
                  weight: float) -> keras.Model:
    """``model`` wrapped with the frozen linear baseline and the blend.

    Args:
        model: the trained network; its first input is the history ``past`` [B, L, F].
        coef: the linear baseline's coefficients, [G, H, L] (G = 1 or T).
        intercept: its intercepts, [G, H].
        weight: the network's share.

    Returns:
        A functional model with the same inputs (names and order) and output shape.
    """
    inputs = [keras.Input(tensor.shape[1:], name=tensor.name.split(":")[0])
              for tensor in model.inputs]
    past = inputs[0]
    lookback, n_targets = past.shape[1], model.outputs[0].shape[2]
    network = model(inputs if len(inputs) > 1 else past)
    frozen = FrozenLinear(lookback, coef.shape[1], n_targets, groups=coef.shape[0],
                          name="linear_baseline")
    frozen.build(past.shape)
    frozen.coef.assign(coef.astype("float32"))
    frozen.intercept.assign(intercept.astype("float32"))
    y = Blend(weight, name="blend")([network, frozen(past)])
    return keras.Model(inputs if len(inputs) > 1 else past, y, name=f"{model.name}_blend")
