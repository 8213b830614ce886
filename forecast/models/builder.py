"""`build_model`: a setup plus its options and a window spec -> an uncompiled `keras.Model`.

The model is functional: inputs ``past`` (B, L, n_inputs) and, when the spec has future
covariates, ``future`` (B, H, n_future), in the order `forecast.data.make_dataset` yields
them; output (B, H, n_targets) or, with quantiles, (B, H, n_targets, n_quantiles). Around the
setup, in order: instance normalisation of the target channels, channel independence, the
setup, the linear shortcut, the inverse normalisation.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

import keras

from forecast.errors import ConfigError
from forecast.models.heads import LinearSkip, check_quantiles, pinball_loss
from forecast.models.normalization import (
    INSTANCE_NORMS,
    BatchToChannels,
    ChannelsToBatch,
    InstanceDenorm,
    InstanceNorm,
)
from forecast.models.setups import CELLS, get_setup, suggest


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


@dataclass(frozen=True)
class ModelOptions:
    """How a setup is built (everything but the setup and the window shape).

    Args:
        cell: ``"lstm"``, ``"peephole"`` or ``"gru"``.
        units: size of every recurrent layer.
        layers: stacked recurrent layers (in the encoder and in the decoder).
        dropout: rate of the Dropout after every recurrent layer, in [0, 1).
        quantiles: None for point forecasts, else strictly increasing levels in (0, 1).
        instance_norm: ``"none"``, ``"revin"`` (window mean/std and a learnable affine) or
            ``"last"`` (subtract the window's last value).
        channel_independent: run each target channel as its own univariate series through
            shared weights; only when the inputs are the targets alone.
        linear_skip: add a linear map lookback -> horizon of each target to the output.
        seed: when given, `keras.utils.set_random_seed(seed)` before the weights are made and
            the seed of the dropout layers.

    Raises:
        ConfigError: any invalid value, naming it and what is allowed.

    Example:
        >>> ModelOptions(cell="gru", units=32, quantiles=(0.1, 0.5, 0.9)).to_dict()["cell"]
        'gru'
    """

    cell: str = "lstm"
    units: int = 64
    layers: int = 1
    dropout: float = 0.0
    quantiles: tuple[float, ...] | None = None
    instance_norm: str = "none"
    channel_independent: bool = False
    linear_skip: bool = False
    seed: int | None = None

    def __post_init__(self):
        if self.cell not in CELLS:
            raise suggest("cell", self.cell, CELLS)
        _positive_int("units", self.units)
        _positive_int("layers", self.layers)
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0 <= d < 1:
            raise ConfigError(f"`dropout` must be a number in [0, 1). Received: dropout={d!r}")
        object.__setattr__(self, "dropout", float(d))
        if self.quantiles is not None:
            object.__setattr__(self, "quantiles", check_quantiles(self.quantiles))
        if self.instance_norm not in INSTANCE_NORMS:
            raise suggest("instance_norm", self.instance_norm, INSTANCE_NORMS)
        for name in ("channel_independent", "linear_skip"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"`{name}` must be True or False. Received: {name}={getattr(self, name)!r}"
                )
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, int)):
            raise ConfigError(f"`seed` must be an integer or None. Received: seed={self.seed!r}")

    def to_dict(self) -> dict:
        """Plain data for JSON (quantiles as a list)."""
        data = dataclasses.asdict(self)
        if self.quantiles is not None:
            data["quantiles"] = list(self.quantiles)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelOptions:
        """Inverse of `to_dict`.

        Raises:
            ConfigError: an unknown key (with the closest known one) or an invalid value.
        """
        cls.check_keys(data)
        return cls(**data)

    @classmethod
    def check_keys(cls, data) -> None:
        """Raises ConfigError for a key that is not an option, with the closest one."""
        known = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"unknown model option {key!r}; the options are {', '.join(known)}.{hint}"
                )

    def loss(self):
        """The training loss that fits these options: MSE, or the pinball loss."""
        if self.quantiles is None:
            return keras.losses.MeanSquaredError()
        return pinball_loss(self.quantiles)


def build_model(
    setup: str, spec, options: ModelOptions | dict | None = None, **kwargs
) -> keras.Model:
    """Builds the forecasting model of a setup for windows shaped by `spec`.

    Args:
        setup: ``"many_to_one"``, ``"one_to_many"``, ``"seq2seq"`` or ``"synced"``.
        spec: a `forecast.data.WindowSpec` (lookback, horizon, n_inputs, n_targets, n_future).
        options: a `ModelOptions` (or its `to_dict()`); keyword arguments (`cell`, `units`,
            `layers`, `dropout`, `quantiles`, `instance_norm`, `channel_independent`,
            `linear_skip`, `seed`) build one or override its fields.

    Returns:
        An uncompiled `keras.Model` named after the setup. Inputs: ``past`` (B, L, n_inputs)
        and, when ``spec.n_future > 0``, ``future`` (B, H, n_future), as a list in that order.
        Output: (B, H, n_targets) or (B, H, n_targets, len(quantiles)). Compile it with
        `options.loss()` (MSE or `pinball_loss(quantiles)`).

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
    if isinstance(options, dict):
        options = ModelOptions.from_dict(options)
    if kwargs:
        ModelOptions.check_keys(kwargs)
    options = ModelOptions(**kwargs) if options is None else dataclasses.replace(options, **kwargs)
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
    y = setup_cls(options, horizon, core_targets)(core_in, future)  # -> [B', H, T'(, Q)]
    if options.channel_independent:
        y = BatchToChannels(n_targets, name="batch_to_channels")(y)  # -> [B, H, C(, Q)]
    if options.linear_skip:
        y = LinearSkip(horizon, n_targets, name="linear_skip")([y, x])  # [B, H, T(, Q)]
    if options.instance_norm != "none":
        y = InstanceDenorm(name="instance_denorm")([y, loc, scale])  # [B, H, T(, Q)]
    inputs = [past, future] if future is not None else past
    return keras.Model(inputs, y, name=setup)
