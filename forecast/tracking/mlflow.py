"""MLflow tracking: which store, run lifecycle, and what a training run logs.

The store: ``MLFLOW_TRACKING_URI`` when set; otherwise, inside the project checkout,
``sqlite:///<project>/mlflow/mlflow.db`` with artifacts under ``<project>/mlflow/artifacts``;
elsewhere MLflow's own default. Never the deprecated ``./mlruns`` file store.

Several processes at once. A team runs against ``mlflow server`` (PostgreSQL behind it: every
write is a transaction of the database server). A SQLite file is shared by processes on one
machine only, and needs two guards, both here:

* a brand-new SQLite file is initialised (tables created, migrations run) by the first MLflow
  call of a process that opens it; two processes doing that at once break the schema. Importing
  this module therefore makes MLflow open every SQLite store under an exclusive file lock
  (``<db>.lock``, from the ``filelock`` package): one process initialises the file, the others
  wait and find it done (``guard_sqlite_stores``). ``configure`` also creates the experiment
  race-free (a concurrent creator's ``RESOURCE_ALREADY_EXISTS`` is answered by reading it).
* afterwards each MLflow write is a short SQLite transaction that waits up to MLflow's busy
  timeout (20 s) for the file. Should a write still find the file locked, the run fails with a
  ``TrackingStoreError`` that names the store and says to start ``mlflow server``
  (``store_errors``), never a raw SQLAlchemy traceback; the failed write is rolled back, so
  the store stays consistent.

Against a server (``http://``), MLflow 3's usage telemetry is switched off for the process unless
``MLFLOW_DISABLE_TELEMETRY`` is set either way: without internet access its background thread
removes a variable from ``os.environ`` while ``requests`` iterates it for the proxy settings,
and the tracking call in flight fails with ``KeyError: '_MLFLOW_TELEMETRY_SESSION_ID'``
(``quiet_telemetry``).

This module is named after the library it wraps; it is imported as
``forecast.tracking.mlflow`` and imports the real ``mlflow`` (absolute imports).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import time
import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import tensorflow as tf
import yaml
from mlflow.exceptions import MlflowException

import forecast
from forecast.data.dataset import describe
from forecast.errors import TrackingStoreError
from forecast.paths import PROJECT_ROOT
from forecast.tracking.stale import owner_tags

DEFAULT_EXPERIMENT = "forecast"
_MAX_TAG = 5000
#: how long opening a SQLite store waits for another process initialising the same file.
SQLITE_INIT_TIMEOUT = 300.0
#: what SQLite (through SQLAlchemy and MLflow) says when another process holds the file.
_LOCKED_MARKERS = ("database is locked", "database table is locked", "sqlite_busy")


def _in_project_checkout(cwd: Path | None = None) -> bool:
    cwd = (cwd or Path.cwd()).resolve()
    marker = PROJECT_ROOT / "pyproject.toml"
    return marker.is_file() and (PROJECT_ROOT / "mlflow").is_dir() and (
        cwd == PROJECT_ROOT or PROJECT_ROOT in cwd.parents
    )


def project_store() -> tuple[str, str]:
    """The project's own store: (tracking URI, artifact root URI)."""
    folder = PROJECT_ROOT / "mlflow"
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def resolve_tracking_uri() -> tuple[str, str | None]:
    """Which store to use: (tracking URI, artifact root for new experiments or None).

    Returns:
        ``MLFLOW_TRACKING_URI`` when the variable is set (for a ``sqlite:///`` file, new
        experiments keep their artifacts in ``artifacts/`` beside it; for other stores, where the
        store says); the project store inside the checkout; else MLflow's default URI.
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        database = sqlite_path(env)
        # beside the database file, not in ./mlruns of whatever folder the process started in
        return env, None if database is None else (database.parent / "artifacts").as_uri()
    if _in_project_checkout():
        return project_store()
    return mlflow.get_tracking_uri(), None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI, or None for any other store.

    Args:
        uri: a tracking URI.

    Returns:
        The file's path (``sqlite:////abs/mlflow.db`` -> ``/abs/mlflow.db``), or None for a
        server (``http://``), a database server (``postgresql+psycopg2://``) or an in-memory
        SQLite database.

    Example:
        >>> sqlite_path("sqlite:////srv/mlflow/mlflow.db")
        PosixPath('/srv/mlflow/mlflow.db')
    """
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def concurrency_message(uri: str, detail: str = "") -> str:
    """The message of a ``TrackingStoreError`` for a SQLite store that another process holds.

    Args:
        uri: the tracking URI.
        detail: what MLflow or SQLite reported (shortened to one line).

    Returns:
        One paragraph that names the store and says how to run concurrently.
    """
    detail = " ".join(str(detail).split())[:300]
    reported = f" ({detail})" if detail else ""
    return (
        f"the MLflow tracking store {uri} is a SQLite file that another process is writing "
        f"to{reported}. Use a tracking server for concurrent runs: start `mlflow server "
        "--backend-store-uri postgresql+psycopg2://USER@HOST/DB --artifacts-destination "
        "DIR_OR_URI --host 127.0.0.1` (see the README, \"Team tracking server\") and set "
        "MLFLOW_TRACKING_URI=http://127.0.0.1:5000; or run one pipeline at a time on this store."
    )


