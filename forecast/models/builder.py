"""`build_model`: a setup plus its options and a window spec -> an uncompiled `keras.Model`.

The model is functional: inputs ``past`` (B, L, n_inputs) and, when the spec has future
covariates, ``future`` (B, H, n_future), in the order `forecast.data.make_dataset` yields
them; output (B, H, n_targets) or, with quantiles, (B, H, n_targets, n_quantiles). Around the
setup, in order: instance normalisation of the target channels, channel independence, the
setup, the linear shortcut, the inverse normalisation.
"""

from __future__ import annotations

import keras

from forecast.errors import ConfigError
from forecast.models.heads import LinearSkip
from forecast.models.normalization import (
    BatchToChannels,
    ChannelsToBatch,
    InstanceDenorm,
    InstanceNorm,
)
from forecast.models.setups import get_setup
from forecast.options import ModelOptions


def build_model(
    setup: str, spec, options: ModelOptions | dict | None = None, **kwargs
) -> keras.Model:
    """Builds the forecasting model of a setup for windows shaped by `spec`.

    Args:
        setup: ``"many_to_one"``, ``"one_to_many"``, ``"seq2seq"`` or ``"synced"``.
        spec: a `forecast.data.WindowSpec` (lookback, horizon, n_inputs, n_targets, n_future).
        options: a `forecast.options.ModelOptions` (or a dict of its fields; None: the
            defaults); keyword arguments (`cell`, `units`, `layers`, ...) override its fields.

    Returns:
        An uncompiled `keras.Model` named after the setup. Inputs: ``past`` (B, L, n_inputs)
        and, when ``spec.n_future > 0``, ``future`` (B, H, n_future), as a list in that order.
        Output: (B, H, n_targets) or (B, H, n_targets, len(quantiles)). Compile it with MSE
        or, with quantiles, `pinball_loss(quantiles)`.

    Raises:
        ConfigError: an unknown setup, cell or option, an invalid value, or
            ``channel_independent=True`` with covariates in the spec.

    Example:
        >>> spec = WindowSpec(lookback=48, horizon=12, targets=("y",))
        >>> model = build_model("seq2seq", spec, cell="gru", units=16)
        >>> model(np.zeros((2, 48, 1), "float32")).shape
        TensorShape([2, 12, 1])
    """
    setup_cls = get_setup(setup)
    options = ModelOptions.parse(options)
    if kwargs:
        options = options.replace(**kwargs)
    lookback, horizon = spec.lookback, spec.horizon
    n_inputs, n_targets, n_future = spec.n_inputs, spec.n_targets, spec.n_future
    if n_future and not setup_cls.SUPPORTS_FUTURE_COVARIATES:
        raise ConfigError(f"setup {setup!r} does not read future covariates; the spec has "
                          f"{n_future}. Use 'seq2seq' or drop the future covariates.")
    if n_inputs > n_targets + n_future and not setup_cls.SUPPORTS_PAST_COVARIATES:
        raise ConfigError(f"setup {setup!r} does not read past covariates.")
    if options.channel_independent and n_inputs != n_targets:
        raise ConfigError(
            "channel_independent=True runs each target as its own univariate series, so the "
            f"inputs must be the targets alone; this spec also has covariates "
            f"{list(spec.input_columns[n_targets:])}. Drop the covariates or set "
            "channel_independent=False."
        )
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)

    past = keras.Input((lookback, n_inputs), name="past")  # [B, L, F]
    future = keras.Input((horizon, n_future), name="future") if n_future else None  # [B, H, Fu]
    x = past
    if options.instance_norm != "none":
        x, loc, scale = InstanceNorm(options.instance_norm, n_targets, name="instance_norm")(
            past
        )  # [B, L, F] -> [B, L, F], [B, 1, T], [B, 1, T]
    core_in, core_targets = x, n_targets
    if options.channel_independent:
        core_in = ChannelsToBatch(name="channels_to_batch")(x)  # [B, L, C] -> [B·C, L, 1]
        core_targets = 1
    n_channels = n_targets if options.channel_independent else 1
    y = setup_cls(options, horizon, core_targets, n_channels=n_channels)(
        core_in, future)  # -> [B', H, T'(, Q)]
    if options.channel_independent:
        y = BatchToChannels(n_targets, name="batch_to_channels")(y)  # -> [B, H, C(, Q)]
    if options.linear_skip:
        y = LinearSkip(horizon, n_targets, name="linear_skip")([y, x])  # [B, H, T(, Q)]
    if options.instance_norm != "none":
        y = InstanceDenorm(name="instance_denorm")([y, loc, scale])  # [B, H, T(, Q)]
    inputs = [past, future] if future is not None else past
    return keras.Model(inputs, y, name=setup)
