"""Killed runs: `kill -9` of a training leaves its MLflow run RUNNING; it is ended as KILLED by
`forecast runs clean` or the next run, and the rerun resumes from the checkpoint folder, linked to
the killed run.

The end-to-end tests start a real `forecast train` / `forecast pipeline run` process on a small
synthetic CSV (4 units, many epochs), wait until its checkpoint folder holds a finished epoch,
send SIGKILL, and rerun in this process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from forecast.cli import main
from forecast.errors import ConfigError
from forecast.tracking import resume as resumes
from forecast.tracking import stale
from forecast.tracking.mlflow import tracked_run
from tests.conftest import synthetic_frame
from tests.pipelines.conftest import tiny_pipeline, write_pipeline
from tests.servers import BIN

EPOCH_TIMEOUT = 240  # TensorFlow's start and a first epoch, on 2 busy cores
MODEL = ("--time-col", "date", "--target", "y", "--horizon", "6", "--lookback", "24",
         "--units", "4", "--patience", "1000", "--seed", "1")


def cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def _env() -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env  # MLFLOW_TRACKING_URI: this test's store (tests/conftest.py)


def start(args, cwd: Path) -> subprocess.Popen:
    """`forecast ARGS` as a process of its own session, output to files in ``cwd``."""
    out = open(cwd / "child.out", "w")  # noqa: SIM115 - closed with the process
    err = open(cwd / "child.err", "w")  # noqa: SIM115
    process = subprocess.Popen([str(BIN / "forecast"), *map(str, args)], cwd=cwd, env=_env(),
                               stdout=out, stderr=err, start_new_session=True)
    process.files = (out, err)
    return process


def kill_after_first_epoch(process: subprocess.Popen, checkpoint_dir: Path) -> int:
    """Waits (polling) for a finished epoch in the folder's backup, sends SIGKILL, reaps the
    process; returns the epochs its backup holds."""
    deadline = time.monotonic() + EPOCH_TIMEOUT
    try:
        while resumes.backup_epoch(checkpoint_dir) is None:
            if process.poll() is not None:
                pytest.fail(f"the training process ended ({process.returncode}) before its first "
                            f"epoch:\n{(checkpoint_dir.parent / 'child.err').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no finished epoch in {checkpoint_dir} after {EPOCH_TIMEOUT} s")
            time.sleep(0.05)
        assert process.poll() is None, "training ended before the kill: give it more epochs"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None and time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        for handle in process.files:
            handle.close()
    assert process.returncode == -signal.SIGKILL
    epoch = resumes.backup_epoch(checkpoint_dir)
    assert epoch is not None and epoch >= 1
    return epoch


def epochs_logged(run_id: str) -> list[int]:
    return [m.step for m in MlflowClient().get_metric_history(run_id, "loss")]


# -- end to end: a real kill -9 -----------------------------------------------------------------


def test_killed_train_is_cleaned_then_resumed_from_its_last_epoch(tmp_path, capsys):
    csv = tmp_path / "series.csv"
    synthetic_frame(480).to_csv(csv, index=False)
    checkpoint_dir = tmp_path / "ck"
    process = start(["train", csv, *MODEL, "--epochs", "500", "--checkpoint-dir",
                     checkpoint_dir, "--json"], tmp_path)
    epochs = kill_after_first_epoch(process, checkpoint_dir)
    killed = resumes.read_record(checkpoint_dir)["run_id"]
    client = MlflowClient()
    run = client.get_run(killed)
    assert run.info.status == "RUNNING"  # nobody ended it
    assert run.data.tags[stale.TAG_PID] == str(process.pid)
    assert run.data.tags[stale.TAG_HOST] == socket.gethostname()
    assert float(run.data.tags[stale.TAG_PROCESS_START]) > 0

    code, out, _ = cli(capsys, "runs", "clean", "--dry-run")
    assert code == 0 and f"would end run {killed}" in out
    assert f"owner process {process.pid} on {socket.gethostname()} is gone" in out
    assert client.get_run(killed).info.status == "RUNNING"  # a dry run changes nothing

    code, out, _ = cli(capsys, "runs", "clean")
    assert code == 0 and f"ended run {killed}" in out and "ended 1 stale run(s)" in out
    run = client.get_run(killed)
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert run.data.tags[stale.TAG_ENDED_BY] == "forecast runs clean"
    assert run.data.tags[stale.TAG_ENDED_REASON] == (
        f"owner process {process.pid} on {socket.gethostname()} is gone")
    assert run.data.tags[stale.TAG_ENDED_AT].startswith(str(time.gmtime().tm_year))
    code, out, _ = cli(capsys, "runs", "clean")
    assert code == 0 and "ended 0 stale run(s)" in out  # nothing left to end

    # the rerun continues after the last finished epoch: 2 more epochs, none run twice
    code, out, err = cli(capsys, "train", csv, *MODEL, "--epochs", epochs + 2,
                         "--checkpoint-dir", checkpoint_dir, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["resumed"] == {
        "from_epoch": epochs, "run_id": killed, "checkpoint_dir": str(checkpoint_dir),
        "message": f"resumed from epoch {epochs} of run {killed}"}
    assert result["training"]["epochs_run"] == 2
    new = result["mlflow"]["run_id"]
    run = client.get_run(new)
    assert run.info.status == "FINISHED"
    assert run.data.tags[resumes.TAG_RESUMES] == killed
    assert run.data.tags[resumes.TAG_RESUMED_FROM] == str(epochs)
    assert run.data.tags[stale.TAG_PID] == str(os.getpid())
    assert epochs_logged(new) == [epochs + 1, epochs + 2]
    assert client.get_run(killed).data.tags[resumes.TAG_RESUMED_BY] == new
    record = resumes.read_record(checkpoint_dir)
    assert record["run_id"] == new and record["state"] == "finished"
    assert not (checkpoint_dir / resumes.BACKUP_DIR).exists()  # Keras drops it when done
    assert resumes.check(checkpoint_dir, {}) is None  # so the next training starts afresh


def test_killed_pipeline_is_ended_by_its_rerun_which_resumes_and_links_to_it(tmp_path, capsys):
    text = tiny_pipeline("tiny").replace(
        "train: {epochs: 1, batch_size: 64, verbose: 0, seed: 1}",
        "train: {epochs: 500, patience: null, batch_size: 64, verbose: 0, seed: 1, "
        "checkpoint_dir: ck}")
    assert "checkpoint_dir: ck" in text
    path = write_pipeline(tmp_path, text)
    checkpoint_dir = tmp_path / "ck"
    process = start(["pipeline", "run", path, "--json"], tmp_path)
    epochs = kill_after_first_epoch(process, checkpoint_dir)
    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name("forecast").experiment_id
    (run,) = client.search_runs([experiment])
    killed = run.info.run_id
    assert run.info.status == "RUNNING" and run.data.tags["pipeline.name"] == "tiny"
    assert run.data.tags[stale.TAG_PID] == str(process.pid)

    code, out, err = cli(capsys, "pipeline", "run", path, "--json",
                         "--set", f"train.epochs={epochs + 2}")
    assert code == 0, err
    result = json.loads(out)
    assert not result["skipped"] and result["forecast_rows"] == 6
    run = client.get_run(killed)
    assert run.info.status == "KILLED"
    assert run.data.tags[stale.TAG_ENDED_BY] == "the next run of pipeline tiny"
    assert run.data.tags[stale.TAG_ENDED_REASON] == (
        f"owner process {process.pid} on {socket.gethostname()} is gone")
    name = run.info.run_name  # pipeline-tiny-...: named for what ran
    assert name.startswith("pipeline-tiny-")
    assert f"[validate] ended run {killed} ({name}) of experiment {experiment} as KILLED" in err
    assert f"[train] resumed from epoch {epochs} of run {killed}" in err

    new = client.get_run(result["run_id"])
    assert new.info.status == "FINISHED"
    assert new.data.tags[resumes.TAG_RESUMES] == killed
    assert new.data.tags[resumes.TAG_RESUMED_FROM] == str(epochs)
    assert epochs_logged(new.info.run_id) == [epochs + 1, epochs + 2]
    assert client.get_run(killed).data.tags[resumes.TAG_RESUMED_BY] == result["run_id"]


# -- which runs are stale -----------------------------------------------------------------------


def _reaped_pid() -> int:
    """The id of a process that has ended and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_runs_clean_ends_only_runs_whose_process_on_this_host_is_gone(capsys):
    mlflow.set_experiment("mixed")
    experiment = mlflow.get_experiment_by_name("mixed").experiment_id
    client = MlflowClient()
    me = stale.owner_tags()
    started = float(me[stale.TAG_PROCESS_START])

    def run(name, tags):
        return client.create_run(experiment, run_name=name, tags=tags).info.run_id

    reused = run("reused", {**me, stale.TAG_PROCESS_START: f"{started - 1000:.2f}"})
    child = run("child", {"mlflow.parentRunId": reused})  # no owner tags: its parent's
    grandchild = run("grandchild", {"mlflow.parentRunId": child})
    dead = run("dead", {stale.TAG_PID: str(_reaped_pid()), stale.TAG_HOST: me[stale.TAG_HOST]})
    alive = run("alive", me)
    elsewhere = run("elsewhere", {**me, stale.TAG_HOST: "another-host"})
    foreign = run("foreign", {})
    finished = run("finished", {stale.TAG_PID: str(_reaped_pid()),
                                stale.TAG_HOST: me[stale.TAG_HOST]})
    client.set_terminated(finished, "FINISHED")
    mlflow.set_experiment("other")
    other = MlflowClient().create_run(mlflow.get_experiment_by_name("other").experiment_id,
                                      tags={**me, stale.TAG_PROCESS_START: "1.00"}).info.run_id

    code, out, _ = cli(capsys, "runs", "clean", "--experiment", "mixed", "--dry-run", "--json")
    assert code == 0
    report = json.loads(out)
    verdicts = {r["run_id"]: r["state"] for r in report["runs"]}
    assert verdicts == {reused: "gone", child: "gone", grandchild: "gone", dead: "gone",
                        alive: "alive", elsewhere: "other host", foreign: "unowned"}
    assert all(client.get_run(r).info.status == "RUNNING" for r in verdicts)

    code, out, _ = cli(capsys, "runs", "clean", "--experiment", "mixed")
    assert code == 0
    for run_id in (reused, child, grandchild, dead):
        assert client.get_run(run_id).info.status == "KILLED"
    for run_id in (alive, elsewhere, foreign, other):
        assert client.get_run(run_id).info.status == "RUNNING"
    assert client.get_run(finished).info.status == "FINISHED"
    tags = client.get_run(grandchild).data.tags
    assert tags[stale.TAG_ENDED_REASON] == (
        f"owner process {os.getpid()} on {me[stale.TAG_HOST]} (of its parent run {child}) is "
        "gone")
    assert f"left run {elsewhere} (elsewhere)" in out and "another host" in out
    assert "run `forecast runs clean` there" in out
    assert f"left run {alive} (alive)" in out and "is still running" in out
    assert f"left run {foreign} (foreign)" in out and "no forecast.pid tag" in out
    assert "ended 4 stale run(s) as KILLED; left 3 RUNNING run(s) alone" in out

    # without --experiment: every experiment
    code, out, _ = cli(capsys, "runs", "clean")
    assert code == 0 and client.get_run(other).info.status == "KILLED"


