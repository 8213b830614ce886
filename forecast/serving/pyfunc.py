"""The served model: ``ForecastModel``, an ``mlflow.pyfunc.PythonModel`` over a saved Forecaster.

The MLflow model is the whole forecaster (DESIGN.md, "The served model is the whole
forecaster"): it takes the raw recent history — a DataFrame with the time column and the input
columns as in the training CSV, timestamps possibly as strings (JSON serving) — validates it like
``load_csv`` does, and returns the future timestamps with the forecast in original units.
Scaling, calendar features and windowing travel inside it.

The model is logged as a *model from code* (``forecast/serving/model_code.py``, no cloudpickle).
Its one artifact, ``"forecaster"``, is the folder written by ``Forecaster.save`` plus
``serving.json``, which holds what ``forecaster.json`` does not: the time column's name and how
the raw history is validated (fill policy, longest gap) and how its text is read (separator,
decimal mark, date layout, time zone: the training file's ``ReadOptions``).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from forecast.errors import ConfigError, DataError, ForecastError, ModelError

ARTIFACT_KEY = "forecaster"
SERVING_FILE = "serving.json"
SOURCE = "model input"


@dataclass(frozen=True)
class ServingInfo:
    """How the served model reads raw history, saved as ``serving.json`` beside the forecaster.

    Attributes:
        time_col: the name of the timestamp column (as in the training CSV).
        targets: the target columns, in the forecaster's order.
        covariates: the past covariate columns.
        freq: the pandas frequency alias of the series.
        fill: the gap policy of ``validate_frame`` (``interpolate``, ``ffill``, ``zero``,
            ``error``).
        max_gap: the longest run of missing steps ``fill`` may fill (None: the default, 24).
        reading: how the training file was read (``forecast.data.reading.ReadOptions`` as a
            dict: sep, decimal, time_col, date_format, dayfirst, tz), so history is read the
            same way; None (models logged before it existed) reads with the defaults.
    """

    time_col: str
    targets: tuple[str, ...]
    covariates: tuple[str, ...] = ()
    freq: str | None = None
    fill: str = "interpolate"
    max_gap: int | None = None
    format: int = field(default=1)
    reading: dict | None = None

    @property
    def read_options(self):
        """The reading settings as a ``ReadOptions`` (defaults when none were saved)."""
        from forecast.data.reading import ReadOptions

        return ReadOptions.from_dict(self.reading)

    @property
    def input_columns(self) -> list[str]:
        return [*self.targets, *self.covariates]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["targets"] = list(self.targets)
        data["covariates"] = list(self.covariates)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ServingInfo:
        return cls(
            time_col=data["time_col"],
            targets=tuple(data["targets"]),
            covariates=tuple(data.get("covariates") or ()),
            freq=data.get("freq"),
            fill=data.get("fill", "interpolate"),
            max_gap=data.get("max_gap"),
            format=int(data.get("format", 1)),
            reading=dict(data["reading"]) if data.get("reading") else None,
        )

    @classmethod
    def for_forecaster(cls, forecaster, *, time_col: str, fill: str = "interpolate",
                       max_gap: int | None = None, reading=None) -> ServingInfo:
        """The serving settings of a fitted forecaster.

        Args:
            reading: how the training file was read (a ``ReadOptions`` or its dict); its
                time column is replaced by ``time_col``.

        Raises:
            ConfigError: ``time_col`` is not a column name or names an input column.
            ModelError: the forecaster is not fitted or has no frequency.
        """
        if forecaster.model is None or forecaster.spec is None:
            raise ModelError("the forecaster is not fitted: call fit(train, val) before logging.")
        if not isinstance(time_col, str) or not time_col:
            raise ConfigError(f"`time_col` must be the name of the timestamp column (a non-empty "
                              f"string). Received: time_col={time_col!r}")
        spec = forecaster.spec
        inputs = [*spec.targets, *spec.past_covariates]
        if time_col in inputs:
            raise ConfigError(f"`time_col` must be the timestamp column, not an input column "
                              f"({inputs}). Received: time_col={time_col!r}")
        if not forecaster.freq:
            raise ModelError("the forecaster has no frequency, so future timestamps cannot be "
                             "computed; train it on a frame with a regular frequency "
                             "(load_csv(..., freq='h')).")
        if reading is not None:
            from forecast.data.reading import as_read_options

            reading = as_read_options(reading).with_(time_col=time_col).to_dict()
        return cls(time_col=time_col, targets=tuple(spec.targets),
                   covariates=tuple(spec.past_covariates), freq=forecaster.freq, fill=fill,
                   max_gap=max_gap, reading=reading)

    def write(self, folder) -> Path:
        path = Path(folder) / SERVING_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def read(cls, folder) -> ServingInfo:
        """Reads ``serving.json`` from a saved-forecaster folder.

        Raises:
            ModelError: the file is missing or not valid.
        """
        path = Path(folder) / SERVING_FILE
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} cannot be read ({type(exc).__name__}: {exc}); log the "
                             "model again with forecast.serving.log_forecaster.") from None


def as_raw_history(frame: pd.DataFrame, time_col: str) -> pd.DataFrame:
    """Puts a time-indexed frame's index back into the column ``time_col`` (raw frames pass)."""
    if time_col in frame.columns or not isinstance(frame.index, pd.DatetimeIndex):
        return frame
    out = frame.copy()
    out.index = out.index.rename(time_col)
    return out.reset_index()


