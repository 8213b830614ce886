"""The YAML pipeline as data: pydantic models (``extra="forbid"``) and a loader that names lines.

A pipeline file declares one forecasting job from CSV to forecast CSV::

    name: quickstart
    data:
      path: ../datasets/ETTh1.csv      # relative paths are resolved against this file's folder
      time_col: date
      targets: [OT]
    split: {val: 0.1, test: 0.2}       # or borders: [train_end, val_end, test_end]
    window: {lookback: 96, horizon: 24}
    model: {setup: many_to_one, cell: lstm, units: 32, instance_norm: revin, linear_skip: true}
    train: {epochs: 5, patience: 2, batch_size: 64}
    evaluate: {metrics: [mae, rmse, mase], backtest_folds: 2}
    register: {name: etth1-ot, promotion_metric: mase, promotion_folds: 2}
    forecast: {path: ../outputs/quickstart_forecast.csv}
    schedule: {cron: "0 2 * * *", timezone: UTC}

Every problem is a ``ConfigError`` naming the file, the line, the dotted place in the file and,
for a misspelt key, the nearest valid one::

    nightly.yaml, line 9: window.horizn: unknown key (did you mean horizon?)

YAML is read with ``yaml.safe_load`` only, and only once ``forecast.yaml_input`` has bounded its
size, nesting and aliases (an alias bomb or a thousand nested brackets is refused, naming the
line); ``yaml.compose`` (the safe loader's node tree) supplies the line of every key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecast.cron import check_timezone, cron_trigger
from forecast.errors import ConfigError, cut, shown
from forecast.options import (
    DUPLICATES,
    FILLS,
    METRICS,
    MODEL_NAME_RULE,
    BatchOptions,
    CovariateOptions,
    FeatureOptions,
    ForecasterConfig,
    ModelOptions,
    PromotionOptions,
    TrainOptions,
    WindowOptions,
    _number,
    _positive_int,
    model_name_problem,
)
from forecast.tuning.space import TuneOptions
from forecast.yaml_input import load_yaml_text, read_yaml_text


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataSection(_Section):
    """Where the series comes from; the arguments of ``forecast.data.load_csv``."""

    path: Path
    time_col: str | None = None
    targets: list[str] | None = None
    covariates: list[str] | None = None
    id_col: str | None = Field(None, description="Series id column of a long-format file: "
                               "one global model is trained over every series.")
    freq: str | None = None
    fill: Literal[FILLS] = "interpolate"
    duplicates: Literal[DUPLICATES] = "error"
    max_gap: Annotated[int | None, _positive_int("max_gap", none="no limit")] = None
    sep: str | None = Field(None, description="Field separator (detected when left out).")
    decimal: str | None = Field(None, description="Decimal mark, '.' or ',' (detected).")
    date_format: str | None = Field(None, description="strftime layout of the timestamps.")
    dayfirst: bool | None = Field(None, description="Read 01/02/2024 as 1 February (true) or 2 "
                                  "January (false); detected, and refused when both fit.")
    tz: str | None = Field(None, description="Time zone of naive timestamps (read as local "
                           "time there, daylight saving included, and converted to UTC).")
    # declared in forecast.options (CovariateOptions); checked there
    future_covariates: list[str] = Field(
        default_factory=list, description=CovariateOptions.help("future_covariates"))
    static: list[str] = Field(default_factory=list,
                              description=CovariateOptions.help("static"))

    @field_validator("targets", "covariates", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_covariates(self):
        from forecast.errors import ForecastError

        try:
            CovariateOptions.parse({"future_covariates": self.future_covariates,
                                    "static": self.static})
        except ForecastError as exc:
            raise ValueError(str(exc)) from None
        both = sorted(set(self.covariates or []) & set(self.future_covariates))
        if both:
            raise ValueError(f"covariates and future_covariates both name {both}: a column is "
                             "either known only up to now or known ahead; list it once.")
        if self.static and self.id_col is None:
            raise ValueError(
                f"static {self.static}: static covariates describe each series of a "
                "long-format file; set data.id_col to its series id column, or remove "
                "data.static.")
        return self

    def input_covariates(self) -> list[str] | None:
        """The columns ``load_csv`` reads besides the targets: the past covariates, then the
        future covariates (the forecaster tells them apart by ``future_covariates``)."""
        columns = [*(self.covariates or []), *self.future_covariates]
        return columns or None

    @model_validator(mode="after")
    def _check_reading(self):
        from forecast.errors import ForecastError

        try:
            self.reading()
        except ForecastError as exc:  # pydantic names the section; the message names the key
            raise ValueError(str(exc)) from None
        return self

    def reading(self):
        """The ``ReadOptions`` of this section (the served model reads history the same way).

        Returns:
            A ``forecast.data.reading.ReadOptions``.

        Raises:
            ConfigError: a bad separator, decimal mark, date format or time zone.
        """
        from forecast.data.reading import ReadOptions

        return ReadOptions(sep=self.sep, decimal=self.decimal, time_col=self.time_col,
                           date_format=self.date_format, dayfirst=self.dayfirst, tz=self.tz)


_Row = Annotated[int, _positive_int("borders")]


class SplitSection(_Section):
    """The chronological split: fractions, or explicit row borders."""

    val: Annotated[float, _number("val")] = Field(0.1, ge=0, lt=1)
    test: Annotated[float, _number("test")] = Field(0.2, gt=0, lt=1)
    borders: tuple[_Row, _Row, _Row] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.borders is None and self.val + self.test >= 1:
            raise ValueError(f"val + test must leave rows to train on. Received: val={self.val}, "
                             f"test={self.test}.")
        if self.borders is not None:
            a, b, c = self.borders
            if not 0 < a <= b < c:
                raise ValueError("borders are row numbers train_end <= val_end < test_end, all "
                                 f"positive. Received: borders={list(self.borders)}.")
        return self


class WindowSection(WindowOptions):
    """How much history the model reads and how far it forecasts (``WindowOptions``)."""


class ModelSection(ModelOptions, FeatureOptions):
    """The network (``ModelOptions``) and the setup, calendar and scaler (``FeatureOptions``)."""


class TrainSection(TrainOptions, BatchOptions):
    """``TrainOptions`` plus the batch size (``BatchOptions``)."""


_Level = Annotated[float, _number("intervals"), Field(gt=0, lt=1)]


class EvaluateSection(_Section):
    """What is reported: the test metrics shown, conformal prediction intervals, and an
    optional rolling-origin backtest."""

    metrics: list[Literal[METRICS]] = Field(default_factory=lambda: ["mae", "rmse", "mase"])
    intervals: list[_Level] = Field(
        default_factory=list,
        description="Conformal prediction interval levels, e.g. [0.8, 0.95] (``forecast train "
                    "--interval``): calibrated on the validation windows, saved with the "
                    "model, their test coverage reported; empty: none.")
    backtest_folds: Annotated[int | None, _positive_int("backtest_folds",
                                                        none="no backtest")] = None
    backtest_epochs: Annotated[int | None, _positive_int("backtest_epochs",
                                                         none="the training epochs")] = None


class RegisterSection(PromotionOptions):
    """Register the model (alias ``challenger``); promotion decides the champion."""

    name: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _mlflow_name(cls, value):
        problem = model_name_problem(value)
        if problem is not None:  # MLflow would refuse it only after training
            raise ValueError(f"not a valid registered model name: {problem}. "
                             f"{MODEL_NAME_RULE}")
        return value


class TuneSection(TuneOptions):
    """A hyperparameter search (``forecast.tuning.space.TuneOptions``): trials, timeout, study,
    storage, metric and the search space (``tune.space``). Validated with the pipeline; the
    search itself runs with ``forecast tune`` (same settings as flags)."""


class ForecastSection(_Section):
    """Where the forecast CSV goes (relative to the pipeline file's folder, or absolute)."""

    path: Path


class ScheduleSection(_Section):
    """When ``forecast schedule`` runs the pipeline.

    ``cron`` is a standard 5-field crontab line (minute hour day month weekday) or a 6-field
    one whose first field is the second (``"*/5 * * * * *"``: every five seconds).
    ``interval_seconds`` instead runs it every N seconds (tests, debugging).
    """

    timezone: str = "UTC"  # before cron: cron's check reads it
    cron: str | None = None
    interval_seconds: Annotated[float | None, _number("interval_seconds")] = Field(None, gt=0)
    misfire_grace_seconds: Annotated[int, _positive_int("misfire_grace_seconds")] = 3600

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value):
        check_timezone(value)  # ValueError names the zone
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value, info):
        if value is not None and "timezone" in info.data:
            cron_trigger(value, info.data["timezone"])  # malformed, or never fires
        return value

    @model_validator(mode="after")
    def _check(self):
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron (e.g. \"0 2 * * *\") and interval_seconds.")
        return self


