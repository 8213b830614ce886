"""Scoring a logged forecaster on Spark: a long-format table in, a long-format forecast out.

Where one machine's ``forecast predict`` is outgrown (millions of series), the same MLflow pyfunc
model scores on Spark, grouped by the series id (``forecast predict --spark``, or
``score_table`` / ``forecast_table`` from Python):

- **applyInPandas, not spark_udf.** ``mlflow.pyfunc.spark_udf`` calls the model on Arrow batches
  of *rows* that Spark cuts wherever it likes, so a call may hold half a series or parts of
  many. Our model needs a series' whole recent history in one call (``lookback`` rows, in time
  order) and returns ``horizon`` rows, not one per input row. So the table is grouped —
  ``groupBy(id).applyInPandas(...)`` — and each call gets whole series: one series for a
  single-series model, a batch of whole series (``pmod(xxhash64(id), buckets)``) for a global
  model, whose pyfunc takes long format and forecasts a batch in one network call.
- **The model reaches the workers as spark_udf ships it.** The driver copies the model from its
  URI (``models:/NAME@champion``, ``runs:/…``, a folder) with ``forecast.serving.load``'s
  ``download_model``, which checks that its code file is forecast's own; the folder is zipped
  and handed to ``SparkContext.addFile``; each Python worker fetches it with ``SparkFiles.get``,
  unpacks it, checks it again and loads it with ``mlflow.pyfunc.load_model`` once per worker
  process (a module-level cache, as ``mlflow.pyfunc.spark_model_cache.SparkModelCache`` does),
  not once per group. spark_udf uses the driver's local path only in local mode; here the
  ``addFile`` path is used in every mode, so the ``local[2]`` tests run the path a cluster takes.
- **The same text the CLI reads.** A CSV is read by Spark as text cells (no schema inference);
  the model parses and validates each series' cells with its saved reading settings, as
  ``forecast predict --csv`` does; rows reach the model in the file's order
  (``monotonically_increasing_id`` before the shuffle). Parquet columns arrive typed.
- **Errors.** By default the first series that cannot be forecast (too short a history, a gap
  too long, a series a global model does not know, a bad cell) stops the job with a
  ``DataError`` that names the series and says what is wrong. With ``skip_errors=True``
  (``--skip-errors``) such series are left out of the forecast and listed, one row per series
  with the model's message, in a second output (``<out>.errors``), and the count is returned.

Example:
    >>> from forecast.serving.spark import score_table
    >>> result = score_table("models:/sales@champion", "history/", fmt="parquet",
    ...                      id_col="store", out="forecasts/")
    >>> result.series, result.failed
    (120000, 0)
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.errors import ConfigError, DataError, ForecastError, ModelError, cut

#: Input formats ``read_table`` takes (``--csv`` / ``--parquet``).
FORMATS = ("csv", "parquet")
#: The Spark master ``forecast predict --spark`` starts when none is given (``--spark-master``).
DEFAULT_MASTER = "local[2]"
#: The column of a skipped series' message in the errors output (``skip_errors=True``).
ERROR_COL = "error"
#: Columns added for the shuffle and removed before the model sees the rows.
_ROW, _BUCKET = "__forecast_row", "__forecast_bucket"
#: Marks a ForecastError's message inside Spark's worker traceback, so the driver can raise it.
_MARK, _END = "<<forecast-error:", ":forecast-error>>"
_ERROR_KINDS = {"DataError": DataError, "ConfigError": ConfigError, "ModelError": ModelError}
INSTALL_HINT = ("pyspark is not installed: `pip install 'forecast[spark]'` (pyspark 4.x, which "
                "needs Java 17), or run `make test-spark`, which builds .venv-spark with it.")


def require_pyspark():
    """Imports pyspark, or says how to install it.

    Returns:
        The ``pyspark`` module.

    Raises:
        ConfigError: pyspark is not installed (the message says ``pip install 'forecast[spark]'``
            or ``make test-spark``).
    """
    try:
        import pyspark
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return pyspark


# -- the model, as the driver reads it -----------------------------------------------------------


@dataclass(frozen=True)
class ModelLayout:
    """What the driver needs to know about a model to score it on Spark (read without loading it).

    Attributes:
        uri: the model URI as the user gave it (for messages).
        folder: the verified local copy of the MLflow model folder.
        time_col: the time column of the raw history and of the forecast.
        inputs: the columns the model reads besides the time column.
        outputs: the forecast columns besides the time (and id) column: targets, then quantile
            or interval columns, in the model's order.
        is_global: one global model over many series (its pyfunc takes long format).
        model_id_col: a global model's id column name (None: the caller's id column is used).
        tz_aware: the forecast timestamps carry a time zone (the model reads with ``--tz``).
        sep: the field separator of the training file (None: not recorded; read with ``,``).
    """

    uri: str
    folder: Path
    time_col: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    is_global: bool = False
    model_id_col: str | None = None
    tz_aware: bool = False
    sep: str | None = None

    @property
    def history_columns(self) -> list[str]:
        return [self.time_col, *self.inputs]


def read_layout(uri: str, folder) -> ModelLayout:
    """Reads the model's columns from its ``MLmodel`` signature and ``serving.json``.

    Args:
        uri: the model URI (for messages).
        folder: a local model folder already checked by ``verify_model_folder``.

    Returns:
        The ``ModelLayout``.

    Raises:
        ModelError: the folder lacks a signature or the ``forecaster`` artifact.
    """
    from mlflow.models import Model

    from forecast.forecaster import STATE_FILE
    from forecast.serving.pyfunc import ARTIFACT_KEY, ServingInfo

    folder = Path(folder)
    meta = Model.load(str(folder))
    flavor = meta.flavors.get("python_function") or {}
    artifact = ((flavor.get("artifacts") or {}).get(ARTIFACT_KEY) or {}).get("path")
    if not artifact or not (folder / artifact).is_dir():
        raise ModelError(f"{uri}: the MLflow model has no {ARTIFACT_KEY!r} artifact; log it with "
                         "forecast.serving.log_forecaster (forecast train --save DIR).")
    files = folder / artifact
    info = ServingInfo.read(files)
    try:
        state = json.loads((files / STATE_FILE).read_text())
    except (OSError, ValueError):
        state = {}
    is_global = bool(state.get("ids"))
    model_id_col = getattr(info, "id_col", None) or (state.get("id_col") if is_global else None)
    schema = meta.get_output_schema() if meta.signature is not None else None
    if schema is None or not schema.has_input_names():
        raise ModelError(f"{uri}: the MLflow model has no output signature, so the forecast's "
                         "columns are unknown; log it again with this version of forecast.")
    skip = {info.time_col, model_id_col}
    outputs = tuple(name for name in schema.input_names() if name not in skip)
    tz_aware = bool((info.reading or {}).get("tz"))
    sep = (info.reading or {}).get("sep")
    return ModelLayout(uri=uri, folder=folder, time_col=info.time_col,
                       inputs=tuple(info.input_columns), outputs=outputs, is_global=is_global,
                       model_id_col=model_id_col, tz_aware=tz_aware, sep=sep)


def output_schema(layout: ModelLayout, id_col: str, *, skip_errors: bool = False):
    """The Spark schema of the forecast: ``id_col`` (string), the time column, the forecasts.

    The time column is ``TimestampNTZType`` (naive wall-clock times, as the CSV had them) or,
    for a model that reads with a time zone, ``TimestampType``; every forecast column is a
    double. With ``skip_errors`` a last column ``error`` (string) holds a skipped series' message.

    Args:
        layout: the model's layout (``read_layout``).
        id_col: the series id column of the table.
        skip_errors: add the ``error`` column.

    Returns:
        A ``pyspark.sql.types.StructType``.
    """
    from pyspark.sql.types import (
        DoubleType,
        StringType,
        StructField,
        StructType,
        TimestampNTZType,
        TimestampType,
    )

    time_type = TimestampType() if layout.tz_aware else TimestampNTZType()
    fields = [StructField(id_col, StringType(), False), StructField(layout.time_col, time_type)]
    fields += [StructField(name, DoubleType()) for name in layout.outputs]
    if skip_errors:
        fields.append(StructField(ERROR_COL, StringType()))
    return StructType(fields)


# -- shipping the model to the workers -----------------------------------------------------------

_LOCAL_COPIES: list[str] = []


def _remove_local_copies() -> None:
    for path in _LOCAL_COPIES:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(_remove_local_copies)


def ship_model(spark, uri: str) -> tuple[ModelLayout, str]:
    """Copies and verifies the model on the driver and hands it to the workers (``addFile``).

    Args:
        spark: the ``SparkSession``.
        uri: ``models:/NAME@alias``, ``runs:/…`` or a local model folder.

    Returns:
        ``(layout, archive)``: the model's layout and the zip's file name, which the workers
        pass to ``SparkFiles.get``. The driver's copies are removed when the process exits.

    Raises:
        ModelError: nothing loadable at ``uri``, or its code is not forecast's (nothing of it
            has run).
    """
    from forecast.serving.load import download_model

    local = tempfile.mkdtemp(prefix="forecast-spark-")
    _LOCAL_COPIES.append(local)
    folder = download_model(uri, Path(local) / "download")
    layout = read_layout(uri, folder)
    archive = shutil.make_archive(str(Path(local) / f"forecast-model-{Path(local).name}"), "zip",
                                  str(folder))
    spark.sparkContext.addFile(archive)
    return layout, os.path.basename(archive)


#: The models this Python worker process has loaded, by archive name: loaded once per process.
_WORKER_MODELS: dict = {}


def worker_model(archive: str):
    """The pyfunc model of ``archive`` in this worker process, unpacked and loaded on first use.

    Args:
        archive: the zip's file name (``ship_model``).

    Returns:
        The ``mlflow.pyfunc.PyFuncModel``.

    Raises:
        ModelError: the unpacked folder's code is not forecast's.
    """
    model = _WORKER_MODELS.get(archive)
    if model is not None:
        return model
    import mlflow.pyfunc
    from pyspark import SparkFiles

    from forecast.serving.load import verify_model_folder

    folder = tempfile.mkdtemp(prefix="forecast-spark-model-")
    with zipfile.ZipFile(SparkFiles.get(archive)) as packed:
        packed.extractall(folder)
    verify_model_folder(folder)
    model = _WORKER_MODELS[archive] = mlflow.pyfunc.load_model(folder)
    return model


# -- the function each group runs ----------------------------------------------------------------


@dataclass(frozen=True)
class GroupScorer:
    """Forecasts the series of one group (``applyInPandas``).

    A frozen dataclass of plain fields in an importable module: cloudpickle sends its fields to
    the workers and imports the class (and this module's per-process model cache) there.

    Attributes:
        archive: the model zip's file name (``ship_model``).
        layout: the model's layout.
        id_col: the table's series id column.
        source: how messages name the table (its path).
        skip_errors: return a failed series as one row with its message instead of failing.
    """

    archive: str
    layout: ModelLayout
    id_col: str
    source: str
    skip_errors: bool = False
    columns: tuple[str, ...] = field(default=())

    def __call__(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """Forecasts every series in ``pdf`` (rows of one group, any order).

        Returns:
            The forecast rows in the output schema's column order.

        Raises:
            RuntimeError: a series cannot be forecast (``skip_errors`` off): the message
                carries the ForecastError's kind and text between markers, for the driver.
        """
        try:
            model = worker_model(self.archive)
        except ForecastError as exc:
            raise _carry(exc) from None
        pdf = pdf.sort_values(_ROW, kind="stable").drop(columns=[c for c in (_ROW, _BUCKET)
                                                                 if c in pdf.columns])
        pdf[self.id_col] = pdf[self.id_col].astype(str)
        if self.layout.is_global:
            try:
                return _numpy_backed(self._shape(self._predict_global(model, pdf)))
            except ForecastError as exc:
                if not self.skip_errors:
                    raise _carry(exc) from None
            # one bad series fails the whole batch: score its series one by one to isolate it
        parts = []
        for key, series in pdf.groupby(self.id_col, sort=False):
            try:
                if self.layout.is_global:
                    parts.append(self._shape(self._predict_global(model, series)))
                else:
                    parts.append(self._shape(self._predict_one(model, key, series)))
            except ForecastError as exc:
                if not self.skip_errors:
                    raise _carry(exc) from None
                parts.append(self._failed(key, exc))
        if not parts:
            return pd.DataFrame({name: [] for name in self.columns})
        return _numpy_backed(pd.concat(parts, ignore_index=True))

    def _name(self, key) -> str:
        return f"{self.source} (series {key!r})"

    def _predict_one(self, model, key, series: pd.DataFrame) -> pd.DataFrame:
        history = series[[c for c in self.layout.history_columns if c in series.columns]]
        out = _call(model, history.reset_index(drop=True), self._name(key))
        out.insert(0, self.id_col, key)
        return out

    def _predict_global(self, model, frame: pd.DataFrame) -> pd.DataFrame:
        model_id = self.layout.model_id_col or self.id_col
        history = frame[[self.id_col, *[c for c in self.layout.history_columns
                                        if c in frame.columns]]]
        if model_id != self.id_col:
            history = history.rename(columns={self.id_col: model_id})
        # the long-format pyfunc names a failing series itself ("series 'a' (id column ...)")
        out = _call(model, history.reset_index(drop=True), self.source)
        if model_id != self.id_col:
            out = out.rename(columns={model_id: self.id_col})
        out[self.id_col] = out[self.id_col].astype(str)
        return out

    def _shape(self, out: pd.DataFrame) -> pd.DataFrame:
        time_col = self.layout.time_col
        times = pd.to_datetime(out[time_col])
        if getattr(times.dt, "tz", None) is not None and not self.layout.tz_aware:
            times = times.dt.tz_localize(None)
        ids = np.array([str(key) for key in out[self.id_col]], dtype=object)
        shaped = pd.DataFrame({self.id_col: ids, time_col: times.reset_index(drop=True)})
        for name in self.layout.outputs:
            shaped[name] = pd.to_numeric(out[name]).to_numpy(dtype="float64")
        if self.skip_errors:
            shaped[ERROR_COL] = np.array([None] * len(shaped), dtype=object)
        return shaped

    def _failed(self, key, exc: ForecastError) -> pd.DataFrame:
        row = {self.id_col: np.array([str(key)], dtype=object),
               self.layout.time_col: [pd.NaT]}
        row.update({name: [float("nan")] for name in self.layout.outputs})
        row[ERROR_COL] = np.array([" ".join(str(exc).split())], dtype=object)
        frame = pd.DataFrame(row)
        frame[self.layout.time_col] = pd.to_datetime(frame[self.layout.time_col])
        return frame


def _numpy_backed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text columns as NumPy objects: pyspark's Arrow conversion refuses
    pandas 3's Arrow-backed ``str`` columns ("Cannot convert pyarrow.lib.ChunkedArray to
    pyarrow.lib.Array")."""
    for name in frame.columns:
        if frame[name].dtype != object and pd.api.types.is_string_dtype(frame[name]):
            frame[name] = frame[name].astype(object)
    return frame


def _call(model, history: pd.DataFrame, source: str) -> pd.DataFrame:
    """``model.predict`` with ``source`` naming the input; MLflow's own input errors (not ours)
    become a DataError naming it too."""
    from mlflow.exceptions import MlflowException

    try:
        return model.predict(history, params={"source": source})
    except MlflowException as exc:
        if isinstance(exc, ForecastError):
            raise
        raise DataError(f"{source!r}: {' '.join(exc.message.split())}") from None


def _carry(exc: ForecastError) -> RuntimeError:
    kind = next((name for name, cls in _ERROR_KINDS.items() if isinstance(exc, cls)), "DataError")
    return RuntimeError(f"{_MARK}{kind}:{' '.join(str(exc).split())}{_END}")


def _carried(exc: BaseException) -> ForecastError | None:
    """The ForecastError a worker carried inside a Spark failure (None: some other failure)."""
    found = re.search(re.escape(_MARK) + r"(\w+):(.*?)" + re.escape(_END), str(exc), re.S)
    if found is None:
        return None
    return _ERROR_KINDS.get(found.group(1), DataError)(found.group(2))


# -- reading, scoring, writing -------------------------------------------------------------------


def spark_session(master: str = DEFAULT_MASTER, *, app_name: str = "forecast-predict"):
    """A SparkSession on ``master`` whose Python workers run this interpreter (and so find
    forecast and its dependencies), with UTC as the session time zone.

    Args:
        master: the Spark master URL (``local[2]``, ``spark://host:7077``, ...).
        app_name: the application's name in Spark's UI.

    Returns:
        The ``SparkSession`` (``getOrCreate``: an active session is reused).

    Raises:
        ConfigError: pyspark is missing, or Spark cannot start (no Java: the message says what
            to install).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false"))
    cores = re.fullmatch(r"local\[(\d+)\]", master)
    if cores:  # one machine: a few shuffle partitions per core, not Spark's 200
        builder = builder.config("spark.sql.shuffle.partitions", str(4 * int(cores.group(1))))
    try:
        return builder.getOrCreate()
    except Exception as exc:  # pyspark raises plain RuntimeErrors/Py4J errors here
        text = " ".join(str(exc).split())[:300]
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise ConfigError("Spark needs Java 17 and `java` is not on PATH (nor JAVA_HOME "
                              "set): install it (Debian: apt-get install "
                              "openjdk-17-jre-headless; `make test-spark` does).") from None
        raise ConfigError(f"--spark-master {master}: Spark did not start ({text}).") from None


def read_table(spark, path, *, fmt: str, sep: str = ","):
    """Reads a long-format table with Spark: a CSV as text cells (no inference), or Parquet.

    Args:
        spark: the ``SparkSession``.
        path: a file or a folder of part files.
        fmt: ``"csv"`` or ``"parquet"``.
        sep: the CSV's field separator.

    Returns:
        A Spark DataFrame.

    Raises:
        ConfigError: an unknown ``fmt``.
        DataError: nothing at ``path`` or Spark cannot read it.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"the input format must be one of {list(FORMATS)} (--csv or "
                          f"--parquet). Received: {fmt!r}")
    flag = f"--{fmt}"
    local = Path(str(path))
    if "://" not in str(path) and not local.exists():
        raise DataError(f"{flag} {path}: no such file or folder; pass the long-format table "
                        "to score.")
    try:
        if fmt == "csv":
            return spark.read.csv(str(path), header=True, inferSchema=False, sep=sep)
        return spark.read.parquet(str(path))
    except Exception as exc:  # Spark's AnalysisException and friends
        text = " ".join(str(exc).split())[:200]
        raise DataError(f"{flag} {path}: Spark cannot read it as {fmt} ({text}).") from None


