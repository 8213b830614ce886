"""End to end: a tiny pipeline YAML on a synthetic CSV, through the API and the CLI."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from forecast.cli import main
from forecast.pipelines import run_pipeline
from tests.pipelines.conftest import tiny_pipeline, write_pipeline

PIPELINE = tiny_pipeline(
    "tiny", register="{name: tiny-model, promotion_folds: 2, promotion_epochs: 1}")


@pytest.fixture
def pipeline(tmp_path):
    return write_pipeline(tmp_path, PIPELINE)


def cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_a_pipeline_runs_once_skips_unchanged_data_and_reruns_when_forced(
        pipeline, tmp_path, capsys):
    lines = []
    result = run_pipeline(pipeline, echo=lines.append)
    assert not result.skipped and result.version == "1"
    # blended with the linear baseline by default, and the train step says how
    blend = [line for line in lines if line.startswith("[train] blend: ")]
    assert len(blend) == 1 and "chosen on validation" in blend[0], lines
    run = MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED"  # still FINISHED after the steps added to it
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["pipeline.name"] == "tiny" and tags["registry.version"] == "1"
    assert tags["watermark.last_timestamp"] == "2024-01-15 23:00:00"
    assert len(tags["watermark.sha256"]) == 64
    for step in ("validate", "ingest", "train", "evaluate", "register", "forecast"):
        assert metrics[f"step.{step}.seconds"] >= 0
    assert metrics["step.train.seconds"] > 0 and "test.model.mase" in metrics
    assert set(result.metrics["model"]) == {"mae", "mase"}
    forecast = pd.read_csv(tmp_path / "out" / "forecast.csv", parse_dates=["date"])
    assert list(forecast.columns) == ["date", "y"] and len(forecast) == 6
    assert forecast["date"].iloc[0] == pd.Timestamp("2024-01-16 00:00:00")
    assert forecast["y"].between(0, 25).all()
    artifacts = [a.path for a in MlflowClient().list_artifacts(result.run_id, "forecast")]
    assert artifacts == ["forecast/forecast.csv"]

    # the same data and settings: skipped, exit code 0, nothing new in MLflow
    code, out, _ = cli(capsys, "pipeline", "run", str(pipeline))
    assert code == 0 and "skipped" in out and result.run_id in out
    assert len(mlflow.search_runs(experiment_names=["forecast"])) == 1

    # --force trains again; --set changes the horizon (register=null: the registry refuses to
    # compare versions of different horizons)
    code, out, _ = cli(capsys, "pipeline", "run", str(pipeline), "--force", "--json",
                       "--set", "window.horizon=4", "--set", "register=null")
    assert code == 0
    forced = json.loads(out)
    assert not forced["skipped"] and forced["run_id"] != result.run_id
    assert forced["forecast_rows"] == 4 and len(pd.read_csv(forced["forecast_path"])) == 4
    assert MlflowClient().get_run(forced["run_id"]).info.status == "FINISHED"


def test_cli_validate_prints_a_summary_or_one_clean_error(pipeline, capsys):
    code, out, _ = cli(capsys, "pipeline", "validate", str(pipeline))
    assert code == 0 and out.startswith("OK: pipeline tiny") and "horizon 6" in out
    pipeline.write_text(PIPELINE.replace("horizon: 6", "horizn: 6"))
    code, out, err = cli(capsys, "pipeline", "validate", str(pipeline))
    assert code == 2 and out == ""
    assert "window.horizn" in err and "line 7" in err and "did you mean horizon?" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_run_whose_data_fails_to_load_is_recorded_failed(pipeline, capsys):
    (pipeline.parent / "data" / "series.csv").write_text("date,y\n2024-01-01,1\n")
    code, _, err = cli(capsys, "pipeline", "run", str(pipeline))
    assert code == 2 and "error:" in err
    (run,) = MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("forecast").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["pipeline.name"] == "tiny"
    assert run.data.tags["error"]


def test_a_pipeline_with_intervals_reports_coverage_and_writes_the_bounds(tmp_path, capsys):
    path = write_pipeline(tmp_path, tiny_pipeline(
        "tiny-intervals",
        evaluate="{metrics: [mae], intervals: [0.95, 0.8], backtest_folds: 2}"))
    code, out, err = cli(capsys, "pipeline", "run", str(path))
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if "conformal intervals on the test part" in x]
    covered = {label: float(line.split(f"{label} % covers ")[1][:5]) for label in ("80", "95")}
    assert 0.5 < covered["80"] <= covered["95"] <= 1.0, line
    forecast = pd.read_csv(tmp_path / "out" / "forecast.csv")
    assert list(forecast.columns) == ["date", "y", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    assert ((forecast.y_lo_95 <= forecast.y_lo_80) & (forecast.y_lo_80 <= forecast.y)
            & (forecast.y <= forecast.y_hi_80) & (forecast.y_hi_80 <= forecast.y_hi_95)).all()
    (run,) = MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("forecast").experiment_id])
    assert run.data.metrics["test.model.coverage_80"] == pytest.approx(covered["80"], abs=5e-4)
    # the backtest step: each fold calibrated on its own validation part, the mean reported
    assert any(x.startswith("[backtest] conformal intervals, mean over the folds' test parts: "
                            "80 % covers") for x in out.splitlines()), out
    assert 0 < run.data.metrics["backtest.model.coverage_95"] <= 1


@pytest.mark.parametrize("evaluate, split, named", [
    ("{intervals: [1.5]}", "", "evaluate.intervals"),
    ("{intervals: [yes]}", "", "evaluate.intervals"),
    ("{intervals: [0.9]}", "split: {val: 0}\n", "split.val"),
])
def test_cli_validate_refuses_bad_intervals_in_one_line(tmp_path, capsys, evaluate, split,
                                                       named):
    path = write_pipeline(tmp_path, tiny_pipeline("tiny", evaluate=evaluate) + split)
    code, out, err = cli(capsys, "pipeline", "validate", str(path))
    assert code == 2 and out == "" and named in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_validate_refuses_a_pinball_loss_without_quantile_outputs(tmp_path, capsys):
    """Each section allows it alone; together they would fail at the first training step."""
    text = tiny_pipeline("tiny").replace(
        "seed: 1}", "seed: 1, loss: pinball, quantiles: [0.1, 0.9]}")
    path = write_pipeline(tmp_path, text)
    code, out, err = cli(capsys, "pipeline", "validate", str(path))
    assert code == 2 and out == "" and "model.quantiles" in err and "--quantile" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    path.write_text(text.replace("linear_skip: true}", "linear_skip: true, quantiles: [0.1, 0.9]}")
                    .replace(", loss: pinball, quantiles: [0.1, 0.9]", ""))
    code, out, err = cli(capsys, "pipeline", "validate", str(path))
    assert code == 0, err
