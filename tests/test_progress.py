"""Progress on stderr: the plain lines, the rich display, the CLI's choice, and the hooks in
training (epochs), backtests (folds), promotion (candidates) and the CLI."""

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from forecast.progress import (
    SILENT,
    PlainProgress,
    RichProgress,
    SilentProgress,
    current,
    for_cli,
    format_duration,
    using,
)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def tick(self, seconds):
        self.now += seconds


def _plain():
    clock, stream = FakeClock(), io.StringIO()
    return PlainProgress(stream, clock=clock), clock, stream


# -- the displays ------------------------------------------------------------------------------


def test_plain_lines_for_a_sequence_of_events():
    progress, clock, stream = _plain()
    progress.note("promotion of demo: backtesting version 3 (challenger)")
    with progress.task("candidate", total=2) as candidate:
        candidate.relabel("promotion of demo, challenger version 3")
        with progress.task("fold", total=2, label="backtest model (lstm)") as folds:
            with progress.task("epoch", total=3) as epochs:
                clock.tick(4)
                epochs.advance(loss=0.41234, val_loss=0.39)
                clock.tick(4)
                epochs.advance(loss=0.3, val_loss=float("nan"))
                clock.tick(4)
                epochs.advance(loss=0.25)
            folds.advance(mae=1.5)
            clock.tick(12)
            folds.advance(mae=1.25)
        candidate.advance(detail="backtested", mase=0.91)
    with progress.task("epoch", total=20) as resumed:
        resumed.skip_to(5)  # epochs 1-5 ran before: the pace counts from here
        clock.tick(10)
        resumed.advance(loss=0.2)
    with progress.task("step", total=None, label="pipeline tiny") as steps:
        clock.tick(75)
        steps.advance(detail="train")
    assert stream.getvalue().splitlines() == [
        "promotion of demo: backtesting version 3 (challenger)",
        "promotion of demo, challenger version 3: backtest model (lstm): starting 2 folds",
        "promotion of demo, challenger version 3: backtest model (lstm): epoch 1/3 loss 0.4123 "
        "val_loss 0.39 (4 s, ~8 s left)",
        "promotion of demo, challenger version 3: backtest model (lstm): epoch 2/3 loss 0.3 "
        "val_loss nan (8 s, ~4 s left)",
        "promotion of demo, challenger version 3: backtest model (lstm): epoch 3/3 loss 0.25 "
        "(12 s)",
        "promotion of demo, challenger version 3: backtest model (lstm): fold 1/2 mae 1.5 "
        "(12 s, ~12 s left)",
        "promotion of demo, challenger version 3: backtest model (lstm): fold 2/2 mae 1.25 "
        "(24 s)",
        "promotion of demo, challenger version 3: candidate 1/2 backtested mase 0.91 "
        "(24 s, ~24 s left)",
        "epoch 6/20 loss 0.2 (10 s, ~2 min 20 s left)",
        "pipeline tiny: starting",
        "pipeline tiny: step 1 train (1 min 15 s)",
    ]


def test_durations_read_as_seconds_minutes_hours():
    assert [format_duration(s) for s in (0.4, 12.4, 59.6, 125, 3720)] == [
        "0 s", "12 s", "1 min 00 s", "2 min 05 s", "1 h 02 min"]


def test_the_rich_display_renders_bars_with_the_eta():
    from rich.console import Console

    clock = FakeClock()
    console = Console(file=io.StringIO(), force_terminal=True, width=140, color_system=None)
    progress = RichProgress(console, clock=clock, auto_refresh=False)
    with progress.task("candidate", total=2) as outer:
        outer.relabel("promotion of demo, champion version 2")
        with progress.task("fold", total=3, label="backtest naive") as task:
            clock.tick(10)
            task.advance(mae=0.52)
            progress.note("a note above the bars")
            clock.tick(10)
            task.advance(mae=0.5)
        outer.advance(detail="backtested", mase=0.9)
    text = console.file.getvalue()
    assert "backtest naive · fold" in text and "2/3" in text and "mae 0.5" in text
    assert "~10 s left" in text  # 20 s for 2 of 3 folds
    assert "promotion of demo, champion version 2 · candidate" in text
    assert "a note above the bars" in text


