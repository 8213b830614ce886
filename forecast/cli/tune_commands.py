"""`forecast tune`: a hyperparameter search (Optuna TPE, median pruning) tracked in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from forecast.cli.model_commands import (
    _OPT_CELL,
    _OPT_COV,
    _OPT_DECIMAL,
    _OPT_EPOCHS,
    _OPT_FREQ,
    _OPT_HORIZON,
    _OPT_LOOKBACK,
    _OPT_SEP,
    _OPT_SETUP,
    _OPT_TARGET,
    _OPT_TIME,
    _OPT_UNITS,
    _config,
    _horizon,
    _metrics_table,
    _option,
    _positive,
    _quiet_stdout,
)
from forecast.errors import ConfigError, shown
from forecast.options import (
    BatchOptions,
    PromotionOptions,
    TrainOptions,
    check_model_name,
)
from forecast.tuning.space import TuneOptions

_console = Console(highlight=False, soft_wrap=True)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def parse_space_flags(flags) -> dict:
    """``["units=[16, 32]", "dropout=null"]`` as ``{"units": [16, 32], "dropout": None}``.

    The value after ``=`` is read as YAML: a list is a categorical, a mapping a ``Param``
    (``{kind: log_float, low: 1e-4, high: 1e-2}``), ``null`` leaves the setting out.

    Raises:
        ConfigError: a flag without ``=`` or a value that is not YAML.
    """
    from forecast.yaml_input import load_yaml_text

    space = {}
    for text in flags or ():
        name, sep, value = str(text).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError("--space takes NAME=VALUE, e.g. --space 'units=[16, 32, 64]' or "
                              "--space 'learning_rate={kind: log_float, low: 0.0001, high: "
                              f"0.01}}'. Received: {shown(text)}.")
        try:
            space[name] = load_yaml_text(value, source=f"--space {shown(text, 60)}") \
                if value.strip() else None
        except ConfigError as exc:
            raise ConfigError(f"{exc} (the value after = is read as YAML)") from None
    return space


def tune(
    ctx: typer.Context,
    csv: Path = typer.Argument(..., help="CSV file with a time column and numeric columns."),
    time_col: str = _OPT_TIME,
    target: list[str] = _OPT_TARGET,
    covariate: list[str] = _OPT_COV,
    freq: str = _OPT_FREQ,
    sep: str = _OPT_SEP,
    decimal: str = _OPT_DECIMAL,
    horizon: int = _OPT_HORIZON,
    lookback: int = _OPT_LOOKBACK,
    setup: str = _OPT_SETUP,
    cell: str = _OPT_CELL,
    units: int = _OPT_UNITS,
    epochs: int = _OPT_EPOCHS,
    patience: int = _option(TrainOptions, "patience", "--patience"),
    batch_size: int = _option(BatchOptions, "batch_size", "--batch-size"),
    seed: int = _option(TrainOptions, "seed", "--seed"),
    val: float = typer.Option(0.1, "--val", help="Validation fraction: trials are scored on it."),
    test: float = typer.Option(0.2, "--test", help="Test fraction: only the retrained best "
                                                    "model is evaluated on it."),
    trials: int = _option(TuneOptions, "trials", "--trials"),
    timeout: float = _option(TuneOptions, "timeout", "--timeout"),
    study: str = _option(TuneOptions, "study", "--study"),
    storage: str = _option(TuneOptions, "storage", "--storage"),
    metric: str = _option(TuneOptions, "metric", "--metric"),
    tune_seed: int = _option(TuneOptions, "seed", "--tune-seed"),
    prune: bool = _option(TuneOptions, "prune", "--prune/--no-prune"),
    space: list[str] = typer.Option(
        None, "--space", help="NAME=VALUE (YAML): change the search space, e.g. "
                              "'units=[16, 32]', 'learning_rate={kind: log_float, low: 0.0001, "
                              "high: 0.01}', 'dropout=null' (not searched); repeatable."),
    default_space: bool = _option(TuneOptions, "default_space",
                                  "--default-space/--no-default-space"),
    experiment: str = typer.Option("forecast", "--experiment", help="MLflow experiment."),
    register_as: str = typer.Option(None, "--register",
                                    help="Register the retrained best model under this name "
                                         "(challenger; champion if it wins the backtest)."),
    promote_metric: str = _option(PromotionOptions, "promotion_metric", "--promote-metric"),
    promote_folds: int = _option(PromotionOptions, "promotion_folds", "--promote-folds"),
    allow_worse: bool = _option(PromotionOptions, "allow_worse_than_baseline",
                                "--allow-worse-than-baseline"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """Search the model's settings (Optuna TPE, pruning), each trial a nested MLflow run.

    Trials are scored on the validation part; the best trial's model (retrained when it ran in
    an earlier call) is evaluated on the test part and logged on the parent run. The study is
    kept beside the MLflow store: the same --study continues it (a killed search goes on from
    its finished trials).
    """
    from forecast.tuning.search import tune_tracked
    from forecast.workflow import check_experiment_name, load_for_training

    check_model_name(register_as, "--register")
    check_experiment_name(experiment, flag="--experiment")
    _positive(horizon, "--horizon", "window.horizon")
    _positive(trials, "--trials", "tune.trials")
    options = TuneOptions.parse({
        "trials": trials, "timeout": timeout, "study": study, "storage": storage,
        "metric": metric, "seed": tune_seed, "prune": prune, "default_space": default_space,
        "space": parse_space_flags(space),
    })
    frame = load_for_training(csv, time_col=time_col, targets=target, covariates=covariate,
                              freq=freq, sep=sep, decimal=decimal)
    config = _config(horizon=_horizon(horizon, frame), lookback=lookback, setup=setup,
                     batch_size=batch_size, model={"cell": cell, "units": units},
                     train={"epochs": epochs, "patience": patience, "seed": seed,
                            "verbose": 0}, ctx=ctx)
    say = (lambda line: _stderr.print(line, markup=False)) if as_json else (
        lambda line: _console.print(line, markup=False))
    with _quiet_stdout(as_json):
        result = tune_tracked(frame, config, options, source=str(csv.resolve()),
                              time_col=time_col, val=val, test=test, register=register_as,
                              promote_metric=promote_metric, promote_folds=promote_folds,
                              allow_worse_than_baseline=allow_worse, experiment=experiment,
                              progress=say)
    data = result.to_dict()
    if as_json:
        print(json.dumps(data, default=str))
        return
    for line in result.stale:
        _console.print(line, markup=False)
    best = result.best
    settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in best["params"].items())
    start = (f" (the starting settings: {result.start_score:.4g})"
             if result.start_score is not None else "")
    _console.print(f"study {result.study}: {len(result.trials)} trials ({result.new_trials} "
                   f"new) in {result.storage}", markup=False)
    _console.print(f"best: trial {best['number']}, validation {result.metric} "
                   f"{best['score']:.4g}{start}: {settings}", markup=False)
    retrained = data.get("retrained")
    if retrained:
        _console.print(_metrics_table(f"{csv.name}: the best trial's model, test part",
                                      retrained))
        _console.print(retrained["versus"], markup=False)
    _console.print(f"MLflow parent run {result.parent_run_id}, model {result.model_uri}",
                   markup=False)
    if result.version:
        promotion = result.promotion or {}
        _console.print(f"registered {register_as} version {result.version}: "
                       f"{promotion.get('reason', '')}", markup=False)


def register(app: typer.Typer) -> None:
    """Adds `forecast tune` to the root app."""
    app.command("tune")(tune)


__all__ = ["parse_space_flags", "register", "tune"]
