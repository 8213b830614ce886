"""Forecasting models: setups built from `forecast.layers`, heads, and the builder.

>>> from forecast.models import build_model
>>> model = build_model("many_to_one", spec, cell="gru", units=32, quantiles=(0.1, 0.5, 0.9))
"""

from forecast.models.builder import build_model
from forecast.models.heads import PinballLoss, PointHead, QuantileHead, pinball_loss
from forecast.models.setups import SETUPS
from forecast.options import CELLS, INSTANCE_NORMS, ModelOptions

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
