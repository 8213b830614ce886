"""Airflow 3 DAGs from pipeline files: one DAG per YAML, one TaskFlow task per pipeline step.

A file in Airflow's dags folder (``pipelines/airflow_dags.py``) does::

    from forecast.scheduling.airflow import build_dags
    globals().update(build_dags("/path/to/pipelines"))

Each DAG (``dag_id`` = the pipeline's ``name``) runs the steps of ``forecast.pipelines.steps``:
``validate → ingest → train → backtest → register → forecast`` (``backtest`` only when
``evaluate.backtest_folds`` is set, ``register`` only with a ``register`` section). The steps
hand their state (a ``forecast.pipelines.state.StepState``: the file, the data's SHA-256, the
MLflow run id, the model URI, the registered version, ...) to the next task through XCom as its
``to_dict()`` (strict JSON: ``jsonable``), rebuilt there with ``StepState.from_dict``; and all
of them add to the one MLflow run ``train`` opens. When the data and the settings are those of
the last finished run, ``validate`` ends *skipped* and so does everything after it. The YAML's
``schedule`` is the DAG's: ``cron`` (5 fields) in ``timezone`` → ``CronTriggerTimetable``;
``interval_seconds`` → ``DeltaTriggerTimetable``; no ``schedule``: triggered by hand only.
Trigger a DAG with the params ``{"force": true}`` to train on unchanged data, ``{"overrides":
["window.horizon=48"]}`` to override settings (``--set``); overrides do not add or remove the
backtest/register tasks.

Where the steps run: every task is ``@task.external_python`` — a fresh process of the pipeline's
Python (``FORECAST_PYTHON``; default: the project's ``.venv/bin/python`` when this is a source
checkout, else the Python running Airflow). Airflow and the project keep separate environments:
Airflow 3 pins fastapi (and more) below what MLflow's server wants, TensorFlow pins its own, and
the two move independently; the DAG processor, which re-reads the DAG file every 30 s, never
imports TensorFlow or MLflow; and the memory a training step takes is returned when its process
ends. For the same reason this module only *reads the header* of each file when the DAGs are
built (name, description, schedule, whether backtest/register are set: ``read_header``); the
``validate`` task checks the whole file and fails with the ``ConfigError`` naming line and key.
Importing this module needs neither Airflow nor TensorFlow; ``build_dags`` needs Airflow.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from forecast.errors import ConfigError
from forecast.paths import PROJECT_ROOT

#: the exit code with which the ``validate`` task says "nothing new: skip this run".
SKIP_EXIT_CODE = 99

#: the pipeline steps in order (``forecast.pipelines.steps.STEPS``; kept here so that building
#: the DAGs does not import the steps, which import TensorFlow).
STEPS = ("validate", "ingest", "train", "backtest", "register", "forecast")

#: the first day a schedule can start from (``catchup=False``: no runs before now).
START_DATE = (2024, 1, 1)


@dataclass(frozen=True)
class PipelineHeader:
    """What building a DAG needs from a pipeline file (the rest is checked when it runs).

    Attributes:
        path: the pipeline file (absolute).
        name: the pipeline's name, the DAG's id.
        description: the file's ``description``.
        cron, timezone, interval_seconds: the ``schedule`` section (None: no schedule).
        backtest: ``evaluate.backtest_folds`` is set.
        register: the file has a ``register`` section.
    """

    path: Path
    name: str
    description: str | None = None
    cron: str | None = None
    timezone: str = "UTC"
    interval_seconds: float | None = None
    backtest: bool = False
    register: bool = False

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps this pipeline runs, in order."""
        return tuple(s for s in STEPS if (s != "backtest" or self.backtest)
                     and (s != "register" or self.register))


def _section(data: dict, key: str, path: Path) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key}: must be a mapping of settings. Received: {value!r}.")
    return value


def _schedule(schedule: dict, path: Path) -> tuple[str | None, str, float | None]:
    """(cron, timezone, interval_seconds) of a ``schedule`` section, checked as Airflow reads it."""
    from forecast.scheduling.triggers import check_timezone

    cron, interval = schedule.get("cron"), schedule.get("interval_seconds")
    timezone = str(schedule.get("timezone", "UTC"))
    if (cron is None) == (interval is None):
        raise ConfigError(f"{path}: schedule: give exactly one of cron (e.g. \"0 2 * * *\") and "
                          "interval_seconds.")
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise ConfigError(f"{path}: schedule.timezone: {exc}") from None
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ConfigError(f"{path}: schedule.interval_seconds: must be a positive number of "
                              f"seconds. Received: {interval!r}.")
        return None, timezone, float(interval)
    fields = str(cron).split()
    if len(fields) != 5:
        raise ConfigError(
            f"{path}: schedule.cron: Airflow takes a 5-field cron (minute hour day month "
            f"weekday, e.g. \"0 2 * * *\"); received {len(fields)} fields in {cron!r}. Sub-minute "
            "schedules need the embedded scheduler (forecast schedule)."
        )
    return " ".join(fields), timezone, None