def test_runs_clean_names_an_unknown_experiment(capsys):
    mlflow.set_experiment("known")
    code, out, err = cli(capsys, "runs", "clean", "--experiment", "unknwon")
    assert code == 2 and out == ""
    assert "no experiment named 'unknwon'" in err and "known" in err
    assert "Traceback" not in err


def test_process_state_sees_a_zombie_and_a_reused_pid_as_gone(monkeypatch):
    me = os.getpid()
    started = stale.process_start_time(me)
    assert stale.process_state(me, started) == stale.ALIVE
    assert stale.process_state(me, None) == stale.ALIVE
    assert stale.process_state(me, started - 100) == stale.GONE  # the id was reused
    assert stale.process_state(_reaped_pid()) == stale.GONE
    assert stale.process_state(0) == stale.GONE
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while stale._proc_stat(zombie.pid) and stale._proc_stat(zombie.pid)[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert stale.process_state(zombie.pid) == stale.GONE  # ended, not reaped yet
        # the same answers from /proc without psutil, and the same start time
        monkeypatch.setitem(sys.modules, "psutil", None)
        assert stale.process_state(zombie.pid) == stale.GONE
        assert abs(stale.process_start_time(me) - started) < stale.START_TOLERANCE
        assert stale.process_state(me, started) == stale.ALIVE
        assert stale.process_state(me, started - 100) == stale.GONE
    finally:
        zombie.wait()


def test_a_reopened_run_is_owned_by_the_process_that_reopened_it():
    experiment = mlflow.set_experiment("reopen").experiment_id
    client = MlflowClient()
    run_id = client.create_run(experiment, tags={stale.TAG_PID: str(_reaped_pid()),
                                                 stale.TAG_HOST: "old"}).info.run_id
    client.set_terminated(run_id, "FINISHED")
    with tracked_run(run_id=run_id):
        tags = client.get_run(run_id).data.tags
        assert tags[stale.TAG_PID] == str(os.getpid())
        assert tags[stale.TAG_HOST] == socket.gethostname()
        # a cleaner running meanwhile leaves it alone
        report = stale.end_stale_runs([experiment], ended_by="test")
        assert [r.state for r in report.runs] == [stale.ALIVE]
    assert client.get_run(run_id).info.status == "FINISHED"


# -- a checkpoint folder that cannot be resumed -------------------------------------------------


def _fake_backup(folder: Path, epoch: int, **record) -> None:
    (folder / resumes.BACKUP_DIR).mkdir(parents=True)
    (folder / resumes.BACKUP_DIR / "training_metadata.json").write_text(
        json.dumps({"epoch": epoch, "batch": 0}))
    (folder / resumes.RUN_FILE).write_text(json.dumps(record))


def test_a_backup_of_other_settings_is_refused_before_any_run(tmp_path, capsys):
    csv = tmp_path / "series.csv"
    synthetic_frame(240).to_csv(csv, index=False)
    folder = tmp_path / "ck"
    resumes.record(folder, "r0", "0", {"horizon": 6, "model": {"units": 8}})
    resumes.mark(folder, "failed")
    (folder / resumes.BACKUP_DIR).mkdir()
    (folder / resumes.BACKUP_DIR / "training_metadata.json").write_text('{"epoch": 3}')
    code, out, err = cli(capsys, "train", csv, *MODEL, "--epochs", 1, "--checkpoint-dir", folder)
    assert code == 2 and out == ""
    assert f"checkpoint folder {folder} holds the backup of epoch 3 of run r0" in err
    assert "other settings (model.units: 8 then, 4 now)" in err
    assert f"delete {folder / 'backup'}" in err
    assert "Traceback" not in err
    experiment = mlflow.get_experiment_by_name("forecast")
    assert experiment is None or not MlflowClient().search_runs([experiment.experiment_id])


def test_a_checkpoint_folder_in_use_or_a_file_is_refused(tmp_path):
    settings = {"horizon": 6, "model": {"units": 4}}
    busy = tmp_path / "busy"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _fake_backup(busy, 2, run_id="r1", pid=sleeper.pid, host=socket.gethostname(),
                     process_start=stale.process_start_time(sleeper.pid), state="training",
                     settings=resumes._flat(settings))
        with pytest.raises(ConfigError, match=rf"checkpoint folder {busy} is in use: process "
                                              rf"{sleeper.pid} on .* \(run r1\)"):
            resumes.check(busy, settings)
    finally:
        sleeper.kill()
        sleeper.wait()
    # its process gone: the backup is resumed; settings that differ are named
    assert resumes.check(busy, settings).message == "resumed from epoch 2 of run r1"
    with pytest.raises(ConfigError, match=r"model\.units: 4 then, 16 now"):
        resumes.check(busy, {"horizon": 6, "model": {"units": 16}})
    # a backup without forecast-run.json (e.g. --no-track): resumed, the run unknown
    (busy / resumes.RUN_FILE).unlink()
    assert resumes.check(busy, settings).to_dict()["run_id"] is None
    assert resumes.check(tmp_path / "new", settings) is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file; give a folder"):
        resumes.check(tmp_path / "file", settings)