def test_the_cli_chooses_rich_on_a_terminal_plain_elsewhere_and_obeys_the_variable():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Terminal(), io.StringIO()
    assert isinstance(for_cli(stream=tty, environ={}), RichProgress)
    assert isinstance(for_cli(stream=tty, environ={"TERM": "dumb"}), PlainProgress)
    assert isinstance(for_cli(stream=pipe, environ={}), PlainProgress)
    # --json: whole lines on stderr, never a live display
    assert isinstance(for_cli(stream=tty, environ={}, as_json=True), PlainProgress)
    assert for_cli(stream=tty, environ={"FORECAST_PROGRESS": "off"}) is SILENT
    assert isinstance(for_cli(stream=pipe, environ={"FORECAST_PROGRESS": "rich"}), RichProgress)
    assert isinstance(for_cli(stream=tty, environ={"FORECAST_PROGRESS": "plain"}),
                      PlainProgress)


def test_library_users_get_nothing_unless_they_ask():
    assert isinstance(current(), SilentProgress) and not current().active
    progress, _, stream = _plain()
    with using(progress):
        assert current() is progress
        with current().task("fold", total=1) as task:
            task.advance()
    assert current() is SILENT
    assert stream.getvalue() == "fold 1/1 (0 s)\n"


# -- the hooks ---------------------------------------------------------------------------------