@dataclass(frozen=True)
class SparkResult:
    """What ``score_table`` wrote.

    Attributes:
        out: the forecast's folder (Spark writes part files).
        series: how many series were forecast.
        rows: how many forecast rows were written.
        failed: how many series were skipped (``skip_errors``); their messages are in
            ``errors_out``.
        errors_out: the folder of skipped series and their messages, or None.
    """

    out: Path
    series: int
    rows: int
    failed: int = 0
    errors_out: Path | None = None


def forecast_table(spark, uri: str, table, *, id_col: str, source: str = "the table",
                   skip_errors: bool = False, buckets: int | None = None, shipped=None):
    """Forecasts every series of a long-format Spark DataFrame with the model at ``uri``.

    A lazy Spark DataFrame: nothing runs until it is written or collected. For a single-series
    model each series (group of ``id_col``) goes through the model alone, as ``forecast
    predict --csv`` would take its rows; for a global model, batches of whole series
    (``buckets`` groups by a hash of the id) go through its long-format pyfunc at once.

    Args:
        spark: the ``SparkSession``.
        uri: ``models:/NAME@alias``, ``runs:/…`` or a local model folder.
        table: a Spark DataFrame with ``id_col``, the model's time column and input columns
            (as text, as in a CSV, or typed); other columns are ignored.
        id_col: the series id column (``--id-col``).
        source: how messages name the table (its path).
        skip_errors: keep going past series that cannot be forecast; they come back as one row
            each with the message in the column ``error`` (every other row has it null).
        buckets: how many batches the series of a global model are split into (default: four
            per core of the session, ``defaultParallelism * 4``).
        shipped: ``ship_model(spark, uri)``'s result when the caller has shipped it already.

    Returns:
        A Spark DataFrame: ``id_col`` (string), the time column (the future timestamps), the
        forecast columns (targets, then quantiles or intervals); ``horizon`` rows per series.

    Raises:
        ConfigError: ``id_col`` is not a column of the table (``--id-col``), bad ``buckets``.
        DataError: the table lacks the model's columns.
        ModelError: nothing loadable at ``uri``.
    """
    from pyspark.sql import functions as F

    columns = list(table.columns)
    if id_col not in columns:
        raise ConfigError(f"{source}: no column {id_col!r} (--id-col); its columns are "
                          f"{columns[:20]}.")
    if buckets is not None and (not isinstance(buckets, int) or buckets < 1):
        raise ConfigError(f"`buckets` must be a positive integer. Received: buckets={buckets!r}")
    layout, archive = shipped or ship_model(spark, uri)
    missing = [c for c in layout.history_columns if c not in columns]
    if missing:
        raise DataError(f"{source}: lacks the column(s) {missing}; the model {uri} reads the "
                        f"time column {layout.time_col!r} and {list(layout.inputs)} (and the id "
                        f"column {id_col!r}).")
    if id_col in layout.history_columns or id_col in layout.outputs:
        raise ConfigError(f"--id-col {id_col}: is one of the model's own columns "
                          f"({layout.history_columns}); name the series id column.")
    schema = output_schema(layout, id_col, skip_errors=skip_errors)
    scorer = GroupScorer(archive=archive, layout=layout, id_col=id_col, source=source,
                         skip_errors=skip_errors, columns=tuple(schema.fieldNames()))
    rows = table.select(F.col(id_col).cast("string").alias(id_col),
                        *[F.col(c) for c in layout.history_columns]) \
        .withColumn(_ROW, F.monotonically_increasing_id())

    def score(pdf: pd.DataFrame) -> pd.DataFrame:  # one argument: Spark passes the rows only
        return scorer(pdf)

    if layout.is_global:
        count = buckets or spark.sparkContext.defaultParallelism * 4
        rows = rows.withColumn(_BUCKET, F.pmod(F.xxhash64(F.col(id_col)), F.lit(count)))
        return rows.groupBy(_BUCKET).applyInPandas(score, schema=schema)
    return rows.groupBy(id_col).applyInPandas(score, schema=schema)


