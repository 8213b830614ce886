"""Quiet by default: a command's output is ours, not TensorFlow's, absl's or MLflow's.

The commands run in subprocesses with the user's environment (none of the knobs that
``forecast.quiet`` sets), as a user would run them.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from forecast.cli import _root_flags_first
from tests.conftest import synthetic_frame

#: a line any of the libraries would print: C++ log lines (I0000 …, E0000 … cuInit …), absl's
#: preamble, TensorFlow's Python warnings, MLflow's and alembic's logs, retracing paragraphs.
NOISE = re.compile(r"^[IWEF]\d{4} |cuda|absl|tensorflow|mlflow|alembic|retracing|oneDNN|XLA",
                   re.IGNORECASE | re.MULTILINE)
KNOBS = ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
         "MLFLOW_CONFIGURE_LOGGING")


def _forecast(args, tmp_path, *, timeout=240):
    """Runs ``forecast ARGS`` in a fresh interpreter with a user's environment."""
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir(exist_ok=True)
    code = "import sys; from forecast.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if NOISE.search(line)]


@pytest.fixture
def csv_with_unused_column(tmp_path):
    """A small hourly CSV: ``y`` is forecast, ``x`` is a covariate, ``note`` is never read."""
    frame = synthetic_frame(n=160)
    frame["note"] = np.where(np.arange(len(frame)) % 2, "a", "b")
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    return path


def test_train_and_predict_print_none_of_the_libraries_lines(tmp_path, csv_with_unused_column):
    tiny = ["--target", "y", "--covariate", "x", "--horizon", "4", "--lookback", "12",
            "--units", "4", "--epochs", "1", "--seed", "1"]
    untracked = _forecast(["train", csv_with_unused_column, *tiny, "--no-track"], tmp_path)
    assert untracked.returncode == 0, untracked.stderr
    assert _noise(untracked.stderr) == [] and "test MASE" in untracked.stdout

    tracked = _forecast(["train", csv_with_unused_column, *tiny], tmp_path)
    assert tracked.returncode == 0, tracked.stderr
    assert _noise(tracked.stderr) == []
    uri = re.search(r"model (models:/\S+)", tracked.stdout).group(1)

    # the CSV has the training file's layout: a column the model does not read
    predicted = _forecast(["predict", "--model", uri, "--csv", csv_with_unused_column],
                          tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert "2024-01-07 16:00:00" in predicted.stdout  # the first of 4 forecast hours
    assert "Found extra inputs" not in predicted.stderr
    assert _noise(predicted.stderr) == []


def test_our_own_warnings_still_show_on_one_line(tmp_path):
    frame = synthetic_frame(n=60)
    path = tmp_path / "unsorted.csv"
    frame.iloc[::-1].to_csv(path, index=False)
    result = _forecast(["inspect", path, "--target", "y"], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "not in time order" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: ")
    assert _noise(result.stderr) == []


def test_root_flags_may_stand_anywhere():
    assert _root_flags_first(["train", "a.csv", "--verbose", "--debug"]) == [
        "--debug", "--verbose", "train", "a.csv"]
    assert _root_flags_first(["inspect", "--", "--verbose"]) == ["inspect", "--", "--verbose"]


def test_verbose_leaves_the_libraries_alone(monkeypatch):
    from forecast import quiet

    for knob in KNOBS:
        monkeypatch.delenv(knob, raising=False)
    quiet.configure(verbose=True)
    assert not any(knob in os.environ for knob in KNOBS)
    quiet.configure(verbose=False)
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("2", "3")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # a user's own setting is kept
    quiet.configure(verbose=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_a_network_is_traced_once_for_every_batch_size():
    import keras

    from forecast.data import WindowSpec, make_dataset
    from forecast.forecaster import network_predictor

    spec = WindowSpec(8, 3, targets=("y",))
    past = keras.Input((8, 1), name="past")
    model = keras.Model(past, keras.layers.Reshape((3, 1))(keras.layers.Dense(3)(
        keras.layers.Flatten()(past))))
    predict = network_predictor(model)
    frame = pd.DataFrame({"y": np.arange(300, dtype=float)},
                         index=pd.date_range("2024-01-01", periods=300, freq="h"))
    windows = predict(make_dataset(frame, spec, batch_size=64))  # 64, 64, 64, 64, 34 windows
    one = predict(np.arange(8, dtype="float32").reshape(1, 8, 1))
    assert windows.shape == (290, 3, 1) and one.shape == (1, 3, 1)
    np.testing.assert_allclose(one, np.asarray(model(np.arange(8.0).reshape(1, 8, 1))),
                               rtol=1e-6)
    np.testing.assert_allclose(windows[5], np.asarray(model(frame.to_numpy()[None, 5:13])[0]),
                               rtol=1e-5)
    assert predict.tracing_count() == 1
