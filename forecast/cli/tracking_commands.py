"""`forecast ui` (the MLflow UI on the project's own store, bound to 127.0.0.1) and
`forecast runs clean` (end the runs that killed processes left RUNNING)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer

runs_app = typer.Typer(
    name="runs",
    help="Look after the MLflow runs of the store (e.g. those a killed process left RUNNING).",
    no_args_is_help=True,
)


def ui(
    port: int = typer.Option(5000, "--port", help="Port of the UI."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Interface to bind; 127.0.0.1 keeps it on this machine."),
) -> None:
    """Open the MLflow UI on the same store that training writes to."""
    from forecast.tracking.mlflow import resolve_tracking_uri

    uri, artifact_root = resolve_tracking_uri()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", host, "--port", str(port)]
    if artifact_root:
        command += ["--default-artifact-root", artifact_root]
    typer.echo(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C stops it.")
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        subprocess.run(command, env=env, check=False)
    except KeyboardInterrupt:
        pass


@runs_app.command("clean")
def clean(
    experiment: str = typer.Option(None, "--experiment",
                                   help="Only this experiment (default: every experiment)."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Only say which runs would be ended."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
) -> None:
    """End as KILLED the RUNNING runs whose process on this host is gone (kill -9, a crash).

    A run's owner process is in its tags (forecast.pid, forecast.host, forecast.process_start).
    Runs of another host, runs whose process still runs and runs without those tags are left
    alone, and listed.
    """
    import mlflow

    from forecast.errors import ConfigError
    from forecast.tracking.mlflow import store_errors, use_store
    from forecast.tracking.stale import end_stale_runs, host_name

    uri, _ = use_store()
    with store_errors(uri):
        if experiment is not None:
            found = mlflow.get_experiment_by_name(experiment)
            if found is None:
                names = sorted(e.name for e in mlflow.search_experiments())
                raise ConfigError(f"--experiment: no experiment named {experiment!r} in {uri}; "
                                  f"its experiments are {', '.join(names) or 'none'}.")
            ids = [found.experiment_id]
        else:
            ids = [e.experiment_id for e in mlflow.search_experiments()]
    report = end_stale_runs(ids, ended_by="forecast runs clean", dry_run=dry_run)
    if as_json:
        print(json.dumps({**report.to_dict(), "host": host_name(), "tracking_uri": uri}))
        return
    for line in report.lines():
        typer.echo(line)
    stale, left = len(report.stale), len(report.left_alone)
    verb = "would end" if dry_run else "ended"
    typer.echo(f"{verb} {stale} stale run(s) as KILLED; left {left} RUNNING run(s) alone "
               f"(store {uri}, this host {host_name()}).")


def register(app: typer.Typer) -> None:
    """Adds `forecast ui` and `forecast runs clean`."""
    app.command("ui")(ui)
    app.add_typer(runs_app, name="runs")