def _check_out(out: Path, flag: str = "--out") -> None:
    if out.exists():
        raise ConfigError(f"{flag} {out}: already exists; Spark writes a new folder of part "
                          "files there: remove it or pass another path.")


def score_table(uri: str, path, *, fmt: str, id_col: str, out, out_format: str | None = None,
                spark=None, master: str = DEFAULT_MASTER, skip_errors: bool = False,
                sep: str | None = None, buckets: int | None = None) -> SparkResult:
    """Reads a long-format table, forecasts every series on Spark and writes the forecasts.

    Args:
        uri: ``models:/NAME@alias``, ``runs:/…`` or a local model folder (``--model``).
        path: the table: a CSV file or folder (``--csv``) or Parquet (``--parquet``).
        fmt: ``"csv"`` or ``"parquet"``.
        id_col: the series id column (``--id-col``).
        out: the folder to write (it must not exist; ``--out``).
        out_format: ``"csv"`` or ``"parquet"`` (default: ``fmt``).
        spark: a ``SparkSession`` to use; default the active one, else one started on
            ``master`` and stopped after.
        master: the Spark master when none is given (``--spark-master``, default local[2]).
        skip_errors: skip series that cannot be forecast and list them in ``<out>.errors``
            (``--skip-errors``); default: the first such series fails the job.
        sep: the CSV's separator (default: the one the model was trained with, else ``,``).
        buckets: batches of a global model's series (see ``forecast_table``).

    Returns:
        A ``SparkResult`` (folders, counts).

    Raises:
        ConfigError: pyspark or Java is missing, a bad ``--id-col`` or ``--out``.
        DataError: the table cannot be read or lacks columns; a series cannot be forecast (the
            message names it; not with ``skip_errors``).
        ModelError: nothing loadable at ``uri``.
    """
    require_pyspark()
    out = Path(out)
    out_format = out_format or fmt
    if out_format not in FORMATS:
        raise ConfigError(f"the output format must be one of {list(FORMATS)}. Received: "
                          f"{out_format!r}")
    _check_out(out)
    errors_out = out.with_name(out.name + ".errors") if skip_errors else None
    if errors_out is not None:
        _check_out(errors_out, "--out (its .errors folder)")
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()  # a session of the caller's is used, not stopped
    own = spark is None
    spark = spark or spark_session(master)
    try:
        shipped = ship_model(spark, uri)
        if sep is None and fmt == "csv":
            sep = shipped[0].sep
        table = read_table(spark, path, fmt=fmt, sep=sep or ",")
        scored = forecast_table(spark, uri, table, id_col=id_col, source=str(path),
                                skip_errors=skip_errors, buckets=buckets, shipped=shipped)
        return _write(scored, out, out_format, id_col, errors_out)
    finally:
        if own:
            spark.stop()


