"""What `forecast tune` searches, as data: the search space and the tune settings.

A search space maps a tunable setting's name to how it varies::

    units: {kind: categorical, choices: [16, 32, 64]}
    layers: {kind: int, low: 1, high: 2}
    dropout: {kind: float, low: 0.0, high: 0.3}
    learning_rate: {kind: log_float, low: 0.0001, high: 0.01}
    lookback_multiple: [2, 4, 7, 14]          # a list is short for a categorical

Every name is a setting of ``forecast.options`` (``TUNABLE`` says which), so each value the
search can propose is checked, when the space is read, by the same validators as the setting
itself (``units: {kind: int, low: 0, high: 8}`` is refused as ``units: 0`` would be).
``lookback_multiple`` is the lookback in horizons (``lookback = lookback_multiple * horizon``).

``default_space(setup, horizon, train_rows)`` is the space searched when nothing is said: the
network's size, dropout, learning rate and lookback, and the segment length for the segment
setup. ``SearchSpace`` (YAML ``tune.space``, ``--space NAME=VALUE``) changes it by name: an
entry replaces the default one, ``null`` leaves the setting out of the search (its configured
value is used), and ``default_space: false`` searches only the entries given.

``TuneOptions`` holds the other settings of a search (trials, timeout, study, storage, metric,
seed, pruning). This module imports neither TensorFlow nor Optuna: a pipeline file is validated
without them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecast.errors import ConfigError, shown
from forecast.options import (
    PROMOTION_METRICS,
    BatchOptions,
    ForecasterConfig,
    ModelOptions,
    TrainOptions,
    WindowOptions,
    _number,
    _positive_int,
    _Settings,
    _strict_bool,
    _strict_int,
    _word,
    parse_config,
    suggest,
)

#: how a parameter varies: an integer range, a float range (uniform or on a log scale), or a
#: list of choices.
PARAM_KINDS = ("int", "float", "log_float", "categorical")


@dataclass(frozen=True)
class Tunable:
    """A setting the search can vary.

    Attributes:
        path: where it lives in ``ForecasterConfig`` (``("model", "units")``); ``lookback_multiple``
            sets ``("lookback",)`` to ``value * horizon``.
        kind: ``int``, ``float``, ``word`` or ``bool`` (which parameter kinds fit it).
        options: the settings model whose validator checks each value.
    """

    path: tuple[str, ...]
    kind: str
    options: type[BaseModel] | None


#: every setting the search can vary, by the name used in ``tune.space``.
TUNABLE: dict[str, Tunable] = {
    "units": Tunable(("model", "units"), "int", ModelOptions),
    "layers": Tunable(("model", "layers"), "int", ModelOptions),
    "dropout": Tunable(("model", "dropout"), "float", ModelOptions),
    "cell": Tunable(("model", "cell"), "word", ModelOptions),
    "instance_norm": Tunable(("model", "instance_norm"), "word", ModelOptions),
    "linear_skip": Tunable(("model", "linear_skip"), "bool", ModelOptions),
    "segment_length": Tunable(("model", "segment_length"), "int", ModelOptions),
    "segment_decoder": Tunable(("model", "segment_decoder"), "word", ModelOptions),
    "learning_rate": Tunable(("train", "learning_rate"), "float", TrainOptions),
    "clipnorm": Tunable(("train", "clipnorm"), "float", TrainOptions),
    "batch_size": Tunable(("batch_size",), "int", BatchOptions),
    "lookback": Tunable(("lookback",), "int", WindowOptions),
    "lookback_multiple": Tunable(("lookback",), "int", None),
}

#: which parameter kinds each kind of setting takes.
_KINDS_FOR = {"int": ("int", "categorical"), "float": ("float", "log_float", "categorical"),
              "word": ("categorical",), "bool": ("categorical",)}


def _scalar(value) -> bool:
    return value is None or isinstance(value, str | bool | numbers.Real)


class Param(BaseModel):
    """How one setting varies in the search.

    ``int``/``float``/``log_float`` take ``low`` and ``high`` (inclusive; ``step`` optional for
    ``int`` and ``float``); ``categorical`` takes ``choices``. A list stands for a categorical.

    Example:
        >>> Param.model_validate([16, 32]).kind
        'categorical'
        >>> Param(kind="log_float", low=1e-4, high=1e-2).values()
        [0.0001, 0.01]
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    kind: Annotated[str, _word("kind", PARAM_KINDS)] = Field(
        description="int, float, log_float (searched on a log scale) or categorical.")
    low: Annotated[float | None, _number("low")] = Field(None, description="Lowest value.")
    high: Annotated[float | None, _number("high")] = Field(None, description="Highest value.")
    step: Annotated[float | None, _number("step")] = Field(
        None, gt=0, description="Spacing of the values (int and float; int default 1).")
    choices: list[Any] | None = Field(None, description="The values of a categorical.")

    @model_validator(mode="before")
    @classmethod
    def _list_is_categorical(cls, data):
        if isinstance(data, list | tuple):
            return {"kind": "categorical", "choices": list(data)}
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "categorical":
            if self.low is not None or self.high is not None or self.step is not None:
                raise ValueError("a categorical takes `choices` only, not low/high/step. "
                                 f"Received: low={self.low}, high={self.high}, step={self.step}")
            if not self.choices:
                raise ValueError("a categorical needs `choices`: a non-empty list, e.g. "
                                 "[16, 32, 64]")
            bad = [c for c in self.choices if not _scalar(c)]
            if bad:
                raise ValueError(f"choices must be numbers, words or true/false. Received: "
                                 f"{shown(bad)}")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices must differ. Received: {shown(self.choices)}")
            return self
        if self.choices is not None:
            raise ValueError(f"kind {self.kind} takes low and high, not choices (use kind "
                             "categorical for a list)")
        if self.low is None or self.high is None:
            raise ValueError(f"kind {self.kind} needs both low and high. Received: "
                             f"low={self.low}, high={self.high}")
        if self.low > self.high:
            raise ValueError(f"low must not be above high. Received: low={self.low:g}, "
                             f"high={self.high:g}")
        if self.kind == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and value != int(value):
                    raise ValueError(f"kind int needs whole numbers. Received: {name}={value:g}")
        if self.kind == "log_float":
            if self.low <= 0:
                raise ValueError(f"kind log_float needs low > 0 (a log scale). Received: "
                                 f"low={self.low:g}")
            if self.step is not None:
                raise ValueError("kind log_float takes no step")
        return self

    def values(self) -> list:
        """The values to check against the setting: every choice, or the two ends."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]

    def contains(self, value) -> bool:
        """Whether ``value`` is one the search can propose."""
        if self.kind == "categorical":
            return any(type(value) is type(c) and value == c for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.kind == "int" and value != int(value):
            return False
        step = self.step or (1 if self.kind == "int" else None)
        return step is None or math.isclose((value - self.low) / step,
                                            round((value - self.low) / step), abs_tol=1e-9)

    def suggest(self, trial, name: str):
        """The value an Optuna ``trial`` proposes for ``name``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high),
                                     step=int(self.step or 1))
        if self.kind == "log_float":
            return trial.suggest_float(name, self.low, self.high, log=True)
        return trial.suggest_float(name, self.low, self.high, step=self.step)

    def describe(self) -> str:
        """One phrase: ``int 1..2``, ``log_float 0.0001..0.01``, ``[16, 32, 64]``."""
        if self.kind == "categorical":
            return shown(list(self.choices))
        step = f" step {self.step:g}" if self.step else ""
        return f"{self.kind} {self.low:g}..{self.high:g}{step}"


