"""Building the DAGs: schedules from the YAML, tasks per configured step, clear errors."""

import re
from datetime import timedelta

import pytest
from conftest import ROOT, TINY, install_dag_file

from forecast.errors import ConfigError
from forecast.scheduling.airflow import build_dags, read_header


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY.format(name="tiny"))
    return tmp_path


def test_the_schedule_is_the_yaml_cron_in_its_time_zone(folder):
    from airflow.sdk import CronTriggerTimetable, DeltaTriggerTimetable

    (folder / "hourly.yaml").write_text(
        TINY.format(name="hourly").replace(
            'schedule: {cron: "30 3 * * 1-5", timezone: Europe/Paris}',
            "schedule: {interval_seconds: 3600}"))
    (folder / "manual.yml").write_text(TINY.format(name="manual").split("schedule:")[0])
    dags = build_dags(folder, retries=2, execution_timeout=timedelta(minutes=30),
                      dagrun_timeout=timedelta(hours=1))
    assert set(dags) == {"tiny", "hourly", "manual"}
    tiny = dags["tiny"]
    assert isinstance(tiny.timetable, CronTriggerTimetable)
    assert tiny.timetable.expression == "30 3 * * 1-5"
    assert str(tiny.timetable.timezone) == "Europe/Paris"
    assert str(tiny.timezone) == "Europe/Paris" and not tiny.catchup
    assert tiny.max_active_runs == 1 and tiny.dagrun_timeout == timedelta(hours=1)
    assert {t.retries for t in tiny.tasks} == {2}
    assert {t.execution_timeout for t in tiny.tasks} == {timedelta(minutes=30)}
    assert isinstance(dags["hourly"].timetable, DeltaTriggerTimetable)
    assert dags["hourly"].timetable.delta == timedelta(hours=1)
    assert dags["manual"].schedule is None

    bundled = build_dags(ROOT / "pipelines")
    assert bundled["nightly"].timetable.expression == "0 2 * * *"
    assert [t.task_id for t in bundled["nightly"].topological_sort()] == [
        "validate", "ingest", "train", "backtest", "register", "forecast"]
    assert [t.task_id for t in bundled["etth1"].topological_sort()] == [
        "validate", "ingest", "train", "forecast"]


@pytest.mark.parametrize(("replacement", "message"), [
    ("schedule: {cron: \"*/5 * * * * *\"}", "Airflow takes a 5-field cron"),
    ("schedule: {cron: \"61 3 * * *\"}", "schedule.cron: '61 3 * * *' is not a valid cron"),
    ("schedule: {cron: \"0 3 * * *\", timezone: Europe/Pariss}", "unknown time zone"),
    ("schedule: {cron: \"0 3 * * *\", interval_seconds: 60}", "exactly one of cron"),
])
def test_a_schedule_airflow_cannot_run_is_an_error_naming_the_file(folder, replacement, message):
    path = folder / "tiny.yaml"
    path.write_text(TINY.format(name="tiny").replace(
        'schedule: {cron: "30 3 * * 1-5", timezone: Europe/Paris}', replacement))
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        build_dags(folder)
    assert str(path) in str(info.value)


def test_a_broken_file_is_an_error_naming_it_and_an_import_error_in_airflow(folder):
    from airflow.dag_processing.dagbag import DagBag

    broken = folder / "broken.yaml"
    broken.write_text("name: broken\nwindow: {horizon: 6\ndata: x\n")
    with pytest.raises(ConfigError) as info:
        read_header(broken)
    assert str(info.value).startswith(f"{broken}, line ") and "not valid YAML" in str(info.value)
    with pytest.raises(ConfigError, match="1 of 2 pipeline file") as info:
        build_dags(folder)
    assert str(broken) in str(info.value) and "tiny.yaml" not in str(info.value)

    (folder / "copy.yaml").write_text(TINY.format(name="tiny"))
    with pytest.raises(ConfigError, match="is also the name of"):
        build_dags(folder)

    install_dag_file(folder)
    bag = DagBag(dag_folder=str(folder))
    ((file, error),) = bag.import_errors.items()
    assert file.endswith("airflow_dags.py") and str(broken) in error and "line 3" in error


def test_an_empty_folder_or_a_missing_python_is_a_clear_error(tmp_path, folder, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no pipeline files"):
        build_dags(empty)
    monkeypatch.setenv("FORECAST_PYTHON", str(tmp_path / "no" / "python"))
    with pytest.raises(ConfigError, match="FORECAST_PYTHON"):
        build_dags(folder)


def test_a_name_airflow_refuses_as_a_dag_id_is_an_error_naming_the_file(folder):
    (folder / "tiny.yaml").write_text(TINY.format(name="tiny").replace(
        "name: tiny\n", "name: not a dag id!\n"))
    with pytest.raises(ConfigError, match="name: 'not a dag id!' cannot be an Airflow DAG id"
                       ) as info:
        build_dags(folder)
    assert str(folder / "tiny.yaml") in str(info.value)