def _is_locked(exc: BaseException | None, depth: int = 0) -> bool:
    """Whether ``exc`` or an exception it was raised from says the SQLite file is locked."""
    if exc is None or depth > 8:
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _LOCKED_MARKERS) or _is_locked(
        exc.__cause__ or exc.__context__, depth + 1)


@contextlib.contextmanager
def store_errors(uri: str | None = None) -> Iterator[None]:
    """Turns "SQLite file locked by another process" into a clear ``TrackingStoreError``.

    Other errors pass through unchanged, and so does everything for a store that is not a
    SQLite file.

    Args:
        uri: the tracking URI (default: MLflow's current one).

    Raises:
        TrackingStoreError: an MLflow call in the block failed because the SQLite store was
            locked by another process (after MLflow's own 20 s busy wait).

    Example:
        >>> with store_errors():
        ...     mlflow.log_metric("mae", 0.5)
    """
    try:
        yield
    except TrackingStoreError:
        raise
    except Exception as exc:
        uri = uri or mlflow.get_tracking_uri()
        if sqlite_path(uri) is not None and _is_locked(exc):
            raise TrackingStoreError(concurrency_message(uri, str(exc))) from exc
        raise


@contextlib.contextmanager
def _sqlite_init_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on ``<db>.lock`` beside a SQLite store; nothing for other stores."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(f"{path}.lock", timeout=SQLITE_INIT_TIMEOUT)
        lock.acquire()
    except Timeout:
        raise TrackingStoreError(concurrency_message(
            uri, f"waited {SQLITE_INIT_TIMEOUT:.0f} s for {path}.lock")) from None
    try:
        yield
    finally:
        lock.release()


def _locked(builder):
    """An MLflow store builder that opens SQLite stores under ``_sqlite_init_lock``."""
    if getattr(builder, "_forecast_locked", False):
        return builder

    @functools.wraps(builder)  # MLflow reads the builder's parameters off its signature
    def build(*args, **kwargs):
        uri = kwargs.get("store_uri", args[0] if args else None)
        with _sqlite_init_lock(str(uri or "")):
            return builder(*args, **kwargs)

    build._forecast_locked = True
    return build


def guard_sqlite_stores() -> bool:
    """Makes MLflow open (and, the first time, initialise) SQLite stores under a file lock.

    MLflow builds a tracking store and a model-registry store the first time a process uses a
    URI; for a new SQLite file that build creates the tables and runs the migrations, and two
    processes doing it at once leave a broken schema ("duplicate column name", "Online migration
    expected to match one row"). This wraps MLflow's ``sqlite`` store builders (through its
    store registries, as a plugin registers one) so each build holds ``<db>.lock``: the first
    process initialises, the others wait, then find the tables there. Each store is built once
    per process, so the lock costs nothing afterwards. Called when this module is imported;
    calling it again does nothing.

    Returns:
        True when both builders are guarded; False when this MLflow version lays its store
        registries out differently (SQLite stores are then opened unguarded, as MLflow does;
        ``tests/tracking/test_concurrent_runs.py`` notices).
    """
    try:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        registries = [tracking_utils._tracking_store_registry,
                      registry_utils._get_store_registry()]
        for registry in registries:
            registry.register("sqlite", _locked(registry.get_store_builder("sqlite:///x.db")))
    except Exception:  # noqa: BLE001 - MLflow internals moved: run unguarded rather than fail
        return False
    return True