def read_header(path) -> PipelineHeader:
    """Reads what a DAG needs from a pipeline file, without validating the whole of it.

    Args:
        path: the pipeline YAML file.

    Returns:
        A ``PipelineHeader``.

    Raises:
        ConfigError: the file cannot be read, is not YAML (the message gives the line), is not a
            mapping, has no ``name``, or its ``schedule`` cannot be an Airflow schedule.

    Example:
        >>> read_header("pipelines/nightly.yaml").cron
        '0 2 * * *'
    """
    from forecast.yaml_input import read_yaml

    path = Path(path).resolve()
    data = read_yaml(path)  # size, nesting and aliases bounded before it is loaded
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a pipeline file is a mapping of sections (name, data, "
                          f"window, ...); this one holds a {type(data).__name__}.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: name: missing (required); it names the pipeline and its "
                          f"Airflow DAG. Received: {name!r}.")
    description = data.get("description")
    schedule = _section(data, "schedule", path)
    cron, timezone, interval = _schedule(schedule, path) if schedule else (None, "UTC", None)
    return PipelineHeader(
        path=path, name=name, description=None if description is None else str(description),
        cron=cron, timezone=timezone, interval_seconds=interval,
        backtest=bool(_section(data, "evaluate", path).get("backtest_folds")),
        register=data.get("register") is not None,
    )


def pipeline_python(python=None) -> str:
    """The Python that runs the pipeline steps (it must import ``forecast`` and TensorFlow).

    Args:
        python: a path; default ``FORECAST_PYTHON``, else ``<project>/.venv/bin/python`` when
            this module lies in a source checkout that has one, else this Python.

    Returns:
        The absolute path, as given (a virtual environment's ``python`` link is kept).

    Raises:
        ConfigError: the path is relative or no file is there.
    """
    source = "python" if python else "FORECAST_PYTHON"
    python = python or os.environ.get("FORECAST_PYTHON")
    if not python:
        venv = PROJECT_ROOT / ".venv" / "bin" / "python"
        python, source = (str(venv), "the project's .venv") if venv.is_file() else (
            sys.executable, "sys.executable")
    path = Path(python).expanduser()
    if not path.is_absolute() or not path.is_file():
        raise ConfigError(f"{source}: {path} is not an absolute path to a Python executable; "
                          "set FORECAST_PYTHON to the python of the environment where forecast "
                          "is installed (e.g. /srv/forecast/.venv/bin/python).")
    return str(path)


