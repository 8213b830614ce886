"""Shared by the pipeline tests: a pipeline file beside a short synthetic series."""

from pathlib import Path

from tests.conftest import synthetic_frame


def tiny_pipeline(name: str, *, evaluate: str = "{metrics: [mae, mase]}",
                  register: str | None = None) -> str:
    """The text of a tiny pipeline on ``data/series.csv`` (4 units, 1 epoch, lookback 24,
    horizon 6): ``name``, its ``evaluate`` section and, when given, its ``register`` section."""
    lines = [
        f"name: {name}",
        "data:",
        "  path: data/series.csv",
        "  time_col: date",
        "  targets: [y]",
        "  covariates: [x]",
        "window: {lookback: 24, horizon: 6}",
        "model: {units: 4, linear_skip: true}",
        "train: {epochs: 1, batch_size: 64, verbose: 0, seed: 1}",
        f"evaluate: {evaluate}",
        *([f"register: {register}"] if register else []),
        "forecast: {path: out/forecast.csv}",
    ]
    return "\n".join(lines) + "\n"


def write_pipeline(folder: Path, text: str, rows: int = 360) -> Path:
    """Writes ``data/series.csv`` (``rows`` synthetic rows) and ``tiny.yaml`` holding ``text``.

    Returns:
        The pipeline file's path.
    """
    (folder / "data").mkdir()
    synthetic_frame(rows).to_csv(folder / "data" / "series.csv", index=False)
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path
