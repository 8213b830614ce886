"""Runs whose process was killed: who owns a run, and ending the stale ones as KILLED.

A process killed with ``kill -9`` (or by the out-of-memory killer, or a power cut) cannot end
its MLflow run, which then stays RUNNING forever. Every run the toolkit starts or reopens
(``forecast.tracking.mlflow.tracked_run``) is therefore tagged with its owner process:

* ``forecast.pid`` — the process id;
* ``forecast.host`` — ``socket.gethostname()``;
* ``forecast.process_start`` — the process's start time (seconds since the epoch), so that a
  process id reused by a later process is not mistaken for the owner.

``end_stale_runs`` finds the RUNNING runs of some experiments whose owner process on THIS host is
gone and ends them with status KILLED, tagged ``forecast.ended_by`` (who ended it),
``forecast.ended_at`` (UTC, ISO 8601) and ``forecast.ended_reason`` ("owner process 4242 on
host-a is gone"). Runs owned by another host are left alone (only that host can tell whether
their process lives), and so are runs that carry no owner tags (started by other code). A nested
run without owner tags belongs to the owner of its nearest tagged parent run, so the children of
a killed run are ended with it.

Callers: ``forecast runs clean`` (``forecast.cli.tracking_commands``), the next run of a
pipeline (``forecast.pipelines.steps.validate``) and the next ``forecast train`` of the same
experiment (``forecast.tracking.run.train_tracked``).

Example:
    >>> report = end_stale_runs(["1"], ended_by="forecast runs clean", dry_run=True)
    >>> [(run.run_id, run.reason) for run in report.stale]
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

TAG_PID = "forecast.pid"
TAG_HOST = "forecast.host"
TAG_PROCESS_START = "forecast.process_start"
TAG_ENDED_BY = "forecast.ended_by"
TAG_ENDED_AT = "forecast.ended_at"
TAG_ENDED_REASON = "forecast.ended_reason"
_PARENT = "mlflow.parentRunId"
#: two readings of one process's start time differ by less than this (seconds).
START_TOLERANCE = 1.0

ALIVE, GONE, OTHER_HOST, UNOWNED = "alive", "gone", "other host", "unowned"


# -- the owner process ---------------------------------------------------------------------------


def host_name() -> str:
    """This machine's name, as the owner tags record it (``socket.gethostname()``)."""
    return socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch; None when unknown or gone.

    Reads psutil's ``create_time``; without psutil, ``/proc/PID/stat`` on Linux (the same
    reading: boot time + start ticks); elsewhere None.

    Args:
        pid: a process id.

    Returns:
        The start time, or None.
    """
    try:
        import psutil
    except ImportError:
        return _proc_start_time(pid)
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError, ValueError):
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (field 3 on), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def _proc_start_time(pid: int) -> float | None:
    fields = _proc_stat(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def process_state(pid: int, started: float | None = None) -> str:
    """Whether process ``pid`` of this host is the one that started at ``started``.

    Args:
        pid: the process id.
        started: its start time as recorded (``process_start_time``); None: any process with
            that id counts.

    Returns:
        ``ALIVE``, or ``GONE`` when no such process exists, it is a zombie (ended, not yet
        reaped), or the id now belongs to a process started at another time.
    """
    if pid <= 0:
        return GONE
    try:
        import psutil
    except ImportError:
        return _process_state_without_psutil(pid, started)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return GONE
        now_started = process.create_time()
    except psutil.NoSuchProcess:
        return GONE
    except psutil.AccessDenied:
        return ALIVE  # it exists; another user's process
    if started is not None and abs(now_started - started) > START_TOLERANCE:
        return GONE  # the id was reused
    return ALIVE


def _process_state_without_psutil(pid: int, started: float | None) -> str:
    fields = _proc_stat(pid)
    if fields is not None:
        if fields[0] in ("Z", "X"):
            return GONE
        now_started = _proc_start_time(pid)
        if started is not None and now_started is not None and abs(
                now_started - started) > START_TOLERANCE:
            return GONE
        return ALIVE
    if Path("/proc/self/stat").exists():
        return GONE  # Linux, and no entry for the id
    if sys.platform == "win32":
        return ALIVE  # cannot tell without psutil (os.kill(pid, 0) would send CTRL_C_EVENT)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return GONE
    except PermissionError:
        return ALIVE
    return ALIVE


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """The owner tags of a run started by process ``pid`` (default: this one).

    Returns:
        ``{"forecast.pid": ..., "forecast.host": ..., "forecast.process_start": ...}`` (the
        start time left out when it cannot be read).
    """
    pid = os.getpid() if pid is None else int(pid)
    tags = {TAG_PID: str(pid), TAG_HOST: host_name()}
    started = process_start_time(pid)
    if started is not None:
        tags[TAG_PROCESS_START] = f"{started:.2f}"
    return tags


@dataclass
class Owner:
    """A run's owner process as its tags record it."""

    pid: int
    host: str
    started: float | None = None

    @classmethod
    def from_tags(cls, tags: dict) -> Owner | None:
        """The owner recorded in ``tags``; None when they carry no (valid) owner tags."""
        try:
            pid = int(tags[TAG_PID])
        except (KeyError, TypeError, ValueError):
            return None
        try:
            started = float(tags[TAG_PROCESS_START])
        except (KeyError, TypeError, ValueError):
            started = None
        return cls(pid, str(tags.get(TAG_HOST, "")), started)

    def state(self) -> str:
        """``ALIVE``, ``GONE`` or ``OTHER_HOST``."""
        if self.host != host_name():
            return OTHER_HOST
        return process_state(self.pid, self.started)

    def describe(self) -> str:
        return f"owner process {self.pid} on {self.host}"


