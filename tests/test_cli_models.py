"""The train / evaluate / backtest commands, driven through the real entry point."""

import json
from pathlib import Path

import pytest

from forecast.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_train_json_prints_one_object_with_model_and_baselines(synthetic_csv, tmp_path, capsys):
    code, out, err = _run(
        ["train", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback", "24",
         "--units", "8", "--epochs", "2", "--json", "--save", str(tmp_path / "model")], capsys)
    assert code == 0, err
    result = json.loads(out)  # nothing else on stdout
    assert set(result["baselines"]) == {"naive", "seasonal_naive", "linear"}
    for name in ("mae", "rmse", "mase", "smape"):
        assert result["model"][name] > 0
    assert result["settings"]["horizon"] == 6 and result["settings"]["lookback"] == 24
    assert result["sizes"]["test_windows"] == 96 - 6 + 1  # 96 test rows, horizon 6
    # evaluate the saved model on the same file
    code, out, err = _run(["evaluate", "--model", str(tmp_path / "model"), "--csv",
                           str(synthetic_csv), "--json"], capsys)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["model"]["mae"] > 0 and "linear" in metrics["baselines"]


def test_train_on_etth1_prints_the_table(capsys):
    code, out, err = _run(
        ["train", str(ROOT / "datasets" / "ETTh1.csv"), "--target", "OT", "--horizon", "24",
         "--units", "16", "--epochs", "1"], capsys)
    assert code == 0, err
    assert "model" in out and "naive" in out and "seasonal_naive" in out and "linear" in out
    assert "3461 windows" in out  # 20% of 17420 rows = 3484 test rows, minus 24 - 1


def test_backtest_json_records_folds(synthetic_csv, capsys):
    code, out, err = _run(
        ["backtest", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback", "24",
         "--units", "4", "--epochs", "1", "--folds", "2", "--fold-size", "24", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert len(report["folds"]) == 2
    for fold in report["folds"]:
        assert fold["fit_end"] <= fold["origin"] < fold["test_end"]
        assert "naive" in fold and fold["model"]["mae"] > 0
    assert report["folds"][0]["test_end"] < report["folds"][1]["test_end"]


def test_bad_settings_are_one_message(synthetic_csv, capsys):
    code, out, err = _run(["train", str(synthetic_csv), "--target", "y", "--setup", "many2one",
                           "--epochs", "1"], capsys)
    assert code == 2
    assert "many2one" in err and "many_to_one" in err and "Traceback" not in err
    code, out, err = _run(["train", str(synthetic_csv), "--target", "nope"], capsys)
    assert code == 2 and "nope" in err
