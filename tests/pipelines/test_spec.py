"""Tests of forecast/pipelines/spec.py: validation messages name the key, the line, the fix."""

from pathlib import Path

import pytest

from forecast.errors import ConfigError
from forecast.pipelines.spec import PipelineSpec, load_pipeline, parse_overrides

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"

VALID = """\
name: tiny
data:
  path: data.csv
  time_col: date
  targets: [y]
window:
  horizon: 6
  lookback: 24
model:
  units: 4
train:
  epochs: 1
  batch_size: 64
forecast:
  path: out/forecast.csv
"""


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def message(path, **kwargs):
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, **kwargs)
    return str(info.value)


def test_a_valid_file_maps_onto_the_forecaster_config(tmp_path):
    spec = load_pipeline(write(tmp_path, VALID))
    assert spec.data.path == (tmp_path / "data.csv").resolve()  # relative to the YAML's folder
    assert spec.forecast.path == (tmp_path / "out" / "forecast.csv").resolve()
    config = spec.forecaster_config()
    assert config.horizon == 6 and config.lookback == 24 and config.batch_size == 64
    assert config.model.units == 4 and config.train.epochs == 1
    assert "batch_size" not in type(config.train).model_fields
    assert "setup" not in type(config.model).model_fields
    from forecast.options import parse_config

    assert parse_config(config.model_dump()) == config


def test_a_misspelt_key_names_its_place_line_and_the_nearest_key(tmp_path):
    text = VALID.replace("  horizon: 6", "  horizn: 6")
    msg = message(write(tmp_path, text))
    assert "window.horizn" in msg and "line 7" in msg and "did you mean horizon?" in msg
    assert "window.horizon: missing" not in msg  # the suggestion already covers it


def test_an_unknown_section_and_bad_types_are_reported_with_lines(tmp_path):
    text = VALID + "trian:\n  epochs: 2\n"
    text = text.replace("units: 4", "units: many").replace("epochs: 1", "epochs: 0")
    msg = message(write(tmp_path, text))
    assert "line 16: trian: unknown key (did you mean train?)" in msg
    assert "line 10: model.units" in msg and "'many'" in msg
    assert "line 12: train.epochs" in msg and "`epochs` must be a positive integer" in msg


def test_bad_choices_and_cross_field_rules(tmp_path):
    msg = message(write(tmp_path, VALID.replace("units: 4", "cell: lsmt")))
    assert "model.cell" in msg and "'lstm', 'peephole', 'gru'" in msg and "line 10" in msg
    assert "Did you mean 'lstm'?" in msg
    text = VALID + "schedule:\n  cron: '0 25 * * *'\n"
    msg = message(write(tmp_path, text))
    assert "line 17: schedule.cron" in msg and "25" in msg  # the line of the cron key itself


def test_bad_yaml_syntax_names_the_line(tmp_path):
    text = VALID.replace("  lookback: 24", "  lookback: [24")
    msg = message(write(tmp_path, text))
    assert "not valid YAML" in msg and "line" in msg
    msg = message(write(tmp_path, VALID + "window:\n  horizon: 3\n"))
    assert "line 16: window: duplicate key" in msg
    msg = message(write(tmp_path, "- just\n- a list\n"))
    assert "mapping of sections" in msg
    assert "does not exist" in message(tmp_path / "missing.yaml")


def test_overrides_are_yaml_values_applied_by_dotted_path(tmp_path):
    path = write(tmp_path, VALID)
    assert parse_overrides(["window.horizon=48", "data.targets=[a, b]", "register=null"]) == [
        (("window", "horizon"), 48), (("data", "targets"), ["a", "b"]), (("register",), None)]
    spec = load_pipeline(path, overrides=["window.horizon=48", "register.name=m"])
    assert spec.window.horizon == 48 and spec.register.name == "m"
    msg = message(path, overrides=["window.horizn=4"])
    assert "from --set: window.horizn: unknown key (did you mean horizon?)" in msg
    assert "KEY=VALUE" in message(path, overrides=["window.horizon"])


@pytest.mark.parametrize("name", ["quickstart.yaml", "nightly.yaml"])
def test_the_ready_pipelines_are_valid(name):
    spec = load_pipeline(PIPELINES / name)
    assert isinstance(spec, PipelineSpec) and spec.data.path.is_file()
    assert spec.data.targets == ["OT"] and spec.window.horizon == 24
    if name == "nightly.yaml":
        assert spec.schedule.cron == "0 2 * * *" and spec.schedule.timezone == "UTC"


@pytest.mark.parametrize("path", sorted(PIPELINES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_pipeline_file_is_valid(path):
    """The benchmark files (etth1_*.yaml, read by benchmarks/ett.py) are validated too."""
    spec = load_pipeline(path)
    assert spec.data.path.is_file() and spec.window.horizon > 0


def _numbers(model, prefix=()):
    """Dotted keys of every int or float setting in the pipeline's sections."""
    import typing

    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        args = set(typing.get_args(field.annotation)) or {field.annotation}
        section = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if section is not None:
            yield from _numbers(section, (*prefix, name))
        elif int in args or float in args or args and all(type(a) is int for a in args):
            yield ".".join((*prefix, name)), float in args


def test_every_number_in_a_pipeline_is_strict_and_finite(tmp_path):
    """The class, not examples: no numeric key takes true, and no float key .inf or .nan."""
    path = write(tmp_path, VALID + "register: {name: m}\nschedule: {cron: '0 2 * * *'}\n")
    load_pipeline(path)  # the base is valid
    keys = dict(_numbers(PipelineSpec))
    assert {"window.horizon", "train.learning_rate", "split.val", "data.max_gap",
            "schedule.interval_seconds", "evaluate.backtest_folds"} <= set(keys)
    for key, is_float in keys.items():
        for value in ["true", "[1]"] + ([".inf", "-.inf", ".nan"] if is_float else ["1.5"]):
            msg = message(path, overrides=[f"{key}={value}"])
            assert f"from --set: {key}" in msg, (key, value, msg)


def test_a_missing_data_file_is_named_when_asked(tmp_path):
    path = write(tmp_path, VALID)
    msg = message(path, check_data=True)
    assert "line 3: data.path" in msg and "data.csv does not exist" in msg
    (tmp_path / "data.csv").write_text("date,y\n")
    assert load_pipeline(path, check_data=True).data.path.is_file()
    assert load_pipeline(write(tmp_path, VALID.replace("data.csv", "gone.csv"))).name == "tiny"


def test_an_id_column_asks_for_one_global_model(tmp_path):
    # data.id_col: one global model over every series of a long-format file, tracked,
    # registered and served as one series is (tests/test_global_tracking.py runs one)
    path = write(tmp_path, VALID.replace("  time_col: date\n",
                                         "  time_col: date\n  id_col: store\n"))
    assert load_pipeline(path).data.id_col == "store"


def test_reading_settings_are_checked_and_kept(tmp_path):
    text = VALID.replace("  time_col: date\n", "  time_col: date\n  sep: ';'\n  decimal: ','\n"
                         "  dayfirst: true\n  tz: Europe/Berlin\n")
    reading = load_pipeline(write(tmp_path, text)).data.reading()
    assert (reading.sep, reading.decimal, reading.dayfirst, reading.tz, reading.time_col) == (
        ";", ",", True, "Europe/Berlin", "date")
    msg = message(write(tmp_path, VALID.replace("  time_col: date\n",
                                                "  time_col: date\n  decimal: '#'\n"), "b.yaml"))
    assert "data" in msg and "decimal" in msg and "'#'" in msg