# -- stale runs ----------------------------------------------------------------------------------


@dataclass
class RunVerdict:
    """What ``end_stale_runs`` found about one RUNNING run.

    Attributes:
        run_id, run_name, experiment_id: the run.
        state: ``GONE`` (stale: ended, or to end with ``dry_run``), ``ALIVE``, ``OTHER_HOST`` or
            ``UNOWNED``.
        reason: one line saying why.
        parent: the parent run whose owner decided, for a nested run without owner tags.
        ended: whether it was ended now (False for a dry run and for runs left alone).
    """

    run_id: str
    run_name: str
    experiment_id: str
    state: str
    reason: str
    parent: str | None = None
    ended: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StaleReport:
    """The RUNNING runs ``end_stale_runs`` looked at, by verdict."""

    ended_by: str
    dry_run: bool
    runs: list[RunVerdict] = field(default_factory=list)

    @property
    def stale(self) -> list[RunVerdict]:
        return [run for run in self.runs if run.state == GONE]

    @property
    def left_alone(self) -> list[RunVerdict]:
        return [run for run in self.runs if run.state != GONE]

    def lines(self) -> list[str]:
        """One line per run: what was (or would be) done, and why."""
        out = []
        for run in self.runs:
            name = f" ({run.run_name})" if run.run_name else ""
            where = f"run {run.run_id}{name} of experiment {run.experiment_id}"
            if run.state == GONE:
                verb = "would end" if self.dry_run else "ended"
                out.append(f"{verb} {where} as KILLED: {run.reason}")
            else:
                out.append(f"left {where} RUNNING: {run.reason}")
        return out

    def to_dict(self) -> dict:
        return {"ended_by": self.ended_by, "dry_run": self.dry_run,
                "runs": [run.to_dict() for run in self.runs]}


def _owner_of(run, client, depth: int = 0) -> tuple[Owner | None, str | None]:
    """The run's owner: its own tags, else its nearest tagged parent's (and that parent)."""
    owner = Owner.from_tags(run.data.tags)
    if owner is not None or depth > 16:
        return owner, None
    parent_id = run.data.tags.get(_PARENT)
    if not parent_id:
        return None, None
    try:
        parent = client.get_run(parent_id)
    except Exception:  # noqa: BLE001 - a deleted parent: no owner known
        return None, None
    owner, _ = _owner_of(parent, client, depth + 1)
    return owner, parent_id


