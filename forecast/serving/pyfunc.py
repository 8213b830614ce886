"""The served model: ``ForecastModel``, an ``mlflow.pyfunc.PythonModel`` over a saved Forecaster.

The MLflow model is the whole forecaster (DESIGN.md, "The served model is the whole
forecaster"): it takes the raw recent history — a DataFrame with the time column and the input
columns as in the training CSV, timestamps possibly as strings (JSON serving) — validates it like
``load_csv`` does, and returns the future timestamps with the forecast in original units.
Scaling, calendar features and windowing travel inside it.

A *global* model (trained over many series of a long-format file, ``--id-col``) is served the
same way: it takes long-format history (the id column, the time column and the input columns)
of any subset of the series it knows, in one request, and returns long format (``id, time,
<targets>...``), ``horizon`` rows per series. Series it has never seen are forecast only when
the model's numbers do not depend on the per-series scaling statistics it keeps
(``unseen_series_rule``); otherwise they are refused by name.

The model is logged as a *model from code* (``forecast/serving/model_code.py``, no cloudpickle).
Its one artifact, ``"forecaster"``, is the folder written by ``Forecaster.save`` plus
``serving.json``, which holds what ``forecaster.json`` does not: the time column's name and how
the raw history is validated (fill policy, longest gap) and how its text is read (separator,
decimal mark, date layout, time zone: the training file's ``ReadOptions``).
"""

from __future__ import annotations

import json
import logging
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