def jsonable(value):
    """``value`` with NaN and infinities as None (XCom stores strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def run_pipeline_step(step, state=None, path=None, force="false", overrides="[]",
                      timeout=None):
    """Runs one pipeline step in the pipeline's Python; the body of every task.

    Airflow copies this function's source into a script and runs it with ``FORECAST_PYTHON``,
    so it imports everything it uses. ``validate`` takes the file, ``force`` and ``overrides``
    (JSON text rendered from the DAG run's params) and exits with ``SKIP_EXIT_CODE`` when the
    data is unchanged; the other steps take the state the task before returned (the dict of
    ``StepState.to_dict()``, read back with ``StepState.from_dict``).

    ``timeout`` (seconds: the task's ``execution_timeout``) is enforced here, in the step's own
    process: Airflow's timer stops only the task process, which then waits for this one. The
    step raises ``StepTimeout`` and its MLflow run is marked FAILED. It is a BaseException, as
    Airflow's own timeout is, so that no ``except Exception`` catches it (urllib3 would retry a
    ``TimeoutError`` as a socket timeout, e.g. against a tracking server that never answers).
    """
    import json
    import signal
    import sys

    class StepTimeout(BaseException):
        pass

    def echo(line):
        print(line, flush=True)

    def expired(signum, frame):
        raise StepTimeout(f"the {step} step ran longer than its execution_timeout of "
                          f"{timeout:g} s")

    if timeout:  # armed first: importing TensorFlow counts too
        signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, float(timeout))
    try:
        from forecast.pipelines import steps
        from forecast.pipelines.state import StepState
        from forecast.scheduling.airflow import SKIP_EXIT_CODE, jsonable

        if step == "validate":
            state = steps.validate(path, overrides=json.loads(overrides),
                                   force=json.loads(force), echo=echo)
            if state.skipped:
                sys.exit(SKIP_EXIT_CODE)
        else:
            state = steps.run_step(step, StepState.from_dict(state), echo=echo)
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return jsonable(state.to_dict())


def _timetable(header: PipelineHeader):
    from airflow.sdk import CronTriggerTimetable, DeltaTriggerTimetable

    if header.cron is not None:
        timetable = CronTriggerTimetable(header.cron, timezone=header.timezone)
        try:
            timetable.validate()
        except Exception as exc:  # AirflowTimetableInvalid (croniter's message)
            raise ConfigError(f"{header.path}: schedule.cron: {header.cron!r} is not a valid "
                              f"cron: {exc}") from None
        return timetable
    if header.interval_seconds is not None:
        return DeltaTriggerTimetable(timedelta(seconds=header.interval_seconds))
    return None


def build_dag(header: PipelineHeader, *, python: str, retries: int = 1,
              retry_delay: timedelta = timedelta(minutes=5),
              execution_timeout: timedelta | None = timedelta(hours=2),
              dagrun_timeout: timedelta | None = timedelta(hours=6)):
    """The DAG of one pipeline (see the module docstring).

    Args:
        header: what ``read_header`` read from the file.
        python: the Python that runs the steps (``pipeline_python``).
        retries, retry_delay: per task. A retried ``train`` opens a new MLflow run; the later
            steps resume the run (a retried ``register`` reuses its version).
        execution_timeout: the longest one task may run.
        dagrun_timeout: the longest a whole run may take.

    Returns:
        An ``airflow.sdk.DAG``.

    Raises:
        ConfigError: Airflow refuses the name as a DAG id or the cron; the message names the file.
    """
    import pendulum
    from airflow.sdk import DAG, Param, task

    timeout = execution_timeout.total_seconds() if execution_timeout else None
    step = task.external_python(
        python=python, expect_airflow=False, retries=retries, retry_delay=retry_delay,
        execution_timeout=execution_timeout,
        env_vars={"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")},
    )(run_pipeline_step)
    try:
        dag = DAG(
            dag_id=header.name,
            description=header.description or f"forecast pipeline {header.path.name}",
            schedule=_timetable(header),
            start_date=pendulum.datetime(*START_DATE, tz=header.timezone),
            catchup=False,
            max_active_runs=1,  # runs of one pipeline never overlap (they share its watermark)
            dagrun_timeout=dagrun_timeout,
            tags=["forecast"],
            doc_md=(f"forecast pipeline `{header.path}`: steps {' → '.join(header.steps)}, run "
                    f"by `{python}`. Trigger with `{{\"force\": true}}` to train on unchanged "
                    "data."),
            params={
                "force": Param(False, type="boolean",
                               description="Train even when the data has not changed."),
                "overrides": Param([], type="array", items={"type": "string"},
                                   description="Settings as dotted.key=value (like --set)."),
            },
        )
    except ConfigError:
        raise
    except Exception as exc:  # e.g. a name Airflow does not take as a DAG id
        raise ConfigError(f"{header.path}: name: {header.name!r} cannot be an Airflow DAG id: "
                          f"{exc}") from None
    with dag:
        state = step.override(task_id="validate", skip_on_exit_code=SKIP_EXIT_CODE)(
            "validate", path=str(header.path), force="{{ params.force | tojson }}",
            overrides="{{ params.overrides | tojson }}", timeout=timeout)
        for name in header.steps[1:]:
            state = step.override(task_id=name)(name, state, timeout=timeout)
    return dag


def build_dags(folder=None, *, python=None, retries: int = 1,
               retry_delay: timedelta = timedelta(minutes=5),
               execution_timeout: timedelta | None = timedelta(hours=2),
               dagrun_timeout: timedelta | None = timedelta(hours=6)) -> dict:
    """One Airflow DAG per pipeline file (``*.yaml``, ``*.yml``) in ``folder``.

    Args:
        folder: the folder of pipeline files; default ``FORECAST_PIPELINES_DIR``.
        python: the Python that runs the steps (default: see ``pipeline_python``).
        retries, retry_delay, execution_timeout, dagrun_timeout: see ``build_dag``.

    Returns:
        ``{dag_id: DAG}`` — ``globals().update(...)`` it in a DAG file.

    Raises:
        ConfigError: no such folder, no pipeline files in it, bad files (one message naming
            every bad file and what is wrong), two files with the same ``name``, or no Python
            for the steps. Airflow shows it as the DAG file's import error.

    Example:
        >>> dags = build_dags("pipelines")
        >>> dags["nightly"].timetable.expression
        '0 2 * * *'
    """
    folder = folder or os.environ.get("FORECAST_PIPELINES_DIR")
    if not folder:
        raise ConfigError("no pipeline folder: pass build_dags(folder) or set "
                          "FORECAST_PIPELINES_DIR.")
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"FORECAST_PIPELINES_DIR: {folder} is not a folder of pipeline files.")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ConfigError(f"{folder}: no pipeline files (*.yaml, *.yml) in this folder.")
    python = pipeline_python(python)
    headers, problems, seen = [], [], {}
    for path in files:
        try:
            header = read_header(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if header.name in seen:
            problems.append(f"{path}: name: {header.name!r} is also the name of "
                            f"{seen[header.name]}; each pipeline needs its own name (its DAG id).")
            continue
        seen[header.name] = path
        headers.append(header)
    dags = {}
    for header in headers:
        try:
            dags[header.name] = build_dag(
                header, python=python, retries=retries, retry_delay=retry_delay,
                execution_timeout=execution_timeout, dagrun_timeout=dagrun_timeout)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"{len(problems)} of {len(files)} pipeline file(s) in {folder} cannot "
                          "become Airflow DAGs: " + " | ".join(problems))
    return dags
