"""The quickstart (`make demo`): the bundled ETTh1 pipeline, its champion's forecast, the UI.

Runs ``pipelines/quickstart.yaml`` (load → split → train → evaluate beside the baselines →
register and promote → forecast) as one MLflow run in the project's store, then loads the
registered champion the way a user or a server would (``models:/etth1-ot@champion``), gives it
the raw last rows of the CSV and prints the forecast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from forecast.paths import PROJECT_ROOT

BUNDLED_ETTH1 = PROJECT_ROOT / "datasets" / "ETTh1.csv"
QUICKSTART_PIPELINE = PROJECT_ROOT / "pipelines" / "quickstart.yaml"


def run_quickstart(*, force: bool = False, echo: Callable[[str], None] = print) -> dict:
    """Runs the quickstart pipeline and forecasts with the registered champion.

    Args:
        force: retrain even when the data has not changed since the last successful run.
        echo: where the lines go.

    Returns:
        ``{"pipeline": PipelineResult, "forecast": DataFrame, "model_uri": str}``.

    Raises:
        ForecastError: the pipeline or the forecast failed (the MLflow run is then FAILED).
    """
    import forecast
    from forecast.pipelines import load_pipeline, run_pipeline

    spec = load_pipeline(QUICKSTART_PIPELINE)
    result = run_pipeline(QUICKSTART_PIPELINE, force=force, echo=echo)
    for name, values in [("model", result.metrics.get("model", {})),
                         *result.metrics.get("baselines", {}).items()]:
        if values:  # a skipped run (data and settings unchanged) has no new test metrics
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
            echo(f"  test {name:<15} {shown}")
    uri = f"models:/{spec.register.name}@champion"
    columns = [spec.data.time_col, *spec.data.targets, *(spec.data.covariates or [])]
    history = pd.read_csv(spec.data.path, usecols=columns).iloc[-2 * spec.window.lookback:]
    prediction = forecast.load(uri).predict(history)
    echo(f"\nforecast of {', '.join(spec.data.targets)} by {uri}, from the last "
         f"{len(history)} rows of {Path(spec.data.path).name}:")
    echo(prediction.to_string(index=False, max_rows=12))
    echo("\nopen the MLflow UI on this store with:  .venv/bin/forecast ui   "
         "(then browse to http://127.0.0.1:5000)")
    return {"pipeline": result, "forecast": prediction, "model_uri": uri}