logger = logging.getLogger(__name__)


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
        id_col: a global model's series id column (long-format history in and out); None for
            a model of one series (and in models logged before global models were served).
        future_covariates: the known-future covariate columns (``--future-covariate``): read
            over the history and from the rows after it whose target cells are empty (the
            horizon's values); () for a model without them.
    """

    time_col: str
    targets: tuple[str, ...]
    covariates: tuple[str, ...] = ()
    freq: str | None = None
    fill: str = "interpolate"
    max_gap: int | None = None
    format: int = field(default=1)
    reading: dict | None = None
    id_col: str | None = None
    future_covariates: tuple[str, ...] = ()

    @property
    def is_global(self) -> bool:
        """Whether the served model is a global model over many series (long format)."""
        return self.id_col is not None

    @property
    def read_options(self):
        """The reading settings as a ``ReadOptions`` (defaults when none were saved)."""
        from forecast.data.reading import ReadOptions

        return ReadOptions.from_dict(self.reading)

    @property
    def input_columns(self) -> list[str]:
        return [*self.targets, *self.covariates, *self.future_covariates]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["targets"] = list(self.targets)
        data["covariates"] = list(self.covariates)
        data["future_covariates"] = list(self.future_covariates)
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
            id_col=data.get("id_col"),
            future_covariates=tuple(data.get("future_covariates") or ()),
        )

    @classmethod
    def for_forecaster(cls, forecaster, *, time_col: str, fill: str = "interpolate",
                       max_gap: int | None = None, reading=None,
                       id_col: str | None = None) -> ServingInfo:
        """The serving settings of a fitted forecaster.

        Args:
            forecaster: the fitted ``Forecaster``.
            time_col: the timestamp column of the raw history.
            fill, max_gap: the gap policy of the served model.
            reading: how the training file was read (a ``ReadOptions`` or its dict); its
                time column is replaced by ``time_col``.
            id_col: a global model's series id column; None takes the forecaster's own
                (``Forecaster.id_col``, read off its training frame), else ``"id"``. A model of
                one series takes none.

        Returns:
            The ``ServingInfo``.

        Raises:
            ConfigError: ``time_col`` or ``id_col`` is not a column name or names an input
                column, or ``id_col`` is given for a model of one series.
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
        id_col = _check_id_col(forecaster, id_col, time_col, inputs)
        if reading is not None:
            from forecast.data.reading import as_read_options

            reading = as_read_options(reading).with_(time_col=time_col).to_dict()
        return cls(time_col=time_col, targets=tuple(spec.targets),
                   covariates=tuple(spec.past_covariates), freq=forecaster.freq, fill=fill,
                   max_gap=max_gap, reading=reading, id_col=id_col,
                   future_covariates=tuple(forecaster.config.future_covariates))

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


def _check_id_col(forecaster, id_col, time_col: str, inputs: list[str]) -> str | None:
    """The id column a forecaster is served with (None for one series).

    Raises:
        ConfigError: ``id_col`` for a model of one series, or not a usable column name.
    """
    if not forecaster.is_global:
        if id_col is not None:
            raise ConfigError(
                f"`id_col` is only for a global model over many series; this forecaster was "
                f"trained on one series. Drop id_col (--id-col). Received: id_col={id_col!r}")
        return None
    if id_col is None:
        id_col = getattr(forecaster, "id_col", None) or "id"
    if not isinstance(id_col, str) or not id_col or id_col == time_col or id_col in inputs:
        raise ConfigError(
            f"`id_col` must name the series id column of the long-format history (a non-empty "
            f"string other than the time column {time_col!r} and the inputs {inputs}). "
            f"Received: id_col={id_col!r}")
    return id_col


def as_raw_history(frame: pd.DataFrame, time_col: str,
                   id_col: str | None = None) -> pd.DataFrame:
    """Puts a time-indexed frame's index back into columns (raw frames pass unchanged).

    Args:
        frame: raw history, a frame indexed by time (``load_csv``), or a long-format frame
            indexed by (id, time) (``load_csv(..., id_col=...)``).
        time_col: the name the time column gets.
        id_col: the name the id column gets (long format; default the index level's name).

    Returns:
        A frame with the time column (and, in long format, the id column first) as columns.
    """
    if time_col in frame.columns:
        return frame
    if isinstance(frame.index, pd.MultiIndex) and frame.index.nlevels == 2:
        out = frame.copy()
        out.index = out.index.set_names([id_col or frame.index.names[0] or "id", time_col])
        return out.reset_index()
    if not isinstance(frame.index, pd.DatetimeIndex):
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


def read_served_history(forecaster, info: ServingInfo, history, *,
                        source: str = SOURCE) -> pd.DataFrame:
    """Reads raw history as the served model does: the one reader of ``forecast_history``,
    ``forecast predict --plot`` and batch scoring.

    The history is checked and regularised by ``validate_frame`` with the model's saved
    settings, exactly as ``load_csv`` reads a training file: the reading settings (decimal
    mark, date layout, time zone), the fill policy and longest gap, the model's frequency and
    at least ``lookback`` rows — per series for a global model (``info.id_col``), whose
    messages name the series (and rows) at fault. Rows are not dropped here: whatever
    ``validate_frame`` keeps reaches ``Forecaster.predict``.

    Args:
        forecaster: the fitted ``Forecaster``.
        info: its ``ServingInfo``.
        history: a DataFrame with the time column (datetimes or text), the input columns and,
            for a global model, the id column; a frame indexed by time (or by (id, time))
            works too.
        source: how error messages name the input.

    Returns:
        The validated frame: indexed by time, or by (id, time) for a global model.

    Raises:
        DataError: not a DataFrame, missing columns, too few rows, gaps longer than the fill
            limit, bad values, history of another frequency than the model's.
    """
    from forecast.data.io import validate_frame
    from forecast.data.validation import quote_list

    expected = [*([info.id_col] if info.is_global else []), info.time_col, *info.input_columns]
    if not isinstance(history, pd.DataFrame):
        raise DataError(f"{source!r}: expected a DataFrame of recent history with the columns "
                        f"{expected}; received {type(history).__name__}.")
    lookback = forecaster.spec.lookback
    raw = as_raw_history(history, info.time_col, info.id_col)
    missing = [name for name in expected if name not in raw.columns]
    if missing:
        each = " of each series" if info.is_global else ""
        raise DataError(
            f"{source!r}: lacks the column(s) {quote_list(missing)}. The model reads "
            + (f"the id column {info.id_col!r}, " if info.is_global else "")
            + f"the time column {info.time_col!r} and {quote_list(info.input_columns)}: send "
            f"at least {lookback} rows of recent history{each} with these columns."
        )
    return validate_frame(
        raw, source=source, time_col=info.time_col, id_col=info.id_col,
        targets=list(info.targets),
        covariates=[*info.covariates, *info.future_covariates] or None, freq=info.freq,
        fill=info.fill, max_gap=info.max_gap, min_rows=lookback,
        min_rows_reason=f"the model's lookback is {lookback}",
        reading=info.read_options.with_(time_col=info.time_col), freq_owner="the model",
        # the rows after the history that carry the horizon's known-future covariates
        future_rows=bool(info.future_covariates),
    )


def unseen_series_rule(forecaster) -> str | None:
    """Why a global model can forecast series it was not trained on; None when it cannot.

    A global model scales each series with the statistics of that series' training part and
    keeps them per id; a series it has never seen has none. Its history can stand in for them
    (a scaler fitted on the rows sent) only where the forecast does not depend on them:

    - the naive and seasonal naive baselines (a baseline champion) repeat the series' own
      values: any scaling gives the same forecast, exactly;
    - ``instance_norm="revin"``: each window's targets are normalised by their own mean and
      standard deviation inside the network and the forecast mapped back, so the per-series
      centre and scale cancel (exactly for the targets; past covariates are scaled with the
      statistics of the history sent);
    - ``instance_norm="last"`` (the default): the window's last value is subtracted, so the
      centre cancels; the scale is estimated from the history sent instead of a training
      part: a good estimate needs a few seasons of history, not just ``lookback`` rows.

    Without instance normalisation (``instance_norm="none"``) or with the linear baseline the
    network reads the levels themselves, and with static covariates or an id embedding
    (``--static``, ``--id-embedding``) it reads what it learnt of each known series, so unseen
    series are refused.

    Args:
        forecaster: a fitted global ``Forecaster``.

    Returns:
        A short reason (for logs and messages), or None.
    """
    from forecast.forecaster import NETWORK

    if forecaster.kind in ("naive", "seasonal_naive"):
        return f"the {forecaster.kind} baseline repeats each series' own values"
    if forecaster.kind != NETWORK or getattr(forecaster, "statics", None) is not None:
        return None
    norm = forecaster.options.instance_norm
    if norm == "revin":
        return ("instance normalisation (revin) cancels each series' centre and scale; "
                "its scaler is fitted on the history sent")
    if norm == "last":
        return ("instance normalisation (last) cancels each series' level; its scale is "
                "estimated from the history sent")
    return None


def with_unseen_series(forecaster, frame: pd.DataFrame, *, source: str = SOURCE):
    """The global forecaster extended to the series of ``frame`` it was not trained on.

    Args:
        forecaster: a fitted global ``Forecaster`` (left unchanged: a shallow copy with a
            wider scaler is returned, so concurrent requests never share the statistics).
        frame: validated long-format history (``read_served_history``).
        source: how error messages name the input.

    Returns:
        ``forecaster`` itself when every series is known; else a copy whose scaler also holds
        statistics fitted on the history of each unseen series (see ``unseen_series_rule``).

    Raises:
        DataError: unseen series for a model that cannot forecast them (the message names
            them and what to do).
    """
    import copy

    import numpy as np

    from forecast.data.scaling import Scaler

    keys = frame.index.get_level_values(0).astype(str)
    known = set(forecaster.ids)
    unseen = [key for key in dict.fromkeys(keys) if key not in known]
    if not unseen:
        return forecaster
    shown = ", ".join(repr(key) for key in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
    rule = unseen_series_rule(forecaster)
    if rule is None:
        raise DataError(
            f"{source!r}: series {shown} are not known to this global model: it was trained on "
            f"{len(forecaster.ids)} series and keeps their scaling statistics (and any static "
            f"covariates or id embedding) for those only; forecasting others needs instance "
            f"normalisation (--instance-norm last/revin, YAML `model.instance_norm`) and no "
            f"--static/--id-embedding. Send known series only, or retrain with these series "
            f"in the training file.")
    logger.info("%r: series %s were not in the training data; %s.", source, shown, rule)
    columns = list(forecaster.scaler.columns)
    rows = frame[np.asarray(keys.isin(unseen))][columns]
    rows = rows[np.isfinite(rows.to_numpy(dtype=np.float64)).all(axis=1)]
    fitted = Scaler(forecaster.scaler.kind, columns).fit(rows)
    scaler = Scaler.from_json(forecaster.scaler.to_json())
    scaler.params.update(fitted.params)
    extended = copy.copy(forecaster)
    extended.scaler, extended.ids = scaler, [*forecaster.ids, *unseen]
    return extended


def forecast_history(forecaster, info: ServingInfo, history, *, source: str = SOURCE):
    """Validates raw history and forecasts the ``horizon`` steps after its last timestamp.

    Args:
        forecaster: the fitted ``Forecaster``.
        info: the ``ServingInfo`` (time column, id column, fill policy, reading settings).
        history: a DataFrame with ``info.time_col`` (datetimes or text) and the input columns,
            at least ``lookback`` rows (the last ones are used); a time-indexed frame works too.
            For a global model, long format: ``info.id_col`` too, any subset of the series
            it knows (and unseen series where ``unseen_series_rule`` allows), at least
            ``lookback`` rows of each.
        source: how error messages name the input.

    Returns:
        A DataFrame with the column ``info.time_col`` (the future timestamps), then one column
        per target in original units and, for quantile models, ``<target>_q<level>`` columns,
        and for a forecaster with conformal intervals (``forecast train --interval``)
        ``<target>_lo_<pct>``/``<target>_hi_<pct>`` per level; ``horizon`` rows, a plain
        ``RangeIndex``. For a global model: long format, the column ``info.id_col`` (text)
        first, ``horizon`` rows per series in the order of the history.

    Raises:
        DataError: missing columns, too few rows, gaps longer than the fill limit, bad values,
            history of another frequency than the model's; for a global model, series it
            cannot forecast (named).
    """
    frame = read_served_history(forecaster, info, history, source=source)
    if info.is_global:
        forecaster = with_unseen_series(forecaster, frame, source=source)
        return forecaster.predict(frame)
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
                text) and the input columns, at least ``lookback`` rows. For a global model,
                long format: the id column too, any subset of its series in one frame (series
                it was not trained on: see ``unseen_series_rule``), ``lookback`` rows of each.
            params: optional ``{"source": NAME}``: how error messages name the input (the CLI
                passes the CSV's path).

        Returns:
            A DataFrame: the time column with the future timestamps, the target forecasts in
            original units and, for quantile models, ``<target>_q<level>`` columns; with
            conformal intervals, ``<target>_lo_<pct>``/``<target>_hi_<pct>`` (e.g. ``y_lo_90``).
            For a global model the id column comes first, ``horizon`` rows per series.
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
                model_input = _clip_echoes(model_input, keep=(
                    *([self.info.id_col] if self.info.is_global else []), self.info.time_col,
                    *self.info.input_columns))
            forecast = forecast_history(self.forecaster, self.info, model_input, source=source)
            return _check_finite(forecast, source)
        except ForecastError as exc:
            if isinstance(exc, MlflowException):
                _report(exc)
                raise
            raise _report(_for_mlflow(exc)) from exc
