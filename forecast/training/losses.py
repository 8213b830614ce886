"""The pinball loss used by ``fit(loss="pinball")``: the quantile head's own loss.

``forecast.models.heads`` defines ``PinballLoss`` (registered as ``forecast>PinballLoss``) and
the factory ``pinball_loss(quantiles)``; training re-exports them so that a quantile model is
trained with exactly the loss its head was built for.
"""

from __future__ import annotations

from forecast.models.heads import PinballLoss, check_quantiles, pinball_loss

__all__ = ["PinballLoss", "check_quantiles", "pinball_loss"]