def _experiment_id(experiment: str, artifact_root: str | None) -> str:
    """The id of ``experiment``, created when missing (a concurrent creator is not an error),
    marked as a model-training experiment with forecast's runs-list view (``_experiment_tags``;
    added to an existing experiment that lacks them)."""
    from mlflow.exceptions import MlflowException

    existing = mlflow.get_experiment_by_name(experiment)
    if existing is not None:
        mark_model_training(existing)
        return existing.experiment_id
    location = f"{artifact_root}/{experiment}" if artifact_root else None
    try:
        return mlflow.create_experiment(experiment, artifact_location=location,
                                        tags=_experiment_tags())
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        existing = mlflow.get_experiment_by_name(experiment)
        if existing is None:
            raise
        mark_model_training(existing)
        return existing.experiment_id


#: the experiment tag by which MLflow's UI tells a GenAI experiment (traces, an "Overview" of
#: latency and tokens) from a model-training one (runs, metrics, models), and forecast's value.
#: MLflow's own UI sets it when a user picks the kind in the experiment's header.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: the URL query that opens MLflow 3.17's UI in its "Model training" view: its GenAI/Model
#: training switch (top left; GenAI by default, remembered per browser) outranks the tag above.
ML_VIEW_QUERY = "workflowType=machine_learning"
#: a runs-list view stored in the experiment (MLflow's "shared view": the experiment tag
#: ``mlflow.sharedViewState.<key>``, opened by ``viewStateShareKey=<key>`` in the URL): the
#: headline metrics of ``forecast.tracking.run.headline`` and the best baseline as columns.
VIEW_KEY = "forecast"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_COLUMNS = ("metrics.`test_mae`", "metrics.`test_mase`", "metrics.`best_baseline_mae`",
                "metrics.`skill_vs_best_baseline`", "tags.`forecast.best_baseline`")


def _experiment_tags() -> dict[str, str]:
    """The tags forecast gives its experiments: the kind and the runs-list view."""
    return {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
            VIEW_TAG: json.dumps({"selectedColumns": list(VIEW_COLUMNS)})}


def mark_model_training(experiment) -> dict[str, str]:
    """Gives an existing experiment the tags of ``_experiment_tags`` that it lacks.

    An experiment whose kind a user chose in the UI (any value) keeps it.

    Args:
        experiment: an ``mlflow.entities.Experiment``.

    Returns:
        The tags set now.
    """
    missing = {key: value for key, value in _experiment_tags().items()
               if not experiment.tags.get(key)}
    client = mlflow.MlflowClient()
    for key, value in list(missing.items()):
        try:
            client.set_experiment_tag(experiment.experiment_id, key, value)
        except Exception:  # noqa: BLE001 - a read-only store still runs; the UI only looks
            missing.pop(key)
    return missing


def ui_url(base: str, experiment_id: str | None = None, run_id: str | None = None) -> str:
    """A page of MLflow's UI in its model-training view.

    Args:
        base: the UI's address, e.g. ``http://127.0.0.1:5000``.
        experiment_id: the experiment's runs, with the headline metrics as columns (default:
            the list of experiments).
        run_id: one run of that experiment.

    Example:
        >>> ui_url("http://127.0.0.1:5000", "1")
        'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&viewStateShareKey=forecast'
    """
    base = base.rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments?{ML_VIEW_QUERY}"
    if run_id is not None:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW_QUERY}"
    return (f"{base}/#/experiments/{experiment_id}/runs?{ML_VIEW_QUERY}"
            f"&viewStateShareKey={VIEW_KEY}")


def run_label(*parts, when: datetime | None = None) -> str:
    """A run name that says what ran: the non-empty ``parts`` and a short local time.

    Args:
        parts: e.g. ``("lstm", "OT", "h24")``; None and empty parts are left out; spaces and
            slashes become ``_``.
        when: the time in the name (default now), as ``MMDD-HHMM``.

    Example:
        >>> run_label("backtest", "lstm", "OT", "h24", when=datetime(2026, 11, 30, 9, 17))
        'backtest-lstm-OT-h24-1130-0917'
    """
    when = when or datetime.now()
    words = ["_".join(str(part).replace("/", " ").split()) for part in parts
             if part is not None and str(part).strip()]
    return "-".join([*words, f"{when:%m%d-%H%M}"])[:250]