with warnings.catch_warnings():
    # ``register`` is a section name; it shadows ABCMeta.register on the class, not on instances
    warnings.filterwarnings("ignore", message=".*shadows an attribute in parent.*")

    class PipelineSpec(_Section):
        """A whole pipeline file. Only ``name``, ``data`` and ``window`` are required."""

        name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
        description: str | None = None
        experiment: str = "forecast"
        data: DataSection
        split: SplitSection = Field(default_factory=SplitSection)
        window: WindowSection
        model: ModelSection = Field(default_factory=ModelSection)
        train: TrainSection = Field(default_factory=TrainSection)
        evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
        register: RegisterSection | None = None
        tune: TuneSection | None = None
        forecast: ForecastSection | None = None
        schedule: ScheduleSection | None = None

        @model_validator(mode="after")
        def _intervals_need_validation(self):
            borders = self.split.borders
            if self.evaluate.intervals and (self.split.val == 0 if borders is None
                                            else borders[0] == borders[1]):
                raise ValueError(
                    "evaluate.intervals are calibrated on the validation windows and the "
                    "split leaves none: set split.val above 0 (or split.borders with a "
                    "validation part), or drop evaluate.intervals.")
            return self

        @model_validator(mode="after")
        def _forecaster_settings_agree(self):
            # what the sections allow one by one but not together (train.loss pinball without
            # model.quantiles): refused when the file is validated, not when training starts
            try:
                self.forecaster_config()
            except ValidationError as exc:
                raise ValueError("; ".join(error["msg"].removeprefix("Value error, ")
                                           for error in exc.errors())) from None
            return self

        # -- mapping onto the toolkit ------------------------------------------------------------

        def forecaster_config(self) -> ForecasterConfig:
            """The ``ForecasterConfig`` this pipeline trains: the same defaults as the CLI and
            ``Forecaster`` (all three read them from ``forecast.options``). Only the keys the
            YAML holds are set (``model_fields_set``): a global model takes its own defaults
            for the others (``forecast.models.global_defaults``)."""
            def given(section, fields) -> dict:
                return section.model_dump(include=set(fields) & section.model_fields_set)

            top = {**given(self.model, ("setup", "calendar", "scaler")),
                   **given(self.train, ("batch_size",)),
                   **given(self.window, ("lookback",))}
            return ForecasterConfig(
                horizon=self.window.horizon, **top,
                future_covariates=list(self.data.future_covariates),
                static=list(self.data.static),
                model=ModelOptions(**given(self.model, ModelOptions.model_fields)),
                train=TrainOptions(**given(self.train, TrainOptions.model_fields)),
            )

        def digest(self) -> str:
            """A hash of everything that decides the trained model (not the schedule)."""
            data = self.model_dump(mode="json", exclude={"schedule", "description", "tune"})
            return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# -- loading with line numbers ----------------------------------------------------------------


