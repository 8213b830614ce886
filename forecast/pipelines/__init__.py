"""Declarative pipelines: a YAML file validated by pydantic models, run as one MLflow run.

>>> from forecast.pipelines import load_pipeline, run_pipeline
>>> spec = load_pipeline("pipelines/quickstart.yaml")            # ConfigError names line + key
>>> result = run_pipeline("pipelines/quickstart.yaml", overrides=["window.horizon=48"])
"""

from forecast.pipelines.spec import PipelineSpec, load_pipeline, parse_overrides

__all__ = ["PipelineResult", "PipelineSpec", "load_pipeline", "parse_overrides", "run_pipeline"]


def __getattr__(name):
    # run.py imports MLflow lazily; keep `forecast pipeline validate` free of TensorFlow
    if name in ("run_pipeline", "PipelineResult"):
        from forecast.pipelines import run

        return getattr(run, name)
    raise AttributeError(f"module 'forecast.pipelines' has no attribute {name!r}")