def quiet_telemetry(uri: str) -> bool:
    """Switches MLflow's usage telemetry off in this process when tracking to a server.

    MLflow 3 starts a thread that fetches its telemetry settings; when that fails (no internet
    access) or telemetry is not rolled out to this install, the thread deletes
    ``_MLFLOW_TELEMETRY_SESSION_ID`` from ``os.environ``. A REST call to the tracking server made
    at that moment reads ``os.environ`` (``requests``' proxy settings) and fails with a
    ``KeyError`` naming that variable: a pipeline run against ``mlflow server`` dies at random.
    Setting ``MLFLOW_DISABLE_TELEMETRY=true`` and re-initialising the client (which removes the
    variable once, here) closes the window. An explicit ``MLFLOW_DISABLE_TELEMETRY`` (true or
    false) is left as the user set it.

    Args:
        uri: the tracking URI.

    Returns:
        True when telemetry was switched off now.
    """
    if not uri.startswith(("http://", "https://")) or "MLFLOW_DISABLE_TELEMETRY" in os.environ:
        return False
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    try:
        from mlflow.telemetry.client import set_telemetry_client

        set_telemetry_client()  # disabled now: drops the client and its session variable
    except Exception:  # noqa: BLE001 - MLflow without telemetry: nothing to switch off
        pass
    return True


def use_store() -> tuple[str, str | None]:
    """Points MLflow at the resolved store (``resolve_tracking_uri``), telemetry quieted.

    Returns:
        (tracking URI, artifact root for new experiments or None).
    """
    uri, artifact_root = resolve_tracking_uri()
    quiet_telemetry(uri)
    mlflow.set_tracking_uri(uri)
    return uri, artifact_root


def configure(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Points MLflow at the resolved store and makes ``experiment`` the active one.

    Args:
        experiment: the experiment name (created on first use; several processes creating it
            at once is fine).

    Returns:
        The experiment id.

    Raises:
        TrackingStoreError: a SQLite store stayed locked by other processes.
    """
    uri, artifact_root = use_store()
    with store_errors(uri):
        experiment_id = _experiment_id(experiment, artifact_root)
        mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


guard_sqlite_stores()
quiet_telemetry(os.environ.get("MLFLOW_TRACKING_URI", ""))


def environment_tags() -> dict[str, str]:
    """Versions and the git commit, for reproducing a run."""
    tags = {
        "forecast.version": forecast.__version__,
        "tensorflow.version": tf.__version__,
        "keras.version": keras.__version__,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
            timeout=10, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if commit:
        tags["git.commit"] = commit
    return tags


@contextlib.contextmanager
def tracked_run(run_name: str | None = None, *, experiment: str = DEFAULT_EXPERIMENT,
                tags: Mapping[str, str] | None = None,
                run_id: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run that always ends: FINISHED, or FAILED with the error as a tag.

    Args:
        run_name: the run's name in the UI.
        experiment: the experiment it belongs to.
        tags: extra tags (beside the versions, the git commit and the owner process:
            ``forecast.pid``, ``forecast.host``, ``forecast.process_start``, which let
            ``forecast.tracking.stale`` end the run as KILLED once that process is gone).
        run_id: reopen this (ended) run to add to it instead of starting one; ``run_name``,
            ``experiment`` and ``tags`` are then not used (the owner tags are updated to
            this process). When the block succeeds, the error
            tags of an earlier failed attempt are removed (a retried pipeline step).

    Yields:
        The active run.

    Raises:
        TrackingStoreError: a SQLite store stayed locked by other processes (the body's own
            "database is locked" errors become this too).
        Whatever else the body raised, after the run is marked FAILED (``KILLED`` on Ctrl-C).
    """
    if run_id is None:
        configure(experiment)
        uri = mlflow.get_tracking_uri()
        with store_errors(uri):
            run = mlflow.start_run(run_name=run_name,
                                   tags={**environment_tags(), **owner_tags(), **(tags or {})})
    else:
        uri, _ = use_store()
        with store_errors(uri):
            run = mlflow.start_run(run_id=run_id)
            mlflow.set_tags(owner_tags())  # this process owns the reopened run now
    stale = [key for key in _ERROR_TAGS if key in run.data.tags]
    try:
        with store_errors(uri):
            yield run
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"[:_MAX_TAG]
        with contextlib.suppress(Exception):
            mlflow.set_tags(dict(zip(_ERROR_TAGS, (message, type(exc).__name__), strict=True)))
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):  # a store refusing this too: report the first error
            mlflow.end_run(status=status)
        raise
    else:
        with store_errors(uri):
            for key in stale:
                mlflow.delete_tag(key)
            mlflow.end_run(status="FINISHED")