def _marks(node, prefix: tuple = (), marks: dict | None = None, problems: list | None = None):
    """Dotted path -> 1-based line of every key and item in the composed YAML tree."""
    marks = {} if marks is None else marks
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            path = (*prefix, key)
            if key in seen and problems is not None:
                problems.append((path, key_node.start_mark.line + 1, "duplicate key"))
            seen.add(key)
            marks[path] = key_node.start_mark.line + 1
            _marks(value_node, path, marks, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[(*prefix, i)] = item.start_mark.line + 1
            _marks(item, (*prefix, i), marks, problems)
    return marks


def _dotted(path) -> str:
    return ".".join(cut(str(p), 60) for p in path) or "(top level)"


def _model_of(annotation):
    """The pydantic model inside ``annotation`` (``X``, ``X | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _fields_at(path) -> list[str]:
    """The valid keys of the section at ``path`` (dotted parts), or [] when not a section."""
    model = PipelineSpec
    for part in path:
        field = model.model_fields.get(str(part))
        model = _model_of(field.annotation) if field else None
        if model is None:
            return []
    return list(model.model_fields)


def _line(marks: dict, path) -> int | None:
    path = tuple(path)
    while path:
        if path in marks:
            return marks[path]
        path = path[:-1]
    return None


def _describe(err: dict) -> tuple[tuple, str]:
    loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
    kind = err["type"]
    if kind == "extra_forbidden":
        key, parent = str(loc[-1]), loc[:-1]
        valid = _fields_at(parent)
        close = difflib.get_close_matches(key[:100], valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"valid keys: {', '.join(valid)}"
        return loc, f"unknown key ({hint})"
    if kind == "missing":
        return loc, "missing (required)"
    message = err["msg"].removeprefix("Value error, ").rstrip()
    if not message.endswith((".", "?")):
        message += "."
    if "input" in err and kind not in ("model_type", "dict_type") and not isinstance(
        err["input"], dict
    ) and shown(err["input"]) not in message:
        message += f" Received: {shown(err['input'])}."
    return loc, message


def parse_overrides(overrides) -> list[tuple[tuple[str, ...], Any]]:
    """``["window.horizon=48", ...]`` as ``[(("window", "horizon"), 48), ...]``.

    The value is read with ``yaml.safe_load`` (``48`` is an int, ``[a, b]`` a list, ``null``
    None).

    Raises:
        ConfigError: an override without ``=`` or with an empty key.
    """
    parsed = []
    for text in overrides or ():
        key, sep, value = str(text).partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set takes KEY=VALUE with a dotted key, e.g. "
                              f"window.horizon=48. Received: {shown(text)}.")
        source = f"--set {shown(text, 60)}"
        try:
            value = load_yaml_text(value, source=source) if value else None
        except ConfigError as exc:  # bounded like a file; say it is the value after "="
            raise ConfigError(f"{exc} (the value after = is read as YAML)") from None
        parsed.append((tuple(key.split(".")), value))
    return parsed


def apply_overrides(data: dict, overrides) -> dict:
    """Sets each ``(path, value)`` in the nested dict ``data`` (sections made as needed)."""
    for path, value in overrides:
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return data


def _resolve(folder: Path, path: Path | None) -> Path | None:
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else (folder / path).resolve()


def load_pipeline(path, *, overrides=(), check_data: bool = False) -> PipelineSpec:
    """Reads, overrides and validates a pipeline file.

    Args:
        path: the YAML file (at most ``forecast.yaml_input.MAX_BYTES``; its nesting and aliases
            are bounded before it is loaded).
        overrides: ``"dotted.key=value"`` strings applied before validation (``--set``).
        check_data: also require ``data.path`` to be an existing regular file (what
            ``forecast pipeline validate`` and ``run`` check up front).

    Returns:
        The ``PipelineSpec``, with ``data.path``, ``forecast.path`` and
        ``train.checkpoint_dir`` made absolute (relative ones are relative to the file's folder).

    Raises:
        ConfigError: the file is missing, too large or not YAML, its aliases or nesting cross a
            bound, or a setting is invalid; the message names the file, the line, the dotted key
            and (for a misspelt key) the nearest valid key.

    Example:
        >>> load_pipeline("pipelines/quickstart.yaml", overrides=["window.horizon=48"]).window
        WindowSection(horizon=48, lookback=96)
    """
    path = Path(path)
    text = read_yaml_text(path)  # refuses a missing or over-large file before reading it all
    data, node = load_yaml_text(text, source=str(path), compose=True)  # bounded, then loaded
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}, line 1: a pipeline file is a mapping of sections (name, data, "
                          f"window, ...); this one holds a {type(data).__name__}.")
    problems: list = []
    marks = _marks(node, problems=problems)
    parsed = parse_overrides(overrides)
    apply_overrides(data, parsed)
    overridden = {p for p, _ in parsed}
    if problems:
        raise ConfigError(_message(path, problems))
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        suggested = set()
        for err in errors:
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(str(err["loc"][-1]),
                                                  _fields_at(err["loc"][:-1]), n=1, cutoff=0.6)
                suggested.update((*err["loc"][:-1], c) for c in close)
        for err in errors:
            if err["type"] == "missing" and tuple(err["loc"]) in suggested:
                continue  # the misspelt key already says "did you mean <this>?"
            loc, message = _describe(err)
            origin = next((p for p in overridden if tuple(map(str, loc[: len(p)])) == p), None)
            line = "--set" if origin else _line(marks, loc)
            problems.append((loc, line, message))
        problems.sort(key=lambda p: p[1] if isinstance(p[1], int) else 1 << 30)
        raise ConfigError(_message(path, problems)) from None
    folder = path.resolve().parent
    spec.data.path = _resolve(folder, spec.data.path)
    if spec.forecast is not None:
        spec.forecast.path = _resolve(folder, spec.forecast.path)
    if spec.train.checkpoint_dir is not None:
        spec.train.checkpoint_dir = _resolve(folder, spec.train.checkpoint_dir)
    if check_data and not spec.data.path.is_file():
        line = "--set" if ("data", "path") in overridden else _line(marks, ("data", "path"))
        what = "is not a regular file" if spec.data.path.exists() else "does not exist"
        raise ConfigError(_message(path, [(("data", "path"), line, (
            f"the data file {spec.data.path} {what}; give the path of a CSV file (a relative "
            "path is read from the pipeline file's folder)."))]))
    return spec


def _message(path: Path, problems: list) -> str:
    parts = []
    for loc, line, message in problems:
        where = "from --set" if line == "--set" else (f"line {line}" if line else "")
        parts.append(f"{where + ': ' if where else ''}{_dotted(loc)}: {message}")
    head = f"{path}: invalid pipeline" if len(parts) > 1 else f"{path}"
    if len(parts) == 1:
        loc, line, _ = problems[0]
        if isinstance(line, int):
            return f"{path}, {parts[0]}"
        return f"{path}: {parts[0]}"
    return f"{head}: " + "; ".join(parts)