def check_value(name: str, value) -> None:
    """Checks one value of setting ``name`` with that setting's own validator.

    Raises:
        ValueError: the setting's message (``` `units` must be a positive integer...```).
    """
    tunable = TUNABLE[name]
    if name == "lookback_multiple":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"`lookback_multiple` must be a positive integer (the lookback in "
                             f"horizons). Received: lookback_multiple={shown(value)}")
        return
    field = tunable.path[-1]
    data = {field: value}
    if tunable.options is WindowOptions:
        data["horizon"] = 1
    try:
        tunable.options.parse(data)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class SearchSpace(BaseModel):
    """Changes to the default search space, by setting name (YAML ``tune.space``).

    A field left out keeps the default entry; a ``Param`` replaces it; ``null`` removes the
    setting from the search. Only the names of ``TUNABLE`` are accepted (a misspelt one names
    the closest), and every value an entry can propose is checked by the setting's validator.

    Example:
        >>> SearchSpace.model_validate({"units": [4, 8], "dropout": None}).changes()
        {'units': Param(kind='categorical', ...), 'dropout': None}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    units: Param | None = None
    layers: Param | None = None
    dropout: Param | None = None
    cell: Param | None = None
    instance_norm: Param | None = None
    linear_skip: Param | None = None
    segment_length: Param | None = None
    segment_decoder: Param | None = None
    learning_rate: Param | None = None
    clipnorm: Param | None = None
    batch_size: Param | None = None
    lookback: Param | None = None
    lookback_multiple: Param | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _fits_the_setting(cls, param: Param | None, info):
        if param is None:
            return None
        name = info.field_name
        tunable = TUNABLE[name]
        allowed = _KINDS_FOR[tunable.kind]
        if param.kind not in allowed:
            raise ValueError(f"{name} is a{'n' if tunable.kind == 'int' else ''} "
                             f"{tunable.kind} setting: use kind {' or '.join(allowed)}. "
                             f"Received: kind={param.kind}")
        if tunable.kind == "int" and param.kind == "categorical":
            bad = [c for c in param.choices
                   if isinstance(c, bool) or not isinstance(c, numbers.Integral)]
            if bad:
                raise ValueError(f"{name} takes whole numbers. Received: choices="
                                 f"{shown(param.choices)}")
        for value in param.values():
            check_value(name, value)
        return param

    @model_validator(mode="after")
    def _one_lookback(self):
        given = self.model_fields_set
        if {"lookback", "lookback_multiple"} <= given and self.lookback and \
                self.lookback_multiple:
            raise ValueError("give lookback or lookback_multiple, not both: both set the "
                             "lookback")
        return self

    def changes(self) -> dict[str, Param | None]:
        """The entries given, in the order of ``TUNABLE`` (None: removed from the search)."""
        return {name: getattr(self, name) for name in TUNABLE if name in self.model_fields_set}


def parse_space(data, where: str = "tune.space") -> SearchSpace:
    """A ``SearchSpace`` from a mapping (or a ``SearchSpace``).

    Raises:
        ConfigError: every problem, each naming its key (``tune.space.units: ...``), with the
            closest valid name for a misspelt one.
    """
    if isinstance(data, SearchSpace):
        return data
    if data is None:
        return SearchSpace()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a search space is a mapping of setting names to ranges or "
                          f"choices, e.g. {{units: [16, 32]}}. Received: {shown(data)}")
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_space_errors(exc, where)) from None


def _space_errors(exc: ValidationError, where: str) -> str:
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}.{loc[0]}: " + str(suggest("tunable setting", loc[0],
                                                                tuple(TUNABLE))))
            continue
        message = err["msg"].removeprefix("Value error, ").rstrip(".")
        if err["type"] != "value_error" and "input" in err and not isinstance(err["input"], dict):
            message += f". Received: {shown(err['input'])}"
        place = ".".join((where, *loc)) if loc else where
        problems.append(f"{place}: {message}")
    return "; ".join(problems)


# -- the default space -------------------------------------------------------------------------

#: the default space of every setup (the segment setup adds ``segment_length``).
DEFAULT_SPACE: dict[str, Param] = {
    "units": Param(kind="categorical", choices=[16, 32, 64]),
    "layers": Param(kind="int", low=1, high=2),
    "dropout": Param(kind="float", low=0.0, high=0.3),
    "learning_rate": Param(kind="log_float", low=1e-4, high=1e-2),
    "lookback_multiple": Param(kind="categorical", choices=[2, 4, 7, 14]),
}
#: segment lengths the segment setup's default space tries (those dividing the horizon).
SEGMENT_LENGTHS = (4, 6, 8, 12, 24, 48)


def default_space(setup: str, horizon: int, train_rows: int | None = None,
                  *, lookback_given: bool = False) -> dict[str, Param]:
    """The space searched when nothing is said, for one setup and horizon.

    Args:
        setup: the setup (``forecast.options.SETUPS``).
        horizon: the forecast horizon.
        train_rows: rows of the training part: lookbacks above a quarter of them are left out
            (as the default lookback is), and so is the lookback entry when none fits.
        lookback_given: the lookback was set explicitly (``--lookback``): it is not searched.

    Returns:
        ``{name: Param}``.
    """
    space = dict(DEFAULT_SPACE)
    if lookback_given:
        space.pop("lookback_multiple")
    elif train_rows:
        limit = max(train_rows // 4, 1)
        fits = [m for m in DEFAULT_SPACE["lookback_multiple"].choices if m * horizon <= limit]
        if fits:
            space["lookback_multiple"] = Param(kind="categorical", choices=fits)
        else:
            space.pop("lookback_multiple")
    if setup == "segment":
        lengths = [w for w in SEGMENT_LENGTHS if w <= horizon and horizon % w == 0]
        if len(lengths) > 1:
            space["segment_length"] = Param(kind="categorical", choices=lengths)
    return space


def resolve_space(config: ForecasterConfig, space: SearchSpace | dict | None = None, *,
                  use_defaults: bool = True, train_rows: int | None = None,
                  where: str = "tune.space") -> dict[str, Param]:
    """The space a search runs: the defaults for the setup, changed by ``space``, checked
    against the horizon, the setup and the data.

    Args:
        config: the base settings (the setup, the horizon and every value not searched).
        space: changes to the defaults (``SearchSpace`` or a mapping).
        use_defaults: start from ``default_space`` (False: only the entries of ``space``).
        train_rows: rows of the training part (a lookback must leave a training window).
        where: the place named in errors.

    Returns:
        ``{name: Param}``, never empty.

    Raises:
        ConfigError: naming ``tune.space.NAME``: a lookback leaving no training window, a
            segment length that does not divide the horizon, or nothing left to search.
    """
    space = parse_space(space, where)
    resolved = default_space(config.setup, config.horizon, train_rows,
                             lookback_given=config.lookback is not None) if use_defaults else {}
    changes = space.changes()
    if changes.get("lookback") is not None:  # a lookback searched directly replaces multiples
        resolved.pop("lookback_multiple", None)
    if changes.get("lookback_multiple") is not None:
        resolved.pop("lookback", None)
    for name, param in changes.items():
        if param is None:
            resolved.pop(name, None)
        else:
            resolved[name] = param
    if not resolved:
        raise ConfigError(f"{where}: nothing to search: give at least one setting, e.g. "
                          f"{where}.units: [16, 32, 64] (--space 'units=[16, 32, 64]').")
    horizon = config.horizon
    lookbacks = _lookbacks(resolved, config)
    if train_rows is not None and lookbacks:
        name, largest = max(lookbacks, key=lambda item: item[1])
        if largest + horizon > train_rows:
            raise ConfigError(
                f"{where}.{name}: a lookback of {largest} steps (with horizon {horizon}) leaves "
                f"no window in the {train_rows} training rows: keep the lookback at most "
                f"{train_rows - horizon} steps.")
    if config.setup == "segment":
        from forecast.models.segment import check_segment_sizes

        length_key = "segment_length" if "segment_length" in resolved else None
        lengths = (_proposed(resolved["segment_length"]) if length_key
                   else [config.model.segment_length])
        sizes = lookbacks or ([(None, config.lookback)] if config.lookback else [])
        for length in lengths:
            for name, lookback in sizes or [(None, length)]:  # no lookback yet: the horizon
                try:
                    check_segment_sizes(lookback, horizon, int(length))
                except ConfigError as exc:
                    key = length_key or name
                    place = f"{where}.{key}" if key else where
                    raise ConfigError(f"{place}: {exc}") from None
    return resolved


def _proposed(param: Param) -> list:
    """Every value an ``int`` or ``categorical`` entry can propose."""
    if param.kind == "categorical":
        return list(param.choices)
    return list(range(int(param.low), int(param.high) + 1, int(param.step or 1)))


def _lookbacks(space: dict[str, Param], config: ForecasterConfig) -> list[tuple[str, int]]:
    """Every lookback the space can propose, with the entry that proposes it."""
    if "lookback_multiple" in space:
        return [("lookback_multiple", int(m) * config.horizon)
                for m in _proposed(space["lookback_multiple"])]
    if "lookback" in space:
        return [("lookback", int(v)) for v in _proposed(space["lookback"])]
    return []


def apply_values(config: ForecasterConfig, values: dict) -> ForecasterConfig:
    """``config`` with the searched ``values`` set (``lookback_multiple`` as a lookback).

    Raises:
        ConfigError: a combination the settings refuse.
    """
    data = config.model_dump()
    for name, value in values.items():
        tunable = TUNABLE[name]
        if name == "lookback_multiple":
            value = int(value) * config.horizon
        node = data
        for part in tunable.path[:-1]:
            node = node[part]
        node[tunable.path[-1]] = value
    return parse_config(data)


def base_values(config: ForecasterConfig, space: dict[str, Param],
                lookback: int | None = None) -> dict:
    """The values of ``config`` (the settings a search starts from) that ``space`` can propose.

    Args:
        config: the base settings.
        space: the resolved space.
        lookback: the lookback the base settings train with (when ``config.lookback`` is None).

    Returns:
        ``{name: value}``: what the first trial of a new study tries, so that the search is
        never worse on validation than the settings it started from.
    """
    values = {}
    data = config.model_dump()
    for name, param in space.items():
        if name == "lookback_multiple":
            lookback = config.lookback or lookback
            if lookback is None or lookback % config.horizon:
                continue
            value = lookback // config.horizon
        else:
            value = data
            for part in TUNABLE[name].path:
                value = value[part]
        if value is not None and param.contains(value):
            values[name] = value
    return values


# -- the settings of a search -----------------------------------------------------------------


class TuneOptions(_Settings):
    """How ``forecast tune`` searches (YAML ``tune``, the CLI's tune flags).

    Example:
        >>> TuneOptions(trials=8, space={"units": [16, 32]}).space.units.choices
        [16, 32]
    """

    WHAT: ClassVar[str] = "tune"

    trials: Annotated[int, _positive_int("trials")] = Field(
        20, description="Trials to run now; a study that exists already keeps its earlier "
                        "trials and gets these as well.")
    timeout: Annotated[float | None, _number("timeout")] = Field(
        None, gt=0, description="Stop starting trials after this many seconds (None: no limit).")
    study: str | None = Field(
        None, min_length=1, max_length=500,
        description="Optuna study name; the same name continues the same study (default: "
                    "from the data file, the targets, the horizon and the setup).")
    storage: str | None = Field(
        None, min_length=1,
        description="Optuna storage URL (default: optuna.db beside a SQLite MLflow store; "
                    "required with any other store).")
    metric: Annotated[str, _word("metric", PROMOTION_METRICS)] = Field(
        "mase", description="The validation metric minimised (original units; lower is "
                            "better). The test part is never looked at.")
    seed: Annotated[int | None, _strict_int("seed")] = Field(
        None, description="Seed of the TPE sampler (None: the training seed).")
    prune: Annotated[bool, _strict_bool("prune")] = Field(
        True, description="Stop unpromising trials early: a trial whose validation loss is "
                          "above the median of earlier trials at the same epoch (from the "
                          "second epoch on) is pruned.")
    default_space: Annotated[bool, _strict_bool("default_space")] = Field(
        True, description="Start from the default space of the setup (false: search only the "
                          "settings in space).")
    space: SearchSpace = Field(
        default_factory=SearchSpace,
        description="Changes to the search space by setting name: a range, a list of choices, "
                    "or null to leave a setting out.")

    @field_validator("space", mode="before")
    @classmethod
    def _space(cls, value):
        return SearchSpace() if value is None else value

    @classmethod
    def parse(cls, data):
        """An instance from an instance or a mapping of its fields.

        Raises:
            ConfigError: an invalid setting; a bad space entry is named ``tune.space.NAME``.
        """
        if isinstance(data, dict) and "space" in data:
            data = {**data, "space": parse_space(data["space"])}
        return super().parse(data)


__all__ = [
    "DEFAULT_SPACE",
    "PARAM_KINDS",
    "TUNABLE",
    "Param",
    "SearchSpace",
    "TuneOptions",
    "apply_values",
    "base_values",
    "default_space",
    "parse_space",
    "resolve_space",
]
