"""Bad input to train / evaluate / backtest: one line naming the flag (exit 2), found before any
training starts, and nothing already saved is lost (issue 18, "nothing silently wrong")."""

import json
import os
import time

import pytest

from forecast.cli import main
from forecast.errors import ModelError
from forecast.forecaster import MODEL_FILE, STATE_FILE, Forecaster, forecaster_files

TINY = ["--target", "y", "--horizon", "6", "--lookback", "24", "--units", "4", "--epochs", "1",
        "--seed", "3"]


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _runs() -> int:
    """MLflow runs in this test's own store (conftest isolates it; no file: no run)."""
    from mlflow import MlflowClient

    uri = os.environ["MLFLOW_TRACKING_URI"]
    if not os.path.exists(uri.removeprefix("sqlite:///")):
        return 0
    client = MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(ids)) if ids else 0


def _refused(argv, capsys, *words, seconds=30):
    """Runs the CLI, expects exit 2 with one line holding ``words``, quickly and untrained."""
    started = time.perf_counter()
    code, out, err = _run(argv, capsys)
    elapsed = time.perf_counter() - started
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Epoch" not in out + err
    message = " ".join(err.split())  # rich wraps long lines
    for word in words:
        assert word in message, (word, message)
    assert elapsed < seconds, f"{elapsed:.1f} s: did it train before refusing?"
    return message


# -- 1. the experiment name -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_experiment_is_refused_before_anything_runs(synthetic_csv, capsys, name):
    _refused(["train", str(synthetic_csv), *TINY, "--experiment", name], capsys,
             "--experiment", "YAML `experiment`")
    assert _runs() == 0


# -- 4. counts and fractions ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-3"])
def test_horizon_zero_or_negative_is_not_replaced_by_a_default(synthetic_csv, capsys, value):
    argv = ["train", str(synthetic_csv), "--target", "y", "--horizon", value, "--epochs", "1"]
    _refused(argv, capsys, "--horizon", f"Received: --horizon {value}", "window.horizon")
    assert _runs() == 0
    _refused(["backtest", str(synthetic_csv), "--target", "y", "--horizon", value], capsys,
             "--horizon", "window.horizon")


@pytest.mark.parametrize("flag, value, words", [
    ("--val", "1.2", ("--val", "split.val", "1.2")),
    ("--val", "-0.1", ("--val", "split.val")),
    ("--test", "0", ("--test", "split.test", "0 < test < 1")),
    ("--test", "1", ("--test", "split.test")),
])
def test_split_fractions_out_of_range(synthetic_csv, capsys, flag, value, words):
    _refused(["train", str(synthetic_csv), *TINY, flag, value], capsys, *words)
    assert _runs() == 0


def test_split_fractions_that_leave_nothing_to_train_on(synthetic_csv, capsys):
    _refused(["train", str(synthetic_csv), *TINY, "--val", "0.5", "--test", "0.5"], capsys,
             "--val 0.5 + --test 0.5", "leave no rows to train on")


@pytest.mark.parametrize("flag, setting", [
    ("--units", "units"), ("--epochs", "epochs"), ("--batch-size", "batch_size"),
    ("--lookback", "lookback"), ("--layers", "layers"),
])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_sizes_zero_or_negative(synthetic_csv, capsys, flag, setting, value):
    argv = ["train", str(synthetic_csv), *TINY, flag, value, "--no-track"]
    _refused(argv, capsys, setting)


@pytest.mark.parametrize("flag", ["--folds", "--fold-size"])
def test_backtest_folds_zero(synthetic_csv, capsys, flag):
    _refused(["backtest", str(synthetic_csv), *TINY, flag, "0"], capsys, flag,
             f"Received: {flag} 0")


# -- 5. split sizes against lookback + horizon, before training ------------------------------


def test_test_part_shorter_than_the_horizon(synthetic_csv, capsys):
    # 480 rows: 1% is 5 test rows, fewer than the horizon of 6
    message = _refused(["train", str(synthetic_csv), *TINY, "--test", "0.01"], capsys,
                       "480 rows", "test 5", "horizon 6", "--test", "split.test")
    assert "--horizon" in message
    assert _runs() == 0


def test_validation_part_without_a_window(synthetic_csv, capsys):
    _refused(["train", str(synthetic_csv), *TINY, "--val", "0.001"], capsys,
             "val 0", "--val 0", "split.val")


def test_lookback_longer_than_the_training_part(synthetic_csv, capsys):
    _refused(["train", str(synthetic_csv), *TINY, "--lookback", "400"], capsys,
             "train 336", "lookback 400 + horizon 6 = 406", "--lookback", "window.lookback")
    assert _runs() == 0


