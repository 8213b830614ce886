"""`build_model`: a setup plus its options and a window spec -> an uncompiled `keras.Model`.

The model is functional: inputs ``past`` (B, L, n_inputs) and, when the spec has future
covariates, ``future`` (B, H, n_future), in the order `forecast.data.make_dataset` yields
them; output (B, H, n_targets) or, with quantiles, (B, H, n_targets, n_quantiles). Around the
setup, in order: instance normalisation of the target channels, channel independence, the
setup, the linear shortcut, the inverse normalisation.
"""

from __future__ import annotations

import contextlib

import keras

from forecast.errors import ConfigError, ModelError
from forecast.models.heads import LinearSkip
from forecast.models.normalization import (
    BatchToChannels,
    ChannelsToBatch,
    InstanceDenorm,
    InstanceNorm,
)
from forecast.models.setups import get_setup
from forecast.models.static import StaticEmbedding, WithStatic
from forecast.options import ModelOptions

#: the most weights ``build_model`` makes (50 million: 200 MB of float32, several times that
#: while training); larger settings are refused before any variable is allocated
MAX_PARAMETERS = 50_000_000

#: the step embedding of the seq2seq decoder (``forecast.models.setups.Seq2Seq``)
_STEP_EMBEDDING_DIM = 8


def _recurrent_parameters(cell: str, inputs: int, units: int) -> int:
    """Weights of one of our recurrent layers reading ``inputs`` features."""
    if cell == "gru":  # kernel, recurrent kernel, bias (2, 3·units)
        return 3 * (units * (inputs + units)) + 2 * 3 * units
    weights = 4 * (units * (inputs + units) + units)  # kernel, recurrent kernel, bias
    return weights + (3 * units if cell == "peephole" else 0)


def _stack_parameters(cell: str, inputs: int, units: int, layers: int) -> int:
    """Weights of ``layers`` stacked recurrent layers, the first reading ``inputs``."""
    return (_recurrent_parameters(cell, inputs, units)
            + (layers - 1) * _recurrent_parameters(cell, units, units))


def estimate_parameters(setup: str, spec, options: ModelOptions | dict | None = None,
                        **kwargs) -> int:
    """The weights ``build_model(setup, spec, options)`` would make, counted from the settings.

    Nothing is built, so settings far too large to allocate (``units=10**9``) are counted in
    microseconds. The count is exact for the setups of ``forecast.models.setups``.

    Args:
        setup, spec, options, kwargs: as for ``build_model``.

    Returns:
        The parameter count (trainable and not).

    Raises:
        ConfigError: an unknown setup, cell or option.

    Example:
        >>> estimate_parameters("many_to_one", WindowSpec(48, 12, ("y",)), units=16)
        1944
    """
    get_setup(setup)
    options = ModelOptions.parse(options)
    if kwargs:
        options = options.replace(**kwargs)
    cell, units, layers = options.cell, options.units, options.layers
    horizon, n_targets, n_future = spec.horizon, spec.n_targets, spec.n_future
    n_inputs = spec.n_inputs
    outputs = len(options.quantiles) if options.quantiles else 1  # per step and target
    count = 0
    if options.instance_norm == "revin":
        count += 2 * n_targets  # gamma, beta
    if options.linear_skip:
        count += spec.lookback * horizon + horizon
    if spec.n_static:  # the embeddings; their vector joins every lookback step
        count += sum(size * dim for size, dim in zip(spec.static_sizes, spec.static_dims,
                                                     strict=True))
        n_inputs += spec.static_width
    targets, features, series = n_targets, n_inputs, 1
    if options.channel_independent:
        targets, features, series = 1, 1, n_targets
    per_step_head = units * targets * outputs + targets * outputs
    if setup == "many_to_one":
        count += _stack_parameters(cell, features, units, layers)
        width, out = units + horizon * n_future, horizon * targets * outputs
        count += width * out + out
    elif setup == "one_to_many":
        count += _stack_parameters(cell, features, units, layers)
        count += _stack_parameters(cell, units + n_future, units, layers) + per_step_head
    elif setup == "seq2seq":
        count += _stack_parameters(cell, features, units, layers)
        count += horizon * _STEP_EMBEDDING_DIM
        count += _stack_parameters(cell, n_future + _STEP_EMBEDDING_DIM, units, layers)
        count += per_step_head
    elif setup == "synced":
        count += _stack_parameters(cell, features, units, layers) + per_step_head
    else:  # segment: embedding w -> d, one recurrent layer d -> d, head d -> w(·Q)
        w = options.segment_length
        count += w * units + units + _recurrent_parameters(cell, units, units)
        count += units * w * outputs + w * outputs
        if n_future:  # SegmentCovariates: w·Fu -> d per output segment
            count += w * n_future * units + units
        if options.segment_decoder == "parallel":  # the learned queries
            segments, channels = max(horizon // w, 1), series * targets
            channel_dim = units // 2 if channels > 1 else 0
            count += segments * (units - channel_dim) + channels * channel_dim
    return int(count)


def check_model_size(setup: str, spec, options: ModelOptions | dict | None = None,
                     *, limit: int = MAX_PARAMETERS) -> int:
    """Refuses settings whose network would have more than ``limit`` weights.

    Called before the model is built, so ``units: 1000000000`` is a one-line error instead
    of TensorFlow running out of memory.

    Args:
        setup, spec, options: as for ``build_model``.
        limit: the most parameters allowed (``MAX_PARAMETERS``).

    Returns:
        The estimated parameter count.

    Raises:
        ModelError: above the limit; names the count, ``units`` and ``layers``.
    """
    options = ModelOptions.parse(options)
    count = estimate_parameters(setup, spec, options)
    if count > limit:
        raise ModelError(
            f"the {setup} model would have {count:,} parameters ({options.cell}, units="
            f"{options.units}, layers={options.layers}, lookback {spec.lookback}, horizon "
            f"{spec.horizon}), more than the limit of {limit:,}. Use fewer --units/--layers "
            "(YAML `model.units`, `model.layers`).")
    return count


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
        ModelError: more than ``MAX_PARAMETERS`` weights (``check_model_size``).

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
    n_inputs, n_targets, n_future = spec.n_inputs, spec.n_targets, spec.n_future
    if n_future and not setup_cls.SUPPORTS_FUTURE_COVARIATES:
        raise ConfigError(f"setup {setup!r} does not read future covariates; the spec has "
                          f"{n_future}. Use 'seq2seq' or drop the future covariates.")
    if n_inputs > n_targets + n_future and not setup_cls.SUPPORTS_PAST_COVARIATES:
        raise ConfigError(f"setup {setup!r} does not read past covariates.")
    if spec.n_static and not setup_cls.SUPPORTS_STATIC_COVARIATES:
        raise ConfigError(
            f"setup {setup!r} reads the targets alone, so it cannot use static covariates or "
            f"the id embedding ({list(spec.static_covariates)}): drop --static and "
            "--id-embedding (YAML `data.static`, `model.id_embedding`) or use another setup.")
    if spec.n_static and options.channel_independent:
        raise ConfigError(
            "channel_independent=True runs each target as its own univariate series, so it "
            "cannot read static covariates or the id embedding; drop --static/--id-embedding "
            "or set channel_independent=False.")
    if options.channel_independent and n_inputs != n_targets:
        raise ConfigError(
            "channel_independent=True runs each target as its own univariate series, so the "
            f"inputs must be the targets alone; this spec also has covariates "
            f"{list(spec.input_columns[n_targets:])}. Drop the covariates or set "
            "channel_independent=False."
        )
    check_model_size(setup, spec, options)  # before any variable is allocated
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)

    with _precision(options.precision):
        return _graph(setup_cls, setup, spec, options)


