"""Fallback pinball loss, used only when ``forecast.models.heads`` cannot be imported."""

from __future__ import annotations

import keras
from keras import ops

from forecast.errors import ConfigError


def check_quantiles(quantiles) -> tuple[float, ...]:
    """Validates quantile levels: a non-empty, strictly increasing sequence in (0, 1).

    Raises:
        ConfigError: otherwise, naming what was received.
    """
    try:
        levels = tuple(float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise ConfigError(
            f"`quantiles` must be a list of numbers in (0, 1). Received: quantiles={quantiles!r}."
        ) from None
    if not levels or any(not 0.0 < q < 1.0 for q in levels) or any(
        b <= a for a, b in zip(levels, levels[1:], strict=False)
    ):
        raise ConfigError(
            "`quantiles` must be strictly increasing numbers in (0, 1), e.g. [0.1, 0.5, 0.9]. "
            f"Received: quantiles={quantiles!r}."
        )
    return levels


@keras.saving.register_keras_serializable(package="forecast")
class PinballLoss(keras.losses.Loss):
    """Pinball loss for quantile forecasts (batch, horizon, targets, quantiles).

    Args:
        quantiles: the levels along the last axis of the predictions, strictly increasing.

    Example:
        >>> loss = PinballLoss([0.1, 0.5, 0.9])
        >>> float(loss(np.zeros((2, 3, 1)), np.zeros((2, 3, 1, 3))))
        0.0
    """

    def __init__(self, quantiles=(0.1, 0.5, 0.9), name="pinball", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.quantiles = check_quantiles(quantiles)

    def call(self, y_true, y_pred):
        q = ops.convert_to_tensor(list(self.quantiles), dtype=y_pred.dtype)  # [Q]
        error = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred  # [B, H, T, Q]
        return ops.mean(ops.maximum(q * error, (q - 1.0) * error), axis=(-1, -2, -3))  # [B]

    def get_config(self):
        return {**super().get_config(), "quantiles": list(self.quantiles)}


def pinball_loss(quantiles=(0.1, 0.5, 0.9)) -> PinballLoss:
    """The pinball loss for ``quantiles`` (same factory as ``forecast.models.heads``)."""
    return PinballLoss(quantiles)
