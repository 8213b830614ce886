"""Registry commands: `forecast registry list|promote|rollback|evaluate`.

They work on the MLflow model registry of the tracking store named by ``--tracking-uri`` or
``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

_console = Console(highlight=False, soft_wrap=True)

_OPT_CSV = typer.Option(..., "--csv", help="CSV to backtest both versions on.")

registry_app = typer.Typer(
    name="registry",
    help="The model registry: versions, the champion/challenger aliases, promotion, rollback.",
    no_args_is_help=True,
)


@registry_app.callback()
def _registry(
    tracking_uri: str = typer.Option(
        None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking store (default: MLFLOW_TRACKING_URI, else the project's).",
    ),
) -> None:
    """The model registry: versions, the champion/challenger aliases, promotion, rollback."""
    import mlflow

    if not tracking_uri:
        from forecast.tracking.mlflow import resolve_tracking_uri

        tracking_uri, _ = resolve_tracking_uri()  # the project's store inside the checkout
    mlflow.set_tracking_uri(tracking_uri)


def _score(tags: dict, key: str) -> str:
    value = tags.get(key)
    if value is None:
        return "-"
    try:
        return f"{float(value):.4f}"
    except ValueError:
        return value


@registry_app.command("list")
def list_command(
    name: str = typer.Argument(..., help="The registered model."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list and nothing else."),
) -> None:
    """List the versions of a registered model with their aliases and promotion results."""
    from forecast.tracking.registry import champion_history, list_versions

    rows = list_versions(name)
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"registered model {name}")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("aliases", no_wrap=True)
    table.add_column("decision", no_wrap=True)
    table.add_column("backtest (lower wins)")
    table.add_column("created (UTC)", no_wrap=True)
    for row in rows:
        tags = row["tags"]
        backtest = "-"
        if "promotion.challenger_score" in tags:
            backtest = (f"{tags.get('promotion.metric', '')} "
                        f"{_score(tags, 'promotion.challenger_score')} vs "
                        f"{_score(tags, 'promotion.champion_score')} "
                        f"(v{tags.get('promotion.champion_version', '?')})")
        decision = tags.get("promotion.decision", "-")
        if tags.get("rolled_back"):
            decision += " (rolled back)"
        score = "-" if row["score"] is None else f"{row['metric']} {row['score']:.4f}"
        table.add_row(str(row["version"]), row["kind"], score,
                      ", ".join(row["aliases"]) or "-", decision,
                      backtest, row["created"][:16].replace("T", " "))
    _console.print(table)
    history = champion_history(name)
    _console.print("champion history: " + (" -> ".join(f"v{v}" for v in history) or "none"))


@registry_app.command("promote")
def promote_command(
    name: str = typer.Argument(..., help="The registered model."),
    version: str = typer.Argument(..., help="The version to make champion."),
) -> None:
    """Make a version the champion by hand (no backtest); `rollback` undoes it."""
    from forecast.tracking.registry import promote

    _console.print(promote(name, version))


@registry_app.command("rollback")
def rollback_command(
    name: str = typer.Argument(..., help="The registered model."),
) -> None:
    """Move the champion alias back to the previous champion."""
    from forecast.tracking.registry import champion_history, rollback

    restored = rollback(name)
    history = " -> ".join(f"v{v}" for v in champion_history(name))
    _console.print(f"{name}: champion is version {restored.version} again "
                   f"(champion history: {history}).")


@registry_app.command("evaluate")
def evaluate_command(
    name: str = typer.Argument(..., help="The registered model."),
    version: str = typer.Argument(..., help="The challenger version."),
    csv: Path = _OPT_CSV,
    metric: str = typer.Option("mase", "--metric", help="mae, rmse, mape, smape, mase or mse."),
    folds: int = typer.Option(3, "--folds", help="Rolling-origin folds."),
    fold_size: int = typer.Option(None, "--fold-size", help="Test rows per fold."),
    mode: str = typer.Option("expanding", "--mode", help="expanding or sliding."),
    epochs: int = typer.Option(None, "--epochs",
                               help="Override both versions' epochs (faster, less faithful)."),
    time_col: str = typer.Option(None, "--time-col", help="Timestamp column (auto-detected)."),
    freq: str = typer.Option(None, "--freq", help="Sampling frequency (inferred)."),
    allow_worse: bool = typer.Option(False, "--allow-worse-than-baseline",
                                     help="Promote a version that beats the champion even when "
                                          "a baseline beats it."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """Backtest a version against the champion and the baselines on the same folds; the best
    one becomes champion (a baseline too, registered as its own version).

    Each fold refits both configurations on its training rows: folds x 2 trainings.
    """
    from forecast.evaluation.promotion import promote_if_better
    from forecast.tracking.registry import version_state
    from forecast.workflow import load_for_training

    spec = version_state(name, version).get("spec") or {}
    frame = load_for_training(csv, time_col=time_col, targets=spec.get("targets") or None,
                              covariates=spec.get("past_covariates") or None, freq=freq)
    decision = promote_if_better(name, version, frame, metric=metric, folds=folds,
                                 fold_size=fold_size, mode=mode, epochs=epochs,
                                 allow_worse_than_baseline=allow_worse)
    if as_json:
        print(json.dumps(decision.to_dict()))
        return
    if decision.folds:
        table = Table(title=f"{name}: version {decision.version} vs champion "
                            f"version {decision.champion_version_before} and the baselines "
                            f"({decision.metric}, lower wins)")
        who = ["challenger", "champion", *decision.baselines]
        for column in ("fold", "origin", "test end", *who):
            table.add_column(column, justify="right")

        def cell(value):
            return "-" if value is None else f"{value:.4f}"

        for fold in decision.folds:
            table.add_row(str(fold["fold"]), fold["origin"], fold["test_end"],
                          *(cell(fold.get(w)) for w in who))
        table.add_row("mean", "", "", cell(decision.challenger_score),
                      cell(decision.champion_score),
                      *(cell(decision.baselines[b]) for b in decision.baselines))
        _console.print(table)
    _console.print(("promoted: " if decision.promoted else "not promoted: ") + decision.reason)


def register(app: typer.Typer) -> None:
    """Adds the `registry` command group to the root app."""
    app.add_typer(registry_app, name="registry")
