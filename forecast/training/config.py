"""Training settings as data: ``TrainConfig`` is ``forecast.options.TrainOptions``.

The fields, their defaults and their documentation live in ``forecast.options`` (one
declaration per setting); this name stays for the training API (``fit(..., TrainConfig(...))``).
"""

from __future__ import annotations

from forecast.options import TrainOptions

TrainConfig = TrainOptions

__all__ = ["TrainConfig"]
