"""Tests of forecast/scheduling with real time: firing, no overlap, persistence, signals."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sched_helpers import read_runs

from forecast.errors import ConfigError
from forecast.scheduling import PipelineScheduler, cron_trigger, interval_trigger
from forecast.scheduling.jobs import pipeline_command, run_pipeline_job

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
RECORD = "sched_helpers:record_run"


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_a_six_field_cron_fires_every_few_seconds(tmp_path):
    log = tmp_path / "runs.txt"
    scheduler = PipelineScheduler(tmp_path / "schedules.db")
    scheduler.add_job("fast", RECORD, [str(log)], trigger=cron_trigger("*/2 * * * * *"))
    scheduler.start()
    try:
        assert wait_for(lambda: len([r for r in read_runs(log) if r[1]]) >= 2, 15)
    finally:
        scheduler.shutdown()
    starts = [start for start, _ in read_runs(log)]
    assert starts[1] - starts[0] == pytest.approx(2.0, abs=0.9)


def test_a_run_longer_than_the_interval_never_overlaps(tmp_path):
    log = tmp_path / "runs.txt"
    scheduler = PipelineScheduler(tmp_path / "schedules.db")
    scheduler.add_job("slow", RECORD, [str(log), 2.5], trigger=interval_trigger(1))
    scheduler.start()
    try:
        assert wait_for(lambda: len([r for r in read_runs(log) if r[1]]) >= 2, 20)
    finally:
        scheduler.shutdown()
    runs = [r for r in read_runs(log) if r[1] is not None]
    for (_, end), (next_start, _) in zip(runs, runs[1:], strict=False):
        assert next_start >= end - 0.01, runs  # max_instances=1: the next waits for the end
    assert [r for r in read_runs(log) if r[1] is None] == []  # shutdown waited for the last


def test_a_restarted_scheduler_keeps_its_schedule(tmp_path):
    store = tmp_path / "schedules.db"
    first = PipelineScheduler(store)
    first.add_pipeline(PIPELINES / "nightly.yaml")
    (job,) = first.jobs()
    assert job.id == "nightly" and job.func == "forecast.scheduling.jobs:run_pipeline_job"
    assert job.args == (str((PIPELINES / "nightly.yaml").resolve()),)
    assert (job.next_run_time.hour, job.next_run_time.minute) == (2, 0)
    first.shutdown(wait=False)  # as if the process were stopped

    second = PipelineScheduler(store)
    (again,) = second.jobs()
    assert (again.id, again.next_run_time, again.args) == (job.id, job.next_run_time, job.args)
    second.add_pipeline(PIPELINES / "nightly.yaml")  # re-adding replaces, never duplicates
    assert [j.id for j in second.jobs()] == ["nightly"]
    second.remove("nightly")
    assert second.jobs() == []
    with pytest.raises(ConfigError, match="no schedule named 'nightly'"):
        second.remove("nightly")
    second.shutdown(wait=False)


def test_a_pipeline_without_a_schedule_needs_every(tmp_path):
    scheduler = PipelineScheduler(tmp_path / "schedules.db")
    with pytest.raises(ConfigError, match="no schedule section.*--every"):
        scheduler.add_pipeline(PIPELINES / "quickstart.yaml")
    job = scheduler.add_pipeline(PIPELINES / "quickstart.yaml", every=30)
    assert job.id == "quickstart" and "interval" in str(job.trigger)
    scheduler.shutdown(wait=False)


def test_a_failing_pipeline_run_is_logged_and_returns_its_exit_code(tmp_path, caplog):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndata: {path: missing.csv}\nwindow: {horizn: 3}\n")
    with caplog.at_level("INFO", logger="forecast.scheduling"):
        code = run_pipeline_job(str(bad))
    assert code == 2
    assert "FAILED with exit code 2" in caplog.text and "carries on" in caplog.text
    assert pipeline_command("x.yaml")[-3:] == ["pipeline", "run", "x.yaml"]


def test_sigterm_stops_the_cli_scheduler_and_the_schedule_survives(tmp_path):
    store = tmp_path / "schedules.db"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from forecast.cli import main; main()", "schedule",
         str(PIPELINES / "nightly.yaml"), "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines = []
    try:
        for line in process.stdout:  # wait until it runs
            lines.append(line)
            if "Ctrl-C stops it" in line:
                break
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert "scheduler stopped" in output
    scheduler = PipelineScheduler(store)
    assert [job.id for job in scheduler.jobs()] == ["nightly"]
    scheduler.shutdown(wait=False)


def test_cli_schedule_list_shows_the_next_run_time(tmp_path, capsys):
    from forecast.cli import main

    store = tmp_path / "schedules.db"
    with pytest.raises(SystemExit) as info:
        main(["schedule", str(PIPELINES / "nightly.yaml"), "--store", str(store), "--list"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "nightly: next run" in out and "02:00:00+00:00" in out
    with pytest.raises(SystemExit) as info:
        main(["schedule", "--store", str(store), "--remove", "nightly"])
    assert info.value.code == 0
    with pytest.raises(SystemExit) as info:
        main(["schedule", "--store", str(store)])
    assert info.value.code == 2 and "nothing to schedule" in capsys.readouterr().err
