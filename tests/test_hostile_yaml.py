"""Hostile and wrong input is answered, never silently taken: alias bombs, deep nesting, huge
files, sizes that are bools or zero, infinite rates, impossible crons, missing data files and
registry names MLflow would refuse after training. Each is one line on stderr, exit code 2, that
names the file, the key or flag and the limit, and comes before anything is expanded or trained.
"""

import math
import re

import numpy as np
import pytest

from forecast.cli import MAX_MESSAGE, bounded, main
from forecast.cron import cron_trigger
from forecast.errors import ConfigError, cut, shown
from forecast.options import (
    ForecasterConfig,
    ModelOptions,
    TrainOptions,
    check_model_name,
    model_name_problem,
)
from forecast.pipelines.spec import load_pipeline
from forecast.scheduling.airflow import read_header
from forecast.yaml_input import (
    MAX_ALIASES,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    check_yaml,
    load_yaml_text,
)

GOOD = """\
name: tiny
data:
  path: series.csv
  time_col: date
  targets: [y]
window:
  horizon: 6
  lookback: 24
model:
  units: 4
train:
  epochs: 1
  learning_rate: 0.001
"""

#: the longest line the CLI may print for an error: the cut message plus its note
MAX_PRINTED = MAX_MESSAGE + 200


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _refused(argv, capsys) -> str:
    """Runs the CLI, checks it refused cleanly (exit 2, one bounded line, no traceback) and
    returns the message."""
    code, out, err = _run(argv, capsys)
    assert code == 2, (out, err[:2000])
    assert "Traceback" not in err and err.startswith("error: ")
    assert len(err) <= MAX_PRINTED, err[:2000]
    assert err.strip().count("\n") == 0, err
    return err


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "series.csv").write_text(
        "date,y\n" + "".join(f"2024-01-01 {h:02d}:00,{h}\n" for h in range(24)))
    return tmp_path


def _file(folder, text, name="p.yaml"):
    path = folder / name
    path.write_text(text)
    return path


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# -- bounded YAML: refused before anything is expanded ------------------------------------------


def test_a_billion_laughs_file_is_refused_before_it_expands(folder, capsys):
    bomb = _billion_laughs()
    assert len(bomb) < 1024  # under a kilobyte, 9**9 strings once expanded
    path = _file(folder, GOOD + bomb + "window2: *a8\n", "bomb.yaml")
    err = _refused(["pipeline", "validate", str(path)], capsys)
    assert "bomb.yaml, line " in err and f"{MAX_NODES:,}" in err and "alias" in err


def test_a_billion_laughs_in_a_set_value_is_refused(folder, capsys):
    path = _file(folder, GOOD)
    value = "{" + _billion_laughs().strip().replace("\n", ", ") + "}"
    err = _refused(["pipeline", "validate", str(path), "--set", f"description={value}"], capsys)
    assert "--set 'description=" in err and f"{MAX_NODES:,}" in err
    assert "read as YAML" in err


