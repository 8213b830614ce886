"""Shared by the pipeline tests: a pipeline file beside a short synthetic series."""

from pathlib import Path

from tests.conftest import synthetic_frame


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
