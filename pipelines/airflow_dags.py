"""Airflow DAGs for the forecast pipelines: one DAG per pipeline YAML in a folder.

Copy (or link) this file into Airflow's dags folder. Environment variables:

* ``FORECAST_PIPELINES_DIR``: the folder of pipeline YAML files (default: the folder this file
  lies in); every ``*.yaml``/``*.yml`` in it must be a pipeline.
* ``FORECAST_PYTHON``: the Python that runs the pipeline steps, where ``forecast`` is installed
  with its dependencies (default: the project's ``.venv/bin/python``).

Airflow itself only needs ``forecast`` importable, without its dependencies:
``pip install --no-deps -e /path/to/forecast`` in Airflow's environment (see the README).
"""

import os
from pathlib import Path

from forecast.scheduling.airflow import build_dags

globals().update(build_dags(os.environ.get("FORECAST_PIPELINES_DIR")
                            or Path(__file__).resolve().parent))
