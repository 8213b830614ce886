"""`forecast ui`: the MLflow UI on the project's own store, bound to 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys

import typer


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


def register(app: typer.Typer) -> None:
    """Adds `forecast ui`."""
    app.command("ui")(ui)
