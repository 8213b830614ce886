"""Serving commands: `forecast predict` (forecast a CSV's recent history with a logged model)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from forecast.errors import DataError

_console = Console(highlight=False, soft_wrap=True)


def read_history(csv: Path):
    """Reads a CSV as raw text cells; the served model parses and validates them like load_csv.

    Raises:
        DataError: the file is missing or is not a readable CSV.
    """
    import pandas as pd

    if not csv.is_file():
        raise DataError(f"{str(csv)!r}: no such file. Pass the CSV of recent history with "
                        "--csv PATH.")
    try:
        return pd.read_csv(csv, sep=None, engine="python", encoding="utf-8-sig", dtype=str,
                           keep_default_na=False)
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{str(csv)!r}: cannot be read as CSV ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())}). Save it as a comma-separated UTF-8 "
                        "file with a header row.") from None


def _table(title: str, frame) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="left" if column == frame.columns[0] else "right")
    for row in frame.itertuples(index=False):
        first, *values = row
        table.add_row(str(first), *(f"{v:.4f}" for v in values))
    return table


_OPT_MODEL = typer.Option(..., "--model",
                          help="MLflow model URI: models:/NAME@champion, runs:/ID/model, or a "
                               "local model folder.")
_OPT_CSV = typer.Option(..., "--csv",
                        help="CSV of recent history: the time column and the input columns (at "
                             "least the model's lookback rows; the last ones are used).")
_OPT_OUT = typer.Option(None, "--out", help="Write the forecast to this CSV file.")


def predict(
    model: str = _OPT_MODEL,
    csv: Path = _OPT_CSV,
    out: Path = _OPT_OUT,
) -> None:
    """Forecast the steps after a CSV's last timestamp with a logged forecaster."""
    from mlflow.exceptions import MlflowException

    from forecast.serving import load_model

    history = read_history(csv)
    pyfunc_model = load_model(model)
    try:
        frame = pyfunc_model.predict(history, params={"source": str(csv)})
    except MlflowException as exc:  # MLflow's own input checks (e.g. text in a number column)
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{str(csv)!r}: {' '.join(exc.message.split())}") from None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        _console.print(f"wrote {len(frame)} forecast rows to {out}")
        return
    _console.print(_table(f"forecast from {csv.name} ({model})", frame))


def register(app: typer.Typer) -> None:
    """Adds the serving commands to the root app."""
    app.command("predict")(predict)
