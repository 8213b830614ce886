"""What a scheduled job runs: one pipeline, in a subprocess of its own.

The job is stored in the scheduler's SQLite job store by text reference
(``"forecast.scheduling.jobs:run_pipeline_job"``) with the plain argument ``[path]``, so it
survives restarts. Each run is a fresh Python process (``forecast pipeline run PATH``): the
memory TensorFlow takes is returned when it ends, and a crash cannot take the scheduler down. A
failing run is logged here (and marked FAILED in MLflow by the run itself); the scheduler carries
on.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger("forecast.scheduling")

#: the text reference of the pipeline job, as stored in the job store.
PIPELINE_JOB = "forecast.scheduling.jobs:run_pipeline_job"

_running: set[subprocess.Popen] = set()
_lock = threading.Lock()


def pipeline_command(path: str, *extra: str) -> list[str]:
    """The command line that runs one pipeline with this interpreter."""
    return [sys.executable, "-c", "from forecast.cli import main; main()", "pipeline", "run",
            str(path), *extra]


def run_pipeline_job(path: str) -> int:
    """Runs the pipeline file ``path`` in a subprocess and logs how it ended.

    Args:
        path: the pipeline YAML (absolute, as the scheduler stores it).

    Returns:
        The subprocess's exit code (0: finished or skipped; 2: a ForecastError; other: a crash).
        Never raises: a failed run must not stop the scheduler.
    """
    started = time.monotonic()
    logger.info("pipeline %s: starting", path)
    try:
        process = subprocess.Popen(pipeline_command(path))
    except OSError as exc:
        logger.error("pipeline %s: cannot start a subprocess: %s", path, exc)
        return -1
    with _lock:
        _running.add(process)
    try:
        code = process.wait()
    finally:
        with _lock:
            _running.discard(process)
    seconds = time.monotonic() - started
    if code == 0:
        logger.info("pipeline %s: done in %.1f s", path, seconds)
    else:
        logger.error("pipeline %s: FAILED with exit code %s after %.1f s (the MLflow run, if one "
                     "started, is marked FAILED); the scheduler carries on", path, code, seconds)
    return code


def stop_running_jobs(timeout: float = 30.0) -> None:
    """Interrupts running pipeline subprocesses (SIGINT: their MLflow runs end KILLED).

    Processes still alive after ``timeout`` seconds are killed.
    """
    with _lock:
        processes = list(_running)
    for process in processes:
        if process.poll() is None:
            logger.warning("interrupting running pipeline (pid %s)", process.pid)
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
