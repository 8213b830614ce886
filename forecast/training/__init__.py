"""Training: ``fit(model, train_ds, val_ds, TrainConfig(...)) -> FitResult``."""

from forecast.training.callbacks import DivergenceGuard
from forecast.training.config import TrainConfig
from forecast.training.fit import FitResult, as_config, fit, resolve_loss, set_seed
from forecast.training.losses import PinballLoss, pinball_loss

__all__ = [
    "fit",
    "FitResult",
    "TrainConfig",
    "as_config",
    "set_seed",
    "resolve_loss",
    "DivergenceGuard",
    "PinballLoss",
    "pinball_loss",
]
