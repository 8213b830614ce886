"""Pipeline commands: `forecast pipeline run|validate FILE` and `forecast schedule FILE...`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console

_console = Console(highlight=False, soft_wrap=True)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

pipeline_app = typer.Typer(
    name="pipeline",
    help="Run or check a YAML pipeline (data → train → evaluate → register → forecast).",
    no_args_is_help=True,
)

_OPT_SET = typer.Option(None, "--set", help="Override a setting by dotted key, e.g. "
                        "--set window.horizon=48 (the value is read as YAML); repeatable.")


@pipeline_app.command("run")
def run(
    file: Path = typer.Argument(..., help="The pipeline YAML file."),
    overrides: list[str] = _OPT_SET,
    force: bool = typer.Option(False, "--force",
                               help="Train even when the data has not changed since the last "
                                    "successful run."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """Run a pipeline as one MLflow run (skipped when its data has not changed)."""
    from forecast.cli.model_commands import _quiet_stdout
    from forecast.pipelines.run import run_pipeline
    from forecast.pipelines.spec import load_pipeline

    # the whole file up front, the data file included: a bad setting fails before any training
    load_pipeline(file, overrides=overrides or (), check_data=True)
    echo = _stderr if as_json else _console

    def say(line: str) -> None:
        echo.print(line, markup=False)

    from forecast.progress import for_cli, using

    with using(for_cli(as_json=as_json)), _quiet_stdout(as_json):
        result = run_pipeline(file, overrides=overrides or (), force=force, echo=say)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    if result.skipped:
        return
    model = result.metrics.get("model", {})
    if model:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in model.items())
        _console.print(f"test metrics: {shown}")
        for name, values in result.metrics.get("baselines", {}).items():
            _console.print(f"  {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))


@pipeline_app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="The pipeline YAML file."),
    overrides: list[str] = _OPT_SET,
) -> None:
    """Check a pipeline file and print a summary (or the first problem, with its line)."""
    from forecast.pipelines.spec import load_pipeline

    spec = load_pipeline(file, overrides=overrides or (), check_data=True)
    data, window, model = spec.data, spec.window, spec.model
    lines = [
        f"OK: pipeline {spec.name} ({file})",
        f"  data      {data.path} (targets {', '.join(data.targets or ['all numeric'])}"
        f"{'; covariates ' + ', '.join(data.covariates) if data.covariates else ''})",
        f"  window    lookback {window.lookback or 'auto'}, horizon {window.horizon}",
        f"  model     {model.setup}, {model.cell} x{model.layers}, {model.units} units, "
        f"instance_norm {model.instance_norm}, linear_skip {model.linear_skip}",
        f"  train     {spec.train.epochs} epochs, patience {spec.train.patience}, "
        f"batch {spec.train.batch_size}, lr {spec.train.learning_rate}",
        "  split     " + (f"borders {list(spec.split.borders)}" if spec.split.borders
                          else f"val {spec.split.val}, test {spec.split.test}"),
        f"  evaluate  {', '.join(spec.evaluate.metrics)}"
        + (f"; backtest {spec.evaluate.backtest_folds} folds"
           if spec.evaluate.backtest_folds else ""),
    ]
    if spec.register:
        lines.append(f"  register  {spec.register.name} (promotion: "
                     f"{spec.register.promotion_metric} over {spec.register.promotion_folds} "
                     "folds)")
    if spec.forecast:
        lines.append(f"  forecast  {spec.forecast.path}")
    if spec.schedule:
        when = (f"cron {spec.schedule.cron!r}" if spec.schedule.cron
                else f"every {spec.schedule.interval_seconds:g} s")
        lines.append(f"  schedule  {when} ({spec.schedule.timezone})")
    for line in lines:
        _console.print(line)


def schedule(
    files: list[Path] = typer.Argument(None, help="Pipeline YAML files to schedule (added to "
                                                  "or replaced in the store)."),
    store: Path = typer.Option(None, "--store", help="SQLite file keeping the schedules "
                               "(default: schedules.db beside the MLflow store)."),
    every: float = typer.Option(None, "--every", help="Run every SECONDS instead of the "
                                "files' schedules (testing, debugging)."),
    list_only: bool = typer.Option(False, "--list", help="Show each stored schedule's next run "
                                   "time and exit (after adding FILES, if given)."),
    remove: list[str] = typer.Option(None, "--remove", help="Remove the schedule of this "
                                     "pipeline name from the store and exit; repeatable."),
) -> None:
    """Run pipelines on their cron schedules until Ctrl-C (schedules persist in SQLite)."""
    from forecast.errors import ConfigError
    from forecast.scheduling import PipelineScheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    scheduler = PipelineScheduler(store)
    running = False
    try:
        if remove:
            for name in remove:
                scheduler.remove(name)
                _console.print(f"removed the schedule of {name} from {scheduler.store}")
            return
        for file in files or ():
            scheduler.add_pipeline(file, every=every)
        jobs = scheduler.jobs()
        if list_only:
            if not jobs:
                _console.print(f"no schedules in {scheduler.store}")
            for job in jobs:
                target = job.args[0] if job.args else job.func
                _console.print(f"{job.id}: next run {job.next_run_time} ({job.trigger}) — "
                               f"{target}")
            return
        if not jobs:
            raise ConfigError(f"nothing to schedule: give pipeline files (e.g. forecast schedule "
                              f"pipelines/nightly.yaml); the store {scheduler.store} is empty.")
        running = True
    finally:
        if not running:
            scheduler.shutdown(wait=False)
    scheduler.run_forever(on_ready=lambda: _console.print(
        f"scheduler running with the store {scheduler.store}; Ctrl-C stops it."))


def register(app: typer.Typer) -> None:
    """Adds `forecast pipeline run|validate` and `forecast schedule` to the root app."""
    app.add_typer(pipeline_app, name="pipeline")
    app.command("schedule")(schedule)
