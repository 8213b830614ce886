"""MLflow tracking: which store, run lifecycle, and what a training run logs.

The store: ``MLFLOW_TRACKING_URI`` when set; otherwise, inside the project checkout,
``sqlite:///<project>/mlflow/mlflow.db`` with artifacts under ``<project>/mlflow/artifacts``;
elsewhere MLflow's own default. Never the deprecated ``./mlruns`` file store.

This module is named after the library it wraps; it is imported as
``forecast.tracking.mlflow`` and imports the real ``mlflow`` (absolute imports).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import tensorflow as tf
import yaml

import forecast
from forecast.errors import ForecastError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EXPERIMENT = "forecast"
_MAX_TAG = 5000


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
        ``MLFLOW_TRACKING_URI`` with no artifact root of ours when the variable is set; the
        project store inside the checkout; else MLflow's default URI.
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env, None
    if _in_project_checkout():
        return project_store()
    return mlflow.get_tracking_uri(), None


def configure(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Points MLflow at the resolved store and makes ``experiment`` the active one.

    Args:
        experiment: the experiment name (created on first use).

    Returns:
        The experiment id.
    """
    uri, artifact_root = resolve_tracking_uri()
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    existing = mlflow.get_experiment_by_name(experiment)
    if existing is not None:
        experiment_id = existing.experiment_id
    else:
        location = f"{artifact_root}/{experiment}" if artifact_root else None
        experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


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
                tags: Mapping[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run that always ends: FINISHED, or FAILED with the error as a tag.

    Args:
        run_name: the run's name in the UI.
        experiment: the experiment it belongs to.
        tags: extra tags.

    Yields:
        The active run.

    Raises:
        Whatever the body raised, after the run is marked FAILED (``KILLED`` on Ctrl-C).
    """
    configure(experiment)
    run = mlflow.start_run(run_name=run_name, tags={**environment_tags(), **(tags or {})})
    try:
        yield run
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"[:_MAX_TAG]
        with contextlib.suppress(Exception):
            mlflow.set_tag("error", message)
            mlflow.set_tag("error.type", type(exc).__name__)
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        mlflow.end_run(status=status)
        raise
    else:
        mlflow.end_run(status="FINISHED")


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """A content hash of a frame (index and values), stable across runs."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def log_dataset(frame: pd.DataFrame, *, source: str | None, context: str = "training") -> str:
    """Logs the dataset as an MLflow input with a content hash; returns the hash."""
    digest = frame_digest(frame)
    table = frame.reset_index()
    targets = (frame.attrs.get("targets") or [None])[0]
    with warnings.catch_warnings():  # a local path matches two equivalent source kinds
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            table, source=source, targets=targets, name=Path(source).name if source else "frame",
            digest=digest[:36],
        )
    mlflow.log_input(dataset, context=context, tags={"sha256": digest})
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


def error_message(exc: BaseException) -> str:
    """The message a FAILED run carries (ForecastErrors are already user-facing)."""
    return str(exc) if isinstance(exc, ForecastError) else f"{type(exc).__name__}: {exc}"
