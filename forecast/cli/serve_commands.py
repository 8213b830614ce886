"""Serving commands: `forecast predict` (forecast a CSV's recent history with a logged model) and
`forecast serve` (the model over HTTP, MLflow's scoring app behind forecast's request guard)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from forecast.errors import ConfigError, DataError, ForecastError

_console = Console(highlight=False, soft_wrap=True)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def read_history(csv: Path, reading=None):
    """Reads a CSV as raw text cells, exactly as ``load_csv`` splits a training file (same
    separator detection, byte-order mark, quoting); the served model then parses and validates
    the cells with the model's saved reading settings (decimal mark, date layout, time zone).

    Args:
        csv: the file.
        reading: a ``ReadOptions`` (or its dict, e.g. ``ServingInfo.reading``) whose ``sep``
            is used; None or no ``sep`` detects it as training did.

    Raises:
        DataError: the file is missing, not a regular file (a FIFO, a device, a directory), or
            is not a readable CSV.
    """
    from forecast.data.io import read_raw
    from forecast.data.reading import as_read_options, require_regular_file

    source = str(csv)
    require_regular_file(csv, source, "the CSV of recent history with --csv PATH")
    sep = as_read_options(reading).sep
    frame, _, _ = read_raw(csv, source=source, sep=sep)
    return frame


def _table(title: str, frame) -> Table:
    """The forecast as a table: text and timestamps as they are, numbers with 4 decimals."""
    import pandas as pd

    numeric = [pd.api.types.is_float_dtype(frame[c]) for c in frame.columns]
    table = Table(title=title)
    for column, is_number in zip(frame.columns, numeric, strict=True):
        table.add_column(str(column), justify="right" if is_number else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.4f}" if is_number else str(v)
                        for v, is_number in zip(row, numeric, strict=True)))
    return table


_OPT_MODEL = typer.Option(..., "--model",
                          help="MLflow model URI: models:/NAME@champion, runs:/ID/model, or a "
                               "local model folder (forecast train --save DIR).")
_OPT_CSV = typer.Option(None, "--csv",
                        help="CSV of recent history: the time column and the input columns (at "
                             "least the model's lookback rows; the last ones are used).")
_OPT_OUT = typer.Option(None, "--out", help="Write the forecast to this CSV file.")
_OPT_ID_COL = typer.Option(None, "--id-col",
                           help="The series id column of a long-format CSV, for a global model "
                                "(forecast train --id-col); default: the model's own id column. "
                                "The forecast is long format: id, time, forecast columns.")


def served_id_column(history, info, id_col: str | None, *, csv: Path, model: str):
    """The history with its id column named as the served model names it.

    Args:
        history: the raw CSV cells (``read_history``).
        info: the model's ``ServingInfo``.
        id_col: ``--id-col`` (None: the model's own id column).
        csv, model: how messages name the file and the model.

    Returns:
        ``history``, its ``id_col`` column renamed to the model's id column when they differ.

    Raises:
        ConfigError: ``--id-col`` for a model of one series.
        DataError: the CSV lacks the id column.
    """
    if not info.is_global:
        if id_col is not None:
            raise ConfigError(f"--id-col {id_col}: the model {model} forecasts one series (it "
                              "was trained without --id-col); drop --id-col.")
        return history
    name = id_col or info.id_col
    if name not in history.columns:
        raise DataError(
            f"{str(csv)!r}: lacks the id column {name!r}: the model {model} is a global model "
            f"over many series and reads long format (id column {info.id_col!r}, time column "
            f"{info.time_col!r}, {', '.join(map(repr, info.input_columns))}). Pass --id-col "
            "COLUMN naming the CSV's series column.")
    if name != info.id_col:
        if info.id_col in history.columns:
            raise DataError(f"{str(csv)!r}: has both --id-col {name!r} and the model's id "
                            f"column {info.id_col!r}; pass --id-col {info.id_col}.")
        history = history.rename(columns={name: info.id_col})
    return history


def check_out(out: Path) -> None:
    """Checks that ``--out`` names a file that can be written, before any model is loaded.

    Raises:
        ConfigError: ``out`` is a folder, or a folder on its path is a file or not writable.
    """
    import os

    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; pass the path of the CSV file to write, "
                          f"e.g. --out {out / 'forecast.csv'}.")
    if out.exists():
        if not os.access(out, os.W_OK):
            raise ConfigError(f"--out {out}: the file is not writable; pass another path.")
        return
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"--out {out}: {folder} is a file, not a folder, so the forecast "
                          "cannot be written there; pass another path.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: the folder {folder} is not writable; pass another "
                          "path.")


_OPT_PLOT = typer.Option(None, "--plot",
                         help="Also draw the forecast after the recent history as a PNG here "
                              "(a global model: one panel per series, the first 12, or those "
                              "of --plot-series).")
_OPT_PLOT_SERIES = typer.Option(None, "--plot-series",
                                help="With --plot and a global model: draw this series "
                                     "(repeatable, at most 12); default the first 12.")


def _check_plot(plot: Path) -> None:
    """``--plot`` names a file that can be written (checked before any model is loaded)."""
    if plot.is_dir():
        raise ConfigError(f"--plot {plot}: is a folder; pass the path of the PNG file to "
                          f"write, e.g. --plot {plot / 'forecast.png'}.")
    if plot.suffix.lower() != ".png":
        raise ConfigError(f"--plot {plot}: the plot is a PNG image; pass a path ending in "
                          ".png.")


#: a global model's plot draws at most this many panels (series x targets), in input order
MAX_SERIES_PANELS = 12


def _band(frame, target: str):
    """The band drawn around ``target``'s forecast in ``frame``: the outermost quantiles when
    the model has them, else its widest conformal interval, else None."""
    levels = {}
    for column in frame.columns:
        if str(column).startswith(f"{target}_q"):
            try:
                levels[float(str(column)[len(target) + 2:])] = column
            except ValueError:
                continue
    if len(levels) >= 2:
        lo, hi = min(levels), max(levels)
        return (frame[levels[lo]].to_numpy(), frame[levels[hi]].to_numpy(),
                f"q{lo:g}–q{hi:g}")
    conformal = {}  # the conformal intervals (forecast train --interval): the widest
    for column in frame.columns:
        label = str(column)[len(target) + 4:] if str(column).startswith(f"{target}_lo_") \
            else None
        if label and f"{target}_hi_{label}" in frame.columns:
            try:
                conformal[float(label)] = label
            except ValueError:
                continue
    if conformal:
        label = conformal[max(conformal)]
        return (frame[f"{target}_lo_{label}"].to_numpy(),
                frame[f"{target}_hi_{label}"].to_numpy(), f"{label} % interval")
    return None


def write_plot(plot: Path, pyfunc_model, history, frame, *, title: str,
               source: str = "model input", series: list[str] | None = None
               ) -> tuple[Path, str]:
    """Draws the forecast ``frame`` after the recent ``history`` (read as the model reads it)
    and writes the PNG to ``plot``, with the outermost quantiles as a band when the model has
    them (else its widest conformal interval, when it has those).

    A global model's forecast gets one panel per series and target: ``series``, or the first
    ``MAX_SERIES_PANELS`` in the order of the input.

    Args:
        plot: the PNG to write.
        pyfunc_model: the loaded MLflow model.
        history: the raw history it forecast from.
        frame: its forecast.
        title: the figure's title.
        source: how error messages name the input.
        series: a global model's series to draw (``--plot-series``); None: the first ones.

    Returns:
        ``(plot, what)``: the path and what was drawn ("the forecast", "12 of 40 series").

    Raises:
        ConfigError: ``plot`` cannot be written; ``series`` not in the forecast, or more
            panels than ``MAX_SERIES_PANELS``.
    """
    import pandas as pd

    from forecast.evaluation.plots import FuturePanel, plot_futures
    from forecast.serving.pyfunc import read_served_history

    served = pyfunc_model.unwrap_python_model()
    info = served.info
    # the rows the model read, as it read them (it just did)
    recent = read_served_history(served.forecaster, info, history, source=source)
    targets = list(info.targets)
    if info.is_global:
        keys = list(dict.fromkeys(frame[info.id_col].astype(str)))
        per_series = max(1, MAX_SERIES_PANELS // len(targets))
        shown = keys[:per_series] if not series else list(dict.fromkeys(map(str, series)))
        unknown = [key for key in shown if key not in keys]
        if unknown:
            raise ConfigError(f"--plot-series {unknown[0]}: no such series in {source} (it "
                              f"holds {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"
                              "; pass one of its series.")
        if len(shown) > per_series:
            raise ConfigError(f"--plot-series: {len(shown)} series are too many for one "
                              f"figure; pass at most {per_series}.")
        recent_ids = recent.index.get_level_values(0).astype(str)
        panels = []
        for key in shown:
            rows = frame[frame[info.id_col].astype(str) == key]
            past = recent[recent_ids == key].droplevel(0)
            for target in targets:
                panels.append(FuturePanel(
                    f"{key}" if len(targets) == 1 else f"{key}: {target}",
                    past[target].to_numpy(), past.index, rows[target].to_numpy(),
                    pd.DatetimeIndex(rows[info.time_col]), _band(rows, target)))
        what = (f"{len(shown)} of {len(keys)} series" if len(shown) < len(keys)
                else f"the {len(keys)} series")
        title = f"{title} ({what} shown)" if len(shown) < len(keys) else title
        n_cols = 1 if len(panels) == 1 else (2 if len(panels) <= 4 else 3)
    else:
        panels = [FuturePanel(target, recent[target].to_numpy(), recent.index,
                              frame[target].to_numpy(), pd.DatetimeIndex(frame[info.time_col]),
                              _band(frame, target)) for target in targets]
        what, n_cols = "the forecast", 1
    try:
        plot_futures(panels, title=title, n_cols=n_cols, path=plot)
    except OSError as exc:
        raise ConfigError(f"--plot {plot}: cannot be written ({exc.strerror or exc}); pass "
                          "another path.") from None
    return plot, what


def predict(
    model: str = _OPT_MODEL,
    csv: Path = _OPT_CSV,
    out: Path = _OPT_OUT,
    plot: Path = _OPT_PLOT,
    plot_series: list[str] = _OPT_PLOT_SERIES,
    id_col: str = _OPT_ID_COL,
    spark: bool = typer.Option(False, "--spark",
                               help="Score a long-format table of many series on Spark "
                                    "(forecast.serving.spark; needs pyspark: pip install "
                                    "'forecast[spark]'): --csv or --parquet in, --out FOLDER "
                                    "of part files out."),
    parquet: Path = typer.Option(None, "--parquet",
                                 help="With --spark: a Parquet table (file or folder) instead "
                                      "of --csv."),
    spark_master: str = typer.Option("local[2]", "--spark-master",
                                     help="With --spark: the Spark master URL."),
    skip_errors: bool = typer.Option(False, "--skip-errors",
                                     help="With --spark: skip series that cannot be forecast "
                                          "and list them in OUT.errors (default: the first "
                                          "one stops the job, named)."),
) -> None:
    """Forecast the steps after a CSV's last timestamp with a logged forecaster.

    For a global model (trained with --id-col) the CSV is long format, any of the series it
    knows, and so is the forecast: one block of horizon rows per series.
    """
    if plot_series and plot is None:
        raise ConfigError("--plot-series chooses the series --plot draws: add --plot FILE.png "
                          "or drop --plot-series.")
    if spark:  # forecast.serving.spark: pyspark is imported there, only when asked for
        from forecast.serving.spark import predict_command

        result = predict_command(model=model, csv=csv, parquet=parquet, id_col=id_col, out=out,
                                 master=spark_master, skip_errors=skip_errors, plot=plot)
        _console.print(f"wrote {result.rows} forecast rows of {result.series} series to "
                       f"{result.out}" + (f"; skipped {result.failed} series, listed in "
                                          f"{result.errors_out}" if result.errors_out else ""))
        return
    if csv is None or parquet is not None or skip_errors:
        raise ConfigError("forecast predict reads recent history with --csv PATH; --parquet, "
                          "--skip-errors and --spark-master go with --spark.")
    from mlflow.exceptions import MlflowException

    from forecast.serving import load_model
    from forecast.serving.pyfunc import model_input

    if out is not None:
        check_out(out)
    if plot is not None:
        _check_plot(plot)
    history = read_history(csv)
    pyfunc_model = load_model(model)
    info = pyfunc_model.unwrap_python_model().info
    history = served_id_column(history, info, id_col, csv=csv, model=model)
    if plot_series and not info.is_global:
        raise ConfigError("--plot-series picks series of a global model's forecast; this model "
                          "forecasts one series: drop --plot-series.")
    try:
        # only the columns the model reads: MLflow warns about (and ignores) any others
        frame = pyfunc_model.predict(model_input(pyfunc_model, history),
                                     params={"source": str(csv)})
    except MlflowException as exc:  # MLflow's own input checks (e.g. text in a number column)
        if isinstance(exc, ForecastError):
            raise
        raise DataError(f"{str(csv)!r}: {' '.join(exc.message.split())}") from None
    if plot is not None:
        _, what = write_plot(plot, pyfunc_model, history, frame,
                             title=f"forecast from {csv.name} ({model})", source=str(csv),
                             series=plot_series)
        _console.print(f"drew {what} in {plot}")
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(out, index=False)
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot be written ({exc.strerror or exc}); pass "
                              "another path.") from None
        _console.print(f"wrote {len(frame)} forecast rows to {out}")
        return
    _console.print(_table(f"forecast from {csv.name} ({model})", frame))


def serve(
    model: str = typer.Argument(..., metavar="MODEL",
                                help="MLflow model URI: models:/NAME@champion, runs:/ID/model, or "
                                     "a local model folder (forecast train --save DIR)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on. 127.0.0.1 (default): this machine "
                                  "only; 0.0.0.0: every interface (prints a warning)."),
    port: int = typer.Option(5001, "--port",
                             help="TCP port (default 5001; `forecast ui` uses 5000)."),
    max_body_mb: float = typer.Option(10.0, "--max-body-mb",
                                      help="Largest request body taken, in MB (HTTP 413 "
                                           "beyond)."),
) -> None:
    """Serve a logged forecaster over HTTP: POST raw history to /invocations, get the forecast.

    MLflow's scoring app in this process (uvicorn), behind a request guard; Ctrl-C stops it.
    """
    from forecast.serving import load_model
    from forecast.serving.server import check_address, is_loopback, run

    if not max_body_mb > 0:
        raise ConfigError(f"--max-body-mb must be positive. Received: --max-body-mb {max_body_mb}")
    check_address(host, port)
    if not is_loopback(host):
        _stderr.print(f"warning: --host {host} serves the model to other machines: anyone who "
                      "can reach this port can send it requests (there is no authentication "
                      "or TLS). Put a reverse proxy with both in front of it, or keep the "
                      "default 127.0.0.1.")
    pyfunc_model = load_model(model)
    _stderr.print(f"serving {model} on http://{host}:{port} (POST /invocations); Ctrl-C stops "
                  "it.")
    stopped_by = run(pyfunc_model, host=host, port=port, max_body_mb=max_body_mb)
    _stderr.print("stopped" + (f" (signal {stopped_by})." if stopped_by else "."))


def register(app: typer.Typer) -> None:
    """Adds the serving commands to the root app."""
    app.command("predict")(predict)
    app.command("serve")(serve)
