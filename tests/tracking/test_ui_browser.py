"""The MLflow UI as a user sees it: `forecast ui` on a store holding one finished training run,
pages rendered by a real browser (headless Chromium, driven from the command line), and the UI
stopped with SIGTERM.

The store holds one tiny run (4 units, 1 epoch) registered with the ``champion`` alias. The
pages checked are the ones `forecast ui` links to or a user clicks through: the experiment (its
runs, not MLflow's GenAI overview), the run (its name, description verdict and headline metric),
its comparison table (MLflow renders logged tables in the artifact view) and the registered
model with its champion. Chromium writes a screenshot of every page it renders to
``$FORECAST_UI_SCREENSHOTS`` when set, else to the test's tmp_path; a failure names the file.

Without Chromium (``make test`` installs it with apt-get where it can) the browser tests skip
and say how to install it; the shutdown test runs anyway.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import mlflow
import psutil
import pytest

from forecast.tracking.mlflow import ui_url
from tests.conftest import synthetic_frame
from tests.servers import BIN, free_port

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = ("Chromium is not installed: `make chromium` (as root with apt-get: "
               "apt-get install -y chromium) puts it on PATH, and these tests render the MLflow "
               "UI with it.")
UI_START_TIMEOUT = 300  # `mlflow ui` starts four uvicorn workers and a job runner
PAGE_TIMEOUT = 180
MODEL = "ui-demo"
ML_VIEW = "?workflowType=machine_learning"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A fresh SQLite store with one finished tiny run whose model is registered (champion)."""
    from forecast.data import load_csv
    from forecast.tracking.run import train_tracked

    folder = tmp_path_factory.mktemp("ui-store")
    csv = folder / "synthetic.csv"
    synthetic_frame().to_csv(csv, index=False)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        frame = load_csv(csv, targets=["y"])
        result = train_tracked(
            frame, {"horizon": 6, "lookback": 24, "model": {"units": 4},
                    "train": {"epochs": 1, "verbose": 0, "seed": 0}},
            source=str(csv), register=MODEL, promote_folds=1, experiment="forecast")
        run = mlflow.MlflowClient().get_run(result.run_id)
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    return SimpleNamespace(folder=folder, uri=uri, run=run, result=result)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).children(recursive=True)
    return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(scope="module")
def ui(trained):
    """`forecast ui` on the trained store, on a free port of 127.0.0.1, until the module ends
    (the shutdown test stops it itself; whatever is left is killed here)."""
    port = free_port()
    log = trained.folder / "forecast-ui.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained.uri, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTEST_CURRENT_TEST", None)
    with open(log, "w") as out:
        process = subprocess.Popen([str(BIN / "forecast"), "ui", "--port", str(port)],
                                   cwd=trained.folder, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = SimpleNamespace(process=process, port=port, log=log,
                             base=f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + UI_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"forecast ui exited {process.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{server.base}/health", timeout=5) as reply:
                    if reply.status == 200:
                        break
            if time.monotonic() > deadline:
                pytest.fail(f"forecast ui did not answer in {UI_START_TIMEOUT} s:\n"
                            f"{log.read_text()[-3000:]}")
            time.sleep(1)
        yield server
    finally:  # a test that failed before the shutdown test: nothing may keep the port
        for child in _descendants(process.pid):
            with contextlib.suppress(psutil.Error):
                child.kill()
        process.kill()
        process.wait(timeout=30)


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FORECAST_UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _text(dom: str) -> str:
    """The visible text of a DOM dump, on one line."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def _page(url: str, name: str, folder: Path, expected: list[str], absent: tuple = ()) -> str:
    """Renders ``url`` in headless Chromium (DOM and screenshot), once more with a longer budget
    when something expected is missing; asserts every ``expected`` text is shown and no
    ``absent`` one. Returns the visible text."""
    shot = folder / f"{name}.png"
    for budget in (15000, 40000):
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            done = subprocess.run(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                 f"--user-data-dir={profile}", f"--virtual-time-budget={budget}",
                 "--window-size=1400,1000", f"--screenshot={shot}", "--dump-dom", url],
                capture_output=True, text=True, timeout=PAGE_TIMEOUT, check=False)
        text = _text(done.stdout)
        missing = [want for want in expected if want not in text]
        shown = [bad for bad in absent if bad in text]
        if not missing and not shown:
            return text
    raise AssertionError(
        f"{url} does not show {missing}" + (f" but shows {shown}" if shown else "") +
        f"; screenshot {shot}; visible text: {text[:1500]!r}; chromium said "
        f"{done.stderr[-500:]!r}")


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_ui_shows_the_run_its_verdict_table_and_champion(trained, ui, tmp_path):
    folder = _screenshots(tmp_path)
    mlflow.set_tracking_uri(trained.uri)
    run = trained.run
    experiment, run_id, name = run.info.experiment_id, run.info.run_id, run.info.run_name
    metrics = run.data.metrics
    verdict = run.data.tags["mlflow.note.content"].splitlines()[0]
    # the link `forecast ui` prints opens the experiment on its runs (not the GenAI overview)
    # with the headline metrics as columns
    link = ui_url(ui.base, experiment)
    assert link in ui.log.read_text()
    _page(link, "experiment", folder,
          expected=[name, "Runs", "test_mae", "skill_vs_best_baseline",
                    repr(metrics["test_mae"]), run.data.tags["forecast.best_baseline"]],
          absent=("Detect Issues", "Latency"))
    # the run: its name, the verdict as the description, the headline metrics
    _page(f"{ui.base}/#/experiments/{experiment}/runs/{run_id}{ML_VIEW}", "run", folder,
          expected=[name, verdict, "test_mae", repr(metrics["test_mae"]),
                    "skill_vs_best_baseline", "comparison.json"])
    # the comparison table, as MLflow renders a logged table (the artifact view)
    table = mlflow.load_table("comparison.json", run_ids=[run_id])
    model_mae = table[(table.forecaster == "model") & (table.horizon_step == "all")].mae.item()
    _page(f"{ui.base}/#/experiments/{experiment}/runs/{run_id}/artifacts/comparison.json"
          f"{ML_VIEW}", "comparison", folder,
          expected=["forecaster", "horizon_step", "seasonal_naive", "linear",
                    f"model all {model_mae:.4g}"])
    # the registered model and its champion
    _page(f"{ui.base}/#/models/{MODEL}{ML_VIEW}", "model", folder,
          expected=[MODEL, "Version 1", "champion"])


def test_sigterm_stops_the_ui_and_frees_the_port(ui):
    children = _descendants(ui.process.pid)
    assert children, "forecast ui started no MLflow UI process"
    assert _listening(ui.port)
    ui.process.send_signal(signal.SIGTERM)
    assert ui.process.wait(timeout=90) == 0
    survivors = [p for p in children if _alive(p)]
    assert not survivors, [p.cmdline() for p in survivors]
    assert not _listening(ui.port)
    with socket.socket() as sock:  # the port can be bound again, as a restarted server does
        # (SO_REUSEADDR: closed connections may still sit in TIME_WAIT; nothing listens)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", ui.port))
