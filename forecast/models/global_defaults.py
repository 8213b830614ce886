"""The defaults of a global model: one network trained over many series (an id column).

A global model sees many short, differently scaled series; what suits one long series (a
many-to-one LSTM with calendar features, batch 32, MSE) overfits there. These defaults were
chosen on the validation part of M4 Hourly (414 series, horizon 48; validation = the last 48
points of each training part, the test part never looked at; ``benchmarks/m4.py``, every run
in ``benchmarks/results/m4.md``):

==================================================  ========  =================
configuration (M4 Hourly, every 4th series: 104)    val OWA   train s (2 cores,
                                                              shared)
==================================================  ========  =================
segment, units 32, MSE, batch 128, lookback 168     0.585     ~85
  the same with the MAE loss                        0.496     ~140
  ... 64 units                                      0.472     ~160
  ... no linear skip                                0.568
  ... lookback 336 / RevIN / 128 units              0.50-0.52
GLOBAL_DEFAULTS (lookback 216 from the frequency)   0.470     140
==================================================  ========  =================

(seasonal naive scores 0.619 on that validation part, Naive2 1.000. The single-series defaults,
a many-to-one LSTM, score test OWA 0.76 on all 414 series in 860 s and overfit after 2-3
epochs; the published M4 winner, ES-RNN, scores test OWA 0.440.)

They apply only when an id column is given (``Forecaster.fit`` on a frame indexed by
(id, time), ``forecast train --id-col``) and only when the network reads the targets alone (no
past, future or static covariates: the segment setup reads the targets alone); a model of one
series keeps the single-series defaults of ``forecast.options``.

A setting replaced here is one the user left unset (not in pydantic's ``model_fields_set``: the
CLI passes only the flags given on the command line, a pipeline only the keys its YAML holds),
so ``--setup many_to_one --id-col ID`` trains the many-to-one LSTM over every series.

No calendar features: the segment setup reads the targets alone, and on M4 the files carry no
timestamps (hour-of-day is unknown); a daily season is read off the lookback instead.
"""

from __future__ import annotations

import math

from forecast.options import ForecasterConfig, ModelOptions, TrainOptions

#: what a global model uses where the single-series default is left (see the module docstring
#: for the validation numbers behind each value).
GLOBAL_DEFAULTS: dict = {
    "setup": "segment",
    "batch_size": 128,
    "model": {"units": 64},
    "train": {"loss": "mae", "learning_rate": 3e-3},
}

#: the group of each top-level section of ``GLOBAL_DEFAULTS``.
_GROUPS = {"model": ModelOptions, "train": TrainOptions}


def segment_length_for(horizon: int, season: int, lookback: int | None = None) -> int:
    """The segment length w of a global model: the largest divisor of the horizon (and of a
    given lookback) that is at most one season (at most the horizon when the season is
    unknown).

    Args:
        horizon: H.
        season: the frequency's season (24 for hourly data), 1 when unknown.
        lookback: a lookback the user gave (w must divide it too), or None.

    Returns:
        w >= 1.

    Example:
        >>> segment_length_for(48, 24), segment_length_for(6, 24), segment_length_for(48, 24, 30)
        (24, 6, 6)
    """
    cap = season if season > 1 else horizon
    common = horizon if lookback is None else math.gcd(horizon, lookback)
    return max(d for d in range(1, min(cap, common) + 1) if common % d == 0)


def global_defaults(config: ForecasterConfig, *, season: int, targets_only: bool,
                    lookback_reason: str | None) -> tuple[ForecasterConfig, str | None]:
    """The settings of a global model: ``GLOBAL_DEFAULTS`` where ``config`` holds the
    single-series default, the segment length fitted to the horizon, and a lookback chosen from
    the frequency rounded down to whole segments.

    Args:
        config: the forecaster's settings, with its lookback filled in.
        season: the frequency's season (``season_for_freq``), 1 when unknown.
        targets_only: whether the network reads the targets alone (no past, future or static
            covariates); otherwise ``config`` is returned unchanged.
        lookback_reason: why the lookback has its value; ``"given"`` (or None) when the user
            gave it (then it is kept and the segment length divides it).

    Returns:
        ``(config, lookback_reason)``.

    Example:
        >>> config = ForecasterConfig(horizon=48, lookback=228)
        >>> resolved, reason = global_defaults(config, season=24, targets_only=True,
        ...                                    lookback_reason="a quarter of the 912 rows")
        >>> resolved.setup, resolved.lookback, resolved.model.segment_length
        ('segment', 216, 24)
    """
    if not targets_only:
        return config, lookback_reason
    update = {}
    for name, value in GLOBAL_DEFAULTS.items():
        if name in _GROUPS:
            group = getattr(config, name)
            changes = {key: v for key, v in value.items() if key not in group.model_fields_set}
            if changes:
                update[name] = group.model_copy(update=changes)
        elif name not in config.model_fields_set:
            update[name] = value
    config = config.model_copy(update=update)
    if config.setup != "segment":
        return config, lookback_reason
    given = lookback_reason in (None, "given")
    model = config.model
    if "segment_length" not in model.model_fields_set:
        w = segment_length_for(config.horizon, season, config.lookback if given else None)
        model = model.model_copy(update={"segment_length": w})
    w = model.segment_length
    lookback = config.lookback
    if not given and lookback is not None and lookback % w:
        lookback = max(w, lookback // w * w)
        lookback_reason = (f"{lookback_reason}, rounded down to {lookback} (whole segments of "
                           f"{w})")
    return config.model_copy(update={"model": model, "lookback": lookback}), lookback_reason
