"""Logging a fitted Forecaster to MLflow as a servable pyfunc model (a model from code)."""

from __future__ import annotations

import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.data.dataset import describe
from forecast.errors import DataError
from forecast.serving.pyfunc import (
    ARTIFACT_KEY,
    SOURCE,
    ServingInfo,
    as_raw_history,
    forecast_history,
)

MODEL_CODE = Path(__file__).with_name("model_code.py")

# Pinned to what is installed, so `mlflow models serve --env-manager local` finds no mismatch.
# `forecast` itself is not on PyPI: serve in an environment where it is installed.
_REQUIREMENTS = ("forecast", "mlflow", ("tensorflow", "tensorflow-cpu"), "keras", "numpy",
                 "pandas", "scikit-learn", "pydantic")


def pip_requirements() -> list[str]:
    """The serving requirements, pinned to the installed versions (``forecast==0.1.0``, ...)."""
    pins = []
    for names in _REQUIREMENTS:
        for name in (names,) if isinstance(names, str) else names:
            try:
                pins.append(f"{name}=={version(name)}")
                break
            except PackageNotFoundError:
                continue
    return pins


#: How many series the input example of a global model holds.
EXAMPLE_SERIES = 3


def example_history(forecaster, info: ServingInfo,
                    history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The raw input example: the last ``lookback`` rows, the time column as ISO strings.

    Args:
        forecaster: the fitted forecaster.
        info: its serving settings.
        history: recent history (raw with the time column, or time-indexed as ``load_csv``
            returns it). Default: a made-up history — the last training target values the
            forecaster keeps, covariates at their training centre, timestamps from 2000-01-01.
            For a global model, long format (raw with the id column, or indexed by (id, time)).

    Returns:
        A DataFrame with ``info.time_col`` (text) and the input columns (float64). For a global
        model, long format: ``info.id_col`` (text) first, the last ``lookback`` rows of each of
        the first ``EXAMPLE_SERIES`` series long enough.

    Raises:
        DataError: ``history`` lacks columns or rows.
    """
    if info.is_global:
        return _long_example(forecaster, info, history)
    lookback = forecaster.spec.lookback
    columns = info.input_columns
    if history is None:
        raw = _made_up(forecaster, info, np.asarray(forecaster.insample, dtype=np.float64))
    else:
        if not isinstance(history, pd.DataFrame) or isinstance(history.index, pd.MultiIndex):
            raise DataError("input_example must be a DataFrame of one series (a time column or "
                            f"a DatetimeIndex). Received: {type(history).__name__}")
        raw = as_raw_history(history, info.time_col)
        missing = [c for c in [info.time_col, *columns] if c not in raw.columns]
        if missing:
            raise DataError(f"input_example lacks the columns {missing}; it needs "
                            f"{[info.time_col, *columns]}.")
        if len(raw) < lookback:
            raise DataError(f"input_example has {len(raw)} rows; it needs at least {lookback} "
                            "(the model's lookback).")
        raw = raw.iloc[-lookback:]
    return _with_future_rows(_as_example(raw, info), forecaster, info)


def _with_future_rows(example: pd.DataFrame, forecaster, info: ServingInfo) -> pd.DataFrame:
    """A model with known-future covariates reads their horizon values from the rows after the
    history whose target cells are empty: the example gets ``horizon`` such rows, the future
    covariates held at their last value (one series; ``_long_example`` adds them per series)."""
    if not info.future_covariates:
        return example
    horizon = forecaster.spec.horizon
    last = pd.Timestamp(example[info.time_col].iloc[-1])
    times = pd.date_range(last, periods=horizon + 1, freq=info.freq)[1:]
    future = pd.DataFrame({info.time_col: [t.isoformat() for t in times]})
    for name in info.input_columns:
        held = example[name].iloc[-1] if name in info.future_covariates else np.nan
        future[name] = np.full(horizon, held, dtype=np.float64)
    return pd.concat([example, future], ignore_index=True)


def _made_up(forecaster, info: ServingInfo, targets: np.ndarray, series=None) -> pd.DataFrame:
    """``lookback`` rows of made-up raw history: the last kept training targets, covariates
    at their (the series') training centre, hourly/daily/... timestamps from 2000-01-01.

    Raises:
        DataError: fewer than ``lookback`` training rows kept.
    """
    lookback = forecaster.spec.lookback
    targets = targets[-lookback:]
    if len(targets) < lookback:
        which = "" if series is None else f" of series {series!r}"
        raise DataError(f"the forecaster keeps only {len(targets)} training rows{which}; pass "
                        f"input_example= with at least {lookback} rows of history.")
    data = {name: targets[:, j] for j, name in enumerate(info.targets)}
    inputs = [*info.covariates, *info.future_covariates]
    if inputs:
        centre = forecaster.scaler.inverse_transform(
            np.zeros((lookback, len(inputs))), columns=inputs, series=series)
        data.update({name: centre[:, j] for j, name in enumerate(inputs)})
    times = pd.date_range("2000-01-01", periods=lookback, freq=info.freq)
    return pd.DataFrame({info.time_col: times, **data})


def _as_example(raw: pd.DataFrame, info: ServingInfo) -> pd.DataFrame:
    """The example's columns: the time column as ISO text, the inputs as float64."""
    times = pd.to_datetime(raw[info.time_col])
    example = pd.DataFrame({info.time_col: [t.isoformat() for t in times]})
    for name in info.input_columns:
        example[name] = pd.to_numeric(raw[name]).to_numpy(dtype=np.float64)
    return example


def _long_example(forecaster, info: ServingInfo, history) -> pd.DataFrame:
    """``example_history`` of a global model: long format, a few series.

    Raises:
        DataError: ``history`` is not long format, lacks columns, or no series has
            ``lookback`` rows.
    """
    lookback = forecaster.spec.lookback
    parts = []
    if history is None:
        kept = {key: np.asarray(values, dtype=np.float64)
                for key, values in forecaster.insample.items() if len(values) >= lookback}
        if not kept:
            raise DataError(f"the forecaster keeps fewer than {lookback} training rows of every "
                            "series; pass input_example= with at least that many rows of a "
                            "few series (long format).")
        for key in list(kept)[:EXAMPLE_SERIES]:
            parts.append((key, _made_up(forecaster, info, kept[key], series=key)))
    else:
        if not isinstance(history, pd.DataFrame):
            raise DataError("input_example must be a long-format DataFrame (an id column or an "
                            f"(id, time) index). Received: {type(history).__name__}")
        raw = as_raw_history(history, info.time_col, info.id_col)
        needed = [info.id_col, info.time_col, *info.input_columns]
        missing = [c for c in needed if c not in raw.columns]
        if missing:
            raise DataError(f"input_example lacks the columns {missing}; a global model's "
                            f"example needs {needed} (long format).")
        for key, group in raw.groupby(info.id_col, sort=False):
            if len(group) >= lookback:
                parts.append((key, group.iloc[-lookback:]))
            if len(parts) == EXAMPLE_SERIES:
                break
        if not parts:
            raise DataError(f"input_example holds no series with at least {lookback} rows "
                            "(the model's lookback).")
    frames = []
    for key, part in parts:
        example = _with_future_rows(_as_example(part, info), forecaster, info)
        example.insert(0, info.id_col, str(key))
        frames.append(example)
    return pd.concat(frames, ignore_index=True)


def forecaster_signature(example: pd.DataFrame, output: pd.DataFrame, time_col: str):
    """The model signature: the example's columns, each optional and of any type.

    The served model checks the history itself, as ``load_csv`` checks a file, and answers a
    missing column, a text cell or an integer column with a ``DataError`` that says what to do
    (or takes it: integers are numbers). MLflow's own schema check would answer first
    otherwise, and refuses integer columns for ``double`` inputs. So the inputs keep their
    names but are declared optional and ``Any``; the outputs are inferred from the example's
    forecast. The one parameter, ``source`` (default ``"model input"``), is how error messages
    name the input; ``forecast predict`` passes the CSV's path.
    """
    from mlflow.models import infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    shown = output.copy()
    if getattr(shown[time_col].dt, "tz", None) is not None:  # the schema has no time zones
        shown[time_col] = shown[time_col].dt.tz_localize(None)
    signature = infer_signature(example, shown, params={"source": SOURCE})
    signature.inputs = Schema([
        ColSpec(AnyType(), spec.name, required=False) for spec in signature.inputs.inputs
    ])
    return signature


def log_forecaster(forecaster, *, time_col: str | None, name: str = "model",
                   input_example: pd.DataFrame | None = None,
                   registered_model_name: str | None = None, fill: str = "interpolate",
                   max_gap: int | None = None, reading=None, id_col: str | None = None):
    """Logs a fitted forecaster as an MLflow pyfunc model (a model from code, no pickle).

    Call it inside an active MLflow run. The logged model holds the artifact ``"forecaster"``
    (``model.keras``, ``forecaster.json``, ``serving.json``), the code file
    ``model_code.py``, a signature, an input example (the last ``lookback`` rows of history,
    timestamps as ISO text) and ``requirements.txt`` pinned to the installed versions. It loads
    and serves in an environment where ``forecast`` is installed
    (``mlflow models serve -m URI --env-manager local``); no code is copied into the model.

    Args:
        forecaster: the fitted ``Forecaster``.
        time_col: the name of the timestamp column of the raw history (as in the CSV); None
            takes it from ``input_example`` (``describe(input_example).time_col``: the time
            column ``load_csv`` read, or the index name).
        name: the model's name in the run (``runs:/<run_id>/<name>``).
        input_example: recent history for the input example (raw, or time-indexed as
            ``load_csv`` returns it); default a made-up history (see ``example_history``).
        registered_model_name: also register the model under this name (a new version).
        fill: how the served model fills gaps in the history (``interpolate``, ``ffill``,
            ``zero``, ``error``); normally the policy used for training.
        max_gap: the longest run of missing steps it fills (default 24).
        reading: how the training file was read (``forecast.data.reading.ReadOptions``:
            separator, decimal mark, date layout, time zone), saved so that the served model and
            ``forecast predict --csv`` read history the same way. None takes it from
            ``input_example`` (``describe(input_example).reading``, as ``load_csv`` recorded
            it), else the defaults.
        id_col: a global model's series id column (long format in and out); None takes it
            from ``input_example`` (``describe(input_example).id_col``), else the forecaster's
            (``Forecaster.id_col``). Refused for a model of one series.

    Returns:
        ``mlflow.models.model.ModelInfo`` (``.model_uri``, ``.registered_model_version``, ...).

    Raises:
        ModelError: the forecaster is not fitted or has no frequency.
        ConfigError: ``time_col`` or ``fill`` is invalid.
        DataError: ``input_example`` lacks columns or rows.

    Example:
        >>> with mlflow.start_run():
        ...     info = log_forecaster(forecaster, time_col="date", input_example=frame)
        >>> forecast.load(info.model_uri).predict(recent)
    """
    import mlflow.pyfunc

    info, example, signature = _serving_parts(forecaster, time_col=time_col,
                                              input_example=input_example, fill=fill,
                                              max_gap=max_gap, reading=reading,
                                              id_col=id_col)
    with tempfile.TemporaryDirectory(prefix="forecast-model-") as tmp:
        folder = forecaster.write_files(Path(tmp) / ARTIFACT_KEY)
        info.write(folder)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={ARTIFACT_KEY: str(folder)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
        )


def save_forecaster_model(forecaster, path, *, time_col: str | None,
                          input_example: pd.DataFrame | None = None, fill: str = "interpolate",
                          max_gap: int | None = None, reading=None,
                          id_col: str | None = None) -> Path:
    """Writes a fitted forecaster as an MLflow pyfunc model folder, as ``log_forecaster`` logs it.

    The same model from code (``model_code.py``), the same ``"forecaster"`` artifact
    (``model.keras``, ``forecaster.json``, ``serving.json`` with the reading settings), the same
    signature, input example and pinned requirements, written by ``mlflow.pyfunc.save_model``
    into a local folder instead of a run. ``forecast predict --model PATH``, ``forecast serve
    PATH``, ``forecast.load(PATH)``, ``forecast evaluate --model PATH``,
    ``mlflow models serve -m PATH`` and ``Forecaster.load(PATH)`` all read it.
    ``Forecaster.save`` (``forecast train --save``) calls it into a staging folder.

    Args:
        forecaster: the fitted ``Forecaster``.
        path: the folder to create (it must not exist: MLflow refuses to write into one).
        time_col, input_example, fill, max_gap, reading, id_col: as for ``log_forecaster``.

    Returns:
        ``path``.

    Raises:
        ModelError: the forecaster is not fitted or has no frequency.
        ConfigError: ``time_col`` or ``fill`` is invalid.
        DataError: ``input_example`` lacks columns or rows.
        OSError: the folder cannot be written.
    """
    import mlflow.pyfunc

    info, example, signature = _serving_parts(forecaster, time_col=time_col,
                                              input_example=input_example, fill=fill,
                                              max_gap=max_gap, reading=reading,
                                              id_col=id_col)
    with tempfile.TemporaryDirectory(prefix="forecast-model-") as tmp:
        folder = forecaster.write_files(Path(tmp) / ARTIFACT_KEY)
        info.write(folder)
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(MODEL_CODE),
            artifacts={ARTIFACT_KEY: str(folder)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
        )
    return Path(path)


def _serving_parts(forecaster, *, time_col, input_example, fill, max_gap, reading, id_col=None):
    """What ``log_forecaster`` and ``save_forecaster_model`` both write beside the network:
    the ``ServingInfo`` (time column, fill policy, reading settings), the input example (raw
    history) and the signature (checked by forecasting the example once).

    Raises:
        ModelError, ConfigError, DataError: as ``log_forecaster``.
    """
    from forecast.data.frequency import check_fill, check_max_gap

    if time_col is None and isinstance(input_example, pd.DataFrame):
        time_col = describe(input_example).time_col
    check_fill(fill)
    max_gap = None if max_gap is None else check_max_gap(max_gap)
    if reading is None and isinstance(input_example, pd.DataFrame):
        reading = describe(input_example).reading
    if id_col is None and forecaster.is_global and isinstance(input_example, pd.DataFrame):
        id_col = describe(input_example).id_col or (
            input_example.index.names[0] if isinstance(input_example.index, pd.MultiIndex)
            else None)
    info = ServingInfo.for_forecaster(forecaster, time_col=time_col, fill=fill, max_gap=max_gap,
                                      reading=reading, id_col=id_col)
    example = example_history(forecaster, info, input_example)
    output = forecast_history(forecaster, info, example, source="input_example")
    return info, example, forecaster_signature(example, output, info.time_col)