# -- 3. too large a network -------------------------------------------------------------------


def test_a_billion_units_is_refused_before_building(synthetic_csv, capsys):
    message = _refused(["train", str(synthetic_csv), *TINY, "--units", "1000000000"], capsys,
                       "parameters", "--units", "model.units", "50,000,000")
    assert "4,000,000,0" in message  # 4·(u·(in + u) + u) for the LSTM alone: about 4e18
    assert _runs() == 0


# -- 2. --save ------------------------------------------------------------------------------


def test_save_onto_a_file_or_under_one(synthetic_csv, tmp_path, capsys):
    a_file = tmp_path / "model.txt"
    a_file.write_text("keep me")
    _refused(["train", str(synthetic_csv), *TINY, "--save", str(a_file)], capsys,
             "--save", "is a file")
    _refused(["train", str(synthetic_csv), *TINY, "--save", str(a_file / "sub")], capsys,
             "--save", "is a file, not a folder")
    assert a_file.read_text() == "keep me"
    assert _runs() == 0


def test_save_where_nothing_can_be_written(synthetic_csv, capsys):
    _refused(["train", str(synthetic_csv), *TINY, "--save", "/proc/forecast-model"], capsys,
             "--save /proc/forecast-model", "cannot be written")
    assert _runs() == 0


def test_save_into_a_folder_of_other_files(synthetic_csv, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.md").write_text("mine")
    _refused(["train", str(synthetic_csv), *TINY, "--save", str(folder)], capsys,
             "--save", "notes.md", "new or empty folder")
    assert os.listdir(folder) == ["notes.md"]


def test_an_earlier_save_is_kept_unless_overwrite(synthetic_csv, tmp_path, capsys):
    folder = tmp_path / "model"
    code, out, err = _run(["train", str(synthetic_csv), *TINY, "--no-track", "--json",
                           "--save", str(folder)], capsys)
    assert code == 0, err
    files = forecaster_files(folder)  # the MLflow model's forecaster artifact
    before = {name: (files / name).read_bytes() for name in (MODEL_FILE, STATE_FILE)}

    _refused(["train", str(synthetic_csv), *TINY, "--save", str(folder)], capsys,
             "--save", "already holds a saved forecaster", "--overwrite")
    assert _runs() == 0
    assert {name: (files / name).read_bytes() for name in before} == before
    Forecaster.load(folder)  # still loads

    code, out, err = _run(["train", str(synthetic_csv), *TINY, "--seed", "4", "--no-track",
                           "--json", "--save", str(folder), "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads(out)["saved_to"] == str(folder)
    assert Forecaster.load(folder).config.train.seed == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_failed_save_leaves_the_earlier_one(synthetic_csv, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "model"
    code, out, err = _run(["train", str(synthetic_csv), *TINY, "--no-track", "--json",
                           "--save", str(folder)], capsys)
    assert code == 0, err
    forecaster = Forecaster.load(folder)
    before = (forecaster_files(folder) / STATE_FILE).read_text()

    def broken(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Forecaster, "state", broken)
    with pytest.raises(ModelError, match="No space left on device.*nothing there was changed"):
        forecaster.save(folder, overwrite=True)
    assert (forecaster_files(folder) / STATE_FILE).read_text() == before
    Forecaster.load(folder)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


# -- 7. evaluate ------------------------------------------------------------------------------


def test_evaluate_missing_or_wrong_model_folder(synthetic_csv, tmp_path, capsys):
    csv = str(synthetic_csv)
    _refused(["evaluate", "--model", str(tmp_path / "nope"), "--csv", csv], capsys,
             "nope", "no such folder")
    _refused(["evaluate", "--model", csv, "--csv", csv], capsys, "is a file, not a folder")
    _refused(["evaluate", "--model", str(tmp_path), "--csv", csv], capsys,
             "does not hold a saved forecaster")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MODEL_FILE).write_bytes(b"not a zip")
    (broken / STATE_FILE).write_text("{not json")
    _refused(["evaluate", "--model", str(broken), "--csv", csv], capsys,
             STATE_FILE, "not a readable forecaster state")


def test_evaluate_missing_csv(synthetic_csv, tmp_path, capsys):
    folder = tmp_path / "model"
    code, out, err = _run(["train", str(synthetic_csv), *TINY, "--no-track", "--json",
                           "--save", str(folder)], capsys)
    assert code == 0, err
    _refused(["evaluate", "--model", str(folder), "--csv", str(tmp_path / "missing.csv")],
             capsys, "missing.csv", "file not found")