_ERROR_TAGS = ("error", "error.type")


def flatten(data: Mapping, prefix: str = "") -> dict[str, str]:
    """Nested settings as flat MLflow params: ``{"train.epochs": "20", ...}``."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]
    return flat


def frame_digest(frame: pd.DataFrame) -> str:
    """A content hash of a frame (index and values), stable across runs."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


#: attempts of ``log_dataset`` when runs log the same new dataset at once (see there)
DATASET_ATTEMPTS = 3


def _duplicate_dataset(exc: MlflowException) -> bool:
    """Whether ``exc`` is a store refusing a dataset row another run inserted at the same
    moment (PostgreSQL's ``UniqueViolation``, SQLite's ``UNIQUE constraint failed``)."""
    text = str(exc)
    return "dataset" in text.lower() and ("UniqueViolation" in text or "UNIQUE constraint" in text
                                          or "duplicate key" in text)


def log_dataset(frame: pd.DataFrame, *, source: str | None, context: str = "training") -> str:
    """Logs the dataset as an MLflow input with a content hash; returns the hash.

    MLflow's stores look the dataset up and insert it when it is new; runs that log the same
    new dataset at the same moment (pipelines started together on one tracking server) can
    both insert it, and the second is refused by the table's unique key. That refusal is
    retried (``DATASET_ATTEMPTS``): by then the lookup finds the row the other run wrote.

    Raises:
        MlflowException: the store refused the input for another reason, or kept refusing.
    """
    digest = frame_digest(frame)
    table = frame.reset_index()
    targets = (describe(frame).targets or (None,))[0]
    with warnings.catch_warnings():  # a local path matches two equivalent source kinds
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            table, source=source, targets=targets, name=Path(source).name if source else "frame",
            digest=digest[:36],
        )
    for attempt in range(DATASET_ATTEMPTS):
        try:
            mlflow.log_input(dataset, context=context, tags={"sha256": digest})
            break
        except MlflowException as exc:
            if attempt + 1 == DATASET_ATTEMPTS or not _duplicate_dataset(exc):
                raise
            time.sleep(0.2 * (attempt + 1))
    mlflow.set_tag("data.sha256", digest)
    return digest


def log_config(config: Mapping) -> None:
    """The whole configuration, as flattened params and as ``config.yaml``."""
    mlflow.log_params(flatten(config))
    mlflow.log_text(yaml.safe_dump(dict(config), sort_keys=False), "config.yaml")


def log_metric_tables(prefix: str, metrics: Mapping[str, float]) -> None:
    """Scalar metrics under ``<prefix>.<name>``; non-finite values are skipped."""
    clean = {
        f"{prefix}.{name}": float(value) for name, value in metrics.items()
        if isinstance(value, int | float) and np.isfinite(value)
    }
    if clean:
        mlflow.log_metrics(clean)


def log_per_step(prefix: str, per_step: Mapping[str, list]) -> None:
    """Per-horizon-step metrics as one series per metric, ``step`` = horizon index (1-based)."""
    for name, values in per_step.items():
        for step, value in enumerate(values, start=1):
            if value is not None and np.isfinite(value):
                mlflow.log_metric(f"{prefix}.{name}_by_step", float(value), step=step)


class EpochLogger(keras.callbacks.Callback):
    """Logs every epoch's losses (and learning rate) to the active run as it trains."""

    def on_epoch_end(self, epoch, logs=None):
        values = {k: float(v) for k, v in (logs or {}).items() if np.isfinite(float(v))}
        if values and mlflow.active_run() is not None:
            mlflow.log_metrics(values, step=epoch + 1)
