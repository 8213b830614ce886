"""Forecasting models: setups built from `forecast.layers`, heads, and the builder.

>>> from forecast.models import build_model
>>> model = build_model("many_to_one", spec, cell="gru", units=32, quantiles=(0.1, 0.5, 0.9))
"""

from forecast.models.builder import ModelOptions, build_model
from forecast.models.heads import PinballLoss, PointHead, QuantileHead, pinball_loss
from forecast.models.normalization import INSTANCE_NORMS
from forecast.models.setups import CELLS, SETUPS

__all__ = [
    "build_model",
    "ModelOptions",
    "SETUPS",
    "CELLS",
    "INSTANCE_NORMS",
    "pinball_loss",
    "PinballLoss",
    "PointHead",
    "QuantileHead",
]
