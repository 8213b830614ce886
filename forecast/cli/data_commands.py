"""`forecast inspect` (describe a CSV as training loads it) and `forecast quickstart`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from forecast.options import FILLS

_console = Console(highlight=False, soft_wrap=True)


def inspect(
    csv: Path = typer.Argument(..., help="The CSV file to load."),
    time_col: str = typer.Option(None, "--time-col", help="Timestamp column (auto-detected)."),
    target: list[str] = typer.Option(None, "--target", help="Target column; repeat for several."),
    id_col: str = typer.Option(None, "--id-col", help="Series id column (long format)."),
    freq: str = typer.Option(None, "--freq", help="Sampling frequency, e.g. h, D (inferred)."),
    fill: str = typer.Option(FILLS[0], "--fill", help="Gap policy: " + ", ".join(FILLS) + "."),
    lookback: int = typer.Option(None, "--lookback", help="Also count windows for this lookback."),
    horizon: int = typer.Option(None, "--horizon", help="... and this horizon."),
    sep: str = typer.Option(None, "--sep", help="Field separator (detected: , ; tab |)."),
    decimal: str = typer.Option(None, "--decimal", help="Decimal mark, . or , (detected)."),
    dayfirst: bool = typer.Option(None, "--dayfirst/--monthfirst",
                                  help="Dates like 01/02/2024 day first or month first "
                                       "(decided from the data)."),
    date_format: str = typer.Option(None, "--date-format",
                                    help="strftime layout of the timestamps."),
    tz: str = typer.Option(None, "--tz", help="Time zone of naive timestamps (read as local "
                                              "time, converted to UTC)."),
) -> None:
    """Load a CSV the way training would and describe what was found."""
    from forecast.data.dataset import describe
    from forecast.data.io import load_csv
    from forecast.data.reading import ReadOptions

    reading = ReadOptions(sep=sep, decimal=decimal, dayfirst=dayfirst, date_format=date_format,
                          tz=tz)
    frame = load_csv(
        csv, time_col=time_col, targets=target or None, id_col=id_col, freq=freq, fill=fill,
        reading=reading,
    )
    table = Table(title=f"{csv}")
    table.add_column("property")
    table.add_column("value")
    index = frame.index
    times = index.get_level_values(-1)
    table.add_row("rows", str(len(frame)))
    info = describe(frame)
    table.add_row("frequency", str(info.freq))
    table.add_row("from", str(times.min()))
    table.add_row("to", str(times.max()))
    table.add_row("targets", ", ".join(info.targets))
    table.add_row("covariates", ", ".join(info.covariates) or "-")
    used = info.reading or reading
    table.add_row("time column", str(info.time_col))
    table.add_row("read with", used.summary())
    if lookback and horizon:
        from forecast.data.windows import WindowSpec

        spec = WindowSpec(lookback, horizon, info.targets)
        label = f"windows (lookback {lookback}, horizon {horizon})"
        table.add_row(label, str(spec.n_windows(frame)))
    _console.print(table)


def quickstart(
    force: bool = typer.Option(False, "--force", help="Retrain even if the data is unchanged."),
) -> None:
    """Train, register and forecast with the quickstart pipeline on the bundled ETTh1 data."""
    from forecast.quickstart import run_quickstart

    run_quickstart(force=force, echo=lambda line: _console.print(line, markup=False))


def register(app: typer.Typer) -> None:
    """Adds the data commands to the root app."""
    app.command("inspect")(inspect)
    app.command("quickstart")(quickstart)