def _verdict(run, client) -> RunVerdict:
    info = run.info
    owner, parent = _owner_of(run, client)
    base = dict(run_id=info.run_id, run_name=info.run_name or "",
                experiment_id=info.experiment_id, parent=parent)
    of_parent = f" (of its parent run {parent})" if parent else ""
    if owner is None:
        return RunVerdict(**base, state=UNOWNED, reason=(
            "it has no forecast.pid tag (not started by forecast, or by an older version); "
            "end it from the MLflow UI or MlflowClient().set_terminated(run_id, 'KILLED') if "
            "its process is gone"))
    state = owner.state()
    if state == OTHER_HOST:
        reason = (f"{owner.describe()}{of_parent} is another host: only that host can tell "
                  f"whether it still runs; run `forecast runs clean` there")
    elif state == ALIVE:
        reason = f"{owner.describe()}{of_parent} is still running"
    else:
        reason = f"{owner.describe()}{of_parent} is gone"
    return RunVerdict(**base, state=state, reason=reason)


def running_runs(experiment_ids: list[str], client=None, *, tags: dict | None = None) -> list:
    """The RUNNING runs of the experiments (all pages), optionally only those with ``tags``."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = client or MlflowClient()
    if not experiment_ids:
        return []
    query = ["attributes.status = 'RUNNING'"]
    for key, value in (tags or {}).items():
        escaped = str(value).replace("'", "\\'")
        query.append(f"tags.`{key}` = '{escaped}'")
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=" and ".join(query),
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _children(run_ids: set[str], experiment_ids: list[str], client, seen: set[str]) -> list:
    """RUNNING runs nested (at any depth) under ``run_ids`` not already in ``seen``."""
    from mlflow.entities import ViewType

    found = []
    frontier = set(run_ids)
    while frontier:
        fresh = []
        for run_id in sorted(frontier):
            page = client.search_runs(
                experiment_ids, filter_string=f"attributes.status = 'RUNNING' and "
                                              f"tags.`{_PARENT}` = '{run_id}'",
                run_view_type=ViewType.ACTIVE_ONLY, max_results=1000)
            fresh.extend(run for run in page if run.info.run_id not in seen)
        seen.update(run.info.run_id for run in fresh)
        found.extend(fresh)
        frontier = {run.info.run_id for run in fresh}
    return found


def end_stale_runs(experiment_ids: list[str], *, ended_by: str, dry_run: bool = False,
                   tags: dict | None = None, client=None) -> StaleReport:
    """Ends, as KILLED, the RUNNING runs of these experiments whose owner process is gone.

    Only runs owned by a process of this host are judged (``forecast.host``); a run whose owner
    still runs, a run of another host and a run without owner tags are left alone and reported.
    The nested runs of an ended run are ended too.

    Args:
        experiment_ids: where to look.
        ended_by: who ends them, for the tag ``forecast.ended_by`` (e.g. ``"forecast runs
            clean"``, ``"the next run of pipeline nightly"``).
        dry_run: only report what would be ended.
        tags: look only at runs carrying these tags (e.g. ``{"pipeline.name": "nightly"}``);
            their nested runs are ended with them all the same.
        client: an ``MlflowClient`` (default: one on the current tracking URI).

    Returns:
        A ``StaleReport``: every RUNNING run looked at, with its verdict.

    Raises:
        TrackingStoreError: a SQLite store stayed locked by other processes.
    """
    from mlflow import MlflowClient

    from forecast.tracking.mlflow import store_errors

    client = client or MlflowClient()
    report = StaleReport(ended_by=ended_by, dry_run=dry_run)
    with store_errors():
        runs = running_runs(list(experiment_ids), client, tags=tags)
        seen = {run.info.run_id for run in runs}
        verdicts = [_verdict(run, client) for run in runs]
        stale_ids = {v.run_id for v in verdicts if v.state == GONE}
        if stale_ids and tags:  # nested runs that the tag filter left out
            for child in _children(stale_ids, list(experiment_ids), client, seen):
                verdicts.append(_verdict(child, client))
        report.runs = sorted(verdicts, key=lambda v: (v.state != GONE, v.run_id))
        if dry_run:
            return report
        now = dt.datetime.now(dt.UTC)
        for verdict in report.stale:
            client.set_tag(verdict.run_id, TAG_ENDED_BY, ended_by[:5000])
            client.set_tag(verdict.run_id, TAG_ENDED_AT, now.isoformat(timespec="seconds"))
            client.set_tag(verdict.run_id, TAG_ENDED_REASON, verdict.reason[:5000])
            client.set_terminated(verdict.run_id, status="KILLED",
                                  end_time=int(now.timestamp() * 1000))
            verdict.ended = True
    return report
