"""`forecast inspect` (describe a CSV as training loads it) and `forecast quickstart`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from forecast.errors import ConfigError
from forecast.options import DUPLICATES, FILLS

_console = Console(highlight=False, soft_wrap=True)

# The data policies of load_csv, shared by inspect, train and backtest (YAML: the `data` section
# of a pipeline, whose keys they name).
OPT_FILL = typer.Option(FILLS[0], "--fill",
                        help="How gaps (missing timestamps, empty cells) are filled: "
                             + ", ".join(FILLS) + " (error refuses any gap). YAML `data.fill`.")
OPT_MAX_GAP = typer.Option(None, "--max-gap",
                           help="Longest run of missing steps --fill may fill (default 24); "
                                "longer gaps are refused. YAML `data.max_gap`.")
OPT_DUPLICATES = typer.Option(DUPLICATES[0], "--duplicates",
                              help="Rows with the same timestamp: " + ", ".join(DUPLICATES)
                                   + " (keep the first, the last, or their mean). YAML "
                                     "`data.duplicates`.")
OPT_ID_COL = typer.Option(None, "--id-col",
                          help="Series id column of a long-format file (one row per series "
                               "and timestamp). YAML `data.id_col`.")
OPT_FUTURE_COVARIATE = typer.Option(
    None, "--future-covariate",
    help="Column known ahead (price, promotion, holiday), read over the lookback and the "
         "horizon; repeatable. To forecast, give its values in the horizon rows after the "
         "history, with the target cells empty. YAML `data.future_covariates`.")
OPT_STATIC = typer.Option(
    None, "--static",
    help="Per-series column of a long-format file (category, region, size), constant within "
         "each series: text is embedded, numbers scaled; repeatable. Needs --id-col. YAML "
         "`data.static`.")


def check_data_flags(*, fill: str, duplicates: str, max_gap: int | None) -> None:
    """Refuses a word or count the data flags do not take, naming the flag.

    Raises:
        ConfigError: ``--fill``/``--duplicates`` not one of their words (with the closest
            one), or ``--max-gap`` below 1.
    """
    from forecast.options import suggest

    if fill not in FILLS:
        raise suggest("--fill", fill, FILLS)
    if duplicates not in DUPLICATES:
        raise suggest("--duplicates", duplicates, DUPLICATES)
    if max_gap is not None and max_gap < 1:
        raise ConfigError("--max-gap must be a positive whole number of steps (YAML "
                          f"`data.max_gap`). Received: --max-gap {max_gap}.")


def inspect(
    csv: Path = typer.Argument(..., help="The CSV file to load."),
    time_col: str = typer.Option(None, "--time-col", help="Timestamp column (auto-detected)."),
    target: list[str] = typer.Option(None, "--target", help="Target column; repeat for several."),
    id_col: str = OPT_ID_COL,
    freq: str = typer.Option(None, "--freq", help="Sampling frequency, e.g. h, D (inferred)."),
    fill: str = OPT_FILL,
    max_gap: int = OPT_MAX_GAP,
    duplicates: str = OPT_DUPLICATES,
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

    check_data_flags(fill=fill, duplicates=duplicates, max_gap=max_gap)
    reading = ReadOptions(sep=sep, decimal=decimal, dayfirst=dayfirst, date_format=date_format,
                          tz=tz)
    frame = load_csv(
        csv, time_col=time_col, targets=target or None, id_col=id_col, freq=freq, fill=fill,
        duplicates=duplicates, max_gap=max_gap, reading=reading,
    )
    table = Table(title=f"{csv}")
    table.add_column("property")
    table.add_column("value")
    index = frame.index
    times = index.get_level_values(-1)
    table.add_row("rows", str(len(frame)))
    info = describe(frame)
    if info.id_col is not None:
        lengths = frame.groupby(level=0, sort=False).size()
        table.add_row("series", f"{len(lengths)} (id column {info.id_col})")
        shown = ", ".join(f"{key}: {n}" for key, n in list(lengths.items())[:20])
        more = f", ... ({len(lengths) - 20} more)" if len(lengths) > 20 else ""
        table.add_row("rows per series", shown + more)
    table.add_row("frequency", str(info.freq))
    table.add_row("from", str(times.min()))
    table.add_row("to", str(times.max()))
    table.add_row("targets", ", ".join(info.targets))
    table.add_row("covariates", ", ".join(info.covariates) or "-")
    dropped = info.extra.get("dropped_columns") or []
    if dropped:
        table.add_row("left out (text)", ", ".join(map(str, dropped))
                      + " (not numbers; --target NAME shows which cells are not)")
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