@contextlib.contextmanager
def _precision(precision: str):
    """Builds the layers made inside under the dtype policy of `precision`, then restores it.

    ``"bfloat16"`` is Keras' ``mixed_bfloat16``: variables in float32, computations in
    bfloat16. Each layer keeps its policy in its config, so a saved model loads as it was built.
    """
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _graph(setup_cls, setup: str, spec, options: ModelOptions) -> keras.Model:
    """The functional model of `build_model`, its arguments already checked.

    The instance normalisation, the linear skip and the denormalisation run in float32 at any
    precision: they add and scale values in the units of the series, which bfloat16's 8-bit
    mantissa would round to about 0.4 %.
    """
    lookback, horizon = spec.lookback, spec.horizon
    n_inputs, n_targets, n_future = spec.n_inputs, spec.n_targets, spec.n_future
    past = keras.Input((lookback, n_inputs), name="past")  # [B, L, F]
    future = keras.Input((horizon, n_future), name="future") if n_future else None  # [B, H, Fu]
    static = keras.Input((spec.n_static,), name="static") if spec.n_static else None  # [B, S]
    x = past
    if options.instance_norm != "none":
        x, loc, scale = InstanceNorm(options.instance_norm, n_targets, name="instance_norm",
                                     dtype="float32")(
            past
        )  # [B, L, F] -> [B, L, F], [B, 1, T], [B, 1, T]
    core_in, core_targets = x, n_targets
    if static is not None:
        vector = StaticEmbedding(spec.static_sizes, spec.static_dims,
                                 name="static_embedding")(static)  # [B, S] -> [B, E]
        core_in = WithStatic(n_inputs - n_future, name="with_static")(
            [x, vector])  # [B, L, F] -> [B, L, F + E], after the past covariates
    if options.channel_independent:
        core_in = ChannelsToBatch(name="channels_to_batch")(x)  # [B, L, C] -> [B·C, L, 1]
        core_targets = 1
    n_channels = n_targets if options.channel_independent else 1
    y = setup_cls(options, horizon, core_targets, n_channels=n_channels)(
        core_in, future)  # -> [B', H, T'(, Q)]
    if options.channel_independent:
        y = BatchToChannels(n_targets, name="batch_to_channels")(y)  # -> [B, H, C(, Q)]
    if options.linear_skip:
        y = LinearSkip(horizon, n_targets, name="linear_skip",
                       dtype="float32")([y, x])  # [B, H, T(, Q)]
    if options.instance_norm != "none":
        y = InstanceDenorm(name="instance_denorm",
                           dtype="float32")([y, loc, scale])  # [B, H, T(, Q)]
    if y.dtype != "float32":  # the loss and the forecast read float32
        y = keras.layers.Activation("linear", dtype="float32", name="output_float32")(y)
    inputs = [t for t in (past, future, static) if t is not None]
    return keras.Model(inputs if len(inputs) > 1 else past, y, name=setup)