def model_input(model, history):
    """The columns of ``history`` that a logged model reads, for ``model.predict``.

    A CSV of recent history usually has the training file's layout, with columns the model does
    not read (the training run named only some as targets and covariates). MLflow's schema
    check drops such columns before the model sees them, logging "Found extra inputs in the
    model input that are not defined in the model signature … will be ignored" for every call;
    passing only the columns the signature names gives the model the same frame, without it.

    Args:
        model: the loaded ``mlflow.pyfunc.PyFuncModel`` (``forecast.serving.load_model``).
        history: the raw history (a DataFrame); anything else is passed through unchanged.

    Returns:
        ``history`` with only the signature's columns, in their order in ``history``; unchanged
        when the model has no column signature or ``history`` holds no other columns. Missing
        columns are left missing: the model names them in its error.

    Example:
        >>> model.predict(model_input(model, read_history(csv)))
    """
    if not isinstance(history, pd.DataFrame):
        return history
    metadata = getattr(model, "metadata", None)
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None or not schema.has_input_names():
        return history
    names = set(schema.input_names())
    kept = [column for column in history.columns if column in names]
    return history if len(kept) == len(history.columns) else history[kept]


def forecast_history(forecaster, info: ServingInfo, history, *, source: str = SOURCE):
    """Validates raw history and forecasts the ``horizon`` steps after its last timestamp.

    Args:
        forecaster: the fitted ``Forecaster``.
        info: the ``ServingInfo`` (time column, fill policy, reading settings).
        history: a DataFrame with ``info.time_col`` (datetimes or text) and the input columns,
            at least ``lookback`` rows (the last ones are used); a time-indexed frame works too.
        source: how error messages name the input.

    Returns:
        A DataFrame with the column ``info.time_col`` (the future timestamps), then one column
        per target in original units and, for quantile models, ``<target>_q<level>`` columns,
        and for a forecaster with conformal intervals (``forecast train --interval``)
        ``<target>_lo_<pct>``/``<target>_hi_<pct>`` per level; ``horizon`` rows, a plain
        ``RangeIndex``.

    Raises:
        DataError: missing columns, too few rows, gaps longer than the fill limit, bad values,
            history of another frequency than the model's.
    """
    from forecast.data.io import validate_frame
    from forecast.data.validation import quote_list

    if not isinstance(history, pd.DataFrame):
        raise DataError(f"{source!r}: expected a DataFrame of recent history with the columns "
                        f"{[info.time_col, *info.input_columns]}; received "
                        f"{type(history).__name__}.")
    lookback = forecaster.spec.lookback
    raw = as_raw_history(history, info.time_col)
    expected = [info.time_col, *info.input_columns]
    missing = [name for name in expected if name not in raw.columns]
    if missing:
        raise DataError(
            f"{source!r}: lacks the column(s) {quote_list(missing)}. The model reads the time "
            f"column {info.time_col!r} and {quote_list(info.input_columns)}: send at least "
            f"{lookback} rows of recent history with these columns."
        )
    frame = validate_frame(
        raw, source=source, time_col=info.time_col,
        targets=list(info.targets), covariates=list(info.covariates) or None, freq=info.freq,
        fill=info.fill, max_gap=info.max_gap, min_rows=lookback,
        min_rows_reason=f"the model's lookback is {lookback}",
        reading=info.read_options.with_(time_col=info.time_col), freq_owner="the model",
    )
    forecast = forecaster.predict(frame)
    forecast.index = forecast.index.rename(info.time_col)
    return forecast.reset_index()


