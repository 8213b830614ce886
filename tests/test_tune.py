"""`forecast tune`: the search space as data, pruning, and a search tracked as nested runs."""

import json
import time

import pytest

from forecast.errors import ConfigError
from forecast.options import ForecasterConfig
from forecast.tuning.space import (
    Param,
    SearchSpace,
    TuneOptions,
    apply_values,
    base_values,
    default_space,
    parse_space,
    resolve_space,
)


def _run(argv, capsys):
    from forecast.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


# -- the space, as data -------------------------------------------------------------------------


@pytest.mark.parametrize("space, message", [
    ({"units": {"kind": "intt", "low": 1, "high": 4}}, "tune.space.units.kind: unknown kind"),
    ({"units": {"kind": "int", "low": 8, "high": 2}}, "tune.space.units: low must not be above"),
    ({"dropout": {"kind": "float", "low": 0.1, "high": 1.5}}, "tune.space.dropout: `dropout`"),
    ({"units": [0, 4]}, "tune.space.units: `units` must be a positive integer"),
    ({"cell": {"kind": "int", "low": 1, "high": 2}}, "tune.space.cell: cell is a word setting"),
    ({"learning_rate": {"kind": "log_float", "low": 0, "high": 0.1}},
     "tune.space.learning_rate: kind log_float needs low > 0"),
    ({"unitz": [4, 8]}, "tune.space.unitz: unknown tunable setting 'unitz'"),
])
def test_a_bad_space_names_its_key(space, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_space(space)
    with pytest.raises(ConfigError, match="tune.space."):
        TuneOptions.parse({"trials": 3, "space": space})


def test_a_space_in_pipeline_yaml_is_checked_with_its_line(tmp_path):
    from forecast.pipelines.spec import load_pipeline

    path = tmp_path / "p.yaml"
    base = "name: p\ndata: {path: s.csv}\nwindow: {horizon: 6}\n"
    path.write_text(base + "tune:\n  trials: 4\n  space:\n    units: [4, 8]\n"
                    "    dropout: null\n")
    spec = load_pipeline(path)
    assert spec.tune.trials == 4
    assert spec.tune.space.changes() == {"units": Param(kind="categorical", choices=[4, 8]),
                                         "dropout": None}
    assert spec.digest() == load_pipeline(path, overrides=["tune.trials=9"]).digest()
    path.write_text(base + "tune:\n  space:\n    units: {kind: int, low: 8, high: 2}\n")
    with pytest.raises(ConfigError, match=r"line 6: tune\.space\.units: low must not be above"):
        load_pipeline(path)
    path.write_text(base + "tune:\n  space:\n    unitz: [4]\n")
    with pytest.raises(ConfigError, match=r"tune\.space\.unitz: unknown key \(did you mean units"):
        load_pipeline(path)


def test_default_space_per_setup_and_changes_by_name():
    config = ForecasterConfig(horizon=24)
    space = resolve_space(config, train_rows=12000)
    assert set(space) == {"units", "layers", "dropout", "learning_rate", "lookback_multiple"}
    assert space["learning_rate"].kind == "log_float"
    # the segment setup also searches the segment length, among lengths dividing the horizon
    segment = default_space("segment", 24, 12000)
    assert segment["segment_length"].choices == [4, 6, 8, 12, 24]
    # a short series leaves out the lookbacks above a quarter of its training rows
    assert default_space("many_to_one", 24, 400)["lookback_multiple"].choices == [2, 4]
    # narrowed by name: replaced, removed, or only what is given
    changed = resolve_space(config, {"units": [8, 16], "dropout": None, "layers": None},
                            train_rows=12000)
    assert set(changed) == {"units", "learning_rate", "lookback_multiple"}
    assert resolve_space(config, {"units": [8]}, use_defaults=False) == {
        "units": Param(kind="categorical", choices=[8])}
    with pytest.raises(ConfigError, match="tune.space.lookback_multiple: a lookback of 336"):
        resolve_space(config, {"lookback_multiple": [2, 14]}, train_rows=300)
    with pytest.raises(ConfigError, match="tune.space.segment_length: lookback 48 is not a "
                                          "multiple of segment_length 10"):
        resolve_space(config.model_copy(update={"setup": "segment"}),
                      {"segment_length": [12, 10]}, train_rows=12000)
    with pytest.raises(ConfigError, match="tune.space: nothing to search"):
        resolve_space(config, SearchSpace(), use_defaults=False)
    # values go where the settings live; the first trial tries the starting settings
    tuned = apply_values(config, {"units": 16, "learning_rate": 3e-3, "lookback_multiple": 4})
    assert (tuned.model.units, tuned.train.learning_rate, tuned.lookback) == (16, 3e-3, 96)
    assert base_values(config, space, lookback=336) == {
        "units": 32, "layers": 1, "dropout": 0.0, "learning_rate": 1e-3, "lookback_multiple": 14}


def test_pruning_stops_training_cleanly_at_the_pruned_epoch():
    import keras
    import numpy as np

    from forecast.tuning.search import PruneOnValLoss

    class Trial:  # what the callback uses of optuna.Trial
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= 2

    x = np.linspace(0, 1, 64, dtype="float32").reshape(-1, 1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    trial = Trial()
    callback = PruneOnValLoss(trial)
    history = model.fit(x, 2 * x, validation_data=(x, 2 * x), epochs=6, verbose=0,
                        callbacks=[callback])
    assert callback.pruned_at == 2 and len(history.history["val_loss"]) == 2
    assert [step for step, _ in trial.reported] == [1, 2]
    assert trial.reported[1][1] == pytest.approx(history.history["val_loss"][1])


def test_the_study_needs_a_folder_or_a_storage_url():
    from forecast.tuning.search import shown_storage, study_storage

    assert study_storage(None, "sqlite:////srv/mlflow/mlflow.db") == \
        "sqlite:////srv/mlflow/optuna.db"
    assert study_storage("sqlite:////x/o.db", "http://host:5000") == "sqlite:////x/o.db"
    with pytest.raises(ConfigError, match="--storage"):
        study_storage(None, "http://127.0.0.1:5000")
    assert shown_storage("postgresql+psycopg2://me:secret@db/optuna") == \
        "postgresql+psycopg2://me:***@db/optuna"


# -- a search, tracked --------------------------------------------------------------------------


def test_three_trials_then_two_more_as_nested_runs(synthetic_csv, tmp_path, capsys):
    import mlflow
    import optuna

    from forecast.tuning.search import STUDY_FILE, tune_tracked
    from forecast.workflow import load_for_training

    frame = load_for_training(synthetic_csv, targets=["y"])
    config = {"horizon": 6, "lookback": 24, "model": {"units": 8},
              "train": {"epochs": 2, "verbose": 0}}
    options = {"trials": 3, "default_space": False, "space": {"units": [4, 8]},
               "study": "tiny"}
    started = time.perf_counter()
    result = tune_tracked(frame, config, options, source=str(synthetic_csv))
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n3 trials in {seconds:.1f} s")

    parent = mlflow.get_run(result.parent_run_id)
    experiment = parent.info.experiment_id
    children = mlflow.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 3
    assert set(children["tags.forecast.tune.state"]) == {"complete"}
    assert set(children["params.units"]) <= {"4", "8"}
    # the first trial tried the starting settings (8 units)
    first = children[children["tags.forecast.tune.trial"] == "0"].iloc[0]
    assert first["params.units"] == "8" and result.start_score == first["metrics.score"]
    # the best on the parent is the best child
    best = parent.data.metrics["tune.best_score"]
    assert best == pytest.approx(children["metrics.score"].min())
    assert best == pytest.approx(result.best["score"])
    assert parent.data.tags["tune.best.units"] == str(result.best["params"]["units"])
    trained = children[children["tags.forecast.tune.same_as_trial"].isna()
                       if "tags.forecast.tune.same_as_trial" in children else slice(None)]
    history = mlflow.MlflowClient().get_metric_history(trained.iloc[0]["run_id"], "val_loss")
    assert [m.step for m in history] == [1, 2]  # per-epoch curves, one step per epoch
    assert result.model_uri and parent.data.metrics["test.model.mase"] > 0
    assert (tmp_path / "mlflow-store" / STUDY_FILE).is_file()  # beside the MLflow store

    # the same study again, through the CLI: two more trials, under the same parent
    code, out, err = _run(["tune", str(synthetic_csv), "--target", "y", "--horizon", "6",
                           "--lookback", "24", "--units", "8", "--epochs", "2", "--trials", "2",
                           "--study", "tiny", "--no-default-space", "--space", "units=[4, 8]",
                           "--json"], capsys)
    assert code == 0, err
    again = json.loads(out)
    assert len(again["trials"]) == 5 and again["new_trials"] == 2
    assert again["mlflow"]["parent_run_id"] == result.parent_run_id
    study = optuna.load_study(study_name="tiny",
                              storage=f"sqlite:///{tmp_path / 'mlflow-store' / STUDY_FILE}")
    assert len(study.trials) == 5
    children = mlflow.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 5
    assert again["best"]["score"] == pytest.approx(children["metrics.score"].min())
    assert mlflow.get_run(result.parent_run_id).info.status == "FINISHED"


def test_bad_tune_input_exits_2(synthetic_csv, capsys):
    for argv, words in [
        (["--space", "units={kind: int, low: 8, high: 2}"], ["tune.space.units", "low"]),
        (["--space", "unitz=[4]"], ["tune.space.unitz", "units"]),
        (["--space", "units"], ["--space takes NAME=VALUE"]),
        (["--trials", "0"], ["--trials"]),
        (["--metric", "accuracy"], ["metric", "mase"]),
        (["--val", "0"], ["--val must be above 0"]),
    ]:
        code, out, err = _run(["tune", str(synthetic_csv), "--target", "y", "--horizon", "6",
                               "--epochs", "1", *argv], capsys)
        assert code == 2, (argv, err)
        assert all(word in err for word in words), (argv, err)
        assert "Traceback" not in err
