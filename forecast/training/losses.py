"""The pinball loss used by ``fit(loss="pinball")``.

``forecast.models.heads`` defines the quantile head's loss (``PinballLoss``, registered as
``forecast>PinballLoss``, and the factory ``pinball_loss(quantiles)``); this module re-exports
it. Only when that module cannot be imported does it define the same loss itself (same
registered name and config), so ``forecast.training`` works on its own.
"""

from __future__ import annotations

try:  # the quantile head's own loss, when the models package is importable
    from forecast.models.heads import PinballLoss, check_quantiles, pinball_loss
except ImportError:  # pragma: no cover - fallback for a training-only install
    from forecast.training._pinball import PinballLoss, check_quantiles, pinball_loss

__all__ = ["PinballLoss", "check_quantiles", "pinball_loss"]
