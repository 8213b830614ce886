"""A training resumed from its checkpoint folder, linked to the MLflow run it continues.

``train.checkpoint_dir`` (``forecast train --checkpoint-dir DIR``, a pipeline's
``train.checkpoint_dir``) keeps Keras's ``BackupAndRestore`` backup in ``DIR/backup``: after a
kill, the next training with the same folder starts after the last finished epoch
(``forecast.training.fit``). A tracked training also writes ``DIR/forecast-run.json``: the run
that trains into the folder, its owner process, its state (``training``, ``finished``,
``failed``) and the settings the weights belong to. The next run reads it to

* tag itself ``forecast.resumes_run`` (the earlier run's id) and ``forecast.resumed_from_epoch``
  — the epochs before the kill are in that run — and tag the earlier run
  ``forecast.resumed_by``;
* refuse a folder whose backup belongs to other settings (the weights would not load), or that a
  live process on this host is training into right now (two trainings would overwrite each
  other's backup).

Example:
    >>> resume = check("runs/a", settings)           # before the run starts (ConfigError)
    >>> record("runs/a", run_id, experiment_id, settings)
    >>> resume.message if resume else "fresh start"
    'resumed from epoch 3 of run 5f0c...'
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import ConfigError
from forecast.tracking.stale import ALIVE, Owner, host_name, process_start_time

RUN_FILE = "forecast-run.json"
BACKUP_DIR = "backup"  # forecast.training.fit.BACKUP_DIR
_METADATA = "training_metadata.json"  # what keras.callbacks.BackupAndRestore writes there

TAG_RESUMES = "forecast.resumes_run"
TAG_RESUMED_FROM = "forecast.resumed_from_epoch"
TAG_RESUMED_BY = "forecast.resumed_by"


@dataclass
class Resume:
    """A training that continues the backup in its checkpoint folder.

    Attributes:
        from_epoch: the epochs finished before (the new training starts at the next one).
        run_id: the run that trained them, or None when the folder does not record it.
        checkpoint_dir: the folder.
    """

    from_epoch: int
    run_id: str | None
    checkpoint_dir: str

    @property
    def message(self) -> str:
        """``resumed from epoch 3 of run 5f0c...`` (or "of an unrecorded run in DIR")."""
        of = f"of run {self.run_id}" if self.run_id else (
            f"of an earlier training into {self.checkpoint_dir} (its run is not recorded)")
        return f"resumed from epoch {self.from_epoch} {of}"

    def to_dict(self) -> dict:
        return {"from_epoch": self.from_epoch, "run_id": self.run_id,
                "checkpoint_dir": self.checkpoint_dir, "message": self.message}


def backup_epoch(checkpoint_dir) -> int | None:
    """The epochs finished in the folder's backup, or None when it holds none.

    Args:
        checkpoint_dir: the checkpoint folder.

    Returns:
        The epoch count Keras recorded with the last backup (> 0), or None.
    """
    path = Path(checkpoint_dir) / BACKUP_DIR / _METADATA
    try:
        epoch = int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epoch if epoch > 0 else None


def read_record(checkpoint_dir) -> dict | None:
    """``DIR/forecast-run.json`` as a dict; None when missing or unreadable."""
    try:
        data = json.loads((Path(checkpoint_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _flat(settings: Mapping, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value, sort_keys=True, default=str)
    return flat


def check(checkpoint_dir, settings: Mapping) -> Resume | None:
    """Whether a training with ``settings`` may use the folder, and what it resumes.

    Args:
        checkpoint_dir: the checkpoint folder (it need not exist yet).
        settings: the settings the weights depend on (the model, window and features; not the
            epochs or the learning rate, which may change on a resume).

    Returns:
        A ``Resume`` when the folder holds a backup (the run it belongs to from
        ``forecast-run.json``), else None.

    Raises:
        ConfigError: the folder is not a folder; a live process of this host is training into it;
            or its backup was written by a training with other settings (the first difference is
            named).
    """
    folder = Path(checkpoint_dir)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--checkpoint-dir / train.checkpoint_dir: {folder} is a file; give a "
                          "folder (it is created when missing).")
    record = read_record(folder) or {}
    owner = Owner.from_tags({"forecast.pid": record.get("pid"),
                             "forecast.host": record.get("host"),
                             "forecast.process_start": record.get("process_start")})
    if (record.get("state") == "training" and owner is not None and owner.pid != os.getpid()
            and owner.state() == ALIVE):
        raise ConfigError(
            f"checkpoint folder {folder} is in use: process {owner.pid} on {owner.host} is "
            f"training into it (run {record.get('run_id')}). Give another --checkpoint-dir "
            "(train.checkpoint_dir), or wait for that training to end.")
    epoch = backup_epoch(folder)
    if epoch is None:
        return None
    before = record.get("settings")
    if isinstance(before, dict):
        now = _flat(settings)
        # settings both know (a setting added by a newer version does not block a resume)
        changed = sorted(k for k in now if k in before and before[k] != now[k])
        if changed:
            key = changed[0]
            raise ConfigError(
                f"checkpoint folder {folder} holds the backup of epoch {epoch} of run "
                f"{record.get('run_id')}, trained with other settings ({key}: {before[key]} "
                f"then, {now[key]} now); its weights "
                f"cannot continue this model. Use the same settings to resume, another "
                f"--checkpoint-dir, or delete {folder / BACKUP_DIR} to start afresh.")
    return Resume(epoch, record.get("run_id") or None, str(folder))


def _write(folder: Path, data: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{RUN_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(temporary, folder / RUN_FILE)  # a kill never leaves half a file


def record(checkpoint_dir, run_id: str, experiment_id: str, settings: Mapping, *,
           tracking_uri: str | None = None) -> None:
    """Writes ``DIR/forecast-run.json``: run ``run_id`` of this process trains into ``DIR``.

    Args:
        checkpoint_dir: the checkpoint folder (created when missing).
        run_id, experiment_id: the MLflow run.
        settings: what ``check`` compares on the next training.
        tracking_uri: the store the run is in.

    Raises:
        ConfigError: the folder cannot be written.
    """
    folder = Path(checkpoint_dir)
    started = process_start_time(os.getpid())
    data = {"run_id": run_id, "experiment_id": experiment_id, "tracking_uri": tracking_uri,
            "pid": os.getpid(), "host": host_name(),
            "process_start": None if started is None else round(started, 2),
            "state": "training", "written_at": _now(), "settings": _flat(settings)}
    try:
        _write(folder, data)
    except OSError as exc:
        raise ConfigError(f"checkpoint folder {folder} cannot be written: {exc}") from None


def mark(checkpoint_dir, state: str) -> None:
    """Sets the ``state`` of ``DIR/forecast-run.json`` (``finished`` or ``failed``); a missing or
    unwritable file is left as it is."""
    folder = Path(checkpoint_dir)
    data = read_record(folder)
    if data is None:
        return
    data.update(state=state, written_at=_now())
    try:
        _write(folder, data)
    except OSError:
        pass


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