@pytest.mark.parametrize("nesting", [
    "window: " + "[" * 10_000 + "]" * 10_000 + "\n",           # flow style
    "window:\n  " + "- " * 10_000 + "x\n",                         # block sequences
    "window:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 300)),  # block mappings
    "window: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",        # flow mappings
], ids=["flow-lists", "block-lists", "block-mappings", "flow-mappings"])
def test_deep_nesting_is_refused_not_a_recursion_error(folder, capsys, nesting):
    path = _file(folder, "name: deep\n" + nesting, "deep.yaml")
    err = _refused(["pipeline", "validate", str(path)], capsys)
    assert "deep.yaml, line " in err and f"more than {MAX_DEPTH} levels" in err


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(folder, capsys):
    path = folder / "huge.yaml"
    with path.open("w") as handle:
        handle.write(GOOD)
        handle.write("# padding\n" * (MAX_BYTES // 10 + 1))
    err = _refused(["pipeline", "validate", str(path)], capsys)
    assert "huge.yaml" in err and f"{MAX_BYTES:,} bytes" in err


def test_many_aliases_are_refused(folder, capsys):
    text = GOOD + "v: &v 1\nmany: [" + ", ".join(["*v"] * (MAX_ALIASES + 1)) + "]\n"
    err = _refused(["pipeline", "validate", str(_file(folder, text, "aliases.yaml"))], capsys)
    assert "aliases.yaml, line 15" in err and f"more than {MAX_ALIASES} YAML aliases" in err


def test_an_alias_inside_its_own_anchor_is_refused(folder, capsys):
    text = GOOD.replace("  targets: [y]", "  targets: &t [y, *t]")
    err = _refused(["pipeline", "validate", str(_file(folder, text, "loop.yaml"))], capsys)
    assert "loop.yaml, line 5" in err and "*t" in err and "contains it" in err


def test_a_number_too_long_for_python_is_refused_with_its_line(folder, capsys):
    text = GOOD.replace("horizon: 6", "horizon: " + "9" * 5000)
    err = _refused(["pipeline", "validate", str(_file(folder, text, "digits.yaml"))], capsys)
    assert "digits.yaml, line 7" in err and "digits" in err


def test_a_few_harmless_aliases_still_work(folder):
    text = GOOD + "evaluate: &e {metrics: [mae]}\n"
    assert load_pipeline(_file(folder, text)).evaluate.metrics == ["mae"]
    assert load_yaml_text("a: &x [1, 2]\nb: *x\n", source="t") == {"a": [1, 2], "b": [1, 2]}


def test_the_airflow_header_reader_is_bounded_too(folder):
    path = _file(folder, "name: bomb\n" + _billion_laughs() + "schedule: *a8\n", "dag.yaml")
    with pytest.raises(ConfigError, match=r"dag\.yaml, line \d+: .*100,000"):
        read_header(path)
    deep = _file(folder, "name: deep\nx: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    with pytest.raises(ConfigError, match="levels"):
        read_header(deep)


def test_too_many_values_without_aliases_are_refused_too():
    with pytest.raises(ConfigError, match=r"t, line 1: this YAML holds more than 100,000 values"):
        check_yaml("[" + "1," * (MAX_NODES + 1) + "]", source="t")


def test_check_yaml_counts_expanded_values_not_text():
    check_yaml("a: &a [1, 2, 3]\nb: [*a, *a, *a]\n", source="t")  # 3 + 1 + 9 + ...: fine
    # ten aliases of an anchor of 20,000 values stand for 200,000
    big = "a: &a [" + ", ".join(["1"] * 20_000) + "]\nb: [" + ", ".join(["*a"] * 10) + "]\n"
    with pytest.raises(ConfigError, match=r"t, line 2: .*100,000 values"):
        check_yaml(big, source="t")


# -- messages: bounded, and never markup ---------------------------------------------------------


def test_a_long_message_is_cut_with_a_note_and_debug_shows_it_whole(folder, capsys):
    keys = "".join(f"unknown_key_number_{i}: 1\n" for i in range(200))
    path = _file(folder, GOOD + keys)
    err = _refused(["pipeline", "validate", str(path)], capsys)
    assert re.search(r"… \([\d,]+ more characters; --debug shows the whole message\)", err)
    code, _, err = _run(["--debug", "pipeline", "validate", str(path)], capsys)
    assert code == 2 and "unknown_key_number_199" in err and "Traceback" in err


def test_echoed_values_are_cut(folder, capsys):
    long_word = "x" * 100_000
    text = GOOD.replace("units: 4", f"cell: {long_word}") + "k" * 1000 + ": 1\n"
    err = _refused(["pipeline", "validate", str(_file(folder, text))], capsys)
    assert "model.cell" in err and "'xxx" in err and "…" in err
    message = str(pytest.raises(ConfigError, load_pipeline, folder / "p.yaml").value)
    assert len(message) < 1000  # the values are cut in the message itself, not only printed


def test_a_message_holding_rich_markup_is_printed_as_text(folder, capsys):
    text = GOOD + '"[/red]": 1\n"[bold]x": 2\n'
    err = _refused(["pipeline", "validate", str(_file(folder, text))], capsys)
    assert "[/red]: unknown key" in err


def test_bounded_and_shown():
    assert bounded("short") == "short"
    cut_message = bounded("y" * 2000)
    assert cut_message.startswith("y" * MAX_MESSAGE + "…")
    assert "1,500 more characters" in cut_message
    assert bounded("y" * 2000, debug=True) == "y" * 2000
    assert cut("abc", 2) == "a…" and cut("abc") == "abc"
    assert shown("a" * 1000) == repr("a" * 1000)[:79] + "…"
    assert shown(10 ** 5000) == "<an integer of about 5001 digits>"  # repr() would raise
    assert len(shown([list(range(1000))] * 1000)) <= 80
    assert shown(True) == "True" and shown(0.5) == "0.5"


# -- values checked up front: pipeline files -----------------------------------------------------


@pytest.mark.parametrize("old, new, words", [
    ("horizon: 6", "horizon: true", ["line 7", "window.horizon", "positive integer", "True"]),
    ("horizon: 6", "horizon: -3", ["line 7", "window.horizon", "positive integer", "-3"]),
    ("horizon: 6", "horizon: 0", ["window.horizon", "positive integer"]),
    ("horizon: 6", "horizon: 6.0", ["window.horizon", "positive integer", "6.0"]),
    ("lookback: 24", "lookback: 0", ["line 8", "window.lookback", "positive integer"]),
    ("lookback: 24", "lookback: -1", ["window.lookback", "positive integer"]),
    ("units: 4", "units: true", ["line 10", "model.units", "positive integer"]),
    ("units: 4", "units: 0", ["model.units", "positive integer"]),
    ("epochs: 1", "epochs: 0", ["line 12", "train.epochs", "positive integer"]),
    ("epochs: 1", "epochs: true", ["train.epochs", "positive integer"]),
    ("epochs: 1", "batch_size: false", ["train.batch_size", "positive integer"]),
    ("epochs: 1", "patience: 0", ["train.patience", "positive integer"]),
    ("epochs: 1", "seed: true", ["train.seed", "integer"]),
    ("epochs: 1", "verbose: true", ["train.verbose", "0, 1 or 2"]),
    ("units: 4", "segment_length: -24", ["model.segment_length", "positive integer"]),
    ("units: 4", "layers: 0", ["model.layers", "positive integer"]),
    ("learning_rate: 0.001", "learning_rate: .inf", ["line 13", "train.learning_rate", "finite"]),
    ("learning_rate: 0.001", "learning_rate: .nan", ["train.learning_rate", "finite"]),
    ("learning_rate: 0.001", "learning_rate: -.inf", ["train.learning_rate", "finite"]),
    ("learning_rate: 0.001", "learning_rate: true", ["train.learning_rate", "number"]),
    ("learning_rate: 0.001", "clipnorm: .inf", ["train.clipnorm", "finite"]),
    ("learning_rate: 0.001", "huber_delta: .nan", ["train.huber_delta", "finite"]),
    ("units: 4", "dropout: .nan", ["model.dropout", "[0, 1)"]),
    ("units: 4", "quantiles: [0.5, 1.5]", ["model.quantiles", "strictly between 0 and 1"]),
    ("units: 4", "quantiles: [0.0, 0.5]", ["model.quantiles", "strictly between 0 and 1"]),
    ("units: 4", "quantiles: [.nan]", ["model.quantiles", "strictly between 0 and 1"]),
    ("units: 4", "quantiles: [true]", ["model.quantiles", "True"]),
    ("learning_rate: 0.001", "quantiles: [0.5, 1.5]", ["train.quantiles", "between 0 and 1"]),
    ("  targets: [y]", "  targets: [y]\n  max_gap: 0", ["data.max_gap", "positive integer"]),
    ("  targets: [y]", "  targets: [y]\nsplit: {test: .nan}", ["split.test", "finite"]),
    ("  targets: [y]", "  targets: [y]\nsplit: {borders: [true, 5, 9]}",
     ["split.borders", "positive integer"]),
    ("  targets: [y]", "  targets: [y]\nevaluate: {backtest_folds: 0}",
     ["evaluate.backtest_folds", "positive integer"]),
    ("  targets: [y]", "  targets: [y]\nschedule: {interval_seconds: .inf}",
     ["schedule.interval_seconds", "finite"]),
    ("  targets: [y]", "  targets: [y]\nschedule: {cron: '0 0 30 2 *'}",
     ["line 6", "schedule.cron", "never fires", "'0 0 30 2 *'"]),
    ("  targets: [y]", "  targets: [y]\nschedule:\n  timezone: Europe/Paris\n  cron: 0 0 31 4 *",
     ["line 8", "schedule.cron", "never fires"]),
    ("  targets: [y]", "  targets: [y]\nregister: {name: drill/ot:../x}",
     ["line 6", "register.name", "'/', ':'", "letters, digits"]),
    ("  targets: [y]", "  targets: [y]\nregister: {name: 'a:b'}", ["register.name", "':'"]),
    ("  targets: [y]", "  targets: [y]\nregister: {name: '..'}", ["register.name", "'..'"]),
    ("  targets: [y]", "  targets: [y]\nregister: {name: ' '}", ["register.name", "empty"]),
    ("  targets: [y]", "  targets: [y]\nregister: {name: 'a@champion'}",
     ["register.name", "'@'"]),
    ("  path: series.csv", "  path: nowhere.csv",
     ["line 3", "data.path", "nowhere.csv does not exist", "CSV file"]),
    ("  path: series.csv", "  path: .", ["line 3", "data.path", "not a regular file"]),
])
def test_bad_values_are_refused_by_validate(folder, capsys, old, new, words):
    assert old in GOOD
    path = _file(folder, GOOD.replace(old, new, 1))
    err = _refused(["pipeline", "validate", str(path)], capsys)
    assert str(path) in err
    for word in words:
        assert word in err, (word, err)


def test_the_good_file_validates_and_ints_from_yaml_still_work(folder, capsys):
    code, out, err = _run(["pipeline", "validate", str(_file(folder, GOOD))], capsys)
    assert code == 0, err
    assert "lookback 24, horizon 6" in out and "lr 0.001" in out
    text = GOOD.replace("learning_rate: 0.001", "learning_rate: 1e-3")  # YAML 1.1: a string
    assert load_pipeline(_file(folder, text)).train.learning_rate == 0.001


def test_set_values_are_checked_like_the_file(folder, capsys):
    path = _file(folder, GOOD)
    for override, words in [
        ("window.horizon=true", ["from --set", "window.horizon", "positive integer"]),
        ("train.learning_rate=.inf", ["from --set", "train.learning_rate", "finite"]),
        ("register.name=a:b", ["from --set", "register.name"]),
        ("data.path=missing.csv", ["from --set", "data.path", "does not exist"]),
        ("window=" + "[" * 200 + "]" * 200, ["--set 'window=", "levels"]),
    ]:
        err = _refused(["pipeline", "validate", str(path), "--set", override], capsys)
        for word in words:
            assert word in err, (override, word, err)


def test_pipeline_run_refuses_before_training(folder, capsys, monkeypatch):
    import forecast.pipelines.run as run_module

    def must_not_run(*args, **kwargs):
        raise AssertionError("the pipeline started although its file is invalid")

    monkeypatch.setattr(run_module, "run_pipeline", must_not_run)
    for old, new, word in [("path: series.csv", "path: gone.csv", "data.path"),
                           ("horizon: 6", "horizon: true", "window.horizon"),
                           ("  targets: [y]", "  targets: [y]\nregister: {name: a/b}",
                            "register.name")]:
        path = _file(folder, GOOD.replace(old, new))
        err = _refused(["pipeline", "run", str(path)], capsys)
        assert word in err
    bomb = _file(folder, GOOD + _billion_laughs() + "x: *a8\n", "bomb.yaml")
    assert "100,000" in _refused(["pipeline", "run", str(bomb)], capsys)


# -- values checked up front: the CLI and Python ------------------------------------------------


@pytest.mark.parametrize("name", ["drill/ot:../x", "a:b", "", "  ", "../x", "a@b", "x" * 300])
def test_train_refuses_a_bad_register_name_before_loading_the_data(tmp_path, capsys, name):
    # the CSV does not exist: were the data loaded first, the message would be about it
    err = _refused(["train", str(tmp_path / "absent.csv"), "--register", name], capsys)
    assert "--register: not a valid registered model name" in err
    assert "absent.csv" not in err


@pytest.mark.parametrize("flag, value, words", [
    ("--lookback", "0", ["lookback", "positive integer"]),
    ("--lookback", "-1", ["lookback", "positive integer"]),
    ("--units", "0", ["units", "positive integer"]),
    ("--epochs", "0", ["epochs", "positive integer"]),
    ("--batch-size", "-2", ["batch_size", "positive integer"]),
    ("--learning-rate", "inf", ["learning_rate", "finite"]),
    ("--learning-rate", "nan", ["learning_rate", "finite"]),
    ("--quantile", "1.5", ["quantiles", "between 0 and 1"]),
])
def test_train_refuses_bad_sizes_and_rates_before_training(folder, capsys, flag, value, words):
    err = _refused(["train", str(folder / "series.csv"), "--target", "y", "--horizon", "2",
                    "--no-track", flag, value], capsys)
    for word in words:
        assert word in err, (word, err)


@pytest.mark.parametrize("kwargs, words", [
    ({"horizon": 0}, ["`horizon` must be a positive integer", "horizon=0"]),
    ({"horizon": -3}, ["horizon=-3"]),
    ({"horizon": True}, ["horizon=True"]),
    ({"horizon": 2.0}, ["horizon=2.0"]),
    ({"horizon": "24"}, ["horizon='24'"]),
    ({"horizon": 4, "lookback": 0}, ["`lookback` must be a positive integer or None"]),
    ({"horizon": 4, "batch_size": 0}, ["batch_size"]),
    ({"horizon": 4, "train": {"learning_rate": math.inf}}, ["train.", "finite"]),
    ({"horizon": 4, "train": {"learning_rate": math.nan}}, ["train.", "finite"]),
    ({"horizon": 4, "train": {"epochs": True}}, ["train.", "epochs=True"]),
    ({"horizon": 4, "model": {"quantiles": [0.5, 1.5]}}, ["model.", "between 0 and 1"]),
])
def test_python_config_refuses_bad_values_as_config_errors(kwargs, words):
    with pytest.raises(ConfigError) as info:
        ForecasterConfig(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_python_options_refuse_directly_and_keep_good_integers():
    with pytest.raises(ConfigError, match="finite"):
        TrainOptions(learning_rate=math.inf)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        ModelOptions(quantiles=[0.5, 1.5])
    with pytest.raises(ConfigError, match="units"):
        ModelOptions(units=0)
    config = ForecasterConfig(horizon=np.int64(12), lookback=np.int32(48))
    assert (config.horizon, config.lookback) == (12, 48) and type(config.horizon) is int
    assert TrainOptions(learning_rate="1e-3", patience=None).learning_rate == 0.001


def test_registered_model_names_follow_mlflow():
    for good in ("etth1-ot", "ETTh1 OT", "model_2.v3", "prévision"):
        assert model_name_problem(good) is None and check_model_name(good, "x") == good
    assert check_model_name(None, "--register") is None  # no name given: nothing to check
    for bad in ("drill/ot:../x", "a:b", "", " a", "a..b", ".hidden", "a@b", "a\nb", 5):
        with pytest.raises(ConfigError, match=r"^register\.name: not a valid"):
            check_model_name(bad, "register.name")


def test_the_mlflow_rules_agree_with_mlflow():
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_name

    for name in ("drill/ot:../x", "a:b", "", "a/b", "../x", "a//b", "etth1-ot", "my model"):
        try:
            _validate_model_name(name)
            mlflow_ok = True
        except MlflowException:
            mlflow_ok = False
        if not mlflow_ok:  # what MLflow refuses we refuse (we refuse a little more: '@', '..')
            assert model_name_problem(name) is not None, name


def test_a_cron_that_never_fires_is_refused():
    for line in ("0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 0 30 2 *"):
        with pytest.raises(ValueError, match="never fires"):
            cron_trigger(line)
    assert cron_trigger("0 0 29 2 *") is not None  # a leap day fires within five years
    assert cron_trigger("*/5 * * * * *") is not None
