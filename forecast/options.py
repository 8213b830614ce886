"""Every setting of a forecaster, declared once: pydantic models and the word lists they allow.

This module is the one source of truth for settings. The Python API (``Forecaster``), the
pipeline YAML (``forecast.pipelines.spec`` embeds these models) and the CLI (its option
defaults, choices and help come from the fields here) all read them from this module, so a
default changes in one place. It imports neither TensorFlow nor Keras nor MLflow: validating a
pipeline or printing ``forecast --help`` stays fast.

The models:

- ``ModelOptions``: how the network is built (cell, units, layers, instance norm, ...).
- ``TrainOptions``: how it is trained (epochs, learning rate, early stopping, seed, strategy).
- ``WindowOptions``: how far it forecasts and how much history it reads.
- ``FeatureOptions``: the setup, the calendar features and the scaler.
- ``ForecasterConfig``: all of the above for one ``Forecaster``.
- ``ResolvedSettings``: what a fitted forecaster actually used (lookback chosen from the
  frequency, season, seed, inputs): what gets logged and printed, never ``None``.

Defaults were chosen on validation data (the ETTh1 validation split, see
``pipelines/etth1.yaml``): a 32-unit many-to-one LSTM with last-value instance normalisation and
a linear skip from the lookback to the horizon. A global model (one network over many series,
an id column) replaces some of them with its own, chosen on M4 Hourly validation: see
``forecast.models.global_defaults`` (the one place that logic lives).

Every invalid value is a ``ConfigError`` whose message names the setting, what was received and
what is allowed (with the closest word for a misspelt one).
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from forecast.errors import ConfigError, shown

# -- the word lists, once ---------------------------------------------------------------------

#: how recurrent layers turn a lookback into a horizon (``forecast.models.setups``).
SETUPS = ("many_to_one", "one_to_many", "seq2seq", "synced", "segment")
#: our recurrent cells (``forecast.layers``).
CELLS = ("lstm", "peephole", "gru")
#: instance normalisation of each window (``forecast.models.normalization``).
INSTANCE_NORMS = ("none", "revin", "last")
#: how the segment setup decodes the horizon segments.
SEGMENT_DECODERS = ("parallel", "recurrent")
#: compute precisions of a network (``forecast.models.builder``).
PRECISIONS = ("float32", "bfloat16")
#: scalers fitted on the training part only (``forecast.data.scaling``).
SCALERS = ("standard", "minmax", "robust")
#: training losses (``forecast.training.fit``).
LOSSES = ("mse", "mae", "huber", "pinball")
#: what the blend's share is chosen by on the validation windows (``forecast.models.blend``):
#: the training loss, or a point metric the forecasts are judged by.
BLEND_METRICS = ("loss", "mse", "mae")
#: learning-rate schedules.
LR_SCHEDULES = ("plateau", "cosine", "decay", "constant")
#: ``tf.distribute`` strategies (``forecast.training.distributed``).
STRATEGIES = ("default", "mirrored", "multi_worker")
#: point metrics shown by the CLI and compared by promotion (lower is better).
POINT_METRICS = ("mae", "rmse", "mape", "smape", "mase")
#: metrics a pipeline may report.
METRICS = (*POINT_METRICS, "pinball", "coverage")
#: metrics promotion can compare; all are errors (lower is better).
PROMOTION_METRICS = (*POINT_METRICS, "mse")
#: the baselines every model is judged against (``forecast.models.baselines``).
BASELINES = ("naive", "seasonal_naive", "linear")
#: the kind of a forecaster (and of a registered version) that holds the trained network; a
#: baseline champion's kind is the baseline's name.
NETWORK = "network"
#: how ``load_csv`` fills short gaps and missing cells.
FILLS = ("interpolate", "ffill", "zero", "error")
#: what ``load_csv`` does with duplicate timestamps.
DUPLICATES = ("error", "first", "last", "mean")
#: rolling-origin backtest layouts.
BACKTEST_MODES = ("expanding", "sliding")


def suggest(setting: str, value, choices) -> ConfigError:
    """A ConfigError naming the received value, the valid choices and the closest one.

    Example:
        >>> str(suggest("cell", "lstn", CELLS))
        "unknown cell 'lstn'; choose one of 'lstm', 'peephole', 'gru'. Did you mean 'lstm'?"
    """
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"unknown {setting} {shown(value)}; choose one of {', '.join(map(repr, choices))}.{hint}"
    )


def _word(setting: str, choices: tuple[str, ...]):
    """A before-validator: a word from ``choices``, or the ``suggest`` message."""

    def check(value):
        if value not in choices:
            raise ValueError(str(suggest(setting, value, choices)))
        return value

    return BeforeValidator(check)


def _positive_int(name: str, *, none: str | None = None):
    """A before-validator with Keras's message: "`units` must be a positive integer...".

    Strict: ``True``, ``2.0`` and ``"2"`` are refused (a YAML ``horizon: true`` is not 1); any
    integer type (``numpy.int64`` too) is taken as ``int``. ``none``: None is allowed, and means
    this (said in the message).
    """

    def check(value):
        if value is None and none is not None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            allowed = f" or None ({none})" if none is not None else ""
            raise ValueError(f"`{name}` must be a positive integer{allowed}. "
                             f"Received: {name}={shown(value)}")
        return int(value)

    return BeforeValidator(check)


def _strict_int(name: str, allowed: str = "an integer or None"):
    """A before-validator: an integer (or None), never a bool (``seed: true`` is not seed 1)."""

    def check(value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"`{name}` must be {allowed}. Received: {name}={shown(value)}")
        return int(value)

    return BeforeValidator(check)


def _number(name: str):
    """A before-validator: a number, never a bool (``learning_rate: true`` is not 1.0).

    Infinity and NaN are refused by the models' ``allow_inf_nan=False``.
    """

    def check(value):
        if value is None or isinstance(value, str):
            return value  # None where allowed; "1e-3" (YAML 1.1 reads it as text) is parsed
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"`{name}` must be a number. Received: {name}={shown(value)}")
        if not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number. Received: {name}={shown(value)}")
        return value

    return BeforeValidator(check)


def _strict_bool(name: str, *, optional: bool = False):
    def check(value):
        if value is None and optional:
            return None
        if not isinstance(value, bool):
            allowed = " or None" if optional else ""
            raise ValueError(f"`{name}` must be True or False{allowed}. "
                             f"Received: {name}={shown(value)}")
        return value

    return BeforeValidator(check)


#: what MLflow accepts as a registered model name, and what ``models:/NAME@alias`` can carry:
#: letters, digits, ``_``, ``-``, ``.`` and inner spaces, starting with a letter or digit.
_MODEL_NAME = re.compile(r"[^\W_][\w.\- ]*", re.UNICODE)
#: the longest registered model name (MLflow's database column).
MAX_MODEL_NAME = 256
#: what a registered model name may hold, for messages.
MODEL_NAME_RULE = ("Use letters, digits, '_', '-', '.' and spaces, starting with a letter or "
                   "digit, e.g. etth1-ot")


def model_name_problem(name) -> str | None:
    """What is wrong with ``name`` as an MLflow registered model name, or None.

    MLflow refuses ``/`` and ``:`` and names that are not their own normalised path (``..``,
    ``a//b``); ``@`` would break ``models:/NAME@alias``. Checked up front so that a bad name
    fails before training, not after it.

    Example:
        >>> model_name_problem("etth1-ot") is None
        True
        >>> model_name_problem("drill/ot:../x")
        "'drill/ot:../x' holds '/', ':'"
    """
    if not isinstance(name, str):
        return f"{shown(name)} is not text"
    if not name.strip():
        return "it is empty"
    if len(name) > MAX_MODEL_NAME:
        return f"it is {len(name)} characters long (at most {MAX_MODEL_NAME})"
    bad = sorted({c for c in name if not (c.isalnum() or c in "_-. ")}, key=name.index)
    if bad:
        return f"{shown(name)} holds {', '.join(map(repr, bad[:10]))}"
    if name != name.strip():
        return f"{shown(name)} starts or ends with a space"
    if ".." in name:
        return f"{shown(name)} holds '..'"
    if not _MODEL_NAME.fullmatch(name):
        return f"{shown(name)} does not start with a letter or digit"
    return None


def check_model_name(name, where: str) -> str | None:
    """Refuses a registered model name MLflow would refuse (after training), before training.

    Args:
        name: the name.
        where: the flag or key it came from, for the message (``"--register"``,
            ``"register.name"``).

    Returns:
        ``name`` (None, no name given, passes).

    Raises:
        ConfigError: the name names ``where``, what is wrong and what is allowed.
    """
    if name is None:
        return None
    problem = model_name_problem(name)
    if problem is not None:
        raise ConfigError(f"{where}: not a valid registered model name: {problem}. "
                          f"{MODEL_NAME_RULE}.")
    return name


def check_quantiles(quantiles) -> tuple[float, ...]:
    """Validates a quantile list and returns it as a tuple of floats.

    Raises:
        ConfigError: empty, not numbers, outside (0, 1), or not strictly increasing.

    Example:
        >>> check_quantiles([0.1, 0.5, 0.9])
        (0.1, 0.5, 0.9)
    """
    try:
        values = tuple(float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise ConfigError(
            f"`quantiles` must be a list of numbers in (0, 1). "
            f"Received: quantiles={shown(quantiles)}"
        ) from None
    if not values:
        raise ConfigError("`quantiles` must hold at least one value, e.g. (0.1, 0.5, 0.9). "
                          "Received: quantiles=()")
    if any(isinstance(q, bool) for q in quantiles):
        raise ConfigError(f"`quantiles` must be numbers in (0, 1), not True/False. "
                          f"Received: quantiles={shown(list(quantiles))}")
    outside = [q for q in values if not (0.0 < q < 1.0) or math.isnan(q)]
    if outside:
        raise ConfigError(
            f"`quantiles` must lie strictly between 0 and 1; {shown(outside)} do not. "
            f"Received: quantiles={shown(list(values))}"
        )
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ConfigError(
            "`quantiles` must be strictly increasing, e.g. (0.1, 0.5, 0.9). "
            f"Received: quantiles={shown(list(values))}"
        )
    return values


def _quantiles(value):
    if value is None:
        return None
    try:
        return check_quantiles(value)
    except ConfigError as exc:  # -> pydantic's ValueError: one message per setting
        raise ValueError(str(exc)) from None


Quantiles = Annotated[tuple[float, ...] | None, BeforeValidator(_quantiles)]


# -- error messages ---------------------------------------------------------------------------


def _fields_at(model: type[BaseModel], loc) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def describe_errors(exc: ValidationError, model: type[BaseModel], what: str) -> str:
    """One line naming every invalid setting of ``exc`` (raised validating ``model``).

    An unknown key names the closest known one: ``unknown model option 'unitz'; the options
    are cell, units, ... Did you mean 'units'?``.
    """
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "extra_forbidden":
            key, known = str(loc[-1]), _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(key[:100], known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            group = str(loc[-2]) if len(loc) > 1 else what
            problems.append(f"unknown {group} option {shown(key)}; the options are "
                            f"{', '.join(known)}.{hint}")
            continue
        message = err["msg"].removeprefix("Value error, ").rstrip(".")
        place = ".".join(str(p) for p in loc)
        if err["type"] != "value_error" and "input" in err and not isinstance(err["input"], dict):
            message += f". Received: {shown(err['input'])}"
        named = loc and f"`{loc[-1]}`" in message or f"unknown {loc[-1] if loc else ''}" in message
        # a message naming its setting needs no place, unless the setting is in a group
        problems.append(f"{place}: {message}" if place and (len(loc) > 1 or not named)
                        else message)
    return "; ".join(problems)


class InvalidSettings(ConfigError, ValueError):
    """A settings model constructed with a bad value: a ``ConfigError`` with ``parse``'s message,
    and still a ``ValueError`` as pydantic's ``ValidationError`` was (code catching that stays
    right)."""


class _Settings(BaseModel):
    """Base of the settings: unknown keys are an error; ``parse`` makes bad values a
    ``ConfigError`` (direct construction raises pydantic's ``ValidationError``)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    #: the word used for this group in messages ("model", "train", ...)
    WHAT: ClassVar[str] = "setting"

    def __init__(self, **data):
        """Validates ``data``; a bad value is a ``ConfigError`` (``ForecasterConfig(horizon=0)``
        is refused with the message ``parse`` gives)."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidSettings(describe_errors(exc, type(self), self.WHAT)) from None

    # nested sections are validated by pydantic itself (their errors keep their place)
    __init__.__pydantic_base_init__ = True

    @classmethod
    def parse(cls, data):
        """An instance from an instance or a mapping of its fields.

        Raises:
            ConfigError: an unknown key (with the closest known one) or an invalid value.
        """
        if isinstance(data, cls):
            return data
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.WHAT} settings must be a mapping of their fields. "
                              f"Received: {shown(data)}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc, cls, cls.WHAT)) from None

    @classmethod
    def default(cls, name: str):
        """The default of field ``name`` (what the CLI shows in ``--help``)."""
        return cls.model_fields[name].get_default(call_default_factory=True)

    @classmethod
    def help(cls, name: str) -> str:
        """The documentation of field ``name`` (the CLI option's help)."""
        return cls.model_fields[name].description or name


# -- the network ------------------------------------------------------------------------------


class ModelOptions(_Settings):
    """How a setup is built (everything but the setup and the window shape).

    Example:
        >>> ModelOptions(cell="gru", units=16).to_dict()["cell"]
        'gru'
    """

    WHAT: ClassVar[str] = "model"
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)

    cell: Annotated[str, _word("cell", CELLS)] = Field(
        "lstm", description="Recurrent cell: lstm, peephole (LSTM with peepholes) or gru.")
    units: Annotated[int, _positive_int("units")] = Field(
        32, description="Units of every recurrent layer (the segment setup's embedding size).")
    layers: Annotated[int, _positive_int("layers")] = Field(
        1, description="Stacked recurrent layers (in the encoder and in the decoder).")
    dropout: float = Field(0.0, description="Dropout after every recurrent layer, in [0, 1).")
    quantiles: Quantiles = Field(
        None, description="Quantile levels for probabilistic forecasts (None: point forecasts).")
    instance_norm: Annotated[str, _word("instance_norm", INSTANCE_NORMS)] = Field(
        "last", description="Instance normalisation of each window: none, revin (mean/std and "
                             "a learned affine) or last (subtract the last value); chosen on "
                             "the ETTh1 validation split.")
    channel_independent: Annotated[bool, _strict_bool("channel_independent")] = Field(
        False, description="Run each target channel as its own univariate series through shared "
                           "weights (only when the inputs are the targets alone).")
    linear_skip: Annotated[bool, _strict_bool("linear_skip")] = Field(
        True, description="Add a linear map from the lookback to the horizon to the output.")
    seed: int | None = Field(
        None, description="Seed of the weights and dropout; None: the training seed.")
    segment_length: Annotated[int, _positive_int("segment_length")] = Field(
        24, description="Segment setup: steps per segment w (lookback and horizon multiples).")
    segment_decoder: Annotated[str, _word("segment_decoder", SEGMENT_DECODERS)] = Field(
        "parallel", description="Segment setup: decode all horizon segments at once "
                                "(parallel) or one after another (recurrent).")
    id_embedding: int = Field(
        0, description="Global models: size of a learned embedding of the series id fed to "
                       "the network (known ids only); 0 (default) leaves it out.")
    precision: Annotated[str, _word("precision", PRECISIONS)] = Field(
        "float32", description="Compute precision: float32, or bfloat16 (mixed: weights, "
                               "normalisation and output in float32, the network's products in "
                               "bfloat16; faster on CPUs with AMX or AVX-512 BF16, slower on "
                               "CPUs without).")

    @field_validator("dropout", mode="before")
    @classmethod
    def _dropout(cls, value):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ValueError(f"`dropout` must be a number in [0, 1). "
                             f"Received: dropout={shown(value)}")
        return float(value)

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"`seed` must be an integer or None. Received: seed={shown(value)}")
        return value

    @field_validator("id_embedding", mode="before")
    @classmethod
    def _id_embedding(cls, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"`id_embedding` must be a whole number >= 0 (0: off). "
                             f"Received: id_embedding={shown(value)}")
        return int(value)

    def to_dict(self) -> dict:
        """Plain data for JSON (quantiles as a list)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict) -> ModelOptions:
        """Inverse of ``to_dict``.

        Raises:
            ConfigError: an unknown key (with the closest known one) or an invalid value.
        """
        return cls.parse(data)

    def replace(self, **changes) -> ModelOptions:
        """A validated copy with ``changes`` applied.

        Raises:
            ConfigError: an unknown key or an invalid value.
        """
        return type(self).parse({**self.model_dump(), **changes})


# -- training ---------------------------------------------------------------------------------


class TrainOptions(_Settings):
    """How ``forecast.training.fit`` trains a model.

    ``seed`` seeds Python, NumPy and TensorFlow at the start of ``fit``; weights are initialised
    when the model is built, so ``Forecaster`` seeds before building too. ``deterministic`` also
    calls ``tf.config.experimental.enable_op_determinism()`` (process-wide, slower; needed for
    bitwise-equal runs on a GPU). ``strategy``: ``default`` one device; ``mirrored`` every local
    GPU (or logical CPU device); ``multi_worker`` the machines in ``TF_CONFIG``; ``batch_size``
    stays the global batch, split among the replicas (see ``forecast.training.distributed``).
    """

    WHAT: ClassVar[str] = "train"

    epochs: Annotated[int, _positive_int("epochs")] = Field(
        20, description="Most passes over the training data (early stopping on the validation "
                        "split may end sooner).")
    learning_rate: Annotated[float, _number("learning_rate")] = Field(
        1e-3, gt=0, description="Adam's (initial) learning rate.")
    lr_schedule: Literal[LR_SCHEDULES] = Field(
        "plateau", description="plateau halves the rate when the validation loss stalls "
                               "(patience max(1, patience // 2)); cosine decays it to 0; "
                               "decay keeps it for 4 epochs, then multiplies it by 0.9 per "
                               "epoch (the schedule of SegRNN's and the LTSF papers' scripts); "
                               "constant.")
    loss: Literal[LOSSES] = Field(
        "mse", description="mse, mae, huber or pinball (quantile models; needs quantiles).")
    quantiles: Quantiles = Field(
        None, description="Quantile levels of the model's last axis, for loss=pinball.")
    patience: Annotated[int | None, _positive_int("patience", none="no early stopping")] = Field(
        5, description="Epochs without improvement before early stopping (best weights "
                             "restored); None disables it.")
    min_delta: Annotated[float, _number("min_delta")] = Field(
        0.0, ge=0, description="Least change counted as improvement.")
    windows_per_series: Annotated[int | None, _positive_int(
        "windows_per_series", none="every window")] = Field(
        None, description="Balanced sampling for a global model: train on at most this many "
                          "windows of each series, evenly spaced over its history (its last "
                          "window included), so long series do not drown short ones; None: "
                          "every window.")
    checkpoint_dir: Path | None = Field(
        None, description="Keep best.keras and backup/ (resume a killed run) here.")
    seed: Annotated[int | None, _strict_int("seed")] = Field(
        42, description="Random seed (None: a fresh one, recorded).")
    deterministic: Annotated[bool, _strict_bool("deterministic")] = Field(
        False, description="Bitwise-reproducible ops (slower).")
    verbose: Annotated[Literal[0, 1, 2], _strict_int("verbose", "0, 1 or 2")] = Field(
        2, description="Keras output: 0 silent, 1 progress bar, 2 one line per epoch.")
    clipnorm: Annotated[float | None, _number("clipnorm")] = Field(
        None, gt=0, description="Clip each gradient to this norm.")
    huber_delta: Annotated[float, _number("huber_delta")] = Field(
        1.0, gt=0, description="The Huber loss's switch point.")
    blend_linear: Annotated[bool | None, _strict_bool("blend_linear", optional=True)] = Field(
        None, description="After training, blend the network with the linear baseline: "
                          "a x network + (1 - a) x linear, the share a in 0, 0.05, ..., 1 "
                          "chosen on the validation windows by the training loss, saved with "
                          "the model. None (default): blend when there are validation windows; "
                          "true: blend, and refuse to train without them; false: never.")
    ensemble: Annotated[int, _positive_int("ensemble")] = Field(
        1, description="Networks trained, with the seeds seed, seed + 1, ...; the model "
                       "forecasts their mean (before any blend with the linear baseline): "
                       "steadier and usually a little more accurate than one, at that many "
                       "times the training time.")
    blend_metric: Literal[BLEND_METRICS] = Field(
        "loss", description="What the blend's share a minimises on the validation windows: "
                            "loss (the training loss), or mse or mae when the forecasts are "
                            "judged by another metric than the one the network trains on "
                            "(point forecasts only).")
    strategy: Literal[STRATEGIES] = Field(
        "default", description="default (one device), mirrored (every local GPU, or CPU "
                               "device) or multi_worker (the cluster in TF_CONFIG; the chief "
                               "tracks and saves).")

    @model_validator(mode="after")
    def _pinball_needs_quantiles(self):
        if self.loss == "pinball" and not self.quantiles:
            raise ValueError(
                'loss="pinball" needs the quantile levels: set quantiles, e.g. [0.1, 0.5, 0.9].'
            )
        if self.ensemble > 1 and self.checkpoint_dir is not None:
            raise ValueError(
                f"ensemble={self.ensemble} trains several networks, and checkpoint_dir keeps and "
                "resumes one: use ensemble=1 with checkpoint_dir, or leave checkpoint_dir out.")
        if self.loss == "pinball" and self.blend_metric != "loss":
            raise ValueError(
                f'blend_metric="{self.blend_metric}" scores point forecasts, and loss="pinball" '
                'trains quantiles: use blend_metric="loss".')
        return self


# -- the window and the features ---------------------------------------------------------------


class WindowOptions(_Settings):
    """How far the model forecasts and how much history it reads."""

    WHAT: ClassVar[str] = "window"

    horizon: Annotated[int, _positive_int("horizon")] = Field(description="Steps to forecast.")
    lookback: Annotated[int | None, _positive_int("lookback",
                                                  none="chosen from the frequency")] = Field(
        None, description="Steps of history read; None picks one from the frequency "
                                "(two weeks of hourly data, else two seasons; at least two "
                                "horizons, at most a quarter of the training rows).")


class FeatureOptions(_Settings):
    """Which setup reads the windows, and how the columns are prepared for it."""

    WHAT: ClassVar[str] = "model"

    setup: Annotated[str, _word("setup", SETUPS)] = Field(
        "many_to_one", description="many_to_one, one_to_many, seq2seq, synced or segment.")
    calendar: Annotated[bool | None, _strict_bool("calendar", optional=True)] = Field(
        None, description="Calendar features (hour, weekday, month as sin/cos) as known-future "
                          "inputs; None: on when the setup reads known-future inputs (all but "
                          "segment).")
    scaler: Literal[SCALERS] = Field(
        "standard", description="standard, minmax or robust, fitted on the training part only.")


def _column_names(name: str):
    """A before-validator: a list of distinct, non-empty column names (one name is a list of
    one)."""

    def check(value):
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(
                isinstance(v, str) and v.strip() for v in value):
            raise ValueError(f"`{name}` must be a list of column names. "
                             f"Received: {name}={shown(value)}")
        repeated = sorted({v for v in value if list(value).count(v) > 1})
        if repeated:
            raise ValueError(f"`{name}` names {repeated} more than once; list each column once.")
        return list(value)

    return BeforeValidator(check)


class CovariateOptions(_Settings):
    """Covariates the user supplies beyond the past covariates (``data.covariates``)."""

    WHAT: ClassVar[str] = "data"

    future_covariates: Annotated[list[str], _column_names("future_covariates")] = Field(
        default_factory=list,
        description="Columns known ahead (prices, promotions, holidays): read over the lookback "
                    "and over the horizon; at predict time their values come as the rows after "
                    "the history whose target cells are empty (CLI --future-covariate).")
    static: Annotated[list[str], _column_names("static")] = Field(
        default_factory=list,
        description="Per-series columns of a global model (category, region, size), constant "
                    "within each series: text is integer-coded and embedded, numbers are "
                    "scaled (CLI --static).")


class BatchOptions(_Settings):
    """The batch of windows per training step."""

    WHAT: ClassVar[str] = "train"

    batch_size: Annotated[int, _positive_int("batch_size")] = Field(
        32, description="Windows per batch.")


class ForecasterConfig(WindowOptions, FeatureOptions, CovariateOptions, BatchOptions):
    """Everything that decides a forecaster, as data (unknown keys are an error).

    Example:
        >>> ForecasterConfig(horizon=24, model={"units": 16}).model.units
        16
    """

    WHAT: ClassVar[str] = "forecaster"

    model: ModelOptions = Field(default_factory=ModelOptions,
                                description="How the network is built.")
    train: TrainOptions = Field(default_factory=TrainOptions,
                                description="How it is trained.")

    @model_validator(mode="after")
    def _pinball_needs_quantile_outputs(self):
        # the loss reads a quantile axis only the model's quantile head makes; caught here, not
        # as a shape error in the first training step
        model, train = self.model.quantiles, self.train.quantiles
        if self.train.loss == "pinball" and model is None:
            raise ValueError(
                'train.loss "pinball" trains quantile outputs and the model has none: set '
                "model.quantiles (--quantile 0.1 --quantile 0.5 --quantile 0.9), which also "
                "picks the pinball loss, or choose another train.loss.")
        if model is not None and train is not None and tuple(model) != tuple(train):
            raise ValueError(
                f"train.quantiles {list(train)} differ from model.quantiles {list(model)}, the "
                "levels of the model's outputs: drop train.quantiles (model.quantiles sets "
                "them).")
        return self


class PromotionOptions(_Settings):
    """How a registered model is judged against the champion and the baselines
    (``forecast.evaluation.promotion``)."""

    WHAT: ClassVar[str] = "register"

    promotion_metric: Literal[PROMOTION_METRICS] = Field(
        "mase", description="Metric the promotion backtest compares (lower wins).")
    promotion_folds: Annotated[int, _positive_int("promotion_folds")] = Field(
        3, description="Rolling-origin folds of the promotion backtest.")
    promotion_epochs: Annotated[int | None, _positive_int("promotion_epochs",
                                                          none="the training epochs")] = Field(
        None, description="Override the epochs in the promotion backtest (faster).")
    allow_worse_than_baseline: Annotated[bool, _strict_bool("allow_worse_than_baseline")] = Field(
        False, description="Promote a model that beats the champion even when a baseline beats "
                           "it (otherwise the champion is never worse than a baseline).")


def parse_config(data: dict | ForecasterConfig) -> ForecasterConfig:
    """Validates a forecaster configuration.

    Raises:
        ConfigError: one message naming each invalid setting.
    """
    if isinstance(data, ForecasterConfig):
        return data
    try:
        return ForecasterConfig.parse(data)
    except ConfigError as exc:
        raise ConfigError(f"invalid forecaster settings: {exc}") from None


class ResolvedSettings(BaseModel):
    """What a fitted forecaster actually used: the config with nothing left to choose.

    Attributes:
        config: the ``ForecasterConfig`` with ``lookback``, ``train.seed`` and ``model.seed``
            filled in.
        freq: the series' frequency (pandas alias).
        season: the seasonal period used by MASE and the seasonal-naive baseline.
        n_series: series trained on.
        targets, past_covariates, future_covariates: the model's inputs.
        lookback_reason: why this lookback, in words ("two weeks of hourly data").
    """

    model_config = ConfigDict(extra="forbid")

    config: ForecasterConfig
    freq: str | None
    season: int
    n_series: int = 1
    targets: list[str]
    past_covariates: list[str] = Field(default_factory=list)
    future_covariates: list[str] = Field(default_factory=list)
    lookback_reason: str

    def summary(self) -> str:
        """One line: what was chosen and why."""
        config = self.config
        return (f"lookback {config.lookback} = {self.lookback_reason}; horizon "
                f"{config.horizon}, season {self.season}, {config.setup} {config.model.cell} "
                f"{config.model.units} units, seed {config.train.seed}")

    def flat(self) -> dict:
        """The settings as JSON-ready data, the config's fields first (what ``--json``,
        MLflow params and ``config.yaml`` hold)."""
        data = self.model_dump(mode="json")
        return {**data.pop("config"), **data}
