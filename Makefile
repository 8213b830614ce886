# Two commands: `make demo` and `make test`. Both create .venv and install the project on first
# use; the install is redone only when pyproject.toml changes (the stamp file tracks it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install chromium java demo test test-airflow test-spark lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml | chromium
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Chromium drives the MLflow UI test (tests/tracking/test_ui_browser.py, headless, from the
# command line). Installed with apt-get where this runs as root on Debian/Ubuntu; elsewhere
# skipped quietly (the test then skips and says how to install it). Order-only before the
# install stamp: checked on every `make test`, never a reason to reinstall the venv.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium) >/dev/null 2>&1 \
	      || echo "chromium: apt-get install failed; the browser test will be skipped"; \
	  fi; }

demo: $(STAMP)
	$(BIN)/forecast quickstart

# Two worker processes (pytest-xdist): most tests wait on subprocesses, servers and SQLite, so
# two workers keep both cores busy; worksteal evens out the few long end-to-end tests.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

# The Airflow DAG factory (forecast.scheduling.airflow) tested for real with dag.test() on a
# SQLite metadata database, in a venv of its own: Airflow 3 pins fastapi (and more) below what
# MLflow's server wants, so it never shares .venv. Its tasks run the pipeline steps with
# .venv/bin/python (@task.external_python), so .venv-airflow holds only Airflow, pytest and
# forecast without its dependencies (the DAG file reads pipeline headers, never TensorFlow).
# Versions come from tests_airflow/constraints.txt (frozen here: Airflow's official constraints
# files are on GitHub, which CI cannot reach). The tests make their own AIRFLOW_HOME (a temp dir).
AIRFLOW_VERSION := 3.3.2
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

$(AIRFLOW_STAMP): pyproject.toml tests_airflow/constraints.txt
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	echo '*' > $(AIRFLOW_VENV)/.gitignore
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -c tests_airflow/constraints.txt \
		"apache-airflow==$(AIRFLOW_VERSION)" pytest
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $(AIRFLOW_STAMP)

test-airflow: $(STAMP) $(AIRFLOW_STAMP)
	AIRFLOW__CORE__PARALLELISM=2 AIRFLOW__CORE__LOAD_EXAMPLES=False \
		FORECAST_PYTHON=$(abspath $(BIN))/python \
		$(AIRFLOW_VENV)/bin/python -m pytest -q tests_airflow

# Scoring on Spark (forecast.serving.spark, `forecast predict --spark`) tested for real with a
# local[2] SparkSession, in a venv of its own: the project with its dependencies plus pyspark
# (pinned), so the main .venv and `make test` never need Java. pyspark 4.x runs on Java 17:
# the `java` target installs Debian's openjdk-17-jre-headless when `java` is missing (root and
# apt-get), and otherwise stops with a message saying what to install.
SPARK_VERSION := 4.3.0
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed

$(SPARK_STAMP): pyproject.toml
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	echo '*' > $(SPARK_VENV)/.gitignore
	$(SPARK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SPARK_VENV)/bin/python -m pip install --quiet -e ".[dev,spark]" \
		"pyspark[sql]==$(SPARK_VERSION)"
	touch $(SPARK_STAMP)

java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends openjdk-17-jre-headless) >/dev/null 2>&1; \
	  fi; \
	  command -v java >/dev/null 2>&1 || { echo "java: not found and not installable here;" \
	    "install Java 17 (Debian: apt-get install openjdk-17-jre-headless) for make test-spark"; \
	    exit 1; }; }

test-spark: $(SPARK_STAMP) | java
	$(SPARK_VENV)/bin/python -m pytest -q tests_spark

lint: $(STAMP)
	$(BIN)/ruff check forecast tests tests_airflow tests_spark benchmarks pipelines

# torch is a benchmark peer only (torch.nn.LSTM), never a dependency of the project; pmdarima,
# vega_datasets and statsmodels only ship the real series of benchmarks/real_data.py.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet pmdarima==2.1.1 vega_datasets==0.9.0 statsmodels==0.15.0
	$(BIN)/python benchmarks/bench_windows.py
	$(BIN)/python benchmarks/bench_lstm.py
	$(BIN)/python benchmarks/ett.py --check
	$(BIN)/python benchmarks/real_data.py
	$(BIN)/python benchmarks/m4.py --check

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(SPARK_VENV) build *.egg-info