def _write(scored, out: Path, out_format: str, id_col: str, errors_out: Path | None):
    from pyspark.sql import functions as F

    def save(frame, folder: Path):
        writer = frame.write.mode("errorifexists")
        if out_format == "csv":  # quotes doubled inside quoted cells (RFC 4180), as pandas reads
            writer.option("header", True).option("escape", '"') \
                .option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss").csv(str(folder))
        else:
            writer.parquet(str(folder))

    try:
        if errors_out is None:
            save(scored, out)
            written = scored.sparkSession.read.parquet(str(out)) if out_format == "parquet" \
                else None
            counts = (written if written is not None else _reread_csv(scored, out)) \
                .agg(F.count("*").alias("rows"), F.countDistinct(id_col).alias("series")) \
                .first()
            return SparkResult(out=out, series=counts["series"], rows=counts["rows"])
        scored = scored.persist()
        try:
            good = scored.filter(F.col(ERROR_COL).isNull()).drop(ERROR_COL)
            bad = scored.filter(F.col(ERROR_COL).isNotNull()).select(id_col, ERROR_COL)
            save(good, out)
            save(bad, errors_out)
            counts = good.agg(F.count("*").alias("rows"),
                              F.countDistinct(id_col).alias("series")).first()
            failed = bad.count()
        finally:
            scored.unpersist()
        return SparkResult(out=out, series=counts["series"], rows=counts["rows"],
                           failed=failed, errors_out=errors_out)
    except ForecastError:
        raise
    except Exception as exc:
        carried = _carried(exc)
        if carried is not None:
            raise carried from None
        raise ModelError(f"scoring on Spark failed: {_last_error(exc)}; --debug shows Spark's "
                         "whole message.") from exc