# -- errors that both MLflow's scoring server and Python callers understand ----------------------

#: How much of a client's over-long cell or column name an error message may quote.
ECHO_LIMIT = 40
#: A text cell longer than this is no number or timestamp (an ISO timestamp with nanoseconds
#: and an offset has 35 characters); it is cut to ``ECHO_LIMIT`` characters (plus "…", so it
#: stays invalid) before validation, so no message ever echoes a whole payload back.
CLIP_OVER = 100
#: The ``forecast serve`` middleware sets a dict here for each request; the served model's
#: error path records its own one-line message (and HTTP status) in it, so the server can answer
#: with exactly that message instead of MLflow's "Failed to predict data '<the whole frame>'".
ERROR_REPORT: ContextVar[dict | None] = ContextVar("forecast_serving_error", default=None)


def short_text(value, limit: int = ECHO_LIMIT) -> str:
    """``str(value)`` cut to ``limit`` characters (with "…" when cut), on one line."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _clip_echoes(frame: pd.DataFrame, keep=()) -> pd.DataFrame:
    """The frame with text cells and column names over ``CLIP_OVER`` characters cut short.

    Only cells that could never be valid are touched (longer than any number or timestamp), and
    they stay invalid ("…" is not a digit), so validation still names the right row and column.
    Column names in ``keep`` (the model's own) are never renamed.
    """
    long_names = [c for c in frame.columns
                  if isinstance(c, str) and len(c) > CLIP_OVER and c not in keep]
    text_columns = [c for c in frame.columns
                    if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    cuts = {}
    for column in text_columns:
        values = frame[column]
        lengths = values.map(lambda v: len(v) if isinstance(v, str) else 0)
        if (lengths > CLIP_OVER).any():
            cuts[column] = values.map(
                lambda v: short_text(v) if isinstance(v, str) and len(v) > CLIP_OVER else v)
    if not cuts and not long_names:
        return frame
    out = frame.copy()
    for column, values in cuts.items():
        out[column] = values
    return out.rename(columns={c: short_text(c) for c in long_names})


class ServingDataError(DataError, MlflowException):
    """A DataError raised inside the served model; MLflow's server answers it with HTTP 400."""


class ServingConfigError(ConfigError, MlflowException):
    """A ConfigError raised inside the served model (HTTP 400)."""


class ServingModelError(ModelError, MlflowException):
    """A ModelError raised inside the served model (HTTP 500)."""


class NonFiniteForecastError(ServingModelError):
    """The model produced NaN or infinite forecasts from a history that passed validation.

    HTTP 422 (Unprocessable Content), not 500: the request was well formed and the server is
    healthy, but this model cannot forecast from this history (typically values far outside the
    training range overflow the network's float32 arithmetic); sending the same request again
    fails the same way, which a 5xx would invite clients to do. A 200 carrying ``NaN`` (not valid
    JSON) is never sent.
    """

    def get_http_status_code(self) -> int:
        return 422


def _for_mlflow(exc: ForecastError) -> MlflowException:
    """The same error as an MlflowException too, so the scoring server shows its message."""
    message = str(exc)
    if isinstance(exc, DataError):
        return ServingDataError(message, error_code=INVALID_PARAMETER_VALUE)
    if isinstance(exc, ConfigError):
        return ServingConfigError(message, error_code=INVALID_PARAMETER_VALUE)
    return ServingModelError(message, error_code=INTERNAL_ERROR)


def _report(exc: MlflowException) -> MlflowException:
    """Records ``exc``'s message and status for the ``forecast serve`` middleware; returns it."""
    report = ERROR_REPORT.get()
    if report is not None:
        report["message"] = " ".join(str(exc.message).split())
        report["status"] = exc.get_http_status_code()
    return exc


def _check_finite(forecast: pd.DataFrame, source: str) -> pd.DataFrame:
    """Raises NonFiniteForecastError when a forecast column holds NaN or ±inf."""
    import numpy as np

    for column in forecast.columns:
        values = forecast[column]
        if not pd.api.types.is_numeric_dtype(values):
            continue
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            raise NonFiniteForecastError(
                f"{source!r}: the model produced non-finite values (NaN or infinity) in "
                f"{int(bad.sum())} of {len(values)} forecast row(s) of {column!r}. The history "
                "passed validation, so its values are probably far outside what the model was "
                "trained on: check their scale, or retrain the model on data of that range.",
                error_code=INTERNAL_ERROR)
    return forecast


class ForecastModel(mlflow.pyfunc.PythonModel):
    """A saved ``Forecaster`` as an MLflow pyfunc model: raw history in, forecast frame out.

    Artifacts:
        ``"forecaster"``: a folder with ``model.keras``, ``forecaster.json`` and
        ``serving.json`` (loaded with Keras ``safe_mode=True``; nothing is unpickled).

    Example:
        >>> model = forecast.load("models:/sales@champion")
        >>> model.predict(pd.DataFrame({"date": [...], "y": [...]}))   # horizon rows
    """

    def __init__(self):
        self.forecaster = None
        self.info: ServingInfo | None = None

    def load_context(self, context) -> None:
        """Loads the forecaster and its serving settings from the ``"forecaster"`` artifact.

        Raises:
            ModelError: the artifact is missing or does not hold a saved forecaster.
        """
        from forecast.forecaster import Forecaster

        folder = (context.artifacts or {}).get(ARTIFACT_KEY)
        if folder is None:
            raise ModelError(f"the MLflow model has no {ARTIFACT_KEY!r} artifact; log it with "
                             "forecast.serving.log_forecaster.")
        self.forecaster = Forecaster.load(folder)
        self.info = ServingInfo.read(folder)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        """Forecasts the ``horizon`` steps after the last timestamp of ``model_input``.

        Args:
            context: the MLflow context (unused; the forecaster is loaded in ``load_context``).
            model_input: a DataFrame of raw recent history: the time column (datetimes or ISO
                text) and the input columns, at least ``lookback`` rows.
            params: optional ``{"source": NAME}``: how error messages name the input (the CLI
                passes the CSV's path).

        Returns:
            A DataFrame: the time column with the future timestamps, the target forecasts in
            original units and, for quantile models, ``<target>_q<level>`` columns; with
            conformal intervals, ``<target>_lo_<pct>``/``<target>_hi_<pct>`` (e.g. ``y_lo_90``).
            Every value is finite.

        Raises:
            DataError: the input cannot be used (missing column, too few rows, a gap too long);
                it is also an ``MlflowException`` so that the scoring server answers HTTP 400
                with the message. Text the caller sent is quoted at most ``ECHO_LIMIT``
                characters long.
            ModelError: ``NonFiniteForecastError`` (HTTP 422) when the forecast holds NaN or
                infinity.
        """
        if self.forecaster is None:
            raise _report(ServingModelError("ForecastModel.predict was called before "
                                            "load_context."))
        source = short_text((params or {}).get("source") or SOURCE, limit=200)
        try:
            if isinstance(model_input, pd.DataFrame):
                model_input = _clip_echoes(model_input, keep=(self.info.time_col,
                                                              *self.info.input_columns))
            forecast = forecast_history(self.forecaster, self.info, model_input, source=source)
            return _check_finite(forecast, source)
        except ForecastError as exc:
            if isinstance(exc, MlflowException):
                _report(exc)
                raise
            raise _report(_for_mlflow(exc)) from exc
