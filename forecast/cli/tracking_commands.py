"""`forecast ui` (the MLflow UI on the project's own store, bound to 127.0.0.1) and
`forecast runs clean` (end the runs that killed processes left RUNNING)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import typer

runs_app = typer.Typer(
    name="runs",
    help="Look after the MLflow runs of the store (e.g. those a killed process left RUNNING).",
    no_args_is_help=True,
)


#: seconds `forecast ui` waits for the MLflow UI to stop after forwarding a signal, before it
#: kills what is left of its process group.
STOP_GRACE = 10.0


def ui(
    port: int = typer.Option(5000, "--port", help="Port of the UI."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Interface to bind; 127.0.0.1 keeps it on this machine."),
) -> None:
    """Open the MLflow UI on the same store that training writes to.

    The UI (`mlflow ui`, its uvicorn workers and its job runner) runs in a process group of its
    own; Ctrl-C, `kill -TERM` or a closed terminal stops that whole group, so nothing is left
    holding the port.
    """
    from forecast.tracking.mlflow import resolve_tracking_uri

    uri, artifact_root = resolve_tracking_uri()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", host, "--port", str(port)]
    if artifact_root:
        command += ["--default-artifact-root", artifact_root]
    base = f"http://{host}:{port}"
    typer.echo(f"MLflow UI on {base} (store {uri}); Ctrl-C stops it.")
    for line in _experiment_links(uri, base):
        typer.echo(line)
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    code = run_in_own_group(command, env=env)
    if code:
        raise typer.Exit(code)


def _experiment_links(uri: str, base: str) -> list[str]:
    """Lines with each experiment's runs page in the UI's model-training view (none when the
    store is not a database file or server that exists already)."""
    from forecast.tracking.mlflow import sqlite_path, ui_url

    database = sqlite_path(uri)
    if uri.startswith(("http://", "https://")) or (database is not None
                                                     and not database.is_file()):
        return []
    try:
        import mlflow

        experiments = mlflow.MlflowClient(uri).search_experiments()
    except Exception:  # noqa: BLE001 - the links are a convenience; the UI says what is wrong
        return []
    shown = [e for e in experiments if e.name != "Default" or e.experiment_id != "0"]
    if not shown:
        return []
    return [
        "the runs of each experiment, test MAE and skill against the best baseline as columns "
        "(the UI's \"Model training\" view; its GenAI / Model training switch, top left, is "
        "remembered by the browser):",
        *(f"  {e.name}: {ui_url(base, e.experiment_id)}" for e in shown),
    ]


def run_in_own_group(command: list[str], *, env: dict | None = None,
                     grace: float = STOP_GRACE) -> int:
    """Runs ``command`` as the leader of a new process group and waits for it.

    SIGINT, SIGTERM and SIGHUP received meanwhile are forwarded to the whole group (the
    command and everything it started); ``grace`` seconds later, and once the command has
    ended, whatever is left of the group is killed (SIGKILL).

    Args:
        command: the program and its arguments.
        env: its environment (default: this process's).
        grace: seconds the group has to stop after a forwarded signal.

    Returns:
        The command's exit status; 0 when a forwarded signal stopped it.
    """
    process = subprocess.Popen(command, env=env, start_new_session=True)
    received: list[float] = []

    def forward(signum, _frame):
        received.append(time.monotonic())
        _signal_group(process.pid, signum)

    stops = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {sig: signal.signal(sig, forward) for sig in stops}
    try:
        while True:
            try:
                code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if received and time.monotonic() - received[0] > grace:
                    _signal_group(process.pid, signal.SIGKILL)
    finally:
        _stop_group(process.pid, grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if received else code


def _signal_group(pgid: int, signum: int) -> bool:
    """Sends ``signum`` to the process group ``pgid``; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` still runs (zombies waiting for a parent that
    does not reap them, as in some containers, do not count)."""
    import psutil

    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def _stop_group(pgid: int, grace: float) -> None:
    """Ends what is left of a process group whose leader has exited: SIGTERM, then SIGKILL."""
    if not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return
        time.sleep(0.2)
    _signal_group(pgid, signal.SIGKILL)


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