def _last_error(exc: BaseException) -> str:
    """The last ``SomeError: message`` line of a Spark failure (a worker's Python error)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    found = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return cut(found[-1] if found else " ".join(str(exc).split()), 300)


def _reread_csv(scored, out: Path):
    return scored.sparkSession.read.csv(str(out), header=True)


def raise_carried(exc: BaseException) -> None:
    """Raises the ForecastError a worker carried inside a Spark failure ``exc``, if any.

    For Python users who call ``forecast_table`` and run the job themselves:
    ``try: frame.collect() except Exception as exc: raise_carried(exc); raise``.

    Raises:
        ForecastError: the worker's error (a DataError naming the series, for instance).
    """
    carried = _carried(exc)
    if carried is not None:
        raise carried from None


def predict_command(*, model: str, csv: Path | None, parquet: Path | None, id_col: str | None,
                    out: Path | None, master: str = DEFAULT_MASTER, skip_errors: bool = False,
                    plot: Path | None = None) -> SparkResult:
    """``forecast predict --spark``: checks the flags, scores the table, says what was written.

    Args:
        model: ``--model``.
        csv, parquet: ``--csv`` / ``--parquet``: the long-format table (exactly one).
        id_col: ``--id-col``: the series id column (default: a global model's own).
        out: ``--out``: the folder Spark writes (required; it must not exist). Its format is
            the input's.
        master: ``--spark-master``.
        skip_errors: ``--skip-errors``.
        plot: ``--plot`` (refused with ``--spark``).

    Returns:
        The ``SparkResult``.

    Raises:
        ConfigError: a missing or conflicting flag, pyspark or Java missing.
        DataError, ModelError: as ``score_table``.
    """
    if plot is not None:
        raise ConfigError(f"--plot {plot}: not drawn with --spark (many series); drop --plot.")
    if (csv is None) == (parquet is None):
        raise ConfigError("--spark reads one long-format table: pass --csv PATH or --parquet "
                          "PATH (a file or a folder of part files), not both.")
    if out is None:
        raise ConfigError("--spark writes the forecasts as a folder of part files: pass --out "
                          "FOLDER (a path that does not exist yet).")
    require_pyspark()
    _check_out(Path(out))
    fmt, path = ("csv", csv) if csv is not None else ("parquet", parquet)
    if id_col is None:
        id_col = _model_id_col(model)
    return score_table(model, path, fmt=fmt, id_col=id_col, out=out, master=master,
                       skip_errors=skip_errors)


def _model_id_col(model: str) -> str:
    """A global model's own id column, read from its ``serving.json`` (the model is copied and
    verified first).

    Raises:
        ConfigError: the model is of one series (``--id-col`` names the table's series column).
    """
    from forecast.serving.load import download_model

    with tempfile.TemporaryDirectory(prefix="forecast-spark-") as tmp:
        layout = read_layout(model, download_model(model, tmp))
    if layout.model_id_col:
        return layout.model_id_col
    raise ConfigError(f"--spark: the model {model} forecasts one series; name the table's "
                      "series id column with --id-col COLUMN (each series is scored by the "
                      "model alone).")
