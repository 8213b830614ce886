"""Training settings as data: a pydantic model that rejects unknown keys."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forecast.training.losses import check_quantiles


class TrainConfig(BaseModel):
    """How ``forecast.training.fit`` trains a model.

    Attributes:
        epochs: passes over the training data (the most; early stopping may end sooner).
        learning_rate: Adam's (initial) learning rate.
        lr_schedule: ``"plateau"`` halves the rate when the monitored loss stalls
            (``ReduceLROnPlateau``, patience ``max(1, patience // 2)``); ``"cosine"`` decays it
            to 0 over all steps (``keras.optimizers.schedules.CosineDecay``); ``"constant"``.
        loss: ``"mse"``, ``"mae"``, ``"huber"`` or ``"pinball"`` (quantile models; needs
            ``quantiles``).
        quantiles: quantile levels of the model's last output axis, for ``loss="pinball"``.
        patience: epochs without improvement before early stopping (best weights restored);
            ``None`` disables early stopping.
        min_delta: the least change of the monitored loss counted as improvement.
        checkpoint_dir: where to keep ``best.keras`` (the best epoch) and ``backup/`` (the last
            epoch, for resuming a killed run: rerun with the same directory). ``None``: neither.
        seed: seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) at the start
            of ``fit``. Weights are initialised when the model is built: to reproduce them, call
            ``forecast.training.set_seed(seed)`` before building the model too.
        deterministic: also call ``tf.config.experimental.enable_op_determinism()`` (process-wide,
            slower; needed for bitwise-equal runs on a GPU — on CPU the seed alone suffices).
        verbose: Keras's progress output: 0 silent, 1 progress bar, 2 one line per epoch.
        clipnorm: clip each gradient to this norm (``None``: no clipping).
        huber_delta: the Huber loss's switch point (``loss="huber"``).
        strategy: how many devices or machines train the model (``tf.distribute``):
            ``"default"`` one device; ``"mirrored"`` every local GPU (or logical CPU device),
            one replica each; ``"multi_worker"`` the machines listed in the ``TF_CONFIG``
            environment variable, the same program started on each (only the chief writes
            checkpoints and logs). ``batch_size`` stays the global batch, split among the
            replicas. See ``forecast.training.distributed``.
    """

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(20, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    lr_schedule: Literal["plateau", "cosine", "constant"] = "plateau"
    loss: Literal["mse", "mae", "huber", "pinball"] = "mse"
    quantiles: tuple[float, ...] | None = None
    patience: int | None = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)
    checkpoint_dir: Path | None = None
    seed: int | None = 42
    deterministic: bool = False
    verbose: Literal[0, 1, 2] = 1
    clipnorm: float | None = Field(None, gt=0)
    huber_delta: float = Field(1.0, gt=0)
    strategy: Literal["default", "mirrored", "multi_worker"] = "default"

    @field_validator("quantiles")
    @classmethod
    def _check_quantiles(cls, value):
        if value is None:
            return value
        try:
            return check_quantiles(value)
        except Exception as exc:  # ConfigError -> pydantic's ValueError, one message
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _pinball_needs_quantiles(self):
        if self.loss == "pinball" and not self.quantiles:
            raise ValueError(
                'loss="pinball" needs the quantile levels: set quantiles, e.g. [0.1, 0.5, 0.9].'
            )
        return self
