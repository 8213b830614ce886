"""Model commands: `forecast train`, `forecast evaluate`, `forecast backtest`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from forecast.cli.data_commands import (
    OPT_DUPLICATES,
    OPT_FILL,
    OPT_FUTURE_COVARIATE,
    OPT_ID_COL,
    OPT_MAX_GAP,
    OPT_STATIC,
    check_data_flags,
)
from forecast.errors import ConfigError
from forecast.options import (
    BACKTEST_MODES,
    POINT_METRICS,
    BatchOptions,
    FeatureOptions,
    ModelOptions,
    PromotionOptions,
    TrainOptions,
    WindowOptions,
    check_model_name,
)
from forecast.progress import for_cli, using

_console = Console(highlight=False, soft_wrap=True)


def _option(settings, name: str, flag: str, **kwargs):
    """A typer option whose default and help come from the field ``name`` of ``settings``
    (``forecast.options``): one place to change a default, and ``--help`` shows it."""
    return typer.Option(settings.default(name), flag, help=settings.help(name), **kwargs)


#: a setting's command-line parameter where its name differs from the setting's
_PARAMETER = {"quantiles": "quantile"}


def _given(ctx: typer.Context | None, values: dict, settings) -> dict:
    """The entries of ``values`` the user gave: an option left at its default, or a value the
    command fills in with the setting's own default, is left out.

    The ``ForecasterConfig`` then knows those settings as unset (pydantic's
    ``model_fields_set``), so a global model can take its own defaults for them
    (``forecast.models.global_defaults``) while ``--setup many_to_one`` given by hand is kept.

    Args:
        ctx: the command's context (None: every entry counts as given).
        values: setting name -> value, as the command collected them.
        settings: the settings class that declares them (``forecast.options``).

    Returns:
        The given entries.
    """
    kept = {}
    for key, value in values.items():
        source = ctx.get_parameter_source(_PARAMETER.get(key, key)) if ctx else None
        if source is not None:
            given = source.name != "DEFAULT"
        else:  # filled in by the command: given unless it is the setting's default
            given = key not in settings.model_fields or value != settings.default(key)
        if given:
            kept[key] = value
    return kept


def _config(*, horizon, lookback, setup, batch_size, model: dict, train: dict, calendar=None,
            future_covariates=None, static=None, ctx: typer.Context | None = None):
    """The ``ForecasterConfig`` of the command's options, holding only the settings the user
    gave (``_given``; the others take their defaults).

    Raises:
        ConfigError: names a bad setting.
    """
    from forecast.options import ForecasterConfig, ModelOptions, TrainOptions, parse_config

    if model.get("quantiles"):
        model["quantiles"] = tuple(sorted(model["quantiles"]))
    else:
        model.pop("quantiles", None)
    top = _given(ctx, {"lookback": lookback, "setup": setup, "calendar": calendar,
                       "batch_size": batch_size}, ForecasterConfig)
    return parse_config({"horizon": horizon, **top, "model": _given(ctx, model, ModelOptions),
                         "train": _given(ctx, train, TrainOptions),
                         "future_covariates": list(future_covariates or []),
                         "static": list(static or [])})


def _load_with_covariates(csv: Path, *, covariate, future_covariate, static, id_col, **kwargs):
    """``load_for_training`` with the future covariates read as inputs and, with ``--static``,
    each series' static values kept with the frame (``forecast.data.io.add_static``).

    Raises:
        ConfigError: ``--static`` without ``--id-col``, or a column given to two flags.
        DataError: as ``load_csv``; a static column that varies within a series.
    """
    from forecast.workflow import load_for_training

    covariate, future_covariate = list(covariate or []), list(future_covariate or [])
    both = sorted(set(covariate) & set(future_covariate))
    if both:
        raise ConfigError(f"--covariate and --future-covariate both name {both}: a column is "
                          "either known only up to now (--covariate) or known ahead "
                          "(--future-covariate); pass it to one of them.")
    if static and id_col is None:
        raise ConfigError(f"--static {static[0]}: static covariates describe each series of a "
                          "long-format file; pass its series id column with --id-col COLUMN.")
    from forecast.errors import DataError

    try:
        frame = load_for_training(csv, covariates=covariate + future_covariate, id_col=id_col,
                                  **kwargs)
    except DataError:
        if future_covariate:  # name the flag that asked for a missing column
            from forecast.data.io import read_raw
            from forecast.data.validation import quote_list

            columns = []
            with contextlib.suppress(DataError):
                columns = list(read_raw(csv, source=str(csv), sep=kwargs.get("sep"))[0].columns)
            absent = [c for c in future_covariate if c not in columns]
            if columns and absent:
                raise DataError(
                    f"{str(csv)!r}: --future-covariate (YAML `data.future_covariates`) names "
                    f"column(s) {quote_list(absent)} that do not exist. The columns are: "
                    f"{quote_list(columns)}.") from None
        raise
    if static:
        from forecast.data.io import add_static

        frame = add_static(frame, csv, static, sep=kwargs.get("sep"))
    return frame


def _cluster_role(strategy: str, register_as: str | None):
    """This worker's role for ``--strategy multi_worker`` (None otherwise).

    Raises:
        ConfigError: a missing or malformed ``TF_CONFIG``, or ``--register`` (its promotion
            backtest would train on the chief alone while the other workers wait).
    """
    if strategy != "multi_worker":
        return None
    from forecast.training import read_tf_config

    role = read_tf_config()
    if register_as:
        raise ConfigError(
            "--register cannot be combined with --strategy multi_worker: promotion runs a "
            "backtest on the chief alone, which cannot train under the cluster's strategy. Train "
            "without --register (the chief logs the model to MLflow), then register that run's "
            "model, or register from a --strategy mirrored/default run."
        )
    return role


def _default_horizon(frame) -> int:
    from forecast.data.dataset import describe
    from forecast.data.frequency import season_for_freq

    return season_for_freq(describe(frame).freq, default=24)


def _positive(value, flag: str, key: str | None = None) -> None:
    """Refuses a zero or negative count given to ``flag`` (None: left out, fine).

    Raises:
        ConfigError: naming the flag and, where there is one, the YAML key.
    """
    if value is not None and value < 1:
        yaml = f" (YAML `{key}`)" if key else ""
        raise ConfigError(f"{flag} must be a positive whole number{yaml}. Received: "
                          f"{flag} {value}.")


def _interval_levels(levels) -> tuple[float, ...]:
    """The ``--interval`` levels, sorted, refused before anything is loaded (as
    ``forecast.evaluation.intervals.check_levels``, which imports TensorFlow with its package).

    Raises:
        ConfigError: a level not strictly between 0 and 1.
    """
    import math

    for level in levels or ():
        if not (math.isfinite(level) and 0 < level < 1):
            raise ConfigError(
                "--interval must be a coverage level strictly between 0 and 1, e.g. "
                f"--interval 0.9 for a 90 % prediction interval. Received: --interval {level!r}.")
    return tuple(sorted({float(level) for level in levels or ()}))


def _horizon(horizon: int | None, frame) -> int:
    """The horizon given, or a season of the data when it is left out (never for 0)."""
    return _default_horizon(frame) if horizon is None else horizon


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title)
    table.add_column("forecaster")
    for name in POINT_METRICS:
        table.add_column(name, justify="right")
    rows = [("model", metrics["model"])] + list(metrics["baselines"].items())
    for name, values in rows:
        table.add_row(name, *(f"{values[m]:.4f}" if m in values else "-" for m in POINT_METRICS))
    return table


def _per_series_table(result: dict, limit: int = 20) -> Table:
    """A global model's test MAE/MASE per series beside that series' best baseline, worst
    model MASE first (the first ``limit`` series)."""
    rows = result["per_series"]
    skipped = result.get("skipped_series") or {}
    note = f"; skipped (too short): {', '.join(map(str, skipped))}" if skipped else ""
    shown = "" if len(rows) <= limit else f", the {limit} worst shown"
    table = Table(title=f"per series ({len(rows)} series{shown}), worst "
                        f"{result.get('worst_series')!s}{note}")
    # with conformal intervals: each series' own coverage of the widest one
    covered = sorted((key for key in rows[0]["model"] if key.startswith("coverage_")),
                     key=lambda key: float(key.removeprefix("coverage_"))) if rows else []
    widest = covered[-1] if covered else None
    for name, justify in (("series", "left"), ("windows", "right"), ("model MAE", "right"),
                          ("model MASE", "right"), ("best baseline", "left"),
                          ("baseline MAE", "right"), ("baseline MASE", "right")):
        table.add_column(name, justify=justify)
    if widest:
        table.add_column(f"{widest.removeprefix('coverage_')} % covers", justify="right")
    for row in rows[:limit]:
        base = row.get("baseline") or {}
        table.add_row(row["series"], str(row["windows"]), f"{row['model']['mae']:.4g}",
                      f"{row['model']['mase']:.4f}", row.get("best_baseline") or "-",
                      f"{base['mae']:.4g}" if base else "-",
                      f"{base['mase']:.4f}" if base else "-",
                      *([f"{row['model'][widest]:.3f}"] if widest else []))
    return table


def _intervals_table(intervals: dict) -> Table:
    """The conformal intervals on the test part: coverage beside the nominal level, mean
    width and Winkler score, for the model and each baseline."""
    method = "conformalized quantile regression" if intervals["method"] == "cqr" else (
        "split conformal")
    if intervals.get("folds"):  # a backtest: the mean over its folds
        title = (f"prediction intervals, mean over {intervals['folds']} folds' test parts "
                 f"({method}, each fold calibrated on its validation part, "
                 f"~{intervals['n_calibration']} windows)")
    else:
        title = (f"prediction intervals, test part ({method}, calibrated on "
                 f"{intervals['n_calibration']} {intervals['calibration']} windows)")
    table = Table(title=title)
    for name, justify in (("forecaster", "left"), ("level", "right"), ("coverage", "right"),
                          ("width", "right"), ("winkler", "right")):
        table.add_column(name, justify=justify)
    rows = [("model", intervals["model"]), *intervals["baselines"].items()]
    for name, levels in rows:
        for label, scores in levels.items():
            table.add_row(name, f"{label} %", f"{scores['coverage']:.3f}",
                          f"{scores['width']:.4g}", f"{scores['winkler']:.4g}")
    return table


@contextlib.contextmanager
def _quiet_stdout(enabled: bool):
    """With --json, anything else written to stdout (Keras, TensorFlow) goes to stderr."""
    if not enabled:
        yield
        return
    saved = os.dup(1)
    try:
        sys.stdout.flush()
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


_OPT_TIME = typer.Option(None, "--time-col", help="Timestamp column (auto-detected).")
_OPT_SEP = typer.Option(None, "--sep", help="Field separator of the CSV (detected: , ; tab |).")
_OPT_DECIMAL = typer.Option(None, "--decimal", help="Decimal mark of the numbers, . or , "
                                                     "(detected).")
_OPT_DAYFIRST = typer.Option(None, "--dayfirst/--monthfirst",
                             help="Read dates like 01/02/2024 day first (1 February) or month "
                                  "first (decided from the data; ambiguous dates are refused).")
_OPT_DATE_FORMAT = typer.Option(None, "--date-format",
                                help="strftime layout of the timestamps, e.g. '%d/%m/%Y %H:%M'.")
_OPT_TZ = typer.Option(None, "--tz", help="Time zone of naive timestamps, e.g. Europe/Berlin: "
                                          "read as local time (daylight saving included), "
                                          "converted to UTC.")
_OPT_TARGET = typer.Option(None, "--target", help="Target column; repeat for several.")
_OPT_COV = typer.Option(None, "--covariate", help="Past covariate column; repeatable.")
_OPT_FREQ = typer.Option(None, "--freq", help="Sampling frequency (inferred when left out).")
_OPT_HORIZON = typer.Option(None, "--horizon", help="Steps to forecast (default: a season).")
_OPT_LOOKBACK = _option(WindowOptions, "lookback", "--lookback")
_OPT_SETUP = _option(FeatureOptions, "setup", "--setup")
_OPT_CELL = _option(ModelOptions, "cell", "--cell")
_OPT_UNITS = _option(ModelOptions, "units", "--units")
_OPT_EPOCHS = _option(TrainOptions, "epochs", "--epochs")
_OPT_CHECKPOINT_DIR = _option(TrainOptions, "checkpoint_dir", "--checkpoint-dir")


def train(
    ctx: typer.Context,
    csv: Path = typer.Argument(..., help="CSV file with a time column and numeric columns."),
    time_col: str = _OPT_TIME,
    target: list[str] = _OPT_TARGET,
    covariate: list[str] = _OPT_COV,
    future_covariate: list[str] = OPT_FUTURE_COVARIATE,
    static: list[str] = OPT_STATIC,
    freq: str = _OPT_FREQ,
    fill: str = OPT_FILL,
    max_gap: int = OPT_MAX_GAP,
    duplicates: str = OPT_DUPLICATES,
    id_col: str = OPT_ID_COL,
    sep: str = _OPT_SEP,
    decimal: str = _OPT_DECIMAL,
    dayfirst: bool = _OPT_DAYFIRST,
    date_format: str = _OPT_DATE_FORMAT,
    tz: str = _OPT_TZ,
    horizon: int = _OPT_HORIZON,
    lookback: int = _OPT_LOOKBACK,
    setup: str = _OPT_SETUP,
    calendar: bool = _option(FeatureOptions, "calendar", "--calendar/--no-calendar"),
    cell: str = _OPT_CELL,
    units: int = _OPT_UNITS,
    layers: int = _option(ModelOptions, "layers", "--layers"),
    dropout: float = _option(ModelOptions, "dropout", "--dropout"),
    instance_norm: str = _option(ModelOptions, "instance_norm", "--instance-norm"),
    linear_skip: bool = _option(ModelOptions, "linear_skip", "--linear-skip/--no-linear-skip"),
    channel_independent: bool = _option(ModelOptions, "channel_independent",
                                        "--channel-independent/--no-channel-independent"),
    segment_length: int = _option(ModelOptions, "segment_length", "--segment-length"),
    segment_decoder: str = _option(ModelOptions, "segment_decoder", "--segment-decoder"),
    id_embedding: int = _option(ModelOptions, "id_embedding", "--id-embedding"),
    precision: str = _option(ModelOptions, "precision", "--precision"),
    quantile: list[float] = typer.Option(None, "--quantile", help="Quantile level; repeatable."),
    interval: list[float] = typer.Option(
        None, "--interval",
        help="Conformal prediction interval level in (0, 1), e.g. 0.9; repeatable. Calibrated "
             "on the validation windows, saved with the model: forecasts get <target>_lo_90 / "
             "<target>_hi_90 columns, and the test coverage is reported."),
    epochs: int = _OPT_EPOCHS,
    learning_rate: float = _option(TrainOptions, "learning_rate", "--learning-rate"),
    patience: int = _option(TrainOptions, "patience", "--patience"),
    blend_linear: bool | None = _option(TrainOptions, "blend_linear",
                                        "--blend-linear/--no-blend-linear"),
    blend_metric: str = _option(TrainOptions, "blend_metric", "--blend-metric"),
    ensemble: int = _option(TrainOptions, "ensemble", "--ensemble"),
    windows_per_series: int = _option(TrainOptions, "windows_per_series",
                                      "--windows-per-series"),
    batch_size: int = _option(BatchOptions, "batch_size", "--batch-size"),
    seed: int = _option(TrainOptions, "seed", "--seed"),
    val: float = typer.Option(0.1, "--val", help="Validation fraction (chronological)."),
    test: float = typer.Option(0.2, "--test", help="Test fraction (chronological)."),
    save: Path = typer.Option(None, "--save",
                              help="Folder to save the trained forecaster in, as an MLflow model "
                                   "(what --track logs): forecast predict --model, forecast "
                                   "evaluate --model and forecast serve take it."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Let --save replace a forecaster saved there before."),
    track: bool = typer.Option(True, "--track/--no-track", help="Record the run in MLflow."),
    experiment: str = typer.Option("forecast", "--experiment", help="MLflow experiment."),
    register_as: str = typer.Option(None, "--register",
                                    help="Register the model under this name (challenger; "
                                         "champion if it wins the backtest)."),
    promote_metric: str = _option(PromotionOptions, "promotion_metric", "--promote-metric"),
    promote_folds: int = _option(PromotionOptions, "promotion_folds", "--promote-folds"),
    allow_worse: bool = _option(PromotionOptions, "allow_worse_than_baseline",
                                "--allow-worse-than-baseline"),
    strategy: str = _option(TrainOptions, "strategy", "--strategy"),
    checkpoint_dir: Path = _OPT_CHECKPOINT_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """Train a forecaster and print its test metrics beside the baselines."""
    from forecast.forecaster import check_save_target
    from forecast.workflow import (
        check_before_training,
        check_experiment_name,
        train_and_evaluate,
    )

    display = for_cli(as_json=as_json)  # progress on stderr (forecast.progress)
    check_model_name(register_as, "--register")  # before loading and training, not after
    check_data_flags(fill=fill, duplicates=duplicates, max_gap=max_gap)
    if register_as and not track:
        raise ConfigError("--register needs MLflow tracking: drop --no-track.")
    _positive(horizon, "--horizon", "window.horizon")
    levels = _interval_levels(interval)
    if levels and val == 0:
        raise ConfigError("--interval calibrates the intervals on the validation windows: "
                          "--val 0 leaves none; set --val above 0 or drop --interval.")
    if track:
        check_experiment_name(experiment, flag="--experiment")
    role = _cluster_role(strategy, register_as)
    if role is not None and not role.is_chief:
        # the standard multi-worker pattern: every worker trains, only the chief writes
        track, save = False, None
    if save is not None:  # before training: nothing already saved there is lost
        check_save_target(save, overwrite=overwrite, flag="--save")

    frame = _load_with_covariates(csv, covariate=covariate, future_covariate=future_covariate,
                                  static=static, time_col=time_col, targets=target, freq=freq,
                                  fill=fill, max_gap=max_gap, duplicates=duplicates,
                                  id_col=id_col, sep=sep, decimal=decimal, dayfirst=dayfirst,
                                  date_format=date_format, tz=tz)
    config = _config(
        horizon=_horizon(horizon, frame), lookback=lookback, setup=setup,
        calendar=calendar, batch_size=batch_size, future_covariates=future_covariate,
        static=static,
        model={"cell": cell, "units": units, "layers": layers, "dropout": dropout,
               "instance_norm": instance_norm, "linear_skip": linear_skip,
               "channel_independent": channel_independent, "segment_length": segment_length,
               "segment_decoder": segment_decoder, "quantiles": quantile,
               "id_embedding": id_embedding, "precision": precision},
        train={"epochs": epochs, "learning_rate": learning_rate, "patience": patience,
               "windows_per_series": windows_per_series, "blend_linear": blend_linear,
               "blend_metric": blend_metric, "ensemble": ensemble,
               "seed": seed, "verbose": 0 if as_json and not display.active
               else TrainOptions.default("verbose"),
               "strategy": strategy, "checkpoint_dir": checkpoint_dir},
        ctx=ctx,
    )
    check_before_training(frame, config, val=val, test=test)  # split sizes, network size
    with using(display), _quiet_stdout(as_json):
        if track:
            from forecast.tracking.run import train_tracked

            tracked = train_tracked(frame, config, source=str(csv.resolve()), time_col=time_col,
                                    val=val, test=test, register=register_as,
                                    promote_metric=promote_metric,
                                    promote_folds=promote_folds, experiment=experiment,
                                    allow_worse_than_baseline=allow_worse, fill=fill,
                                    max_gap=max_gap, intervals=levels)
            report, result = tracked.report, tracked.to_dict()
        else:
            report = train_and_evaluate(frame, config, val=val, test=test, intervals=levels)
            result = report.to_dict()
        if save is not None:  # the model --track logs, as a folder
            from forecast.data.dataset import describe

            report.forecaster.save(
                save, overwrite=overwrite, time_col=time_col or describe(frame).time_col,
                input_example=report.test if report.test is not None else frame,
                fill=fill, max_gap=max_gap)
    if save is not None:
        result["saved_to"] = str(save)
    if role is not None:
        result["cluster"] = {"task_type": role.task_type, "task_index": role.task_index,
                             "workers": role.workers, "is_chief": role.is_chief}
    if as_json:
        print(json.dumps(result))
        return
    _print_training(result, csv=csv, save=save, role=role, register_as=register_as)


def _print_training(result: dict, *, csv: Path, save: Path | None, role,
                    register_as: str | None) -> None:
    """The human summary of ``forecast train``: metrics beside the baselines, what was chosen,
    how training went, and what registration decided."""
    _console.print(_metrics_table(
        f"{csv.name}: test part, {result['sizes']['test_windows']} windows, original units",
        result))
    _console.print(result["versus"])
    if result.get("per_series"):
        _console.print(_per_series_table(result))
    if result.get("intervals"):
        _console.print(_intervals_table(result["intervals"]))
    _console.print(result["chosen"])
    training = result["training"]
    distributed = ""
    if training.get("strategy") not in (None, "default"):
        distributed = (f", {training['strategy']} strategy: {training['replicas']} replicas on "
                       f"{training['workers']} worker(s)")
    _console.print(f"trained {training['epochs_run']} epochs in {training['seconds']} s "
                   f"(best epoch {training['best_epoch']}, kernel {training['kernel']}"
                   f"{distributed})" + (f"; saved to {save}" if save else ""))
    if training.get("blend"):
        _console.print(training["blend"]["summary"])
    if result.get("resumed"):
        _console.print(result["resumed"]["message"])
    if role is not None and not role.is_chief:
        _console.print(f"{role.task_type} {role.task_index} of the cluster: trained in lockstep "
                       "with the chief, which tracks the run and saves the model.")
    tracking = result.get("mlflow")
    if tracking:
        for line in tracking.get("stale_runs_ended") or ():
            _console.print(line)
        _console.print(f"MLflow run {tracking['run_id']}, model {tracking['model_uri']}")
        if tracking["version"]:
            promotion = tracking["promotion"] or {}
            _console.print(f"registered {register_as} version {tracking['version']}: "
                           f"{promotion.get('reason', '')}")
            _console.print(f"champion of {register_as}: version "
                           f"{promotion.get('champion_version')} "
                           f"({promotion.get('champion_kind') or 'none'})")
        _console.print("open the MLflow UI with: forecast ui")


def load_forecaster(model: str):
    """The ``Forecaster`` of a model URI or a local folder.

    A local folder (``forecast train --save``, a downloaded MLflow model, or the older layout)
    is read in place: loading a forecaster reads JSON and Keras weights (``safe_mode``) and
    runs none of the folder's code. A ``runs:/``/``models:/`` URI is first copied to a
    temporary folder and checked like ``forecast.load`` does
    (``forecast.serving.load.download_model``: its code file must be forecast's own).

    Raises:
        ModelError: nothing loadable at ``model`` (the message names it).
    """
    import tempfile

    from forecast.forecaster import Forecaster

    local = Path(model).expanduser()
    if ":/" not in model or local.exists():
        return Forecaster.load(local)
    from forecast.serving.load import download_model

    with tempfile.TemporaryDirectory(prefix="forecast-evaluate-") as tmp:
        return Forecaster.load(download_model(model, tmp))


def evaluate(
    model: str = typer.Option(..., "--model",
                              help="The model: MLflow model URI (models:/NAME@champion, "
                                   "runs:/ID/model) or a local folder (forecast train --save)."),
    csv: Path = typer.Option(..., "--csv", help="CSV with the same columns as in training."),
    id_col: str = OPT_ID_COL,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """Evaluate a saved or logged forecaster on every window of a CSV, beside its baselines.

    A global model (trained with --id-col) reads a long-format CSV: give the same --id-col; the
    metrics are pooled over its series and listed per series.
    """
    from forecast.data import load_csv
    from forecast.workflow import evaluate_forecaster

    forecaster = load_forecaster(model)
    if forecaster.is_global != (id_col is not None):
        raise ConfigError(
            f"--model {model} is a global model over {len(forecaster.ids)} series: pass the "
            "series id column of the long-format CSV with --id-col COLUMN." if
            forecaster.is_global else
            f"--model {model} was trained on one series: drop --id-col {id_col} and give a CSV "
            "of that one series.")
    spec = forecaster.spec
    served = forecaster.serving or {}  # how the model reads its data (the older layout: detect)
    inputs = list(spec.past_covariates) + list(forecaster.config.future_covariates)
    frame = load_csv(csv, targets=list(spec.targets), covariates=inputs or None,
                     freq=forecaster.freq,
                     # many series: those too short for a window are left out when windowing
                     min_rows=None if id_col else spec.min_rows,
                     min_rows_reason=f"lookback {spec.lookback} + horizon {spec.horizon}",
                     fill=served.get("fill") or "interpolate", max_gap=served.get("max_gap"),
                     reading=served.get("reading"), id_col=id_col)
    with _quiet_stdout(as_json):
        metrics = evaluate_forecaster(forecaster, frame)
    if metrics.get("per_series"):
        metrics["worst_series"] = metrics["per_series"][0]["series"]
    if as_json:
        print(json.dumps({k: metrics[k] for k in ("model", "baselines", "per_step", "scaled",
                                                   "intervals", "per_series", "worst_series")
                          if k in metrics}))
        return
    windows = len(metrics["arrays"][0])
    _console.print(_metrics_table(f"{csv.name}: {windows} windows", metrics))
    if metrics.get("per_series"):
        _console.print(_per_series_table(metrics))
    if metrics.get("intervals"):
        _console.print(_intervals_table(metrics["intervals"]))


def backtest(
    ctx: typer.Context,
    csv: Path = typer.Argument(..., help="CSV file."),
    time_col: str = _OPT_TIME,
    target: list[str] = _OPT_TARGET,
    covariate: list[str] = _OPT_COV,
    future_covariate: list[str] = OPT_FUTURE_COVARIATE,
    static: list[str] = OPT_STATIC,
    freq: str = _OPT_FREQ,
    fill: str = OPT_FILL,
    max_gap: int = OPT_MAX_GAP,
    duplicates: str = OPT_DUPLICATES,
    id_col: str = OPT_ID_COL,
    sep: str = _OPT_SEP,
    decimal: str = _OPT_DECIMAL,
    dayfirst: bool = _OPT_DAYFIRST,
    date_format: str = _OPT_DATE_FORMAT,
    tz: str = _OPT_TZ,
    horizon: int = _OPT_HORIZON,
    lookback: int = _OPT_LOOKBACK,
    setup: str = _OPT_SETUP,
    cell: str = _OPT_CELL,
    units: int = _OPT_UNITS,
    epochs: int = _OPT_EPOCHS,
    blend_linear: bool | None = _option(TrainOptions, "blend_linear",
                                        "--blend-linear/--no-blend-linear"),
    folds: int = typer.Option(3, "--folds", help="Rolling-origin folds."),
    fold_size: int = typer.Option(None, "--fold-size", help="Test rows per fold."),
    mode: str = typer.Option(BACKTEST_MODES[0], "--mode", help=" or ".join(BACKTEST_MODES) + "."),
    seed: int = _option(TrainOptions, "seed", "--seed"),
    interval: list[float] = typer.Option(
        None, "--interval",
        help="Conformal prediction interval level in (0, 1), e.g. 0.9; repeatable. Each fold "
             "calibrates them on its validation part; their test coverage is reported per "
             "fold and on average."),
    track: bool = typer.Option(True, "--track/--no-track",
                               help="Record the backtest in MLflow: a parent run with one "
                                    "nested run per fold."),
    experiment: str = typer.Option("forecast", "--experiment", help="MLflow experiment."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """Rolling-origin backtest of a forecaster and the baselines on the same folds.

    With --id-col (a long-format file of many series) every fold trains one global model over
    all series, each cut at the same number of rows from its own end, and reports pooled and
    per-series metrics beside the baselines.
    """
    from forecast.workflow import check_experiment_name, run_backtest

    check_data_flags(fill=fill, duplicates=duplicates, max_gap=max_gap)
    if mode not in BACKTEST_MODES:
        raise ConfigError(f"--mode must be {' or '.join(BACKTEST_MODES)}. Received: {mode!r}.")
    _positive(horizon, "--horizon", "window.horizon")
    _positive(folds, "--folds", "evaluate.backtest_folds")
    _positive(fold_size, "--fold-size")
    levels = _interval_levels(interval)
    if track:
        check_experiment_name(experiment, flag="--experiment")
    frame = _load_with_covariates(csv, covariate=covariate, future_covariate=future_covariate,
                                  static=static, time_col=time_col, targets=target, freq=freq,
                                  fill=fill, max_gap=max_gap, duplicates=duplicates,
                                  id_col=id_col, sep=sep, decimal=decimal, dayfirst=dayfirst,
                                  date_format=date_format, tz=tz)
    config = _config(horizon=_horizon(horizon, frame), lookback=lookback, setup=setup,
                     batch_size=BatchOptions.default("batch_size"),
                     model={"cell": cell, "units": units},
                     train={"epochs": epochs, "seed": seed, "verbose": 0,
                            "blend_linear": blend_linear},
                     future_covariates=future_covariate, static=static, ctx=ctx)
    with using(for_cli(as_json=as_json)), _quiet_stdout(as_json):
        if track:
            from forecast.tracking.run import backtest_tracked

            report = backtest_tracked(frame, config, folds=folds, fold_size=fold_size,
                                      mode=mode, source=str(csv.resolve()),
                                      experiment=experiment, intervals=levels)
        else:
            report = run_backtest(frame, config, folds=folds, fold_size=fold_size, mode=mode,
                                  intervals=levels)
    if as_json:
        print(json.dumps(report))
        return
    _console.print(_metrics_table(f"{csv.name}: mean over {folds} folds ({mode})", report))
    for k, fold in enumerate(report["folds"]):
        covered = "".join(f", {label} % covers {scores['coverage']:.3f}" for label, scores in
                          fold.get("intervals", {}).get("model", {}).items())
        _console.print(f"fold {k}: fit {fold['fit_start']} .. {fold['fit_end']}, "
                       f"forecast {fold['origin']} -> {fold['test_end']}, "
                       f"model MAE {fold['model']['mae']:.4f}{covered}")
    if report.get("intervals"):
        _console.print(_intervals_table(report["intervals"]))
    if report.get("per_series"):  # a global model: each series over the folds
        _console.print(_per_series_table(report))
    if report.get("mlflow"):
        _console.print(f"MLflow run {report['mlflow']['run_id']} (one nested run per fold); "
                       "open the MLflow UI with: forecast ui")


def register(app: typer.Typer) -> None:
    """Adds the model commands to the root app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("backtest")(backtest)
