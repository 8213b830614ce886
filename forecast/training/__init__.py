"""Training: ``fit(model, train_ds, val_ds, TrainConfig(...)) -> FitResult``; ``make_strategy``
for several devices or machines."""

from forecast.training.callbacks import DivergenceGuard
from forecast.training.config import TrainConfig
from forecast.training.distributed import (
    ClusterRole,
    make_strategy,
    read_tf_config,
    strategy_name,
    worker_role,
)
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
    "make_strategy",
    "read_tf_config",
    "worker_role",
    "strategy_name",
    "ClusterRole",
    "PinballLoss",
    "pinball_loss",
]
