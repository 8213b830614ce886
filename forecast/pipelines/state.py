"""What the pipeline steps hand to each other: a typed ``StepState`` with a JSON round trip.

``forecast.pipelines.steps`` takes a ``StepState`` in every step and returns it with its own part
added. In one process (``run_pipeline``) the object itself travels; the Airflow DAG
(``forecast.scheduling.airflow``) runs each step in a process of its own and passes the state
between tasks through XCom as ``to_dict()``, rebuilt on the other side with ``from_dict()``.

This module imports neither TensorFlow, Keras nor MLflow: the Airflow side reads it.

Example:
    >>> state = StepState(path="pipelines/quickstart.yaml", overrides=["train.epochs=1"])
    >>> StepState.from_json(state.to_json()) == state
    True
    >>> StepState.from_dict({"path": "x.yaml", "runid": "abc"})
    Traceback (most recent call last):
    forecast.errors.ConfigError: pipeline step state: unknown key 'runid' ...
"""

from __future__ import annotations

import copy
import functools
import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from forecast.errors import ConfigError


@dataclass(slots=True)
class StepState:
    """The state of one pipeline run as it passes from step to step.

    Every field is JSON-ready (strings, numbers, booleans, lists and dicts of them, None), so
    ``from_json(to_json())`` gives back an equal object. ``None`` means "not set yet": a step
    fills in its own fields (see each field for the step that sets it).

    Attributes:
        path: the pipeline YAML file, as given to ``validate``.
        overrides: the ``"dotted.key=value"`` settings applied on top of the file.
        skipped: True when ``validate`` found the data and the settings unchanged since the last
            FINISHED run of the pipeline (the later steps then do not run).
        message: one line saying what the run did (set by ``validate`` when skipped, and by
            ``forecast``); empty until then.
        steps: seconds per step, by step name (``validate``, ``ingest``, ``train``,
            ``evaluate``, ``backtest``, ``register``, ``forecast``).
        name: the pipeline's ``name`` (``validate``).
        experiment: the MLflow experiment of the pipeline (``validate``).
        digest: the hash of the resolved settings (``validate``); the later steps check that the
            file still gives it.
        sha256: the SHA-256 of the data file (``validate``); the later steps check the file is
            unchanged.
        run_id: the pipeline's MLflow run (``train``); for a skipped run, the earlier run whose
            data and settings it matched (``validate``).
        last_timestamp: the last timestamp in the data, the watermark (``ingest``; for a
            skipped run the earlier run's).
        time_col: the time column's name in the raw data (``ingest``).
        model_uri: the URI of the model logged in the run (``train``).
        lookback: the fitted lookback (``train``).
        metrics: the test metrics named in ``evaluate.metrics``: ``{"model": {metric: value},
            "baselines": {name: {metric: value}}}`` (``train``).
        backtest: the backtest report ``{"model", "baselines", "folds"}`` (``backtest``, when
            ``evaluate.backtest_folds`` is set).
        version: the registered model version (``register``, when the pipeline registers).
        promotion: the promotion decision as a dict (``register``).
        forecast_path: where the forecast CSV was written, or None when the pipeline has no
            ``forecast.path`` (``forecast``).
        forecast_rows: the number of forecast rows (``forecast``).
        forecast_source: which model forecast, e.g. ``models:/NAME/1`` (``forecast``).
    """

    path: str
    overrides: list[str] = field(default_factory=list)
    skipped: bool = False
    message: str = ""
    steps: dict[str, float] = field(default_factory=dict)
    name: str | None = None
    experiment: str | None = None
    digest: str | None = None
    sha256: str | None = None
    run_id: str | None = None
    last_timestamp: str | None = None
    time_col: str | None = None
    model_uri: str | None = None
    lookback: int | None = None
    metrics: dict[str, Any] | None = None
    backtest: dict[str, Any] | None = None
    version: str | None = None
    promotion: dict[str, Any] | None = None
    forecast_path: str | None = None
    forecast_rows: int | None = None
    forecast_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, as a new dict (nothing shared with this object).

        Returns:
            ``{field: value}`` for all fields, ``None`` ones included; ``from_dict`` reads it
            back.
        """
        return asdict(self)

    def to_json(self) -> str:
        """``to_dict()`` as JSON text.

        Returns:
            The JSON text (NaN and infinities are written as Python's ``json`` writes them;
            strict JSON consumers such as XCom take ``forecast.scheduling.airflow.jsonable``
            of ``to_dict()`` instead).

        Raises:
            ConfigError: a value is not JSON-ready (e.g. a NumPy array put into ``metrics``).
        """
        try:
            return json.dumps(self.to_dict())
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"pipeline step state: cannot be written as JSON: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepState:
        """The state from a dict such as ``to_dict()`` returns (e.g. from an Airflow XCom).

        Keys left out take their defaults; the dict is copied, not kept.

        Args:
            data: ``{field: value}``; ``path`` is required. A ``StepState`` is copied.

        Returns:
            A ``StepState``.

        Raises:
            ConfigError: ``data`` is not a dict, has a key that is not a field (named in the
                message), lacks ``path``, or holds a value of the wrong type for its field.
        """
        if isinstance(data, StepState):
            return copy.deepcopy(data)
        if not isinstance(data, dict):
            raise ConfigError(f"pipeline step state: expected a dict of the state's fields. "
                              f"Received: {type(data).__name__}.")
        known = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in known]
        if unknown:
            raise ConfigError(
                f"pipeline step state: unknown key {unknown[0]!r}"
                + (f" (and {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else "")
                + f"; the state's keys are {', '.join(known)}. Was it written by another "
                "version of forecast? Run the pipeline again from validate."
            )
        if "path" not in data:
            raise ConfigError("pipeline step state: 'path' is missing (the pipeline file); a "
                              "state starts from what validate returned.")
        hints = _hints()
        for key, value in data.items():
            if not _matches(value, hints[key]):
                raise ConfigError(f"pipeline step state: {key} must be "
                                  f"{_describe(hints[key])}. Received: {value!r}.")
        return cls(**copy.deepcopy(data))

    @classmethod
    def from_json(cls, text: str | bytes) -> StepState:
        """The state from the JSON text ``to_json()`` wrote.

        Args:
            text: the JSON text.

        Returns:
            A ``StepState`` equal to the one written.

        Raises:
            ConfigError: the text is not JSON, or ``from_dict`` refuses what it holds.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"pipeline step state: not valid JSON: {exc}") from None
        return cls.from_dict(data)


@functools.cache
def _hints() -> dict[str, Any]:
    """The fields' types (resolved once; the annotations are strings in this module)."""
    return typing.get_type_hints(StepState)


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the type ``hint`` (unions, ``list[X]``, ``dict[K, V]``, Any)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    """``hint`` in words for an error message: ``a str or None``, ``a dict[str, float]``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if hint is type(None):
        return "None"
    name = hint.__name__ if origin is None and isinstance(hint, type) else str(hint)
    name = name.replace("typing.", "")
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