def _tiny_data():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4, 1)).astype("float32")
    y = x[:, -2:, :] * 0.5
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def _tiny_model():
    import keras

    inputs = keras.Input((4, 1))
    outputs = keras.layers.Reshape((2, 1))(keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    return keras.Model(inputs, outputs)


def test_fit_reports_epochs_instead_of_keras_and_verbose_0_stays_silent(capsys):
    from forecast.training.fit import fit

    data = _tiny_data()
    progress, _, stream = _plain()
    result = fit(_tiny_model(), data, data, {"epochs": 3, "verbose": 2, "patience": None},
                 progress=progress)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    for k, (line, loss, val_loss) in enumerate(
            zip(lines, result.history["loss"], result.history["val_loss"], strict=True), 1):
        assert line.startswith(f"epoch {k}/3 loss {loss:.4g} val_loss {val_loss:.4g} (")
    assert "Epoch" not in capsys.readouterr().out  # Keras printed nothing of its own

    progress, _, stream = _plain()
    with using(progress):
        fit(_tiny_model(), data, data, {"epochs": 2, "verbose": 0, "patience": None})
    assert stream.getvalue() == ""


def test_a_backtest_reports_each_fold(synthetic_csv, capsys):
    from forecast.data import load_csv
    from forecast.data.windows import WindowSpec
    from forecast.evaluation.backtest import BaselineEstimator, backtest

    frame = load_csv(synthetic_csv, targets=["y"])
    spec = WindowSpec(24, 6, ("y",))
    progress, _, stream = _plain()
    with using(progress):
        result = backtest(frame, spec, lambda: BaselineEstimator("naive", spec), folds=2)
    assert stream.getvalue().splitlines() == [
        "backtest naive: starting 2 folds",
        f"backtest naive: fold 1/2 mae {result.folds[0].metrics['mae']:.4g} (0 s, ~0 s left)",
        f"backtest naive: fold 2/2 mae {result.folds[1].metrics['mae']:.4g} (0 s)",
    ]
    backtest(frame, spec, lambda: BaselineEstimator("naive", spec), folds=2)  # no display set
    assert capsys.readouterr().err == ""


def test_promotion_says_which_candidate_and_fold_it_backtests(monkeypatch):
    from types import SimpleNamespace

    import forecast.workflow
    from forecast.evaluation import promotion

    def fold(k, model, naive):
        return {"fit_start": "a", "fit_end": f"b{k}", "origin": f"b{k}", "test_end": f"c{k}",
                "model": {"mase": model, "mae": model}, "naive": {"mase": naive, "mae": naive}}

    def fake_run_backtest(frame, config, *, folds, fold_size, mode, baselines):
        score = config["model"]["units"] / 10  # the challenger 0.4, the champion 0.8
        with current().task("fold", total=folds, label="backtest model (lstm)") as task:
            for _ in range(folds):
                task.advance(mae=score)
        return {"folds": [fold(k, score, 1.0) for k in range(folds)]}

    versions = {"3": {"kind": "network"}, "2": {"kind": "network"}}
    registry = promotion.registry
    for attr, value in {
        "model_version": lambda name, v: SimpleNamespace(version=str(v), run_id="r",
                                                         tags=versions[str(v)]),
        "champion_version": lambda name: "2",
        "forecaster_config": lambda name, v: {"horizon": 6, "model": {
            "cell": "lstm", "units": 4 if v == "3" else 8}, "train": {}},
        "cached_backtest": lambda *a: None,
        "store_backtest": lambda *a: None,
        "set_version_tags": lambda *a: None,
        "make_champion": lambda *a: None,
    }.items():
        monkeypatch.setattr(registry, attr, value)
    monkeypatch.setattr(forecast.workflow, "run_backtest", fake_run_backtest)
    monkeypatch.setattr(promotion, "_backtest_key", lambda *a: "key")
    progress, clock, stream = _plain()
    frame = pd.DataFrame({"y": np.zeros(480)},
                         index=pd.date_range("2024-01-01", periods=480, freq="h"))
    with using(progress):
        decision = promotion.promote_if_better("demo", "3", frame, folds=2, fold_size=24)
    assert decision.promoted
    assert stream.getvalue().splitlines() == [
        "promotion of demo: backtesting version 3 (challenger), the champion (version 2) and "
        "the baselines naive, seasonal_naive, linear on the same 2 folds of 24 rows (expanding)",
        "promotion of demo, challenger version 3: backtest model (lstm): starting 2 folds",
        "promotion of demo, challenger version 3: backtest model (lstm): fold 1/2 mae 0.4 "
        "(0 s, ~0 s left)",
        "promotion of demo, challenger version 3: backtest model (lstm): fold 2/2 mae 0.4 (0 s)",
        "promotion of demo, challenger version 3: candidate 1/2 backtested mase 0.4 "
        "(0 s, ~0 s left)",
        "promotion of demo, champion version 2: backtest model (lstm): starting 2 folds",
        "promotion of demo, champion version 2: backtest model (lstm): fold 1/2 mae 0.8 "
        "(0 s, ~0 s left)",
        "promotion of demo, champion version 2: backtest model (lstm): fold 2/2 mae 0.8 (0 s)",
        "promotion of demo, champion version 2: candidate 2/2 backtested mase 0.8 (0 s)",
    ]


def test_cli_train_json_prints_epochs_on_stderr_and_one_object_on_stdout(synthetic_csv, capsys,
                                                                         monkeypatch):
    from forecast.cli import main

    monkeypatch.delenv("FORECAST_PROGRESS", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback",
              "24", "--units", "4", "--epochs", "2", "--no-track", "--json"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    result = json.loads(captured.out)  # stdout: the JSON object and nothing else
    assert result["training"]["epochs_run"] == 2
    epochs = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2
    for k, line in enumerate(epochs, 1):
        assert re.fullmatch(rf"epoch {k}/2 loss [0-9.e+-]+ val_loss [0-9.e+-]+ \(\d+ s"
                            r"(, ~\d+ s left)?\)", line), line
    assert "Epoch 1/2" not in captured.err + captured.out  # Keras's own lines are replaced


def test_a_pipeline_reports_each_step(monkeypatch):
    from types import SimpleNamespace

    from forecast.pipelines import run as pipeline_run
    from forecast.pipelines import steps

    progress, clock, stream = _plain()

    def validate(path, **kwargs):
        clock.tick(1)
        return SimpleNamespace(name="tiny", skipped=False)

    def run_step(name, state, **kwargs):
        clock.tick(10 if name == "train" else 1)
        return state

    monkeypatch.setattr(steps, "validate", validate)
    monkeypatch.setattr(steps, "run_step", run_step)
    monkeypatch.setattr(pipeline_run.PipelineResult, "from_state",
                        classmethod(lambda cls, state, forecast=None: state))
    pipeline_run.run_pipeline("pipelines/tiny.yaml", progress=progress)
    assert stream.getvalue().splitlines() == [
        "pipeline tiny: starting 6 steps",
        "pipeline tiny: step 1/6 validate (1 s, ~5 s left)",
        "pipeline tiny: step 2/6 ingest (2 s, ~4 s left)",
        "pipeline tiny: step 3/6 train (12 s, ~12 s left)",
        "pipeline tiny: step 4/6 backtest (13 s, ~6 s left)",
        "pipeline tiny: step 5/6 register (14 s, ~3 s left)",
        "pipeline tiny: step 6/6 forecast (15 s)",
    ]
